// process.args, process.env and process.rlimits.
import { InvalidArgumentError } from "../errors.ts";
import type { KeyValue } from "../proto/runtime-v1.ts";
import type { ImageConfig, OciRlimit } from "./types.ts";

/** The PATH runtime-tools' generator starts every spec with; an image or request PATH replaces it. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The container's argv, merged as Docker and kubelet define it (CRI-O buildOCIProcessArgs):
 * - command given: command + args; the image's Entrypoint and Cmd are both ignored;
 * - only args given: image Entrypoint + args (args replace Cmd);
 * - neither: image Entrypoint + Cmd.
 */
export function processArgs(
  imageConfig: ImageConfig | undefined,
  cri: { command?: readonly string[]; args?: readonly string[] },
): string[] {
  let command = [...(cri.command ?? [])];
  let args = [...(cri.args ?? [])];
  if (command.length === 0) {
    if (args.length === 0) args = [...(imageConfig?.Cmd ?? [])];
    command = [...(imageConfig?.Entrypoint ?? [])];
  }
  const argv = [...command, ...args];
  if (argv.length === 0) {
    throw new InvalidArgumentError("no command specified: neither the request nor the image gives one");
  }
  return argv;
}

/** Extra variables the runtime itself sets before the configured and requested ones. */
export interface EnvExtras {
  /** HOSTNAME=<sandbox hostname> (CRI-O sets it for every container). */
  hostname?: string;
  /** TERM=xterm when the container has a terminal. */
  tty?: boolean;
}

/**
 * process.env. Keys are unique; setting an existing key replaces its value where it stands,
 * as runtime-tools' AddProcessEnv does. CRI-O's sequence, reproduced here:
 *   PATH (generator default) → TERM=xterm (tty) → HOSTNAME → default_env → request envs →
 *   image envs whose key the request does not set.
 * So the request beats the image, the image beats default_env, default_env beats HOSTNAME,
 * and the image's (or the request's) PATH replaces the default PATH.
 */
export function env(
  imageEnv: readonly string[] | undefined,
  defaultEnv: readonly string[],
  criEnvs: readonly KeyValue[],
  extras: EnvExtras = {},
): string[] {
  const vars = new Map<string, string>();
  vars.set("PATH", DEFAULT_PATH);
  if (extras.tty) vars.set("TERM", "xterm");
  if (extras.hostname !== undefined && extras.hostname !== "") vars.set("HOSTNAME", extras.hostname);
  for (const entry of defaultEnv) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`invalid default_env entry ${JSON.stringify(entry)}: want KEY=VALUE`);
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const requested = new Set<string>();
  for (const kv of criEnvs) {
    if (kv.key === "") continue; // CRI-O skips empty keys
    vars.set(kv.key, kv.value);
    requested.add(kv.key);
  }
  for (const entry of imageEnv ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue; // malformed image entries are skipped, as CRI-O does
    const key = entry.slice(0, eq);
    if (requested.has(key)) continue;
    vars.set(key, entry.slice(eq + 1));
  }
  return [...vars].map(([k, v]) => `${k}=${v}`);
}

/** The working directory: the request's, else the image's, else "/". */
export function workingDir(imageConfig: ImageConfig | undefined, criWorkingDir: string | undefined): string {
  if (criWorkingDir) return criWorkingDir;
  if (imageConfig?.WorkingDir) return imageConfig.WorkingDir;
  return "/";
}

/** Resource names setrlimit(2) knows, as go-units ParseUlimit accepts them. */
const RLIMIT_NAMES: ReadonlySet<string> = new Set([
  "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
  "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
]);

function parseLimitValue(text: string, entry: string): number {
  if (!/^\d+$/.test(text)) {
    throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: ${JSON.stringify(text)} is not a non-negative integer`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: ${text} is too large`);
  return n;
}

/**
 * One default_ulimits entry, "name=soft[:hard]" ("nofile=1024:2048"; "nofile=1024" means
 * soft = hard), as docker/go-units ParseUlimit reads it. Errors name the entry.
 */
export function parseUlimit(entry: string): OciRlimit {
  const eq = entry.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: want name=soft[:hard]`);
  const name = entry.slice(0, eq).trim().toLowerCase();
  if (!RLIMIT_NAMES.has(name)) throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: unknown resource ${JSON.stringify(name)}`);
  const parts = entry.slice(eq + 1).split(":");
  if (parts.length > 2) throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: too many ':'`);
  const soft = parseLimitValue(parts[0]!.trim(), entry);
  const hard = parts.length === 2 ? parseLimitValue(parts[1]!.trim(), entry) : soft;
  if (soft > hard) {
    throw new InvalidArgumentError(`invalid ulimit ${JSON.stringify(entry)}: soft limit ${soft} is greater than hard limit ${hard}`);
  }
  return { type: `RLIMIT_${name.toUpperCase()}`, hard, soft };
}

/**
 * process.rlimits from default_ulimits. CRI-O clears runtime-tools' default RLIMIT_NOFILE and
 * sets only the configured ones; a later entry for the same resource replaces an earlier one.
 */
export function rlimits(defaultUlimits: readonly string[]): OciRlimit[] {
  const byType = new Map<string, OciRlimit>();
  for (const entry of defaultUlimits) {
    const r = parseUlimit(entry);
    byType.set(r.type, r);
  }
  return [...byType.values()];
}
