// One test body for every CgroupManager (containerd's testsuite pattern): each instantiation
// supplies a manager, a pod parent in that manager's syntax, and processes to move around.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../../errors.ts";
import { CgroupBusyError } from "../errors.ts";
import type { CgroupManager } from "../manager.ts";

export interface Harness {
  manager: CgroupManager;
  /** A pod cgroup parent as the kubelet would pass it to this manager. */
  parent: string;
  /** A sibling parent for tests that need their own ("<parent>/x" or "<parent-prefix>-x.slice"). */
  subParent(name: string): string;
  /** A parent of the other driver's kind, which the manager must refuse. */
  foreignParent: string;
  /** A process to move around (real or fake). */
  spawn(): Promise<number>;
  /** Ends a process from spawn(); it leaves its cgroups. */
  kill(pid: number): Promise<void>;
  /** Extra checks that a pid is in a cgroup (e.g. /proc/<pid>/cgroup on a real host). */
  verifyMembership?(pid: number, cgroup: string): void;
  cleanup(): Promise<void>;
}

let seq = 0;
const id = (tag: string) => `${tag}${Date.now().toString(16)}${(seq++).toString(16).padStart(4, "0")}`.padEnd(16, "0");

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

function throws(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an exception");
}

export function cgroupManagerConformance(label: string, setup: () => Promise<Harness>): void {
  describe(`CgroupManager conformance: ${label}`, () => {
    let h: Harness;
    let m: CgroupManager;
    beforeAll(async () => {
      h = await setup();
      m = h.manager;
    });
    afterAll(async () => {
      await h?.cleanup();
    });

    test("sandbox and container cgroupsPaths resolve below the pod parent", () => {
      const sb = id("sb");
      const ctr = id("ctr");
      const { parent, path } = m.sandboxCgroupPath(h.parent, sb);
      const parentCgroup = m.resolve(m.containerCgroupPath(parent, ctr)).replace(/\/[^/]+$/, "");
      expect(m.resolve(path).startsWith(`${parentCgroup}/`)).toBe(true);
      expect(m.resolve(path)).toMatch(new RegExp(`/crio-${sb}(\\.scope)?$`));
      expect(m.resolve(m.containerCgroupPath(parent, ctr))).toMatch(new RegExp(`/crio-${ctr}(\\.scope)?$`));
      expect(m.resolve(m.monitorCgroupPath({ containerId: ctr, cgroupParent: parent, monitorCgroup: "pod" }))).toMatch(
        new RegExp(`^${parentCgroup}/crio-conmon-${ctr}(\\.scope)?$`),
      );
    });

    test("a parent of the other driver's kind is refused", () => {
      expect(throws(() => m.sandboxCgroupPath(h.foreignParent, id("sb")))).toBeInstanceOf(InvalidArgumentError);
    });

    test("a monitor_cgroup the manager cannot use is refused", () => {
      const bad = m.name === "cgroupfs" ? "system.slice" : "not-a-slice";
      expect(throws(() => m.monitorCgroupPath({ containerId: id("c"), cgroupParent: h.parent, monitorCgroup: bad }))).toBeInstanceOf(
        InvalidArgumentError,
      );
    });

    test("createSandboxCgroup makes the cgroup in every hierarchy, idempotently", async () => {
      const sb = id("sb");
      const cgroup = await m.createSandboxCgroup(h.parent, sb);
      expect(cgroup).toMatch(new RegExp(`/crio-${sb}$`));
      for (const { dir } of m.fs.dirs(cgroup)) expect(m.fs.ops.exists(dir)).toBe(true);
      expect(await m.createSandboxCgroup(h.parent, sb)).toBe(cgroup);
      expect(m.exists(cgroup)).toBe(true);
      await m.removeSandboxCgroup(h.parent, sb);
      expect(m.exists(cgroup)).toBe(false);
    });

    test("resources given at creation land in the sandbox cgroup", async () => {
      const sb = id("sb");
      const cgroup = await m.createSandboxCgroup(h.parent, sb, { memoryLimitBytes: 64 * 1024 * 1024 });
      try {
        expect(m.fs.memoryLimit(cgroup)).toBe(64 * 1024 * 1024);
      } finally {
        await m.removeSandboxCgroup(h.parent, sb);
      }
    });

    test("a process moved into the sandbox cgroup is in it in every hierarchy", async () => {
      const sb = id("sb");
      const cgroup = await m.createSandboxCgroup(h.parent, sb);
      const pid = await h.spawn();
      try {
        await m.moveProcess(pid, cgroup);
        expect(m.pids(cgroup)).toEqual([pid]);
        for (const { dir } of m.fs.dirs(cgroup)) {
          expect(m.fs.ops.read(`${dir}/cgroup.procs`).split("\n").filter(Boolean).map(Number)).toContain(pid);
        }
        h.verifyMembership?.(pid, cgroup);
      } finally {
        await h.kill(pid);
        await m.removeSandboxCgroup(h.parent, sb);
      }
    });

    test("removal refuses while a process is inside, names the cgroup, then succeeds and is idempotent", async () => {
      const sb = id("sb");
      const cgroup = await m.createSandboxCgroup(h.parent, sb);
      const pid = await h.spawn();
      await m.moveProcess(pid, cgroup);
      const err = await rejects(m.removeSandboxCgroup(h.parent, sb));
      expect(err).toBeInstanceOf(CgroupBusyError);
      expect((err as CgroupBusyError).message).toContain(cgroup);
      expect((err as CgroupBusyError).pids).toEqual([pid]);
      expect(m.exists(cgroup)).toBe(true); // nothing was killed
      await h.kill(pid);
      await m.removeSandboxCgroup(h.parent, sb);
      expect(m.exists(cgroup)).toBe(false);
      for (const { dir } of m.fs.dirs(cgroup)) expect(m.fs.ops.exists(dir)).toBe(false);
      await m.removeSandboxCgroup(h.parent, sb);
    });

    test("child cgroups (a runtime's sub-cgroups) are removed leaf first", async () => {
      const sb = id("sb");
      const cgroup = await m.createSandboxCgroup(h.parent, sb);
      m.fs.create(`${cgroup}/container/inner`);
      await m.removeSandboxCgroup(h.parent, sb);
      expect(m.exists(cgroup)).toBe(false);
    });

    test("the monitor goes into its own cgroup beside the pod's and is removed after it exits", async () => {
      const ctr = id("ctr");
      const req = { containerId: ctr, cgroupParent: h.parent, monitorCgroup: "pod" };
      const pid = await h.spawn();
      let alive = true;
      try {
        const cgroup = await m.placeMonitor({ ...req, pid });
        expect(cgroup).toBe(m.resolve(m.monitorCgroupPath(req)));
        expect(m.pids(m.monitorCgroupPath(req))).toEqual([pid]);
        h.verifyMembership?.(pid, cgroup);
        const err = await rejects(m.removeMonitorCgroup(req));
        expect(err).toBeInstanceOf(CgroupBusyError);
        expect((err as Error).message).toContain(cgroup);
        await h.kill(pid);
        alive = false;
        await m.removeMonitorCgroup(req);
        expect(m.exists(m.monitorCgroupPath(req))).toBe(false);
        await m.removeMonitorCgroup(req);
      } finally {
        if (alive) await h.kill(pid);
      }
    });

    test("a container's cgroupsPath takes a process (moveProcess creates what is missing)", async () => {
      const ctr = id("ctr");
      const path = m.containerCgroupPath(h.parent, ctr);
      const pid = await h.spawn();
      try {
        await m.moveProcess(pid, path);
        expect(m.pids(path)).toEqual([pid]);
        h.verifyMembership?.(pid, m.resolve(path));
      } finally {
        await h.kill(pid);
      }
      await m.fs.remove(m.resolve(path));
      expect(m.exists(path)).toBe(false);
    });

    test("a parent whose memory limit is below 12 MiB is refused", async () => {
      const small = h.subParent("small");
      const smallCgroup = m.resolve(m.containerCgroupPath(small, "x")).replace(/\/[^/]+$/, "");
      m.fs.create(smallCgroup);
      try {
        m.fs.apply(smallCgroup, { memoryLimitBytes: 4 * 1024 * 1024 });
        const err = throws(() => m.sandboxCgroupPath(small, id("sb")));
        expect(err).toBeInstanceOf(InvalidArgumentError);
        expect((err as Error).message).toContain("too low");
      } finally {
        await m.fs.remove(smallCgroup);
      }
    });
  });
}
