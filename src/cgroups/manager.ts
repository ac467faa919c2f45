// The one interface both cgroup managers implement. CRI-O's `cgroup_manager` picks the
// implementation: "systemd" (transient slices and scopes through systemd's D-Bus API; the
// kubelet passes slice names such as kubepods-burstable-pod<uid>.slice) or "cgroupfs" (direct
// writes to /sys/fs/cgroup; the kubelet passes paths such as /kubepods/burstable/pod<uid>).
// Either runs on cgroup v1, hybrid or unified nodes, through a CgroupFs.
//
// Paths come in two forms here:
// - a cgroupsPath, the manager's own syntax, as the OCI spec's linux.cgroupsPath carries it to
//   runc/crun: "/kubepods/pod1/crio-<id>" for cgroupfs, "kubepods-pod1.slice:crio:<id>" for
//   systemd (the unit crio-<id>.scope in that slice);
// - a cgroup, the resolved path below every hierarchy's root ("/kubepods.slice/.../crio-<id>.scope").
import type { CgroupFs } from "./fs.ts";
import type { CgroupResources } from "./resources.ts";

export type CgroupManagerName = "systemd" | "cgroupfs";

/** A sandbox's cgroup parent, as validated, and the cgroupsPath of its infra container. */
export interface SandboxCgroup {
  /** The parent to pass back to the other methods: a slice name or an absolute path (defaults applied). */
  parent: string;
  /** linux.cgroupsPath for the sandbox's infra container. */
  path: string;
}

/** Which container monitor (conmon) cgroup is meant. */
export interface MonitorRequest {
  containerId: string;
  /** The sandbox's cgroup parent. */
  cgroupParent: string;
  /**
   * The runtime handler's monitor_cgroup: "pod" or "" puts conmon beside the pod's containers;
   * under systemd a slice name ("system.slice", CRI-O's default) puts it in that slice instead.
   */
  monitorCgroup: string;
}

export interface CgroupManager {
  readonly name: CgroupManagerName;
  /** The hierarchies this manager works on. */
  readonly fs: CgroupFs;

  /**
   * Startup check that the manager can work on this node. The systemd manager connects to systemd
   * and throws SystemdUnavailableError (naming cgroup_manager = "cgroupfs") when none answers.
   */
  check(): Promise<void>;

  /**
   * Validates the kubelet's cgroup_parent for this manager (a slice for systemd, a path for
   * cgroupfs) and returns it with the infra container's cgroupsPath. Refuses a parent whose memory
   * limit is below what a container needs to start (12 MiB, CRI-O's minimum).
   */
  sandboxCgroupPath(cgroupParent: string, sandboxId: string): SandboxCgroup;

  /** linux.cgroupsPath for a container of the pod (pure). */
  containerCgroupPath(cgroupParent: string, containerId: string): string;

  /**
   * The cgroupsPath of a container's monitor: the scope crio-conmon-<id>.scope (systemd) or the
   * cgroup <parent>/crio-conmon-<id> (cgroupfs). Throws InvalidArgumentError for a monitor_cgroup
   * the manager cannot use.
   */
  monitorCgroupPath(m: MonitorRequest): string;

  /** The cgroup (path below each hierarchy root) a cgroupsPath of this manager names. */
  resolve(cgroupsPath: string): string;

  /**
   * Creates the pod's own cgroup <parent>/crio-<id> in every hierarchy (CRI-O makes it when the
   * infra container is dropped, so that cAdvisor still sees the pod), with `resources` written to
   * it. The systemd manager first has systemd start the parent slice if it does not exist yet.
   * Idempotent. Returns the cgroup.
   */
  createSandboxCgroup(cgroupParent: string, sandboxId: string, resources?: CgroupResources): Promise<string>;

  /**
   * Removes what createSandboxCgroup made, leaf first in every hierarchy; the parent stays (it is
   * the kubelet's). Kills nothing: processes still inside make it fail with CgroupBusyError after
   * a short retry. Idempotent.
   */
  removeSandboxCgroup(cgroupParent: string, sandboxId: string): Promise<void>;

  /**
   * Puts a freshly started conmon into its cgroup (creating it) and returns the cgroup. The
   * systemd manager starts a transient scope with Delegate=yes, KillSignal=SIGPIPE (conmon ignores
   * it, so a node shutdown lets the container exit first) and After=crio.service.
   */
  placeMonitor(m: MonitorRequest & { pid: number; resources?: CgroupResources }): Promise<string>;

  /**
   * Removes a monitor cgroup after conmon exited; CgroupBusyError while it runs. (systemd collects
   * an empty scope by itself; this stops one that lingers.)
   */
  removeMonitorCgroup(m: MonitorRequest): Promise<void>;

  /**
   * Moves `pid` into the cgroup a cgroupsPath names, creating it when missing. Under systemd a
   * scope path starts a transient scope holding the process (or attaches it to the existing one).
   */
  moveProcess(pid: number, cgroupsPath: string): Promise<void>;

  /** Whether the cgroup a cgroupsPath names exists (in any hierarchy). */
  exists(cgroupsPath: string): boolean;

  /** The processes directly in the cgroup a cgroupsPath names. */
  pids(cgroupsPath: string): number[];

  /** Releases the D-Bus connection, if any. */
  close(): void;
}

/** The prefix CRI-O gives its cgroups and scopes. */
export const CRIO_PREFIX = "crio";
/** The smallest memory limit a pod's parent may have (runc needs about this much to start). */
export const MIN_MEMORY_LIMIT = 12 * 1024 * 1024;

/**
 * Checks a runtime handler's monitor_cgroup against the manager, for config validation (pure):
 * cgroupfs takes "" or "pod"; systemd also takes a slice name. Returns the problem, or undefined.
 */
export function validateMonitorCgroup(manager: CgroupManagerName, monitorCgroup: string): string | undefined {
  if (monitorCgroup === "" || monitorCgroup === "pod") return undefined;
  if (manager === "cgroupfs") {
    return `monitor_cgroup ${JSON.stringify(monitorCgroup)} is invalid with cgroup_manager = "cgroupfs": use "pod" or ""`;
  }
  if (!monitorCgroup.endsWith(".slice") || monitorCgroup.includes("/")) {
    return `monitor_cgroup ${JSON.stringify(monitorCgroup)} is invalid with cgroup_manager = "systemd": use "pod", "" or a slice name such as "system.slice"`;
  }
  return undefined;
}

