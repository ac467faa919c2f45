// A strict flag parser: every flag must be declared, so a typo is a usage error (exit 2) rather
// than silently ignored. Accepts `--name value`, `--name=value`, `-n value`, `-n=value`,
// boolean `--name` / `--name=true|false`, repeated string-list flags, and `--` to end flags.
// Parsing stops at the first positional argument (the subcommand), as urfave/cli does for CRI-O.
import { UsageError } from "../errors.ts";

export type FlagKind = "bool" | "string" | "string[]";

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  /** One-letter (or short) aliases without dashes. */
  aliases?: readonly string[];
  kind: FlagKind;
}

export type FlagValues = Record<string, string | boolean | string[]>;

export interface ParsedFlags {
  values: FlagValues;
  /** Arguments after the flags: the subcommand and its own arguments. */
  rest: string[];
}

const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, "1": true, "0": false, t: true, f: false };

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], stopAtPositional = true): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    for (const a of s.aliases ?? []) byName.set(a, s);
  }
  const values: FlagValues = {};
  const positionals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (stopAtPositional) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(arg);
      i++;
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`flag provided but not defined: ${arg.split("=")[0]}`);
    i++;
    if (spec.kind === "bool") {
      if (inline === undefined) values[spec.name] = true;
      else {
        const b = BOOL_WORDS[inline.toLowerCase()];
        if (b === undefined) throw new UsageError(`invalid boolean value ${JSON.stringify(inline)} for flag -${name.length > 1 ? "-" : ""}${name}`);
        values[spec.name] = b;
      }
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i >= argv.length) throw new UsageError(`flag needs an argument: ${arg}`);
      value = argv[i++]!;
    }
    if (spec.kind === "string[]") {
      const prev = values[spec.name];
      values[spec.name] = Array.isArray(prev) ? [...prev, value] : [value];
    } else {
      values[spec.name] = value;
    }
  }
  return { values, rest: positionals };
}
