// A pull that runs out of disk space fails with a clear error and leaves nothing behind: no
// image, no layer, no staging leftover, and the space it took is free again (a smaller image
// then pulls on the same file system). The daemon's storage root is a small tmpfs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { mkdirSync, readdirSync, readFileSync, existsSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { bigImage, busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, tempDir, type Daemon } from "./harness.ts";

let reg: TestRegistry;
let d: Daemon;
let dir: string;
const big = bigImage(40, { layerCount: 4, tag: "big" });
const small = busyboxImage({ layers: "single", tag: "small" });

beforeAll(async () => {
  reg = await startRegistry();
  await pushImage(reg.url, "test/big", big);
  await pushImage(reg.url, "test/small", small);
  dir = tempDir("crio-diskfull-");
  // The whole daemon directory (storage root included) on a 24 MiB tmpfs.
  const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", dir], { stderr: "pipe" });
  if (m.exitCode !== 0) throw new Error(`mount tmpfs: ${m.stderr.toString()}`);
  mkdirSync(join(dir, "state"));
  d = await startDaemon({ dir: join(dir, "state"), registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n` });
}, 60_000);

afterAll(async () => {
  await d?.cleanup();
  await reg?.stop();
  if (dir) {
    Bun.spawnSync(["umount", dir]);
    Bun.spawnSync(["rmdir", dir]);
  }
});

function used(): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

describe("disk full during PullImage", () => {
  test("fails naming the lack of space, stores nothing, frees what it wrote", async () => {
    const before = used();
    const err = await d.image.call("PullImage", { image: { image: `${reg.host}/test/big:big` } }, 60_000).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/no space left on device/i);
    expect((await d.image.call("ImageStatus", { image: { image: `${reg.host}/test/big:big` } })).image).toBeUndefined();
    const layersFile = join(d.root, "overlay-layers", "layers.json");
    const layers = existsSync(layersFile) ? (JSON.parse(readFileSync(layersFile, "utf8")) as unknown[]) : [];
    expect(layers).toEqual([]);
    expect(readdirSync(join(d.root, "overlay", ".crio-staging"))).toEqual([]);
    // Within a little of what was used before (metadata files may have appeared).
    expect(used() - before).toBeLessThan(1 << 20);
  });

  test("a smaller image then pulls on the same file system", async () => {
    const r = await d.image.call("PullImage", { image: { image: `${reg.host}/test/small:small` } }, 60_000);
    expect(r.imageRef).toBe(small.configDigest.replace("sha256:", ""));
  });
});
