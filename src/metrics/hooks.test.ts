// The hooks in the runtime that feed crioMetrics and have no cheap end-to-end trigger: an OOM
// kill recorded by markExited, and events a slow GetContainerEvents stream loses.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerEventType } from "../proto/index.ts";
import type { ServerContext } from "../server/context.ts";
import { markExited } from "../server/runtime/container-common.ts";
import { ContainerEventBus } from "../server/runtime/container-events.ts";
import type { ContainerRecord } from "../state/containers.ts";
import { crioMetrics } from "./crio.ts";

const dir = mkdtempSync(join(tmpdir(), "crio-metrics-hooks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("runtime hooks", () => {
  test("markExited counts an OOM kill in total and by the container's name, and nothing else", () => {
    const rec = (name: string) => ({ name, persistDir: join(dir, name), bundleDir: undefined, startedNs: "1" }) as unknown as ContainerRecord;
    const oom = rec("k8s_hog_pod_ns_uid_0");
    const plain = rec("k8s_calm_pod_ns_uid_0");
    for (const r of [oom, plain]) mkdirSync(r.persistDir, { recursive: true });
    writeFileSync(join(oom.persistDir, "oom"), "");
    const before = crioMetrics.containersOomTotal.value();
    markExited(oom, 137, new Date());
    markExited(plain, 137, new Date());
    expect(oom.oomKilled).toBe(true);
    expect(crioMetrics.containersOomTotal.value()).toBe(before + 1);
    expect(crioMetrics.containersOomCountTotal.value({ name: "k8s_hog_pod_ns_uid_0" })).toBe(1);
    expect(crioMetrics.containersOomCountTotal.remove({ name: "k8s_calm_pod_ns_uid_0" })).toBe(false);
  });

  test("events beyond a stream's queue of 1000 count as dropped", async () => {
    const ctx = {
      config: { runtime: { enable_pod_events: true } },
      sandboxes: { find: () => undefined },
      containers: { ofSandbox: () => [] },
    } as unknown as ServerContext;
    const bus = new ContainerEventBus(ctx);
    const abort = new AbortController();
    let received = 0;
    const streaming = bus.stream(() => received++, abort.signal);
    const before = crioMetrics.containersEventsDropped.value();
    // Emitted without yielding, so the stream cannot drain in between.
    for (let i = 0; i < 1003; i++) bus.emit("c", ContainerEventType.CONTAINER_CREATED_EVENT, "s");
    expect(bus.dropped).toBe(3);
    expect(crioMetrics.containersEventsDropped.value()).toBe(before + 3);
    await Bun.sleep(5);
    expect(received).toBe(1000);
    abort.abort();
    bus.close();
    await streaming;
  });
});
