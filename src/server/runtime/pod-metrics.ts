// ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics: cAdvisor-compatible
// metrics of every pod and of its containers that have not exited, for a kubelet that takes its
// /metrics/cadvisor from the runtime (KEP-2371). As CRI-O (internal/lib/statsserver), the groups
// named by [crio.stats] included_pod_metrics decide what is reported ("all" is every group), and
// container_last_seen is always there; with the default (no group) each live container reports
// only container_last_seen. Names, help texts, label keys, metric types and the order of the
// metrics are CRI-O's.
//
// Label values run parallel to the descriptor's keys: id, image, namespace, pod, container, then
// the metric's own keys (cpu, interface, device, ...). A container's row carries its ID and image
// name; the pod's own rows (the network group only, per interface of the pod's network namespace,
// lo included as CRI-O lists every link) carry the sandbox ID, no image and container "POD".
//
// Sources, per group (v1 and hybrid nodes read the v1 controllers, unified nodes the v2 files):
//   cpu       cpuacct.usage_percpu, usage_user/usage_sys (else cpuacct.stat ticks), cpu.stat
//             nr_periods/nr_throttled/throttled_time | v2 cpu.stat usage/user/system_usec,
//             nr_periods, nr_throttled, throttled_usec. Seconds are whole seconds (the CRI value
//             is an integer), as in CRI-O. v1 reports usage per CPU ("cpu00"...), v2 as "total".
//   memory    src/cgroups/stats.ts (usage, working set, rss, swap) and memory.stat total_cache,
//             total_mapped_file, pgfault/total_pgfault..., memory.kmem.usage_in_bytes,
//             memory.failcnt, memory.max_usage_in_bytes | v2 memory.stat file, file_mapped,
//             kernel, pgfault, memory.events max, memory.peak.
//   oom       memory.oom_control oom_kill | v2 memory.events oom_kill.
//   hugetlb   hugetlb.<size>.usage_in_bytes/max_usage_in_bytes | v2 hugetlb.<size>.current, for
//             the page sizes of /sys/kernel/mm/hugepages; nothing where the controller is absent.
//   process   the cgroup's processes (cgroup.procs), their /proc/<pid>/fd entries and sockets,
//             pids.current/pids.max as threads (0 = no limit), and the soft open-files limit of
//             the container's init (cAdvisor's ulimit="max_open_files").
//   spec      the container's stored resources and creation time.
//   disk      the writable layer's usage (as ContainerStats) and statfs of its file system.
//   diskIO    blkio.throttle.io_service_bytes/io_serviced_recursive (bfq's when throttle's are
//             missing) | v2 io.stat, device labels "major:minor" as CRI-O.
//   pressure  cpu/memory/io.pressure of the cgroup in the v2 tree: unified nodes, and hybrid
//             ones, whose process-tracking v2 tree keeps PSI (CRI-O reads PSI only on unified).
//   network   /proc/net/dev of the pod's network namespace (pod-sandbox-stats.ts podNetDev); a
//             host-network or stopped pod has none.
//
// Where CRI-O reports a value it cannot read as 0 (v1 page faults, v2 failcnt, kernel memory on
// v2) this reports the kernel's value when the node has one and leaves the metric out otherwise.
// container_processes counts processes (cgroup.procs, as cAdvisor) where CRI-O repeats the task
// count. Timestamps are 0: the API's mark for values collected on demand (CRI-O stamps the
// collection time; with collection_period 0 nothing here is cached). Every pod is listed, as
// CRI-O lists every sandbox; a stopped one has no metrics.
import { readdirSync, readFileSync, readlinkSync, statfsSync } from "node:fs";
import type {
  ContainerMetrics,
  ListMetricDescriptorsRequest,
  ListMetricDescriptorsResponse,
  ListPodSandboxMetricsRequest,
  ListPodSandboxMetricsResponse,
  Metric,
  MetricDescriptor,
  PodSandboxMetrics,
  StreamPodSandboxMetricsRequest,
  StreamPodSandboxMetricsResponse,
} from "../../proto/index.ts";
import { MetricType } from "../../proto/index.ts";
import type { CgroupFs } from "../../cgroups/index.ts";
import { parseKeyed, parseUint, readCgroupStats, type CgroupStats } from "../../cgroups/stats.ts";
import { log } from "../../log.ts";
import { containerState, type ContainerRecord } from "../../state/containers.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import { diskUsage } from "../../storage/disk-usage.ts";
import type { ServerContext } from "../context.ts";
import { podNetDev } from "./pod-sandbox-stats.ts";
import { LIST_STREAM_CHUNK } from "./stream-lists.ts";

export function listMetricDescriptorsHandler(ctx: ServerContext) {
  return async (_req: ListMetricDescriptorsRequest): Promise<ListMetricDescriptorsResponse> => ({
    descriptors: metricDescriptors(ctx.config.stats.included_pod_metrics),
  });
}

export function listPodSandboxMetricsHandler(ctx: ServerContext) {
  return async (_req: ListPodSandboxMetricsRequest): Promise<ListPodSandboxMetricsResponse> => ({ podMetrics: await podSandboxMetrics(ctx) });
}

/** The same answer as ListPodSandboxMetrics, LIST_STREAM_CHUNK pods per message. */
export function streamPodSandboxMetricsHandler(ctx: ServerContext) {
  return async (_req: StreamPodSandboxMetricsRequest, send: (m: StreamPodSandboxMetricsResponse) => void): Promise<void> => {
    const all = await podSandboxMetrics(ctx);
    for (let i = 0; i < all.length; i += LIST_STREAM_CHUNK) send({ podSandboxMetrics: all.slice(i, i + LIST_STREAM_CHUNK) });
  };
}

// ---------------------------------------------------------------------------------------------
// Groups and descriptors
// ---------------------------------------------------------------------------------------------

/** The metric groups of included_pod_metrics, in the order "all" expands to. */
export const METRIC_GROUPS = ["cpu", "hugetlb", "memory", "network", "oom", "process", "spec", "disk", "diskIO", "pressure"] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

const isGroup = (g: string): g is MetricGroup => (METRIC_GROUPS as readonly string[]).includes(g);
const warnedUnknown = new Set<string>();

/** The groups `included` names, in its order, each once; "all" is every group. Unknown names are skipped (warned once). */
export function enabledGroups(included: readonly string[]): MetricGroup[] {
  const out = new Set<MetricGroup>();
  for (const name of included) {
    if (name === "all") for (const g of METRIC_GROUPS) out.add(g);
    else if (isGroup(name)) out.add(name);
    else if (!warnedUnknown.has(name)) {
      warnedUnknown.add(name);
      log.warn("unknown group in included_pod_metrics", { group: name });
    }
  }
  return [...out];
}

/** Every row's first label keys (CRI-O's runtime and Kubernetes keys). */
export const BASE_LABEL_KEYS: readonly string[] = ["id", "image", "namespace", "pod", "container"];

const desc = (name: string, help: string, ...extra: string[]): MetricDescriptor => ({ name, help, labelKeys: [...BASE_LABEL_KEYS, ...extra] });

const D = {
  lastSeen: desc("container_last_seen", "Last time a container was seen by the exporter"),

  cpuUser: desc("container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds."),
  cpuSystem: desc("container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds."),
  cpuUsage: desc("container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", "cpu"),
  cfsPeriods: desc("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals."),
  cfsThrottledPeriods: desc("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."),
  cfsThrottledSeconds: desc("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled."),

  fsInodesFree: desc("container_fs_inodes_free", "Number of free inodes."),
  fsInodesTotal: desc("container_fs_inodes_total", "Total number of inodes."),
  fsLimit: desc("container_fs_limit_bytes", "Filesystem limit in bytes."),
  fsUsage: desc("container_fs_usage_bytes", "Current filesystem usage in bytes."),

  fsReadsBytes: desc("container_fs_reads_bytes_total", "Cumulative count of bytes read", "device"),
  fsReads: desc("container_fs_reads_total", "Cumulative count of reads completed", "device"),
  fsWritesBytes: desc("container_fs_writes_bytes_total", "Cumulative count of bytes written", "device"),
  fsWrites: desc("container_fs_writes_total", "Cumulative count of writes completed", "device"),
  blkioDeviceUsage: desc("container_blkio_device_usage_total", "Blkio Device bytes usage", "device", "major", "minor", "operation"),

  hugetlbUsage: desc("container_hugetlb_usage_bytes", "Current hugepage usage", "pagesize"),
  hugetlbMaxUsage: desc("container_hugetlb_max_usage_bytes", "Maximum hugepage usages recorded", "pagesize"),

  memCache: desc("container_memory_cache", "Number of bytes of page cache memory."),
  memRss: desc("container_memory_rss", "Size of RSS in bytes."),
  memKernel: desc("container_memory_kernel_usage", "Size of kernel memory allocated in bytes."),
  memMappedFile: desc("container_memory_mapped_file", "Size of memory mapped files in bytes."),
  memSwap: desc("container_memory_swap", "Container swap usage in bytes."),
  memFailcnt: desc("container_memory_failcnt", "Number of memory usage hits limits"),
  memUsage: desc("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed"),
  memMaxUsage: desc("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes"),
  memWorkingSet: desc("container_memory_working_set_bytes", "Current working set in bytes."),
  memFailures: desc("container_memory_failures_total", "Cumulative count of memory allocation failures.", "failure_type", "scope"),

  netRxBytes: desc("container_network_receive_bytes_total", "Cumulative count of bytes received", "interface"),
  netRxPackets: desc("container_network_receive_packets_total", "Cumulative count of packets received", "interface"),
  netRxDropped: desc("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", "interface"),
  netRxErrors: desc("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", "interface"),
  netTxBytes: desc("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "interface"),
  netTxPackets: desc("container_network_transmit_packets_total", "Cumulative count of packets transmitted", "interface"),
  netTxDropped: desc("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", "interface"),
  netTxErrors: desc("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", "interface"),

  oomEvents: desc("container_oom_events_total", "Count of out of memory events observed for the container"),

  fileDescriptors: desc("container_file_descriptors", "Number of open file descriptors for the container."),
  processes: desc("container_processes", "Number of processes running inside the container."),
  sockets: desc("container_sockets", "Number of open sockets for the container."),
  threads: desc("container_threads", "Number of threads running inside the container"),
  threadsMax: desc("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero"),
  ulimitsSoft: desc("container_ulimits_soft", "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice", "ulimit"),

  specCpuPeriod: desc("container_spec_cpu_period", "CPU period of the container."),
  specCpuShares: desc("container_spec_cpu_shares", "CPU share of the container."),
  specCpuQuota: desc("container_spec_cpu_quota", "CPU quota of the container."),
  specMemoryLimit: desc("container_spec_memory_limit_bytes", "Memory limit for the container in bytes."),
  specMemoryReservation: desc("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container."),
  specMemorySwapLimit: desc("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container."),
  startTime: desc("container_start_time_seconds", "Start time of the container since unix epoch in seconds."),

  cpuStalled: desc("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion."),
  cpuWaiting: desc("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion."),
  memoryStalled: desc("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion."),
  memoryWaiting: desc("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion."),
  ioStalled: desc("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion."),
  ioWaiting: desc("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion."),
} satisfies Record<string, MetricDescriptor>;

/** Each group's descriptors, in CRI-O's order. */
export const GROUP_DESCRIPTORS: Readonly<Record<MetricGroup, readonly MetricDescriptor[]>> = {
  cpu: [D.cpuUser, D.cpuSystem, D.cpuUsage, D.cfsPeriods, D.cfsThrottledPeriods, D.cfsThrottledSeconds],
  disk: [D.fsInodesFree, D.fsInodesTotal, D.fsLimit, D.fsUsage],
  diskIO: [D.fsReadsBytes, D.fsReads, D.fsWritesBytes, D.fsWrites, D.blkioDeviceUsage],
  hugetlb: [D.hugetlbUsage, D.hugetlbMaxUsage],
  memory: [D.memCache, D.memRss, D.memKernel, D.memMappedFile, D.memSwap, D.memFailcnt, D.memUsage, D.memMaxUsage, D.memWorkingSet, D.memFailures],
  network: [D.netRxBytes, D.netRxPackets, D.netRxDropped, D.netRxErrors, D.netTxBytes, D.netTxPackets, D.netTxDropped, D.netTxErrors],
  oom: [D.oomEvents],
  process: [D.fileDescriptors, D.processes, D.sockets, D.threads, D.threadsMax, D.ulimitsSoft],
  spec: [D.specCpuPeriod, D.specCpuShares, D.specCpuQuota, D.specMemoryLimit, D.specMemoryReservation, D.specMemorySwapLimit, D.startTime],
  pressure: [D.cpuStalled, D.cpuWaiting, D.memoryStalled, D.memoryWaiting, D.ioStalled, D.ioWaiting],
};

/** ListMetricDescriptors: container_last_seen, then each included group's descriptors. */
export function metricDescriptors(included: readonly string[]): MetricDescriptor[] {
  return [D.lastSeen, ...enabledGroups(included).flatMap((g) => GROUP_DESCRIPTORS[g])].map((d) => ({ ...d, labelKeys: [...d.labelKeys] }));
}

// ---------------------------------------------------------------------------------------------
// Collection
// ---------------------------------------------------------------------------------------------

/** One value of a metric, with the label values that follow the base ones. */
export interface Sample {
  desc: MetricDescriptor;
  type: MetricType;
  value: bigint;
  labels?: string[];
}

const gauge = (d: MetricDescriptor, value: bigint, labels?: string[]): Sample => ({ desc: d, type: MetricType.GAUGE, value, labels });
const counter = (d: MetricDescriptor, value: bigint, labels?: string[]): Sample => ({ desc: d, type: MetricType.COUNTER, value, labels });

/** Groups read from the container's cgroup (a container whose cgroup is gone is left out). */
const CGROUP_GROUPS: ReadonlySet<MetricGroup> = new Set(["cpu", "hugetlb", "memory", "oom", "process", "diskIO", "pressure"]);

async function podSandboxMetrics(ctx: ServerContext): Promise<PodSandboxMetrics[]> {
  const groups = enabledGroups(ctx.config.stats.included_pod_metrics);
  await Promise.all(ctx.containers.list().map((c) => ctx.exits.poll(c)));
  // One look at the storage index for every writable layer (each lookup takes the store's lock).
  const layers = groups.includes("disk") ? new Map((await ctx.store.containers()).map((c) => [c.id, c.layer])) : new Map<string, string>();
  return Promise.all(ctx.sandboxes.list().map((sb) => sandboxMetrics(ctx, sb, groups, layers)));
}

async function sandboxMetrics(ctx: ServerContext, sb: SandboxRecord, groups: readonly MetricGroup[], layers: ReadonlyMap<string, string>): Promise<PodSandboxMetrics> {
  const live = ctx.containers.ofSandbox(sb.id).filter((c) => containerState(c) !== "EXITED");
  let metrics: Metric[] = [];
  if (groups.includes("network")) {
    const text = await podNetDev(sb, live);
    if (text !== undefined) metrics = toMetrics([sb.id, "", sb.metadata.namespace, sb.metadata.name, "POD"], networkSamples(text));
  }
  const containerMetrics = (await Promise.all(live.map((c) => containerMetricsOf(ctx, sb, c, groups, layers.get(c.id))))).filter(
    (m): m is ContainerMetrics => m !== undefined,
  );
  return { podSandboxId: sb.id, metrics, containerMetrics };
}

async function containerMetricsOf(
  ctx: ServerContext,
  sb: SandboxRecord,
  rec: ContainerRecord,
  groups: readonly MetricGroup[],
  layer: string | undefined,
): Promise<ContainerMetrics | undefined> {
  let src: CgroupSource | undefined;
  if (groups.some((g) => CGROUP_GROUPS.has(g))) {
    const cgroups = ctx.cgroups();
    try {
      const cgroup = cgroups.resolve(rec.cgroupsPath);
      src = { fs: cgroups.fs, cgroup, stats: readCgroupStats(cgroups.fs, cgroup) };
    } catch (err) {
      log.warn("cannot read a container's cgroup for its metrics", { id: rec.id, error: err });
      return undefined; // exited meanwhile
    }
  }
  const samples: Sample[] = [gauge(D.lastSeen, BigInt(Math.floor(Date.now() / 1000)))];
  for (const g of groups) samples.push(...(await groupSamples(ctx, g, rec, src, layer)));
  return { containerId: rec.id, metrics: toMetrics([rec.id, rec.imageName || rec.image.image, sb.metadata.namespace, sb.metadata.name, rec.metadata.name], samples) };
}

async function groupSamples(ctx: ServerContext, g: MetricGroup, rec: ContainerRecord, src: CgroupSource | undefined, layer: string | undefined): Promise<Sample[]> {
  if (g === "spec") return specSamples(rec);
  if (g === "disk") return diskSamplesOf(ctx, rec, layer);
  if (g === "network" || src === undefined) return []; // network is the pod's
  switch (g) {
    case "cpu":
      return cpuSamples(src);
    case "hugetlb":
      return hugetlbSamples(src, hugePageSizes());
    case "memory":
      return memorySamples(src);
    case "oom":
      return oomSamples(src);
    case "process":
      return processSamples(src, src.fs.pids(src.cgroup), rec.pid);
    case "diskIO":
      return diskIOSamples(src);
    case "pressure":
      return pressureSamples(src);
  }
}

/** CRI Metrics from samples, each with `base` then its own label values; timestamp 0 (live). */
export function toMetrics(base: readonly string[], samples: readonly Sample[]): Metric[] {
  return samples.map((s) => ({ name: s.desc.name, timestamp: 0n, metricType: s.type, labelValues: [...base, ...(s.labels ?? [])], value: { value: s.value } }));
}

// ---------------------------------------------------------------------------------------------
// Group readers (pure over a CgroupFs, so that fixture trees test them)
// ---------------------------------------------------------------------------------------------

/** One container's cgroup: where to read it and what src/cgroups/stats.ts read there. */
export interface CgroupSource {
  fs: CgroupFs;
  /** The cgroup path below every hierarchy's root. */
  cgroup: string;
  stats: CgroupStats;
}

const NS_PER_S = 1_000_000_000n;
/** USER_HZ, the unit of cpuacct.stat (100 on every Linux architecture). */
const NS_PER_TICK = NS_PER_S / 100n;

function read(path: string, fs: CgroupFs): string | undefined {
  try {
    return fs.ops.read(path);
  } catch {
    return undefined;
  }
}

/** A file of the hierarchy holding `controller` (the unified tree on v2). */
function file(src: CgroupSource, controller: string, name: string): string | undefined {
  const dir = src.fs.controllerDir(controller, src.cgroup);
  return dir === undefined ? undefined : read(`${dir}/${name}`, src.fs);
}

const times = (v: bigint | undefined, k: bigint) => (v === undefined ? undefined : v * k);

export function cpuSamples(src: CgroupSource): Sample[] {
  const usage = src.stats.cpu?.usageNs;
  if (usage === undefined) return [];
  let user: bigint | undefined;
  let system: bigint | undefined;
  let perCpu: bigint[] = [];
  let periods: bigint | undefined;
  let throttled: bigint | undefined;
  let throttledNs: bigint | undefined;
  if (src.fs.unified) {
    const st = parseKeyed(file(src, "cpu", "cpu.stat"));
    user = times(st.get("user_usec"), 1000n);
    system = times(st.get("system_usec"), 1000n);
    periods = st.get("nr_periods");
    throttled = st.get("nr_throttled");
    throttledNs = times(st.get("throttled_usec"), 1000n);
  } else {
    const ticks = parseKeyed(file(src, "cpuacct", "cpuacct.stat"));
    user = parseUint(file(src, "cpuacct", "cpuacct.usage_user")) ?? times(ticks.get("user"), NS_PER_TICK);
    system = parseUint(file(src, "cpuacct", "cpuacct.usage_sys")) ?? times(ticks.get("system"), NS_PER_TICK);
    const fields = (file(src, "cpuacct", "cpuacct.usage_percpu") ?? "").trim().split(/\s+/);
    perCpu = fields.every((f) => /^\d+$/.test(f)) ? fields.map(BigInt) : [];
    const st = parseKeyed(file(src, "cpu", "cpu.stat"));
    periods = st.get("nr_periods");
    throttled = st.get("nr_throttled");
    throttledNs = st.get("throttled_time");
  }
  const out: Sample[] = [];
  if (user !== undefined) out.push(counter(D.cpuUser, user / NS_PER_S));
  if (system !== undefined) out.push(counter(D.cpuSystem, system / NS_PER_S));
  // Per CPU where the kernel splits it (CPUs never used are left out), else one "total" row.
  if (perCpu.length > 0) {
    perCpu.forEach((ns, i) => {
      if (ns > 0n) out.push(counter(D.cpuUsage, ns / NS_PER_S, [`cpu${String(i).padStart(2, "0")}`]));
    });
  } else if (usage > 0n) {
    out.push(counter(D.cpuUsage, usage / NS_PER_S, ["total"]));
  }
  if (periods !== undefined) out.push(counter(D.cfsPeriods, periods));
  if (throttled !== undefined) out.push(counter(D.cfsThrottledPeriods, throttled));
  if (throttledNs !== undefined) out.push(counter(D.cfsThrottledSeconds, throttledNs / NS_PER_S));
  return out;
}

export function memorySamples(src: CgroupSource): Sample[] {
  const m = src.stats.memory;
  if (!m) return [];
  const v2 = src.fs.unified;
  const stat = parseKeyed(file(src, "memory", "memory.stat"));
  const hierarchical = v2 || parseUint(file(src, "memory", "memory.use_hierarchy")) !== 0n;
  const cache = v2 ? stat.get("file") : (stat.get("total_cache") ?? stat.get("cache"));
  const kernel = v2 ? stat.get("kernel") : parseUint(file(src, "memory", "memory.kmem.usage_in_bytes"));
  const mapped = v2 ? stat.get("file_mapped") : hierarchical ? stat.get("total_mapped_file") : stat.get("mapped_file");
  // v2 counts the times usage hit memory.max in memory.events "max": v1's failcnt.
  const failcnt = v2 ? parseKeyed(file(src, "memory", "memory.events")).get("max") : parseUint(file(src, "memory", "memory.failcnt"));
  const maxUsage = parseUint(file(src, "memory", v2 ? "memory.peak" : "memory.max_usage_in_bytes"));
  // cAdvisor's scopes: the cgroup's own faults and its hierarchy's (one counter on v2).
  const faults = (kind: "pgfault" | "pgmajfault") => ({ container: stat.get(kind), hierarchy: v2 ? stat.get(kind) : stat.get(`total_${kind}`) });

  const out: Sample[] = [];
  const add = (s: Sample | undefined) => s && out.push(s);
  add(cache === undefined ? undefined : gauge(D.memCache, cache));
  add(gauge(D.memRss, m.rss));
  add(kernel === undefined ? undefined : gauge(D.memKernel, kernel));
  add(mapped === undefined ? undefined : gauge(D.memMappedFile, mapped));
  add(src.stats.swap ? gauge(D.memSwap, src.stats.swap.usage) : undefined);
  add(failcnt === undefined ? undefined : counter(D.memFailcnt, failcnt));
  add(gauge(D.memUsage, m.usage));
  add(maxUsage === undefined ? undefined : gauge(D.memMaxUsage, maxUsage));
  add(gauge(D.memWorkingSet, m.workingSet));
  for (const kind of ["pgfault", "pgmajfault"] as const) {
    const f = faults(kind);
    for (const scope of ["container", "hierarchy"] as const) {
      const v = f[scope];
      if (v !== undefined) out.push(counter(D.memFailures, v, [kind, scope]));
    }
  }
  return out;
}

export function oomSamples(src: CgroupSource): Sample[] {
  const kills = parseKeyed(file(src, "memory", src.fs.unified ? "memory.events" : "memory.oom_control")).get("oom_kill");
  return kills === undefined ? [] : [counter(D.oomEvents, kills)];
}

const HUGEPAGES_DIR = "/sys/kernel/mm/hugepages";
let cachedPageSizes: string[] | undefined;

/**
 * The huge page sizes of the node as cgroup files name them ("2MB", "1GB"), smallest first, from
 * <dir>/hugepages-<kB>kB. Read once per process (they are fixed at boot).
 */
export function hugePageSizes(dir = HUGEPAGES_DIR): string[] {
  if (dir === HUGEPAGES_DIR && cachedPageSizes) return cachedPageSizes;
  let kbs: number[] = [];
  try {
    kbs = readdirSync(dir)
      .map((n) => /^hugepages-(\d+)kB$/.exec(n)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    // no huge pages
  }
  const sizes = kbs.map((kb) => (kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1 << 10 ? `${kb >> 10}MB` : `${kb}KB`));
  if (dir === HUGEPAGES_DIR) cachedPageSizes = sizes;
  return sizes;
}
export function hugetlbSamples(src: CgroupSource, pageSizes: readonly string[]): Sample[] {
  const usage: Sample[] = [];
  const max: Sample[] = [];
  for (const ps of pageSizes) {
    const u = parseUint(file(src, "hugetlb", src.fs.unified ? `hugetlb.${ps}.current` : `hugetlb.${ps}.usage_in_bytes`));
    if (u !== undefined) usage.push(gauge(D.hugetlbUsage, u, [ps]));
    // v2 keeps no maximum.
    const m = src.fs.unified ? undefined : parseUint(file(src, "hugetlb", `hugetlb.${ps}.max_usage_in_bytes`));
    if (m !== undefined) max.push(gauge(D.hugetlbMaxUsage, m, [ps]));
  }
  return [...usage, ...max];
}

/**
 * Open files and sockets of `procs` (the cgroup's processes), their count, the cgroup's tasks
 * and task limit, and the soft open-files limit of `rootPid` (the container's init; else the
 * first process). `procRoot` is /proc outside tests.
 */
export function processSamples(src: CgroupSource, procs: readonly number[], rootPid: number | undefined, procRoot = "/proc"): Sample[] {
  let fds = 0n;
  let sockets = 0n;
  for (const pid of procs) {
    let names: string[];
    try {
      names = readdirSync(`${procRoot}/${pid}/fd`);
    } catch {
      continue; // exited meanwhile
    }
    fds += BigInt(names.length);
    for (const n of names) {
      try {
        if (readlinkSync(`${procRoot}/${pid}/fd/${n}`).startsWith("socket:")) sockets++;
      } catch {
        // closed meanwhile
      }
    }
  }
  const out: Sample[] = [gauge(D.fileDescriptors, fds), gauge(D.processes, BigInt(procs.length)), gauge(D.sockets, sockets)];
  const pids = src.stats.pids;
  if (pids) out.push(gauge(D.threads, pids.current), gauge(D.threadsMax, pids.limit ?? 0n));
  const limitPid = rootPid !== undefined && procs.includes(rootPid) ? rootPid : procs[0];
  const soft = limitPid === undefined ? undefined : maxOpenFiles(`${procRoot}/${limitPid}/limits`);
  if (soft !== undefined) out.push(gauge(D.ulimitsSoft, soft, ["max_open_files"]));
  return out;
}

/** The soft "Max open files" of a /proc/<pid>/limits; undefined when unlimited or unreadable. */
function maxOpenFiles(path: string): bigint | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const line = text.split("\n").find((l) => l.startsWith("Max open files"));
  return parseUint(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
}

/** Limits above this are "unlimited" and reported as 0, as cAdvisor and CRI-O do. */
const MAX_MEMORY_SIZE = 2n ** 62n;
const specMemory = (n: number) => {
  const v = BigInt(Math.trunc(n));
  return v < 0n || v > MAX_MEMORY_SIZE ? 0n : v;
};

export function specSamples(rec: Pick<ContainerRecord, "resources" | "createdNs">): Sample[] {
  const r = rec.resources;
  const out: Sample[] = [
    gauge(D.specMemoryLimit, specMemory(r.memoryLimitInBytes)),
    gauge(D.specMemorySwapLimit, specMemory(r.memorySwapLimitInBytes)),
    gauge(D.specCpuShares, BigInt(Math.max(0, Math.trunc(r.cpuShares)))),
    gauge(D.specCpuPeriod, BigInt(Math.max(0, Math.trunc(r.cpuPeriod)))),
    gauge(D.startTime, BigInt(rec.createdNs) / NS_PER_S),
  ];
  if (r.cpuQuota > 0) out.push(gauge(D.specCpuQuota, BigInt(Math.trunc(r.cpuQuota))));
  // The reservation is the unified memory.min (0 when unset), as in CRI-O.
  const min = r.unified["memory.min"] ?? "0";
  if (/^\d+$/.test(min)) out.push(gauge(D.specMemoryReservation, specMemory(Number(min))));
  return out;
}

/** Statfs of the writable layer's file system and the layer's own usage. */
export function diskSamples(usedBytes: bigint, fsStat: { blocks: bigint; bsize: bigint; files: bigint; ffree: bigint }): Sample[] {
  return [gauge(D.fsInodesFree, fsStat.ffree), gauge(D.fsInodesTotal, fsStat.files), gauge(D.fsLimit, fsStat.blocks * fsStat.bsize), gauge(D.fsUsage, usedBytes)];
}

async function diskSamplesOf(ctx: ServerContext, rec: ContainerRecord, layer: string | undefined): Promise<Sample[]> {
  if (layer === undefined) return [];
  try {
    const dir = await ctx.store.layerDiffDir(layer);
    const du = await diskUsage([dir]);
    return diskSamples(BigInt(du.bytes), statfsSync(dir, { bigint: true }));
  } catch (err) {
    log.warn("cannot measure a container's writable layer for its metrics", { id: rec.id, layer, error: err });
    return [];
  }
}

interface IoEntry {
  major: string;
  minor: string;
  /** Read, Write, Sync, Async, Discard, Total (v1's capitalisation). */
  op: string;
  value: bigint;
}

/** v1 blkio "major:minor Op value" lines (the closing "Total n" line is skipped). */
function parseBlkio(text: string | undefined): IoEntry[] {
  const out: IoEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: m[1]!, minor: m[2]!, op: m[3]!, value: BigInt(m[4]!) });
  }
  return out;
}

/** v2 io.stat ("major:minor rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..") as v1's entries. */
function parseIoStat(text: string | undefined): { bytes: IoEntry[]; ios: IoEntry[] } {
  const bytes: IoEntry[] = [];
  const ios: IoEntry[] = [];
  const ops: Record<string, [IoEntry[], string]> = {
    rbytes: [bytes, "Read"],
    wbytes: [bytes, "Write"],
    dbytes: [bytes, "Discard"],
    rios: [ios, "Read"],
    wios: [ios, "Write"],
    dios: [ios, "Discard"],
  };
  for (const line of (text ?? "").split("\n")) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (!m) continue;
    for (const kv of kvs) {
      const [k, v] = kv.split("=");
      const target = k === undefined ? undefined : ops[k];
      if (target && v !== undefined && /^\d+$/.test(v)) target[0].push({ major: m[1]!, minor: m[2]!, op: target[1], value: BigInt(v) });
    }
  }
  return { bytes, ios };
}

export function diskIOSamples(src: CgroupSource): Sample[] {
  let bytes: IoEntry[];
  let ios: IoEntry[];
  if (src.fs.unified) {
    ({ bytes, ios } = parseIoStat(file(src, "io", "io.stat")));
  } else {
    // The throttle files count every bio the cgroup submits whatever the I/O scheduler; bfq's
    // only what went through bfq.
    const pick = (name: string) => file(src, "blkio", `blkio.throttle.${name}`) ?? file(src, "blkio", `blkio.bfq.${name}`);
    bytes = parseBlkio(pick("io_service_bytes_recursive"));
    ios = parseBlkio(pick("io_serviced_recursive"));
  }
  const out: Sample[] = [];
  for (const e of ios) {
    const device = [`${e.major}:${e.minor}`];
    if (e.op === "Read") out.push(counter(D.fsReads, e.value, device));
    if (e.op === "Write") out.push(counter(D.fsWrites, e.value, device));
  }
  for (const e of bytes) {
    const device = `${e.major}:${e.minor}`;
    out.push(counter(D.blkioDeviceUsage, e.value, [device, e.major, e.minor, e.op.toLowerCase()]));
    if (e.op === "Read") out.push(counter(D.fsReadsBytes, e.value, [device]));
    if (e.op === "Write") out.push(counter(D.fsWritesBytes, e.value, [device]));
  }
  return out;
}

/** "some"/"full" totals (µs) of a PSI file; undefined when absent. */
function parsePsi(text: string | undefined): { some: bigint; full: bigint } | undefined {
  if (text === undefined) return undefined;
  const total = (kind: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${kind} `));
    return parseUint(/\btotal=(\d+)/.exec(line ?? "")?.[1]);
  };
  const some = total("some");
  // cpu has no "full" line before Linux 5.13: nothing stalled all tasks.
  return some === undefined ? undefined : { some, full: total("full") ?? 0n };
}

export function pressureSamples(src: CgroupSource): Sample[] {
  const v2 = src.fs.dirs(src.cgroup).find((d) => d.hierarchy.kind === "v2")?.dir;
  if (v2 === undefined) return [];
  const out: Sample[] = [];
  const kinds = [
    ["cpu", D.cpuStalled, D.cpuWaiting],
    ["memory", D.memoryStalled, D.memoryWaiting],
    ["io", D.ioStalled, D.ioWaiting],
  ] as const;
  for (const [kind, stalled, waiting] of kinds) {
    const psi = parsePsi(read(`${v2}/${kind}.pressure`, src.fs));
    if (psi) out.push(counter(stalled, psi.full / 1_000_000n), counter(waiting, psi.some / 1_000_000n));
  }
  return out;
}

/**
 * Per interface of a /proc/net/dev table, in its order: the receive and transmit bytes, packets,
 * drops and errors (columns 0-3 and 8-11 after the name).
 */
export function networkSamples(netDev: string): Sample[] {
  const out: Sample[] = [];
  for (const line of netDev.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (name === "" || f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const c = (d: MetricDescriptor, i: number) => counter(d, BigInt(f[i]!), [name]);
    out.push(
      c(D.netRxBytes, 0),
      c(D.netRxPackets, 1),
      c(D.netRxDropped, 3),
      c(D.netRxErrors, 2),
      c(D.netTxBytes, 8),
      c(D.netTxPackets, 9),
      c(D.netTxDropped, 11),
      c(D.netTxErrors, 10),
    );
  }
  return out;
}
