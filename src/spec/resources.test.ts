import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { resources } from "./resources.ts";
import { criResources } from "./test-helpers.ts";

const MiB = 1024 * 1024;

describe("resources", () => {
  test("nothing requested: empty resources, oom 0", () => {
    expect(resources(undefined)).toEqual({ resources: {}, oomScoreAdj: 0 });
  });
  test("cpu fields; zero values are omitted", () => {
    const r = resources(criResources({ cpuShares: 1024, cpuQuota: 0, cpuPeriod: 100000, cpusetCpus: "1,3" }));
    expect(r.resources.cpu).toEqual({ shares: 1024, period: 100000, cpus: "1,3" });
  });
  test("negative quota (-1 = unlimited) is passed through", () => {
    expect(resources(criResources({ cpuQuota: -1 })).resources.cpu).toEqual({ quota: -1 });
  });
  test("memory limit without swap request: swap = limit (no swap)", () => {
    expect(resources(criResources({ memoryLimitInBytes: 64 * MiB })).resources.memory).toEqual({ limit: 64 * MiB, swap: 64 * MiB });
  });
  test("swap limit is memory+swap; -1 is unlimited", () => {
    expect(resources(criResources({ memoryLimitInBytes: 64 * MiB, memorySwapLimitInBytes: 128 * MiB })).resources.memory).toEqual({
      limit: 64 * MiB,
      swap: 128 * MiB,
    });
    expect(resources(criResources({ memoryLimitInBytes: 64 * MiB, memorySwapLimitInBytes: -1 })).resources.memory?.swap).toBe(-1);
  });
  test("swap below the memory limit is InvalidArgument", () => {
    expect(() => resources(criResources({ memoryLimitInBytes: 64 * MiB, memorySwapLimitInBytes: 32 * MiB }))).toThrow(
      /cannot be lower than memory limit/,
    );
  });
  test("no swap accounting on the host: swap omitted", () => {
    expect(resources(criResources({ memoryLimitInBytes: 64 * MiB }), { hasMemorySwap: false }).resources.memory).toEqual({ limit: 64 * MiB });
  });
  test("swap alone (no memory limit) sets nothing", () => {
    expect(resources(criResources({ memorySwapLimitInBytes: 64 * MiB })).resources.memory).toBeUndefined();
  });
  test("memory below the minimum is InvalidArgument", () => {
    expect(() => resources(criResources({ memoryLimitInBytes: 4 * MiB }))).toThrow(InvalidArgumentError);
    expect(resources(criResources({ memoryLimitInBytes: 4 * MiB }), { containerMinMemory: MiB }).resources.memory?.limit).toBe(4 * MiB);
  });
  test("hugepages only with hugetlb", () => {
    const req = criResources({ hugepageLimits: [{ pageSize: "1GB", limit: 2 ** 30 }] });
    expect(resources(req).resources.hugepageLimits).toEqual([{ pageSize: "1GB", limit: 2 ** 30 }]);
    expect(resources(req, { hasHugetlb: false }).resources.hugepageLimits).toBeUndefined();
  });
  test("unified only on cgroup v2", () => {
    const req = criResources({ unified: { "memory.high": "1000000" } });
    expect(resources(req).resources.unified).toBeUndefined();
    expect(resources(req, { cgroupV2: true }).resources.unified).toEqual({ "memory.high": "1000000" });
  });
  test("pids limit from config when > 0", () => {
    expect(resources(undefined, { pidsLimit: 100 }).resources.pids).toEqual({ limit: 100 });
    expect(resources(undefined, { pidsLimit: -1 }).resources.pids).toBeUndefined();
  });
  test("oom_score_adj below the daemon's is raised to it and reported", () => {
    const r = resources(criResources({ oomScoreAdj: -998 }), { daemonOomScoreAdj: -500 });
    expect(r.oomScoreAdj).toBe(-500);
    expect(r.oomScoreAdjClamped).toEqual({ requested: -998, applied: -500 });
  });
  test("oom_score_adj at or above the daemon's is kept", () => {
    const r = resources(criResources({ oomScoreAdj: 1000 }), { daemonOomScoreAdj: -500 });
    expect(r.oomScoreAdj).toBe(1000);
    expect(r.oomScoreAdjClamped).toBeUndefined();
  });
  test("oom_score_adj outside -1000..1000 is InvalidArgument", () => {
    expect(() => resources(criResources({ oomScoreAdj: 1001 }))).toThrow(InvalidArgumentError);
  });
  test("values beyond 2^53 are InvalidArgument", () => {
    expect(() => resources(criResources({ memoryLimitInBytes: "9223372036854775807" }))).toThrow(/out of range/);
  });
});
