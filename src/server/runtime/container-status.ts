// ContainerStatus: the record's view; verbose adds CRI-O's info JSON (pid, sandbox, the spec).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerStatusRequest, ContainerStatusResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { toCriStatus } from "./container-common.ts";

export function containerStatusHandler(ctx: ServerContext) {
  return async (req: ContainerStatusRequest): Promise<ContainerStatusResponse> => {
    const rec = ctx.containers.get(req.containerId);
    await ctx.exits.poll(rec);
    const info: Record<string, string> = {};
    if (req.verbose) {
      let runtimeSpec: unknown;
      try {
        runtimeSpec = JSON.parse(await readFile(join(rec.persistDir, "config.json"), "utf8"));
      } catch {
        runtimeSpec = undefined;
      }
      info.info = JSON.stringify({
        sandboxID: rec.sandboxId,
        pid: rec.pid ?? 0,
        runtimeSpec,
        privileged: rec.privileged,
      });
    }
    return { status: toCriStatus(rec), info };
  };
}
