// Integration harness: runs the compiled `crio` binary (CRIO_BINARY, default dist/crio-linux-<arch>)
// on a temporary socket with temporary config files, and talks to it with a grpc-js CRI client
// built from the generated tables, and with HTTP over the unix socket.
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { ImageServiceMethods, RuntimeServiceMethods } from "../../src/proto/index.ts";
import { clientDefinition, type MethodInfo } from "../../src/server/grpc.ts";
import { getOverSocket } from "../../src/cli/status.ts";

const archName = process.arch === "arm64" ? "arm64" : "amd64";
export const CRIO = process.env.CRIO_BINARY ?? resolve(import.meta.dir, `../../dist/crio-linux-${archName}`);

export function requireBinary(): void {
  if (!existsSync(CRIO)) throw new Error(`${CRIO} is missing: run scripts/build first (or set CRIO_BINARY)`);
}

export function tempDir(prefix = "crio-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `crio args...` to completion (for subcommands). */
export async function runCrio(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  requireBinary();
  const proc = Bun.spawn([CRIO, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...cleanEnv(), ...opts.env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The environment without CONTAINER_* variables that would change the daemon's config. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("CONTAINER_") && k !== "NOTIFY_SOCKET" && !k.startsWith("CONTAINERS_")) env[k] = v;
  }
  return env;
}

export interface Daemon {
  dir: string;
  socket: string;
  configFile: string;
  configDir: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the daemon wrote to stderr so far. */
  logs(): string;
  runtime: CriClient;
  image: CriClient;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
  /** Waits for the daemon to exit by itself; returns the exit code. */
  exited(timeoutMs?: number): Promise<number>;
  cleanup(): Promise<void>;
  /** Storage roots of this daemon. */
  root: string;
  runroot: string;
}

export interface DaemonOptions {
  /** crio.conf text (written to <dir>/crio.conf). */
  config?: string;
  /** Drop-in files: name → text (written to <dir>/crio.conf.d/). */
  dropIns?: Record<string, string>;
  args?: string[];
  env?: Record<string, string>;
  /** Socket path; default <dir>/crio.sock. */
  socket?: string;
  /** Do not pass --listen (the daemon uses its configured/default path; `socket` names it). */
  noListenFlag?: boolean;
  /** registries.conf text (default: empty, so nothing resolves to a public registry). */
  registriesConf?: string;
  /** policy.json text (default: accept anything). */
  policy?: string;
  /** Run in this directory (state kept after cleanup) instead of a new temporary one. */
  dir?: string;
  waitReady?: boolean;
}

/** Mount points below `dir` in this mount namespace (the daemon's), in mount order. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`));
}

/** Lazily unmounts everything below `dir`, newest first (a failed test's leftovers). */
export function unmountUnder(dir: string): void {
  for (const m of mountsUnder(dir).reverse()) Bun.spawnSync(["umount", "-l", m]);
}

/**
 * Removes a test's cgroup parent and its pod cgroups in every hierarchy; a cgroup below a pod
 * cgroup, or one that cannot be removed, is reported in `problems`.
 */
export function removeCgroupTree(parent: string, problems: string[]): void {
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const c = join("/sys/fs/cgroup", h, parent);
    if (!existsSync(c)) continue;
    for (const child of readdirSync(c, { withFileTypes: true })) {
      if (!child.isDirectory()) continue;
      for (const grandchild of readdirSync(join(c, child.name), { withFileTypes: true })) {
        if (grandchild.isDirectory()) problems.push(`cgroup ${join(c, child.name, grandchild.name)} left behind`);
      }
      try {
        rmdirSync(join(c, child.name));
      } catch (e) {
        problems.push(`cgroup ${join(c, child.name)}: ${(e as Error).message}`);
      }
    }
    try {
      rmdirSync(c);
    } catch (e) {
      problems.push(`cgroup ${c}: ${(e as Error).message}`);
    }
  }
}

/** Keys to add to the tables of containerConfig (TOML allows a table once), and tables after it. */
export interface ContainerConfigExtra {
  image?: string[];
  runtime?: string[];
  runc?: string[];
  tables?: string[];
}

/**
 * crio.conf for a daemon that runs containers with every runtime directory of its own under
 * `dir` (log_dir, namespaces_dir, container_exits_dir, container_attach_socket_dir, runc's
 * runtime_root) and cgroupfs (these machines have no systemd).
 */
export function containerConfig(dir: string, extra: ContainerConfigExtra = {}): string {
  const q = (p: string) => JSON.stringify(join(dir, p));
  return [
    "[crio]",
    `log_dir = ${q("logs")}`,
    ...(extra.image?.length ? ["[crio.image]", ...extra.image] : []),
    "[crio.runtime]",
    'cgroup_manager = "cgroupfs"',
    `namespaces_dir = ${q("ns")}`,
    `container_exits_dir = ${q("exits")}`,
    `container_attach_socket_dir = ${q("attach")}`,
    ...(extra.runtime ?? []),
    "[crio.runtime.runtimes.runc]",
    `runtime_root = ${q("runc")}`,
    ...(extra.runc ?? []),
    ...(extra.tables ?? []),
    "",
  ].join("\n");
}

/** Starts a daemon on a temporary socket and waits until it answers Version. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  requireBinary();
  // A caller-given dir survives cleanup (a restart test starts a second daemon on the same state).
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? tempDir();
  const configFile = join(dir, "crio.conf");
  const configDir = join(dir, "crio.conf.d");
  mkdirSync(configDir, { recursive: true });
  writeFileSync(configFile, opts.config ?? "");
  for (const [name, text] of Object.entries(opts.dropIns ?? {})) writeFileSync(join(configDir, name), text);
  const socket = opts.socket ?? join(dir, "crio.sock");
  // Every daemon gets its own storage, registries.conf and policy: tests never touch the host's
  // /var/lib/containers or resolve a public registry.
  mkdirSync(join(dir, "registries.conf.d"), { recursive: true });
  mkdirSync(join(dir, "net.d"), { recursive: true });
  writeFileSync(join(dir, "registries.conf"), opts.registriesConf ?? "");
  writeFileSync(join(dir, "policy.json"), opts.policy ?? JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const args = [
    "--config", configFile,
    "--config-dir", configDir,
    "--root", join(dir, "root"),
    "--runroot", join(dir, "runroot"),
    "--registries-conf", join(dir, "registries.conf"),
    "--registries-conf-dir", join(dir, "registries.conf.d"),
    "--signature-policy", join(dir, "policy.json"),
    // No CNI network unless a test writes one into <dir>/net.d (the host's own stay out).
    "--cni-config-dir", join(dir, "net.d"),
    ...(opts.noListenFlag ? [] : ["--listen", socket]),
    ...(opts.args ?? []),
  ];
  const proc = Bun.spawn([CRIO, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...cleanEnv(), ...opts.env } });
  let logText = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) logText += dec.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(proc.stdout), drain(proc.stderr)]);
  const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
  const image = criClient(socket, ImageServiceMethods, "ImageService");
  const d: Daemon = {
    dir,
    socket,
    configFile,
    configDir,
    proc,
    logs: () => logText,
    root: join(dir, "root"),
    runroot: join(dir, "runroot"),
    runtime,
    image,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await withTimeout(proc.exited, 15_000, "daemon did not exit after " + signal);
      await drained;
      return code;
    },
    async exited(timeoutMs = 10_000) {
      const code = await withTimeout(proc.exited, timeoutMs, "daemon did not exit by itself");
      await drained;
      return code;
    },
    async cleanup() {
      runtime.close();
      image.close();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.waitReady !== false) {
    try {
      await waitFor(async () => {
        if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode} before serving:\n${logText}`);
        try {
          await runtime.call("Version", {}, 1000);
          return true;
        } catch (err) {
          if (err instanceof Error && err.message.startsWith("daemon exited")) throw err;
          return false;
        }
      }, 10_000, () => `daemon did not answer Version on ${socket}; logs:\n${logText}`);
    } catch (err) {
      await d.cleanup();
      throw err;
    }
  }
  return d;
}

export interface CriClient {
  call(method: string, request: object, timeoutMs?: number): Promise<any>;
  /** A server-streaming call, collecting every message until the stream ends. */
  stream(method: string, request: object, timeoutMs?: number): Promise<any[]>;
  raw: grpc.Client;
  close(): void;
}

export function criClient(socket: string, methods: Readonly<Record<string, MethodInfo>>, name: string): CriClient {
  const Ctor = grpc.makeGenericClientConstructor(clientDefinition(methods), name);
  const client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 80 * 1024 * 1024,
  });
  const anyClient = client as unknown as Record<string, any>;
  return {
    raw: client,
    call(method, request, timeoutMs = 5000) {
      return new Promise((res, rej) => {
        anyClient[method]!.call(client, request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, reply: unknown) =>
          err ? rej(err) : res(reply),
        );
      });
    },
    stream(method, request, timeoutMs = 5000) {
      return new Promise((res, rej) => {
        const out: any[] = [];
        const call = anyClient[method]!.call(client, request, { deadline: Date.now() + timeoutMs }) as grpc.ClientReadableStream<any>;
        call.on("data", (m) => out.push(m));
        call.on("error", rej);
        call.on("end", () => res(out));
      });
    },
    close: () => client.close(),
  };
}

/** HTTP GET over the daemon's unix socket. */
export function httpGet(socket: string, path: string) {
  return getOverSocket(socket, path, 5000);
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(what());
    await Bun.sleep(20);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]);
}
