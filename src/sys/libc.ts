// The FFI fence: the only module family that imports bun:ffi. Every wrapper checks the return
// value and throws SyscallError carrying the syscall name and errno.
import { dlopen, FFIType, ptr, read, type FFIFunction, type Library } from "bun:ffi";

/**
 * Binds libc symbols lazily: dlopen runs on the first use of any of them, so a daemon that
 * never needs a syscall family never pays for it. Each src/sys module binds its own set.
 */
export function bindLibc<const Fns extends Record<string, FFIFunction>>(fns: Fns): Library<Fns>["symbols"] {
  type Symbols = Library<Fns>["symbols"];
  let loaded: Symbols | undefined;
  return new Proxy({} as Symbols, {
    get(_target, name: string) {
      loaded ??= dlopen("libc.so.6", fns).symbols;
      return loaded[name as keyof Symbols];
    },
  });
}

/** The basic calls every module may use (socket, close, errno, strerror). */
export const libc = bindLibc({
  __errno_location: { args: [], returns: FFIType.ptr },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sendto: {
    args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i64,
  },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
});

export function errno(): number {
  const p = libc.__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

const errnoNames: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
  13: "EACCES", 16: "EBUSY", 17: "EEXIST", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 24: "EMFILE",
  28: "ENOSPC", 30: "EROFS", 38: "ENOSYS", 39: "ENOTEMPTY", 88: "ENOTSOCK", 95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT", 111: "ECONNREFUSED",
};

/** A failed system call: `syscall` is its name, `errno` the error number, `code` its symbolic name. */
export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(syscall: string, err: number, detail?: string) {
    const code = errnoNames[err] ?? `E${err}`;
    super(`${syscall}${detail ? ` ${detail}` : ""}: ${String(libc.strerror(err))} (${code})`);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = err;
    this.code = code;
  }
}

/** Throws SyscallError when a libc call returned a negative value. */
export function check<T extends number | bigint>(syscall: string, ret: T, detail?: string): T {
  if (ret < 0) throw new SyscallError(syscall, errno(), detail);
  return ret;
}

export { ptr };
