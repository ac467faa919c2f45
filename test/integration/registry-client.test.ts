// The registry client against Debian's real docker-registry on 127.0.0.1: push with
// test/lib/push.ts, then resolve and stream back, over plain HTTP, htpasswd basic auth, TLS with
// a test CA from certs.d (and a required client certificate), and token auth.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GrpcCode } from "../../src/errors.ts";
import {
  BlobNotFoundError,
  ManifestNotFoundError,
  NoMatchingPlatformError,
  ParallelLimiter,
  RegistryClient,
  UnauthorizedError,
  digestOf,
  type Credentials,
  type PlatformSpec,
} from "../../src/image/registry/index.ts";
import { busyboxImage, hostArch, multiArchIndex } from "../lib/images.ts";
import { makeRandomImage, pushImage, type RandomImage } from "../lib/push.ts";
import { startRegistry, type StartRegistryOptions, type TestRegistry } from "../lib/registry.ts";

const REPO = "test/busybox";
const PLATFORMS: PlatformSpec[] = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
  { os: "linux", architecture: "arm", variant: "v7" },
];

function clientFor(reg: TestRegistry, credentials?: Credentials): RegistryClient {
  return new RegistryClient({
    endpoint: { location: reg.host, insecure: reg.caPem === undefined },
    certsDirs: reg.certsDir ? [reg.certsDir] : [],
    retry: { attempts: 2, initialDelayMs: 10 },
    ...(credentials ? { credentials: () => credentials } : {}),
  });
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: number }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: number };
  }
  throw new Error("expected a rejection");
}

/**
 * What the lead's pull does: resolve for a platform, then stream every layer with bounded
 * parallelism into a consumer (here: hash and count) that takes only a clean end as success.
 */
async function pullAll(client: RegistryClient, repo: string, ref: string, platform: PlatformSpec) {
  const image = await client.resolveImage(repo, ref, platform);
  const config = await client.fetchBlobBytes(repo, image.config);
  const limiter = new ParallelLimiter(2);
  const layers = await limiter.map(image.layers, async (layer, _i, signal) => {
    const stream = await client.fetchBlob(repo, layer, signal);
    const hasher = new Bun.CryptoHasher("sha256");
    let size = 0;
    for await (const chunk of stream) {
      hasher.update(chunk);
      size += chunk.byteLength;
    }
    return { digest: `sha256:${hasher.digest("hex")}`, size };
  });
  return { image, config, layers };
}

function flavour(name: string, opts: StartRegistryOptions, creds: (reg: TestRegistry) => Credentials | undefined) {
  describe(`docker-registry: ${name}`, () => {
    let reg: TestRegistry;
    let oci: RandomImage;
    let docker: RandomImage;

    beforeAll(async () => {
      reg = await startRegistry(opts);
      oci = makeRandomImage({ platforms: PLATFORMS, layerSizes: [4096, 100_000, 1] });
      docker = makeRandomImage({ tag: "docker", format: "docker", platforms: PLATFORMS.slice(0, 2) });
      const auth = {
        ...(reg.username ? { username: reg.username, password: reg.password! } : {}),
        ...(reg.caPem ? { ca: reg.caPem } : {}),
        ...(reg.clientCertPem ? { cert: reg.clientCertPem, key: reg.clientKeyPem! } : {}),
      };
      await pushImage(reg.url, REPO, oci, auth);
      await pushImage(reg.url, REPO, docker, auth);
    });
    afterAll(async () => {
      await reg?.stop();
    });

    test("resolve each platform of an OCI index and stream every layer back, verified", async () => {
      const client = clientFor(reg, creds(reg));
      for (const [i, platform] of PLATFORMS.entries()) {
        const { image, config, layers } = await pullAll(client, REPO, "latest", platform);
        const want = oci.images[i]!;
        expect(image.indexDigest).toBe(oci.indexDigest!);
        expect(image.manifestDigest).toBe(want.manifestDigest);
        expect(image.platform).toEqual(want.platform);
        expect(config).toEqual(want.config);
        expect(layers).toEqual(want.layers.map((l) => ({ digest: l.digest, size: l.bytes.byteLength })));
      }
    });

    test("a Docker manifest list, and pulls by digest", async () => {
      const client = clientFor(reg, creds(reg));
      const r = await client.resolveImage(REPO, "docker", PLATFORMS[1]!);
      expect(r.manifestDigest).toBe(docker.images[1]!.manifestDigest);
      const byIndexDigest = await client.resolveImage(REPO, oci.indexDigest!, PLATFORMS[0]!);
      expect(byIndexDigest.manifestDigest).toBe(oci.images[0]!.manifestDigest);
      const byManifestDigest = await client.resolveImage(REPO, oci.images[2]!.manifestDigest, PLATFORMS[0]!);
      expect(byManifestDigest.manifestDigest).toBe(oci.images[2]!.manifestDigest);
      expect(byManifestDigest.indexDigest).toBeUndefined();
      const m = await client.getManifest(REPO, "latest");
      expect(m.digest).toBe(oci.indexDigest!);
      expect(digestOf(m.bytes)).toBe(oci.indexDigest!);
    });

    test("missing tag → ManifestNotFound; missing blob → BlobNotFound; no platform → NoMatchingPlatform", async () => {
      const client = clientFor(reg, creds(reg));
      const e = await rejection(client.getManifest(REPO, "nope"));
      expect(e).toBeInstanceOf(ManifestNotFoundError);
      expect(e.code).toBe(GrpcCode.NOT_FOUND);
      expect(e.message).toContain(`${reg.host}/${REPO}:nope`);
      const b = await rejection(client.fetchBlob(REPO, { digest: digestOf(new Uint8Array([1, 2, 3])), size: 3 }));
      expect(b).toBeInstanceOf(BlobNotFoundError);
      const p = await rejection(client.resolveImage(REPO, "latest", { os: "linux", architecture: "ppc64le" }));
      expect(p).toBeInstanceOf(NoMatchingPlatformError);
      expect(p.message).toContain("linux/amd64, linux/arm64/v8, linux/arm/v7");
    });

    if (opts.auth === "htpasswd" || opts.auth === "token") {
      test("no credentials or wrong ones → UNAUTHENTICATED naming the registry, never the secret", async () => {
        const none = await rejection(clientFor(reg).getManifest(REPO, "latest"));
        expect(none).toBeInstanceOf(UnauthorizedError);
        expect(none.code).toBe(GrpcCode.UNAUTHENTICATED);
        expect(none.message).toContain(reg.host);
        const wrong = await rejection(clientFor(reg, { username: reg.username!, password: "not-the-password-42" }).getManifest(REPO, "latest"));
        expect(wrong).toBeInstanceOf(UnauthorizedError);
        expect(wrong.code).toBe(GrpcCode.UNAUTHENTICATED);
        for (const e of [none, wrong]) {
          const text = `${e.message}\n${e.stack}\n${JSON.stringify(e)}\n${String(e.cause)}`;
          expect(text).not.toContain("not-the-password-42");
          expect(text).not.toContain(reg.password!);
        }
      });
    }

    if (opts.auth === "token") {
      test("token auth: one token per pull; an identity token works through the refresh grant", async () => {
        const before = reg.tokenRequests!.length;
        await pullAll(clientFor(reg, creds(reg)), REPO, "latest", PLATFORMS[0]!);
        expect(reg.tokenRequests!.length - before).toBe(1);
        expect(reg.tokenRequests!.at(-1)).toMatchObject({ method: "GET", scope: [`repository:${REPO}:pull`], account: reg.username, authorized: true });
        const { layers } = await pullAll(clientFor(reg, { identityToken: reg.identityToken! }), REPO, "latest", PLATFORMS[1]!);
        expect(layers).toHaveLength(3);
        expect(reg.tokenRequests!.at(-1)).toMatchObject({ method: "POST", authorized: true });
      });
    }
  });
}

flavour("plain HTTP (insecure)", {}, () => undefined);
flavour("htpasswd basic auth", { auth: "htpasswd" }, (reg) => ({ username: reg.username!, password: reg.password! }));
flavour("TLS with a test CA in certs.d", { tls: true }, () => undefined);
flavour("TLS requiring a client certificate", { tls: true, clientCert: true }, () => undefined);
flavour("token auth over TLS", { auth: "token", tls: true }, (reg) => ({ username: reg.username!, password: reg.password! }));

describe("docker-registry: TLS without trusting the CA", () => {
  test("is refused with a hint at certs.d", async () => {
    const reg = await startRegistry({ tls: true });
    try {
      const client = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [], retry: { attempts: 1 } });
      const e = await rejection(client.getManifest(REPO, "latest"));
      expect(e.code).toBe(GrpcCode.UNAVAILABLE);
      expect(e.message).toContain(`/${reg.host}/ca.crt`);
    } finally {
      await reg.stop();
    }
  });
});

describe("docker-registry: busybox images from test/lib/images.ts", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  test("a three-layer busybox image round-trips, layer blobs byte for byte", async () => {
    const built = busyboxImage({ layers: "multi" });
    await pushImage(reg.url, "test/busybox", built);
    const client = clientFor(reg);
    const { image, config, layers } = await pullAll(client, "test/busybox", "latest", { os: "linux", architecture: hostArch() });
    expect(image.manifestDigest).toBe(built.manifestDigest);
    expect(image.config.digest).toBe(built.configDigest);
    expect(JSON.parse(new TextDecoder().decode(config)).rootfs.diff_ids).toEqual(built.layerDiffIds);
    expect(layers).toEqual(built.layers.map((l) => ({ digest: l.digest, size: l.blob.byteLength })));
  });

  test("the multi-arch index resolves to the host's real busybox and to the other platform", async () => {
    const built = multiArchIndex({ tag: "multi" });
    await pushImage(reg.url, "test/busybox", built);
    const client = clientFor(reg);
    for (const p of built.platforms) {
      const r = await client.resolveImage("test/busybox", "multi", { os: p.os, architecture: p.architecture });
      expect(r.indexDigest).toBe(built.manifestDigest);
      expect(r.manifestDigest).toBe(p.manifestDigest);
      expect(r.layers.map((l) => l.digest)).toEqual(p.image.layerDigests);
    }
  });
});
