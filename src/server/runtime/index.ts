// RuntimeService handlers, one file per RPC. An RPC missing here answers UNIMPLEMENTED.
import type { RuntimeServiceHandlers } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { listPodSandboxHandler } from "./list-pod-sandbox.ts";
import { podSandboxStatusHandler } from "./pod-sandbox-status.ts";
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
  };
}
