// JSON as Go's encoding/json writes the containers-storage records: compact, struct fields in
// declaration order with `omitempty` honoured, map keys sorted, and <, >, & escaped. Fields this
// code does not know (written by a newer or older containers/storage) are kept as they were and
// written after the known ones, so a round trip through this daemon loses nothing.

/** A record as stored on disk: the parsed JSON object. */
export type RawRecord = Record<string, unknown>;

/** One field of a Go struct: its JSON name and whether it carries `omitempty`. */
export interface FieldSpec {
  name: string;
  omitempty: boolean;
}

export function fields(spec: string): FieldSpec[] {
  return spec
    .trim()
    .split(/\s+/)
    .map((f) => (f.endsWith("?") ? { name: f.slice(0, -1), omitempty: true } : { name: f, omitempty: false }));
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const out: RawRecord = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as RawRecord)[k]);
    return out;
  }
  return v;
}

/** The record with known fields first in struct order, empty omitempty fields dropped. */
export function orderRecord(rec: RawRecord, spec: readonly FieldSpec[]): RawRecord {
  const out: RawRecord = {};
  const known = new Set<string>();
  for (const f of spec) {
    known.add(f.name);
    const v = rec[f.name];
    if (v === undefined) continue;
    if (f.omitempty && isEmpty(v)) continue;
    out[f.name] = sortKeys(v);
  }
  for (const [k, v] of Object.entries(rec)) {
    if (!known.has(k) && v !== undefined) out[k] = v;
  }
  return out;
}

/** Go's json.Marshal text for an array of records. */
export function marshalRecords(records: readonly RawRecord[], spec: readonly FieldSpec[]): string {
  return goEscape(JSON.stringify(records.map((r) => orderRecord(r, spec))));
}

/** Go's HTML-safe escaping; these characters only ever occur inside JSON strings. */
export function goEscape(json: string): string {
  return json
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Parses a records file; empty content is an empty list (as upstream treats a new file). */
export function parseRecords(text: string, path: string): RawRecord[] {
  if (text.trim() === "") return [];
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error(`${path}: expected a JSON array`);
  return data.map((r, i) => {
    if (r === null || typeof r !== "object" || Array.isArray(r)) throw new Error(`${path}: entry ${i} is not an object`);
    const rec = r as RawRecord;
    if (typeof rec.id !== "string" || rec.id === "") throw new Error(`${path}: entry ${i} has no id`);
    return rec;
  });
}

/** time.Now().UTC() as Go marshals it (RFC 3339 with trailing fractional zeros trimmed). */
export function goTimeNow(now: Date = new Date()): string {
  return now.toISOString().replace(/\.?0+Z$/, "Z").replace(/\.Z$/, "Z");
}

/** A Go-parseable timestamp from the caller, or now when absent or not RFC 3339. */
export function normalizeTime(value: string | Date | undefined): string {
  if (value === undefined) return goTimeNow();
  if (value instanceof Date) return goTimeNow(value);
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) ? value : goTimeNow();
}

// Typed accessors over raw records (the on-disk data is not trusted to have the right types).

export function str(rec: RawRecord, key: string): string | undefined {
  const v = rec[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function num(rec: RawRecord, key: string): number | undefined {
  const v = rec[key];
  return typeof v === "number" ? v : undefined;
}

export function strList(rec: RawRecord, key: string): string[] {
  const v = rec[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

export function numList(rec: RawRecord, key: string): number[] {
  const v = rec[key];
  return Array.isArray(v) ? v.filter((x): x is number => typeof x === "number") : [];
}

export function obj(rec: RawRecord, key: string): RawRecord {
  const v = rec[key];
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as RawRecord) : {};
}

export function numMap(rec: RawRecord, key: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj(rec, key))) if (typeof v === "number") out[k] = v;
  return out;
}

export function strMap(rec: RawRecord, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(rec, key))) if (typeof v === "string") out[k] = v;
  return out;
}
