// StopContainer: the stop signal, SIGKILL after the timeout (at once for 0). Idempotent; an
// unknown container is NotFound (CRI-O answers so; kubelet treats it as stopped).
import type { StopContainerRequest, StopContainerResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { stopContainer } from "./container-common.ts";

export function stopContainerHandler(ctx: ServerContext) {
  return async (req: StopContainerRequest): Promise<StopContainerResponse> => {
    const rec = ctx.containers.get(req.containerId);
    const timeout = req.timeout < 0n ? 0 : Number(req.timeout > 86_400n * 365n ? 86_400n * 365n : req.timeout);
    await ctx.containers.locks.run(rec.id, () => stopContainer(ctx, rec, timeout));
    return {};
  };
}
