// A TCP connection made inside another network namespace (a pod's, pinned on a file), for
// port-forward: the socket is created while the JS thread is in the pod's namespace, and a
// socket keeps the namespace it was created in, so the daemon then uses it like any other fd.
//
// The setns in, socket, connect and setns back are one native call, for the reason given at the
// top of namespaces.ts: a thread the runtime creates while the JS thread is in the pod's
// namespace (a JIT worker, a GC helper) would be born there and stay. The connect is
// non-blocking, so the window never waits on the network; the caller polls for the handshake's
// result with connectResult. The thread's return is verified against the namespace inode it
// started in; a failed return is fatal (NamespaceRestoreError) and poisons every later call.
import { FFIType } from "bun:ffi";
import { compileNativeWindow, type NativeWindow } from "./native-window.ts";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";
import { closeFd, NamespaceRestoreError, openNamespace, threadNamespaceId } from "./namespaces.ts";

const { i32, u32, ptr: pointer } = FFIType;
const fns = bindLibc({
  poll: { args: [pointer, u32, i32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, pointer, pointer], returns: i32 },
  close: { args: [i32], returns: i32 },
});

const AF_INET = 2;
const AF_INET6 = 10;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const EINTR = 4;

const WINDOW_C = `
typedef int (*setns_fn)(int, int);
typedef int (*socket_fn)(int, int, int);
typedef int (*connect_fn)(int, const void *, unsigned int);
typedef int (*close_fn)(int);
typedef int *(*errno_fn)(void);

#define CLONE_NEWNET 0x40000000
#define SOCK_STREAM 1
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define EINTR 4
#define EINPROGRESS 115

/* fn: setns, socket, connect, close, __errno_location.
 * a: [0] fd of the namespace to enter (-1: stay), [1] fd of the namespace to return to, [2] address
 *    family, [3] the sockaddr, [4] its length.
 * report: [0] failed step (0 none, 1 setns in, 2 socket, 3 connect), [1] its errno,
 *    [2] 1 when the connect is still in progress, [3] 1 when the setns back failed, [4] its errno.
 * Returns the socket, or -1. */
int crio_netns_connect(void **fn, long *a, long *report) {
  errno_fn err = (errno_fn)fn[4];
  int fd;
  int e;
  if (a[0] >= 0 && ((setns_fn)fn[0])((int)a[0], CLONE_NEWNET) < 0) {
    report[0] = 1;
    report[1] = *err();
    return -1;
  }
  fd = ((socket_fn)fn[1])((int)a[2], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    report[0] = 2;
    report[1] = *err();
  } else if (((connect_fn)fn[2])(fd, (const void *)a[3], (unsigned int)a[4]) < 0) {
    e = *err();
    /* An interrupted non-blocking connect goes on in the background, like EINPROGRESS. */
    if (e == EINPROGRESS || e == EINTR) {
      report[2] = 1;
    } else {
      report[0] = 3;
      report[1] = e;
      ((close_fn)fn[3])(fd);
      fd = -1;
    }
  }
  if (a[0] >= 0 && ((setns_fn)fn[0])((int)a[1], CLONE_NEWNET) < 0) {
    report[3] = 1;
    report[4] = *err();
  }
  return fd;
}
`;

const LIBC_FNS = ["setns", "socket", "connect", "close", "__errno_location"] as const;
const STEPS = ["", "setns", "socket", "connect"] as const;

type Window = NativeWindow;
let windowFn: Window | undefined;
let poisoned: NamespaceRestoreError | undefined;

const encoder = new TextEncoder();
function cstr(s: string): Uint8Array {
  return encoder.encode(`${s}\0`);
}

/** Compiles the window once with bun:ffi's cc, from a memfd (nothing is written to disk). */
function connectWindow(): Window {
  windowFn ??= compileNativeWindow("netns connect", WINDOW_C, "crio_netns_connect", LIBC_FNS);
  return windowFn;
}

/** The loopback address of each family, as a sockaddr_in or sockaddr_in6 for `port`. */
export function loopbackAddress(family: 4 | 6, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}`);
  if (family === 4) {
    const sa = new Uint8Array(16);
    const v = new DataView(sa.buffer);
    v.setUint16(0, AF_INET, true);
    v.setUint16(2, port, false);
    sa.set([127, 0, 0, 1], 4);
    return sa;
  }
  const sa = new Uint8Array(28);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  sa[8 + 15] = 1; // ::1; flowinfo and scope id stay 0
  return sa;
}

export interface NetnsConnection {
  /** A non-blocking, close-on-exec TCP socket created in the target namespace. */
  fd: number;
  /** The handshake is still under way: wait for connectResult to leave "pending". */
  pending: boolean;
}

/**
 * Creates a TCP socket inside the network namespace pinned at `netnsPath` (null: the calling
 * thread's own, for a host-network pod) and starts a non-blocking connect to the loopback
 * address of `family` (127.0.0.1 or ::1) on `port`. A refused connection may fail here already
 * (SyscallError, code ECONNREFUSED); otherwise poll connectResult. The calling thread is back
 * in its own network namespace on return.
 */
export function connectInNetns(netnsPath: string | null, family: 4 | 6, port: number): NetnsConnection {
  if (poisoned) throw poisoned;
  const addr = loopbackAddress(family, port);
  const window = connectWindow();
  const homeId = threadNamespaceId("net");
  const home = openNamespace("/proc/thread-self/ns/net");
  let target = -1;
  try {
    if (netnsPath !== null) target = openNamespace(netnsPath);
  } catch (err) {
    closeFd(home);
    throw err;
  }
  try {
    const args = new BigInt64Array([BigInt(target), BigInt(home), BigInt(family === 4 ? AF_INET : AF_INET6), BigInt(ptr(addr)), BigInt(addr.length)]);
    const report = new BigInt64Array(5);
    const fd = window.run(ptr(window.fnTable), ptr(args), ptr(report));
    const [step, err, pending, backFailed, backErr] = Array.from(report, Number) as [number, number, number, number, number];
    let here: string | undefined;
    try {
      here = threadNamespaceId("net");
    } catch { /* unreadable: treated as not home */ }
    if (here !== homeId) {
      if (fd >= 0) fns.close(fd);
      poisoned = new NamespaceRestoreError(
        `the JS thread could not return to its network namespace after connecting in ${netnsPath}`,
        { cause: backFailed ? new SyscallError("setns", backErr) : undefined },
      );
      throw poisoned;
    }
    if (step !== 0) {
      const what = step === 1 ? String(netnsPath) : `${family === 4 ? "127.0.0.1" : "[::1]"}:${port} in ${netnsPath ?? "the host network namespace"}`;
      throw new SyscallError(STEPS[step] ?? "connect", err, what);
    }
    return { fd, pending: pending !== 0 };
  } finally {
    if (target >= 0) closeFd(target);
    closeFd(home);
  }
}

/**
 * The state of a non-blocking connect: "pending" while the handshake is under way, else 0
 * (connected) or the errno it failed with (SO_ERROR).
 */
export function connectResult(fd: number): "pending" | number {
  const pfd = new Int32Array([fd, POLLOUT]); // struct pollfd { int fd; short events, revents; }
  let r: number;
  do r = fns.poll(ptr(pfd), 1, 0);
  while (r < 0 && errno() === EINTR);
  check("poll", r);
  const revents = (pfd[1]! >>> 16) & 0xffff;
  if (r === 0 || (revents & (POLLOUT | POLLERR | POLLHUP)) === 0) return "pending";
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  check("getsockopt", fns.getsockopt(fd, SOL_SOCKET, SO_ERROR, ptr(val), ptr(len)), "SO_ERROR");
  return val[0]!;
}

export function closeSocketFd(fd: number): void {
  check("close", fns.close(fd), String(fd));
}
