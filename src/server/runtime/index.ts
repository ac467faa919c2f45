// RuntimeService handlers, one file per RPC. An RPC missing here answers UNIMPLEMENTED.
import type { RuntimeServiceHandlers } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { runtimeConfigHandler } from "./runtime-config.ts";
import { statusHandler } from "./status.ts";
import { updateRuntimeConfig } from "./update-runtime-config.ts";
import { version } from "./version.ts";

export function runtimeHandlers(ctx: ServerContext): Partial<RuntimeServiceHandlers> {
  return {
    Version: version,
    Status: statusHandler(ctx),
    RuntimeConfig: runtimeConfigHandler(ctx),
    UpdateRuntimeConfig: updateRuntimeConfig,
  };
}
