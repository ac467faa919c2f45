// kill -9 of the daemon in the middle of a pull: after a restart on the same storage there is no
// image, no incomplete layer and no staging leftover, and the next pull succeeds.
//
// To stop the pull at a chosen point rather than at a lucky moment, the daemon pulls through a
// proxy on 127.0.0.1 that holds the last layer's blob half-sent until released: the other
// layers download and unpack into staging, the last one stays mid-stream. (Layers are committed
// only once all are staged, by renames; a kill inside a layer commit is covered by the storage
// tests, which kill a writer mid-populate.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bigImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

let reg: TestRegistry;
let proxy: ReturnType<typeof Bun.serve>;
let dir: string;
const big = bigImage(48, { layerCount: 4, tag: "crash" });
const lastLayer = big.layerDigests[big.layerDigests.length - 1]!;
let held = 0;
/** Set to hold the next request for the last layer's blob (one shot). */
let holdNext = false;
let release: () => void = () => {};

beforeAll(async () => {
  reg = await startRegistry();
  await pushImage(reg.url, "test/big", big);
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // A held response sends nothing for a while; do not let the server cut it.
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const upstream = await fetch(`${reg.url}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, redirect: "manual" });
      if (req.method !== "GET" || !url.pathname.endsWith(`/blobs/${lastLayer}`) || !holdNext) return upstream;
      holdNext = false;
      // Send half of the last layer, then wait.
      const body = new Uint8Array(await upstream.arrayBuffer());
      held++;
      const gate = new Promise<void>((r) => (release = r));
      const stream = new ReadableStream<Uint8Array>({
        async start(c) {
          c.enqueue(body.subarray(0, body.length >> 1));
          await gate;
          c.enqueue(body.subarray(body.length >> 1));
          c.close();
        },
      });
      return new Response(stream, { status: upstream.status, headers: upstream.headers });
    },
  });
  dir = tempDir("crio-crash-");
}, 120_000);

afterAll(async () => {
  release();
  proxy?.stop(true);
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface LayerRecord {
  id: string;
  "diff-digest"?: string;
  flags?: Record<string, unknown>;
}

function layersOnDisk(root: string): LayerRecord[] {
  const f = join(root, "overlay-layers", "layers.json");
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as LayerRecord[]) : [];
}

const daemon = () => startDaemon({ dir, registriesConf: `[[registry]]\nlocation = "127.0.0.1:${proxy.port}"\ninsecure = true\n` });
const name = () => `127.0.0.1:${proxy.port}/test/big:crash`;

/** After a kill: restart on the same state, check nothing half-made is visible, pull again. */
async function restartAndCheck(): Promise<void> {
  const d = await daemon();
  try {
    const status = await d.image.call("ImageStatus", { image: { image: name() } });
    expect(status.image).toBeUndefined();
    const layers = layersOnDisk(d.root);
    expect(layers.filter((l) => l.flags?.incomplete === true)).toEqual([]);
    for (const l of layers) expect(existsSync(join(d.root, "overlay", l.id, "diff"))).toBe(true);
    expect(readdirSync(join(d.root, "overlay", ".crio-staging"))).toEqual([]);
    const r = await d.image.call("PullImage", { image: { image: name() } }, 60_000);
    expect(r.imageRef).toBe(big.configDigest.replace("sha256:", ""));
    const after = layersOnDisk(d.root).map((l) => l["diff-digest"]);
    for (const diffId of big.layerDiffIds) expect(after).toContain(diffId);
    // Leave an empty store for the next case.
    await d.image.call("RemoveImage", { image: { image: r.imageRef } });
    expect(layersOnDisk(d.root)).toEqual([]);
  } finally {
    await d.cleanup();
  }
}

describe("kill -9 during PullImage", () => {
  test("killed as the pull starts", async () => {
    const d: Daemon = await daemon();
    try {
      const pull = d.image.call("PullImage", { image: { image: name() } }, 60_000).catch((e) => e);
      d.proc.kill("SIGKILL");
      await d.proc.exited;
      await pull;
    } finally {
      await d.cleanup();
    }
    // The proxy may hold the last blob for a request the dead daemon made.
    release();
    await restartAndCheck();
  }, 120_000);

  test("killed with the layers staged and the last one half-downloaded", async () => {
    const d: Daemon = await daemon();
    const heldBefore = held;
    holdNext = true;
    try {
      const pull = d.image.call("PullImage", { image: { image: name() } }, 60_000).catch((e) => e);
      // Every layer has a staging directory; the last is stuck mid-stream; nothing is committed.
      const stagingDir = join(d.root, "overlay", ".crio-staging");
      await waitFor(
        () => held > heldBefore && existsSync(stagingDir) && readdirSync(stagingDir).length === big.layerDigests.length,
        30_000,
        () => `pull did not reach the held layer; held ${held - heldBefore}; daemon log:\n${d.logs()}`,
      );
      await Bun.sleep(300);
      expect(layersOnDisk(d.root)).toEqual([]);
      d.proc.kill("SIGKILL");
      await d.proc.exited;
      await pull;
    } finally {
      await d.cleanup();
      release();
    }
    await restartAndCheck();
  }, 120_000);
});
