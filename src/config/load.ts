// Loading the configuration: built-in defaults < main file < drop-in files < CONTAINER_* env <
// flags, the way CRI-O does it (pkg/config UpdateFromFile / UpdateFromPath, internal/criocli
// mergeConfig). Pure: nothing is created or changed on disk; the daemon's start-up step makes
// directories and probes binaries.
import { parse, TomlDate, TomlError } from "smol-toml";
import { ConfigError } from "../errors.ts";
import { canonicalDuration } from "./duration.ts";
import { nodeFs, walkDropIns, type ConfigFs } from "./fs.ts";
import { lineOf, locateKeys, type KeyLines } from "./locate.ts";
import { readStorageDefaults } from "./storage-conf.ts";
import {
  allOptions,
  cloneValue,
  configKeyOf,
  DEFAULT_CONFIG_DIR,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  builtinRuntimes,
  envOf,
  LEGACY_KEYS,
  RUNTIME_HANDLER_OPTIONS,
  RUNTIMES_TABLE,
  sectionOf,
  TABLE_BY_ID,
  tableDef,
  tomlKeyOf,
  valuesEqual,
  WORKLOAD_OPTIONS,
  WORKLOAD_RESOURCE_OPTIONS,
  WORKLOADS_TABLE,
  zeroHandler,
  zeroWorkload,
  type Config,
  type FlagSpec,
  type LegacyKeyDef,
  type OptionSpec,
  type RuntimeHandler,
  type TableDef,
  type Workload,
} from "./schema.ts";

export type FlagInput = Record<string, string | boolean | string[]>;

export interface LoadOptions {
  /** Main file. Default: $CONTAINER_CONFIG or /etc/crio/crio.conf; "" skips it. */
  configFile?: string;
  /** The file was named by the user (-c or $CONTAINER_CONFIG): a missing file is an error. */
  configFileExplicit?: boolean;
  /** Drop-in directory. Default: $CONTAINER_CONFIG_DIR or /etc/crio/crio.conf.d; "" skips it. */
  configDir?: string;
  /** Environment for CONTAINER_* variables and CONTAINERS_STORAGE_CONF. Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Flags as parsed by the CLI, keyed by long name without dashes ("log-level"). */
  flags?: FlagInput;
  /** File-system access (tests substitute their own or use rootedFs). */
  fs?: ConfigFs;
  /** storage.conf path; default $CONTAINERS_STORAGE_CONF or /etc/containers/storage.conf. */
  storageConf?: string;
}

export interface LoadResult {
  config: Config;
  /** Problems that did not stop loading: unknown keys, deprecated keys and flags. */
  warnings: string[];
  /** Configuration files applied, in order. */
  files: string[];
  /** The built-in defaults this load started from (storage values from storage.conf). */
  defaults: Config;
}

/** Where a value came from, for error messages. */
interface Origin {
  source: string;
  line?: number;
  /** Set by a file (as opposed to env or flags). */
  fromFile: boolean;
}

interface FileCtx {
  source: string;
  lines: KeyLines;
}

type MonitorField = "monitor_path" | "monitor_cgroup" | "monitor_env";

const BOOL_WORDS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

// ---------------------------------------------------------------------------------------------
// Value checks
// ---------------------------------------------------------------------------------------------

function isTable(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof TomlDate) &&
    !(v instanceof Date) &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)
  );
}

function describe(v: unknown): string {
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `the boolean ${v}`;
  if (typeof v === "number") return Number.isInteger(v) ? `the integer ${v}` : `the float ${v}`;
  if (typeof v === "bigint") return `the integer ${v}`;
  if (Array.isArray(v)) return "an array";
  if (v instanceof TomlDate || v instanceof Date) return "a date";
  if (isTable(v)) return "a table";
  return String(v);
}

function expectedForm(spec: OptionSpec): string {
  switch (spec.kind) {
    case "string":
      return "a string";
    case "bool":
      return "true or false";
    case "int":
      return "an integer";
    case "float":
      return "a number";
    case "string[]":
      return 'an array of strings, e.g. ["a", "b"]';
    case "duration":
      return 'a duration string such as "30s" or "1m30s"';
    case "map":
      return 'a table of strings, e.g. { "key" = "value" }';
    case "enum":
      return `one of ${spec.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
}

type Coerced = { ok: true; value: unknown } | { ok: false };

/** Checks a TOML value against an option spec and converts it to the Config representation. */
function coerceToml(spec: OptionSpec, v: unknown): Coerced {
  switch (spec.kind) {
    case "string":
      return typeof v === "string" ? { ok: true, value: v } : { ok: false };
    case "bool":
      return typeof v === "boolean" ? { ok: true, value: v } : { ok: false };
    case "int":
      if (typeof v === "number" && Number.isInteger(v)) return { ok: true, value: v };
      if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
        return { ok: true, value: Number(v) };
      return { ok: false };
    case "float":
      if (typeof v === "number") return { ok: true, value: v };
      return { ok: false };
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string") ? { ok: true, value: [...v] } : { ok: false };
    case "map": {
      if (!isTable(v)) return { ok: false };
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== "string") return { ok: false };
        out[k] = x;
      }
      return { ok: true, value: out };
    }
    case "enum": {
      if (typeof v !== "string") return { ok: false };
      const match = spec.caseInsensitive
        ? spec.values.some((x) => x.toLowerCase() === v.toLowerCase())
        : spec.values.includes(v);
      return match ? { ok: true, value: v } : { ok: false };
    }
    case "duration": {
      // Go's TOML decoder takes a string for a time.Duration, or an integer of nanoseconds.
      let text: string;
      if (typeof v === "string") text = v;
      else if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint") text = `${v}ns`;
      else return { ok: false };
      return durationValue(spec, text);
    }
  }
}

function durationValue(spec: OptionSpec & { kind: "duration" }, text: string): Coerced {
  if (text === "") return spec.allowEmpty ? { ok: true, value: "" } : { ok: false };
  const canonical = canonicalDuration(text);
  if (canonical === undefined) return { ok: false };
  return { ok: true, value: spec.keepText ? text : canonical };
}

/** Converts a flag or environment value (text, or bool/list from the CLI parser). */
function coerceCli(spec: OptionSpec, v: string | boolean | string[]): Coerced {
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  switch (spec.kind) {
    case "bool": {
      if (typeof last === "boolean") return { ok: true, value: last };
      if (last === undefined) return { ok: false };
      const b = BOOL_WORDS[last.trim()];
      return b === undefined ? { ok: false } : { ok: true, value: b };
    }
    case "map":
      return { ok: false };
    case "string[]": {
      const items = (Array.isArray(v) ? v : [String(v)])
        .flatMap((x) => x.split(","))
        .map((x) => x.trim())
        .filter((x) => x !== "");
      return { ok: true, value: items };
    }
    case "int": {
      if (typeof last !== "string") return { ok: false };
      const m = /^([+-]?)(0x[0-9a-fA-F]+|\d+)$/.exec(last.trim());
      if (!m) return { ok: false };
      const n = (m[1] === "-" ? -1 : 1) * Number(m[2]);
      return Number.isSafeInteger(n) ? { ok: true, value: n } : { ok: false };
    }
    case "float": {
      if (typeof last !== "string") return { ok: false };
      const n = Number(last.trim());
      return last.trim() !== "" && Number.isFinite(n) ? { ok: true, value: n } : { ok: false };
    }
    case "duration":
      if (typeof last !== "string") return { ok: false };
      return durationValue(spec, last.trim());
    case "string":
    case "enum":
      if (typeof last !== "string") return { ok: false };
      return coerceToml(spec, last);
  }
}

// ---------------------------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------------------------

class Loader {
  readonly warnings: string[] = [];
  readonly files: string[] = [];
  readonly origins = new Map<string, Origin>();
  readonly monitor = new Map<MonitorField, { value: unknown; origin: Origin }>();

  constructor(
    readonly config: Config,
    readonly defaults: Config,
  ) {}

  warn(origin: { source: string; line?: number }, message: string): void {
    const where = origin.line !== undefined ? `${origin.source}:${origin.line}` : origin.source;
    this.warnings.push(`${where}: ${message}`);
  }

  fail(origin: { source: string; line?: number }, key: string | undefined, message: string): never {
    throw new ConfigError(message, {
      source: origin.source,
      ...(origin.line !== undefined ? { line: origin.line } : {}),
      ...(key !== undefined ? { key } : {}),
    });
  }

  // ---- files ----

  applyFile(path: string, text: string): void {
    let doc: Record<string, unknown>;
    try {
      doc = parse(text, { integersAsBigInt: "asNeeded", unsafeKeyBehaviour: "throw" }) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof TomlError) {
        const first = err.message.split("\n")[0] ?? err.message;
        throw new ConfigError(`not valid TOML: ${first} (column ${err.column})`, { source: path, line: err.line });
      }
      throw new ConfigError(`not valid TOML: ${err instanceof Error ? err.message : String(err)}`, { source: path });
    }
    this.files.push(path);
    const ctx: FileCtx = { source: path, lines: locateKeys(text) };
    for (const [key, value] of Object.entries(doc)) {
      if (key !== "crio") {
        this.warn(this.at(ctx, [key]), `unknown key "${key}" (ignored; all options live under [crio])`);
        continue;
      }
      if (!isTable(value)) this.fail(this.at(ctx, ["crio"]), "crio", `expected a table, got ${describe(value)}`);
      this.decodeTable(tableDef("crio"), value, ctx);
    }
  }

  at(ctx: FileCtx, path: readonly string[]): Origin {
    const line = lineOf(ctx.lines, path);
    return { source: ctx.source, fromFile: true, ...(line !== undefined ? { line } : {}) };
  }

  decodeTable(t: TableDef, obj: Record<string, unknown>, ctx: FileCtx): void {
    const path = t.id.split(".");
    for (const [key, value] of Object.entries(obj)) {
      const dotted = `${t.id}.${key}`;
      const origin = this.at(ctx, [...path, key]);
      const child = TABLE_BY_ID.get(dotted as TableDef["id"]);
      if (child && child.toml) {
        if (!isTable(value)) this.fail(origin, dotted, `expected a table, got ${describe(value)}`);
        this.decodeTable(child, value, ctx);
        continue;
      }
      if (dotted === RUNTIMES_TABLE) {
        this.decodeRuntimes(value, ctx);
        continue;
      }
      if (dotted === WORKLOADS_TABLE) {
        this.decodeWorkloads(value, ctx);
        continue;
      }
      const spec = Object.hasOwn(t.options, key) ? t.options[key] : undefined;
      if (spec && spec.toml !== false) {
        const c = coerceToml(spec, value);
        if (!c.ok) this.fail(origin, dotted, `expected ${expectedForm(spec)}, got ${describe(value)}`);
        this.setOption(t, key, spec, c.value, origin);
        continue;
      }
      const legacy = LEGACY_KEYS.find((l) => l.table === t.id && l.key === key);
      if (legacy) {
        this.applyLegacy(legacy, value, origin);
        continue;
      }
      this.warn(origin, `unknown key "${dotted}" (ignored)`);
    }
  }

  decodeRuntimes(value: unknown, ctx: FileCtx): void {
    const base = RUNTIMES_TABLE.split(".");
    if (!isTable(value)) this.fail(this.at(ctx, base), RUNTIMES_TABLE, `expected a table of runtime handler tables, got ${describe(value)}`);
    const runtimes = this.config.runtime.runtimes;
    for (const [name, h] of Object.entries(value)) {
      const hPath = [...base, name];
      const dotted = `${RUNTIMES_TABLE}.${name}`;
      if (!isTable(h)) this.fail(this.at(ctx, hPath), dotted, `expected a table, got ${describe(h)}`);
      // A later table for a known handler changes only the fields it sets.
      const handler: RuntimeHandler = Object.hasOwn(runtimes, name) ? copyHandler(runtimes[name]!) : zeroHandler();
      for (const [field, fv] of Object.entries(h)) {
        const origin = this.at(ctx, [...hPath, field]);
        const spec = Object.hasOwn(RUNTIME_HANDLER_OPTIONS, field)
          ? (RUNTIME_HANDLER_OPTIONS as Record<string, OptionSpec>)[field]
          : undefined;
        if (!spec) {
          this.warn(origin, `unknown key "${dotted}.${field}" (ignored)`);
          continue;
        }
        const c = coerceToml(spec, fv);
        if (!c.ok) this.fail(origin, `${dotted}.${field}`, `expected ${expectedForm(spec)}, got ${describe(fv)}`);
        (handler as unknown as Record<string, unknown>)[field] = c.value;
      }
      runtimes[name] = handler;
      this.origins.set(`runtime.runtimes.${name}`, this.at(ctx, hPath));
    }
  }

  decodeWorkloads(value: unknown, ctx: FileCtx): void {
    const base = WORKLOADS_TABLE.split(".");
    if (!isTable(value)) this.fail(this.at(ctx, base), WORKLOADS_TABLE, `expected a table of workload tables, got ${describe(value)}`);
    const workloads = this.config.runtime.workloads;
    for (const [name, w] of Object.entries(value)) {
      const wPath = [...base, name];
      const dotted = `${WORKLOADS_TABLE}.${name}`;
      if (!isTable(w)) this.fail(this.at(ctx, wPath), dotted, `expected a table, got ${describe(w)}`);
      const workload: Workload = Object.hasOwn(workloads, name) ? copyWorkload(workloads[name]!) : zeroWorkload();
      for (const [field, fv] of Object.entries(w)) {
        const origin = this.at(ctx, [...wPath, field]);
        if (field === "resources") {
          if (!isTable(fv)) this.fail(origin, `${dotted}.resources`, `expected a table, got ${describe(fv)}`);
          for (const [rk, rv] of Object.entries(fv)) {
            const rOrigin = this.at(ctx, [...wPath, "resources", rk]);
            const spec = Object.hasOwn(WORKLOAD_RESOURCE_OPTIONS, rk)
              ? (WORKLOAD_RESOURCE_OPTIONS as Record<string, OptionSpec>)[rk]
              : undefined;
            if (!spec) {
              this.warn(rOrigin, `unknown key "${dotted}.resources.${rk}" (ignored)`);
              continue;
            }
            const c = coerceToml(spec, rv);
            if (!c.ok) this.fail(rOrigin, `${dotted}.resources.${rk}`, `expected ${expectedForm(spec)}, got ${describe(rv)}`);
            (workload.resources as unknown as Record<string, unknown>)[rk] = c.value;
          }
          continue;
        }
        const spec = Object.hasOwn(WORKLOAD_OPTIONS, field) ? (WORKLOAD_OPTIONS as Record<string, OptionSpec>)[field] : undefined;
        if (!spec) {
          this.warn(origin, `unknown key "${dotted}.${field}" (ignored)`);
          continue;
        }
        const c = coerceToml(spec, fv);
        if (!c.ok) this.fail(origin, `${dotted}.${field}`, `expected ${expectedForm(spec)}, got ${describe(fv)}`);
        (workload as unknown as Record<string, unknown>)[field] = c.value;
      }
      workloads[name] = workload;
    }
  }

  setOption(t: TableDef, key: string, spec: OptionSpec, value: unknown, origin: Origin): void {
    const section = sectionOf(this.config, t);
    if (t.id === "crio") {
      // Empty storage locations keep what storage.conf (or an earlier file) provided.
      if ((key === "root" || key === "runroot" || key === "storage_driver") && value === "") return;
      if (key === "storage_option") {
        const list = value as string[];
        if (origin.fromFile) {
          section[key] = dedupeKeepLast([...(section[key] as string[]), ...list]);
        } else if (list.length > 0) {
          section[key] = list;
        }
        this.origins.set(configKeyOf(t, key), origin);
        return;
      }
    }
    if (spec.deprecated && origin.fromFile && !valuesEqual(value, spec.default)) {
      this.warn(origin, `"${tomlKeyOf(t, key)}" is deprecated: ${spec.deprecated}`);
    }
    section[key] = value;
    this.origins.set(configKeyOf(t, key), origin);
  }

  applyLegacy(def: LegacyKeyDef, value: unknown, origin: Origin): void {
    const name = `${def.table}.${def.key}`;
    const spec = { kind: def.kind, default: "", doc: "" } as OptionSpec;
    switch (def.action.type) {
      case "ignore":
        this.warn(origin, `"${name}" is no longer supported (ignored); replaced by ${def.replacement}`);
        return;
      case "monitor": {
        const c = coerceToml(spec, value);
        if (!c.ok) this.fail(origin, name, `expected ${expectedForm(spec)}, got ${describe(value)}`);
        this.warn(origin, `"${name}" is deprecated; use ${def.replacement} (applied to the handlers that set none)`);
        this.monitor.set(def.action.field, { value: c.value, origin });
        return;
      }
      case "append":
      case "move": {
        const c = coerceToml(spec, value);
        if (!c.ok) this.fail(origin, name, `expected ${expectedForm(spec)}, got ${describe(value)}`);
        const target = tableDef(def.action.target.table);
        const key = def.action.target.key;
        const section = sectionOf(this.config, target);
        this.warn(origin, `"${name}" is deprecated; use ${def.replacement}`);
        if (def.action.type === "append") {
          const list = section[key] as string[];
          const v = c.value as string;
          if (v !== "" && !list.includes(v)) section[key] = [...list, v];
        } else {
          section[key] = c.value;
        }
        this.origins.set(configKeyOf(target, key), origin);
        return;
      }
    }
  }

  // ---- environment and flags ----

  applyCommandLine(env: Record<string, string | undefined>, flags: FlagInput): void {
    for (const { table, key, spec } of allOptions()) {
      if (!spec.flag) continue;
      const hit = this.lookup(spec.flag, env, flags);
      if (!hit) continue;
      const c = coerceCli(spec, hit.value);
      if (!c.ok) {
        this.fail(hit.origin, tomlKeyOf(table, key), `expected ${expectedForm(spec)}, got ${JSON.stringify(hit.value)}`);
      }
      this.setOption(table, key, spec, c.value, hit.origin);
    }
    for (const def of LEGACY_KEYS) {
      if (!def.flag || def.action.type !== "monitor") continue;
      const hit = this.lookup(def.flag, env, flags);
      if (!hit) continue;
      const spec = { kind: def.kind, default: "", doc: "" } as OptionSpec;
      const c = coerceCli(spec, hit.value);
      if (!c.ok) this.fail(hit.origin, `${def.table}.${def.key}`, `expected ${expectedForm(spec)}`);
      const what = hit.origin.source.startsWith("flag ") ? `--${def.flag.name}` : `${hit.origin.source} (--${def.flag.name})`;
      this.warn(hit.origin, `${what} is deprecated; use ${def.replacement} (applied to the handlers that set none)`);
      this.monitor.set(def.action.field, { value: c.value, origin: hit.origin });
    }
    const rt = this.lookup({ name: "runtimes" }, env, flags);
    if (rt) this.applyRuntimesFlag(rt.value, rt.origin);
  }

  lookup(
    flag: FlagSpec,
    env: Record<string, string | undefined>,
    flags: FlagInput,
  ): { value: string | boolean | string[]; origin: Origin } | undefined {
    for (const name of [flag.name, ...(flag.aliases ?? [])]) {
      const v = flags[name];
      if (v !== undefined) return { value: v, origin: { source: `flag --${flag.name}`, fromFile: false } };
    }
    const primary = envOf(flag);
    for (const e of [...(primary ? [primary] : []), ...(flag.fallbackEnv ?? [])]) {
      const v = env[e];
      if (v === undefined) continue;
      return { value: v, origin: { source: `environment variable ${e}`, fromFile: false } };
    }
    return undefined;
  }

  /** --runtimes name:path:root[:type[:privileged_without_host_devices[:config_path[:min_memory]]]] */
  applyRuntimesFlag(value: string | boolean | string[], origin: Origin): void {
    const entries = (Array.isArray(value) ? value : [String(value)])
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v !== "");
    for (const entry of entries) {
      const f = entry.split(":");
      if (f.length < 3 || f.length > 7 || f[0] === "") {
        this.fail(
          origin,
          RUNTIMES_TABLE,
          `invalid entry ${JSON.stringify(entry)}: expected name:path:root[:type[:privileged_without_host_devices[:runtime_config_path[:container_min_memory]]]]`,
        );
      }
      const [name, path, root, type, priv, cfgPath, minMem] = f as [string, string, string, ...(string | undefined)[]];
      const runtimes = this.config.runtime.runtimes;
      const exists = Object.hasOwn(runtimes, name);
      const h = exists ? copyHandler(runtimes[name]!) : zeroHandler();
      h.runtime_path = path;
      h.runtime_root = root;
      if (type !== undefined) {
        const c = coerceToml(RUNTIME_HANDLER_OPTIONS.runtime_type, type);
        if (!c.ok) this.fail(origin, `${RUNTIMES_TABLE}.${name}.runtime_type`, `expected ${expectedForm(RUNTIME_HANDLER_OPTIONS.runtime_type)}, got ${JSON.stringify(type)}`);
        h.runtime_type = c.value as RuntimeHandler["runtime_type"];
      } else if (!exists) {
        h.runtime_type = "oci";
      }
      if (priv !== undefined) h.privileged_without_host_devices = priv === "true";
      if (cfgPath !== undefined) h.runtime_config_path = cfgPath;
      if (minMem !== undefined) {
        if (!/^\s*\d+(\.\d+)?\s*([kKmMgGtTpP]i?[bB]?|[bB])?\s*$/.test(minMem)) {
          this.fail(origin, `${RUNTIMES_TABLE}.${name}.container_min_memory`, `expected a size such as "12MiB", got ${JSON.stringify(minMem)}`);
        }
        h.container_min_memory = minMem;
      }
      runtimes[name] = h;
      this.origins.set(`runtime.runtimes.${name}`, origin);
    }
  }

  // ---- final steps ----

  finish(): void {
    const rt = this.config.runtime;
    // Deprecated conmon* settings fill the monitor fields of OCI handlers that keep the
    // built-in value (CRI-O's TranslateMonitorFields).
    const builtin = builtinRuntimes();
    for (const [field, { value }] of this.monitor) {
      for (const [name, h] of Object.entries(rt.runtimes)) {
        if (h.runtime_type !== "oci" && h.runtime_type !== "") continue;
        const pristine = Object.hasOwn(builtin, name) ? builtin[name]![field] : zeroHandler()[field];
        const current = h[field];
        const unset = Array.isArray(current) ? current.length === 0 : current === "";
        if (field === "monitor_path" ? unset : unset || valuesEqual(current, pristine)) {
          (h as unknown as Record<string, unknown>)[field] = cloneValue(value);
        }
      }
    }
    if (rt.default_runtime === "") {
      // CRI-O falls back to its default handler when default_runtime is empty.
      rt.default_runtime = this.defaults.runtime.default_runtime;
      if (!Object.hasOwn(rt.runtimes, rt.default_runtime)) {
        const h = this.defaults.runtime.runtimes[rt.default_runtime];
        if (h) rt.runtimes[rt.default_runtime] = copyHandler(h);
      }
    }
    if (!Object.hasOwn(rt.runtimes, rt.default_runtime)) {
      const origin = this.origins.get("runtime.default_runtime") ?? { source: "built-in defaults", fromFile: false };
      this.fail(
        origin,
        "crio.runtime.default_runtime",
        `default_runtime is ${JSON.stringify(rt.default_runtime)}, but no [crio.runtime.runtimes.${rt.default_runtime}] table defines that handler (defined: ${Object.keys(rt.runtimes).sort().join(", ") || "none"})`,
      );
    }
    if (rt.log_size_max >= 0 && rt.log_size_max < 8192) {
      const origin = this.origins.get("runtime.log_size_max") ?? { source: "built-in defaults", fromFile: false };
      this.fail(origin, "crio.runtime.log_size_max", `expected a negative value (no limit) or at least 8192, got ${rt.log_size_max}`);
    }
    if (rt.log_filter !== "") {
      try {
        new RegExp(rt.log_filter);
      } catch (err) {
        const origin = this.origins.get("runtime.log_filter") ?? { source: "built-in defaults", fromFile: false };
        this.fail(origin, "crio.runtime.log_filter", `expected a regular expression: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

function dedupeKeepLast(list: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const v = list[i]!;
    if (seen.has(v)) continue;
    seen.add(v);
    out.push(v);
  }
  return out.reverse();
}

function copyHandler(h: RuntimeHandler): RuntimeHandler {
  const out = { ...h };
  for (const k of Object.keys(out) as (keyof RuntimeHandler)[]) {
    (out as Record<string, unknown>)[k] = cloneValue(out[k]);
  }
  return out;
}

function copyWorkload(w: Workload): Workload {
  return { ...w, allowed_annotations: [...w.allowed_annotations], resources: { ...w.resources } };
}

/** A deep copy of a Config. */
export function cloneConfig(c: Config): Config {
  return structuredClone(c);
}

/**
 * Loads the configuration: defaults (with storage.conf values), the main file, every file of the
 * drop-in directory in lexical order, CONTAINER_* environment variables, then flags. Throws
 * ConfigError for unparseable files, wrong types, invalid values or a default_runtime without
 * a handler; unknown and deprecated keys become warnings.
 */
export function loadConfig(opts: LoadOptions = {}): LoadResult {
  const fsys = opts.fs ?? nodeFs;
  const env = opts.env ?? (process.env as Record<string, string | undefined>);
  const flags = normalizeFlags(opts.flags ?? {});
  const storage = readStorageDefaults(fsys, env, opts.storageConf);
  const defaults = defaultConfig(storage);
  const loader = new Loader(cloneConfig(defaults), defaults);

  let configFile = opts.configFile;
  let explicit = opts.configFileExplicit ?? false;
  if (typeof flags.config === "string") {
    configFile = flags.config;
    explicit = true;
  } else if (configFile === undefined && env.CONTAINER_CONFIG !== undefined) {
    configFile = env.CONTAINER_CONFIG;
    explicit = true;
  } else if (configFile !== undefined && opts.configFileExplicit === undefined) {
    explicit = true;
  }
  configFile ??= DEFAULT_CONFIG_FILE;

  let configDir = opts.configDir;
  if (typeof flags["config-dir"] === "string") configDir = flags["config-dir"];
  else if (configDir === undefined && env.CONTAINER_CONFIG_DIR !== undefined) configDir = env.CONTAINER_CONFIG_DIR;
  configDir ??= DEFAULT_CONFIG_DIR;

  if (configFile !== "") {
    let text: string | undefined;
    try {
      text = fsys.readFileIfExists(configFile);
    } catch (err) {
      throw new ConfigError(`cannot read configuration file: ${err instanceof Error ? err.message : String(err)}`, { source: configFile });
    }
    if (text !== undefined) loader.applyFile(configFile, text);
    else if (explicit) throw new ConfigError("configuration file does not exist", { source: configFile });
  }
  if (configDir !== "") {
    for (const file of walkDropIns(fsys, configDir)) {
      let text: string | undefined;
      try {
        text = fsys.readFileIfExists(file);
      } catch (err) {
        throw new ConfigError(`cannot read drop-in file: ${err instanceof Error ? err.message : String(err)}`, { source: file });
      }
      if (text !== undefined) loader.applyFile(file, text);
    }
  }
  loader.applyCommandLine(env, flags);
  loader.finish();
  return { config: loader.config, warnings: loader.warnings, files: loader.files, defaults };
}

function normalizeFlags(flags: FlagInput): FlagInput {
  const out: FlagInput = {};
  for (const [k, v] of Object.entries(flags)) out[k.replace(/^-+/, "")] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// SIGHUP
// ---------------------------------------------------------------------------------------------

/**
 * Applies the options that CRI-O reloads on SIGHUP (reload.go) from `fresh` onto a copy of
 * `current`; everything else keeps its running value until a restart. `changed` lists the
 * Config paths that changed ("runtime.log_level", "image.pause_image", "runtime.runtimes", ...).
 * Registries are not part of the Config: the daemon re-reads registries.conf on every SIGHUP.
 */
export function reloadConfig(current: Config, fresh: Config): { config: Config; changed: string[] } {
  const next = cloneConfig(current);
  const changed: string[] = [];
  for (const { table, key, spec } of allOptions()) {
    if (!spec.reload) continue;
    const from = sectionOf(current, table)[key];
    const to = sectionOf(fresh, table)[key];
    if (valuesEqual(from, to)) continue;
    sectionOf(next, table)[key] = structuredClone(to);
    changed.push(configKeyOf(table, key));
  }
  if (!valuesEqual(current.runtime.runtimes, fresh.runtime.runtimes)) {
    next.runtime.runtimes = structuredClone(fresh.runtime.runtimes);
    changed.push("runtime.runtimes");
  }
  return { config: next, changed };
}
