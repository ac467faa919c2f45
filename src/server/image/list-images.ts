// ListImages: every stored image, or the one the filter names. StreamImages sends the same list
// in chunks, as CRI-O does for lists too large for one message.
import type { ImageFilter, ListImagesRequest, ListImagesResponse, StreamImagesRequest, StreamImagesResponse } from "../../proto/index.ts";
import type { ImageService } from "../../image/service.ts";

/** Images per StreamImages message (CRI-O's streamChunkSize). */
export const STREAM_CHUNK = 3000;

function filterOf(f: ImageFilter | undefined): string | undefined {
  return f?.image?.image || undefined;
}

export function listImagesHandler(images: ImageService) {
  return async (req: ListImagesRequest): Promise<ListImagesResponse> => ({
    images: await images.list(filterOf(req.filter)),
  });
}

export function streamImagesHandler(images: ImageService) {
  return async (req: StreamImagesRequest, send: (m: StreamImagesResponse) => void): Promise<void> => {
    const all = await images.list(filterOf(req.filter));
    for (let i = 0; i < all.length; i += STREAM_CHUNK) send({ images: all.slice(i, i + STREAM_CHUNK) });
  };
}
