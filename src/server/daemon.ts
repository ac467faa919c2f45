// The daemon's life: listen on the CRI socket (gRPC + HTTP status API), report readiness to
// systemd, reload on SIGHUP, stop gracefully on SIGTERM/SIGINT.
import * as grpc from "@grpc/grpc-js";
import { unlinkSync } from "node:fs";
import type net from "node:net";
import { configToToml, reloadConfig, type Config, type LoadResult } from "../config/index.ts";
import { configureLogging, fileWriter, log, type LogFormat } from "../log.ts";
import { ImageServiceMethods, RuntimeServiceMethods } from "../proto/index.ts";
import { sdNotify } from "../sys/index.ts";
import { versionInfo } from "../version.ts";
import { addCriService, type Gate } from "./grpc.ts";
import { createStatusServer, type StatusSource } from "./http.ts";
import { listenUnix } from "./listen.ts";
import { crioMetrics, startMetricsServer, type MetricsServer } from "../metrics/index.ts";
import { imageHandlers } from "./image/index.ts";
import { runtimeHandlers } from "./runtime/index.ts";
import { ServerContext } from "./context.ts";
import { ImageService } from "../image/service.ts";
import { Store } from "../storage/index.ts";
import { CniNetwork } from "../network/index.ts";
import { existsSync } from "node:fs";
import { SandboxIndex } from "../state/sandboxes.ts";
import { releaseAll, restoreNetworks } from "./runtime/sandbox-common.ts";
import { containerInfo, pauseContainer, restoreContainers } from "./runtime/container-common.ts";

/** How long in-flight RPCs may run on after SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface DaemonOptions {
  /** The configuration the daemon starts with. */
  initial: LoadResult;
  /** Reads the configuration again (files, env, flags) for SIGHUP. */
  reload: () => LoadResult;
}

function applyLogging(config: Config): void {
  configureLogging({
    level: config.runtime.log_level,
    format: config.flagOnly.log_format as LogFormat,
    filter: config.runtime.log_filter,
  });
}

function notify(state: string): void {
  try {
    sdNotify(state);
  } catch (err) {
    log.warn("could not notify the service manager", { state, error: err });
  }
}

/** Debian and Ubuntu install the CNI plugins in /usr/lib/cni, not /opt/cni/bin: look there too. */
const DISTRO_CNI_DIR = "/usr/lib/cni";
function withDistroPluginDir(dirs: readonly string[]): string[] {
  const norm = (d: string) => d.replace(/\/+$/, "");
  if (!existsSync(DISTRO_CNI_DIR) || dirs.some((d) => norm(d) === DISTRO_CNI_DIR)) return [...dirs];
  return [...dirs, DISTRO_CNI_DIR];
}

/** Runs the daemon until a stop signal; resolves with the process exit status. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const initial = opts.initial.config;
  if (initial.flagOnly.log !== "") {
    try {
      configureLogging({ write: fileWriter(initial.flagOnly.log) });
    } catch (err) {
      log.error(`cannot open log file ${initial.flagOnly.log}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
  applyLogging(initial);
  for (const w of opts.initial.warnings) log.warn(w);
  const v = versionInfo();
  log.info(`Starting CRI-O, version: ${v.version}, git: ${v.gitCommit}(${v.gitTreeState})`);
  log.debug("configuration", { files: opts.initial.files });

  let store: Store;
  try {
    store = await Store.open({ root: initial.root, runroot: initial.runroot, driver: initial.storage_driver, options: initial.storage_option });
  } catch (err) {
    log.error(`cannot open the image store at ${initial.root}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  // CNI configurations load in the background: NetworkReady turns true once one is there
  // (kubelet polls Status), and start-up does not wait for every plugin to answer VERSION.
  const network = CniNetwork.fromConfig({ ...initial.network, plugin_dirs: withDistroPluginDir(initial.network.plugin_dirs) });
  network.start().catch((err: unknown) => log.error("CNI configuration watcher failed", { error: err }));
  const sandboxes = new SandboxIndex(store);
  const ctx = new ServerContext(initial, (c) => new ImageService(store, () => c.config), network, store, sandboxes);

  let ready = false;
  const gate: Gate = { notReady: () => (ready ? undefined : "the runtime is starting and not ready to serve requests yet") };
  const api = ctx.config.api;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": api.grpc_max_recv_msg_size,
    "grpc.max_send_message_length": api.grpc_max_send_msg_size,
  });
  addCriService(server, "runtime.v1.RuntimeService", RuntimeServiceMethods, runtimeHandlers(ctx), gate);
  addCriService(server, "runtime.v1.ImageService", ImageServiceMethods, imageHandlers(ctx), gate);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());

  const status: StatusSource = {
    info: () => ctx.crioInfo(),
    configToml: () => configToToml(ctx.config),
    container: (id) => containerInfo(ctx, id),
    pause: (id) => pauseContainer(ctx, id, true),
    unpause: (id) => pauseContainer(ctx, id, false),
  };
  const httpServer = createStatusServer(status);

  const listenPath = api.listen;
  let netServer: net.Server;
  try {
    netServer = await listenUnix(listenPath, {
      grpc: (s) => injector.injectConnection(s),
      http: (s) => httpServer.emit("connection", s),
    });
  } catch (err) {
    log.error(`cannot listen on ${listenPath}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  let metricsServer: MetricsServer | undefined;
  try {
    metricsServer = await startMetricsServer(ctx.config);
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    netServer.close();
    return 1;
  }
  // The streaming server (exec/attach/port-forward) loads and binds in the background: its code
  // is imported here, not at start-up, and readiness does not wait for it (Exec, Attach and
  // PortForward do). If it cannot start, the daemon stops with status 1, as CRI-O would.
  const streamingStarted = import("./runtime/streaming-backend.ts").then((m) => m.startStreaming(ctx));
  ctx.streamingReady = streamingStarted;
  streamingStarted.then((s) => (ctx.streaming = s), () => {}); // failure handled below
  // Restore before serving: RPCs answer UNAVAILABLE (the gate) until every sandbox is back and
  // half-made ones are gone, so kubelet never sees a partial list.
  try {
    const n = await sandboxes.restore((id, made) => releaseAll(ctx, id, made));
    if (n > 0) log.info(`Restored ${n} pod sandbox(es)`);
    const c = await restoreContainers(ctx);
    if (c > 0) log.info(`Restored ${c} container(s)`);
    ctx.exits.start(ctx.config.runtime.container_attach_socket_dir);
    // CNI GC of pods that are gone and CHECK of the restored ones run in the background: they
    // need the network configuration, which loads after start-up, and never change a state.
    restoreNetworks(ctx, sandboxes.list()).catch((err: unknown) => log.warn("post-restore CNI work failed", { error: err }));
  } catch (err) {
    log.error(`cannot restore pod sandboxes and containers: ${err instanceof Error ? err.message : String(err)}`);
    netServer.close();
    await metricsServer?.close();
    return 1;
  }
  ready = true;
  log.info(`Serving CRI on ${listenPath}`);
  notify("READY=1");

  return new Promise<number>((resolve) => {
    let stopping = false;
    let exitCode = 0;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn(`received ${signal} again, stopping at once`);
        server.forceShutdown();
        return;
      }
      stopping = true;
      log.info(`Received ${signal}, shutting down gracefully`);
      notify("STOPPING=1");
      ctx.events.close(); // long-lived GetContainerEvents streams end so the drain can finish
      netServer.close();
      void metricsServer?.close();
      void ctx.streaming?.close();
      httpServer.close();
      httpServer.closeIdleConnections();
      const force = setTimeout(() => {
        log.warn(`in-flight requests still running after ${SHUTDOWN_GRACE_MS} ms, cancelling them`);
        server.forceShutdown();
      }, SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        httpServer.closeAllConnections();
        try {
          unlinkSync(listenPath);
        } catch {
          // already gone
        }
        process.off("SIGHUP", onHup);
        network.close();
        ctx.exits.stop();
        log.info("CRI-O stopped");
        resolve(exitCode);
      });
    };
    streamingStarted.catch((err: unknown) => {
      log.error(`cannot start the streaming server: ${err instanceof Error ? err.message : String(err)}`);
      exitCode = 1;
      stop("a streaming server failure");
    });
    const onHup = () => {
      notify("RELOADING=1");
      try {
        const fresh = opts.reload();
        for (const w of fresh.warnings) log.warn(w);
        const { config, changed } = reloadConfig(ctx.config, fresh.config);
        ctx.config = config;
        crioMetrics.setDefaultRuntime(config.runtime.default_runtime);
        applyLogging(config);
        if (changed.length === 0) log.info("Configuration reloaded, nothing changed");
        for (const c of changed) log.info(`Set config ${c}`);
      } catch (err) {
        log.error(`Configuration reload failed, keeping the running configuration: ${err instanceof Error ? err.message : String(err)}`);
      }
      notify("READY=1");
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", onHup);
    process.on("SIGPIPE", () => {});
  });
}
