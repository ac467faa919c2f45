// Cgroup managers for pods and containers, behind one interface (manager.ts). CRI-O's
// `cgroup_manager` picks the implementation: "systemd" (transient slices and scopes through
// systemd's D-Bus API) or "cgroupfs" (direct writes to /sys/fs/cgroup). Either runs on cgroup v1,
// hybrid or unified nodes through a CgroupFs, which is also how tests run them on fixture trees.
export {
  CRIO_PREFIX,
  MIN_MEMORY_LIMIT,
  validateMonitorCgroup,
  type CgroupManager,
  type CgroupManagerName,
  type MonitorRequest,
  type SandboxCgroup,
} from "./manager.ts";
export { CgroupfsManager } from "./cgroupfs.ts";
export { SystemdManager, type SystemdManagerOptions } from "./systemd.ts";
export { CgroupFs, hostOps, normalizeCgroup, type CgroupFsOps } from "./fs.ts";
export { detectCgroupVersion, parseCgroupMounts, parseProcCgroup, type CgroupVersion, type Hierarchy } from "./detect.ts";
export { CgroupBusyError, SystemdUnavailableError } from "./errors.ts";
export { expandSlice, systemdCgroupsPathToPath } from "./slice.ts";
export type { CgroupResources } from "./resources.ts";

import { CgroupfsManager } from "./cgroupfs.ts";
import { CgroupFs } from "./fs.ts";
import type { CgroupManager, CgroupManagerName } from "./manager.ts";
import { SystemdManager, type SystemdManagerOptions } from "./systemd.ts";

/** The manager `cgroup_manager` names, on this host's hierarchies unless `fs` says otherwise. */
export function newCgroupManager(name: CgroupManagerName, opts: { fs?: CgroupFs; systemd?: SystemdManagerOptions } = {}): CgroupManager {
  const fs = opts.fs ?? CgroupFs.host();
  return name === "systemd" ? new SystemdManager(fs, opts.systemd) : new CgroupfsManager(fs);
}
