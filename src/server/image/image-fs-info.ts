// ImageFsInfo: bytes and inodes used by the image store, and by the container store (kubelet's
// image garbage collection and eviction read these).
import type { FilesystemUsage, ImageFsInfoRequest, ImageFsInfoResponse } from "../../proto/index.ts";
import type { ImageService } from "../../image/service.ts";

export function imageFsInfoHandler(images: ImageService) {
  return async (_req: ImageFsInfoRequest): Promise<ImageFsInfoResponse> => {
    const usage = await images.diskUsage();
    const timestamp = BigInt(Date.now()) * 1_000_000n;
    const fs = (u: { mountpoint: string; bytes: number; inodes: number }): FilesystemUsage => ({
      timestamp,
      fsId: { mountpoint: u.mountpoint },
      usedBytes: { value: BigInt(u.bytes) },
      inodesUsed: { value: BigInt(u.inodes) },
    });
    return { imageFilesystems: [fs(usage.imageStore)], containerFilesystems: [fs(usage.containerStore)] };
  };
}
