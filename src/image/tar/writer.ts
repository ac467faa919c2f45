// A deterministic tar writer: the same entries and options always give the same bytes. Names and
// values that do not fit ustar fields go into pax records (sorted by key), or, when asked, into
// GNU long-name entries and base-256 numbers. Used by tests to build images, and for release
// bundles and checkpoint archives.
import { BLOCK, TarError, typeflagOf, type TarEntryType, type TarTime } from "./types.ts";

export type TarWriteType = Exclude<TarEntryType, "global" | "unknown">;

export interface TarWriteEntry {
  /** Path inside the archive ("bin/sh", "etc/"); a trailing '/' is added to directories. */
  name: string;
  /** Default: "dir" when the name ends with '/', else "file". */
  type?: TarWriteType;
  /** Permission bits; default 0o644 (files), 0o755 (directories), 0o777 (symlinks). */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch, or seconds and nanoseconds (nanoseconds go into a pax record). */
  mtime?: number | TarTime;
  atime?: TarTime;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as SCHILY.xattr.* pax records. */
  xattrs?: Record<string, string | Uint8Array>;
  /** Further pax records, written as given. */
  pax?: Record<string, string>;
  /** Size of the data that will follow; default: the length of the data given with the entry. */
  size?: number;
}

export interface TarWriterOptions {
  /** Fixed owner, group and time for every entry (overriding the entries'). */
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number | TarTime;
  /**
   * How names and values that do not fit ustar fields are written: "pax" (default: 'x' records,
   * what Go and containers/storage write) or "gnu" ('L'/'K' long names, base-256 numbers).
   */
  format?: "pax" | "gnu";
}

const encoder = new TextEncoder();
const ZERO_BLOCKS = new Uint8Array(2 * BLOCK);

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
}

function toTime(t: number | TarTime | undefined): TarTime {
  if (t === undefined) return { sec: 0, nsec: 0 };
  if (typeof t === "number") {
    const sec = Math.floor(t);
    return { sec, nsec: Math.round((t - sec) * 1e9) };
  }
  return t;
}

function formatTime(t: TarTime): string {
  if (t.nsec === 0) return String(t.sec);
  if (t.sec < 0) {
    // -1.5 is sec -2, nsec 5e8.
    const s = t.sec + 1;
    const frac = String(1e9 - t.nsec).padStart(9, "0").replace(/0+$/, "");
    return `${s === 0 ? "-0" : String(s)}.${frac}`;
  }
  return `${t.sec}.${String(t.nsec).padStart(9, "0").replace(/0+$/, "")}`;
}

/** One pax record: "<len> <key>=<value>\n", where len counts the whole record in bytes. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const body = encoder.encode(` ${key}=`);
  const n = body.length + value.length + 1;
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  const out = new Uint8Array(len);
  const prefix = encoder.encode(String(len));
  out.set(prefix);
  out.set(body, prefix.length);
  out.set(value, prefix.length + body.length);
  out[len - 1] = 0x0a;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Writes `value` as zero-padded octal with a trailing NUL; false when it does not fit. */
function putOctal(blk: Uint8Array, off: number, len: number, value: number): boolean {
  if (value < 0 || !Number.isSafeInteger(value)) return false;
  const s = value.toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) return false;
  for (let i = 0; i < s.length; i++) blk[off + i] = s.charCodeAt(i);
  blk[off + len - 1] = 0;
  return true;
}

/** GNU base-256: the high bit of the first byte set, the value big-endian in the rest. */
function putBase256(blk: Uint8Array, off: number, len: number, value: number): void {
  let x = BigInt(value);
  const neg = x < 0n;
  if (neg) x = -x - 1n;
  for (let i = len - 1; i >= 0; i--) {
    const byte = Number(x & 0xffn);
    blk[off + i] = neg ? ~byte & 0xff : byte;
    x >>= 8n;
  }
  blk[off] = neg ? 0xff : 0x80;
}

function putBytes(blk: Uint8Array, off: number, len: number, bytes: Uint8Array): void {
  blk.set(bytes.subarray(0, len), off);
}

function finishChecksum(blk: Uint8Array): void {
  blk.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += blk[i]!;
  putOctal(blk, 148, 7, sum);
  blk[155] = 0x20;
}

/** Splits a long ASCII name into ustar prefix (<= 155) and name (<= 100) at a '/'. */
function splitUstar(name: Uint8Array): [Uint8Array, Uint8Array] | null {
  if (name.length <= 100) return [new Uint8Array(0), name];
  if (name.length > 256) return null;
  for (let i = Math.min(name.length - 1, 155); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return [name.subarray(0, i), name.subarray(i + 1)];
    }
  }
  return null;
}

export class TarWriter {
  private readonly opts: TarWriterOptions;

  constructor(options: TarWriterOptions = {}) {
    this.opts = options;
  }

  /** The header block(s) for `entry`, including any pax or GNU long-name entries before it. */
  header(entry: TarWriteEntry, dataSize?: number): Uint8Array {
    const o = this.opts;
    const type: TarWriteType = entry.type ?? (entry.name.endsWith("/") ? "dir" : "file");
    let name = entry.name;
    if (type === "dir" && !name.endsWith("/")) name += "/";
    const size = type === "file" ? (entry.size ?? dataSize ?? 0) : 0;
    const mode = entry.mode ?? (type === "dir" ? 0o755 : type === "symlink" ? 0o777 : 0o644);
    const uid = o.uid ?? entry.uid ?? 0;
    const gid = o.gid ?? entry.gid ?? 0;
    const uname = o.uname ?? entry.uname ?? "";
    const gname = o.gname ?? entry.gname ?? "";
    const mtime = toTime(o.mtime ?? entry.mtime);
    const gnu = o.format === "gnu";
    const records = new Map<string, Uint8Array>();
    const pre: Uint8Array[] = [];

    const blk = new Uint8Array(BLOCK);
    const nameBytes = encoder.encode(name);
    if (nameBytes.includes(0)) throw new TarError("header", `name contains a NUL byte: ${JSON.stringify(name)}`);
    const split = isAscii(nameBytes) ? splitUstar(nameBytes) : null;
    if (split && !gnu) {
      putBytes(blk, 0, 100, split[1]);
      putBytes(blk, 345, 155, split[0]);
    } else if (split && split[0].length === 0) {
      putBytes(blk, 0, 100, split[1]);
    } else {
      putBytes(blk, 0, 100, nameBytes);
      if (gnu) pre.push(this.gnuLong("L", nameBytes));
      else records.set("path", nameBytes);
    }

    const link = encoder.encode(entry.linkname ?? "");
    if (link.length <= 100 && isAscii(link)) putBytes(blk, 157, 100, link);
    else if (gnu) {
      putBytes(blk, 157, 100, link);
      pre.push(this.gnuLong("K", link));
    } else {
      putBytes(blk, 157, 100, link);
      records.set("linkpath", link);
    }

    const numeric = (off: number, len: number, value: number, key: string | null): void => {
      if (putOctal(blk, off, len, value)) return;
      if (gnu || key === null) putBase256(blk, off, len, value);
      else {
        putOctal(blk, off, len, 0);
        records.set(key, encoder.encode(String(value)));
      }
    };
    numeric(100, 8, mode & 0o7777, null);
    numeric(108, 8, uid, "uid");
    numeric(116, 8, gid, "gid");
    numeric(124, 12, size, "size");
    numeric(136, 12, mtime.sec, "mtime");
    if (mtime.nsec !== 0 && !gnu) records.set("mtime", encoder.encode(formatTime(mtime)));
    if (entry.atime && !gnu) records.set("atime", encoder.encode(formatTime(entry.atime)));
    blk[156] = typeflagOf[type].charCodeAt(0);
    if (gnu) putBytes(blk, 257, 8, encoder.encode("ustar  \0"));
    else putBytes(blk, 257, 8, encoder.encode("ustar\u000000"));

    for (const [key, value, off] of [["uname", uname, 265], ["gname", gname, 297]] as const) {
      const b = encoder.encode(value);
      if (b.length <= 32 && isAscii(b)) putBytes(blk, off, 32, b);
      else if (!gnu) records.set(key, b);
      else putBytes(blk, off, 32, b);
    }
    if (type === "char" || type === "block") {
      numeric(329, 8, entry.devmajor ?? 0, null);
      numeric(337, 8, entry.devminor ?? 0, null);
    } else {
      putOctal(blk, 329, 8, 0);
      putOctal(blk, 337, 8, 0);
    }
    for (const [k, v] of Object.entries(entry.xattrs ?? {})) {
      records.set(`SCHILY.xattr.${k}`, typeof v === "string" ? encoder.encode(v) : v);
    }
    for (const [k, v] of Object.entries(entry.pax ?? {})) records.set(k, encoder.encode(v));
    if (records.size > 0) {
      if (gnu) throw new TarError("unsupported", `pax records (${[...records.keys()].join(", ")}) in a GNU-format archive`);
      pre.push(this.paxHeader(name, records));
    }
    finishChecksum(blk);
    pre.push(blk);
    return concat(pre);
  }

  /** Zero bytes that pad `size` bytes of data to a whole block. */
  padding(size: number): Uint8Array {
    return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
  }

  /** A whole entry: header, data and padding. */
  entry(entry: TarWriteEntry, data?: Uint8Array | string): Uint8Array {
    const bytes = typeof data === "string" ? encoder.encode(data) : (data ?? new Uint8Array(0));
    const isFile = (entry.type ?? (entry.name.endsWith("/") ? "dir" : "file")) === "file";
    if (!isFile && bytes.length > 0) throw new TarError("header", `${entry.name}: only regular files carry data`);
    if (entry.size !== undefined && entry.size !== bytes.length) {
      throw new TarError("header", `${entry.name}: size ${entry.size} but ${bytes.length} bytes of data`);
    }
    return concat([this.header(entry, bytes.length), bytes, this.padding(bytes.length)]);
  }

  /** The end-of-archive marker: two zero blocks. */
  end(): Uint8Array {
    return ZERO_BLOCKS.slice();
  }

  private paxHeader(name: string, records: Map<string, Uint8Array>): Uint8Array {
    const keys = [...records.keys()].sort();
    const data = concat(keys.map((k) => paxRecord(k, records.get(k)!)));
    const base = name.replace(/\/+$/, "");
    const slash = base.lastIndexOf("/");
    const dir = slash < 0 ? "." : base.slice(0, slash);
    const paxName = (dir === "." ? "" : `${dir}/`) + `PaxHeaders.0/${base.slice(slash + 1)}`;
    const blk = new Uint8Array(BLOCK);
    putBytes(blk, 0, 100, encoder.encode(paxName));
    putOctal(blk, 100, 8, 0);
    putOctal(blk, 108, 8, 0);
    putOctal(blk, 116, 8, 0);
    putOctal(blk, 124, 12, data.length);
    putOctal(blk, 136, 12, 0);
    blk[156] = 0x78; // 'x'
    putBytes(blk, 257, 8, encoder.encode("ustar\u000000"));
    finishChecksum(blk);
    return concat([blk, data, this.padding(data.length)]);
  }

  private gnuLong(flag: "L" | "K", value: Uint8Array): Uint8Array {
    const data = concat([value, new Uint8Array(1)]);
    const blk = new Uint8Array(BLOCK);
    putBytes(blk, 0, 100, encoder.encode("././@LongLink"));
    putOctal(blk, 100, 8, 0);
    putOctal(blk, 108, 8, 0);
    putOctal(blk, 116, 8, 0);
    putOctal(blk, 124, 12, data.length);
    putOctal(blk, 136, 12, 0);
    blk[156] = flag.charCodeAt(0);
    putBytes(blk, 257, 8, encoder.encode("ustar  \0"));
    finishChecksum(blk);
    return concat([blk, data, this.padding(data.length)]);
  }
}

/** An entry and its data, for createTar and tarStream. */
export interface TarInput extends TarWriteEntry {
  data?: Uint8Array | string;
}

/** A whole archive in memory (with the end marker). */
export function createTar(entries: Iterable<TarInput>, options: TarWriterOptions = {}): Uint8Array {
  const w = new TarWriter(options);
  const parts: Uint8Array[] = [];
  for (const { data, ...entry } of entries) parts.push(w.entry(entry, data));
  parts.push(w.end());
  return concat(parts);
}

/** An entry whose data is produced lazily: `size` must be given and the chunks must add up to it. */
export interface TarStreamInput extends TarWriteEntry {
  data?: Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

/** A streaming archive: memory stays at one chunk of one entry, for archives of any size. */
export function tarStream(
  entries: Iterable<TarStreamInput> | AsyncIterable<TarStreamInput>,
  options: TarWriterOptions = {},
): ReadableStream<Uint8Array> {
  const w = new TarWriter(options);
  async function* generate(): AsyncGenerator<Uint8Array> {
    for await (const { data, ...entry } of entries as AsyncIterable<TarStreamInput>) {
      if (data === undefined || typeof data === "string" || data instanceof Uint8Array) {
        yield w.entry(entry, data);
        continue;
      }
      if (entry.size === undefined) throw new TarError("header", `${entry.name}: streamed data needs a size`);
      yield w.header(entry);
      let n = 0;
      for await (const chunk of data as AsyncIterable<Uint8Array>) {
        n += chunk.length;
        if (n > entry.size) throw new TarError("header", `${entry.name}: more data than its size ${entry.size}`);
        yield chunk;
      }
      if (n !== entry.size) throw new TarError("header", `${entry.name}: ${n} bytes of data, size says ${entry.size}`);
      yield w.padding(n);
    }
    yield w.end();
  }
  return iterableToStream(generate());
}

/** A ReadableStream that pulls from an async iterator (with backpressure). */
export function iterableToStream(it: AsyncIterator<Uint8Array> | AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iter = Symbol.asyncIterator in it ? (it as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]() : it;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await iter.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    async cancel(reason) {
      await iter.return?.(reason);
    },
  });
}
