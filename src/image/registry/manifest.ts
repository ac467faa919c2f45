// Manifests, indexes and descriptors: the media types the client accepts, telling them apart,
// and checking the fields it relies on (OCI image-spec manifest.md, image-index.md,
// descriptor.md; Docker's manifest v2 schema 2).
import { isDigest } from "./digest.ts";
import { InvalidManifestError, UnsupportedMediaTypeError } from "./errors.ts";

export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociForeignLayer: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociForeignLayerGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociForeignLayerZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** The Accept header of a manifest GET: the four types this client can use, best first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(", ");

/** A manifest or config larger than this is refused (containers/image's iolimits use 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export function isIndexMediaType(t: string): boolean {
  return t === MediaType.ociIndex || t === MediaType.dockerManifestList;
}

export function isImageManifestMediaType(t: string): boolean {
  return t === MediaType.ociManifest || t === MediaType.dockerManifest;
}

const LAYER_TYPES = new Set<string>([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.dockerLayer,
  MediaType.dockerLayerGzip,
]);
const FOREIGN_LAYER_TYPES = new Set<string>([
  MediaType.ociForeignLayer,
  MediaType.ociForeignLayerGzip,
  MediaType.ociForeignLayerZstd,
  MediaType.dockerForeignLayerGzip,
]);
const CONFIG_TYPES = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stripParams(contentType: string | null): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new InvalidManifestError(`${what}: not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new InvalidManifestError(`${what}: not a JSON object`);
  return v;
}

function schema1Error(what: string): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    MediaType.dockerSchema1,
    `${what}: Docker schema 1 manifests are not supported (deprecated since 2017; push the image again with a current client)`,
  );
}

/**
 * The media type of a fetched manifest. The JSON `mediaType` field wins (the OCI spec requires it
 * to match the descriptor, and registries often answer a generic Content-Type); without it the
 * Content-Type decides, and failing that the shape of the document, as containers/image's
 * GuessMIMEType does. Schema 1 in any form is refused here.
 */
export function manifestMediaType(bytes: Uint8Array, contentType: string | null, what: string): string {
  const header = stripParams(contentType);
  if (header === MediaType.dockerSchema1 || header === MediaType.dockerSchema1Signed) throw schema1Error(what);
  const doc = parseJson(bytes, what);
  if (doc.schemaVersion === 1) throw schema1Error(what);
  if (typeof doc.mediaType === "string" && doc.mediaType !== "") {
    if (doc.mediaType === MediaType.dockerSchema1 || doc.mediaType === MediaType.dockerSchema1Signed) throw schema1Error(what);
    return doc.mediaType;
  }
  if (isIndexMediaType(header) || isImageManifestMediaType(header)) return header;
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (isObject(doc.config) && Array.isArray(doc.layers)) return MediaType.ociManifest;
  throw new UnsupportedMediaTypeError(header, `${what}: unrecognised manifest (Content-Type ${JSON.stringify(header)})`);
}

function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw new InvalidManifestError(`${what}: not an object`);
  const { mediaType, digest, size, urls, annotations, platform } = v;
  if (typeof mediaType !== "string" || mediaType === "") throw new InvalidManifestError(`${what}: missing mediaType`);
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw new InvalidManifestError(`${what}: invalid digest ${JSON.stringify(String(digest).slice(0, 200))}`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidManifestError(`${what}: invalid size ${JSON.stringify(size)}`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === "string")) throw new InvalidManifestError(`${what}: invalid urls`);
    if (urls.length > 0) d.urls = urls as string[];
  }
  if (annotations !== undefined) {
    if (!isObject(annotations) || !Object.values(annotations).every((a) => typeof a === "string")) {
      throw new InvalidManifestError(`${what}: invalid annotations`);
    }
    d.annotations = annotations as Record<string, string>;
  }
  if (platform !== undefined) {
    if (!isObject(platform) || typeof platform.os !== "string" || typeof platform.architecture !== "string") {
      throw new InvalidManifestError(`${what}: invalid platform`);
    }
    const p: Platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === "string" && platform.variant !== "") p.variant = platform.variant;
    if (typeof platform["os.version"] === "string") p["os.version"] = platform["os.version"];
    if (Array.isArray(platform["os.features"])) p["os.features"] = platform["os.features"].filter((f) => typeof f === "string");
    d.platform = p;
  }
  return d;
}

function checkSchemaVersion(doc: Record<string, unknown>, what: string): void {
  if (doc.schemaVersion === 1) throw schema1Error(what);
  if (doc.schemaVersion !== 2) throw new InvalidManifestError(`${what}: unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
}

/** Parses an OCI image index or Docker manifest list. */
export function parseIndex(bytes: Uint8Array, what: string): ImageIndex {
  const doc = parseJson(bytes, what);
  checkSchemaVersion(doc, what);
  if (!Array.isArray(doc.manifests)) throw new InvalidManifestError(`${what}: missing manifests`);
  const manifests = doc.manifests.map((m, i) => checkDescriptor(m, `${what}: manifests[${i}]`));
  const index: ImageIndex = { schemaVersion: 2, manifests };
  if (typeof doc.mediaType === "string") index.mediaType = doc.mediaType;
  if (isObject(doc.annotations)) index.annotations = doc.annotations as Record<string, string>;
  return index;
}

/**
 * Parses an OCI image manifest or Docker schema 2 manifest and checks that it is a container
 * image this runtime can unpack: an image config, and layers that are plain, gzip or zstd tars
 * served by the registry. Encrypted layers, layers only at foreign URLs and artifacts (a Helm
 * chart, a signature) are refused with UnsupportedMediaTypeError naming the media type.
 */
export function parseImageManifest(bytes: Uint8Array, what: string): ImageManifest {
  const doc = parseJson(bytes, what);
  checkSchemaVersion(doc, what);
  if (doc.config === undefined) throw new InvalidManifestError(`${what}: missing config`);
  const config = checkDescriptor(doc.config, `${what}: config`);
  if (!Array.isArray(doc.layers)) throw new InvalidManifestError(`${what}: missing layers`);
  const layers = doc.layers.map((l, i) => checkDescriptor(l, `${what}: layers[${i}]`));
  if (!CONFIG_TYPES.has(config.mediaType)) {
    throw new UnsupportedMediaTypeError(
      config.mediaType,
      `${what}: not a container image (config media type ${config.mediaType})`,
    );
  }
  for (const [i, l] of layers.entries()) {
    if (l.mediaType.endsWith("+encrypted")) {
      throw new UnsupportedMediaTypeError(l.mediaType, `${what}: layer ${i} (${l.digest}) is encrypted (${l.mediaType}); decryption is not supported`);
    }
    if (FOREIGN_LAYER_TYPES.has(l.mediaType)) {
      // A non-distributable layer the registry holds anyway is an ordinary blob; one that exists
      // only at external URLs would have to be fetched from them, which this client does not do.
      if (l.urls !== undefined && l.urls.length > 0) {
        throw new UnsupportedMediaTypeError(
          l.mediaType,
          `${what}: layer ${i} (${l.digest}) is a foreign layer (${l.mediaType}) to be fetched from external URLs, which is not supported`,
        );
      }
      continue;
    }
    if (!LAYER_TYPES.has(l.mediaType)) {
      throw new UnsupportedMediaTypeError(l.mediaType, `${what}: layer ${i} (${l.digest}) has unsupported media type ${l.mediaType}`);
    }
  }
  const m: ImageManifest = { schemaVersion: 2, config, layers };
  if (typeof doc.mediaType === "string") m.mediaType = doc.mediaType;
  if (isObject(doc.annotations)) m.annotations = doc.annotations as Record<string, string>;
  return m;
}
