// PodSandboxStats and ListPodSandboxStats: the pod's CPU, memory and process count from its
// cgroup, the traffic of its network namespace's interfaces, and the stats of its containers
// that have not exited (CRI-O internal/lib/stats updateSandbox).
//
// The pod's cgroup is its cgroup parent, as in CRI-O: the kubelet gives each pod its own
// (/kubepods/burstable/pod<uid>, kubepods-burstable-pod<uid>.slice) holding the pod's containers,
// their conmons and the infra container. A pod run with the manager's default parent (/crio,
// system.slice: crictl without cgroup_parent) shares it with every other such pod, so its usage
// is the sum of its own containers' cgroups (and the infra container's) instead; that sum drops
// a container's CPU time when the container exits.
//
// Network: /proc/<pid>/net/dev of a process inside the pod's network namespace (the infra
// container, else a running container, checked to be in the pinned namespace), else the same file
// read by `nsenter --net=<pin> cat`. The default interface is eth0 (the CNI interface); the others,
// lo included, are listed in `interfaces`. A host-network pod, or a stopped one (its namespace is
// unpinned), reports no network.
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { posix } from "node:path";
import type {
  ListPodSandboxStatsRequest,
  ListPodSandboxStatsResponse,
  NetworkInterfaceUsage,
  NetworkUsage,
  PodSandboxStats,
  PodSandboxStatsRequest,
  PodSandboxStatsResponse,
} from "../../proto/index.ts";
import type { CgroupManager } from "../../cgroups/index.ts";
import { readCgroupStats, sumCgroupStats, type CgroupStats } from "../../cgroups/stats.ts";
import { log } from "../../log.ts";
import { DEFAULT_IFNAME } from "../../network/index.ts";
import { containerState, type ContainerRecord } from "../../state/containers.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";
import { containerStatsOf, cpuSamples, criCpu, criMemory, nowNs } from "./container-stats.ts";

/** How long reading the counters through nsenter may take. */
const NSENTER_TIMEOUT_MS = 5_000;

export function podSandboxStatsHandler(ctx: ServerContext) {
  return async (req: PodSandboxStatsRequest): Promise<PodSandboxStatsResponse> => {
    const rec = ctx.sandboxes.get(req.podSandboxId);
    return { stats: await podSandboxStats(ctx, rec) };
  };
}

/** ListPodSandboxStats with the CRI filter: ID (or unique prefix; ambiguous matches none), labels. */
export function listPodSandboxStatsHandler(ctx: ServerContext) {
  return async (req: ListPodSandboxStatsRequest): Promise<ListPodSandboxStatsResponse> => {
    const f = req.filter;
    let recs: SandboxRecord[];
    if (f !== undefined && f.id !== "") {
      let one: SandboxRecord | undefined;
      try {
        one = ctx.sandboxes.find(f.id);
      } catch {
        one = undefined;
      }
      recs = one ? [one] : [];
    } else {
      recs = ctx.sandboxes.list();
    }
    const sel = Object.entries(f?.labelSelector ?? {});
    if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.labels[k] === v));
    return { stats: await Promise.all(recs.map((r) => podSandboxStats(ctx, r))) };
  };
}

async function podSandboxStats(ctx: ServerContext, rec: SandboxRecord): Promise<PodSandboxStats> {
  const ctrs = ctx.containers.ofSandbox(rec.id);
  await Promise.all(ctrs.map((c) => ctx.exits.poll(c)));
  const live = ctrs.filter((c) => containerState(c) !== "EXITED");
  const containers = (await containerStatsOf(ctx, live)).filter((s) => s !== undefined);
  const timestamp = nowNs();
  const cg = podCgroupStats(ctx.cgroups(), rec, live);
  return {
    attributes: { id: rec.id, metadata: { ...rec.metadata }, labels: { ...rec.labels }, annotations: { ...rec.annotations } },
    linux: {
      cpu: cg && criCpu(cg, timestamp, cpuSamples(ctx), `pod:${rec.id}`),
      memory: cg && criMemory(cg, timestamp),
      process: cg?.pids ? { timestamp, processCount: { value: cg.pids.current } } : undefined,
      network: await networkUsage(rec, live),
      containers,
      io: undefined,
    },
    windows: undefined,
  };
}

/** The pod's cgroup: its parent when the parent is the pod's own; undefined otherwise. */
export function podCgroup(cgroups: CgroupManager, rec: Pick<SandboxRecord, "id" | "cgroupParent">): string | undefined {
  if (rec.cgroupParent === undefined) return undefined; // no cgroup was made for the pod
  // A container's cgroup lives directly in the parent, whatever the manager's path syntax.
  const parentCgroup = (parent: string) => posix.dirname(cgroups.resolve(cgroups.containerCgroupPath(parent, rec.id)));
  const own = parentCgroup(rec.cgroupParent);
  return own === "/" || own === parentCgroup("") ? undefined : own;
}

function podCgroupStats(cgroups: CgroupManager, rec: SandboxRecord, live: readonly ContainerRecord[]): CgroupStats | undefined {
  const own = podCgroup(cgroups, rec);
  if (own !== undefined) {
    try {
      return readCgroupStats(cgroups.fs, own);
    } catch (err) {
      log.warn("cannot read a pod's cgroup for its stats", { id: rec.id, cgroup: own, error: err });
      return undefined;
    }
  }
  const paths = live.map((c) => c.cgroupsPath);
  if (rec.infraPid !== undefined && rec.cgroupParent !== undefined) paths.push(cgroups.containerCgroupPath(rec.cgroupParent, rec.id));
  const parts: CgroupStats[] = [];
  for (const p of paths) {
    try {
      parts.push(readCgroupStats(cgroups.fs, cgroups.resolve(p)));
    } catch {
      // exited meanwhile: nothing to add
    }
  }
  return sumCgroupStats(parts);
}

async function networkUsage(rec: SandboxRecord, live: readonly ContainerRecord[]): Promise<NetworkUsage | undefined> {
  const timestamp = nowNs();
  const text = await podNetDev(rec, live);
  if (text === undefined) return undefined;
  const links = parseNetDev(text);
  const def = links.find((l) => l.name === DEFAULT_IFNAME) ?? links.find((l) => l.name !== "lo");
  return { timestamp, defaultInterface: def, interfaces: links.filter((l) => l !== def) };
}

/**
 * The /proc/net/dev table of the pod's network namespace; undefined for a host-network or stopped
 * pod, or when it cannot be read (logged).
 */
export async function podNetDev(rec: SandboxRecord, live: readonly ContainerRecord[]): Promise<string | undefined> {
  if (rec.hostNetwork || rec.stopped || !rec.netnsPath) return undefined;
  try {
    return readNetDevOfMember(rec.netnsPath, [rec.infraPid, ...live.map((c) => c.pid)]) ?? (await readNetDevVia(rec.netnsPath));
  } catch (err) {
    log.warn("cannot read a pod's network counters", { id: rec.id, netns: rec.netnsPath, error: err });
    return undefined;
  }
}

/**
 * /proc/<pid>/net/dev of the first of `pids` whose network namespace is the one pinned at
 * `netnsPath` (checked before and after the read, so a reused pid is never believed).
 */
function readNetDevOfMember(netnsPath: string, pids: ReadonlyArray<number | undefined>): string | undefined {
  const want = statSync(netnsPath).ino;
  const inNs = (pid: number) => Number(/\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]) === want;
  for (const pid of pids) {
    if (pid === undefined || pid <= 0) continue;
    try {
      if (!inNs(pid)) continue;
      const text = readFileSync(`/proc/${pid}/net/dev`, "utf8");
      if (inNs(pid)) return text;
    } catch {
      // gone: try the next one
    }
  }
  return undefined;
}

/** /proc/net/dev as seen from inside the namespace pinned at `netnsPath`. */
async function readNetDevVia(netnsPath: string): Promise<string> {
  const proc = Bun.spawn(["nsenter", `--net=${netnsPath}`, "cat", "/proc/self/net/dev"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), NSENTER_TIMEOUT_MS);
  try {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`nsenter --net=${netnsPath} cat /proc/self/net/dev exited with ${code}: ${err.trim()}`);
    return out;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The interfaces of a /proc/net/dev table: after two header lines, `name: ` and 16 counters,
 * receive (bytes packets errs drop fifo frame compressed multicast) then transmit (bytes packets
 * errs drop fifo colls carrier compressed).
 */
export function parseNetDev(text: string): NetworkInterfaceUsage[] {
  const out: NetworkInterfaceUsage[] = [];
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (name === "" || f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const n = (i: number) => ({ value: BigInt(f[i] as string) });
    out.push({ name, rxBytes: n(0), rxErrors: n(2), txBytes: n(8), txErrors: n(10) });
  }
  return out;
}
