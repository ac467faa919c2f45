// ImageService handlers, one file per RPC (StreamImages beside ListImages).
import type { ImageServiceHandlers } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { imageFsInfoHandler } from "./image-fs-info.ts";
import { imageStatusHandler } from "./image-status.ts";
import { listImagesHandler, streamImagesHandler } from "./list-images.ts";
import { pullImageHandler } from "./pull-image.ts";
import { removeImageHandler } from "./remove-image.ts";

export function imageHandlers(ctx: ServerContext): Partial<ImageServiceHandlers> {
  const images = ctx.images;
  return {
    PullImage: pullImageHandler(images),
    ImageStatus: imageStatusHandler(images),
    ListImages: listImagesHandler(images),
    StreamImages: streamImagesHandler(images),
    RemoveImage: removeImageHandler(images),
    ImageFsInfo: imageFsInfoHandler(images),
  };
}
