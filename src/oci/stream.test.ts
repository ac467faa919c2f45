// Streaming exec / attach / port-forward against real processes (root only): a conmon + runc
// busybox container like oci.test.ts makes, conmon's real attach socket, and a network
// namespace made with `ip netns add`. The attach protocol is also checked against a fake conmon
// (a SEQPACKET listener made with src/sys), where every record can be inspected. Everything made
// here is removed afterwards, even when a test fails.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmdirSync,
  rmSync, symlinkSync, writeFileSync, readSync, constants as fsConstants,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadNamespaceId } from "../sys/namespaces.ts";
import { acceptSeqpacket, closeSocket, listenSeqpacket, recvRecord, sendRecord } from "../sys/seqpacket.ts";
import { OciRuntime, type RuntimeHandlerConfig } from "./runtime.ts";
import { minimalSpec, removeCgroups } from "./test-helpers.ts";
import {
  ATTACH_PIPE_STDERR, ATTACH_PIPE_STDOUT, attachSocketPath, attachStreaming, ctlFifoPath, execStreaming, PortForwardError,
  portForwardStreaming, type TerminalSize,
} from "./stream.ts";

const APPLETS = ["sh", "echo", "sleep", "cat", "true", "stty", "tty", "head", "wc", "ls"];
const RUNC = "/usr/sbin/runc";
const CONMON = "/usr/bin/conmon";

function requireRoot(): void {
  const missing = [RUNC, CONMON, "/bin/busybox"].filter((p) => !existsSync(p));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    throw new Error(`needs root, runc, conmon and busybox-static (missing: ${missing.join(", ") || "root"})`);
  }
}

// ─── small helpers ───────────────────────────────────────────────────────────────────────────

/** An async iterable the test pushes into. */
function pushable<T>() {
  const items: T[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const kick = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    push(v: T) {
      items.push(v);
      kick();
    },
    end() {
      ended = true;
      kick();
    },
    iterable: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (items.length > 0) yield items.shift() as T;
          if (ended) return;
          await new Promise<void>((r) => { wake = r; });
        }
      },
    } as AsyncIterable<T>,
  };
}

/** Collects what a StreamWriter gets; `until` waits for a pattern. */
function collector(opts: { delayMs?: number } = {}) {
  const chunks: Uint8Array[] = [];
  const c = {
    chunks,
    write: async (chunk: Uint8Array) => {
      chunks.push(chunk.slice());
      if (opts.delayMs) await Bun.sleep(opts.delayMs);
    },
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString(),
    async until(re: RegExp, ms = 10_000): Promise<string> {
      const end = Date.now() + ms;
      while (!re.test(c.text())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re} in ${JSON.stringify(c.text().slice(-400))}`);
        await Bun.sleep(10);
      }
      return c.text();
    },
  };
  return c;
}

function never<T>(): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<T>>(() => {}) }) };
}

function taskNetNamespaces(): Set<string> {
  const out = new Set<string>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      out.add(readlinkSync(`/proc/${process.pid}/task/${tid}/ns/net`));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ─── attach against a fake conmon ────────────────────────────────────────────────────────────

describe("attach protocol (fake conmon)", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "crio-attach-fake-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A listener standing in for conmon, a ctl fifo, and a helper to accept the client. */
  function fakeConmon(name: string) {
    const sockPath = join(dir, `${name}.sock`);
    const ctl = join(dir, `${name}.ctl`);
    expect(Bun.spawnSync(["mkfifo", ctl]).exitCode).toBe(0);
    // Like conmon: a reader (non-blocking) and a dummy writer keep the fifo open.
    const ctlRead = openSync(ctl, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const ctlDummy = openSync(ctl, fsConstants.O_WRONLY);
    const listener = listenSeqpacket(sockPath);
    const fds = [listener];
    return {
      sockPath, ctl,
      async accept(): Promise<number> {
        for (let i = 0; i < 500; i++) {
          const fd = acceptSeqpacket(listener);
          if (fd !== null) {
            fds.push(fd);
            return fd;
          }
          await Bun.sleep(5);
        }
        throw new Error("no client");
      },
      /** Reads records until end of stream (0) or `ms` without any. */
      async records(fd: number, opts: { ms?: number; untilEof?: boolean } = {}): Promise<{ records: Uint8Array[]; eof: boolean }> {
        const buf = new Uint8Array(65536);
        const records: Uint8Array[] = [];
        let quiet = Date.now();
        for (;;) {
          const n = recvRecord(fd, buf);
          if (n === 0) return { records, eof: true };
          if (n === null) {
            if (Date.now() - quiet > (opts.ms ?? 300)) return { records, eof: false };
            await Bun.sleep(5);
            continue;
          }
          records.push(buf.slice(0, n));
          quiet = Date.now();
        }
      },
      ctlText(): string {
        const buf = Buffer.alloc(4096);
        try {
          const n = readSync(ctlRead, buf, 0, buf.length, null);
          return buf.subarray(0, n).toString();
        } catch {
          return "";
        }
      },
      close() {
        for (const fd of fds) {
          try {
            closeSocket(fd);
          } catch { /* closed */ }
        }
        closeSync(ctlRead);
        closeSync(ctlDummy);
      },
    };
  }

  test("output records are split by their first byte; stdin goes out in records ≤ 8191 bytes, then EOF", async () => {
    const f = fakeConmon("split");
    try {
      const out = collector();
      const err = collector();
      const stdin = pushable<Uint8Array>();
      const resize = pushable<TerminalSize>();
      const attached = attachStreaming({
        attachSocketPath: f.sockPath, ctlPath: f.ctl, tty: false, stdin: stdin.iterable, stdout: out.write, stderr: err.write,
        resize: resize.iterable, containerStdin: true, stdinOnce: true,
      });
      const conn = await f.accept();
      // conmon's records: [pipe][data]; a record of another kind (1, stdin) is ignored.
      for (const [kind, text] of [[ATTACH_PIPE_STDOUT, "out1"], [ATTACH_PIPE_STDERR, "err1"], [1, "ignored"], [ATTACH_PIPE_STDOUT, "out2"]] as const) {
        sendRecord(conn, Buffer.concat([Buffer.from([kind]), Buffer.from(text)]));
      }
      await out.until(/out1out2/);
      await err.until(/err1/);
      expect(out.text()).toBe("out1out2");
      expect(err.text()).toBe("err1");

      // A burst of full-size records (conmon's are 1 + 8192 bytes at most), queued faster than
      // they are read: each still arrives on its own, so no stream byte is taken for data.
      const want = { [ATTACH_PIPE_STDOUT]: [] as Buffer[], [ATTACH_PIPE_STDERR]: [] as Buffer[] };
      for (let i = 0; i < 60; i++) {
        const kind = i % 3 === 0 ? ATTACH_PIPE_STDERR : ATTACH_PIPE_STDOUT;
        const body = Buffer.alloc(1 + ((i * 977) % 8192), 97 + (i % 26));
        want[kind].push(body);
        while (sendRecord(conn, Buffer.concat([Buffer.from([kind]), body])) === 0) await Bun.sleep(1);
      }
      const outWant = Buffer.concat([Buffer.from("out1out2"), ...want[ATTACH_PIPE_STDOUT]]);
      const errWant = Buffer.concat([Buffer.from("err1"), ...want[ATTACH_PIPE_STDERR]]);
      for (let i = 0; i < 200 && (out.bytes().length < outWant.length || err.bytes().length < errWant.length); i++) await Bun.sleep(10);
      expect(out.bytes().equals(outWant)).toBe(true);
      expect(err.bytes().equals(errWant)).toBe(true);

      const big = new Uint8Array(20000).map((_, i) => i % 251);
      stdin.push(big);
      stdin.push(new TextEncoder().encode("tail"));
      stdin.end();
      const got = await f.records(conn, { ms: 2000 });
      expect(got.eof).toBe(true); // the client's stdin EOF is a shutdown(SHUT_WR)
      expect(got.records.map((r) => r.length)).toEqual([8191, 8191, 3618, 4]);
      expect(Buffer.concat(got.records.slice(0, 3)).equals(Buffer.from(big))).toBe(true);

      resize.push({ width: 120, height: 40 });
      await Bun.sleep(50);
      expect(f.ctlText()).toBe("1 40 120\n");

      // stdin_once: the attach lasts until the container's output ends (conmon closes).
      await Bun.sleep(100);
      let settled = false;
      void attached.then(() => { settled = true; });
      await Bun.sleep(50);
      expect(settled).toBe(false);
      closeSocket(conn);
      await attached;
    } finally {
      f.close();
    }
  });

  test("stdin kept open (stdin && !stdin_once, no TTY): the client's EOF detaches at once", async () => {
    const f = fakeConmon("detach");
    try {
      const stdin = pushable<Uint8Array>();
      const attached = attachStreaming({
        attachSocketPath: f.sockPath, ctlPath: f.ctl, tty: false, stdin: stdin.iterable, containerStdin: true, stdinOnce: false,
      });
      const conn = await f.accept();
      stdin.push(new TextEncoder().encode("x"));
      stdin.end();
      await attached; // without conmon closing anything
      const got = await f.records(conn, { ms: 500 });
      expect(got.records.map((r) => Buffer.from(r).toString())).toEqual(["x"]);
      expect(got.eof).toBe(true);
    } finally {
      f.close();
    }
  });

  test("abort detaches; a failing write ends the attach with its error; a slow client is waited for", async () => {
    const f = fakeConmon("abort");
    try {
      const ac = new AbortController();
      const slow = collector({ delayMs: 20 });
      const attached = attachStreaming({ attachSocketPath: f.sockPath, ctlPath: f.ctl, tty: true, stdout: slow.write, signal: ac.signal });
      const conn = await f.accept();
      for (let i = 0; i < 10; i++) sendRecord(conn, Buffer.from([ATTACH_PIPE_STDOUT, 48 + i]));
      await slow.until(/0123456789/);
      ac.abort();
      await attached;
      expect((await f.records(conn, { ms: 500 })).eof).toBe(true);

      const failing = attachStreaming({
        attachSocketPath: f.sockPath, ctlPath: f.ctl, tty: false,
        stdout: () => Promise.reject(new Error("client gone")),
      });
      const conn2 = await f.accept();
      sendRecord(conn2, Buffer.from([ATTACH_PIPE_STDOUT, 65]));
      await expect(failing).rejects.toThrow("client gone");
    } finally {
      f.close();
    }
  });

  test("missing ctl fifo or socket: errors name the file", async () => {
    await expect(attachStreaming({ attachSocketPath: join(dir, "nope"), ctlPath: join(dir, "nope.ctl"), tty: false }))
      .rejects.toThrow(/failed to open container ctl file .*nope\.ctl/);
    const ctl = join(dir, "lonely.ctl");
    Bun.spawnSync(["mkfifo", ctl]);
    const reader = openSync(ctl, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    try {
      await expect(attachStreaming({ attachSocketPath: join(dir, "nope"), ctlPath: ctl, tty: false }))
        .rejects.toThrow(/failed to connect to container attach socket .*nope: connect .*ENOENT/);
    } finally {
      closeSync(reader);
    }
  });

  test("attachSocketPath: <dir>/<id>/attach, the link one char shorter when it would fill sun_path", () => {
    expect(attachSocketPath("/var/run/crio", "abc")).toBe("/var/run/crio/abc/attach");
    const dir107 = `/${"d".repeat(40)}`;
    const id = "i".repeat(107 - dir107.length - 1);
    expect(attachSocketPath(dir107, id)).toBe(`${dir107}/${id.slice(0, -1)}/attach`);
    expect(ctlFifoPath("/b")).toBe("/b/ctl");
  });
});

// ─── real containers ─────────────────────────────────────────────────────────────────────────

describe("exec and attach in a conmon + runc container", () => {
  const rand = Math.random().toString(36).slice(2, 8);
  const cgParent = `crio-stream-test-${rand}`;
  let base = "";
  let cfg: RuntimeHandlerConfig;
  let rt: OciRuntime;
  const created: { id: string; bundle: string }[] = [];
  let execId = "";
  let execBundle = "";

  beforeAll(async () => {
    requireRoot();
    base = mkdtempSync(join(tmpdir(), "crio-stream-test-"));
    for (const d of ["exits", "attach", "runtime-root", "logs", "rootfs/bin", "rootfs/proc", "rootfs/dev", "rootfs/sys", "rootfs/tmp"]) {
      mkdirSync(join(base, d), { recursive: true });
    }
    copyFileSync("/bin/busybox", join(base, "rootfs/bin/busybox"));
    for (const a of APPLETS) symlinkSync("busybox", join(base, "rootfs/bin", a));
    cfg = {
      name: "runc", runtimePath: RUNC, runtimeRoot: join(base, "runtime-root"), monitorPath: CONMON,
      monitorEnv: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      attachSocketDir: join(base, "attach"), cgroupManager: "cgroupfs",
    };
    rt = new OciRuntime(cfg);
    execId = `exec-${rand}`;
    execBundle = (await run(execId, ["sleep", "1000"])).bundleDir;
  });

  afterAll(async () => {
    for (const { id, bundle } of created.splice(0)) {
      await rt?.deleteContainer(id, true).catch(() => {});
      try {
        process.kill(Number(readFileSync(join(bundle, "conmon-pidfile"), "utf8")), "SIGKILL");
      } catch { /* gone */ }
    }
    await Bun.sleep(50);
    removeCgroups(cgParent);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  async function run(id: string, args: string[], o: { terminal?: boolean; stdin?: boolean; stdinOnce?: boolean } = {}) {
    const bundleDir = join(base, "bundles", id);
    const persistDir = join(base, "persist", id);
    mkdirSync(bundleDir, { recursive: true });
    mkdirSync(persistDir, { recursive: true });
    const spec = minimalSpec(join(base, "rootfs"), args, `/${cgParent}/${id}`, { hostname: "stream-test", env: ["TERM=xterm"] });
    spec.process.terminal = o.terminal ?? false;
    writeFileSync(join(bundleDir, "config.json"), JSON.stringify(spec));
    created.push({ id, bundle: bundleDir });
    const r = await rt.createContainer({
      id, name: id, bundleDir, persistDir, logPath: join(base, "logs", `${id}.log`), exitsDir: join(base, "exits"),
      terminal: o.terminal, stdin: o.stdin, stdinOnce: o.stdinOnce, timeoutMs: 30_000,
    });
    await rt.startContainer(id);
    return { bundleDir, persistDir, ...r };
  }

  function execOpts(cmd: string[], tty: boolean) {
    return { runtimePath: RUNC, runtimeRoot: cfg.runtimeRoot, id: execId, bundleDir: execBundle, cmd, tty };
  }

  async function execPids(): Promise<number[]> {
    return JSON.parse(await rt.runtimeCommand(["ps", "--format", "json", execId])) as number[];
  }

  test("exec without a TTY: stdin piped, stdout and stderr apart, the exit code", async () => {
    const stdin = pushable<Uint8Array>();
    const out = collector();
    const err = collector();
    const running = execStreaming({
      ...execOpts(["sh", "-c", "cat; echo err >&2; exit 3"], false), stdin: stdin.iterable, stdout: out.write, stderr: err.write,
    });
    stdin.push(new TextEncoder().encode("hello\n"));
    await out.until(/hello\n/);
    stdin.push(new TextEncoder().encode("world\n"));
    stdin.end(); // the client's EOF is cat's
    expect(await running).toEqual({ exitCode: 3 });
    expect(out.text()).toBe("hello\nworld\n");
    expect(err.text()).toBe("err\n");
  });

  test("exec without a TTY: 1 MiB through cat to a slow client; a missing command is a non-zero exit with the runtime's message", async () => {
    const data = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const stdin = pushable<Uint8Array>();
    for (let off = 0; off < data.length; off += 100_000) stdin.push(data.subarray(off, off + 100_000));
    stdin.end();
    const out = collector({ delayMs: 1 });
    expect(await execStreaming({ ...execOpts(["cat"], false), stdin: stdin.iterable, stdout: out.write })).toEqual({ exitCode: 0 });
    expect(out.bytes().equals(Buffer.from(data))).toBe(true);

    const err = collector();
    const r = await execStreaming({ ...execOpts(["no-such-command"], false), stderr: err.write });
    expect(r.exitCode).not.toBe(0);
    expect(err.text()).toContain("no-such-command");
  });

  test("exec with a TTY: /dev/pts, the first size and a resize reach the process", async () => {
    const stdin = pushable<Uint8Array>();
    const resize = pushable<TerminalSize>();
    const out = collector();
    resize.push({ width: 100, height: 30 });
    const running = execStreaming({
      ...execOpts(["sh", "-c", "tty; stty size; read line; stty size; echo got:$line"], true),
      stdin: stdin.iterable, stdout: out.write, resize: resize.iterable,
    });
    await out.until(/30 100\r\n/);
    expect(out.text()).toMatch(/^\/dev\/pts\/\d+\r\n30 100\r\n$/);
    resize.push({ width: 77, height: 33 });
    await Bun.sleep(200); // runc copies the size on SIGWINCH, concurrently with its stdin copy
    stdin.push(new TextEncoder().encode("abc\r"));
    expect(await running).toEqual({ exitCode: 0 });
    // The terminal echoes the input line; the later `stty size` sees the new size.
    expect(out.text()).toMatch(/abc\r\n33 77\r\ngot:abc\r\n$/);
  });

  test("exec: aborting (the client went away) kills the exec'd process, with or without a TTY", async () => {
    for (const tty of [false, true]) {
      const before = await execPids();
      const ac = new AbortController();
      const out = collector();
      const running = execStreaming({
        ...execOpts(["sh", "-c", "echo started; exec sleep 100"], tty), stdout: out.write, stdin: never(), signal: ac.signal,
        resize: tty ? never<TerminalSize>() : undefined,
      });
      await out.until(/started/);
      await Bun.sleep(100);
      const during = (await execPids()).filter((p) => !before.includes(p));
      expect(during.length).toBe(1);
      const t0 = Date.now();
      ac.abort();
      expect((await running).exitCode).toBe(137);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(alive(during[0]!)).toBe(false);
      expect(await execPids()).toEqual(before);
    }
  });

  test("exec: aborting while a background child holds runc's pipes still ends the session", async () => {
    const ac = new AbortController();
    const out = collector();
    const running = execStreaming({
      ...execOpts(["sh", "-c", "sleep 30 & echo started; exec sleep 30"], false), stdout: out.write, signal: ac.signal,
    });
    await out.until(/started/);
    const t0 = Date.now();
    ac.abort();
    await running; // runc itself is killed once it outlives the process by 2 s
    expect(Date.now() - t0).toBeLessThan(4500);
    // The background sleep is left to the container, as CRI-O leaves it; clean it up here.
    const init = (await rt.state(execId)).pid;
    for (const pid of await execPids()) if (pid !== init) process.kill(pid, "SIGKILL");
  });

  test("exec: a write to the client that fails kills the process and rejects with that error", async () => {
    const before = await execPids();
    const running = execStreaming({
      ...execOpts(["sh", "-c", "echo x; exec sleep 100"], false), stdout: () => Promise.reject(new Error("stream reset")),
    });
    await expect(running).rejects.toThrow("stream reset");
    expect(await execPids()).toEqual(before);
  });

  test("attach: output from the attach on, stdout and stderr apart; abort detaches and the container runs on", async () => {
    const id = `attach-out-${rand}`;
    const c = await run(id, ["sh", "-c", "i=0; while true; do echo out$i; echo err$i >&2; i=$((i+1)); sleep 0.05; done"]);
    const ac = new AbortController();
    const out = collector();
    const err = collector();
    const attached = attachStreaming({
      attachSocketPath: attachSocketPath(cfg.attachSocketDir, id), ctlPath: ctlFifoPath(c.bundleDir), tty: false,
      stdout: out.write, stderr: err.write, signal: ac.signal,
    });
    await out.until(/out\d+\nout\d+\n/);
    await err.until(/err\d+\nerr\d+\n/);
    ac.abort();
    await attached;
    expect(out.text()).toMatch(/^(out\d+\n)+$/);
    expect(err.text()).toMatch(/^(err\d+\n)+$/);
    expect((await rt.state(id)).status).toBe("running");
    expect(alive(c.pid)).toBe(true);
  });

  test("attach with stdin (stdin_once): what is sent comes back from cat; closing stdin ends cat and the attach", async () => {
    const id = `attach-in-${rand}`;
    const c = await run(id, ["cat"], { stdin: true, stdinOnce: true });
    const stdin = pushable<Uint8Array>();
    const out = collector();
    const attached = attachStreaming({
      attachSocketPath: attachSocketPath(cfg.attachSocketDir, id), ctlPath: ctlFifoPath(c.bundleDir), tty: false,
      stdin: stdin.iterable, stdout: out.write, containerStdin: true, stdinOnce: true,
    });
    await Bun.sleep(100); // conmon accepts the connection
    stdin.push(new TextEncoder().encode("ping\n"));
    await out.until(/ping\n/);
    stdin.end();
    await attached; // conmon closed cat's stdin; cat exited; conmon closed the socket
    for (let i = 0; i < 100 && (await rt.state(id)).status !== "stopped"; i++) await Bun.sleep(20);
    expect((await rt.state(id)).status).toBe("stopped");
  });

  test("attach with a TTY: a resize goes through conmon's ctl fifo to the console", async () => {
    const id = `attach-tty-${rand}`;
    const c = await run(id, ["sh", "-c", "while true; do stty size; sleep 0.1; done"], { terminal: true });
    const ac = new AbortController();
    const out = collector();
    const resize = pushable<TerminalSize>();
    const attached = attachStreaming({
      attachSocketPath: attachSocketPath(cfg.attachSocketDir, id), ctlPath: ctlFifoPath(c.bundleDir), tty: true,
      stdout: out.write, resize: resize.iterable, signal: ac.signal,
    });
    // conmon's console starts at 0x0 (busybox stty then fails): output flows, the size is unset.
    await out.until(/\r\n/);
    resize.push({ width: 77, height: 33 });
    await out.until(/33 77\r\n/);
    ac.abort();
    await attached;
    expect((await rt.state(id)).status).toBe("running");
  });
});

// ─── port-forward ────────────────────────────────────────────────────────────────────────────

describe("port-forward into a network namespace", () => {
  const name = `crio-pf-test-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const nsPath = `/run/netns/${name}`;
  const PORT4 = 20000 + Math.floor(Math.random() * 20000);
  const PORT6 = PORT4 + 1;
  const servers: ReturnType<typeof Bun.spawn>[] = [];
  let hostNs = "";
  let hostTasks = new Set<string>();

  // An echo server: bytes back until the client's EOF, then EOF.
  const ECHO = `const net = require("node:net");
const [host, port] = process.argv.slice(-2);
net.createServer((s) => { s.on("error", () => {}); s.pipe(s); }).listen(Number(port), host, () => console.log("ready"));`;

  async function startServer(host: string, port: number): Promise<void> {
    const p = Bun.spawn(["ip", "netns", "exec", name, process.execPath, "-e", ECHO, host, String(port)], { stdout: "pipe", stderr: "inherit" });
    servers.push(p);
    const reader = p.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    if (!Buffer.from(value ?? []).toString().includes("ready")) throw new Error("echo server did not start");
  }

  function ip(...args: string[]): void {
    const r = Bun.spawnSync(["ip", ...args], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
  }

  beforeAll(async () => {
    requireRoot();
    hostNs = threadNamespaceId("net");
    hostTasks = taskNetNamespaces();
    ip("netns", "add", name);
    ip("-n", name, "link", "set", "lo", "up");
    await startServer("127.0.0.1", PORT4);
    await startServer("::1", PORT6);
  });

  afterAll(async () => {
    for (const s of servers) s.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
    try {
      ip("netns", "del", name);
    } catch { /* gone */ }
  });

  async function roundTrip(port: number, size: number): Promise<{ back: Buffer; ended: boolean }> {
    const data = new Uint8Array(size).map((_, i) => (i * 13) & 0xff);
    const input = pushable<Uint8Array>();
    for (let off = 0; off < data.length; off += 65536) input.push(data.subarray(off, off + 65536));
    input.end();
    const back = collector();
    let ended = false;
    await portForwardStreaming({ netnsPath: nsPath, port, input: input.iterable, write: back.write, end: () => { ended = true; } });
    expect(back.bytes().equals(Buffer.from(data))).toBe(true);
    return { back: back.bytes(), ended };
  }

  test("1 MiB round-trips through an echo server on 127.0.0.1; the server's EOF is passed on", async () => {
    const r = await roundTrip(PORT4, 1 << 20);
    expect(r.ended).toBe(true);
  });

  test("a server listening only on ::1 is reached after 127.0.0.1 is refused", async () => {
    const r = await roundTrip(PORT6, 100_000);
    expect(r.ended).toBe(true);
  });

  test("host network (netnsPath null): the daemon's own namespace", async () => {
    const net = await import("node:net");
    const srv = net.createServer((sock) => sock.end("host says hi"));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    try {
      const back = collector();
      const input = pushable<Uint8Array>();
      input.end();
      await portForwardStreaming({ netnsPath: null, port: (srv.address() as { port: number }).port, input: input.iterable, write: back.write });
      expect(back.text()).toBe("host says hi");
    } finally {
      srv.close();
    }
  });

  test("nothing listening: a clear error naming both addresses, code ECONNREFUSED", async () => {
    const closedPort = PORT4 + 2;
    let err: unknown;
    try {
      await portForwardStreaming({ netnsPath: nsPath, port: closedPort, input: never(), write: () => {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PortForwardError);
    expect((err as PortForwardError).code).toBe("ECONNREFUSED");
    expect((err as Error).message).toContain(`failed to connect to localhost:${closedPort} inside network namespace ${nsPath}`);
    expect((err as Error).message).toMatch(/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\[::1\]:\d+: .*ECONNREFUSED/);
    await expect(portForwardStreaming({ netnsPath: "/run/netns/missing-ns", port: PORT4, input: never(), write: () => {} }))
      .rejects.toThrow(/port forward into network namespace \/run\/netns\/missing-ns: open .*ENOENT/);
  });

  test("abort ends an open connection; a failing client write rejects", async () => {
    const ac = new AbortController();
    const input = pushable<Uint8Array>();
    const back = collector();
    const fwd = portForwardStreaming({ netnsPath: nsPath, port: PORT4, input: input.iterable, write: back.write, signal: ac.signal });
    input.push(new TextEncoder().encode("ping"));
    await back.until(/ping/);
    ac.abort();
    await fwd;

    const input2 = pushable<Uint8Array>();
    const fwd2 = portForwardStreaming({
      netnsPath: nsPath, port: PORT4, input: input2.iterable, write: () => Promise.reject(new Error("client reset")),
    });
    input2.push(new TextEncoder().encode("x"));
    await expect(fwd2).rejects.toThrow("client reset");
  });

  test("the daemon's threads are in the host network namespace afterwards", () => {
    expect(threadNamespaceId("net")).toBe(hostNs);
    expect([...hostTasks]).toEqual([hostNs]);
    expect([...taskNetNamespaces()]).toEqual([hostNs]);
  });
});

// ─── fixtures ────────────────────────────────────────────────────────────────────────────────

