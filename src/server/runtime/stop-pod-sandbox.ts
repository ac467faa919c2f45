// StopPodSandbox: detach the pod from its network, then unpin its namespaces; the sandbox stays
// (NOTREADY) until RemovePodSandbox. api.proto: "If there are any running containers in the
// sandbox, they must be forcibly terminated", and the call is idempotent: stopping a stopped or
// unknown sandbox succeeds (kubelet retries StopPodSandbox on pods it no longer knows).
import { log } from "../../log.ts";
import { ContainerEventType, type StopPodSandboxRequest, type StopPodSandboxResponse } from "../../proto/index.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";
import { releaseNetworkAndPins, releaseShm } from "./sandbox-common.ts";
import { stopContainer } from "./container-common.ts";
import { releaseInfra } from "./infra-container.ts";

export function stopPodSandboxHandler(ctx: ServerContext) {
  return async (req: StopPodSandboxRequest): Promise<StopPodSandboxResponse> => {
    const found = ctx.sandboxes.find(req.podSandboxId);
    if (found === undefined) {
      log.debug("StopPodSandbox: no such pod sandbox, nothing to stop", { id: req.podSandboxId });
      return {};
    }
    await ctx.sandboxes.locks.run(found.id, () => stopSandbox(ctx, found));
    return {};
  };
}

/** Stops a sandbox (the caller holds its lock). Idempotent. */
export async function stopSandbox(ctx: ServerContext, rec: SandboxRecord): Promise<void> {
  // The pod's containers first, forcibly (api.proto), each under its own lock.
  await Promise.all(
    ctx.containers.ofSandbox(rec.id).map((c) => ctx.containers.locks.run(c.id, () => stopContainer(ctx, c, 0))),
  );
  if (rec.stopped) return;
  // Then the infra container, before the network goes (CRI-O stops it first too).
  if (rec.infra !== undefined) {
    await releaseInfra(ctx, { id: rec.id, runtimeHandler: rec.infra.runtimeHandler, cgroupParent: rec.cgroupParent ?? "", infraMonitorPid: rec.infraMonitorPid });
    rec.infraPid = undefined;
  }
  // CNI DEL before the unpin: the plugins need the netns to remove the interface and address.
  await releaseNetworkAndPins(ctx, rec.id, rec, rec);
  // Then the pod's /dev/shm tmpfs (CRI-O sandbox_stop_linux.go: UnmountShm after the network).
  releaseShm(rec);
  rec.state = "NOTREADY";
  rec.stopped = true;
  await ctx.sandboxes.persist(rec);
  ctx.events.emit(rec.id, ContainerEventType.CONTAINER_STOPPED_EVENT, rec.id);
  log.info("Stopped pod sandbox", { id: rec.id, name: rec.name });
}
