// Shared tar vocabulary for the reader and the writer (POSIX.1-2001 ustar/pax and the GNU extensions).

/** A time as seconds and nanoseconds since the epoch. */
export interface TarTime {
  sec: number;
  nsec: number;
}

/** What an entry is, decoded from its typeflag. */
export type TarEntryType =
  | "file" // '0', '\0' (old regular file), '7' (contiguous file, read as a regular file)
  | "link" // '1' hard link to linkname
  | "symlink" // '2'
  | "char" // '3'
  | "block" // '4'
  | "dir" // '5' (and an old-style '\0' entry whose name ends with '/')
  | "fifo" // '6'
  | "global" // 'g': a pax global header, reported as its own entry (as Go's archive/tar does)
  | "unknown"; // any other typeflag, kept in `typeflag`

export interface TarHeader {
  /** Path as stored (after pax/GNU long-name overrides); not cleaned. */
  name: string;
  /** Hard link or symlink target. */
  linkname: string;
  type: TarEntryType;
  /** The raw typeflag character. */
  typeflag: string;
  /** Permission bits (including setuid, setgid, sticky): mode & 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of data that follow the header (0 for header-only types). */
  size: number;
  mtime: TarTime;
  atime?: TarTime;
  ctime?: TarTime;
  devmajor: number;
  devminor: number;
  /** Extended attributes from SCHILY.xattr.* and LIBARCHIVE.xattr.* records; values are raw bytes. */
  xattrs: Map<string, Uint8Array>;
  /** Every pax record that applied to this entry (values decoded as UTF-8). */
  pax: Map<string, string>;
  format: "v7" | "ustar" | "gnu" | "pax";
  /** Set only when the name is not valid UTF-8: its bytes (then `name` is their latin1 reading). */
  rawName?: Uint8Array;
  /** Set only when the link name is not valid UTF-8. */
  rawLinkname?: Uint8Array;
}

/** A malformed, truncated or unsupported archive. */
export class TarError extends Error {
  readonly code: "truncated" | "checksum" | "header" | "unsupported" | "too-large";
  constructor(code: TarError["code"], message: string) {
    super(`tar: ${message}`);
    this.name = "TarError";
    this.code = code;
  }
}

export const BLOCK = 512;

/** Typeflags and the entry types they read as. */
export const typeflagOf: Record<Exclude<TarEntryType, "unknown">, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
  global: "g",
};
