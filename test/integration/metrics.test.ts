// Prometheus metrics end to end: the compiled daemon with enable_metrics serves /metrics on
// 127.0.0.1:<metrics_port> (and on metrics_socket), counts the RPCs it answers and the image
// pulls it makes from a local docker-registry, exposes only the collectors metrics_collectors
// names, and listens nowhere with enable_metrics off.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALL_METRICS_COLLECTORS } from "../../src/config/schema.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, type Daemon } from "./harness.ts";

/** A 127.0.0.1 port nothing listens on right now. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** `name{labels} value` lines of a scrape, parsed; labels as written (sorted by name). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const metricsToml = (lines: string[]) => ["[crio.metrics]", ...lines, ""].join("\n");

let reg: TestRegistry;
const image = busyboxImage({ format: "oci", compression: "gzip", layers: "single", tag: "metrics" });
const layerMediaType = image.layers[0]!.mediaType;
const daemons: Daemon[] = [];

beforeAll(async () => {
  reg = await startRegistry();
  await pushImage(reg.url, "test/metrics", image);
}, 30_000);

afterAll(async () => {
  for (const d of daemons) await d.cleanup();
  await reg?.stop();
});

async function daemon(config: string): Promise<Daemon> {
  const d = await startDaemon({
    config,
    registriesConf: [`[[registry]]`, `location = "${reg.host}"`, `insecure = true`, ``].join("\n"),
  });
  daemons.push(d);
  return d;
}

describe("enable_metrics on metrics_port", () => {
  let d: Daemon;
  let port: number;
  // Every collector but containers_oom_total (an unlabelled counter, present at 0 when enabled),
  // some spelled with a prefix.
  const collectors = ALL_METRICS_COLLECTORS.filter((c) => c !== "containers_oom_total").map((c, i) =>
    i % 3 === 0 ? `crio_${c}` : i % 3 === 1 ? `container_runtime_crio_${c}` : c,
  );

  beforeAll(async () => {
    port = await freePort();
    d = await daemon(
      metricsToml([`enable_metrics = true`, `metrics_port = ${port}`, `metrics_collectors = ${JSON.stringify(collectors)}`]),
    );
  }, 20_000);

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return res.text();
  };

  test("RPCs are counted by operation; failures also as errors", async () => {
    await d.runtime.call("Version", {});
    await d.runtime.call("Version", {});
    const err = await d.runtime.call("ContainerStatus", { containerId: "doesnotexist" }).catch((e: grpc.ServiceError) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    const text = await scrape();
    const s = samples(text);
    // The harness's readiness probe calls Version too.
    expect(s.get('container_runtime_crio_operations_total{operation="Version"}')).toBeGreaterThanOrEqual(2);
    expect(s.get('container_runtime_crio_operations_total{operation="ContainerStatus"}')).toBe(1);
    expect(s.get('container_runtime_crio_operations_errors_total{operation="ContainerStatus"}')).toBe(1);
    expect(s.has('container_runtime_crio_operations_errors_total{operation="Version"}')).toBe(false);
    expect(s.get('container_runtime_crio_operations_latency_seconds{operation="Version"}')).toBeGreaterThan(0);
    expect(s.get('container_runtime_crio_operations_latency_seconds_total_count{operation="ContainerStatus"}')).toBe(1);
    expect(s.has('container_runtime_crio_operations_latency_seconds_total{operation="Version",quantile="0.99"}')).toBe(true);
    expect(text).toContain("# TYPE container_runtime_crio_operations_latency_seconds_total summary\n");
  });

  test("image pulls: bytes by media type and size, layer size, success, reuse, and failures by error", async () => {
    const name = `${reg.host}/test/metrics:metrics`;
    await d.image.call("PullImage", { image: { image: name } }, 30_000);
    await d.image.call("PullImage", { image: { image: name } }, 30_000); // every layer is there now
    const missing = await d.image.call("PullImage", { image: { image: `${reg.host}/test/metrics:nosuchtag` } }, 30_000).catch((e: grpc.ServiceError) => e);
    expect(missing.code).toBe(grpc.status.NOT_FOUND);

    const s = samples(await scrape());
    const layer = image.layers[0]!;
    const bucket = layer.size > 1e6 ? ">1 MiB" : ">1 KiB";
    expect(s.get(`container_runtime_crio_image_pulls_bytes_total{mediatype="${layerMediaType}",size="${bucket}"}`)).toBe(layer.size);
    expect(s.get("container_runtime_crio_image_pulls_layer_size_count")).toBe(1);
    expect(s.get("container_runtime_crio_image_pulls_layer_size_sum")).toBe(layer.size);
    expect(s.get('container_runtime_crio_image_pulls_layer_size_bucket{le="+Inf"}')).toBe(1);
    expect(s.get("container_runtime_crio_image_pulls_success_total")).toBe(2);
    expect(s.get(`container_runtime_crio_image_layer_reuse_total{name="${reg.host}/test/metrics@${layer.digest}"}`)).toBe(1);
    expect(s.get(`container_runtime_crio_image_pulls_skipped_bytes_total{size="${bucket}"}`)).toBe(layer.size);
    expect(s.get('container_runtime_crio_image_pulls_failure_total{error="MANIFEST_UNKNOWN"}')).toBe(1);
  });

  test("default_runtime, processes_defunct and the process metrics", async () => {
    const s = samples(await scrape());
    expect(s.get('container_runtime_crio_default_runtime{runtime="runc"}')).toBe(1);
    expect(s.get("container_runtime_crio_processes_defunct")).toBeGreaterThanOrEqual(0);
    expect(s.get("process_resident_memory_bytes")).toBeGreaterThan(1e6);
    expect(s.get("process_open_fds")).toBeGreaterThan(3);
    expect(s.get("process_start_time_seconds")).toBeLessThanOrEqual(Date.now() / 1000);
    expect(s.has("process_cpu_seconds_total")).toBe(true);
  });

  test("a collector left out of metrics_collectors is absent; the others are there", async () => {
    const text = await scrape();
    expect(text).not.toContain("container_runtime_crio_containers_oom_total");
    expect(text).toContain("# TYPE container_runtime_crio_containers_events_dropped_total counter\n");
    expect(text).toContain("container_runtime_crio_image_pulls_success_total");
  });

  test("the daemon stops cleanly and the port is released", async () => {
    expect(await d.stop()).toBe(0);
    expect(await canConnect(port)).toBe(false);
  });
});

describe("metrics_socket", () => {
  test("metrics are served on the unix socket as well as the port", async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "crio-metrics-sock-"));
    const sock = join(dir, "metrics.sock");
    try {
      const d = await daemon(metricsToml([`enable_metrics = true`, `metrics_port = ${port}`, `metrics_socket = "${sock}"`]));
      await d.runtime.call("Version", {});
      const text = await (await fetch("http://localhost/metrics", { unix: sock })).text();
      expect(samples(text).get('container_runtime_crio_operations_total{operation="Version"}')).toBeGreaterThanOrEqual(1);
      // All collectors by default: containers_oom_total is there at 0.
      expect(samples(text).get("container_runtime_crio_containers_oom_total")).toBe(0);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
      expect(await d.stop()).toBe(0);
      expect(existsSync(sock)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("enable_metrics = false", () => {
  test("nothing listens on metrics_port", async () => {
    const port = await freePort();
    const d = await daemon(metricsToml([`enable_metrics = false`, `metrics_port = ${port}`]));
    await d.runtime.call("Version", {});
    expect(await canConnect(port)).toBe(false);
    expect(d.logs()).not.toContain("Serving metrics");
  });
});
