// A small Prometheus client: counters, gauges (set or read from a callback), histograms and
// summaries, each optionally split by labels, and a registry that renders them in the text
// format. It does what CRI-O needs from client_golang and no more: no exemplars, no native
// histograms, no OpenMetrics or protobuf negotiation.
//
// Behaviour kept from client_golang, since dashboards see it: a metric without labels is exposed
// from the start (counters at 0, summaries with NaN quantiles); a labelled one only once a label
// set has been used. Label pairs are printed sorted by label name (`le` and `quantile` last),
// series sorted by label values, families sorted by name.
import { formatValue, isValidLabelName, isValidMetricName, type MetricFamily, type MetricType, type Sample } from "./exposition.ts";

export type Labels = Readonly<Record<string, string>>;

/** Anything the registry can ask for samples. */
export interface Collector {
  collect(): MetricFamily[];
}

export interface MetricOptions {
  name: string;
  help: string;
  /** Label names; every observation gives a value for each, and for nothing else. */
  labelNames?: readonly string[];
}

interface Series<T> {
  values: string[];
  state: T;
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The label bookkeeping shared by every metric kind: one state per label-value combination. */
abstract class Metric<T> implements Collector {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected abstract readonly type: MetricType;
  private readonly series = new Map<string, Series<T>>();

  constructor(opts: MetricOptions, reserved: readonly string[] = []) {
    if (!isValidMetricName(opts.name)) throw new Error(`invalid metric name ${JSON.stringify(opts.name)}`);
    const names = [...(opts.labelNames ?? [])].sort();
    for (const [i, l] of names.entries()) {
      if (!isValidLabelName(l) || reserved.includes(l)) throw new Error(`${opts.name}: invalid label name ${JSON.stringify(l)}`);
      if (names[i + 1] === l) throw new Error(`${opts.name}: duplicate label name ${JSON.stringify(l)}`);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = names;
  }

  protected abstract fresh(): T;
  protected abstract samples(values: readonly string[], state: T): Sample[];

  /** A metric without labels has its one series from the start, as client_golang's do. */
  protected init(): void {
    if (this.labelNames.length === 0) this.child(undefined);
  }

  protected child(labels: Labels | undefined): T {
    const given = labels ?? {};
    const values = this.labelNames.map((n) => {
      const v = given[n];
      if (v === undefined) throw new Error(`${this.name}: missing label ${JSON.stringify(n)}`);
      return v;
    });
    if (Object.keys(given).length !== this.labelNames.length) {
      throw new Error(`${this.name}: labels ${JSON.stringify(Object.keys(given))}, want ${JSON.stringify(this.labelNames)}`);
    }
    const key = values.join("\u0000");
    let s = this.series.get(key);
    if (s === undefined) {
      s = { values, state: this.fresh() };
      this.series.set(key, s);
    }
    return s.state;
  }

  /** Drops one label set (a removed container's series, say); true when it existed. */
  remove(labels: Labels): boolean {
    const key = this.labelNames.map((n) => labels[n] ?? "").join("\u0000");
    return this.series.delete(key);
  }

  /** Drops every label set (a metric without labels goes back to its initial state). */
  reset(): void {
    this.series.clear();
    this.init();
  }

  protected pairs(values: readonly string[], extra?: readonly [string, string]): (readonly [string, string])[] {
    const out: (readonly [string, string])[] = this.labelNames.map((n, i) => [n, values[i]!] as const);
    if (extra) out.push(extra);
    return out;
  }

  collect(): MetricFamily[] {
    const all = [...this.series.values()].sort((a, b) => compareValues(a.values, b.values));
    return [{ name: this.name, help: this.help, type: this.type, samples: all.flatMap((s) => this.samples(s.values, s.state)) }];
  }
}

/** A value that only goes up (until the process restarts). */
export class Counter extends Metric<{ value: number }> {
  protected readonly type = "counter";

  constructor(opts: MetricOptions) {
    super(opts);
    this.init();
  }

  protected fresh() {
    return { value: 0 };
  }

  inc(labels?: Labels): void {
    this.child(labels).value++;
  }

  add(by: number, labels?: Labels): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter cannot decrease (add ${by})`);
    this.child(labels).value += by;
  }

  value(labels?: Labels): number {
    return this.child(labels).value;
  }

  protected samples(values: readonly string[], s: { value: number }): Sample[] {
    return [{ name: this.name, labels: this.pairs(values), value: s.value }];
  }
}

/** A value that is set, or goes up and down. */
export class Gauge extends Metric<{ value: number }> {
  protected readonly type = "gauge";

  constructor(opts: MetricOptions) {
    super(opts);
    this.init();
  }

  protected fresh() {
    return { value: 0 };
  }

  set(v: number, labels?: Labels): void {
    this.child(labels).value = v;
  }

  add(by: number, labels?: Labels): void {
    this.child(labels).value += by;
  }

  inc(labels?: Labels): void {
    this.add(1, labels);
  }

  dec(labels?: Labels): void {
    this.add(-1, labels);
  }

  value(labels?: Labels): number {
    return this.child(labels).value;
  }

  protected samples(values: readonly string[], s: { value: number }): Sample[] {
    return [{ name: this.name, labels: this.pairs(values), value: s.value }];
  }
}

/** A gauge without labels whose value is read from `read` at every scrape. */
export class GaugeFunc implements Collector {
  constructor(
    private readonly opts: { name: string; help: string },
    private readonly read: () => number,
  ) {
    if (!isValidMetricName(opts.name)) throw new Error(`invalid metric name ${JSON.stringify(opts.name)}`);
  }

  get name(): string {
    return this.opts.name;
  }

  collect(): MetricFamily[] {
    return [{ name: this.opts.name, help: this.opts.help, type: "gauge", samples: [{ name: this.opts.name, labels: [], value: this.read() }] }];
  }
}

interface HistogramState {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into buckets by upper bound, with their sum and count. */
export class Histogram extends Metric<HistogramState> {
  protected readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(opts: MetricOptions & { buckets: readonly number[] }) {
    super(opts, ["le"]);
    const b = opts.buckets.filter((x) => x !== Infinity);
    for (let i = 1; i < b.length; i++) {
      if (!(b[i]! > b[i - 1]!)) throw new Error(`${opts.name}: histogram buckets must be in increasing order`);
    }
    this.buckets = b;
    this.init();
  }

  protected fresh(): HistogramState {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  observe(v: number, labels?: Labels): void {
    const s = this.child(labels);
    let i = this.buckets.findIndex((upper) => v <= upper);
    if (i < 0) i = this.buckets.length;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  protected samples(values: readonly string[], s: HistogramState): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      cumulative += s.counts[i]!;
      // A bound is a label value, printed as Go prints floats (le="1e+06").
      const le = i < this.buckets.length ? formatValue(this.buckets[i]!) : "+Inf";
      out.push({ name: `${this.name}_bucket`, labels: this.pairs(values, ["le", le]), value: cumulative, integer: true });
    }
    out.push({ name: `${this.name}_sum`, labels: this.pairs(values), value: s.sum });
    out.push({ name: `${this.name}_count`, labels: this.pairs(values), value: s.count, integer: true });
    return out;
  }
}

export interface SummaryOptions extends MetricOptions {
  /** Quantiles to report (default 0.5, 0.9, 0.99, as CRI-O's). */
  quantiles?: readonly number[];
  /** How far back the quantiles look (default 10 minutes, client_golang's DefMaxAge). */
  maxAgeMs?: number;
  /** Slices the window is kept in; the oldest is dropped as a whole (default 5). */
  ageBuckets?: number;
  /** Observations kept per slice; beyond it a uniform sample (reservoir) is kept (default 1024). */
  sampleCap?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Slice {
  slot: number;
  samples: number[];
  seen: number;
}

interface SummaryState {
  slices: Slice[];
  sum: number;
  count: number;
}

/**
 * Quantiles over a sliding window, with the sum and count of every observation ever made. The
 * window is cut into `ageBuckets` slices by time; quantiles come from the slices younger than
 * maxAge, so they reflect between (1 - 1/ageBuckets)·maxAge and maxAge of history, as
 * client_golang's rotating streams do. Within the kept samples a quantile is the nearest rank.
 */
export class Summary extends Metric<SummaryState> {
  protected readonly type = "summary";
  readonly quantiles: readonly number[];
  private readonly sliceMs: number;
  private readonly ageBuckets: number;
  private readonly sampleCap: number;
  private readonly now: () => number;

  constructor(opts: SummaryOptions) {
    super(opts, ["quantile"]);
    this.quantiles = [...(opts.quantiles ?? [0.5, 0.9, 0.99])].sort((a, b) => a - b);
    for (const q of this.quantiles) if (!(q >= 0 && q <= 1)) throw new Error(`${opts.name}: quantile ${q} is not in [0, 1]`);
    this.ageBuckets = Math.max(1, opts.ageBuckets ?? 5);
    this.sliceMs = Math.max(1, (opts.maxAgeMs ?? 600_000) / this.ageBuckets);
    this.sampleCap = Math.max(1, opts.sampleCap ?? 1024);
    this.now = opts.now ?? Date.now;
    this.init();
  }

  protected fresh(): SummaryState {
    return { slices: [], sum: 0, count: 0 };
  }

  private prune(s: SummaryState, slot: number): void {
    while (s.slices.length > 0 && s.slices[0]!.slot <= slot - this.ageBuckets) s.slices.shift();
  }

  observe(v: number, labels?: Labels): void {
    const s = this.child(labels);
    s.sum += v;
    s.count++;
    const slot = Math.floor(this.now() / this.sliceMs);
    this.prune(s, slot);
    let cur = s.slices[s.slices.length - 1];
    if (cur === undefined || cur.slot !== slot) {
      cur = { slot, samples: [], seen: 0 };
      s.slices.push(cur);
    }
    cur.seen++;
    if (cur.samples.length < this.sampleCap) {
      cur.samples.push(v);
    } else {
      const j = Math.floor(Math.random() * cur.seen);
      if (j < this.sampleCap) cur.samples[j] = v;
    }
  }

  /** The current quantile values (NaN without observations in the window). */
  quantileValues(labels?: Labels): number[] {
    return this.compute(this.child(labels));
  }

  private compute(s: SummaryState): number[] {
    this.prune(s, Math.floor(this.now() / this.sliceMs));
    const all = s.slices.flatMap((x) => x.samples).sort((a, b) => a - b);
    return this.quantiles.map((q) => (all.length === 0 ? NaN : all[Math.max(0, Math.ceil(q * all.length) - 1)]!));
  }

  protected samples(values: readonly string[], s: SummaryState): Sample[] {
    const qs = this.compute(s);
    const out: Sample[] = this.quantiles.map((q, i) => ({ name: this.name, labels: this.pairs(values, ["quantile", String(q)]), value: qs[i]! }));
    out.push({ name: `${this.name}_sum`, labels: this.pairs(values), value: s.sum });
    out.push({ name: `${this.name}_count`, labels: this.pairs(values), value: s.count, integer: true });
    return out;
  }
}

/** The collectors one endpoint serves. */
export class Registry {
  private readonly collectors: Collector[] = [];

  register(...c: Collector[]): this {
    this.collectors.push(...c);
    return this;
  }

  /** Every family, sorted by name; a name registered twice is a programming error. */
  collect(): MetricFamily[] {
    const families = this.collectors.flatMap((c) => c.collect());
    families.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 1; i < families.length; i++) {
      if (families[i]!.name === families[i - 1]!.name) throw new Error(`metric ${families[i]!.name} is registered twice`);
    }
    return families;
  }
}
