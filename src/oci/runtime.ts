// One runtime handler (runc, crun, any runc-compatible CLI) driven through conmon, as CRI-O's
// runtime_oci.go does. The class holds no per-container memory: everything it needs after
// create lives on disk (runtime state under runtimeRoot, conmon's pid and exit files), so a
// new instance after a daemon restart manages containers an earlier one created.
import { closeSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketpair } from "../sys/proc.ts";
import {
  conmonEnv, conmonPidFile, createArgs, execSyncArgs, type CgroupManager,
} from "./conmon-args.ts";
import { splitCriLogBytes } from "./cri-log.ts";
import { SyncPipeReader } from "./sync-pipe.ts";

/** A failure of conmon or the OCI runtime; `stderr` holds what the tool printed. */
export class OciError extends Error {
  constructor(message: string, readonly stderr = "") {
    super(stderr.trim() ? `${message}: ${stderr.trim()}` : message);
    this.name = "OciError";
  }
}

export interface RuntimeHandlerConfig {
  /** The handler's name in crio.conf ([crio.runtime.runtimes.<name>]). */
  name: string;
  runtimePath: string;
  runtimeRoot: string;
  monitorPath: string;
  monitorEnv?: string[];
  attachSocketDir: string;
  cgroupManager: CgroupManager;
  logLevel?: string;
  logSizeMax?: number;
  noPivot?: boolean;
}

export interface CreateContainerOptions {
  id: string;
  name: string;
  /** The OCI bundle (config.json + rootfs); conmon's cwd and where it puts its pid files. */
  bundleDir: string;
  logPath: string;
  exitsDir: string;
  persistDir: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** container_create_timeout: how long to wait for conmon to report the container's pid. */
  timeoutMs?: number;
  /**
   * Called with the daemonized conmon's pid while the runtime creates the container (CRI-O
   * moves conmon into its cgroup, `crio-conmon-<id>` or a systemd scope). The create fails if
   * it fails. Left to the cgroup manager.
   */
  moveMonitor?: (monitorPid: number) => Promise<void> | void;
}

export interface RuntimeState {
  ociVersion?: string;
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "stopped" | "paused" | string;
  bundle: string;
  rootfs?: string;
  created?: string;
  annotations?: Record<string, string>;
}

export interface ExecSyncResult {
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** −1 when the command timed out (CRI-O's ExecSync answer). */
  exitCode: number;
}

const TIMED_OUT_MESSAGE = "command timed out";

export class OciRuntime {
  constructor(readonly config: RuntimeHandlerConfig) {}

  /** `runtime create` through conmon; resolves once the container exists (not yet started). */
  async createContainer(o: CreateContainerOptions): Promise<{ pid: number; monitorPid: number }> {
    const c = this.config;
    const args = createArgs({
      ...o,
      runtimePath: c.runtimePath,
      runtimeRoot: c.runtimeRoot,
      attachSocketDir: c.attachSocketDir,
      cgroupManager: c.cgroupManager,
      logLevel: c.logLevel,
      logSizeMax: c.logSizeMax,
      noPivot: c.noPivot,
    });
    const deadline = Date.now() + (o.timeoutMs ?? 240_000);
    const m = spawnMonitor(c, args, o.bundleDir);
    const { proc, sync, stderr } = m;
    let placing: Promise<void> | undefined;
    try {
      release(m);
      // conmon double-forks: its first process exits once the monitor is daemonized and its pid
      // is in the pidfile.
      await waitExit(proc, deadline);
      const monitorPid = readPidFile(conmonPidFile(o.bundleDir));
      // The monitor goes into its cgroup while the runtime creates the container: the cgroup
      // migration (milliseconds on cgroup v1) overlaps `runtime create` instead of adding to it.
      // Only the short-lived `runtime create` child stays outside; the container's init is
      // placed by the runtime itself.
      if (monitorPid !== undefined) placing = Promise.resolve(o.moveMonitor?.(monitorPid));
      placing?.catch(() => {}); // awaited below; a rejection before then must not go unhandled
      const msg = await sync.next((m) => m.pid !== undefined || m.data !== undefined, deadline, "create result");
      await placing;
      const pid = msg?.pid ?? msg?.data;
      if (pid === undefined || pid < 0) {
        const why = msg?.message ?? `conmon exited without reporting a pid (exit status ${proc.exitCode})`;
        throw new OciError(`container create failed: ${why}`, stderr());
      }
      if (monitorPid === undefined) throw new OciError("conmon wrote no valid pidfile", stderr());
      return { pid, monitorPid };
    } catch (err) {
      await placing?.catch(() => {});
      if (proc.exitCode === null) proc.kill("SIGKILL");
      // CRI-O's cleanup on a failed create: delete whatever the runtime may have made.
      await this.runtimeCommand(["delete", "--force", o.id]).catch(() => {});
      killPidFile(conmonPidFile(o.bundleDir));
      rmSync(o.logPath, { force: true });
      throw err;
    } finally {
      sync.close();
    }
  }

  async startContainer(id: string): Promise<void> {
    await this.runtimeCommand(["start", id]);
  }

  /** `runtime kill [--all] <id> <signal>`; signal as a name ("TERM", "SIGKILL") or number. */
  async killContainer(id: string, signal: string | number, all = false): Promise<void> {
    await this.runtimeCommand(["kill", ...(all ? ["--all"] : []), id, String(signal)]);
  }

  async deleteContainer(id: string, force = false): Promise<void> {
    await this.runtimeCommand(["delete", ...(force ? ["--force"] : []), id]);
  }

  async state(id: string): Promise<RuntimeState> {
    const out = await this.runtimeCommand(["state", id]);
    return JSON.parse(out) as RuntimeState;
  }

  /**
   * Runs `cmd` in the container through `conmon -e` and returns its split output, read back
   * from the CRI-format log conmon writes. With timeoutSec > 0 conmon kills the process when it
   * runs longer and the result is exit code −1, as CRI-O reports it.
   */
  async execSync(id: string, cmd: string[], opts: { timeoutSec?: number; terminal?: boolean; bundleDir?: string } = {}): Promise<ExecSyncResult> {
    // The caller usually knows the bundle; asking the runtime costs a process.
    const bundle = opts.bundleDir ?? (await this.state(id)).bundle;
    const spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8")) as { process?: Record<string, unknown> };
    const dir = mkdtempSync(join(tmpdir(), "crio-exec-"));
    try {
      const processSpecPath = join(dir, "exec-process.json");
      writeFileSync(processSpecPath, JSON.stringify({ ...spec.process, args: cmd, terminal: opts.terminal ?? false }));
      const logPath = join(dir, "exec.log");
      const c = this.config;
      const args = execSyncArgs({
        id, name: id, runtimePath: c.runtimePath, runtimeRoot: c.runtimeRoot,
        pidFile: join(dir, "exec-pid"), logPath, attachSocketDir: c.attachSocketDir,
        processSpecPath, cgroupManager: c.cgroupManager, timeoutSec: opts.timeoutSec,
        terminal: opts.terminal, logLevel: c.logLevel,
      });
      const timeoutSec = opts.timeoutSec ?? 0;
      // conmon enforces the timeout itself (-T); ours is only a backstop against a hung conmon.
      const deadline = timeoutSec > 0 ? Date.now() + (timeoutSec + 30) * 1000 : Number.POSITIVE_INFINITY;
      const m = spawnMonitor(c, args, undefined);
      const { proc, sync, stderr } = m;
      try {
        // With --sync conmon forks once and its process lives until the exec is done, so the
        // result is read first and the exit awaited after.
        release(m);
        const msg = await sync.next((m) => m.exit_code !== undefined || m.data !== undefined, deadline, "exec result")
          .catch((e: unknown) => { proc.kill("SIGKILL"); throw e; });
        const log = existsSync(logPath) ? splitCriLogBytes(readFileSync(logPath)) : { stdout: new Uint8Array(0), stderr: new Uint8Array(0) };
        await waitExit(proc, deadline).catch(() => proc.kill("SIGKILL"));
        if (!msg) throw new OciError(`exec in ${id} failed: conmon reported no exit code`, stderr());
        const code = msg.exit_code ?? msg.data ?? -1;
        if (code === -1 && msg.message?.includes(TIMED_OUT_MESSAGE)) {
          return { stdout: log.stdout, stderr: log.stderr.length > 0 ? log.stderr : new TextEncoder().encode(TIMED_OUT_MESSAGE), exitCode: -1 };
        }
        if (code < 0) throw new OciError(`exec in ${id} failed: ${msg.message ?? "unknown error"}`, stderr());
        return { ...log, exitCode: code };
      } finally {
        sync.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** `<runtime> --root <root> [--systemd-cgroup] <args…>`; resolves with stdout. */
  async runtimeCommand(args: string[], timeoutMs = 60_000): Promise<string> {
    const c = this.config;
    const argv = [c.runtimePath, "--root", c.runtimeRoot, ...(c.cgroupManager === "systemd" ? ["--systemd-cgroup"] : []), ...args];
    let proc;
    try {
      proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
    } catch (e) {
      throw new OciError(`cannot run runtime ${c.runtimePath}: ${(e as Error).message}`);
    }
    const [out, err, status] = await Promise.all([
      new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited,
    ]);
    if (status !== 0) throw new OciError(`${c.runtimePath} ${args.join(" ")} failed (exit status ${status})`, err);
    return out;
  }

}

/** Starts conmon with the child ends of the sync and start socketpairs as fds 3 and 4. */
function spawnMonitor(c: RuntimeHandlerConfig, args: string[], cwd: string | undefined) {
  {
    const [syncParent, syncChild] = socketpair();
    const [startParent, startChild] = socketpair();
    let proc;
    try {
      proc = Bun.spawn([c.monitorPath, ...args], {
        cwd,
        env: conmonEnv(c.monitorEnv ?? []),
        // Bun dup2s extra numeric stdio entries onto fds 3, 4, … in the child (and clears
        // their close-on-exec flag there): _OCI_SYNCPIPE=3, _OCI_STARTPIPE=4.
        stdio: ["ignore", "pipe", "pipe", syncChild, startChild],
      });
    } catch (e) {
      for (const fd of [syncParent, startParent]) closeSync(fd);
      throw new OciError(`cannot run conmon ${c.monitorPath}: ${(e as Error).message}`);
    } finally {
      closeSync(syncChild);
      closeSync(startChild);
    }
    // conmon's stdout and stderr: collected in the background, never awaited to EOF (a forked
    // conmon might hold them open).
    let errText = "";
    const collect = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const chunk of s) errText += dec.decode(chunk, { stream: true });
    };
    void collect(proc.stdout).catch(() => {});
    void collect(proc.stderr).catch(() => {});
    const sync = new SyncPipeReader(syncParent);
    // conmon's own debug and info lines are noise in an error message.
    const stderr = () => errText.split("\n").filter((l) => !/^\[conmon:[di]\]/.test(l)).join("\n");
    return { proc, sync, startFd: startParent, stderr };
  }
}

type Monitor = ReturnType<typeof spawnMonitor>;

/** Sends conmon the go-ahead: one byte on the start pipe, then the pipe is closed. */
function release(m: Monitor): void {
  try {
    writeSync(m.startFd, Buffer.from([0]));
  } catch { /* conmon already gone: its exit status and the sync pipe tell why */ }
  closeSync(m.startFd);
}

async function waitExit(proc: Monitor["proc"], deadline: number): Promise<number> {
  const left = deadline - Date.now();
  if (!Number.isFinite(left)) return proc.exited;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OciError("timed out waiting for conmon to fork")), Math.max(0, left));
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function readPidFile(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function killPidFile(path: string): void {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    if (pid > 0) process.kill(pid, "SIGKILL");
  } catch { /* gone already */ }
}

