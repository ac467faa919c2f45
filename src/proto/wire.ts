// Protocol buffers wire format runtime used by the generated codecs in
// runtime-v1.ts. Hand-written, dependency free, proto3 only.
//
// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 3/4 group start/end
// (skipped only), 5 fixed32.

/** Thrown by every decoder on malformed input. */
export class ProtoDecodeError extends Error {
  override readonly name = "ProtoDecodeError";
  /** Byte offset in the input at which the problem was detected. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.offset = offset;
  }
}

/** Encoder/decoder pair for one message type. */
export interface MessageCodec<T> {
  /** Fully qualified protobuf name, e.g. "runtime.v1.VersionRequest". */
  readonly typeName: string;
  /** Serializes a (possibly partial) message; absent fields encode as defaults. */
  encode(msg: Partial<T>): Uint8Array;
  /** Parses a serialized message; every field is filled (defaults when absent). */
  decode(buf: Uint8Array): T;
  /** Builds a message with defaults for every field not given. */
  create(partial?: Partial<T>): T;
  /** Low level: appends the fields of `msg` (no tag/length) to `w`. */
  write(msg: Partial<T>, w: Writer): void;
  /** Low level: reads fields until `end`, merging into `into` when given. */
  read(r: Reader, end: number, into?: T): T;
}

/** Shape of one entry of the generated `*ServiceMethods` tables. */
export interface MethodDescriptor<Req, Res> {
  readonly name: string;
  /** gRPC path, "/package.Service/Method". */
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly request: MessageCodec<Req>;
  readonly response: MessageCodec<Res>;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

const U32 = 0xffffffffn;

/** UTF-8 length of `s` as TextEncoder would produce it (lone surrogates -> U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        n += 4;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Growable output buffer. All methods return `this` for chaining. */
export class Writer {
  buf: Uint8Array;
  pos = 0;
  private view: DataView | undefined;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = undefined;
  }

  private ensure(need: number): void {
    if (this.pos + need > this.buf.length) this.grow(need);
  }

  private dv(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  /** Unsigned varint of a number in [0, 2^32). Also used for tags and lengths. */
  uint32(v: number): this {
    this.ensure(5);
    const buf = this.buf;
    let pos = this.pos;
    v >>>= 0;
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
    return this;
  }

  /** Varint of a 64-bit value given as two unsigned 32-bit halves. */
  private varint64(lo: number, hi: number): this {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    while (hi > 0 || lo > 0x7f) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
    return this;
  }

  /** int32 (and enums): negative values are sign-extended to 10 bytes. */
  int32(v: number): this {
    return v >= 0 ? this.uint32(v) : this.varint64(v >>> 0, 0xffffffff);
  }

  /** sint32: zigzag varint. */
  sint32(v: number): this {
    return this.uint32(((v << 1) ^ (v >> 31)) >>> 0);
  }

  private u64(v: bigint | number): this {
    if (typeof v === "number") {
      if (v >= 0 && v <= 0xffffffff) return this.uint32(v);
      v = BigInt(v);
    }
    const u = BigInt.asUintN(64, v);
    return this.varint64(Number(u & U32), Number(u >> 32n));
  }

  /** int64 varint (two's complement, negatives take 10 bytes). Numbers are accepted too. */
  int64(v: bigint | number): this {
    return this.u64(v);
  }

  uint64(v: bigint | number): this {
    return this.u64(v);
  }

  /** sint64: zigzag varint. */
  sint64(v: bigint | number): this {
    const b = BigInt.asIntN(64, typeof v === "number" ? BigInt(v) : v);
    return this.u64(BigInt.asUintN(64, (b << 1n) ^ (b >> 63n)));
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  fixed32(v: number): this {
    this.ensure(4);
    this.dv().setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
    return this;
  }

  sfixed32(v: number): this {
    this.ensure(4);
    this.dv().setInt32(this.pos, v | 0, true);
    this.pos += 4;
    return this;
  }

  fixed64(v: bigint | number): this {
    this.ensure(8);
    this.dv().setBigUint64(this.pos, BigInt.asUintN(64, BigInt(v)), true);
    this.pos += 8;
    return this;
  }

  sfixed64(v: bigint | number): this {
    this.ensure(8);
    this.dv().setBigInt64(this.pos, BigInt.asIntN(64, BigInt(v)), true);
    this.pos += 8;
    return this;
  }

  float(v: number): this {
    this.ensure(4);
    this.dv().setFloat32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  double(v: number): this {
    this.ensure(8);
    this.dv().setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  /** Length-prefixed raw bytes. */
  bytes(v: Uint8Array): this {
    this.uint32(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  /** Length-prefixed UTF-8 string. */
  string(s: string): this {
    const len = utf8Length(s);
    this.uint32(len);
    this.ensure(len);
    if (len === s.length && len < 64) {
      // ASCII fast path.
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < len; i++) buf[pos++] = s.charCodeAt(i);
      this.pos = pos;
    } else {
      utf8Encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + len));
      this.pos += len;
    }
    return this;
  }

  /**
   * Starts a length-delimited section: reserves one length byte and returns
   * the position to hand to `ldelim` once the contents are written.
   */
  fork(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Finishes a section started with `fork`, writing its length prefix. */
  ldelim(start: number): this {
    const len = this.pos - start - 1;
    if (len < 0x80) {
      this.buf[start] = len;
      return this;
    }
    // The length needs more than the reserved byte: shift the contents.
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    const buf = this.buf;
    buf.copyWithin(start + 1 + extra, start + 1, this.pos);
    let pos = start;
    let v = len;
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos] = v;
    this.pos += extra;
    return this;
  }

  /** Tag, length prefix and body of an embedded message. */
  message<T>(tag: number, codec: MessageCodec<T>, v: Partial<T>): this {
    this.uint32(tag);
    const start = this.fork();
    codec.write(v, this);
    return this.ldelim(start);
  }

  /** The bytes written so far (a view on the internal buffer). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Cursor over an input buffer. Every read is bounds-checked. */
export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly len: number;
  private view: DataView | undefined;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.pos = 0;
    this.len = buf.length;
  }

  fail(message: string, at: number = this.pos): never {
    throw new ProtoDecodeError(message, at);
  }

  private dv(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  private need(n: number): void {
    if (this.pos + n > this.len) this.fail(`truncated input: need ${n} more byte(s), have ${this.len - this.pos}`);
  }

  /** Varint truncated to its low 32 bits, as an unsigned number. */
  uint32(): number {
    const buf = this.buf;
    const end = this.len;
    let pos = this.pos;
    if (pos < end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) this.fail("truncated varint", pos);
      const b = buf[pos++]!;
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    return this.fail("varint longer than 10 bytes", this.pos);
  }

  /** int32 / enum: low 32 bits of the varint, signed. */
  int32(): number {
    return this.uint32() | 0;
  }

  sint32(): number {
    const n = this.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  private lo = 0;
  private hi = 0;

  /** Reads a full 64-bit varint into this.lo / this.hi. */
  private varint64(): void {
    const buf = this.buf;
    const end = this.len;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) this.fail("truncated varint", pos);
      const b = buf[pos++]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    this.fail("varint longer than 10 bytes", this.pos);
  }

  uint64(): bigint {
    this.varint64();
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  int64(): bigint {
    this.varint64();
    if (this.hi === 0) return BigInt(this.lo);
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  sint64(): bigint {
    const n = this.uint64();
    return (n >> 1n) ^ -(n & 1n);
  }

  bool(): boolean {
    this.varint64();
    return (this.lo | this.hi) !== 0;
  }

  fixed32(): number {
    this.need(4);
    const v = this.dv().getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  sfixed32(): number {
    this.need(4);
    const v = this.dv().getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  fixed64(): bigint {
    this.need(8);
    const v = this.dv().getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  sfixed64(): bigint {
    this.need(8);
    const v = this.dv().getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.dv().getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.dv().getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /**
   * Reads a length prefix and returns the end offset of the delimited section,
   * checking that it lies within the input.
   */
  lenEnd(): number {
    const at = this.pos;
    const n = this.uint32();
    const end = this.pos + n;
    if (end > this.len) this.fail(`length ${n} exceeds remaining input (${this.len - this.pos} bytes)`, at);
    return end;
  }

  /** Verifies that a delimited section ended exactly at `end`. */
  checkEnd(end: number): void {
    if (this.pos !== end) this.fail(`field overruns its enclosing length-delimited section ending at ${end}`);
  }

  /** Reads an embedded message (length prefix and body), merging into `into` when given. */
  message<T>(codec: MessageCodec<T>, into?: T): T {
    return codec.read(this, this.lenEnd(), into);
  }

  /** Length-prefixed bytes (copied out of the input). */
  bytes(): Uint8Array {
    const end = this.lenEnd();
    // Copy, so the result never aliases the input (Buffer#slice would not copy).
    const v = new Uint8Array(this.buf.subarray(this.pos, end));
    this.pos = end;
    return v;
  }

  /** Length-prefixed UTF-8 string; invalid sequences become U+FFFD. */
  string(): string {
    const end = this.lenEnd();
    const buf = this.buf;
    const start = this.pos;
    this.pos = end;
    if (end - start <= 256) {
      // ASCII fast path: short strings are cheaper to build directly than via TextDecoder.
      let ascii = true;
      for (let i = start; i < end; i++) {
        if (buf[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
    }
    return utf8Decoder.decode(buf.subarray(start, end));
  }

  /** Skips the value of a field whose tag was just read (unknown field). */
  skip(tag: number, depth = 0): void {
    const at = this.pos;
    const field = tag >>> 3;
    if (field === 0) this.fail("invalid field number 0", at);
    switch (tag & 7) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.need(8);
        this.pos += 8;
        return;
      case 2:
        this.pos = this.lenEnd();
        return;
      case 3: {
        // Group: skip nested fields up to the matching end-group tag.
        if (depth > 100) this.fail("groups nested too deeply", at);
        for (;;) {
          if (this.pos >= this.len) this.fail(`unterminated group for field ${field}`, at);
          const t = this.uint32();
          if ((t & 7) === 4) {
            if (t >>> 3 !== field) this.fail(`mismatched end-group tag for field ${field}`);
            return;
          }
          this.skip(t, depth + 1);
        }
      }
      case 4:
        this.fail(`unexpected end-group tag for field ${field}`, at);
      case 5:
        this.need(4);
        this.pos += 4;
        return;
      default:
        this.fail(`invalid wire type ${tag & 7} for field ${field}`, at);
    }
  }
}

/** Stores a decoded map entry; "__proto__" becomes an own property, not the prototype. */
export function setEntry<V>(o: Record<string, V>, k: string, v: V): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/**
 * Assembles a codec from the generated per-message functions. `read` fills `m`
 * from the fields found before `end`; the wrapper checks the section boundary.
 */
export function defineMessage<T>(
  typeName: string,
  create: (p?: Partial<T>) => T,
  write: (m: Partial<T>, w: Writer) => void,
  read: (r: Reader, end: number, m: T) => void,
): MessageCodec<T> {
  const codec: MessageCodec<T> = {
    typeName,
    create,
    write,
    read(r, end, into) {
      const m = into ?? create();
      read(r, end, m);
      if (r.pos !== end) r.fail(`${typeName}: field overruns the end of the message at byte ${end}`);
      return m;
    },
    encode(msg) {
      const w = new Writer();
      write(msg, w);
      return w.finish();
    },
    decode(buf) {
      return codec.read(new Reader(buf), buf.length);
    },
  };
  return Object.freeze(codec);
}
