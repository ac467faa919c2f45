// linux.resources and process.oomScoreAdj from the request's LinuxContainerResources
// (CRI-O internal/factory/container SpecSetLinuxContainerResources).
import { InvalidArgumentError } from "../errors.ts";
import type { LinuxContainerResources } from "../proto/runtime-v1.ts";
import type { OciLinuxResources } from "./types.ts";

/** CRI-O's default minimum container memory for runc (internal/config/cgmgr: 12 MiB). */
export const DEFAULT_CONTAINER_MIN_MEMORY = 12 * 1024 * 1024;

export interface ResourceOptions {
  /** The daemon's own /proc/self/oom_score_adj; a lower request is raised to it (DESIGN §4). */
  daemonOomScoreAdj?: number;
  /** Smallest memory limit accepted (per runtime handler); default 12 MiB. */
  containerMinMemory?: number;
  /** The host has memory.swap accounting (memory.memsw.* on v1, memory.swap.max on v2). Default true. */
  hasMemorySwap?: boolean;
  /** The host has the hugetlb controller; without it the limits are dropped silently. Default true. */
  hasHugetlb?: boolean;
  /** The host runs cgroup v2 (unified); `unified` keys are only passed on v2. Default false. */
  cgroupV2?: boolean;
  /** pids_limit from the config; > 0 sets linux.resources.pids. */
  pidsLimit?: number;
}

export interface ResourceResult {
  resources: OciLinuxResources;
  /** process.oomScoreAdj, after clamping. */
  oomScoreAdj: number;
  /** Set when the request's oom_score_adj was raised to the daemon's value, for the caller to log. */
  oomScoreAdjClamped?: { requested: number; applied: number };
}

function toNumber(v: bigint, field: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field} ${v} is out of range`);
  return n;
}

/**
 * - cpu: shares, quota, period (zero = unset, omitted), cpuset cpus and mems (empty = unset).
 * - memory: limit when non-zero and at least containerMinMemory. Swap (memory+swap in cgroup v1
 *   terms) = memory_swap_limit_in_bytes when non-zero (it may not be below the memory limit,
 *   except -1 = unlimited), else = the memory limit (no swap); only when the host accounts swap.
 * - hugepageLimits: passed through when the host has hugetlb.
 * - unified: passed through on cgroup v2 only.
 * - oom_score_adj: clamped up to the daemon's own value (runc cannot lower it below that).
 */
export function resources(criResources: LinuxContainerResources | undefined, options: ResourceOptions = {}): ResourceResult {
  const r = criResources;
  const out: OciLinuxResources = {};

  const cpu: NonNullable<OciLinuxResources["cpu"]> = {};
  if (r?.cpuShares) cpu.shares = toNumber(r.cpuShares, "cpu_shares");
  if (r?.cpuQuota) cpu.quota = toNumber(r.cpuQuota, "cpu_quota");
  if (r?.cpuPeriod) cpu.period = toNumber(r.cpuPeriod, "cpu_period");
  if (r?.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r?.cpusetMems) cpu.mems = r.cpusetMems;
  if (cpu.shares !== undefined && cpu.shares < 0) throw new InvalidArgumentError(`cpu_shares ${cpu.shares} is negative`);
  if (cpu.period !== undefined && cpu.period < 0) throw new InvalidArgumentError(`cpu_period ${cpu.period} is negative`);
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  const limit = r?.memoryLimitInBytes ? toNumber(r.memoryLimitInBytes, "memory_limit_in_bytes") : 0;
  if (limit !== 0) {
    const min = options.containerMinMemory ?? DEFAULT_CONTAINER_MIN_MEMORY;
    if (limit > 0 && limit < min) {
      throw new InvalidArgumentError(`set memory limit ${limit} too low; should be at least ${min} bytes`);
    }
    out.memory = { limit };
    let swap = limit;
    const swapReq = r?.memorySwapLimitInBytes ? toNumber(r.memorySwapLimitInBytes, "memory_swap_limit_in_bytes") : 0;
    if (swapReq !== 0) {
      if (swapReq > 0 && swapReq < limit) {
        throw new InvalidArgumentError(`memory swap limit (${swapReq}) cannot be lower than memory limit (${limit})`);
      }
      swap = swapReq;
    }
    if (options.hasMemorySwap ?? true) out.memory.swap = swap;
  }

  if ((options.hasHugetlb ?? true) && r?.hugepageLimits.length) {
    out.hugepageLimits = r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: toNumber(h.limit, `hugepage limit ${h.pageSize}`) }));
  }

  if (options.cgroupV2 && r && Object.keys(r.unified).length > 0) out.unified = { ...r.unified };

  if (options.pidsLimit !== undefined && options.pidsLimit > 0) out.pids = { limit: options.pidsLimit };

  const requested = r?.oomScoreAdj ? toNumber(r.oomScoreAdj, "oom_score_adj") : 0;
  if (requested < -1000 || requested > 1000) throw new InvalidArgumentError(`oom_score_adj ${requested} is outside -1000..1000`);
  const floor = options.daemonOomScoreAdj;
  const result: ResourceResult = { resources: out, oomScoreAdj: requested };
  if (floor !== undefined && requested < floor) {
    result.oomScoreAdj = floor;
    result.oomScoreAdjClamped = { requested, applied: floor };
  }
  return result;
}
