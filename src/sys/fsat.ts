// Directory-fd relative file system calls: what a layer unpacker needs to create files so that no
// path component can ever resolve outside the layer root. Paths are resolved either from the layer
// root with openat2(RESOLVE_IN_ROOT) (".." and absolute symlinks are clamped at the root, as in a
// chroot), or as a single, already validated component relative to a directory fd.
import { FFIType } from "bun:ffi";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";

const isArm64 = process.arch === "arm64";
if (process.arch !== "x64" && !isArm64) {
  // The constants below are for x86_64 and aarch64 only (O_DIRECTORY/O_NOFOLLOW and syscall
  // numbers differ on other architectures).
  throw new Error(`src/sys/fsat: unsupported architecture ${process.arch}`);
}

// open(2) flags. O_DIRECTORY and O_NOFOLLOW differ between x86_64 (asm-generic) and aarch64.
export const O_RDONLY = 0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = isArm64 ? 0o40000 : 0o200000;
export const O_NOFOLLOW = isArm64 ? 0o100000 : 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

// *at(2) flags.
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EMPTY_PATH = 0x1000;

// openat2(2) resolve flags (linux/openat2.h).
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

// File type bits of st_mode.
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o60000;
export const S_IFDIR = 0o40000;
export const S_IFCHR = 0o20000;
export const S_IFIFO = 0o10000;

const SYS_openat2 = 437; // the same on x86_64 and aarch64 (the unified numbers from 424 on)
const SYS_getdents64 = isArm64 ? 61 : 217;
const UTIME_OMIT = (1 << 30) - 2;

const { i32, u32, u64, i64, i64_fast, ptr: pointer } = FFIType;
const fs = bindLibc({
  // glibc 2.36 has no openat2 wrapper: syscall(2), every argument passed as a 64-bit integer.
  syscall: { args: [i64, i64, i64, i64, i64], returns: i64_fast },
  openat: { args: [i32, pointer, i32, u32], returns: i32 },
  mkdirat: { args: [i32, pointer, u32], returns: i32 },
  mknodat: { args: [i32, pointer, u32, u64], returns: i32 },
  symlinkat: { args: [pointer, i32, pointer], returns: i32 },
  linkat: { args: [i32, pointer, i32, pointer, i32], returns: i32 },
  unlinkat: { args: [i32, pointer, i32], returns: i32 },
  renameat: { args: [i32, pointer, i32, pointer], returns: i32 },
  fchownat: { args: [i32, pointer, u32, u32, i32], returns: i32 },
  fchown: { args: [i32, u32, u32], returns: i32 },
  fchmod: { args: [i32, u32], returns: i32 },
  fchmodat: { args: [i32, pointer, u32, i32], returns: i32 },
  utimensat: { args: [i32, pointer, pointer, i32], returns: i32 },
  futimens: { args: [i32, pointer], returns: i32 },
  fsetxattr: { args: [i32, pointer, pointer, u64, i32], returns: i32 },
  lsetxattr: { args: [pointer, pointer, pointer, u64, i32], returns: i32 },
  statx: { args: [i32, pointer, i32, u32, pointer], returns: i32 },
  ftruncate: { args: [i32, i64], returns: i32 },
  close: { args: [i32], returns: i32 },
  geteuid: { args: [], returns: u32 },
});

const encoder = new TextEncoder();

/** A path or name as the kernel sees it: a string (encoded as UTF-8) or raw bytes. */
export type PathArg = string | Uint8Array;

/** NUL-terminated bytes of `p`; a NUL inside the name is refused rather than silently truncating it. */
export function cstr(p: PathArg): Uint8Array {
  const bytes = typeof p === "string" ? encoder.encode(p) : p;
  if (bytes.includes(0)) throw new Error(`path contains a NUL byte: ${JSON.stringify(String(p))}`);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function show(p: PathArg): string {
  return typeof p === "string" ? p : new TextDecoder().decode(p);
}

/** A time as seconds and nanoseconds since the epoch (what utimensat takes). */
export interface Timespec {
  sec: number;
  nsec: number;
}

// Reused argument buffers: JS is single-threaded and every call below is synchronous.
const openHow = new BigUint64Array(3);
const times = new BigInt64Array(4);
const statxBuf = new Uint8Array(256);
const statxView = new DataView(statxBuf.buffer);

/**
 * openat2(2) with an explicit resolve mask. Retries EAGAIN, which RESOLVE_IN_ROOT/BENEATH return
 * when a concurrent rename might have let ".." escape (the kernel asks the caller to retry).
 */
export function openat2(dirfd: number, path: PathArg, flags: number, mode: number, resolve: number): number {
  const p = cstr(path);
  openHow[0] = BigInt(flags | O_CLOEXEC);
  openHow[1] = BigInt(flags & O_CREAT ? mode : 0);
  openHow[2] = BigInt(resolve);
  for (let attempt = 0; ; attempt++) {
    const fd = fs.syscall(SYS_openat2, dirfd, ptr(p), ptr(openHow), 24);
    if (fd >= 0) return Number(fd);
    const err = errno();
    if (err === 11 /* EAGAIN */ && attempt < 64) continue;
    throw new SyscallError("openat2", err, show(path));
  }
}

/** Resolution confined to a root: ".." and absolute symlinks stop at `rootfd`; no magic links, no mount crossing. */
export const RESOLVE_ROOTED = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
/** Resolution of one component under a directory: no symlinks at all. */
export const RESOLVE_STRICT = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

/** Opens `path` (relative, any depth) as the kernel would inside a chroot at `rootfd`. */
export function openInRoot(rootfd: number, path: PathArg, flags: number, mode = 0): number {
  return openat2(rootfd, path, flags, mode, RESOLVE_ROOTED);
}

/** Opens `name` under `dirfd` refusing every symlink, "..", magic link and mount crossing. */
export function openBeneath(dirfd: number, name: PathArg, flags: number, mode = 0): number {
  return openat2(dirfd, name, flags, mode, RESOLVE_STRICT);
}

/** openat(2) on one component (the caller validated it has no '/'), for creating files. */
export function openat(dirfd: number, name: PathArg, flags: number, mode = 0): number {
  return check("openat", fs.openat(dirfd, cstr(name), flags | O_CLOEXEC, mode), show(name));
}

export function mkdirat(dirfd: number, name: PathArg, mode: number): void {
  check("mkdirat", fs.mkdirat(dirfd, cstr(name), mode), show(name));
}

/**
 * glibc's dev_t encoding (gnu_dev_makedev), the same on x86_64 and aarch64: the low 8 bits of the
 * minor, 12 bits of major, the rest of the minor, then the high major bits.
 */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknodat(2): `mode` carries the type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
export function mknodat(dirfd: number, name: PathArg, mode: number, major = 0, minor = 0): void {
  check("mknodat", fs.mknodat(dirfd, cstr(name), mode, makedev(major, minor)), show(name));
}

/** symlinkat(2): `target` is stored as data, never resolved. */
export function symlinkat(target: PathArg, dirfd: number, name: PathArg): void {
  check("symlinkat", fs.symlinkat(cstr(target), dirfd, cstr(name)), show(name));
}

export function linkat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags = 0): void {
  check("linkat", fs.linkat(olddirfd, cstr(oldname), newdirfd, cstr(newname), flags), `${show(oldname)} -> ${show(newname)}`);
}

export function unlinkat(dirfd: number, name: PathArg, flags = 0): void {
  check("unlinkat", fs.unlinkat(dirfd, cstr(name), flags), show(name));
}

export function renameat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg): void {
  check("renameat", fs.renameat(olddirfd, cstr(oldname), newdirfd, cstr(newname)), `${show(oldname)} -> ${show(newname)}`);
}

/** fchownat(2); pass AT_SYMLINK_NOFOLLOW to change a symlink itself. */
export function fchownat(dirfd: number, name: PathArg, uid: number, gid: number, flags: number): void {
  check("fchownat", fs.fchownat(dirfd, cstr(name), uid >>> 0, gid >>> 0, flags), show(name));
}

export function fchown(fd: number, uid: number, gid: number): void {
  check("fchown", fs.fchown(fd, uid >>> 0, gid >>> 0));
}

/** fchmod(2): all 12 permission bits (setuid, setgid, sticky included). Call after chown, which clears setuid. */
export function fchmod(fd: number, mode: number): void {
  check("fchmod", fs.fchmod(fd, mode & 0o7777));
}

/**
 * fchmodat(2) without AT_SYMLINK_NOFOLLOW (Linux does not support it): follows a final symlink,
 * so callers use it only on a name they just checked is not one.
 */
export function fchmodat(dirfd: number, name: PathArg, mode: number): void {
  check("fchmodat", fs.fchmodat(dirfd, cstr(name), mode & 0o7777, 0), show(name));
}

function setTimes(atime: Timespec | null, mtime: Timespec | null): void {
  times[0] = BigInt(atime?.sec ?? 0);
  times[1] = BigInt(atime ? atime.nsec : UTIME_OMIT);
  times[2] = BigInt(mtime?.sec ?? 0);
  times[3] = BigInt(mtime ? mtime.nsec : UTIME_OMIT);
}

/** utimensat(2) with nanoseconds; null leaves that time unchanged. AT_SYMLINK_NOFOLLOW sets a symlink's own times. */
export function utimensat(dirfd: number, name: PathArg, atime: Timespec | null, mtime: Timespec | null, flags: number): void {
  setTimes(atime, mtime);
  check("utimensat", fs.utimensat(dirfd, cstr(name), ptr(times), flags), show(name));
}

/** futimens(3): the times of an open file. */
export function futimens(fd: number, atime: Timespec | null, mtime: Timespec | null): void {
  setTimes(atime, mtime);
  check("futimens", fs.futimens(fd, ptr(times)));
}

export function fsetxattr(fd: number, key: string, value: Uint8Array, flags = 0): void {
  const v = value.length > 0 ? value : new Uint8Array(1);
  check("fsetxattr", fs.fsetxattr(fd, cstr(key), ptr(v), BigInt(value.length), flags), key);
}

/**
 * lsetxattr(2) of `name` in the directory `dirfd`, for entries that cannot be opened (symlinks,
 * devices, fifos). Linux has no setxattrat before 6.13, so the directory is named through
 * /proc/self/fd/N: that magic link is our own already-resolved directory, and `name` is a single
 * component that lsetxattr does not follow.
 */
export function lsetxattrAt(dirfd: number, name: string | Uint8Array, key: string, value: Uint8Array): void {
  const prefix = encoder.encode(`/proc/self/fd/${dirfd}/`);
  const n = typeof name === "string" ? encoder.encode(name) : name;
  if (n.includes(0x2f)) throw new Error(`lsetxattrAt: ${show(name)} is not a single path component`);
  const full = new Uint8Array(prefix.length + n.length);
  full.set(prefix);
  full.set(n, prefix.length);
  const v = value.length > 0 ? value : new Uint8Array(1);
  check("lsetxattr", fs.lsetxattr(cstr(full), cstr(key), ptr(v), BigInt(value.length), 0), `${show(name)} ${key}`);
}

export function ftruncate(fd: number, length: number): void {
  check("ftruncate", fs.ftruncate(fd, length));
}

export function close(fd: number): void {
  check("close", fs.close(fd));
}

export function geteuid(): number {
  return fs.geteuid();
}

/** What statx(2) reports, in one layout for every architecture. */
export interface Stat {
  mode: number; // type and permission bits (st_mode)
  uid: number;
  gid: number;
  nlink: number;
  ino: bigint;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  devMajor: number;
  devMinor: number;
  atime: Timespec;
  mtime: Timespec;
}

const STATX_BASIC_STATS = 0x7ff;

function readStatx(): Stat {
  const ts = (off: number): Timespec => ({
    sec: Number(statxView.getBigInt64(off, true)),
    nsec: statxView.getUint32(off + 8, true),
  });
  return {
    nlink: statxView.getUint32(16, true),
    uid: statxView.getUint32(20, true),
    gid: statxView.getUint32(24, true),
    mode: statxView.getUint16(28, true),
    ino: statxView.getBigUint64(32, true),
    size: Number(statxView.getBigUint64(40, true)),
    atime: ts(64),
    mtime: ts(112),
    rdevMajor: statxView.getUint32(128, true),
    rdevMinor: statxView.getUint32(132, true),
    devMajor: statxView.getUint32(136, true),
    devMinor: statxView.getUint32(140, true),
  };
}

/** lstat of one name under `dirfd` (does not follow a final symlink); null when it does not exist. */
export function lstatAt(dirfd: number, name: PathArg): Stat | null {
  const ret = fs.statx(dirfd, cstr(name), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, ptr(statxBuf));
  if (ret < 0) {
    const err = errno();
    if (err === 2 /* ENOENT */) return null;
    throw new SyscallError("statx", err, show(name));
  }
  return readStatx();
}

/** fstat of an open fd (statx with AT_EMPTY_PATH). */
export function fstat(fd: number): Stat {
  check("statx", fs.statx(fd, cstr(""), AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, ptr(statxBuf)));
  return readStatx();
}

const direntBuf = new Uint8Array(64 * 1024);
const direntView = new DataView(direntBuf.buffer);

/** The names in the directory open at `fd` (without "." and ".."), as raw bytes, via getdents64(2). */
export function readdirAt(fd: number): Uint8Array[] {
  const names: Uint8Array[] = [];
  for (;;) {
    const n = Number(fs.syscall(SYS_getdents64, fd, ptr(direntBuf), direntBuf.length, 0));
    if (n < 0) throw new SyscallError("getdents64", errno());
    if (n === 0) return names;
    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    for (let off = 0; off < n; ) {
      const reclen = direntView.getUint16(off + 16, true);
      const start = off + 19;
      let end = start;
      while (direntBuf[end] !== 0) end++;
      const name = direntBuf.slice(start, end);
      const dot = name.length === 1 && name[0] === 0x2e;
      const dotdot = name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
      if (!dot && !dotdot) names.push(name);
      off += reclen;
    }
  }
}

/**
 * Removes `name` under `dirfd` and, for a directory, everything below it, without following any
 * symlink: each level is opened with openBeneath (no symlinks) and emptied through its own fd.
 */
export function removeAllAt(dirfd: number, name: PathArg): void {
  const st = lstatAt(dirfd, name);
  if (st === null) return;
  if ((st.mode & S_IFMT) !== S_IFDIR) {
    unlinkat(dirfd, name, 0);
    return;
  }
  const fd = openBeneath(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    for (const child of readdirAt(fd)) removeAllAt(fd, child);
  } finally {
    fs.close(fd);
  }
  unlinkat(dirfd, name, AT_REMOVEDIR);
}
