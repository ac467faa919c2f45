// ContainerStats and ListContainerStats: a container's CPU, memory and swap from its cgroup
// (src/cgroups/stats.ts) and the disk use of its writable layer, on demand (CRI-O's
// collection_period = 0). As CRI-O (internal/lib/stats): only containers that have not exited
// have stats: ContainerStats of an exited one answers with none, the list leaves them out.
// usage_nano_cores is the CPU rate since the previous sample of the same container, so the first
// call has none (the kubelet then computes it from its own samples).
import type {
  ContainerStats,
  ContainerStatsRequest,
  ContainerStatsResponse,
  CpuUsage,
  FilesystemUsage,
  ListContainerStatsRequest,
  ListContainerStatsResponse,
  MemoryUsage,
  SwapUsage,
  UInt64Value,
} from "../../proto/index.ts";
import { readCgroupStats, usageNanoCores, type CgroupStats, type CpuSample } from "../../cgroups/stats.ts";
import { log } from "../../log.ts";
import { containerState, type ContainerRecord } from "../../state/containers.ts";
import { diskUsage } from "../../storage/disk-usage.ts";
import type { ServerContext } from "../context.ts";

export function containerStatsHandler(ctx: ServerContext) {
  return async (req: ContainerStatsRequest): Promise<ContainerStatsResponse> => {
    const rec = ctx.containers.get(req.containerId);
    await ctx.exits.poll(rec);
    const [stats] = await containerStatsOf(ctx, [rec]);
    return { stats };
  };
}

/** ListContainerStats with the CRI filter: ID (or unique prefix), pod sandbox ID (or prefix), labels. */
export function listContainerStatsHandler(ctx: ServerContext) {
  return async (req: ListContainerStatsRequest): Promise<ListContainerStatsResponse> => {
    const f = req.filter;
    let recs = ctx.containers.list();
    if (f?.id) {
      let one: ContainerRecord | undefined;
      try {
        one = ctx.containers.find(f.id);
      } catch {
        one = undefined; // an ambiguous prefix matches nothing, as in ListContainers
      }
      recs = one ? [one] : [];
    }
    if (f?.podSandboxId) {
      let sbId: string | undefined;
      try {
        sbId = ctx.sandboxes.find(f.podSandboxId)?.id;
      } catch {
        sbId = undefined;
      }
      recs = sbId === undefined ? [] : recs.filter((r) => r.sandboxId === sbId);
    }
    const sel = Object.entries(f?.labelSelector ?? {});
    if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.labels[k] === v));
    await Promise.all(recs.map((r) => ctx.exits.poll(r)));
    const stats = await containerStatsOf(ctx, recs);
    return { stats: stats.filter((s): s is ContainerStats => s !== undefined) };
  };
}

/**
 * The CRI stats of each container, in order; undefined for one that exited (or whose cgroup is
 * gone, which means it just did). The caller polls exits first.
 */
export async function containerStatsOf(ctx: ServerContext, recs: readonly ContainerRecord[]): Promise<Array<ContainerStats | undefined>> {
  const live = recs.filter((r) => containerState(r) !== "EXITED");
  if (live.length === 0) return recs.map(() => undefined);
  // One look at the storage index for all of them (each lookup takes the store's lock).
  const layers = new Map((await ctx.store.containers()).map((c) => [c.id, c.layer]));
  const cgroups = ctx.cgroups();
  const samples = cpuSamples(ctx);
  return Promise.all(
    recs.map(async (rec): Promise<ContainerStats | undefined> => {
      if (containerState(rec) === "EXITED") return undefined;
      const timestamp = nowNs();
      let cg: CgroupStats;
      try {
        cg = readCgroupStats(cgroups.fs, cgroups.resolve(rec.cgroupsPath));
      } catch (err) {
        log.warn("cannot read a container's cgroup for its stats", { id: rec.id, error: err });
        return undefined;
      }
      return {
        attributes: {
          id: rec.id,
          metadata: { ...rec.metadata },
          labels: { ...rec.labels },
          annotations: { ...rec.annotations },
        },
        cpu: criCpu(cg, timestamp, samples, `container:${rec.id}`),
        memory: criMemory(cg, timestamp),
        swap: criSwap(cg, timestamp),
        writableLayer: await writableLayer(ctx, rec, layers.get(rec.id)),
        io: undefined,
      };
    }),
  );
}

/**
 * The container's upper layer as CRI-O reports it (the overlay driver's ReadWriteDiskUsage): bytes
 * and inodes under the layer's diff directory, with the merged rootfs as the file system's id.
 */
async function writableLayer(ctx: ServerContext, rec: ContainerRecord, layer: string | undefined): Promise<FilesystemUsage> {
  const usage: FilesystemUsage = { timestamp: nowNs(), fsId: { mountpoint: rec.mountPoint }, usedBytes: undefined, inodesUsed: undefined };
  if (layer === undefined) {
    log.warn("no storage container for a container's writable layer stats", { id: rec.id });
    return usage;
  }
  try {
    const du = await diskUsage([await ctx.store.layerDiffDir(layer)]);
    usage.usedBytes = { value: BigInt(du.bytes) };
    usage.inodesUsed = { value: BigInt(du.inodes) };
  } catch (err) {
    log.warn("cannot measure a container's writable layer", { id: rec.id, layer, error: err });
  }
  return usage;
}

/** The current wall-clock time in Unix nanoseconds (sub-millisecond, for CPU rates). */
export function nowNs(): bigint {
  return BigInt(Math.round(performance.timeOrigin * 1e3 + performance.now() * 1e3)) * 1000n;
}

const u64 = (v: bigint | undefined): UInt64Value | undefined => (v === undefined ? undefined : { value: v });

export function criCpu(cg: CgroupStats, timestamp: bigint, samples: CpuSamples, key: string): CpuUsage | undefined {
  if (!cg.cpu) return undefined;
  return {
    timestamp,
    usageCoreNanoSeconds: u64(cg.cpu.usageNs),
    usageNanoCores: u64(samples.record(key, { timestampNs: timestamp, usageNs: cg.cpu.usageNs })),
    psi: undefined,
  };
}

export function criMemory(cg: CgroupStats, timestamp: bigint): MemoryUsage | undefined {
  const m = cg.memory;
  if (!m) return undefined;
  return {
    timestamp,
    workingSetBytes: u64(m.workingSet),
    // Unset without a limit (CRI-O sends 0, which reads as "nothing left").
    availableBytes: u64(m.available),
    usageBytes: u64(m.usage),
    rssBytes: u64(m.rss),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
    psi: undefined,
  };
}

function criSwap(cg: CgroupStats, timestamp: bigint): SwapUsage | undefined {
  const s = cg.swap;
  if (!s) return undefined;
  return { timestamp, swapUsageBytes: u64(s.usage), swapAvailableBytes: u64(s.available) };
}

/** Samples not refreshed for this long are dropped (their container or pod is likely gone). */
const SAMPLE_TTL_NS = 10n * 60n * 1_000_000_000n;

/** The previous CPU sample of each container and pod, for usage_nano_cores. */
export class CpuSamples {
  private readonly last = new Map<string, CpuSample>();
  private lastSweepNs = 0n;

  /** Keeps `cur` as the latest sample of `key`; returns the rate since the previous one. */
  record(key: string, cur: CpuSample): bigint | undefined {
    const prev = this.last.get(key);
    if (prev === undefined || cur.timestampNs > prev.timestampNs) this.last.set(key, cur);
    if (cur.timestampNs - this.lastSweepNs > SAMPLE_TTL_NS) {
      this.lastSweepNs = cur.timestampNs;
      for (const [k, s] of this.last) if (cur.timestampNs - s.timestampNs > SAMPLE_TTL_NS) this.last.delete(k);
    }
    return prev === undefined ? undefined : usageNanoCores(prev, cur);
  }
}

const samplesByContext = new WeakMap<ServerContext, CpuSamples>();

/** The daemon's CPU samples (one set shared by the container and pod stats RPCs). */
export function cpuSamples(ctx: ServerContext): CpuSamples {
  let s = samplesByContext.get(ctx);
  if (!s) {
    s = new CpuSamples();
    samplesByContext.set(ctx, s);
  }
  return s;
}
