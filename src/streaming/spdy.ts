// A SPDY/3.1 session over a byte stream: the socket of an HTTP connection after the server
// answered "101 Switching Protocols / Upgrade: SPDY/3.1". It multiplexes streams, compresses
// their headers with one zlib context per direction (spdy-frame.ts), applies per-stream and
// session flow control, answers PINGs and handles GOAWAY.
//
// Kubernetes clients speak SPDY through moby/spdystream, which ignores WINDOW_UPDATE and
// SETTINGS and never sends a WINDOW_UPDATE itself: it relies on TCP for backpressure. So:
//  - we always send WINDOW_UPDATEs as our consumers read (a peer that implements SPDY/3.1 flow
//    control needs them; spdystream ignores them), and a peer overrunning our window is not
//    reset: we pause reading the socket until the stream's backlog drains, which is TCP
//    backpressure again;
//  - we respect the peer's windows once it has shown that it implements flow control (sent
//    SETTINGS or a WINDOW_UPDATE). A peer that lets a window run dry without ever having sent
//    either is given legacyPeerGraceMs to do so; after that it is treated as a spdystream peer
//    and its windows are no longer enforced. peerFlowControl "enforce"/"ignore" pins either.
//
// The session works in both roles (server streams are even-numbered, client streams odd); the
// streaming server only uses the server role, the tests use both.

import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { ByteQueue } from "./byte-queue.ts";
import {
  decodeHeaderBlock,
  encodeDataFrame,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeStreamHeaders,
  encodeSynStream,
  encodeWindowUpdate,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  FrameType,
  GoAwayStatus,
  payloadWords,
  RstStatus,
  Setting,
  SPDY_VERSION,
  SpdyProtocolError,
  ZlibContext,
  type Frame,
  type SpdyHeaders,
} from "./spdy-frame.ts";

export { RstStatus, GoAwayStatus, type SpdyHeaders } from "./spdy-frame.ts";

/** The initial stream and session window of SPDY/3.1 (section 2.6.8). */
export const DEFAULT_WINDOW = 64 * 1024;
const MAX_WINDOW = 0x7fffffff;

export interface SpdySessionOptions {
  /** "server" (default): the peer opens odd-numbered streams. */
  role?: "server" | "client";
  /** Our receive window per stream; WINDOW_UPDATEs keep it open as data is consumed. */
  initialWindowSize?: number;
  /** See the file comment. Default "auto". */
  peerFlowControl?: "auto" | "enforce" | "ignore";
  /** How long "auto" waits for a first WINDOW_UPDATE before treating the peer as legacy. */
  legacyPeerGraceMs?: number;
  /** Close the session after this long without a frame in either direction; 0 = never. */
  idleTimeoutMs?: number;
  /** Largest DATA payload we send in one frame. */
  maxDataFrameSize?: number;
  /** Bytes the HTTP parser read past the upgrade response (node's `head`). */
  head?: Uint8Array;
}

export class SpdyStreamClosedError extends Error {
  constructor(message = "SPDY stream is closed") {
    super(message);
    this.name = "SpdyStreamClosedError";
  }
}

interface OutItem {
  bytes: Uint8Array | Promise<Uint8Array>;
  done: () => void;
  fail: (err: Error) => void;
}

/**
 * Events: "stream" (SpdyStream) for each stream the peer opens: accept() or reset() it;
 * "goaway" ({ lastGoodStreamId, status }); "close" (Error | undefined), once.
 */
export class SpdySession extends EventEmitter {
  readonly role: "server" | "client";
  readonly initialWindowSize: number;
  readonly maxDataFrameSize: number;
  /** Resolves when the session is closed (socket gone, all streams ended). */
  readonly closed: Promise<void>;

  private readonly socket: Duplex;
  private readonly parser = new FrameParser();
  private readonly inflater = ZlibContext.inflater();
  private readonly deflater = ZlibContext.deflater();
  private readonly streams = new Map<number, SpdyStream>();
  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private processing = false;
  private isClosed = false;
  private closing = false;
  private goAwaySent = false;
  private goAwayReceived = false;
  private resolveClosed!: () => void;

  // Flow control, sending side.
  private peerInitialWindow = DEFAULT_WINDOW;
  private sessionSendWindow = DEFAULT_WINDOW;
  private readonly peerFlowControl: "auto" | "enforce" | "ignore";
  private readonly legacyPeerGraceMs: number;
  private enforcing: boolean;
  private peerSpeaksFlowControl = false;
  private legacyTimer: ReturnType<typeof setTimeout> | undefined;
  private windowWaiters: Array<() => void> = [];
  // Flow control, receiving side: the session window is credited as DATA arrives, stream
  // windows as consumers read.
  private sessionUnacked = 0;
  private readonly overfull = new Set<SpdyStream>();

  private readonly out: OutItem[] = [];
  private pumping = false;
  private flushWaiters: Array<() => void> = [];

  private nextPingId: number;
  private readonly pings = new Map<number, { start: number; resolve: (ms: number) => void; reject: (e: Error) => void }>();

  private idleTimeoutMs = 0;
  private idleTimer: ReturnType<typeof setInterval> | undefined;
  private lastActivity = Date.now();

  constructor(socket: Duplex, options: SpdySessionOptions = {}) {
    super();
    this.socket = socket;
    this.role = options.role ?? "server";
    this.initialWindowSize = options.initialWindowSize ?? DEFAULT_WINDOW;
    this.maxDataFrameSize = options.maxDataFrameSize ?? 16 * 1024;
    this.peerFlowControl = options.peerFlowControl ?? "auto";
    this.legacyPeerGraceMs = options.legacyPeerGraceMs ?? 200;
    this.enforcing = this.peerFlowControl !== "ignore";
    this.nextStreamId = this.role === "server" ? 2 : 1;
    this.nextPingId = this.role === "server" ? 2 : 1;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));

    socket.on("data", (chunk: Uint8Array) => this.onSocketData(chunk));
    // The peer will send nothing more; what we queued still goes out before we close.
    socket.on("end", () => void this.flushed().then(() => this.terminate()));
    socket.on("close", () => this.terminate());
    socket.on("error", (err: Error) => this.terminate(err));
    if (options.head && options.head.length > 0) this.onSocketData(options.head);
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  /** Number of streams not yet fully closed. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Closes the session after `ms` without frames in either direction (0 disables). */
  setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    if (ms <= 0 || this.isClosed) return;
    this.lastActivity = Date.now();
    const tick = Math.max(10, Math.min(ms / 4, 1000));
    this.idleTimer = setInterval(() => {
      if (Date.now() - this.lastActivity >= this.idleTimeoutMs) {
        this.emit("idle");
        void this.close();
      }
    }, tick);
    this.idleTimer.unref?.();
  }

  /** Opens a stream. Await `stream.replied` for the peer's SYN_REPLY. */
  createStream(headers: Record<string, string | string[]>, options: { fin?: boolean } = {}): SpdyStream {
    if (this.isClosed || this.closing || this.goAwayReceived) throw new SpdyStreamClosedError("SPDY session is closing");
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, normalizeHeaders(headers), true, false, options.fin === true);
    this.streams.set(id, stream);
    const block = this.deflater.process(encodeHeaderBlock(headers));
    this.sendFrame(block.then((b) => encodeSynStream(id, options.fin ? FLAG_FIN : 0, b)));
    return stream;
  }

  /** Sends a PING and resolves with the round trip in milliseconds. */
  ping(): Promise<number> {
    if (this.isClosed) return Promise.reject(new SpdyStreamClosedError("SPDY session is closed"));
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 2) % 0x100000000 || (this.role === "server" ? 2 : 1);
    return new Promise((resolve, reject) => {
      this.pings.set(id, { start: performance.now(), resolve, reject });
      this.sendFrame(encodePing(id));
    });
  }

  /**
   * Graceful close: resets the streams still open, sends GOAWAY as the last frame (spdystream
   * stops reading at GOAWAY), flushes and ends the socket.
   */
  close(): Promise<void> {
    if (this.isClosed || this.closing) return this.closed;
    for (const stream of [...this.streams.values()]) stream.reset(RstStatus.CANCEL);
    this.sendGoAway(GoAwayStatus.OK);
    this.closing = true;
    void this.flushed().then(() => {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 5000);
      t.unref?.();
    });
    return this.closed;
  }

  /** Abrupt close: drops queued frames and destroys the socket. */
  destroy(err?: Error): void {
    this.terminate(err);
  }

  // ---- used by SpdyStream -------------------------------------------------------------------

  /**
   * @internal Queues a frame; resolves once it is handed to the socket. Nothing follows our
   * GOAWAY: it is the last frame of a session we close.
   */
  enqueue(bytes: Uint8Array | Promise<Uint8Array>, afterGoAway = false): Promise<void> {
    if (this.isClosed || (this.goAwaySent && !afterGoAway)) {
      return Promise.reject(new SpdyStreamClosedError("SPDY session is closed"));
    }
    return new Promise((done, fail) => {
      this.out.push({ bytes, done, fail });
      void this.pump();
    });
  }

  /** @internal Queues a frame nobody waits for. */
  sendFrame(bytes: Uint8Array | Promise<Uint8Array>): void {
    this.enqueue(bytes).catch(() => undefined);
  }

  /** @internal Compresses a header block in session order. */
  compressHeaders(headers: Record<string, string | string[]>): Promise<Uint8Array> {
    return this.deflater.process(encodeHeaderBlock(headers));
  }

  /** @internal Bytes a stream may send now. */
  allowance(stream: SpdyStream): number {
    if (!this.enforcing) return Infinity;
    return Math.min(stream.sendWindow, this.sessionSendWindow);
  }

  /** @internal Accounts for DATA sent on a stream. */
  consumeSendWindow(stream: SpdyStream, n: number): void {
    stream.sendWindow -= n;
    this.sessionSendWindow -= n;
  }

  /** @internal Waits for a WINDOW_UPDATE, a settings change, a close, or the legacy verdict. */
  waitForWindow(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    if (this.peerFlowControl === "auto" && this.enforcing && !this.peerSpeaksFlowControl && !this.legacyTimer) {
      this.legacyTimer = setTimeout(() => {
        if (this.peerSpeaksFlowControl) return;
        this.enforcing = false;
        this.emit("legacy-flow-control");
        this.wakeWindowWaiters();
      }, this.legacyPeerGraceMs);
      this.legacyTimer.unref?.();
    }
    return new Promise((resolve) => this.windowWaiters.push(resolve));
  }

  /** @internal */
  wakeWindowWaiters(): void {
    const waiters = this.windowWaiters;
    this.windowWaiters = [];
    for (const w of waiters) w();
  }

  /** @internal A stream's unread backlog passed (or fell back under) the limit. */
  setOverfull(stream: SpdyStream, over: boolean): void {
    if (over) {
      this.overfull.add(stream);
      this.socket.pause();
    } else if (this.overfull.delete(stream) && this.overfull.size === 0 && !this.isClosed) {
      this.socket.resume();
    }
  }

  /** @internal */
  forget(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.setOverfull(stream, false);
  }

  /** @internal */
  get sessionClosed(): boolean {
    return this.isClosed;
  }

  // ---- writing ------------------------------------------------------------------------------

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.out.length > 0) {
        const item = this.out.shift() as OutItem;
        let bytes: Uint8Array;
        try {
          bytes = await item.bytes;
        } catch (err) {
          item.fail(err as Error);
          this.protocolFailure(err);
          return;
        }
        if (this.isClosed) {
          item.fail(new SpdyStreamClosedError("SPDY session is closed"));
          continue;
        }
        this.lastActivity = Date.now();
        const ok = this.socket.write(bytes);
        item.done();
        if (!ok) await this.drained();
      }
    } finally {
      this.pumping = false;
    }
    if (this.out.length === 0) {
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const w of waiters) w();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  private flushed(): Promise<void> {
    if (this.out.length === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  private sendGoAway(status: number): void {
    if (this.goAwaySent) return;
    this.goAwaySent = true;
    this.enqueue(encodeGoAway(this.lastPeerStreamId, status), true).catch(() => undefined);
  }

  // ---- reading ------------------------------------------------------------------------------

  private onSocketData(chunk: Uint8Array): void {
    if (this.isClosed) return;
    this.lastActivity = Date.now();
    this.parser.push(chunk);
    if (!this.processing) void this.processFrames();
  }

  private async processFrames(): Promise<void> {
    this.processing = true;
    try {
      for (;;) {
        if (this.isClosed) return;
        const frame = this.parser.next();
        if (!frame) return;
        if (frame.kind === "data") this.onDataFrame(frame);
        else await this.onControlFrame(frame);
      }
    } catch (err) {
      this.protocolFailure(err);
    } finally {
      this.processing = false;
    }
  }

  private onDataFrame(frame: Extract<Frame, { kind: "data" }>): void {
    const n = frame.data.length;
    if (n > 0) {
      this.sessionUnacked += n;
      if (this.sessionUnacked >= DEFAULT_WINDOW / 2) {
        this.sendFrame(encodeWindowUpdate(0, this.sessionUnacked));
        this.sessionUnacked = 0;
      }
    }
    const stream = this.streams.get(frame.streamId);
    // DATA for a stream we already reset or closed is in flight: drop it, as spdystream does.
    if (!stream || stream.isReset) return;
    if (stream.remoteEnded) {
      stream.reset(RstStatus.STREAM_ALREADY_CLOSED);
      return;
    }
    stream.onData(frame.data, (frame.flags & FLAG_FIN) !== 0);
  }

  private async onControlFrame(frame: Extract<Frame, { kind: "control" }>): Promise<void> {
    if (frame.version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${frame.version}`);
    const p = frame.payload;
    switch (frame.type) {
      case FrameType.SYN_STREAM: {
        const [w0] = payloadWords(p, 2);
        if (p.length < 10) throw new SpdyProtocolError("SYN_STREAM too short");
        const headers = decodeHeaderBlock(await this.inflater.process(p.subarray(10)));
        this.onSynStream((w0 as number) & 0x7fffffff, frame.flags, headers);
        return;
      }
      case FrameType.SYN_REPLY:
      case FrameType.HEADERS: {
        const [w0] = payloadWords(p, 1);
        const headers = decodeHeaderBlock(await this.inflater.process(p.subarray(4)));
        const id = (w0 as number) & 0x7fffffff;
        const stream = this.streams.get(id);
        if (!stream) return;
        const fin = (frame.flags & FLAG_FIN) !== 0;
        if (frame.type === FrameType.SYN_REPLY) {
          if (!stream.outgoing || stream.isReplied) stream.reset(RstStatus.STREAM_IN_USE);
          else stream.onReply(headers, fin);
        } else {
          stream.onHeaders(headers, fin);
        }
        return;
      }
      case FrameType.RST_STREAM: {
        const [w0, status] = payloadWords(p, 2);
        this.streams.get((w0 as number) & 0x7fffffff)?.onReset(status as number);
        return;
      }
      case FrameType.SETTINGS:
        this.onSettings(p);
        return;
      case FrameType.PING: {
        const [id] = payloadWords(p, 1) as [number];
        const ours = (id & 1) === (this.role === "server" ? 0 : 1);
        if (!ours) {
          this.sendFrame(encodePing(id));
          return;
        }
        const pending = this.pings.get(id);
        if (pending) {
          this.pings.delete(id);
          pending.resolve(performance.now() - pending.start);
        }
        return;
      }
      case FrameType.GOAWAY: {
        const [lastGood] = payloadWords(p, 1) as [number];
        const status = p.length >= 8 ? (payloadWords(p, 2)[1] as number) : GoAwayStatus.OK;
        this.goAwayReceived = true;
        for (const stream of [...this.streams.values()]) {
          if (stream.outgoing && stream.id > (lastGood & 0x7fffffff)) stream.onReset(RstStatus.REFUSED_STREAM);
        }
        this.emit("goaway", { lastGoodStreamId: lastGood & 0x7fffffff, status });
        return;
      }
      case FrameType.WINDOW_UPDATE: {
        const [w0, w1] = payloadWords(p, 2) as [number, number];
        this.markPeerSpeaksFlowControl();
        const id = w0 & 0x7fffffff;
        const delta = w1 & 0x7fffffff;
        if (id === 0) {
          if (delta === 0 || this.sessionSendWindow + delta > MAX_WINDOW) throw new SpdyProtocolError("bad session WINDOW_UPDATE");
          this.sessionSendWindow += delta;
        } else {
          const stream = this.streams.get(id);
          if (!stream) return;
          if (delta === 0) stream.reset(RstStatus.PROTOCOL_ERROR);
          else if (stream.sendWindow + delta > MAX_WINDOW) stream.reset(RstStatus.FLOW_CONTROL_ERROR);
          else stream.sendWindow += delta;
        }
        this.wakeWindowWaiters();
        return;
      }
      default:
        // Unknown control frames must be ignored (section 2.2.1); CREDENTIAL is gone in 3.1.
        return;
    }
  }

  private onSynStream(id: number, flags: number, headers: SpdyHeaders): void {
    if (id === 0) throw new SpdyProtocolError("SYN_STREAM for stream 0");
    const peerParity = this.role === "server" ? 1 : 0;
    if ((id & 1) !== peerParity || id <= this.lastPeerStreamId || this.streams.has(id)) {
      this.sendFrame(encodeRstStream(id, RstStatus.PROTOCOL_ERROR));
      return;
    }
    this.lastPeerStreamId = id;
    if (this.goAwaySent || this.closing || this.listenerCount("stream") === 0) {
      this.sendFrame(encodeRstStream(id, RstStatus.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this, id, headers, false, (flags & FLAG_FIN) !== 0, (flags & FLAG_UNIDIRECTIONAL) !== 0);
    this.streams.set(id, stream);
    this.emit("stream", stream);
  }

  private onSettings(p: Uint8Array): void {
    const [count] = payloadWords(p, 1) as [number];
    const words = payloadWords(p, 1 + count * 2);
    for (let i = 0; i < count; i++) {
      const id = (words[1 + i * 2] as number) & 0xffffff;
      const value = words[2 + i * 2] as number;
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new SpdyProtocolError("INITIAL_WINDOW_SIZE too large");
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
        this.markPeerSpeaksFlowControl();
      }
    }
    this.wakeWindowWaiters();
  }

  private markPeerSpeaksFlowControl(): void {
    if (this.peerSpeaksFlowControl) return;
    this.peerSpeaksFlowControl = true;
    if (this.peerFlowControl !== "ignore") this.enforcing = true;
    if (this.legacyTimer) clearTimeout(this.legacyTimer);
  }

  /** @internal The window new streams start with for sending. */
  get peerStreamWindow(): number {
    return this.peerInitialWindow;
  }

  private protocolFailure(err: unknown): void {
    if (this.isClosed) return;
    if (err instanceof SpdyProtocolError) {
      // The zlib contexts may be out of step now: no further frame can be trusted.
      this.sendGoAway(GoAwayStatus.PROTOCOL_ERROR);
      this.closing = true;
      void this.flushed().then(() => this.terminate(err));
      return;
    }
    this.terminate(err instanceof Error ? err : new Error(String(err)));
  }

  private terminate(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    if (this.legacyTimer) clearTimeout(this.legacyTimer);
    for (const item of this.out.splice(0)) item.fail(new SpdyStreamClosedError("SPDY session is closed"));
    for (const stream of [...this.streams.values()]) stream.onSessionClosed();
    this.streams.clear();
    for (const ping of this.pings.values()) ping.reject(new SpdyStreamClosedError("SPDY session is closed"));
    this.pings.clear();
    this.wakeWindowWaiters();
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w();
    this.inflater.close();
    this.deflater.close();
    this.socket.destroy();
    this.emit("close", err);
    this.resolveClosed();
  }
}

/**
 * One SPDY stream. Inbound data is read with read() or async iteration (ending at the peer's
 * FIN, a reset or the session's end); write() and end() send, honouring flow control.
 * Events: "end" (peer half-closed), "reset" (status), "close" (fully closed, once).
 */
export class SpdyStream extends EventEmitter implements AsyncIterable<Uint8Array> {
  readonly id: number;
  /** The headers the stream was opened with, later HEADERS frames merged in. */
  readonly headers: SpdyHeaders;
  /** True for streams this side opened. */
  readonly outgoing: boolean;
  /** Resolves with the SYN_REPLY headers of an outgoing stream; rejects on reset. */
  readonly replied: Promise<SpdyHeaders>;
  /** @internal */
  sendWindow: number;

  private readonly session: SpdySession;
  private readonly inbound: ByteQueue;
  private recvUnacked = 0;
  private replyState: "none" | "sent" | "received" = "none";
  private localEnded: boolean;
  private remoteEndedFlag: boolean;
  private resetFlag = false;
  private closedFlag = false;
  private writeChain: Promise<void>;
  private resolveReply!: (h: SpdyHeaders) => void;
  private rejectReply!: (e: Error) => void;
  private resolveAccept: (() => void) | undefined;

  /** @internal */
  constructor(
    session: SpdySession,
    id: number,
    headers: SpdyHeaders,
    outgoing: boolean,
    remoteEnded: boolean,
    localEnded: boolean,
  ) {
    super();
    this.session = session;
    this.id = id;
    this.headers = headers;
    this.outgoing = outgoing;
    this.localEnded = localEnded;
    this.remoteEndedFlag = remoteEnded;
    this.sendWindow = session.peerStreamWindow;
    this.inbound = new ByteQueue((n) => this.onConsumed(n));
    if (remoteEnded) this.inbound.end();
    this.replied = new Promise<SpdyHeaders>((resolve, reject) => {
      this.resolveReply = resolve;
      this.rejectReply = reject;
    });
    this.replied.catch(() => undefined);
    // An incoming stream may not carry DATA before our SYN_REPLY: writes wait for accept().
    this.writeChain = outgoing ? Promise.resolve() : new Promise((resolve) => (this.resolveAccept = resolve));
  }

  /** The first value of a header (names are case-insensitive). */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  get remoteEnded(): boolean {
    return this.remoteEndedFlag;
  }

  get isReset(): boolean {
    return this.resetFlag;
  }

  get isReplied(): boolean {
    return this.replyState === "received";
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.inbound.buffered;
  }

  /** Accepts an incoming stream: sends SYN_REPLY. Resolves once the frame is on the socket. */
  async accept(headers: Record<string, string | string[]> = {}, options: { fin?: boolean } = {}): Promise<void> {
    if (this.outgoing || this.replyState !== "none") throw new Error("stream already answered");
    if (this.resetFlag || this.session.sessionClosed) throw new SpdyStreamClosedError();
    this.replyState = "sent";
    const fin = options.fin === true && !this.localEnded;
    const block = this.session.compressHeaders(headers);
    const sent = this.session.enqueue(block.then((b) => encodeStreamHeaders(FrameType.SYN_REPLY, this.id, fin ? FLAG_FIN : 0, b)));
    if (fin) this.localEnded = true;
    this.resolveAccept?.();
    await sent;
    this.maybeClosed();
  }

  /** Sends a HEADERS frame. */
  async sendHeaders(headers: Record<string, string | string[]>, options: { fin?: boolean } = {}): Promise<void> {
    const run = this.writeChain.then(async () => {
      this.assertWritable();
      const block = this.session.compressHeaders(headers);
      if (options.fin) this.localEnded = true;
      await this.session.enqueue(block.then((b) => encodeStreamHeaders(FrameType.HEADERS, this.id, options.fin ? FLAG_FIN : 0, b)));
      this.maybeClosed();
    });
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  read(): Promise<Uint8Array | null> {
    return this.inbound.read();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.inbound[Symbol.asyncIterator]();
  }

  /** Reads and drops everything the peer sends (for streams we only write to). */
  async discardInbound(): Promise<void> {
    while ((await this.inbound.read()) !== null) {
      // dropped; consuming still sends WINDOW_UPDATEs
    }
  }

  /**
   * Sends data, split into DATA frames within the peer's windows. Resolves when the last frame
   * is handed to the socket; rejects if the stream or session closes first.
   */
  write(data: Uint8Array): Promise<void> {
    const run = this.writeChain.then(() => this.writeNow(data));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /** Half-closes our side (DATA with FLAG_FIN) after pending writes. */
  end(): Promise<void> {
    const run = this.writeChain.then(async () => {
      if (this.localEnded || this.resetFlag || this.session.sessionClosed) return;
      this.localEnded = true;
      await this.session.enqueue(encodeDataFrame(this.id, FLAG_FIN, new Uint8Array(0)));
      this.maybeClosed();
    });
    this.writeChain = run.catch(() => undefined);
    return run.catch(() => undefined);
  }

  /** Aborts the stream in both directions (RST_STREAM). */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.resetFlag || this.closedFlag || this.session.sessionClosed) return;
    this.resetFlag = true;
    this.session.sendFrame(encodeRstStream(this.id, status));
    this.teardown();
  }

  private async writeNow(data: Uint8Array): Promise<void> {
    let off = 0;
    let last: Promise<void> | undefined;
    while (off < data.length) {
      this.assertWritable();
      const allowance = this.session.allowance(this);
      if (allowance <= 0) {
        await this.session.waitForWindow();
        continue;
      }
      const n = Math.min(allowance, data.length - off, this.session.maxDataFrameSize);
      this.session.consumeSendWindow(this, n);
      last?.catch(() => undefined);
      last = this.session.enqueue(encodeDataFrame(this.id, 0, data.subarray(off, off + n)));
      off += n;
    }
    await last;
  }

  private assertWritable(): void {
    if (this.resetFlag) throw new SpdyStreamClosedError("SPDY stream was reset");
    if (this.localEnded) throw new SpdyStreamClosedError("SPDY stream is half-closed");
    if (this.session.sessionClosed) throw new SpdyStreamClosedError("SPDY session is closed");
  }

  // ---- driven by the session -----------------------------------------------------------------

  /** @internal */
  onData(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.inbound.push(data);
      if (this.inbound.buffered > this.session.initialWindowSize) this.session.setOverfull(this, true);
    }
    if (fin) this.onRemoteEnd();
  }

  /** @internal */
  onReply(headers: SpdyHeaders, fin: boolean): void {
    this.replyState = "received";
    for (const [k, v] of Object.entries(headers)) (this.headers[k] ??= []).push(...v);
    this.resolveReply(headers);
    if (fin) this.onRemoteEnd();
  }

  /** @internal */
  onHeaders(headers: SpdyHeaders, fin: boolean): void {
    for (const [k, v] of Object.entries(headers)) (this.headers[k] ??= []).push(...v);
    this.emit("headers", headers);
    if (fin) this.onRemoteEnd();
  }

  /** @internal */
  onReset(status: number): void {
    if (this.resetFlag || this.closedFlag) return;
    this.resetFlag = true;
    this.emit("reset", status);
    this.teardown();
  }

  /** @internal */
  onSessionClosed(): void {
    if (this.closedFlag) return;
    this.resetFlag = true;
    this.teardown();
  }

  private onRemoteEnd(): void {
    if (this.remoteEndedFlag) return;
    this.remoteEndedFlag = true;
    this.inbound.end();
    this.emit("end");
    this.maybeClosed();
  }

  private onConsumed(n: number): void {
    if (this.inbound.buffered <= this.session.initialWindowSize) this.session.setOverfull(this, false);
    if (this.remoteEndedFlag || this.resetFlag) return;
    this.recvUnacked += n;
    if (this.recvUnacked >= this.session.initialWindowSize / 2) {
      this.session.sendFrame(encodeWindowUpdate(this.id, this.recvUnacked));
      this.recvUnacked = 0;
    }
  }

  private maybeClosed(): void {
    if (this.localEnded && this.remoteEndedFlag && !this.closedFlag) {
      this.closedFlag = true;
      this.session.forget(this);
      this.emit("close");
    }
  }

  private teardown(): void {
    this.inbound.end();
    this.rejectReply(new SpdyStreamClosedError("SPDY stream was reset"));
    this.resolveAccept?.();
    this.session.forget(this);
    this.session.wakeWindowWaiters();
    if (!this.closedFlag) {
      this.closedFlag = true;
      this.emit("close");
    }
  }
}

function normalizeHeaders(headers: Record<string, string | string[]>): SpdyHeaders {
  const out: SpdyHeaders = {};
  for (const [k, v] of Object.entries(headers)) (out[k.toLowerCase()] ??= []).push(...(Array.isArray(v) ? v : [v]));
  return out;
}
