// Shared pieces of the CRI benchmarks (scripts/bench-pods, scripts/bench-containers):
//   - a cleanup stack, run in reverse on normal exit, on an error and on SIGINT/SIGTERM/SIGHUP;
//   - scratch directories, process trees, /proc memory readings;
//   - one CNI network (Debian's bridge + host-local + portmap + loopback, the conflist of
//     test/integration/sandbox.test.ts) that every daemon of a run is given, byte for byte;
//   - this crio and containerd (Debian's package, its CRI plugin) started on scratch roots, both
//     with cgroupfs and runc under a runc root of their own, and the same CriDaemon face for both;
//   - containerd's sandbox ("pause") image, built here and served by a local registry;
//   - latency statistics and a runner that keeps N requests in flight.
// Nothing here asserts: the benchmarks print numbers.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { criClient, type CriClient } from "../../test/integration/harness.ts";
import { assembleImage, buildLayer, type BuiltImage } from "../../test/lib/images.ts";
import { PLUGIN_DIR, freeSubnetPrefix, hostportChainsExist, sh, sweepNat } from "../../src/network/test-helpers.ts";
import { ImageServiceMethods, RuntimeServiceMethods } from "../../src/proto/index.ts";
import { MNT_DETACH, umount2 } from "../../src/sys/mount.ts";

export { criClient, type CriClient };

// ---------------------------------------------------------------- cleanup

const cleanups: { what: string; fn: () => void | Promise<void> }[] = [];

/** Registers `fn` to run at cleanup (newest first); the returned function unregisters it. */
export function onCleanup(what: string, fn: () => void | Promise<void>): () => void {
  const entry = { what, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

let cleaning: Promise<void> | undefined;

/** Runs every registered cleanup once, newest first; a failing one is reported, not fatal. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, fn } = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup (${what}) failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

let interrupted = false;
export const wasInterrupted = () => interrupted;

/** On SIGINT/SIGTERM/SIGHUP: run the cleanups, then exit 130/143. A second signal is ignored. */
export function cleanupOnSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`\n${sig}: cleaning up`);
      void cleanupAll().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }
}

/** Runs `main` with the cleanups after it (also on failure) and exits with its status. */
export async function runMain(main: () => Promise<void>): Promise<never> {
  cleanupOnSignals();
  let code = 0;
  try {
    await main();
  } catch (err) {
    // After a signal, failures of what the cleanup killed are expected: not worth a stack.
    if (!interrupted) console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    code = interrupted ? 130 : 1;
  } finally {
    await cleanupAll();
  }
  process.exit(code);
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => unescape(l.split(" ")[4] ?? ""))
    .filter((p) => p === dir || p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything mounted at or below `dir` (stacked mounts too), lazily if busy. */
export function unmountUnder(dir: string): number {
  let n = 0;
  for (let pass = 0; pass < 20; pass++) {
    const points = mountsUnder(dir);
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

/** A temp dir under `parent`: unmounted below and removed on cleanup. */
export function scratch(parent: string, prefix: string): string {
  const dir = mkdtempSync(join(parent, prefix));
  onCleanup(`remove ${dir}`, () => {
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

// ---------------------------------------------------------------- processes and /proc

/** `pid` and every process below it (read before anything is killed: orphans lose the link). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").split(" ")) if (c.trim()) out.push(Number(c));
      } catch {
        // gone
      }
    }
  }
  return out;
}

export function killPids(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Processes whose command line has `needle` as one of its arguments. */
export function pidsWithArg(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").includes(needle)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * A process stopped on cleanup: SIGTERM, then SIGKILL with its descendants after `graceMs`.
 * Daemons are spawned `detached` (their own session): a Ctrl-C on the terminal reaches only this
 * script, whose cleanup still has live daemons to remove the pods through.
 */
export function track(name: string, proc: Bun.Subprocess, graceMs = 10_000): () => Promise<void> {
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (!done) {
      killPids(processTree(proc.pid));
      await proc.exited;
    }
  };
  const forget = onCleanup(`stop ${name}`, stop);
  return async () => {
    forget();
    await stop();
  };
}

/** VmRSS, VmHWM and RssAnon of `pid`, MiB. */
export function procStatus(pid: number): { rss: number; hwm: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024, anon: kb("RssAnon") / 1024 };
}

/** Proportional set size of `pid`, MiB: shared pages (one shim binary, many shims) counted once overall. */
export function pssMiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) `pid` has used so far, ms (clock ticks of 10 ms: USER_HZ is 100 on Linux). */
export function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

export function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

export function tail(file: string, n = 3000): string {
  try {
    return readFileSync(file, "utf8").slice(-n);
  } catch {
    return "";
  }
}

export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms`);
    await Bun.sleep(20);
  }
}

/** The installed binary, or (with `install`) the binary after `apt-get install pkg`, or undefined. */
export function ensureBinary(bin: string, pkg: string, install: boolean): string | undefined {
  let path = Bun.which(bin);
  if (!path && install) {
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

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile (of 50 samples, p99 is the slowest). NaN when empty. */
export function percentile(xs: number[], p: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1]!;
}

export interface Phase {
  /** Per-request latency, ms, in completion order. */
  ms: number[];
  /** Latency of call i, ms (to pair phases over the same objects: create i + start i). */
  byIndex: number[];
  /** From the first request sent to the last answer, ms. */
  wallMs: number;
}

/**
 * Calls `fn(0..count-1)` with at most `concurrency` calls in flight (a new one starts as soon as
 * one answers, as a kubelet's pod workers would), timing each call.
 */
export async function runPhase(count: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<Phase> {
  const ms: number[] = [];
  const byIndex: number[] = new Array<number>(count).fill(NaN);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t = performance.now();
      await fn(i);
      const took = performance.now() - t;
      ms.push(took);
      byIndex[i] = took;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ms, byIndex, wallMs: performance.now() - t0 };
}

export const fmt = (x: number, digits = 1, width = 7) => (Number.isFinite(x) ? x.toFixed(digits) : "-").padStart(width);

// ---------------------------------------------------------------- the sandbox image

/**
 * What Kubernetes' pause does, as a 232-byte static x86-64 ELF (no libc): block SIGINT, SIGTERM
 * and SIGCHLD, then wait for them with rt_sigtimedwait; SIGCHLD reaps every exited child
 * (wait4(-1, WNOHANG) until none), SIGINT or SIGTERM exits 0. Waiting on blocked signals rather
 * than installing handlers matters for pid 1: a blocked signal is queued even where the default
 * action of an unhandled one would be ignored. Assembled with `as` (Intel syntax):
 *
 *   _start: mov eax,14; xor edi,edi; lea rsi,[rip+set]; xor edx,edx; mov r10d,8; syscall  # rt_sigprocmask(SIG_BLOCK, &set, 0, 8)
 *   wait:   mov eax,128; lea rdi,[rip+set]; xor esi,esi; xor edx,edx; mov r10d,8; syscall # rt_sigtimedwait(&set, 0, 0, 8)
 *           cmp eax,17; je reap; cmp eax,2; je down; cmp eax,15; je down; jmp wait
 *   reap:   mov eax,61; mov edi,-1; xor esi,esi; mov edx,1; xor r10d,r10d; syscall          # wait4(-1, 0, WNOHANG, 0)
 *           test eax,eax; jg reap; jmp wait
 *   down:   mov eax,231; xor edi,edi; syscall                                              # exit_group(0)
 *   set:    .quad (1<<1)|(1<<14)|(1<<16)                                                   # SIGINT, SIGTERM, SIGCHLD
 */
const PAUSE_CODE_AMD64 =
  "b80e00000031ff488d355a00000031d241ba080000000f05b880000000488d3d4400000031f631d241ba080000000f05" +
  "83f811740c83f802742383f80f741eebd7b83d000000bfffffffff31f6ba010000004531d20f0585c07fe6ebbbb8e700" +
  "000031ff0f0566900240010000000000";

/** The pause program as an ELF executable: one ELF header, one R+X PT_LOAD of the whole file. */
export function pauseBinary(): Uint8Array {
  if (process.arch !== "x64") throw new Error(`the bench pause binary is x86-64 only (this is ${process.arch})`);
  const code = Buffer.from(PAUSE_CODE_AMD64, "hex");
  const base = 0x400000n;
  const hdr = 64 + 56;
  const b = Buffer.alloc(hdr + code.length);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // ELF, 64-bit, little-endian, version 1, SysV
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // EM_X86_64
  b.writeUInt32LE(1, 20); // EV_CURRENT
  b.writeBigUInt64LE(base + BigInt(hdr), 24); // e_entry
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeBigUInt64LE(0n, 40); // e_shoff
  b.writeUInt32LE(0, 48); // e_flags
  b.writeUInt16LE(64, 52); // e_ehsize
  b.writeUInt16LE(56, 54); // e_phentsize
  b.writeUInt16LE(1, 56); // e_phnum
  b.writeUInt16LE(64, 58); // e_shentsize
  b.writeUInt16LE(0, 60); // e_shnum
  b.writeUInt16LE(0, 62); // e_shstrndx
  b.writeUInt32LE(1, 64); // p_type PT_LOAD
  b.writeUInt32LE(5, 68); // p_flags R+X
  b.writeBigUInt64LE(0n, 72); // p_offset
  b.writeBigUInt64LE(base, 80); // p_vaddr
  b.writeBigUInt64LE(base, 88); // p_paddr
  b.writeBigUInt64LE(BigInt(b.length), 96); // p_filesz
  b.writeBigUInt64LE(BigInt(b.length), 104); // p_memsz
  b.writeBigUInt64LE(0x1000n, 112); // p_align
  b.set(code, hdr);
  return new Uint8Array(b);
}

/** A pause image: /pause as its entrypoint, run as root, plus the usual empty mount points. */
export function pauseImage(): BuiltImage {
  const layer = buildLayer(
    [
      { name: "pause", data: pauseBinary(), mode: 0o755 },
      { name: "dev/" },
      { name: "etc/" },
      { name: "proc/", mode: 0o555 },
      { name: "sys/", mode: 0o555 },
    ],
    "oci",
    "gzip",
  );
  return assembleImage([layer], {
    format: "oci",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Entrypoint: ["/pause"],
      Cmd: undefined,
      User: "",
      WorkingDir: "/",
      Labels: { "io.crio-ts.bench": "pause" },
      StopSignal: "SIGTERM",
    },
    history: ["pause (rt_sigtimedwait on INT, TERM, CHLD)"],
  });
}

// ---------------------------------------------------------------- the CNI network

export interface BenchNetwork {
  name: string;
  bridge: string;
  subnet: string;
  /** The .conflist text every daemon of the run gets. */
  conflist: string;
}

/**
 * A bridge network on a free 10.89.x.0/24 (host-local IPAM state in `top`), shared by every
 * daemon of a run. Cleanup removes the bridge, the NAT rules and chains naming the network (and
 * portmap's shared chains if this run made them), the CNI result cache files of the network, and
 * restores ip_forward.
 */
export function createBenchNetwork(top: string, tag: string): BenchNetwork {
  if (!existsSync(join(PLUGIN_DIR, "bridge"))) throw new Error(`no CNI plugins in ${PLUGIN_DIR}: apt-get install containernetworking-plugins`);
  const name = `bench-pods-${tag}`;
  const bridge = `cni-b${tag}`.slice(0, 15);
  const subnet = `${freeSubnetPrefix()}.0/24`;
  const ipamDir = join(top, "ipam");
  const ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  const sharedChainsBefore = hostportChainsExist();
  onCleanup(`network ${name}`, () => {
    sh(["ip", "link", "del", bridge]);
    sweepNat((l) => l.includes(name), !sharedChainsBefore);
    writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
    const results = "/var/lib/cni/results";
    if (existsSync(results)) for (const f of readdirSync(results)) if (f.startsWith(`${name}-`)) rmSync(join(results, f), { force: true });
  });
  const conflist = JSON.stringify(
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
          ipam: { type: "host-local", dataDir: ipamDir, routes: [{ dst: "0.0.0.0/0" }], ranges: [[{ subnet }]] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
        { type: "loopback" },
      ],
    },
    null,
    2,
  );
  return { name, bridge, subnet, conflist };
}

/**
 * Removes every cgroup directory named `parent` (and below) in each hierarchy, deepest first.
 * Processes still in them (what a killed runc or daemon left: a `runc init` mid-create, say) are
 * SIGKILLed first, and given up to 2 s to leave.
 */
export async function removeCgroupParent(parent: string): Promise<void> {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    dirs.push(dir); // children before their parent
  };
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const d = join("/sys/fs/cgroup", h, parent);
    if (existsSync(d)) walk(d);
  }
  const procs = () =>
    dirs.flatMap((d) => {
      try {
        return readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  const left = [...new Set(procs())];
  if (left.length > 0) {
    console.error(`cleanup: killing ${left.length} process(es) left in cgroup ${parent}`);
    killPids(left);
    const deadline = Date.now() + 2000;
    while (procs().length > 0 && Date.now() < deadline) await Bun.sleep(20);
  }
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch (err) {
      console.error(`cleanup: rmdir ${d}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

// ---------------------------------------------------------------- the daemons

/** `runc delete --force` of every container under runc root `root` (and, with `nested`, its subdirectories: containerd's namespaces). */
export function deleteRuncContainers(root: string, nested = false): number {
  if (!existsSync(root)) return 0;
  const runc = Bun.which("runc") ?? "runc";
  let n = 0;
  for (const r of nested ? readdirSync(root).map((ns) => join(root, ns)) : [root]) {
    // A container caught mid-create has no state to load yet: runc list says so on stderr.
    const ids = spawnSync(runc, ["--root", r, "list", "-q"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).stdout?.split("\n").filter(Boolean) ?? [];
    for (const id of ids) {
      spawnSync(runc, ["--root", r, "delete", "--force", id], { stdio: "ignore" });
      n++;
    }
  }
  return n;
}

export interface CriDaemon {
  name: string;
  pid: number;
  dir: string;
  logFile: string;
  runtime: CriClient;
  image: CriClient;
  /** Monitor processes the daemon keeps outside itself: containerd's shims (one per pod), crio's conmons (one per container). */
  helperPids(): number[];
  /** Stops and removes every pod left, then stops the daemon and removes what it left behind. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  /** Parent of the daemon's scratch directory. */
  top: string;
  network?: BenchNetwork;
  /** "127.0.0.1:PORT" of a plain-HTTP local registry that image pulls may use. */
  registryHost?: string;
}

function cleanEnv(drop: (k: string) => boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop(k)) env[k] = v;
  return env;
}

/** Stops and removes every pod the daemon lists (containers go with their pod), each RPC within `timeoutMs`. */
export async function removeAllPods(runtime: CriClient, timeoutMs = 30_000): Promise<number> {
  const { items } = await runtime.call("ListPodSandbox", {}, timeoutMs);
  const ids: string[] = (items ?? []).map((p: { id: string }) => p.id);
  await Promise.all(
    ids.map(async (id) => {
      await runtime.call("StopPodSandbox", { podSandboxId: id }, timeoutMs);
      await runtime.call("RemovePodSandbox", { podSandboxId: id }, timeoutMs);
    }),
  );
  return ids.length;
}

/** A daemon's stop(): pods via CRI (while it answers), the process, then `leftovers`. */
function daemonStopper(name: string, runtime: CriClient, image: CriClient, stopProc: () => Promise<void>, leftovers: () => void) {
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      try {
        const n = await removeAllPods(runtime);
        if (n > 0) console.error(`cleanup: removed ${n} pod(s) left in ${name}`);
      } catch (err) {
        console.error(`cleanup: removing ${name}'s pods: ${err instanceof Error ? err.message : String(err)}`);
      }
      runtime.close();
      image.close();
      await stopProc();
      leftovers();
    })());
  const forget = onCleanup(`stop ${name} and its pods`, stop);
  return async () => {
    forget();
    await stop();
  };
}

/**
 * This crio (`binary`) on a scratch root: its own config with every path it writes inside the
 * scratch dir (runc's root too), cgroupfs, the bench network (if given) and plugins from PLUGIN_DIR, and a
 * registries.conf that knows only `registryHost`. drop_infra_ctr keeps its default (true): pods
 * that share no PID namespace get no pause container, as CRI-O users get by default.
 */
export async function startCrio(binary: string, opts: DaemonOptions, configExtra = ""): Promise<CriDaemon> {
  const dir = scratch(opts.top, "crio-");
  const socket = join(dir, "crio.sock");
  const netDir = join(dir, "net.d");
  const exitsDir = join(dir, "run", "exits");
  const runcRoot = join(dir, "runc");
  mkdirSync(netDir);
  mkdirSync(join(dir, "registries.conf.d"));
  mkdirSync(join(dir, "crio.conf.d"));
  if (opts.network) writeFileSync(join(netDir, "10-bench.conflist"), opts.network.conflist);
  writeFileSync(join(dir, "registries.conf"), opts.registryHost ? `[[registry]]\nlocation = "${opts.registryHost}"\ninsecure = true\n` : "");
  writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const q = JSON.stringify;
  writeFileSync(
    join(dir, "crio.conf"),
    [
      "[crio]",
      `log_dir = ${q(join(dir, "pod-logs"))}`,
      `version_file = ${q(join(dir, "run", "version"))}`,
      `clean_shutdown_file = ${q(join(dir, "lib", "clean.shutdown"))}`,
      "[crio.runtime]",
      'cgroup_manager = "cgroupfs"',
      `namespaces_dir = ${q(join(dir, "ns"))}`,
      `container_exits_dir = ${q(exitsDir)}`,
      `container_attach_socket_dir = ${q(join(dir, "run"))}`,
      "[crio.runtime.runtimes.runc]",
      `runtime_root = ${q(runcRoot)}`,
      "[crio.network]",
      `network_dir = ${q(netDir)}`,
      `plugin_dirs = [${q(PLUGIN_DIR)}]`,
      configExtra,
      "",
    ].join("\n"),
  );
  const logFile = join(opts.top, `${dir.split("/").pop()}.log`);
  const cmd = [
    binary,
    "--config", join(dir, "crio.conf"),
    "--config-dir", join(dir, "crio.conf.d"),
    "--listen", socket,
    "--root", join(dir, "root"),
    "--runroot", join(dir, "runroot"),
    "--registries-conf", join(dir, "registries.conf"),
    "--registries-conf-dir", join(dir, "registries.conf.d"),
    "--signature-policy", join(dir, "policy.json"),
  ];
  const env = cleanEnv((k) => k.startsWith("CONTAINER") || k === "NOTIFY_SOCKET");
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: Bun.file(logFile), stderr: Bun.file(logFile), env, detached: true });
  const stopProc = track("crio", proc, 15_000);
  const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
  const image = criClient(socket, ImageServiceMethods, "ImageService");
  // conmon daemonizes (its parent is init): its command line names the exits dir (--exit-dir).
  const conmons = () => pidsWithArg(exitsDir);
  const leftovers = () => {
    // Normally RemovePodSandbox took every container; this is for a daemon that died mid-run.
    const n = deleteRuncContainers(runcRoot);
    const left = conmons();
    killPids(left);
    if (n + left.length > 0) console.error(`cleanup: deleted ${n} runc container(s) and killed ${left.length} conmon(s) left by crio`);
    unmountUnder(dir);
  };
  const stop = daemonStopper("crio", runtime, image, stopProc, leftovers);
  try {
    await waitUntil("crio", 30_000, async () => {
      if (proc.exitCode !== null) throw new Error(`crio exited with ${proc.exitCode}: see ${logFile}\n${tail(logFile)}`);
      if (!existsSync(socket)) return false;
      try {
        await runtime.call("Version", {}, 1000);
        return true;
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: "crio", pid: proc.pid, dir, logFile, runtime, image, helperPids: conmons, stop };
}

/**
 * containerd (`binary`, Debian's build with the CRI plugin) on a scratch root and state: runc
 * through containerd-shim-runc-v2 with SystemdCgroup = false and its own runc root, the bench
 * network from PLUGIN_DIR, network namespaces under the state dir, `sandboxImage` as the pause
 * image, `registryHost` reached over plain HTTP (a hosts.toml), oom_score_adj clamped to the
 * daemon's own (root here cannot lower it: no CAP_SYS_RESOURCE).
 */
export async function startContainerd(binary: string, opts: DaemonOptions & { sandboxImage: string }): Promise<CriDaemon> {
  const dir = scratch(opts.top, "containerd-");
  const socket = join(dir, "containerd.sock");
  const state = join(dir, "state");
  const netDir = join(dir, "net.d");
  const runcRoot = join(dir, "runc");
  const certsD = join(dir, "certs.d");
  mkdirSync(netDir);
  mkdirSync(join(dir, "tmp"));
  if (opts.network) writeFileSync(join(netDir, "10-bench.conflist"), opts.network.conflist);
  if (opts.registryHost) {
    mkdirSync(join(certsD, opts.registryHost), { recursive: true });
    writeFileSync(
      join(certsD, opts.registryHost, "hosts.toml"),
      `server = "http://${opts.registryHost}"\n\n[host."http://${opts.registryHost}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
    );
  }
  const q = JSON.stringify;
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  writeFileSync(
    join(dir, "config.toml"),
    [
      "version = 2",
      `root = ${q(join(dir, "root"))}`,
      `state = ${q(state)}`,
      "[grpc]",
      `  address = ${q(socket)}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(join(dir, "opt"))}`,
      `${cri}]`,
      `  sandbox_image = ${q(opts.sandboxImage)}`,
      "  restrict_oom_score_adj = true",
      "  netns_mounts_under_state_dir = true",
      "  disable_apparmor = true",
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      `${cri}.cni]`,
      `  bin_dir = ${q(PLUGIN_DIR)}`,
      `  conf_dir = ${q(netDir)}`,
      "  max_conf_num = 1",
      `${cri}.containerd]`,
      '  snapshotter = "overlayfs"',
      '  default_runtime_name = "runc"',
      `${cri}.containerd.runtimes.runc]`,
      '  runtime_type = "io.containerd.runc.v2"',
      `${cri}.containerd.runtimes.runc.options]`,
      "  SystemdCgroup = false",
      `  Root = ${q(runcRoot)}`,
      `${cri}.registry]`,
      `  config_path = ${q(certsD)}`,
      "",
    ].join("\n"),
  );
  const logFile = join(opts.top, `${dir.split("/").pop()}.log`);
  // Temp mounts (mount.WithTempMount) go under TMPDIR: inside `dir`, where cleanup unmounts.
  const env = { ...cleanEnv((k) => k === "XDG_RUNTIME_DIR" || k === "TMPDIR"), TMPDIR: join(dir, "tmp") };
  const proc = Bun.spawn([binary, "--config", join(dir, "config.toml")], {
    stdin: "ignore",
    stdout: Bun.file(logFile),
    stderr: Bun.file(logFile),
    env,
    detached: true,
  });
  const stopProc = track("containerd", proc, 15_000);
  const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
  const image = criClient(socket, ImageServiceMethods, "ImageService");
  // Shims outlive a killed containerd (they are reparented): their command line names the
  // daemon's socket (-address). Normally RemovePodSandbox ends them; this is for a failed run.
  const shims = () => pidsWithArg(socket);
  const leftovers = () => {
    const taskDir = join(state, "io.containerd.runtime.v2.task");
    const shimSockets: string[] = [];
    if (existsSync(taskDir)) {
      for (const ns of readdirSync(taskDir)) {
        for (const id of readdirSync(join(taskDir, ns))) {
          try {
            shimSockets.push(readFileSync(join(taskDir, ns, id, "address"), "utf8").trim().replace(/^unix:\/\//, ""));
          } catch {
            // no shim
          }
        }
      }
    }
    deleteRuncContainers(runcRoot, true);
    const left = shims();
    killPids(left);
    if (left.length > 0) console.error(`cleanup: killed ${left.length} containerd shim(s)`);
    for (const s of shimSockets) if (s.startsWith("/") && existsSync(s)) unlinkSync(s);
    unmountUnder(dir);
  };
  // Shim sockets live in /run/containerd/s whatever the state dir (containerd 1.6): the
  // directories go too at the end if this run made them and they are empty.
  for (const d of ["/run/containerd", "/run/containerd/s"]) {
    if (!existsSync(d)) {
      onCleanup(`rmdir ${d}`, () => {
        try {
          rmdirSync(d);
        } catch {
          // not empty: someone else's
        }
      });
    }
  }
  const stop = daemonStopper("containerd", runtime, image, stopProc, leftovers);
  try {
    await waitUntil("containerd", 30_000, async () => {
      if (proc.exitCode !== null) throw new Error(`containerd exited with ${proc.exitCode}: see ${logFile}\n${tail(logFile)}`);
      if (!existsSync(socket)) return false;
      try {
        await runtime.call("Version", { version: "v1" }, 1000);
        return true;
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: "containerd", pid: proc.pid, dir, logFile, runtime, image, helperPids: shims, stop };
}

/** Waits until the daemon's Status reports NetworkReady (it has loaded the CNI configuration). */
export async function waitNetworkReady(d: CriDaemon, timeoutMs = 20_000): Promise<void> {
  await waitUntil(`${d.name} NetworkReady`, timeoutMs, async () => {
    const { status } = await d.runtime.call("Status", {}, 5000);
    return status?.conditions?.find((c: { type: string }) => c.type === "NetworkReady")?.status === true;
  });
}

/** Copies `binary` into `dir` (so that a rebuild of dist/ during the run changes nothing measured). */
export function privateCopy(binary: string, dir: string): string {
  const out = join(dir, binary.split("/").pop()!);
  copyFileSync(binary, out);
  chmodSync(out, 0o755);
  return out;
}
