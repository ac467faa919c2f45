// src/oci: conmon + OCI runtime invocation, exec, exit monitoring.
export { OciError, OciRuntime } from "./runtime.ts";
export type { CreateContainerOptions, ExecSyncResult, RuntimeHandlerConfig, RuntimeState } from "./runtime.ts";
export { ExitWatcher, readExitFile, readExitStatus } from "./exit-watcher.ts";
export type { ContainerExit } from "./exit-watcher.ts";
export { parseCriLogLine, splitCriLog, splitCriLogBytes } from "./cri-log.ts";
export type { CriLogRecord } from "./cri-log.ts";
export { conmonEnv, createArgs, execSyncArgs } from "./conmon-args.ts";
export type { CgroupManager } from "./conmon-args.ts";
