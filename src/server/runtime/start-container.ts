// StartContainer: `runtime start` of a container in CREATED; anything else is refused.
import { FailedPreconditionError } from "../../errors.ts";
import { log } from "../../log.ts";
import { ContainerEventType, type StartContainerRequest, type StartContainerResponse } from "../../proto/index.ts";
import { containerState } from "../../state/containers.ts";
import type { ServerContext } from "../context.ts";
import { ociFor } from "./container-common.ts";

export function startContainerHandler(ctx: ServerContext) {
  return async (req: StartContainerRequest): Promise<StartContainerResponse> => {
    const rec = ctx.containers.get(req.containerId);
    await ctx.containers.locks.run(rec.id, async () => {
      await ctx.exits.poll(rec);
      const state = containerState(rec);
      if (state !== "CREATED") {
        throw new FailedPreconditionError(`container ${rec.id} is not in created state: ${state.toLowerCase()}`);
      }
      // Taken before `runtime start`: a process that exits at once must not finish before it started.
      const startedNs = (BigInt(Date.now()) * 1_000_000n).toString();
      await ociFor(ctx, rec.runtimeHandler).startContainer(rec.id);
      rec.started = true;
      rec.startedNs = startedNs;
      await ctx.containers.persist(rec);
      ctx.events.emit(rec.id, ContainerEventType.CONTAINER_STARTED_EVENT, rec.sandboxId);
      log.info("Started container", { id: rec.id, name: rec.name });
    });
    return {};
  };
}
