// kill -9 of the daemon at every step of RunPodSandbox: after a restart on the same state the pod
// is either whole (READY, and stops and goes cleanly) or gone, and in both cases nothing leaks:
// no mount under the daemon's directories, no pinned namespace file, no host-local address, no
// cgroup, no veth, no hostport rule, no CNI cache entry, no storage container, no log directory
// the daemon made. kubelet's retry with the same metadata then works.
//
// The daemon dies at a chosen step through its test-only crash points (CRIO_TEST_KILL_AT, see
// CRASH_STEPS in src/server/runtime/run-pod-sandbox.ts). Two states no crash point can reach
// are made by hand: a kill inside the namespace pinning (one native call; the test leaves the
// files it would have left at the paths creating.json names) and a kill in the middle of the
// CNI ADD chain (a fake plugin after bridge and portmap holds the ADD while the test kills the
// daemon from outside). Also: two pods with one hostPort, and a plugin that fails ADD.
//
// Root only, with Debian's containernetworking-plugins (bridge, host-local, portmap, loopback).
// Traffic stays inside the test's own bridge. Everything made here (daemons, pins, bridge,
// iptables rules, cgroups, ip_forward, temp dirs) is removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { NamespaceMode, PodSandboxState, Protocol } from "../../src/proto/index.ts";
import { listPinned } from "../../src/sandbox/namespaces.ts";
import { CRASH_STEPS, type CrashStep } from "../../src/server/runtime/run-pod-sandbox.ts";
import {
  PLUGIN_DIR,
  fakePlugins,
  freeSubnetPrefix,
  hostportChainsExist,
  natRules,
  realPluginsRunnable,
  sh,
  sweepNat,
  type FakePlugins,
} from "../../src/network/test-helpers.ts";
import { pauseImage } from "../../scripts/lib/cri-bench.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

let reg: TestRegistry;

const tag = Math.random().toString(16).slice(2, 8);
const NET = `crio-kc${tag}`;
const BRIDGE = `cni-k${tag}`; // 11 characters: under IFNAMSIZ
/** The pods' cgroup parent (cgroupfs), removed in afterAll. */
const CGROUP_PARENT = `/crio-kct-${tag}`;
const HOST_PORT = 20000 + Math.floor(Math.random() * 20000);
const base = tempDir("crio-sbcrash-");
const ipamDir = join(base, "ipam");
/** One daemon state directory, restarted over and over. */
const dir = join(base, "daemon");
const nsDir = join(dir, "ns");
const CNI_RESULTS = "/var/lib/cni/results";
const daemons: Daemon[] = [];
let fake: FakePlugins | undefined;
let subnetPrefix = "";
let ipForwardBefore = "";
let sharedChainsBefore = false;
let seq = 0;

function needRoot(): void {
  if (!realPluginsRunnable) {
    throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR} (Debian package containernetworking-plugins)`);
  }
  for (const [tool, pkg] of [["iptables-save", "iptables"], ["ip", "iproute2"], ["unshare", "util-linux"]]) {
    if (Bun.which(tool as string) === null) throw new Error(`needs ${tool} (Debian package ${pkg})`);
  }
}

/** PIDs of processes whose command line mentions `needle` (the fake plugins' directory). */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(needle)) pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** bridge + host-local, portmap, then `extra` fake plugins (test-helpers' fake-plugin), then loopback. */
function conflist(extra: string[] = []): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: NET,
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", dataDir: ipamDir, routes: [{ dst: "0.0.0.0/0" }], ranges: [[{ subnet: `${subnetPrefix}.0/24` }]] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      ...extra.map((type) => ({ type })),
      { type: "loopback" },
    ],
  });
}

/** Starts a daemon on `dir` (with `env`), with the test network, and waits for NetworkReady. */
async function start(opts: { env?: Record<string, string>; extraPlugins?: string[] } = {}): Promise<Daemon> {
  // A test that failed half-way may have left its daemon on the socket.
  for (const old of daemons) if (old.proc.exitCode === null && old.proc.signalCode === null) await old.stop().catch(() => old.cleanup());
  mkdirSync(join(dir, "net.d"), { recursive: true });
  writeFileSync(join(dir, "net.d", "10-test.conflist"), conflist(opts.extraPlugins));
  const config = [
    "[crio]",
    `log_dir = ${JSON.stringify(join(dir, "logs"))}`,
    "[crio.image]",
    // The pods share one PID namespace, so each runs an infra container from this pause image.
    `pause_image = "${reg.host}/test/pause:latest"`,
    "[crio.runtime]",
    'cgroup_manager = "cgroupfs"',
    `namespaces_dir = ${JSON.stringify(nsDir)}`,
    `container_exits_dir = ${JSON.stringify(join(dir, "exits"))}`,
    `container_attach_socket_dir = ${JSON.stringify(join(dir, "attach"))}`,
    'log_level = "debug"',
    "[crio.runtime.runtimes.runc]",
    `runtime_root = ${JSON.stringify(join(dir, "runc"))}`,
    "[crio.network]",
    `plugin_dirs = [${JSON.stringify(fake!.dir)}]`,
    "",
  ].join("\n");
  const d = await startDaemon({ dir, config, env: opts.env, registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n` });
  daemons.push(d);
  await waitFor(
    async () => (await d.runtime.call("Status", {})).status.conditions.find((c: any) => c.type === "NetworkReady").status === true,
    10_000,
    () => `NetworkReady stayed false:\n${d.logs()}`,
  );
  return d;
}

function podConfig() {
  seq++;
  const name = `crash-${tag}-${seq}`;
  return {
    metadata: { name, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    // A directory the daemon makes (kubelet makes its own): recorded, and removed with a half-made pod.
    logDirectory: join(dir, "podlogs", name),
    portMappings: [{ protocol: Protocol.TCP, containerPort: 80, hostPort: HOST_PORT, hostIp: "" }],
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.POD, ipc: NamespaceMode.POD } },
    },
  };
}

const cgroupDirs = () => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, CGROUP_PARENT)).filter((d) => existsSync(d));
const podCgroups = () => cgroupDirs().flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((c) => c.isDirectory()).map((c) => `${d}/${c.name}`));
const ipamFiles = () => {
  const d = join(ipamDir, NET);
  return existsSync(d) ? readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
};
const storageRecords = () => {
  const f = join(dir, "root", "overlay-containers", "containers.json");
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Array<{ id: string; names: string[] }>) : [];
};
const userdata = (id: string) => join(dir, "root", "overlay-containers", id, "userdata");
const veths = () => sh(["ip", "-o", "link", "show", "master", BRIDGE]).stdout.split("\n").filter((l) => l.trim() !== "");
const cniCacheFiles = () => (existsSync(CNI_RESULTS) ? readdirSync(CNI_RESULTS).filter((f) => f.startsWith(`${NET}-`)) : []);
/** Per-pod nat chains of the test network ever seen (portmap's CNI-DN-*, bridge's ipMasq CNI-*). */
const podChains = new Set<string>();
/**
 * The test network's nat rules: those naming it (portmap and bridge comment their jumps with the
 * network name) and those of the per-pod chains they jump to; plus any per-pod chain seen before
 * that still exists.
 */
function natOfNet(): string[] {
  const lines = natRules();
  const rules = lines.filter((l) => l.startsWith("-A "));
  const named = rules.filter((l) => l.includes(NET));
  for (const l of named) {
    const target = / -j (CNI-(?:DN-)?[0-9a-f]+)$/.exec(l.trimEnd())?.[1];
    if (target) podChains.add(target);
  }
  return [
    ...named,
    ...rules.filter((l) => podChains.has(l.split(" ")[1] ?? "")),
    ...lines.filter((l) => l.startsWith(":") && podChains.has(l.slice(1).split(" ")[0] ?? "")),
  ];
}
/**
 * Mount points under the daemon's directory, but for the <type>ns directories themselves, which
 * the daemon makes shared bind mounts once and keeps (as iproute2 does for /var/run/netns).
 */
const mountsUnder = () => {
  // Kept by design: the namespace type directories (shared bind mounts for the pins) and the
  // store's private home bind mount <root>/overlay, made at its first layer mount as
  // containers-storage does.
  const typeDirs = new Set([...["netns", "ipcns", "utsns", "userns"].map((t) => join(nsDir, t)), join(dir, "root", "overlay")]);
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((mp) => mp.startsWith(`${dir}/`) && !typeDirs.has(mp));
};
const codeOf = (p: Promise<unknown>) => p.then(() => undefined, (err: grpc.ServiceError) => err);

/** Nothing of any pod is left (the daemon may still run: its list must be empty too). */
async function expectClean(d?: Daemon): Promise<void> {
  if (d) expect((await d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
  expect({
    storage: storageRecords().map((r) => r.id),
    pins: listPinned(nsDir, { allNames: true }).map((p) => p.paths),
    mounts: mountsUnder(),
    cgroups: podCgroups(),
    addresses: ipamFiles(),
    veths: veths(),
    cniCache: cniCacheFiles(),
    nat: natOfNet(),
    // The infra container: nothing in the runtime's state, no conmon or pause left running.
    runtime: existsSync(join(dir, "runc")) ? readdirSync(join(dir, "runc")) : [],
    monitors: monitorsOfDir(),
  }).toEqual({ storage: [], pins: [], mounts: [], cgroups: [], addresses: [], veths: [], cniCache: [], nat: [], runtime: [], monitors: [] });
}

/** conmon processes working for this test's daemon (their command lines name its directory). */
function monitorsOfDir(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd[0]?.endsWith("conmon") && cmd.some((a) => a.startsWith(`${dir}/`))) out.push(`${pid} ${cmd.join(" ")}`);
    } catch { /* gone */ }
  }
  return out;
}

/** Runs a pod on `d`, checks it READY on the test network with its pins and cgroup; returns its ID. */
async function runReady(d: Daemon, cfg: ReturnType<typeof podConfig>): Promise<string> {
  const { podSandboxId: id } = await d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
  const st = (await d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status;
  expect(st.state).toBe(PodSandboxState.SANDBOX_READY);
  expect(st.metadata).toEqual(cfg.metadata);
  expect((st.network.ip as string).startsWith(`${subnetPrefix}.`)).toBe(true);
  const [pin] = listPinned(nsDir);
  expect(pin?.mounted.sort()).toEqual(["ipc", "net", "uts"]);
  expect(ipamFiles()).toEqual([st.network.ip]);
  expect(existsSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}/crio-${id}`)).toBe(true);
  expect(existsSync(join(userdata(id), "creating.json"))).toBe(false);
  return id;
}

async function stopAndRemove(d: Daemon, id: string): Promise<void> {
  await d.runtime.call("StopPodSandbox", { podSandboxId: id }, 30_000);
  await d.runtime.call("RemovePodSandbox", { podSandboxId: id }, 30_000);
}

/** RunPodSandbox on a daemon that is going to die during it: the call fails and the daemon is gone. */
async function runUntilKilled(d: Daemon, cfg: ReturnType<typeof podConfig>, kill?: () => Promise<void>): Promise<void> {
  const call = codeOf(d.runtime.call("RunPodSandbox", { config: cfg }, 30_000));
  await kill?.();
  const err = await call;
  expect(err).toBeDefined();
  await d.exited(15_000);
  expect(d.proc.signalCode).toBe("SIGKILL");
  natOfNet(); // learns the per-pod chains the dead daemon's pod has, if any
  d.runtime.close();
  d.image.close();
}

/**
 * After the kill: restart without the hook, check the outcome (the whole pod, or nothing at all
 * with recovery having undone the rest), retry as kubelet does, and remove everything.
 */
async function restartAndCheck(cfg: ReturnType<typeof podConfig>, expected: "whole" | "nothing", killedId?: string): Promise<void> {
  const d = await start();
  const listed = (await d.runtime.call("ListPodSandbox", {})).items;
  if (expected === "nothing") {
    await expectClean(d);
    expect(existsSync(cfg.logDirectory)).toBe(false);
    if (killedId !== undefined) expect(d.logs()).toContain("removing a pod sandbox whose creation did not finish");
  } else {
    expect(listed.map((s: any) => [s.id, s.state])).toEqual([[killedId, PodSandboxState.SANDBOX_READY]]);
  }
  expect(d.logs()).not.toMatch(/could not (release|unpin|unmount|remove)|half-made pod sandbox/);

  // kubelet retries the RunPodSandbox that failed: the same pod if it is whole, else a new one.
  const id = await runReady(d, cfg);
  if (expected === "whole") expect(id).toBe(killedId!);
  else expect(id).not.toBe(killedId);
  expect(natOfNet().some((l) => l.includes(`--dport ${HOST_PORT}`))).toBe(true);
  await stopAndRemove(d, id);
  await expectClean(d);
  rmSync(cfg.logDirectory, { recursive: true, force: true }); // a removed pod's log directory stays (kubelet's)
  expect(await d.stop()).toBe(0);
}

/** The pod's ID, from its storage container (the daemon died before answering). */
function podIdOnDisk(cfg: ReturnType<typeof podConfig>): string | undefined {
  return storageRecords().find((r) => r.names.some((n) => n.includes(cfg.metadata.uid)))?.id;
}

beforeAll(async () => {
  if (!realPluginsRunnable) return;
  reg = await startRegistry();
  await pushImage(reg.url, "test/pause", pauseImage());
  ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  sharedChainsBefore = hostportChainsExist();
  subnetPrefix = freeSubnetPrefix();
  fake = fakePlugins("stall", "fail");
});

afterAll(async () => {
  const problems: string[] = [];
  for (const d of daemons) await d.cleanup().catch((e) => problems.push(String(e)));
  await reg?.stop();
  if (realPluginsRunnable) {
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const mp = line.split(" ")[4] ?? "";
      if (mp.startsWith(`${dir}/`) && !/\/(net|ipc|uts|user)ns$/.test(mp)) sh(["umount", "-l", mp]);
    }
    for (const t of ["netns", "ipcns", "utsns", "userns"]) {
      const td = join(nsDir, t);
      while (existsSync(td) && sh(["umount", "-l", td]).exitCode === 0) {}
    }
    for (const d of cgroupDirs()) {
      for (const child of readdirSync(d, { withFileTypes: true })) if (child.isDirectory()) sh(["rmdir", join(d, child.name)]);
      sh(["rmdir", d]);
    }
    sh(["ip", "link", "del", BRIDGE]);
    for (const f of cniCacheFiles()) rmSync(join(CNI_RESULTS, f), { force: true });
    try {
      sweepNat((l) => l.includes(NET), !sharedChainsBefore);
    } catch (err) {
      problems.push(String(err));
    }
    writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
  }
  fake?.remove();
  try {
    rmSync(base, { recursive: true, force: true });
  } catch (err) {
    problems.push(String(err));
  }
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
});

describe("kill -9 during RunPodSandbox", () => {
  for (const step of CRASH_STEPS) {
    const expected = step === "record" ? "whole" : "nothing";
    test(`after step ${step}: ${expected === "whole" ? "the whole pod" : "nothing"} after a restart, and no leak`, async () => {
      needRoot();
      const d = await start({ env: { CRIO_TEST_KILL_AT: step } });
      const cfg = podConfig();
      await runUntilKilled(d, cfg);
      const id = podIdOnDisk(cfg);
      expect(id).toMatch(/^[0-9a-f]{64}$/); // every step comes after the storage container
      expect(existsSync(join(userdata(id!), "sandbox.json"))).toBe(step === "record");
      await restartAndCheck(cfg, expected, id);
    }, 30_000);
  }

  test("inside the namespace pinning (one pin mounted, the next file made, the last not yet): nothing after a restart", async () => {
    needRoot();
    const d = await start({ env: { CRIO_TEST_KILL_AT: "pin-planned" satisfies CrashStep } });
    const cfg = podConfig();
    await runUntilKilled(d, cfg);
    const id = podIdOnDisk(cfg)!;
    const made = JSON.parse(readFileSync(join(userdata(id), "creating.json"), "utf8"));
    // The pinning window creates and bind-mounts net, then ipc, then uts (POD_NAMESPACE_TYPES order).
    for (const p of [made.netnsPath, made.ipcnsPath, made.utsnsPath]) mkdirSync(dirname(p), { recursive: true });
    writeFileSync(made.netnsPath, "");
    const pinned = sh(["unshare", `--net=${made.netnsPath}`, "true"]);
    if (pinned.exitCode !== 0) throw new Error(`unshare (Debian package util-linux) failed: ${pinned.stderr}`);
    writeFileSync(made.ipcnsPath, "");
    expect(listPinned(nsDir).map((p) => p.mounted)).toEqual([["net"]]);
    await restartAndCheck(cfg, "nothing", id);
  }, 30_000);

  test("in the middle of the CNI ADD chain (address, veth and hostport rules made, no result cached): nothing after a restart", async () => {
    needRoot();
    fake!.clearCalls();
    fake!.behave("stall", { ADD: { sleepMs: 2_000 } });
    const d = await start({ extraPlugins: ["stall"] });
    const cfg = podConfig();
    await runUntilKilled(d, cfg, async () => {
      await waitFor(() => fake!.trace().includes("stall ADD"), 15_000, () => `the stall plugin was never called:\n${d.logs()}`);
      d.proc.kill("SIGKILL");
    });
    // The stall plugin outlives the daemon that ran it: end it (by PID) before the restart.
    for (const pid of pidsMentioning(fake!.dir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // it ended by itself meanwhile
      }
    }
    expect(ipamFiles()).toHaveLength(1);
    expect(veths()).toHaveLength(1);
    expect(natOfNet().length).toBeGreaterThan(0);
    // Recovery DELs with the cached configuration, stall plugin included (its DEL answers at
    // once); kubelet's retry gets the configuration on disk, without it.
    await restartAndCheck(cfg, "nothing", podIdOnDisk(cfg));
  }, 45_000);
});

describe("refusals leave nothing", () => {
  test("two pods with one hostPort, and a host socket on it, both run (CRI-O and portmap hold no host port); removal leaves no rule", async () => {
    needRoot();
    // CRI-O's hostport manager and the portmap plugin only write DNAT rules, newest first; they
    // do not bind the port, so a taken port is not an error (the scheduler keeps hostPorts
    // unique on a node). What must hold: each pod's rules go with it.
    const listener = Bun.listen({ hostname: "127.0.0.1", port: HOST_PORT, socket: { data() {} } });
    try {
      const d = await start();
      const a = podConfig();
      const b = podConfig();
      const idA = (await d.runtime.call("RunPodSandbox", { config: a }, 30_000)).podSandboxId;
      const idB = (await d.runtime.call("RunPodSandbox", { config: b }, 30_000)).podSandboxId;
      for (const id of [idA, idB]) {
        expect((await d.runtime.call("PodSandboxStatus", { podSandboxId: id })).status.state).toBe(PodSandboxState.SANDBOX_READY);
      }
      const dnat = natOfNet().filter((l) => l.includes("DNAT") && l.includes(`:80`));
      expect(dnat.length).toBeGreaterThanOrEqual(2);
      for (const id of [idA, idB]) await stopAndRemove(d, id);
      await expectClean(d);
      for (const c of [a, b]) rmSync(c.logDirectory, { recursive: true, force: true });
      expect(await d.stop()).toBe(0);
    } finally {
      listener.stop(true);
    }
  }, 30_000);

  test("a plugin failing ADD after bridge and portmap: a clear error, and the address, veth and rules are rolled back", async () => {
    needRoot();
    fake!.behave("fail", { ADD: { exit: 1, stdout: { cniVersion: "1.0.0", code: 100, msg: "injected failure", details: "by the test" } } });
    const d = await start({ extraPlugins: ["fail"] });
    const cfg = podConfig();
    const err = (await codeOf(d.runtime.call("RunPodSandbox", { config: cfg }, 30_000))) as grpc.ServiceError;
    expect(err?.code).toBeGreaterThan(0);
    expect(err.details).toContain(`error adding pod default_${cfg.metadata.name} to CNI network "${NET}"`);
    expect(err.details).toContain("injected failure");
    await expectClean(d);
    expect(existsSync(cfg.logDirectory)).toBe(false);
    // The same pod runs once the plugin behaves.
    fake!.behave("fail", {});
    const id = await runReady(d, cfg);
    await stopAndRemove(d, id);
    await expectClean(d);
    expect(await d.stop()).toBe(0);
  }, 30_000);
});
