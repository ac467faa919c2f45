// PodSandboxStatus: the sandbox's state, addresses and namespace modes; with `verbose` the
// record as JSON under info["info"] (CRI-O puts its own details there). Unknown: NotFound.
import type { PodSandboxStatusRequest, PodSandboxStatusResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { criState } from "./sandbox-common.ts";
import { refreshSandboxState } from "./infra-container.ts";

export function podSandboxStatusHandler(ctx: ServerContext) {
  return async (req: PodSandboxStatusRequest): Promise<PodSandboxStatusResponse> => {
    const rec = ctx.sandboxes.get(req.podSandboxId);
    await refreshSandboxState(ctx, rec);
    const [first, ...rest] = rec.ips;
    const info: Record<string, string> = {};
    if (req.verbose) {
      info.info = JSON.stringify({
        id: rec.id,
        name: rec.name,
        runtimeHandler: rec.runtimeHandler,
        hostname: rec.hostname,
        logDirectory: rec.logDirectory,
        cgroupPath: rec.cgroupPath,
        namespaces: { network: rec.netnsPath ?? "", ipc: rec.ipcnsPath ?? "", uts: rec.utsnsPath ?? "", pid: rec.infraPid ? `/proc/${rec.infraPid}/ns/pid` : "" },
        pid: rec.infraPid ?? 0,
        resolvPath: rec.resolvPath,
        hostnamePath: rec.hostnamePath,
        portMappings: rec.portMappings,
        sysctls: rec.sysctls,
        dns: rec.dns,
        infraContainer: "dropped",
      });
    }
    return {
      status: {
        id: rec.id,
        metadata: { ...rec.metadata },
        state: criState(rec),
        createdAt: BigInt(rec.createdNs),
        network: { ip: first ?? "", additionalIps: rest.map((ip) => ({ ip })) },
        linux: { namespaces: { options: { ...rec.namespaceOptions, usernsOptions: undefined } } },
        labels: { ...rec.labels },
        annotations: { ...rec.annotations },
        runtimeHandler: rec.runtimeHandler,
      },
      info,
      containersStatuses: [],
      timestamp: BigInt(Date.now()) * 1_000_000n,
    };
  };
}
