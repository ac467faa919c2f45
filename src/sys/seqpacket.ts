// AF_UNIX SOCK_SEQPACKET sockets: conmon's attach socket speaks in records (each message from
// conmon is one record whose first byte names the stream), which neither node:net nor
// Bun.connect can open. The calls here create, connect, send and receive; every socket is
// non-blocking and close-on-exec, so no call ever waits: EAGAIN comes back as `null` (receive)
// or 0 (send) and the caller decides how to wait.
//
// A socket path longer than sun_path (107 bytes and a NUL) is reached the way conmon binds it:
// through /proc/self/fd/<fd of its directory>/<name>.
import { FFIType } from "bun:ffi";
import { basename, dirname } from "node:path";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";

const { i32, i64, u32, u64, ptr: pointer } = FFIType;
const fns = bindLibc({
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, pointer, u32], returns: i32 },
  bind: { args: [i32, pointer, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, pointer, pointer, i32], returns: i32 },
  send: { args: [i32, pointer, u64, i32], returns: i64 },
  recv: { args: [i32, pointer, u64, i32], returns: i64 },
  shutdown: { args: [i32, i32], returns: i32 },
  open: { args: [pointer, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
});

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EAGAIN = 11;
const EINTR = 4;
const SHUT_WR = 1;
const SUN_PATH_MAX = 108;

const encoder = new TextEncoder();

/**
 * Builds a sockaddr_un for `path`, or for /proc/self/fd/<dirfd>/<name> when the path does not
 * fit; runs `fn` with it and closes the directory fd afterwards.
 */
function withAddress<T>(path: string, fn: (addr: Uint8Array) => T): T {
  let dirFd = -1;
  let name = encoder.encode(path);
  if (name.length >= SUN_PATH_MAX) {
    const dir = dirname(path);
    dirFd = check("open", fns.open(ptr(encoder.encode(`${dir}\0`)), O_PATH | O_CLOEXEC, 0), dir);
    name = encoder.encode(`/proc/self/fd/${dirFd}/${basename(path)}`);
    if (name.length >= SUN_PATH_MAX) {
      fns.close(dirFd);
      throw new Error(`socket name too long even through /proc/self/fd: ${path}`);
    }
  }
  try {
    const addr = new Uint8Array(2 + SUN_PATH_MAX);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    addr.set(name, 2);
    return fn(addr);
  } finally {
    if (dirFd >= 0) fns.close(dirFd);
  }
}

function newSocket(): number {
  return check("socket", fns.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "AF_UNIX SOCK_SEQPACKET");
}

/**
 * Connects a new non-blocking SOCK_SEQPACKET socket to `path`. A listener whose backlog is
 * full answers EAGAIN (a SyscallError with code "EAGAIN"): the caller may retry later.
 */
export function connectSeqpacket(path: string): number {
  const fd = newSocket();
  try {
    withAddress(path, (addr) => {
      let r: number;
      do r = fns.connect(fd, ptr(addr), addr.length);
      while (r < 0 && errno() === EINTR);
      check("connect", r, path);
    });
    return fd;
  } catch (err) {
    fns.close(fd);
    throw err;
  }
}

/** A listening non-blocking SOCK_SEQPACKET socket bound at `path` (which must not exist). */
export function listenSeqpacket(path: string, backlog = 16): number {
  const fd = newSocket();
  try {
    withAddress(path, (addr) => check("bind", fns.bind(fd, ptr(addr), addr.length), path));
    check("listen", fns.listen(fd, backlog), path);
    return fd;
  } catch (err) {
    fns.close(fd);
    throw err;
  }
}

/** accept4: the next connection as a non-blocking fd, or null when none is waiting. */
export function acceptSeqpacket(listenFd: number): number | null {
  const fd = fns.accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const e = errno();
    if (e === EAGAIN || e === EINTR) return null;
    throw new SyscallError("accept4", e);
  }
  return fd;
}

/**
 * Sends `data` as one record. Returns its length, or 0 when the socket's buffer is full
 * (EAGAIN: nothing was sent). A record is never split; an empty one reads as end of stream on
 * the other side, so it is refused.
 */
export function sendRecord(fd: number, data: Uint8Array): number {
  if (data.length === 0) throw new Error("sendRecord: an empty record would read as end of stream");
  for (;;) {
    const n = Number(fns.send(fd, ptr(data), BigInt(data.length), MSG_DONTWAIT | MSG_NOSIGNAL));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return 0;
    throw new SyscallError("send", e);
  }
}

/**
 * Receives one record into `buf`: its length (0 at end of stream), or null when none is
 * waiting. A record longer than `buf` is truncated by the kernel.
 */
export function recvRecord(fd: number, buf: Uint8Array): number | null {
  for (;;) {
    const n = Number(fns.recv(fd, ptr(buf), BigInt(buf.length), MSG_DONTWAIT));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return null;
    throw new SyscallError("recv", e);
  }
}

/** shutdown(SHUT_WR): the peer reads end of stream; this side can still receive. */
export function shutdownWrite(fd: number): void {
  check("shutdown", fns.shutdown(fd, SHUT_WR), String(fd));
}

export function closeSocket(fd: number): void {
  check("close", fns.close(fd), String(fd));
}
