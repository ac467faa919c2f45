// Image pull metrics, recorded where the puller moves bytes (CRI-O records them from
// containers/image's progress channel, server/image_pull.go):
//   image_pulls_bytes_total{mediatype,size}  every layer byte received, as it arrives
//   image_pulls_layer_size                   a layer's size once it has been received whole
//   image_layer_reuse_total{name}            a layer already in storage, not downloaded
//   image_pulls_skipped_bytes_total{size}    the bytes that layer would have cost
//   image_pulls_success_total                a PullImage that stored its image
//   image_pulls_failure_total{error}         one that did not, by kind of error
import { crioMetrics, sizeBucket, type CrioMetrics } from "./crio.ts";

/** What the pull knows of a blob before fetching it. */
export interface PulledArtifact {
  mediaType: string;
  /** Size from the manifest. */
  size: number;
}

/**
 * Passes a layer's bytes through, counting them into image_pulls_bytes_total as they arrive (a
 * failed download counts what it received) and observing the layer's size once it has all come.
 */
export function countPulledBytes(layer: PulledArtifact, m: CrioMetrics = crioMetrics): TransformStream<Uint8Array, Uint8Array> {
  const labels = { mediatype: layer.mediaType, size: sizeBucket(layer.size) };
  return new TransformStream({
    transform(chunk, c) {
      m.imagePullsBytesTotal.add(chunk.byteLength, labels);
      c.enqueue(chunk);
    },
    flush() {
      m.imagePullsLayerSize.observe(layer.size);
    },
  });
}

/** A layer found in storage: `image` is the repository it was wanted for, as registry/path. */
export function recordLayerReused(image: string, layer: { digest: string; size: number }, m: CrioMetrics = crioMetrics): void {
  m.imageLayerReuseTotal.inc({ name: `${image}@${layer.digest}` });
  m.imagePullsSkippedBytesTotal.add(layer.size, { size: sizeBucket(layer.size) });
}

/** Counts the outcome of a pull and passes it on unchanged. */
export function observePull<T>(pull: Promise<T>, m: CrioMetrics = crioMetrics): Promise<T> {
  return pull.then(
    (v) => {
      m.imagePullsSuccessTotal.inc();
      return v;
    },
    (err: unknown) => {
      m.imagePullsFailureTotal.inc({ error: imagePullFailureLabel(err) });
      throw err;
    },
  );
}

/**
 * The distribution spec's error codes with the messages registries send with them
 * (docker/distribution registry/api/errcode and api/v2 descriptors), sorted by code as
 * errcode.GetErrorAllDescriptors returns them. CRI-O labels a failure with the first code whose
 * message the error text contains.
 */
const REGISTRY_ERRORS: readonly (readonly [string, string])[] = [
  ["BLOB_UNKNOWN", "blob unknown to registry"],
  ["BLOB_UPLOAD_INVALID", "blob upload invalid"],
  ["BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"],
  ["DENIED", "requested access to the resource is denied"],
  ["DIGEST_INVALID", "provided digest did not match uploaded content"],
  ["MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry"],
  ["MANIFEST_INVALID", "manifest invalid"],
  ["MANIFEST_UNKNOWN", "manifest unknown"],
  ["NAME_INVALID", "invalid repository name"],
  ["NAME_UNKNOWN", "repository name not known to registry"],
  ["SIZE_INVALID", "provided length did not match content length"],
  ["TOOMANYREQUESTS", "too many requests"],
  ["UNAUTHORIZED", "authentication required"],
  ["UNAVAILABLE", "service unavailable"],
  ["UNSUPPORTED", "the operation is unsupported"],
];

/** The error and its causes, outermost first. */
function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && out.length < 16; e = e instanceof Error ? e.cause : undefined) out.push(e);
  return out;
}

function text(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The `error` label of image_pulls_failure_total, with CRI-O's values: a registry error code
 * (MANIFEST_UNKNOWN, UNAUTHORIZED, DENIED, TOOMANYREQUESTS, ...) when the registry gave one or
 * the registry client's typed error says which, CONNECTION_REFUSED or CONNECTION_TIMEOUT when
 * the registry could not be reached, NOT_FOUND for other 404s, else UNKNOWN.
 */
export function imagePullFailureLabel(err: unknown): string {
  const errors = chain(err);
  const message = errors.map(text).join("\n").toLowerCase();
  for (const [code, phrase] of REGISTRY_ERRORS) if (message.includes(phrase)) return code;
  for (const e of errors) {
    const kind = (e as { kind?: unknown }).kind;
    if (kind === "Unauthorized") return (e as { status?: unknown }).status === 403 ? "DENIED" : "UNAUTHORIZED";
    if (kind === "TooManyRequests") return "TOOMANYREQUESTS";
    if (kind === "ManifestNotFound") return "MANIFEST_UNKNOWN";
    if (kind === "BlobNotFound") return "BLOB_UNKNOWN";
  }
  for (const e of errors) {
    const code = (e as { code?: unknown }).code;
    if (code === "ConnectionRefused" || code === "ECONNREFUSED") return "CONNECTION_REFUSED";
    if (code === "ETIMEDOUT" || code === "ConnectionTimedOut") return "CONNECTION_TIMEOUT";
  }
  if (message.includes("connection refused") || message.includes("unable to connect")) return "CONNECTION_REFUSED";
  if (message.includes("connection timed out")) return "CONNECTION_TIMEOUT";
  // Every candidate missing: the puller's NotFoundError (gRPC NOT_FOUND) without a registry code.
  if (errors.some((e) => (e as { code?: unknown }).code === 5) || message.includes("404")) return "NOT_FOUND";
  return "UNKNOWN";
}
