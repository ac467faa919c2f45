// SPDY/3.1 framing: frame layouts, a streaming frame parser, name/value header blocks and the
// per-connection zlib contexts that compress them. Pure codec; the session logic (streams, flow
// control, PING/GOAWAY) is in spdy.ts.
//
// Frame layouts follow SPDY Protocol Draft 3 section 2.2 (control frames carry a version of 3;
// draft 3.1 only adds session-level flow control: WINDOW_UPDATE on stream 0).

import { ChunkBuffer } from "./chunk-buffer.ts";
import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./spdy-dictionary.ts";

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS frames. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver must not send on the stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const Setting = { MAX_CONCURRENT_STREAMS: 4, INITIAL_WINDOW_SIZE: 7 } as const;

/** Largest payload a frame's 24-bit length field can describe. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

export type Frame =
  | { kind: "data"; streamId: number; flags: number; data: Uint8Array }
  | { kind: "control"; version: number; type: number; flags: number; payload: Uint8Array };

/** Header names are lowercase on the wire; a name may carry several values. */
export type SpdyHeaders = Record<string, string[]>;

// ---------------------------------------------------------------------------------------------
// Serialising

function frameHeader(buf: Uint8Array, first: number, flags: number, length: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset, 8);
  view.setUint32(0, first >>> 0);
  view.setUint32(4, ((flags & 0xff) << 24 | (length & 0xffffff)) >>> 0);
}

export function encodeDataFrame(streamId: number, flags: number, data: Uint8Array): Uint8Array {
  if (data.length > MAX_FRAME_PAYLOAD) throw new RangeError("DATA frame payload too large");
  const out = new Uint8Array(8 + data.length);
  frameHeader(out, streamId & 0x7fffffff, flags, data.length);
  out.set(data, 8);
  return out;
}

export function encodeControlFrame(type: number, flags: number, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError("control frame payload too large");
  const out = new Uint8Array(8 + payload.length);
  frameHeader(out, (0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, flags, payload.length);
  out.set(payload, 8);
  return out;
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v >>> 0));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** SYN_STREAM payload: stream id, associated stream id, priority (3 bits), slot, headers. */
export function encodeSynStream(
  streamId: number,
  flags: number,
  compressedHeaders: Uint8Array,
  priority = 0,
  associatedId = 0,
): Uint8Array {
  const fixed = new Uint8Array(10);
  const view = new DataView(fixed.buffer);
  view.setUint32(0, streamId & 0x7fffffff);
  view.setUint32(4, associatedId & 0x7fffffff);
  fixed[8] = (priority & 0x07) << 5;
  fixed[9] = 0; // slot: unused since 3.1
  return encodeControlFrame(FrameType.SYN_STREAM, flags, concat([fixed, compressedHeaders]));
}

/** SYN_REPLY and HEADERS share a layout: stream id, then the header block. */
export function encodeStreamHeaders(
  type: typeof FrameType.SYN_REPLY | typeof FrameType.HEADERS,
  streamId: number,
  flags: number,
  compressedHeaders: Uint8Array,
): Uint8Array {
  return encodeControlFrame(type, flags, concat([u32s(streamId & 0x7fffffff), compressedHeaders]));
}

export function encodeRstStream(streamId: number, status: number): Uint8Array {
  return encodeControlFrame(FrameType.RST_STREAM, 0, u32s(streamId & 0x7fffffff, status));
}

export function encodeSettings(entries: Array<{ id: number; value: number; flags?: number }>): Uint8Array {
  const words = [entries.length];
  for (const e of entries) words.push(((e.flags ?? 0) << 24 | (e.id & 0xffffff)) >>> 0, e.value);
  return encodeControlFrame(FrameType.SETTINGS, 0, u32s(...words));
}

export function encodePing(id: number): Uint8Array {
  return encodeControlFrame(FrameType.PING, 0, u32s(id));
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Uint8Array {
  return encodeControlFrame(FrameType.GOAWAY, 0, u32s(lastGoodStreamId & 0x7fffffff, status));
}

export function encodeWindowUpdate(streamId: number, delta: number): Uint8Array {
  return encodeControlFrame(FrameType.WINDOW_UPDATE, 0, u32s(streamId & 0x7fffffff, delta & 0x7fffffff));
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Splits a byte stream into frames. push() appends received bytes; next() returns the next
 * complete frame or undefined when more bytes are needed. Payloads are copies, so the caller may
 * keep them.
 */
export class FrameParser {
  private readonly input = new ChunkBuffer();

  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  get buffered(): number {
    return this.input.length;
  }

  push(chunk: Uint8Array): void {
    this.input.push(chunk);
  }

  next(): Frame | undefined {
    if (this.input.length < 8) return undefined;
    const head = this.input.peek(8);
    const view = new DataView(head.buffer, head.byteOffset, 8);
    const first = view.getUint32(0);
    const second = view.getUint32(4);
    const flags = second >>> 24;
    const length = second & 0xffffff;
    if (length > this.maxPayload) throw new SpdyProtocolError(`frame of ${length} bytes exceeds the limit`);
    if (this.input.length < 8 + length) return undefined;
    this.input.take(8);
    const payload = this.input.take(length);
    if (first & 0x80000000) {
      return { kind: "control", version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, payload };
    }
    return { kind: "data", streamId: first & 0x7fffffff, flags, data: payload };
  }
}

/** A violation of the SPDY framing rules; the session answers with GOAWAY(PROTOCOL_ERROR). */
export class SpdyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpdyProtocolError";
  }
}

/** Reads the big-endian 32-bit words at the start of a control frame payload. */
export function payloadWords(payload: Uint8Array, count: number): number[] {
  if (payload.length < count * 4) throw new SpdyProtocolError("control frame too short");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(view.getUint32(i * 4));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header blocks (section 2.6.10): a 32-bit pair count, then for each pair a 32-bit name length,
// the name, a 32-bit value length and the value; several values of one name are joined by NUL.

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function encodeHeaderBlock(headers: Record<string, string | string[]>): Uint8Array {
  const parts: Uint8Array[] = [];
  const names = Object.keys(headers);
  parts.push(u32s(names.length));
  for (const name of names) {
    const raw = headers[name] as string | string[];
    const value = Array.isArray(raw) ? raw.join("\0") : raw;
    const n = utf8.encode(name.toLowerCase());
    const v = utf8.encode(value);
    parts.push(u32s(n.length), n, u32s(v.length), v);
  }
  return concat(parts);
}

export function decodeHeaderBlock(block: Uint8Array): SpdyHeaders {
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  let off = 0;
  const need = (n: number): void => {
    if (off + n > block.length) throw new SpdyProtocolError("truncated header block");
  };
  need(4);
  const count = view.getUint32(off);
  off += 4;
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    need(4);
    const nameLen = view.getUint32(off);
    off += 4;
    need(nameLen);
    // Names must be lowercase on the wire; accept others the way Go's framer reads them.
    const name = utf8Decoder.decode(block.subarray(off, off + nameLen)).toLowerCase();
    off += nameLen;
    if (name === "") throw new SpdyProtocolError("empty header name");
    need(4);
    const valueLen = view.getUint32(off);
    off += 4;
    need(valueLen);
    const value = utf8Decoder.decode(block.subarray(off, off + valueLen));
    off += valueLen;
    (headers[name] ??= []).push(...value.split("\0"));
  }
  return headers;
}

/**
 * One direction's zlib context. SPDY keeps a single compression stream per direction for the
 * whole session, primed with SPDY3_DICTIONARY, and ends every header block with a sync flush so
 * that the peer can decode it without later bytes. node:zlib streams are asynchronous, so calls
 * are serialised here; each resolves with exactly the output of its own input.
 */
export class ZlibContext {
  private readonly stream: zlib.Inflate | zlib.Deflate;
  private output: Buffer[] = [];
  private outputSize = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private rejectCurrent: ((err: Error) => void) | undefined;

  private constructor(stream: zlib.Inflate | zlib.Deflate, private readonly maxOutput: number) {
    this.stream = stream;
    stream.on("data", (chunk: Buffer) => {
      this.output.push(chunk);
      this.outputSize += chunk.length;
      if (this.outputSize > this.maxOutput) this.fail(new SpdyProtocolError("header block too large"));
    });
    stream.on("error", (err: Error) => this.fail(new SpdyProtocolError(`header block: ${err.message}`)));
  }

  static deflater(): ZlibContext {
    return new ZlibContext(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 }), Infinity);
  }

  static inflater(maxOutput = 1 << 20): ZlibContext {
    return new ZlibContext(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }), maxOutput);
  }

  process(input: Uint8Array): Promise<Uint8Array> {
    const run = this.chain.then(
      () =>
        new Promise<Uint8Array>((resolve, reject) => {
          if (this.failure) return reject(this.failure);
          this.output = [];
          this.outputSize = 0;
          this.rejectCurrent = reject;
          this.stream.write(input);
          this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            this.rejectCurrent = undefined;
            if (this.failure) return reject(this.failure);
            resolve(new Uint8Array(Buffer.concat(this.output)));
          });
        }),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.stream.destroy();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectCurrent?.(err);
    this.stream.destroy();
  }
}
