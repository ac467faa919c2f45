// The cgroupfs manager on this machine's real cgroup tree (v1 hybrid on the project's test
// machines; whatever the host has elsewhere), under a unique /crio-test-<random> parent in each
// hierarchy, with real processes: the conformance suite, then checks from the kernel's side
// (/proc/<pid>/cgroup). Needs root and writable cgroup mounts; fails saying so otherwise. Everything made
// is removed in afterAll, processes killed by pid.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { accessSync, constants, readFileSync } from "node:fs";
import { CgroupfsManager } from "./cgroupfs.ts";
import { detectCgroupVersion, parseProcCgroup } from "./detect.ts";
import { CgroupFs } from "./fs.ts";
import { cgroupManagerConformance, type Harness } from "./testing/conformance.ts";

function usable(): boolean {
  try {
    if (process.geteuid?.() !== 0) return false;
    const fs = CgroupFs.host();
    for (const h of fs.hierarchies) accessSync(h.dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const procs = new Map<number, Subprocess>();
async function spawnSleep(): Promise<number> {
  const p = Bun.spawn(["sleep", "600"], { stdout: "ignore", stderr: "ignore" });
  procs.set(p.pid, p);
  return p.pid;
}
async function killPid(pid: number): Promise<void> {
  const p = procs.get(pid);
  if (!p) return;
  p.kill("SIGKILL");
  await p.exited;
  procs.delete(pid);
}

/** Asserts from the kernel's side that `pid` is in `cgroup` in every hierarchy of `fs`. */
function verifyProcCgroup(fs: CgroupFs, pid: number, cgroup: string): void {
  const lines = parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, "utf8"));
  for (const h of fs.hierarchies) {
    const key = h.kind === "v2" ? "" : [...lines.keys()].find((k) => k.split(",").sort().join(",") === h.controllers.slice().sort().join(","));
    expect(key).toBeDefined();
    expect({ hierarchy: h.dir, path: lines.get(key ?? "") }).toEqual({ hierarchy: h.dir, path: cgroup });
  }
}

const parent = `/crio-test-${Math.random().toString(16).slice(2, 10)}`;
const enabled = usable();

if (enabled) {
  const hostFs = CgroupFs.host("/sys/fs/cgroup", { removeTimeoutMs: 300 });
  cgroupManagerConformance(`cgroupfs on this host (${hostFs.version}, parent ${parent})`, async (): Promise<Harness> => ({
    manager: new CgroupfsManager(hostFs),
    parent,
    subParent: (name) => `${parent}/${name}`,
    foreignParent: "kubepods-burstable-pod1234.slice",
    spawn: spawnSleep,
    kill: killPid,
    verifyMembership: (pid, cgroup) => verifyProcCgroup(hostFs, pid, cgroup),
    cleanup: async () => {
      for (const pid of [...procs.keys()]) await killPid(pid);
      await hostFs.remove(parent);
    },
  }));
}

describe("cgroupfs manager on this host", () => {
  beforeAll(() => {
    if (!enabled) throw new Error("this test needs root and writable cgroup hierarchies under /sys/fs/cgroup (run as root)");
  });
  const fs = enabled ? CgroupFs.host() : undefined;
  const testParent = `${parent}-x`;
  afterAll(async () => {
    for (const pid of [...procs.keys()]) await killPid(pid);
    await fs?.remove(testParent);
  });

  test("the layout detected matches the mounts", () => {
    if (!fs) return;
    const version = detectCgroupVersion();
    expect(fs.version).toBe(version);
    if (version === "hybrid") {
      expect(fs.hierarchies.some((h) => h.dir === "/sys/fs/cgroup/unified" && h.kind === "v2")).toBe(true);
      expect(fs.hierarchies.filter((h) => h.kind === "v1").length).toBeGreaterThan(0);
    }
  });

  test("a sleep process moves into a pod's sandbox cgroup, /proc/<pid>/cgroup agrees, and the cgroup goes away after it dies", async () => {
    if (!fs) return;
    const m = new CgroupfsManager(fs);
    const sb = `host${Date.now().toString(16)}`;
    const cgroup = await m.createSandboxCgroup(testParent, sb);
    expect(cgroup).toBe(`${testParent}/crio-${sb}`);
    // v1 cpuset: the new levels inherited cpus and mems, else the kernel would refuse the task.
    const cpusetDir = fs.controllerDir("cpuset", cgroup);
    if (cpusetDir && fs.version !== "unified") {
      expect(readFileSync(`${cpusetDir}/cpuset.cpus`, "utf8").trim()).toBe(readFileSync("/sys/fs/cgroup/cpuset/cpuset.cpus", "utf8").trim());
      expect(readFileSync(`${cpusetDir}/cpuset.sched_load_balance`, "utf8").trim()).toBe("0");
    }
    const pid = await spawnSleep();
    await m.moveProcess(pid, cgroup);
    verifyProcCgroup(fs, pid, cgroup);
    expect(m.pids(cgroup)).toEqual([pid]);
    await killPid(pid);
    await m.removeSandboxCgroup(testParent, sb);
    for (const { dir } of fs.dirs(cgroup)) expect(fs.ops.exists(dir)).toBe(false);
    expect(m.exists(cgroup)).toBe(false);
  });
});
