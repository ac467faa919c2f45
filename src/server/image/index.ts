// ImageService handlers, one file per RPC. Every RPC answers UNIMPLEMENTED until the image issue.
import type { ImageServiceHandlers } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";

export function imageHandlers(_ctx: ServerContext): Partial<ImageServiceHandlers> {
  return {};
}
