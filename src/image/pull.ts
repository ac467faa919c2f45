// PullImage: from the name a kubelet sends to an image in containers-storage.
//
//   name ──short-name resolution──▶ candidates (aliases, search registries)
//        ──registries.conf────────▶ sources per candidate (mirrors in order, then the primary)
//        ──registry client────────▶ platform manifest + config (digests verified)
//        ──signature policy───────▶ accept or PolicyRejectedError (nothing stored)
//        ──layers─────────────────▶ each missing layer downloaded in parallel (bounded) and unpacked
//                                   while streaming into its own staging directory; once all are
//                                   staged, committed bottom-up as storage layers ("incomplete" first)
//        ──image record───────────▶ images.json with the manifest and config as podman stores them
//
// A layer already in the store (same ID: same content on the same parent chain) is not
// downloaded. Concurrent pulls of the same image, and of the same layer by different images,
// share one download. A failure or a kill at any point leaves no image and no visible layer:
// staging directories are removed (and swept at start-up), incomplete layers are deleted by the
// store on its next open.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { CrioError, GrpcCode, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { log } from "../log.ts";
import { countPulledBytes, recordLayerReused } from "../metrics/image-pull.ts";
import { Compression, imageIdFor, layerIdFor, manifestBigDataKey, signatureBigDataKey, type Store } from "../storage/index.ts";
import { credentialsForRepository, type AuthLookupOptions } from "./auth.ts";
import { LayerError, unpackLayer, type UnpackResult } from "./layer/unpack.ts";
import { evaluatePolicy, requirementsFor, type Policy, type SigstoreSignature } from "./policy.ts";
import { formatReference, type ImageReference } from "./reference.ts";
import { crioShortNameMode, pullSources, resolveShortName, type PullSource, type RegistriesConf } from "./registries-conf.ts";
import {
  BlobNotFoundError,
  DEFAULT_PARALLEL_DOWNLOADS,
  hostPlatform,
  ManifestNotFoundError,
  ParallelLimiter,
  RegistryClient,
  SingleFlight,
  type LayerInfo,
  type ResolvedImage,
} from "./registry/index.ts";

/** The image configuration fields the pull needs (OCI image-spec config). */
interface ImageConfigJson {
  created?: string;
  rootfs?: { type?: string; diff_ids?: string[] };
}

export interface PullOptions {
  /** The name from PullImageRequest.image.image. */
  image: string;
  /** registries.conf as loaded now. */
  registries: RegistriesConf;
  /** config.image.short_name_mode. */
  shortNameMode: string;
  /** The signature policy for this pull (namespace-specific when the pod has one). */
  policy: Policy;
  /** Where credentials come from: the CRI AuthConfig, the auth file. */
  auth: AuthLookupOptions;
  signal?: AbortSignal;
}

export interface PulledImage {
  id: string;
  /** The name the image was stored under. */
  name: string;
}

/** Blob media types whose layers this runtime can apply. */
function compressionOf(result: UnpackResult): Compression {
  return result.compression === "gzip" ? Compression.gzip : result.compression === "zstd" ? Compression.zstd : Compression.none;
}

/** One place a candidate was looked for, and why it was not taken from there. */
interface Attempt {
  reference: string;
  location: string;
  error: unknown;
}

function describeAttempts(attempts: Attempt[]): string {
  return attempts.map((a) => `${a.reference} (from ${a.location}): ${a.error instanceof Error ? a.error.message : String(a.error)}`).join("; ");
}

function isNotFound(err: unknown): boolean {
  return err instanceof ManifestNotFoundError || err instanceof BlobNotFoundError || (err instanceof CrioError && err.code === GrpcCode.NOT_FOUND);
}

/**
 * The error to report for a layer that could not be staged. A registry error (a digest mismatch,
 * a broken connection) reaches us through the decompressor, wrapped in a LayerError: that one is
 * what went wrong. A LayerError itself is the layer's fault, not the daemon's (which INTERNAL
 * would say): corrupt data is DATA_LOSS, a feature the unpacker lacks UNIMPLEMENTED, anything
 * else (an entry escaping the root, say) INVALID_ARGUMENT.
 */
function layerFailure(err: unknown, layer: LayerInfo): unknown {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof CrioError) return e;
    // The node's own trouble (a full disk, a quota) is not the layer's fault.
    const code = (e as { code?: unknown }).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new CrioError(GrpcCode.RESOURCE_EXHAUSTED, `layer ${layer.digest}: ${e.message}`, { cause: err });
    }
    if (code === "EIO" || code === "EROFS") return new CrioError(GrpcCode.INTERNAL, `layer ${layer.digest}: ${e.message}`, { cause: err });
  }
  if (!(err instanceof LayerError)) return err;
  const code = err.kind === "corrupt" ? GrpcCode.DATA_LOSS : err.kind === "unsupported" ? GrpcCode.UNIMPLEMENTED : GrpcCode.INVALID_ARGUMENT;
  return new CrioError(code, `layer ${layer.digest}: ${err.message}`, { cause: err });
}

/**
 * Bytes of layer data between forced collections. A pull streams each blob through several
 * buffers (the HTTP body, the decompressor's output, the tar reader); they are garbage at once,
 * but the collector, which does not see most of that memory, lets it pile up: about 100 MiB of
 * RSS growth for a 100 MiB image pulled six layers at a time. A full collection every 8 MiB of
 * downloaded data (counted over all parallel downloads) keeps the growth near 50 MiB whatever
 * the image size, for about 0.3 s more per 100 MiB (measured with scripts/bench-pull).
 */
const GC_EVERY_BYTES = 8 << 20;
let bytesSinceGc = 0;

/** Passes chunks through, forcing a collection every GC_EVERY_BYTES. */
function boundedMemory(): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, c) {
      bytesSinceGc += chunk.byteLength;
      if (bytesSinceGc >= GC_EVERY_BYTES) {
        bytesSinceGc = 0;
        Bun.gc(true);
      }
      c.enqueue(chunk);
    },
  });
}

/** A layer being downloaded and unpacked into its own directory, before it becomes a layer. */
interface StagedLayer {
  dir: string;
  result: UnpackResult;
}

export class Puller {
  private readonly imageFlights = new SingleFlight<PulledImage>();
  private readonly layerFlights = new SingleFlight<void>();
  private readonly staging: string;

  constructor(
    private readonly store: Store,
    private readonly opts: { root: string; parallelDownloads?: number; certsDirs?: string[] } ,
  ) {
    // Staging directories live on the same file system as the layers, so committing one is a
    // rename. Whatever a killed daemon left there is garbage.
    this.staging = join(opts.root, "overlay", ".crio-staging");
    rmSync(this.staging, { recursive: true, force: true });
    mkdirSync(this.staging, { recursive: true, mode: 0o700 });
  }

  /**
   * A client for one pull from one source. Clients are not shared between pulls: each pull has
   * its own credentials (the CRI AuthConfig), and a shared token cache must never serve one
   * pull's access to another.
   */
  private client(source: PullSource, auth: AuthLookupOptions): RegistryClient {
    // The endpoint is the host alone: source.reference is already rewritten onto the location,
    // namespace included, and its path is the full repository on that host.
    return new RegistryClient({
      endpoint: { location: source.reference.domain, insecure: source.insecure },
      credentials: (host, repo) => credentialsForRepository(host, repo, auth),
      ...(this.opts.certsDirs ? { certsDirs: this.opts.certsDirs } : {}),
    });
  }

  /** Pulls `opts.image`; concurrent pulls of the same name with the same credentials share one. */
  async pull(opts: PullOptions): Promise<PulledImage> {
    const resolution = resolveShortName(opts.registries, opts.image, crioShortNameMode(opts.shortNameMode));
    if (resolution.description) log.info(resolution.description);
    const key = `${opts.image}\u0000${JSON.stringify(opts.auth.cri ?? {})}\u0000${opts.auth.authFile ?? ""}`;
    return this.imageFlights.do(key, () => this.pullCandidates(resolution.candidates, opts), opts.signal);
  }

  private async pullCandidates(candidates: readonly ImageReference[], opts: PullOptions): Promise<PulledImage> {
    const attempts: Attempt[] = [];
    for (const logical of candidates) {
      const sources = pullSources(opts.registries, logical);
      for (const source of sources) {
        const failed = (err: unknown) => {
          opts.signal?.throwIfAborted();
          attempts.push({ reference: formatReference(source.reference), location: source.location, error: err });
          log.debug("pull attempt failed", { image: formatReference(logical), location: source.location, error: err });
        };
        // As containers/image's docker source: whatever keeps a source from giving the manifest
        // (not there, down, refusing us) moves on to the next one, so a mirror that is down
        // falls back to the primary. Once a source has served the manifest the pull is decided
        // there: a refusal by policy or a broken image is not a reason to look elsewhere for a
        // copy of the same name... but another candidate name may still work, as CRI-O tries
        // every candidate.
        let found: { client: RegistryClient; resolved: ResolvedImage };
        try {
          found = await this.resolveFrom(source, opts);
        } catch (err) {
          failed(err);
          continue;
        }
        try {
          return await this.pullResolved(logical, source, found.client, found.resolved, opts);
        } catch (err) {
          failed(err);
          break;
        }
      }
    }
    const last = attempts[attempts.length - 1]?.error;
    if (attempts.length > 0 && attempts.every((a) => isNotFound(a.error))) {
      throw new NotFoundError(`image ${JSON.stringify(opts.image)} not found: ${describeAttempts(attempts)}`);
    }
    if (attempts.length === 1 && last instanceof Error) throw last;
    const code = last instanceof CrioError ? last.code : GrpcCode.UNKNOWN;
    throw new CrioError(code, `pulling image ${JSON.stringify(opts.image)} failed: ${describeAttempts(attempts)}`, { cause: last });
  }

  /** The platform manifest of `source.reference`, from that source. */
  private async resolveFrom(source: PullSource, opts: PullOptions): Promise<{ client: RegistryClient; resolved: ResolvedImage }> {
    const client = this.client(source, opts.auth);
    const ref = source.reference.digest ?? source.reference.tag ?? "latest";
    const resolved = await client.resolveImage(source.reference.path, ref, hostPlatform(), opts.signal ? { signal: opts.signal } : {});
    return { client, resolved };
  }

  private async pullResolved(
    logical: ImageReference,
    source: PullSource,
    client: RegistryClient,
    resolved: ResolvedImage,
    opts: PullOptions,
  ): Promise<PulledImage> {
    const repo = source.reference.path;
    const signal = opts.signal;

    const { requirements } = requirementsFor(opts.policy, logical);
    await evaluatePolicy(opts.policy, {
      reference: logical,
      manifestDigest: resolved.manifestDigest,
      manifest: resolved.manifestBytes,
      ...(requirements.some((r) => r.type === "sigstoreSigned")
        ? { signatures: () => this.cosignSignatures(client, repo, resolved.manifestDigest, signal) }
        : {}),
    });

    const configBytes = await client.fetchBlobBytes(repo, resolved.config, signal ? { signal } : {});
    let config: ImageConfigJson;
    try {
      config = JSON.parse(new TextDecoder().decode(configBytes)) as ImageConfigJson;
    } catch (err) {
      throw new InvalidArgumentError(`image config ${resolved.config.digest} is not JSON`, { cause: err });
    }
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== resolved.layers.length) {
      throw new InvalidArgumentError(
        `image ${formatReference(logical)}: the manifest lists ${resolved.layers.length} layers but the config ${diffIds.length} diff IDs`,
      );
    }

    const topLayer = await this.pullLayers(client, repo, resolved, diffIds, signal);
    const id = imageIdFor(resolved.config.digest);
    const name = formatReference(logical);
    const instance = resolved.manifestDigest;
    const bigData = [
      { key: resolved.config.digest, data: configBytes },
      ...(resolved.indexDigest && resolved.indexBytes ? [{ key: manifestBigDataKey(resolved.indexDigest), data: resolved.indexBytes }] : []),
      { key: manifestBigDataKey(instance), data: resolved.manifestBytes },
      { key: "manifest", data: resolved.manifestBytes },
      { key: signatureBigDataKey(instance), data: new Uint8Array(0) },
    ];
    await this.store.createImage(
      {
        id,
        names: [name],
        ...(topLayer !== undefined ? { topLayer } : {}),
        ...(config.created ? { created: config.created } : {}),
        digest: resolved.indexDigest ?? instance,
        metadata: JSON.stringify({ "signatures-sizes": { [instance]: [] } }),
      },
      bigData,
    );
    log.info(`Pulled image: ${name}@${resolved.indexDigest ?? instance}`, { id });
    return { id, name };
  }

  /**
   * Downloads and unpacks the missing layers in parallel, each into its own staging directory,
   * and commits them bottom-up. Returns the top layer's ID (undefined for an image without layers).
   */
  private async pullLayers(
    client: RegistryClient,
    repo: string,
    resolved: ResolvedImage,
    diffIds: string[],
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const ids: string[] = [];
    let parent: string | undefined;
    for (const diffId of diffIds) {
      parent = layerIdFor(parent, diffId);
      ids.push(parent);
    }
    const present = await Promise.all(ids.map((id) => this.store.layer(id)));
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const limiter = new ParallelLimiter(this.opts.parallelDownloads ?? DEFAULT_PARALLEL_DOWNLOADS);
    const staged = new Map<number, Promise<StagedLayer>>();
    try {
      resolved.layers.forEach((layer, i) => {
        if (present[i]) return recordLayerReused(`${client.transport.registry}/${repo}`, layer);
        const p = limiter.run(() => this.stage(client, repo, layer, diffIds[i]!, abort.signal), abort.signal);
        p.catch(() => abort.abort()); // one failure stops the other downloads
        staged.set(i, p);
      });
      // Nothing is committed until every layer is staged: a bad upper layer must not leave the
      // lower ones behind, and the first failure (not a sibling's abort it caused) is the error.
      await Promise.all(staged.values());
      for (let i = 0; i < ids.length; i++) {
        if (present[i]) continue;
        const layer = resolved.layers[i]!;
        const id = ids[i]!;
        const parentId = i > 0 ? ids[i - 1] : undefined;
        // Two pulls that need the same layer: the first commits it, the second finds it.
        await this.layerFlights.do(`layer ${id}`, async () => {
          const stage = await staged.get(i)!;
          if (await this.store.layer(id)) {
            rmSync(stage.dir, { recursive: true, force: true });
            return;
          }
          await this.store.createLayer(
            {
              id,
              ...(parentId !== undefined ? { parent: parentId } : {}),
              uncompressedDigest: diffIds[i]!,
              compressedDigest: layer.digest,
              compressedSize: layer.size,
              compression: compressionOf(stage.result),
            },
            async (diffDir) => {
              // The staged tree becomes the layer's diff directory in one rename. A layer without
              // a root entry keeps the root mode and owner the store chose (0555 or the parent's),
              // not the staging directory's 0700.
              if (!stage.result.rootEntry) {
                const st = statSync(diffDir);
                chmodSync(stage.dir, st.mode & 0o7777);
                chownSync(stage.dir, st.uid, st.gid);
              }
              rmdirSync(diffDir);
              renameSync(stage.dir, diffDir);
              return {
                diffDigest: stage.result.diffDigest,
                diffSize: stage.result.diffSize,
                uidset: stage.result.uidset,
                gidset: stage.result.gidset,
              };
            },
          );
        });
      }
    } catch (err) {
      abort.abort();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // Whatever was staged and not committed goes away.
      const leftovers = await Promise.allSettled(staged.values());
      for (const r of leftovers) if (r.status === "fulfilled") rmSync(r.value.dir, { recursive: true, force: true });
    }
    return ids[ids.length - 1];
  }

  /** One streaming pass: download → decompress → digest → untar, into a fresh staging dir. */
  private async stage(client: RegistryClient, repo: string, layer: LayerInfo, diffId: string, signal: AbortSignal): Promise<StagedLayer> {
    const dir = mkdtempSync(join(this.staging, "layer-"));
    try {
      const stream = (await client.fetchBlob(repo, layer, signal)).pipeThrough(countPulledBytes(layer)).pipeThrough(boundedMemory());
      const result = await unpackLayer(stream, dir, {
        mediaType: layer.mediaType,
        signal,
        onWarning: (message) => log.warn(`layer ${layer.digest}: ${message}`),
      });
      if (result.diffDigest !== diffId) {
        throw new InvalidArgumentError(`layer ${layer.digest}: its content has digest ${result.diffDigest}, but the image config says ${diffId}`);
      }
      return { dir, result };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw layerFailure(err, layer);
    }
  }

  /** Cosign signatures of a manifest: the `sha256-<hex>.sig` artifact in the same repository. */
  private async cosignSignatures(client: RegistryClient, repo: string, manifestDigest: string, signal?: AbortSignal): Promise<SigstoreSignature[]> {
    const tag = `${manifestDigest.replace(":", "-")}.sig`;
    let manifest;
    try {
      manifest = await client.getManifest(repo, tag, signal ? { signal } : {});
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const parsed = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
      layers?: { digest: string; size: number; annotations?: Record<string, string> }[];
    };
    const out: SigstoreSignature[] = [];
    for (const l of parsed.layers ?? []) {
      const a = l.annotations ?? {};
      const sig = a["dev.cosignproject.cosign/signature"];
      if (sig === undefined) continue;
      const payload = await client.fetchBlobBytes(repo, { digest: l.digest, size: l.size }, signal ? { signal } : {});
      out.push({
        payload,
        signatureB64: sig,
        ...(a["dev.sigstore.cosign/certificate"] ? { certificatePem: a["dev.sigstore.cosign/certificate"] } : {}),
        ...(a["dev.sigstore.cosign/chain"] ? { chainPem: a["dev.sigstore.cosign/chain"] } : {}),
        ...(a["dev.sigstore.cosign/bundle"] ? { bundleJson: a["dev.sigstore.cosign/bundle"] } : {}),
      });
    }
    return out;
  }
}
