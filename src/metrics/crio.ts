// CRI-O's own metrics (server/metrics/metrics.go, collectors/collectors.go): one metric per
// collector, each exposed as container_runtime_crio_<collector>. The daemon records into one
// instance, `crioMetrics`, whether or not metrics are served (as CRI-O's metrics.Instance());
// the metrics server exposes the collectors metrics_collectors names.
import { log } from "../log.ts";
import { countDefunctProcesses } from "./process.ts";
import { Counter, Gauge, GaugeFunc, Histogram, Summary, type Collector } from "./registry.ts";

/** The namespace CRI-O registers its metrics under (client_golang's Subsystem). */
export const METRICS_SUBSYSTEM = "container_runtime";
const CRIO_PREFIX = "crio_";

/** A metrics_collectors entry without its "container_runtime_" and "crio_" prefixes (Collector.Stripped). */
export function collectorName(configured: string): string {
  let s = configured.trim();
  if (s.startsWith(`${METRICS_SUBSYSTEM}_`)) s = s.slice(METRICS_SUBSYSTEM.length + 1);
  if (s.startsWith(CRIO_PREFIX)) s = s.slice(CRIO_PREFIX.length);
  return s;
}

/** The exposed name of a collector: container_runtime_crio_<collector>. */
export function exposedName(collector: string): string {
  return `${METRICS_SUBSYSTEM}_${CRIO_PREFIX}${collector}`;
}

/** Upper bounds of image_pulls_layer_size, in bytes (decimal units, as CRI-O's). */
export const LAYER_SIZE_BUCKETS: readonly number[] = [1e3, 1e6, 1e7, 5e7, 1e8, 2e8, 3e8, 4e8, 5e8, 1e9, 1e10];

const SIZE_BUCKET_NAMES: readonly (readonly [number, string])[] = [
  [1e10, ">10 GiB"],
  [1e9, ">1 GiB"],
  [5e8, ">500 MiB"],
  [4e8, ">400 MiB"],
  [3e8, ">300 MiB"],
  [2e8, ">200 MiB"],
  [1e8, ">100 MiB"],
  [5e7, ">50 MiB"],
  [1e7, ">10 MiB"],
  [1e6, ">1 MiB"],
  [1e3, ">1 KiB"],
];

/**
 * The `size` label of the image pull byte counters (CRI-O's GetSizeBucket): the largest bound
 * the size exceeds. The names say KiB/MiB/GiB while the bounds are powers of ten; CRI-O's do too,
 * and dashboards match on the names.
 */
export function sizeBucket(bytes: number): string {
  for (const [bound, name] of SIZE_BUCKET_NAMES) if (bytes > bound) return name;
  return ">0 B";
}

export interface CrioMetricsOptions {
  /** Where processes_defunct counts zombies (default /proc). */
  procRoot?: string;
  /** Clock of the latency summary, for tests. */
  now?: () => number;
}

export class CrioMetrics {
  readonly imagePullsLayerSize: Histogram;
  readonly containersEventsDropped: Counter;
  readonly containersOomTotal: Counter;
  readonly processesDefunct: GaugeFunc;
  readonly operationsTotal: Counter;
  readonly operationsLatencySeconds: Gauge;
  readonly operationsLatencySecondsTotal: Summary;
  readonly operationsErrorsTotal: Counter;
  readonly imagePullsBytesTotal: Counter;
  readonly imagePullsSkippedBytesTotal: Counter;
  readonly imagePullsFailureTotal: Counter;
  readonly imagePullsSuccessTotal: Counter;
  readonly imageLayerReuseTotal: Counter;
  readonly containersOomCountTotal: Counter;
  readonly containersSeccompNotifierCountTotal: Counter;
  readonly resourcesStalledAtStage: Counter;
  readonly containersStoppedMonitorCount: Counter;
  readonly defaultRuntime: Gauge;
  /** Collector name (as in ALL_METRICS_COLLECTORS) → its metric, in CRI-O's order. */
  readonly collectors: ReadonlyMap<string, Collector>;

  constructor(opts: CrioMetricsOptions = {}) {
    const procRoot = opts.procRoot ?? "/proc";
    const n = exposedName;
    this.imagePullsLayerSize = new Histogram({
      name: n("image_pulls_layer_size"),
      help: "Bytes transferred by CRI-O image pulls, per layer.",
      buckets: LAYER_SIZE_BUCKETS,
    });
    this.containersEventsDropped = new Counter({
      name: n("containers_events_dropped_total"),
      help: "Container events dropped because a GetContainerEvents stream fell behind.",
    });
    this.containersOomTotal = new Counter({
      name: n("containers_oom_total"),
      help: "Containers killed because they ran out of memory (OOM).",
    });
    let warned = false;
    this.processesDefunct = new GaugeFunc({ name: n("processes_defunct"), help: "Defunct (zombie) processes on the node." }, () => {
      try {
        return countDefunctProcesses(procRoot);
      } catch (err) {
        if (!warned) log.warn("cannot count defunct processes", { error: err });
        warned = true;
        return 0;
      }
    });
    this.operationsTotal = new Counter({
      name: n("operations_total"),
      help: "CRI operations served, by operation.",
      labelNames: ["operation"],
    });
    this.operationsLatencySeconds = new Gauge({
      name: n("operations_latency_seconds"),
      help: "Latency in seconds of the latest call of each CRI operation.",
      labelNames: ["operation"],
    });
    this.operationsLatencySecondsTotal = new Summary({
      name: n("operations_latency_seconds_total"),
      help: "Latency in seconds of CRI operations, by operation.",
      labelNames: ["operation"],
      quantiles: [0.5, 0.9, 0.99],
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.operationsErrorsTotal = new Counter({
      name: n("operations_errors_total"),
      help: "CRI operations that returned an error, by operation.",
      labelNames: ["operation"],
    });
    this.imagePullsBytesTotal = new Counter({
      name: n("image_pulls_bytes_total"),
      help: "Bytes transferred by CRI-O image pulls, by media type and artifact size.",
      labelNames: ["mediatype", "size"],
    });
    this.imagePullsSkippedBytesTotal = new Counter({
      name: n("image_pulls_skipped_bytes_total"),
      help: "Bytes CRI-O image pulls did not transfer because the content was already stored.",
      labelNames: ["size"],
    });
    this.imagePullsFailureTotal = new Counter({
      name: n("image_pulls_failure_total"),
      help: "Failed CRI-O image pulls, by error.",
      labelNames: ["error"],
    });
    this.imagePullsSuccessTotal = new Counter({
      name: n("image_pulls_success_total"),
      help: "Successful CRI-O image pulls.",
    });
    this.imageLayerReuseTotal = new Counter({
      name: n("image_layer_reuse_total"),
      help: "Image layers reused from local storage instead of pulled, by name.",
      labelNames: ["name"],
    });
    this.containersOomCountTotal = new Counter({
      name: n("containers_oom_count_total"),
      help: "Containers killed because they ran out of memory (OOM), by container name.",
      labelNames: ["name"],
    });
    this.containersSeccompNotifierCountTotal = new Counter({
      name: n("containers_seccomp_notifier_count_total"),
      help: "Forbidden syscalls seen by the seccomp notifier, by container name and syscall.",
      labelNames: ["name", "syscall"],
    });
    this.resourcesStalledAtStage = new Counter({
      name: n("resources_stalled_at_stage"),
      help: "Pod or container creations stalled, by the stage they stalled at.",
      labelNames: ["stage"],
    });
    this.containersStoppedMonitorCount = new Counter({
      name: n("containers_stopped_monitor_count"),
      help: "Containers whose monitor process exited, by container name.",
      labelNames: ["name"],
    });
    this.defaultRuntime = new Gauge({
      name: n("default_runtime"),
      help: "The default runtime handler (always 1; the runtime label names it).",
      labelNames: ["runtime"],
    });
    this.collectors = new Map<string, Collector>([
      ["image_pulls_layer_size", this.imagePullsLayerSize],
      ["containers_events_dropped_total", this.containersEventsDropped],
      ["containers_oom_total", this.containersOomTotal],
      ["processes_defunct", this.processesDefunct],
      ["operations_total", this.operationsTotal],
      ["operations_latency_seconds", this.operationsLatencySeconds],
      ["operations_latency_seconds_total", this.operationsLatencySecondsTotal],
      ["operations_errors_total", this.operationsErrorsTotal],
      ["image_pulls_bytes_total", this.imagePullsBytesTotal],
      ["image_pulls_skipped_bytes_total", this.imagePullsSkippedBytesTotal],
      ["image_pulls_failure_total", this.imagePullsFailureTotal],
      ["image_pulls_success_total", this.imagePullsSuccessTotal],
      ["image_layer_reuse_total", this.imageLayerReuseTotal],
      ["containers_oom_count_total", this.containersOomCountTotal],
      ["containers_seccomp_notifier_count_total", this.containersSeccompNotifierCountTotal],
      ["resources_stalled_at_stage", this.resourcesStalledAtStage],
      ["containers_stopped_monitor_count", this.containersStoppedMonitorCount],
      ["default_runtime", this.defaultRuntime],
    ]);
  }

  /**
   * The collectors `configured` (metrics_collectors) selects, with or without prefixes, and the
   * entries that name no collector.
   */
  select(configured: readonly string[]): { collectors: Collector[]; unknown: string[] } {
    const wanted = new Set(configured.map(collectorName));
    const unknown = configured.filter((c) => !this.collectors.has(collectorName(c)));
    return { collectors: [...this.collectors].filter(([name]) => wanted.has(name)).map(([, c]) => c), unknown };
  }

  /** One CRI RPC answered (the gRPC wrapper, as CRI-O's interceptor): count, latency, error. */
  recordOperation(operation: string, seconds: number, failed: boolean): void {
    const labels = { operation };
    this.operationsTotal.inc(labels);
    this.operationsLatencySeconds.set(seconds, labels);
    this.operationsLatencySecondsTotal.observe(seconds, labels);
    if (failed) this.operationsErrorsTotal.inc(labels);
  }

  /** A container (or infra container) was killed by the OOM killer; `name` is its k8s_… name. */
  recordOom(name: string): void {
    this.containersOomTotal.inc();
    this.containersOomCountTotal.inc({ name });
  }

  /** The default_runtime gauge names only the current default (SIGHUP may change it). */
  setDefaultRuntime(runtime: string): void {
    this.defaultRuntime.reset();
    this.defaultRuntime.set(1, { runtime });
  }
}

/** The instance the daemon records into (CRI-O's metrics.Instance()). */
export const crioMetrics = new CrioMetrics();
