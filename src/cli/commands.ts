// The command tree of the `crio` executable, described once: dispatch, `--help` (rendered by
// citty), shell completions and the crio(8) man page all read it.
import type { ArgsDef, CommandDef } from "citty";
import type { FlagSpec, FlagValues } from "./args.ts";

export interface CliFlag extends FlagSpec {
  description: string;
  /** Shown in help; not applied by the parser (the config loader owns defaults). */
  default?: string;
  env?: string;
  hidden?: boolean;
  valueHint?: string;
}

export interface RunContext {
  /** Global flags given before the subcommand (the daemon's and config's flags). */
  global: FlagValues;
  flags: FlagValues;
  args: string[];
  /** The chain of command names, e.g. ["crio", "status", "info"]. */
  path: string[];
}

export interface Command {
  name: string;
  aliases?: readonly string[];
  description: string;
  hidden?: boolean;
  flags: readonly CliFlag[];
  /** Positional arguments, for help and completions. */
  positionals?: readonly { name: string; description: string; choices?: readonly string[] }[];
  subcommands?: readonly Command[];
  run?: (ctx: RunContext) => Promise<number>;
}

export const HELP_FLAG: CliFlag = { name: "help", aliases: ["h"], kind: "bool", description: "show help" };

export function findSubcommand(cmd: Command, name: string): Command | undefined {
  return cmd.subcommands?.find((c) => c.name === name || (c.aliases ?? []).includes(name));
}

type Citty = typeof import("citty");

function toCitty(citty: Citty, cmd: Command, version?: string): CommandDef {
  const args: ArgsDef = {};
  for (const f of cmd.flags) {
    if (f.hidden) continue;
    const desc = [f.description, f.env ? `[$${f.env}]` : "", f.default !== undefined && f.default !== "" ? `(default: ${f.default})` : ""]
      .filter(Boolean)
      .join(" ");
    args[f.name] =
      f.kind === "bool"
        ? { type: "boolean", description: desc, alias: [...(f.aliases ?? [])] }
        : { type: "string", description: desc, alias: [...(f.aliases ?? [])], valueHint: f.valueHint ?? "value" };
  }
  for (const p of cmd.positionals ?? []) args[p.name] = { type: "positional", description: p.description, required: false };
  const subCommands: Record<string, CommandDef> = {};
  for (const s of cmd.subcommands ?? []) if (!s.hidden) subCommands[s.name] = toCitty(citty, s);
  return citty.defineCommand({
    meta: { name: cmd.name, description: cmd.description, ...(version ? { version } : {}) },
    args,
    ...(Object.keys(subCommands).length > 0 ? { subCommands } : {}),
  });
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** Usage text of `cmd` under its parents (citty's renderer; colour only on a terminal). */
export async function usage(chain: readonly Command[], version?: string, tty = false): Promise<string> {
  // citty is loaded only when help is shown, not on the daemon's start-up path.
  const citty = await import("citty");
  const defs = chain.map((c, i) => toCitty(citty, c, i === 0 ? version : undefined));
  let parent: CommandDef | undefined;
  if (defs.length > 1) {
    // citty names the parent by its meta name only; give it the whole chain ("crio status").
    parent = citty.defineCommand({ meta: { name: chain.slice(0, -1).map((c) => c.name).join(" ") } });
  }
  const text = (await citty.renderUsage(defs[defs.length - 1]!, parent)).replace(/[ \t]+$/gm, "");
  return tty ? text : text.replace(ANSI, "");
}
