// Which cgroup layout this node runs, and where its hierarchies are mounted.
import { readFileSync, statfsSync } from "node:fs";

/**
 * "v1": only cgroup v1 hierarchies; "hybrid": v1 hierarchies plus a controller-less (or nearly)
 * cgroup2 mount at /sys/fs/cgroup/unified, as systemd sets up in its hybrid mode; "unified":
 * cgroup v2 alone at /sys/fs/cgroup.
 */
export type CgroupVersion = "v1" | "hybrid" | "unified";

export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const CGROUP_SUPER_MAGIC = 0x27e0eb;
export const TMPFS_MAGIC = 0x01021994;

/** Decides the layout from statfs magic numbers, as runc and systemd do. `statfsType` is for tests. */
export function detectCgroupVersion(
  root = "/sys/fs/cgroup",
  statfsType: (path: string) => number | undefined = (p) => {
    try {
      return Number(statfsSync(p).type);
    } catch {
      return undefined;
    }
  },
): CgroupVersion {
  if (statfsType(root) === CGROUP2_SUPER_MAGIC) return "unified";
  if (statfsType(`${root}/unified`) === CGROUP2_SUPER_MAGIC) return "hybrid";
  return "v1";
}

/** One mounted hierarchy: where, which kind, and (v1) the controllers bound to it. */
export interface Hierarchy {
  /** The mount point, e.g. /sys/fs/cgroup/memory. */
  dir: string;
  kind: "v1" | "v2";
  /** v1: controllers and `name=` options (["cpu","cpuacct"], ["name=systemd"]); v2: []. */
  controllers: string[];
}

/** v1 controllers a container runtime manages (runc's list), plus systemd's named hierarchy. */
export const V1_CONTROLLERS: readonly string[] = [
  "cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
  "perf_event", "hugetlb", "pids", "rdma", "misc", "name=systemd",
];

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The cgroup hierarchies in a /proc/self/mountinfo text, below `under` (to skip bind mounts
 * elsewhere). A hierarchy mounted twice counts once (first mount wins); v1 hierarchies without a
 * controller the runtime uses are left out.
 */
export function parseCgroupMounts(mountinfo: string, under = "/sys/fs/cgroup"): Hierarchy[] {
  const out: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    const mountpoint = unescapeMountinfo(left[4] ?? "");
    const fstype = right[0];
    const superOpts = (right[2] ?? "").split(",");
    if (mountpoint !== under && !mountpoint.startsWith(`${under}/`)) continue;
    if (fstype === "cgroup2") {
      if (seen.has("v2")) continue;
      seen.add("v2");
      out.push({ dir: mountpoint, kind: "v2", controllers: [] });
    } else if (fstype === "cgroup") {
      const controllers = superOpts.filter((o) => V1_CONTROLLERS.includes(o));
      const key = controllers.slice().sort().join(",");
      if (controllers.length === 0 || seen.has(key)) continue;
      seen.add(key);
      out.push({ dir: mountpoint, kind: "v1", controllers });
    }
  }
  return out;
}

/** The mounted hierarchies of this host. */
export function hostHierarchies(root = "/sys/fs/cgroup"): Hierarchy[] {
  return parseCgroupMounts(readFileSync("/proc/self/mountinfo", "utf8"), root);
}

/**
 * /proc/<pid>/cgroup as a map from hierarchy key to path: v1 lines key by their controller
 * list as written ("cpu,cpuacct", "name=systemd"), the v2 line by "".
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m) out.set(m[2] ?? "", m[3] ?? "");
  }
  return out;
}
