// The systemd manager: systemd owns the cgroup tree, so cgroups holding processes are units it
// creates on request: transient scopes (conmon's, and runc's for containers, which runc starts
// itself from a "slice:crio:<id>" cgroupsPath) inside slices (the kubelet's pod slices). Mirrors
// CRI-O internal/config/cgmgr/systemd_linux.go and utils.RunUnderSystemdScope.
//
// The one exception is CRI-O's too: the sandbox cgroup crio-<id> of a pod whose infra container
// was dropped holds no process, and systemd cannot make a scope without one (and a slice inside
// the pod slice could not carry the crio- prefix), so it is a plain directory below the slice.
import { InvalidArgumentError, InternalError } from "../errors.ts";
import { DBusConnectError, DBusError, Variant } from "./dbus.ts";
import { CgroupBusyError } from "./errors.ts";
import type { CgroupFs } from "./fs.ts";
import { normalizeCgroup } from "./fs.ts";
import { CRIO_PREFIX, MIN_MEMORY_LIMIT, validateMonitorCgroup, type CgroupManager, type MonitorRequest, type SandboxCgroup } from "./manager.ts";
import { systemdResourceProperties, type CgroupResources, type UnitProperty } from "./resources.ts";
import { DEFAULT_SLICE, expandSlice, isSystemdCgroupsPath, parseSystemdCgroupsPath, systemdCgroupsPathToPath, unitName } from "./slice.ts";
import { SystemdClient, type SystemdClientOptions, type SystemdEndpoint } from "./systemd1.ts";

/** SIGPIPE: conmon ignores it, so stopping conmon's scope at shutdown leaves the container to exit first. */
const SIGPIPE = 13;

export interface SystemdManagerOptions extends SystemdClientOptions {
  /** Where to reach systemd; defaultEndpoints() when unset. */
  endpoints?: SystemdEndpoint[];
  /** The unit conmon's scope is ordered after (CRI-O's service). */
  daemonUnit?: string;
}

export class SystemdManager implements CgroupManager {
  readonly name = "systemd" as const;
  readonly fs: CgroupFs;
  private readonly opts: SystemdManagerOptions;
  private client: Promise<SystemdClient> | undefined;

  constructor(fs: CgroupFs, opts: SystemdManagerOptions = {}) {
    this.fs = fs;
    this.opts = opts;
  }

  async check(): Promise<void> {
    await this.systemd();
  }

  sandboxCgroupPath(cgroupParent: string, sandboxId: string): SandboxCgroup {
    const parent = this.parent(cgroupParent);
    const limit = this.fs.memoryLimit(expandSlice(parent));
    if (limit !== undefined && limit !== 0 && limit < MIN_MEMORY_LIMIT) {
      throw new InvalidArgumentError(`pod set memory limit ${limit} too low; should be at least ${MIN_MEMORY_LIMIT}`);
    }
    return { parent, path: `${parent}:${CRIO_PREFIX}:${sandboxId}` };
  }

  containerCgroupPath(cgroupParent: string, containerId: string): string {
    return `${this.parent(cgroupParent)}:${CRIO_PREFIX}:${containerId}`;
  }

  monitorCgroupPath(m: MonitorRequest): string {
    const problem = validateMonitorCgroup("systemd", m.monitorCgroup);
    if (problem) throw new InvalidArgumentError(problem);
    const slice = m.monitorCgroup.endsWith(".slice") ? m.monitorCgroup : this.parent(m.cgroupParent);
    return `${slice}:${CRIO_PREFIX}-conmon:${m.containerId}`;
  }

  resolve(cgroupsPath: string): string {
    return isSystemdCgroupsPath(cgroupsPath) ? systemdCgroupsPathToPath(cgroupsPath) : normalizeCgroup(cgroupsPath);
  }

  async createSandboxCgroup(cgroupParent: string, sandboxId: string, resources?: CgroupResources): Promise<string> {
    const parent = this.sandboxCgroupPath(cgroupParent, sandboxId).parent;
    await this.ensureSlice(parent);
    const cgroup = this.sandboxCgroup(parent, sandboxId);
    this.fs.create(cgroup, { cpusetLoadBalance: false });
    if (resources) this.fs.apply(cgroup, resources);
    return cgroup;
  }

  async removeSandboxCgroup(cgroupParent: string, sandboxId: string): Promise<void> {
    await this.fs.remove(this.sandboxCgroup(this.parent(cgroupParent), sandboxId));
  }

  async placeMonitor(m: MonitorRequest & { pid: number; resources?: CgroupResources }): Promise<string> {
    const path = this.monitorCgroupPath(m);
    const parsed = parseSystemdCgroupsPath(path);
    await this.withSystemd(async (c) => {
      const version = await c.version();
      const extra: UnitProperty[] = [
        ["KillSignal", new Variant("i", SIGPIPE)],
        ["After", new Variant("as", [this.opts.daemonUnit ?? "crio.service"])],
      ];
      // CollectMode (systemd 236+) lets systemd forget a scope whose process is gone before it
      // could attach it; older systemd rejects the unknown property and with it the whole unit.
      if (version >= 236) extra.push(["CollectMode", new Variant("s", "inactive-or-failed")]);
      if (m.resources) extra.push(...systemdResourceProperties(m.resources, { unified: this.fs.unified, systemdVersion: version }));
      await this.startScope(c, unitName(parsed), parsed.slice, [m.pid], extra);
    });
    return systemdCgroupsPathToPath(path);
  }

  async removeMonitorCgroup(m: MonitorRequest): Promise<void> {
    const path = this.monitorCgroupPath(m);
    const cgroup = systemdCgroupsPathToPath(path);
    // The usual case: conmon exited and systemd already collected its scope.
    if (!this.fs.exists(cgroup)) return;
    const pids = this.fs.pids(cgroup);
    if (pids.length > 0) {
      const dir = this.fs.dirs(cgroup).find(({ dir: d }) => this.fs.ops.exists(d))?.dir ?? cgroup;
      throw new CgroupBusyError(cgroup, dir, pids);
    }
    // An empty scope that lingers (failed, or systemd older than CollectMode): stopping it kills nothing.
    const unit = unitName(parseSystemdCgroupsPath(path));
    await this.withSystemd(async (c) => {
      let job: string;
      try {
        job = await c.stopUnit(unit, "replace");
      } catch (err) {
        if (err instanceof DBusError && err.errorName === "org.freedesktop.systemd1.NoSuchUnit") return;
        throw err;
      }
      await this.finishJob(c, job, unit, "inactive");
    });
    await this.fs.remove(cgroup);
  }

  async moveProcess(pid: number, cgroupsPath: string): Promise<void> {
    if (!isSystemdCgroupsPath(cgroupsPath)) {
      const cgroup = normalizeCgroup(cgroupsPath);
      this.fs.create(cgroup);
      await this.fs.join(pid, cgroup);
      return;
    }
    const parsed = parseSystemdCgroupsPath(cgroupsPath);
    await this.withSystemd((c) => this.startScope(c, unitName(parsed), parsed.slice, [pid], []));
  }

  exists(cgroupsPath: string): boolean {
    return this.fs.exists(this.resolve(cgroupsPath));
  }

  pids(cgroupsPath: string): number[] {
    return this.fs.pids(this.resolve(cgroupsPath));
  }

  close(): void {
    const pending = this.client;
    this.client = undefined;
    pending?.then((c) => c.close()).catch(() => {});
  }

  /** The validated parent slice; a cgroupfs-style path is accepted when its last element is a slice. */
  private parent(cgroupParent: string): string {
    if (cgroupParent === "") return DEFAULT_SLICE;
    const base = cgroupParent.split("/").filter(Boolean).pop() ?? "";
    if (!base.endsWith(".slice")) {
      throw new InvalidArgumentError(
        `cri-o configured with systemd cgroup manager, but did not receive slice as parent: ${cgroupParent}`,
      );
    }
    expandSlice(base);
    return base;
  }

  private sandboxCgroup(parent: string, sandboxId: string): string {
    const slice = expandSlice(parent);
    return `${slice === "/" ? "" : slice}/${CRIO_PREFIX}-${sandboxId}`;
  }

  /**
   * Has systemd start `slice` when its cgroup does not exist yet (the kubelet makes pod slices;
   * crictl does not), so that the sandbox cgroup is not created behind systemd's back.
   */
  private async ensureSlice(slice: string): Promise<void> {
    const path = expandSlice(slice);
    if (path === "/" || this.fs.exists(path)) return;
    await this.withSystemd(async (c) => {
      const props: UnitProperty[] = [
        ["Description", new Variant("s", `CRI-O pod slice ${slice}`)],
        ["MemoryAccounting", new Variant("b", true)],
        ["CPUAccounting", new Variant("b", true)],
        ["TasksAccounting", new Variant("b", true)],
        [this.fs.unified ? "IOAccounting" : "BlockIOAccounting", new Variant("b", true)],
      ];
      let job: string;
      try {
        job = await c.startTransientUnit(slice, "replace", props);
      } catch (err) {
        // Loaded already (a unit file, or another transient one): start it as it is.
        if (!(err instanceof DBusError && err.errorName === "org.freedesktop.systemd1.UnitExists")) throw err;
        job = await c.startUnit(slice, "replace");
      }
      await this.finishJob(c, job, slice, "active");
    });
  }

  /** Starts a transient scope holding `pids` in `slice`, or attaches them when it exists. */
  private async startScope(c: SystemdClient, unit: string, slice: string, pids: number[], extra: UnitProperty[]): Promise<void> {
    // systemd reads PID 0 as "the caller", which would move the daemon itself.
    const bad = pids.find((p) => !Number.isInteger(p) || p <= 0);
    if (bad !== undefined) throw new InvalidArgumentError(`invalid pid ${bad} for ${unit}`);
    const props: UnitProperty[] = [
      ["PIDs", new Variant("au", pids)],
      ["Delegate", new Variant("b", true)],
      ["DefaultDependencies", new Variant("b", false)],
      ...extra,
      ["Slice", new Variant("s", slice)],
    ];
    let job: string;
    try {
      job = await c.startTransientUnit(unit, "replace", props);
    } catch (err) {
      if (!(err instanceof DBusError && err.errorName === "org.freedesktop.systemd1.UnitExists")) throw err;
      await c.attachProcessesToUnit(unit, "", pids);
      return;
    }
    await this.finishJob(c, job, unit, "active");
  }

  private async finishJob(c: SystemdClient, job: string, unit: string, expect: "active" | "inactive"): Promise<void> {
    const result = await c.waitJob(job, unit, expect);
    if (result !== "done") throw new InternalError(`systemd job ${job} for ${unit} ended with result "${result}"`);
  }

  private async systemd(): Promise<SystemdClient> {
    if (this.client) {
      const c = await this.client.catch(() => undefined);
      if (c && !c.closed) return c;
    }
    const pending = SystemdClient.connect(this.opts.endpoints, this.opts);
    this.client = pending;
    pending.catch(() => {
      if (this.client === pending) this.client = undefined;
    });
    return pending;
  }

  /** Runs `fn` with a connection; a connection lost on the way is replaced once (CRI-O's RetryOnDisconnect). */
  private async withSystemd<T>(fn: (c: SystemdClient) => Promise<T>): Promise<T> {
    const c = await this.systemd();
    try {
      return await fn(c);
    } catch (err) {
      if (!(err instanceof DBusConnectError)) throw err;
      c.close();
      return fn(await this.systemd());
    }
  }
}
