// See scripts/bench-startup. Each run: spawn the daemon on a fresh socket, poll for the socket
// file every millisecond, then issue Version over a new gRPC connection; ready time = exec until
// that answer. Idle RSS is VmRSS of the daemon process 2 s after it is ready.
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RuntimeServiceMethods } from "../src/proto/index.ts";
import { clientDefinition } from "../src/server/grpc.ts";

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("-n") + 1] ?? 10) || 10;
const withPeer = args.includes("--peer");

interface Sample {
  readyMs: number;
  rssMiB: number;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function version(socket: string): Promise<void> {
  const Ctor = grpc.makeGenericClientConstructor(
    clientDefinition({ Version: RuntimeServiceMethods.Version }),
    "RuntimeService",
  );
  const c = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as any;
  return new Promise((res, rej) =>
    c.Version({ version: "v1" }, { deadline: Date.now() + 10_000 }, (err: Error | null) => {
      c.close();
      err ? rej(err) : res();
    }),
  );
}

async function one(cmd: string[], socket: string, env: Record<string, string> = {}): Promise<Sample> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore", env: { ...process.env, ...env } });
  try {
    while (!existsSync(socket)) {
      if (proc.exitCode !== null) throw new Error(`${cmd[0]} exited with ${proc.exitCode}`);
      if (performance.now() - t0 > 20_000) throw new Error(`${cmd[0]}: no socket after 20 s`);
      await Bun.sleep(1);
    }
    for (;;) {
      try {
        await version(socket);
        break;
      } catch (err) {
        if (performance.now() - t0 > 20_000) throw err;
        await Bun.sleep(1);
      }
    }
    const readyMs = performance.now() - t0;
    await Bun.sleep(2000);
    return { readyMs, rssMiB: rssMiB(proc.pid) };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function bench(name: string, make: (dir: string) => { cmd: string[]; socket: string; env?: Record<string, string> }) {
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), "bench-"));
    try {
      const { cmd, socket, env } = make(dir);
      samples.push(await one(cmd, socket, env));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const r = { name, readyMs: median(samples.map((s) => s.readyMs)), rssMiB: median(samples.map((s) => s.rssMiB)) };
  console.log(`${name.padEnd(12)} ready ${r.readyMs.toFixed(1).padStart(7)} ms   idle RSS ${r.rssMiB.toFixed(1).padStart(6)} MiB   (median of ${runs})`);
  return r;
}

const crio = resolve(import.meta.dir, "../dist/crio-linux-amd64");
const ours = await bench("crio", (dir) => {
  const socket = join(dir, "crio.sock");
  return { cmd: [crio, "-c", "", "-d", "", "--listen", socket, "--root", join(dir, "root"), "--runroot", join(dir, "runroot")], socket };
});

let containerd = Bun.which("containerd");
if (!containerd && withPeer) {
  console.log("installing Debian's containerd as the peer ...");
  Bun.spawnSync(["apt-get", "install", "-y", "-qq", "containerd"], { stdout: "ignore", stderr: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  containerd = Bun.which("containerd");
}
if (containerd) {
  const peer = await bench("containerd", (dir) => {
    const socket = join(dir, "containerd.sock");
    const conf = join(dir, "config.toml");
    writeFileSync(conf, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`);
    return { cmd: [containerd!, "--config", conf], socket };
  });
  console.log(`ratio crio/containerd: ready ${(ours.readyMs / peer.readyMs).toFixed(2)}x, idle RSS ${(ours.rssMiB / peer.rssMiB).toFixed(2)}x`);
} else {
  console.log("containerd not installed: no peer measured (run with --peer to install Debian's containerd)");
}
