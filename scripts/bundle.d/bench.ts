// See scripts/bench-bundle. Prints; asserts nothing.
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RuntimeServiceMethods } from "../../src/proto/index.ts";
import { clientDefinition } from "../../src/server/grpc.ts";
import { serveDir } from "../../test/lib/file-server.ts";

const REPO = resolve(import.meta.dir, "../..");
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("-n") + 1] ?? 5) || 5;
const MiB = 1024 * 1024;
const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

// Asynchronous: the file server scripts/get downloads from runs in this process.
async function sh(cmd: string[], env: Record<string, string> = {}): Promise<string> {
  const p = Bun.spawn(cmd, { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}):\n${err}`);
  return out;
}

async function timed(cmd: string[], env: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  await sh(cmd, env);
  return performance.now() - t0;
}

/** Drops the page cache so that the next exec reads the binary from disk (root only). */
function dropCaches(): boolean {
  try {
    Bun.spawnSync(["sync"]);
    writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number) => `${x.toFixed(0).padStart(6)} ms`;

function version(socket: string): Promise<void> {
  const Ctor = grpc.makeGenericClientConstructor(clientDefinition({ Version: RuntimeServiceMethods.Version }), "RuntimeService");
  const c = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as any;
  return new Promise((res, rej) =>
    c.Version({ version: "v1" }, { deadline: Date.now() + 10_000 }, (err: Error | null) => {
      c.close();
      err ? rej(err) : res();
    }),
  );
}

/** exec of the installed daemon (installed configs, temp socket and storage) until Version answers. */
async function startToReady(root: string): Promise<number> {
  const dir = temp("bench-bundle-run-");
  writeFileSync(join(dir, "crio.conf"), "");
  const socket = join(dir, "crio.sock");
  const t0 = performance.now();
  const proc = Bun.spawn(
    [
      join(root, "usr/local/bin/crio"), "--config", join(dir, "crio.conf"), "--config-dir", join(root, "etc/crio/crio.conf.d"),
      "--listen", socket, "--root", join(dir, "root"), "--runroot", join(dir, "runroot"),
      "--signature-policy", join(root, "etc/crio/policy.json"), "--registries-conf-dir", join(root, "etc/containers/registries.conf.d"),
      "--version-file", join(dir, "version"), "--clean-shutdown-file", join(dir, "clean"), "--log-dir", join(dir, "logs"),
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the installed crio exited with ${proc.exitCode}`);
      if (performance.now() - t0 > 20_000) throw new Error("the installed crio did not answer Version within 20 s");
      if (existsSync(socket)) {
        try {
          await version(socket);
          return performance.now() - t0;
        } catch {
          // not serving yet
        }
      }
      await Bun.sleep(1);
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

try {
  const out = temp("bench-bundle-out-");
  console.log("bundling amd64 and arm64 ...");
  const bundleMs = await timed(["scripts/bundle", "-a", "all", "-o", out]);
  const tag = readFileSync(join(out, "latest"), "utf8").trim();
  console.log(`scripts/bundle -a all: ${ms(bundleMs)} (both builds, man pages, tar + gzip, SBOMs)`);
  for (const arch of ["amd64", "arm64"]) {
    const size = statSync(join(out, `crio.${arch}.${tag}.tar.gz`)).size;
    const bin = statSync(join(REPO, `dist/crio-linux-${arch}`)).size;
    console.log(
      `tarball ${arch}: ${(size / MiB).toFixed(1)} MiB (${size} bytes; target < 55 MiB: ${size < 55 * MiB ? "met" : "MISSED"}); bin/crio ${(bin / MiB).toFixed(1)} MiB uncompressed`,
    );
  }

  const server = await serveDir(out);
  try {
    const get = ["bash", "scripts/get", "-b", server.url, "-t", tag];
    const installs: number[] = [];
    const cold = dropCaches();
    let root = "";
    for (let i = 0; i < runs; i++) {
      root = temp("bench-bundle-root-");
      installs.push(await timed(get, { DESTDIR: root }));
      if (i < runs - 1) await sh(["bash", "scripts/get", "-u"], { DESTDIR: root });
    }
    console.log(
      `install (scripts/get from 127.0.0.1: download, sha256, unpack, install): first${cold ? " (page cache dropped)" : ""} ${ms(installs[0]!)}, median of ${runs} ${ms(median(installs))}`,
    );
    const uninstallMs = await timed(["bash", "scripts/get", "-u"], { DESTDIR: root });
    root = temp("bench-bundle-root-");
    await sh(get, { DESTDIR: root });
    console.log(`uninstall (get -u): ${ms(uninstallMs)}`);

    const coldOk = dropCaches();
    const first = await startToReady(root);
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) warm.push(await startToReady(root));
    console.log(
      `installed crio, exec to answering CRI Version: cold${coldOk ? " (page cache dropped)" : " (page cache could not be dropped)"} ${ms(first)}, warm median of ${runs} ${ms(median(warm))}`,
    );
    console.log(`installed crio version (warm): ${ms(await timed([join(root, "usr/local/bin/crio"), "version"]))}`);
  } finally {
    await server.stop();
  }
} finally {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
}
