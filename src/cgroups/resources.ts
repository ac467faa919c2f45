// Resource limits for the cgroups the daemon itself makes (sandbox and monitor cgroups), and how
// each layout spells them: v1 files, v2 files, systemd unit properties. Pure functions.
import { InvalidArgumentError } from "../errors.ts";
import { Variant } from "./dbus.ts";

export interface CgroupResources {
  /** Memory limit in bytes; undefined or 0: no limit. */
  memoryLimitBytes?: number;
  /** CPU shares on the v1 scale (2..262144); converted to cpu.weight on v2. */
  cpuShares?: number;
  /** CFS quota in µs per period; undefined or <= 0: no quota. */
  cpuQuotaUs?: number;
  /** CFS period in µs. */
  cpuPeriodUs?: number;
  /** CPUs, in cpuset list syntax ("0-3,6"). */
  cpusetCpus?: string;
  /** Memory nodes, in cpuset list syntax. */
  cpusetMems?: string;
  /** Maximum number of tasks; undefined or <= 0: no limit. */
  pidsLimit?: number;
}

/** One file write: `controller` picks the v1 hierarchy (ignored on v2), `file` is relative to the cgroup. */
export interface CgroupWrite {
  controller: string;
  file: string;
  value: string;
}

/** A systemd unit property as StartTransientUnit takes it: name and variant. */
export type UnitProperty = [name: string, value: Variant];

/**
 * cpu.shares to cpu.weight. Since runc 1.3 / crun 1.23 (kubernetes#131216) this is the quadratic
 * fit through (2, 1), (1024, 100) and (262144, 10000) in log space, so that the default shares map
 * to the default weight; the linear formula it replaced mapped 1024 to 39.
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares <= 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.ceil(10 ** exponent);
}

/** Parses a cpuset list ("0-3,6") into sorted CPU numbers. */
export function parseCpuList(list: string): number[] {
  const out = new Set<number>();
  for (const raw of list.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`invalid cpuset list ${JSON.stringify(list)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 8191) throw new InvalidArgumentError(`invalid cpuset range ${JSON.stringify(part)}`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  if (out.size === 0) throw new InvalidArgumentError(`empty cpuset list ${JSON.stringify(list)}`);
  return [...out].sort((a, b) => a - b);
}

/**
 * A cpuset list as systemd's AllowedCPUs/AllowedMemoryNodes take it (`ay`): a little-endian bit
 * stream, byte i holding CPUs 8i..8i+7 with CPU 8i+j at bit j (systemd cpu_set_from_dbus).
 */
export function cpusetToBits(list: string): Uint8Array {
  const cpus = parseCpuList(list);
  const max = cpus[cpus.length - 1] ?? 0;
  const bits = new Uint8Array((max >> 3) + 1);
  for (const c of cpus) bits[c >> 3] = (bits[c >> 3] ?? 0) | (1 << (c & 7));
  return bits;
}

function positive(n: number | undefined): n is number {
  return n !== undefined && n > 0;
}

/** The cgroup v1 file writes for `r`, in a safe order (cpuset first, period before quota). */
export function v1Writes(r: CgroupResources): CgroupWrite[] {
  const w: CgroupWrite[] = [];
  if (r.cpusetCpus) w.push({ controller: "cpuset", file: "cpuset.cpus", value: r.cpusetCpus });
  if (r.cpusetMems) w.push({ controller: "cpuset", file: "cpuset.mems", value: r.cpusetMems });
  if (positive(r.memoryLimitBytes)) w.push({ controller: "memory", file: "memory.limit_in_bytes", value: String(r.memoryLimitBytes) });
  if (positive(r.cpuShares)) w.push({ controller: "cpu", file: "cpu.shares", value: String(r.cpuShares) });
  if (positive(r.cpuPeriodUs)) w.push({ controller: "cpu", file: "cpu.cfs_period_us", value: String(r.cpuPeriodUs) });
  if (positive(r.cpuQuotaUs)) w.push({ controller: "cpu", file: "cpu.cfs_quota_us", value: String(r.cpuQuotaUs) });
  if (positive(r.pidsLimit)) w.push({ controller: "pids", file: "pids.max", value: String(r.pidsLimit) });
  return w;
}

/** The cgroup v2 file writes for `r`. */
export function v2Writes(r: CgroupResources): CgroupWrite[] {
  const w: CgroupWrite[] = [];
  if (r.cpusetCpus) w.push({ controller: "cpuset", file: "cpuset.cpus", value: r.cpusetCpus });
  if (r.cpusetMems) w.push({ controller: "cpuset", file: "cpuset.mems", value: r.cpusetMems });
  if (positive(r.memoryLimitBytes)) w.push({ controller: "memory", file: "memory.max", value: String(r.memoryLimitBytes) });
  if (positive(r.cpuShares)) w.push({ controller: "cpu", file: "cpu.weight", value: String(cpuSharesToWeight(r.cpuShares)) });
  if (positive(r.cpuQuotaUs) || positive(r.cpuPeriodUs)) {
    const quota = positive(r.cpuQuotaUs) ? String(r.cpuQuotaUs) : "max";
    w.push({ controller: "cpu", file: "cpu.max", value: `${quota} ${r.cpuPeriodUs ?? 100000}` });
  }
  if (positive(r.pidsLimit)) w.push({ controller: "pids", file: "pids.max", value: String(r.pidsLimit) });
  return w;
}

/**
 * The systemd unit properties for `r` (runc's mapping). systemd spells limits per cgroup version
 * (MemoryLimit/CPUShares on v1, MemoryMax/CPUWeight on v2); CPUQuotaPeriodUSec needs systemd
 * 242 and AllowedCPUs/AllowedMemoryNodes need 244 and cgroup v2, so older or v1 systems skip them
 * (the runtime still writes the files). The quota rounds up to whole 10 ms per second, as systemd
 * would round it anyway.
 */
export function systemdResourceProperties(r: CgroupResources, opts: { unified: boolean; systemdVersion: number }): UnitProperty[] {
  const p: UnitProperty[] = [];
  const t = (name: string, v: number): UnitProperty => [name, new Variant("t", BigInt(Math.trunc(v)))];
  if (positive(r.memoryLimitBytes)) p.push(t(opts.unified ? "MemoryMax" : "MemoryLimit", r.memoryLimitBytes));
  if (positive(r.cpuShares)) p.push(opts.unified ? t("CPUWeight", cpuSharesToWeight(r.cpuShares)) : t("CPUShares", r.cpuShares));
  if (positive(r.cpuPeriodUs) && opts.systemdVersion >= 242) p.push(t("CPUQuotaPeriodUSec", r.cpuPeriodUs));
  if (positive(r.cpuQuotaUs)) {
    const period = r.cpuPeriodUs ?? 100000;
    let perSec = Math.floor((r.cpuQuotaUs * 1_000_000) / period);
    if (perSec % 10000 !== 0) perSec = (Math.floor(perSec / 10000) + 1) * 10000;
    p.push(t("CPUQuotaPerSecUSec", perSec));
  }
  if (positive(r.pidsLimit)) p.push(t("TasksMax", r.pidsLimit));
  if (opts.unified && opts.systemdVersion >= 244) {
    if (r.cpusetCpus) p.push(["AllowedCPUs", new Variant("ay", cpusetToBits(r.cpusetCpus))]);
    if (r.cpusetMems) p.push(["AllowedMemoryNodes", new Variant("ay", cpusetToBits(r.cpusetMems))]);
  }
  return p;
}
