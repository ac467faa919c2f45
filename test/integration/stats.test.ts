// The CRI stats RPCs through the compiled daemon with conmon and runc: a container's CPU and
// memory from its cgroup while it burns CPU and fills memory, its writable layer growing with a
// file written into the rootfs, the list filters; a CNI pod's stats (eth0 counters after the host
// pings it, process count, its containers) and a pod on the default parent, whose usage is its
// containers' sum. Root only (real cgroups, a bridge from Debian's CNI plugins). Everything made
// here (daemon, pods, cgroups, the bridge, ip_forward) is removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, NamespaceMode } from "../../src/proto/index.ts";
import { PLUGIN_DIR, freeSubnetPrefix, realPluginsRunnable, sh } from "../../src/network/test-helpers.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon, removeCgroupTree, unmountUnder } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const NET = `crio-st${tag}`;
const BRIDGE = `cni-t${tag}`;
/** Each pod here gets its own parent below this one, as the kubelet gives each pod its own. */
const CGROUP_ROOT = `/crio-stats-${tag}`;
/** The cgroupfs manager's parent for a pod that names none. */
const DEFAULT_PARENT = "/crio";
const MiB = 1024 * 1024;
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));

let reg: TestRegistry;
let d: Daemon;
let dir = "";
let IMAGE = "";
let subnetPrefix = "";
let ipForwardBefore = "";
let defaultParentExisted = false;
let seq = 0;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("stats tests need root");
  for (const tool of ["/usr/bin/conmon", "/usr/sbin/runc", "/usr/bin/nsenter"]) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing`);
  }
  if (!realPluginsRunnable) throw new Error(`the CNI plugins are missing from ${PLUGIN_DIR}`);
  ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  defaultParentExisted = cgroupDirs(DEFAULT_PARENT).length > 0;
  subnetPrefix = freeSubnetPrefix();
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", busyboxImage({ tag: "latest" }));
  IMAGE = `${reg.host}/test/busybox:latest`;
  dir = tempDir("crio-stats-");
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
  d = await startDaemon({
    dir,
    config: containerConfig(dir),
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
  });
  await d.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
}, 60_000);

afterAll(async () => {
  const problems: string[] = [];
  if (d) {
    try {
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

  if (!defaultParentExisted) for (const c of cgroupDirs(DEFAULT_PARENT)) sh(["rmdir", c]);
  sh(["ip", "link", "del", BRIDGE]);
  if (ipForwardBefore !== "") writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
}, 60_000);

interface Pod {
  id: string;
  config: any;
}

async function runPod(opts: { network?: NamespaceMode; cgroupParent?: string; labels?: Record<string, string> } = {}): Promise<Pod> {
  seq++;
  const config = {
    metadata: { name: `stats-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    logDirectory: join(dir, "pods", `p${seq}`),
    labels: { pod: `p${seq}`, ...opts.labels },
    annotations: { "example.com/pod": String(seq) },
    linux: {
      cgroupParent: opts.cgroupParent ?? `${CGROUP_ROOT}/pod${seq}`,
      securityContext: { namespaceOptions: { network: opts.network ?? NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
  };
  const r = await d.runtime.call("RunPodSandbox", { config }, 30_000);
  return { id: r.podSandboxId, config };
}

async function runContainer(pod: Pod, name: string, command: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const config = {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    logPath: `${name}.log`,
    labels: { app: name },
    annotations: { "example.com/ctr": name },
    linux: {
      securityContext: { namespaceOptions: { network: pod.config.linux.securityContext.namespaceOptions.network, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
    ...extra,
  };
  const { containerId } = await d.runtime.call("CreateContainer", { podSandboxId: pod.id, config, sandboxConfig: pod.config }, 30_000);
  await d.runtime.call("StartContainer", { containerId }, 30_000);
  return containerId;
}

const stats = async (id: string) => (await d.runtime.call("ContainerStats", { containerId: id })).stats;
const podStats = async (id: string) => (await d.runtime.call("PodSandboxStats", { podSandboxId: id })).stats;
const n = (v: { value: string | number } | null | undefined) => (v == null ? undefined : Number(v.value));
const codeOf = (p: Promise<unknown>) => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
const logOf = (pod: Pod, name: string) => {
  const f = join(pod.config.logDirectory, `${name}.log`);
  return existsSync(f) ? readFileSync(f, "utf8") : "";
};

describe("container stats", () => {
  let pod: Pod;
  let burn = "";
  let idle = "";
  let other: Pod;
  let otherIdle = "";

  beforeAll(async () => {
    pod = await runPod({ labels: { group: "a" } });
    // 50 MiB in the pod's /dev/shm (shmem, charged to the writer's cgroup and never inactive
    // file cache, so it is working set), then a busy loop.
    burn = await runContainer(pod, "burn", ["/bin/sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=50 && echo filled && while :; do :; done"], {
      linux: {
        resources: { memoryLimitInBytes: 256 * MiB },
        securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
      },
    });
    idle = await runContainer(pod, "idle", ["sleep", "3600"]);
    other = await runPod({ labels: { group: "b" } });
    otherIdle = await runContainer(other, "idle", ["sleep", "3600"]);
    await waitFor(async () => logOf(pod, "burn").includes("filled"), 20_000, () => `burn never filled /dev/shm: ${logOf(pod, "burn")}`);
  }, 60_000);

  test("cpu grows while the container burns it; memory counts the 50 MiB; attributes", async () => {
    const a = await stats(burn);
    expect(a.attributes.id).toBe(burn);
    expect(a.attributes.metadata).toEqual({ name: "burn", attempt: 0 });
    expect(a.attributes.labels).toEqual({ app: "burn" });
    expect(a.attributes.annotations).toEqual({ "example.com/ctr": "burn" });

    const ws = n(a.memory.workingSetBytes)!;
    expect(ws).toBeGreaterThanOrEqual(50 * MiB);
    expect(ws).toBeLessThan(120 * MiB);
    expect(n(a.memory.usageBytes)!).toBeGreaterThanOrEqual(ws);
    // The 256 MiB limit leaves the rest available.
    expect(n(a.memory.availableBytes)).toBe(256 * MiB - ws);
    expect(a.memory.rssBytes).toBeDefined();
    expect(n(a.memory.pageFaults)!).toBeGreaterThan(0);
    expect(Number(a.memory.timestamp)).toBeGreaterThan(0);

    await Bun.sleep(600);
    const b = await stats(burn);
    const cpuA = BigInt(a.cpu.usageCoreNanoSeconds.value);
    const cpuB = BigInt(b.cpu.usageCoreNanoSeconds.value);
    const wallNs = BigInt(b.cpu.timestamp) - BigInt(a.cpu.timestamp);
    expect(wallNs).toBeGreaterThan(500_000_000n);
    // A busy loop on a 2-CPU machine gets well over a fifth of a core over 0.6 s.
    expect(cpuB - cpuA).toBeGreaterThan(wallNs / 5n);
    // The rate against the previous sample: about one core.
    const nanoCores = n(b.cpu.usageNanoCores)!;
    expect(nanoCores).toBeGreaterThan(0.2e9);
    expect(nanoCores).toBeLessThan(2.2e9);

    // The idle container: little memory, CPU standing still.
    const i1 = await stats(idle);
    await Bun.sleep(200);
    const i2 = await stats(idle);
    expect(n(i1.memory.workingSetBytes)!).toBeLessThan(20 * MiB);
    expect(n(i1.memory.availableBytes)).toBeUndefined(); // no limit
    expect(BigInt(i2.cpu.usageCoreNanoSeconds.value) - BigInt(i1.cpu.usageCoreNanoSeconds.value)).toBeLessThan(20_000_000n);
  }, 30_000);

  test("the writable layer grows by a 5 MiB file written into the rootfs (the image's /tmp: it runs as uid 1000)", async () => {
    const before = (await stats(idle)).writableLayer;
    expect(before.fsId.mountpoint).toMatch(/\/merged$/);
    expect(Number(before.timestamp)).toBeGreaterThan(0);
    const r = await d.runtime.call("ExecSync", { containerId: idle, cmd: ["/bin/sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1048576 count=5"], timeout: 20 }, 30_000);
    expect(r.exitCode, Buffer.from(r.stderr).toString()).toBe(0);
    const after = (await stats(idle)).writableLayer;
    expect(n(after.usedBytes)! - n(before.usedBytes)!).toBeGreaterThanOrEqual(5 * MiB);
    expect(n(after.usedBytes)! - n(before.usedBytes)!).toBeLessThan(6 * MiB);
    expect(n(after.inodesUsed)! - n(before.inodesUsed)!).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("ListContainerStats: all live containers; filters by ID prefix, pod ID prefix, labels", async () => {
    const ids = async (filter?: object) =>
      ((await d.runtime.call("ListContainerStats", filter ? { filter } : {})).stats as any[]).map((s) => s.attributes.id as string).sort();
    const all = await ids();
    for (const id of [burn, idle, otherIdle]) expect(all).toContain(id);
    expect(await ids({ id: burn.slice(0, 12) })).toEqual([burn]);
    expect(await ids({ podSandboxId: pod.id.slice(0, 12) })).toEqual([burn, idle].sort());
    expect(await ids({ podSandboxId: other.id })).toEqual([otherIdle]);
    expect(await ids({ labelSelector: { app: "idle" }, podSandboxId: other.id })).toEqual([otherIdle]);
    expect((await ids({ labelSelector: { app: "idle" } })).filter((id) => id === idle || id === otherIdle)).toEqual([idle, otherIdle].sort());
    expect(await ids({ id: "f".repeat(64) })).toEqual([]);
    expect(await ids({ podSandboxId: "nope" })).toEqual([]);
    // Each entry is complete.
    const [one] = (await d.runtime.call("ListContainerStats", { filter: { id: idle } })).stats;
    expect(n(one.memory.workingSetBytes)!).toBeGreaterThan(0);
    expect(n(one.writableLayer.usedBytes)!).toBeGreaterThan(0);
  }, 30_000);

  test("the host-network pod: its cgroup's usage (both containers), processes; no network", async () => {
    const s = await podStats(pod.id);
    expect(s.attributes.id).toBe(pod.id);
    expect(s.attributes.metadata).toEqual(pod.config.metadata);
    expect(s.attributes.labels).toMatchObject({ pod: pod.config.labels.pod, group: "a" });
    expect(s.attributes.annotations).toEqual(pod.config.annotations);
    expect(s.linux.network).toBeUndefined();
    expect(s.linux.containers.map((c: any) => c.attributes.id).sort()).toEqual([burn, idle].sort());
    // The pod's cgroup holds both containers and their conmons.
    const sumWs = s.linux.containers.reduce((t: number, c: any) => t + n(c.memory.workingSetBytes)!, 0);
    expect(n(s.linux.memory.workingSetBytes)!).toBeGreaterThanOrEqual(sumWs - MiB);
    expect(n(s.linux.process.processCount)!).toBeGreaterThanOrEqual(4); // sh, sleep, two conmons
    const cpu = BigInt(s.linux.cpu.usageCoreNanoSeconds.value);
    for (const c of s.linux.containers) expect(cpu).toBeGreaterThanOrEqual(BigInt(c.cpu.usageCoreNanoSeconds.value));
  }, 30_000);

  test("unknown IDs are NotFound, empty IDs InvalidArgument", async () => {
    expect(await codeOf(d.runtime.call("ContainerStats", { containerId: "f".repeat(64) }))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(d.runtime.call("ContainerStats", { containerId: "" }))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await codeOf(d.runtime.call("PodSandboxStats", { podSandboxId: "f".repeat(64) }))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(d.runtime.call("PodSandboxStats", { podSandboxId: "" }))).toBe(grpc.status.INVALID_ARGUMENT);
  });

  test("an exited container has no stats and leaves the list", async () => {
    await d.runtime.call("StopContainer", { containerId: burn, timeout: 0 }, 30_000);
    const st = (await d.runtime.call("ContainerStatus", { containerId: burn })).status;
    expect(st.state).toBe(ContainerState.CONTAINER_EXITED);
    expect(await stats(burn)).toBeFalsy();
    const listed = (await d.runtime.call("ListContainerStats", { filter: { podSandboxId: pod.id } })).stats.map((s: any) => s.attributes.id);
    expect(listed).toEqual([idle]);
    expect((await podStats(pod.id)).linux.containers.map((c: any) => c.attributes.id)).toEqual([idle]);
  }, 30_000);
});

describe("pod sandbox stats", () => {
  test("a CNI pod: eth0 counts the host's pings; processes and containers; list filters", async () => {
    const pod = await runPod({ network: NamespaceMode.POD, labels: { net: "cni" } });
    const ip = (await d.runtime.call("PodSandboxStatus", { podSandboxId: pod.id })).status.network.ip as string;
    expect(ip.startsWith(`${subnetPrefix}.`)).toBe(true);

    // No container yet: the counters come through nsenter into the pinned namespace.
    const s0 = await podStats(pod.id);
    expect(s0.linux.network.defaultInterface.name).toBe("eth0");
    expect(s0.linux.network.interfaces.map((i: any) => i.name)).toContain("lo");
    expect(s0.linux.containers).toEqual([]);
    expect(n(s0.linux.process.processCount)).toBe(0);

    const ctr = await runContainer(pod, "idle", ["sleep", "3600"]);
    const before = (await podStats(pod.id)).linux.network.defaultInterface;
    const ping = sh(["busybox", "ping", "-c", "3", "-i", "0.2", "-s", "1000", "-W", "2", ip]);
    expect(ping.exitCode).toBe(0);
    const s = await podStats(pod.id);
    const eth0 = s.linux.network.defaultInterface;
    expect(eth0.name).toBe("eth0");
    // Three 1028-byte ICMP payloads each way (plus headers; ARP may add a little).
    expect(n(eth0.rxBytes)! - n(before.rxBytes)!).toBeGreaterThanOrEqual(3 * 1028);
    expect(n(eth0.txBytes)! - n(before.txBytes)!).toBeGreaterThanOrEqual(3 * 1028);
    expect(n(eth0.rxErrors)).toBe(0);
    expect(n(eth0.txErrors)).toBe(0);
    expect(Number(s.linux.network.timestamp)).toBeGreaterThan(0);

    expect(n(s.linux.process.processCount)!).toBeGreaterThanOrEqual(2); // sleep and its conmon
    expect(s.linux.containers.map((c: any) => c.attributes.id)).toEqual([ctr]);
    expect(n(s.linux.memory.workingSetBytes)!).toBeGreaterThan(0);
    expect(BigInt(s.linux.cpu.usageCoreNanoSeconds.value)).toBeGreaterThan(0n);
    // The second sample of the pod has a CPU rate.
    expect(s.linux.cpu.usageNanoCores).toBeDefined();

    const ids = async (filter?: object) =>
      ((await d.runtime.call("ListPodSandboxStats", filter ? { filter } : {})).stats as any[]).map((x) => x.attributes.id as string);
    expect(await ids()).toContain(pod.id);
    expect(await ids({ id: pod.id.slice(0, 10) })).toEqual([pod.id]);
    expect(await ids({ labelSelector: { net: "cni" } })).toEqual([pod.id]);
    expect(await ids({ labelSelector: { net: "none" } })).toEqual([]);
    expect(await ids({ id: "f".repeat(64) })).toEqual([]);
    const [listed] = (await d.runtime.call("ListPodSandboxStats", { filter: { id: pod.id } })).stats;
    expect(listed.linux.network.defaultInterface.name).toBe("eth0");

    // Stopped: the namespace is unpinned, no network; the exited container is gone from the stats.
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 30_000);
    const stopped = await podStats(pod.id);
    expect(stopped.linux.network).toBeUndefined();
    expect(stopped.linux.containers).toEqual([]);
  }, 40_000);

  test("a pod on the default parent reports the sum of its containers", async () => {
    const pod = await runPod({ cgroupParent: "" });
    const a = await runContainer(pod, "a", ["sleep", "3600"]);
    const b = await runContainer(pod, "b", ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=20 && exec sleep 3600"]);
    await waitFor(async () => n((await stats(b)).memory.workingSetBytes)! >= 20 * MiB, 10_000, () => "b never filled /dev/shm");
    const s = await podStats(pod.id);
    const ctrs = new Map<string, any>(s.linux.containers.map((c: any) => [c.attributes.id, c]));
    expect([...ctrs.keys()].sort()).toEqual([a, b].sort());
    const sum = (f: (c: any) => number) => [...ctrs.values()].reduce((t, c) => t + f(c), 0);
    // Both sleep: the pod's numbers are their sums, without the conmons (which /crio also holds)
    // or other pods. Memory is read a moment apart and v1 charges pages in per-CPU batches of
    // up to 64, hence the slack; a sleeping process's CPU time stands still.
    expect(Math.abs(n(s.linux.memory.workingSetBytes)! - sum((c) => n(c.memory.workingSetBytes)!))).toBeLessThan(512 * 1024);
    expect(Number(s.linux.cpu.usageCoreNanoSeconds.value)).toBe(sum((c) => Number(c.cpu.usageCoreNanoSeconds.value)));
    expect(n(s.linux.process.processCount)).toBe(2);
    expect(s.linux.memory.availableBytes).toBeUndefined();
  }, 30_000);
});
