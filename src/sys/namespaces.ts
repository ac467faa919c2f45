// Linux namespaces from the JS thread: unshare(2), setns(2), sethostname(2), and the pinning
// sequence CRI-O runs in its pinns helper, done in-process.
//
// Why this works in a multi-threaded Bun process: unshare and setns of the net, UTS and IPC
// namespaces act on the calling thread only (they replace the thread's nsproxy). Bun runs
// JavaScript on the main thread (tid == pid); Bun's other threads (I/O pool, HTTP client, GC,
// JIT) stay in the host namespaces throughout. The magic links under /proc/thread-self resolve
// for the calling thread, so a bind mount of /proc/thread-self/ns/net pins exactly the namespace
// this thread just created, and a /proc/sys/net file opened from this thread while it is inside
// belongs to the new namespace.
//
// Why the window between unshare and setns is one native call, not a sequence of FFI calls: a
// thread inherits the namespaces of the thread that creates it, and JavaScriptCore creates
// threads lazily from the JS thread (a JITWorker when a function tiers up, GC helpers). With JS
// glue between the FFI calls, a JITWorker born inside the window was seen living on in the pod's
// network namespace after about one in 3000 pins, holding the namespace alive (and any thread
// born there would do its I/O in the pod's network). So the whole window (unshare, create and
// bind the pin files, sethostname, sysctl writes, setns back) is a small C function compiled
// once with bun:ffi's cc (TinyCC, which bun:ffi itself is built on): while it runs no JavaScript
// runs, so nothing can be born in the pod's namespaces. It links nothing: libc's entry points
// are passed in as pointers (dlsym), so no C headers or libc development files are needed.
//
// A user namespace cannot be created this way: unshare(CLONE_NEWUSER) fails with EINVAL in a
// multi-threaded process. pinns forks a child for it; that is not implemented here.
import { lstatSync, readlinkSync } from "node:fs";
import { FFIType } from "bun:ffi";
import { compileNativeWindow, type NativeWindow } from "./native-window.ts";
import { bindLibc, check, errno, ptr, SyscallError } from "./libc.ts";
import { mount, MNT_DETACH, statfsType, umount2 } from "./mount.ts";
import { sysctlPath } from "./sysctl.ts";

const { i32, u32, u64, ptr: pointer } = FFIType;
const fns = bindLibc({
  unshare: { args: [i32], returns: i32 },
  setns: { args: [i32, i32], returns: i32 },
  gettid: { args: [], returns: i32 },
  sethostname: { args: [pointer, u64], returns: i32 },
  open: { args: [pointer, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  unlink: { args: [pointer], returns: i32 },
});

// clone(2) namespace flags (linux/sched.h).
export const CLONE_NEWTIME = 0x00000080;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

/** A namespace kind by its name under /proc/<pid>/ns. */
export type NamespaceType = "net" | "ipc" | "uts" | "user" | "mnt" | "pid" | "cgroup" | "time";

/** The CLONE_NEW* flag of each namespace kind (what unshare and setns take). */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  net: CLONE_NEWNET,
  ipc: CLONE_NEWIPC,
  uts: CLONE_NEWUTS,
  user: CLONE_NEWUSER,
  mnt: CLONE_NEWNS,
  pid: CLONE_NEWPID,
  cgroup: CLONE_NEWCGROUP,
  time: CLONE_NEWTIME,
};

// mount(2) flags used here.
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_SHARED = 1 << 20;
export const UMOUNT_NOFOLLOW = 0x8;

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const EINVAL = 22;
const ENOENT = 2;
const HOST_NAME_MAX = 64;

const encoder = new TextEncoder();
function cstr(s: string): Uint8Array {
  if (s.includes("\0")) throw new Error(`string contains a NUL byte: ${JSON.stringify(s)}`);
  return encoder.encode(`${s}\0`);
}

/**
 * unshare(2): moves the calling thread into new namespaces of the kinds in `flags`. On the JS
 * thread, prefer pinNewNamespaces: any thread the runtime creates before the thread returns
 * (see the top of this file) is born in, and stays in, the new namespaces.
 */
export function unshare(flags: number): void {
  check("unshare", fns.unshare(flags), `0x${flags.toString(16)}`);
}

/** setns(2): moves the calling thread into the namespace open at `fd` (`nstype` 0 accepts any kind). */
export function setns(fd: number, nstype = 0): void {
  check("setns", fns.setns(fd, nstype), `fd ${fd}`);
}

/** gettid(2): the calling thread's id (equal to process.pid on Bun's JS thread). */
export function gettid(): number {
  return fns.gettid();
}

/** sethostname(2): sets the host name of the calling thread's UTS namespace. */
export function sethostname(name: string): void {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length > HOST_NAME_MAX || bytes.includes(0)) {
    throw new Error(`invalid host name ${JSON.stringify(name)}: must be 1 to ${HOST_NAME_MAX} bytes without NUL`);
  }
  check("sethostname", fns.sethostname(ptr(bytes), BigInt(bytes.length)), name);
}

/** Opens a namespace file (e.g. /proc/thread-self/ns/net or a pinned path) for setns; close it with closeFd. */
export function openNamespace(path: string): number {
  return check("open", fns.open(ptr(cstr(path)), O_RDONLY | O_CLOEXEC, 0), path);
}

export function closeFd(fd: number): void {
  check("close", fns.close(fd));
}

/**
 * The identity of the calling thread's namespace of kind `type`, as the kernel prints it
 * (`net:[4026531840]`; the number is the nsfs inode). Read from /proc/thread-self, so it is this
 * thread's namespace even when the process's other threads are elsewhere.
 */
export function threadNamespaceId(type: NamespaceType): string {
  return readlinkSync(`/proc/thread-self/ns/${type}`);
}

/** The nsfs inode of a namespace id string such as `net:[4026531840]`. */
export function namespaceInode(id: string): number {
  const m = /\[(\d+)\]$/.exec(id);
  if (!m) throw new Error(`not a namespace id: ${id}`);
  return Number(m[1]);
}

/**
 * Makes `dir` a shared mount point, as iproute2 does for /var/run/netns, so that bind mounts
 * made beneath it (and their removal) propagate to mount namespaces that were copied from
 * this one. Idempotent: a directory that already is a mount point only gets its propagation set;
 * one that is not is first bind-mounted onto itself.
 */
export function makeSharedMountPoint(dir: string): void {
  try {
    mount("none", dir, "none", MS_SHARED | MS_REC);
    return;
  } catch (err) {
    if (!(err instanceof SyscallError) || err.errno !== EINVAL) throw err;
  }
  // EINVAL: not a mount point yet.
  mount(dir, dir, "none", MS_BIND | MS_REC);
  mount("none", dir, "none", MS_SHARED | MS_REC);
}

const NSFS_MAGIC = 0x6e736673;

/**
 * Removes a pinned namespace file: detaches every nsfs mount stacked on it (MNT_DETACH, without
 * following a symlink), then unlinks it. A missing file or one that is not mounted is fine.
 * Anything but a regular file, or a file with something other than a namespace mounted on it,
 * is refused: a corrupt path ("/", a directory) must never get unmounted.
 */
export function unmountAndRemove(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!st.isFile()) throw new Error(`${path} is not a pinned namespace file (not a regular file)`);
  // More than one mount can be stacked on the file (a bind made twice, or a copy propagated
  // back through a shared peer); detach while a namespace is mounted there.
  for (let i = 0; i < 64 && statfsType(path) === NSFS_MAGIC; i++) {
    try {
      umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
    } catch (err) {
      if (err instanceof SyscallError && (err.errno === EINVAL || err.errno === ENOENT)) break;
      throw err;
    }
  }
  // A mount of anything else stays, and unlink then fails with EBUSY.
  if (fns.unlink(ptr(cstr(path))) < 0) {
    const e = errno();
    if (e !== ENOENT) throw new SyscallError("unlink", e, path);
  }
}

/** The namespace kinds pinNewNamespaces can create on the JS thread. */
export type PinnableNamespace = "net" | "ipc" | "uts";
const PINNABLE: readonly PinnableNamespace[] = ["net", "ipc", "uts"];

export interface NewNamespacesSpec {
  /**
   * Where to pin each new namespace: the file is created (it must not exist) and the new
   * namespace is bind-mounted onto it. Its directory must exist.
   */
  pins: Readonly<Partial<Record<PinnableNamespace, string>>>;
  /** Host name to set inside the new UTS namespace (requires `pins.uts`). */
  hostname?: string;
  /**
   * Sysctls written inside the new namespaces, in order, after the host name. The caller has
   * checked that each belongs to a namespace being created (src/sandbox/sysctl.ts); one that
   * does not would change the host.
   */
  sysctls?: ReadonlyArray<readonly [name: string, value: string]>;
}

/**
 * The JS thread could not be returned to its original namespaces. The daemon's event loop
 * thread would now create sockets inside a pod's network namespace: treat this as fatal.
 * After it, every further pinNewNamespaces call throws it again.
 */
export class NamespaceRestoreError extends Error {
  readonly fatal = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NamespaceRestoreError";
  }
}

let poisoned: NamespaceRestoreError | undefined;

// The window. Every argument is a 64-bit slot of `a` (LP64: long and pointers are 64 bits on
// x86_64 and aarch64); `fn` holds libc entry points in the order of LIBC_FNS; `report` says how
// far it got. The open(2) flags and MS_BIND are the same on x86_64 and aarch64.
const WINDOW_C = `
typedef int (*unshare_fn)(int);
typedef int (*setns_fn)(int, int);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*close_fn)(int);
typedef int (*mount_fn)(const char *, const char *, const char *, unsigned long, const void *);
typedef int (*sethostname_fn)(const char *, unsigned long);
typedef long (*write_fn)(int, const void *, unsigned long);
typedef int *(*errno_fn)(void);

#define O_WRONLY 01
#define O_CREAT 0100
#define O_EXCL 0200
#define O_CLOEXEC 02000000
#define MS_BIND 4096
#define EINTR 4

/* a: [0] unshare flags, [1] pins, [2] sources, [3] targets, [4] hostname or 0, [5] its length,
 *    [6] sysctls, [7] paths, [8] values, [9] value lengths, [10] saved, [11] fds, [12] kinds.
 * report: [0] failed step (0: none; 1 unshare, 2 create pin file, 3 bind mount, 4 sethostname,
 *    5 open sysctl, 6 write sysctl, 7 short write), [1] its index, [2] errno, [3] pin files
 *    created, [4] bit mask of failed setns, [5] errno of the last failed setns. */
int crio_pin_window(void **fn, long *a, long *report) {
  errno_fn err = (errno_fn)fn[7];
  const char **sources = (const char **)a[2];
  const char **targets = (const char **)a[3];
  const char **paths = (const char **)a[7];
  const char **values = (const char **)a[8];
  long *lens = (long *)a[9];
  long *fds = (long *)a[11];
  long *kinds = (long *)a[12];
  long i;
  long n;
  int fd;

  if (((unshare_fn)fn[0])((int)a[0]) < 0) {
    report[0] = 1;
    report[2] = *err();
    return -1;
  }
  for (i = 0; i < a[1]; i++) {
    fd = ((open_fn)fn[2])(targets[i], O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) { report[0] = 2; report[1] = i; report[2] = *err(); goto restore; }
    report[3] = i + 1;
    ((close_fn)fn[3])(fd);
    if (((mount_fn)fn[4])(sources[i], targets[i], "none", MS_BIND, 0) < 0) {
      report[0] = 3; report[1] = i; report[2] = *err(); goto restore;
    }
  }
  if (a[4] != 0 && ((sethostname_fn)fn[5])((const char *)a[4], (unsigned long)a[5]) < 0) {
    report[0] = 4; report[2] = *err(); goto restore;
  }
  for (i = 0; i < a[6]; i++) {
    fd = ((open_fn)fn[2])(paths[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) { report[0] = 5; report[1] = i; report[2] = *err(); goto restore; }
    do n = ((write_fn)fn[6])(fd, values[i], (unsigned long)lens[i]);
    while (n < 0 && *err() == EINTR);
    if (n < 0) { report[0] = 6; report[1] = i; report[2] = *err(); }
    else if (n != lens[i]) { report[0] = 7; report[1] = i; }
    ((close_fn)fn[3])(fd);
    if (report[0] != 0) goto restore;
  }
restore:
  for (i = 0; i < a[10]; i++) {
    if (((setns_fn)fn[1])((int)fds[i], (int)kinds[i]) < 0) {
      report[4] |= 1L << i;
      report[5] = *err();
    }
  }
  return report[0] == 0 ? 0 : -1;
}
`;

const LIBC_FNS = ["unshare", "setns", "open", "close", "mount", "sethostname", "write", "__errno_location"] as const;
const STEPS = ["", "unshare", "open", "mount", "sethostname", "open", "write", "write"] as const;

type Window = NativeWindow;
let windowFn: Window | undefined;

/** Compiles the window once (a few milliseconds), from a memfd: nothing is written to disk. */
function pinWindow(): Window {
  windowFn ??= compileNativeWindow("namespace pinning", WINDOW_C, "crio_pin_window", LIBC_FNS);
  return windowFn;
}

/**
 * Builds the window's arguments: `addr` returns a view's address as a 64-bit slot and keeps the
 * view referenced in `keep`, so that the garbage collector cannot free it before the call.
 */
function argumentBuilder(keep: Array<Uint8Array | BigInt64Array>) {
  const addr = (view: Uint8Array | BigInt64Array): bigint => {
    keep.push(view);
    return BigInt(ptr(view));
  };
  const strings = (list: readonly string[]): bigint =>
    addr(new BigInt64Array(list.length === 0 ? [0n] : list.map((s) => addr(cstr(s)))));
  const longs = (list: readonly number[]): bigint => addr(new BigInt64Array(list.length === 0 ? [0n] : list.map(BigInt)));
  return { addr, strings, longs };
}

/**
 * What pinns does, in-process: creates new namespaces of the kinds in `spec.pins` on the calling
 * (JS) thread, bind-mounts each onto its file, sets the host name and the sysctls inside them,
 * then returns the thread to the namespaces it was in, all within one native call (see the top
 * of this file). The return is verified by comparing namespace inodes. On any failure everything
 * pinned so far is unmounted and unlinked, and a SyscallError names the step that failed.
 */
export function pinNewNamespaces(spec: NewNamespacesSpec): void {
  if (poisoned) throw poisoned;
  const types = PINNABLE.filter((t) => spec.pins[t] !== undefined);
  if (types.length === 0) throw new Error("pinNewNamespaces: no namespace to create");
  if (spec.hostname !== undefined && spec.pins.uts === undefined) {
    throw new Error("pinNewNamespaces: a host name needs a new UTS namespace");
  }
  const hostname = spec.hostname === undefined ? undefined : encoder.encode(spec.hostname);
  if (hostname && (hostname.length === 0 || hostname.length > HOST_NAME_MAX || hostname.includes(0))) {
    throw new Error(`invalid host name ${JSON.stringify(spec.hostname)}: must be 1 to ${HOST_NAME_MAX} bytes without NUL`);
  }
  const sysctls = spec.sysctls ?? [];
  const paths = sysctls.map(([name]) => sysctlPath(name));
  const values = sysctls.map(([name, value]) => {
    if (value.includes("\0")) throw new Error(`invalid value for sysctl ${name}: contains a NUL byte`);
    return value;
  });
  const targets = types.map((t) => spec.pins[t] as string);
  const window = pinWindow();

  // Handles on the namespaces to return to (opened while the thread is still in them), and
  // their identities to verify the return.
  const saved: { type: PinnableNamespace; fd: number; id: string }[] = [];
  try {
    for (const type of types) {
      saved.push({ type, id: threadNamespaceId(type), fd: openNamespace(`/proc/thread-self/ns/${type}`) });
    }
    const flags = types.reduce((f, t) => f | NAMESPACE_FLAGS[t], 0);
    const keep: Array<Uint8Array | BigInt64Array> = [];
    const { addr, strings, longs } = argumentBuilder(keep);
    const args = new BigInt64Array([
      BigInt(flags),
      BigInt(types.length),
      strings(types.map((t) => `/proc/thread-self/ns/${t}`)),
      strings(targets),
      hostname ? addr(hostname) : 0n,
      BigInt(hostname?.length ?? 0),
      BigInt(paths.length),
      strings(paths),
      strings(values),
      longs(values.map((v) => encoder.encode(v).length)),
      BigInt(saved.length),
      longs(saved.map((s) => s.fd)),
      longs(saved.map((s) => NAMESPACE_FLAGS[s.type])),
    ]);
    const report = new BigInt64Array(6);
    window.run(ptr(window.fnTable), ptr(args), ptr(report));
    keep.length = 0;

    const [step, index, err, created, setnsFailed, setnsErr] = Array.from(report, Number) as [
      number, number, number, number, number, number,
    ];
    let failure: Error | undefined;
    if (step !== 0) {
      const detail =
        step === 2 || step === 3
          ? targets[index]
          : step === 4
            ? spec.hostname
            : step >= 5
              ? `${paths[index]} (${sysctls[index]?.[0]}=${sysctls[index]?.[1]})`
              : `0x${flags.toString(16)}`;
      failure =
        step === 7
          ? new Error(`write ${detail}: short write`)
          : new SyscallError(STEPS[step] ?? "pin", err, detail);
    }
    // Where the thread is now, checked whatever setns reported.
    const wrong = saved.filter((s) => {
      try {
        return threadNamespaceId(s.type) !== s.id;
      } catch {
        return true;
      }
    });
    if (step !== 0 || wrong.length > 0) {
      for (const path of targets.slice(0, created).reverse()) {
        try {
          unmountAndRemove(path);
        } catch {
          // Best effort: the original error is the one worth reporting.
        }
      }
    }
    if (wrong.length > 0) {
      poisoned = new NamespaceRestoreError(
        `the JS thread could not return to its ${wrong.map((s) => s.type).join(", ")} namespace(s)`,
        { cause: setnsFailed !== 0 ? new SyscallError("setns", setnsErr) : failure },
      );
      throw poisoned;
    }
    if (failure) throw failure;
  } finally {
    for (const s of saved) fns.close(s.fd);
  }
}
