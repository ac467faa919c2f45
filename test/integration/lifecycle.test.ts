// The daemon's life: socket creation and permissions, stale and live sockets, signals (TERM,
// INT, HUP reload), systemd readiness, message limits, the default socket path, log formats.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { httpGet, startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
async function daemon(opts: Parameters<typeof startDaemon>[0] = {}): Promise<Daemon> {
  const d = await startDaemon(opts);
  cleanups.push(() => d.cleanup());
  return d;
}

describe("socket", () => {
  test("created with mode 0660, parent directories created", async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, "a", "b", "crio.sock");
    const d = await daemon({ socket });
    const st = lstatSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(statSync(join(dir, "a", "b")).isDirectory()).toBe(true);
    expect((await d.runtime.call("Version", {})).runtimeName).toBe("cri-o");
  });

  test("a stale socket (no listener) is replaced", async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, "crio.sock");
    // Leave a socket file behind with nothing listening, as a kill -9'd daemon would: a process
    // binds it and exits without unlinking.
    const p = Bun.spawnSync(["python3", "-c", `import socket;s=socket.socket(socket.AF_UNIX);s.bind(${JSON.stringify(socket)});s.listen()`]);
    expect(p.exitCode).toBe(0);
    expect(lstatSync(socket).isSocket()).toBe(true);
    const d = await daemon({ socket });
    expect((await d.runtime.call("Version", {})).runtimeName).toBe("cri-o");
  });

  test("a socket held by a live daemon is refused with a clear error, the first keeps serving", async () => {
    const first = await daemon();
    const second = await daemon({ socket: first.socket, waitReady: false });
    expect(await second.exited()).toBe(1);
    expect(second.logs()).toContain("already listening on " + first.socket);
    expect((await first.runtime.call("Version", {})).runtimeName).toBe("cri-o");
    expect(lstatSync(first.socket).isSocket()).toBe(true);
  });

  test("a non-socket file at the listen path is refused, not deleted", async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, "crio.sock");
    writeFileSync(socket, "precious");
    const d = await daemon({ socket, waitReady: false });
    expect(await d.exited()).toBe(1);
    expect(d.logs()).toContain("is not a socket");
    expect(Bun.file(socket).size).toBe(8);
  });
});

describe("signals", () => {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    test(`${sig} stops gracefully: exit 0, socket removed`, async () => {
      const d = await daemon();
      expect(existsSync(d.socket)).toBe(true);
      expect(await d.stop(sig)).toBe(0);
      expect(existsSync(d.socket)).toBe(false);
      expect(d.logs()).toContain(`Received ${sig}`);
    });
  }

  test("SIGTERM lets a call already in flight finish", async () => {
    const d = await daemon();
    // A 64 MiB request takes the better part of a second to cross the socket; the signal
    // arrives while it is still being received.
    const big = "x".repeat(64 * 1024 * 1024);
    const call = d.runtime.call("UpdateRuntimeConfig", { runtimeConfig: { networkConfig: { podCidr: big } } }, 30_000);
    await Bun.sleep(20);
    d.proc.kill("SIGTERM");
    expect(await call).toEqual({});
    expect(await d.stop()).toBe(0);
    expect(d.logs()).toContain("Received SIGTERM");
  });

  test("SIGHUP reloads reloadable options and keeps the others", async () => {
    const d = await daemon({ config: `[crio.runtime]\nlog_level = "info"\n[crio.image]\npause_image = "localhost/pause:1"\n` });
    const before = await httpGet(d.socket, "/config");
    expect(before.body).toContain("localhost/pause:1");
    writeFileSync(
      d.configFile,
      `[crio]\nlog_dir = "/elsewhere"\n[crio.runtime]\nlog_level = "debug"\n[crio.image]\npause_image = "localhost/pause:2"\n`,
    );
    d.proc.kill("SIGHUP");
    await waitFor(async () => (await httpGet(d.socket, "/config")).body.includes("localhost/pause:2"), 5000, () => `no reload:\n${d.logs()}`);
    const after = (await httpGet(d.socket, "/config")).body;
    expect(after).toContain('log_level = "debug"');
    // log_dir needs a restart: unchanged.
    expect(after).not.toContain("/elsewhere");
    // The new log level is live: RPCs are now logged at debug.
    await d.runtime.call("Version", {});
    await waitFor(() => d.logs().includes("RuntimeService/Version"), 3000, () => d.logs());
  });

  test("SIGHUP with a broken config file keeps the running configuration", async () => {
    const d = await daemon({ config: `[crio.image]\npause_image = "localhost/pause:1"\n` });
    writeFileSync(d.configFile, `[crio.image\npause_image = `);
    d.proc.kill("SIGHUP");
    await waitFor(() => d.logs().includes("reload failed"), 5000, () => d.logs());
    expect((await httpGet(d.socket, "/config")).body).toContain("localhost/pause:1");
    expect((await d.runtime.call("Version", {})).runtimeName).toBe("cri-o");
  });
});

describe("streaming server", () => {
  test("a stream_port already in use stops the daemon with status 1, naming the problem", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const d = await startDaemon({ config: `[crio.api]\nstream_port = "${holder.port}"\n`, waitReady: false });
      cleanups.push(() => d.cleanup());
      expect(await d.exited(15_000)).toBe(1);
      expect(d.logs()).toContain("cannot start the streaming server");
    } finally {
      holder.stop(true);
    }
  });
});

describe("systemd readiness", () => {
  test("READY=1 is sent to NOTIFY_SOCKET once the socket serves", async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const notifyPath = join(dir, "notify.sock");
    const rx = Bun.spawn(
      ["python3", "-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\nwhile True:\n  print(s.recv(200).decode().replace('\\n',' '),flush=True)", notifyPath],
      { stdout: "pipe" },
    );
    cleanups.push(() => {
      rx.kill();
    });
    let out = "";
    (async () => {
      for await (const c of rx.stdout) out += new TextDecoder().decode(c);
    })();
    await waitFor(() => out.includes("bound"), 5000, () => "notify receiver did not start");
    const d = await daemon({ env: { NOTIFY_SOCKET: notifyPath } });
    await waitFor(() => out.includes("READY=1"), 5000, () => `no READY=1, got: ${out}`);
    d.proc.kill("SIGTERM");
    await d.stop();
    await waitFor(() => out.includes("STOPPING=1"), 5000, () => `no STOPPING=1, got: ${out}`);
  });
});

describe("limits and defaults", () => {
  test("requests up to the 80 MiB limit are accepted (gRPC's default is 4 MiB)", async () => {
    const d = await daemon();
    const big = "x".repeat(16 * 1024 * 1024);
    expect(await d.runtime.call("UpdateRuntimeConfig", { runtimeConfig: { networkConfig: { podCidr: big } } }, 20_000)).toEqual({});
    const tooBig = "x".repeat(81 * 1024 * 1024);
    const err = await d.runtime.call("UpdateRuntimeConfig", { runtimeConfig: { networkConfig: { podCidr: tooBig } } }, 20_000).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  test("without --listen the daemon serves /var/run/crio/crio.sock (CONTAINER_LISTEN too)", async () => {
    const def = "/var/run/crio/crio.sock";
    if (existsSync(def)) {
      throw new Error(`${def} exists already (a crio daemon runs on this machine?): stop it to run this test`);
    }
    const d = await daemon({ socket: def, noListenFlag: true });
    expect(lstatSync(def).mode & 0o777).toBe(0o660);
    expect(await d.stop()).toBe(0);
    expect(existsSync(def)).toBe(false);

    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const viaEnv = join(dir, "env.sock");
    const e = await daemon({ socket: viaEnv, noListenFlag: true, env: { CONTAINER_LISTEN: viaEnv } });
    expect((await e.runtime.call("Version", {})).runtimeName).toBe("cri-o");
  });

  test("--log FILE receives the daemon log; log_filter selects messages", async () => {
    const dir = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "crio.log");
    const d = await daemon({ args: ["--log", file, "--log-level", "debug", "--log-filter", "RuntimeService/Version|Serving"] });
    await d.runtime.call("Version", {});
    await d.runtime.call("Status", {});
    expect(await d.stop()).toBe(0);
    const text = await Bun.file(file).text();
    expect(text).toContain("Serving CRI on");
    expect(text).toContain("RuntimeService/Version");
    expect(text).not.toContain("RuntimeService/Status");
    expect(text).not.toContain("Starting CRI-O");
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test("an invalid log_filter is refused at start-up naming the key", async () => {
    const d = await daemon({ args: ["--log-filter", "(unclosed"], waitReady: false });
    expect(await d.exited()).toBe(1);
    expect(d.logs()).toContain("log_filter");
  });

  test("--log-format json writes one JSON object per line", async () => {
    const d = await daemon({ args: ["--log-format", "json", "--log-level", "debug"] });
    await d.runtime.call("Version", {});
    await d.stop();
    const lines = d.logs().trim().split("\n").filter((l) => l.trim() !== "");
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) {
      const o = JSON.parse(l);
      expect(typeof o.level).toBe("string");
      expect(typeof o.msg).toBe("string");
      expect(typeof o.time).toBe("string");
    }
  });
});
