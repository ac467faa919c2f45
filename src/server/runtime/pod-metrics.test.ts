// The pod metrics' pure parts: the groups of included_pod_metrics, the descriptors, and each
// group's values read from fixture cgroup trees (testing/fixture.ts) laid out as v1, hybrid and
// v2 nodes, a fake /proc and /proc/net/dev text. The RPCs run in test/integration/pod-metrics.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetricType } from "../../proto/index.ts";
import { readCgroupStats } from "../../cgroups/stats.ts";
import { makeFixture, type Fixture, type FixtureLayout } from "../../cgroups/testing/fixture.ts";
import {
  BASE_LABEL_KEYS,
  GROUP_DESCRIPTORS,
  METRIC_GROUPS,
  cpuSamples,
  diskIOSamples,
  diskSamples,
  enabledGroups,
  hugePageSizes,
  hugetlbSamples,
  memorySamples,
  metricDescriptors,
  networkSamples,
  oomSamples,
  pressureSamples,
  processSamples,
  specSamples,
  toMetrics,
  type CgroupSource,
  type Sample,
} from "./pod-metrics.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function fixture(layout: FixtureLayout): Fixture {
  const fx = makeFixture(layout);
  cleanups.push(() => fx.cleanup());
  return fx;
}

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const CG = "/kubepods/pod1/crio-abc";

/** Writes `files` into the cgroup's directory of the hierarchy holding `controller`. */
function put(fx: Fixture, controller: string, files: Record<string, string>): void {
  const dir = fx.fs.controllerDir(controller, CG);
  if (dir === undefined) throw new Error(`no ${controller} hierarchy`);
  for (const [name, content] of Object.entries(files)) writeFileSync(`${dir}/${name}`, content);
}

function source(fx: Fixture): CgroupSource {
  return { fs: fx.fs, cgroup: CG, stats: readCgroupStats(fx.fs, CG) };
}

/** "name{extra,labels} TYPE value", one per sample, to compare whole outputs at a glance. */
const rows = (samples: readonly Sample[]) =>
  samples.map((s) => `${s.desc.name}{${(s.labels ?? []).join(",")}} ${s.type === MetricType.COUNTER ? "COUNTER" : "GAUGE"} ${s.value}`);

const GiB = 1024n ** 3n;

describe("groups and descriptors", () => {
  test("enabledGroups: the named groups in order, each once; all is every group; unknown names skipped", () => {
    expect(enabledGroups([])).toEqual([]);
    expect(enabledGroups(["memory", "cpu", "memory"])).toEqual(["memory", "cpu"]);
    expect(enabledGroups(["all"])).toEqual([...METRIC_GROUPS]);
    expect(enabledGroups(["network", "all"])[0]).toBe("network");
    expect(enabledGroups(["network", "all"])).toHaveLength(METRIC_GROUPS.length);
    expect(enabledGroups(["bogus", "oom"])).toEqual(["oom"]);
  });

  test("only container_last_seen without groups; each group's descriptors after it", () => {
    expect(metricDescriptors([])).toEqual([
      { name: "container_last_seen", help: "Last time a container was seen by the exporter", labelKeys: ["id", "image", "namespace", "pod", "container"] },
    ]);
    expect(metricDescriptors(["cpu"]).map((d) => d.name)).toEqual([
      "container_last_seen",
      "container_cpu_user_seconds_total",
      "container_cpu_system_seconds_total",
      "container_cpu_usage_seconds_total",
      "container_cpu_cfs_periods_total",
      "container_cpu_cfs_throttled_periods_total",
      "container_cpu_cfs_throttled_seconds_total",
    ]);
    const all = metricDescriptors(["all"]);
    expect(all).toHaveLength(1 + 6 + 2 + 10 + 8 + 1 + 6 + 7 + 4 + 5 + 6);
    expect(new Set(all.map((d) => d.name)).size).toBe(all.length);
    for (const d of all) {
      expect(d.labelKeys.slice(0, 5), d.name).toEqual([...BASE_LABEL_KEYS]);
      expect(d.help, d.name).not.toBe("");
    }
    const keys = Object.fromEntries(all.map((d) => [d.name, d.labelKeys.slice(5)]));
    expect(keys.container_cpu_usage_seconds_total).toEqual(["cpu"]);
    expect(keys.container_network_receive_bytes_total).toEqual(["interface"]);
    expect(keys.container_blkio_device_usage_total).toEqual(["device", "major", "minor", "operation"]);
    expect(keys.container_memory_failures_total).toEqual(["failure_type", "scope"]);
    expect(keys.container_hugetlb_usage_bytes).toEqual(["pagesize"]);
    expect(keys.container_ulimits_soft).toEqual(["ulimit"]);
    expect(keys.container_memory_usage_bytes).toEqual([]);
  });

  test("the descriptors handed out are copies: a caller cannot change the tables", () => {
    metricDescriptors(["cpu"])[1]!.labelKeys.push("x");
    expect(GROUP_DESCRIPTORS.cpu[0]!.labelKeys).toEqual([...BASE_LABEL_KEYS]);
  });
});

for (const layout of ["v1", "hybrid"] as const) {
  describe(`${layout}: v1 controllers`, () => {
    test("cpu: per-CPU usage (unused CPUs left out), user/system from usage_user/usage_sys, CFS from cpu.stat", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "cpuacct", {
        "cpuacct.usage": "8500000000\n",
        "cpuacct.usage_percpu": "5500000000 0 3000000000 \n",
        "cpuacct.usage_user": "6900000000\n",
        "cpuacct.usage_sys": "1600000000\n",
      });
      put(fx, "cpu", { "cpu.stat": "nr_periods 120\nnr_throttled 7\nthrottled_time 2500000000\n" });
      expect(rows(cpuSamples(source(fx)))).toEqual([
        "container_cpu_user_seconds_total{} COUNTER 6",
        "container_cpu_system_seconds_total{} COUNTER 1",
        "container_cpu_usage_seconds_total{cpu00} COUNTER 5",
        "container_cpu_usage_seconds_total{cpu02} COUNTER 3",
        "container_cpu_cfs_periods_total{} COUNTER 120",
        "container_cpu_cfs_throttled_periods_total{} COUNTER 7",
        "container_cpu_cfs_throttled_seconds_total{} COUNTER 2",
      ]);
    });

    test("cpu: without usage_user/usage_sys, cpuacct.stat's USER_HZ ticks", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "cpuacct", { "cpuacct.usage": "1\n", "cpuacct.stat": "user 750\nsystem 120\n" });
      const r = rows(cpuSamples(source(fx)));
      expect(r).toContain("container_cpu_user_seconds_total{} COUNTER 7");
      expect(r).toContain("container_cpu_system_seconds_total{} COUNTER 1");
    });

    test("memory: cache, rss, kmem, mapped, swap, failcnt, usage, max usage, working set, faults by scope", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", {
        "memory.usage_in_bytes": "104857600\n",
        "memory.max_usage_in_bytes": "209715200\n",
        "memory.kmem.usage_in_bytes": "3145728\n",
        "memory.failcnt": "4\n",
        "memory.use_hierarchy": "1\n",
        "memory.stat": [
          "cache 100",
          "mapped_file 5",
          "pgfault 11",
          "pgmajfault 2",
          "total_cache 40960000",
          "total_rss 52428800",
          "total_mapped_file 8192",
          "total_inactive_file 10485760",
          "total_pgfault 12345",
          "total_pgmajfault 7",
          "total_swap 4096",
          "",
        ].join("\n"),
      });
      expect(rows(memorySamples(source(fx)))).toEqual([
        "container_memory_cache{} GAUGE 40960000",
        "container_memory_rss{} GAUGE 52428800",
        "container_memory_kernel_usage{} GAUGE 3145728",
        "container_memory_mapped_file{} GAUGE 8192",
        "container_memory_swap{} GAUGE 4096",
        "container_memory_failcnt{} COUNTER 4",
        "container_memory_usage_bytes{} GAUGE 104857600",
        "container_memory_max_usage_bytes{} GAUGE 209715200",
        `container_memory_working_set_bytes{} GAUGE ${104857600 - 10485760}`,
        "container_memory_failures_total{pgfault,container} COUNTER 11",
        "container_memory_failures_total{pgfault,hierarchy} COUNTER 12345",
        "container_memory_failures_total{pgmajfault,container} COUNTER 2",
        "container_memory_failures_total{pgmajfault,hierarchy} COUNTER 7",
      ]);
    });

    test("memory: without use_hierarchy the cgroup's own mapped_file; no swap accounting, no swap row", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", { "memory.usage_in_bytes": "10\n", "memory.use_hierarchy": "0\n", "memory.stat": "mapped_file 5\ntotal_mapped_file 9\n" });
      const r = rows(memorySamples(source(fx)));
      expect(r).toContain("container_memory_mapped_file{} GAUGE 5");
      expect(r.some((x) => x.startsWith("container_memory_swap{"))).toBe(false);
    });

    test("oom: memory.oom_control's oom_kill", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "memory", { "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n" });
      expect(rows(oomSamples(source(fx)))).toEqual(["container_oom_events_total{} COUNTER 3"]);
    });

    test("hugetlb: usage and max usage per page size; sizes the controller has no files for are skipped", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "hugetlb", { "hugetlb.2MB.usage_in_bytes": "4194304\n", "hugetlb.2MB.max_usage_in_bytes": "8388608\n" });
      expect(rows(hugetlbSamples(source(fx), ["2MB", "1GB"]))).toEqual([
        "container_hugetlb_usage_bytes{2MB} GAUGE 4194304",
        "container_hugetlb_max_usage_bytes{2MB} GAUGE 8388608",
      ]);
    });

    test("diskIO: throttle counters (ops and bytes per device; Total lines only in the device usage)", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "blkio", {
        "blkio.throttle.io_serviced_recursive": "254:0 Read 3\n254:0 Write 9\n254:0 Sync 9\n254:0 Async 3\n254:0 Discard 0\n254:0 Total 12\nTotal 12\n",
        "blkio.throttle.io_service_bytes_recursive": "254:0 Read 12288\n254:0 Write 4194304\n254:0 Total 4206592\nTotal 4206592\n",
        "blkio.bfq.io_service_bytes_recursive": "8:0 Read 1\nTotal 1\n",
      });
      expect(rows(diskIOSamples(source(fx)))).toEqual([
        "container_fs_reads_total{254:0} COUNTER 3",
        "container_fs_writes_total{254:0} COUNTER 9",
        "container_blkio_device_usage_total{254:0,254,0,read} COUNTER 12288",
        "container_fs_reads_bytes_total{254:0} COUNTER 12288",
        "container_blkio_device_usage_total{254:0,254,0,write} COUNTER 4194304",
        "container_fs_writes_bytes_total{254:0} COUNTER 4194304",
        "container_blkio_device_usage_total{254:0,254,0,total} COUNTER 4206592",
      ]);
    });

    test("diskIO: bfq's counters when the throttle files are missing", () => {
      const fx = fixture(layout);
      fx.fs.create(CG);
      put(fx, "blkio", { "blkio.bfq.io_service_bytes_recursive": "8:16 Write 512\nTotal 512\n" });
      expect(rows(diskIOSamples(source(fx)))).toEqual([
        "container_blkio_device_usage_total{8:16,8,16,write} COUNTER 512",
        "container_fs_writes_bytes_total{8:16} COUNTER 512",
      ]);
    });
  });
}

describe("hybrid and v1: pressure", () => {
  test("hybrid: the process-tracking v2 tree's PSI files (µs to whole seconds; cpu without a full line)", () => {
    const fx = fixture("hybrid");
    fx.fs.create(CG);
    const dir = `${fx.root}/unified${CG}`;
    writeFileSync(`${dir}/cpu.pressure`, "some avg10=0.00 avg60=0.00 avg300=0.00 total=7300000\n");
    writeFileSync(`${dir}/memory.pressure`, "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1999999\n");
    expect(rows(pressureSamples(source(fx)))).toEqual([
      "container_pressure_cpu_stalled_seconds_total{} COUNTER 0",
      "container_pressure_cpu_waiting_seconds_total{} COUNTER 7",
      "container_pressure_memory_stalled_seconds_total{} COUNTER 1",
      "container_pressure_memory_waiting_seconds_total{} COUNTER 2",
    ]);
  });

  test("v1 only: no v2 tree, no pressure", () => {
    const fx = fixture("v1");
    fx.fs.create(CG);
    expect(pressureSamples(source(fx))).toEqual([]);
  });
});

describe("v2", () => {
  test("cpu: one total row; user/system and CFS from cpu.stat's µs", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "cpu", {
      "cpu.stat": "usage_usec 9200000\nuser_usec 7100000\nsystem_usec 2100000\nnr_periods 40\nnr_throttled 3\nthrottled_usec 1500000\n",
    });
    expect(rows(cpuSamples(source(fx)))).toEqual([
      "container_cpu_user_seconds_total{} COUNTER 7",
      "container_cpu_system_seconds_total{} COUNTER 2",
      "container_cpu_usage_seconds_total{total} COUNTER 9",
      "container_cpu_cfs_periods_total{} COUNTER 40",
      "container_cpu_cfs_throttled_periods_total{} COUNTER 3",
      "container_cpu_cfs_throttled_seconds_total{} COUNTER 1",
    ]);
  });

  test("cpu: no usage yet, no usage row", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "cpu", { "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n" });
    expect(rows(cpuSamples(source(fx))).some((r) => r.startsWith("container_cpu_usage_seconds_total"))).toBe(false);
  });

  test("memory: file, kernel, file_mapped, memory.events max, memory.peak; faults in both scopes", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "memory", {
      "memory.current": "104857600\n",
      "memory.peak": "157286400\n",
      "memory.events": "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n",
      "memory.swap.current": "8192\n",
      "memory.stat": "anon 52428800\nfile 40960000\nkernel 2097152\nfile_mapped 4096\ninactive_file 10485760\npgfault 500\npgmajfault 3\n",
    });
    expect(rows(memorySamples(source(fx)))).toEqual([
      "container_memory_cache{} GAUGE 40960000",
      "container_memory_rss{} GAUGE 52428800",
      "container_memory_kernel_usage{} GAUGE 2097152",
      "container_memory_mapped_file{} GAUGE 4096",
      "container_memory_swap{} GAUGE 8192",
      "container_memory_failcnt{} COUNTER 6",
      "container_memory_usage_bytes{} GAUGE 104857600",
      "container_memory_max_usage_bytes{} GAUGE 157286400",
      `container_memory_working_set_bytes{} GAUGE ${104857600 - 10485760}`,
      "container_memory_failures_total{pgfault,container} COUNTER 500",
      "container_memory_failures_total{pgfault,hierarchy} COUNTER 500",
      "container_memory_failures_total{pgmajfault,container} COUNTER 3",
      "container_memory_failures_total{pgmajfault,hierarchy} COUNTER 3",
    ]);
    expect(rows(oomSamples(source(fx)))).toEqual(["container_oom_events_total{} COUNTER 1"]);
  });

  test("memory: values the kernel does not print (no memory.peak, no kernel line) are left out", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "memory", { "memory.current": "10\n", "memory.stat": "anon 1\n" });
    const names = rows(memorySamples(source(fx))).map((r) => r.split("{")[0]);
    expect(names).toEqual(["container_memory_rss", "container_memory_usage_bytes", "container_memory_working_set_bytes"]);
  });

  test("hugetlb: .current only (v2 keeps no maximum)", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "hugetlb", { "hugetlb.2MB.current": "2097152\n", "hugetlb.1GB.current": "0\n" });
    expect(rows(hugetlbSamples(source(fx), ["2MB", "1GB"]))).toEqual([
      "container_hugetlb_usage_bytes{2MB} GAUGE 2097152",
      "container_hugetlb_usage_bytes{1GB} GAUGE 0",
    ]);
  });

  test("diskIO: io.stat's bytes and ios per device, discards only in the device usage", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    put(fx, "io", { "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=512 dios=1\n259:1 rbytes=0 wbytes=0 rios=0 wios=0\n" });
    const r = rows(diskIOSamples(source(fx)));
    expect(r.slice(0, 3)).toEqual(["container_fs_reads_total{8:0} COUNTER 1", "container_fs_writes_total{8:0} COUNTER 2", "container_fs_reads_total{259:1} COUNTER 0"]);
    expect(r).toContain("container_blkio_device_usage_total{8:0,8,0,read} COUNTER 4096");
    expect(r).toContain("container_fs_writes_bytes_total{8:0} COUNTER 8192");
    expect(r).toContain("container_blkio_device_usage_total{8:0,8,0,discard} COUNTER 512");
    expect(r.filter((x) => x.includes("discard"))).toHaveLength(1);
  });

  test("pressure: cpu, memory and io of the cgroup", () => {
    const fx = fixture("v2");
    fx.fs.create(CG);
    for (const k of ["cpu", "memory", "io"]) put(fx, k, { [`${k}.pressure`]: "some avg10=0 avg60=0 avg300=0 total=3000000\nfull avg10=0 avg60=0 avg300=0 total=1000000\n" });
    expect(rows(pressureSamples(source(fx)))).toHaveLength(6);
    expect(rows(pressureSamples(source(fx)))[5]).toBe("container_pressure_io_waiting_seconds_total{} COUNTER 3");
  });
});

describe("process", () => {
  /** A fake /proc: pid → fd targets and the "Max open files" soft limit. */
  function fakeProc(procs: Record<number, { fds: string[]; nofile?: string }>): string {
    const root = tmp("fake-proc-");
    for (const [pid, p] of Object.entries(procs)) {
      mkdirSync(join(root, pid, "fd"), { recursive: true });
      p.fds.forEach((target, i) => symlinkSync(target, join(root, pid, "fd", String(i))));
      if (p.nofile !== undefined) {
        writeFileSync(
          join(root, pid, "limits"),
          [
            "Limit                     Soft Limit           Hard Limit           Units     ",
            "Max processes             63465                63465                processes ",
            `Max open files            ${p.nofile}                 524288               files     `,
            "",
          ].join("\n"),
        );
      }
    }
    return root;
  }

  test("fds and sockets of every process, the process count, tasks and their limit, init's open-files limit", () => {
    const fx = fixture("v1");
    fx.fs.create(CG);
    put(fx, "pids", { "pids.current": "5\n", "pids.max": "1024\n" });
    const proc = fakeProc({
      100: { fds: ["/dev/null", "pipe:[1]", "socket:[77]"], nofile: "1048576" },
      101: { fds: ["socket:[78]", "/tmp/x"], nofile: "1024" },
    });
    // 102 exited between reading cgroup.procs and /proc: skipped.
    expect(rows(processSamples(source(fx), [100, 101, 102], 101, proc))).toEqual([
      "container_file_descriptors{} GAUGE 5",
      "container_processes{} GAUGE 3",
      "container_sockets{} GAUGE 2",
      "container_threads{} GAUGE 5",
      "container_threads_max{} GAUGE 1024",
      "container_ulimits_soft{max_open_files} GAUGE 1024",
    ]);
  });

  test("no task limit is 0 (infinity); init not in the cgroup: the first process's limit; unlimited left out", () => {
    const fx = fixture("v1");
    fx.fs.create(CG);
    const proc = fakeProc({ 200: { fds: [], nofile: "4096" }, 201: { fds: [], nofile: "unlimited" } });
    const r = rows(processSamples(source(fx), [200], 999, proc));
    expect(r).toContain("container_threads_max{} GAUGE 0");
    expect(r).toContain("container_ulimits_soft{max_open_files} GAUGE 4096");
    expect(rows(processSamples(source(fx), [201], 201, proc)).some((x) => x.startsWith("container_ulimits_soft"))).toBe(false);
  });
});

describe("spec, disk, network", () => {
  const resources = {
    cpuPeriod: 100000,
    cpuQuota: 50000,
    cpuShares: 512,
    memoryLimitInBytes: 67108864,
    memorySwapLimitInBytes: 67108864,
    oomScoreAdj: 0,
    cpusetCpus: "",
    cpusetMems: "",
    hugepageLimits: [],
    unified: { "memory.min": "1048576" },
  };

  test("spec: limits, shares, period, creation time, quota when set, memory.min as the reservation", () => {
    expect(rows(specSamples({ resources, createdNs: "1700000000123456789" }))).toEqual([
      "container_spec_memory_limit_bytes{} GAUGE 67108864",
      "container_spec_memory_swap_limit_bytes{} GAUGE 67108864",
      "container_spec_cpu_shares{} GAUGE 512",
      "container_spec_cpu_period{} GAUGE 100000",
      "container_start_time_seconds{} GAUGE 1700000000",
      "container_spec_cpu_quota{} GAUGE 50000",
      "container_spec_memory_reservation_limit_bytes{} GAUGE 1048576",
    ]);
  });

  test("spec: no quota row without a quota; unlimited (-1) memory is 0; no memory.min is a 0 reservation", () => {
    const r = rows(specSamples({ resources: { ...resources, cpuQuota: -1, memorySwapLimitInBytes: -1, memoryLimitInBytes: 0, unified: {} }, createdNs: "0" }));
    expect(r.some((x) => x.startsWith("container_spec_cpu_quota"))).toBe(false);
    expect(r).toContain("container_spec_memory_swap_limit_bytes{} GAUGE 0");
    expect(r).toContain("container_spec_memory_reservation_limit_bytes{} GAUGE 0");
  });

  test("disk: statfs's inodes and size, the layer's usage", () => {
    expect(rows(diskSamples(5n * GiB, { blocks: 1000n, bsize: 4096n, files: 500n, ffree: 300n }))).toEqual([
      "container_fs_inodes_free{} GAUGE 300",
      "container_fs_inodes_total{} GAUGE 500",
      `container_fs_limit_bytes{} GAUGE ${1000 * 4096}`,
      `container_fs_usage_bytes{} GAUGE ${5n * GiB}`,
    ]);
  });

  test("network: eight counters per interface from /proc/net/dev, in the table's order", () => {
    const text = [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0",
      "  eth0: 9000000   12000    1    4    0     0          0         0   500000    3000    2    5    0     0       0          0",
      "bad: 1 2",
    ].join("\n");
    const r = rows(networkSamples(text));
    expect(r).toHaveLength(16);
    expect(r.slice(8)).toEqual([
      "container_network_receive_bytes_total{eth0} COUNTER 9000000",
      "container_network_receive_packets_total{eth0} COUNTER 12000",
      "container_network_receive_packets_dropped_total{eth0} COUNTER 4",
      "container_network_receive_errors_total{eth0} COUNTER 1",
      "container_network_transmit_bytes_total{eth0} COUNTER 500000",
      "container_network_transmit_packets_total{eth0} COUNTER 3000",
      "container_network_transmit_packets_dropped_total{eth0} COUNTER 5",
      "container_network_transmit_errors_total{eth0} COUNTER 2",
    ]);
  });
});

test("toMetrics: base labels then the sample's, timestamp 0 (collected on demand), the value", () => {
  const [m] = toMetrics(["id1", "img", "ns", "pod", "ctr"], diskSamples(7n, { blocks: 1n, bsize: 1n, files: 1n, ffree: 1n }).slice(3));
  expect(m).toEqual({
    name: "container_fs_usage_bytes",
    timestamp: 0n,
    metricType: MetricType.GAUGE,
    labelValues: ["id1", "img", "ns", "pod", "ctr"],
    value: { value: 7n },
  });
});

test("every group's rows have as many label values as their descriptor has keys, on every layout", () => {
  const byName = new Map(metricDescriptors(["all"]).map((d) => [d.name, d]));
  for (const layout of ["v1", "hybrid", "v2"] as const) {
    const fx = fixture(layout);
    fx.fs.create(CG);
    if (layout === "v2") {
      put(fx, "cpu", { "cpu.stat": "usage_usec 2000000\nuser_usec 1\nsystem_usec 1\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n", "cpu.pressure": "some total=1\n" });
      put(fx, "io", { "io.stat": "8:0 rbytes=1 wbytes=1 rios=1 wios=1\n" });
      put(fx, "hugetlb", { "hugetlb.2MB.current": "0\n" });
    } else {
      put(fx, "cpuacct", { "cpuacct.usage": "2000000000\n", "cpuacct.usage_percpu": "1000000000 1000000000\n" });
      put(fx, "blkio", { "blkio.throttle.io_service_bytes_recursive": "8:0 Read 1\n", "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n" });
      put(fx, "hugetlb", { "hugetlb.2MB.usage_in_bytes": "0\n", "hugetlb.2MB.max_usage_in_bytes": "0\n" });
    }
    put(fx, "memory", { "memory.stat": "pgfault 1\ntotal_pgfault 1\n" });
    const src = source(fx);
    const samples = [
      ...cpuSamples(src),
      ...memorySamples(src),
      ...oomSamples(src),
      ...hugetlbSamples(src, ["2MB"]),
      ...processSamples(src, [process.pid], process.pid),
      ...diskIOSamples(src),
      ...pressureSamples(src),
      ...networkSamples("h\nh\n eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"),
    ];
    expect(new Set(samples.map((s) => s.desc.name)).size, layout).toBeGreaterThan(20);
    for (const m of toMetrics(["a", "b", "c", "d", "e"], samples)) {
      const d = byName.get(m.name);
      expect(d, m.name).toBeDefined();
      expect(m.labelValues.length, `${layout} ${m.name}`).toBe(d!.labelKeys.length);
    }
  }
});

test("hugePageSizes: the node's sizes named as the cgroup files name them, smallest first", () => {
  const dir = tmp("hugepages-");
  for (const n of ["hugepages-1048576kB", "hugepages-2048kB", "hugepages-64kB", "other"]) mkdirSync(join(dir, n));
  expect(hugePageSizes(dir)).toEqual(["64KB", "2MB", "1GB"]);
  expect(hugePageSizes(join(dir, "missing"))).toEqual([]);
});
