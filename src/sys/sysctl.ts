// Kernel parameters under /proc/sys, named as sysctl(8) names them.
//
// The files are opened, read and written with direct libc calls, so the work happens on the
// calling thread: /proc/sys/net (and the IPC and UTS entries) resolve to the namespaces of the
// thread that opens them, which is what lets pinNewNamespaces set sysctls inside a pod's new
// namespaces from the JS thread.
import { FFIType } from "bun:ffi";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";

const { i32, u32, u64, i64, ptr: pointer } = FFIType;
const fns = bindLibc({
  open: { args: [pointer, i32, u32], returns: i32 },
  read: { args: [i32, pointer, u64], returns: i64 },
  write: { args: [i32, pointer, u64], returns: i64 },
  close: { args: [i32], returns: i32 },
});

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const EINTR = 4;

export const PROC_SYS = "/proc/sys";

/**
 * Swaps "." and "/" in `name` unless its first separator already is `want`: sysctl(8)'s rule,
 * so that a component containing the other character survives (`net.ipv4.conf.eth0/100.rp_filter`
 * is `net/ipv4/conf/eth0.100/rp_filter`).
 */
function convertSeparators(name: string, want: "." | "/"): string {
  const first = /[./]/.exec(name);
  if (!first || first[0] === want) return name;
  return name.replace(/[./]/g, (c) => (c === "." ? "/" : "."));
}

/** The dotted form of a sysctl name given with dots or slashes (`net/ipv4/ip_forward` → `net.ipv4.ip_forward`). */
export function sysctlDottedName(name: string): string {
  return convertSeparators(name, ".");
}

/**
 * The /proc/sys path of a sysctl name given with dots or slashes. Refuses names whose path would
 * have an empty, "." or ".." component, or a NUL: a name never leaves /proc/sys.
 */
export function sysctlPath(name: string): string {
  const rel = convertSeparators(name, "/");
  const parts = rel.split("/");
  if (name.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`invalid sysctl name ${JSON.stringify(name)}`);
  }
  return `${PROC_SYS}/${rel}`;
}

const encoder = new TextEncoder();
function cstr(s: string): Uint8Array {
  return encoder.encode(`${s}\0`);
}

/** The current value of a sysctl, without the trailing newline the kernel prints. */
export function readSysctl(name: string): string {
  const path = sysctlPath(name);
  const fd = check("open", fns.open(ptr(cstr(path)), O_RDONLY | O_CLOEXEC, 0), path);
  try {
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = Number(fns.read(fd, ptr(buf), BigInt(buf.length)));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new SyscallError("read", e, path);
      }
      if (n === 0) break;
      chunks.push(buf.slice(0, n));
    }
    return Buffer.concat(chunks).toString("utf8").replace(/\n$/, "");
  } finally {
    fns.close(fd);
  }
}

/**
 * Sets a sysctl: one write(2) of the whole value at offset 0, as the kernel's proc handlers
 * expect. An invalid value fails with the kernel's error (EINVAL, ERANGE, ...).
 */
export function writeSysctl(name: string, value: string): void {
  const path = sysctlPath(name);
  if (value.includes("\0")) throw new Error(`invalid value for sysctl ${name}: contains a NUL byte`);
  const bytes = encoder.encode(value);
  const fd = check("open", fns.open(ptr(cstr(path)), O_WRONLY | O_CLOEXEC, 0), path);
  try {
    let n: number;
    do n = Number(fns.write(fd, bytes.length === 0 ? null : ptr(bytes), BigInt(bytes.length)));
    while (n < 0 && errno() === EINTR);
    if (n < 0) throw new SyscallError("write", errno(), `${path} (${name}=${value})`);
    if (n !== bytes.length) throw new Error(`write ${path}: short write (${n} of ${bytes.length} bytes)`);
  } finally {
    fns.close(fd);
  }
}
