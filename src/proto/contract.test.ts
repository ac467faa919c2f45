// The CRI v1 contract as kubelet/crictl/critest expect it: service and RPC set, request and
// response types, stream flags, and the field numbers of well-known fields (from upstream
// k8s.io/cri-api runtime/v1 api.proto).
import { describe, expect, test } from "bun:test";
import {
  CgroupDriver,
  ContainerConfig,
  ContainerEventType,
  ContainerState,
  ContainerStatus,
  ExecRequest,
  ImageServiceMethods,
  ImageServiceName,
  ImageSpec,
  LinuxContainerResources,
  LinuxContainerSecurityContext,
  LinuxPodSandboxConfig,
  LinuxSandboxSecurityContext,
  Mount,
  MountPropagation,
  NamespaceMode,
  PodSandboxConfig,
  PodSandboxState,
  PsiData,
  RuntimeServiceMethods,
  RuntimeServiceName,
  SecurityProfile_ProfileType,
  SecurityProfile_ProfileTypeName,
  Signal,
  SignalName,
  type GetEventsRequest,
  type ContainerEventResponse,
  type ImageServiceHandlers,
  type MessageCodec,
  type RuntimeServiceHandlers,
  type VersionRequest,
  type VersionResponse,
} from "./index.ts";

const RUNTIME_RPCS = [
  "Version",
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "PodSandboxStatus",
  "ListPodSandbox",
  "StreamPodSandboxes",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "ListContainers",
  "StreamContainers",
  "ContainerStatus",
  "UpdateContainerResources",
  "ReopenContainerLog",
  "ExecSync",
  "Exec",
  "Attach",
  "PortForward",
  "ContainerStats",
  "ListContainerStats",
  "StreamContainerStats",
  "PodSandboxStats",
  "ListPodSandboxStats",
  "StreamPodSandboxStats",
  "UpdateRuntimeConfig",
  "Status",
  "CheckpointContainer",
  "GetContainerEvents",
  "ListMetricDescriptors",
  "ListPodSandboxMetrics",
  "StreamPodSandboxMetrics",
  "RuntimeConfig",
  "UpdatePodSandboxResources",
];

const IMAGE_RPCS = ["ListImages", "StreamImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"];

const SERVER_STREAMING = new Set([
  "StreamPodSandboxes",
  "StreamContainers",
  "StreamContainerStats",
  "StreamPodSandboxStats",
  "GetContainerEvents",
  "StreamPodSandboxMetrics",
  "StreamImages",
]);

/** Field number of the first (only) field written when encoding `msg`. */
function fieldNumberOf<T>(codec: MessageCodec<T>, msg: Partial<T>): number {
  const bytes = codec.encode(msg);
  let tag = 0;
  let shift = 0;
  for (const b of bytes) {
    tag |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  return tag >>> 3;
}

describe("services", () => {
  test("service names", () => {
    expect(RuntimeServiceName).toBe("runtime.v1.RuntimeService");
    expect(ImageServiceName).toBe("runtime.v1.ImageService");
  });

  test("RuntimeService has exactly the CRI v1 RPCs, in upstream order", () => {
    expect(Object.keys(RuntimeServiceMethods)).toEqual(RUNTIME_RPCS);
    expect(RUNTIME_RPCS.length).toBe(35);
  });

  test("ImageService has exactly the CRI v1 RPCs, in upstream order", () => {
    expect(Object.keys(ImageServiceMethods)).toEqual(IMAGE_RPCS);
  });

  test("paths, names and stream flags", () => {
    for (const [service, table] of [
      ["runtime.v1.RuntimeService", RuntimeServiceMethods],
      ["runtime.v1.ImageService", ImageServiceMethods],
    ] as const) {
      for (const [key, m] of Object.entries(table)) {
        expect(m.name).toBe(key);
        expect(m.path).toBe(`/${service}/${key}`);
        expect(m.requestStream).toBe(false);
        expect(m.responseStream).toBe(SERVER_STREAMING.has(key));
      }
    }
  });

  test("request and response types of selected RPCs", () => {
    const expected: Array<[string, string, string]> = [
      ["Version", "VersionRequest", "VersionResponse"],
      ["RunPodSandbox", "RunPodSandboxRequest", "RunPodSandboxResponse"],
      ["ListPodSandbox", "ListPodSandboxRequest", "ListPodSandboxResponse"],
      ["StreamPodSandboxes", "StreamPodSandboxesRequest", "StreamPodSandboxesResponse"],
      ["CreateContainer", "CreateContainerRequest", "CreateContainerResponse"],
      ["ContainerStatus", "ContainerStatusRequest", "ContainerStatusResponse"],
      ["ExecSync", "ExecSyncRequest", "ExecSyncResponse"],
      ["GetContainerEvents", "GetEventsRequest", "ContainerEventResponse"],
      ["Status", "StatusRequest", "StatusResponse"],
      ["RuntimeConfig", "RuntimeConfigRequest", "RuntimeConfigResponse"],
      ["UpdatePodSandboxResources", "UpdatePodSandboxResourcesRequest", "UpdatePodSandboxResourcesResponse"],
      ["ListMetricDescriptors", "ListMetricDescriptorsRequest", "ListMetricDescriptorsResponse"],
    ];
    const table: Record<string, { request: MessageCodec<unknown>; response: MessageCodec<unknown> }> = RuntimeServiceMethods;
    for (const [rpc, req, res] of expected) {
      expect(table[rpc]?.request.typeName).toBe(`runtime.v1.${req}`);
      expect(table[rpc]?.response.typeName).toBe(`runtime.v1.${res}`);
    }
    expect(ImageServiceMethods.PullImage.request.typeName).toBe("runtime.v1.PullImageRequest");
    expect(ImageServiceMethods.PullImage.response.typeName).toBe("runtime.v1.PullImageResponse");
    expect(ImageServiceMethods.ImageFsInfo.response.typeName).toBe("runtime.v1.ImageFsInfoResponse");
    expect(ImageServiceMethods.StreamImages.response.typeName).toBe("runtime.v1.StreamImagesResponse");
  });

  test("method tables and handler interfaces are typed per RPC", async () => {
    // Compile-time checks (tsc): the table entry carries the codec type.
    const req: MessageCodec<VersionRequest> = RuntimeServiceMethods.Version.request;
    const res: MessageCodec<VersionResponse> = RuntimeServiceMethods.Version.response;
    const ev: MessageCodec<ContainerEventResponse> = RuntimeServiceMethods.GetContainerEvents.response;
    expect([req.typeName, res.typeName, ev.typeName]).toEqual([
      "runtime.v1.VersionRequest",
      "runtime.v1.VersionResponse",
      "runtime.v1.ContainerEventResponse",
    ]);
    const handlers: Pick<RuntimeServiceHandlers, "Version" | "GetContainerEvents"> & Pick<ImageServiceHandlers, "ImageFsInfo"> = {
      async Version(r) {
        return { version: r.version, runtimeName: "cri-o", runtimeVersion: "1.0.0", runtimeApiVersion: "v1" };
      },
      async GetContainerEvents(_r: GetEventsRequest, send, signal) {
        if (!signal.aborted) send(RuntimeServiceMethods.GetContainerEvents.response.create({ containerId: "c1" }));
      },
      async ImageFsInfo() {
        return { imageFilesystems: [], containerFilesystems: [] };
      },
    };
    const sent: ContainerEventResponse[] = [];
    await handlers.GetContainerEvents({}, (m) => sent.push(m), new AbortController().signal);
    expect(sent.map((m) => m.containerId)).toEqual(["c1"]);
    expect((await handlers.Version({ version: "v1" }, new AbortController().signal)).runtimeApiVersion).toBe("v1");
  });
});

describe("well-known field numbers (upstream api.proto)", () => {
  test("PodSandboxConfig", () => {
    expect(fieldNumberOf(PodSandboxConfig, { metadata: { name: "", uid: "", namespace: "", attempt: 0 } })).toBe(1);
    expect(fieldNumberOf(PodSandboxConfig, { hostname: "h" })).toBe(2);
    expect(fieldNumberOf(PodSandboxConfig, { logDirectory: "/var/log/pods/x" })).toBe(3);
    expect(fieldNumberOf(PodSandboxConfig, { labels: { a: "b" } })).toBe(6);
    expect(fieldNumberOf(PodSandboxConfig, { annotations: { a: "b" } })).toBe(7);
    expect(fieldNumberOf(PodSandboxConfig, { linux: LinuxPodSandboxConfig.create() })).toBe(8);
    expect(fieldNumberOf(PodSandboxConfig, { windows: { securityContext: undefined } })).toBe(9);
  });

  test("ContainerConfig", () => {
    expect(fieldNumberOf(ContainerConfig, { image: ImageSpec.create({ image: "x" }) })).toBe(2);
    expect(fieldNumberOf(ContainerConfig, { envs: [{ key: "A", value: "1" }] })).toBe(6);
    expect(fieldNumberOf(ContainerConfig, { mounts: [Mount.create()] })).toBe(7);
    expect(fieldNumberOf(ContainerConfig, { logPath: "c/0.log" })).toBe(11);
    expect(fieldNumberOf(ContainerConfig, { tty: true })).toBe(14);
    expect(fieldNumberOf(ContainerConfig, { linux: { resources: undefined, securityContext: undefined } })).toBe(15);
    expect(fieldNumberOf(ContainerConfig, { CDIDevices: [{ name: "vendor.com/gpu=0" }] })).toBe(17);
    expect(fieldNumberOf(ContainerConfig, { stopSignal: Signal.SIGTERM })).toBe(18);
  });

  test("LinuxContainerResources", () => {
    const cases: Array<[Partial<LinuxContainerResources>, number]> = [
      [{ cpuPeriod: 100000n }, 1],
      [{ cpuQuota: 50000n }, 2],
      [{ cpuShares: 1024n }, 3],
      [{ memoryLimitInBytes: 1n << 30n }, 4],
      [{ oomScoreAdj: -998n }, 5],
      [{ cpusetCpus: "0-3" }, 6],
      [{ cpusetMems: "0" }, 7],
      [{ hugepageLimits: [{ pageSize: "2MB", limit: 0n }] }, 8],
      [{ unified: { "memory.high": "max" } }, 9],
      [{ memorySwapLimitInBytes: 2n }, 10],
    ];
    for (const [msg, n] of cases) expect(fieldNumberOf(LinuxContainerResources, msg)).toBe(n);
  });

  test("Mount", () => {
    const cases: Array<[Partial<Mount>, number]> = [
      [{ containerPath: "/data" }, 1],
      [{ hostPath: "/srv" }, 2],
      [{ readonly: true }, 3],
      [{ selinuxRelabel: true }, 4],
      [{ propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }, 5],
      [{ uidMappings: [{ hostId: 1, containerId: 0, length: 1 }] }, 6],
      [{ gidMappings: [{ hostId: 1, containerId: 0, length: 1 }] }, 7],
      [{ recursiveReadOnly: true }, 8],
      [{ image: ImageSpec.create() }, 9],
      [{ imageSubPath: "sub" }, 10],
    ];
    for (const [msg, n] of cases) expect(fieldNumberOf(Mount, msg)).toBe(n);
  });

  test("security contexts, status and exec", () => {
    expect(fieldNumberOf(LinuxSandboxSecurityContext, { runAsGroup: { value: 0n } })).toBe(8);
    expect(fieldNumberOf(LinuxSandboxSecurityContext, { supplementalGroupsPolicy: 1 })).toBe(11);
    expect(fieldNumberOf(LinuxContainerSecurityContext, { runAsGroup: { value: 0n } })).toBe(12);
    expect(fieldNumberOf(LinuxContainerSecurityContext, { noNewPrivs: true })).toBe(11);
    expect(fieldNumberOf(LinuxContainerSecurityContext, { apparmor: { profileType: 0, localhostRef: "" } })).toBe(16);
    expect(fieldNumberOf(LinuxContainerSecurityContext, { supplementalGroupsPolicy: 1 })).toBe(17);
    expect(fieldNumberOf(ImageSpec, { userSpecifiedImage: "nginx" })).toBe(18);
    expect(fieldNumberOf(ImageSpec, { runtimeHandler: "runc" })).toBe(19);
    expect(fieldNumberOf(ImageSpec, { imageRef: "sha256:x" })).toBe(20);
    expect(fieldNumberOf(ContainerStatus, { exitCode: 1 })).toBe(7);
    expect(fieldNumberOf(ContainerStatus, { imageId: "sha256:x" })).toBe(17);
    expect(fieldNumberOf(ContainerStatus, { stopSignal: Signal.SIGKILL })).toBe(19);
    expect(fieldNumberOf(ExecRequest, { auditRequestId: "id" })).toBe(7);
    expect(fieldNumberOf(PsiData, { Avg300: 0.5 })).toBe(4);
  });
});

describe("enums", () => {
  test("values and name lookups", () => {
    expect(PodSandboxState.SANDBOX_NOTREADY).toBe(1);
    expect(ContainerState.CONTAINER_UNKNOWN).toBe(3);
    expect(NamespaceMode.TARGET).toBe(3);
    expect(CgroupDriver.CGROUPFS).toBe(1);
    expect(ContainerEventType.CONTAINER_DELETED_EVENT).toBe(3);
    expect(Signal.SIGRTMAX).toBe(65);
    expect(SignalName[23]).toBe("SIGTERM");
    expect(SecurityProfile_ProfileType.Localhost).toBe(2);
    expect(SecurityProfile_ProfileTypeName[1]).toBe("Unconfined");
  });
});
