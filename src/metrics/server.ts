// The metrics endpoint (CRI-O's Metrics.Start): GET /metrics on metrics_host:metrics_port and,
// when metrics_socket is set, on that unix socket too; over HTTPS on both when metrics_cert and
// metrics_key are set. Served: the collectors metrics_collectors selects, plus the process_*
// metrics every Go program (CRI-O included) exposes.
//
// Not done (CRI-O does): generating a self-signed certificate when metrics_cert and metrics_key
// name files that do not exist (here that is a start-up error, never a fall-back to plain HTTP),
// and reloading the certificate when its files change (here on restart).
import { chmodSync, existsSync, readFileSync, unlinkSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import type { Config } from "../config/index.ts";
import { log } from "../log.ts";
import { clearStaleSocket } from "../server/listen.ts";
import { crioMetrics, type CrioMetrics } from "./crio.ts";
import { CONTENT_TYPE, renderText } from "./exposition.ts";
import { ProcessCollector } from "./process.ts";
import { Registry } from "./registry.ts";

export interface MetricsServer {
  /** Where the TCP listener is bound (the port the kernel chose when metrics_port is 0). */
  address: { host: string; port: number };
  /** The unix socket, when metrics_socket is set. */
  socket: string | undefined;
  tls: boolean;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** The metrics to serve (default: the daemon's crioMetrics). */
  metrics?: CrioMetrics;
  /** Root of the process metrics (default /proc). */
  procRoot?: string;
}

/** The /metrics handler over `registry`; anything else is 404, other methods 405. */
export function metricsHandler(registry: Registry): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("404 page not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
      return;
    }
    let body: string;
    try {
      body = renderText(registry.collect());
    } catch (err) {
      log.error("cannot render metrics", { error: err });
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("error gathering metrics\n");
      return;
    }
    // Prometheus asks for gzip; a scrape of a busy node compresses about tenfold.
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const payload = gzip ? gzipSync(body) : Buffer.from(body);
    res.writeHead(200, {
      "content-type": CONTENT_TYPE,
      "content-length": payload.length,
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : payload);
  };
}

function listen(server: http.Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve();
    };
    if ("path" in target) server.listen(target.path, done);
    // An empty metrics_host means every interface, as Go's net.Listen(":port") does.
    else server.listen(target.port, target.host === "" ? undefined : target.host, done);
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts serving metrics when enable_metrics is set; undefined when it is not. Throws when a
 * listener cannot be bound or the TLS files cannot be used (nothing is left listening then).
 */
export async function startMetricsServer(config: Config, opts: MetricsServerOptions = {}): Promise<MetricsServer | undefined> {
  const mc = config.metrics;
  if (!mc.enable_metrics) return undefined;
  const metrics = opts.metrics ?? crioMetrics;
  metrics.setDefaultRuntime(config.runtime.default_runtime);
  const { collectors, unknown } = metrics.select(mc.metrics_collectors);
  for (const u of unknown) log.warn(`metrics_collectors: unknown collector ${JSON.stringify(u)} ignored`);
  const registry = new Registry().register(...collectors, new ProcessCollector(opts.procRoot));
  const handler = metricsHandler(registry);

  const useTls = mc.metrics_cert !== "" && mc.metrics_key !== "";
  let tlsFiles: { cert: Buffer; key: Buffer } | undefined;
  if (useTls) {
    for (const f of [mc.metrics_cert, mc.metrics_key]) {
      if (!existsSync(f)) {
        throw new Error(`metrics TLS file ${f} does not exist (generating a self-signed certificate is not supported; create both files or unset metrics_cert and metrics_key)`);
      }
    }
    tlsFiles = { cert: readFileSync(mc.metrics_cert), key: readFileSync(mc.metrics_key) };
  }
  const create = (): http.Server =>
    tlsFiles ? https.createServer({ ...tlsFiles, minVersion: "TLSv1.2" }, handler) : http.createServer(handler);

  const servers: http.Server[] = [];
  let ownSocket = false; // never unlink a socket another process listens on
  const closeAll = async () => {
    await Promise.all(servers.map(closeServer));
    if (ownSocket) {
      try {
        unlinkSync(mc.metrics_socket);
      } catch {
        // not created, or already gone
      }
    }
  };
  const scheme = useTls ? "HTTPS" : "HTTP";
  try {
    const tcp = create();
    servers.push(tcp);
    await listen(tcp, { host: mc.metrics_host, port: mc.metrics_port });
    const addr = tcp.address() as AddressInfo;
    log.info(`Serving metrics on ${addr.address}:${addr.port} via ${scheme}`);
    if (mc.metrics_socket !== "") {
      await clearStaleSocket(mc.metrics_socket);
      const unix = create();
      servers.push(unix);
      await listen(unix, { path: mc.metrics_socket });
      ownSocket = true;
      chmodSync(mc.metrics_socket, 0o660);
      log.info(`Serving metrics on ${mc.metrics_socket} via ${scheme}`);
    }
    return { address: { host: addr.address, port: addr.port }, socket: mc.metrics_socket || undefined, tls: useTls, close: closeAll };
  } catch (err) {
    await closeAll();
    const where = `${mc.metrics_host}:${mc.metrics_port}${mc.metrics_socket ? ` / ${mc.metrics_socket}` : ""}`;
    throw new Error(`cannot serve metrics on ${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
