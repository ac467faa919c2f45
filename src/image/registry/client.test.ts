// The registry client against in-process fakes (Bun.serve, and raw TCP where HTTP must break):
// manifests, platform resolution, verified blob streams, redirects, retries, schemes and TLS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcCode, NotFoundError, UnavailableError } from "../../errors.ts";
import { makeRandomImage } from "../../../test/lib/push.ts";
import { makeTestCerts, startFakeRegistry, type FakeRegistry, type TestCerts } from "../../../test/lib/registry.ts";
import { RegistryClient } from "./client.ts";
import { digestOf } from "./digest.ts";
import {
  BlobNotFoundError,
  CancelledError,
  DigestMismatchError,
  ManifestNotFoundError,
  NoMatchingPlatformError,
  RegistryResponseError,
  RegistryUnavailableError,
  TooManyRequestsError,
  UnsupportedMediaTypeError,
} from "./errors.ts";
import { dedupe } from "./flight.ts";
import { MANIFEST_ACCEPT, MediaType } from "./manifest.ts";
import { hostPlatform } from "./platform.ts";
import { parseLocation } from "./transport.ts";
import type { RegistryClientOptions } from "./types.ts";

const FAST_RETRY = { attempts: 3, initialDelayMs: 5, maxDelayMs: 20 };

function client(reg: { host: string }, extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ endpoint: { location: reg.host, insecure: true }, certsDirs: [], retry: FAST_RETRY, ...extra });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads a stream to its end, recording every chunk, and returns how it ended. */
async function consume(stream: ReadableStream<Uint8Array>): Promise<{ bytes: number; done: boolean; error?: unknown }> {
  const reader = stream.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes, done: true };
      bytes += value.byteLength;
    }
  } catch (error) {
    return { bytes, done: false, error };
  }
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
 * A raw HTTP/1.1 server on 127.0.0.1 for answers Bun.serve will not produce (a body cut short of
 * its Content-Length). `respond` gets the request head and writes the whole answer itself.
 */
function rawServer(respond: (head: string, socket: Bun.Socket<{ buf: string }>, n: number) => void) {
  let n = 0;
  const server = Bun.listen<{ buf: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      data(s, chunk) {
        if (s.data.buf === "" && chunk[0] === 0x16) {
          s.end(); // a TLS ClientHello: this server speaks plain HTTP only
          return;
        }
        s.data.buf += new TextDecoder().decode(chunk);
        const end = s.data.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = s.data.buf.slice(0, end);
        s.data.buf = s.data.buf.slice(end + 4);
        respond(head, s, n++);
      },
    },
  });
  return { server, host: `127.0.0.1:${server.port}` };
}

const REPO = "test/app";

describe("manifests", () => {
  let reg: FakeRegistry;
  const multi = makeRandomImage({
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
      { os: "linux", architecture: "arm", variant: "v7" },
    ],
  });
  const dockerList = makeRandomImage({
    tag: "docker",
    format: "docker",
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
  });
  const single = makeRandomImage({ tag: "single" });
  const schema1 = new TextEncoder().encode(JSON.stringify({ schemaVersion: 1, name: REPO, tag: "old", fsLayers: [], history: [] }));

  beforeAll(() => {
    reg = startFakeRegistry({
      handler(req, url) {
        if (url.pathname === `/v2/${REPO}/manifests/old`) {
          return new Response(schema1, { headers: { "content-type": MediaType.dockerSchema1Signed } });
        }
        if (url.pathname === `/v2/${REPO}/manifests/lying`) {
          return new Response(single.images[0]!.manifestBytes, {
            headers: { "content-type": MediaType.ociManifest, "docker-content-digest": `sha256:${"0".repeat(64)}` },
          });
        }
        if (url.pathname === `/v2/${REPO}/manifests/${single.images[0]!.configDigest}`) {
          // Answers a digest request with other bytes.
          return new Response(single.images[0]!.manifestBytes, { headers: { "content-type": MediaType.ociManifest } });
        }
        return undefined;
      },
    });
    reg.add(REPO, multi);
    reg.add(REPO, dockerList);
    reg.add(REPO, single);
  });
  afterAll(() => reg.stop());

  test("by tag: media type, bytes, digest; the Accept header names the four types", async () => {
    const m = await client(reg).getManifest(REPO, "single");
    expect(m.mediaType).toBe(MediaType.ociManifest);
    expect(m.bytes).toEqual(single.images[0]!.manifestBytes);
    expect(m.digest).toBe(single.images[0]!.manifestDigest);
    const req = reg.requests.findLast((r) => r.path === `/v2/${REPO}/manifests/single`)!;
    expect(req.headers.get("accept")).toBe(MANIFEST_ACCEPT);
    expect(req.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    expect(req.headers.get("user-agent")).toContain("cri-o/");
  });

  test("by digest, verified", async () => {
    const m = await client(reg).getManifest(REPO, multi.indexDigest!);
    expect(m.mediaType).toBe(MediaType.ociIndex);
    expect(m.digest).toBe(multi.indexDigest!);
  });

  test("bytes that do not match the digest asked for → DigestMismatch naming both", async () => {
    const asked = single.images[0]!.configDigest;
    const e = await rejection(client(reg).getManifest(REPO, asked));
    expect(e).toBeInstanceOf(DigestMismatchError);
    expect(e.code).toBe(GrpcCode.DATA_LOSS);
    expect(e.message).toContain(`expected ${asked}`);
    expect(e.message).toContain(`got ${single.images[0]!.manifestDigest}`);
  });

  test("a Docker-Content-Digest that does not match the bytes → DigestMismatch", async () => {
    const e = await rejection(client(reg).getManifest(REPO, "lying"));
    expect(e).toBeInstanceOf(DigestMismatchError);
    expect(e.message).toContain("Docker-Content-Digest");
  });

  test("404 → ManifestNotFound (NOT_FOUND) naming repository and reference", async () => {
    const e = await rejection(client(reg).getManifest(REPO, "missing"));
    expect(e).toBeInstanceOf(ManifestNotFoundError);
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.code).toBe(GrpcCode.NOT_FOUND);
    expect(e.message).toContain(`${reg.host}/${REPO}:missing`);
    expect(e.message).toContain("MANIFEST_UNKNOWN");
  });

  test("schema 1 → UnsupportedMediaType", async () => {
    const e = await rejection(client(reg).getManifest(REPO, "old"));
    expect(e).toBeInstanceOf(UnsupportedMediaTypeError);
    expect(e.message).toContain("schema 1");
    await expect(client(reg).resolveImage(REPO, "old")).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
  });

  test("invalid names and references are refused before any request", async () => {
    const before = reg.requests.length;
    for (const [repo, ref] of [
      ["Test/App", "latest"],
      ["test/../x", "latest"],
      [REPO, "bad tag"],
      [REPO, "sha256:short"],
    ] as const) {
      expect((await rejection(client(reg).getManifest(repo, ref))).code).toBe(GrpcCode.INVALID_ARGUMENT);
    }
    expect(reg.requests.length).toBe(before);
  });

  test("resolveImage picks amd64, arm64 (v8 by default) and arm v7 from an OCI index", async () => {
    const c = client(reg);
    for (const [platform, i] of [
      [{ os: "linux", architecture: "amd64" }, 0],
      [{ os: "linux", architecture: "arm64" }, 1],
      [{ os: "linux", architecture: "arm", variant: "v7" }, 2],
    ] as const) {
      const r = await c.resolveImage(REPO, "latest", platform);
      const want = multi.images[i]!;
      expect(r.manifestDigest).toBe(want.manifestDigest);
      expect(r.manifestBytes).toEqual(want.manifestBytes);
      expect(r.mediaType).toBe(MediaType.ociManifest);
      expect(r.indexDigest).toBe(multi.indexDigest!);
      expect(r.indexBytes).toEqual(multi.indexBytes!);
      expect(r.indexMediaType).toBe(MediaType.ociIndex);
      expect(r.platform).toEqual(want.platform);
      expect(r.config).toEqual({ digest: want.configDigest, size: want.config.byteLength, mediaType: MediaType.ociConfig });
      expect(r.layers).toEqual(want.layers.map((l) => ({ digest: l.digest, size: l.bytes.byteLength, mediaType: l.mediaType })));
    }
  });

  test("resolveImage follows a Docker manifest list; the host platform is the default", async () => {
    const r = await client(reg).resolveImage(REPO, "docker");
    const want = dockerList.images.find((i) => i.platform.architecture === hostPlatform().architecture)!;
    expect(r.manifestDigest).toBe(want.manifestDigest);
    expect(r.mediaType).toBe(MediaType.dockerManifest);
    expect(r.indexMediaType).toBe(MediaType.dockerManifestList);
    expect(r.config.mediaType).toBe(MediaType.dockerConfig);
  });

  test("no entry for the platform → NoMatchingPlatform naming wanted and available", async () => {
    const e = await rejection(client(reg).resolveImage(REPO, "latest", { os: "linux", architecture: "s390x" }));
    expect(e).toBeInstanceOf(NoMatchingPlatformError);
    expect(e.code).toBe(GrpcCode.NOT_FOUND);
    expect(e.message).toContain("linux/s390x");
    expect(e.message).toContain("linux/amd64, linux/arm64/v8, linux/arm/v7");
  });

  test("a single manifest resolves as is, without index fields", async () => {
    const r = await client(reg).resolveImage(REPO, "single", { os: "linux", architecture: "whatever" });
    expect(r.manifestDigest).toBe(single.images[0]!.manifestDigest);
    expect(r.indexDigest).toBeUndefined();
    expect(r.platform).toBeUndefined();
  });

  test("a location with a path prefix puts it before the repository", async () => {
    const prefixed = startFakeRegistry();
    try {
      prefixed.add(`mirror/${REPO}`, single);
      const c = new RegistryClient({ endpoint: { location: `${prefixed.host}/mirror`, insecure: true }, certsDirs: [], retry: FAST_RETRY });
      const r = await c.resolveImage(REPO, "single");
      expect(r.manifestDigest).toBe(single.images[0]!.manifestDigest);
      expect(prefixed.count("GET", `/v2/mirror/${REPO}/manifests/single`)).toBe(1);
    } finally {
      await prefixed.stop();
    }
  });

  test("docker.io is served by registry-1.docker.io (location parsing only; never contacted)", () => {
    expect(parseLocation("docker.io")).toEqual({ host: "docker.io", apiHost: "registry-1.docker.io", prefix: "" });
    expect(parseLocation("127.0.0.1:5000/a/b/")).toEqual({ host: "127.0.0.1:5000", apiHost: "127.0.0.1:5000", prefix: "a/b" });
  });
});

describe("blobs", () => {
  let reg: FakeRegistry;
  let storage: ReturnType<typeof Bun.serve>;
  const storageSeen: Headers[] = [];
  const good = crypto.getRandomValues(new Uint8Array(300_000));
  const goodDigest = digestOf(good);
  const other = crypto.getRandomValues(new Uint8Array(300_000));
  const big = crypto.getRandomValues(new Uint8Array(2_000_000));

  beforeAll(() => {
    storage = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        storageSeen.push(req.headers);
        return new Response(good);
      },
    });
    reg = startFakeRegistry({
      handler(req, url) {
        const m = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(url.pathname);
        const d = m?.[1];
        if (url.pathname.startsWith("/v2/redirect/")) {
          // Blob URLs redirect to storage on another origin, as S3-backed registries do.
          return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${storage.port}/bucket/${d}?sig=abc` } });
        }
        if (url.pathname.startsWith("/v2/relative/")) {
          return new Response(null, { status: 302, headers: { location: `/v2/${REPO}/blobs/${d}` } });
        }
        if (url.pathname.startsWith("/v2/wrong/")) return new Response(other); // same length, other bytes
        if (url.pathname.startsWith("/v2/short/")) {
          // Chunked (no Content-Length), ends cleanly but early.
          return new Response(
            new ReadableStream({
              pull(c) {
                c.enqueue(good.subarray(0, 1000));
                c.close();
              },
            }),
          );
        }
        if (url.pathname.startsWith("/v2/long/")) {
          return new Response(
            new ReadableStream({
              pull(c) {
                c.enqueue(good);
                c.enqueue(new Uint8Array(10));
                c.close();
              },
            }),
          );
        }
        if (url.pathname.startsWith("/v2/badlength/")) return new Response(good.subarray(0, 10));
        if (url.pathname.startsWith("/v2/slow/")) {
          let sent = 0;
          return new Response(
            new ReadableStream({
              async pull(c) {
                await Bun.sleep(5);
                c.enqueue(big.subarray(sent, sent + 65536));
                sent += 65536;
                if (sent >= big.byteLength) c.close();
              },
            }),
          );
        }
        return undefined;
      },
    });
    reg.blobs.set(goodDigest, good);
  });
  afterAll(async () => {
    await reg.stop();
    await storage.stop(true);
  });

  test("streams the blob, verified", async () => {
    const s = await client(reg).fetchBlob(REPO, { digest: goodDigest, size: good.byteLength });
    expect(await readAll(s)).toEqual(good);
  });

  test("redirects to another origin are followed without the registry's Authorization", async () => {
    const c = client(reg, { credentials: () => ({ registryToken: "registry-only-token" }) });
    // The fake does not challenge; make the client send the token by answering 401 once on /v2/.
    const bearerReg = startFakeRegistry({
      handler(req, url) {
        if (url.pathname === "/v2/") {
          return new Response(null, { status: 401, headers: { "www-authenticate": 'Bearer realm="http://127.0.0.1:1/unused"' } });
        }
        if (req.headers.get("authorization") !== "Bearer registry-only-token") return new Response(null, { status: 401 });
        return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${storage.port}/bucket/x?sig=abc` } });
      },
    });
    try {
      const c2 = client(bearerReg, { credentials: () => ({ registryToken: "registry-only-token" }) });
      const before = storageSeen.length;
      const s = await c2.fetchBlob("redirect/app", { digest: goodDigest, size: good.byteLength });
      expect(await readAll(s)).toEqual(good);
      expect(storageSeen.length).toBe(before + 1);
      expect(storageSeen.at(-1)!.get("authorization")).toBeNull();
    } finally {
      await bearerReg.stop();
    }
    // And an anonymous redirect, plus a relative one on the same origin.
    expect(await readAll(await c.fetchBlob("redirect/app", { digest: goodDigest, size: good.byteLength }))).toEqual(good);
    expect(await readAll(await c.fetchBlob("relative/app", { digest: goodDigest, size: good.byteLength }))).toEqual(good);
  });

  test("wrong bytes → the stream errors with DigestMismatch at the end, never ends cleanly", async () => {
    const s = await client(reg).fetchBlob("wrong/app", { digest: goodDigest, size: good.byteLength });
    const r = await consume(s);
    expect(r.done).toBe(false);
    expect(r.error).toBeInstanceOf(DigestMismatchError);
    const e = r.error as DigestMismatchError;
    expect(e.code).toBe(GrpcCode.DATA_LOSS);
    expect(e.expected).toBe(goodDigest);
    expect(e.actual).toBe(digestOf(other));
    expect(e.message).toContain(`expected ${goodDigest}`);
    expect(e.message).toContain(`got ${digestOf(other)}`);
  });

  test("a short body → DigestMismatch with the sizes; a long one → error as soon as it overflows", async () => {
    const short = await consume(await client(reg).fetchBlob("short/app", { digest: goodDigest, size: good.byteLength }));
    expect(short.done).toBe(false);
    expect(short.error).toBeInstanceOf(DigestMismatchError);
    expect((short.error as Error).message).toContain(`got 1000 bytes, expected ${good.byteLength}`);

    const long = await consume(await client(reg).fetchBlob("long/app", { digest: goodDigest, size: good.byteLength }));
    expect(long.done).toBe(false);
    expect(long.error).toBeInstanceOf(DigestMismatchError);
    expect(long.bytes).toBeLessThanOrEqual(good.byteLength);
    expect((long.error as Error).message).toContain("more than");
  });

  test("a Content-Length other than the size is refused before streaming", async () => {
    const e = await rejection(client(reg).fetchBlob("badlength/app", { digest: goodDigest, size: good.byteLength }));
    expect(e).toBeInstanceOf(DigestMismatchError);
    expect(e.message).toContain(`got 10 bytes, expected ${good.byteLength}`);
  });

  test("without a size, the digest still decides", async () => {
    const r = await consume(await client(reg).fetchBlob("short/app", { digest: goodDigest }));
    expect(r.error).toBeInstanceOf(DigestMismatchError);
    expect(await readAll(await client(reg).fetchBlob(REPO, { digest: goodDigest }))).toEqual(good);
  });

  test("404 → BlobNotFound", async () => {
    const e = await rejection(client(reg).fetchBlob(REPO, { digest: digestOf(new Uint8Array([9])), size: 1 }));
    expect(e).toBeInstanceOf(BlobNotFoundError);
    expect(e.code).toBe(GrpcCode.NOT_FOUND);
  });

  test("fetchBlobBytes refuses a blob over its cap without fetching it", async () => {
    const before = reg.requests.length;
    const e = await rejection(client(reg).fetchBlobBytes(REPO, { digest: goodDigest, size: good.byteLength }, { maxBytes: 1000 }));
    expect(e).toBeInstanceOf(RegistryResponseError);
    expect(reg.requests.length).toBe(before);
    expect(await client(reg).fetchBlobBytes(REPO, { digest: goodDigest, size: good.byteLength })).toEqual(good);
  });

  test("an aborted signal errors the stream with CancelledError", async () => {
    const bigDigest = digestOf(big);
    const ac = new AbortController();
    const s = await client(reg).fetchBlob("slow/app", { digest: bigDigest, size: big.byteLength }, ac.signal);
    setTimeout(() => ac.abort(), 30);
    const r = await consume(s);
    expect(r.done).toBe(false);
    expect(r.error).toBeInstanceOf(CancelledError);
    expect(r.bytes).toBeLessThan(big.byteLength);
  });

  test("concurrent identical fetches through dedupe share one download", async () => {
    const c = client(reg);
    await c.ping();
    const before = reg.count("GET", `/v2/${REPO}/blobs/${goodDigest}`);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => dedupe(`blob:${goodDigest}`, () => c.fetchBlobBytes(REPO, { digest: goodDigest, size: good.byteLength }))),
    );
    for (const r of results) expect(r).toEqual(good);
    expect(reg.count("GET", `/v2/${REPO}/blobs/${goodDigest}`)).toBe(before + 1);
  });
});

describe("interrupted bodies", () => {
  const data = crypto.getRandomValues(new Uint8Array(200_000));
  const digest = digestOf(data);
  const head = (status: string, headers: Record<string, string>) =>
    `HTTP/1.1 ${status}\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}\r\n`;

  test("a body cut short of its Content-Length is resumed with a Range request", async () => {
    const ranges: string[] = [];
    const { server, host } = rawServer((h, s) => {
      if (h.startsWith("GET /v2/ ")) {
        s.write(head("200 OK", { "content-length": "2" }) + "{}");
        return;
      }
      const range = /\r\nrange: bytes=(\d+)-/i.exec(h);
      ranges.push(range?.[1] ?? "none");
      if (!range) {
        s.write(head("200 OK", { "content-length": String(data.byteLength) }));
        if (ranges.length === 1) {
          // The first answer breaks off, after the client has had time to read what came.
          s.write(data.subarray(0, 70_000));
          setTimeout(() => s.end(), 200);
        } else {
          s.write(data);
          s.end();
        }
        return;
      }
      const start = Number(range[1]);
      s.write(head("206 Partial Content", { "content-length": String(data.byteLength - start), "content-range": `bytes ${start}-${data.byteLength - 1}/${data.byteLength}` }));
      s.write(data.subarray(start));
      s.end();
    });
    try {
      const s = await client({ host }).fetchBlob(REPO, { digest, size: data.byteLength });
      expect(await readAll(s)).toEqual(data);
      // Resumed from where the client was, with a Range.
      expect(ranges.length).toBe(2);
      expect(ranges[0]).toBe("none");
      expect(Number(ranges[1])).toBeGreaterThan(0);
      expect(Number(ranges[1])).toBeLessThanOrEqual(70_000);
    } finally {
      server.stop(true);
    }
  });

  test("a body that keeps breaking → the stream errors (bounded attempts), never a success", async () => {
    let blobRequests = 0;
    const { server, host } = rawServer((h, s) => {
      if (h.startsWith("GET /v2/ ")) {
        s.write(head("200 OK", { "content-length": "2" }) + "{}");
        return;
      }
      blobRequests++;
      s.write(head("200 OK", { "content-length": String(data.byteLength) })); // ignores Range
      s.write(data.subarray(0, 5000));
      s.end();
    });
    try {
      const r = await consume(await client({ host }).fetchBlob(REPO, { digest, size: data.byteLength }));
      expect(r.done).toBe(false);
      expect(r.error).toBeInstanceOf(UnavailableError);
      expect((r.error as Error).message).toContain(`of ${data.byteLength} bytes`);
      expect(blobRequests).toBe(FAST_RETRY.attempts);
    } finally {
      server.stop(true);
    }
  });
});

describe("retries", () => {
  test("5xx is retried, then succeeds", async () => {
    let n = 0;
    const reg = startFakeRegistry({
      handler: (_req, url) => (url.pathname.includes("/manifests/") && n++ < 2 ? new Response("busy", { status: 503 }) : undefined),
    });
    try {
      const img = makeRandomImage({ tag: "t" });
      reg.add(REPO, img);
      expect((await client(reg).getManifest(REPO, "t")).digest).toBe(img.images[0]!.manifestDigest);
      expect(reg.count("GET", `/v2/${REPO}/manifests/t`)).toBe(3);
    } finally {
      await reg.stop();
    }
  });

  test("5xx on every attempt → RegistryUnavailable (UNAVAILABLE) after exactly the bounded attempts", async () => {
    const reg = startFakeRegistry({
      handler: (_req, url) =>
        url.pathname.includes("/manifests/") ? Response.json({ errors: [{ code: "UNAVAILABLE", message: "backend down" }] }, { status: 500 }) : undefined,
    });
    try {
      const e = await rejection(client(reg).getManifest(REPO, "t"));
      expect(e).toBeInstanceOf(RegistryUnavailableError);
      expect(e).toBeInstanceOf(UnavailableError);
      expect(e.code).toBe(GrpcCode.UNAVAILABLE);
      expect(e.message).toContain("HTTP 500");
      expect(e.message).toContain("backend down");
      expect(reg.count("GET", `/v2/${REPO}/manifests/t`)).toBe(3);
    } finally {
      await reg.stop();
    }
  });

  test("501 is not retried", async () => {
    const reg = startFakeRegistry({ handler: (_r, url) => (url.pathname.includes("/manifests/") ? new Response(null, { status: 501 }) : undefined) });
    try {
      await rejection(client(reg).getManifest(REPO, "t"));
      expect(reg.count("GET", `/v2/${REPO}/manifests/t`)).toBe(1);
    } finally {
      await reg.stop();
    }
  });

  test("429 honours Retry-After, then TooManyRequests (RESOURCE_EXHAUSTED)", async () => {
    const reg = startFakeRegistry({
      handler: (_r, url) => (url.pathname.includes("/manifests/") ? new Response(null, { status: 429, headers: { "retry-after": "0" } }) : undefined),
    });
    try {
      const e = await rejection(client(reg).getManifest(REPO, "t"));
      expect(e).toBeInstanceOf(TooManyRequestsError);
      expect(e.code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
      expect(reg.count("GET", `/v2/${REPO}/manifests/t`)).toBe(3);
    } finally {
      await reg.stop();
    }
  });

  test("connection refused → RegistryUnavailable after retries", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const t0 = performance.now();
    const e = await rejection(client({ host: `127.0.0.1:${port}` }).getManifest(REPO, "t"));
    expect(e).toBeInstanceOf(RegistryUnavailableError);
    expect(e.message).toContain(`pinging container registry 127.0.0.1:${port}`);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  test("a registry that accepts connections but never answers times out per attempt", async () => {
    let connections = 0;
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open() { connections++; }, data() {} } });
    try {
      const c = client({ host: `127.0.0.1:${silent.port}` }, { responseHeaderTimeoutMs: 100, endpoint: { location: `127.0.0.1:${silent.port}`, insecure: false } });
      const t0 = performance.now();
      const e = await rejection(c.getManifest(REPO, "t"));
      expect(e).toBeInstanceOf(RegistryUnavailableError);
      expect(e.message).toContain("no response from");
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(connections).toBe(FAST_RETRY.attempts);
    } finally {
      silent.stop(true);
    }
  });

  test("an abort during the backoff is CANCELLED", async () => {
    const reg = startFakeRegistry({ handler: (_r, url) => (url.pathname.includes("/manifests/") ? new Response(null, { status: 503 }) : undefined) });
    try {
      const c = client(reg, { retry: { attempts: 3, initialDelayMs: 5_000 } });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      const e = await rejection(c.getManifest(REPO, "t", { signal: ac.signal }));
      expect(e.code).toBe(GrpcCode.CANCELLED);
    } finally {
      await reg.stop();
    }
  });
});

describe("schemes and TLS", () => {
  let certs: TestCerts;
  let work: string;
  const img = makeRandomImage({ tag: "t" });
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "registry-client-tls-"));
    certs = makeTestCerts(join(work, "pki"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const tlsOf = (requestCert = false) => ({
    cert: readFileSync(certs.serverCert, "utf8"),
    key: readFileSync(certs.serverKey, "utf8"),
    ca: readFileSync(certs.caCert, "utf8"),
    requestCert,
  });

  function certsDir(host: string, withClient: boolean): string {
    const d = join(work, `certs.d-${host.replace(":", "_")}-${withClient}`);
    mkdirSync(join(d, host), { recursive: true });
    writeFileSync(join(d, host, "ca.crt"), readFileSync(certs.caCert));
    if (withClient) {
      writeFileSync(join(d, host, "client.cert"), readFileSync(certs.clientCert));
      writeFileSync(join(d, host, "client.key"), readFileSync(certs.clientKey));
    }
    return d;
  }

  test("a plain-HTTP registry: refused unless insecure, then reached over HTTP", async () => {
    const reg = startFakeRegistry();
    try {
      reg.add(REPO, img);
      const secure = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [], retry: FAST_RETRY });
      const e = await rejection(secure.getManifest(REPO, "t"));
      expect(e).toBeInstanceOf(RegistryUnavailableError);
      expect(e.message).toContain("mark it insecure");
      expect(reg.requests.length).toBe(0);
      const insecure = new RegistryClient({ endpoint: { location: reg.host, insecure: true }, certsDirs: [], retry: FAST_RETRY });
      expect((await insecure.getManifest(REPO, "t")).digest).toBe(img.images[0]!.manifestDigest);
    } finally {
      await reg.stop();
    }
  });

  test("HTTPS with the CA from certs.d; without it, an error pointing at certs.d; insecure skips verification", async () => {
    const reg = startFakeRegistry({ tls: tlsOf() });
    try {
      reg.add(REPO, img);
      const c = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [certsDir(reg.host, false)], retry: FAST_RETRY });
      expect((await c.getManifest(REPO, "t")).digest).toBe(img.images[0]!.manifestDigest);

      const untrusted = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [], retry: FAST_RETRY });
      const e = await rejection(untrusted.getManifest(REPO, "t"));
      expect(e).toBeInstanceOf(RegistryUnavailableError);
      expect(e.message).toMatch(/certificate/i);
      expect(e.message).toContain(`certs.d/${reg.host}/ca.crt`);

      const insecure = new RegistryClient({ endpoint: { location: reg.host, insecure: true }, certsDirs: [], retry: FAST_RETRY });
      expect((await insecure.getManifest(REPO, "t")).digest).toBe(img.images[0]!.manifestDigest);
      expect(reg.requests.every((r) => r.url.protocol === "https:")).toBe(true);
    } finally {
      await reg.stop();
    }
  });

  test("a registry requiring a client certificate gets certs.d's client.cert/client.key", async () => {
    const reg = startFakeRegistry({ tls: tlsOf(true) });
    try {
      reg.add(REPO, img);
      const withCert = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [certsDir(reg.host, true)], retry: FAST_RETRY });
      expect((await withCert.getManifest(REPO, "t")).digest).toBe(img.images[0]!.manifestDigest);
      const without = new RegistryClient({ endpoint: { location: reg.host, insecure: false }, certsDirs: [certsDir(reg.host, false)], retry: FAST_RETRY });
      await expect(without.getManifest(REPO, "t")).rejects.toBeInstanceOf(RegistryUnavailableError);
    } finally {
      await reg.stop();
    }
  });
});
