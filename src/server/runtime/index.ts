// RuntimeService handlers, one file per RPC. An RPC missing here answers UNIMPLEMENTED.
import type { RuntimeServiceHandlers } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { getContainerEventsHandler } from "./container-events.ts";
import { attachHandler, execHandler } from "./exec.ts";
import { portForwardHandler } from "./port-forward.ts";
import { streamContainerStatsHandler, streamContainersHandler, streamPodSandboxesHandler, streamPodSandboxStatsHandler } from "./stream-lists.ts";
import { containerStatsHandler, listContainerStatsHandler } from "./container-stats.ts";
import { containerStatusHandler } from "./container-status.ts";
import { createContainerHandler } from "./create-container.ts";
import { execSyncHandler } from "./exec-sync.ts";
import { listContainersHandler } from "./list-containers.ts";
import { removeContainerHandler } from "./remove-container.ts";
import { reopenContainerLogHandler } from "./reopen-container-log.ts";
import { startContainerHandler } from "./start-container.ts";
import { stopContainerHandler } from "./stop-container.ts";
import { updateContainerResourcesHandler } from "./update-container-resources.ts";
import { listPodSandboxHandler } from "./list-pod-sandbox.ts";
import { listPodSandboxStatsHandler, podSandboxStatsHandler } from "./pod-sandbox-stats.ts";
import { podSandboxStatusHandler } from "./pod-sandbox-status.ts";
import { listMetricDescriptorsHandler, listPodSandboxMetricsHandler, streamPodSandboxMetricsHandler } from "./pod-metrics.ts";
import { removePodSandboxHandler } from "./remove-pod-sandbox.ts";
import { runPodSandboxHandler } from "./run-pod-sandbox.ts";
import { runtimeConfigHandler } from "./runtime-config.ts";
import { statusHandler } from "./status.ts";
import { stopPodSandboxHandler } from "./stop-pod-sandbox.ts";
import { updateRuntimeConfig } from "./update-runtime-config.ts";
import { version } from "./version.ts";

export function runtimeHandlers(ctx: ServerContext): Partial<RuntimeServiceHandlers> {
  return {
    Version: version,
    Status: statusHandler(ctx),
    RuntimeConfig: runtimeConfigHandler(ctx),
    UpdateRuntimeConfig: updateRuntimeConfig,
    RunPodSandbox: runPodSandboxHandler(ctx),
    StopPodSandbox: stopPodSandboxHandler(ctx),
    RemovePodSandbox: removePodSandboxHandler(ctx),
    PodSandboxStatus: podSandboxStatusHandler(ctx),
    ListPodSandbox: listPodSandboxHandler(ctx),
    CreateContainer: createContainerHandler(ctx),
    StartContainer: startContainerHandler(ctx),
    StopContainer: stopContainerHandler(ctx),
    RemoveContainer: removeContainerHandler(ctx),
    ListContainers: listContainersHandler(ctx),
    ContainerStatus: containerStatusHandler(ctx),
    ExecSync: execSyncHandler(ctx),
    UpdateContainerResources: updateContainerResourcesHandler(ctx),
    ReopenContainerLog: reopenContainerLogHandler(ctx),
    GetContainerEvents: getContainerEventsHandler(ctx),
    Exec: execHandler(ctx),
    Attach: attachHandler(ctx),
    PortForward: portForwardHandler(ctx),
    StreamPodSandboxes: streamPodSandboxesHandler(ctx),
    StreamContainers: streamContainersHandler(ctx),
    StreamContainerStats: streamContainerStatsHandler(ctx),
    StreamPodSandboxStats: streamPodSandboxStatsHandler(ctx),
    ContainerStats: containerStatsHandler(ctx),
    ListContainerStats: listContainerStatsHandler(ctx),
    PodSandboxStats: podSandboxStatsHandler(ctx),
    ListPodSandboxStats: listPodSandboxStatsHandler(ctx),
    ListMetricDescriptors: listMetricDescriptorsHandler(ctx),
    ListPodSandboxMetrics: listPodSandboxMetricsHandler(ctx),
    StreamPodSandboxMetrics: streamPodSandboxMetricsHandler(ctx),
  };
}
