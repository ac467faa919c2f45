import { describe, expect, test } from "bun:test";
import { GrpcCode } from "../../errors.ts";
import { InvalidManifestError, UnsupportedMediaTypeError } from "./errors.ts";
import { MediaType, manifestMediaType, parseImageManifest, parseIndex } from "./manifest.ts";

const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const D = (c: string) => `sha256:${c.repeat(64)}`;
const config = { mediaType: MediaType.ociConfig, digest: D("c"), size: 10 };
const layer = (mediaType: string, extra: Record<string, unknown> = {}) => ({ mediaType, digest: D("a"), size: 5, ...extra });
const manifest = (layers: unknown[], cfg: unknown = config) => enc({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg, layers });

function thrown(f: () => unknown): Error & { code?: number } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: number };
  }
  throw new Error("did not throw");
}

describe("manifestMediaType", () => {
  test("the mediaType field wins, then Content-Type, then the shape", () => {
    expect(manifestMediaType(enc({ schemaVersion: 2, mediaType: MediaType.dockerManifest }), "application/json", "x")).toBe(MediaType.dockerManifest);
    expect(manifestMediaType(enc({ schemaVersion: 2, manifests: [] }), `${MediaType.dockerManifestList}; charset=utf-8`, "x")).toBe(
      MediaType.dockerManifestList,
    );
    expect(manifestMediaType(enc({ schemaVersion: 2, manifests: [] }), "text/plain", "x")).toBe(MediaType.ociIndex);
    expect(manifestMediaType(enc({ schemaVersion: 2, config: {}, layers: [] }), null, "x")).toBe(MediaType.ociManifest);
  });

  test("schema 1 is a clear UnsupportedMediaType, by header, field or schemaVersion", () => {
    for (const [body, ct] of [
      [{ schemaVersion: 1, name: "x", fsLayers: [] }, "application/json"],
      [{ schemaVersion: 1 }, MediaType.dockerSchema1Signed],
      [{ schemaVersion: 2, mediaType: MediaType.dockerSchema1 }, null],
    ] as const) {
      const e = thrown(() => manifestMediaType(enc(body), ct, "reg/repo:tag"));
      expect(e).toBeInstanceOf(UnsupportedMediaTypeError);
      expect(e.code).toBe(GrpcCode.UNIMPLEMENTED);
      expect(e.message).toContain("schema 1");
      expect(e.message).toContain("reg/repo:tag");
    }
  });

  test("not JSON → InvalidManifest (DATA_LOSS)", () => {
    const e = thrown(() => manifestMediaType(enc("<html>"), "text/html", "x"));
    expect(e).toBeInstanceOf(InvalidManifestError);
    expect(e.code).toBe(GrpcCode.DATA_LOSS);
  });
});

describe("parseImageManifest", () => {
  test("plain, gzip and zstd layers of both formats", () => {
    const m = parseImageManifest(
      manifest([
        layer(MediaType.ociLayer),
        layer(MediaType.ociLayerGzip, { annotations: { a: "b" } }),
        layer(MediaType.ociLayerZstd),
        layer(MediaType.dockerLayerGzip),
        layer(MediaType.ociForeignLayerGzip), // non-distributable but served by the registry
      ]),
      "x",
    );
    expect(m.layers).toHaveLength(5);
    expect(m.layers[1]!.annotations).toEqual({ a: "b" });
    expect(m.config.digest).toBe(D("c"));
  });

  test("encrypted layers, foreign layers at URLs, unknown layers and artifacts are refused by name", () => {
    const cases: [Uint8Array, string][] = [
      [manifest([layer(`${MediaType.ociLayerGzip}+encrypted`)]), "encrypted"],
      [manifest([layer(MediaType.dockerForeignLayerGzip, { urls: ["https://example.invalid/l"] })]), "foreign layer"],
      [manifest([layer("application/vnd.example.weird")]), "application/vnd.example.weird"],
      [manifest([], { mediaType: "application/vnd.cncf.helm.config.v1+json", digest: D("c"), size: 1 }), "not a container image"],
    ];
    for (const [bytes, words] of cases) {
      const e = thrown(() => parseImageManifest(bytes, "reg/repo@sha256:x"));
      expect(e).toBeInstanceOf(UnsupportedMediaTypeError);
      expect(e.message).toContain(words);
    }
  });

  test("malformed descriptors are InvalidManifest naming the field", () => {
    expect(thrown(() => parseImageManifest(manifest([{ mediaType: MediaType.ociLayer, digest: "sha256:xyz", size: 1 }]), "m")).message).toContain(
      "layers[0]: invalid digest",
    );
    expect(thrown(() => parseImageManifest(manifest([layer(MediaType.ociLayer, { size: -1 })]), "m")).message).toContain("invalid size");
    expect(thrown(() => parseImageManifest(enc({ schemaVersion: 2, layers: [] }), "m")).message).toContain("missing config");
    expect(thrown(() => parseImageManifest(enc({ schemaVersion: 3, config, layers: [] }), "m")).message).toContain("schemaVersion");
  });
});

describe("parseIndex", () => {
  test("keeps platforms with variants", () => {
    const idx = parseIndex(
      enc({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [{ mediaType: MediaType.ociManifest, digest: D("1"), size: 3, platform: { os: "linux", architecture: "arm", variant: "v7" } }],
      }),
      "x",
    );
    expect(idx.manifests[0]!.platform).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
  });
  test("missing manifests → InvalidManifest", () => {
    expect(() => parseIndex(enc({ schemaVersion: 2 }), "x")).toThrow(InvalidManifestError);
  });
});
