// ExecSync: runs a command in a running container through `conmon -e`, with the request's
// timeout (seconds; 0 = none). Output is capped at 16 MiB per stream by conmon.
import { FailedPreconditionError, InvalidArgumentError } from "../../errors.ts";
import type { ExecSyncRequest, ExecSyncResponse } from "../../proto/index.ts";
import { containerState } from "../../state/containers.ts";
import type { ServerContext } from "../context.ts";
import { ociFor } from "./container-common.ts";

const MAX_OUTPUT = 16 * 1024 * 1024;

export function execSyncHandler(ctx: ServerContext) {
  return async (req: ExecSyncRequest): Promise<ExecSyncResponse> => {
    const rec = ctx.containers.get(req.containerId);
    if (req.cmd.length === 0) throw new InvalidArgumentError("ExecSyncRequest.Cmd should not be empty");
    await ctx.exits.poll(rec);
    if (containerState(rec) !== "RUNNING") {
      throw new FailedPreconditionError(`container ${rec.id} is not running: cannot exec in it`);
    }
    const timeoutSec = req.timeout > 0n ? Number(req.timeout) : 0;
    const r = await ociFor(ctx, rec.runtimeHandler).execSync(rec.id, req.cmd, { timeoutSec, bundleDir: rec.bundleDir });
    const cap = (b: Uint8Array) => (b.length > MAX_OUTPUT ? b.subarray(0, MAX_OUTPUT) : b);
    return { stdout: cap(r.stdout), stderr: cap(r.stderr), exitCode: r.exitCode };
  };
}
