// RuntimeConfig: kubelet asks which cgroup driver the runtime uses and follows it.
import { CgroupDriver, type RuntimeConfigRequest, type RuntimeConfigResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";

export function runtimeConfigHandler(ctx: ServerContext) {
  return async (_req: RuntimeConfigRequest): Promise<RuntimeConfigResponse> => ({
    linux: {
      cgroupDriver: ctx.config.runtime.cgroup_manager === "cgroupfs" ? CgroupDriver.CGROUPFS : CgroupDriver.SYSTEMD,
    },
  });
}
