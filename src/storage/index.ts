// src/storage: the containers-storage on-disk format (overlay driver), shared with podman.
export { Store, type CreateContainerOptions, type DiskUsage, type FsUsage, type StoreOptions } from "./store.ts";
export { Compression, type CreateLayerOptions, type Layer, type Populate, type PopulateResult } from "./layers.ts";
export type { BigDataItem, CreateImageOptions, Image } from "./images.ts";
export { marshalRuntimeContainerMetadata, type Container, type RuntimeContainerMetadata } from "./containers.ts";
export type { MountOptions } from "./overlay.ts";
export {
  bigDataFileName,
  imageIdFor,
  layerIdFor,
  manifestBigDataKey,
  sha256Digest,
  signatureBigDataKey,
} from "./ids.ts";
export { LockFile } from "./lock.ts";
