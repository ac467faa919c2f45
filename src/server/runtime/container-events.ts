// GetContainerEvents (kubelet's evented PLEG), as CRI-O's server/container_events.go: only with
// enable_pod_events. Every event carries the pod's status and its containers' statuses as they
// are when the event is sent. Each stream has a queue of 1000 events; a stream that falls
// further behind loses events (counted, as containers_events_dropped_total counts them).
import { log } from "../../log.ts";
import { crioMetrics } from "../../metrics/crio.ts";
import { ContainerEventType, type ContainerEventResponse, type GetEventsRequest } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { toCriStatus } from "./container-common.ts";
import { podSandboxStatusOf } from "./pod-sandbox-status.ts";

const QUEUE_LIMIT = 1000;

interface Subscriber {
  queue: ContainerEventResponse[];
  wake: (() => void) | undefined;
}

export class ContainerEventBus {
  private readonly subscribers = new Set<Subscriber>();
  private closed = false;
  /** Events a slow stream did not get (containers_events_dropped_total). */
  dropped = 0;

  constructor(private readonly ctx: ServerContext) {}

  get enabled(): boolean {
    return this.ctx.config.runtime.enable_pod_events;
  }

  /**
   * An event about `containerId` (a container, or a sandbox for its own CREATED/STARTED/STOPPED/
   * DELETED) of the pod `sandboxId`. Cheap when nobody listens.
   */
  emit(containerId: string, type: ContainerEventType, sandboxId: string): void {
    if (!this.enabled || this.subscribers.size === 0) return;
    const sb = this.ctx.sandboxes.find(sandboxId);
    const event: ContainerEventResponse = {
      containerId,
      containerEventType: type,
      createdAt: BigInt(Date.now()) * 1_000_000n,
      podSandboxStatus: sb ? podSandboxStatusOf(sb) : undefined,
      containersStatuses: this.ctx.containers.ofSandbox(sandboxId).map(toCriStatus),
    };
    for (const s of this.subscribers) {
      if (s.queue.length >= QUEUE_LIMIT) {
        this.dropped++;
        crioMetrics.containersEventsDropped.inc();
        continue;
      }
      s.queue.push(event);
      s.wake?.();
    }
  }

  /** Streams events to `send` until the client goes away or the daemon stops. */
  async stream(send: (e: ContainerEventResponse) => void, signal: AbortSignal): Promise<void> {
    if (this.closed) return;
    const sub: Subscriber = { queue: [], wake: undefined };
    this.subscribers.add(sub);
    const onAbort = () => sub.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted && !this.closed) {
        const next = sub.queue.shift();
        if (next !== undefined) {
          send(next);
          continue;
        }
        await new Promise<void>((resolve) => (sub.wake = resolve));
        sub.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.subscribers.delete(sub);
    }
  }

  /** Ends every stream (daemon shutdown). */
  close(): void {
    this.closed = true;
    for (const s of this.subscribers) s.wake?.();
  }
}

export function getContainerEventsHandler(ctx: ServerContext) {
  return async (_req: GetEventsRequest, send: (e: ContainerEventResponse) => void, signal?: AbortSignal): Promise<void> => {
    // As CRI-O: with enable_pod_events off the stream ends at once, without events.
    if (!ctx.events.enabled) {
      log.debug("GetContainerEvents: enable_pod_events is off");
      return;
    }
    await ctx.events.stream(send, signal ?? new AbortController().signal);
  };
}
