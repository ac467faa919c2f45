// The command-line flags of crio(8), derived from the schema: one flag per option that CRI-O
// exposes on the command line, the command-line-only daemon settings, the deprecated conmon*
// flags, --runtimes, and the CLI's own --config/--config-dir/--help/--version.
import { formatValue } from "./render.ts";
import {
  allOptions,
  configKeyOf,
  DEFAULT_CONFIG_DIR,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  envOf,
  LEGACY_KEYS,
  sectionOf,
  tomlKeyOf,
  type OptionKind,
  type OptionSpec,
} from "./schema.ts";

export type FlagKind = "bool" | "string" | "string[]";

export interface FlagDef {
  /** Long name without dashes. */
  name: string;
  /** Other accepted names without dashes (short letters and long aliases). */
  aliases: string[];
  /** How the parser treats it: a switch, a single value, or a repeatable list. */
  kind: FlagKind;
  /** The value's type in more detail, for help and completions. */
  valueType: OptionKind | "runtimes" | "none";
  /** Environment variable read when the flag is absent. */
  env?: string;
  /** Further variables read, with lower precedence, when `env` is unset. */
  envFallback?: string[];
  doc: string;
  /** The built-in default as shown in help (not applied by the parser). */
  default?: string;
  hidden: boolean;
  /**
   * "option": sets a crio.conf option (`key`); "flag-only": a daemon setting with no TOML key
   * (config.flagOnly or registries paths); "legacy": a deprecated flag mapped elsewhere; "cli":
   * handled by the command-line layer itself (--config, --config-dir, --help, --version).
   */
  role: "option" | "flag-only" | "legacy" | "cli";
  /** Config path of the setting ("runtime.log_level"), when it sets one. */
  key?: string;
  /** Dotted TOML name ("crio.runtime.log_level") for options that are in crio.conf. */
  tomlKey?: string;
  /** Allowed values of enum flags. */
  values?: readonly string[];
  deprecated?: string;
  /** The value is a path (file completion). */
  path?: boolean;
}

function kindOf(spec: OptionSpec): FlagKind {
  if (spec.kind === "bool") return "bool";
  if (spec.kind === "string[]") return "string[]";
  return "string";
}

/** A default as help shows it: quoted strings, comma-separated lists, nothing when empty. */
function shownDefault(spec: OptionSpec, value: unknown): string | undefined {
  if (spec.kind === "string[]") {
    const items = value as string[];
    return items.length ? items.map((x) => JSON.stringify(x)).join(", ") : undefined;
  }
  if (spec.kind === "bool") return value === true ? "true" : undefined;
  if (value === "") return undefined;
  return formatValue(spec, value)[0];
}

/** Every flag of the `crio` command, sorted by name. */
export function flagDefs(): FlagDef[] {
  const defaults = defaultConfig();
  const out: FlagDef[] = [
    {
      name: "config",
      aliases: ["c"],
      kind: "string",
      valueType: "string",
      env: "CONTAINER_CONFIG",
      doc: `Main configuration file. An explicit "" reads none; a file named here must exist.`,
      default: JSON.stringify(DEFAULT_CONFIG_FILE),
      hidden: false,
      role: "cli",
      path: true,
    },
    {
      name: "config-dir",
      aliases: ["d"],
      kind: "string",
      valueType: "string",
      env: "CONTAINER_CONFIG_DIR",
      doc:
        "Drop-in directory. Every file below it is applied after the main file, in lexical " +
        "order of the names (so 01-x overrides 00-y); flags override all files. \"\" reads none.",
      default: JSON.stringify(DEFAULT_CONFIG_DIR),
      hidden: false,
      role: "cli",
      path: true,
    },
    {
      name: "help",
      aliases: ["h"],
      kind: "bool",
      valueType: "none",
      doc: "Show help.",
      hidden: false,
      role: "cli",
    },
    {
      name: "version",
      aliases: ["v"],
      kind: "bool",
      valueType: "none",
      doc: "Print the version.",
      hidden: false,
      role: "cli",
    },
    {
      name: "runtimes",
      aliases: [],
      kind: "string[]",
      valueType: "runtimes",
      env: "CONTAINER_RUNTIMES",
      doc:
        "Add or change runtime handlers, each as " +
        "name:path:root[:type[:privileged_without_host_devices[:runtime_config_path[:container_min_memory]]]].",
      hidden: false,
      role: "option",
      key: "runtime.runtimes",
      tomlKey: "crio.runtime.runtimes",
    },
  ];
  for (const { table, key, spec } of allOptions()) {
    const f = spec.flag;
    if (!f) continue;
    const env = envOf(f);
    const dflt = shownDefault(spec, sectionOf(defaults, table)[key]);
    const toml = spec.toml !== false;
    out.push({
      name: f.name,
      aliases: [...(f.aliases ?? [])],
      kind: kindOf(spec),
      valueType: spec.kind,
      ...(env ? { env } : {}),
      ...(f.fallbackEnv ? { envFallback: [...f.fallbackEnv] } : {}),
      doc: spec.deprecated ? `${spec.doc} Deprecated: ${spec.deprecated}.` : spec.doc,
      ...(dflt !== undefined ? { default: dflt } : {}),
      hidden: f.hidden === true,
      role: toml ? "option" : "flag-only",
      key: configKeyOf(table, key),
      ...(toml ? { tomlKey: tomlKeyOf(table, key) } : {}),
      ...(spec.kind === "enum" ? { values: spec.values } : {}),
      ...(spec.deprecated ? { deprecated: spec.deprecated } : {}),
      ...(spec.path ? { path: true } : {}),
    });
  }
  for (const def of LEGACY_KEYS) {
    const f = def.flag;
    if (!f) continue;
    const env = envOf(f);
    const kind = def.kind === "string[]" ? "string[]" : def.kind === "bool" ? "bool" : "string";
    out.push({
      name: f.name,
      aliases: [...(f.aliases ?? [])],
      kind,
      valueType: def.kind,
      ...(env ? { env } : {}),
      doc: `${def.doc} Deprecated: use ${def.replacement}.`,
      hidden: f.hidden === true,
      role: "legacy",
      tomlKey: `${def.table}.${def.key}`,
      deprecated: `use ${def.replacement}`,
      ...(def.key === "conmon" ? { path: true } : {}),
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The flag that sets a given Config path ("runtime.log_level"), if any. */
export function flagForKey(key: string): FlagDef | undefined {
  return flagDefs().find((f) => f.key === key);
}

/** A short description of a flag's value for help and man pages ("value", "integer", choices). */
export function flagValueType(def: FlagDef): string {
  if (def.valueType === "none") return "";
  if (def.valueType === "runtimes") return "name:path:root[:...]";
  if (def.values) return def.values.map((v) => JSON.stringify(v)).join(" | ");
  switch (def.valueType) {
    case "int":
      return "integer";
    case "float":
      return "number";
    case "duration":
      return "duration";
    case "bool":
      return "";
    default:
      return "value";
  }
}
