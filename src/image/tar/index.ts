// Tar archives: a streaming reader (ustar, GNU, pax) and a deterministic writer.
export { TarReader, type TarEntry, type TarReaderOptions, type TarSource } from "./reader.ts";
export {
  createTar, iterableToStream, tarStream, TarWriter,
  type TarInput, type TarStreamInput, type TarWriteEntry, type TarWriterOptions, type TarWriteType,
} from "./writer.ts";
export { TarError, type TarEntryType, type TarHeader, type TarTime } from "./types.ts";
