// See scripts/bench-pull. Scenarios, each on a fresh store per run (cold → warm → reuse, in that
// order, on the same store):
//   cold   the store is empty: manifest, config and every layer downloaded and unpacked;
//   warm   the same tag pulled again with the image and all its layers present (what a kubelet
//          with imagePullPolicy: Always does): manifest check, nothing downloaded, the image
//          record rewritten. The image is NOT removed first: crio's RemoveImage deletes the
//          layers with the image, so "image removed, layers kept" is not reachable through CRI;
//   reuse  a second image (bench/big2: the same layers, a different config) pulled after the
//          first: every layer present, no image record yet. This is the layer-reuse measure.
// Runs are interleaved (round i: crio, skopeo, containerd) so that load from elsewhere on the
// machine hits every tool alike; `sync` runs before each cold pull (not timed) so that no tool
// pays for the previous one's dirty pages. The crio binary is copied at start, so that a rebuild
// of dist/ during the run does not change what is measured.
// Measures per pull: wall time as the client sees it (the PullImage RPC for crio; the whole
// process for skopeo and ctr, so those pay their process start-up, 10-30 ms), CPU time of every
// process doing the pull (crio: the daemon; skopeo: itself; containerd: the daemon plus ctr, which
// does the HTTP fetch client-side and streams into containerd's content store, where containerd
// unpacks), from /proc/<pid>/stat deltas and GNU time; memory: for daemons, VmHWM after
// `echo 5 > /proc/<pid>/clear_refs` just before the pull, and VmRSS sampled every 10 ms (the
// larger is the peak), minus VmRSS just before the pull (growth), and the sampled peak of RssAnon
// minus its value before (anon: heap and buffers, without pages of the executable faulted in);
// for skopeo its maxRSS from GNU time (a one-shot process: its peak is its whole cost). ctr's
// own peak RSS is shown as "client".
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { assembleImage, bigImage, buildLayer, randomBytes, type BuiltImage, type BuiltLayer } from "../test/lib/images.ts";
import { pushImage } from "../test/lib/push.ts";
import { startRegistry, type TestRegistry } from "../test/lib/registry.ts";
import { criClient, type CriClient } from "../test/integration/harness.ts";
import { cleanupAll, loadavg, onCleanup, processTree, procStatus, tail, waitUntil } from "./lib/cri-bench.ts";
import type { TarInput } from "../src/image/tar/writer.ts";
import { ImageServiceMethods, RuntimeServiceMethods } from "../src/proto/index.ts";
import { layerIdFor } from "../src/storage/ids.ts";
import { MNT_DETACH, umount2 } from "../src/sys/mount.ts";

// ---------------------------------------------------------------- arguments

const USAGE = "usage: scripts/bench-pull [-n RUNS] [--size MiB] [--files N] [--peer] [--phases]";
let runs = 3;
let sizeMiB = 100;
let fileCount = 600;
let withPeer = false;
let phases = false;
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const num = (): number => {
      const v = Number(args[++i]);
      if (!Number.isFinite(v) || v <= 0) {
        console.error(`${a} needs a positive number\n${USAGE}`);
        process.exit(2);
      }
      return v;
    };
    if (a === "-n") runs = Math.floor(num());
    else if (a === "--size") sizeMiB = Math.floor(num());
    else if (a === "--files") fileCount = Math.floor(num());
    else if (a === "--peer") withPeer = true;
    else if (a === "--phases") phases = true;
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
/** The copy of DIST_CRIO this run measures (set in main). */
let CRIO = DIST_CRIO;
let GNU_TIME: string | undefined;

// ---------------------------------------------------------------- cleanup

// Everything started is registered here and undone in reverse order on normal exit, on an
// error, and on SIGINT/SIGTERM/SIGHUP.
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up`);
    void cleanupAll().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  });
}

/** Unmounts everything mounted at or below `dir`, deepest first (lazily if busy). */
function unmountUnder(dir: string): number {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  let n = 0;
  for (let pass = 0; pass < 5; pass++) {
    const points = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => unescape(l.split(" ")[4] ?? ""))
      .filter((p) => p === dir || p.startsWith(dir + "/"))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) break;
    for (const p of points) {
      try {
        umount2(p, 0);
      } catch {
        try {
          umount2(p, MNT_DETACH);
        } catch {
          // already gone, or not ours to unmount: the next pass sees
        }
      }
      n++;
    }
  }
  return n;
}

/**
 * A temp dir that is unmounted below and removed on cleanup. `release()` (when its round is
 * over) only unmounts: the removal waits for the end of the benchmark, because deleting a store
 * of ~100 MiB and hundreds of files (journal, online discard) would slow the next tool's pull.
 */
function scratch(parent: string, prefix: string): { dir: string; release: () => void } {
  const dir = mkdtempSync(join(parent, prefix));
  onCleanup(`remove ${dir}`, () => {
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, release: () => void unmountUnder(dir) };
}


/** SIGKILLs `pid` and its descendants (GNU time's command, skopeo's storage-untar, ...). */
function killTree(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** A process killed (TERM, then KILL with its descendants after `graceMs`) on cleanup. */
function track(name: string, proc: Bun.Subprocess, graceMs = 10_000): () => Promise<void> {
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (!done) {
      killTree(proc.pid);
      await proc.exited;
    }
  };
  const forget = onCleanup(`stop ${name}`, stop);
  return async () => {
    forget();
    await stop();
  };
}

// ---------------------------------------------------------------- /proc sampling

const CLK_TCK = 100;


/** utime + stime of the whole process (all threads), seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after ")": state(3) ... utime is field 14, stime 15 (1-based in proc(5)) → index 11, 12
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Sample {
  ms: number;
  cpuS: number;
  /** Daemon VmRSS just before the pull (NaN for one-shot processes). */
  idleMiB: number;
  peakMiB: number;
  /** peak - idle for daemons; the process's peak for one-shot clients. */
  growthMiB: number;
  /** Sampled peak RssAnon - RssAnon before (daemons). */
  anonMiB: number;
  /** The client process's peak RSS (ctr), when it matters. */
  clientMiB?: number;
}

interface ToolRun {
  ms: number;
  cpuS: number;
  maxRssMiB: number;
}

/**
 * Runs `pull` while watching daemon `pid`: HWM reset, 10 ms RSS sampling, CPU delta. A pull that
 * runs a client process returns its ToolRun: its CPU is added, its peak RSS is the client column.
 */
async function watchDaemon(pid: number, pull: () => Promise<ToolRun | void>): Promise<Sample> {
  const before = procStatus(pid);
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
  let sampled = before.rss;
  let anon = before.anon;
  const timer = setInterval(() => {
    try {
      const now = procStatus(pid);
      sampled = Math.max(sampled, now.rss);
      anon = Math.max(anon, now.anon);
    } catch {
      // exited: the pull fails and says so
    }
  }, 10);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let client: ToolRun | void;
  try {
    client = await pull();
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - t0;
  const cpuS = cpuSeconds(pid) - cpu0 + (client ? client.cpuS : 0);
  const after = procStatus(pid);
  const peak = Math.max(sampled, after.hwm);
  return {
    ms,
    cpuS,
    idleMiB: before.rss,
    peakMiB: peak,
    growthMiB: peak - before.rss,
    anonMiB: Math.max(anon, after.anon) - before.anon,
    ...(client ? { clientMiB: client.maxRssMiB } : {}),
  };
}

/**
 * Runs a one-shot command under GNU time (its rusage of the command: max RSS, user and system
 * CPU). Not Bun's resourceUsage(): Bun forks this (large) process before exec, and the child's
 * ru_maxrss keeps the parent's RSS at fork time. Without /usr/bin/time, VmRSS is sampled every
 * 10 ms instead (CPU then from /proc before exit is unavailable: NaN). Throws with the command's
 * stderr on failure.
 */
async function runTool(cmd: string[], env: Record<string, string>, logFile: string): Promise<ToolRun> {
  const timeFile = `${logFile}.time`;
  const full = GNU_TIME ? [GNU_TIME, "-q", "-f", "%M %U %S", "-o", timeFile, ...cmd] : cmd;
  const t0 = performance.now();
  const proc = Bun.spawn(full, { stdin: "ignore", stdout: Bun.file(logFile), stderr: "pipe", env: { ...process.env, ...env } });
  const forget = onCleanup(`kill ${cmd[0]}`, async () => {
    killTree(proc.pid);
    await proc.exited;
  });
  let sampled = 0;
  const timer = GNU_TIME
    ? undefined
    : setInterval(() => {
        try {
          sampled = Math.max(sampled, procStatus(proc.pid).rss);
        } catch {
          // exited
        }
      }, 10);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - t0;
  clearInterval(timer);
  forget();
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}:\n${stderr.slice(-3000)}`);
  if (!GNU_TIME) return { ms, cpuS: NaN, maxRssMiB: sampled };
  const [kb, user, sys] = readFileSync(timeFile, "utf8").trim().split(/\s+/).map(Number);
  return { ms, cpuS: user! + sys!, maxRssMiB: kb! / 1024 };
}

// ---------------------------------------------------------------- the images

/**
 * A small "distro" layer of about `files` regular files: binaries and libraries (incompressible,
 * 2-70 KiB), docs and configuration (text), plus directories and symlinks. Returns the layer and
 * its regular-file count.
 */
function baseLayer(files: number): { layer: BuiltLayer; files: number } {
  const entries: TarInput[] = [];
  const words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua".split(" ");
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const text = (n: number) => {
    let s = "";
    while (s.length < n) s += words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? "\n" : " ");
    return s.slice(0, n);
  };
  for (const d of ["bin/", "etc/", "lib/", "usr/", "usr/bin/", "usr/lib/", "usr/share/", "usr/share/doc/", "var/", "var/lib/", "tmp/"]) {
    entries.push({ name: d, ...(d === "tmp/" ? { mode: 0o1777 } : {}) });
  }
  const key = randomBytes(1 << 20, 201); // slices of one MiB of keystream: incompressible "binaries"
  const slice = (size: number) => {
    const off = Math.floor(rnd() * (key.length - size));
    return key.subarray(off, off + size);
  };
  const tools = Math.round(files * 0.25);
  const libs = Math.round(files * 0.125);
  const confs = Math.round(files * 0.05);
  const pkgs = Math.max(0, Math.floor((files - tools - libs - confs - 2) / 3));
  let n = 0;
  for (let i = 0; i < tools; i++, n++) {
    entries.push({ name: `usr/bin/tool${i}`, mode: 0o755, data: slice(2048 + Math.floor(rnd() * 30_000)) });
    if (i % 3 === 0) entries.push({ name: `bin/t${i}`, type: "symlink", linkname: `../usr/bin/tool${i}` });
  }
  for (let i = 0; i < libs; i++, n++) entries.push({ name: `usr/lib/libbench${i}.so.1`, data: slice(8192 + Math.floor(rnd() * 60_000)) });
  for (let i = 0; i < pkgs; i++, n += 3) {
    entries.push({ name: `usr/share/doc/pkg${i}/` });
    entries.push({ name: `usr/share/doc/pkg${i}/copyright`, data: text(500 + Math.floor(rnd() * 4000)) });
    entries.push({ name: `usr/share/doc/pkg${i}/changelog`, data: text(1000 + Math.floor(rnd() * 12_000)) });
    entries.push({ name: `var/lib/pkg${i}.list`, data: text(200 + Math.floor(rnd() * 800)) });
  }
  for (let i = 0; i < confs; i++, n++) entries.push({ name: `etc/conf${i}.conf`, data: text(100 + Math.floor(rnd() * 2000)) });
  entries.push({ name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n" });
  entries.push({ name: "etc/group", data: "root:x:0:\napp:x:1000:\n" });
  n += 2;
  return { layer: buildLayer(entries, "docker", "gzip", 6), files: n };
}

interface BenchImages {
  big: BuiltImage;
  sibling: BuiltImage;
  files: number;
  baseFiles: number;
  baseMiB: number;
  compressedMiB: number;
  uncompressedMiB: number;
}

function buildImages(totalMiB: number, files: number): BenchImages {
  const { layer: base, files: baseFiles } = baseLayer(files);
  const baseMiB = base.tar.length / (1 << 20);
  // The data layers (incompressible, gzip -1) make up the rest, in 4 layers of 4 MiB files.
  const dataMiB = Math.max(4, Math.round(totalMiB - baseMiB));
  const data = bigImage(dataMiB, { format: "docker", compression: "gzip", layerCount: 4, fileMiB: 4 });
  const layers = [base, ...data.layers];
  const history = layers.map((_, i) => (i === 0 ? "base" : `data ${i}`));
  const big = assembleImage(layers, { format: "docker", history });
  const sibling = assembleImage(layers, { format: "docker", history, config: { Labels: { "io.crio-ts.bench": "sibling" }, Cmd: ["sleep", "1"] } });
  const mib = (n: number) => n / (1 << 20);
  return {
    big,
    sibling,
    baseFiles,
    baseMiB,
    files: baseFiles + data.layers.length * Math.ceil(dataMiB / data.layers.length / 4),
    compressedMiB: mib(layers.reduce((n, l) => n + l.size, 0)),
    uncompressedMiB: mib(layers.reduce((n, l) => n + l.tar.length, 0)),
  };
}

// ---------------------------------------------------------------- statistics and output

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

type Scenario = "cold" | "warm" | "reuse";
const SCENARIOS: Scenario[] = ["cold", "warm", "reuse"];
type Results = Record<Scenario, Sample[]>;


function med(r: Results, s: Scenario, k: keyof Sample): number {
  return median(r[s].map((x) => (x[k] as number | undefined) ?? NaN));
}

const fmt = (x: number, digits = 2, width = 7) => (Number.isNaN(x) ? "-" : x.toFixed(digits)).padStart(width);

// ---------------------------------------------------------------- the tools

interface Target {
  registry: TestRegistry;
  top: string;
  images: BenchImages;
}

function names(t: Target) {
  return { big: `${t.registry.host}/bench/big:latest`, sibling: `${t.registry.host}/bench/big2:latest` };
}


interface CrioDaemon {
  pid: number;
  dir: string;
  root: string;
  image: CriClient;
  logFile: string;
  stop(): Promise<void>;
}

async function startCrio(t: Target, extraArgs: string[] = []): Promise<CrioDaemon> {
  const { dir, release } = scratch(t.top, "crio-");
  const socket = join(dir, "crio.sock");
  mkdirSync(join(dir, "registries.conf.d"));
  writeFileSync(join(dir, "registries.conf"), `[[registry]]\nlocation = "${t.registry.host}"\ninsecure = true\n`);
  writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const logFile = join(t.top, `${dir.split("/").pop()}.log`);
  const cmd = [
    CRIO,
    "--listen", socket,
    "--root", join(dir, "root"),
    "--runroot", join(dir, "runroot"),
    "--registries-conf", join(dir, "registries.conf"),
    "--registries-conf-dir", join(dir, "registries.conf.d"),
    "--signature-policy", join(dir, "policy.json"),
    "-c", "",
    "-d", "",
    ...extraArgs,
  ];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CONTAINER") && k !== "NOTIFY_SOCKET") env[k] = v;
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: Bun.file(logFile), stderr: Bun.file(logFile), env });
  const stopProc = track("crio", proc);
  const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
  const image = criClient(socket, ImageServiceMethods, "ImageService");
  const stop = async () => {
    runtime.close();
    image.close();
    await stopProc();
    release();
  };
  try {
    await waitUntil("crio", 20_000, async () => {
      if (proc.exitCode !== null) throw new Error(`crio exited with ${proc.exitCode}: see ${logFile}\n${tail(logFile)}`);
      if (!existsSync(socket)) return false;
      try {
        await runtime.call("Version", {}, 1000);
        await image.call("ListImages", {}, 1000);
        return true;
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: proc.pid, dir, root: join(dir, "root"), image, logFile, stop };
}


type Round = Record<Scenario, Sample>;

/** `sync`, so that a cold pull does not pay for write-back of the previous tool's pages. */
function syncDisks(): void {
  Bun.spawnSync(["sync"]);
}

/** One crio run: a fresh daemon on a fresh root, cold → warm → reuse. */
async function crioRound(t: Target): Promise<Round> {
  const { big, sibling } = names(t);
  const d = await startCrio(t);
  try {
    await Bun.sleep(1000); // settle: idle RSS is what a started daemon sits at
    const out: Partial<Round> = {};
    for (const s of SCENARIOS) {
      if (s === "cold") syncDisks();
      const name = s === "reuse" ? sibling : big;
      try {
        out[s] = await watchDaemon(d.pid, async () => void (await d.image.call("PullImage", { image: { image: name } }, 600_000)));
      } catch (err) {
        throw new Error(`crio ${s} pull of ${name}: ${err instanceof Error ? err.message : String(err)}\n${tail(d.logFile)}`);
      }
    }
    return out as Round;
  } finally {
    await d.stop();
  }
}

/**
 * One diagnostic crio cold pull (not part of the medians): a 2 ms poll of the store's
 * directories marks when the manifest, config and policy are done (the first staging directory
 * appears), when each layer is committed (its overlay/<id>/diff appears: a rename of the staged
 * tree, done bottom-up once the layer below is in), and when the RPC returns (after the image
 * record is written). A second pull of the base layer alone, then of the data layers alone,
 * splits the unpack cost between small files and bulk data.
 */
async function crioPhases(t: Target): Promise<void> {
  const pullTimed = async (name: string, diffIds: string[]) => {
    const d = await startCrio(t);
    try {
      await Bun.sleep(1000);
      syncDisks();
      const staging = join(d.root, "overlay", ".crio-staging");
      const ids: string[] = [];
      let parent: string | undefined;
      for (const diffId of diffIds) ids.push((parent = layerIdFor(parent, diffId)));
      const committed = new Map<string, number>();
      let firstStage = NaN;
      const t0 = performance.now();
      const poll = setInterval(() => {
        const now = performance.now() - t0;
        if (Number.isNaN(firstStage)) {
          try {
            if (readdirSync(staging).length > 0) firstStage = now;
          } catch {
            // not there yet
          }
        }
        for (const id of ids) if (!committed.has(id) && existsSync(join(d.root, "overlay", id, "diff"))) committed.set(id, now);
      }, 2);
      const sample = await watchDaemon(d.pid, async () => {
        try {
          await d.image.call("PullImage", { image: { image: name } }, 600_000);
        } finally {
          clearInterval(poll);
        }
      });
      return { sample, firstStage, commits: ids.map((id) => committed.get(id) ?? NaN) };
    } finally {
      await d.stop();
    }
  };
  const host = t.registry.host;
  const all = await pullTimed(`${host}/bench/big:latest`, t.images.big.layerDiffIds);
  const baseOnly = await pullTimed(`${host}/bench/base:latest`, t.images.big.layerDiffIds.slice(0, 1));
  const dataOnly = await pullTimed(`${host}/bench/data:latest`, t.images.big.layerDiffIds.slice(1));
  const last = Math.max(...all.commits.filter((x) => !Number.isNaN(x)));
  const ms = (x: number) => fmt(x, 0, 0);
  console.log(
    `crio phases, one cold pull (ms from the RPC start): manifest+config+policy done ${ms(all.firstStage)}; ` +
      `layers committed (bottom-up) at ${all.commits.map(ms).join(", ")}; RPC returned ${ms(all.sample.ms)} ` +
      `(image record ${ms(all.sample.ms - last)} after the last commit); cpu ${fmt(all.sample.cpuS, 2, 0)} s`,
  );
  console.log(
    `crio split: base layer alone (${t.images.baseFiles} files, ${fmt(t.images.baseMiB, 1, 0)} MiB) ${ms(baseOnly.sample.ms)} ms, cpu ${fmt(baseOnly.sample.cpuS, 2, 0)} s; ` +
      `the 4 data layers alone ${ms(dataOnly.sample.ms)} ms, cpu ${fmt(dataOnly.sample.cpuS, 2, 0)} s, anon +${fmt(dataOnly.sample.anonMiB, 0, 0)} MiB`,
  );
}

/** One skopeo run: a fresh containers-storage root, cold → warm → reuse. */
async function skopeoRound(t: Target, skopeo: string): Promise<Round> {
  const { big, sibling } = names(t);
  const { dir, release } = scratch(t.top, "skopeo-");
  try {
    const root = join(dir, "root");
    const runroot = join(dir, "runroot");
    writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    writeFileSync(join(dir, "registries.conf"), `[[registry]]\nlocation = "${t.registry.host}"\ninsecure = true\n`);
    writeFileSync(join(dir, "storage.conf"), `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`);
    const env = {
      CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
      CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
      TMPDIR: dir,
    };
    const out: Partial<Round> = {};
    for (const s of SCENARIOS) {
      if (s === "cold") syncDisks();
      const src = s === "reuse" ? sibling : big;
      const dst = s === "reuse" ? "bench/big2:latest" : "bench/big:latest";
      const r = await runTool(
        [skopeo, "--policy", join(dir, "policy.json"), "copy", "--quiet", `docker://${src}`, `containers-storage:[overlay@${root}+${runroot}]${dst}`, "--src-tls-verify=false"],
        env,
        join(dir, "skopeo.out"),
      );
      out[s] = { ms: r.ms, cpuS: r.cpuS, idleMiB: NaN, peakMiB: r.maxRssMiB, growthMiB: r.maxRssMiB, anonMiB: NaN };
    }
    return out as Round;
  } finally {
    release();
  }
}

/** One containerd run: a fresh daemon on a fresh root/state, `ctr image pull` cold → warm → reuse. */
async function containerdRound(t: Target, containerd: string, ctr: string): Promise<Round> {
  const { big, sibling } = names(t);
  const { dir, release } = scratch(t.top, "containerd-");
  const socket = join(dir, "containerd.sock");
  const conf = join(dir, "config.toml");
  writeFileSync(conf, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`);
  const logFile = join(t.top, `${dir.split("/").pop()}.log`);
  // Temp mounts of the diff applier (mount.WithTempMount) go under TMPDIR: inside `dir`, where
  // the cleanup unmounts whatever a killed containerd left.
  mkdirSync(join(dir, "tmp"));
  const env: Record<string, string> = { TMPDIR: join(dir, "tmp") };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "XDG_RUNTIME_DIR" && k !== "TMPDIR") env[k] = v;
  const proc = Bun.spawn([containerd, "--config", conf], { stdin: "ignore", stdout: Bun.file(logFile), stderr: Bun.file(logFile), env });
  const stop = track("containerd", proc);
  try {
    await waitUntil("containerd", 20_000, () => {
      if (proc.exitCode !== null) throw new Error(`containerd exited with ${proc.exitCode}: see ${logFile}\n${tail(logFile)}`);
      return existsSync(socket) && spawnSync(ctr, ["--address", socket, "version"], { stdio: "ignore" }).status === 0;
    });
    await Bun.sleep(1000);
    const out: Partial<Round> = {};
    for (const s of SCENARIOS) {
      if (s === "cold") syncDisks();
      const ref = s === "reuse" ? sibling : big;
      out[s] = await watchDaemon(proc.pid, () => runTool([ctr, "--address", socket, "image", "pull", "--plain-http", ref], {}, join(dir, "ctr.out")));
    }
    return out as Round;
  } finally {
    await stop();
    release();
  }
}

/** The installed binary, or (with --peer) the binary after `apt-get install`, or undefined. */
function ensure(bin: string, pkg: string): string | undefined {
  let path = Bun.which(bin);
  if (!path && withPeer) {
    console.log(`installing Debian's ${pkg} ...`);
    const r = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg], {
      stdout: "ignore",
      stderr: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (r.exitCode !== 0) console.log(`apt-get install ${pkg} failed (exit ${r.exitCode})`);
    path = Bun.which(bin);
  }
  return path ?? undefined;
}

/** Sequential and parallel curl of every layer blob: what the registry and loopback deliver. */
async function registryBaseline(t: Target): Promise<{ seqMs: number; parMs: number } | undefined> {
  const curl = Bun.which("curl");
  if (!curl) return undefined;
  const urls = t.images.big.layerDigests.map((d) => `${t.registry.url}/v2/bench/big/blobs/${d}`);
  const get = (u: string) => Bun.spawn([curl, "-sf", "-o", "/dev/null", u], { stdout: "ignore", stderr: "ignore" }).exited;
  let t0 = performance.now();
  for (const u of urls) await get(u);
  const seqMs = performance.now() - t0;
  t0 = performance.now();
  await Promise.all(urls.map(get));
  return { seqMs, parMs: performance.now() - t0 };
}


// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (!existsSync(DIST_CRIO)) throw new Error(`${DIST_CRIO} is missing: run scripts/build -a amd64`);
  const top = mkdtempSync(join(tmpdir(), "bench-pull-"));
  onCleanup(`remove ${top}`, () => {
    unmountUnder(top);
    rmSync(top, { recursive: true, force: true });
  });
  const built = statSync(DIST_CRIO).mtime.toISOString();
  CRIO = join(top, "crio");
  copyFileSync(DIST_CRIO, CRIO);
  chmodSync(CRIO, 0o755);

  const skopeo = ensure("skopeo", "skopeo");
  const containerd = ensure("containerd", "containerd");
  const ctr = containerd ? (Bun.which("ctr") ?? undefined) : undefined;
  GNU_TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : ensure("time", "time");
  if (!GNU_TIME && (skopeo || ctr)) console.log("/usr/bin/time missing (package time): skopeo's and ctr's RSS sampled every 10 ms, no CPU time");

  const tb = performance.now();
  const images = buildImages(sizeMiB, fileCount);
  const registry = await startRegistry();
  onCleanup("stop docker-registry", () => registry.stop());
  await pushImage(registry.url, "bench/big", images.big);
  await pushImage(registry.url, "bench/big2", images.sibling);
  if (phases) {
    const layers = images.big.layers;
    await pushImage(registry.url, "bench/base", assembleImage(layers.slice(0, 1), { format: "docker" }));
    await pushImage(registry.url, "bench/data", assembleImage(layers.slice(1), { format: "docker" }));
  }
  const t: Target = { registry, top, images };
  console.log(
    `image ${names(t).big}: ${images.big.layers.length} layers (docker v2, gzip), ` +
      `${images.compressedMiB.toFixed(1)} MiB compressed, ${images.uncompressedMiB.toFixed(1)} MiB unpacked, ${images.files} files ` +
      `(base layer: ${images.baseFiles} small files, ${images.baseMiB.toFixed(1)} MiB; 4 data layers of 4 MiB incompressible files); ` +
      `${names(t).sibling} shares all its layers; built and pushed in ${((performance.now() - tb) / 1000).toFixed(1)} s`,
  );
  const base = await registryBaseline(t);
  if (base) console.log(`registry baseline: curl of all layer blobs ${fmt(base.seqMs, 0, 0)} ms sequential, ${fmt(base.parMs, 0, 0)} ms in parallel`);
  console.log(`crio: ${DIST_CRIO} (built ${built}); ${runs} run(s) per tool, interleaved, fresh store each; load average ${loadavg()}`);

  const tools: { name: string; round: () => Promise<Round>; mem: "daemon" | "process"; r: Results }[] = [
    { name: "crio", round: () => crioRound(t), mem: "daemon", r: { cold: [], warm: [], reuse: [] } },
  ];
  if (skopeo) tools.push({ name: "skopeo", round: () => skopeoRound(t, skopeo), mem: "process", r: { cold: [], warm: [], reuse: [] } });
  else console.log("skopeo not installed: not measured (run with --peer to install Debian's skopeo)");
  if (containerd && ctr) tools.push({ name: "containerd", round: () => containerdRound(t, containerd, ctr), mem: "daemon", r: { cold: [], warm: [], reuse: [] } });
  else console.log("containerd/ctr not installed: not measured (run with --peer to install Debian's containerd)");

  for (let i = 0; i < runs; i++) {
    for (const tool of tools) {
      const round = await tool.round();
      for (const s of SCENARIOS) tool.r[s].push(round[s]);
    }
  }
  if (phases) await crioPhases(t);

  console.log("");
  console.log(
    `medians of ${runs}; cold = empty store, warm = same tag again (image + layers present), reuse = new image, all layers present; ` +
      `cpu = every process of the pull (containerd: daemon + ctr); growth = peak - RSS before the pull; anon = RssAnon growth; client = ctr's peak RSS`,
  );
  console.log(
    `${"tool".padEnd(11)}${"pull".padEnd(6)}${"time s".padStart(8)}${"cpu s".padStart(8)}${"idle MiB".padStart(10)}${"peak MiB".padStart(10)}` +
      `${"growth MiB".padStart(12)}${"anon MiB".padStart(10)}${"client MiB".padStart(12)}`,
  );
  for (const { name, r, mem } of tools) {
    for (const s of SCENARIOS) {
      console.log(
        `${name.padEnd(11)}${s.padEnd(6)}${fmt(med(r, s, "ms") / 1000, 2, 8)}${fmt(med(r, s, "cpuS"), 2, 8)}` +
          `${fmt(med(r, s, "idleMiB"), 1, 10)}${fmt(med(r, s, "peakMiB"), 1, 10)}` +
          `${(mem === "process" ? "(=peak)" : fmt(med(r, s, "growthMiB"), 1, 0)).padStart(12)}${fmt(med(r, s, "anonMiB"), 1, 10)}${fmt(med(r, s, "clientMiB"), 1, 12)}`,
      );
    }
  }
  const all = (r: Results, s: Scenario) => r[s].map((x) => (x.ms / 1000).toFixed(2)).join(" ");
  console.log("");
  for (const { name, r } of tools) console.log(`${name.padEnd(11)}all times s: ${SCENARIOS.map((s) => `${s} [${all(r, s)}]`).join("  ")}`);
  const ours = tools[0]!.r;
  for (const { name, r, mem } of tools.slice(1)) {
    // Below these floors (10 ms CPU ticks, sampling noise) a ratio says nothing: "~" instead.
    const floor: Partial<Record<keyof Sample, number>> = { cpuS: 0.05, growthMiB: 2, peakMiB: 2 };
    const ratio = (k: keyof Sample, s: Scenario, theirs: keyof Sample = k) => {
      const a = med(ours, s, k);
      const b = med(r, s, theirs);
      const min = floor[k] ?? 0;
      return a < min || b < min ? "~" : `${fmt(a / b, 2, 0)}x`;
    };
    console.log(
      `ratio crio/${name}: time ${SCENARIOS.map((s) => `${s} ${ratio("ms", s)}`).join(", ")}; ` +
        `cpu ${SCENARIOS.map((s) => `${s} ${ratio("cpuS", s)}`).join(", ")}; ` +
        (mem === "process"
          ? `crio RSS growth / skopeo peak RSS ${SCENARIOS.map((s) => `${s} ${ratio("growthMiB", s, "peakMiB")}`).join(", ")}`
          : `RSS growth ${SCENARIOS.map((s) => `${s} ${ratio("growthMiB", s)}`).join(", ")}`),
    );
  }
  if (tools.length > 1) console.log(`("~": below 0.05 s CPU or 2 MiB on either side, too small for a ratio)`);
  console.log(`load average at the end ${loadavg()}`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  // After a signal, failures of what the cleanup killed are expected: not worth a stack.
  if (!interrupted) console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  exitCode = interrupted ? 130 : 1;
} finally {
  await cleanupAll();
}
process.exit(exitCode);
