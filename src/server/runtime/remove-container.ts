// RemoveContainer: force-stops a running container, then removes everything it holds.
// api.proto: removing a container that does not exist succeeds.
import { log } from "../../log.ts";
import type { RemoveContainerRequest, RemoveContainerResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { removeContainer } from "./container-common.ts";

export function removeContainerHandler(ctx: ServerContext) {
  return async (req: RemoveContainerRequest): Promise<RemoveContainerResponse> => {
    const rec = ctx.containers.find(req.containerId);
    if (rec === undefined) {
      log.debug("RemoveContainer: no such container, nothing to remove", { id: req.containerId });
      return {};
    }
    await ctx.containers.locks.run(rec.id, async () => {
      if (ctx.containers.find(rec.id) === undefined) return; // removed meanwhile
      await removeContainer(ctx, rec);
    });
    return {};
  };
}
