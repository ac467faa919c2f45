// The streaming server end to end, against a fake backend: SPDY through an independent Go
// client built on moby/spdystream (test/tools/spdyclient), WebSocket through Bun's WebSocket.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { runSpdyClient, spdyClientBinary } from "../../test/tools/spdyclient.ts";
import { InvalidArgumentError } from "../errors.ts";
import { StreamingServer, type StreamingServerOptions } from "./server.ts";
import { SpdySession } from "./spdy.ts";
import type { AttachRequest, ExecRequest, PortForwardConnection, StreamingBackend, StreamIO, TerminalSize } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Commands the fake exec understands (cmd[0]); attach echoes; port-forward echoes. */
class FakeBackend implements StreamingBackend {
  readonly resizes: TerminalSize[][] = [];
  readonly aborted: string[] = [];
  readonly forwarded: Array<{ podSandboxId: string; port: number }> = [];

  async exec(req: ExecRequest, io: StreamIO): Promise<{ exitCode: number }> {
    const [cmd, ...args] = req.cmd;
    switch (cmd) {
      case "echo":
        for await (const chunk of io.stdin ?? []) await io.stdout?.write(chunk);
        return { exitCode: 0 };
      case "echo-once": {
        // For WebSocket sessions, whose stdin only ends with the connection.
        for await (const chunk of io.stdin ?? []) {
          await io.stdout?.write(chunk);
          break;
        }
        return { exitCode: Number(args[0] ?? 0) };
      }
      case "exit":
        if (args[1]) await io.stderr?.write(enc.encode(args[1]));
        return { exitCode: Number(args[0]) };
      case "print":
        await io.stdout?.write(enc.encode(args[0] ?? ""));
        await io.stderr?.write(enc.encode(args[1] ?? ""));
        return { exitCode: 0 };
      case "emit": {
        await io.stdout?.write(pattern(Number(args[0])));
        return { exitCode: 0 };
      }
      case "resize": {
        const seen: TerminalSize[] = [];
        for await (const size of io.resize) {
          seen.push(size);
          if (seen.length === Number(args[0])) break;
        }
        this.resizes.push(seen);
        await io.stdout?.write(enc.encode(JSON.stringify(seen)));
        return { exitCode: 0 };
      }
      case "hang":
        await new Promise<void>((resolve) => io.signal.addEventListener("abort", () => resolve()));
        this.aborted.push(req.containerId);
        return { exitCode: 0 };
      default:
        throw new Error(`no such command ${cmd}`);
    }
  }

  async attach(req: AttachRequest, io: StreamIO): Promise<void> {
    if (req.containerId === "gone") throw new Error("container is not running");
    for await (const chunk of io.stdin ?? []) await io.stdout?.write(chunk);
  }

  async portForward(podSandboxId: string, port: number, conn: PortForwardConnection): Promise<void> {
    this.forwarded.push({ podSandboxId, port });
    if (port === 9) throw Object.assign(new Error("dial tcp4 127.0.0.1:9: connect: connection refused"), { code: "ECONNREFUSED" });
    if (port === 10) throw Object.assign(new Error("read: connection reset by peer"), { code: "ECONNRESET" });
    for await (const chunk of conn.input) await conn.write(chunk);
  }
}

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 10)) & 0xff;
  return out;
}

const exec = (cmd: string[], o: Partial<ExecRequest> = {}): ExecRequest => ({
  containerId: "ctr1",
  cmd,
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...o,
});

let backend: FakeBackend;
let server: StreamingServer;
const extraServers: StreamingServer[] = [];

async function startServer(options: StreamingServerOptions = {}): Promise<StreamingServer> {
  const s = new StreamingServer(backend, options);
  await s.listen();
  extraServers.push(s);
  return s;
}

beforeAll(async () => {
  await spdyClientBinary(); // build once, outside the tests' time
  backend = new FakeBackend();
  server = new StreamingServer(backend, { address: "127.0.0.1", port: 0 });
  await server.listen();
});

afterAll(async () => {
  await Promise.all([server.close(), ...extraServers.map((s) => s.close())]);
});

describe("URLs and tokens", () => {
  test("the RPC gets an http URL on the bound address with an 8-character token", () => {
    const { port } = server.address;
    expect(port).toBeGreaterThan(0);
    expect(server.getExec(exec(["x"]))).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/exec/[A-Za-z0-9_-]{8}$`));
    expect(server.getAttach({ containerId: "c", tty: false, stdin: true, stdout: false, stderr: false })).toContain("/attach/");
    expect(server.getPortForward({ podSandboxId: "p", ports: [] })).toContain("/portforward/");
  });

  test("requests are validated as kubelet's streaming server does", () => {
    const bad: Array<[() => string, string]> = [
      [() => server.getExec(exec(["x"], { containerId: "" })), "missing required container_id"],
      [() => server.getExec(exec(["x"], { tty: true, stderr: true })), "tty and stderr cannot both be true"],
      [() => server.getExec(exec(["x"], { stdout: false, stderr: false })), "one of stdin, stdout, or stderr must be set"],
      [
        () => server.getAttach({ containerId: "c", tty: false, stdin: false, stdout: false, stderr: false }),
        "one of stdin, stdout, and stderr must be set",
      ],
      [() => server.getPortForward({ podSandboxId: "", ports: [] }), "missing required pod_sandbox_id"],
    ];
    for (const [call, message] of bad) {
      expect(call).toThrow(InvalidArgumentError);
      expect(call).toThrow(message);
    }
  });

  test("options are checked: stream_idle_timeout is a Go duration, the port a port", () => {
    expect(() => new StreamingServer(backend, { idleTimeout: "4 hours" })).toThrow(InvalidArgumentError);
    expect(() => new StreamingServer(backend, { port: "http" })).toThrow(InvalidArgumentError);
    expect(() => new StreamingServer(backend, { idleTimeout: "0" })).not.toThrow();
  });

  test("unknown, reused, mismatched and expired tokens get 404; other paths 404, other methods 405", async () => {
    const url = server.getExec(exec(["print", "a", ""]));
    const first = await runSpdyClient(["exec", url]);
    expect(first.code).toBe(0);
    const again = await runSpdyClient(["exec", url]);
    expect([again.code, again.report.httpStatus, again.report.httpBody]).toEqual([126, 404, "404 page not found\n"]);

    const base = server.baseUrl;
    expect((await fetch(`${base}/exec/nosuchtk`, { method: "POST" })).status).toBe(404);
    const attachToken = server.getExec(exec(["x"])).split("/").pop();
    expect((await fetch(`${base}/attach/${attachToken}`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${base}/exec/a/b`)).status).toBe(404);
    expect((await fetch(`${base}/version`)).status).toBe(404);
    expect((await fetch(`${base}/exec/sometokn`, { method: "PUT" })).status).toBe(405);

    const shortLived = await startServer({ tokens: { ttlMs: 30 } });
    const expiring = shortLived.getExec(exec(["print", "a", ""]));
    await Bun.sleep(60);
    expect((await runSpdyClient(["exec", expiring])).report.httpStatus).toBe(404);
  });

  test("a protocol the server does not speak is refused with 403 and the accepted list", async () => {
    const url = server.getExec(exec(["print", "a", ""]));
    const r = await runSpdyClient(["exec", "-protocols", "v9.channel.k8s.io", url]);
    expect(r.report.httpStatus).toBe(403);
    expect(r.report.httpBody).toBe(
      "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server accepts " +
        "[v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n",
    );
    const head = await rawRequest(
      server.getPortForward({ podSandboxId: "p", ports: [] }),
      "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n",
    );
    expect(head).toStartWith("HTTP/1.1 403 Forbidden\r\n");
    expect(head).toContain("X-Accepted-Stream-Protocol-Versions: portforward.k8s.io\r\n");
  });

  test("requests without a protocol offer or without upgrade headers get 400", async () => {
    const noOffer = await rawRequest(server.getExec(exec(["x"])), "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
    expect(noOffer).toStartWith("HTTP/1.1 400 Bad Request\r\n");
    expect(noOffer).toContain("X-Stream-Protocol-Version is required");
    const res = await fetch(server.getExec(exec(["x"])), {
      method: "POST",
      headers: { "X-Stream-Protocol-Version": "v4.channel.k8s.io" },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toStartWith("unable to upgrade: missing upgrade headers in request");
  });
});

describe("exec and attach over SPDY (spdystream client)", () => {
  test("stdin reaches the command and stdout comes back; success is a v4 Status", async () => {
    const url = server.getExec(exec(["echo"], { stdin: true, stderr: false }));
    const r = await runSpdyClient(["exec", "-stdin", "-stderr=false", url], { stdin: "hello\nworld\n" });
    expect(r.code).toBe(0);
    expect(dec.decode(r.stdout)).toBe("hello\nworld\n");
    expect(r.report.protocol).toBe("v5.channel.k8s.io");
    expect(r.report.errorStream).toBe('{"metadata":{},"status":"Success"}');
  });

  test("a non-zero exit code travels in a NonZeroExitCode status; stderr is separate", async () => {
    const url = server.getExec(exec(["exit", "3", "oops"]));
    const r = await runSpdyClient(["exec", url]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("oops");
    expect(r.report.message).toBe("command terminated with exit code 3");
    expect(JSON.parse(r.report.errorStream)).toEqual({
      metadata: {},
      status: "Failure",
      message: "command terminated with non-zero exit code: exit status 3",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "3" }] },
    });
  });

  test("a backend failure is an InternalError status", async () => {
    const url = server.getExec(exec(["nope"]));
    const r = await runSpdyClient(["exec", url]);
    expect(r.code).toBe(125);
    expect(r.report.message).toBe("Internal error occurred: error executing command in container: no such command nope");
    expect(JSON.parse(r.report.errorStream)).toMatchObject({ status: "Failure", reason: "InternalError", code: 500 });
  });

  test.each([["v3.channel.k8s.io"], ["v2.channel.k8s.io"], ["channel.k8s.io"]])(
    "%s: errors are plain text and success writes nothing",
    async (protocol) => {
      const fail = await runSpdyClient(["exec", "-protocols", protocol, server.getExec(exec(["exit", "4"]))]);
      expect([fail.code, fail.report.protocol]).toEqual([125, protocol]);
      expect(fail.report.errorStream).toBe("command terminated with non-zero exit code: exit status 4");
      const ok = await runSpdyClient(["exec", "-protocols", protocol, server.getExec(exec(["print", "out", "err"]))]);
      expect([ok.code, dec.decode(ok.stdout), ok.stderr, ok.report.errorStream]).toEqual([0, "out", "err", ""]);
    },
  );

  test("a TTY session gets the client's terminal sizes", async () => {
    const url = server.getExec(exec(["resize", "2"], { tty: true, stderr: false }));
    const r = await runSpdyClient(["exec", "-tty", "-stderr=false", "-sizes", "80x24,132x43", url]);
    expect(r.code).toBe(0);
    expect(JSON.parse(dec.decode(r.stdout))).toEqual([
      { width: 80, height: 24 },
      { width: 132, height: 43 },
    ]);
  });

  test("2 MiB in and out of one session, with flow control on both sides", async () => {
    const input = randomBytes(2 << 20);
    const url = server.getExec(exec(["echo"], { stdin: true, stderr: false }));
    const r = await runSpdyClient(["exec", "-stdin", "-stderr=false", url], { stdin: input });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(input.length);
    expect(createHash("sha256").update(r.stdout).digest("hex")).toBe(createHash("sha256").update(input).digest("hex"));
    const big = await runSpdyClient(["exec", server.getExec(exec(["emit", String(3 << 20)]))]);
    expect(Buffer.compare(Buffer.from(big.stdout), Buffer.from(pattern(3 << 20)))).toBe(0);
  });

  test("attach relays stdin to stdout; an attach failure is an InternalError status", async () => {
    const req: AttachRequest = { containerId: "ctr1", tty: false, stdin: true, stdout: true, stderr: false };
    const r = await runSpdyClient(["exec", "-stdin", "-stderr=false", server.getAttach(req)], { stdin: "detach me" });
    expect([r.code, dec.decode(r.stdout)]).toEqual([0, "detach me"]);
    const gone = await runSpdyClient(["exec", "-stdin", "-stderr=false", server.getAttach({ ...req, containerId: "gone" })]);
    expect(gone.code).toBe(125);
    expect(gone.report.message).toBe("Internal error occurred: error attaching to container: container is not running");
  });

  test("a client that does not open all its streams is dropped after the creation timeout", async () => {
    const s = await startServer({ streamCreationTimeoutMs: 150 });
    const { session } = await spdyConnect(s.getExec(exec(["print", "a", "b"])), ["v4.channel.k8s.io"]);
    const stream = session.createStream({ streamType: "error" });
    await stream.replied;
    const goaway = new Promise((resolve) => session.once("goaway", resolve));
    const started = Date.now();
    await session.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(120);
    await goaway;
  });

  test("an idle session is closed after stream_idle_timeout and the backend is told", async () => {
    const s = await startServer({ idleTimeout: "300ms" });
    const url = s.getExec(exec(["hang"], { containerId: "idle", stdin: true, stderr: false }));
    const started = Date.now();
    const r = await runSpdyClient(["exec", "-stdin", "-stderr=false", url], { keepStdinOpen: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(r.report.httpStatus).toBe(101);
    // The client may see the connection end before the server has processed the close.
    for (let i = 0; i < 100 && !backend.aborted.includes("idle"); i++) await Bun.sleep(10);
    expect(backend.aborted).toContain("idle");
  });
});

describe("port forwarding over SPDY (spdystream client)", () => {
  test("concurrent connections on one session are forwarded to the backend", async () => {
    const input = randomBytes(300 * 1024);
    const url = server.getPortForward({ podSandboxId: "pod1", ports: [] });
    const r = await runSpdyClient(["portforward", "-count", "4", url, "8080"], { stdin: input });
    expect(r.code).toBe(0);
    expect(Buffer.compare(Buffer.from(r.stdout), Buffer.concat([input, input, input, input]))).toBe(0);
    expect(backend.forwarded.filter((f) => f.port === 8080)).toEqual(Array(4).fill({ podSandboxId: "pod1", port: 8080 }));
  });

  test("a failure is reported as JSON on the error stream; EPIPE/ECONNRESET keep the session", async () => {
    const refused = await runSpdyClient(["portforward", server.getPortForward({ podSandboxId: "pod1", ports: [] }), "9"]);
    expect(refused.code).toBe(1);
    expect(refused.report.errorStream).toBe(
      '{"closeConnection":true,"message":"error forwarding port 9 to pod pod1, uid : dial tcp4 127.0.0.1:9: connect: connection refused"}\n',
    );
    const reset = await runSpdyClient(["portforward", server.getPortForward({ podSandboxId: "pod1", ports: [] }), "10"]);
    expect(reset.report.errorStream).toBe(
      '{"message":"error forwarding port 10 to pod pod1, uid : read: connection reset by peer"}\n',
    );
  });

  test("streams without a valid port are rejected", async () => {
    for (const port of ["0", "abc", "70000"]) {
      const r = await runSpdyClient(["portforward", server.getPortForward({ podSandboxId: "pod1", ports: [] }), port]);
      expect(r.code).toBe(127);
      expect(r.report.message).toContain("not accepted: Stream reset");
    }
  });
});

describe("TLS", () => {
  test("serves https, and a replaced certificate is used for new connections", async () => {
    const first = await selfSignedCert("first");
    const s = await startServer({ tls: first });
    expect(s.baseUrl).toStartWith("https://127.0.0.1:");
    const r = await runSpdyClient(["exec", s.getExec(exec(["print", "secure", ""]))]);
    expect([r.code, dec.decode(r.stdout)]).toEqual([0, "secure"]);
    expect(await peerCommonName(s.address.port)).toBe("first");
    s.updateTls(await selfSignedCert("second"));
    expect(await peerCommonName(s.address.port)).toBe("second");
  });
});

describe("WebSocket (Bun's client)", () => {
  test("v4.channel.k8s.io exec: announce, stdin, stdout, then a JSON status on channel 3", async () => {
    const url = wsUrl(server.getExec(exec(["echo-once", "7"], { stdin: true, stderr: false })));
    const { messages, closed, ws } = await openWs(url, ["v4.channel.k8s.io"]);
    expect(ws.protocol).toBe("v4.channel.k8s.io");
    expect(await messages.next()).toEqual([1]);
    ws.send(Uint8Array.of(0, ...enc.encode("ping")));
    expect(dec.decode(Uint8Array.from((await messages.next()).slice(1)))).toBe("ping");
    const status = await messages.next();
    expect(status[0]).toBe(3);
    expect(JSON.parse(dec.decode(Uint8Array.from(status.slice(1))))).toMatchObject({
      status: "Failure",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "7" }] },
    });
    expect((await closed).code).toBe(1000);
  });

  test("base64.channel.k8s.io: text messages, a digit then base64; pre-v4 errors are plain text", async () => {
    const url = wsUrl(server.getExec(exec(["exit", "2", "bad"], { stdout: true, stderr: true })));
    const { messages, closed } = await openWs(url, ["base64.channel.k8s.io"]);
    const texts: string[] = [];
    for (let i = 0; i < 3; i++) texts.push(await messages.nextText());
    expect(texts).toEqual(["1", `2${Buffer.from("bad").toString("base64")}`, `3${Buffer.from("command terminated with non-zero exit code: exit status 2").toString("base64")}`]);
    await closed;
  });

  test("no subprotocol: binary channels, and errors as plain text", async () => {
    const url = wsUrl(server.getExec(exec(["exit", "5"], { stderr: false })));
    const { ws, messages, closed } = await openWs(url, []);
    expect(ws.protocol).toBe("");
    expect(await messages.next()).toEqual([1]);
    const status = await messages.next();
    expect([status[0], dec.decode(Uint8Array.from(status.slice(1)))]).toEqual([
      3,
      "command terminated with non-zero exit code: exit status 5",
    ]);
    await closed;
  });

  test("resize messages on channel 4 reach the backend", async () => {
    const url = wsUrl(server.getExec(exec(["resize", "1"], { tty: true, stderr: false })));
    const { messages, ws, closed } = await openWs(url, ["v4.channel.k8s.io"]);
    expect(await messages.next()).toEqual([1]);
    ws.send(Uint8Array.of(4, ...enc.encode('{"Width":120,"Height":40}')));
    expect(JSON.parse(dec.decode(Uint8Array.from((await messages.next()).slice(1))))).toEqual([{ width: 120, height: 40 }]);
    await closed;
  });

  test("port forward: port numbers first, then data echoed per channel pair", async () => {
    const url = wsUrl(server.getPortForward({ podSandboxId: "pod2", ports: [80, 443] }));
    const { messages, ws, closed } = await openWs(url, ["v4.channel.k8s.io"]);
    const first = [await messages.next(), await messages.next(), await messages.next(), await messages.next()];
    expect(first).toEqual([
      [0, 80, 0],
      [1, 80, 0],
      [2, 187, 1],
      [3, 187, 1],
    ]);
    ws.send(Uint8Array.of(0, ...enc.encode("GET /")));
    expect(await messages.next()).toEqual([0, ...enc.encode("GET /")]);
    ws.send(Uint8Array.of(2, ...enc.encode("hello tls")));
    expect(await messages.next()).toEqual([2, ...enc.encode("hello tls")]);
    ws.close();
    await closed;
    expect(backend.forwarded).toContainEqual({ podSandboxId: "pod2", port: 443 });
  });

  test("an unsupported subprotocol is refused with 403", async () => {
    const url = server.getExec(exec(["x"]));
    const head = await rawRequest(
      url,
      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n",
      "GET",
    );
    expect(head).toStartWith("HTTP/1.1 403 Forbidden\r\n");
  });
});

// ---- helpers ----------------------------------------------------------------------------------

/** A throwaway self-signed certificate from the openssl CLI (Debian package openssl). */
async function selfSignedCert(cn: string): Promise<{ cert: string; key: string }> {
  if (!Bun.which("openssl")) throw new Error("the TLS test needs the openssl CLI: install the Debian package openssl");
  const dir = mkdtempSync(join(tmpdir(), "streaming-tls-"));
  try {
    const proc = Bun.spawn(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", `/CN=${cn}`, "-days", "1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      { stdout: "ignore", stderr: "pipe" },
    );
    if ((await proc.exited) !== 0) throw new Error(`openssl failed: ${await new Response(proc.stderr).text()}`);
    return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The CN of the certificate a TLS server presents to a new connection. */
async function peerCommonName(port: number): Promise<string> {
  const socket = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  const cn = socket.getPeerCertificate().subject.CN;
  socket.destroy();
  return Array.isArray(cn) ? (cn[0] as string) : (cn as string);
}

function wsUrl(url: string): string {
  return url.replace(/^http/, "ws");
}

/** Opens a WebSocket and queues its messages (binary as number arrays). */
async function openWs(
  url: string,
  protocols: string[],
): Promise<{
  ws: WebSocket;
  messages: { next(): Promise<number[]>; nextText(): Promise<string> };
  closed: Promise<{ code: number }>;
}> {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const queue: Array<ArrayBuffer | string> = [];
  let wake: (() => void) | undefined;
  ws.onmessage = (ev: MessageEvent) => {
    queue.push(ev.data as ArrayBuffer | string);
    wake?.();
  };
  const closed = new Promise<{ code: number }>((resolve) => {
    ws.onclose = (ev: CloseEvent) => {
      resolve({ code: ev.code });
      wake?.();
    };
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("WebSocket failed to open"));
  });
  const take = async (): Promise<ArrayBuffer | string> => {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift() as ArrayBuffer | string;
  };
  return {
    ws,
    closed,
    messages: {
      next: async () => [...new Uint8Array((await take()) as ArrayBuffer)],
      nextText: async () => (await take()) as string,
    },
  };
}

/** Sends a request by hand and returns the response head. */
async function rawRequest(url: string, headers: string, method = "POST"): Promise<string> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  let data = "";
  socket.on("data", (c: Buffer) => (data += c.toString("latin1")));
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(`${method} ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n${headers}\r\n`);
  await new Promise<void>((resolve) => socket.once("close", resolve));
  return data;
}

/** Upgrades to SPDY by hand and returns our own client session (for what spdyclient cannot do). */
async function spdyConnect(url: string, protocols: string[]): Promise<{ session: SpdySession; head: string }> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(
    `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
      protocols.map((p) => `X-Stream-Protocol-Version: ${p}\r\n`).join("") +
      "\r\n",
  );
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (buf.includes("\r\n\r\n")) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
  });
  const end = buf.indexOf("\r\n\r\n") + 4;
  const session = new SpdySession(socket, { role: "client", head: buf.subarray(end) });
  return { session, head: buf.subarray(0, end).toString() };
}
