// fcntl(2) byte-range locks on a whole file, for the containers-storage lock files.
//
// containers/storage locks with classic POSIX record locks (F_SETLKW on the whole file). We use
// open file description locks (F_OFD_SETLK) instead: the kernel keeps both kinds in one table
// and they conflict with each other (fcntl(2), "Open file description locks"), so podman and we
// exclude each other exactly as two podman processes do. OFD locks belong to the open file,
// not the process, which is what a single-process daemon with many concurrent operations
// needs: closing some other descriptor of the same file does not drop the lock, and two
// descriptors in this process conflict like two processes would.
//
// Only non-blocking requests are offered: a blocking F_OFD_SETLKW would freeze the JS thread
// (and the whole daemon) while podman holds the lock. Callers poll with short sleeps.
import { FFIType } from "bun:ffi";
import { bindLibc, errno, ptr, SyscallError } from "./libc.ts";

const F_GETLK = 5;
const F_SETLK = 6;
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const SEEK_SET = 0;

const EACCES = 13;
const EAGAIN = 11;
const EINTR = 4;

const fns = bindLibc({
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
});

export type LockKind = "read" | "write";

/**
 * struct flock on Linux LP64 (x86_64 and aarch64): l_type i16 @0, l_whence i16 @2,
 * l_start i64 @8, l_len i64 @16, l_pid i32 @24; 32 bytes. l_start = l_len = 0 is the whole
 * file; l_pid must be 0 for OFD requests.
 */
function flock(type: number): Uint8Array {
  const buf = new Uint8Array(32);
  const view = new DataView(buf.buffer);
  view.setInt16(0, type, true);
  view.setInt16(2, SEEK_SET, true);
  return buf;
}

function setLock(cmd: number, fd: number, type: number, name: string): boolean {
  const buf = flock(type);
  for (;;) {
    if (fns.fcntl(fd, cmd, ptr(buf)) === 0) return true;
    const err = errno();
    if (err === EINTR) continue;
    if (err === EAGAIN || err === EACCES) return false;
    throw new SyscallError("fcntl", err, name);
  }
}

/**
 * Tries to take an OFD lock on the whole file open at `fd` without waiting. Returns false when
 * another open file (in this or another process, OFD or POSIX) holds a conflicting lock.
 * Taking a lock of the other kind on a file already locked through `fd` converts it.
 */
export function tryLockOfd(fd: number, kind: LockKind): boolean {
  return setLock(F_OFD_SETLK, fd, kind === "write" ? F_WRLCK : F_RDLCK, "F_OFD_SETLK");
}

/** Releases the OFD lock held through `fd` (closing the last descriptor of the file also does). */
export function unlockOfd(fd: number): void {
  setLock(F_OFD_SETLK, fd, F_UNLCK, "F_OFD_SETLK");
}

/**
 * Classic process-associated POSIX lock (what containers/storage takes), non-blocking. Only for
 * tests that play the part of a Go process; the daemon itself uses OFD locks.
 */
export function tryLockPosix(fd: number, kind: LockKind): boolean {
  return setLock(F_SETLK, fd, kind === "write" ? F_WRLCK : F_RDLCK, "F_SETLK");
}

/** Releases a POSIX lock taken with tryLockPosix. */
export function unlockPosix(fd: number): void {
  setLock(F_SETLK, fd, F_UNLCK, "F_SETLK");
}

/**
 * Which lock, if any, would conflict with taking `kind` through `fd`: "read", "write" or
 * undefined. Uses F_OFD_GETLK (which also reports POSIX locks held by other processes).
 */
export function conflictingLock(fd: number, kind: LockKind, posix = false): LockKind | undefined {
  const buf = flock(kind === "write" ? F_WRLCK : F_RDLCK);
  const cmd = posix ? F_GETLK : F_OFD_GETLK;
  if (fns.fcntl(fd, cmd, ptr(buf)) !== 0) throw new SyscallError("fcntl", errno(), posix ? "F_GETLK" : "F_OFD_GETLK");
  const type = new DataView(buf.buffer).getInt16(0, true);
  if (type === F_UNLCK) return undefined;
  return type === F_WRLCK ? "write" : "read";
}
