// Exec and Attach: check the container runs, then hand out a single-use URL of the streaming
// server, where kubelet (or crictl) brings the client's SPDY/WebSocket stream.
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../../errors.ts";
import type { AttachRequest, AttachResponse, ExecRequest, ExecResponse } from "../../proto/index.ts";
import { containerState } from "../../state/containers.ts";
import type { ServerContext } from "../context.ts";

/** The streaming server, waiting for it while it starts. */
export async function streaming(ctx: ServerContext) {
  if (ctx.streaming !== undefined) return ctx.streaming;
  try {
    if (ctx.streamingReady !== undefined) return await ctx.streamingReady;
  } catch { /* reported by the daemon, which stops */ }
  throw new UnavailableError("the streaming server is not running");
}

async function runningContainer(ctx: ServerContext, id: string) {
  const rec = ctx.containers.get(id);
  await ctx.exits.poll(rec);
  if (containerState(rec) !== "RUNNING") throw new FailedPreconditionError(`container ${rec.id} is not running`);
  return rec;
}

export function execHandler(ctx: ServerContext) {
  return async (req: ExecRequest): Promise<ExecResponse> => {
    if (req.cmd.length === 0) throw new InvalidArgumentError("ExecRequest.Cmd should not be empty");
    const rec = await runningContainer(ctx, req.containerId);
    const url = (await streaming(ctx)).getExec({
      containerId: rec.id, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr,
    });
    return { url };
  };
}

export function attachHandler(ctx: ServerContext) {
  return async (req: AttachRequest): Promise<AttachResponse> => {
    const rec = await runningContainer(ctx, req.containerId);
    const url = (await streaming(ctx)).getAttach({
      containerId: rec.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr,
    });
    return { url };
  };
}
