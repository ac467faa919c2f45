// Man pages generated from the schema: crio.conf(5), crio.conf.d(5) and crio(8), in roff.
import { flagDefs, flagValueType, type FlagDef } from "./flags.ts";
import { formatValue, typeName } from "./render.ts";
import {
  builtinRuntimes,
  DEFAULT_CONFIG_DIR,
  DEFAULT_CONFIG_FILE,
  DEFAULT_STORAGE_CONF,
  defaultConfig,
  LEGACY_KEYS,
  RUNTIME_HANDLER_OPTIONS,
  RUNTIMES_DOC,
  RUNTIMES_TABLE,
  sectionOf,
  TABLES,
  WORKLOAD_OPTIONS,
  WORKLOAD_RESOURCE_OPTIONS,
  WORKLOADS_DOC,
  WORKLOADS_TABLE,
  type OptionSpec,
} from "./schema.ts";

/** Escapes text for roff: backslashes, and control characters at the start of a line. */
export function roffText(s: string): string {
  return s
    .replace(/\\/g, "\\e")
    .split("\n")
    .map((l) => (l.startsWith(".") || l.startsWith("'") ? `\\&${l}` : l))
    .join("\n");
}

/** Escapes a literal token (flag names, keys) so that hyphens print as hyphens. */
function lit(s: string): string {
  return roffText(s).replace(/-/g, "\\-");
}

function bold(s: string): string {
  return `\\fB${lit(s)}\\fR`;
}

function italic(s: string): string {
  return `\\fI${lit(s)}\\fR`;
}

function header(name: string, section: number, title: string): string[] {
  return [
    `.\\" Generated from the configuration schema (src/config/schema.ts); do not edit.`,
    `.TH ${name} ${section} "" "crio" "${title}"`,
  ];
}

function defaultText(spec: OptionSpec, value: unknown): string {
  return formatValue(spec, value)
    .join(spec.kind === "string[]" ? " " : "")
    .replace(/\t/g, "");
}

function optionEntry(key: string, spec: OptionSpec, value: unknown, extra: string[] = []): string[] {
  const notes: string[] = [];
  if (spec.reload) notes.push("Reloaded on SIGHUP.");
  if (spec.deprecated) notes.push(`Deprecated: ${spec.deprecated}.`);
  if (spec.flag) notes.push(`Command line: --${spec.flag.name}.`);
  notes.push(...extra);
  return [
    ".TP",
    `${bold(key)} = ${roffText(defaultText(spec, value))} (${roffText(typeName(spec))})`,
    roffText(spec.doc),
    ...(notes.length ? [".br", roffText(notes.join(" "))] : []),
  ];
}

/** crio.conf(5): every table and option with its type, default, documentation and reload marker. */
export function renderCrioConfMan(): string {
  const d = defaultConfig();
  const out: string[] = [
    ...header("CRIO.CONF", 5, "File Formats"),
    ".SH NAME",
    "crio.conf \\- configuration file of the CRI\\-O container runtime daemon",
    ".SH DESCRIPTION",
    roffText(
      `The daemon crio(8) reads its settings from ${DEFAULT_CONFIG_FILE} and then from the drop-in ` +
        `files below ${DEFAULT_CONFIG_DIR} (see crio.conf.d(5)). Every setting has a built-in ` +
        "default; most can also be given as command-line flags or CONTAINER_* environment " +
        "variables, which take precedence over the files. `crio config` prints the effective " +
        "configuration in this format, with default values commented out.",
    ),
    ".PP",
    roffText(
      "Options marked \"Reloaded on SIGHUP\" are applied by a running daemon when it receives " +
        "SIGHUP; all others take effect at the next start. The registries configuration " +
        "(containers-registries.conf(5)) is re-read on SIGHUP as well.",
    ),
    ".SH FORMAT",
    roffText(
      "The file is TOML. All options live in the [crio] table or one of its sub-tables; " +
        "keys outside [crio] are ignored with a warning, as are unknown keys inside it. A value " +
        "of the wrong type or outside the allowed set is an error that names the file, line and key.",
    ),
    ".PP",
    ".nf",
    ".RS",
    "[crio]",
    'root = "/var/lib/containers/storage"',
    "",
    "[crio.runtime]",
    'log_level = "info"',
    "",
    "[crio.runtime.runtimes.runc]",
    'runtime_root = "/run/runc"',
    ".RE",
    ".fi",
  ];
  for (const table of TABLES) {
    if (!table.toml) continue;
    out.push(`.SH "${table.id.toUpperCase()} TABLE"`, roffText(table.doc));
    const values = sectionOf(d, table);
    for (const [key, spec] of Object.entries(table.options)) {
      if (spec.toml === false) continue;
      out.push(...optionEntry(key, spec, values[key]));
    }
    if (table.id === "crio.runtime") {
      const builtin = builtinRuntimes();
      out.push(`.SH "${RUNTIMES_TABLE.toUpperCase()} TABLES"`, roffText(RUNTIMES_DOC));
      out.push(
        ".PP",
        roffText(
          `Out of the box two handlers exist: ${Object.keys(builtin)
            .map((n) => `"${n}" (runtime_root ${builtin[n]!.runtime_root})`)
            .join(" and ")}, both with monitor_env set to a standard PATH and conmon looked up in $PATH. ` +
            "The defaults listed below are what an omitted field means in a table of a new handler.",
        ),
      );
      for (const [key, spec] of Object.entries(RUNTIME_HANDLER_OPTIONS) as [string, OptionSpec][]) {
        out.push(...optionEntry(key, spec, spec.default));
      }
      out.push(`.SH "${WORKLOADS_TABLE.toUpperCase()} TABLES"`, roffText(WORKLOADS_DOC));
      for (const [key, spec] of Object.entries(WORKLOAD_OPTIONS) as [string, OptionSpec][]) {
        out.push(...optionEntry(key, spec, spec.default));
      }
      out.push(".PP", roffText("Keys of the resources sub-table:"));
      for (const [key, spec] of Object.entries(WORKLOAD_RESOURCE_OPTIONS) as [string, OptionSpec][]) {
        out.push(...optionEntry(key, spec, spec.default));
      }
    }
  }
  out.push(
    '.SH "DEPRECATED AND REMOVED KEYS"',
    roffText(
      "Files written for older releases may contain the following keys. They are accepted with " +
        "a warning; where a current option has the same meaning, the value is carried over.",
    ),
  );
  for (const l of LEGACY_KEYS) {
    out.push(".TP", bold(`${l.table}.${l.key}`), roffText(`Replaced by ${l.replacement}.`));
  }
  out.push(
    '.SH "SEE ALSO"',
    "crio(8), crio.conf.d(5), containers\\-storage.conf(5), containers\\-registries.conf(5), " +
      "containers\\-policy.json(5), oci\\-hooks(5)",
  );
  return out.join("\n") + "\n";
}

/** crio.conf.d(5): how drop-in files are found and combined. */
export function renderCrioConfDMan(): string {
  const out = [
    ...header("CRIO.CONF.D", 5, "File Formats"),
    ".SH NAME",
    "crio.conf.d \\- drop\\-in configuration files of the CRI\\-O container runtime daemon",
    ".SH DESCRIPTION",
    roffText(
      `Besides ${DEFAULT_CONFIG_FILE}, crio(8) reads every regular file below ${DEFAULT_CONFIG_DIR} ` +
        "(or the directory given with --config-dir). Each file uses the format of crio.conf(5) " +
        "and may contain any subset of its options.",
    ),
    ".SH PRECEDENCE",
    roffText(
      "The main file is applied first. The directory is then walked recursively and its files " +
        "are applied one after another in lexical order of their paths, whatever their extension, " +
        "so a value in 10-custom.conf wins over the same option in 00-default.conf. Environment " +
        "variables and command-line flags are applied last and win over every file.",
    ),
    ".SH MERGING",
    roffText(
      "A file changes only the options it names. Runtime handlers and workloads are merged by " +
        "name: a table for a new handler adds it, and a table for an existing handler changes " +
        "only the fields it sets. The storage_option lists of all files accumulate, a repeated " +
        "option keeping its last position. Empty root, runroot and storage_driver values keep " +
        "the values from containers-storage.conf(5).",
    ),
    '.SH "SEE ALSO"',
    "crio(8), crio.conf(5)",
  ];
  return out.join("\n") + "\n";
}

function flagEntry(f: FlagDef): string[] {
  const names = [f.name, ...f.aliases].map((n) => bold(n.length === 1 ? `-${n}` : `--${n}`)).join(", ");
  const valueType = flagValueType(f);
  const head = f.kind === "bool" ? names : `${names}=${italic(valueType || "value")}`;
  const notes: string[] = [];
  if (f.kind === "string[]") notes.push("May be repeated or given as a comma-separated list.");
  if (f.env) notes.push(`Environment: ${[f.env, ...(f.envFallback ?? [])].join(", ")}.`);
  if (f.default !== undefined) notes.push(`Default: ${f.default}.`);
  if (f.tomlKey) notes.push(`Configuration key: ${f.tomlKey}.`);
  return [".TP", head, roffText(f.doc), ...(notes.length ? [".br", roffText(notes.join(" "))] : [])];
}

/** crio(8): synopsis, global options (from flagDefs), the given commands, files and signals. */
export function renderCrioMan(commands: { name: string; description: string }[]): string {
  const flags = flagDefs().filter((f) => !f.hidden);
  const out: string[] = [
    ...header("CRIO", 8, "System Manager's Manual"),
    ".SH NAME",
    "crio \\- container runtime daemon implementing the Kubernetes CRI with OCI runtimes",
    ".SH SYNOPSIS",
    `${bold("crio")} [${italic("global options")}] [${italic("command")} [${italic("command options")}] [${italic("arguments")}...]]`,
    ".SH DESCRIPTION",
    roffText(
      "crio serves the Kubernetes Container Runtime Interface (CRI) over a unix socket for the " +
        "kubelet. It pulls and stores images, creates pod sandboxes and containers and runs them " +
        "through an OCI runtime such as runc or crun, each container watched by a conmon process, " +
        "and sets up pod networking through CNI plugins.",
    ),
    ".PP",
    roffText(
      "Without a command, crio runs the daemon. Settings are taken, in increasing order of " +
        `precedence, from built-in defaults, ${DEFAULT_CONFIG_FILE}, the drop-in files below ` +
        `${DEFAULT_CONFIG_DIR}, environment variables and the flags below.`,
    ),
    '.SH "GLOBAL OPTIONS"',
  ];
  for (const f of flags) out.push(...flagEntry(f));
  out.push(".SH COMMANDS");
  for (const c of commands) out.push(".TP", bold(c.name), roffText(c.description));
  out.push(
    ".SH ENVIRONMENT",
    roffText(
      "Every global option can also be set through the environment variable listed with it. " +
        "In addition:",
    ),
    ".TP",
    bold("CONTAINERS_STORAGE_CONF"),
    roffText(`Path of containers-storage.conf(5) (default ${DEFAULT_STORAGE_CONF}).`),
    ".TP",
    bold("STORAGE_DRIVER"),
    roffText("Overrides the storage driver named in containers-storage.conf(5)."),
    ".TP",
    bold("STORAGE_OPTS"),
    roffText("Comma-separated storage driver options replacing those of containers-storage.conf(5)."),
    ".TP",
    bold("CONTAINERS_REGISTRIES_CONF"),
    roffText("Path of containers-registries.conf(5) when --registries-conf is not given."),
    ".TP",
    bold("KUBENSMNT"),
    roffText(
      "A bind-mounted mount namespace that the daemon joins before it starts containers. If it " +
        "is not a mount namespace, the daemon stays in its own and logs a warning.",
    ),
    ".SH FILES",
    ".TP",
    bold(DEFAULT_CONFIG_FILE),
    roffText("Main configuration file, see crio.conf(5)."),
    ".TP",
    bold(DEFAULT_CONFIG_DIR),
    roffText("Drop-in configuration files, see crio.conf.d(5)."),
    ".TP",
    bold(DEFAULT_STORAGE_CONF),
    roffText("Storage defaults, see containers-storage.conf(5)."),
    ".TP",
    bold("/etc/containers/registries.conf"),
    roffText("Registries, mirrors and short-name aliases, see containers-registries.conf(5)."),
    ".TP",
    bold("/etc/containers/policy.json"),
    roffText("Image signature policy, see containers-policy.json(5)."),
    ".TP",
    bold(defaultConfig().api.listen),
    roffText("The socket on which the CRI and the status API are served."),
    ".SH SIGNALS",
    ".TP",
    bold("SIGHUP"),
    roffText(
      "Re-read the configuration files and apply the options that support live reload " +
        "(see crio.conf(5)), and re-read the registries configuration.",
    ),
    ".TP",
    `${bold("SIGTERM")}, ${bold("SIGINT")}`,
    roffText(
      "Stop serving, sync the storage and write the clean-shutdown file, then exit. Running " +
        "containers keep running under their monitors.",
    ),
    ".TP",
    bold("SIGUSR1"),
    roffText("Write a dump of the daemon's internal state (stacks) to a file in the temporary directory."),
    ".TP",
    bold("SIGUSR2"),
    roffText("Run garbage collection of unused storage."),
    '.SH "SEE ALSO"',
    "crio.conf(5), crio.conf.d(5), crictl(1), containers\\-storage.conf(5), " +
      "containers\\-registries.conf(5), containers\\-policy.json(5), oci\\-hooks(5)",
  );
  return out.join("\n") + "\n";
}
