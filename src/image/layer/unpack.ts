// Applies an image layer (a possibly compressed tar) to a directory in the overlay on-disk format,
// in one streaming pass: detect compression, decompress, hash the uncompressed tar (the diff ID),
// parse, write. Semantics follow containers/storage (pkg/archive Unpack with the overlay whiteout
// converter), which is what CRI-O applies layers with:
//   - names are cleaned; a leading '/' is dropped; a ".." that climbs above the root is refused;
//   - an existing entry is removed first unless both it and the new one are directories (merged);
//   - missing parents are created 0755 root:root; directory times are set after their contents;
//   - ".wh.NAME" becomes a 0:0 character device NAME; ".wh..wh..opq" sets trusted.overlay.opaque=y
//     on its directory;
//   - hard link targets are resolved inside the layer and must exist there;
//   - symlink targets are data: stored as given, never followed while unpacking.
// Confinement does not rely on string checks: every path is resolved with openat2(RESOLVE_IN_ROOT)
// from a descriptor of the target directory (as upstream's chroot did), and every file is created
// relative to its parent's descriptor as a single, validated name. Nothing is ever written outside
// the target, whatever symlinks an earlier entry planted.
import { writeSync } from "node:fs";
import * as sys from "../../sys/fsat.ts";
import { SyscallError } from "../../sys/index.ts";
import { TarError, TarReader, type TarEntry, type TarHeader, type TarSource, type TarTime } from "../tar/reader.ts";
import { compressionOfMediaType, decompress, detectCompression, type Compression } from "./decompress.ts";

export type { Compression } from "./decompress.ts";

export interface UnpackOptions {
  /** The layer's media type from the manifest: a hint; the bytes decide the compression. */
  mediaType?: string;
  /** Stops the unpacking between entries. */
  signal?: AbortSignal;
  /** Called for what is skipped rather than refused (xattrs the file system rejects, devices as non-root). */
  onWarning?: (message: string) => void;
}

export interface UnpackResult {
  /** "sha256:" of the uncompressed tar stream (the layer's diff ID), computed while streaming. */
  diffDigest: string;
  /** Bytes of the uncompressed tar stream. */
  diffSize: number;
  /** "sha256:" and size of the bytes as given (the blob digest for a registry blob). */
  compressedDigest: string;
  compressedSize: number;
  compression: Compression;
  /** Sorted distinct owners and groups of the layer's entries (containers-storage's uidset/gidset). */
  uidset: number[];
  gidset: number[];
  /**
   * Whether the layer had an entry for its root ("./"), whose mode and owner were applied to the
   * target. Without one the target keeps what its creator gave it (containers-storage: 0555, or
   * the parent layer's root mode).
   */
  rootEntry: boolean;
}

/** A layer that cannot be applied: `entry` names the tar entry at fault, when one is. */
export class LayerError extends Error {
  readonly entry: string | undefined;
  /** escape: an entry aims outside the root; invalid: an entry cannot be applied; unsupported:
   * a feature this unpacker lacks (sparse files, unknown types); corrupt: the stream itself is bad. */
  readonly kind: "escape" | "invalid" | "unsupported" | "corrupt";
  /** The message without the entry name. */
  readonly reason: string;
  constructor(kind: LayerError["kind"], reason: string, entry?: string, options?: { cause?: unknown }) {
    const shown = entry !== undefined && entry.length > 200 ? `${entry.slice(0, 200)}…` : entry;
    super(shown === undefined ? `layer: ${reason}` : `layer entry ${JSON.stringify(shown)}: ${reason}`, options);
    this.name = "LayerError";
    this.kind = kind;
    this.reason = reason;
    this.entry = entry;
  }
}

/**
 * Unpacks the layer blob `input` into `targetDir` (an existing directory, normally empty: a
 * storage layer's diff directory). On error the directory holds a partial layer for the caller to
 * delete; nothing outside it has been touched.
 */
export async function unpackLayer(
  input: TarSource,
  targetDir: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  const src = iteratorOf(input);
  const compressedHash = new Bun.CryptoHasher("sha256");
  let compressedSize = 0;

  // Peek at the first bytes for the magic numbers.
  const head: Uint8Array[] = [];
  let headLen = 0;
  while (headLen < 4) {
    const r = await src.next();
    if (r.done) break;
    head.push(r.value);
    headLen += r.value.length;
  }
  const compression = detectCompression(concat(head).subarray(0, 4));
  const hinted = opts.mediaType ? compressionOfMediaType(opts.mediaType) : null;
  if (hinted !== null && hinted !== compression) {
    opts.onWarning?.(`layer media type ${opts.mediaType} says ${hinted}, the data is ${compression}`);
  }

  const compressed: AsyncIterator<Uint8Array> = {
    async next() {
      const c = head.shift() ?? null;
      const r = c !== null ? { done: false as const, value: c } : await src.next();
      if (!r.done) {
        compressedHash.update(r.value);
        compressedSize += r.value.length;
      }
      return r;
    },
    async return(value?: unknown) {
      await src.return?.(value);
      return { done: true, value: undefined };
    },
  };

  const diffHash = compression === "none" ? compressedHash : new Bun.CryptoHasher("sha256");
  let diffSize = 0;
  const plain = decompress(compressed, compression);
  const hashed: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      async next() {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await plain.next();
        } catch (err) {
          if (compression === "none") throw err;
          throw new LayerError("corrupt", `${compression} stream: ${(err as Error).message}`, undefined, { cause: err });
        }
        if (!r.done && compression !== "none") {
          diffHash.update(r.value);
          diffSize += r.value.length;
        }
        return r;
      },
      async return(value?: unknown) {
        await plain.return?.(value);
        return { done: true, value: undefined };
      },
    }),
  };

  const reader = new TarReader(hashed);
  const extracted = await extract(reader, targetDir, opts).catch(async (err: unknown) => {
    await reader.cancel().catch(() => {});
    throw err;
  });
  // The diff ID covers the whole stream, including whatever follows the end-of-archive blocks.
  await reader.drain();
  const hex = diffHash.digest("hex");
  return {
    diffDigest: `sha256:${hex}`,
    diffSize: compression === "none" ? compressedSize : diffSize,
    compressedDigest: compression === "none" ? `sha256:${hex}` : `sha256:${compressedHash.digest("hex")}`,
    compressedSize,
    compression,
    ...extracted,
  };
}

/**
 * Applies an uncompressed tar stream to `targetDir` with the layer semantics above (no hashing,
 * no decompression): for callers that have a plain tar (checkpoints, tests).
 */
export async function extractTar(
  input: TarSource | TarReader,
  targetDir: string,
  opts: UnpackOptions = {},
): Promise<ExtractResult> {
  const reader = input instanceof TarReader ? input : new TarReader(input);
  return extract(reader, targetDir, opts);
}

function iteratorOf(input: TarSource): AsyncIterator<Uint8Array> {
  if (Symbol.asyncIterator in input) return (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const sync = (input as Iterable<Uint8Array>)[Symbol.iterator]();
  return { next: async () => sync.next() };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

type ExtractResult = Pick<UnpackResult, "uidset" | "gidset" | "rootEntry">;

/**
 * The extractor's file-system calls are synchronous, on the daemon's only JS thread; a layer of
 * many small files whose data is already buffered would keep every RPC waiting until it is done.
 * Yield to the event loop at least this often.
 */
const YIELD_EVERY_MS = 10;

async function extract(reader: TarReader, targetDir: string, opts: UnpackOptions): Promise<ExtractResult> {
  const x = new Extractor(targetDir, opts);
  try {
    let lastYield = performance.now();
    for (;;) {
      opts.signal?.throwIfAborted();
      const entry = await reader.next().catch(asLayerError);
      if (entry === null) break;
      await x.apply(entry);
      if (performance.now() - lastYield >= YIELD_EVERY_MS) {
        await new Promise<void>((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
    x.finish();
  } finally {
    x.close();
  }
  return { uidset: [...x.uids].sort((a, b) => a - b), gidset: [...x.gids].sort((a, b) => a - b), rootEntry: x.rootEntry };
}

function asLayerError(err: unknown): never {
  if (err instanceof TarError) {
    throw new LayerError(err.code === "unsupported" ? "unsupported" : "corrupt", err.message, undefined, { cause: err });
  }
  throw err;
}

const WHITEOUT_PREFIX = ".wh.";
const WHITEOUT_META_PREFIX = ".wh..wh.";
const WHITEOUT_OPAQUE = ".wh..wh..opq";
const OPAQUE_XATTR = "trusted.overlay.opaque";
const PATH_MAX = 4096;
const NAME_MAX = 255;
const PARENT_CACHE_MAX = 32;
const encoder = new TextEncoder();

const EEXIST = 17;
const ENOENT = 2;
const ENOTDIR = 20;
const EPERM = 1;
const EOPNOTSUPP = 95;

/** Cleans a tar name into components: "", "." dropped, ".." applied; null when ".." climbs above the root. */
export function cleanName(name: string): string[] | null {
  const absolute = name.startsWith("/");
  const out: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (out.length > 0) out.pop();
      else if (!absolute) return null; // "/.." is "/" (as filepath.Clean), "../x" escapes
      continue;
    }
    out.push(c);
  }
  return out;
}

function errnoOf(err: unknown): number | undefined {
  return err instanceof SyscallError ? err.errno : undefined;
}

function isType(st: sys.Stat | null, type: number): boolean {
  return st !== null && (st.mode & sys.S_IFMT) === type;
}

/** Last access never before last modification (as upstream sets them). */
function accessTime(h: TarHeader): TarTime {
  const a = h.atime;
  if (!a || a.sec < h.mtime.sec || (a.sec === h.mtime.sec && a.nsec < h.mtime.nsec)) return h.mtime;
  return a;
}

interface PendingDir {
  components: Uint8Array[];
  atime: TarTime;
  mtime: TarTime;
}

class Extractor {
  private readonly rootfd: number;
  private readonly opts: UnpackOptions;
  private readonly isRoot = sys.geteuid() === 0;
  /** Set when the archive had an entry for the root directory itself. */
  rootEntry = false;
  /** Parent directory fds by their joined component path (insertion order = age). */
  private readonly parents = new Map<string, number>();
  /** Fds dropped from the cache while an entry may still use them: closed once it is done. */
  private readonly retired: number[] = [];
  private readonly dirs: PendingDir[] = [];
  readonly uids = new Set<number>();
  readonly gids = new Set<number>();

  constructor(targetDir: string, opts: UnpackOptions) {
    this.opts = opts;
    this.rootfd = sys.openat2(sys.AT_FDCWD, targetDir, sys.O_RDONLY | sys.O_DIRECTORY, 0, 0);
  }

  close(): void {
    this.dropParents();
    this.closeRetired();
    sys.close(this.rootfd);
  }

  private closeRetired(): void {
    for (const fd of this.retired.splice(0)) sys.close(fd);
  }

  async apply(entry: TarEntry): Promise<void> {
    const h = entry.header;
    if (h.type === "global") return; // pax global headers are reported and ignored, as upstream
    try {
      await this.applyEntry(entry);
    } catch (err) {
      if (err instanceof LayerError) {
        if (err.entry !== undefined) throw err;
        throw new LayerError(err.kind, err.reason, h.name, { cause: err.cause });
      }
      if (err instanceof TarError) {
        throw new LayerError(err.code === "unsupported" ? "unsupported" : "corrupt", err.message, h.name, { cause: err });
      }
      const msg = err instanceof Error ? err.message : String(err);
      throw new LayerError("invalid", msg, h.name, { cause: err });
    } finally {
      this.closeRetired();
    }
  }

  /** Sets the deferred directory times, now that nothing more is created inside them. */
  finish(): void {
    for (const d of this.dirs) {
      if (d.components.length === 0) {
        sys.futimens(this.rootfd, d.atime, d.mtime);
        continue;
      }
      const base = d.components[d.components.length - 1]!;
      let parent: number;
      try {
        parent = this.parent(d.components.slice(0, -1), false);
      } catch (err) {
        if (errnoOf(err) === ENOENT || errnoOf(err) === ENOTDIR) continue; // replaced later in the layer
        throw err;
      }
      if (isType(sys.lstatAt(parent, base), sys.S_IFDIR)) {
        sys.utimensat(parent, base, d.atime, d.mtime, sys.AT_SYMLINK_NOFOLLOW);
      }
      this.closeRetired();
    }
  }

  private encodeName(h: TarHeader): Uint8Array {
    return h.rawName ?? encoder.encode(h.name);
  }

  /** The entry's cleaned components as bytes, or a LayerError. */
  private components(h: TarHeader, raw: Uint8Array | undefined, text: string, what: string): Uint8Array[] {
    const bytes = raw ?? encoder.encode(text);
    if (bytes.includes(0)) throw new LayerError("invalid", `${what} contains a NUL byte`, h.name);
    if (bytes.length >= PATH_MAX) throw new LayerError("invalid", `${what} is ${bytes.length} bytes long (PATH_MAX is ${PATH_MAX})`, h.name);
    // Work on a latin1 reading of the bytes so that '/', '.' and ".." are found byte for byte.
    const cleaned = cleanName(Buffer.from(bytes).toString("latin1"));
    if (cleaned === null) throw new LayerError("escape", `${what} climbs out of the layer root with ".."`, h.name);
    return cleaned.map((c) => {
      const b = Uint8Array.from(Buffer.from(c, "latin1"));
      if (b.length > NAME_MAX) throw new LayerError("invalid", `a component of ${what} is longer than ${NAME_MAX} bytes`, h.name);
      return b;
    });
  }

  private async applyEntry(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const comps = this.components(h, h.rawName, h.name, "name");
    this.uids.add(h.uid);
    this.gids.add(h.gid);

    if (comps.length === 0) {
      // The layer root itself: only a directory may stand there; its metadata applies to the target.
      if (h.type !== "dir") throw new LayerError("invalid", `a ${h.type} entry cannot replace the layer root`, h.name);
      this.setDirMetadata(this.rootfd, h, []);
      this.rootEntry = true;
      return;
    }
    const base = comps[comps.length - 1]!;
    const dirComps = comps.slice(0, -1);
    const baseText = Buffer.from(base).toString("latin1");

    if (baseText.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(h, dirComps, baseText);
      return;
    }

    if (h.type === "unknown") {
      throw new LayerError("unsupported", `unsupported entry type ${JSON.stringify(h.typeflag)}`, h.name);
    }
    if ((h.type === "char" || h.type === "block") && !this.isRoot) {
      this.opts.onWarning?.(`skipping device node ${h.name}: not running as root`);
      return;
    }

    const parent = this.parent(dirComps, true);
    switch (h.type) {
      case "file":
        await this.regularFile(entry, parent, base);
        break;
      case "dir":
        this.directory(h, parent, base, comps);
        break;
      case "symlink":
        this.create(parent, base, () => sys.symlinkat(h.rawLinkname ?? h.linkname, parent, base));
        sys.fchownat(parent, base, h.uid, h.gid, sys.AT_SYMLINK_NOFOLLOW);
        sys.utimensat(parent, base, accessTime(h), h.mtime, sys.AT_SYMLINK_NOFOLLOW);
        this.setXattrs(h, (k, v) => sys.lsetxattrAt(parent, base, k, v));
        break;
      case "link":
        this.hardLink(h, parent, base);
        break;
      case "char":
      case "block":
      case "fifo": {
        const type = h.type === "char" ? sys.S_IFCHR : h.type === "block" ? sys.S_IFBLK : sys.S_IFIFO;
        this.create(parent, base, () => sys.mknodat(parent, base, type | (h.mode & 0o777), h.devmajor, h.devminor));
        this.setNodeMetadata(h, parent, base);
        break;
      }
    }
  }

  /**
   * Runs `make` (which creates `base` under `parent`); when the name is taken, removes what is
   * there (a directory with its contents) and runs it again: an entry replaces an existing one.
   */
  private create(parent: number, base: Uint8Array, make: () => void): void {
    try {
      make();
      return;
    } catch (err) {
      if (errnoOf(err) !== EEXIST) throw err;
    }
    this.remove(parent, base);
    make();
  }

  private remove(parent: number, base: Uint8Array): void {
    const st = sys.lstatAt(parent, base);
    if (st === null) return;
    // A removed directory or symlink may be part of how a cached parent was reached.
    if (isType(st, sys.S_IFDIR) || isType(st, sys.S_IFLNK)) this.dropParents();
    sys.removeAllAt(parent, base);
  }

  private async regularFile(entry: TarEntry, parent: number, base: Uint8Array): Promise<void> {
    const h = entry.header;
    const flags = sys.O_WRONLY | sys.O_CREAT | sys.O_EXCL | sys.O_NOFOLLOW | sys.O_NOCTTY;
    let fd = -1;
    this.create(parent, base, () => {
      fd = sys.openat(parent, base, flags, 0o600);
    });
    try {
      for await (const chunk of entry.chunks()) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      sys.fchown(fd, h.uid, h.gid);
      sys.fchmod(fd, h.mode); // after chown, which clears setuid/setgid
      this.setXattrs(h, (k, v) => sys.fsetxattr(fd, k, v));
      sys.futimens(fd, accessTime(h), h.mtime);
    } finally {
      sys.close(fd);
    }
  }

  private directory(h: TarHeader, parent: number, base: Uint8Array, comps: Uint8Array[]): void {
    try {
      sys.mkdirat(parent, base, h.mode & 0o777);
    } catch (err) {
      if (errnoOf(err) !== EEXIST) throw err;
      // Directory over directory merges; anything else is replaced.
      if (!isType(sys.lstatAt(parent, base), sys.S_IFDIR)) {
        this.remove(parent, base);
        sys.mkdirat(parent, base, h.mode & 0o777);
      }
    }
    const fd = sys.openBeneath(parent, base, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW);
    try {
      this.setDirMetadata(fd, h, comps);
    } catch (err) {
      sys.close(fd);
      throw err;
    }
    // Later entries most likely go into this directory: keep its fd as their parent.
    this.cacheParent(comps.map((c) => Buffer.from(c).toString("latin1")).join("/"), fd);
  }

  private setDirMetadata(fd: number, h: TarHeader, comps: Uint8Array[]): void {
    sys.fchown(fd, h.uid, h.gid);
    sys.fchmod(fd, h.mode);
    this.setXattrs(h, (k, v) => sys.fsetxattr(fd, k, v));
    this.dirs.push({ components: comps, atime: accessTime(h), mtime: h.mtime });
  }

  private hardLink(h: TarHeader, parent: number, base: Uint8Array): void {
    const target = this.components(h, h.rawLinkname, h.linkname, "hard link target");
    if (target.length === 0) throw new LayerError("invalid", "hard link to the layer root", h.name);
    let targetParent: number;
    try {
      targetParent = this.parent(target.slice(0, -1), false);
    } catch (err) {
      const e = errnoOf(err);
      if (e === ENOENT || e === ENOTDIR) {
        throw new LayerError("invalid", `hard link target ${JSON.stringify(h.linkname)} does not exist in the layer`, h.name, { cause: err });
      }
      throw err;
    }
    const targetBase = target[target.length - 1]!;
    try {
      this.create(parent, base, () => sys.linkat(targetParent, targetBase, parent, base, 0));
    } catch (err) {
      if (errnoOf(err) === ENOENT) {
        throw new LayerError("invalid", `hard link target ${JSON.stringify(h.linkname)} does not exist in the layer`, h.name, { cause: err });
      }
      throw err;
    }
    // As upstream: the link's header metadata applies to the (shared) inode, unless it is a symlink.
    sys.fchownat(parent, base, h.uid, h.gid, sys.AT_SYMLINK_NOFOLLOW);
    if (!isType(sys.lstatAt(parent, base), sys.S_IFLNK)) {
      sys.fchmodat(parent, base, h.mode);
      sys.utimensat(parent, base, accessTime(h), h.mtime, sys.AT_SYMLINK_NOFOLLOW);
    }
    this.setXattrs(h, (k, v) => sys.lsetxattrAt(parent, base, k, v));
  }

  private setNodeMetadata(h: TarHeader, parent: number, base: Uint8Array): void {
    sys.fchownat(parent, base, h.uid, h.gid, sys.AT_SYMLINK_NOFOLLOW);
    sys.fchmodat(parent, base, h.mode); // a node we just made, not a symlink
    sys.utimensat(parent, base, accessTime(h), h.mtime, sys.AT_SYMLINK_NOFOLLOW);
    this.setXattrs(h, (k, v) => sys.lsetxattrAt(parent, base, k, v));
  }

  /** ".wh..wh..opq" marks its directory opaque; ".wh.NAME" becomes the 0:0 character device NAME. */
  private whiteout(h: TarHeader, dirComps: Uint8Array[], baseText: string): void {
    if (baseText === WHITEOUT_OPAQUE) {
      const parent = this.parent(dirComps, true);
      sys.fsetxattr(parent, OPAQUE_XATTR, encoder.encode("y"));
      return;
    }
    if (baseText.startsWith(WHITEOUT_META_PREFIX)) {
      this.parent(dirComps, true); // other AUFS metadata (.wh..wh.plnk, ...): only its directory is made
      return;
    }
    const name = baseText.slice(WHITEOUT_PREFIX.length);
    if (name === "" || name === "." || name === "..") {
      throw new LayerError("escape", `invalid whiteout name ${JSON.stringify(baseText)}`, h.name);
    }
    let parent: number;
    try {
      parent = this.parent(dirComps, true);
    } catch (err) {
      // "rm -rf /foo/bar" can give both "/.wh.foo" and "/foo/.wh.bar": foo is already a whiteout.
      if (errnoOf(err) === ENOTDIR) return;
      throw err;
    }
    const base = Uint8Array.from(Buffer.from(name, "latin1"));
    sys.mknodat(parent, base, sys.S_IFCHR, 0, 0);
    sys.fchownat(parent, base, h.uid, h.gid, sys.AT_SYMLINK_NOFOLLOW);
  }

  private setXattrs(h: TarHeader, set: (key: string, value: Uint8Array) => void): void {
    for (const [key, value] of h.xattrs) {
      if (key === "security.selinux") continue; // as upstream: labels come from the runtime
      if (key.startsWith("trusted.overlay.")) {
        // Overlay's own attributes (opaque, redirect, metacopy, origin) would change how the
        // mount merges layers; only the whiteout conversion above may set them.
        this.opts.onWarning?.(`${h.name}: ignoring xattr ${key}`);
        continue;
      }
      try {
        set(key, value);
      } catch (err) {
        const e = errnoOf(err);
        if (e === EOPNOTSUPP || (e === EPERM && !this.isRoot)) {
          this.opts.onWarning?.(`${h.name}: xattr ${key} not set: ${(err as Error).message}`);
          continue;
        }
        throw err;
      }
    }
  }

  private cacheParent(key: string, fd: number): void {
    const old = this.parents.get(key);
    if (old !== undefined) {
      this.parents.delete(key);
      if (old !== fd) this.retired.push(old);
    }
    this.parents.set(key, fd);
    if (this.parents.size > PARENT_CACHE_MAX) {
      const [oldestKey, oldestFd] = this.parents.entries().next().value!;
      this.parents.delete(oldestKey);
      this.retired.push(oldestFd);
    }
  }

  private dropParents(): void {
    this.retired.push(...this.parents.values());
    this.parents.clear();
  }

  /**
   * A descriptor of the directory at `comps`, resolved inside the root (symlinks included, each
   * clamped at the root). With `create`, missing directories are made (0755, as upstream's
   * MkdirAll); a dangling symlink on the way is refused rather than followed.
   */
  private parent(comps: Uint8Array[], create: boolean): number {
    if (comps.length === 0) return this.rootfd;
    const key = comps.map((c) => Buffer.from(c).toString("latin1")).join("/");
    const cached = this.parents.get(key);
    if (cached !== undefined) return cached;
    const path = joinBytes(comps);
    let fd: number;
    try {
      fd = sys.openInRoot(this.rootfd, path, sys.O_RDONLY | sys.O_DIRECTORY);
    } catch (err) {
      if (!create || errnoOf(err) !== ENOENT) throw err;
      fd = this.makeParents(comps);
    }
    this.cacheParent(key, fd);
    return fd;
  }

  private makeParents(comps: Uint8Array[]): number {
    let fd = this.rootfd;
    const release = (): void => {
      if (fd !== this.rootfd) sys.close(fd);
    };
    try {
      for (let i = 0; i < comps.length; i++) {
        const comp = comps[i]!;
        let next: number;
        try {
          next = sys.openInRoot(this.rootfd, joinBytes(comps.slice(0, i + 1)), sys.O_RDONLY | sys.O_DIRECTORY);
        } catch (err) {
          if (errnoOf(err) !== ENOENT) throw err;
          const st = sys.lstatAt(fd, comp);
          if (st !== null && isType(st, sys.S_IFLNK)) {
            const where = comps.slice(0, i + 1).map((c) => Buffer.from(c).toString()).join("/");
            throw new LayerError("escape", `parent ${JSON.stringify(where)} is a symlink to a directory that does not exist in the layer`);
          }
          if (st !== null) throw err;
          sys.mkdirat(fd, comp, 0o755);
          next = sys.openBeneath(fd, comp, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW);
        }
        release();
        fd = next;
      }
      return fd;
    } catch (err) {
      release();
      throw err;
    }
  }
}

function joinBytes(comps: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(comps.reduce((n, c) => n + c.length + 1, 0) - 1);
  let off = 0;
  comps.forEach((c, i) => {
    if (i > 0) out[off++] = 0x2f;
    out.set(c, off);
    off += c.length;
  });
  return out;
}
