// What the pod sandbox RPCs share: undoing what a sandbox holds (network, pins, cgroup) in the
// order CRI-O does it, and the CRI views of a record.
import { SystemdUnavailableError } from "../../cgroups/index.ts";
import { log } from "../../log.ts";
import { PodSandboxState, type PodSandbox, type PodSandboxMetadata } from "../../proto/index.ts";
import { unpinNamespaces } from "../../sandbox/namespaces.ts";
import type { SandboxRecord, SandboxResources } from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";

/**
 * Detaches the pod from its network (CNI DEL) and then unpins its namespaces. DEL must come
 * first: plugins need the netns to remove the pod's interface and addresses cleanly (CRI-O
 * tears down the network before removing the namespaces). Throws when DEL fails, leaving the
 * pins for a retry.
 */
export async function releaseNetworkAndPins(
  ctx: ServerContext,
  id: string,
  pod: { metadata?: PodSandboxMetadata | SandboxRecord["metadata"] },
  made: SandboxResources,
): Promise<void> {
  if (made.network) {
    await ctx.network.tearDown({
      id,
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      uid: pod.metadata?.uid,
      netnsPath: made.netnsPath,
    });
  }
  unpinNamespaces({ net: made.netnsPath, ipc: made.ipcnsPath, uts: made.utsnsPath });
}

/** Removes the sandbox cgroup, if one was made. */
export async function releaseCgroup(ctx: ServerContext, id: string, made: SandboxResources): Promise<void> {
  if (made.cgroupParent === undefined) return;
  try {
    await ctx.cgroups().removeSandboxCgroup(made.cgroupParent, id);
  } catch (err) {
    // TODO(systemd): without a reachable systemd the sandbox cgroup was never made; nothing to do.
    if (err instanceof SystemdUnavailableError) return;
    throw err;
  }
}

/** Everything a half-made sandbox holds, for restart recovery: best effort, each step logged. */
export async function releaseAll(ctx: ServerContext, id: string, made: SandboxResources): Promise<void> {
  try {
    await releaseNetworkAndPins(ctx, id, {}, made);
  } catch (err) {
    log.warn("could not release the network of a pod sandbox", { id, error: err });
    try {
      unpinNamespaces({ net: made.netnsPath, ipc: made.ipcnsPath, uts: made.utsnsPath });
    } catch (e) {
      log.warn("could not unpin the namespaces of a pod sandbox", { id, error: e });
    }
  }
  try {
    await releaseCgroup(ctx, id, made);
  } catch (err) {
    log.warn("could not remove the cgroup of a pod sandbox", { id, error: err });
  }
}

export function criState(rec: SandboxRecord): PodSandboxState {
  return rec.state === "READY" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
}

export function criSandbox(rec: SandboxRecord): PodSandbox {
  return {
    id: rec.id,
    metadata: { ...rec.metadata },
    state: criState(rec),
    createdAt: BigInt(rec.createdNs),
    labels: { ...rec.labels },
    annotations: { ...rec.annotations },
    runtimeHandler: rec.runtimeHandler,
  };
}
