// Pipes and socketpairs for handing descriptors to a child process (conmon's sync and start
// pipes). Bun.spawn accepts numeric fds in `stdio` beyond index 2 and dup2s them onto fds 3, 4, …
// in the child; the parent ends are plain fds read and written with node:fs.
import { FFIType } from "bun:ffi";
import { bindLibc, check } from "./libc.ts";

const { i32, ptr: pointer } = FFIType;
const fns = bindLibc({
  socketpair: { args: [i32, i32, i32, pointer], returns: i32 },
  pipe2: { args: [pointer, i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
});

export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;

/** socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC): both ends close-on-exec. */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  check("socketpair", fns.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  return [fds[0]!, fds[1]!];
}

/** pipe2(flags): [readEnd, writeEnd]; close-on-exec by default. */
export function pipe(flags = O_CLOEXEC): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", fns.pipe2(fds, flags));
  return [fds[0]!, fds[1]!];
}

export function setCloexec(fd: number, on: boolean): void {
  const cur = check("fcntl", fns.fcntl(fd, F_GETFD, 0), "F_GETFD");
  check("fcntl", fns.fcntl(fd, F_SETFD, on ? cur | FD_CLOEXEC : cur & ~FD_CLOEXEC), "F_SETFD");
}

export function setNonblock(fd: number, on: boolean): void {
  const cur = check("fcntl", fns.fcntl(fd, F_GETFL, 0), "F_GETFL");
  check("fcntl", fns.fcntl(fd, F_SETFL, on ? cur | O_NONBLOCK : cur & ~O_NONBLOCK), "F_SETFL");
}

/** close(2), ignoring EBADF-style failures of an already-closed fd is the caller's choice. */
export function closeFd(fd: number): void {
  check("close", fns.close(fd), String(fd));
}
