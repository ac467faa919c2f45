import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { bigDataFileName, layerIdFor, manifestBigDataKey, sha256Digest } from "./ids.ts";
import type { PopulateResult } from "./layers.ts";
import { Store } from "./store.ts";

const base = mkdtempSync(join(tmpdir(), "crio-storage-"));
const children: Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});

let n = 0;
function paths(): { root: string; runroot: string } {
  const d = join(base, `s${n++}`);
  return { root: join(d, "root"), runroot: join(d, "run") };
}

async function newStore(): Promise<Store> {
  return Store.open({ ...paths(), driver: "overlay" });
}

/** A populate callback writing `files` and reporting a DiffID derived from `tag`. */
function files(tag: string, content: Record<string, string> = { [tag]: tag }) {
  const diffDigest = sha256Digest(`tar of ${tag}`);
  return {
    diffDigest,
    populate: async (dir: string): Promise<PopulateResult> => {
      for (const [name, data] of Object.entries(content)) writeFileSync(join(dir, name), data);
      return { diffDigest, diffSize: 1024, uidset: [0, 0], gidset: [0] };
    },
  };
}

function mode(p: string): number {
  return statSync(p).mode & 0o7777;
}

function layersJson(store: Store): Record<string, unknown>[] {
  return JSON.parse(readFileSync(join(store.root, "overlay-layers", "layers.json"), "utf8")) as Record<string, unknown>[];
}

const enc = (s: string) => new TextEncoder().encode(s);

/** Creates a base layer and an image on it with manifest + config big data, as a pull would. */
async function pulledImage(store: Store, tag: string, names: string[], parent?: string) {
  const f = files(tag);
  const layer = await store.createLayer({ parent, uncompressedDigest: f.diffDigest }, f.populate);
  const config = JSON.stringify({ rootfs: { type: "layers", diff_ids: [f.diffDigest] }, tag });
  const configDigest = sha256Digest(config);
  const manifest = JSON.stringify({ schemaVersion: 2, config: { digest: configDigest }, tag });
  const manifestDigest = sha256Digest(manifest);
  const image = await store.createImage(
    { id: configDigest.slice(7), names, topLayer: layer.id, created: "2024-01-01T00:00:00Z", digest: manifestDigest },
    [
      { key: configDigest, data: enc(config) },
      { key: manifestBigDataKey(manifestDigest), data: enc(manifest) },
      { key: "manifest", data: enc(manifest) },
    ],
  );
  return { layer, image, manifestDigest, configDigest };
}

describe("open", () => {
  test("creates upstream's directories, modes and lock files", async () => {
    const store = await newStore();
    const { root, runroot } = store;
    for (const d of [root, join(root, "overlay"), join(root, "overlay-layers"), join(root, "overlay-images"), join(root, "overlay-containers")]) {
      expect(mode(d)).toBe(0o700);
    }
    for (const d of [runroot, join(runroot, "overlay"), join(runroot, "overlay-layers"), join(runroot, "overlay-containers"), join(runroot, "overlay-locks")]) {
      expect(mode(d)).toBe(0o700);
    }
    expect(mode(join(root, "overlay", "l"))).toBe(0o755);
    for (const f of ["storage.lock", "userns.lock", "overlay-layers/layers.lock", "overlay-images/images.lock", "overlay-containers/containers.lock", "overlay/.has-mount-program"]) {
      expect(existsSync(join(root, f))).toBe(true);
    }
    expect(readFileSync(join(root, "overlay", ".has-mount-program"), "utf8")).toBe("false");
    expect(existsSync(join(runroot, "overlay", "overlay-true"))).toBe(true); // the feature check passed and was cached
    expect(readdirSync(join(root, "overlay")).filter((e) => e.startsWith("compat"))).toEqual([]);
    expect(await store.layers()).toEqual([]);
    expect(await store.images()).toEqual([]);
  });

  test("refuses other drivers and unknown options; accepts overlay2", async () => {
    await expect(Store.open({ ...paths(), driver: "vfs" })).rejects.toThrow(/only "overlay"/);
    await expect(Store.open({ ...paths(), driver: "overlay", options: ["overlay.bogus=1"] })).rejects.toThrow(InvalidArgumentError);
    await expect(Store.open({ ...paths(), driver: "overlay", options: ["overlay.mount_program=/usr/bin/fuse-overlayfs"] })).rejects.toThrow(/mount_program/);
    const s = await Store.open({ ...paths(), driver: "overlay2", options: ["overlay.mountopt=nodev"] });
    expect(s.driverName).toBe("overlay");
    expect(s.driverOptions.mountOptions).toBe("nodev");
  });

  test("an empty driver name means overlay, unless the root holds another driver's data", async () => {
    expect((await Store.open({ ...paths(), driver: "" })).driverName).toBe("overlay");
    const p = paths();
    mkdirSync(join(p.root, "vfs", "dir"), { recursive: true });
    await expect(Store.open({ ...p, driver: "" })).rejects.toThrow(/vfs/);
  });

  test("refuses a root set up by podman with a mount program", async () => {
    const p = paths();
    mkdirSync(join(p.root, "overlay"), { recursive: true });
    writeFileSync(join(p.root, "overlay", ".has-mount-program"), "true");
    await expect(Store.open({ ...p, driver: "overlay" })).rejects.toThrow(FailedPreconditionError);
  });
});

describe("layers", () => {
  test("base and child layers: overlay layout and records", async () => {
    const store = await newStore();
    const a = files("a", { hello: "world" });
    const base1 = await store.createLayer({ uncompressedDigest: a.diffDigest, compressedDigest: sha256Digest("gz a"), compressedSize: 99, compression: 2 }, a.populate);
    expect(base1.id).toBe(layerIdFor(undefined, a.diffDigest));
    expect(base1.uncompressedDigest).toBe(a.diffDigest);
    expect(base1.uncompressedSize).toBe(1024);
    expect(base1.compressedDigest).toBe(sha256Digest("gz a"));
    expect(base1.uidset).toEqual([0]);
    expect(base1.flags).toEqual({});

    const b = files("b");
    const child = await store.createLayer({ parent: base1.id, uncompressedDigest: b.diffDigest }, b.populate);
    expect(child.id).toBe(layerIdFor(base1.id, b.diffDigest));
    expect(child.parent).toBe(base1.id);
    expect(child.compressedDigest).toBe(b.diffDigest); // no blob digest given: the stream's own
    const c = files("c");
    const grandchild = await store.createLayer({ parent: child.id, uncompressedDigest: c.diffDigest }, c.populate);

    const home = join(store.root, "overlay");
    const link = (id: string) => readFileSync(join(home, id, "link"), "utf8");
    for (const id of [base1.id, child.id, grandchild.id]) {
      expect(link(id)).toMatch(/^[A-Z2-7]{26}$/);
      expect(readlinkSync(join(home, "l", link(id)))).toBe(`../${id}/diff`);
      expect(mode(join(home, id))).toBe(0o700);
      expect(mode(join(home, id, "work"))).toBe(0o700);
      expect(mode(join(home, id, "merged"))).toBe(0o700);
      expect(mode(join(home, id, "link"))).toBe(0o644);
    }
    expect(mode(join(home, base1.id, "diff"))).toBe(0o555);
    expect(readFileSync(join(home, base1.id, "diff", "hello"), "utf8")).toBe("world");
    expect(existsSync(join(home, base1.id, "empty"))).toBe(true);
    expect(existsSync(join(home, base1.id, "lower"))).toBe(false);
    expect(existsSync(join(home, child.id, "empty"))).toBe(false);
    expect(readFileSync(join(home, child.id, "lower"), "utf8")).toBe(`l/${link(base1.id)}`);
    expect(readFileSync(join(home, grandchild.id, "lower"), "utf8")).toBe(`l/${link(child.id)}:l/${link(base1.id)}`);

    const recs = layersJson(store);
    expect(recs.map((r) => r.id)).toEqual([base1.id, child.id, grandchild.id]);
    expect(Object.keys(recs[0] as object)).toEqual([
      "id", "created", "compressed-diff-digest", "compressed-size", "diff-digest", "diff-size", "compression", "uidset", "gidset",
    ]);
    expect(mode(join(store.root, "overlay-layers", "layers.json"))).toBe(0o600);

    expect((await store.layerByUncompressedDigest(b.diffDigest))?.id).toBe(child.id);
    expect((await store.layerByCompressedDigest(sha256Digest("gz a")))?.id).toBe(base1.id);
    expect(await store.layerByUncompressedDigest(sha256Digest("nothing"))).toBeUndefined();
    expect((await store.layer(child.id.slice(0, 12)))?.id).toBe(child.id);
    expect(await store.layerDiffSize(child.id)).toBe(1024);
  });

  test("an existing layer with the same ID is returned without populating again", async () => {
    const store = await newStore();
    const a = files("a");
    const first = await store.createLayer({ uncompressedDigest: a.diffDigest }, a.populate);
    let called = false;
    const again = await store.createLayer({ uncompressedDigest: a.diffDigest }, async () => {
      called = true;
      throw new Error("must not run");
    });
    expect(called).toBe(false);
    expect(again.id).toBe(first.id);
    await expect(store.createLayer({ id: first.id, parent: first.id }, a.populate)).rejects.toThrow();
  });

  test("a failing populate or a DiffID mismatch leaves nothing behind", async () => {
    const store = await newStore();
    await expect(
      store.createLayer({}, async (dir) => {
        writeFileSync(join(dir, "x"), "x");
        throw new Error("network down");
      }),
    ).rejects.toThrow("network down");
    const a = files("a");
    await expect(store.createLayer({ uncompressedDigest: sha256Digest("other") }, a.populate)).rejects.toThrow(InvalidArgumentError);
    expect(await store.layers()).toEqual([]);
    expect(layersJson(store)).toEqual([]);
    expect(readdirSync(join(store.root, "overlay")).sort()).toEqual([".has-mount-program", "l"]);
    expect(readdirSync(join(store.root, "overlay", "l"))).toEqual([]);
  });

  test("the incomplete flag is on disk while populating; readers here neither wait nor see it", async () => {
    const store = await newStore();
    let onDisk: Record<string, unknown>[] = [];
    let listed: unknown[] = ["not run"];
    await store.createLayer({}, async () => {
      onDisk = layersJson(store);
      listed = await store.layers(); // would deadlock if it waited for the write lock
      return { diffDigest: sha256Digest("x"), diffSize: 0 };
    });
    expect(onDisk).toHaveLength(1);
    expect(onDisk[0]?.flags).toEqual({ incomplete: true });
    expect(listed).toEqual([]);
    expect((await store.layers()).length).toBe(1);
    expect(layersJson(store)[0]?.flags).toBeUndefined();
  });

  test("a layer left incomplete by a killed process is deleted on the next open", async () => {
    const p = paths();
    const first = await Store.open({ ...p, driver: "overlay" });
    const a = files("a");
    const parent = await first.createLayer({ uncompressedDigest: a.diffDigest }, a.populate);
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "testdata", "crash-child.ts"), p.root, p.runroot, parent.id], {
      stdout: "pipe",
      stderr: "inherit",
    });
    children.push(proc);
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`crash child exited early: ${out}`);
      out += new TextDecoder().decode(value);
    }
    const id = /POPULATING (\S+)/.exec(out)?.[1] as string;
    proc.kill("SIGKILL");
    await proc.exited;

    const home = join(p.root, "overlay");
    const rec = layersJson(first).find((r) => r.id === id);
    expect(rec?.flags).toEqual({ incomplete: true });
    expect(existsSync(join(home, id, "diff", "partial"))).toBe(true);
    const lid = readFileSync(join(home, id, "link"), "utf8");

    // The first store object has stale state; its next write cleans up, as a new open does.
    const reopened = await Store.open({ ...p, driver: "overlay" });
    expect((await reopened.layers()).map((l) => l.id)).toEqual([parent.id]);
    expect(layersJson(reopened).map((r) => r.id)).toEqual([parent.id]);
    expect(existsSync(join(home, id))).toBe(false);
    expect(existsSync(join(home, "l", lid))).toBe(false);
    expect(await first.layer("half-done")).toBeUndefined();
  });

  test("tar-split data is kept beside layers.json and goes with the layer", async () => {
    const store = await newStore();
    const split = new Uint8Array([0x1f, 0x8b, 1, 2, 3]);
    const layer = await store.createLayer({}, async () => ({ diffDigest: sha256Digest("t"), diffSize: 0, tarSplit: split }));
    const path = join(store.root, "overlay-layers", `${layer.id}.tar-split.gz`);
    expect(new Uint8Array(readFileSync(path))).toEqual(split);
    expect(mode(path)).toBe(0o600);
    await store.deleteLayer(layer.id);
    expect(existsSync(path)).toBe(false);
  });

  test("deleteLayer refuses layers in use and removes unused ones completely", async () => {
    const store = await newStore();
    const { layer } = await pulledImage(store, "a", ["localhost/a:1"]);
    const b = files("b");
    const child = await store.createLayer({ parent: layer.id, uncompressedDigest: b.diffDigest }, b.populate);
    await expect(store.deleteLayer(layer.id)).rejects.toThrow(FailedPreconditionError); // has a child
    const lid = readFileSync(join(store.root, "overlay", child.id, "link"), "utf8");
    await store.deleteLayer(child.id);
    expect(existsSync(join(store.root, "overlay", child.id))).toBe(false);
    expect(existsSync(join(store.root, "overlay", "l", lid))).toBe(false);
    await expect(store.deleteLayer(layer.id)).rejects.toThrow(/used by image/);
    await expect(store.deleteLayer("nope")).rejects.toThrow(NotFoundError);
  });
});

describe("images", () => {
  test("createImage writes the record and big data as containers/image does", async () => {
    const store = await newStore();
    const { image, layer, manifestDigest, configDigest } = await pulledImage(store, "a", ["docker.io/library/a:1"]);
    expect(image.id).toBe(configDigest.slice(7));
    expect(image.topLayer).toBe(layer.id);
    expect(image.digest).toBe(manifestDigest);
    expect(image.digests).toEqual([manifestDigest]);
    expect(image.names).toEqual(["docker.io/library/a:1"]);
    expect(image.namesHistory).toEqual(["docker.io/library/a:1"]);
    expect(image.bigDataNames).toEqual([configDigest, manifestBigDataKey(manifestDigest), "manifest"]);
    expect(image.bigDataDigests.manifest).toBe(manifestDigest);

    const dir = join(store.root, "overlay-images", image.id);
    expect(mode(dir)).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual([bigDataFileName(configDigest), bigDataFileName(manifestBigDataKey(manifestDigest)), "manifest"].sort());
    expect(mode(join(dir, "manifest"))).toBe(0o600);
    const manifest = new TextDecoder().decode(await store.imageBigData(image.id, "manifest"));
    expect(sha256Digest(manifest)).toBe(manifestDigest);
    await expect(store.imageBigData(image.id, "nope")).rejects.toThrow(NotFoundError);

    const raw = JSON.parse(readFileSync(join(store.root, "overlay-images", "images.json"), "utf8")) as Record<string, unknown>[];
    expect(Object.keys(raw[0] as object)).toEqual([
      "id", "digest", "names", "names-history", "layer", "big-data-names", "big-data-sizes", "big-data-digests", "created",
    ]);
    expect(raw[0]?.digests).toBeUndefined();
  });

  test("lookup by ID, prefix, name, manifest digest and sha256:<id>", async () => {
    const store = await newStore();
    const a = await pulledImage(store, "a", ["localhost/a:1"]);
    const b = await pulledImage(store, "b", ["localhost/b:1"]);
    for (const ref of [a.image.id, a.image.id.slice(0, 10), "localhost/a:1", a.manifestDigest, `sha256:${a.image.id}`]) {
      expect((await store.image(ref))?.id).toBe(a.image.id);
    }
    expect(await store.image("localhost/none:1")).toBeUndefined();
    // A prefix shared by both IDs (the empty common prefix aside) is ambiguous.
    let common = 0;
    while (a.image.id[common] === b.image.id[common]) common++;
    if (common > 0) await expect(store.image(a.image.id.slice(0, common))).rejects.toThrow(InvalidArgumentError);
    expect((await store.imagesByDigest(b.manifestDigest)).map((i) => i.id)).toEqual([b.image.id]);
  });

  test("ambiguous prefix is an InvalidArgumentError", async () => {
    const store = await newStore();
    const f = files("x");
    const layer = await store.createLayer({}, f.populate);
    await store.createImage({ id: `abc${"0".repeat(61)}`, topLayer: layer.id }, []);
    await store.createImage({ id: `abd${"0".repeat(61)}`, topLayer: layer.id }, []);
    await expect(store.image("ab")).rejects.toThrow(InvalidArgumentError);
    expect((await store.image("abc"))?.id).toBe(`abc${"0".repeat(61)}`);
  });

  test("names move from image to image; add and remove keep a names history", async () => {
    const store = await newStore();
    const a = await pulledImage(store, "a", ["localhost/app:latest", "localhost/app:1"]);
    const b = await pulledImage(store, "b", ["localhost/app:latest"]);
    expect((await store.image(a.image.id))?.names).toEqual(["localhost/app:1"]);
    expect((await store.image("localhost/app:latest"))?.id).toBe(b.image.id);

    const added = await store.addNames(a.image.id, ["localhost/app:latest", "localhost/app:2"]);
    expect(added.names).toEqual(["localhost/app:latest", "localhost/app:2", "localhost/app:1"]);
    expect(added.namesHistory[0]).toBe("localhost/app:1");
    expect((await store.image(b.image.id))?.names).toEqual([]);
    expect((await store.image(b.image.id))?.namesHistory).toEqual(["localhost/app:latest"]);

    const removed = await store.removeNames(a.image.id, ["localhost/app:2"]);
    expect(removed.names).toEqual(["localhost/app:latest", "localhost/app:1"]);
    expect(removed.namesHistory).toContain("localhost/app:2");
    await expect(store.addNames("nope", ["x"])).rejects.toThrow(NotFoundError);
  });

  test("createImage is atomic: a failure midway leaves no image and no directory", async () => {
    const store = await newStore();
    const f = files("x");
    const layer = await store.createLayer({}, f.populate);
    const id = "e".repeat(64);
    await expect(
      store.createImage({ id, topLayer: layer.id }, [
        { key: "manifest", data: enc("{}") },
        { key: "x".repeat(300), data: enc("too long a file name") },
      ]),
    ).rejects.toThrow();
    expect(await store.images()).toEqual([]);
    expect(existsSync(join(store.root, "overlay-images", id))).toBe(false);
    await expect(store.createImage({ id, topLayer: "missing" }, [])).rejects.toThrow(NotFoundError);
  });

  test("createImage on an existing ID updates it; a different top layer is refused", async () => {
    const store = await newStore();
    const a = await pulledImage(store, "a", ["localhost/a:1"]);
    const again = await store.createImage({ id: a.image.id, names: ["localhost/a:2"], topLayer: a.layer.id }, [
      { key: "signature-x", data: enc("sig") },
    ]);
    expect(again.names).toEqual(["localhost/a:2", "localhost/a:1"]);
    expect(again.bigDataNames).toContain("signature-x");
    expect(again.bigDataNames).toContain("manifest");
    const other = files("other");
    const l2 = await store.createLayer({}, other.populate);
    await expect(store.createImage({ id: a.image.id, topLayer: l2.id }, [])).rejects.toThrow(AlreadyExistsError);
  });

  test("deleteImage removes layers nothing else uses, top-most first", async () => {
    const store = await newStore();
    const base1 = await pulledImage(store, "base", ["localhost/base:1"]);
    const c = files("c");
    const appLayer = await store.createLayer({ parent: base1.layer.id, uncompressedDigest: c.diffDigest }, c.populate);
    const app = await store.createImage({ id: "f".repeat(64), names: ["localhost/app:1"], topLayer: appLayer.id }, []);

    // The base image's layer is the app layer's parent: deleting the base image keeps it.
    expect(await store.deleteImage(base1.image.id, { deleteLayers: true })).toEqual({ id: base1.image.id, layers: [] });
    expect(existsSync(join(store.root, "overlay-images", base1.image.id))).toBe(false);
    expect((await store.layers()).length).toBe(2);

    const res = await store.deleteImage("localhost/app:1", { deleteLayers: true });
    expect(res).toEqual({ id: app.id, layers: [appLayer.id, base1.layer.id] });
    expect(await store.layers()).toEqual([]);
    expect(await store.images()).toEqual([]);
    await expect(store.deleteImage("localhost/app:1")).rejects.toThrow(NotFoundError);
  });

  test("deleteImage keeps a layer another image tops, and refuses images containers use", async () => {
    const store = await newStore();
    const a = await pulledImage(store, "a", ["localhost/a:1"]);
    await store.createImage({ id: "9".repeat(64), names: ["localhost/alias:1"], topLayer: a.layer.id }, []);
    expect((await store.deleteImage(a.image.id)).layers).toEqual([]);
    expect((await store.layers()).length).toBe(1);

    // A container (as podman records it) using the alias image.
    writeFileSync(
      join(store.root, "overlay-containers", "containers.json"),
      JSON.stringify([{ id: "c".repeat(64), names: ["web"], image: "9".repeat(64), layer: "d".repeat(64), created: "2024-01-01T00:00:00Z" }]),
    );
    expect((await store.containers()).map((c) => c.names)).toEqual([["web"]]);
    await expect(store.deleteImage("9".repeat(64))).rejects.toThrow(/in use by container/);
  });
});

describe("sharing one store", () => {
  test("a second store object (another process's view) sees writes through the lock token", async () => {
    const p = paths();
    const one = await Store.open({ ...p, driver: "overlay" });
    const two = await Store.open({ ...p, driver: "overlay" });
    expect(await two.images()).toEqual([]);
    const a = await pulledImage(one, "a", ["localhost/a:1"]);
    expect((await two.image("localhost/a:1"))?.id).toBe(a.image.id);
    await two.addNames(a.image.id, ["localhost/a:2"]);
    expect((await one.image("localhost/a:2"))?.id).toBe(a.image.id);
    await one.deleteImage(a.image.id);
    expect(await two.images()).toEqual([]);
    expect(await two.layers()).toEqual([]);
  });

  test("fields this code does not know survive a rewrite", async () => {
    const store = await newStore();
    const a = await pulledImage(store, "a", ["localhost/a:1"]);
    const path = join(store.root, "overlay-images", "images.json");
    const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>[];
    (raw[0] as Record<string, unknown>)["future-field"] = { x: 1 };
    writeFileSync(path, JSON.stringify(raw)); // a hand edit: noticed by its modification time
    await store.addNames(a.image.id, ["localhost/a:2"]);
    const after = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>[];
    expect(after[0]?.["future-field"]).toEqual({ x: 1 });
    expect(after[0]?.names).toEqual(["localhost/a:2", "localhost/a:1"]);
  });

  test("diskUsage counts layer contents and metadata", async () => {
    const store = await newStore();
    await pulledImage(store, "a", ["localhost/a:1"]);
    const usage = await store.diskUsage();
    expect(usage.imageStore.mountpoint).toBe(join(store.root, "overlay-images"));
    expect(usage.imageStore.bytes).toBeGreaterThan(0);
    expect(usage.imageStore.inodes).toBeGreaterThan(5);
    expect(usage.containerStore.inodes).toBeGreaterThan(0);
    expect(lstatSync(join(store.root, "overlay")).isDirectory()).toBe(true);
  });
});
