// mount(2)/umount2(2) and the file-system probes the overlay storage driver needs before it
// trusts a backing file system: its statfs magic, whether readdir fills d_type, and whether
// character-device whiteouts can be created.
import { CString, FFIType, read, type Pointer } from "bun:ffi";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";

const fns = bindLibc({
  mount: { args: [FFIType.cstring, FFIType.cstring, FFIType.cstring, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  umount2: { args: [FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
  mknod: { args: [FFIType.cstring, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  statfs: { args: [FFIType.cstring, FFIType.ptr], returns: FFIType.i32 },
  opendir: { args: [FFIType.cstring], returns: FFIType.ptr },
  readdir: { args: [FFIType.ptr], returns: FFIType.ptr },
  closedir: { args: [FFIType.ptr], returns: FFIType.i32 },
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
