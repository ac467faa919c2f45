// CniNetwork against scripted plugins: what each plugin is given (order, prevResult, versions,
// runtimeConfig, CNI_ARGS), the cache, rollback and idempotency. No root needed: the netns is
// this process's own /proc/self/ns/net, which the fake plugins never touch.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { configureLogging } from "../log.ts";
import { CACHE_KIND, ResultCache } from "./cache.ts";
import { CniNetwork, type PodNetwork } from "./cni.ts";
import { fakePlugins } from "./test-helpers.ts";

const logs: string[] = [];
configureLogging({ write: (l) => logs.push(l) });
const fake = fakePlugins("a", "b", "c");
const root = mkdtempSync(join(tmpdir(), "crio-cni-unit-"));
afterAll(() => {
  fake.remove();
  rmSync(root, { recursive: true, force: true });
  configureLogging({ write: (l) => process.stderr.write(`${l}\n`) });
});

const NETNS = "/proc/self/ns/net";
let n = 0;
let netDir = "";
let cacheDir = "";
const nets: CniNetwork[] = [];
afterAll(() => {
  for (const x of nets) x.close();
});

beforeEach(() => {
  n++;
  netDir = join(root, `net${n}`);
  cacheDir = join(root, `cache${n}`);
  mkdirSync(netDir);
  fake.clearCalls();
  for (const t of ["a", "b", "c"]) fake.behave(t, {});
});

function writeList(file: string, body: Record<string, unknown>): void {
  writeFileSync(join(netDir, file), JSON.stringify(body));
}

const chain = (version = "1.0.0", extra: Record<string, unknown> = {}) => ({
  cniVersion: version,
  name: "testnet",
  plugins: [{ type: "a", opt: 1 }, { type: "b", capabilities: { portMappings: true, bandwidth: false } }, { type: "c", capabilities: { bandwidth: true } }],
  ...extra,
});

async function network(): Promise<CniNetwork> {
  const net = new CniNetwork({ networkDir: netDir, pluginDirs: [fake.dir], cacheDir, watch: false, loopback: false });
  nets.push(net);
  await net.start();
  return net;
}

const pod = (id = "pod1", extra: Partial<PodNetwork> = {}): PodNetwork => ({
  id,
  name: "web",
  namespace: "default",
  uid: "uid-1",
  netnsPath: NETNS,
  ...extra,
});

const calls = (cmd: string) => fake.calls().filter((c) => c.env.CNI_COMMAND === cmd);

describe("ADD", () => {
  test("runs the chain in order with prevResult, name, cniVersion and capability args for capable plugins", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    const res = await net.setUp(
      pod("pod1", {
        portMappings: [
          { hostPort: 8080, containerPort: 80, protocol: "TCP" },
          { hostPort: 0, containerPort: 9090 },
        ],
        bandwidth: { ingressRate: 1000 },
      }),
    );
    expect(res.ips).toEqual(["10.1.2.3"]);
    expect(res.network).toBe("testnet");
    expect(res.ifName).toBe("eth0");
    expect(fake.trace()).toEqual(["a ADD", "b ADD", "c ADD"]);
    const [a, b, c] = calls("ADD");
    expect(a?.stdin).toEqual({ type: "a", opt: 1, name: "testnet", cniVersion: "1.0.0" });
    expect(b?.stdin.prevResult).toMatchObject({ cniVersion: "1.0.0", ips: [{ address: "10.1.2.3/24" }] });
    expect(b?.stdin.runtimeConfig).toEqual({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] });
    expect(c?.stdin.runtimeConfig).toEqual({ bandwidth: { ingressRate: 1000 } });
    expect(a?.env).toMatchObject({
      CNI_CONTAINERID: "pod1",
      CNI_NETNS: NETNS,
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid-1",
      CNI_PATH: fake.dir,
    });
  });

  test("the cache entry is libcni's cniCacheV1", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod("pod1", { portMappings: [{ hostPort: 8080, containerPort: 80 }] }));
    const file = join(cacheDir, "results", "testnet-pod1-eth0");
    const entry = JSON.parse(readFileSync(file, "utf8"));
    expect(entry).toMatchObject({
      kind: CACHE_KIND,
      containerId: "pod1",
      ifName: "eth0",
      networkName: "testnet",
      netns: NETNS,
      cniArgs: [
        ["IgnoreUnknown", "1"],
        ["K8S_POD_NAMESPACE", "default"],
        ["K8S_POD_NAME", "web"],
        ["K8S_POD_INFRA_CONTAINER_ID", "pod1"],
        ["K8S_POD_UID", "uid-1"],
      ],
      capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
      result: { cniVersion: "1.0.0", ips: [{ address: "10.1.2.3/24" }] },
    });
    expect(JSON.parse(Buffer.from(entry.config, "base64").toString())).toEqual(chain());
    expect((await net.cachedAttachment("pod1"))?.ips).toEqual(["10.1.2.3"]);
  });

  test("0.3.1 results are read as 1.0 and prevResult is passed in the configuration's version", async () => {
    writeList("10-test.conflist", chain("0.3.1"));
    // Plugin a answers in 1.0.0 although the configuration says 0.3.1.
    fake.behave("a", { ADD: { stdout: { cniVersion: "1.0.0", ips: [{ address: "10.9.0.2/16", interface: 0 }], interfaces: [{ name: "eth0", sandbox: NETNS }] } } });
    const net = await network();
    const res = await net.setUp(pod());
    const b = calls("ADD")[1];
    expect(b?.stdin.prevResult).toEqual({
      cniVersion: "0.3.1",
      interfaces: [{ name: "eth0", sandbox: NETNS }],
      ips: [{ version: "4", address: "10.9.0.2/16", interface: 0 }],
    });
    expect(res.rawResult.cniVersion).toBe("0.3.1"); // c passed b's 0.3.1 prevResult through
    expect(res.result).toEqual({ cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: NETNS }], ips: [{ address: "10.9.0.2/16", interface: 0 }] });
    expect(res.ips).toEqual(["10.9.0.2"]);
  });

  test("a single .conf network works like a one-plugin list", async () => {
    writeFileSync(join(netDir, "10-one.conf"), JSON.stringify({ cniVersion: "0.4.0", name: "one", type: "a" }));
    const net = await network();
    expect((await net.setUp(pod())).ips).toEqual(["10.1.2.3"]);
    expect(calls("ADD")[0]?.stdin).toEqual({ cniVersion: "0.4.0", name: "one", type: "a" });
  });

  test("a failing plugin's message surfaces and the chain is rolled back with what is known", async () => {
    writeList("10-test.conflist", chain());
    fake.behave("b", { ADD: { exit: 1, stdout: { code: 11, msg: "no IP addresses available in range set" } } });
    const net = await network();
    const err = await net.setUp(pod()).catch((e) => e);
    expect(err.message).toBe('error adding pod default_web to CNI network "testnet": plugin type="b" failed (add): no IP addresses available in range set');
    expect(fake.trace()).toEqual(["a ADD", "b ADD", "c DEL", "b DEL", "a DEL"]);
    // DEL gets the result of the plugins that succeeded.
    for (const d of calls("DEL")) expect(d.stdin.prevResult).toMatchObject({ ips: [{ address: "10.1.2.3/24" }] });
    expect(existsSync(join(cacheDir, "results", "testnet-pod1-eth0"))).toBe(false);
  });

  test("when the rollback fails too, the entry stays and tearDown finishes the job", async () => {
    writeList("10-test.conflist", chain());
    fake.behave("c", { ADD: { exit: 1, stdout: { code: 7, msg: "bad" } }, DEL: { exit: 1, stdout: { code: 5, msg: "busy" } } });
    const net = await network();
    const err = await net.setUp(pod()).catch((e) => e);
    expect(err.message).toMatch(/plugin type="c" failed \(add\): bad \(cleanup failed: .*plugin type="c" failed \(del\): busy\)/);
    const entry = JSON.parse(readFileSync(join(cacheDir, "results", "testnet-pod1-eth0"), "utf8"));
    expect(entry.result).toMatchObject({ ips: [{ address: "10.1.2.3/24" }] });
    fake.behave("c", {});
    fake.clearCalls();
    await net.tearDown({ id: "pod1" });
    expect(fake.trace()).toEqual(["c DEL", "b DEL", "a DEL"]);
    expect(calls("DEL")[0]?.env.CNI_ARGS).toContain("K8S_POD_NAME=web");
    expect(existsSync(join(cacheDir, "results", "testnet-pod1-eth0"))).toBe(false);
  });

  test("a second ADD for an attached pod is refused; a half-done one is deleted first", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod());
    await expect(net.setUp(pod())).rejects.toBeInstanceOf(AlreadyExistsError);
    // A crash during ADD leaves an entry without result.
    const cache = new ResultCache(cacheDir);
    const entry = (await cache.read("testnet", "pod1", "eth0"))!;
    delete entry.result;
    await cache.write(entry);
    fake.clearCalls();
    await net.setUp(pod());
    expect(fake.trace()).toEqual(["c DEL", "b DEL", "a DEL", "a ADD", "b ADD", "c ADD"]);
    expect(calls("DEL")[0]?.stdin.prevResult).toBeUndefined();
  });

  test("refuses a path that is not a network namespace, and says why the network is not ready", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await expect(net.setUp(pod("p", { netnsPath: "/etc/hostname" }))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(net.setUp(pod("bad id!"))).rejects.toBeInstanceOf(InvalidArgumentError);
    unlinkSync(join(netDir, "10-test.conflist"));
    await net.watcher.reload();
    const err = await net.setUp(pod()).catch((e) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err.message).toBe(`Network plugin returns error: no CNI configuration file in ${netDir}. Has your network provider started?`);
    expect(fake.trace()).toEqual([]);
  });
});

describe("DEL", () => {
  test("reverse order, cached prevResult and arguments, cache removed", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod("pod1", { portMappings: [{ hostPort: 8080, containerPort: 80 }] }));
    fake.clearCalls();
    await net.tearDown({ id: "pod1" });
    expect(fake.trace()).toEqual(["c DEL", "b DEL", "a DEL"]);
    const [c, b] = calls("DEL");
    expect(c?.stdin.prevResult).toMatchObject({ ips: [{ address: "10.1.2.3/24" }] });
    expect(b?.stdin.runtimeConfig).toEqual({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] });
    expect(c?.env.CNI_NETNS).toBe(NETNS); // the cached netns, still a namespace
    expect(c?.env.CNI_ARGS).toContain("K8S_POD_UID=uid-1");
    expect(existsSync(join(cacheDir, "results", "testnet-pod1-eth0"))).toBe(false);
  });

  test("after a restart, DEL uses the cached configuration even if the file changed", async () => {
    writeList("10-test.conflist", chain());
    const first = await network();
    await first.setUp(pod());
    first.close();
    writeList("10-test.conflist", { cniVersion: "1.0.0", name: "testnet", plugins: [{ type: "a" }] });
    const second = await network();
    fake.clearCalls();
    await second.tearDown({ id: "pod1" });
    expect(fake.trace()).toEqual(["c DEL", "b DEL", "a DEL"]);
  });

  test("is idempotent: without a cache entry it runs the configured chain without prevResult", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.tearDown({ id: "never", netnsPath: "/run/netns/does-not-exist", portMappings: [{ hostPort: 1, containerPort: 2 }] });
    expect(fake.trace()).toEqual(["c DEL", "b DEL", "a DEL"]);
    const [c, b] = calls("DEL");
    expect(c?.stdin.prevResult).toBeUndefined();
    expect(c?.env.CNI_NETNS).toBe(""); // a vanished netns is passed as none
    expect(b?.stdin.runtimeConfig).toEqual({ portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" }] });
    await net.tearDown({ id: "never" });
    // With no configuration at all there is nothing to run.
    unlinkSync(join(netDir, "10-test.conflist"));
    await net.watcher.reload();
    fake.clearCalls();
    await net.tearDown({ id: "never" });
    expect(fake.trace()).toEqual([]);
  });

  test("0.3.x networks get no prevResult on DEL (it arrived in 0.4.0)", async () => {
    writeList("10-test.conflist", chain("0.3.1"));
    const net = await network();
    await net.setUp(pod());
    fake.clearCalls();
    await net.tearDown({ id: "pod1" });
    expect(calls("DEL").map((c) => c.stdin.prevResult)).toEqual([undefined, undefined, undefined]);
  });

  test("a failed DEL keeps the entry and reports the plugin; retry succeeds", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod());
    fake.behave("b", { DEL: { exit: 1, stdout: { code: 5, msg: "iptables is locked" } } });
    await expect(net.tearDown({ id: "pod1", name: "web", namespace: "default" })).rejects.toThrow(
      'error removing pod default_web from CNI network "testnet": plugin type="b" failed (del): iptables is locked',
    );
    expect(existsSync(join(cacheDir, "results", "testnet-pod1-eth0"))).toBe(true);
    fake.behave("b", {});
    await net.tearDown({ id: "pod1" });
    expect(existsSync(join(cacheDir, "results", "testnet-pod1-eth0"))).toBe(false);
  });

  test("gc tears down cached attachments of pods that are gone", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod("keep"));
    await net.setUp(pod("gone"));
    expect(await net.gc(new Set(["keep"]))).toEqual(["gone"]);
    expect(await net.cachedAttachment("keep")).toBeDefined();
    expect(await net.cachedAttachment("gone")).toBeUndefined();
  });
});

describe("CHECK and STATUS", () => {
  test("CHECK runs with the cached result; disableCheck and 0.3.x skip it", async () => {
    writeList("10-test.conflist", chain());
    const net = await network();
    await net.setUp(pod());
    fake.clearCalls();
    const res = await net.check({ id: "pod1" });
    expect(res.ips).toEqual(["10.1.2.3"]);
    expect(fake.trace()).toEqual(["a CHECK", "b CHECK", "c CHECK"]);
    expect(calls("CHECK")[0]?.stdin.prevResult).toMatchObject({ ips: [{ address: "10.1.2.3/24" }] });

    fake.behave("b", { CHECK: { exit: 1, stdout: { code: 999, msg: "eth0 is gone" } } });
    await expect(net.check({ id: "pod1" })).rejects.toThrow(/plugin type="b" failed \(check\): eth0 is gone/);
    await net.tearDown({ id: "pod1" });

    writeList("10-test.conflist", chain("1.0.0", { disableCheck: true }));
    await net.watcher.reload();
    await net.setUp(pod());
    fake.clearCalls();
    expect((await net.check({ id: "pod1" })).ips).toEqual(["10.1.2.3"]);
    expect(fake.trace()).toEqual([]);
  });

  test("STATUS is asked of 1.1.0 networks only", async () => {
    writeList("10-test.conflist", chain("1.0.0"));
    const net = await network();
    expect(await net.status()).toEqual({ ready: true, reason: "", message: "" });
    expect(fake.trace()).toEqual([]);
    // VERSION answers are cached per binary: plugins speaking 1.1.0 get types of their own.
    fake.behave("s1", { versions: ["1.0.0", "1.1.0"] });
    fake.behave("s2", { versions: ["1.0.0", "1.1.0"] });
    fake.install("s1", "s2");
    writeList("10-test.conflist", { cniVersion: "1.1.0", name: "testnet", plugins: [{ type: "s1" }, { type: "s2" }] });
    await net.watcher.reload();
    expect((await net.status()).ready).toBe(true);
    expect(fake.trace()).toEqual(["s1 STATUS", "s2 STATUS"]);
    expect(calls("STATUS")[0]?.stdin).toEqual({ type: "s1", name: "testnet", cniVersion: "1.1.0" });
    fake.behave("s2", { versions: ["1.0.0", "1.1.0"], STATUS: { exit: 1, stdout: { code: 50, msg: "not ready yet" } } });
    expect(await net.status()).toEqual({
      ready: false,
      reason: "NetworkPluginNotReady",
      message: 'Network plugin returns error: plugin type="s2" failed (status): not ready yet',
    });
  });
});

describe("concurrency", () => {
  test("operations on one pod never overlap", async () => {
    writeList("10-test.conflist", chain());
    fake.behave("a", { ADD: { sleepMs: 200 } });
    const net = await network();
    const add = net.setUp(pod());
    await Bun.sleep(20);
    const del = net.tearDown({ id: "pod1" });
    await Promise.all([add, del]);
    expect(fake.trace()).toEqual(["a ADD", "b ADD", "c ADD", "c DEL", "b DEL", "a DEL"]);
  });
});
