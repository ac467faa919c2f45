// Facts about the host the spec builder needs (src/spec takes them as data): the daemon's
// capability bounding set and oom_score_adj, the mount table, cgroup features, kernel version.
// Read once per daemon except the mount table, which changes (read per CreateContainer).
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { readMountInfo } from "../../sandbox/namespaces.ts";
import { ALL_CAPABILITIES, type HostFacts } from "../../spec/index.ts";
import type { CgroupManager } from "../../cgroups/index.ts";

/** The capability names set in a /proc/<pid>/status Cap* hex mask. */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

let stable: Omit<HostFacts, "mounts"> | undefined;

/**
 * The host facts; the mount table only when `withMounts` (it serves the propagation checks of
 * the request's bind mounts, so a container without mounts does not pay for reading it).
 */
export function hostFacts(cgroups: CgroupManager, withMounts = false): HostFacts {
  if (stable === undefined) {
    const status = readFileSync("/proc/self/status", "utf8");
    const capBnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    const oom = Number.parseInt(readFileSync("/proc/self/oom_score_adj", "utf8").trim(), 10);
    const fs = cgroups.fs;
    const memoryDir = fs.hierarchies.find((h) => h.controllers.includes("memory"))?.dir;
    stable = {
      capabilityBounding: capBnd ? capabilitiesOfMask(capBnd) : undefined,
      oomScoreAdj: Number.isFinite(oom) ? oom : undefined,
      cgroupV2: fs.unified,
      // v2 always has memory.swap.max in non-root cgroups; v1 only with swap accounting on.
      hasMemorySwap: fs.unified || (memoryDir !== undefined && existsSync(`${memoryDir}/memory.memsw.limit_in_bytes`)),
      hasHugetlb: fs.hierarchies.some((h) => h.controllers.includes("hugetlb")),
      // runc ≥ 1.1 knows "rro"; the kernel needs mount_setattr (5.12).
      rroSupported: kernelAtLeast(5, 12),
      idmapSupported: false,
    };
  }
  const mounts = withMounts ? readMountInfo().map((m) => ({ mountpoint: m.mountPoint, optional: m.optional.join(" ") })) : [];
  return { ...stable, mounts };
}
