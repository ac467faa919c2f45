// Resource usage of one cgroup, read from its controller files: what the CRI stats RPCs report
// (CRI-O gets it from libcontainer's managers; the derived values follow cAdvisor and the
// kubelet). v1 (and hybrid, whose controllers are all v1) and unified v2 keep the same quantities
// in different files:
//
//   cpu     v1 cpuacct.usage (ns)                  v2 cpu.stat usage_usec × 1000
//   memory  v1 memory.usage_in_bytes,              v2 memory.current, memory.max,
//              memory.limit_in_bytes,                 memory.stat anon, inactive_file,
//              memory.stat total_rss,                 pgfault, pgmajfault
//              total_inactive_file, total_pgfault,
//              total_pgmajfault
//   swap    v1 memory.stat total_swap,             v2 memory.swap.current, memory.swap.max
//              memory.memsw.limit_in_bytes
//   pids    pids.current, pids.max (both)
//
// Every counter is a bigint: cpuacct.usage passes 2^53 ns after about 104 CPU-days, and v1 says
// "no limit" with a value near 2^63. A controller whose files are missing (not mounted, not
// enabled for the cgroup in v2, swap accounting off) leaves its section out.
import { NotFoundError } from "../errors.ts";
import type { CgroupFs } from "./fs.ts";

export interface CpuStats {
  /** Total CPU time used by the cgroup's tasks, in nanoseconds. */
  usageNs: bigint;
}

export interface MemoryStats {
  usage: bigint;
  /** usage − inactive file cache, floored at 0 (cAdvisor's and the kubelet's working set). */
  workingSet: bigint;
  /** Anonymous memory: v1 total_rss, v2 anon (as cAdvisor). */
  rss: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  /** The limit in bytes; undefined when unlimited. */
  limit: bigint | undefined;
  /** limit − working set, floored at 0; undefined when unlimited. */
  available: bigint | undefined;
}

export interface SwapStats {
  usage: bigint;
  /** The swap limit (v1: the mem+swap limit minus the memory limit); undefined when unlimited. */
  limit: bigint | undefined;
  /** limit − usage, floored at 0; undefined when unlimited. */
  available: bigint | undefined;
}

export interface PidsStats {
  /** Tasks in the cgroup and its descendants (pids.current). */
  current: bigint;
  limit: bigint | undefined;
}

export interface CgroupStats {
  cpu?: CpuStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  pids?: PidsStats;
}

/** v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB pages). */
const V1_UNLIMITED = 2n ** 62n;

/**
 * The usage of `cgroup` (a path below every hierarchy's root). NotFoundError when the cgroup
 * exists in no hierarchy; a controller whose files cannot be read is left out.
 */
export function readCgroupStats(fs: CgroupFs, cgroup: string): CgroupStats {
  if (!fs.exists(cgroup)) throw new NotFoundError(`cgroup ${cgroup} does not exist`);
  const file = (controller: string, name: string): string | undefined => {
    const dir = fs.controllerDir(controller, cgroup);
    if (dir === undefined) return undefined;
    try {
      return fs.ops.read(`${dir}/${name}`);
    } catch {
      return undefined;
    }
  };
  const out: CgroupStats = {};
  const cpu = fs.unified ? v2Cpu(file) : v1Cpu(file);
  if (cpu) out.cpu = cpu;
  const mem = fs.unified ? v2Memory(file) : v1Memory(file);
  if (mem?.memory) out.memory = mem.memory;
  if (mem?.swap) out.swap = mem.swap;
  const pids = readPids(file);
  if (pids) out.pids = pids;
  return out;
}

/**
 * The sum of several cgroups' usage, for a pod without a cgroup of its own. Limits do not add
 * up (each cgroup has its own), so the sum has none and no available bytes.
 */
export function sumCgroupStats(list: readonly CgroupStats[]): CgroupStats {
  const out: CgroupStats = {};
  for (const s of list) {
    if (s.cpu) out.cpu = { usageNs: (out.cpu?.usageNs ?? 0n) + s.cpu.usageNs };
    if (s.memory) {
      const m = out.memory;
      out.memory = {
        usage: (m?.usage ?? 0n) + s.memory.usage,
        workingSet: (m?.workingSet ?? 0n) + s.memory.workingSet,
        rss: (m?.rss ?? 0n) + s.memory.rss,
        pageFaults: (m?.pageFaults ?? 0n) + s.memory.pageFaults,
        majorPageFaults: (m?.majorPageFaults ?? 0n) + s.memory.majorPageFaults,
        limit: undefined,
        available: undefined,
      };
    }
    if (s.swap) out.swap = { usage: (out.swap?.usage ?? 0n) + s.swap.usage, limit: undefined, available: undefined };
    if (s.pids) out.pids = { current: (out.pids?.current ?? 0n) + s.pids.current, limit: undefined };
  }
  return out;
}

/** One reading of a CPU usage counter, with the wall-clock time it was taken (Unix ns). */
export interface CpuSample {
  timestampNs: bigint;
  usageNs: bigint;
}

/**
 * CPU use between two samples in nanocores (1e9 = one core busy all the time), as CRI-O and the
 * kubelet compute usage_nano_cores. Undefined when the samples do not span time or the counter
 * went backwards (a cgroup recreated under the same name).
 */
export function usageNanoCores(prev: CpuSample, cur: CpuSample): bigint | undefined {
  const dt = cur.timestampNs - prev.timestampNs;
  const du = cur.usageNs - prev.usageNs;
  if (dt <= 0n || du < 0n) return undefined;
  return (du * 1_000_000_000n) / dt;
}

type FileReader = (controller: string, name: string) => string | undefined;

function v1Cpu(file: FileReader): CpuStats | undefined {
  const usage = parseUint(file("cpuacct", "cpuacct.usage"));
  return usage === undefined ? undefined : { usageNs: usage };
}

function v2Cpu(file: FileReader): CpuStats | undefined {
  const usec = parseKeyed(file("cpu", "cpu.stat")).get("usage_usec");
  return usec === undefined ? undefined : { usageNs: usec * 1000n };
}

function v1Memory(file: FileReader): { memory?: MemoryStats; swap?: SwapStats } | undefined {
  const usage = parseUint(file("memory", "memory.usage_in_bytes"));
  if (usage === undefined) return undefined;
  const stat = parseKeyed(file("memory", "memory.stat"));
  const limit = v1Limit(file("memory", "memory.limit_in_bytes"));
  const memory = memoryStats({
    usage,
    limit,
    inactiveFile: stat.get("total_inactive_file"),
    rss: stat.get("total_rss") ?? 0n,
    pageFaults: stat.get("total_pgfault") ?? 0n,
    majorPageFaults: stat.get("total_pgmajfault") ?? 0n,
  });
  // total_swap is printed only with swap accounting on, which is also what makes memsw files exist.
  const swapUsage = stat.get("total_swap");
  if (swapUsage === undefined) return { memory };
  const memswLimit = v1Limit(file("memory", "memory.memsw.limit_in_bytes"));
  const swapLimit = memswLimit === undefined || limit === undefined ? undefined : floor0(memswLimit - limit);
  return { memory, swap: swapStats(swapUsage, swapLimit) };
}

function v2Memory(file: FileReader): { memory?: MemoryStats; swap?: SwapStats } | undefined {
  const usage = parseUint(file("memory", "memory.current"));
  if (usage === undefined) return undefined;
  const stat = parseKeyed(file("memory", "memory.stat"));
  const memory = memoryStats({
    usage,
    limit: v2Limit(file("memory", "memory.max")),
    inactiveFile: stat.get("inactive_file"),
    rss: stat.get("anon") ?? 0n,
    pageFaults: stat.get("pgfault") ?? 0n,
    majorPageFaults: stat.get("pgmajfault") ?? 0n,
  });
  const swapUsage = parseUint(file("memory", "memory.swap.current"));
  if (swapUsage === undefined) return { memory };
  return { memory, swap: swapStats(swapUsage, v2Limit(file("memory", "memory.swap.max"))) };
}

function memoryStats(m: {
  usage: bigint;
  limit: bigint | undefined;
  inactiveFile: bigint | undefined;
  rss: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
}): MemoryStats {
  const workingSet = floor0(m.usage - (m.inactiveFile ?? 0n));
  return {
    usage: m.usage,
    workingSet,
    rss: m.rss,
    pageFaults: m.pageFaults,
    majorPageFaults: m.majorPageFaults,
    limit: m.limit,
    available: m.limit === undefined ? undefined : floor0(m.limit - workingSet),
  };
}

function swapStats(usage: bigint, limit: bigint | undefined): SwapStats {
  return { usage, limit, available: limit === undefined ? undefined : floor0(limit - usage) };
}

function readPids(file: FileReader): PidsStats | undefined {
  const current = parseUint(file("pids", "pids.current"));
  if (current === undefined) return undefined;
  return { current, limit: v2Limit(file("pids", "pids.max")) };
}

/** A v1 limit file: undefined when unlimited or unreadable. */
function v1Limit(text: string | undefined): bigint | undefined {
  const n = parseUint(text);
  return n === undefined || n >= V1_UNLIMITED ? undefined : n;
}

/** A v2 limit file ("max" or a number): undefined when unlimited or unreadable. */
function v2Limit(text: string | undefined): bigint | undefined {
  return text?.trim() === "max" ? undefined : parseUint(text);
}

export function parseUint(text: string | undefined): bigint | undefined {
  const t = text?.trim();
  return t !== undefined && /^\d+$/.test(t) ? BigInt(t) : undefined;
}

/** A flat keyed file ("key value" per line: memory.stat, cpu.stat). */
export function parseKeyed(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (text ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value && /^\d+$/.test(value)) out.set(key, BigInt(value));
  }
  return out;
}

function floor0(n: bigint): bigint {
  return n < 0n ? 0n : n;
}
