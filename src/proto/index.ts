// CRI v1 protobuf types, codecs and service tables (generated), plus the wire runtime.
export * from "./runtime-v1.ts";
export { defineMessage, ProtoDecodeError, Reader, Writer } from "./wire.ts";
export type { MessageCodec, MethodDescriptor } from "./wire.ts";
