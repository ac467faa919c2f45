// Go-style durations ("300ms", "1m30s", "2h45m"). CRI-O stores several options as Go
// time.Duration values; the TOML file carries them as strings in Go's syntax and `crio config`
// prints them in Go's canonical form (time.Duration.String()). We keep them as canonical strings
// in the Config and offer conversions for the code that acts on them.

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  "\u00b5s": 1_000n, // micro sign
  "\u03bcs": 1_000n, // greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60n * 1_000_000_000n,
  h: 3600n * 1_000_000_000n,
};

const MAX_DURATION = (1n << 63n) - 1n;

/**
 * Parses a duration in Go's time.ParseDuration syntax into nanoseconds.
 * Returns undefined when the text is not a valid duration.
 */
export function parseGoDuration(text: string): bigint | undefined {
  let s = text;
  if (s === "") return undefined;
  let negative = false;
  if (s[0] === "-" || s[0] === "+") {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return undefined;
  let total = 0n;
  const part = /^([0-9]*)(?:\.([0-9]*))?([a-z\u00b5\u03bc]+)/;
  while (s !== "") {
    const m = part.exec(s);
    if (!m) return undefined;
    const whole = m[1] ?? "";
    const frac = m[2];
    const unitName = m[3] ?? "";
    if (whole === "" && (frac === undefined || frac === "")) return undefined;
    const unit = UNITS[unitName];
    if (unit === undefined) return undefined;
    let value = (whole === "" ? 0n : BigInt(whole)) * unit;
    if (frac !== undefined && frac !== "") {
      value += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    }
    total += value;
    if (total > MAX_DURATION + (negative ? 1n : 0n)) return undefined;
    s = s.slice(m[0].length);
  }
  return negative ? -total : total;
}

function fmtFrac(v: bigint, div: bigint): string {
  const whole = v / div;
  const frac = v % div;
  if (frac === 0n) return whole.toString();
  const width = div.toString().length - 1;
  const digits = frac.toString().padStart(width, "0").replace(/0+$/, "");
  return `${whole}.${digits}`;
}

/** Formats nanoseconds the way Go's time.Duration.String() does ("1m0s", "1.5s", "0s"). */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u < 1_000n) out = `${u}ns`;
    else if (u < 1_000_000n) out = `${fmtFrac(u, 1_000n)}\u00b5s`;
    else out = `${fmtFrac(u, 1_000_000n)}ms`;
  } else {
    const hour = 3600n * 1_000_000_000n;
    const minute = 60n * 1_000_000_000n;
    const h = u / hour;
    u %= hour;
    const m = u / minute;
    u %= minute;
    const sec = `${fmtFrac(u, 1_000_000_000n)}s`;
    out = h > 0n ? `${h}h${m}m${sec}` : m > 0n ? `${m}m${sec}` : sec;
  }
  return negative ? `-${out}` : out;
}

/** Canonical Go form of a duration text, or undefined if it does not parse. */
export function canonicalDuration(text: string): string | undefined {
  const ns = parseGoDuration(text);
  return ns === undefined ? undefined : formatGoDuration(ns);
}

/** Milliseconds for a duration text (as stored in the Config); "" counts as 0. */
export function durationToMs(text: string): number {
  if (text === "") return 0;
  const ns = parseGoDuration(text);
  if (ns === undefined) throw new RangeError(`invalid duration ${JSON.stringify(text)}`);
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
}
