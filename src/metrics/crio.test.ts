// CRI-O's collectors: the 18 names, collector selection with and without prefixes, the recording
// helpers the hooks call, and the image pull helpers (byte counting, outcome, error labels).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALL_METRICS_COLLECTORS } from "../config/schema.ts";
import { NotFoundError } from "../errors.ts";
import {
  BlobNotFoundError,
  ManifestNotFoundError,
  RegistryUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
} from "../image/registry/errors.ts";
import { collectorName, CrioMetrics, exposedName, sizeBucket } from "./crio.ts";
import { renderText } from "./exposition.ts";
import { countPulledBytes, imagePullFailureLabel, observePull, recordLayerReused } from "./image-pull.ts";
import { Registry } from "./registry.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A /proc with no processes, so processes_defunct is 0 and deterministic. */
function emptyProc(): string {
  const d = mkdtempSync(join(tmpdir(), "crio-metrics-proc-"));
  dirs.push(d);
  return d;
}

function scrape(m: CrioMetrics, configured: readonly string[] = ALL_METRICS_COLLECTORS): string {
  return renderText(new Registry().register(...m.select(configured).collectors).collect());
}

describe("collectors", () => {
  test("one collector per entry of ALL_METRICS_COLLECTORS, in the same order, named container_runtime_crio_<name>", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    expect([...m.collectors.keys()]).toEqual([...ALL_METRICS_COLLECTORS]);
    for (const [name, c] of m.collectors) {
      expect(c.collect().map((f) => f.name)).toEqual([exposedName(name)]);
      expect(exposedName(name)).toBe(`container_runtime_crio_${name}`);
    }
  });

  test("names are matched with or without the crio_ and container_runtime_crio_ prefixes", () => {
    expect(collectorName("operations_total")).toBe("operations_total");
    expect(collectorName("crio_operations_total")).toBe("operations_total");
    expect(collectorName("container_runtime_crio_operations_total")).toBe("operations_total");
    const m = new CrioMetrics({ procRoot: emptyProc() });
    const { collectors, unknown } = m.select(["crio_operations_total", "container_runtime_crio_default_runtime", "processes_defunct", "bogus"]);
    expect(collectors).toEqual([m.processesDefunct, m.operationsTotal, m.defaultRuntime]);
    expect(unknown).toEqual(["bogus"]);
  });

  test("a collector left out is not scraped", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    m.recordOperation("Version", 0.001, false);
    expect(scrape(m)).toContain('container_runtime_crio_operations_total{operation="Version"} 1');
    const text = scrape(m, ALL_METRICS_COLLECTORS.filter((c) => c !== "operations_total"));
    expect(text).not.toContain("container_runtime_crio_operations_total");
    expect(text).toContain('container_runtime_crio_operations_latency_seconds{operation="Version"} 0.001');
  });

  test("a fresh instance exposes the unlabelled metrics at zero and no labelled series", () => {
    const text = scrape(new CrioMetrics({ procRoot: emptyProc() }));
    expect(text).toContain("container_runtime_crio_containers_oom_total 0\n");
    expect(text).toContain("container_runtime_crio_containers_events_dropped_total 0\n");
    expect(text).toContain("container_runtime_crio_image_pulls_success_total 0\n");
    expect(text).toContain("container_runtime_crio_processes_defunct 0\n");
    expect(text).toContain('container_runtime_crio_image_pulls_layer_size_bucket{le="1e+10"} 0\n');
    expect(text).not.toContain("container_runtime_crio_operations_total");
    expect(text).not.toContain("container_runtime_crio_resources_stalled_at_stage");
  });
});

describe("recording", () => {
  test("an operation: count, latest latency, summary, and errors only when it failed", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    m.recordOperation("RunPodSandbox", 0.25, false);
    m.recordOperation("RunPodSandbox", 0.5, true);
    const op = { operation: "RunPodSandbox" };
    expect(m.operationsTotal.value(op)).toBe(2);
    expect(m.operationsErrorsTotal.value(op)).toBe(1);
    expect(m.operationsLatencySeconds.value(op)).toBe(0.5);
    const text = scrape(m);
    expect(text).toContain('container_runtime_crio_operations_latency_seconds_total{operation="RunPodSandbox",quantile="0.5"} 0.25');
    expect(text).toContain('container_runtime_crio_operations_latency_seconds_total_count{operation="RunPodSandbox"} 2');
    expect(text).toContain("# TYPE container_runtime_crio_operations_latency_seconds_total summary");
    expect(text).toContain("# TYPE container_runtime_crio_operations_latency_seconds gauge");
  });

  test("an OOM kill counts in total and by name", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    m.recordOom("k8s_app_pod_ns_uid_0");
    m.recordOom("k8s_app_pod_ns_uid_0");
    expect(m.containersOomTotal.value()).toBe(2);
    expect(scrape(m)).toContain('container_runtime_crio_containers_oom_count_total{name="k8s_app_pod_ns_uid_0"} 2');
  });

  test("default_runtime names only the current default", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    m.setDefaultRuntime("runc");
    m.setDefaultRuntime("crun");
    const text = scrape(m);
    expect(text).toContain('container_runtime_crio_default_runtime{runtime="crun"} 1');
    expect(text).not.toContain('runtime="runc"');
  });

  test("processes_defunct counts the zombies of the given /proc", () => {
    const proc = emptyProc();
    const stat = (pid: number, comm: string, state: string) => {
      mkdirSync(join(proc, String(pid)));
      writeFileSync(join(proc, String(pid), "stat"), `${pid} (${comm}) ${state} 1 1 1 0 -1 4194560 0 0\n`);
    };
    stat(1, "init", "S");
    stat(2, "sh", "Z");
    stat(3, "odd) Z (name", "R"); // the name holds ") Z (": only the state after the last ")" counts
    stat(4, "x", "Z");
    const m = new CrioMetrics({ procRoot: proc });
    expect(scrape(m, ["processes_defunct"])).toContain("container_runtime_crio_processes_defunct 2\n");
  });
});

describe("image pull helpers", () => {
  test("sizeBucket uses CRI-O's bounds and names", () => {
    expect(sizeBucket(0)).toBe(">0 B");
    expect(sizeBucket(1000)).toBe(">0 B");
    expect(sizeBucket(1001)).toBe(">1 KiB");
    expect(sizeBucket(2_500_000)).toBe(">1 MiB");
    expect(sizeBucket(60e6)).toBe(">50 MiB");
    expect(sizeBucket(2e10)).toBe(">10 GiB");
  });

  test("countPulledBytes counts bytes as they pass and observes the layer size at the end", async () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: 3000 };
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(1000));
        c.enqueue(new Uint8Array(2000));
        c.close();
      },
    });
    const out = await new Response(src.pipeThrough(countPulledBytes(layer, m))).arrayBuffer();
    expect(out.byteLength).toBe(3000);
    expect(m.imagePullsBytesTotal.value({ mediatype: layer.mediaType, size: ">1 KiB" })).toBe(3000);
    const text = scrape(m);
    expect(text).toContain('container_runtime_crio_image_pulls_layer_size_bucket{le="1000"} 0');
    expect(text).toContain('container_runtime_crio_image_pulls_layer_size_bucket{le="1e+06"} 1');
    expect(text).toContain("container_runtime_crio_image_pulls_layer_size_count 1");
  });

  test("a download that fails counts what arrived and no layer size", async () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    const layer = { mediaType: "m", size: 5000 };
    let pulls = 0;
    const src = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulls++ === 0) c.enqueue(new Uint8Array(700));
        else c.error(new Error("connection reset"));
      },
    });
    await expect(new Response(src.pipeThrough(countPulledBytes(layer, m))).arrayBuffer()).rejects.toThrow();
    expect(m.imagePullsBytesTotal.value({ mediatype: "m", size: ">1 KiB" })).toBe(700);
    expect(scrape(m)).toContain("container_runtime_crio_image_pulls_layer_size_count 0");
  });

  test("a reused layer counts as reuse by name and as skipped bytes", () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    recordLayerReused("127.0.0.1:5000/test/busybox", { digest: "sha256:abc", size: 2e6 }, m);
    expect(m.imageLayerReuseTotal.value({ name: "127.0.0.1:5000/test/busybox@sha256:abc" })).toBe(1);
    expect(m.imagePullsSkippedBytesTotal.value({ size: ">1 MiB" })).toBe(2e6);
  });

  test("observePull counts successes and failures by label and passes results through", async () => {
    const m = new CrioMetrics({ procRoot: emptyProc() });
    expect(await observePull(Promise.resolve("id"), m)).toBe("id");
    const err = new ManifestNotFoundError("r", "repo", "tag");
    await expect(observePull(Promise.reject(err), m)).rejects.toBe(err);
    expect(m.imagePullsSuccessTotal.value()).toBe(1);
    expect(m.imagePullsFailureTotal.value({ error: "MANIFEST_UNKNOWN" })).toBe(1);
  });

  test.each([
    ["a 404 on the manifest", new ManifestNotFoundError("r:5000", "a/b", "latest"), "MANIFEST_UNKNOWN"],
    ["the registry's own code and message", new NotFoundError("pull failed: NAME_UNKNOWN: repository name not known to registry"), "NAME_UNKNOWN"],
    ["a 404 on a blob", new BlobNotFoundError("r", "a/b", "sha256:0"), "BLOB_UNKNOWN"],
    ["401", new UnauthorizedError("r", 401, "authentication failed by registry r: HTTP 401"), "UNAUTHORIZED"],
    ["401 without credentials", new UnauthorizedError("r", 401, "x: authentication required and no credentials are configured"), "UNAUTHORIZED"],
    ["403", new UnauthorizedError("r", 403, "access denied by registry r: HTTP 403"), "DENIED"],
    ["429", new TooManyRequestsError("r", "registry r answered 429 Too Many Requests"), "TOOMANYREQUESTS"],
    [
      "connection refused (Bun's fetch error as the cause)",
      new RegistryUnavailableError("r", "pinging container registry r: Unable to connect", {
        cause: Object.assign(new Error("Unable to connect. Is the computer able to access the url?"), { code: "ConnectionRefused" }),
      }),
      "CONNECTION_REFUSED",
    ],
    ["a timeout", new RegistryUnavailableError("r", "x", { cause: Object.assign(new Error("no response"), { code: "ETIMEDOUT" }) }), "CONNECTION_TIMEOUT"],
    ["not found, no registry code", new NotFoundError('image "x" not found'), "NOT_FOUND"],
    ["anything else", new Error("disk on fire"), "UNKNOWN"],
  ])("failure label: %s", (_what, err, label) => {
    expect(imagePullFailureLabel(err)).toBe(label);
  });
});
