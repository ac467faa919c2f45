// A pod's pinned namespaces: what CRI-O's namespace manager (internal/config/nsmgr) and its pinns
// helper do, with the unshare/bind/setns sequence run in-process (src/sys/namespaces.ts).
//
// Layout, as CRI-O's: <namespaces_dir>/<type>ns/<id>, one bind-mounted nsfs file per namespace,
// the same id (a UUID) for every namespace of one pod. With the default namespaces_dir
// (/var/run) the network namespace lands in /var/run/netns, where iproute2 keeps its own, so
// `ip netns exec <id> ...` works on a pod's network namespace; like iproute2, each <type>ns
// directory is made a shared mount point so pins propagate to (and their removal from) mount
// namespaces copied from the daemon's.
import { randomUUID } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, UnimplementedError } from "../errors.ts";
import { makeSharedMountPoint, pinNewNamespaces, unmountAndRemove, type PinnableNamespace } from "../sys/namespaces.ts";
import { validatePodSysctls } from "./sysctl.ts";

export const DEFAULT_NAMESPACES_DIR = "/var/run";

/** The namespace kinds a pod can have pinned. */
export type PodNamespaceType = "net" | "ipc" | "uts" | "user";
export const POD_NAMESPACE_TYPES: readonly PodNamespaceType[] = ["net", "ipc", "uts", "user"];

/** One range of a user namespace ID mapping (uid_map/gid_map line). */
export interface IDMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface PinOptions {
  /** crio.conf namespaces_dir; default /var/run. */
  namespacesDir?: string;
  /** Namespaces to create. An empty list pins nothing and returns no paths. */
  types: readonly PodNamespaceType[];
  /** Host name to set in the new UTS namespace. */
  hostname?: string;
  /** Sysctls to set inside the new namespaces; each must belong to one of `types`. */
  sysctls?: Readonly<Record<string, string>>;
  /** Mappings for a new user namespace (required with "user", refused without it). */
  idMappings?: { uids: readonly IDMapping[]; gids: readonly IDMapping[] };
  /** The pin file name; a new UUID when absent. */
  id?: string;
}

export interface PinnedPaths {
  net?: string;
  ipc?: string;
  uts?: string;
  user?: string;
}

export interface PinnedNamespaces {
  id: string;
  paths: PinnedPaths;
}

/** <namespacesDir>/<type>ns, the directory holding every pin of that kind. */
export function namespaceTypeDir(namespacesDir: string, type: PodNamespaceType): string {
  return join(namespacesDir, `${type}ns`);
}

/** Where the namespace of `type` with this id is pinned. */
export function namespacePath(namespacesDir: string, type: PodNamespaceType, id: string): string {
  return join(namespaceTypeDir(namespacesDir, type), id);
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/**
 * Creates the pod's namespaces, pins them, sets the host name and sysctls inside, and returns
 * where they are pinned. Everything is validated first (a refusal creates nothing); on a failure
 * after that, nothing stays pinned. Synchronous on purpose: the calling thread is inside the new
 * namespaces for the duration, so no other JavaScript may run until it is back.
 */
export function pinNamespaces(opts: PinOptions): PinnedNamespaces {
  const dir = opts.namespacesDir ?? DEFAULT_NAMESPACES_DIR;
  const types = POD_NAMESPACE_TYPES.filter((t) => opts.types.includes(t));
  for (const t of opts.types) {
    if (!POD_NAMESPACE_TYPES.includes(t)) throw new InvalidArgumentError(`invalid namespace type: ${String(t)}`);
  }
  const id = opts.id ?? randomUUID();
  if (!ID.test(id)) throw new InvalidArgumentError(`invalid pinned namespace id ${JSON.stringify(id)}`);

  if (types.includes("user")) {
    if (!opts.idMappings) throw new InvalidArgumentError("a new user namespace needs uid and gid mappings");
    // unshare(CLONE_NEWUSER) is refused (EINVAL) in a multi-threaded process such as Bun; it
    // needs a helper child, as pinns forks one, with uid_map/gid_map written from outside.
    throw new UnimplementedError("pinning a user namespace is not supported yet (pods with user namespaces)");
  }
  if (opts.idMappings) throw new InvalidArgumentError("uid/gid mappings given without a new user namespace");

  const sysctls = validatePodSysctls(opts.sysctls ?? {}, {
    hostNetwork: !types.includes("net"),
    hostIPC: !types.includes("ipc"),
    hostUTS: !types.includes("uts"),
  });
  if (opts.hostname !== undefined) {
    if (!types.includes("uts")) throw new InvalidArgumentError("a pod host name needs a new UTS namespace");
    const len = Buffer.byteLength(opts.hostname);
    if (len === 0 || len > 64 || opts.hostname.includes("\0")) {
      throw new InvalidArgumentError(`invalid host name ${JSON.stringify(opts.hostname)}: must be 1 to 64 bytes`);
    }
    const viaSysctl = sysctls.find(([name]) => name === "kernel.hostname");
    if (viaSysctl && viaSysctl[1] !== opts.hostname) {
      throw new InvalidArgumentError(
        `sysctl "kernel.hostname" (${JSON.stringify(viaSysctl[1])}) conflicts with the pod host name ${JSON.stringify(opts.hostname)}`,
      );
    }
  }
  if (types.length === 0) return { id, paths: {} };

  const pins: Partial<Record<PinnableNamespace, string>> = {};
  const paths: PinnedPaths = {};
  for (const t of types as PinnableNamespace[]) {
    prepareTypeDir(dir, t);
    pins[t] = paths[t] = namespacePath(dir, t, id);
  }
  pinNewNamespaces({ pins, hostname: opts.hostname, sysctls });
  return { id, paths };
}

const prepared = new Set<string>();

/**
 * Creates <dir>/<type>ns (replacing a non-directory there, as CRI-O's Initialize does) and makes
 * it a shared mount point, once per directory and process.
 */
function prepareTypeDir(namespacesDir: string, type: PodNamespaceType): void {
  const typeDir = namespaceTypeDir(namespacesDir, type);
  if (prepared.has(typeDir) && existsSync(typeDir)) return;
  let st;
  try {
    st = lstatSync(typeDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (st && !st.isDirectory()) rmSync(typeDir, { force: true });
  mkdirSync(typeDir, { recursive: true, mode: 0o755 });
  makeSharedMountPoint(typeDir);
  prepared.add(typeDir);
}

/**
 * Unpins a pod's namespaces: each path still mounted is detached (MNT_DETACH), then removed.
 * Idempotent: missing files and files no longer mounted are fine. Tries every path and throws
 * the first error afterwards. The namespaces themselves live on while a process is in them.
 */
export function unpinNamespaces(paths: PinnedPaths): void {
  let first: unknown;
  for (const t of POD_NAMESPACE_TYPES) {
    const p = paths[t];
    if (p === undefined || p === "") continue;
    try {
      unmountAndRemove(p);
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/** A pin found on disk. */
export interface PinnedEntry {
  id: string;
  paths: PinnedPaths;
  /** The kinds whose file is currently an nsfs mount (a file that is not is a leftover). */
  mounted: PodNamespaceType[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The pins under `namespacesDir`, grouped by id, for restart recovery and leak checks. By default
 * only UUID names, the ones this daemon (or CRI-O) creates: /var/run/netns also holds namespaces
 * made with `ip netns add`, which are not ours to judge. `allNames` lists every file.
 */
export function listPinned(namespacesDir = DEFAULT_NAMESPACES_DIR, opts: { allNames?: boolean } = {}): PinnedEntry[] {
  const nsfs = new Set(readMountInfo().filter((m) => m.fsType === "nsfs").map((m) => m.mountPoint));
  const byId = new Map<string, PinnedEntry>();
  for (const t of POD_NAMESPACE_TYPES) {
    const typeDir = namespaceTypeDir(namespacesDir, t);
    let names: string[];
    try {
      names = readdirSync(typeDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    // mountinfo shows resolved paths (/run/netns/x for /var/run/netns/x).
    const realDir = realpathSync(typeDir);
    for (const name of names.sort()) {
      if (!opts.allNames && !UUID.test(name)) continue;
      let entry = byId.get(name);
      if (!entry) byId.set(name, (entry = { id: name, paths: {}, mounted: [] }));
      entry.paths[t] = join(typeDir, name);
      if (nsfs.has(join(realDir, name))) entry.mounted.push(t);
    }
  }
  return [...byId.values()];
}

/** One line of /proc/<pid>/mountinfo (proc(5)). */
export interface MountInfo {
  id: number;
  parentId: number;
  root: string;
  mountPoint: string;
  options: string;
  /** Optional fields such as `shared:12` or `master:3`. */
  optional: string[];
  fsType: string;
  source: string;
}

/** Undoes mountinfo's octal escapes (\040 for space, \011, \012, \134). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (f.length < 10 || dash < 0) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      root: unescapeMountField(f[3] ?? ""),
      mountPoint: unescapeMountField(f[4] ?? ""),
      options: f[5] ?? "",
      optional: f.slice(6, dash),
      fsType: f[dash + 1] ?? "",
      source: unescapeMountField(f[dash + 2] ?? ""),
    });
  }
  return out;
}

/** The daemon's mount table. */
export function readMountInfo(): MountInfo[] {
  return parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"));
}
