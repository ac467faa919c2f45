// A minimal D-Bus client: enough of the wire protocol to drive systemd's Manager interface
// (StartTransientUnit, StopUnit, ...) and to serve a fake systemd in tests.
//
// Wire format (D-Bus specification, "Message Protocol"): every message is a 16-byte fixed header
// (endianness, type, flags, version 1, body length, serial), an array of header fields `a(yv)`,
// padding to 8, then the body marshalled per the SIGNATURE header field. Values align to their
// natural size measured from the start of the message; the body starts 8-aligned, so marshalling
// it from offset 0 gives the same padding. Authentication is the line-based SASL exchange that
// precedes the binary stream: `\0AUTH EXTERNAL <uid as hex of its ASCII digits>\r\n`, `OK <guid>`,
// `BEGIN`.
import { createConnection, type Socket } from "node:net";

// ---------------------------------------------------------------------------------------------
// Values

/** A D-Bus variant: a value together with its (single complete type) signature. */
export class Variant<T extends DBusValue = DBusValue> {
  readonly signature: string;
  readonly value: T;
  constructor(signature: string, value: T) {
    this.signature = signature;
    this.value = value;
  }
}

/**
 * JS representation of D-Bus values: integers as number (64-bit ones as bigint, numbers accepted
 * when marshalling), `b` as boolean, `s`/`o`/`g` as string, `ay` as Uint8Array (number[] accepted),
 * arrays as arrays, structs and dict entries as arrays of their fields, `v` as Variant.
 */
export type DBusValue = number | bigint | boolean | string | Uint8Array | Variant | DBusValue[];

type TypeNode =
  | { kind: "basic"; code: string }
  | { kind: "array"; elem: TypeNode }
  | { kind: "struct"; fields: TypeNode[] }
  | { kind: "dict"; key: TypeNode; value: TypeNode }
  | { kind: "variant" };

const BASIC = "ybnqiuxtdsogh";
const ALIGN: Record<string, number> = {
  y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, x: 8, t: 8, d: 8, s: 4, o: 4, g: 1, h: 4, a: 4, "(": 8, "{": 8, v: 1,
};

export class DBusProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DBusProtocolError";
  }
}

/** Parses a signature into complete types; throws on a malformed one. */
export function parseSignature(sig: string): TypeNode[] {
  if (sig.length > 255) throw new DBusProtocolError(`signature longer than 255: ${sig}`);
  let i = 0;
  const one = (depth: number): TypeNode => {
    if (depth > 64) throw new DBusProtocolError(`signature nests too deep: ${sig}`);
    const c = sig[i++];
    if (c === undefined) throw new DBusProtocolError(`truncated signature: ${sig}`);
    if (BASIC.includes(c)) return { kind: "basic", code: c };
    if (c === "v") return { kind: "variant" };
    if (c === "a") {
      if (sig[i] === "{") {
        i++;
        const key = one(depth + 1);
        if (key.kind !== "basic") throw new DBusProtocolError(`dict key must be basic: ${sig}`);
        const value = one(depth + 1);
        if (sig[i++] !== "}") throw new DBusProtocolError(`unterminated dict entry: ${sig}`);
        return { kind: "dict", key, value };
      }
      return { kind: "array", elem: one(depth + 1) };
    }
    if (c === "(") {
      const fields: TypeNode[] = [];
      while (sig[i] !== ")") {
        if (i >= sig.length) throw new DBusProtocolError(`unterminated struct: ${sig}`);
        fields.push(one(depth + 1));
      }
      i++;
      if (fields.length === 0) throw new DBusProtocolError(`empty struct: ${sig}`);
      return { kind: "struct", fields };
    }
    throw new DBusProtocolError(`invalid type code '${c}' in signature: ${sig}`);
  };
  const out: TypeNode[] = [];
  while (i < sig.length) out.push(one(0));
  return out;
}

function alignOf(t: TypeNode): number {
  switch (t.kind) {
    case "basic": return ALIGN[t.code] ?? 1;
    case "array": return 4;
    case "struct": case "dict": return 8;
    case "variant": return 1;
  }
}

const OBJECT_PATH = /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  len = 0;
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.reserve(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.len, v); this.len += 1; }
  i16(v: number): void { this.align(2); this.reserve(2); this.view.setInt16(this.len, v, true); this.len += 2; }
  u16(v: number): void { this.align(2); this.reserve(2); this.view.setUint16(this.len, v, true); this.len += 2; }
  i32(v: number): void { this.align(4); this.reserve(4); this.view.setInt32(this.len, v, true); this.len += 4; }
  u32(v: number): void { this.align(4); this.reserve(4); this.view.setUint32(this.len, v, true); this.len += 4; }
  i64(v: bigint): void { this.align(8); this.reserve(8); this.view.setBigInt64(this.len, v, true); this.len += 8; }
  u64(v: bigint): void { this.align(8); this.reserve(8); this.view.setBigUint64(this.len, v, true); this.len += 8; }
  f64(v: number): void { this.align(8); this.reserve(8); this.view.setFloat64(this.len, v, true); this.len += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.len); this.len += b.length; }
  patchU32(at: number, v: number): void { this.view.setUint32(at, v, true); }
  result(): Uint8Array { return this.buf.slice(0, this.len); }
}

function fail(what: string, v: unknown): never {
  throw new DBusProtocolError(`cannot marshal ${typeof v === "bigint" ? `${v}n` : JSON.stringify(v)} as ${what}`);
}

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi) return v;
  return fail(what, v);
}

function big(v: unknown, lo: bigint, hi: bigint, what: string): bigint {
  const b = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : fail(what, v);
  if (b < lo || b > hi) fail(what, v);
  return b;
}

function str(v: unknown, what: string): Uint8Array {
  if (typeof v !== "string" || v.includes("\0")) fail(what, v);
  return enc.encode(v);
}

function writeValue(w: Writer, t: TypeNode, v: unknown): void {
  switch (t.kind) {
    case "basic":
      switch (t.code) {
        case "y": w.u8(intIn(v, 0, 0xff, "byte")); return;
        case "b": if (typeof v !== "boolean") fail("boolean", v); w.u32(v ? 1 : 0); return;
        case "n": w.i16(intIn(v, -0x8000, 0x7fff, "int16")); return;
        case "q": w.u16(intIn(v, 0, 0xffff, "uint16")); return;
        case "i": w.i32(intIn(v, -0x80000000, 0x7fffffff, "int32")); return;
        case "u": w.u32(intIn(v, 0, 0xffffffff, "uint32")); return;
        case "h": w.u32(intIn(v, 0, 0xffffffff, "unix fd index")); return;
        case "x": w.i64(big(v, -(1n << 63n), (1n << 63n) - 1n, "int64")); return;
        case "t": w.u64(big(v, 0n, (1n << 64n) - 1n, "uint64")); return;
        case "d": if (typeof v !== "number") fail("double", v); w.f64(v); return;
        case "s": case "o": {
          if (t.code === "o" && (typeof v !== "string" || !OBJECT_PATH.test(v))) fail("object path", v);
          const b = str(v, "string");
          w.u32(b.length);
          w.bytes(b);
          w.u8(0);
          return;
        }
        case "g": {
          if (typeof v !== "string") fail("signature", v);
          parseSignature(v);
          const b = str(v, "signature");
          w.u8(b.length);
          w.bytes(b);
          w.u8(0);
          return;
        }
      }
      return fail(`type ${t.code}`, v);
    case "variant": {
      if (!(v instanceof Variant)) fail("variant (use new Variant(signature, value))", v);
      const inner = parseSignature(v.signature);
      if (inner.length !== 1 || inner[0] === undefined) fail("variant of one complete type", v.signature);
      writeValue(w, { kind: "basic", code: "g" }, v.signature);
      writeValue(w, inner[0], v.value);
      return;
    }
    case "array": {
      const items: unknown[] =
        v instanceof Uint8Array ? Array.from(v) : Array.isArray(v) ? v : fail("array", v);
      w.u32(0);
      const lenAt = w.len - 4;
      w.align(alignOf(t.elem)); // padding to the first element is written even for an empty array
      const start = w.len;
      for (const item of items) writeValue(w, t.elem, item);
      const n = w.len - start;
      if (n > 64 * 1024 * 1024) throw new DBusProtocolError("array longer than 64 MiB");
      w.patchU32(lenAt, n);
      return;
    }
    case "dict": {
      const entries: unknown[] = v instanceof Map ? [...v.entries()] : Array.isArray(v) ? v : fail("dict", v);
      w.u32(0);
      const lenAt = w.len - 4;
      w.align(8);
      const start = w.len;
      for (const e of entries) {
        if (!Array.isArray(e) || e.length !== 2) fail("dict entry [key, value]", e);
        w.align(8);
        writeValue(w, t.key, e[0]);
        writeValue(w, t.value, e[1]);
      }
      w.patchU32(lenAt, w.len - start);
      return;
    }
    case "struct": {
      if (!Array.isArray(v) || v.length !== t.fields.length) fail(`struct of ${t.fields.length} fields`, v);
      w.align(8);
      t.fields.forEach((f, k) => writeValue(w, f, v[k]));
      return;
    }
  }
}

/** Marshals `values` per `signature` as a body (starting 8-aligned). Exported for tests. */
export function marshal(signature: string, values: readonly unknown[]): Uint8Array {
  const types = parseSignature(signature);
  if (types.length !== values.length) {
    throw new DBusProtocolError(`signature ${signature} has ${types.length} types, got ${values.length} values`);
  }
  const w = new Writer();
  types.forEach((t, k) => writeValue(w, t, values[k]));
  return w.result();
}

class Reader {
  pos: number;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array, private readonly le: boolean, start = 0) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DBusProtocolError("message truncated");
  }
  align(n: number): void {
    const pad = (n - (this.pos % n)) % n;
    this.need(pad);
    for (let k = 0; k < pad; k++) {
      if (this.buf[this.pos + k] !== 0) throw new DBusProtocolError("non-zero padding");
    }
    this.pos += pad;
  }
  u8(): number { this.need(1); return this.view.getUint8(this.pos++); }
  i16(): number { this.align(2); this.need(2); const v = this.view.getInt16(this.pos, this.le); this.pos += 2; return v; }
  u16(): number { this.align(2); this.need(2); const v = this.view.getUint16(this.pos, this.le); this.pos += 2; return v; }
  i32(): number { this.align(4); this.need(4); const v = this.view.getInt32(this.pos, this.le); this.pos += 4; return v; }
  u32(): number { this.align(4); this.need(4); const v = this.view.getUint32(this.pos, this.le); this.pos += 4; return v; }
  i64(): bigint { this.align(8); this.need(8); const v = this.view.getBigInt64(this.pos, this.le); this.pos += 8; return v; }
  u64(): bigint { this.align(8); this.need(8); const v = this.view.getBigUint64(this.pos, this.le); this.pos += 8; return v; }
  f64(): number { this.align(8); this.need(8); const v = this.view.getFloat64(this.pos, this.le); this.pos += 8; return v; }
  bytes(n: number): Uint8Array { this.need(n); const b = this.buf.slice(this.pos, this.pos + n); this.pos += n; return b; }
}

function readValue(r: Reader, t: TypeNode, depth = 0): DBusValue {
  if (depth > 64) throw new DBusProtocolError("value nests too deep");
  switch (t.kind) {
    case "basic":
      switch (t.code) {
        case "y": return r.u8();
        case "b": {
          const v = r.u32();
          if (v > 1) throw new DBusProtocolError(`boolean value ${v}`);
          return v === 1;
        }
        case "n": return r.i16();
        case "q": return r.u16();
        case "i": return r.i32();
        case "u": case "h": return r.u32();
        case "x": return r.i64();
        case "t": return r.u64();
        case "d": return r.f64();
        case "s": case "o": {
          const n = r.u32();
          const s = dec.decode(r.bytes(n));
          if (r.u8() !== 0) throw new DBusProtocolError("string not NUL-terminated");
          if (t.code === "o" && !OBJECT_PATH.test(s)) throw new DBusProtocolError(`invalid object path ${s}`);
          return s;
        }
        case "g": {
          const n = r.u8();
          const s = dec.decode(r.bytes(n));
          if (r.u8() !== 0) throw new DBusProtocolError("signature not NUL-terminated");
          parseSignature(s);
          return s;
        }
      }
      throw new DBusProtocolError(`type ${t.code}`);
    case "variant": {
      const sig = readValue(r, { kind: "basic", code: "g" }) as string;
      const inner = parseSignature(sig);
      if (inner.length !== 1 || inner[0] === undefined) throw new DBusProtocolError(`variant signature ${sig}`);
      return new Variant(sig, readValue(r, inner[0], depth + 1));
    }
    case "array": case "dict": {
      const n = r.u32();
      if (n > 64 * 1024 * 1024) throw new DBusProtocolError("array longer than 64 MiB");
      r.align(t.kind === "dict" ? 8 : alignOf(t.elem));
      const end = r.pos + n;
      if (t.kind === "array" && t.elem.kind === "basic" && t.elem.code === "y") return r.bytes(n);
      const out: DBusValue[] = [];
      while (r.pos < end) {
        if (t.kind === "dict") {
          r.align(8);
          out.push([readValue(r, t.key, depth + 1), readValue(r, t.value, depth + 1)]);
        } else {
          out.push(readValue(r, t.elem, depth + 1));
        }
      }
      if (r.pos !== end) throw new DBusProtocolError("array length does not match its elements");
      return out;
    }
    case "struct": {
      r.align(8);
      return t.fields.map((f) => readValue(r, f, depth + 1));
    }
  }
}

/** Unmarshals a body (little-endian unless told). Exported for tests. */
export function unmarshal(signature: string, body: Uint8Array, littleEndian = true): DBusValue[] {
  const r = new Reader(body, littleEndian);
  const out = parseSignature(signature).map((t) => readValue(r, t));
  if (r.pos !== body.length) throw new DBusProtocolError(`${body.length - r.pos} bytes after the body`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Messages

export const MessageType = { METHOD_CALL: 1, METHOD_RETURN: 2, ERROR: 3, SIGNAL: 4 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
export const Flags = { NO_REPLY_EXPECTED: 0x1, NO_AUTO_START: 0x2, ALLOW_INTERACTIVE_AUTHORIZATION: 0x4 } as const;

export interface Message {
  type: MessageType;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  /** Body signature; "" for an empty body. */
  signature: string;
  body: DBusValue[];
  /** The message as received (set by decodeMessage; ignored by encodeMessage). */
  raw?: Uint8Array;
}

const FIELD = { path: 1, interface: 2, member: 3, errorName: 4, replySerial: 5, destination: 6, sender: 7, signature: 8 } as const;
const FIELD_SIG: Record<number, string> = { 1: "o", 2: "s", 3: "s", 4: "s", 5: "u", 6: "s", 7: "s", 8: "g", 9: "u" };
const MAX_MESSAGE = 128 * 1024 * 1024;

/** Encodes a message, little-endian, header fields in field-code order. */
export function encodeMessage(m: Message): Uint8Array {
  const body = m.signature === "" ? new Uint8Array(0) : marshal(m.signature, m.body);
  const fields: [number, Variant][] = [];
  for (const [key, code] of Object.entries(FIELD) as [keyof typeof FIELD, number][]) {
    const v = m[key];
    if (v === undefined || (key === "signature" && v === "")) continue;
    fields.push([code, new Variant(FIELD_SIG[code] ?? "s", v)]);
  }
  const w = new Writer();
  w.u8(0x6c); // 'l': little-endian
  w.u8(m.type);
  w.u8(m.flags);
  w.u8(1);
  w.u32(body.length);
  w.u32(m.serial);
  writeValue(w, { kind: "array", elem: { kind: "struct", fields: [{ kind: "basic", code: "y" }, { kind: "variant" }] } }, fields);
  w.align(8);
  w.bytes(body);
  if (w.len > MAX_MESSAGE) throw new DBusProtocolError("message larger than 128 MiB");
  return w.result();
}

/** Total length of the message at the start of `buf`, or undefined when fewer than 16 bytes are there. */
export function messageLength(buf: Uint8Array): number | undefined {
  if (buf.length < 16) return undefined;
  const le = buf[0] === 0x6c ? true : buf[0] === 0x42 ? false : undefined;
  if (le === undefined) throw new DBusProtocolError(`bad endianness byte 0x${(buf[0] ?? 0).toString(16)}`);
  if (buf[3] !== 1) throw new DBusProtocolError(`unsupported protocol version ${buf[3]}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bodyLen = view.getUint32(4, le);
  const fieldsLen = view.getUint32(12, le);
  const total = 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8) + bodyLen;
  if (total > MAX_MESSAGE) throw new DBusProtocolError("message larger than 128 MiB");
  return total;
}

/** Decodes one complete message (use messageLength to frame a stream). */
export function decodeMessage(buf: Uint8Array): Message {
  const total = messageLength(buf);
  if (total === undefined || buf.length < total) throw new DBusProtocolError("message truncated");
  const le = buf[0] === 0x6c;
  const r = new Reader(buf.subarray(0, total), le, 1);
  const type = r.u8();
  const flags = r.u8();
  r.u8();
  const bodyLen = r.u32();
  const serial = r.u32();
  if (type < 1 || type > 4) throw new DBusProtocolError(`unknown message type ${type}`);
  if (serial === 0) throw new DBusProtocolError("serial 0");
  const fields = readValue(r, { kind: "array", elem: { kind: "struct", fields: [{ kind: "basic", code: "y" }, { kind: "variant" }] } }) as [number, Variant][];
  r.align(8);
  const m: Message = { type: type as MessageType, flags, serial, signature: "", body: [], raw: buf.slice(0, total) };
  for (const [code, v] of fields) {
    const expected = FIELD_SIG[code];
    if (expected !== undefined && v.signature !== expected) {
      throw new DBusProtocolError(`header field ${code} has signature ${v.signature}, expected ${expected}`);
    }
    const name = (Object.keys(FIELD) as (keyof typeof FIELD)[]).find((k) => FIELD[k] === code);
    if (name === "replySerial") m.replySerial = v.value as number;
    else if (name !== undefined) m[name] = v.value as string;
  }
  const body = buf.subarray(r.pos, r.pos + bodyLen);
  m.body = m.signature === "" ? [] : unmarshal(m.signature, body, le);
  if (m.signature === "" && bodyLen !== 0) throw new DBusProtocolError("body without a signature");
  const missing =
    (type === MessageType.METHOD_CALL && (m.path === undefined || m.member === undefined)) ||
    (type === MessageType.SIGNAL && (m.path === undefined || m.interface === undefined || m.member === undefined)) ||
    (type === MessageType.ERROR && (m.errorName === undefined || m.replySerial === undefined)) ||
    (type === MessageType.METHOD_RETURN && m.replySerial === undefined);
  if (missing) throw new DBusProtocolError(`message of type ${type} lacks a required header field`);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Connection

/** An ERROR reply: `errorName` is the D-Bus error name, the message its first string argument. */
export class DBusError extends Error {
  readonly errorName: string;
  constructor(errorName: string, message: string) {
    super(`${errorName}: ${message}`);
    this.name = "DBusError";
    this.errorName = errorName;
  }
}

/** The connection could not be made or was lost; `code` is the socket's errno name when known. */
export class DBusConnectError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DBusConnectError";
    this.code = code;
  }
}

export interface ConnectOptions {
  /** Unix socket path. */
  path: string;
  /** Send org.freedesktop.DBus.Hello (a message bus); false for a peer such as /run/systemd/private. */
  hello: boolean;
  /** The uid to authenticate as; defaults to the process's. */
  uid?: number;
  /** Limit for connecting, authenticating and each call without its own limit (ms). */
  timeoutMs?: number;
}

export interface CallOptions {
  destination?: string;
  path: string;
  interface?: string;
  member: string;
  signature?: string;
  body?: readonly unknown[];
  flags?: number;
  timeoutMs?: number;
}

type Pending = { resolve: (m: Message) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> };

/** The hex encoding SASL EXTERNAL expects: each ASCII digit of the decimal uid as two hex digits. */
export function externalAuthId(uid: number): string {
  return Buffer.from(String(uid), "ascii").toString("hex");
}

export class DBusConnection {
  /** The unique name the bus assigned (after Hello); undefined on a peer connection. */
  uniqueName: string | undefined;
  /** The server's GUID from the OK line. */
  guid = "";
  private serial = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly signalListeners = new Set<(m: Message) => void>();
  private callHandler: ((m: Message) => void) | undefined;
  private inbox: Buffer = Buffer.alloc(0);
  private closedError: Error | undefined;
  private readonly closeListeners = new Set<(err: Error) => void>();
  private readonly timeoutMs: number;

  private constructor(private readonly socket: Socket, timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Connects, authenticates with EXTERNAL and, on a bus, says Hello. */
  static async connect(opts: ConnectOptions): Promise<DBusConnection> {
    const timeoutMs = opts.timeoutMs ?? 25_000;
    const uid = opts.uid ?? process.geteuid?.() ?? 0;
    const socket = createConnection({ path: opts.path });
    const conn = new DBusConnection(socket, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      let lineBuf = "";
      const timer = setTimeout(() => done(new DBusConnectError(`D-Bus ${opts.path}: no answer within ${timeoutMs} ms`, "ETIMEDOUT")), timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        if (err) {
          socket.destroy();
          reject(err);
        } else {
          resolve();
        }
      };
      const onError = (err: NodeJS.ErrnoException) =>
        done(new DBusConnectError(`D-Bus ${opts.path}: ${err.message}`, err.code, { cause: err }));
      const onClose = () => done(new DBusConnectError(`D-Bus ${opts.path}: closed during authentication`, "ECONNRESET"));
      const onData = (chunk: Buffer) => {
        lineBuf += chunk.toString("latin1");
        const eol = lineBuf.indexOf("\r\n");
        if (eol < 0) {
          if (lineBuf.length > 16384) done(new DBusConnectError(`D-Bus ${opts.path}: overlong authentication line`));
          return;
        }
        const line = lineBuf.slice(0, eol);
        const rest = Buffer.from(lineBuf.slice(eol + 2), "latin1");
        if (line.startsWith("OK ")) {
          conn.guid = line.slice(3).trim();
          socket.write("BEGIN\r\n");
          done();
          conn.attach(opts.path, rest);
        } else {
          done(new DBusConnectError(`D-Bus ${opts.path}: authentication as uid ${uid} refused (${line})`, "EACCES"));
        }
      };
      socket.once("connect", () => {
        socket.write(`\0AUTH EXTERNAL ${externalAuthId(uid)}\r\n`);
      });
      socket.on("data", onData);
      socket.on("error", onError);
      socket.on("close", onClose);
    });
    if (opts.hello) {
      try {
        const reply = await conn.call({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "Hello",
        });
        conn.uniqueName = String(reply.body[0]);
      } catch (err) {
        conn.close();
        throw err;
      }
    }
    return conn;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Sends a method call and resolves with its METHOD_RETURN; an ERROR reply rejects with DBusError. */
  call(opts: CallOptions): Promise<Message> {
    if (this.closedError) return Promise.reject(this.closedError);
    const serial = this.nextSerial();
    const msg: Message = {
      type: MessageType.METHOD_CALL,
      flags: opts.flags ?? 0,
      serial,
      path: opts.path,
      interface: opts.interface,
      member: opts.member,
      destination: opts.destination,
      signature: opts.signature ?? "",
      body: (opts.body ?? []) as DBusValue[],
    };
    const bytes = encodeMessage(msg);
    return new Promise<Message>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new DBusError("org.freedesktop.DBus.Error.NoReply", `${opts.interface ?? ""}.${opts.member}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(serial, { resolve, reject, timer });
      this.socket.write(bytes);
    });
  }

  /** Sends a message as is, assigning its serial; returns the serial. */
  send(m: Omit<Message, "serial">): number {
    if (this.closedError) throw this.closedError;
    const serial = this.nextSerial();
    this.socket.write(encodeMessage({ ...m, serial }));
    return serial;
  }

  /** Answers a method call. */
  reply(to: Message, signature = "", body: readonly unknown[] = []): void {
    if (to.flags & Flags.NO_REPLY_EXPECTED) return;
    this.send({ type: MessageType.METHOD_RETURN, flags: 0, replySerial: to.serial, destination: to.sender, signature, body: body as DBusValue[] });
  }

  /** Answers a method call with an error. */
  replyError(to: Message, errorName: string, message: string): void {
    if (to.flags & Flags.NO_REPLY_EXPECTED) return;
    this.send({ type: MessageType.ERROR, flags: 0, replySerial: to.serial, destination: to.sender, errorName, signature: "s", body: [message] });
  }

  /** Calls `fn` for every signal received; returns the unsubscribe function. */
  onSignal(fn: (m: Message) => void): () => void {
    this.signalListeners.add(fn);
    return () => this.signalListeners.delete(fn);
  }

  /** Routes incoming method calls to `fn` (a service); without one they get UnknownMethod. */
  onMethodCall(fn: (m: Message) => void): void {
    this.callHandler = fn;
  }

  /** Calls `fn` once when the connection closes or fails; returns the unsubscribe function. */
  onClose(fn: (err: Error) => void): () => void {
    if (this.closedError) {
      fn(this.closedError);
      return () => {};
    }
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  close(): void {
    this.shutdown(new DBusConnectError("D-Bus connection closed by the client", "ECONNRESET"));
    this.socket.destroy();
  }

  /** Switches the socket to message mode; `rest` is what arrived after the OK line. */
  private attach(path: string, rest: Buffer): void {
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err) => this.shutdown(new DBusConnectError(`D-Bus ${path}: ${err.message}`, (err as NodeJS.ErrnoException).code)));
    this.socket.on("close", () => this.shutdown(new DBusConnectError(`D-Bus ${path}: connection closed`, "ECONNRESET")));
    if (rest.length > 0) this.onData(rest);
  }

  private nextSerial(): number {
    this.serial = this.serial >= 0xffffffff ? 1 : this.serial + 1;
    return this.serial;
  }

  private onData(chunk: Buffer): void {
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    for (;;) {
      let len: number | undefined;
      let msg: Message;
      try {
        len = messageLength(this.inbox);
        if (len === undefined || this.inbox.length < len) return;
        msg = decodeMessage(this.inbox.subarray(0, len));
      } catch (err) {
        this.shutdown(err instanceof Error ? err : new Error(String(err)));
        this.socket.destroy();
        return;
      }
      this.inbox = this.inbox.subarray(len);
      this.dispatch(msg);
    }
  }

  private dispatch(m: Message): void {
    if (m.type === MessageType.METHOD_RETURN || m.type === MessageType.ERROR) {
      const p = m.replySerial === undefined ? undefined : this.pending.get(m.replySerial);
      if (!p || m.replySerial === undefined) return;
      this.pending.delete(m.replySerial);
      clearTimeout(p.timer);
      if (m.type === MessageType.ERROR) p.reject(new DBusError(m.errorName ?? "", typeof m.body[0] === "string" ? m.body[0] : ""));
      else p.resolve(m);
    } else if (m.type === MessageType.SIGNAL) {
      for (const fn of this.signalListeners) fn(m);
    } else if (this.callHandler) {
      this.callHandler(m);
    } else {
      this.replyError(m, "org.freedesktop.DBus.Error.UnknownMethod", `no handler for ${m.interface}.${m.member}`);
    }
  }

  private shutdown(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const fn of this.closeListeners) fn(err);
    this.closeListeners.clear();
  }
}
