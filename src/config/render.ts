// `crio config`: the configuration as commented TOML, generated from the schema. Options equal to
// the built-in default are commented out, others are live; table headers are always live, so the
// output can be fed back to the daemon as a crio.conf and yields the same configuration.
import { stringify } from "smol-toml";
import {
  builtinRuntimes,
  defaultConfig,
  RUNTIME_HANDLER_OPTIONS,
  RUNTIMES_DOC,
  RUNTIMES_TABLE,
  sectionOf,
  TABLES,
  valuesEqual,
  WORKLOAD_OPTIONS,
  WORKLOAD_RESOURCE_OPTIONS,
  WORKLOADS_DOC,
  WORKLOADS_TABLE,
  zeroHandler,
  zeroWorkload,
  type Config,
  type OptionSpec,
} from "./schema.ts";

export interface RenderOptions {
  /**
   * Print the built-in defaults with every option live (`crio config --default`). The values
   * come from `baseline` (or the static built-in defaults); the config argument is not used.
   */
  defaults?: boolean;
  /**
   * The defaults to compare against when deciding what to comment out; pass the `defaults` of a
   * LoadResult so that storage.conf-derived values count as defaults. Default: defaultConfig().
   */
  baseline?: Config;
}

const PREAMBLE = `# crio.conf - configuration of the CRI-O container runtime daemon, crio(8).
#
# Written by \`crio config\`. Options still at their built-in default are commented
# out; options set to anything else are live. The daemon reads /etc/crio/crio.conf
# first, then every file below /etc/crio/crio.conf.d in lexical order (later files
# win), then CONTAINER_* environment variables and command-line flags.
# crio.conf(5) describes every option.
#
# Options marked "Reloaded on SIGHUP" change in a running daemon on SIGHUP
# (systemctl reload crio); all others take effect at the next start.
#
# Storage locations default to the values of containers-storage.conf(5),
# /etc/containers/storage.conf; set them here to change them for CRI-O only.

`;

const WIDTH = 80;

/** A TOML basic string. */
export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case "\\":
        out += "\\\\";
        break;
      case "\b":
        out += "\\b";
        break;
      case "\t":
        out += "\\t";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\f":
        out += "\\f";
        break;
      case "\r":
        out += "\\r";
        break;
      default:
        out += code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, "0")}` : ch;
    }
  }
  return out + '"';
}

/** A TOML key: bare when possible, quoted otherwise. */
export function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

/** Wraps prose into `# ` comment lines. */
export function commentLines(text: string, width = WIDTH): string[] {
  const out: string[] = [];
  for (const para of text.split("\n")) {
    const words = para.split(/\s+/).filter((w) => w !== "");
    if (words.length === 0) {
      out.push("#");
      continue;
    }
    // List items ("- name: text") continue on indented lines.
    const indent = words[0] === "-" ? "#   " : "#";
    let line = "#";
    for (const w of words) {
      if (line.length + 1 + w.length > width && line.trim() !== "#") {
        out.push(line);
        line = indent;
      }
      line += line.endsWith(" ") ? w : ` ${w}`;
    }
    out.push(line);
  }
  return out;
}

/** The value of an option as TOML text (arrays span lines: one quoted element per line). */
export function formatValue(spec: OptionSpec, value: unknown): string[] {
  switch (spec.kind) {
    case "string":
    case "enum":
    case "duration":
      return [tomlString(String(value))];
    case "bool":
    case "int":
    case "float":
      return [String(value)];
    case "string[]": {
      const items = value as readonly string[];
      return ["[", ...items.map((x) => `\t${tomlString(x)},`), "]"];
    }
    case "map": {
      const entries = Object.entries(value as Record<string, string>);
      if (entries.length === 0) return ["{}"];
      return [`{ ${entries.map(([k, v]) => `${tomlString(k)} = ${tomlString(v)}`).join(", ")} }`];
    }
  }
}

function assignment(key: string, spec: OptionSpec, value: unknown, commented: boolean): string[] {
  const [first, ...rest] = formatValue(spec, value);
  const lines = [`${tomlKey(key)} = ${first}`, ...rest];
  return commented ? lines.map((l) => `# ${l}`) : lines;
}

function optionDoc(spec: OptionSpec): string {
  let doc = spec.doc;
  if (spec.reload) doc += " Reloaded on SIGHUP.";
  if (spec.deprecated) doc += ` Deprecated: ${spec.deprecated}.`;
  return doc;
}

function fieldList(options: Readonly<Record<string, OptionSpec>>): string {
  return Object.entries(options)
    .map(([k, s]) => `- ${k} (${typeName(s)}): ${s.doc}`)
    .join("\n");
}

/** Human-readable type of an option, as used in docs. */
export function typeName(spec: OptionSpec): string {
  switch (spec.kind) {
    case "string":
      return "string";
    case "bool":
      return "boolean";
    case "int":
      return "integer";
    case "float":
      return "number";
    case "string[]":
      return "array of strings";
    case "duration":
      return "duration";
    case "map":
      return "table of strings";
    case "enum":
      return spec.values.map((v) => JSON.stringify(v)).join(" | ");
  }
}

function renderHandlers(out: string[], config: Config, all: boolean): void {
  out.push(
    ...commentLines(
      `${RUNTIMES_DOC}\n\nFields of a handler table:\n${fieldList(RUNTIME_HANDLER_OPTIONS)}`,
    ),
  );
  out.push("");
  const builtin = builtinRuntimes();
  const runtimes = config.runtime.runtimes;
  for (const name of Object.keys(runtimes).sort()) {
    const h = runtimes[name]!;
    const pristine = Object.hasOwn(builtin, name) ? builtin[name]! : zeroHandler();
    out.push(`[${RUNTIMES_TABLE}.${tomlKey(name)}]`);
    for (const [field, spec] of Object.entries(RUNTIME_HANDLER_OPTIONS) as [string, OptionSpec][]) {
      const v = (h as unknown as Record<string, unknown>)[field];
      const p = (pristine as unknown as Record<string, unknown>)[field];
      out.push(...assignment(field, spec, v, !all && valuesEqual(v, p)));
    }
    out.push("");
  }
}

function renderWorkloads(out: string[], config: Config, all: boolean): void {
  out.push(
    ...commentLines(
      `${WORKLOADS_DOC}\n\nFields of a workload table:\n${fieldList(WORKLOAD_OPTIONS)}\n\nFields of its resources table:\n${fieldList(WORKLOAD_RESOURCE_OPTIONS)}`,
    ),
  );
  out.push("");
  const zero = zeroWorkload();
  const workloads = config.runtime.workloads;
  for (const name of Object.keys(workloads).sort()) {
    const w = workloads[name]!;
    out.push(`[${WORKLOADS_TABLE}.${tomlKey(name)}]`);
    for (const [field, spec] of Object.entries(WORKLOAD_OPTIONS) as [string, OptionSpec][]) {
      const v = (w as unknown as Record<string, unknown>)[field];
      const p = (zero as unknown as Record<string, unknown>)[field];
      out.push(...assignment(field, spec, v, !all && valuesEqual(v, p)));
    }
    out.push(`[${WORKLOADS_TABLE}.${tomlKey(name)}.resources]`);
    for (const [field, spec] of Object.entries(WORKLOAD_RESOURCE_OPTIONS) as [string, OptionSpec][]) {
      const v = (w.resources as unknown as Record<string, unknown>)[field];
      const p = (zero.resources as unknown as Record<string, unknown>)[field];
      out.push(...assignment(field, spec, v, !all && valuesEqual(v, p)));
    }
    out.push("");
  }
}

/**
 * The `crio config` output for `config`: a preamble, then every table in CRI-O's order, each
 * option preceded by its documentation and commented out when it equals the default.
 */
export function renderConfig(config: Config, opts: RenderOptions = {}): string {
  const baseline = opts.baseline ?? defaultConfig();
  const all = opts.defaults === true;
  const source = all ? baseline : config;
  const out: string[] = [];
  for (const table of TABLES) {
    if (!table.toml) continue;
    out.push(...commentLines(table.doc));
    out.push(`[${table.id}]`, "");
    const values = sectionOf(source, table);
    const defaults = sectionOf(baseline, table);
    for (const [key, spec] of Object.entries(table.options)) {
      if (spec.toml === false) continue;
      out.push(...commentLines(optionDoc(spec)));
      out.push(...assignment(key, spec, values[key], !all && valuesEqual(values[key], defaults[key])));
      out.push("");
    }
    if (table.id === "crio.runtime") {
      renderHandlers(out, source, all);
      renderWorkloads(out, source, all);
    }
  }
  return PREAMBLE + out.join("\n").replace(/\n+$/, "") + "\n";
}

/**
 * The configuration as plain TOML (the HTTP /config endpoint and the start-up log): the whole
 * [crio] tree with every value, without comments. Command-line-only settings are left out.
 */
export function configToToml(config: Config): string {
  const crio: Record<string, unknown> = {};
  for (const table of TABLES) {
    if (!table.toml) continue;
    let target = crio;
    for (const p of table.configPath) {
      target[p] ??= {};
      target = target[p] as Record<string, unknown>;
    }
    const values = sectionOf(config, table);
    for (const [key, spec] of Object.entries(table.options)) {
      if (spec.toml === false) continue;
      target[key] = values[key];
    }
    if (table.id === "crio.runtime") {
      const runtimes: Record<string, unknown> = {};
      for (const name of Object.keys(config.runtime.runtimes).sort()) runtimes[name] = config.runtime.runtimes[name];
      const workloads: Record<string, unknown> = {};
      for (const name of Object.keys(config.runtime.workloads).sort()) workloads[name] = config.runtime.workloads[name];
      target.runtimes = runtimes;
      target.workloads = workloads;
    }
  }
  return stringify({ crio });
}
