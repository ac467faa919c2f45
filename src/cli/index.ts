// The `crio` command line: global flags (every option flag of crio(8)) then an optional
// subcommand. No subcommand starts the daemon. Usage errors print usage and exit 2; config
// errors exit 1 naming the file, line or key.
import { ConfigError, UsageError } from "../errors.ts";
import { parseFlags, type FlagValues } from "./args.ts";
import { findSubcommand, HELP_FLAG, usage, type CliFlag, type Command } from "./commands.ts";
import { formatVersion, versionInfo } from "../version.ts";
import { completionScript, SHELLS } from "./completion.ts";
import { verifyBundleCommand } from "./verify-bundle.ts";
import * as config from "../config/index.ts";

function write(s: string): void {
  process.stdout.write(s.endsWith("\n") ? s : s + "\n");
}

/** Load options shared by the daemon and `crio config`: -c/-d, env and flags (the loader reads all three). */
export function loadOptionsFrom(global: FlagValues): config.LoadOptions {
  return { env: process.env, flags: global };
}

/** The schema quotes string defaults as TOML would; help shows a lone string bare. */
function bareDefault(d: string): string {
  try {
    const v: unknown = JSON.parse(d);
    return typeof v === "string" ? v : d;
  } catch {
    return d;
  }
}

/** Every crio(8) flag from the config schema, including -c, -d, --help and --version. */
function globalFlags(): CliFlag[] {
  return config.flagDefs().map((f) => ({
    name: f.name,
    aliases: f.aliases,
    kind: f.kind,
    description: f.doc,
    ...(f.default !== undefined ? { default: bareDefault(f.default) } : {}),
    ...(f.env ? { env: f.env } : {}),
    ...(f.hidden ? { hidden: true } : {}),
  }));
}

/** CRI-O's default socket (also the daemon's default listen path). */
const DEFAULT_SOCKET = "/var/run/crio/crio.sock";

// The status client (node:http) loads only when `crio status` runs, not on the daemon's path.
const statusCommand: Command = {
  name: "status",
  description: "Display status information of a running daemon (a client of its HTTP API)",
  flags: [
    { name: "socket", aliases: ["s"], kind: "string", description: "absolute path to the unix socket", default: DEFAULT_SOCKET, valueHint: "path" },
    HELP_FLAG,
  ],
  subcommands: [
    {
      name: "config",
      aliases: ["c"],
      description: "Show the configuration of the running daemon as TOML",
      flags: [HELP_FLAG],
      run: async (ctx) => {
        const { statusConfig } = await import("./status.ts");
        process.stdout.write(await statusConfig(socketOf(ctx.flags)));
        return 0;
      },
    },
    {
      name: "containers",
      aliases: ["container", "cs", "s"],
      description: "Display detailed information about the container with the given ID",
      flags: [{ name: "id", aliases: ["i"], kind: "string", description: "the container ID", valueHint: "id" }, HELP_FLAG],
      run: async (ctx) => {
        const id = ctx.flags.id;
        if (typeof id !== "string" || id === "") throw new UsageError("the argument --id cannot be empty");
        const { statusContainer } = await import("./status.ts");
        process.stdout.write(await statusContainer(socketOf(ctx.flags), id));
        return 0;
      },
    },
    {
      name: "info",
      aliases: ["i"],
      description: "Retrieve generic information about the daemon, such as the cgroup and storage driver",
      flags: [HELP_FLAG],
      run: async (ctx) => {
        const { statusInfo } = await import("./status.ts");
        process.stdout.write(await statusInfo(socketOf(ctx.flags)));
        return 0;
      },
    },
  ],
};

function socketOf(flags: FlagValues): string {
  const s = flags.socket;
  return typeof s === "string" && s !== "" ? s : DEFAULT_SOCKET;
}

function buildRoot(): Command {
  const root: Command = {
    name: "crio",
    description: "OCI-based implementation of the Kubernetes Container Runtime Interface, compatible with CRI-O",
    flags: globalFlags(),
    run: async (ctx) => {
      const { runDaemon } = await import("../server/daemon.ts");
      const opts = loadOptionsFrom(ctx.global);
      const initial = config.loadConfig(opts);
      return runDaemon({ initial, reload: () => config.loadConfig(opts) });
    },
    subcommands: [
      {
        name: "config",
        description: "Print the configuration as commented TOML (defaults commented out, other values live)",
        flags: [{ name: "default", kind: "bool", description: "print the built-in defaults, ignoring files, environment and flags" }, HELP_FLAG],
        run: async (ctx) => {
          if (ctx.flags.default === true) {
            write(config.renderConfig(config.defaultConfig(), { defaults: true }));
            return 0;
          }
          const { config: cfg, warnings, defaults } = config.loadConfig(loadOptionsFrom(ctx.global));
          for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
          write(config.renderConfig(cfg, { baseline: defaults }));
          return 0;
        },
      },
      {
        name: "version",
        description: "Print the version and build information",
        flags: [{ name: "json", aliases: ["j"], kind: "bool", description: "print as JSON" }, { name: "verbose", kind: "bool", description: "accepted for compatibility" }, HELP_FLAG],
        run: async (ctx) => {
          const info = versionInfo();
          write(ctx.flags.json === true ? JSON.stringify(info, null, 2) : formatVersion(info));
          return 0;
        },
      },
      statusCommand,
      verifyBundleCommand,
      {
        name: "completion",
        aliases: ["complete"],
        description: "Print a shell completion script (bash, zsh or fish)",
        flags: [HELP_FLAG],
        positionals: [{ name: "shell", description: "bash (default), zsh or fish", choices: SHELLS }],
        run: async (ctx) => {
          const shell = ctx.args[0] ?? "bash";
          if (ctx.args.length > 1) throw new UsageError("completion takes at most one argument");
          if (!(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`unknown shell ${JSON.stringify(shell)}: want ${SHELLS.join(", ")}`);
          write(completionScript(shell as (typeof SHELLS)[number], buildRoot()));
          return 0;
        },
      },
      {
        name: "man",
        description: "Print a man page generated from the built-in schema: crio.8 (default), crio.conf.5 or crio.conf.d.5",
        flags: [HELP_FLAG],
        positionals: [{ name: "page", description: "crio.8, crio.conf.5 or crio.conf.d.5", choices: ["crio.8", "crio.conf.5", "crio.conf.d.5"] }],
        run: async (ctx) => {
          const page = ctx.args[0] ?? "crio.8";
          if (page === "crio.8") {
            const r = buildRoot();
            write(config.renderCrioMan((r.subcommands ?? []).filter((c) => !c.hidden).map((c) => ({ name: c.name, description: c.description }))));
          } else if (page === "crio.conf.5") write(config.renderCrioConfMan());
          else if (page === "crio.conf.d.5") write(config.renderCrioConfDMan());
          else throw new UsageError(`unknown man page ${JSON.stringify(page)}: want crio.8, crio.conf.5 or crio.conf.d.5`);
          return 0;
        },
      },
    ],
  };
  return root;
}

/** Parses argv, runs the selected command, and returns the exit status. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const root = buildRoot();
  const chain: Command[] = [root];
  const tty = process.stdout.isTTY === true;
  try {
    const top = parseFlags(argv, root.flags);
    const global = top.values;
    if (global.help === true) {
      write(await usage(chain, versionInfo().version, tty));
      return 0;
    }
    if (global.version === true) {
      write(`crio version ${versionInfo().version}\n${formatVersion(versionInfo())}`);
      return 0;
    }
    let cmd = root;
    let rest = top.rest;
    let flags: FlagValues = {};
    // Descend into subcommands; each level parses its own flags.
    while (rest.length > 0 && cmd.subcommands && cmd.subcommands.length > 0) {
      const name = rest[0]!;
      if (name === "help" || name === "h") {
        write(await usage(chain, versionInfo().version, tty));
        return 0;
      }
      const sub = findSubcommand(cmd, name);
      if (!sub) throw new UsageError(`command ${JSON.stringify(name)} not supported`);
      chain.push(sub);
      const parsed = parseFlags(rest.slice(1), sub.flags, (sub.subcommands ?? []).length > 0);
      if (parsed.values.help === true) {
        write(await usage(chain, undefined, tty));
        return 0;
      }
      flags = { ...flags, ...parsed.values };
      rest = parsed.rest;
      cmd = sub;
    }
    if (cmd === root && rest.length > 0) throw new UsageError(`command ${JSON.stringify(rest[0])} not supported`);
    if (!cmd.run) {
      // A command group (e.g. `crio status`) without its subcommand.
      if (rest.length > 0) throw new UsageError(`command ${JSON.stringify(rest[0])} not supported`);
      throw new UsageError(`${chain.map((c) => c.name).join(" ")} needs a subcommand`);
    }
    if (!cmd.positionals && rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    return await cmd.run({ global, flags, args: rest, path: chain.map((c) => c.name) });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${await usage(chain, undefined, false)}\nIncorrect Usage: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`crio: invalid configuration: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`crio: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
