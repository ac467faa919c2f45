// Status: the RuntimeReady and NetworkReady conditions kubelet gates pods on, the runtime
// handlers with their features, and with `verbose` the running configuration.
import type { StatusRequest, StatusResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";

export function statusHandler(ctx: ServerContext) {
  return async (req: StatusRequest): Promise<StatusResponse> => {
    const net = ctx.networkStatus();
    const cfg = ctx.config;
    // The default handler is listed under its own name and under "" (the CRI name for the
    // default), as CRI-O does. Recursive read-only mounts and user namespaces are features of
    // the container issue; until then no handler claims them.
    const names = [...Object.keys(cfg.runtime.runtimes), ""];
    const runtimeHandlers = names.map((name) => ({
      name,
      features: { recursiveReadOnlyMounts: false, userNamespaces: false },
    }));
    const info: Record<string, string> = {};
    if (req.verbose) {
      info.config = JSON.stringify({ sandboxImage: cfg.image.pause_image, crio: cfg });
    }
    return {
      status: {
        conditions: [
          { type: "RuntimeReady", status: true, reason: "", message: "" },
          { type: "NetworkReady", status: net.ready, reason: net.ready ? "" : net.reason, message: net.ready ? "" : net.message },
        ],
      },
      info,
      runtimeHandlers,
      features: { supplementalGroupsPolicy: false, userNamespacesHostNetwork: false },
    };
  };
}
