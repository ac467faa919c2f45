// The cgroupfs manager: cgroups are directories the daemon makes itself, at the same path in
// every hierarchy (CRI-O internal/config/cgmgr/cgroupfs_linux.go). The kubelet's parents are
// paths such as /kubepods/burstable/pod<uid>; a slice name means the kubelet uses the systemd
// driver, a mismatch CRI-O refuses.
import { posix } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import type { CgroupFs } from "./fs.ts";
import { normalizeCgroup } from "./fs.ts";
import { CRIO_PREFIX, MIN_MEMORY_LIMIT, validateMonitorCgroup, type CgroupManager, type MonitorRequest, type SandboxCgroup } from "./manager.ts";
import type { CgroupResources } from "./resources.ts";

/** The parent used when the request names none (crictl without cgroup_parent). */
export const DEFAULT_CGROUPFS_PARENT = "/crio";

export class CgroupfsManager implements CgroupManager {
  readonly name = "cgroupfs" as const;
  readonly fs: CgroupFs;

  constructor(fs: CgroupFs) {
    this.fs = fs;
  }

  async check(): Promise<void> {
    const missing = this.fs.hierarchies.filter((h) => !this.fs.ops.exists(h.dir)).map((h) => h.dir);
    if (missing.length > 0) throw new InvalidArgumentError(`cgroup hierarchies not mounted: ${missing.join(", ")}`);
  }

  sandboxCgroupPath(cgroupParent: string, sandboxId: string): SandboxCgroup {
    const parent = this.parent(cgroupParent);
    const limit = this.fs.memoryLimit(parent);
    if (limit !== undefined && limit !== 0 && limit < MIN_MEMORY_LIMIT) {
      throw new InvalidArgumentError(`pod set memory limit ${limit} too low; should be at least ${MIN_MEMORY_LIMIT}`);
    }
    return { parent, path: posix.join(parent, `${CRIO_PREFIX}-${sandboxId}`) };
  }

  containerCgroupPath(cgroupParent: string, containerId: string): string {
    return posix.join(this.parent(cgroupParent), `${CRIO_PREFIX}-${containerId}`);
  }

  monitorCgroupPath(m: MonitorRequest): string {
    const problem = validateMonitorCgroup("cgroupfs", m.monitorCgroup);
    if (problem) throw new InvalidArgumentError(problem);
    return posix.join(this.parent(m.cgroupParent), `${CRIO_PREFIX}-conmon-${m.containerId}`);
  }

  resolve(cgroupsPath: string): string {
    if (cgroupsPath.includes(":")) {
      throw new InvalidArgumentError(`cgroupfs manager got a systemd cgroupsPath ${JSON.stringify(cgroupsPath)}`);
    }
    return normalizeCgroup(cgroupsPath);
  }

  async createSandboxCgroup(cgroupParent: string, sandboxId: string, resources?: CgroupResources): Promise<string> {
    const cgroup = this.sandboxCgroupPath(cgroupParent, sandboxId).path;
    this.fs.create(cgroup, { cpusetLoadBalance: false });
    if (resources) this.fs.apply(cgroup, resources);
    return cgroup;
  }

  async removeSandboxCgroup(cgroupParent: string, sandboxId: string): Promise<void> {
    await this.fs.remove(posix.join(this.parent(cgroupParent), `${CRIO_PREFIX}-${sandboxId}`));
  }

  async placeMonitor(m: MonitorRequest & { pid: number; resources?: CgroupResources }): Promise<string> {
    const cgroup = this.monitorCgroupPath(m);
    this.fs.create(cgroup);
    if (m.resources) this.fs.apply(cgroup, m.resources);
    await this.fs.join(m.pid, cgroup);
    return cgroup;
  }

  async removeMonitorCgroup(m: MonitorRequest): Promise<void> {
    await this.fs.remove(this.monitorCgroupPath(m));
  }

  async moveProcess(pid: number, cgroupsPath: string): Promise<void> {
    const cgroup = this.resolve(cgroupsPath);
    this.fs.create(cgroup);
    await this.fs.join(pid, cgroup);
  }

  exists(cgroupsPath: string): boolean {
    return this.fs.exists(this.resolve(cgroupsPath));
  }

  pids(cgroupsPath: string): number[] {
    return this.fs.pids(this.resolve(cgroupsPath));
  }

  close(): void {}

  /**
   * The validated parent: absolute ("/" is prepended as CRI-O does, so that runc does not read it
   * relative to its own cgroup), DEFAULT_CGROUPFS_PARENT when empty. CRI-O leaves an empty parent
   * empty for the infra container, which runc then nests under its own cgroup; using /crio for
   * the sandbox too keeps a pod's cgroups together.
   */
  private parent(cgroupParent: string): string {
    if (cgroupParent.endsWith(".slice")) {
      throw new InvalidArgumentError(
        `cri-o configured with cgroupfs cgroup manager, but received systemd slice as parent: ${cgroupParent}`,
      );
    }
    return normalizeCgroup(cgroupParent === "" ? DEFAULT_CGROUPFS_PARENT : cgroupParent);
  }
}
