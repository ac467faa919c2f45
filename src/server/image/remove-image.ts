// RemoveImage: idempotent (an unknown image succeeds, as the CRI requires); by a tag of several
// only that tag goes, by ID the whole image.
import type { RemoveImageRequest, RemoveImageResponse } from "../../proto/index.ts";
import type { ImageService } from "../../image/service.ts";

export function removeImageHandler(images: ImageService) {
  return async (req: RemoveImageRequest): Promise<RemoveImageResponse> => {
    await images.remove(req.image?.image ?? "");
    return {};
  };
}
