// Kubernetes' channel protocols over a WebSocket (apimachinery wsstream): every message starts
// with a channel number, one byte for "channel.k8s.io"-style protocols, or an ASCII digit
// followed by base64 data for the "base64.channel.k8s.io" ones (sent as text messages). Channel
// i is readable, writable, both or ignored, as the protocol user declares. Messages for unknown
// channels and writes to non-writable channels are dropped, as wsstream does.

import { ByteQueue } from "./byte-queue.ts";
import type { WebSocketConnection } from "./websocket.ts";

export interface ChannelSpec {
  read: boolean;
  write: boolean;
}

/** Backlog per readable channel above which the message loop stops reading the socket. */
const CHANNEL_BACKLOG = 1 << 20;

export class ChannelConnection {
  private readonly ws: WebSocketConnection;
  private readonly base64: boolean;
  private readonly specs: ChannelSpec[];
  private readonly inputs: Array<ByteQueue | undefined>;
  private drainWaiters: Array<() => void> = [];
  /** Resolves when the WebSocket has closed and every readable channel has ended. */
  readonly done: Promise<void>;

  constructor(ws: WebSocketConnection, base64: boolean, specs: ChannelSpec[]) {
    this.ws = ws;
    this.base64 = base64;
    this.specs = specs;
    this.inputs = specs.map((s) => (s.read ? new ByteQueue(() => this.wakeDrain()) : undefined));
    void ws.closed.then(() => {
      for (const q of this.inputs) q?.end();
      this.wakeDrain();
    });
    this.done = this.dispatch();
  }

  /** The inbound bytes of a readable channel; ends when the WebSocket closes. */
  input(channel: number): AsyncIterable<Uint8Array> & { read(): Promise<Uint8Array | null> } {
    const q = this.inputs[channel];
    if (!q) throw new Error(`channel ${channel} is not readable`);
    return q;
  }

  /** Sends data on a channel; a no-op for channels that are not writable. */
  async write(channel: number, data: Uint8Array): Promise<void> {
    if (!this.specs[channel]?.write) return;
    if (this.base64) {
      await this.ws.send(String.fromCharCode(48 + channel) + Buffer.from(data).toString("base64"));
    } else {
      const frame = new Uint8Array(data.length + 1);
      frame[0] = channel;
      frame.set(data, 1);
      await this.ws.send(frame);
    }
  }

  close(): Promise<unknown> {
    return this.ws.close();
  }

  private async dispatch(): Promise<void> {
    try {
      for await (const msg of this.ws) {
        if (msg.data.length === 0) continue;
        let channel = msg.data[0] as number;
        let payload = msg.data.subarray(1);
        if (this.base64) {
          channel -= 48;
          const text = Buffer.from(payload).toString("latin1");
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) continue; // wsstream logs and drops it
          payload = new Uint8Array(Buffer.from(text, "base64"));
        }
        const q = this.inputs[channel];
        if (!q) continue;
        q.push(payload);
        while (q.buffered > CHANNEL_BACKLOG && !q.isEnded) {
          await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
        }
      }
    } finally {
      for (const q of this.inputs) q?.end();
    }
  }

  private wakeDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
