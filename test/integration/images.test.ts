// The CRI ImageService end to end: the compiled daemon pulls from Debian's docker-registry on
// 127.0.0.1 (images built here from busybox-static) into its own containers-storage root.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage, multiArchIndex, hostArch, maliciousLayers, assembleImage, layerFromTar } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, type Daemon } from "./harness.ts";

let reg: TestRegistry;
let d: Daemon;
const multi = busyboxImage({ format: "oci", compression: "gzip", layers: "multi", tag: "multi" });
const single = busyboxImage({ format: "docker", compression: "gzip", layers: "single", tag: "1.0" });
const zstd = busyboxImage({ format: "oci", compression: "zstd", layers: "single", tag: "zstd", config: { Labels: { compression: "zstd" } } });
const index = multiArchIndex({ tag: "multiarch" });

beforeAll(async () => {
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", multi);
  await pushImage(reg.url, "test/busybox", single);
  await pushImage(reg.url, "test/busybox", zstd);
  await pushImage(reg.url, "test/multiarch", index);
  await pushImage(reg.url, "library/shorty", single);
  d = await startDaemon({
    registriesConf: [
      `unqualified-search-registries = ["${reg.host}"]`,
      `short-name-mode = "enforcing"`,
      `[[registry]]`,
      `location = "${reg.host}"`,
      `insecure = true`,
      ``,
    ].join("\n"),
    config: `[crio.image]\npinned_images = ["${reg.host}/test/busybox:1.0"]\n`,
  });
}, 60_000);

afterAll(async () => {
  await d?.cleanup();
  await reg?.stop();
});

const pull = (image: string, extra: object = {}) => d.image.call("PullImage", { image: { image }, ...extra }, 60_000);
const status = (image: string, verbose = false) => d.image.call("ImageStatus", { image: { image }, verbose });

describe("PullImage", () => {
  test("a multi-layer OCI image: ID is the config digest, layers land in containers-storage", async () => {
    const r = await pull(`${reg.host}/test/busybox:multi`);
    expect(r.imageRef).toBe(multi.configDigest.replace("sha256:", ""));
    const layers = JSON.parse(readFileSync(join(d.root, "overlay-layers", "layers.json"), "utf8")) as { "diff-digest": string; incomplete?: boolean; flags?: object }[];
    const diffs = layers.map((l) => l["diff-digest"]);
    for (const id of multi.layerDiffIds) expect(diffs).toContain(id);
    const images = JSON.parse(readFileSync(join(d.root, "overlay-images", "images.json"), "utf8")) as { id: string; names: string[] }[];
    expect(images.find((i) => i.id === r.imageRef)?.names).toEqual([`${reg.host}/test/busybox:multi`]);
    // No staging leftovers.
    expect(readdirSync(join(d.root, "overlay", ".crio-staging"))).toEqual([]);
  });

  test("ImageStatus by name, full ID, ID prefix and digest reference", async () => {
    const id = multi.configDigest.replace("sha256:", "");
    for (const name of [`${reg.host}/test/busybox:multi`, id, id.slice(0, 12), `sha256:${id}`, `${reg.host}/test/busybox@${multi.manifestDigest}`]) {
      const s = await status(name);
      expect(s.image?.id, name).toBe(id);
    }
    const s = await status(id, true);
    expect(s.image.repoTags).toEqual([`${reg.host}/test/busybox:multi`]);
    expect(s.image.repoDigests).toEqual([`${reg.host}/test/busybox@${multi.manifestDigest}`]);
    expect(s.image.uid?.value).toBe(1000n);
    expect(s.image.username).toBe("");
    expect(s.image.size).toBeGreaterThan(BigInt(multi.layers.reduce((a, l) => a + l.tar.length, 0) / 2));
    expect(s.image.pinned).toBe(false);
    const info = JSON.parse(s.info.info);
    expect(info.imageSpec.config.User).toBe("1000");
    expect(info.imageSpec.rootfs.diff_ids).toEqual(multi.layerDiffIds);
  });

  test("a missing image is an empty ImageStatus, not an error", async () => {
    const s = await status(`${reg.host}/test/nothing:here`);
    expect(s.image).toBeUndefined();
  });

  test("Docker schema 2, zstd layers, and a short name through unqualified-search-registries", async () => {
    expect((await pull(`${reg.host}/test/busybox:1.0`)).imageRef).toBe(single.configDigest.replace("sha256:", ""));
    expect((await pull(`${reg.host}/test/busybox:zstd`)).imageRef).toBe(zstd.configDigest.replace("sha256:", ""));
    expect((await pull("library/shorty:1.0")).imageRef).toBe(single.configDigest.replace("sha256:", ""));
    // The same image under a second name: both names listed, one image.
    const s = await status("library/shorty:1.0");
    expect(s.image.repoTags.sort()).toEqual([`${reg.host}/library/shorty:1.0`, `${reg.host}/test/busybox:1.0`].sort());
  });

  test("a multi-arch index resolves to the host's platform", async () => {
    const r = await pull(`${reg.host}/test/multiarch:multiarch`);
    const mine = index.platforms.find((p) => p.architecture === hostArch())!;
    expect(r.imageRef).toBe(mine.image.configDigest.replace("sha256:", ""));
    const s = await status(`${reg.host}/test/multiarch:multiarch`);
    // repo digests name both the index and the platform manifest.
    expect(s.image.repoDigests).toContain(`${reg.host}/test/multiarch@${index.manifestDigest}`);
  });

  test("concurrent pulls of one image share one download and agree", async () => {
    const img = busyboxImage({ format: "oci", compression: "gzip", layers: "multi", tag: "concurrent", config: { Labels: { n: "concurrent" } } });
    await pushImage(reg.url, "test/concurrent", img);
    const rs = await Promise.all(Array.from({ length: 5 }, () => pull(`${reg.host}/test/concurrent:concurrent`)));
    expect(new Set(rs.map((r) => r.imageRef)).size).toBe(1);
  });

  test("pulling again reuses every layer (no layer is written twice)", async () => {
    const before = readFileSync(join(d.root, "overlay-layers", "layers.json"), "utf8");
    await pull(`${reg.host}/test/busybox:multi`);
    expect(readFileSync(join(d.root, "overlay-layers", "layers.json"), "utf8")).toBe(before);
  });
});

describe("pull errors", () => {
  test("an unknown image is NOT_FOUND naming the reference and where it was looked for", async () => {
    const err = await pull(`${reg.host}/test/nothing:here`).catch((e) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain("test/nothing:here");
    expect(err.details).toContain(reg.host);
  });

  test("a malformed reference is INVALID_ARGUMENT", async () => {
    // (An upper-case first component would be a registry host, as in distribution/reference.)
    for (const bad of ["lower/Upper", "a:b:c:d", "", "x@sha256:123", "a b"]) {
      const err = await pull(bad).catch((e) => e);
      expect(err.code, bad).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });

  for (const kind of ["symlink-write-through", "hardlink-etc-shadow", "dotdot-path"]) {
    test(`a layer that escapes its root (${kind}) is refused, and nothing is stored`, async () => {
      const evil = maliciousLayers("/tmp/crio-escape-probe")[kind]!;
      expect(evil.expect).toBe("refused");
      const img = assembleImage([layerFromTar(evil.tar, "oci", "gzip")], { tag: kind });
      await pushImage(reg.url, "test/evil", img);
      const err = await pull(`${reg.host}/test/evil:${kind}`).catch((e) => e);
      expect(err.code).toBeDefined();
      expect(err.details).toContain("layer");
      expect(existsSync("/tmp/crio-escape-probe")).toBe(false);
      expect((await status(`${reg.host}/test/evil:${kind}`)).image).toBeUndefined();
      const layers = JSON.parse(readFileSync(join(d.root, "overlay-layers", "layers.json"), "utf8")) as { "diff-digest": string }[];
      expect(layers.map((l) => l["diff-digest"])).not.toContain(img.layerDiffIds[0]);
      expect(readdirSync(join(d.root, "overlay", ".crio-staging"))).toEqual([]);
    });
  }
});

describe("ListImages, RemoveImage, ImageFsInfo", () => {
  test("ListImages lists every image; a filter selects one", async () => {
    const all = (await d.image.call("ListImages", {})).images;
    const ids = all.map((i: any) => i.id);
    expect(ids).toContain(multi.configDigest.replace("sha256:", ""));
    expect(ids).toContain(single.configDigest.replace("sha256:", ""));
    const one = (await d.image.call("ListImages", { filter: { image: { image: `${reg.host}/test/busybox:multi` } } })).images;
    expect(one.map((i: any) => i.id)).toEqual([multi.configDigest.replace("sha256:", "")]);
    const streamed = (await d.image.stream("StreamImages", {})).flatMap((m: any) => m.images.map((i: any) => i.id));
    expect(streamed.sort()).toEqual(ids.sort());
  });

  test("pinned images are reported and never removed", async () => {
    const s = await status(`${reg.host}/test/busybox:1.0`);
    expect(s.image.pinned).toBe(true);
    const err = await d.image.call("RemoveImage", { image: { image: s.image.id } }).catch((e) => e);
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await status(s.image.id)).image?.id).toBe(s.image.id);
  });

  test("RemoveImage by one of two tags removes the tag; by ID the image; unknown succeeds", async () => {
    const img = busyboxImage({ format: "oci", compression: "gzip", layers: "single", tag: "a", config: { Labels: { n: "rm" } } });
    await pushImage(reg.url, "test/rm", img);
    await pushImage(reg.url, "test/rm", { ...img, manifests: img.manifests.map((m) => ({ ...m, reference: "b" })) });
    const id = (await pull(`${reg.host}/test/rm:a`)).imageRef;
    await pull(`${reg.host}/test/rm:b`);
    expect((await status(id)).image.repoTags.length).toBe(2);
    await d.image.call("RemoveImage", { image: { image: `${reg.host}/test/rm:a` } });
    expect((await status(id)).image.repoTags).toEqual([`${reg.host}/test/rm:b`]);
    await d.image.call("RemoveImage", { image: { image: id } });
    expect((await status(id)).image).toBeUndefined();
    expect(await d.image.call("RemoveImage", { image: { image: id } })).toEqual({});
    expect(await d.image.call("RemoveImage", { image: { image: `${reg.host}/never/was:here` } })).toEqual({});
  });

  test("ImageFsInfo reports bytes and inodes of the image store and the container store", async () => {
    const r = await d.image.call("ImageFsInfo", {});
    expect(r.imageFilesystems.length).toBe(1);
    const fs = r.imageFilesystems[0];
    expect(fs.fsId.mountpoint.startsWith(d.root)).toBe(true);
    expect(fs.usedBytes.value).toBeGreaterThan(1_000_000n);
    expect(fs.inodesUsed.value).toBeGreaterThan(10n);
    expect(r.containerFilesystems.length).toBe(1);
    expect(fs.timestamp).toBeGreaterThan(0n);
  });
});
