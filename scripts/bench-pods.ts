// See scripts/bench-pods. Both daemons run side by side for the whole benchmark, on one CNI
// network (the same conflist, bridge, subnet and host-local state: their phases never overlap).
// For each network mode (host network, then CNI) and each concurrency (1, then -c), every daemon
// in turn runs three phases over the same N pods: RunPodSandbox for all N, then StopPodSandbox
// for all N, then RemovePodSandbox for all N; a phase keeps `concurrency` RPCs in flight (a new
// one is sent as soon as one answers). Latency is per RPC as the client sees it; the pods/s
// column is N over the phase's wall time. Pods share no PID namespace, which lets crio keep its
// default drop_infra_ctr = true: it runs no process per pod, while containerd always starts a
// pause container (runc, through one containerd-shim-runc-v2 per pod). A short untimed warm-up
// per daemon comes first. Then crio runs M CNI pods (default 100) and its RSS is read with all
// of them live; containerd's daemon RSS and its shims' PSS with M pods are shown beside it.
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { NamespaceMode } from "../src/proto/index.ts";
import { pushImage } from "../test/lib/push.ts";
import { startRegistry } from "../test/lib/registry.ts";
import {
  createBenchNetwork,
  ensureBinary,
  fmt,
  loadavg,
  onCleanup,
  pauseImage,
  percentile,
  privateCopy,
  procStatus,
  pssMiB,
  removeCgroupParent,
  runMain,
  runPhase,
  startContainerd,
  startCrio,
  tail,
  unmountUnder,
  waitNetworkReady,
  type CriDaemon,
  type Phase,
} from "./lib/cri-bench.ts";

// ---------------------------------------------------------------- arguments

const USAGE = "usage: scripts/bench-pods [-n PODS] [-c CONCURRENCY] [--rss-pods N] [--peer]";
let pods = 50;
let concurrency = 10;
let rssPods = 100;
let withPeer = false;
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const num = (min: number): number => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < min) {
        console.error(`${a} needs an integer >= ${min}\n${USAGE}`);
        process.exit(2);
      }
      return v;
    };
    if (a === "-n") pods = num(1);
    else if (a === "-c") concurrency = num(1);
    else if (a === "--rss-pods") rssPods = num(0);
    else if (a === "--peer") withPeer = true;
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
}

const DIST_CRIO = resolve(import.meta.dir, "../dist/crio-linux-amd64");
const tag = Math.random().toString(16).slice(2, 8);
/** The pods' cgroup parent (cgroupfs, every hierarchy), removed at the end. */
const CGROUP_PARENT = `/bench-pods-${tag}`;
const RPC_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------- pods

type Net = "host" | "cni";
type Op = "run" | "stop" | "remove";
const OPS: Op[] = ["run", "stop", "remove"];

let seq = 0;

/** What a kubelet sends for a pod with no PID sharing: IPC shared in the pod, host or pod network. */
function podConfig(net: Net) {
  const n = ++seq;
  const name = `bench-${tag}-${n}`;
  return {
    metadata: { name, namespace: "bench", uid: `${tag}-${n}`, attempt: 0 },
    ...(net === "cni" ? { hostname: name } : {}),
    dnsConfig: { servers: ["10.96.0.10"], searches: ["bench.svc.cluster.local", "svc.cluster.local", "cluster.local"], options: ["ndots:5"] },
    labels: { app: "bench", "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "bench", "io.kubernetes.pod.uid": `${tag}-${n}` },
    annotations: {},
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: {
        namespaceOptions: { network: net === "host" ? NamespaceMode.NODE : NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
      },
    },
  };
}

async function rpc(d: CriDaemon, method: string, req: object): Promise<any> {
  try {
    return await d.runtime.call(method, req, RPC_TIMEOUT_MS);
  } catch (err) {
    throw new Error(`${d.name} ${method}: ${err instanceof Error ? err.message : String(err)}\n--- ${d.logFile} (tail):\n${tail(d.logFile, 2000)}`);
  }
}

/** Runs `count` pods with `conc` in flight; returns their ids and the phase timing. */
async function runPods(d: CriDaemon, net: Net, count: number, conc: number): Promise<{ ids: string[]; phase: Phase }> {
  const ids: string[] = [];
  const phase = await runPhase(count, conc, async () => {
    const { podSandboxId } = await rpc(d, "RunPodSandbox", { config: podConfig(net), runtimeHandler: "" });
    ids.push(podSandboxId);
  });
  return { ids, phase };
}

async function stopAndRemove(d: CriDaemon, ids: string[], conc: number): Promise<{ stop: Phase; remove: Phase }> {
  const stop = await runPhase(ids.length, conc, (i) => rpc(d, "StopPodSandbox", { podSandboxId: ids[i] }));
  const remove = await runPhase(ids.length, conc, (i) => rpc(d, "RemovePodSandbox", { podSandboxId: ids[i] }));
  return { stop, remove };
}

async function cycle(d: CriDaemon, net: Net, count: number, conc: number): Promise<Record<Op, Phase>> {
  const { ids, phase: run } = await runPods(d, net, count, conc);
  const { stop, remove } = await stopAndRemove(d, ids, conc);
  return { run, stop, remove };
}

// ---------------------------------------------------------------- output

interface Scenario {
  net: Net;
  conc: number;
  by: Map<string, Record<Op, Phase>>;
}

function printTable(names: string[], scenarios: Scenario[]): void {
  const peer = names[1];
  const head =
    `${"network".padEnd(8)}${"conc".padStart(5)}  ${"op".padEnd(7)}` +
    names.map((n) => `${`${n} p50`.padStart(16)}${"p99".padStart(8)}${"pods/s".padStart(8)}`).join("") +
    (peer ? `${"ratio p50".padStart(11)}${"p99".padStart(7)}${"pods/s".padStart(8)}` : "");
  console.log(head);
  for (const s of scenarios) {
    for (const op of OPS) {
      const cols = names.map((n) => {
        const p = s.by.get(n)![op];
        return `${fmt(percentile(p.ms, 50), 1, 16)}${fmt(percentile(p.ms, 99), 1, 8)}${fmt((p.ms.length / p.wallMs) * 1000, 1, 8)}`;
      });
      let ratio = "";
      if (peer) {
        const a = s.by.get(names[0]!)![op];
        const b = s.by.get(peer)![op];
        const r = (x: number, y: number) => `${(x / y).toFixed(2)}x`;
        ratio =
          r(percentile(a.ms, 50), percentile(b.ms, 50)).padStart(11) +
          r(percentile(a.ms, 99), percentile(b.ms, 99)).padStart(7) +
          r(a.ms.length / a.wallMs, b.ms.length / b.wallMs).padStart(8);
      }
      console.log(`${s.net.padEnd(8)}${String(s.conc).padStart(5)}  ${op.padEnd(7)}${cols.join("")}${ratio}`);
    }
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench-pods needs root (namespaces, cgroups, CNI)");
  if (!existsSync(DIST_CRIO)) throw new Error(`${DIST_CRIO} is missing: run scripts/build -a amd64`);
  const t0 = performance.now();
  const top = mkdtempSync(join(tmpdir(), "bench-pods-"));
  onCleanup(`remove ${top}`, () => {
    unmountUnder(top);
    rmSync(top, { recursive: true, force: true });
  });
  const built = statSync(DIST_CRIO).mtime.toISOString();
  const crioBin = privateCopy(DIST_CRIO, top);
  const containerdBin = ensureBinary("containerd", "containerd", withPeer);
  if (containerdBin && !Bun.which("containerd-shim-runc-v2")) throw new Error("containerd-shim-runc-v2 is missing (Debian's containerd package ships it)");

  const network = createBenchNetwork(top, tag);
  onCleanup(`cgroup ${CGROUP_PARENT}`, () => removeCgroupParent(CGROUP_PARENT));

  const daemons: CriDaemon[] = [];
  const crio = await startCrio(crioBin, { top, network });
  daemons.push(crio);
  await waitNetworkReady(crio);

  let pauseRef = "";
  if (containerdBin) {
    const registry = await startRegistry();
    onCleanup("stop docker-registry", () => registry.stop());
    await pushImage(registry.url, "bench/pause", pauseImage());
    pauseRef = `${registry.host}/bench/pause:latest`;
    const ctrd = await startContainerd(containerdBin, { top, network, registryHost: registry.host, sandboxImage: pauseRef });
    daemons.push(ctrd);
    await waitNetworkReady(ctrd);
    try {
      await ctrd.image.call("PullImage", { image: { image: pauseRef } }, 60_000);
    } catch (err) {
      throw new Error(`containerd: pulling ${pauseRef}: ${err instanceof Error ? err.message : String(err)}\n${tail(ctrd.logFile)}`);
    }
  } else {
    console.log("containerd not installed: no peer measured (run with --peer to install Debian's containerd)");
  }
  const names = daemons.map((d) => d.name);

  await Bun.sleep(1000);
  const idle = procStatus(crio.pid).rss;
  const idlePeer = daemons[1] ? procStatus(daemons[1].pid).rss : NaN;

  // Warm-up (untimed): first-call costs (JIT, the bridge and iptables chains, plugin binaries
  // in the page cache) are paid here, for both network modes.
  const warm = Math.min(5, pods);
  for (const d of daemons) for (const net of ["host", "cni"] as Net[]) await cycle(d, net, warm, 1);

  const scenarios: Scenario[] = [];
  for (const net of ["host", "cni"] as Net[]) {
    for (const conc of [...new Set([1, concurrency])]) {
      const s: Scenario = { net, conc, by: new Map() };
      for (const d of daemons) s.by.set(d.name, await cycle(d, net, pods, conc));
      scenarios.push(s);
    }
  }

  // Memory with M live CNI pods.
  const mem: { name: string; rss: number; hwm: number; helpers: number; helpersPss: number }[] = [];
  if (rssPods > 0) {
    for (const d of daemons) {
      const { ids } = await runPods(d, "cni", rssPods, concurrency);
      await Bun.sleep(2000);
      const st = procStatus(d.pid);
      const helpers = d.helperPids();
      mem.push({ name: d.name, rss: st.rss, hwm: st.hwm, helpers: helpers.length, helpersPss: helpers.reduce((n, p) => n + (pssMiB(p) || 0), 0) });
      await stopAndRemove(d, ids, concurrency);
    }
  }

  // ------------------------------------------------------------ report
  console.log("");
  console.log(`crio: ${DIST_CRIO} (built ${built}), drop_infra_ctr = true (its default): no pause container, no process per pod`);
  if (daemons[1]) {
    const v = Bun.spawnSync([containerdBin!, "--version"]).stdout.toString().trim();
    console.log(`containerd: ${v}, CRI plugin, runc via containerd-shim-runc-v2: one pause container (${pauseRef}, a 232-byte static pause) and one shim per pod`);
  }
  console.log(
    `both: cgroupfs (cgroup v1), cgroup parent ${CGROUP_PARENT}; CNI network ${network.name}: bridge ${network.bridge} + host-local ${network.subnet} + portmap + loopback (one conflist for both)`,
  );
  console.log(
    `pods: ${pods} per phase (run all, then stop all, then remove all); conc 1 = sequential, ${concurrency} = ${concurrency} RPCs in flight; ` +
      `host = hostNetwork pod, cni = pod network namespace + CNI ADD/DEL; pid namespace per container, ipc per pod; ${warm}+${warm} untimed warm-up pods per daemon`,
  );
  console.log(`latency ms per RPC (p99 is nearest-rank: of ${pods} samples, ${pods <= 100 ? "the slowest" : "the 99th percentile"}); pods/s = ${pods} / phase wall time` + (daemons[1] ? "; ratios crio / containerd (pods/s: above 1 = crio faster)" : ""));
  console.log("");
  printTable(names, scenarios);
  console.log("");
  console.log(`crio idle RSS ${fmt(idle, 1, 0)} MiB` + (daemons[1] ? `; containerd idle RSS ${fmt(idlePeer, 1, 0)} MiB` : ""));
  for (const m of mem) {
    const extra = m.helpers > 0 ? `; + ${m.helpers} shims, PSS ${fmt(m.helpersPss, 1, 0)} MiB in all (pause processes not counted)` : "";
    const target = m.name === "crio" ? `  (target < 100 MiB: ${m.rss < 100 ? "under" : "OVER"})` : "";
    console.log(`${m.name} with ${rssPods} live CNI pods: daemon RSS ${fmt(m.rss, 1, 0)} MiB, peak ${fmt(m.hwm, 1, 0)} MiB${extra}${target}`);
  }
  console.log(`run time ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the end ${loadavg()}`);
}

await runMain(main);
