// CniNetwork with Debian's real plugins (containernetworking-plugins 1.1.1 in /usr/lib/cni):
// bridge + host-local + portmap + loopback into network namespaces this test creates. Root only.
// Traffic goes to 127.0.0.1 and into those namespaces only. Everything made here (namespaces,
// bridges, iptables rules and chains, ip_forward, temp dirs, processes) is removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createNetns, type TestNetns } from "../../test/lib/netns.ts";
import { configureLogging } from "../log.ts";
import { CniNetwork, type PodNetwork } from "./cni.ts";
import { PLUGIN_DIR, freeSubnetPrefix, hostportChainsExist, natRules, realPluginsRunnable, sh, sweepNat, waitFor } from "./test-helpers.ts";

const runnable = realPluginsRunnable;

const tag = Math.random().toString(16).slice(2, 8);
const NET = `crio-t${tag}`;
const BRIDGE = `cni-t${tag}`; // 11 characters: under IFNAMSIZ
const BRIDGE2 = `cni-t${tag}x`;
const logs: string[] = [];
const root = mkdtempSync(join(tmpdir(), "crio-cni-real-"));
const netDir = join(root, "net.d");
const cacheDir = join(root, "cache");
const ipamDir = join(root, "ipam");
const namespaces: TestNetns[] = [];
const procs: Subprocess[] = [];
const networks: CniNetwork[] = [];
let subnet = "";
let subnet2 = "";
let ipForwardBefore = "";
let sharedChainsBefore = false;


/** A 10.89.X.0/24 no route on this host uses. */

function conflist(name: string, bridge: string, range: Record<string, unknown>): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name,
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: "host-local", dataDir: ipamDir, routes: [{ dst: "0.0.0.0/0" }], ranges: [[range]] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
        { type: "loopback" },
      ],
    },
    null,
    2,
  );
}

function netns(): TestNetns {
  const ns = createNetns();
  namespaces.push(ns);
  return ns;
}

async function network(extra: { watch?: boolean; networkDir?: string } = {}): Promise<CniNetwork> {
  // /opt/cni/bin/ (the default) does not exist here: lookup must step over it.
  const net = new CniNetwork({ networkDir: extra.networkDir ?? netDir, pluginDirs: ["/opt/cni/bin/", PLUGIN_DIR], cacheDir, watch: extra.watch ?? false, pollIntervalMs: 100 });
  networks.push(net);
  await net.start();
  return net;
}

let podSeq = 0;
function pod(ns: TestNetns, extra: Partial<PodNetwork> = {}): PodNetwork {
  podSeq++;
  return { id: `${tag}pod${podSeq}`, name: `web-${podSeq}`, namespace: "default", uid: `uid-${podSeq}`, netnsPath: ns.path, ...extra };
}

const ipamFiles = (net = NET) => {
  const dir = join(ipamDir, net);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
};
const cacheFiles = () => (existsSync(join(cacheDir, "results")) ? readdirSync(join(cacheDir, "results")) : []);
const bridgePorts = (bridge = BRIDGE) => JSON.parse(sh(["ip", "-j", "link", "show", "master", bridge]).stdout || "[]") as unknown[];
const natLinesFor = (id: string) => natRules().filter((l) => l.includes(`id: \\"${id}\\"`));
const dnatChainCount = () => natRules().filter((l) => l.startsWith(":CNI-DN-")).length;

function ping(ip: string): boolean {
  return sh(["busybox", "ping", "-c1", "-W1", ip]).exitCode === 0;
}

/** An HTTP server on 0.0.0.0:<port> inside the namespace (Bun itself, through ip netns exec). */
async function serveInNetns(ns: TestNetns, port: number, body: string): Promise<Subprocess> {
  const script = `Bun.serve({ hostname: "0.0.0.0", port: ${port}, fetch: () => new Response(${JSON.stringify(body)}) }); console.log("listening");`;
  const proc = Bun.spawn(["ip", "netns", "exec", ns.name, process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  procs.push(proc);
  const reader = proc.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 10_000;
  while (!out.includes("listening")) {
    if (Date.now() > deadline) throw new Error(`server in ${ns.name} did not start: ${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`server in ${ns.name} exited: ${out} ${await new Response(proc.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return proc;
}

/**
 * GET / over a new TCP connection (fetch would reuse a pooled one, whose conntrack entry keeps
 * the old NAT binding). Resolves with the body; rejects with the connect error (ECONNREFUSED).
 */
function get(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let data = "";
    sock.setTimeout(3000, () => sock.destroy(new Error("timeout")));
    sock.on("connect", () => sock.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    sock.on("data", (d) => (data += d.toString()));
    sock.on("error", reject);
    sock.on("end", () => resolve(data.slice(data.indexOf("\r\n\r\n") + 4)));
  });
}

beforeAll(() => {
  if (!runnable) return;
  configureLogging({ write: (l) => logs.push(l) });
  ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  sharedChainsBefore = hostportChainsExist();
  const p1 = freeSubnetPrefix();
  const p2 = freeSubnetPrefix([p1]);
  subnet = `${p1}.0/24`;
  subnet2 = `${p2}.0/30`;
  mkdirSync(netDir, { recursive: true });
  writeFileSync(join(netDir, "10-main.conflist"), conflist(NET, BRIDGE, { subnet }));
  // One usable address: .1 is the gateway, .2 the only pod address.
  writeFileSync(join(netDir, "20-tiny.conflist"), conflist(`${NET}-tiny`, BRIDGE2, { subnet: subnet2 }));
});

afterAll(() => {
  if (!runnable) return;
  const problems: string[] = [];
  for (const n of networks) n.close();
  for (const p of procs) p.kill("SIGKILL");
  for (const ns of namespaces) {
    try {
      ns.remove();
    } catch (err) {
      problems.push(String(err));
    }
  }
  for (const br of [BRIDGE, BRIDGE2]) sh(["ip", "link", "del", br]);
  try {
    const swept = sweepNat((l) => l.includes(`name: \\"${NET}`) || l.includes(`id: \\"${tag}`), !sharedChainsBefore);
    if (swept.some((l) => !l.startsWith("chain CNI-HOSTPORT") && !/CNI-HOSTPORT-(DNAT|MASQ)$/.test(l))) {
      // Rules of this test's pods that DEL left behind (see the vanished-netns test).
      logs.push(`swept: ${swept.join(" | ")}`);
    }
  } catch (err) {
    problems.push(String(err));
  }
  writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
  rmSync(root, { recursive: true, force: true });
  configureLogging({ write: (l) => process.stderr.write(`${l}\n`) });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
});

describe("CNI with the real plugins", () => {
  beforeAll(() => {
    if (!runnable) throw new Error(`needs root and the CNI plugins in ${PLUGIN_DIR}: run as root, apt-get install containernetworking-plugins`);
  });
  test("ADD puts eth0 with the reported IP in the netns, reachable from the host; DEL releases it", async () => {
    const net = await network();
    const ns = netns();
    const p = pod(ns);
    const res = await net.setUp(p);
    expect(res.ips).toHaveLength(1);
    const ip = res.ips[0] as string;
    expect(ip.startsWith(subnet.slice(0, -4))).toBe(true);
    expect(res.result.interfaces?.find((i) => i.name === "eth0")?.sandbox).toBe(ns.path);
    expect(res.result.ips?.[0]?.gateway).toBe(`${subnet.slice(0, -5)}.1`);

    const addrs = JSON.parse(sh(["ip", "-n", ns.name, "-j", "addr", "show", "dev", "eth0"]).stdout) as { addr_info: { local: string; family: string }[] }[];
    expect(addrs[0]?.addr_info.filter((a) => a.family === "inet").map((a) => a.local)).toEqual([ip]);
    const lo = JSON.parse(sh(["ip", "-n", ns.name, "-j", "link", "show", "lo"]).stdout) as { flags: string[] }[];
    expect(lo[0]?.flags).toContain("UP");
    expect(ping(ip)).toBe(true);

    // host-local's record names the container; the cache has the libcni entry.
    expect(ipamFiles()).toEqual([ip]);
    expect(readFileSync(join(ipamDir, NET, ip), "utf8")).toContain(p.id);
    expect(cacheFiles()).toEqual([`${NET}-${p.id}-eth0`]);
    expect(bridgePorts()).toHaveLength(1);

    await net.tearDown(p);
    expect(ipamFiles()).toEqual([]);
    expect(cacheFiles()).toEqual([]);
    expect(sh(["ip", "-n", ns.name, "link", "show", "eth0"]).exitCode).not.toBe(0);
    expect(bridgePorts()).toHaveLength(0);
    expect(natLinesFor(p.id)).toEqual([]);
  });

  test("a hostPort mapping forwards 127.0.0.1:<hostPort> into the pod, and stops after DEL", async () => {
    const net = await network();
    const ns = netns();
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    const p = pod(ns, { portMappings: [{ hostPort, containerPort: 8080, protocol: "TCP" }] });
    const res = await net.setUp(p);
    const ip = res.ips[0] as string;
    await serveInNetns(ns, 8080, "hello from the pod");
    expect(await get(ip, 8080)).toBe("hello from the pod");
    // portmap's OUTPUT DNAT plus route_localnet on the bridge make localhost work.
    expect(await get("127.0.0.1", hostPort)).toBe("hello from the pod");
    expect(natLinesFor(p.id).some((l) => l.includes(`--dports ${hostPort}`))).toBe(true);

    await net.tearDown(p);
    expect(natLinesFor(p.id)).toEqual([]);
    await expect(get("127.0.0.1", hostPort)).rejects.toThrow(/ECONNREFUSED/);
  });

  test("DEL after a restart works from the cache alone", async () => {
    const first = await network();
    const ns = netns();
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    const p = pod(ns, { portMappings: [{ hostPort, containerPort: 80 }] });
    const res = await first.setUp(p);
    first.close();
    expect(natLinesFor(p.id).length).toBeGreaterThan(0);

    const second = await network();
    expect((await second.cachedAttachment(p.id))?.ips).toEqual(res.ips);
    // Only the ID: netns path, port mappings and pod names come from the cache.
    await second.tearDown({ id: p.id });
    expect(ipamFiles()).toEqual([]);
    expect(cacheFiles()).toEqual([]);
    expect(natLinesFor(p.id)).toEqual([]);
    expect(sh(["ip", "-n", ns.name, "link", "show", "eth0"]).exitCode).not.toBe(0);
  });

  test("CHECK passes on a healthy pod and reports the plugin's error on a broken one", async () => {
    const net = await network();
    const ns = netns();
    const p = pod(ns);
    const res = await net.setUp(p);
    expect((await net.check({ id: p.id })).ips).toEqual(res.ips);
    // Without a cache entry (a pod from before the cache), the addresses come from eth0 itself.
    const cacheFile = join(cacheDir, "results", `${NET}-${p.id}-eth0`);
    const saved = readFileSync(cacheFile);
    unlinkSync(cacheFile);
    const fromNetns = await net.check({ id: p.id, netnsPath: ns.path });
    expect(fromNetns.ips).toEqual(res.ips);
    expect(fromNetns.result.interfaces?.[0]?.mac).toBe(res.result.interfaces?.find((i) => i.name === "eth0")?.mac);
    writeFileSync(cacheFile, saved);
    sh(["ip", "-n", ns.name, "link", "del", "eth0"]);
    await expect(net.check({ id: p.id, name: p.name, namespace: p.namespace })).rejects.toThrow(
      new RegExp(`error checking pod default_${p.name} for CNI network "${NET}": plugin type="bridge" failed \\(check\\): .*eth0`),
    );
    await net.tearDown(p);
    expect(ipamFiles()).toEqual([]);
  });

  test("DEL with nothing there succeeds, and so does DEL after the netns vanished", async () => {
    const net = await network();
    await net.tearDown({ id: `${tag}never`, netnsPath: "/run/netns/crio-test-does-not-exist" });
    await net.tearDown({ id: `${tag}never` });

    const ns = netns();
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    const p = pod(ns, { portMappings: [{ hostPort, containerPort: 80 }] });
    await net.setUp(p);
    ns.remove();
    await net.tearDown(p);
    await net.tearDown(p);
    expect(ipamFiles()).toEqual([]);
    expect(cacheFiles()).toEqual([]);
    // portmap's chain goes (it keys on the container ID). bridge 1.1.1 finds the addresses to
    // un-masquerade inside the netns, so its ipMasq rules stay when the netns is gone first:
    // the sandbox must tear the network down before it unpins the namespace.
    expect(natLinesFor(p.id).filter((l) => l.includes("dnat"))).toEqual([]);
  });

  test("a plugin error surfaces the plugin's message and leaves no address allocated", async () => {
    const net = await network();
    const first = pod(netns(), { network: `${NET}-tiny` });
    const second = pod(netns(), { network: `${NET}-tiny` });
    const ok = await net.setUp(first);
    expect(ok.ips).toEqual([`${subnet2.slice(0, -5)}.2`]);
    const err = await net.setUp(second).catch((e) => e);
    expect(err.message).toMatch(
      new RegExp(`^error adding pod default_${second.name} to CNI network "${NET}-tiny": plugin type="bridge" failed \\(add\\): failed to allocate for range 0: no IP addresses available in range set`),
    );
    expect(ipamFiles(`${NET}-tiny`)).toEqual(ok.ips);
    expect(cacheFiles()).toEqual([`${NET}-tiny-${first.id}-eth0`]);
    expect(sh(["ip", "-n", second.netnsPath.split("/").pop() as string, "link", "show", "eth0"]).exitCode).not.toBe(0);
    expect(bridgePorts(BRIDGE2)).toHaveLength(1);
    await net.tearDown(first);
    await net.tearDown(second);
    expect(ipamFiles(`${NET}-tiny`)).toEqual([]);
  });

  test("an invalid IPAM subnet fails ADD with host-local's message; fixing the file lets DEL finish", async () => {
    const dir = join(root, "bad.d");
    mkdirSync(dir);
    const file = join(dir, "10-bad.conflist");
    const bad = `${NET}-bad`;
    writeFileSync(file, conflist(bad, BRIDGE, { subnet: "10.89.300.0/24" }));
    const net = await network({ networkDir: dir });
    const ns = netns();
    const p = pod(ns);
    const err = await net.setUp(p).catch((e) => e);
    expect(err.message).toMatch(/plugin type="bridge" failed \(add\): .*10\.89\.300\.0\/24/);
    expect(ipamFiles(bad)).toEqual([]);
    // host-local cannot parse the configuration on DEL either: the entry stays for a retry.
    expect(err.message).toMatch(/cleanup failed/);
    expect(cacheFiles()).toEqual([`${bad}-${p.id}-eth0`]);
    await expect(net.tearDown(p)).rejects.toThrow(/10\.89\.300\.0\/24/);

    writeFileSync(file, conflist(bad, BRIDGE, { subnet }));
    await net.watcher.reload();
    await net.tearDown(p);
    expect(cacheFiles()).toEqual([]);
    expect(sh(["ip", "-n", ns.name, "link", "show", "eth0"]).exitCode).not.toBe(0);
  });

  test("readiness follows a conflist appearing and disappearing", async () => {
    const dir = join(root, "watch.d");
    mkdirSync(dir);
    const net = await network({ networkDir: dir, watch: true });
    expect(net.ready()).toEqual({
      ready: false,
      reason: "NetworkPluginNotReady",
      message: `Network plugin returns error: no CNI configuration file in ${dir}. Has your network provider started?`,
    });
    writeFileSync(join(dir, "10-main.conflist"), conflist(NET, BRIDGE, { subnet }));
    expect(await waitFor(() => net.ready().ready)).toBe(true);
    unlinkSync(join(dir, "10-main.conflist"));
    expect(await waitFor(() => !net.ready().ready)).toBe(true);
  });

  test(
    "100 ADD/DEL cycles leave no address, veth, cache entry or iptables rule behind",
    async () => {
      const net = await network();
      const ns = netns();
      const dnatBefore = dnatChainCount();
      const started = performance.now();
      for (let i = 0; i < 100; i++) {
        const p: PodNetwork = {
          id: `${tag}cycle${i}`,
          name: `cycle-${i}`,
          namespace: "default",
          uid: `u${i}`,
          netnsPath: ns.path,
          portMappings: [{ hostPort: 30000 + i, containerPort: 80 }],
        };
        const res = await net.setUp(p);
        expect(res.ips).toHaveLength(1);
        await net.tearDown(p);
      }
      logs.push(`100 cycles: ${((performance.now() - started) / 1000).toFixed(1)}s`);
      expect(ipamFiles()).toEqual([]);
      expect(cacheFiles()).toEqual([]);
      expect(bridgePorts()).toHaveLength(0);
      const links = JSON.parse(sh(["ip", "-n", ns.name, "-j", "link"]).stdout) as { ifname: string }[];
      expect(links.map((l) => l.ifname)).toEqual(["lo"]);
      expect(natRules().filter((l) => l.includes(`id: \\"${tag}cycle`))).toEqual([]);
      expect(dnatChainCount()).toBe(dnatBefore);
    },
    180_000,
  );
});
