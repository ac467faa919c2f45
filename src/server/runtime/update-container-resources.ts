// UpdateContainerResources: new linux resources through `runtime update`, then the stored spec
// and record follow (CRI-O updates its spec after the runtime accepted the change).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError } from "../../errors.ts";
import { log } from "../../log.ts";
import type { UpdateContainerResourcesRequest, UpdateContainerResourcesResponse } from "../../proto/index.ts";
import { resources, type OciSpec } from "../../spec/index.ts";
import { containerState } from "../../state/containers.ts";
import { atomicWriteFile } from "../../storage/atomic.ts";
import type { ServerContext } from "../context.ts";
import { ociFor } from "./container-common.ts";
import { parseMinMemory, storedResources } from "./create-container.ts";
import { hostFacts } from "./host-facts.ts";

export function updateContainerResourcesHandler(ctx: ServerContext) {
  return async (req: UpdateContainerResourcesRequest): Promise<UpdateContainerResourcesResponse> => {
    const rec = ctx.containers.get(req.containerId);
    await ctx.containers.locks.run(rec.id, async () => {
      await ctx.exits.poll(rec);
      if (containerState(rec) === "EXITED") throw new FailedPreconditionError(`container ${rec.id} is not created or running`);
      if (req.linux === undefined) return;
      const host = hostFacts(ctx.cgroups());
      const h = ctx.config.runtime.runtimes[rec.runtimeHandler];
      const res = resources(req.linux, {
        daemonOomScoreAdj: host.oomScoreAdj,
        containerMinMemory: parseMinMemory(h?.container_min_memory ?? ""),
        hasMemorySwap: host.hasMemorySwap,
        hasHugetlb: host.hasHugetlb,
        cgroupV2: host.cgroupV2,
        pidsLimit: ctx.config.runtime.pids_limit > 0 ? ctx.config.runtime.pids_limit : undefined,
      });
      const specPath = join(rec.persistDir, "config.json");
      const spec = JSON.parse(readFileSync(specPath, "utf8")) as OciSpec;
      const merged = { ...(spec.linux.resources ?? {}), ...res.resources, devices: spec.linux.resources?.devices };
      const file = join(rec.bundleDir, "update-resources.json");
      writeFileSync(file, JSON.stringify({ ...res.resources, devices: undefined }), { mode: 0o600 });
      try {
        await ociFor(ctx, rec.runtimeHandler).runtimeCommand(["update", "--resources", file, rec.id]);
      } finally {
        rmSync(file, { force: true });
      }
      spec.linux.resources = merged;
      const text = JSON.stringify(spec);
      await atomicWriteFile(specPath, text, 0o600);
      await atomicWriteFile(join(rec.bundleDir, "config.json"), text, 0o600);
      rec.resources = storedResources(spec);
      await ctx.containers.persist(rec);
      log.info("Updated container resources", { id: rec.id });
    });
    return {};
  };
}
