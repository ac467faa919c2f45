// The CRI metrics RPCs (ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics)
// through the compiled daemon with conmon and runc, included_pod_metrics = ["all"]: a CNI pod's
// network rows per interface (eth0 counting the host's pings), its containers' rows checked
// against their cgroup files and /proc (memory, cpu, processes, block I/O), their spec, writable
// layer and PSI, an OOM kill counted, a host-network pod and a stopped
// one; then the same pods after a restart with the default configuration (no group: only
// container_last_seen). Root only (real cgroups, a bridge from Debian's CNI plugins). Everything
// made here (daemon, pods, cgroups, the bridge, ip_forward) is removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MetricType, NamespaceMode } from "../../src/proto/index.ts";
import { PLUGIN_DIR, freeSubnetPrefix, realPluginsRunnable, sh } from "../../src/network/test-helpers.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon, removeCgroupTree, unmountUnder } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const NET = `crio-pm${tag}`;
const BRIDGE = `cni-m${tag}`;
const CGROUP_ROOT = `/crio-metrics-${tag}`;
const MiB = 1024 * 1024;
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));

let reg: TestRegistry;
let d: Daemon | undefined;
let dir = "";
let IMAGE = "";
let subnetPrefix = "";
let ipForwardBefore = "";
let seq = 0;

function daemonConfig(includedPodMetrics?: string[]): string {
  return containerConfig(dir, { tables: includedPodMetrics ? ["[crio.stats]", `included_pod_metrics = ${JSON.stringify(includedPodMetrics)}`] : [] });
}

const start = (includedPodMetrics?: string[]) =>
  startDaemon({ dir, config: daemonConfig(includedPodMetrics), registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n` });

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("pod metrics tests need root");
  for (const tool of ["/usr/bin/conmon", "/usr/sbin/runc", "/usr/bin/nsenter"]) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing`);
  }
  if (!realPluginsRunnable) throw new Error(`the CNI plugins are missing from ${PLUGIN_DIR}`);
  ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  subnetPrefix = freeSubnetPrefix();
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", busyboxImage({ tag: "latest" }));
  IMAGE = `${reg.host}/test/busybox:latest`;
  dir = tempDir("crio-pod-metrics-");
  mkdirSync(join(dir, "net.d"), { recursive: true });
  writeFileSync(
    join(dir, "net.d", "10-test.conflist"),
    JSON.stringify({
      cniVersion: "1.0.0",
      name: NET,
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          ipam: { type: "host-local", dataDir: join(dir, "ipam"), ranges: [[{ subnet: `${subnetPrefix}.0/24` }]] },
        },
        { type: "loopback" },
      ],
    }),
  );
  d = await start(["all"]);
  await d.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
}, 60_000);

afterAll(async () => {
  const problems: string[] = [];
  if (d) {
    try {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) d = await start();
      for (const p of (await d.runtime.call("ListPodSandbox", {})).items) {
        await d.runtime.call("RemovePodSandbox", { podSandboxId: p.id }, 60_000).catch((e: Error) => problems.push(`RemovePodSandbox ${p.id}: ${e.message}`));
      }
      await d.stop();
    } catch (e) {
      problems.push(String(e));
    }
    unmountUnder(dir); // a failed test's leftovers: /dev/shm tmpfs mounts, pins, the shared <type>ns mounts
    await d.cleanup();
  }
  await reg?.stop();
  removeCgroupTree(CGROUP_ROOT, problems);

  sh(["ip", "link", "del", BRIDGE]);
  if (ipForwardBefore !== "") writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
}, 60_000);

interface Pod {
  id: string;
  config: any;
}

async function runPod(network: NamespaceMode): Promise<Pod> {
  seq++;
  const config = {
    metadata: { name: `metrics-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    logDirectory: join(dir, "pods", `p${seq}`),
    linux: {
      cgroupParent: `${CGROUP_ROOT}/pod${seq}`,
      securityContext: { namespaceOptions: { network, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
  };
  const r = await d!.runtime.call("RunPodSandbox", { config }, 30_000);
  return { id: r.podSandboxId, config };
}

async function runContainer(pod: Pod, name: string, command: string[], resources: Record<string, unknown> = {}): Promise<string> {
  const config = {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    logPath: `${name}.log`,
    linux: {
      resources,
      securityContext: { namespaceOptions: { ...pod.config.linux.securityContext.namespaceOptions } },
    },
  };
  const { containerId } = await d!.runtime.call("CreateContainer", { podSandboxId: pod.id, config, sandboxConfig: pod.config }, 30_000);
  await d!.runtime.call("StartContainer", { containerId }, 30_000);
  return containerId;
}

const logOf = (pod: Pod, name: string) => {
  const f = join(pod.config.logDirectory, `${name}.log`);
  return existsSync(f) ? readFileSync(f, "utf8") : "";
};

interface Row {
  name: string;
  timestamp: string | number;
  metricType: number;
  labelValues: string[];
  value: { value: string | number };
}

const listMetrics = async (): Promise<any[]> => (await d!.runtime.call("ListPodSandboxMetrics", {})).podMetrics;
const podOf = async (id: string) => (await listMetrics()).find((p) => p.podSandboxId === id);
const rowsOf = async (podId: string, ctrId: string): Promise<Row[]> => (await podOf(podId))?.containerMetrics.find((c: any) => c.containerId === ctrId)?.metrics ?? [];
/** The value of the row named `name` whose own label values (after the five base ones) are `extra`. */
function value(rows: Row[], name: string, ...extra: string[]): number | undefined {
  const r = rows.find((x) => x.name === name && x.labelValues.slice(5).join(",") === extra.join(","));
  return r === undefined ? undefined : Number(r.value.value);
}

/** A file of the container's cgroup in the v1 `controller` hierarchy. */
const cgFile = (pod: Pod, ctrId: string, controller: string, name: string) =>
  readFileSync(`/sys/fs/cgroup/${controller}${pod.config.linux.cgroupParent}/crio-${ctrId}/${name}`, "utf8");
const keyed = (text: string) => new Map(text.trim().split("\n").map((l) => l.split(/\s+/) as [string, string]).map(([k, v]) => [k, Number(v)]));

describe("included_pod_metrics = all", () => {
  let pod: Pod;
  let work = "";
  let oom = "";

  beforeAll(async () => {
    pod = await runPod(NamespaceMode.POD);
    // 20 MiB of shmem (working set), 4 MiB written to the rootfs and fsync'ed (block I/O issued by
    // the container), then asleep: its cgroup's counters stand still for the comparisons.
    work = await runContainer(
      pod,
      "work",
      ["/bin/sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=20 && dd if=/dev/zero of=/tmp/io bs=1048576 count=4 conv=fsync && echo ready && exec sleep 3600"],
      { memoryLimitInBytes: 64 * MiB, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 512 },
    );
    // A 64 MiB buffer under a 24 MiB limit: dd is OOM-killed, the shell sleeps on.
    oom = await runContainer(pod, "oom", ["/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?; exec sleep 3600"], {
      memoryLimitInBytes: 24 * MiB,
    });
    await waitFor(async () => logOf(pod, "work").includes("ready"), 20_000, () => `work never got ready: ${logOf(pod, "work")}`);
    await waitFor(async () => logOf(pod, "oom").includes("dd="), 20_000, () => `dd never ended: ${logOf(pod, "oom")}`);
  }, 60_000);

  test("ListMetricDescriptors: container_last_seen and every group's descriptors", async () => {
    const ds: any[] = (await d!.runtime.call("ListMetricDescriptors", {})).descriptors;
    expect(ds[0].name).toBe("container_last_seen");
    expect(ds).toHaveLength(56);
    const keys = Object.fromEntries(ds.map((x) => [x.name, x.labelKeys]));
    expect(keys.container_memory_working_set_bytes).toEqual(["id", "image", "namespace", "pod", "container"]);
    expect(keys.container_network_receive_bytes_total).toEqual(["id", "image", "namespace", "pod", "container", "interface"]);
    expect(keys.container_cpu_usage_seconds_total).toEqual(["id", "image", "namespace", "pod", "container", "cpu"]);
    const some = ["container_oom_events_total", "container_spec_memory_limit_bytes", "container_fs_usage_bytes", "container_pressure_io_waiting_seconds_total"];
    for (const name of [...some, "container_hugetlb_usage_bytes", "container_fs_writes_bytes_total", "container_threads"]) expect(keys[name], name).toBeDefined();
  });

  test("every row names a descriptor, has a value for each of its label keys, timestamp 0", async () => {
    const ds: any[] = (await d!.runtime.call("ListMetricDescriptors", {})).descriptors;
    const keys = new Map(ds.map((x) => [x.name, x.labelKeys as string[]]));
    const all = await listMetrics();
    const rows: Row[] = all.flatMap((p) => [...p.metrics, ...p.containerMetrics.flatMap((c: any) => c.metrics)]);
    expect(rows.length).toBeGreaterThan(100);
    for (const r of rows) {
      expect(keys.has(r.name), r.name).toBe(true);
      expect(r.labelValues.length, r.name).toBe(keys.get(r.name)!.length);
      expect(Number(r.timestamp), r.name).toBe(0);
    }
  });

  test("the pod's rows: eight counters per interface of its namespace, eth0 counting the host's pings", async () => {
    const ip = (await d!.runtime.call("PodSandboxStatus", { podSandboxId: pod.id })).status.network.ip as string;
    const before: Row[] = (await podOf(pod.id)).metrics;
    const ping = sh(["busybox", "ping", "-c", "3", "-i", "0.2", "-s", "1000", "-W", "2", ip]);
    expect(ping.exitCode).toBe(0);
    const after: Row[] = (await podOf(pod.id)).metrics;
    const base = [pod.id, "", "default", pod.config.metadata.name, "POD"];
    const ifaces = [...new Set(after.map((r) => r.labelValues[5]))].sort();
    expect(ifaces).toEqual(["eth0", "lo"]);
    expect(after).toHaveLength(16);
    for (const r of after) {
      expect(r.labelValues.slice(0, 5)).toEqual(base);
      expect(r.metricType).toBe(MetricType.COUNTER);
      expect(r.name).toStartWith("container_network_");
    }
    const v = (rows: Row[], name: string) => Number(rows.find((r) => r.name === name && r.labelValues[5] === "eth0")!.value.value);
    // Three 1028-byte ICMP payloads each way (plus headers; ARP may add a little).
    expect(v(after, "container_network_receive_bytes_total") - v(before, "container_network_receive_bytes_total")).toBeGreaterThanOrEqual(3 * 1028);
    expect(v(after, "container_network_transmit_bytes_total") - v(before, "container_network_transmit_bytes_total")).toBeGreaterThanOrEqual(3 * 1028);
    expect(v(after, "container_network_receive_packets_total") - v(before, "container_network_receive_packets_total")).toBeGreaterThanOrEqual(3);
    expect(v(after, "container_network_transmit_packets_total") - v(before, "container_network_transmit_packets_total")).toBeGreaterThanOrEqual(3);
    expect(v(after, "container_network_receive_errors_total")).toBe(0);
  });

  test("a container's rows: labels, last seen, memory and cpu as its cgroup files say", async () => {
    // The container sleeps; still, read the files before and after the call and use a sample
    // they agree on.
    const snapshot = () => ({
      usage: Number(cgFile(pod, work, "memory", "memory.usage_in_bytes")),
      max: Number(cgFile(pod, work, "memory", "memory.max_usage_in_bytes")),
      failcnt: Number(cgFile(pod, work, "memory", "memory.failcnt")),
      kmem: Number(cgFile(pod, work, "memory", "memory.kmem.usage_in_bytes")),
      stat: [...keyed(cgFile(pod, work, "memory", "memory.stat"))],
      percpu: cgFile(pod, work, "cpuacct", "cpuacct.usage_percpu").trim().split(/\s+/).map(Number),
      cpuStat: [...keyed(cgFile(pod, work, "cpu", "cpu.stat"))],
    });
    let rows: Row[] = [];
    let snap = snapshot();
    for (let i = 0; ; i++) {
      const a = snapshot();
      rows = await rowsOf(pod.id, work);
      snap = snapshot();
      if (JSON.stringify(a) === JSON.stringify(snap)) break;
      if (i === 5) throw new Error("the container's cgroup never held still");
    }
    expect(rows.length).toBeGreaterThan(30);
    for (const r of rows) expect(r.labelValues.slice(0, 5), r.name).toEqual([work, IMAGE, "default", pod.config.metadata.name, "work"]);
    expect(Math.abs(value(rows, "container_last_seen")! - Date.now() / 1000)).toBeLessThan(10);

    const stat = new Map(snap.stat);
    expect(value(rows, "container_memory_usage_bytes")).toBe(snap.usage);
    expect(value(rows, "container_memory_working_set_bytes")).toBe(snap.usage - stat.get("total_inactive_file")!);
    expect(value(rows, "container_memory_working_set_bytes")!).toBeGreaterThanOrEqual(20 * MiB);
    expect(value(rows, "container_memory_rss")).toBe(stat.get("total_rss"));
    expect(value(rows, "container_memory_cache")).toBe(stat.get("total_cache"));
    expect(value(rows, "container_memory_mapped_file")).toBe(stat.get("total_mapped_file"));
    expect(value(rows, "container_memory_max_usage_bytes")).toBe(snap.max);
    expect(value(rows, "container_memory_failcnt")).toBe(snap.failcnt);
    expect(value(rows, "container_memory_kernel_usage")).toBe(snap.kmem);
    expect(value(rows, "container_memory_swap")).toBe(stat.get("total_swap"));
    expect(value(rows, "container_memory_failures_total", "pgfault", "container")).toBe(stat.get("pgfault"));
    expect(value(rows, "container_memory_failures_total", "pgmajfault", "hierarchy")).toBe(stat.get("total_pgmajfault"));
    expect(rows.find((r) => r.name === "container_memory_usage_bytes")!.metricType).toBe(MetricType.GAUGE);

    const cpus = rows.filter((r) => r.name === "container_cpu_usage_seconds_total");
    expect(cpus.map((r) => r.labelValues[5])).toEqual(snap.percpu.flatMap((ns, i) => (ns > 0 ? [`cpu${String(i).padStart(2, "0")}`] : [])));
    for (const r of cpus) expect(Number(r.value.value)).toBe(Math.floor(snap.percpu[Number(r.labelValues[5]!.slice(3))]! / 1e9));
    expect(cpus[0]!.metricType).toBe(MetricType.COUNTER);
    const cpuStat = new Map(snap.cpuStat);
    expect(value(rows, "container_cpu_cfs_periods_total")).toBe(cpuStat.get("nr_periods"));
    expect(value(rows, "container_cpu_cfs_throttled_periods_total")).toBe(cpuStat.get("nr_throttled"));
    expect(value(rows, "container_cpu_user_seconds_total")).toBeDefined();
    expect(value(rows, "container_oom_events_total")).toBe(0);
  });

  test("spec, processes, writable layer, block I/O, pressure, huge pages", async () => {
    const rows = await rowsOf(pod.id, work);
    expect(value(rows, "container_spec_memory_limit_bytes")).toBe(64 * MiB);
    expect(value(rows, "container_spec_memory_swap_limit_bytes")).toBe(64 * MiB); // no swap on top
    expect(value(rows, "container_spec_cpu_quota")).toBe(50000);
    expect(value(rows, "container_spec_cpu_period")).toBe(100000);
    expect(value(rows, "container_spec_cpu_shares")).toBe(512);
    expect(value(rows, "container_spec_memory_reservation_limit_bytes")).toBe(0);
    expect(Math.abs(value(rows, "container_start_time_seconds")! - Date.now() / 1000)).toBeLessThan(120);

    // One process (sleep), its stdio; no task limit here unless pids.max says one.
    const procs = cgFile(pod, work, "pids", "cgroup.procs").trim().split("\n").map(Number);
    expect(procs).toHaveLength(1);
    expect(value(rows, "container_processes")).toBe(1);
    expect(value(rows, "container_threads")).toBe(Number(cgFile(pod, work, "pids", "pids.current")));
    const pidsMax = cgFile(pod, work, "pids", "pids.max").trim();
    expect(value(rows, "container_threads_max")).toBe(pidsMax === "max" ? 0 : Number(pidsMax));
    expect(value(rows, "container_file_descriptors")).toBe(readdirSync(`/proc/${procs[0]}/fd`).length);
    expect(value(rows, "container_sockets")).toBe(0);
    const nofile = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${procs[0]}/limits`, "utf8"))![1];
    expect(value(rows, "container_ulimits_soft", "max_open_files")).toBe(Number(nofile));

    // The 4 MiB file is in the writable layer.
    expect(value(rows, "container_fs_usage_bytes")!).toBeGreaterThanOrEqual(4 * MiB);
    expect(value(rows, "container_fs_usage_bytes")!).toBeLessThan(5 * MiB);
    expect(value(rows, "container_fs_limit_bytes")!).toBeGreaterThan(value(rows, "container_fs_usage_bytes")!);
    expect(value(rows, "container_fs_inodes_total")!).toBeGreaterThan(value(rows, "container_fs_inodes_free")!);
    // Block I/O mirrors the blkio throttle counters, device by device (some kernels count none
    // in v1 at all: then there are no rows).
    const perDevice = cgFile(pod, work, "blkio", "blkio.throttle.io_service_bytes_recursive")
      .split("\n")
      .map((l) => /^(\d+:\d+) (\w+) (\d+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[1]} ${m[2]!.toLowerCase()} ${m[3]}`);
    expect(rows.filter((r) => r.name === "container_blkio_device_usage_total").map((r) => `${r.labelValues[5]} ${r.labelValues[8]} ${r.value.value}`)).toEqual(perDevice);

    // Pressure from the v2 tree (hybrid nodes keep one), none without it.
    const v2 = `/sys/fs/cgroup/unified${pod.config.linux.cgroupParent}/crio-${work}/cpu.pressure`;
    const pressure = rows.filter((r) => r.name.startsWith("container_pressure_")).map((r) => r.name);
    expect(pressure).toHaveLength(existsSync(v2) ? 6 : 0);
    // Huge page rows only where the hugetlb controller is mounted.
    const huge = rows.filter((r) => r.name.startsWith("container_hugetlb_"));
    if (existsSync("/sys/fs/cgroup/hugetlb")) expect(huge.length).toBeGreaterThan(0);
    else expect(huge).toEqual([]);
  });

  test("an OOM kill: container_oom_events_total and the failure count", async () => {
    expect(logOf(pod, "oom")).toContain("dd=137");
    const rows = await rowsOf(pod.id, oom);
    expect(value(rows, "container_oom_events_total")).toBe(1);
    // Usage reached the limit (memory.failcnt stays 0 on some kernels: compared to the file).
    expect(value(rows, "container_memory_max_usage_bytes")).toBe(24 * MiB);
    expect(value(rows, "container_memory_failcnt")).toBe(Number(cgFile(pod, oom, "memory", "memory.failcnt")));
    expect(rows.find((r) => r.name === "container_oom_events_total")!.metricType).toBe(MetricType.COUNTER);
    expect(value(rows, "container_spec_memory_limit_bytes")).toBe(24 * MiB);
  });

  test("StreamPodSandboxMetrics answers what ListPodSandboxMetrics does", async () => {
    const msgs = await d!.runtime.stream("StreamPodSandboxMetrics", {});
    expect(msgs).toHaveLength(1);
    const streamed: any[] = msgs[0].podSandboxMetrics;
    const listed = await listMetrics();
    const shape = (ps: any[]) => ps.map((p) => `${p.podSandboxId}:${p.metrics.length}:${p.containerMetrics.map((c: any) => c.containerId).sort()}`).sort();
    expect(shape(streamed)).toEqual(shape(listed));
    expect(shape(streamed).some((s) => s.startsWith(pod.id))).toBe(true);
  });

  test("an exited container leaves; a host-network pod has no rows of its own; a stopped pod stays listed, empty", async () => {
    await d!.runtime.call("StopContainer", { containerId: oom, timeout: 0 }, 30_000);
    expect((await podOf(pod.id)).containerMetrics.map((c: any) => c.containerId)).toEqual([work]);

    const host = await runPod(NamespaceMode.NODE);
    const idle = await runContainer(host, "idle", ["sleep", "3600"]);
    const h = await podOf(host.id);
    expect(h.metrics).toEqual([]);
    expect(h.containerMetrics.map((c: any) => c.containerId)).toEqual([idle]);
    expect(value(h.containerMetrics[0].metrics, "container_memory_usage_bytes")!).toBeGreaterThan(0);

    await d!.runtime.call("StopPodSandbox", { podSandboxId: host.id }, 30_000);
    expect(await podOf(host.id)).toEqual({ podSandboxId: host.id, metrics: [], containerMetrics: [] });
  }, 30_000);
});

describe("the default configuration (no group), after a restart", () => {
  test("descriptors: only container_last_seen; rows: container_last_seen of each live container, nothing for the pods", async () => {
    const before = await listMetrics();
    const live = new Map(before.map((p) => [p.podSandboxId, p.containerMetrics.map((c: any) => c.containerId).sort()]));
    expect([...live.values()].flat().length).toBeGreaterThan(0);
    await d!.stop();
    await d!.cleanup();
    d = await start();

    const ds = (await d.runtime.call("ListMetricDescriptors", {})).descriptors;
    expect(ds).toEqual([{ name: "container_last_seen", help: "Last time a container was seen by the exporter", labelKeys: ["id", "image", "namespace", "pod", "container"] }]);
    const after = await listMetrics();
    expect(new Map(after.map((p) => [p.podSandboxId, p.containerMetrics.map((c: any) => c.containerId).sort()]))).toEqual(live);
    for (const p of after) {
      expect(p.metrics).toEqual([]);
      for (const c of p.containerMetrics) {
        expect(c.metrics.map((m: Row) => m.name)).toEqual(["container_last_seen"]);
        expect(c.metrics[0].labelValues[0]).toBe(c.containerId);
        expect(c.metrics[0].metricType).toBe(MetricType.GAUGE);
      }
    }
  }, 30_000);
});
