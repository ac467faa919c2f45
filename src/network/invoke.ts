// Executing one CNI plugin (SPEC.md "Protocol parameters" and "Error"): the CNI_* environment,
// the configuration on stdin, the result or the error object on stdout, a deadline.
import { statSync } from "node:fs";
import { join } from "node:path";
import { DeadlineExceededError, FailedPreconditionError, InternalError } from "../errors.ts";
import { log } from "../log.ts";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

/** The spec's well-known error codes (SPEC.md "Error"), for messages. */
export const CNI_ERROR_CODES: Readonly<Record<number, string>> = {
  1: "incompatible CNI version",
  2: "unsupported field in network configuration",
  3: "container unknown or does not exist",
  4: "invalid necessary environment variables",
  5: "I/O failure",
  6: "failed to decode content",
  7: "invalid network config",
  11: "try again later",
  50: "plugin not available",
  51: "plugin not available, limited connectivity",
};

/** A plugin exited non-zero: carries the spec's error object it printed (or its stderr). */
export class CniPluginError extends InternalError {
  constructor(
    message: string,
    readonly plugin: string,
    readonly command: CniCommand,
    /** The error `code` the plugin reported, when it printed a CNI error object. */
    readonly cniCode: number | undefined,
    /** The plugin's own `msg`. */
    readonly pluginMessage: string,
    readonly details: string | undefined,
  ) {
    super(message);
  }
}

/** How a plugin is described in errors, as libcni does: `type="bridge"`. */
export function describePlugin(type: string): string {
  return `plugin type=${JSON.stringify(type)}`;
}

/**
 * The first executable `<dir>/<type>` among `dirs` (libcni's FindInPath). Directories that do
 * not exist are skipped; when none holds the plugin the error names every directory searched.
 */
export function findPlugin(type: string, dirs: readonly string[]): string {
  if (type === "" || type.includes("/") || type === "." || type === "..") {
    throw new FailedPreconditionError(`invalid CNI plugin type ${JSON.stringify(type)}`);
  }
  const missing: string[] = [];
  for (const dir of dirs) {
    const candidate = join(dir, type);
    try {
      const st = statSync(candidate);
      if (st.isFile() && (st.mode & 0o111) !== 0) return candidate;
    } catch {
      try {
        statSync(dir);
      } catch {
        missing.push(dir);
      }
    }
  }
  const note = missing.length > 0 ? ` (missing directories: ${missing.join(", ")})` : "";
  throw new FailedPreconditionError(
    `failed to find CNI plugin ${JSON.stringify(type)} in plugin_dirs [${dirs.join(", ")}]${note}`,
  );
}

export interface ExecRequest {
  /** The plugin's type, for messages. */
  type: string;
  pluginPath: string;
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifName?: string;
  /** CNI_ARGS pairs, joined as `K=V;K=V`. */
  args?: readonly (readonly [string, string])[];
  /** CNI_PATH: where the plugin finds delegates (IPAM plugins). */
  cniPath: readonly string[];
  /** The network configuration, serialised as JSON onto stdin. */
  stdin: unknown;
  timeoutMs: number;
}

/**
 * Runs one plugin and returns its parsed stdout (undefined when it printed nothing, as DEL and
 * CHECK do). A non-zero exit becomes a CniPluginError with the plugin's message; running past
 * the deadline kills it and raises DeadlineExceededError.
 */
export async function execPlugin(req: ExecRequest): Promise<unknown> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, {
    CNI_COMMAND: req.command,
    CNI_CONTAINERID: req.containerId ?? "",
    CNI_NETNS: req.netns ?? "",
    CNI_IFNAME: req.ifName ?? "",
    CNI_ARGS: (req.args ?? []).map(([k, v]) => `${k}=${v}`).join(";"),
    CNI_PATH: req.cniPath.join(":"),
  });
  const input = new TextEncoder().encode(JSON.stringify(req.stdin));
  const started = performance.now();
  let proc;
  try {
    proc = Bun.spawn([req.pluginPath], { env, stdin: input, stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    throw new FailedPreconditionError(`${describePlugin(req.type)} could not be started (${req.pluginPath}): ${(err as Error).message}`, { cause: err });
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, req.timeoutMs);
  let stdout: string;
  let stderr: string;
  let exitCode: number;
  try {
    [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
  } finally {
    clearTimeout(timer);
  }
  const duration = `${(performance.now() - started).toFixed(1)}ms`;
  log.debug("CNI plugin invoked", { plugin: req.type, command: req.command, containerID: req.containerId, exitCode, duration });
  if (stderr.trim() !== "") log.debug("CNI plugin stderr", { plugin: req.type, command: req.command, stderr: stderr.trim() });
  if (timedOut) {
    throw new DeadlineExceededError(
      `${describePlugin(req.type)} timed out (${req.command.toLowerCase()}) after ${Math.round(req.timeoutMs / 1000)}s`,
    );
  }
  if (exitCode !== 0) throw pluginError(req, exitCode, stdout, stderr);
  if (stdout.trim() === "") return undefined;
  try {
    return JSON.parse(stdout);
  } catch {
    throw new CniPluginError(
      `${describePlugin(req.type)} failed (${req.command.toLowerCase()}): invalid JSON on stdout: ${truncate(stdout)}`,
      req.type,
      req.command,
      6,
      "invalid JSON on stdout",
      undefined,
    );
  }
}

function truncate(s: string, n = 512): string {
  const t = s.trim();
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

function pluginError(req: ExecRequest, exitCode: number, stdout: string, stderr: string): CniPluginError {
  let code: number | undefined;
  let msg = "";
  let details: string | undefined;
  try {
    const parsed = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof parsed.code === "number") code = parsed.code;
    if (typeof parsed.msg === "string") msg = parsed.msg;
    if (typeof parsed.details === "string" && parsed.details !== "") details = parsed.details;
  } catch {
    // Not a CNI error object: fall back to whatever the plugin wrote.
  }
  if (msg === "") {
    msg = truncate(stdout) || truncate(stderr) || `exit status ${exitCode}`;
    if (code !== undefined && CNI_ERROR_CODES[code]) msg = `${CNI_ERROR_CODES[code]} (${msg})`;
  }
  const text = details ? `${msg}; ${details}` : msg;
  return new CniPluginError(
    `${describePlugin(req.type)} failed (${req.command.toLowerCase()}): ${text}`,
    req.type,
    req.command,
    code,
    msg,
    details,
  );
}

// VERSION answers are cached per binary (path, size, mtime): readiness reloads ask again on every
// change to the config directory, and a plugin's supported versions only change with the binary.
const versionCache = new Map<string, string[]>();

/** The spec versions a plugin supports (the VERSION command). */
export async function pluginVersions(type: string, pluginPath: string, cniVersion: string, timeoutMs = 10_000): Promise<string[]> {
  let key = pluginPath;
  try {
    const st = statSync(pluginPath);
    key = `${pluginPath}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  } catch {
    // findPlugin just saw it; let execPlugin report whatever happened.
  }
  const cached = versionCache.get(key);
  if (cached) return cached;
  let out: unknown;
  try {
    out = await execPlugin({ type, pluginPath, command: "VERSION", cniPath: [], stdin: { cniVersion }, timeoutMs });
  } catch (err) {
    // Plugins older than spec 0.2.0 have no VERSION command (libcni's GetVersionInfo).
    if (!(err instanceof CniPluginError) || !err.pluginMessage.startsWith("unknown CNI_COMMAND")) throw err;
  }
  const supported = (out as { supportedVersions?: unknown } | undefined)?.supportedVersions;
  const versions = Array.isArray(supported) ? supported.filter((v): v is string => typeof v === "string") : ["0.1.0"];
  versionCache.set(key, versions);
  return versions;
}
