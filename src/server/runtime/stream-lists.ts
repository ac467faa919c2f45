// The streaming variants of the list RPCs (StreamPodSandboxes, StreamContainers,
// StreamContainerStats, StreamPodSandboxStats): the same answer as the List RPC, sent in chunks
// so that a node with very many pods or containers never exceeds the message size limit.
import type {
  StreamContainerStatsRequest,
  StreamContainerStatsResponse,
  StreamContainersRequest,
  StreamContainersResponse,
  StreamPodSandboxesRequest,
  StreamPodSandboxesResponse,
  StreamPodSandboxStatsRequest,
  StreamPodSandboxStatsResponse,
} from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { listContainerStatsHandler } from "./container-stats.ts";
import { listContainersHandler } from "./list-containers.ts";
import { listPodSandboxHandler } from "./list-pod-sandbox.ts";
import { listPodSandboxStatsHandler } from "./pod-sandbox-stats.ts";

/** Items per message, as StreamImages. */
export const LIST_STREAM_CHUNK = 3000;

function chunks<T>(items: T[], send: (part: T[]) => void): void {
  for (let i = 0; i < items.length; i += LIST_STREAM_CHUNK) send(items.slice(i, i + LIST_STREAM_CHUNK));
}

export function streamPodSandboxesHandler(ctx: ServerContext) {
  const list = listPodSandboxHandler(ctx);
  return async (req: StreamPodSandboxesRequest, send: (m: StreamPodSandboxesResponse) => void): Promise<void> => {
    chunks((await list({ filter: req.filter })).items, (podSandboxes) => send({ podSandboxes }));
  };
}

export function streamContainersHandler(ctx: ServerContext) {
  const list = listContainersHandler(ctx);
  return async (req: StreamContainersRequest, send: (m: StreamContainersResponse) => void): Promise<void> => {
    chunks((await list({ filter: req.filter })).containers, (containers) => send({ containers }));
  };
}

export function streamContainerStatsHandler(ctx: ServerContext) {
  const list = listContainerStatsHandler(ctx);
  return async (req: StreamContainerStatsRequest, send: (m: StreamContainerStatsResponse) => void): Promise<void> => {
    chunks((await list({ filter: req.filter })).stats, (containerStats) => send({ containerStats }));
  };
}

export function streamPodSandboxStatsHandler(ctx: ServerContext) {
  const list = listPodSandboxStatsHandler(ctx);
  return async (req: StreamPodSandboxStatsRequest, send: (m: StreamPodSandboxStatsResponse) => void): Promise<void> => {
    chunks((await list({ filter: req.filter })).stats, (podSandboxStats) => send({ podSandboxStats }));
  };
}
