// The OCI distribution (Docker Registry HTTP API v2) client: pull side.
//
//   const client = new RegistryClient({ endpoint: { location: "127.0.0.1:5000", insecure: false } });
//   const image = await client.resolveImage("test/busybox", "latest");          // host platform
//   const config = await client.fetchBlobBytes("test/busybox", image.config);
//   await new ParallelLimiter().map(image.layers, async (layer, _i, signal) => {
//     const stream = await client.fetchBlob("test/busybox", layer, signal);     // verified stream
//     for await (const chunk of stream) write(chunk);                            // read to the end
//   });
export { RegistryClient } from "./client.ts";
export type { BlobDescriptor, FetchedManifest, LayerInfo, ResolvedImage } from "./client.ts";
export { parseWwwAuthenticate } from "./challenge.ts";
export type { Challenge } from "./challenge.ts";
export { DigestHasher, digestOf, isDigest, parseDigest } from "./digest.ts";
export type { DigestAlgorithm, ParsedDigest } from "./digest.ts";
export {
  BlobNotFoundError,
  CancelledError,
  DigestMismatchError,
  InvalidManifestError,
  ManifestNotFoundError,
  NoMatchingPlatformError,
  RegistryResponseError,
  RegistryUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "./errors.ts";
export { DEFAULT_PARALLEL_DOWNLOADS, ParallelLimiter, SingleFlight, dedupe, raceSignal } from "./flight.ts";
export {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MediaType,
  isImageManifestMediaType,
  isIndexMediaType,
  manifestMediaType,
  parseImageManifest,
  parseIndex,
} from "./manifest.ts";
export type { Descriptor, ImageIndex, ImageManifest, Platform } from "./manifest.ts";
export { choosePlatform, formatPlatform, hostPlatform, wantedPlatforms } from "./platform.ts";
export type { PlatformSpec } from "./platform.ts";
export { DEFAULT_CERTS_DIRS, loadRegistryTls } from "./tls.ts";
export { parseLocation } from "./transport.ts";
export type { Credentials, CredentialsProvider, Endpoint, RegistryClientOptions, RetryOptions } from "./types.ts";
