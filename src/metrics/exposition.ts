// The Prometheus text exposition format, version 0.0.4 (prometheus/docs
// content/docs/instrumenting/exposition_formats.md): per family a `# HELP` and a `# TYPE` line,
// then one line per sample, `name{label="value",...} value`. Numbers are printed as Go's
// client_golang prints them (strconv 'g' with the shortest precision: 1e+06, not 1000000), so a
// scrape of this daemon reads like a scrape of CRI-O.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

/** One line of a family: the full sample name (with _bucket, _sum, ... when there is one). */
export interface Sample {
  name: string;
  /** Label pairs in output order. */
  labels: readonly (readonly [string, string])[];
  value: number;
  /** Print the value as an integer (bucket and observation counts). */
  integer?: boolean;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function isValidMetricName(name: string): boolean {
  return METRIC_NAME_RE.test(name);
}

/** Label names starting with "__" are reserved for Prometheus itself. */
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME_RE.test(name) && !name.startsWith("__");
}

/** A label value inside double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text: only backslash and line feed are escaped. */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/**
 * A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, with client_golang's special
 * cases: the shortest digits that read back as the same number, in exponent form when the
 * decimal exponent is below -4 or at least 6 (two exponent digits at least, sign always).
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return "0";
  const [mantissa, expText] = v.toExponential().split("e") as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const digits = String(Math.abs(exp)).padStart(2, "0");
    return `${mantissa}e${exp < 0 ? "-" : "+"}${digits}`;
  }
  // In this range JavaScript's shortest round-trip form is already plain decimal.
  return String(v);
}

function formatSample(s: Sample): string {
  const labels = s.labels.length === 0 ? "" : `{${s.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
  const value = s.integer && Number.isSafeInteger(s.value) ? String(s.value) : formatValue(s.value);
  return `${s.name}${labels} ${value}\n`;
}

/** The text of `families`, in the order given. Families without samples are left out, as Go does. */
export function renderText(families: readonly MetricFamily[]): string {
  let out = "";
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += formatSample(s);
  }
  return out;
}
