// readCgroupStats on fixture trees (testing/fixture.ts) laid out as v1, hybrid and v2 nodes: the
// controller files each layout keeps, with contents as the kernel prints them.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { NotFoundError } from "../errors.ts";
import { readCgroupStats, sumCgroupStats, usageNanoCores } from "./stats.ts";
import { makeFixture, type Fixture, type FixtureLayout } from "./testing/fixture.ts";

const fixtures: Fixture[] = [];
function fixture(layout: FixtureLayout): Fixture {
  const fx = makeFixture(layout);
  fixtures.push(fx);
  return fx;
}
afterEach(() => {
  for (const fx of fixtures.splice(0)) fx.cleanup();
});

const CG = "/kubepods/pod1/crio-abc";

/** Writes `files` (name → content) into the cgroup's directory of the hierarchy holding `controller`. */
function put(fx: Fixture, controller: string, files: Record<string, string>, cgroup = CG): void {
  const dir = fx.fs.controllerDir(controller, cgroup);
  if (dir === undefined) throw new Error(`no ${controller} hierarchy`);
  for (const [name, content] of Object.entries(files)) writeFileSync(`${dir}/${name}`, content);
}

// memory.stat of a v1 cgroup, abridged; the total_* lines are the hierarchical ones that count.
const V1_MEMORY_STAT = [
  "cache 1000",
  "rss 2000",
  "inactive_file 5",
  "pgfault 1",
  "pgmajfault 1",
  "total_cache 40960000",
  "total_rss 52428800",
  "total_inactive_file 10485760",
  "total_active_file 4096",
  "total_pgfault 12345",
  "total_pgmajfault 7",
  "",
].join("\n");

for (const layout of ["v1", "hybrid"] as const) {
  describe(`${layout}: v1 controllers`, () => {
    test("cpu from cpuacct.usage; memory from usage_in_bytes minus total_inactive_file; pids.current", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "cpuacct", { "cpuacct.usage": "98765432109876543\n" }); // past 2^53: stays exact
      put(fx, "memory", { "memory.usage_in_bytes": "104857600\n", "memory.stat": V1_MEMORY_STAT });
      put(fx, "pids", { "pids.current": "3\n", "pids.max": "max\n" });
      // Hybrid: the v2 tree only tracks processes; its counters are not the ones to report.
      if (layout === "hybrid") writeFileSync(`${fx.root}/unified${CG}/cpu.stat`, "usage_usec 1\n");
      const s = readCgroupStats(fx.fs, CG);
      expect(s.cpu).toEqual({ usageNs: 98765432109876543n });
      expect(s.memory).toEqual({
        usage: 104857600n,
        workingSet: 104857600n - 10485760n,
        rss: 52428800n,
        pageFaults: 12345n,
        majorPageFaults: 7n,
        limit: undefined, // the fixture's fresh limit_in_bytes is v1's "unlimited"
        available: undefined,
      });
      expect(s.pids).toEqual({ current: 3n, limit: undefined });
      // Swap accounting off: no total_swap line, no swap section.
      expect(s.swap).toBeUndefined();
    });

    test("a memory limit gives available bytes; swap from total_swap and the mem+swap limit", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", {
        "memory.usage_in_bytes": "104857600\n",
        "memory.limit_in_bytes": "268435456\n",
        "memory.memsw.limit_in_bytes": "536870912\n",
        "memory.stat": `${V1_MEMORY_STAT}total_swap 1048576\n`,
      });
      put(fx, "pids", { "pids.max": "100\n" });
      const s = readCgroupStats(fx.fs, CG);
      expect(s.memory?.limit).toBe(268435456n);
      expect(s.memory?.available).toBe(268435456n - (104857600n - 10485760n));
      expect(s.swap).toEqual({ usage: 1048576n, limit: 268435456n, available: 268435456n - 1048576n });
      expect(s.pids?.limit).toBe(100n);
    });

    test("unlimited mem+swap: swap usage without a limit", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", {
        "memory.limit_in_bytes": "268435456\n",
        "memory.memsw.limit_in_bytes": "9223372036854771712\n",
        "memory.stat": "total_swap 0\n",
      });
      expect(readCgroupStats(fx.fs, CG).swap).toEqual({ usage: 0n, limit: undefined, available: undefined });
    });

    test("inactive file cache above usage floors the working set at 0 (and available is the whole limit)", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", { "memory.usage_in_bytes": "4096\n", "memory.limit_in_bytes": "8192\n", "memory.stat": "total_inactive_file 65536\n" });
      const m = readCgroupStats(fx.fs, CG).memory;
      expect(m?.workingSet).toBe(0n);
      expect(m?.available).toBe(8192n);
      expect(m?.rss).toBe(0n);
    });
  });
}

describe("v2 (unified)", () => {
  test("cpu from cpu.stat usage_usec × 1000; memory from memory.current minus inactive_file; anon is rss", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "cpu", { "cpu.stat": "usage_usec 2500001\nuser_usec 2000000\nsystem_usec 500001\nnr_periods 0\n" });
    put(fx, "memory", {
      "memory.current": "73400320\n",
      "memory.max": "max\n",
      "memory.stat": "anon 41943040\nfile 31457280\ninactive_file 20971520\nactive_file 10485760\npgfault 999\npgmajfault 3\n",
      "memory.swap.current": "0\n",
      "memory.swap.max": "max\n",
    });
    put(fx, "pids", { "pids.current": "5\n", "pids.max": "1024\n" });
    const s = readCgroupStats(fx.fs, CG);
    expect(s.cpu).toEqual({ usageNs: 2500001000n });
    expect(s.memory).toEqual({
      usage: 73400320n,
      workingSet: 73400320n - 20971520n,
      rss: 41943040n,
      pageFaults: 999n,
      majorPageFaults: 3n,
      limit: undefined,
      available: undefined,
    });
    expect(s.swap).toEqual({ usage: 0n, limit: undefined, available: undefined });
    expect(s.pids).toEqual({ current: 5n, limit: 1024n });
  });

  test("memory.max and memory.swap.max limits", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "memory", {
      "memory.current": "1000\n",
      "memory.max": "5000\n",
      "memory.stat": "inactive_file 200\n",
      "memory.swap.current": "300\n",
      "memory.swap.max": "1000\n",
    });
    const s = readCgroupStats(fx.fs, CG);
    expect(s.memory?.available).toBe(5000n - 800n);
    expect(s.swap).toEqual({ usage: 300n, limit: 1000n, available: 700n });
  });

  test("a cgroup whose parent does not enable a controller has no section for it", () => {
    const fx = fixture("v2");
    fx.ops.mkdir(`${fx.root}/bare`); // the root's subtree_control enables nothing yet
    const s = readCgroupStats(fx.fs, "/bare");
    expect(s).toEqual({});
  });
});

test("an absent cgroup is NotFound", () => {
  const fx = fixture("v1");
  expect(() => readCgroupStats(fx.fs, "/nope")).toThrow(NotFoundError);
});

test("sumCgroupStats adds usage, drops limits", () => {
  const a = {
    cpu: { usageNs: 10n },
    memory: { usage: 100n, workingSet: 80n, rss: 50n, pageFaults: 1n, majorPageFaults: 0n, limit: 1000n, available: 920n },
    pids: { current: 2n, limit: 10n },
  };
  const b = { cpu: { usageNs: 5n }, memory: { usage: 10n, workingSet: 10n, rss: 5n, pageFaults: 2n, majorPageFaults: 1n, limit: undefined, available: undefined } };
  expect(sumCgroupStats([a, b])).toEqual({
    cpu: { usageNs: 15n },
    memory: { usage: 110n, workingSet: 90n, rss: 55n, pageFaults: 3n, majorPageFaults: 1n, limit: undefined, available: undefined },
    pids: { current: 2n, limit: undefined },
  });
  expect(sumCgroupStats([])).toEqual({});
});

test("usageNanoCores: CPU time over wall time, in nanocores", () => {
  // 1.5 s of CPU over 1 s of wall time: one and a half cores.
  expect(usageNanoCores({ timestampNs: 1_000_000_000n, usageNs: 0n }, { timestampNs: 2_000_000_000n, usageNs: 1_500_000_000n })).toBe(1_500_000_000n);
  expect(usageNanoCores({ timestampNs: 5n, usageNs: 0n }, { timestampNs: 5n, usageNs: 10n })).toBeUndefined();
  expect(usageNanoCores({ timestampNs: 1n, usageNs: 10n }, { timestampNs: 2n, usageNs: 5n })).toBeUndefined();
});
