// ImageStatus: a missing image is an empty response, not an error (the CRI contract); verbose
// adds {"labels", "imageSpec"} under info["info"] as CRI-O does.
import type { ImageStatusRequest, ImageStatusResponse } from "../../proto/index.ts";
import type { ImageService } from "../../image/service.ts";

export function imageStatusHandler(images: ImageService) {
  return async (req: ImageStatusRequest): Promise<ImageStatusResponse> => {
    const view = await images.status(req.image?.image ?? "");
    if (!view) return { image: undefined, info: {} };
    const info: Record<string, string> = {};
    if (req.verbose) {
      info.info = JSON.stringify({
        ...(view.config?.config?.Labels ? { labels: view.config.config.Labels } : {}),
        imageSpec: view.config ?? null,
      });
    }
    return { image: view.image, info };
  };
}
