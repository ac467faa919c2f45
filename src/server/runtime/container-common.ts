// What the container RPCs share: the OCI runtime of a handler, exit bookkeeping (conmon's exit
// files), stop with escalation, removal, restore after a restart, and the CRI views of a record.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError } from "../../errors.ts";
import { log } from "../../log.ts";
import { crioMetrics } from "../../metrics/crio.ts";
import { ExitWatcher, OciRuntime, readExitFile, readExitStatus, type ContainerExit } from "../../oci/index.ts";
import {
  ContainerEventType,
  ContainerState,
  type Container as CriContainer,
  type ContainerStatus,
  type LinuxContainerResources,
  type Mount,
} from "../../proto/index.ts";
import { criSignal } from "../../spec/index.ts";
import { containerState, type ContainerIndex, type ContainerRecord, type StoredResources } from "../../state/containers.ts";
import type { Container as StorageContainer } from "../../storage/index.ts";
import type { ServerContext } from "../context.ts";
import type { ContainerInfo } from "../http.ts";

// ---- the runtime of a handler ----

const runtimes = new Map<string, OciRuntime>();

/** The OciRuntime of a runtime handler under the current configuration (cached per settings). */
export function ociFor(ctx: ServerContext, handler: string): OciRuntime {
  const cfg = ctx.config;
  const h = cfg.runtime.runtimes[handler];
  if (h === undefined) throw new InvalidArgumentError(`runtime handler ${JSON.stringify(handler)} is not configured`);
  if (h.runtime_type !== "oci" && h.runtime_type !== "") {
    throw new InvalidArgumentError(`runtime handler ${JSON.stringify(handler)} has runtime_type ${JSON.stringify(h.runtime_type)}; only "oci" is supported`);
  }
  const runtimePath = h.runtime_path !== "" ? h.runtime_path : Bun.which(handler) ?? "";
  if (runtimePath === "") throw new FailedPreconditionError(`runtime handler ${JSON.stringify(handler)}: no runtime_path set and ${JSON.stringify(handler)} is not in $PATH`);
  const monitorPath = h.monitor_path !== "" ? h.monitor_path : Bun.which("conmon") ?? "";
  if (monitorPath === "") throw new FailedPreconditionError("conmon is not in $PATH and monitor_path is not set (Debian package: conmon)");
  const settings = {
    name: handler,
    runtimePath,
    runtimeRoot: h.runtime_root !== "" ? h.runtime_root : `/run/${handler}`,
    monitorPath,
    monitorEnv: h.monitor_env,
    attachSocketDir: cfg.runtime.container_attach_socket_dir,
    cgroupManager: cfg.runtime.cgroup_manager === "systemd" ? "systemd" as const : "cgroupfs" as const,
    logLevel: conmonLogLevel(cfg.runtime.log_level),
    logSizeMax: cfg.runtime.log_size_max,
    noPivot: cfg.runtime.no_pivot,
  };
  const key = JSON.stringify(settings);
  let rt = runtimes.get(key);
  if (rt === undefined) {
    rt = new OciRuntime(settings);
    runtimes.set(key, rt);
  }
  return rt;
}

function conmonLogLevel(level: string): string {
  return ["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"].includes(level) ? (level === "warning" ? "warn" : level) : "info";
}

/** monitor_cgroup for the cgroup manager in use: the built-in "system.slice" means "pod" under cgroupfs. */
export function monitorCgroupOf(ctx: ServerContext, handler: string): string {
  const m = ctx.config.runtime.runtimes[handler]?.monitor_cgroup ?? "";
  if (ctx.config.runtime.cgroup_manager !== "systemd" && m === "system.slice") return "pod";
  return m;
}

// ---- exits ----

/**
 * Watches container_exits_dir and records exits in the container records; StopContainer waits
 * on it. Exits of unknown IDs (a removed container) are ignored.
 */
export class ContainerExits {
  private watcher: ExitWatcher | undefined;
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Called once per container exit recorded (the STOPPED event). */
  onExit?: (rec: ContainerRecord) => void;

  constructor(private readonly containers: ContainerIndex, readonly exitsDir: string) {}

  start(attachSocketDir?: string): void {
    mkdirSync(this.exitsDir, { recursive: true, mode: 0o700 });
    // conmon makes the attach sockets there and fails silently without it.
    if (attachSocketDir) mkdirSync(attachSocketDir, { recursive: true, mode: 0o700 });
    this.watcher = new ExitWatcher(this.exitsDir, (e) => void this.record(e));
    this.watcher.start();
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Applies an exit to its record (once) and wakes waiters. */
  async record(e: ContainerExit): Promise<void> {
    const rec = this.containers.find(e.id.length === 64 ? e.id : "");
    if (rec === undefined || rec.id !== e.id) return;
    if (rec.finishedNs === undefined) {
      markExited(rec, e.exitCode, e.finishedAt);
      await this.containers.persist(rec).catch((err: unknown) => log.error("cannot save a container's exit", { id: rec.id, error: err }));
      log.info("Container exited", { id: rec.id, name: rec.name, exitCode: rec.exitCode, oomKilled: rec.oomKilled });
      this.onExit?.(rec);
    }
    for (const w of this.waiters.get(rec.id) ?? []) w();
    this.waiters.delete(rec.id);
  }

  /** Looks for the exit file now (the watcher may not have seen it yet). */
  async poll(rec: ContainerRecord): Promise<boolean> {
    if (rec.finishedNs !== undefined) return true;
    const e = readExitFile(join(this.exitsDir, rec.id)) ?? readExitFile(join(rec.persistDir, "exit"));
    if (e) await this.record({ id: rec.id, ...e });
    return rec.finishedNs !== undefined;
  }

  /** Resolves true once the container has exited, false after timeoutMs. */
  async wait(rec: ContainerRecord, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.poll(rec)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(t);
          resolve();
        }
        const list = this.waiters.get(rec.id) ?? [];
        list.push(done);
        this.waiters.set(rec.id, list);
      });
    }
  }

  /** Removes the exit file of a removed container so a new container may reuse nothing stale. */
  forget(id: string): void {
    rmSync(join(this.exitsDir, id), { force: true });
    this.watcher?.forget(id);
    this.waiters.delete(id);
  }
}

export function markExited(rec: ContainerRecord, exitCode: number, finishedAt: Date): void {
  const st = readExitStatus(rec.persistDir, rec.bundleDir);
  rec.exitCode = exitCode;
  rec.oomKilled = st.oomKilled;
  if (rec.oomKilled) crioMetrics.recordOom(rec.name);
  // The exit file's ctime can precede the start time taken after `runtime start` returned.
  const finished = BigInt(finishedAt.getTime()) * 1_000_000n;
  const started = rec.startedNs !== undefined ? BigInt(rec.startedNs) : 0n;
  rec.finishedNs = (finished > started ? finished : started).toString();
  rec.pid = undefined;
}

// ---- stop and remove ----

/** How long to wait for an exit after SIGKILL before giving up. */
const KILL_WAIT_MS = 30_000;

/**
 * StopContainer (the caller holds the container's lock): the stop signal, then SIGKILL after
 * `timeoutSec` (at once when 0). Idempotent: a container that already exited is left as it is.
 */
export async function stopContainer(ctx: ServerContext, rec: ContainerRecord, timeoutSec: number): Promise<void> {
  const exits = ctx.exits;
  if (await exits.poll(rec)) return;
  const oci = ociFor(ctx, rec.runtimeHandler);
  if (timeoutSec > 0) {
    await signal(ctx, oci, rec, rec.stopSignal);
    if (await exits.wait(rec, timeoutSec * 1000)) return;
    log.info("Stopping container with SIGKILL: the stop timeout elapsed", { id: rec.id, timeout: timeoutSec });
  }
  // Without a PID namespace of its own (pod-level, node or target sharing) the init's death does
  // not take the container's other processes (execs, daemons) with it: SIGKILL them all, as CRI-O.
  await signal(ctx, oci, rec, 9, rec.sharedPidNamespace === true);
  if (await exits.wait(rec, KILL_WAIT_MS)) return;
  throw new DeadlineExceededError(`container ${rec.id} did not exit within ${KILL_WAIT_MS / 1000}s of SIGKILL`);
}

async function signal(ctx: ServerContext, oci: OciRuntime, rec: ContainerRecord, sig: number, all = false): Promise<void> {
  try {
    await oci.killContainer(rec.id, sig, all);
  } catch (err) {
    // Not running any more (it exited between the check and the kill): the exit file is on its way.
    if (await ctx.exits.wait(rec, 2_000)) return;
    const st = await oci.state(rec.id).catch(() => undefined);
    if (st === undefined || st.status === "stopped") {
      // The runtime has no running container and conmon wrote no exit: conmon is gone too.
      markExited(rec, 255, new Date());
      await ctx.containers.persist(rec);
      log.warn("container is not running and left no exit status; reporting exit code 255", { id: rec.id });
      return;
    }
    throw err;
  }
}

/**
 * RemoveContainer (the caller holds the lock): force-stop, the runtime's state, the monitor
 * cgroup, the rootfs mount, the exit file, the storage container (with bundle and userdata).
 */
export async function removeContainer(ctx: ServerContext, rec: ContainerRecord): Promise<void> {
  if (containerState(rec) !== "EXITED") await stopContainer(ctx, rec, 0);
  const oci = ociFor(ctx, rec.runtimeHandler);
  await oci.deleteContainer(rec.id, true).catch((err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    if (!/does not exist|not exist|no such/i.test(msg)) log.warn("runtime delete failed", { id: rec.id, error: msg });
  });
  await waitMonitorGone(rec);
  await releaseMonitorCgroup(ctx, rec);
  await ctx.store.unmount(rec.id, true).catch(() => {});
  ctx.exits.forget(rec.id);
  if ((await ctx.store.container(rec.id)) !== undefined) await ctx.store.deleteContainer(rec.id);
  ctx.containers.delete(rec.id);
  ctx.events.emit(rec.id, ContainerEventType.CONTAINER_DELETED_EVENT, rec.sandboxId);
  log.info("Removed container", { id: rec.id, name: rec.name });
}

/** conmon exits by itself after the container; make sure (it holds the log and the attach socket). */
export async function waitMonitorGone(rec: { monitorPid?: number }): Promise<void> {
  const pid = rec.monitorPid;
  if (pid === undefined || pid <= 0) return;
  const isConmon = () => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("conmon");
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 40 && isConmon(); i++) await Bun.sleep(25);
  if (isConmon()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

export async function releaseMonitorCgroup(ctx: ServerContext, rec: { id: string; runtimeHandler: string; cgroupParent: string }): Promise<void> {
  try {
    const cg = ctx.cgroups();
    const m = { containerId: rec.id, cgroupParent: rec.cgroupParent, monitorCgroup: monitorCgroupOf(ctx, rec.runtimeHandler) };
    if (cg.name === "cgroupfs") await cg.removeMonitorCgroup(m);
  } catch (err) {
    log.warn("monitor cgroup not removed", { id: rec.id, error: err instanceof Error ? err.message : String(err) });
  }
}

// ---- restore ----

/**
 * After the sandboxes: loads the containers, drops half-made ones, and brings each record up to
 * date with what happened while no daemon ran (exit files, the runtime's state).
 */
export async function restoreContainers(ctx: ServerContext): Promise<number> {
  const recs = await ctx.containers.restore(
    (podId) => ctx.sandboxes.find(podId)?.id === podId,
    (c) => dropHalfMade(ctx, c),
  );
  for (const rec of recs) {
    if (rec.finishedNs !== undefined) continue;
    if (await ctx.exits.poll(rec)) continue;
    let st;
    try {
      st = await ociFor(ctx, rec.runtimeHandler).state(rec.id);
    } catch (err) {
      log.warn("container is unknown to its runtime after restart; marking it exited", { id: rec.id, error: err instanceof Error ? err.message : String(err) });
    }
    if (st === undefined || st.status === "stopped") {
      markExited(rec, 255, new Date());
      await ctx.containers.persist(rec);
    } else if (st.status === "running" && !rec.started) {
      // The daemon died between the runtime's start and the record.
      rec.started = true;
      rec.startedNs = (BigInt(Date.now()) * 1_000_000n).toString();
      await ctx.containers.persist(rec);
    }
  }
  return recs.length;
}

async function dropHalfMade(ctx: ServerContext, c: StorageContainer): Promise<void> {
  let handler = ctx.config.runtime.default_runtime;
  let cgroupsPath: string | undefined;
  try {
    const spec = JSON.parse(readFileSync(join(await ctx.store.containerDirectory(c.id), "config.json"), "utf8")) as {
      annotations?: Record<string, string>;
      linux?: { cgroupsPath?: string };
    };
    handler = spec.annotations?.["io.kubernetes.cri-o.RuntimeHandler"] || handler;
    cgroupsPath = spec.linux?.cgroupsPath;
  } catch { /* no spec written yet: nothing was given to the runtime */ }
  try {
    await ociFor(ctx, handler).deleteContainer(c.id, true);
  } catch { /* the runtime never had it */ }
  const bundle = join(await ctx.store.containerRunDirectory(c.id));
  const pidFile = join(bundle, "conmon-pidfile");
  if (existsSync(pidFile)) {
    const pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
    await waitMonitorGone({ monitorPid: pid });
  }
  // conmon's own cgroup (cgroupfs: <parent>/crio-conmon-<id> beside <parent>/crio-<id>).
  if (cgroupsPath !== undefined && ctx.cgroups().name === "cgroupfs" && cgroupsPath.endsWith(`/crio-${c.id}`)) {
    await releaseMonitorCgroup(ctx, { id: c.id, runtimeHandler: handler, cgroupParent: cgroupsPath.slice(0, -`/crio-${c.id}`.length) || "/" });
  }
  ctx.exits.forget(c.id);
  await ctx.store.unmount(c.id, true).catch(() => {});
}

// ---- CRI views ----

function ns(s: string | undefined): bigint {
  return s === undefined ? 0n : BigInt(s);
}

const STATE: Record<ReturnType<typeof containerState>, ContainerState> = {
  CREATED: ContainerState.CONTAINER_CREATED,
  RUNNING: ContainerState.CONTAINER_RUNNING,
  EXITED: ContainerState.CONTAINER_EXITED,
};

export function criState(rec: ContainerRecord): ContainerState {
  return STATE[containerState(rec)];
}

function imageSpec(rec: ContainerRecord) {
  return {
    image: rec.image.image,
    annotations: { ...rec.image.annotations },
    userSpecifiedImage: rec.image.userSpecifiedImage,
    runtimeHandler: "",
    imageRef: rec.imageRef,
  };
}

export function toCriContainer(rec: ContainerRecord): CriContainer {
  return {
    id: rec.id,
    podSandboxId: rec.sandboxId,
    metadata: { ...rec.metadata },
    image: imageSpec(rec),
    imageRef: rec.imageRef,
    state: criState(rec),
    createdAt: ns(rec.createdNs),
    labels: { ...rec.labels },
    annotations: { ...rec.annotations },
    imageId: rec.imageId,
  };
}

export function toCriResources(r: StoredResources): LinuxContainerResources {
  return {
    cpuPeriod: BigInt(r.cpuPeriod),
    cpuQuota: BigInt(r.cpuQuota),
    cpuShares: BigInt(r.cpuShares),
    memoryLimitInBytes: BigInt(r.memoryLimitInBytes),
    oomScoreAdj: BigInt(r.oomScoreAdj),
    cpusetCpus: r.cpusetCpus,
    cpusetMems: r.cpusetMems,
    hugepageLimits: r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: BigInt(h.limit) })),
    unified: { ...r.unified },
    memorySwapLimitInBytes: BigInt(r.memorySwapLimitInBytes),
  };
}

export function toCriStatus(rec: ContainerRecord): ContainerStatus {
  const state = containerState(rec);
  let reason = "";
  let message = "";
  if (state === "EXITED") {
    if (rec.oomKilled) reason = "OOMKilled";
    else if (rec.exitCode === 0) reason = "Completed";
    else reason = "Error";
    if (rec.oomKilled) message = "the container was killed because it ran out of memory";
  }
  const mounts: Mount[] = rec.mounts.map((m) => ({
    containerPath: m.containerPath,
    hostPath: m.hostPath,
    readonly: m.readonly,
    selinuxRelabel: m.selinuxRelabel,
    propagation: m.propagation as Mount["propagation"],
    uidMappings: [],
    gidMappings: [],
    recursiveReadOnly: false,
    image: undefined,
    imageSubPath: "",
  }));
  return {
    id: rec.id,
    metadata: { ...rec.metadata },
    state: criState(rec),
    createdAt: ns(rec.createdNs),
    startedAt: ns(rec.startedNs),
    finishedAt: ns(rec.finishedNs),
    exitCode: state === "EXITED" ? (rec.exitCode ?? 0) : 0,
    image: imageSpec(rec),
    imageRef: rec.imageRef,
    reason,
    message,
    labels: { ...rec.labels },
    annotations: { ...rec.annotations },
    mounts,
    logPath: rec.logPath,
    resources: { linux: toCriResources(rec.resources), windows: undefined },
    imageId: rec.imageId,
    user: {
      linux: { uid: BigInt(rec.user.uid), gid: BigInt(rec.user.gid), supplementalGroups: rec.user.supplementalGroups.map((g) => BigInt(g)) },
    },
    stopSignal: criSignal(rec.stopSignal),
  };
}

// ---- the HTTP status API ----

/** GET /containers/:id (CRI-O's ContainerInfo); sandboxes answer too, as CRI-O's infra containers do. */
export function containerInfo(ctx: ServerContext, id: string): ContainerInfo | undefined {
  let rec: ContainerRecord | undefined;
  try {
    rec = ctx.containers.find(id);
  } catch {
    return undefined;
  }
  if (rec === undefined) return undefined;
  let specAnnotations: Record<string, string> = {};
  try {
    specAnnotations = (JSON.parse(readFileSync(join(rec.persistDir, "config.json"), "utf8")) as { annotations?: Record<string, string> }).annotations ?? {};
  } catch { /* removed meanwhile */ }
  const sb = ctx.sandboxes.find(rec.sandboxId);
  return {
    name: rec.name,
    pid: rec.finishedNs === undefined ? (rec.pid ?? 0) : 0,
    image: rec.imageName,
    image_ref: rec.imageRef,
    created_time: Number(BigInt(rec.createdNs)),
    labels: { ...rec.labels },
    annotations: { ...rec.annotations },
    crio_annotations: specAnnotations,
    log_path: rec.logPath,
    root: rec.mountPoint,
    sandbox: rec.sandboxId,
    ip_addresses: sb?.ips ?? [],
  };
}

/** GET /pause/:id and /unpause/:id: the runtime's pause and resume of a running container. */
export async function pauseContainer(ctx: ServerContext, id: string, pause: boolean): Promise<boolean> {
  const rec = ctx.containers.find(id);
  if (rec === undefined) return false;
  await ctx.containers.locks.run(rec.id, async () => {
    if (containerState(rec) !== "RUNNING") throw new FailedPreconditionError(`container ${rec.id} is not running`);
    await ociFor(ctx, rec.runtimeHandler).runtimeCommand([pause ? "pause" : "resume", rec.id]);
  });
  return true;
}
