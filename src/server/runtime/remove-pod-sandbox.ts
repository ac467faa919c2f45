// RemovePodSandbox: stop it if needed, remove its cgroup, its storage container (with the record
// and the run directory files) and free its name. api.proto: removing an unknown sandbox succeeds.
import { log } from "../../log.ts";
import { ContainerEventType, type RemovePodSandboxRequest, type RemovePodSandboxResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { releaseCgroup } from "./sandbox-common.ts";
import { stopSandbox } from "./stop-pod-sandbox.ts";
import { removeContainer } from "./container-common.ts";

export function removePodSandboxHandler(ctx: ServerContext) {
  return async (req: RemovePodSandboxRequest): Promise<RemovePodSandboxResponse> => {
    const found = ctx.sandboxes.find(req.podSandboxId);
    if (found === undefined) {
      log.debug("RemovePodSandbox: no such pod sandbox, nothing to remove", { id: req.podSandboxId });
      return {};
    }
    await ctx.sandboxes.locks.run(found.id, async () => {
      if (ctx.sandboxes.find(found.id) === undefined) return; // removed meanwhile
      await stopSandbox(ctx, found);
      for (const c of ctx.containers.ofSandbox(found.id)) {
        await ctx.containers.locks.run(c.id, async () => {
          if (ctx.containers.find(c.id) !== undefined) await removeContainer(ctx, c);
        });
      }
      await releaseCgroup(ctx, found.id, found);
      if ((await ctx.store.container(found.id)) !== undefined) await ctx.store.deleteContainer(found.id);
      ctx.sandboxes.delete(found.id);
      ctx.events.emit(found.id, ContainerEventType.CONTAINER_DELETED_EVENT, found.id);
      log.info("Removed pod sandbox", { id: found.id, name: found.name });
    });
    return {};
  };
}
