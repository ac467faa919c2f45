import { describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { TarReader } from "../../src/image/tar/reader.ts";
import { bigImage, busyboxImage, hostArch, maliciousLayers, MEDIA, multiArchIndex, sha256 } from "./images.ts";

async function names(tar: Uint8Array): Promise<string[]> {
  const out = [];
  for await (const e of new TarReader([tar])) out.push(e.header.name);
  return out;
}

describe("test images", () => {
  test("busyboxImage is deterministic and self-consistent (OCI, gzip, single layer)", async () => {
    const a = busyboxImage();
    const b = busyboxImage();
    expect(a.manifests[0]!.bytes).toEqual(b.manifests[0]!.bytes);
    const m = a.manifests[0]!;
    expect([m.reference, m.mediaType, m.digest]).toEqual(["latest", MEDIA.ociManifest, sha256(m.bytes)]);
    const manifest = JSON.parse(new TextDecoder().decode(m.bytes));
    expect(manifest.config.digest).toBe(a.configDigest);
    expect(manifest.layers[0].mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    for (const [digest, blob] of a.blobs) expect(sha256(blob)).toBe(digest);
    const layer = a.blobs.get(manifest.layers[0].digest)!;
    expect(sha256(gunzipSync(layer))).toBe(a.layerDiffIds[0]!);
    const config = JSON.parse(new TextDecoder().decode(a.blobs.get(a.configDigest)));
    expect(config.rootfs.diff_ids).toEqual(a.layerDiffIds);
    expect(config.config.User).toBe("1000");
    expect(config.architecture).toBe(hostArch());
    expect(await names(a.layers[0]!.tar)).toContain("bin/busybox");
  });

  test("multi-layer Docker image with uncompressed layers", () => {
    const img = busyboxImage({ format: "docker", compression: "none", layers: "multi", tag: "v1" });
    expect(img.layers.length).toBe(3);
    expect(img.manifests[0]!.reference).toBe("v1");
    const manifest = JSON.parse(new TextDecoder().decode(img.manifests[0]!.bytes));
    expect(manifest.mediaType).toBe(MEDIA.dockerManifest);
    expect(manifest.config.mediaType).toBe(MEDIA.dockerConfig);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(3).fill(MEDIA.dockerLayer));
    expect(img.layerDigests).toEqual(img.layerDiffIds);
  });

  test("zstd layers exist only in OCI form", () => {
    expect(busyboxImage({ compression: "zstd" }).layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect(() => busyboxImage({ format: "docker", compression: "zstd" })).toThrow("zstd");
  });

  test("multiArchIndex: per-platform manifests by digest, then the index under the tag", () => {
    for (const format of ["oci", "docker"] as const) {
      const img = multiArchIndex({ format });
      expect(img.manifests.length).toBe(3);
      const index = img.manifests[2]!;
      expect(index.reference).toBe("latest");
      expect(index.mediaType).toBe(format === "oci" ? MEDIA.ociIndex : MEDIA.dockerList);
      const doc = JSON.parse(new TextDecoder().decode(index.bytes));
      expect(doc.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
      for (const [i, m] of img.manifests.slice(0, 2).entries()) {
        expect(m.reference).toBe(m.digest);
        expect(doc.manifests[i].digest).toBe(m.digest);
        expect(doc.manifests[i].size).toBe(m.bytes.length);
      }
      for (const p of img.platforms) for (const d of p.image.blobs.keys()) expect(img.blobs.has(d)).toBe(true);
    }
  });

  test("bigImage spreads incompressible data over layers", () => {
    const img = bigImage(8, { layerCount: 2, fileMiB: 1 });
    expect(img.layers.length).toBe(2);
    const total = img.layers.reduce((n, l) => n + l.size, 0);
    expect(total).toBeGreaterThan(8 << 20); // gzip cannot shrink it
  });

  test("maliciousLayers are valid tar streams (except the deliberately broken one)", async () => {
    for (const [name, layer] of Object.entries(maliciousLayers())) {
      if (name === "nul-in-name") continue;
      expect((await names(layer.tar)).length).toBeGreaterThan(0);
    }
  });
});
