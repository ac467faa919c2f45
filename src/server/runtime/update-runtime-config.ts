// UpdateRuntimeConfig: kubelet pushes the node's pod CIDR. CRI-O accepts and ignores it (CNI
// plugins get their ranges from their own configuration); so does this runtime, with a log line.
import type { UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse } from "../../proto/index.ts";
import { log } from "../../log.ts";

export async function updateRuntimeConfig(req: UpdateRuntimeConfigRequest): Promise<UpdateRuntimeConfigResponse> {
  const cidr = req.runtimeConfig?.networkConfig?.podCidr ?? "";
  if (cidr !== "") log.info("UpdateRuntimeConfig: pod CIDR reported by kubelet (CNI configuration decides addresses)", { podCIDR: cidr });
  return {};
}
