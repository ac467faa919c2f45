// The container side of the streaming server: exec runs `runc exec` in the foreground (not
// through conmon, as CRI-O does), attach connects to conmon's attach socket and ctl fifo, and
// port-forward dials localhost inside the pod's network namespace.
import { readFileSync } from "node:fs";
import { FailedPreconditionError } from "../../errors.ts";
import { attachSocketPath, attachStreaming, ctlFifoPath, execStreaming, portForwardStreaming } from "../../oci/stream.ts";
import { StreamingServer, type StreamingBackend } from "../../streaming/index.ts";
import { containerState } from "../../state/containers.ts";
import type { ServerContext } from "../context.ts";
import { ociFor } from "./container-common.ts";

function backend(ctx: ServerContext): StreamingBackend {
  const running = async (id: string) => {
    const rec = ctx.containers.get(id);
    await ctx.exits.poll(rec);
    if (containerState(rec) !== "RUNNING") throw new FailedPreconditionError(`container ${rec.id} is not running`);
    return rec;
  };
  return {
    async exec(req, io) {
      const rec = await running(req.containerId);
      const oci = ociFor(ctx, rec.runtimeHandler).config;
      return execStreaming({
        runtimePath: oci.runtimePath,
        runtimeRoot: oci.runtimeRoot,
        systemdCgroup: oci.cgroupManager === "systemd",
        id: rec.id,
        bundleDir: rec.bundleDir,
        cmd: req.cmd,
        tty: req.tty,
        stdin: io.stdin,
        stdout: io.stdout && ((c) => io.stdout!.write(c)),
        stderr: io.stderr && ((c) => io.stderr!.write(c)),
        resize: io.resize,
        signal: io.signal,
      });
    },
    async attach(req, io) {
      const rec = await running(req.containerId);
      await attachStreaming({
        attachSocketPath: attachSocketPath(ctx.config.runtime.container_attach_socket_dir, rec.id),
        ctlPath: ctlFifoPath(rec.bundleDir),
        tty: req.tty,
        containerStdin: rec.stdin,
        stdinOnce: rec.stdinOnce,
        stdin: io.stdin,
        stdout: io.stdout && ((c) => io.stdout!.write(c)),
        stderr: io.stderr && ((c) => io.stderr!.write(c)),
        resize: io.resize,
        signal: io.signal,
      });
    },
    async portForward(podSandboxId, port, conn) {
      const sb = ctx.sandboxes.get(podSandboxId);
      if (sb.state !== "READY") throw new FailedPreconditionError(`pod sandbox ${sb.id} is not ready`);
      await portForwardStreaming({
        netnsPath: sb.hostNetwork ? null : (sb.netnsPath ?? null),
        port,
        input: conn.input,
        write: (c) => conn.write(c),
        signal: conn.signal,
      });
    },
  };
}

/** The streaming server on stream_address:stream_port (TLS with stream_enable_tls), listening. */
export async function startStreaming(ctx: ServerContext): Promise<StreamingServer> {
  const c = ctx.config.api;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (c.stream_enable_tls) {
    try {
      tls = { cert: readFileSync(c.stream_tls_cert), key: readFileSync(c.stream_tls_key) };
    } catch (err) {
      throw new Error(`stream_enable_tls is set but the certificate or key cannot be read: ${(err as Error).message}`);
    }
  }
  const server = new StreamingServer(backend(ctx), {
    address: c.stream_address,
    port: c.stream_port,
    idleTimeout: c.stream_idle_timeout,
    tls,
  });
  await server.listen();
  return server;
}
