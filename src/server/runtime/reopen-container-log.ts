// ReopenContainerLog: tells conmon through its ctl fifo (message "2 0 0": reopen the log) to
// close the log file and open it again at the same path, so kubelet can rotate it away.
import { closeSync, constants, existsSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError, InternalError } from "../../errors.ts";
import type { ReopenContainerLogRequest, ReopenContainerLogResponse } from "../../proto/index.ts";
import { containerState } from "../../state/containers.ts";
import type { ServerContext } from "../context.ts";

const REOPEN_WAIT_MS = 5_000;

export function reopenContainerLogHandler(ctx: ServerContext) {
  return async (req: ReopenContainerLogRequest): Promise<ReopenContainerLogResponse> => {
    const rec = ctx.containers.get(req.containerId);
    await ctx.exits.poll(rec);
    if (containerState(rec) !== "RUNNING") throw new FailedPreconditionError(`container ${rec.id} is not running`);
    let fd: number;
    try {
      fd = openSync(join(rec.bundleDir, "ctl"), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new InternalError(`cannot open the log control of container ${rec.id}: ${(err as Error).message}`);
    }
    try {
      writeSync(fd, "2 0 0\n");
    } finally {
      closeSync(fd);
    }
    // conmon opens the file again at once; wait until it is there (the old one was moved away).
    const deadline = Date.now() + REOPEN_WAIT_MS;
    while (!existsSync(rec.logPath)) {
      if (Date.now() > deadline) throw new InternalError(`conmon did not reopen the log ${rec.logPath} of container ${rec.id}`);
      await Bun.sleep(10);
    }
    return {};
  };
}
