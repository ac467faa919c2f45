// Image layers: streaming, confined application of a layer blob to a storage diff directory.
export { cleanName, extractTar, LayerError, unpackLayer, type UnpackOptions, type UnpackResult } from "./unpack.ts";
export { compressionOfMediaType, decompress, detectCompression, type Compression } from "./decompress.ts";
