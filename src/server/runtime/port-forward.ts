// PortForward: a single-use URL for the pod's ports; the connections are made inside the pod's
// network namespace (the host's for a host-network pod) when the client streams.
import { FailedPreconditionError, InvalidArgumentError } from "../../errors.ts";
import type { PortForwardRequest, PortForwardResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { streaming } from "./exec.ts";

export function portForwardHandler(ctx: ServerContext) {
  return async (req: PortForwardRequest): Promise<PortForwardResponse> => {
    const sb = ctx.sandboxes.get(req.podSandboxId);
    if (sb.state !== "READY") throw new FailedPreconditionError(`pod sandbox ${sb.id} is not ready`);
    for (const p of req.port) {
      if (!Number.isInteger(p) || p <= 0 || p > 65535) throw new InvalidArgumentError(`invalid port ${p}`);
    }
    return { url: (await streaming(ctx)).getPortForward({ podSandboxId: sb.id, ports: req.port }) };
  };
}
