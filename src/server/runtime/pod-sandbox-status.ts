// PodSandboxStatus: the sandbox's state, addresses and namespace modes; with `verbose` the
// record as JSON under info["info"] (CRI-O puts its own details there). Unknown: NotFound.
import type { PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse } from "../../proto/index.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import { toCriStatus } from "./container-common.ts";
import type { ServerContext } from "../context.ts";
import { criState } from "./sandbox-common.ts";
import { refreshSandboxState } from "./infra-container.ts";

export function podSandboxStatusHandler(ctx: ServerContext) {
  return async (req: PodSandboxStatusRequest): Promise<PodSandboxStatusResponse> => {
    const rec = ctx.sandboxes.get(req.podSandboxId);
    await refreshSandboxState(ctx, rec);
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
        infraContainer: rec.infra === undefined ? "dropped" : rec.infraPid !== undefined ? "running" : "stopped",
      });
    }
    const events = ctx.config.runtime.enable_pod_events;
    return {
      status: podSandboxStatusOf(rec),
      info,
      // As CRI-O: the containers' statuses and a timestamp only for evented PLEG (enable_pod_events).
      containersStatuses: events ? ctx.containers.ofSandbox(rec.id).map(toCriStatus) : [],
      timestamp: events ? BigInt(Date.now()) * 1_000_000n : 0n,
    };
  };
}

/** The CRI PodSandboxStatus of a record. */
export function podSandboxStatusOf(rec: SandboxRecord): PodSandboxStatus {
  const [first, ...rest] = rec.ips;
  return {
    id: rec.id,
    metadata: { ...rec.metadata },
    state: criState(rec),
    createdAt: BigInt(rec.createdNs),
    network: { ip: first ?? "", additionalIps: rest.map((ip) => ({ ip })) },
    linux: { namespaces: { options: { ...rec.namespaceOptions, usernsOptions: undefined } } },
    labels: { ...rec.labels },
    annotations: { ...rec.annotations },
    runtimeHandler: rec.runtimeHandler,
  };
}
