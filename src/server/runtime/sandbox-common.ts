// What the pod sandbox RPCs share: undoing what a sandbox holds (network, pins, cgroup) in the
// order CRI-O does it, and the CRI views of a record.
import { SystemdUnavailableError } from "../../cgroups/index.ts";
import { log } from "../../log.ts";
import { PodSandboxState, type PodSandbox, type PodSandboxMetadata } from "../../proto/index.ts";
import { unpinNamespaces } from "../../sandbox/namespaces.ts";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { isMountPoint, mount, umount2, MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID } from "../../sys/mount.ts";
import { DEFAULT_IFNAME, LOOPBACK_NETWORK } from "../../network/index.ts";
import type { SandboxRecord, SandboxResources } from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";
import { releaseInfra } from "./infra-container.ts";

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

/** The host's /dev/shm, which a host-IPC pod uses: never mounted or unmounted by the daemon. */
export const HOST_SHM = "/dev/shm";
/** CRI-O's default pod /dev/shm size (libsandbox.DefaultShmSize): 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** Mounts the pod's /dev/shm tmpfs at `path` (CRI-O setupShm: mode=1777, noexec, nosuid, nodev). */
export function mountShm(path: string, size: number): void {
  mount("shm", path, "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV, `mode=1777,size=${size}`);
}

/** Unmounts the pod's /dev/shm tmpfs (lazily, as CRI-O), if it is mounted. Idempotent. */
export function releaseShm(made: SandboxResources): void {
  const path = made.shmPath;
  if (path === undefined || path === HOST_SHM) return;
  if (!isMountPoint(path)) return;
  umount2(path, MNT_DETACH);
}

/**
 * Everything a half-made sandbox holds, for restart recovery (what creating.json names): best
 * effort, each step logged. Each release is idempotent: a resource recorded just before the
 * crash that was never made is skipped.
 */
export async function releaseAll(ctx: ServerContext, id: string, made: SandboxResources): Promise<void> {
  if (made.infra !== undefined) {
    try {
      await releaseInfra(ctx, { id, runtimeHandler: made.infra.runtimeHandler, cgroupParent: made.cgroupParent ?? "" });
    } catch (err) {
      log.warn("could not remove the infra container of a pod sandbox", { id, error: err });
    }
  }
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
    releaseShm(made);
  } catch (err) {
    log.warn("could not unmount the /dev/shm of a pod sandbox", { id, error: err });
  }
  try {
    await releaseCgroup(ctx, id, made);
  } catch (err) {
    log.warn("could not remove the cgroup of a pod sandbox", { id, error: err });
  }
  // A log directory the creation made goes too, as RunPodSandbox's own rollback removes it.
  if (made.logDirectoryCreated !== undefined && isAbsolute(made.logDirectoryCreated)) {
    await rm(made.logDirectoryCreated, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn("could not remove the log directory of a pod sandbox", { id, error: err }),
    );
  }
}

/** How long the post-restore CNI GC waits for the default network to load. */
const GC_NETWORK_WAIT_MS = 60_000;

/** Resolves once the default CNI network is loaded, or false after `ms`; its timer never holds the process. */
function defaultNetworkName(ctx: ServerContext, ms: number): Promise<string | undefined> {
  const now = ctx.network.watcher.current().defaultNetwork?.name;
  if (now !== undefined) return Promise.resolve(now);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(undefined);
    }, ms);
    timer.unref?.();
    const off = ctx.network.watcher.onChange((l) => {
      if (!l.defaultNetwork) return;
      clearTimeout(timer);
      off();
      resolve(l.defaultNetwork.name);
    });
  });
}

/** The pods GC must keep, asked at the moment GC looks (a creation that starts meanwhile is kept). */
class KeptIds extends Set<string> {
  constructor(private readonly keep: (id: string) => boolean) {
    super();
  }
  override has(id: string): boolean {
    return this.keep(id);
  }
}

/**
 * After restore (CRI-O: CNI GC at start-up, then CHECK of the restored pods): cached attachments
 * of the default network whose pod no longer exists are torn down (their DEL frees the address),
 * and READY pods with a live netns are checked; a failed check is only logged, the pod's state
 * stays. Entries of other networks, which other runtimes sharing the cache may own, are kept.
 * Runs in the background (the network configuration loads in the background too), so start-up
 * never waits for it; a pod created meanwhile is known to the index before its ADD writes its
 * cache entry, so GC never takes it.
 */
export async function restoreNetworks(ctx: ServerContext, records: readonly SandboxRecord[]): Promise<void> {
  try {
    const entries = (await ctx.network.cache.all()).filter((e) => e.networkName !== LOOPBACK_NETWORK);
    const stale = entries.filter((e) => !ctx.sandboxes.knows(e.containerId));
    if (stale.length > 0) {
      const def = await defaultNetworkName(ctx, GC_NETWORK_WAIT_MS);
      if (def === undefined) {
        log.warn("CNI GC skipped: no default network is loaded", { stale: stale.length });
      } else {
        const otherNetworks = new Set(entries.filter((e) => e.networkName !== def).map((e) => e.containerId));
        const removed = await ctx.network.gc(new KeptIds((id) => otherNetworks.has(id) || ctx.sandboxes.knows(id)));
        if (removed.length > 0) log.info(`CNI GC removed ${removed.length} stale attachment(s) of network ${def}`, { ids: removed });
      }
    }
  } catch (err) {
    log.warn("CNI GC of stale pod attachments failed", { error: err });
  }
  for (const rec of records) {
    if (ctx.sandboxes.find(rec.id) !== rec) continue; // removed meanwhile
    if (rec.state !== "READY" || rec.hostNetwork || !rec.netnsPath || !existsSync(rec.netnsPath)) continue;
    try {
      await ctx.network.check({
        id: rec.id,
        name: rec.metadata.name,
        namespace: rec.metadata.namespace,
        uid: rec.metadata.uid,
        netnsPath: rec.netnsPath,
        ifName: DEFAULT_IFNAME,
      });
      log.debug("CNI CHECK of a restored pod sandbox passed", { id: rec.id });
    } catch (err) {
      log.warn("CNI CHECK of a restored pod sandbox failed", { id: rec.id, error: err });
    }
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
