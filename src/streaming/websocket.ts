// A minimal RFC 6455 WebSocket server endpoint: the opening handshake (section 4.2), framing
// with client masking (5.2, 5.3), fragmentation (5.4), ping/pong (5.5.2, 5.5.3) and the closing
// handshake (5.5.1, 7). No extensions are negotiated, so RSV bits must be clear. This is the
// transport of Kubernetes' channel protocols (ws-channels.ts).

import { ChunkBuffer } from "./chunk-buffer.ts";
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
} as const;

const Opcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (section 4.2.2, item 5.4). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : (v ?? "");
}

/**
 * Whether a request asks for a WebSocket: `Upgrade: websocket` and an `upgrade` token in
 * Connection (the test Kubernetes' wsstream.IsWebSocketRequest makes).
 */
export function isWebSocketRequest(headers: IncomingHttpHeaders): boolean {
  if (headerValue(headers, "upgrade").trim().toLowerCase() !== "websocket") return false;
  return headerValue(headers, "connection")
    .toLowerCase()
    .split(",")
    .some((t) => t.trim() === "upgrade");
}

/** The subprotocols a client offers, in its order of preference. */
export function offeredProtocols(headers: IncomingHttpHeaders): string[] {
  return headerValue(headers, "sec-websocket-protocol")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
}

export interface HandshakeRejection {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** Checks the parts of an opening handshake that do not depend on the application. */
export function checkHandshake(method: string | undefined, headers: IncomingHttpHeaders): HandshakeRejection | undefined {
  if (method !== "GET") return { status: 405, message: "websocket: the opening handshake must be a GET request" };
  if (!isWebSocketRequest(headers)) return { status: 400, message: "websocket: missing upgrade headers" };
  if (headerValue(headers, "sec-websocket-version").trim() !== "13") {
    return { status: 426, message: "websocket: unsupported version", headers: { "Sec-WebSocket-Version": "13" } };
  }
  const key = headerValue(headers, "sec-websocket-key").trim();
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return { status: 400, message: "websocket: invalid Sec-WebSocket-Key" };
  return undefined;
}

/** Writes the 101 response; `protocol` "" or undefined sends no Sec-WebSocket-Protocol. */
export function writeHandshakeResponse(socket: Duplex, headers: IncomingHttpHeaders, protocol?: string): void {
  const key = headerValue(headers, "sec-websocket-key").trim();
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${acceptKey(key)}`,
  ];
  if (protocol) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  socket.write(lines.join("\r\n") + "\r\n\r\n");
}

export interface WebSocketMessage {
  data: Uint8Array;
  /** False for text messages (valid UTF-8, checked). */
  binary: boolean;
}

export interface WebSocketOptions {
  /** Bytes the HTTP parser read past the request (node's `head`). */
  head?: Uint8Array;
  /** Largest message accepted; larger ones close the connection with 1009. Default 32 MiB. */
  maxMessageSize?: number;
  /** Close after this long without a frame in either direction; 0 = never. */
  idleTimeoutMs?: number;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
const utf8 = new TextEncoder();

/**
 * The server side of an open WebSocket. Messages are read by async iteration (ending when the
 * connection closes); send() writes one unfragmented message. Events: "close" ({code, reason}),
 * once.
 */
export class WebSocketConnection extends EventEmitter implements AsyncIterable<WebSocketMessage> {
  /** Resolves with the close code and reason once the TCP connection is gone. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private readonly socket: Duplex;
  private readonly maxMessageSize: number;
  private readonly input = new ChunkBuffer();
  private fragments: Uint8Array[] = [];
  private fragmentsSize = 0;
  private fragmentOpcode = -1;
  private readonly messages: WebSocketMessage[] = [];
  private queuedBytes = 0;
  private waiters: Array<() => void> = [];
  private closeSent = false;
  private isClosed = false;
  private closeInfo = { code: 1006, reason: "" };
  private resolveClosed!: (v: { code: number; reason: string }) => void;
  private idleTimer: ReturnType<typeof setInterval> | undefined;
  private lastActivity = Date.now();
  private paused = false;

  constructor(socket: Duplex, options: WebSocketOptions = {}) {
    super();
    this.socket = socket;
    this.maxMessageSize = options.maxMessageSize ?? 32 << 20;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("end", () => this.terminate());
    socket.on("close", () => this.terminate());
    socket.on("error", () => this.terminate());
    if (options.head && options.head.length > 0) this.onData(options.head);
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  setIdleTimeout(ms: number): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    if (ms <= 0 || this.isClosed) return;
    this.lastActivity = Date.now();
    this.idleTimer = setInterval(() => {
      if (Date.now() - this.lastActivity >= ms) void this.close(CloseCode.GOING_AWAY, "idle timeout");
    }, Math.max(10, Math.min(ms / 4, 1000)));
    this.idleTimer.unref?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WebSocketMessage> {
    for (;;) {
      while (this.messages.length === 0) {
        if (this.isClosed || this.closeSent) return;
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
      const msg = this.messages.shift() as WebSocketMessage;
      this.queuedBytes -= msg.data.length;
      if (this.paused && this.queuedBytes < 1 << 20) {
        this.paused = false;
        this.socket.resume();
      }
      yield msg;
    }
  }

  /** Sends one message: binary for bytes, text for a string. Resolves when handed to the socket. */
  send(data: Uint8Array | string): Promise<void> {
    if (this.isClosed || this.closeSent) return Promise.reject(new Error("WebSocket is closed"));
    if (typeof data === "string") return this.writeFrame(Opcode.TEXT, utf8.encode(data));
    return this.writeFrame(Opcode.BINARY, data);
  }

  /** Drops the connection without a closing handshake. */
  destroy(): void {
    this.socket.destroy();
    this.terminate();
  }

  ping(payload: Uint8Array = new Uint8Array(0)): Promise<void> {
    if (this.isClosed || this.closeSent) return Promise.reject(new Error("WebSocket is closed"));
    return this.writeFrame(Opcode.PING, payload.subarray(0, 125));
  }

  /** Starts the closing handshake; the server then ends the TCP connection (section 7.1.1). */
  close(code: number = CloseCode.NORMAL, reason = ""): Promise<{ code: number; reason: string }> {
    if (!this.closeSent && !this.isClosed) {
      this.closeSent = true;
      const r = utf8.encode(reason).subarray(0, 123);
      const payload = new Uint8Array(2 + r.length);
      payload[0] = code >> 8;
      payload[1] = code & 0xff;
      payload.set(r, 2);
      this.closeInfo = { code, reason };
      void this.writeFrame(Opcode.CLOSE, payload).catch(() => undefined);
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 5000);
      t.unref?.();
      this.wake();
    }
    return this.closed;
  }

  private writeFrame(opcode: number, payload: Uint8Array): Promise<void> {
    let header: Uint8Array;
    const n = payload.length;
    if (n < 126) {
      header = Uint8Array.of(0x80 | opcode, n);
    } else if (n < 0x10000) {
      header = Uint8Array.of(0x80 | opcode, 126, n >> 8, n & 0xff);
    } else {
      header = new Uint8Array(10);
      header[0] = 0x80 | opcode;
      header[1] = 127;
      new DataView(header.buffer).setBigUint64(2, BigInt(n));
    }
    const frame = new Uint8Array(header.length + n);
    frame.set(header);
    frame.set(payload, header.length);
    this.lastActivity = Date.now();
    return new Promise((resolve, reject) => {
      const ok = this.socket.write(frame, (err) => {
        if (err) reject(err);
      });
      if (ok) resolve();
      else {
        const done = (): void => {
          this.socket.off("drain", done);
          this.socket.off("close", done);
          if (this.isClosed) reject(new Error("WebSocket is closed"));
          else resolve();
        };
        this.socket.on("drain", done);
        this.socket.on("close", done);
      }
    });
  }

  private onData(chunk: Uint8Array): void {
    if (this.isClosed) return;
    this.lastActivity = Date.now();
    this.input.push(chunk);
    try {
      while (this.parseFrame()) {
        // keep parsing
      }
    } catch (err) {
      const code = err instanceof WebSocketError ? err.code : CloseCode.INTERNAL_ERROR;
      void this.close(code, err instanceof Error ? err.message : "");
    }
  }

  /** Parses one frame if complete; returns false when more bytes are needed. */
  private parseFrame(): boolean {
    if (this.closeSent && this.isClosed) return false;
    if (this.input.length < 2) return false;
    const h = this.input.peek(2);
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "reserved bits set");
    if ((b1 & 0x80) === 0) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "client frames must be masked");
    let len = b1 & 0x7f;
    let headerLen = 2;
    if (len === 126) {
      if (this.input.length < 4) return false;
      const e = this.input.peek(4);
      len = ((e[2] as number) << 8) | (e[3] as number);
      headerLen = 4;
    } else if (len === 127) {
      if (this.input.length < 10) return false;
      const e = this.input.peek(10);
      const big = new DataView(e.buffer, e.byteOffset, 10).getBigUint64(2);
      if (big >> 63n) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "invalid payload length");
      if (big > BigInt(this.maxMessageSize)) throw new WebSocketError(CloseCode.MESSAGE_TOO_BIG, "message too big");
      len = Number(big);
      headerLen = 10;
    }
    const isControl = (opcode & 0x08) !== 0;
    if (isControl && (!fin || len > 125)) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "invalid control frame");
    if (len > this.maxMessageSize) throw new WebSocketError(CloseCode.MESSAGE_TOO_BIG, "message too big");
    if (this.input.length < headerLen + 4 + len) return false;
    this.input.take(headerLen);
    const mask = this.input.take(4);
    const payload = this.input.take(len);
    for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number);
    this.onFrame(fin, opcode, payload);
    return true;
  }

  private onFrame(fin: boolean, opcode: number, payload: Uint8Array): void {
    switch (opcode) {
      case Opcode.CONTINUATION: {
        if (this.fragmentOpcode < 0) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame");
        this.addFragment(payload);
        if (fin) this.finishMessage(this.fragmentOpcode);
        return;
      }
      case Opcode.TEXT:
      case Opcode.BINARY: {
        if (this.fragmentOpcode >= 0) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "expected a continuation frame");
        this.fragmentOpcode = opcode;
        this.addFragment(payload);
        if (fin) this.finishMessage(opcode);
        return;
      }
      case Opcode.PING:
        if (!this.closeSent) void this.writeFrame(Opcode.PONG, payload).catch(() => undefined);
        return;
      case Opcode.PONG:
        this.emit("pong", payload);
        return;
      case Opcode.CLOSE:
        this.onClose(payload);
        return;
      default:
        throw new WebSocketError(CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
  }

  private addFragment(payload: Uint8Array): void {
    this.fragmentsSize += payload.length;
    if (this.fragmentsSize > this.maxMessageSize) throw new WebSocketError(CloseCode.MESSAGE_TOO_BIG, "message too big");
    this.fragments.push(payload);
  }

  private finishMessage(opcode: number): void {
    const data = this.fragments.length === 1 ? (this.fragments[0] as Uint8Array) : concat(this.fragments, this.fragmentsSize);
    this.fragments = [];
    this.fragmentsSize = 0;
    this.fragmentOpcode = -1;
    if (opcode === Opcode.TEXT) {
      try {
        fatalUtf8.decode(data);
      } catch {
        throw new WebSocketError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in text message");
      }
    }
    if (this.closeSent) return;
    this.messages.push({ data, binary: opcode === Opcode.BINARY });
    this.queuedBytes += data.length;
    if (!this.paused && this.queuedBytes >= 1 << 20) {
      this.paused = true;
      this.socket.pause();
    }
    this.wake();
  }

  private onClose(payload: Uint8Array): void {
    let code: number = 1005;
    let reason = "";
    if (payload.length === 1) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, "invalid close frame");
    if (payload.length >= 2) {
      code = ((payload[0] as number) << 8) | (payload[1] as number);
      const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
      if (!valid) throw new WebSocketError(CloseCode.PROTOCOL_ERROR, `invalid close code ${code}`);
      try {
        reason = fatalUtf8.decode(payload.subarray(2));
      } catch {
        throw new WebSocketError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in close reason");
      }
    }
    if (!this.closeSent) {
      // Echo the peer's code (section 5.5.1), then end the TCP connection.
      void this.close(code === 1005 ? CloseCode.NORMAL : code, "");
    }
    this.closeInfo = { code, reason };
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private terminate(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.socket.destroy();
    this.wake();
    this.emit("close", this.closeInfo);
    this.resolveClosed(this.closeInfo);
  }
}

class WebSocketError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "WebSocketError";
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
