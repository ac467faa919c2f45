import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { Variant } from "./dbus.ts";
import { cpusetToBits, cpuSharesToWeight, parseCpuList, systemdResourceProperties, v1Writes, v2Writes } from "./resources.ts";

test("cpu.shares → cpu.weight maps min, default and max onto v2's (runc 1.3 / crun 1.23 formula)", () => {
  expect([cpuSharesToWeight(0), cpuSharesToWeight(2), cpuSharesToWeight(1024), cpuSharesToWeight(262144)]).toEqual([0, 1, 100, 10000]);
  expect(cpuSharesToWeight(512)).toBe(59); // ⌈10^((81 + 1125) / 612 − 7/34)⌉ = ⌈58.2⌉
});

test("cpuset lists parse and become systemd's little-endian bitmask", () => {
  expect(parseCpuList("0-2, 5,5")).toEqual([0, 1, 2, 5]);
  expect(() => parseCpuList("3-1")).toThrow(InvalidArgumentError);
  expect(() => parseCpuList(",")).toThrow(InvalidArgumentError);
  expect([...cpusetToBits("0-1")]).toEqual([0x03]);
  expect([...cpusetToBits("8")]).toEqual([0x00, 0x01]);
  expect([...cpusetToBits("0,9-10")]).toEqual([0x01, 0x06]);
});

describe("file writes", () => {
  const r = { memoryLimitBytes: 67108864, cpuShares: 512, cpuQuotaUs: 50000, cpuPeriodUs: 100000, cpusetCpus: "0", cpusetMems: "0", pidsLimit: 100 };
  test("v1: cpuset first, period before quota", () => {
    expect(v1Writes(r).map((w) => `${w.controller}/${w.file}=${w.value}`)).toEqual([
      "cpuset/cpuset.cpus=0", "cpuset/cpuset.mems=0", "memory/memory.limit_in_bytes=67108864", "cpu/cpu.shares=512",
      "cpu/cpu.cfs_period_us=100000", "cpu/cpu.cfs_quota_us=50000", "pids/pids.max=100",
    ]);
  });
  test("v2: weight converted, quota and period in cpu.max", () => {
    expect(v2Writes(r).map((w) => `${w.file}=${w.value}`)).toEqual([
      "cpuset.cpus=0", "cpuset.mems=0", "memory.max=67108864", "cpu.weight=59", "cpu.max=50000 100000", "pids.max=100",
    ]);
    expect(v2Writes({ cpuPeriodUs: 20000 }).map((w) => w.value)).toEqual(["max 20000"]);
  });
  test("unset or non-positive values write nothing", () => {
    expect(v1Writes({ memoryLimitBytes: 0, cpuQuotaUs: -1, pidsLimit: 0 })).toEqual([]);
  });
});

describe("systemd properties", () => {
  const r = { memoryLimitBytes: 1 << 30, cpuShares: 1024, cpuQuotaUs: 12345, cpuPeriodUs: 100000, pidsLimit: 50, cpusetCpus: "1", cpusetMems: "0" };
  test("v1 spellings, quota rounded up to 10 ms per second, no cpuset", () => {
    expect(systemdResourceProperties(r, { unified: false, systemdVersion: 252 })).toEqual([
      ["MemoryLimit", new Variant("t", 1073741824n)],
      ["CPUShares", new Variant("t", 1024n)],
      ["CPUQuotaPeriodUSec", new Variant("t", 100000n)],
      ["CPUQuotaPerSecUSec", new Variant("t", 130000n)],
      ["TasksMax", new Variant("t", 50n)],
    ]);
  });
  test("v2 spellings and AllowedCPUs/AllowedMemoryNodes from systemd 244", () => {
    const props = systemdResourceProperties(r, { unified: true, systemdVersion: 252 });
    expect(props.map(([k]) => k)).toEqual(["MemoryMax", "CPUWeight", "CPUQuotaPeriodUSec", "CPUQuotaPerSecUSec", "TasksMax", "AllowedCPUs", "AllowedMemoryNodes"]);
    expect(props.find(([k]) => k === "AllowedCPUs")?.[1]).toEqual(new Variant("ay", new Uint8Array([2])));
  });
  test("older systemd: no CPUQuotaPeriodUSec before 242, no AllowedCPUs before 244", () => {
    expect(systemdResourceProperties(r, { unified: true, systemdVersion: 241 }).map(([k]) => k)).toEqual(["MemoryMax", "CPUWeight", "CPUQuotaPerSecUSec", "TasksMax"]);
  });
});
