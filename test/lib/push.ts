// The push side of the distribution spec, for tests only: monolithic blob uploads (POST, then
// PUT ?digest=) and manifest PUTs, with basic or bearer auth from the registry's challenge.
import { parseWwwAuthenticate } from "../../src/image/registry/challenge.ts";
import { isIndexMediaType } from "../../src/image/registry/manifest.ts";

/** What test/lib/images.ts builds: blobs by digest, and manifests to put under a tag or digest. */
export interface PushableImage {
  blobs: Map<string, Uint8Array>;
  manifests: { reference: string; mediaType: string; bytes: Uint8Array }[];
}

export interface PushAuth {
  username?: string;
  password?: string;
  /** A bearer token to send as is. */
  token?: string;
  /** CA (PEM) trusted for an https baseUrl; client certificate and key for mTLS registries. */
  ca?: string;
  cert?: string;
  key?: string;
}

export interface PushResult {
  /** Blobs uploaded (the others were already there). */
  uploaded: string[];
  /** reference → the digest the registry reported (Docker-Content-Digest). */
  manifests: Map<string, string>;
}

/**
 * Pushes `image` to `baseUrl` ("http://127.0.0.1:PORT") as repository `repo`: every blob the
 * registry lacks, then the image manifests, then the indexes (the registry checks that an index's
 * manifests exist), each group in the given order.
 */
export async function pushImage(baseUrl: string, repo: string, image: PushableImage, auth: PushAuth = {}): Promise<PushResult> {
  const base = baseUrl.replace(/\/+$/, "");
  let authz: string | undefined = auth.token ? `Bearer ${auth.token}` : undefined;

  const send = async (method: string, url: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<Response> => {
    const go = (a: string | undefined) => {
      const h = new Headers(headers);
      if (a) h.set("authorization", a);
      const init: BunFetchRequestInit = { method, headers: h, proxy: false, redirect: "follow" };
      if (body !== undefined) init.body = body;
      if (url.startsWith("https:")) {
        init.tls = {};
        if (auth.ca) init.tls.ca = auth.ca;
        if (auth.cert && auth.key) {
          init.tls.cert = auth.cert;
          init.tls.key = auth.key;
        }
      }
      return fetch(url, init);
    };
    let res = await go(authz);
    if (res.status !== 401) return res;
    const next = await authorize(res.headers.get("www-authenticate"));
    if (next === undefined || next === authz) return res;
    await res.body?.cancel();
    authz = next;
    res = await go(authz);
    return res;
  };

  const authorize = async (header: string | null): Promise<string | undefined> => {
    for (const ch of parseWwwAuthenticate(header)) {
      if (ch.scheme === "basic" && auth.username !== undefined && auth.password !== undefined) {
        return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
      }
      if (ch.scheme === "bearer" && ch.params.realm) {
        if (auth.token) return `Bearer ${auth.token}`;
        const u = new URL(ch.params.realm);
        if (ch.params.service) u.searchParams.set("service", ch.params.service);
        u.searchParams.set("scope", `repository:${repo}:pull,push`);
        if (auth.username) u.searchParams.set("account", auth.username);
        const h = new Headers();
        if (auth.username !== undefined && auth.password !== undefined) {
          h.set("authorization", `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`);
        }
        const tres = await fetch(u, { headers: h, proxy: false });
        if (tres.status !== 200) throw new Error(`pushImage: token server answered ${tres.status}`);
        const doc = (await tres.json()) as { token?: string; access_token?: string };
        const t = doc.token || doc.access_token;
        if (!t) throw new Error("pushImage: token server answered without a token");
        return `Bearer ${t}`;
      }
    }
    return undefined;
  };

  const fail = async (what: string, res: Response): Promise<never> => {
    throw new Error(`pushImage ${repo}: ${what}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
  };

  const uploaded: string[] = [];
  for (const [digest, bytes] of image.blobs) {
    const head = await send("HEAD", `${base}/v2/${repo}/blobs/${digest}`);
    await head.body?.cancel();
    if (head.status === 200) continue;
    const start = await send("POST", `${base}/v2/${repo}/blobs/uploads/`);
    if (start.status !== 202) await fail(`starting the upload of ${digest}`, start);
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (!location) throw new Error(`pushImage ${repo}: upload of ${digest} started without a Location`);
    const put = new URL(location, base);
    put.searchParams.set("digest", digest);
    const done = await send("PUT", put.href, { "content-type": "application/octet-stream" }, bytes);
    if (done.status !== 201) await fail(`uploading ${digest}`, done);
    await done.body?.cancel();
    uploaded.push(digest);
  }

  const ordered = [
    ...image.manifests.filter((m) => !isIndexMediaType(m.mediaType)),
    ...image.manifests.filter((m) => isIndexMediaType(m.mediaType)),
  ];
  const manifests = new Map<string, string>();
  for (const m of ordered) {
    const res = await send("PUT", `${base}/v2/${repo}/manifests/${m.reference}`, { "content-type": m.mediaType }, m.bytes);
    if (res.status !== 201) await fail(`putting manifest ${m.reference}`, res);
    await res.body?.cancel();
    manifests.set(m.reference, res.headers.get("docker-content-digest") ?? "");
  }
  return { uploaded, manifests };
}

export interface RandomImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface RandomImage extends PushableImage {
  /** One per platform, in order. */
  images: {
    platform: RandomImagePlatform;
    manifestDigest: string;
    manifestBytes: Uint8Array;
    configDigest: string;
    config: Uint8Array;
    layers: { digest: string; bytes: Uint8Array; mediaType: string }[];
  }[];
  /** Set when the tag names an index. */
  indexDigest?: string;
  indexBytes?: Uint8Array;
}

function sha256Of(bytes: Uint8Array): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
}

/**
 * A tiny image with random bytes as layers (the client never untars): one manifest per
 * platform, under an index when there are several (or `index: true`), tagged `tag`.
 * `format` picks OCI or Docker schema 2 media types.
 */
export function makeRandomImage(
  opts: {
    tag?: string;
    platforms?: RandomImagePlatform[];
    layerSizes?: number[];
    index?: boolean;
    format?: "oci" | "docker";
  } = {},
): RandomImage {
  const tag = opts.tag ?? "latest";
  const platforms = opts.platforms ?? [{ os: "linux", architecture: process.arch === "arm64" ? "arm64" : "amd64" }];
  const docker = opts.format === "docker";
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const blobs = new Map<string, Uint8Array>();
  const manifests: PushableImage["manifests"] = [];
  const images: RandomImage["images"] = [];
  const manifestType = docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json";
  const layerType = docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar";
  const configType = docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json";
  const useIndex = opts.index ?? platforms.length > 1;
  for (const platform of platforms) {
    const layers = (opts.layerSizes ?? [1000, 3000]).map((n) => {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      return { digest: sha256Of(bytes), bytes, mediaType: layerType };
    });
    const config = enc({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    });
    const configDigest = sha256Of(config);
    blobs.set(configDigest, config);
    for (const l of layers) blobs.set(l.digest, l.bytes);
    const manifestBytes = enc({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: configType, digest: configDigest, size: config.byteLength },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.byteLength })),
    });
    const manifestDigest = sha256Of(manifestBytes);
    manifests.push({ reference: useIndex ? manifestDigest : tag, mediaType: manifestType, bytes: manifestBytes });
    images.push({ platform, manifestDigest, manifestBytes, configDigest, config, layers });
  }
  const out: RandomImage = { blobs, manifests, images };
  if (useIndex) {
    const indexType = docker ? "application/vnd.docker.distribution.manifest.list.v2+json" : "application/vnd.oci.image.index.v1+json";
    const indexBytes = enc({
      schemaVersion: 2,
      mediaType: indexType,
      manifests: images.map((i) => ({
        mediaType: manifestType,
        digest: i.manifestDigest,
        size: i.manifestBytes.byteLength,
        platform: i.platform,
      })),
    });
    manifests.push({ reference: tag, mediaType: indexType, bytes: indexBytes });
    out.indexDigest = sha256Of(indexBytes);
    out.indexBytes = indexBytes;
  }
  return out;
}
