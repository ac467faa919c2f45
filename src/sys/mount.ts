// mount(2)/umount2(2) and the file-system probes the overlay storage driver needs before it
// trusts a backing file system: its statfs magic, whether readdir fills d_type, and whether
// character-device whiteouts can be created.
import { CString, FFIType, read, type Pointer } from "bun:ffi";
import { readFileSync } from "node:fs";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";

const fns = bindLibc({
  mount: { args: [FFIType.cstring, FFIType.cstring, FFIType.cstring, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  umount2: { args: [FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
  mknod: { args: [FFIType.cstring, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  statfs: { args: [FFIType.cstring, FFIType.ptr], returns: FFIType.i32 },
  opendir: { args: [FFIType.cstring], returns: FFIType.ptr },
  readdir: { args: [FFIType.ptr], returns: FFIType.ptr },
  closedir: { args: [FFIType.ptr], returns: FFIType.i32 },
  statx: { args: [FFIType.i32, FFIType.cstring, FFIType.i32, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
});

export const MNT_DETACH = 2;
export const S_IFCHR = 0o020000;

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/** mount(2). `data` is the file-system specific option string (e.g. overlay's lowerdir=...). */
export function mount(source: string, target: string, fstype: string, flags: number, data?: string): void {
  const d = data === undefined ? null : ptr(cstr(data));
  check("mount", fns.mount(ptr(cstr(source)), ptr(cstr(target)), ptr(cstr(fstype)), BigInt(flags), d), target);
}

/** umount2(2). */
export function umount2(target: string, flags = 0): void {
  check("umount2", fns.umount2(ptr(cstr(target)), flags), target);
}

/** mknod(2); `dev` is the encoded device number (0 for an overlay whiteout). */
export function mknod(path: string, mode: number, dev = 0): void {
  check("mknod", fns.mknod(ptr(cstr(path)), mode, BigInt(dev)), path);
}

/** The f_type magic of the file system holding `path` (struct statfs starts with f_type, a long). */
export function statfsType(path: string): number {
  const buf = new Uint8Array(128);
  check("statfs", fns.statfs(ptr(cstr(path)), ptr(buf)), path);
  return Number(new DataView(buf.buffer).getBigInt64(0, true));
}

/** File-system names for the magics the overlay driver cares about (linux/magic.h). */
export const FS_MAGIC: Readonly<Record<string, number>> = {
  aufs: 0x61756673,
  btrfs: 0x9123683e,
  ecryptfs: 0xf15f,
  ext4: 0xef53,
  overlay: 0x794c7630,
  tmpfs: 0x01021994,
  xfs: 0x58465342,
  zfs: 0x2fc12fc1,
  nfs: 0x6969,
  fuse: 0x65735546,
};

export function fsName(magic: number): string {
  for (const [name, m] of Object.entries(FS_MAGIC)) if (m === magic) return name;
  return `0x${magic.toString(16)}`;
}

const DT_UNKNOWN = 0;
// struct dirent (glibc, LP64): d_ino u64 @0, d_off i64 @8, d_reclen u16 @16, d_type u8 @18, d_name @19.
const D_TYPE_OFFSET = 18;
const D_NAME_OFFSET = 19;

/**
 * Whether readdir(3) on `dir` reports entry types (d_type), which overlayfs requires of its
 * backing file system. `dir` must contain at least one entry besides "." and "..".
 */
export function supportsDType(dir: string): boolean {
  const handle = fns.opendir(ptr(cstr(dir)));
  if (handle === null) throw new SyscallError("opendir", errno(), dir);
  try {
    for (;;) {
      const ent = fns.readdir(handle) as Pointer | null;
      if (ent === null) return true;
      const name = new CString(ent, D_NAME_OFFSET).toString();
      if (name === "." || name === "..") continue;
      if (read.u8(ent, D_TYPE_OFFSET) === DT_UNKNOWN) return false;
    }
  } finally {
    fns.closedir(handle);
  }
}

// ---- mount options and mount points (pkg/mount ParseOptions, mountinfo) ----

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
export const MS_PRIVATE = 0x40000;

/** Option words that are mount(2) flags: [clear, flag] as pkg/mount's flags table. */
const FLAG_OPTIONS: Readonly<Record<string, readonly [boolean, number]>> = {
  defaults: [false, 0],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  suid: [true, MS_NOSUID],
  nosuid: [false, MS_NOSUID],
  dev: [true, MS_NODEV],
  nodev: [false, MS_NODEV],
  exec: [true, MS_NOEXEC],
  noexec: [false, MS_NOEXEC],
  sync: [false, MS_SYNCHRONOUS],
  async: [true, MS_SYNCHRONOUS],
  dirsync: [false, MS_DIRSYNC],
  remount: [false, MS_REMOUNT],
  mand: [false, MS_MANDLOCK],
  nomand: [true, MS_MANDLOCK],
  atime: [true, MS_NOATIME],
  noatime: [false, MS_NOATIME],
  diratime: [true, MS_NODIRATIME],
  nodiratime: [false, MS_NODIRATIME],
  bind: [false, MS_BIND],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  norelatime: [true, MS_RELATIME],
  strictatime: [false, MS_STRICTATIME],
  nostrictatime: [true, MS_STRICTATIME],
};

/**
 * Splits a comma-separated option string into mount(2) flags and the file-system data string
 * (ParseOptions): "nodev,lowerdir=a" gives MS_NODEV and "lowerdir=a".
 */
export function parseMountOptions(options: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options.split(",")) {
    if (o === "") continue;
    const f = FLAG_OPTIONS[o];
    if (f === undefined) {
      data.push(o);
      continue;
    }
    const [clear, flag] = f;
    flags = clear ? flags & ~flag : flags | flag;
  }
  return { flags, data: data.join(",") };
}

/** Mount points of this process's mount namespace (field 5 of /proc/self/mountinfo, unescaped). */
export function mountPoints(): string[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const p = line.split(" ")[4];
    if (p !== undefined && p !== "") out.push(unescape(p));
  }
  return out;
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const STATX_BASIC_STATS = 0x7ff;
const STATX_ATTR_MOUNT_ROOT = 0x2000n;
/** struct statx: stx_attributes at 8, stx_attributes_mask at 56 (linux/stat.h). */
const STATX_SIZE = 256;

/**
 * Whether `path` (absolute, clean) is a mount point (mount.Mounted). statx's
 * STATX_ATTR_MOUNT_ROOT answers without reading the mount table (Linux ≥ 5.8, bind mounts of a
 * directory onto itself included); older kernels fall back to /proc/self/mountinfo.
 */
export function isMountPoint(path: string): boolean {
  const buf = new Uint8Array(STATX_SIZE);
  const rc = fns.statx(AT_FDCWD, ptr(cstr(path)), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, ptr(buf));
  if (rc === 0) {
    const view = new DataView(buf.buffer);
    const mask = view.getBigUint64(56, true);
    if (mask & STATX_ATTR_MOUNT_ROOT) return (view.getBigUint64(8, true) & STATX_ATTR_MOUNT_ROOT) !== 0n;
  } else if (errno() === 2 /* ENOENT */) {
    return false;
  }
  return mountPoints().includes(path);
}

/** The system page size: mount(2) data must fit in one page including its NUL. */
export function pageSize(): number {
  return Number(sysconf.sysconf(_SC_PAGESIZE));
}

const _SC_PAGESIZE = 30;
const sysconf = bindLibc({ sysconf: { args: [FFIType.i32], returns: FFIType.i64 } });
