// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. CRI-O sends READY=1 once it
// serves, STOPPING=1 on shutdown and RELOADING=1/READY=1 around a SIGHUP reload.
import { check, libc, ptr } from "./libc.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;

/** sockaddr_un for `path`; a leading '@' means the Linux abstract namespace. */
function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length >= SUN_PATH_MAX) {
    throw new Error(`NOTIFY_SOCKET path must be 1..${SUN_PATH_MAX - 1} bytes, got ${bytes.length}`);
  }
  const addr = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  if (path.startsWith("@")) addr[2] = 0;
  // Abstract addresses are not NUL-terminated: their length is exact.
  const len = 2 + bytes.length + (path.startsWith("@") ? 0 : 1);
  return { addr, len };
}

/**
 * Sends `state` (e.g. "READY=1") to the service manager when NOTIFY_SOCKET is set.
 * Returns false when there is no socket to notify; throws SyscallError on failure.
 */
export function sdNotify(state: string, socketPath = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath) return false;
  const { addr, len } = sockaddrUn(socketPath);
  const fd = check("socket", libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  try {
    const msg = new TextEncoder().encode(state);
    check("sendto", libc.sendto(fd, ptr(msg), BigInt(msg.length), MSG_NOSIGNAL, ptr(addr), len), socketPath);
  } finally {
    libc.close(fd);
  }
  return true;
}
