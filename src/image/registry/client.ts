// The pull side of the OCI distribution spec (distribution-spec spec.md "Pull"): manifests by
// tag or digest, resolving an index to the platform's manifest, and blobs streamed with their
// digest and length verified before the stream ends.
import { InvalidArgumentError } from "../../errors.ts";
import { DigestHasher, digestOf, isDigest, parseDigest } from "./digest.ts";
import {
  BlobNotFoundError,
  DigestMismatchError,
  ManifestNotFoundError,
  RegistryResponseError,
  RegistryUnavailableError,
  UnsupportedMediaTypeError,
  abortError,
} from "./errors.ts";
import {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  isImageManifestMediaType,
  isIndexMediaType,
  manifestMediaType,
  parseImageManifest,
  parseIndex,
  type Descriptor,
  type ImageManifest,
} from "./manifest.ts";
import { choosePlatform, formatPlatform, hostPlatform, type PlatformSpec } from "./platform.ts";
import { RegistryTransport, isRetryableNetworkError, readCapped } from "./transport.ts";
import type { RegistryClientOptions } from "./types.ts";

/** distribution's reference grammar for a repository path (path components joined by "/"). */
const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^\w[\w.-]{0,127}$/;

export interface FetchedManifest {
  mediaType: string;
  bytes: Uint8Array;
  /** The digest of `bytes` (the reference itself when it was a digest). */
  digest: string;
}

export interface BlobDescriptor {
  digest: string;
  /** Expected length; when given, a longer or shorter body is a DigestMismatchError. */
  size?: number;
}

export interface LayerInfo {
  digest: string;
  size: number;
  mediaType: string;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface ResolvedImage {
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  manifestDigest: string;
  /** The image manifest's media type (OCI or Docker schema 2). */
  mediaType: string;
  /** Set when `reference` named an index / manifest list. */
  indexDigest?: string;
  indexBytes?: Uint8Array;
  indexMediaType?: string;
  /** The platform of the chosen index entry (absent for a single manifest). */
  platform?: PlatformSpec;
  config: { digest: string; size: number; mediaType: string };
  layers: LayerInfo[];
}

export class RegistryClient {
  readonly transport: RegistryTransport;

  constructor(opts: RegistryClientOptions) {
    this.transport = new RegistryTransport(opts);
  }

  /** host[:port] of the endpoint, as configured. */
  get registry(): string {
    return this.transport.registry;
  }

  /** Detects HTTPS/HTTP and the registry's challenges (done by every call anyway). */
  ping(signal?: AbortSignal): Promise<void> {
    return this.transport.ping(signal);
  }

  /**
   * GET /v2/<name>/manifests/<reference> for an OCI index/manifest or Docker list/manifest.
   * A digest reference is verified against the bytes; for a tag, a Docker-Content-Digest header
   * is verified when present. Schema 1 and other media types are UnsupportedMediaTypeError.
   */
  async getManifest(repo: string, reference: string, opts: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    const repository = this.checkRepo(repo);
    const byDigest = isDigest(reference);
    if (!byDigest && !TAG_RE.test(reference)) {
      throw new InvalidArgumentError(`invalid tag or digest ${JSON.stringify(reference.slice(0, 200))}`);
    }
    const name = this.display(repository, reference);
    const what = `reading manifest ${name}`;
    const res = await this.transport.request("GET", `/v2/${repository}/manifests/${reference}`, {
      repository,
      headers: { accept: MANIFEST_ACCEPT },
      what,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.status === 404) {
      const err = await this.transport.statusError(res, what, { repository });
      throw new ManifestNotFoundError(this.registry, repository, reference, detailOf(err.message));
    }
    if (res.status !== 200) throw await this.transport.statusError(res, what, { repository });
    const bytes = await this.readBody(res, MAX_MANIFEST_BYTES, what, opts.signal);
    const mediaType = manifestMediaType(bytes, res.headers.get("content-type"), name);
    if (!isIndexMediaType(mediaType) && !isImageManifestMediaType(mediaType)) {
      throw new UnsupportedMediaTypeError(mediaType, `${name}: unsupported manifest media type ${mediaType}`);
    }
    let digest: string;
    if (byDigest) {
      const actual = digestOf(bytes, parseDigest(reference).algorithm);
      if (actual !== reference) throw new DigestMismatchError(`manifest ${name}`, { expected: reference, actual });
      digest = reference;
    } else {
      digest = digestOf(bytes);
      const header = res.headers.get("docker-content-digest");
      if (header && isDigest(header)) {
        const actual = digestOf(bytes, parseDigest(header).algorithm);
        if (actual !== header) {
          throw new DigestMismatchError(`manifest ${name} (Docker-Content-Digest)`, { expected: header, actual });
        }
      }
    }
    return { mediaType, bytes, digest };
  }

  /**
   * The image for `platform` (default: this host, its ARM variant from /proc/cpuinfo): follows an
   * index / manifest list to the matching manifest and checks that it is a container image whose
   * layers this runtime can use. A single manifest is returned as is; comparing its config's
   * os/architecture with the wanted platform is the caller's (containers/image only warns).
   */
  async resolveImage(
    repo: string,
    reference: string,
    platform: PlatformSpec = hostPlatform(),
    opts: { signal?: AbortSignal } = {},
  ): Promise<ResolvedImage> {
    const repository = this.checkRepo(repo);
    const top = await this.getManifest(repo, reference, opts);
    let chosen = top;
    let index: { digest: string; bytes: Uint8Array; mediaType: string; platform: PlatformSpec } | undefined;
    if (isIndexMediaType(top.mediaType)) {
      const name = this.display(repository, reference);
      const list = parseIndex(top.bytes, name);
      const entry = choosePlatform(list, platform, name);
      chosen = await this.getManifest(repo, entry.digest, opts);
      if (chosen.bytes.byteLength !== entry.size) {
        throw new DigestMismatchError(`manifest ${this.display(repository, entry.digest)}`, {
          expected: entry.digest,
          expectedSize: entry.size,
          actualSize: chosen.bytes.byteLength,
        });
      }
      if (!isImageManifestMediaType(chosen.mediaType)) {
        throw new UnsupportedMediaTypeError(
          chosen.mediaType,
          `${name}: the entry for ${formatPlatform(platform)} is ${chosen.mediaType}, not an image manifest (nested indexes are not supported)`,
        );
      }
      index = { digest: top.digest, bytes: top.bytes, mediaType: top.mediaType, platform: entry.platform! };
    }
    const manifest = parseImageManifest(chosen.bytes, this.display(repository, chosen.digest));
    const resolved: ResolvedImage = {
      manifest,
      manifestBytes: chosen.bytes,
      manifestDigest: chosen.digest,
      mediaType: chosen.mediaType,
      config: { digest: manifest.config.digest, size: manifest.config.size, mediaType: manifest.config.mediaType },
      layers: manifest.layers.map(layerInfo),
    };
    if (index) {
      resolved.indexDigest = index.digest;
      resolved.indexBytes = index.bytes;
      resolved.indexMediaType = index.mediaType;
      resolved.platform = index.platform;
    }
    return resolved;
  }

  /**
   * Streams blob `desc.digest` of `repo` (redirects followed, the Authorization header kept from
   * other origins). Nothing is buffered beyond a chunk. The stream verifies as it goes: more bytes
   * than `desc.size` errors at once; at the end a short body or a different digest errors
   * with DigestMismatchError instead of closing. So a consumer must read until `done` (a tar
   * reader that stops at the end-of-archive blocks must drain the rest) and take only a clean end
   * as success. A connection that breaks mid-body is resumed with a Range request (bounded by the
   * retry count). The promise rejects, before any byte, for 404 (BlobNotFoundError), auth and
   * server errors.
   */
  async fetchBlob(repo: string, desc: BlobDescriptor, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const repository = this.checkRepo(repo);
    const { algorithm } = parseDigest(desc.digest);
    const size = desc.size;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new InvalidArgumentError(`invalid size ${size} for blob ${desc.digest}`);
    }
    const what = `fetching blob ${desc.digest} from ${this.registry}/${repository}`;
    let res = await this.openBlob(repository, desc.digest, 0, what, signal);
    const len = res.headers.get("content-length");
    if (size !== undefined && len !== null && /^\d+$/.test(len) && Number(len) !== size) {
      await res.body?.cancel();
      throw new DigestMismatchError(`blob ${desc.digest} in ${this.registry}/${repository}`, {
        expected: desc.digest,
        expectedSize: size,
        actualSize: Number(len),
        tooLong: Number(len) > size,
      });
    }
    const hasher = new DigestHasher(algorithm);
    let reader = res.body!.getReader();
    let resumes = 0;
    let skip = 0; // bytes to drop from a resumed body that the server sent from the start
    const mismatch = (d: { actual?: string; actualSize: number; tooLong?: boolean }) =>
      new DigestMismatchError(`blob ${desc.digest} in ${this.registry}/${repository}`, {
        expected: desc.digest,
        ...(size !== undefined ? { expectedSize: size } : {}),
        ...d,
      });

    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            let r: Bun.ReadableStreamDefaultReadResult<Uint8Array>;
            try {
              r = await reader.read();
            } catch (e) {
              if (signal?.aborted) {
                controller.error(abortError(signal, what));
                return;
              }
              const interrupted = size === undefined || hasher.bytes < size;
              if (interrupted && resumes < this.transport.maxAttempts - 1 && isRetryableNetworkError(e)) {
                resumes++;
                try {
                  res = await this.openBlob(repository, desc.digest, hasher.bytes, what, signal);
                } catch (e2) {
                  controller.error(e2);
                  return;
                }
                skip = res.status === 206 ? 0 : hasher.bytes;
                reader = res.body!.getReader();
                continue;
              }
              controller.error(
                new RegistryUnavailableError(
                  this.registry,
                  `${what}: ${this.transport.redact(e instanceof Error ? e.message : String(e))} after ${hasher.bytes}${size !== undefined ? ` of ${size}` : ""} bytes`,
                  { cause: e },
                ),
              );
              return;
            }
            if (r.done) {
              const actualSize = hasher.bytes;
              const actual = hasher.digest();
              if (skip > 0 || (size !== undefined && actualSize !== size) || actual !== desc.digest) {
                controller.error(mismatch({ actual, actualSize }));
              } else {
                controller.close();
              }
              return;
            }
            let chunk = r.value;
            if (skip > 0) {
              const drop = Math.min(skip, chunk.byteLength);
              skip -= drop;
              chunk = chunk.subarray(drop);
              if (chunk.byteLength === 0) continue;
            }
            if (size !== undefined && hasher.bytes + chunk.byteLength > size) {
              await reader.cancel().catch(() => {});
              controller.error(mismatch({ actualSize: hasher.bytes + chunk.byteLength, tooLong: true }));
              return;
            }
            hasher.update(chunk);
            controller.enqueue(chunk);
            return;
          }
        },
        cancel: async (reason) => {
          await reader.cancel(reason).catch(() => {});
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * A small blob (an image config) in memory, verified. Refuses a descriptor larger than
   * `maxBytes` (default 4 MiB, containers/image's limit for configs) before fetching.
   */
  async fetchBlobBytes(
    repo: string,
    desc: BlobDescriptor,
    opts: { signal?: AbortSignal; maxBytes?: number } = {},
  ): Promise<Uint8Array> {
    const max = opts.maxBytes ?? MAX_MANIFEST_BYTES;
    if (desc.size !== undefined && desc.size > max) {
      throw new RegistryResponseError(this.registry, `blob ${desc.digest} is ${desc.size} bytes, over the limit of ${max} for this read`);
    }
    const stream = await this.fetchBlob(repo, desc, opts.signal);
    // The verified stream, read with the same cap as any other body.
    return readCapped(new Response(stream), max, `blob ${desc.digest}`, this.registry);
  }

  private async openBlob(repository: string, digest: string, offset: number, what: string, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.transport.request("GET", `/v2/${repository}/blobs/${digest}`, {
      repository,
      headers,
      what,
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404) {
      const err = await this.transport.statusError(res, what, { repository });
      throw new BlobNotFoundError(this.registry, repository, digest, detailOf(err.message));
    }
    if (offset > 0 && res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
      if (m && Number(m[1]) === offset) return res;
      await res.body?.cancel();
      throw new RegistryResponseError(this.registry, `${what}: resumed at ${offset} but the registry answered range ${JSON.stringify(res.headers.get("content-range"))}`);
    }
    if (res.status !== 200) throw await this.transport.statusError(res, what, { repository });
    if (!res.body) throw new RegistryResponseError(this.registry, `${what}: empty response`);
    return res;
  }

  private async readBody(res: Response, max: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    try {
      return await readCapped(res, max, what, this.registry);
    } catch (e) {
      if (signal?.aborted) throw abortError(signal, what);
      if (e instanceof RegistryResponseError) throw e;
      throw new RegistryUnavailableError(this.registry, `${what}: ${this.transport.redact((e as Error).message ?? String(e))}`, { cause: e });
    }
  }

  private checkRepo(repo: string): string {
    if (!REPOSITORY_RE.test(repo)) throw new InvalidArgumentError(`invalid repository name ${JSON.stringify(repo.slice(0, 300))}`);
    const full = this.transport.fullRepository(repo);
    if (!REPOSITORY_RE.test(full)) throw new InvalidArgumentError(`invalid repository path ${JSON.stringify(full.slice(0, 300))}`);
    return full;
  }

  private display(repository: string, reference: string): string {
    return `${this.registry}/${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
  }
}

function layerInfo(d: Descriptor): LayerInfo {
  const l: LayerInfo = { digest: d.digest, size: d.size, mediaType: d.mediaType };
  if (d.urls) l.urls = d.urls;
  if (d.annotations) l.annotations = d.annotations;
  return l;
}

/** The registry's own words from a statusError message: the part in the final parentheses. */
function detailOf(message: string): string | undefined {
  const m = /\(([^()]*)\)$/.exec(message);
  return m?.[1];
}
