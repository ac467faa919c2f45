// conmon command lines, as CRI-O builds them (internal/oci/runtime_oci.go CreateContainer and
// ExecSyncContainer). Pure functions so the argument lists are unit-tested without running conmon.
import { join } from "node:path";

export type CgroupManager = "cgroupfs" | "systemd";

export interface CreateArgsOptions {
  id: string;
  name: string;
  bundleDir: string;
  logPath: string;
  exitsDir: string;
  persistDir: string;
  runtimePath: string;
  runtimeRoot: string;
  attachSocketDir: string;
  cgroupManager: CgroupManager;
  logLevel?: string;
  logSizeMax?: number;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  noPivot?: boolean;
  noSyncLog?: boolean;
}

export function conmonPidFile(bundleDir: string): string {
  return join(bundleDir, "conmon-pidfile");
}

export function containerPidFile(bundleDir: string): string {
  return join(bundleDir, "pidfile");
}

export function createArgs(o: CreateArgsOptions): string[] {
  const args = [
    "-b", o.bundleDir,
    "-c", o.id,
    "--exit-dir", o.exitsDir,
    "-l", o.logPath,
    "--log-level", o.logLevel ?? "info",
    "-n", o.name,
    "-P", conmonPidFile(o.bundleDir),
    "-p", containerPidFile(o.bundleDir),
    "--persist-dir", o.persistDir,
    "-r", o.runtimePath,
    "--runtime-arg", `--root=${o.runtimeRoot}`,
    "--socket-dir-path", o.attachSocketDir,
    "--syslog",
    "-u", o.id,
  ];
  if (o.cgroupManager === "systemd") args.push("-s");
  if (o.logSizeMax !== undefined && o.logSizeMax >= 0) args.push("--log-size-max", String(o.logSizeMax));
  if (o.noSyncLog) args.push("--no-sync-log");
  if (o.noPivot) args.push("--no-pivot");
  if (o.terminal) {
    args.push("-t");
  } else if (o.stdin) {
    args.push("-i");
    if (!o.stdinOnce) args.push("--leave-stdin-open");
  }
  return args;
}

export interface ExecArgsOptions {
  id: string;
  name: string;
  runtimePath: string;
  runtimeRoot: string;
  pidFile: string;
  logPath: string;
  attachSocketDir: string;
  processSpecPath: string;
  cgroupManager: CgroupManager;
  timeoutSec?: number;
  terminal?: boolean;
  logLevel?: string;
}

export function execSyncArgs(o: ExecArgsOptions): string[] {
  const args = [
    "-c", o.id,
    "-n", o.name,
    "-r", o.runtimePath,
    "-p", o.pidFile,
    "-e",
    "-l", o.logPath,
    "--socket-dir-path", o.attachSocketDir,
    "--log-level", o.logLevel ?? "info",
    // conmon >= 2.0.x: keep the main process as the runtime's parent, so waiting for it waits
    // for the exec; and cap the exec log like CRI-O does (16 MiB).
    "--sync",
    "--log-global-size-max", "16777216",
  ];
  if (o.terminal) args.push("-t");
  if (o.timeoutSec !== undefined && o.timeoutSec > 0) args.push("-T", String(o.timeoutSec));
  if (o.cgroupManager === "systemd") args.push("-s");
  args.push("--exec-process-spec", o.processSpecPath, "--runtime-arg", `--root=${o.runtimeRoot}`);
  return args;
}

/** The environment CRI-O gives conmon: monitor_env, then its own variables, fds 3 and 4. */
export function conmonEnv(monitorEnv: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of monitorEnv) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  env.CRI_O_EXTERNAL = "1";
  env.PATH ??= process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (process.env.XDG_RUNTIME_DIR !== undefined) env.XDG_RUNTIME_DIR = process.env.XDG_RUNTIME_DIR;
  env._OCI_SYNCPIPE = "3";
  env._OCI_STARTPIPE = "4";
  return env;
}
