// The endpoint in-process: GET /metrics over TCP, over the unix socket and over HTTPS; what it
// refuses (other paths, other methods); start-up errors that must leave nothing listening.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { defaultConfig, type Config } from "../config/schema.ts";
import { configureLogging } from "../log.ts";
import { CrioMetrics } from "./crio.ts";
import { startMetricsServer, type MetricsServer } from "./server.ts";

let dir: string;
const logs: string[] = [];
const open: MetricsServer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "crio-metrics-server-"));
  configureLogging({ level: "info", write: (l) => logs.push(l) });
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(() => {
  configureLogging({ level: "info", write: (l) => process.stderr.write(l + "\n") });
  rmSync(dir, { recursive: true, force: true });
});

function config(metrics: Partial<Config["metrics"]> = {}): Config {
  const c = defaultConfig();
  c.metrics = { ...c.metrics, enable_metrics: true, metrics_host: "127.0.0.1", metrics_port: 0, ...metrics };
  return c;
}

async function start(c: Config, metrics = new CrioMetrics()): Promise<MetricsServer> {
  const s = await startMetricsServer(c, { metrics });
  if (s === undefined) throw new Error("metrics server not started");
  open.push(s);
  return s;
}

const url = (s: MetricsServer, path = "/metrics") => `http://127.0.0.1:${s.address.port}${path}`;

describe("startMetricsServer", () => {
  test("with enable_metrics = false nothing is started", async () => {
    const c = defaultConfig();
    expect(c.metrics.enable_metrics).toBe(false);
    expect(await startMetricsServer(c)).toBeUndefined();
  });

  test("GET /metrics: text format 0.0.4 with CRI-O's and the process metrics", async () => {
    const m = new CrioMetrics();
    m.recordOperation("Version", 0.002, false);
    const s = await start(config(), m);
    expect(s.tls).toBe(false);
    const res = await fetch(url(s), { headers: { "accept-encoding": "identity" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE container_runtime_crio_operations_total counter\n");
    expect(text).toContain('container_runtime_crio_operations_total{operation="Version"} 1\n');
    expect(text).toContain('container_runtime_crio_default_runtime{runtime="runc"} 1\n');
    expect(text).toMatch(/\nprocess_resident_memory_bytes [0-9.e+]+\n/);
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\n");
  });

  test("gzip when asked, HEAD without a body, 404 elsewhere, 405 for other methods", async () => {
    const s = await start(config());
    const gz = await fetch(url(s), { headers: { "accept-encoding": "gzip" }, decompress: false });
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(gunzipSync(new Uint8Array(await gz.arrayBuffer())).toString()).toContain("container_runtime_crio_default_runtime");
    const head = await fetch(url(s), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(url(s, "/"))).status).toBe(404);
    expect((await fetch(url(s, "/metricsx"))).status).toBe(404);
    expect((await fetch(url(s), { method: "POST", body: "x" })).status).toBe(405);
    expect((await fetch(url(s, "/metrics?x=1"))).status).toBe(200);
  });

  test("metrics_collectors filters CRI-O's metrics (prefixes allowed), never the process ones", async () => {
    const m = new CrioMetrics();
    m.recordOperation("Version", 0.001, true);
    const s = await start(config({ metrics_collectors: ["crio_operations_errors_total", "no_such_collector"] }), m);
    const text = await (await fetch(url(s))).text();
    expect(text).toContain('container_runtime_crio_operations_errors_total{operation="Version"} 1');
    expect(text).not.toContain("container_runtime_crio_operations_total");
    expect(text).not.toContain("container_runtime_crio_default_runtime");
    expect(text).toContain("process_open_fds ");
    expect(logs.some((l) => l.includes("unknown collector") && l.includes("no_such_collector"))).toBe(true);
  });

  test("metrics_socket: served there too (mode 0660), removed on close", async () => {
    const sock = join(dir, "metrics.sock");
    const s = await start(config({ metrics_socket: sock }));
    expect(s.socket).toBe(sock);
    expect(statSync(sock).mode & 0o777).toBe(0o660);
    const res = await fetch("http://localhost/metrics", { unix: sock });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("container_runtime_crio_default_runtime");
    await s.close();
    open.splice(open.indexOf(s), 1);
    expect(existsSync(sock)).toBe(false);
  });

  test("a stale socket file is replaced; a live one is refused and left in place", async () => {
    // A socket file nobody listens on, as a daemon killed with SIGKILL leaves it.
    const stale = join(dir, "stale.sock");
    const py = Bun.spawnSync(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
    expect(py.exitCode).toBe(0);
    expect(statSync(stale).isSocket()).toBe(true);
    const s = await start(config({ metrics_socket: stale }));
    expect((await fetch("http://localhost/metrics", { unix: stale })).status).toBe(200);
    await s.close();
    open.splice(open.indexOf(s), 1);

    const live = join(dir, "live.sock");
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(live, r));
    try {
      await expect(startMetricsServer(config({ metrics_socket: live }), { metrics: new CrioMetrics() })).rejects.toThrow(/already listening/);
      expect(existsSync(live)).toBe(true);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  test("a busy port is an error that leaves nothing listening", async () => {
    const first = await start(config());
    const sock = join(dir, "unused.sock");
    const err = await startMetricsServer(config({ metrics_port: first.address.port, metrics_socket: sock }), { metrics: new CrioMetrics() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`cannot serve metrics on 127.0.0.1:${first.address.port}`);
    expect(existsSync(sock)).toBe(false);
  });
});

describe("HTTPS", () => {
  test("with metrics_cert and metrics_key both listeners speak TLS", async () => {
    const cert = join(dir, "metrics.crt");
    const key = join(dir, "metrics.key");
    const r = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stdout: "pipe", stderr: "pipe" },
    );
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    const sock = join(dir, "tls.sock");
    const s = await start(config({ metrics_cert: cert, metrics_key: key, metrics_socket: sock }));
    expect(s.tls).toBe(true);
    const ca = await Bun.file(cert).text();
    const res = await fetch(`https://127.0.0.1:${s.address.port}/metrics`, { tls: { ca } });
    expect(await res.text()).toContain("container_runtime_crio_default_runtime");
    // Plain HTTP is not answered with metrics.
    const plain = await fetch(url(s)).then((x) => x.text(), (e: unknown) => String(e));
    expect(plain).not.toContain("container_runtime_crio_default_runtime");
    const overSocket = await fetch("https://localhost/metrics", { unix: sock, tls: { rejectUnauthorized: false } });
    expect(await overSocket.text()).toContain("container_runtime_crio_default_runtime");
  });

  test("cert and key files that do not exist are an error, not a fall-back to HTTP", async () => {
    const c = config({ metrics_cert: join(dir, "absent.crt"), metrics_key: join(dir, "absent.key") });
    await expect(startMetricsServer(c, { metrics: new CrioMetrics() })).rejects.toThrow(/does not exist/);
  });
});
