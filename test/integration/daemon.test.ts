// The daemon over its socket: CRI gRPC (Version, Status, RuntimeConfig, UpdateRuntimeConfig,
// UNIMPLEMENTED for the rest, malformed requests) and the HTTP status API on the same socket.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { parse as parseToml } from "smol-toml";
import { RuntimeServiceMethods, CgroupDriver } from "../../src/proto/index.ts";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpGet, startDaemon, waitFor, type Daemon } from "./harness.ts";

const IMPLEMENTED = new Set([
  "Version",
  "Status",
  "RuntimeConfig",
  "UpdateRuntimeConfig",
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "PodSandboxStatus",
  "ListPodSandbox",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "ListContainers",
  "ContainerStatus",
  "ExecSync",
  "UpdateContainerResources",
  "ReopenContainerLog",
  "GetContainerEvents",
  "Exec",
  "Attach",
  "PortForward",
  "StreamPodSandboxes",
  "StreamContainers",
  "StreamContainerStats",
  "StreamPodSandboxStats",
  "ContainerStats",
  "ListContainerStats",
  "PodSandboxStats",
  "ListPodSandboxStats",
  "ListMetricDescriptors",
  "ListPodSandboxMetrics",
  "StreamPodSandboxMetrics",
]);

describe("daemon with a config file", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon({
      config: `[crio.runtime]\ncgroup_manager = "cgroupfs"\nlog_level = "debug"\n`,
    });
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  test("Version answers cri-o / v1 with the build's version", async () => {
    const r = await d.runtime.call("Version", { version: "v1" });
    expect(r.runtimeName).toBe("cri-o");
    expect(r.runtimeApiVersion).toBe("v1");
    expect(r.version).toBe("0.1.0");
    expect(r.runtimeVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("Status: RuntimeReady true, NetworkReady false with NetworkPluginNotReady", async () => {
    const r = await d.runtime.call("Status", { verbose: false });
    const conds = Object.fromEntries(r.status.conditions.map((c: any) => [c.type, c]));
    expect(conds.RuntimeReady.status).toBe(true);
    expect(conds.NetworkReady.status).toBe(false);
    expect(conds.NetworkReady.reason).toBe("NetworkPluginNotReady");
    expect(conds.NetworkReady.message).not.toBe("");
    expect(r.info).toEqual({});
    const names = r.runtimeHandlers.map((h: any) => h.name).sort();
    expect(names).toEqual(["", "crun", "runc"]);
  });

  test("NetworkReady turns true when a CNI configuration appears in network_dir, false when it goes", async () => {
    const file = join(d.dir, "net.d", "10-test.conflist");
    writeFileSync(
      file,
      JSON.stringify({ cniVersion: "1.0.0", name: "crio-test", plugins: [{ type: "bridge", bridge: "cni-never-used", ipam: { type: "host-local", subnet: "10.89.254.0/24" } }] }),
    );
    const net = async () => (await d.runtime.call("Status", {})).status.conditions.find((c: any) => c.type === "NetworkReady");
    await waitFor(async () => (await net()).status === true, 10_000, () => "NetworkReady stayed false");
    rmSync(file);
    await waitFor(async () => (await net()).status === false, 10_000, () => "NetworkReady stayed true");
    expect((await net()).reason).toBe("NetworkPluginNotReady");
  });

  test("Status verbose carries the configuration as JSON", async () => {
    const r = await d.runtime.call("Status", { verbose: true });
    const info = JSON.parse(r.info.config);
    expect(info.crio.runtime.cgroup_manager).toBe("cgroupfs");
    expect(typeof info.sandboxImage).toBe("string");
  });

  test("RuntimeConfig reports the configured cgroup driver", async () => {
    const r = await d.runtime.call("RuntimeConfig", {});
    expect(r.linux.cgroupDriver).toBe(CgroupDriver.CGROUPFS);
  });

  test("UpdateRuntimeConfig accepts kubelet's pod CIDR", async () => {
    const r = await d.runtime.call("UpdateRuntimeConfig", { runtimeConfig: { networkConfig: { podCidr: "10.88.0.0/16" } } });
    expect(r).toEqual({});
  });

  test("GetContainerEvents ends at once, without events, while enable_pod_events is off (CRI-O's default)", async () => {
    const t0 = Date.now();
    expect(await d.runtime.stream("GetContainerEvents", {}, 5000)).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test("every other RuntimeService RPC answers UNIMPLEMENTED naming itself", async () => {
    const methods = Object.values(RuntimeServiceMethods).filter((m) => !IMPLEMENTED.has(m.name));
    expect(methods.length).toBeGreaterThan(0);
    for (const m of methods) {
      const call = m.responseStream ? d.runtime.stream(m.name, {}) : d.runtime.call(m.name, {});
      const err = await call.then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code, m.name).toBe(grpc.status.UNIMPLEMENTED);
      expect(err?.details, m.name).toContain(m.name);
    }
  });

  test("a malformed request gets INVALID_ARGUMENT and the daemon keeps serving", async () => {
    // A client whose serializer sends bytes that are not a valid StatusRequest: field 1 as a
    // length-delimited value whose length runs past the end.
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Status: {
          path: "/runtime.v1.RuntimeService/Status",
          requestStream: false,
          responseStream: false,
          requestSerialize: () => Buffer.from([0x0a, 0x7f, 0x01]),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Raw",
    );
    const raw = new Ctor(`unix://${d.socket}`, grpc.credentials.createInsecure()) as any;
    const err: grpc.ServiceError = await new Promise((res) => raw.Status({}, (e: grpc.ServiceError) => res(e)));
    raw.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("malformed Status request");
    const v = await d.runtime.call("Version", {});
    expect(v.runtimeName).toBe("cri-o");
  });

  test("an unknown service method answers UNIMPLEMENTED", async () => {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Nope: {
          path: "/runtime.v1.RuntimeService/NoSuchRpc",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Raw",
    );
    const raw = new Ctor(`unix://${d.socket}`, grpc.credentials.createInsecure()) as any;
    const err: grpc.ServiceError = await new Promise((res) => raw.Nope(Buffer.alloc(0), (e: grpc.ServiceError) => res(e)));
    raw.close();
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  test("debug logging writes one line per RPC with its duration", async () => {
    await d.runtime.call("Version", {});
    const lines = d.logs().split("\n").filter((l) => l.includes("RuntimeService/Version"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatch(/level=debug/);
    expect(lines[0]).toMatch(/duration=[0-9.]+ms/);
  });

  test("HTTP GET /info on the same socket", async () => {
    const r = await httpGet(d.socket, "/info");
    expect(r.status).toBe(200);
    const info = JSON.parse(r.body);
    expect(info.cgroup_driver).toBe("cgroupfs");
    expect(info.storage_driver).toBe("overlay");
    expect(typeof info.storage_root).toBe("string");
    expect(info.default_id_mappings).toEqual({ uids: null, gids: null });
  });

  test("HTTP GET /config is the running configuration as TOML", async () => {
    const r = await httpGet(d.socket, "/config");
    expect(r.status).toBe(200);
    const t = parseToml(r.body) as any;
    expect(t.crio.api.listen).toBe(d.socket);
    expect(t.crio.runtime.cgroup_manager).toBe("cgroupfs");
  });

  test("HTTP container endpoints answer 404 while no container exists", async () => {
    for (const p of ["/containers/abc", "/pause/abc", "/unpause/abc"]) {
      const r = await httpGet(d.socket, p);
      expect(r.status, p).toBe(404);
      expect(r.body).toContain("abc");
    }
    expect((await httpGet(d.socket, "/nope")).status).toBe(404);
  });
});
