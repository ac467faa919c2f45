// CgroupFs on fixture trees whose FixtureOps apply the kernel's rules (testing/fixture.ts).
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../errors.ts";
import { CgroupfsManager } from "./cgroupfs.ts";
import { CgroupBusyError } from "./errors.ts";
import { CgroupFs, normalizeCgroup, type CgroupFsOps } from "./fs.ts";
import { validateMonitorCgroup } from "./manager.ts";
import { makeFixture, type Fixture } from "./testing/fixture.ts";

const fixtures: Fixture[] = [];
function fixture(layout: "v1" | "v2" | "hybrid"): Fixture {
  const fx = makeFixture(layout);
  fixtures.push(fx);
  return fx;
}
afterEach(() => {
  for (const fx of fixtures.splice(0)) fx.cleanup();
});
const read = (p: string) => readFileSync(p, "utf8").trim();

describe("layouts", () => {
  test("v1: one hierarchy per controller directory; comount symlinks skipped; systemd is name=systemd", () => {
    const fx = fixture("v1");
    expect(fx.fs.version).toBe("v1");
    const byDir = Object.fromEntries(fx.fs.hierarchies.map((h) => [h.dir.slice(fx.root.length + 1), h.controllers]));
    expect(byDir["cpu,cpuacct"]).toEqual(["cpu", "cpuacct"]);
    expect(byDir.systemd).toEqual(["name=systemd"]);
    expect(byDir.cpu).toBeUndefined();
    expect(fx.fs.controllerDir("cpuacct", "/a")).toBe(`${fx.root}/cpu,cpuacct/a`);
  });
  test("hybrid: the unified directory is a v2 hierarchy; v2: one hierarchy at the root", () => {
    expect(fixture("hybrid").fs.hierarchies.filter((h) => h.kind === "v2").length).toBe(1);
    expect(fixture("hybrid").fs.version).toBe("hybrid");
    const v2 = fixture("v2");
    expect(v2.fs.version).toBe("unified");
    expect(v2.fs.hierarchies).toEqual([{ dir: v2.root, kind: "v2", controllers: [] }]);
  });
});

describe("create", () => {
  test("the fixture is as strict as the kernel: a task cannot join an empty v1 cpuset", () => {
    const fx = fixture("v1");
    fx.ops.mkdir(`${fx.root}/cpuset/raw`);
    expect(() => fx.ops.write(`${fx.root}/cpuset/raw/cgroup.procs`, "123")).toThrow(/ENOSPC/);
  });

  test("v1: every new cpuset level inherits cpus and mems, so the leaf takes tasks", async () => {
    const fx = fixture("v1");
    fx.fs.create("/kubepods/burstable/pod1");
    for (const level of ["/kubepods", "/kubepods/burstable", "/kubepods/burstable/pod1"]) {
      expect(read(`${fx.root}/cpuset${level}/cpuset.cpus`)).toBe("0-1");
      expect(read(`${fx.root}/cpuset${level}/cpuset.mems`)).toBe("0");
    }
    await fx.fs.join(fx.spawn(), "/kubepods/burstable/pod1");
  });

  test("v1: an existing level someone left with an empty cpuset is filled in", () => {
    const fx = fixture("v1");
    fx.ops.mkdir(`${fx.root}/cpuset/left-empty`);
    fx.fs.create("/left-empty/child");
    expect(read(`${fx.root}/cpuset/left-empty/cpuset.cpus`)).toBe("0-1");
    expect(read(`${fx.root}/cpuset/left-empty/child/cpuset.cpus`)).toBe("0-1");
  });

  test("cpusetLoadBalance: false turns balancing off on the leaf only", () => {
    const fx = fixture("v1");
    fx.fs.create("/p/leaf", { cpusetLoadBalance: false });
    expect(read(`${fx.root}/cpuset/p/cpuset.sched_load_balance`)).toBe("1");
    expect(read(`${fx.root}/cpuset/p/leaf/cpuset.sched_load_balance`)).toBe("0");
    // ...and it was written before the cpus were filled in (CRI-O's order).
    const log = fx.ops.log.filter((l) => l.includes("/cpuset/p/leaf/"));
    expect(log[0]).toContain("cpuset.sched_load_balance 0");
  });

  test("v2: each ancestor enables the controllers it offers, the leaf none; the leaf gets their files", () => {
    const fx = fixture("v2");
    fx.fs.create("/kubepods/pod1/crio-x");
    const all = "cpuset cpu io memory hugetlb pids rdma misc";
    expect(read(`${fx.root}/cgroup.subtree_control`)).toBe(all);
    expect(read(`${fx.root}/kubepods/cgroup.subtree_control`)).toBe(all);
    expect(read(`${fx.root}/kubepods/pod1/cgroup.subtree_control`)).toBe(all);
    expect(read(`${fx.root}/kubepods/pod1/crio-x/cgroup.subtree_control`)).toBe("");
    expect(read(`${fx.root}/kubepods/pod1/crio-x/cgroup.controllers`)).toBe(all);
    expect(read(`${fx.root}/kubepods/pod1/crio-x/memory.max`)).toBe("max");
  });

  test("v2: an ancestor holding processes cannot delegate (EBUSY); the cgroup is still made, without controllers", async () => {
    const fx = fixture("v2");
    fx.fs.create("/busy");
    await fx.fs.join(fx.spawn(), "/busy");
    fx.fs.create("/busy/child");
    expect(read(`${fx.root}/busy/cgroup.subtree_control`)).toBe("");
    expect(read(`${fx.root}/busy/child/cgroup.controllers`)).toBe("");
  });

  test("hybrid: the unified tree only tracks processes; its subtree_control is left alone", () => {
    const fx = fixture("hybrid");
    fx.fs.create("/a/b");
    expect(read(`${fx.root}/unified/cgroup.subtree_control`)).toBe("");
    expect(fx.ops.exists(`${fx.root}/unified/a/b`)).toBe(true);
  });
});

describe("remove", () => {
  /** ops whose rmdir fails with EBUSY `times` times first, as right after the last process exits. */
  function laggy(fx: Fixture, times: number): CgroupFsOps {
    let left = times;
    return {
      ...fx.ops,
      mkdir: (p) => fx.ops.mkdir(p),
      read: (p) => fx.ops.read(p),
      write: (p, d) => fx.ops.write(p, d),
      exists: (p) => fx.ops.exists(p),
      children: (p) => fx.ops.children(p),
      rmdir: (p) => {
        if (left-- > 0) throw Object.assign(new Error("EBUSY"), { code: "EBUSY" });
        fx.ops.rmdir(p);
      },
    };
  }

  test("EBUSY without processes (kernel lag) is retried until it clears", async () => {
    const fx = fixture("v1");
    const fs = new CgroupFs(fx.fs.version, fx.fs.hierarchies, laggy(fx, 3), { removeTimeoutMs: 2000 });
    fs.create("/lag");
    await fs.remove("/lag");
    expect(fs.exists("/lag")).toBe(false);
  });

  test("EBUSY that does not clear becomes CgroupBusyError naming the directory", async () => {
    const fx = fixture("v1");
    const fs = new CgroupFs(fx.fs.version, fx.fs.hierarchies, laggy(fx, 1_000_000), { removeTimeoutMs: 100 });
    fs.create("/stuck");
    const err = await fs.remove("/stuck").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CgroupBusyError);
    expect((err as Error).message).toMatch(/cgroup \/stuck is busy: rmdir .*\/stuck kept failing with EBUSY/);
  });
});

describe("resources and limits", () => {
  test("a limit for a controller that is not mounted is refused", () => {
    const fx = fixture("v1");
    const fs = new CgroupFs("v1", fx.fs.hierarchies.filter((h) => !h.controllers.includes("pids")), fx.ops);
    fs.create("/x");
    expect(() => fs.apply("/x", { pidsLimit: 10 })).toThrow(InvalidArgumentError);
  });

  test("memoryLimit reads v1's huge 'unlimited' and v2's max as no limit", () => {
    const v1 = fixture("v1");
    v1.fs.create("/m");
    expect(v1.fs.memoryLimit("/m")).toBeUndefined();
    v1.fs.apply("/m", { memoryLimitBytes: 1 << 20 });
    expect(v1.fs.memoryLimit("/m")).toBe(1 << 20);
    const v2 = fixture("v2");
    v2.fs.create("/m");
    expect(v2.fs.memoryLimit("/m")).toBeUndefined();
    v2.fs.apply("/m", { memoryLimitBytes: 1 << 20, cpuShares: 1024, pidsLimit: 5 });
    expect([read(`${v2.root}/m/memory.max`), read(`${v2.root}/m/cpu.weight`), read(`${v2.root}/m/pids.max`)]).toEqual(["1048576", "100", "5"]);
  });
});

describe("paths", () => {
  test("normalizeCgroup makes paths absolute and refuses ..", () => {
    expect(normalizeCgroup("a/b/")).toBe("/a/b");
    expect(normalizeCgroup("//a//b")).toBe("/a/b");
    expect(normalizeCgroup("")).toBe("/");
    expect(() => normalizeCgroup("/a/../../etc")).toThrow(InvalidArgumentError);
  });

  test("cgroupfs: no parent means /crio; a slice parent is CRI-O's mismatch error", () => {
    const m = new CgroupfsManager(fixture("v1").fs);
    expect(m.sandboxCgroupPath("", "sb")).toEqual({ parent: "/crio", path: "/crio/crio-sb" });
    expect(m.containerCgroupPath("kubepods/pod1", "c")).toBe("/kubepods/pod1/crio-c");
    expect(() => m.sandboxCgroupPath("kubepods.slice", "sb")).toThrow(
      "cri-o configured with cgroupfs cgroup manager, but received systemd slice as parent: kubepods.slice",
    );
    expect(() => m.resolve("a.slice:crio:x")).toThrow(InvalidArgumentError);
  });

  test("monitor_cgroup validation per manager", () => {
    expect(validateMonitorCgroup("cgroupfs", "pod")).toBeUndefined();
    expect(validateMonitorCgroup("cgroupfs", "")).toBeUndefined();
    expect(validateMonitorCgroup("cgroupfs", "system.slice")).toContain('use "pod" or ""');
    expect(validateMonitorCgroup("systemd", "system.slice")).toBeUndefined();
    expect(validateMonitorCgroup("systemd", "/system.slice")).toContain("slice name");
  });
});
