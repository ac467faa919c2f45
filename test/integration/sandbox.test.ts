// Pod sandboxes through the compiled daemon, checked from outside: pinned namespaces, the pod's
// address on a real bridge (Debian's CNI plugins: bridge + host-local + portmap + loopback), the
// hostname and resolv.conf files, the storage record, restart recovery, refusals that leave
// nothing behind, and no leaks over many cycles. Root only. Traffic goes to the pods' own
// namespaces only. Everything made here (daemons, pins, bridge, iptables rules, ip_forward, temp
// dirs) is removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname as hostHostname } from "node:os";
import { join } from "node:path";
import { NamespaceMode, PodSandboxState, Protocol } from "../../src/proto/index.ts";
import { listPinned } from "../../src/sandbox/namespaces.ts";
import { PLUGIN_DIR, freeSubnetPrefix, hostportChainsExist, realPluginsRunnable, sh, sweepNat } from "../../src/network/test-helpers.ts";
import { startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

const runnable = realPluginsRunnable;

const tag = Math.random().toString(16).slice(2, 8);
const NET = `crio-sb${tag}`;
const BRIDGE = `cni-s${tag}`; // 11 characters: under IFNAMSIZ
const BRIDGE2 = `cni-s${tag}x`;
/** The pods' cgroup parent (cgroupfs), removed in afterAll. */
const CGROUP_PARENT = `/crio-sbt-${tag}`;
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));
const base = tempDir("crio-sandbox-");
const ipamDir = join(base, "ipam");
const daemons: Daemon[] = [];
const dirs: string[] = [];
let subnetPrefix = "";
let subnetPrefix2 = "";
let ipForwardBefore = "";
let sharedChainsBefore = false;
let seq = 0;



function conflist(net = NET, bridge = BRIDGE, subnet = `${subnetPrefix}.0/24`): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: net,
    plugins: [
      {
        type: "bridge",
        bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", dataDir: ipamDir, routes: [{ dst: "0.0.0.0/0" }], ranges: [[{ subnet }]] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "loopback" },
    ],
  });
}

interface Env {
  d: Daemon;
  dir: string;
  nsDir: string;
  logDir: string;
}

function configFor(dir: string, cgroupManager = "cgroupfs"): string {
  return [
    "[crio]",
    `log_dir = ${JSON.stringify(join(dir, "logs"))}`,
    "[crio.runtime]",
    `cgroup_manager = "${cgroupManager}"`,
    `namespaces_dir = ${JSON.stringify(join(dir, "ns"))}`,
    'log_level = "debug"',
    "",
  ].join("\n");
}

/** A daemon on its own dir (kept for restarts), with the test network unless `network` is false. */
async function daemon(opts: { dir?: string; network?: boolean; conflist?: string; cgroupManager?: string } = {}): Promise<Env> {
  const dir = opts.dir ?? tempDir("crio-sbd-");
  if (!dirs.includes(dir)) dirs.push(dir);
  mkdirSync(join(dir, "net.d"), { recursive: true });
  if (opts.network !== false) writeFileSync(join(dir, "net.d", "10-test.conflist"), opts.conflist ?? conflist());
  const d = await startDaemon({ dir, config: configFor(dir, opts.cgroupManager) });
  daemons.push(d);
  if (opts.network !== false) {
    await waitFor(
      async () => (await d.runtime.call("Status", {})).status.conditions.find((c: any) => c.type === "NetworkReady").status === true,
      10_000,
      () => `NetworkReady stayed false:\n${d.logs()}`,
    );
  }
  return { d, dir, nsDir: join(dir, "ns"), logDir: join(dir, "logs") };
}

function podConfig(extra: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) {
  seq++;
  return {
    metadata: { name: `web-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0, ...metadata },
    labels: { app: "web", seq: String(seq) },
    annotations: { "example.com/a": "b" },
    ...extra,
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
      ...(extra.linux as object | undefined),
    },
  };
}

const ipamFiles = () => {
  const dir = join(ipamDir, NET);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
};
const storageRecords = (e: Env) => {
  const f = join(e.d.root, "overlay-containers", "containers.json");
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Array<{ id: string; metadata: string; names: string[] }>) : [];
};
const pins = (e: Env) => listPinned(e.nsDir, { allNames: true });
const userdata = (e: Env, id: string) => join(e.d.root, "overlay-containers", id, "userdata");
const rundata = (e: Env, id: string) => join(e.d.runroot, "overlay-containers", id, "userdata");
/** The mountinfo entry of `path` in this mount namespace (the daemon's): fstype and options. */
function mountAt(path: string): { fstype: string; opts: string; superOpts: string } | undefined {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [pre, post] = line.split(" - ");
    const f = pre?.split(" ") ?? [];
    if (f[4] !== path || post === undefined) continue;
    const [fstype, , superOpts] = post.split(" ");
    return { fstype: fstype!, opts: f[5]!, superOpts: superOpts ?? "" };
  }
  return undefined;
}
const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => (l.split(" ")[4] ?? "").startsWith(`${dir}/`)).length;
const CNI_RESULTS = "/var/lib/cni/results";
const cniCacheFiles = (net = NET) => (existsSync(CNI_RESULTS) ? readdirSync(CNI_RESULTS).filter((f) => f.startsWith(`${net}-`)) : []);
const codeOf = async (p: Promise<unknown>) => p.then(() => 0, (err: grpc.ServiceError) => err);

function expectClean(e: Env): void {
  expect(pins(e)).toEqual([]);
  expect(cgroupDirs(CGROUP_PARENT).flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((c) => c.isDirectory()).map((c) => c.name))).toEqual([]);
  expect(ipamFiles()).toEqual([]);
  expect(storageRecords(e)).toEqual([]);
}

beforeAll(() => {
  if (!runnable) return;
  ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  sharedChainsBefore = hostportChainsExist();
  subnetPrefix = freeSubnetPrefix();
  do subnetPrefix2 = freeSubnetPrefix();
  while (subnetPrefix2 === subnetPrefix);
});

afterAll(async () => {
  const problems: string[] = [];
  for (const d of daemons) await d.cleanup().catch((e) => problems.push(String(e)));
  if (!runnable) return;
  for (const dir of dirs) {
    // Pods' /dev/shm tmpfs mounts a failed test left.
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const mp = line.split(" ")[4] ?? "";
      if (mp.startsWith(`${dir}/`) && mp.endsWith("/shm")) sh(["umount", "-l", mp]);
    }
    // Pins, and the shared bind mounts of the <type>ns directories.
    for (const p of listPinned(join(dir, "ns"), { allNames: true })) {
      for (const path of Object.values(p.paths)) sh(["umount", "-l", path as string]);
    }
    for (const t of ["netns", "ipcns", "utsns", "userns"]) {
      const td = join(dir, "ns", t);
      while (existsSync(td) && sh(["umount", "-l", td]).exitCode === 0) {}
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      problems.push(String(err));
    }
  }
  for (const d of cgroupDirs(CGROUP_PARENT)) {
    for (const child of readdirSync(d, { withFileTypes: true })) if (child.isDirectory()) sh(["rmdir", join(d, child.name)]);
    sh(["rmdir", d]);
  }
  sh(["ip", "link", "del", BRIDGE]);
  sh(["ip", "link", "del", BRIDGE2]);
  try {
    sweepNat((l) => l.includes(`name: \\"${NET}`) || l.includes(NET), !sharedChainsBefore);
  } catch (err) {
    problems.push(String(err));
  }
  writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
  rmSync(base, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
});

describe("pod sandboxes", () => {
  let e: Env;
  beforeAll(async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    e = await daemon();
  });

  test("a pod gets pinned namespaces, eth0 with its IP (pingable), hostname and resolv.conf; stop and remove release everything", async () => {
    const cfg = podConfig({
      hostname: "web-host",
      dnsConfig: { servers: ["10.96.0.10", "10.96.0.11"], searches: ["default.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] },
      portMappings: [{ protocol: Protocol.TCP, containerPort: 80, hostPort: 0, hostIp: "" }],
    });
    const { podSandboxId: id } = await e.d.runtime.call("RunPodSandbox", { config: cfg, runtimeHandler: "" }, 30_000);
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    const st = (await e.d.runtime.call("PodSandboxStatus", { podSandboxId: id, verbose: true })).status;
    expect(st.state).toBe(PodSandboxState.SANDBOX_READY);
    expect(st.metadata).toEqual(cfg.metadata);
    expect(st.labels.app).toBe("web");
    expect(st.labels["io.kubernetes.pod.name"]).toBe(cfg.metadata.name);
    expect(st.annotations).toEqual({ "example.com/a": "b" });
    expect(st.runtimeHandler).toBe("runc");
    expect(st.linux.namespaces.options.network).toBe(NamespaceMode.POD);
    const createdMs = Number(BigInt(st.createdAt) / 1_000_000n);
    expect(Math.abs(createdMs - Date.now())).toBeLessThan(60_000);
    const ip = st.network.ip as string;
    expect(ip.startsWith(`${subnetPrefix}.`)).toBe(true);
    expect(st.network.additionalIps).toEqual([]);

    const [pin] = pins(e);
    expect(pin?.mounted.sort()).toEqual(["ipc", "net", "uts"]);
    const netns = pin!.paths.net!;
    const addr = sh(["nsenter", `--net=${netns}`, "ip", "-o", "-4", "addr", "show", "eth0"]);
    expect(addr.stdout).toContain(`inet ${ip}/24`);
    expect(sh(["busybox", "ping", "-c1", "-W2", ip]).exitCode).toBe(0);
    expect(sh(["nsenter", `--uts=${pin!.paths.uts!}`, "hostname"]).stdout.trim()).toBe("web-host");
    expect(readFileSync(join(rundata(e, id), "hostname"), "utf8")).toBe("web-host\n");
    expect(readFileSync(join(rundata(e, id), "resolv.conf"), "utf8")).toBe(
      "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:5\n",
    );
    expect(existsSync(join(e.logDir, id))).toBe(true);
    const rec = JSON.parse(readFileSync(join(userdata(e, id), "sandbox.json"), "utf8"));
    expect(rec.id).toBe(id);
    // The pod's own /dev/shm: a 64 MiB tmpfs, mode 1777, noexec/nosuid/nodev, in the run dir.
    const shm = join(rundata(e, id), "shm");
    expect(rec.shmPath).toBe(shm);
    expect(rec.hostsPath).toBeUndefined();
    const m = mountAt(shm);
    expect(m?.fstype).toBe("tmpfs");
    expect(m?.opts.split(",")).toEqual(expect.arrayContaining(["rw", "nosuid", "nodev", "noexec"]));
    expect(m?.superOpts.split(",")).toContain("size=65536k");
    expect(statSync(shm).mode & 0o7777).toBe(0o1777); // the kernel does not list tmpfs's default mode
    expect(rec.ips).toEqual([ip]);
    const [storage] = storageRecords(e);
    expect(storage?.id).toBe(id);
    const md = JSON.parse(storage!.metadata);
    expect(md).toMatchObject({ "pod-id": id, pod: true, "metadata-name": cfg.metadata.name, namespace: "default", uid: cfg.metadata.uid });
    expect(md["pod-name"]).toBe(`k8s_${cfg.metadata.name}_default_${cfg.metadata.uid}_0`);
    expect(ipamFiles()).toEqual([ip]);
    // The pod's own cgroup (no infra container: CRI-O makes it explicitly).
    expect(existsSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/crio-${id}`)).toBe(true);

    // List and its filters.
    const all = (await e.d.runtime.call("ListPodSandbox", {})).items;
    expect(all.map((s: any) => s.id)).toEqual([id]);
    expect((await e.d.runtime.call("ListPodSandbox", { filter: { id: id.slice(0, 8) } })).items).toHaveLength(1);
    expect((await e.d.runtime.call("ListPodSandbox", { filter: { labelSelector: { app: "web" } } })).items).toHaveLength(1);
    expect((await e.d.runtime.call("ListPodSandbox", { filter: { labelSelector: { app: "db" } } })).items).toHaveLength(0);
    expect((await e.d.runtime.call("ListPodSandbox", { filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } })).items).toHaveLength(0);
    // Status by unique prefix.
    expect((await e.d.runtime.call("PodSandboxStatus", { podSandboxId: id.slice(0, 12) })).status.id).toBe(id);

    await e.d.runtime.call("StopPodSandbox", { podSandboxId: id }, 30_000);
    expect(mountAt(shm)).toBeUndefined();
    expect(ipamFiles()).toEqual([]);
    expect(pins(e)).toEqual([]);
    expect(existsSync(netns)).toBe(false);
    expect((await e.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
    expect((await e.d.runtime.call("ListPodSandbox", { filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } })).items).toHaveLength(1);
    await e.d.runtime.call("StopPodSandbox", { podSandboxId: id }); // idempotent

    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id });
    expect(existsSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/crio-${id}`)).toBe(false);
    expect(storageRecords(e)).toEqual([]);
    expect(existsSync(userdata(e, id))).toBe(false);
    const err = await codeOf(e.d.runtime.call("PodSandboxStatus", { podSandboxId: id }));
    expect((err as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id });
    await e.d.runtime.call("StopPodSandbox", { podSandboxId: "0".repeat(64) });
    expect((await e.d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
    expectClean(e);
  });

  test("RunPodSandbox with the same metadata (even concurrently) returns the same ID", async () => {
    const cfg = podConfig();
    const [a, b] = await Promise.all([
      e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000),
      e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000),
    ]);
    expect(a.podSandboxId).toBe(b.podSandboxId);
    const c = await e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
    expect(c.podSandboxId).toBe(a.podSandboxId);
    expect((await e.d.runtime.call("ListPodSandbox", {})).items).toHaveLength(1);
    expect(pins(e)).toHaveLength(1);
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: a.podSandboxId }, 30_000);
    expectClean(e);
  });

  test("invalid metadata, an unknown handler, an unsafe sysctl: INVALID_ARGUMENT and nothing left", async () => {
    const cases: Array<[object, RegExp]> = [
      [{ config: podConfig({}, { name: "" }) }, /Metadata\.Name/],
      [{ config: podConfig({}, { namespace: "" }) }, /Metadata\.Namespace/],
      [{ config: podConfig({}, { uid: "" }) }, /Metadata\.Uid/],
      [{ config: podConfig(), runtimeHandler: "kata-nope" }, /runtime handler "kata-nope"/],
      [{ config: podConfig({ linux: { sysctls: { "kernel.panic": "1" } } }) }, /kernel\.panic/],
      [{ config: podConfig({ logDirectory: "relative/logs" }) }, /LogDirectory/],
    ];
    for (const [req, msg] of cases) {
      const err = (await codeOf(e.d.runtime.call("RunPodSandbox", req, 30_000))) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(msg);
    }
    expect((await e.d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
    expectClean(e);
  });

  test("a host-network pod skips CNI and pins only IPC", async () => {
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } } });
    const { podSandboxId: id } = await e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
    const st = (await e.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status;
    expect(st.network.ip).toBe("");
    expect(st.linux.namespaces.options.network).toBe(NamespaceMode.NODE);
    expect(ipamFiles()).toEqual([]);
    const [pin] = pins(e);
    expect(pin?.mounted).toEqual(["ipc"]);
    expect(readFileSync(join(rundata(e, id), "hostname"), "utf8")).toBe(`${hostHostname()}\n`);
    // The node's names: a copy of the host's /etc/hosts.
    const rec = JSON.parse(readFileSync(join(userdata(e, id), "sandbox.json"), "utf8"));
    expect(rec.hostsPath).toBe(join(rundata(e, id), "hosts"));
    expect(readFileSync(rec.hostsPath, "utf8")).toBe(readFileSync("/etc/hosts", "utf8"));
    expect(mountAt(rec.shmPath)?.fstype).toBe("tmpfs"); // its IPC is its own, so is its /dev/shm
    await e.d.runtime.call("StopPodSandbox", { podSandboxId: id });
    expect(mountAt(rec.shmPath)).toBeUndefined();
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id });
    expectClean(e);
  });

  test("100 run/stop/remove cycles leave no mounts, pins, cgroups, addresses, CNI cache entries, storage or veths", async () => {
    const count = () => ({
      mounts: mountsUnder(e.dir),
      pins: ["netns", "ipcns", "utsns"].map((t) => (existsSync(join(e.nsDir, t)) ? readdirSync(join(e.nsDir, t)).length : 0)),
      cgroups: cgroupDirs(CGROUP_PARENT).flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((c) => c.isDirectory())).length,
      ips: ipamFiles().length,
      cniCache: cniCacheFiles().length,
      storage: storageRecords(e).length,
      veths: sh(["ip", "-o", "link", "show", "master", BRIDGE]).stdout.split("\n").filter((l) => l.trim() !== "").length,
    });
    const before = count();
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      const { podSandboxId: id } = await e.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
      await e.d.runtime.call("StopPodSandbox", { podSandboxId: id }, 30_000);
      await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id }, 30_000);
    }
    const ms = performance.now() - t0;
    console.log(`100 sandbox cycles: ${(ms / 1000).toFixed(1)} s`);
    expect(count()).toEqual(before);
    expectClean(e);
    expect((await e.d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
  }, 180_000);
});

describe("restart", () => {
  test("a restarted daemon restores its sandboxes; stop and remove still work", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    const first = await daemon();
    const cfg = podConfig({ hostname: "survivor" });
    const { podSandboxId: id } = await first.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
    const { podSandboxId: id2 } = await first.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
    await first.d.runtime.call("StopPodSandbox", { podSandboxId: id2 }, 30_000);
    const before = (await first.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status;
    expect(await first.d.stop()).toBe(0);

    const second = await daemon({ dir: first.dir });
    const after = (await second.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status;
    expect(after).toEqual(before);
    const list = (await second.d.runtime.call("ListPodSandbox", {})).items;
    expect(list.map((s: any) => s.id).sort()).toEqual([id, id2].sort());
    expect((await second.d.runtime.call("PodSandboxStatus", { podSandboxId: id2 })).status.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
    // The name is still held: the same metadata gets the same pod.
    expect((await second.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000)).podSandboxId).toBe(id);
    expect(sh(["busybox", "ping", "-c1", "-W2", after.network.ip]).exitCode).toBe(0);
    // The READY pod's attachment was checked at start (CNI CHECK), without a GC or CHECK failure.
    await waitFor(async () => /CNI CHECK of a restored pod sandbox passed/.test(second.d.logs()), 10_000, () => second.d.logs());
    expect(second.d.logs()).not.toMatch(/CNI CHECK of a restored pod sandbox failed|CNI GC of stale pod attachments failed/);

    for (const x of [id, id2]) {
      await second.d.runtime.call("StopPodSandbox", { podSandboxId: x }, 30_000);
      await second.d.runtime.call("RemovePodSandbox", { podSandboxId: x }, 30_000);
    }
    expectClean(second);
  }, 60_000);

  test("after a reboot (pinned namespaces gone) a restored sandbox is NOTREADY; stop and remove still work", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    const first = await daemon();
    const { podSandboxId: id } = await first.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
    const rec = JSON.parse(readFileSync(join(userdata(first, id), "sandbox.json"), "utf8"));
    expect(await first.d.stop()).toBe(0);
    // What a reboot does to the pins (bind mounts on tmpfs): gone.
    for (const p of [rec.netnsPath, rec.ipcnsPath, rec.utsnsPath]) {
      sh(["umount", "-l", p]);
      rmSync(p, { force: true });
    }
    const second = await daemon({ dir: first.dir });
    expect((await second.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
    await second.d.runtime.call("StopPodSandbox", { podSandboxId: id }, 30_000);
    await second.d.runtime.call("RemovePodSandbox", { podSandboxId: id }, 30_000);
    expect((await second.d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
    expectClean(second);
  }, 60_000);

  test("at start, CNI GC tears down the cached attachment (and frees the address) of a pod this daemon does not have", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    // The daemon's CNI cache is the fixed /var/lib/cni: rather than writing an entry there by
    // hand, a pod of another daemon on the same network (stopped, so nothing answers for it) is
    // the pod that no longer exists.
    const other = await daemon();
    const { podSandboxId: id } = await other.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
    expect(cniCacheFiles().some((f) => f.includes(id))).toBe(true);
    expect(ipamFiles()).toHaveLength(1);
    expect(await other.d.stop()).toBe(0);

    const fresh = await daemon();
    await waitFor(async () => /CNI GC removed 1 stale attachment/.test(fresh.d.logs()), 10_000, () => fresh.d.logs());
    expect(cniCacheFiles().some((f) => f.includes(id))).toBe(false);
    expect(ipamFiles()).toEqual([]);
    expect(pins(fresh)).toEqual([]);
    expect(storageRecords(fresh)).toEqual([]);

    // The other daemon still has its pod: it goes cleanly (DEL without a cache entry).
    const back = await daemon({ dir: other.dir });
    await back.d.runtime.call("RemovePodSandbox", { podSandboxId: id }, 30_000);
    expectClean(back);
    expect(mountsUnder(join(back.d.runroot, "overlay-containers"))).toBe(0);
  }, 60_000);

  test("a half-made sandbox (no sandbox.json) is dropped at start with its pins", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    const first = await daemon();
    const { podSandboxId: id } = await first.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
    expect(await first.d.stop()).toBe(0);
    // As if the daemon had died before writing the record: only the progress file names the pins.
    const rec = JSON.parse(readFileSync(join(userdata(first, id), "sandbox.json"), "utf8"));
    writeFileSync(
      join(userdata(first, id), "creating.json"),
      JSON.stringify({ netnsPath: rec.netnsPath, ipcnsPath: rec.ipcnsPath, utsnsPath: rec.utsnsPath, network: true, cgroupParent: rec.cgroupParent, shmPath: rec.shmPath }),
    );
    rmSync(join(userdata(first, id), "sandbox.json"));
    expect(mountAt(rec.shmPath)?.fstype).toBe("tmpfs");
    const second = await daemon({ dir: first.dir });
    expect((await second.d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
    expect(mountAt(rec.shmPath)).toBeUndefined();
    expectClean(second);
  }, 60_000);
});

describe("rollback", () => {
  test("a CNI ADD failure (no address left) undoes the pins, cgroup and storage container of that pod only", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    // A /30: .1 is the gateway, .2 the only pod address.
    const e = await daemon({ conflist: conflist(`${NET}-tiny`, BRIDGE2, `${subnetPrefix2}.0/30`) });
    const { podSandboxId: first } = await e.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000);
    const err = (await codeOf(e.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000))) as grpc.ServiceError;
    expect(err.code).toBeGreaterThan(0);
    expect(err.details).toMatch(/no IP addresses available/);
    expect(pins(e)).toHaveLength(1);
    expect(storageRecords(e).map((r) => r.id)).toEqual([first]);
    expect((await e.d.runtime.call("ListPodSandbox", {})).items.map((s: any) => s.id)).toEqual([first]);
    const cgroups = readdirSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}`, { withFileTypes: true }).filter((c) => c.isDirectory());
    expect(cgroups.map((c) => c.name)).toEqual([`crio-${first}`]);
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: first }, 30_000);
    expect(pins(e)).toEqual([]);
    expect(storageRecords(e)).toEqual([]);
  }, 30_000);
});

describe("systemd cgroup manager without systemd", () => {
  test("the pod runs without a cgroup of its own (logged), and stops and goes cleanly", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    if (existsSync("/run/systemd/system")) return; // a systemd node makes the slice for real
    const e = await daemon({ cgroupManager: "systemd" });
    const cfg = podConfig();
    cfg.linux.cgroupParent = "";
    const { podSandboxId: id } = await e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
    expect((await e.d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status.state).toBe(PodSandboxState.SANDBOX_READY);
    expect(e.d.logs()).toMatch(/systemd is not reachable: pod sandbox cgroup skipped/);
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id }, 30_000);
    expectClean(e);
  }, 30_000);
});

describe("network not ready", () => {
  test("a pod needing CNI fails UNAVAILABLE when no network configuration appears, leaving nothing", async () => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}`);
    const e = await daemon({ network: false });
    const err = (await codeOf(e.d.runtime.call("RunPodSandbox", { config: podConfig() }, 30_000))) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expectClean(e);
    // A host-network pod does not need it.
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.NODE } } } });
    const { podSandboxId: id } = await e.d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
    expect(pins(e)).toEqual([]);
    const rec = JSON.parse(readFileSync(join(userdata(e, id), "sandbox.json"), "utf8"));
    expect(rec.shmPath).toBe("/dev/shm"); // host IPC: the host's /dev/shm, nothing mounted
    expect(mountAt(join(rundata(e, id), "shm"))).toBeUndefined();
    await e.d.runtime.call("RemovePodSandbox", { podSandboxId: id });
    expectClean(e);
  }, 30_000);
});
