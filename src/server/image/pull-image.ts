// PullImage: returns the pulled image's ID, which kubelet passes back as CreateContainer's image
// and compares with ImageStatus's id (critest "Image Identifier Consistency").
import type { PullImageRequest, PullImageResponse } from "../../proto/index.ts";
import type { ImageService } from "../../image/service.ts";

export function pullImageHandler(images: ImageService) {
  return async (req: PullImageRequest, signal: AbortSignal): Promise<PullImageResponse> => {
    const pulled = await images.pull(req.image?.image ?? "", {
      ...(req.auth ? { auth: req.auth } : {}),
      ...(req.sandboxConfig?.metadata?.namespace ? { namespace: req.sandboxConfig.metadata.namespace } : {}),
      signal,
    });
    return { imageRef: pulled.id };
  };
}
