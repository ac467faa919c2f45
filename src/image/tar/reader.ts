// A streaming tar reader: ustar, GNU (long names 'L', long links 'K', base-256 numbers) and pax
// ('x' extended and 'g' global headers). It pulls chunks from its source only as the caller
// consumes entries, so memory stays bounded by one source chunk plus one metadata block,
// whatever the size of the archive. End-of-archive rules follow Go's archive/tar (what image
// layers are written and read with): two zero blocks end it and anything after them is not
// read; a clean end of input at a header boundary, or after a single zero block, also ends it.
import { BLOCK, TarError, type TarEntryType, type TarHeader, type TarTime } from "./types.ts";

export { TarError, type TarHeader, type TarTime, type TarEntryType } from "./types.ts";

/** The most bytes a pax header or GNU long name/link may carry (Go's archive/tar uses the same). */
const MAX_META_SIZE = 1 << 20;

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** Where the archive bytes come from: a web stream, or any (async) iterable of chunks. */
export type TarSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface TarReaderOptions {
  /**
   * Apply the records of pax global headers ('g') to every later entry, as POSIX says. Off by
   * default: Go's archive/tar (and so containers/storage) only reports them, and image layers are
   * unpacked the way upstream unpacks them. The 'g' entries are reported either way.
   */
  applyGlobalPax?: boolean;
}

/** One entry: its header and its data, which must be consumed (chunks/bytes) or skipped. */
export interface TarEntry {
  readonly header: TarHeader;
  /** The data, as views of the source's chunks (valid after the next read; not copied). */
  chunks(): AsyncGenerator<Uint8Array, void, undefined>;
  /** The whole data in one buffer: for small entries only. */
  bytes(): Promise<Uint8Array>;
  /** Discards the data not read yet. */
  skip(): Promise<void>;
}

/** Pulls bytes from an async chunk source without copying when a request fits in one chunk. */
class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Uint8Array = EMPTY;
  private off = 0;
  private ended = false;
  /** Bytes handed out so far. */
  consumed = 0;

  constructor(source: TarSource) {
    if (Symbol.asyncIterator in source) this.it = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    else {
      const sync = (source as Iterable<Uint8Array>)[Symbol.iterator]();
      this.it = { next: async () => sync.next() };
    }
  }

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        this.buf = EMPTY;
        this.off = 0;
        return false;
      }
      this.buf = r.value;
      this.off = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least one), or null at the end of input. */
  async take(max: number): Promise<Uint8Array | null> {
    if (this.off >= this.buf.length && !(await this.fill())) return null;
    const n = Math.min(max, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    this.consumed += n;
    return out;
  }

  /** Exactly `n` bytes, or fewer when the input ends first. */
  async read(n: number): Promise<Uint8Array> {
    if (this.buf.length - this.off >= n) {
      const out = this.buf.subarray(this.off, this.off + n);
      this.off += n;
      this.consumed += n;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const c = await this.take(n - got);
      if (c === null) return out.subarray(0, got);
      out.set(c, got);
      got += c.length;
    }
    return out;
  }

  /** Discards `n` bytes; returns how many were there. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const c = await this.take(left);
      if (c === null) break;
      left -= c.length;
    }
    return n - left;
  }

  /** Reads the input to its end (so that a tee before this reader sees every byte). */
  async drain(): Promise<void> {
    this.consumed += this.buf.length - this.off;
    this.off = this.buf.length;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.consumed += r.value.length;
    }
  }

  async cancel(reason?: unknown): Promise<void> {
    this.ended = true;
    await this.it.return?.(reason);
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** The bytes of a NUL-terminated field. */
function field(b: Uint8Array, start: number, end: number): Uint8Array {
  const f = b.subarray(start, end);
  const nul = f.indexOf(0);
  return nul < 0 ? f : f.subarray(0, nul);
}

/** Decodes bytes as UTF-8 when they are valid UTF-8, else as latin1 (and reports that). */
function decodeName(bytes: Uint8Array): { text: string; raw?: Uint8Array } {
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    return { text: latin1.decode(bytes), raw: bytes.slice() };
  }
}

function text(b: Uint8Array, start: number, end: number): string {
  return decodeName(field(b, start, end)).text;
}

/** A numeric field: octal (space/NUL padded) or GNU base-256 (high bit of the first byte set). */
function parseNumeric(b: Uint8Array, start: number, end: number, what: string): number {
  const f = b.subarray(start, end);
  if (f.length > 0 && (f[0]! & 0x80) !== 0) {
    const inv = (f[0]! & 0x40) !== 0 ? 0xff : 0;
    let x = 0n;
    for (let i = 0; i < f.length; i++) {
      let c = f[i]! ^ inv;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarError("header", `${what}: base-256 value out of range`);
    return inv ? -Number(x) - 1 : Number(x);
  }
  let s = "";
  for (let i = 0; i < f.length; i++) s += String.fromCharCode(f[i]!);
  s = s.replace(/^[ \0]+|[ \0]+$/g, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError("header", `${what}: invalid octal number ${JSON.stringify(s)}`);
  const n = parseInt(s, 8);
  if (!Number.isSafeInteger(n)) throw new TarError("header", `${what}: value out of range`);
  return n;
}

/** Checks the header checksum: the stored value must equal the unsigned or the signed byte sum. */
function verifyChecksum(b: Uint8Array): void {
  const stored = parseNumeric(b, 148, 156, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 256 : c;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarError("checksum", `invalid header checksum (stored ${stored}, computed ${unsigned})`);
  }
}

/** pax time: decimal seconds with an optional fraction ("1700000000.123456789", "-1.5"). */
function parsePaxTime(v: string, key: string): TarTime {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v);
  if (!m) throw new TarError("header", `invalid pax ${key}=${JSON.stringify(v)}`);
  const sec = Number(m[2]);
  const nsec = Number(((m[3] ?? "") + "000000000").slice(0, 9));
  if (!Number.isSafeInteger(sec)) throw new TarError("header", `pax ${key} out of range`);
  if (m[1] === "-") return nsec === 0 ? { sec: -sec, nsec: 0 } : { sec: -sec - 1, nsec: 1e9 - nsec };
  return { sec, nsec };
}

function parsePaxInt(v: string, key: string): number {
  if (!/^\d+$/.test(v)) throw new TarError("header", `invalid pax ${key}=${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new TarError("header", `pax ${key} out of range`);
  return n;
}

/** A pax record value with its raw bytes (xattr values are binary; names may be). */
interface PaxValue {
  text: string;
  bytes: Uint8Array;
}

/** Parses "%d %s=%s\n" records; the length counts the whole record in bytes. */
function parsePax(data: Uint8Array): Map<string, PaxValue> {
  const out = new Map<string, PaxValue>();
  let off = 0;
  while (off < data.length) {
    let sp = off;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const lenStr = latin1.decode(data.subarray(off, sp));
    if (sp >= data.length || !/^[1-9]\d*$/.test(lenStr)) throw new TarError("header", "invalid pax record length");
    const len = Number(lenStr);
    const end = off + len;
    if (end > data.length || data[end - 1] !== 0x0a) throw new TarError("header", "invalid pax record");
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarError("header", "invalid pax record (no key)");
    const key = decodeName(rec.subarray(0, eq)).text;
    const bytes = rec.subarray(eq + 1);
    out.set(key, { text: decodeName(bytes).text, bytes });
    off = end;
  }
  return out;
}

function decodeBase64(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, "base64"));
}

export class TarReader implements AsyncIterable<TarEntry> {
  private readonly src: ByteSource;
  private readonly applyGlobal: boolean;
  private readonly globals = new Map<string, PaxValue>();
  /** Data bytes (plus padding) of the current entry not read yet. */
  private remaining = 0;
  private padding = 0;
  private finished = false;

  constructor(source: TarSource, options: TarReaderOptions = {}) {
    this.src = new ByteSource(source);
    this.applyGlobal = options.applyGlobalPax ?? false;
  }

  /** Bytes of the source read so far. */
  get position(): number {
    return this.src.consumed;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TarEntry> {
    for (;;) {
      const e = await this.next();
      if (e === null) return;
      yield e;
    }
  }

  /** The next entry, or null at the end of the archive. Unread data of the previous entry is skipped. */
  async next(): Promise<TarEntry | null> {
    if (this.finished) return null;
    await this.skipRest();
    let pax: Map<string, PaxValue> | null = null;
    let longName: Uint8Array | null = null;
    let longLink: Uint8Array | null = null;
    for (;;) {
      const blk = await this.src.read(BLOCK);
      if (blk.length === 0) return this.end(pax !== null || longName !== null || longLink !== null);
      if (blk.length < BLOCK) throw new TarError("truncated", "unexpected end of archive inside a header");
      if (isZero(blk)) {
        // One zero block, then either a second one or the end of input, ends the archive.
        const second = await this.src.read(BLOCK);
        if (second.length === 0 || (second.length === BLOCK && isZero(second))) {
          return this.end(pax !== null || longName !== null || longLink !== null);
        }
        if (second.length < BLOCK) throw new TarError("truncated", "unexpected end of archive after a zero block");
        throw new TarError("header", "a zero block followed by a non-zero block");
      }
      verifyChecksum(blk);
      const typeflag = String.fromCharCode(blk[156]!);
      const magic = latin1.decode(blk.subarray(257, 265));
      const isUstar = magic === "ustar\u000000";
      const isGnu = magic === "ustar  \u0000";
      let size = parseNumeric(blk, 124, 136, "size");
      if (size < 0) throw new TarError("header", "negative size");

      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        if (size > MAX_META_SIZE) throw new TarError("too-large", `${typeflag} header of ${size} bytes`);
        const data = await this.src.read(size);
        if (data.length < size) throw new TarError("truncated", "unexpected end of archive inside a metadata entry");
        await this.skipBytes((BLOCK - (size % BLOCK)) % BLOCK, "block padding");
        if (typeflag === "x") {
          pax ??= new Map();
          for (const [k, v] of parsePax(data)) pax.set(k, v);
          continue;
        }
        if (typeflag === "L") {
          longName = field(data, 0, data.length).slice();
          continue;
        }
        if (typeflag === "K") {
          longLink = field(data, 0, data.length).slice();
          continue;
        }
        // 'g': remembered for later entries when asked, and reported as an entry of its own.
        const records = parsePax(data);
        if (this.applyGlobal) for (const [k, v] of records) this.globals.set(k, v);
        const header = this.baseHeader(blk, typeflag, isUstar, isGnu);
        header.type = "global";
        header.size = 0;
        for (const [k, v] of records) header.pax.set(k, v.text);
        return this.entry(header, 0);
      }
      if (typeflag === "S") {
        throw new TarError("unsupported", `GNU sparse file ${JSON.stringify(text(blk, 0, 100))} is not supported`);
      }

      const header = this.baseHeader(blk, typeflag, isUstar, isGnu);
      const records = new Map<string, PaxValue>(this.applyGlobal ? this.globals : []);
      if (pax) for (const [k, v] of pax) records.set(k, v);
      if (records.size > 0) {
        header.format = "pax";
        size = this.applyPax(header, records, size);
      }
      if (longName !== null) this.setName(header, longName);
      if (longLink !== null) this.setLinkname(header, longLink);
      if (header.type === "file" && typeflag === "\0" && header.name.endsWith("/")) header.type = "dir";
      // Header-only types carry no data whatever their size field says (as Go's reader).
      const dataSize = header.type === "file" || header.type === "unknown" ? size : 0;
      header.size = dataSize;
      return this.entry(header, dataSize);
    }
  }

  /** Reads whatever follows the archive in the source, to its end. */
  async drain(): Promise<void> {
    this.finished = true;
    await this.src.drain();
  }

  /** Stops reading and releases the source. */
  async cancel(reason?: unknown): Promise<void> {
    this.finished = true;
    await this.src.cancel(reason);
  }

  private end(pendingMeta: boolean): null {
    if (pendingMeta) throw new TarError("truncated", "archive ends after an extended header");
    this.finished = true;
    return null;
  }

  private setName(h: TarHeader, bytes: Uint8Array): void {
    const d = decodeName(bytes);
    h.name = d.text;
    if (d.raw) h.rawName = d.raw;
    else delete h.rawName;
  }

  private setLinkname(h: TarHeader, bytes: Uint8Array): void {
    const d = decodeName(bytes);
    h.linkname = d.text;
    if (d.raw) h.rawLinkname = d.raw;
    else delete h.rawLinkname;
  }

  private baseHeader(blk: Uint8Array, typeflag: string, isUstar: boolean, isGnu: boolean): TarHeader {
    const typeByFlag: Record<string, TarEntryType> = {
      "0": "file", "\0": "file", "7": "file", "1": "link", "2": "symlink", "3": "char", "4": "block",
      "5": "dir", "6": "fifo", g: "global",
    };
    const header: TarHeader = {
      name: "",
      linkname: "",
      type: typeByFlag[typeflag] ?? "unknown",
      typeflag,
      mode: parseNumeric(blk, 100, 108, "mode") & 0o7777,
      uid: parseNumeric(blk, 108, 116, "uid"),
      gid: parseNumeric(blk, 116, 124, "gid"),
      uname: isUstar || isGnu ? text(blk, 265, 297) : "",
      gname: isUstar || isGnu ? text(blk, 297, 329) : "",
      size: 0,
      mtime: { sec: parseNumeric(blk, 136, 148, "mtime"), nsec: 0 },
      devmajor: isUstar || isGnu ? parseNumeric(blk, 329, 337, "devmajor") : 0,
      devminor: isUstar || isGnu ? parseNumeric(blk, 337, 345, "devminor") : 0,
      xattrs: new Map(),
      pax: new Map(),
      format: isUstar ? "ustar" : isGnu ? "gnu" : "v7",
    };
    let name = field(blk, 0, 100);
    if (isUstar) {
      // star archives ("tar\0" at 508) keep times in the end of the prefix field.
      const star = blk[508] === 0x74 && blk[509] === 0x61 && blk[510] === 0x72 && blk[511] === 0;
      const prefix = field(blk, 345, star ? 476 : 500);
      if (prefix.length > 0) {
        const joined = new Uint8Array(prefix.length + 1 + name.length);
        joined.set(prefix);
        joined[prefix.length] = 0x2f;
        joined.set(name, prefix.length + 1);
        name = joined;
      }
    } else if (isGnu) {
      if (blk[345] !== 0) header.atime = { sec: parseNumeric(blk, 345, 357, "atime"), nsec: 0 };
      if (blk[357] !== 0) header.ctime = { sec: parseNumeric(blk, 357, 369, "ctime"), nsec: 0 };
    }
    this.setName(header, name);
    this.setLinkname(header, field(blk, 157, 257));
    return header;
  }

  /** Applies pax records to the header; returns the (possibly overridden) size. */
  private applyPax(h: TarHeader, records: Map<string, PaxValue>, size: number): number {
    for (const [key, v] of records) {
      h.pax.set(key, v.text);
      switch (key) {
        case "path":
          if (v.bytes.includes(0)) throw new TarError("header", "pax path contains a NUL byte");
          this.setName(h, v.bytes);
          break;
        case "linkpath":
          if (v.bytes.includes(0)) throw new TarError("header", "pax linkpath contains a NUL byte");
          this.setLinkname(h, v.bytes);
          break;
        case "size":
          size = parsePaxInt(v.text, key);
          break;
        case "uid":
          h.uid = parsePaxInt(v.text, key);
          break;
        case "gid":
          h.gid = parsePaxInt(v.text, key);
          break;
        case "uname":
          h.uname = v.text;
          break;
        case "gname":
          h.gname = v.text;
          break;
        case "mtime":
          h.mtime = parsePaxTime(v.text, key);
          break;
        case "atime":
          h.atime = parsePaxTime(v.text, key);
          break;
        case "ctime":
          h.ctime = parsePaxTime(v.text, key);
          break;
        default:
          if (key.startsWith("SCHILY.xattr.")) {
            h.xattrs.set(key.slice("SCHILY.xattr.".length), v.bytes.slice());
          } else if (key.startsWith("LIBARCHIVE.xattr.")) {
            // libarchive: the name is URL-encoded, the value base64.
            const name = decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length));
            if (!h.xattrs.has(name)) h.xattrs.set(name, decodeBase64(v.text));
          } else if (key.startsWith("GNU.sparse.")) {
            throw new TarError("unsupported", `GNU sparse file ${JSON.stringify(h.name)} is not supported`);
          }
      }
    }
    return size;
  }

  private entry(header: TarHeader, size: number): TarEntry {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    let started = false;
    const reader = this;
    return {
      header,
      chunks() {
        if (started) throw new Error("tar: entry data already read");
        started = true;
        return reader.data();
      },
      async bytes() {
        if (started) throw new Error("tar: entry data already read");
        started = true;
        const out = new Uint8Array(size);
        let off = 0;
        for await (const c of reader.data()) {
          out.set(c, off);
          off += c.length;
        }
        return out;
      },
      async skip() {
        started = true;
        await reader.skipRest();
      },
    };
  }

  private async *data(): AsyncGenerator<Uint8Array, void, undefined> {
    while (this.remaining > 0) {
      const c = await this.src.take(this.remaining);
      if (c === null) throw new TarError("truncated", "unexpected end of archive inside file data");
      this.remaining -= c.length;
      yield c;
    }
    const pad = this.padding;
    this.padding = 0;
    await this.skipBytes(pad, "block padding");
  }

  private async skipBytes(n: number, where: string): Promise<void> {
    if (n > 0 && (await this.src.skip(n)) < n) throw new TarError("truncated", `unexpected end of archive inside ${where}`);
  }

  private async skipRest(): Promise<void> {
    const n = this.remaining;
    const pad = this.padding;
    this.remaining = 0;
    this.padding = 0;
    await this.skipBytes(n, "file data");
    await this.skipBytes(pad, "block padding");
  }
}
