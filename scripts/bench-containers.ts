// See scripts/bench-containers. Three targets run the same container over the same image
// content: this crio (conmon + runc), containerd (its CRI plugin, containerd-shim-runc-v2 +
// runc) and bare runc on an OCI bundle made from the image's layer, the floor neither daemon can
// beat. For each concurrency (1, then -c) every target in turn takes N containers through five
// timed phases: create all, start all, one exec in each, stop all, remove all; a phase keeps
// `concurrency` calls in flight (a new one as soon as one answers). For the daemons each
// container has a host-network pod of its own, run before and removed after the timed phases
// (pod RPCs are scripts/bench-pods' business). Then each daemon runs M containers (default 100)
// and its RSS, and the RSS and PSS of the monitors it keeps per container or pod, are read.
//
// The container process is the 232-byte pause program of lib/cri-bench.ts, installed as /idle
// in a busybox image built here: as pid 1 it exits 0 on SIGTERM at once, and does nothing in
// between (a shell loop would fork a `sleep` a second per container, and a shell's TERM trap
// waits for the running `sleep`). So StopContainer (timeout 30 s, as a kubelet's default grace)
// measures the signal path, not an escalation to SIGKILL, and exec has busybox to run.
//
// What each target's operations are:
//   create  CreateContainer             | runc create --bundle B --pid-file P   (bundle written untimed)
//   start   StartContainer              | runc start
//   exec    ExecSync [/bin/true]        | runc exec ID /bin/true
//   stop    StopContainer, timeout 30   | runc kill ID TERM, then wait for the pid to exit
//   remove  RemoveContainer             | runc delete ID
// The daemons split that work differently: containerd's CreateContainer makes no runc container
// (its StartContainer runs runc create and start), and its StopContainer returns after the shim's
// runc delete at exit (crio's RemoveContainer runs that). So create+start and stop+remove (per
// container, summed) are what compare like with like; the single phases show where time goes.
// The floor's container matches what both daemons ask runc for on a host-network pod: new pid,
// ipc and mount namespaces, the host's network and UTS, its own cgroup (cgroupfs) under the same
// parent, no seccomp (both daemons are asked for Unconfined, as a kubelet without
// seccompDefault asks); its rootfs is a plain directory (the daemons mount an overlay).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { NamespaceMode, SecurityProfile_ProfileType } from "../src/proto/index.ts";
import { assembleImage, baseEntries, buildLayer, type BuiltImage } from "../test/lib/images.ts";
import { pushImage } from "../test/lib/push.ts";
import { startRegistry } from "../test/lib/registry.ts";
import {
  deleteRuncContainers,
  ensureBinary,
  fmt,
  loadavg,
  onCleanup,
  pauseBinary,
  pauseImage,
  percentile,
  privateCopy,
  processTree,
  procCpuMs,
  procStatus,
  pssMiB,
  removeCgroupParent,
  runMain,
  runPhase,
  startContainerd,
  startCrio,
  tail,
  unmountUnder,
  type CriDaemon,
  type Phase,
} from "./lib/cri-bench.ts";

// ---------------------------------------------------------------- arguments

const USAGE = "usage: scripts/bench-containers [-n CONTAINERS] [-c CONCURRENCY] [--rss-containers N] [--peer]";
let count = 50;
let concurrency = 10;
let rssContainers = 100;
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
    if (a === "-n") count = num(1);
    else if (a === "-c") concurrency = num(1);
    else if (a === "--rss-containers") rssContainers = num(0);
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
/** The cgroup parent of every pod and floor container (cgroupfs, every hierarchy), removed at the end. */
const CGROUP_PARENT = `/bench-ctr-${tag}`;
const RPC_TIMEOUT_MS = 120_000;
/** StopContainer's timeout, s: a kubelet's default termination grace period. */
const STOP_TIMEOUT_S = 30;
const EXEC_CMD = ["/bin/true"];
/** The container's command: the pause program, as /idle so that containerd's sandbox /pause processes stay distinguishable. */
const IDLE = "/idle";

type Op = "create" | "start" | "create+start" | "exec" | "stop" | "remove" | "stop+remove";
const OPS: Op[] = ["create", "start", "create+start", "exec", "stop", "remove", "stop+remove"];
type Result = Record<Op, Phase> & { /** The daemon's own CPU time per call, ms. */ cpu: Partial<Record<Op, number>> };

/** One thing that runs containers: a CRI daemon or bare runc. */
interface Target {
  name: string;
  /** The daemon's process (its CPU time is read around each phase); none for bare runc. */
  pid?: number;
  /** Untimed: whatever each of `n` containers needs first (a pod, a bundle); returns a handle per container. */
  prepare(n: number, conc: number): Promise<unknown[]>;
  create(handle: unknown): Promise<string>;
  start(id: string): Promise<void>;
  exec(id: string): Promise<void>;
  stop(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  /** Untimed: undoes prepare. */
  release(handles: unknown[], conc: number): Promise<void>;
}

// ---------------------------------------------------------------- the image

/** busybox (Debian's busybox-static) + the pause program as /idle, its command; root, workdir /. */
function benchImage(): BuiltImage {
  const layer = buildLayer([...baseEntries(), { name: IDLE.slice(1), data: pauseBinary(), mode: 0o755 }], "oci", "gzip");
  return assembleImage([layer], {
    format: "oci",
    config: {
      Entrypoint: [IDLE],
      Cmd: undefined,
      User: "",
      WorkingDir: "/",
      Labels: { "io.crio-ts.bench": "containers" },
      StopSignal: "SIGTERM",
    },
    history: ["busybox + /idle (the pause program: exits 0 on SIGTERM)"],
  });
}

// ---------------------------------------------------------------- CRI daemons

const unconfined = { profileType: SecurityProfile_ProfileType.Unconfined, localhostRef: "" };
let seq = 0;

function podConfig(logRoot: string) {
  const n = ++seq;
  const name = `bench-${tag}-${n}`;
  return {
    metadata: { name, namespace: "bench", uid: `${tag}-${n}`, attempt: 0 },
    logDirectory: join(logRoot, name),
    dnsConfig: { servers: ["10.96.0.10"], searches: ["bench.svc.cluster.local", "svc.cluster.local", "cluster.local"], options: ["ndots:5"] },
    labels: { app: "bench", "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "bench", "io.kubernetes.pod.uid": `${tag}-${n}` },
    annotations: {},
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: {
        namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
        seccomp: unconfined,
      },
    },
  };
}

/** What a kubelet sends for a plain container of a host-network pod (no mounts, no probes' extras). */
function containerConfig(image: string) {
  return {
    metadata: { name: "idle", attempt: 0 },
    image: { image },
    command: [IDLE],
    logPath: "idle/0.log",
    labels: { "io.kubernetes.container.name": "idle" },
    annotations: { "io.kubernetes.container.terminationMessagePath": "/dev/termination-log" },
    linux: {
      resources: { cpuShares: 2n, oomScoreAdj: 1000n },
      securityContext: {
        namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
        seccomp: unconfined,
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

interface Pod {
  id: string;
  config: ReturnType<typeof podConfig>;
}

function criTarget(d: CriDaemon, image: string, logRoot: string): Target {
  return {
    name: d.name,
    pid: d.pid,
    async prepare(n, conc) {
      const pods: Pod[] = new Array<Pod>(n);
      await runPhase(n, conc, async (i) => {
        const config = podConfig(logRoot);
        const { podSandboxId } = await rpc(d, "RunPodSandbox", { config, runtimeHandler: "" });
        pods[i] = { id: podSandboxId, config };
      });
      return pods;
    },
    async create(handle) {
      const pod = handle as Pod;
      const r = await rpc(d, "CreateContainer", { podSandboxId: pod.id, config: containerConfig(image), sandboxConfig: pod.config });
      return r.containerId as string;
    },
    start: (id) => rpc(d, "StartContainer", { containerId: id }),
    async exec(id) {
      const r = await rpc(d, "ExecSync", { containerId: id, cmd: EXEC_CMD, timeout: 10n });
      if (r.exitCode !== 0) throw new Error(`${d.name} ExecSync ${EXEC_CMD.join(" ")}: exit ${r.exitCode}: ${Buffer.from(r.stderr ?? []).toString()}`);
    },
    stop: (id) => rpc(d, "StopContainer", { containerId: id, timeout: BigInt(STOP_TIMEOUT_S) }),
    remove: (id) => rpc(d, "RemoveContainer", { containerId: id }),
    async release(handles, conc) {
      const pods = handles as Pod[];
      await runPhase(pods.length, conc, (i) => rpc(d, "StopPodSandbox", { podSandboxId: pods[i]!.id }));
      await runPhase(pods.length, conc, (i) => rpc(d, "RemovePodSandbox", { podSandboxId: pods[i]!.id }));
    },
  };
}

// ---------------------------------------------------------------- bare runc

interface FloorBundle {
  id: string;
  dir: string;
}

/**
 * runc on bundles whose rootfs is the bench image's layer unpacked once into `top`; runc's state
 * under `top` too. Every container's bundle holds only its config.json (cgroupsPath differs).
 */
function runcFloor(runc: string, layerTar: Uint8Array, top: string): Target {
  const base = join(top, "floor");
  const root = join(base, "runc");
  const rootfs = join(base, "rootfs");
  mkdirSync(rootfs, { recursive: true });
  /** runc commands in flight: a create still running at cleanup would leave a container behind the delete. */
  const running = new Set<Bun.Subprocess>();
  const inFlight = <P extends Bun.Subprocess>(p: P): P => {
    running.add(p);
    void p.exited.then(() => running.delete(p));
    return p;
  };
  onCleanup("runc floor containers", async () => {
    await Promise.race([Promise.all([...running].map((p) => p.exited)), Bun.sleep(10_000)]);
    deleteRuncContainers(root);
  });
  writeFileSync(join(base, "layer.tar"), layerTar);
  const untar = Bun.spawnSync(["tar", "-C", rootfs, "--numeric-owner", "-xf", join(base, "layer.tar")], { stderr: "pipe" });
  if (untar.exitCode !== 0) throw new Error(`unpacking the bench layer: ${untar.stderr.toString()}`);
  const specRun = Bun.spawnSync([runc, "spec", "--bundle", base], { stderr: "pipe" });
  if (specRun.exitCode !== 0) throw new Error(`runc spec: ${specRun.stderr.toString()}`);
  const spec = JSON.parse(readFileSync(join(base, "config.json"), "utf8"));
  spec.process.terminal = false;
  spec.process.args = [IDLE];
  spec.root = { path: rootfs, readonly: false };
  delete spec.hostname; // the host's UTS namespace, as a host-network pod's container has
  spec.linux.namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "mount" }];
  spec.process.oomScoreAdj = 1000; // what a kubelet asks for a BestEffort pod, as containerConfig does
  spec.linux.resources = { cpu: { shares: 2 } };
  const pidFile = (b: FloorBundle) => join(b.dir, "pid");
  const pidOf = new Map<string, number>();
  let n = 0;

  const cmd = async (args: string[], stdout: "ignore" | "pipe" = "ignore"): Promise<string> => {
    const p = inFlight(Bun.spawn([runc, "--root", root, ...args], { stdin: "ignore", stdout, stderr: "pipe" }));
    const [code, out, err] = await Promise.all([p.exited, stdout === "pipe" ? new Response(p.stdout as ReadableStream).text() : "", new Response(p.stderr).text()]);
    if (code !== 0) throw new Error(`runc ${args.join(" ")}: exit ${code}: ${err.trim()}`);
    return out;
  };

  return {
    name: "runc",
    async prepare(count) {
      const out: FloorBundle[] = [];
      for (let i = 0; i < count; i++) {
        const id = `floor-${tag}-${++n}`;
        const dir = join(base, "bundles", id);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "config.json"), JSON.stringify({ ...spec, linux: { ...spec.linux, cgroupsPath: `${CGROUP_PARENT}/runc-${id}` } }));
        out.push({ id, dir });
      }
      return out;
    },
    async create(handle) {
      const b = handle as FloorBundle;
      // The container keeps runc create's stdio: a file, not a pipe this process would wait on.
      const errFile = join(b.dir, "stderr");
      const p = inFlight(
        Bun.spawn([runc, "--root", root, "create", "--bundle", b.dir, "--pid-file", pidFile(b), b.id], {
          stdin: "ignore",
          stdout: "ignore",
          stderr: Bun.file(errFile),
        }),
      );
      const code = await p.exited;
      if (code !== 0) throw new Error(`runc create ${b.id}: exit ${code}: ${tail(errFile, 2000)}`);
      pidOf.set(b.id, Number(readFileSync(pidFile(b), "utf8")));
      return b.id;
    },
    start: async (id) => void (await cmd(["start", id])),
    exec: async (id) => void (await cmd(["exec", id, ...EXEC_CMD], "pipe")),
    async stop(id) {
      await cmd(["kill", id, "TERM"]);
      // Nobody waits for the container here (runc create leaves it to init, which reaps lazily):
      // exited is gone or a zombie.
      const pid = pidOf.get(id)!;
      for (;;) {
        let state = "";
        try {
          state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] ?? "";
        } catch {
          break;
        }
        if (state === "Z" || state === "X") break;
        await Bun.sleep(1);
      }
    },
    async remove(id) {
      await cmd(["delete", id]);
      pidOf.delete(id);
    },
    async release(handles) {
      for (const b of handles as FloorBundle[]) rmSync(b.dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- phases

async function cycle(t: Target, n: number, conc: number, prepConc: number): Promise<Result> {
  const handles = await t.prepare(n, prepConc);
  const ids: string[] = new Array<string>(n);
  const cpu: Partial<Record<Op, number>> = {};
  const timed = async (op: Op, fn: (i: number) => Promise<unknown>) => {
    const c0 = t.pid ? procCpuMs(t.pid) : NaN;
    const phase = await runPhase(n, conc, fn);
    if (t.pid) cpu[op] = (procCpuMs(t.pid) - c0) / n;
    return phase;
  };
  const create = await timed("create", async (i) => {
    ids[i] = await t.create(handles[i]);
  });
  const start = await timed("start", (i) => t.start(ids[i]!));
  const exec = await timed("exec", (i) => t.exec(ids[i]!));
  const stop = await timed("stop", (i) => t.stop(ids[i]!));
  const remove = await timed("remove", (i) => t.remove(ids[i]!));
  await t.release(handles, prepConc);
  const pair = (a: Phase, b: Phase): Phase => {
    const ms = a.byIndex.map((x, i) => x + b.byIndex[i]!);
    return { ms, byIndex: ms, wallMs: a.wallMs + b.wallMs };
  };
  if (cpu.create !== undefined && cpu.start !== undefined) cpu["create+start"] = cpu.create + cpu.start;
  if (cpu.stop !== undefined && cpu.remove !== undefined) cpu["stop+remove"] = cpu.stop + cpu.remove;
  return { create, start, "create+start": pair(create, start), exec, stop, remove, "stop+remove": pair(stop, remove), cpu };
}

// ---------------------------------------------------------------- memory

interface Memory {
  name: string;
  rss: number;
  hwm: number;
  monitors: { count: number; rss: number; pss: number };
  /** containerd's sandbox pause processes. */
  pauses: { count: number; pss: number };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

async function memoryWith(t: Target, d: CriDaemon, m: number, conc: number): Promise<Memory> {
  const handles = await t.prepare(m, conc);
  const ids: string[] = new Array<string>(m);
  await runPhase(m, conc, async (i) => {
    ids[i] = await t.create(handles[i]);
    await t.start(ids[i]!);
  });
  await Bun.sleep(2000);
  const st = procStatus(d.pid);
  const monitors = d.helperPids();
  const below = monitors.flatMap((p) => processTree(p).slice(1));
  const cmd0 = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] ?? "";
    } catch {
      return "";
    }
  };
  const pauses = below.filter((p) => cmd0(p) === "/pause");
  const mem: Memory = {
    name: d.name,
    rss: st.rss,
    hwm: st.hwm,
    monitors: { count: monitors.length, rss: sum(monitors.map((p) => procStatus(p).rss)), pss: sum(monitors.map(pssMiB)) },
    pauses: { count: pauses.length, pss: sum(pauses.map(pssMiB)) },
  };
  await runPhase(m, conc, async (i) => {
    await t.stop(ids[i]!);
    await t.remove(ids[i]!);
  });
  await t.release(handles, conc);
  return mem;
}

// ---------------------------------------------------------------- output

interface Scenario {
  conc: number;
  by: Map<string, Result>;
}

const ratio = (x: number, y: number, w: number) => (Number.isFinite(x / y) ? `${(x / y).toFixed(2)}x` : "-").padStart(w);

function printTable(names: string[], scenarios: Scenario[]): void {
  const hasPeer = names.includes("containerd");
  const head =
    `${"conc".padStart(4)}  ${"op".padEnd(13)}` +
    names.map((n) => `${`${n} p50`.padStart(16)}${"p99".padStart(8)}${"/s".padStart(7)}`).join("") +
    (hasPeer ? `${"crio/ctrd p50".padStart(15)}${"p99".padStart(7)}` : "") +
    `${"crio/runc p50".padStart(15)}`;
  console.log(head);
  for (const s of scenarios) {
    for (const op of OPS) {
      const cols = names.map((n) => {
        const p = s.by.get(n)![op];
        return `${fmt(percentile(p.ms, 50), 1, 16)}${fmt(percentile(p.ms, 99), 1, 8)}${fmt((p.ms.length / p.wallMs) * 1000, 0, 7)}`;
      });
      const p50 = (n: string) => percentile(s.by.get(n)![op].ms, 50);
      const p99 = (n: string) => percentile(s.by.get(n)![op].ms, 99);
      const vsPeer = hasPeer ? ratio(p50("crio"), p50("containerd"), 15) + ratio(p99("crio"), p99("containerd"), 7) : "";
      console.log(`${String(s.conc).padStart(4)}  ${op.padEnd(13)}${cols.join("")}${vsPeer}${ratio(p50("crio"), p50("runc"), 15)}`);
    }
  }
}

function printTargets(scenarios: Scenario[], hasPeer: boolean): void {
  for (const s of scenarios) {
    const p50 = (n: string, op: Op) => percentile(s.by.get(n)![op].ms, 50);
    const parts: string[] = [];
    if (hasPeer) {
      // containerd's CreateContainer only writes metadata and prepares the snapshot: its runc
      // create runs in StartContainer; its shim runs runc delete when the task exits, inside
      // StopContainer. Only the sums compare like with like.
      const ops: Op[] = ["create+start", "exec", "stop+remove"];
      const met = ops.map((op) => {
        const r = p50("crio", op) / p50("containerd", op);
        return `${op} ${r.toFixed(2)}${r <= 0.8 ? "" : " MISSED"}`;
      });
      parts.push(`p50 <= 0.8x containerd: ${met.join(", ")}`);
    }
    const f = p50("crio", "create+start") / p50("runc", "create+start");
    parts.push(`create+start p50 <= 1.3x runc: ${f.toFixed(2)}${f <= 1.3 ? "" : " MISSED"}`);
    console.log(`targets, conc ${s.conc}: ${parts.join("; ")}`);
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench-containers needs root (namespaces, cgroups, mounts)");
  if (!existsSync(DIST_CRIO)) throw new Error(`${DIST_CRIO} is missing: run scripts/build -a amd64`);
  const runc = Bun.which("runc");
  if (!runc) throw new Error("runc is missing: apt-get install runc");
  if (!Bun.which("conmon")) throw new Error("conmon is missing: apt-get install conmon");
  const t0 = performance.now();
  const top = mkdtempSync(join(tmpdir(), "bench-containers-"));
  onCleanup(`remove ${top}`, () => {
    unmountUnder(top);
    rmSync(top, { recursive: true, force: true });
  });
  const built = statSync(DIST_CRIO).mtime.toISOString();
  const crioBin = privateCopy(DIST_CRIO, top);
  const containerdBin = ensureBinary("containerd", "containerd", withPeer);
  if (containerdBin && !Bun.which("containerd-shim-runc-v2")) throw new Error("containerd-shim-runc-v2 is missing (Debian's containerd package ships it)");
  // Registered before the daemons: runs after them (their pods and containers hold these cgroups).
  onCleanup(`cgroup ${CGROUP_PARENT}`, () => removeCgroupParent(CGROUP_PARENT));
  const logRoot = join(top, "pod-logs");

  const registry = await startRegistry();
  onCleanup("stop docker-registry", () => registry.stop());
  const image = benchImage();
  await pushImage(registry.url, "bench/idle", image);
  const imageRef = `${registry.host}/bench/idle:latest`;

  const targets: Target[] = [];
  const daemons = new Map<string, CriDaemon>();
  const crio = await startCrio(crioBin, { top, registryHost: registry.host });
  daemons.set("crio", crio);
  await rpc(crio, "Version", {});
  await crio.image.call("PullImage", { image: { image: imageRef } }, 60_000);
  targets.push(criTarget(crio, imageRef, logRoot));

  let pauseRef = "";
  if (containerdBin) {
    await pushImage(registry.url, "bench/pause", pauseImage());
    pauseRef = `${registry.host}/bench/pause:latest`;
    const ctrd = await startContainerd(containerdBin, { top, registryHost: registry.host, sandboxImage: pauseRef });
    daemons.set("containerd", ctrd);
    for (const ref of [pauseRef, imageRef]) {
      try {
        await ctrd.image.call("PullImage", { image: { image: ref } }, 60_000);
      } catch (err) {
        throw new Error(`containerd: pulling ${ref}: ${err instanceof Error ? err.message : String(err)}\n${tail(ctrd.logFile)}`);
      }
    }
    targets.push(criTarget(ctrd, imageRef, logRoot));
  } else {
    console.log("containerd not installed: no peer measured (run with --peer to install Debian's containerd)");
  }
  targets.push(runcFloor(runc, image.layers[0]!.tar, top));
  const names = targets.map((t) => t.name);

  await Bun.sleep(1000);
  const idle = new Map([...daemons].map(([n, d]) => [n, procStatus(d.pid).rss]));
  /** VmHWM of each daemon after each stage: where a peak above the steady RSS came from. */
  const peaks: { stage: string; hwm: Map<string, number> }[] = [];
  const peak = (stage: string) => peaks.push({ stage, hwm: new Map([...daemons].map(([n, d]) => [n, procStatus(d.pid).hwm])) });
  peak("start + pull");

  // Warm-up (untimed): first-call costs (JIT, the image's first mount, binaries in the page cache).
  const warm = Math.min(5, count);
  for (const t of targets) await cycle(t, warm, 1, 1);
  peak("warm-up");

  const scenarios: Scenario[] = [];
  for (const conc of [...new Set([1, concurrency])]) {
    const s: Scenario = { conc, by: new Map() };
    for (const t of targets) s.by.set(t.name, await cycle(t, count, conc, concurrency));
    scenarios.push(s);
    peak(`conc ${conc}`);
  }

  const mem: Memory[] = [];
  if (rssContainers > 0) {
    for (const t of targets) {
      const d = daemons.get(t.name);
      if (d) mem.push(await memoryWith(t, d, rssContainers, concurrency));
    }
    peak(`${rssContainers} running`);
  }

  // ------------------------------------------------------------ report
  const runcVersion = Bun.spawnSync([runc, "--version"]).stdout.toString().split("\n")[0]!.trim();
  console.log("");
  console.log(`crio: ${DIST_CRIO} (built ${built}): conmon (one per container) + ${runcVersion}; drop_infra_ctr = true (no pause process)`);
  if (daemons.has("containerd")) {
    const v = Bun.spawnSync([containerdBin!, "--version"]).stdout.toString().trim();
    console.log(`containerd: ${v}, CRI plugin: containerd-shim-runc-v2 (one per pod) + runc; a pause container per pod (${pauseRef})`);
  }
  console.log(`runc: ${runcVersion} directly, create/start/exec/kill/delete on a bundle of the same layer (plain directory rootfs): the floor`);
  console.log(
    `container: ${imageRef} (busybox-static + /idle, the 232-byte pause program: exits 0 on SIGTERM), one per host-network pod; ` +
      `new pid/ipc/mount namespaces, host network and UTS; seccomp Unconfined; cgroupfs (cgroup v1) under ${CGROUP_PARENT}`,
  );
  console.log(
    `ops: create, start, exec (ExecSync ${JSON.stringify(EXEC_CMD)} | runc exec), stop (StopContainer timeout ${STOP_TIMEOUT_S}: SIGTERM | runc kill TERM + wait), remove; ` +
      `create+start = create i + start i per container, stop+remove likewise. ${count} containers per phase; conc 1 = sequential, ${concurrency} = ${concurrency} calls in flight; ` +
      `${warm} untimed warm-up containers per target; pods run and removed outside the timed phases`,
  );
  if (daemons.has("containerd")) {
    console.log(
      "containerd splits the work differently: its StartContainer runs runc create and start, its StopContainer includes runc delete (the shim's, at exit); " +
        "compare create+start and stop+remove",
    );
  }
  console.log(`latency ms per call (p99 nearest-rank: of ${count} samples, ${count <= 100 ? "the slowest" : "the 99th percentile"}); /s = ${count} / phase wall time; ratios are crio over containerd and over runc`);
  console.log("");
  printTable(names, scenarios);
  for (const s of scenarios) {
    for (const [n, r] of s.by) {
      if (Object.keys(r.cpu).length === 0) continue;
      console.log(`${n} daemon process CPU per call, conc ${s.conc} (ms, 10 ms ticks over ${count} calls): ${OPS.map((op) => `${op} ${fmt(r.cpu[op] ?? NaN, 1, 0)}`).join(", ")}`);
    }
  }
  console.log("");
  printTargets(scenarios, daemons.has("containerd"));
  console.log("");
  console.log([...idle].map(([n, r]) => `${n} idle RSS ${fmt(r, 1, 0)} MiB`).join("; "));
  for (const n of daemons.keys()) console.log(`${n} peak RSS (VmHWM) after ${peaks.map((p) => `${p.stage} ${fmt(p.hwm.get(n)!, 1, 0)}`).join(", ")} MiB`);
  for (const m of mem) {
    const unit = m.name === "crio" ? "container" : "pod";
    const mon = m.name === "crio" ? "conmon" : "shim";
    let line = `${m.name} with ${rssContainers} running containers: daemon RSS ${fmt(m.rss, 1, 0)} MiB, peak ${fmt(m.hwm, 1, 0)} MiB`;
    if (m.name === "crio") line += ` (target < 128 MiB: ${m.rss < 128 ? "under" : "OVER"})`;
    console.log(line);
    let per =
      `  ${m.monitors.count} ${mon}s: RSS ${fmt(m.monitors.rss / m.monitors.count, 2, 0)} MiB each, PSS ${fmt(m.monitors.pss, 1, 0)} MiB in all = ` +
      `${fmt(m.monitors.pss / m.monitors.count, 2, 0)} MiB per ${unit}`;
    if (m.pauses.count > 0) per += `; + ${m.pauses.count} sandbox pause processes, PSS ${fmt(m.pauses.pss, 2, 0)} MiB in all`;
    console.log(per);
  }
  console.log(`run time ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the end ${loadavg()}`);
}

await runMain(main);
