// Version: the runtime's name and versions. kubelet and crictl print these; CRI-O's clients key
// on RuntimeName "cri-o", so this runtime answers with that name.
import type { VersionRequest, VersionResponse } from "../../proto/index.ts";
import { CRI_API_VERSION, KUBE_API_VERSION, RUNTIME_NAME, versionInfo } from "../../version.ts";

export async function version(_req: VersionRequest): Promise<VersionResponse> {
  return {
    version: KUBE_API_VERSION,
    runtimeName: RUNTIME_NAME,
    runtimeVersion: versionInfo().version,
    runtimeApiVersion: CRI_API_VERSION,
  };
}
