// Round trips of the generated codecs and decoder robustness on malformed input.
import { describe, expect, test } from "bun:test";
import {
  ContainerEventResponse,
  ContainerState,
  ContainerStatusResponse,
  CreateContainerRequest,
  ExecSyncResponse,
  LinuxContainerResources,
  MountPropagation,
  NamespaceMode,
  PodSandboxConfig,
  PortForwardRequest,
  PortMapping,
  Protocol,
  ProtoDecodeError,
  PsiData,
  RunPodSandboxRequest,
  SecurityProfile_ProfileType,
  Signal,
  VersionRequest,
  Writer,
} from "./index.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (...v: number[]): Uint8Array => new Uint8Array(v);

const BIG = (1n << 62n) + 12345n; // > 2^53
const NS = 1_700_000_000_123_456_789n; // a CRI nanosecond timestamp

function richCreateContainer(): CreateContainerRequest {
  return CreateContainerRequest.create({
    podSandboxId: "4f1c2d",
    config: {
      metadata: { name: "nginx", attempt: 3 },
      image: { image: "docker.io/library/nginx:latest", annotations: { "a.b/c": "d" }, userSpecifiedImage: "nginx", runtimeHandler: "", imageRef: "sha256:ab" },
      command: ["/bin/sh", "-c"],
      args: ["echo héllo ✓ 😀", ""],
      workingDir: "/",
      envs: [
        { key: "PATH", value: "/usr/bin" },
        { key: "EMPTY", value: "" },
      ],
      mounts: [
        {
          containerPath: "/data",
          hostPath: "/srv/data",
          readonly: true,
          selinuxRelabel: false,
          propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER,
          uidMappings: [{ hostId: 100000, containerId: 0, length: 65536 }],
          gidMappings: [],
          recursiveReadOnly: true,
          image: undefined,
          imageSubPath: "",
        },
      ],
      devices: [{ containerPath: "/dev/fuse", hostPath: "/dev/fuse", permissions: "rwm" }],
      labels: { "io.kubernetes.container.name": "nginx", "": "empty-key" },
      annotations: { "io.kubernetes.container.hash": "abcd", k: "" },
      logPath: "nginx/3.log",
      stdin: false,
      stdinOnce: false,
      tty: true,
      linux: {
        resources: {
          cpuPeriod: 100000n,
          cpuQuota: -1n,
          cpuShares: 2n,
          memoryLimitInBytes: BIG,
          oomScoreAdj: -998n,
          cpusetCpus: "0-3",
          cpusetMems: "",
          hugepageLimits: [{ pageSize: "2MB", limit: 0xffffffffffffffffn }],
          unified: { "memory.high": "max", "io.weight": "default 100" },
          memorySwapLimitInBytes: 0n,
        },
        securityContext: {
          capabilities: { addCapabilities: ["CAP_NET_ADMIN"], dropCapabilities: ["ALL"], addAmbientCapabilities: [] },
          privileged: false,
          namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD, targetId: "", usernsOptions: undefined },
          selinuxOptions: undefined,
          runAsUser: { value: 0n },
          runAsGroup: { value: -1n },
          runAsUsername: "",
          readonlyRootfs: true,
          supplementalGroups: [1n, -2n, 4294967296n, BIG, -BIG],
          supplementalGroupsPolicy: 1,
          noNewPrivs: true,
          maskedPaths: ["/proc/kcore"],
          readonlyPaths: ["/proc/sys"],
          seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: "/var/lib/kubelet/seccomp/x.json" },
          apparmor: { profileType: SecurityProfile_ProfileType.RuntimeDefault, localhostRef: "" },
          apparmorProfile: "",
          seccompProfilePath: "",
        },
      },
      windows: undefined,
      CDIDevices: [{ name: "vendor.com/gpu=0" }],
      stopSignal: Signal.SIGRTMAXMINUS1,
    },
    sandboxConfig: {
      metadata: { name: "pod", uid: "uid-1", namespace: "default", attempt: 0 },
      hostname: "pod",
      logDirectory: "/var/log/pods/default_pod_uid-1",
      dnsConfig: { servers: ["10.0.0.10"], searches: ["svc.cluster.local"], options: ["ndots:5"] },
      portMappings: [{ protocol: Protocol.SCTP, containerPort: 80, hostPort: -1, hostIp: "::1" }],
      labels: {},
      annotations: {},
      linux: undefined,
      windows: undefined,
    },
  });
}

describe("round trips", () => {
  test("rich CreateContainerRequest (nested, repeated, maps, enums, int64, negatives)", () => {
    const msg = richCreateContainer();
    const buf = CreateContainerRequest.encode(msg);
    const back = CreateContainerRequest.decode(buf);
    expect(back).toEqual(msg);
    expect(back.config?.linux?.resources?.memoryLimitInBytes).toBe(BIG);
    expect(back.config?.linux?.securityContext?.supplementalGroups).toEqual([1n, -2n, 4294967296n, BIG, -BIG]);
    expect(back.config?.linux?.resources?.hugepageLimits[0]?.limit).toBe(0xffffffffffffffffn);
    expect(back.config?.labels[""]).toBe("empty-key");
    expect(back.config?.args[0]).toBe("echo héllo ✓ 😀");
    expect(back.sandboxConfig?.portMappings[0]?.hostPort).toBe(-1);
    // Re-encoding is stable.
    expect(hex(CreateContainerRequest.encode(back))).toBe(hex(buf));
  });

  test("status responses with int64 timestamps and events", () => {
    const status = ContainerStatusResponse.create({
      status: {
        id: "c1",
        metadata: { name: "app", attempt: 0 },
        state: ContainerState.CONTAINER_EXITED,
        createdAt: NS,
        startedAt: NS + 1n,
        finishedAt: NS + 2n,
        exitCode: -1,
        image: undefined,
        imageRef: "",
        reason: "OOMKilled",
        message: "",
        labels: { a: "b" },
        annotations: {},
        mounts: [],
        logPath: "",
        resources: undefined,
        imageId: "",
        user: { linux: { uid: 1000n, gid: 1000n, supplementalGroups: [10n, 20n] } },
        stopSignal: Signal.RUNTIME_DEFAULT,
      },
      info: { info: '{"pid":1}' },
    });
    const back = ContainerStatusResponse.decode(ContainerStatusResponse.encode(status));
    expect(back).toEqual(status);
    expect(back.status?.createdAt).toBe(NS);

    const ev = ContainerEventResponse.create({ containerId: "c1", containerEventType: 2, createdAt: NS, containersStatuses: [status.status!] });
    expect(ContainerEventResponse.decode(ContainerEventResponse.encode(ev))).toEqual(ev);
  });

  test("bytes and doubles", () => {
    const big = new Uint8Array(70000).map((_, i) => (i * 7) & 0xff);
    const msg = ExecSyncResponse.create({ stdout: big, stderr: bytes(0, 255, 128), exitCode: 2 });
    const back = ExecSyncResponse.decode(ExecSyncResponse.encode(msg));
    expect(back.stdout).toEqual(big);
    expect(back.stderr).toEqual(bytes(0, 255, 128));
    expect(back.exitCode).toBe(2);
    const psi = PsiData.create({ Total: 5n, Avg10: 0.25, Avg60: 1e300, Avg300: -3.5 });
    expect(PsiData.decode(PsiData.encode(psi))).toEqual(psi);
  });

  test("absent messages stay absent; empty messages are present", () => {
    const a = RunPodSandboxRequest.decode(RunPodSandboxRequest.encode({ runtimeHandler: "kata" }));
    expect(a.config).toBeUndefined();
    const b = RunPodSandboxRequest.decode(RunPodSandboxRequest.encode({ config: PodSandboxConfig.create() }));
    expect(b.config).toEqual(PodSandboxConfig.create());
    expect(hex(RunPodSandboxRequest.encode({ config: PodSandboxConfig.create() }))).toBe("0a00");
  });

  test("defaults are not written; empty input decodes to defaults", () => {
    expect(LinuxContainerResources.encode(LinuxContainerResources.create()).length).toBe(0);
    expect(CreateContainerRequest.encode({}).length).toBe(0);
    expect(LinuxContainerResources.decode(new Uint8Array(0))).toEqual(LinuxContainerResources.create());
    expect(VersionRequest.create()).toEqual({ version: "" });
  });
});

describe("exact encodings", () => {
  test("negative int32 and int64 use 10-byte varints", () => {
    expect(hex(ExecSyncResponse.encode({ exitCode: -1 }))).toBe("18ffffffffffffffffff01");
    expect(hex(LinuxContainerResources.encode({ oomScoreAdj: -1n }))).toBe("28ffffffffffffffffff01");
    expect(hex(PortMapping.encode({ containerPort: -2147483648 }))).toBe("1080808080f8ffffffff01");
  });

  test("int64 beyond 2^53 and uint64 max", () => {
    expect(hex(LinuxContainerResources.encode({ memoryLimitInBytes: 1n << 62n }))).toBe("20808080808080808040");
    const back = LinuxContainerResources.decode(LinuxContainerResources.encode({ memoryLimitInBytes: (1n << 63n) - 1n }));
    expect(back.memoryLimitInBytes).toBe((1n << 63n) - 1n);
  });

  test("repeated scalars are packed; unpacked input is accepted", () => {
    expect(hex(PortForwardRequest.encode({ port: [80, 443, -1] }))).toBe("120d50bb03ffffffffffffffffff01");
    const unpacked = bytes(0x10, 80, 0x10, 0xbb, 0x03);
    expect(PortForwardRequest.decode(unpacked).port).toEqual([80, 443]);
    // Mixed: packed chunk followed by an unpacked element.
    expect(PortForwardRequest.decode(bytes(0x12, 0x01, 1, 0x10, 2, 0x12, 0x02, 3, 4)).port).toEqual([1, 2, 3, 4]);
  });

  test("map entries are key=1/value=2 sub-messages", () => {
    expect(hex(PodSandboxConfig.encode({ labels: { a: "b" } }))).toBe("3206" + "0a0161" + "120162");
  });

  test("nested messages longer than 127 bytes get multi-byte lengths", () => {
    const name = "x".repeat(300);
    const buf = RunPodSandboxRequest.encode({ config: PodSandboxConfig.create({ hostname: name }) });
    // 0a <len 303 = af 02> 12 <len 300 = ac 02> xxx...
    expect(hex(buf.subarray(0, 6))).toBe("0aaf0212ac02");
    expect(RunPodSandboxRequest.decode(buf).config?.hostname).toBe(name);
  });

  test("unknown fields of every wire type are skipped", () => {
    const w = new Writer();
    w.uint32((99 << 3) | 0).int64(-1n); // varint
    w.uint32((98 << 3) | 1).fixed64(7n); // fixed64
    w.uint32((1 << 3) | 2).string("v1"); // known: version
    w.uint32((97 << 3) | 2).bytes(bytes(1, 2, 3)); // length-delimited
    w.uint32((96 << 3) | 5).fixed32(9); // fixed32
    w.uint32((95 << 3) | 3); // group start
    w.uint32((5 << 3) | 0).uint32(1);
    w.uint32((94 << 3) | 3).uint32((94 << 3) | 4); // nested empty group
    w.uint32((95 << 3) | 4); // group end
    w.uint32((1 << 3) | 0).uint32(5); // known field number with the wrong wire type: skipped
    expect(VersionRequest.decode(w.finish())).toEqual({ version: "v1" });
  });

  test("last value wins for repeated singular fields; messages merge", () => {
    const w = new Writer();
    w.uint32(10).string("a").uint32(10).string("b");
    expect(VersionRequest.decode(w.finish()).version).toBe("b");
    const m1 = RunPodSandboxRequest.encode({ config: PodSandboxConfig.create({ hostname: "h" }) });
    const m2 = RunPodSandboxRequest.encode({ config: PodSandboxConfig.create({ logDirectory: "/l" }) });
    const merged = RunPodSandboxRequest.decode(new Uint8Array([...m1, ...m2]));
    expect(merged.config?.hostname).toBe("h");
    expect(merged.config?.logDirectory).toBe("/l");
  });

  test("map key __proto__ is kept as data", () => {
    const back = PodSandboxConfig.decode(PodSandboxConfig.encode({ labels: JSON.parse('{"__proto__":"x","y":"z"}') }));
    expect(Object.keys(back.labels)).toEqual(["__proto__", "y"]);
    expect(Object.getPrototypeOf(back.labels)).toBe(Object.prototype);
  });
});

describe("malformed input", () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["truncated tag varint", bytes(0x80), /truncated varint/],
    ["truncated value varint", bytes(0x10, 0xff), /truncated varint/],
    ["varint longer than 10 bytes", bytes(0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), /longer than 10 bytes/],
    ["wire type 6", bytes(0x0e, 0x00), /invalid wire type 6/],
    ["wire type 7", bytes(0x0f, 0x00), /invalid wire type 7/],
    ["field number 0", bytes(0x00, 0x00), /field number 0/],
    ["unexpected end group", bytes(0x0c), /end-group/],
    ["unterminated group", bytes(0x0b, 0x10, 0x01), /unterminated group/],
    ["string length past end", bytes(0x22, 0x05, 0x61), /exceeds remaining input/],
    ["huge length", bytes(0x22, 0xff, 0xff, 0xff, 0xff, 0x0f), /exceeds remaining input/],
    ["truncated fixed32 (unknown field)", bytes(0x7d, 0x00, 0x00), /truncated input/],
    ["truncated fixed64 (unknown field)", bytes(0x79, 0x00), /truncated input/],
  ];
  for (const [name, buf, re] of cases) {
    test(name, () => {
      let err: unknown;
      try {
        PortMapping.decode(buf);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtoDecodeError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).name).toBe("ProtoDecodeError");
    });
  }

  test("truncated double in a known field", () => {
    expect(() => PsiData.decode(bytes(0x11, 0x00, 0x00))).toThrow(ProtoDecodeError);
  });

  test("nested message whose field overruns the nested length", () => {
    // RunPodSandboxRequest.config (len 3) holding hostname with length 5.
    const buf = bytes(0x0a, 0x03, 0x12, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65);
    expect(() => RunPodSandboxRequest.decode(buf)).toThrow(ProtoDecodeError);
  });

  test("packed run whose last element overruns the packed length", () => {
    expect(() => PortForwardRequest.decode(bytes(0x12, 0x02, 0x01, 0x80, 0x01))).toThrow(ProtoDecodeError);
    expect(() => PortForwardRequest.decode(bytes(0x12, 0x02, 0x01, 0x80))).toThrow(ProtoDecodeError);
  });

  test("map entry overrunning its length", () => {
    expect(() => PodSandboxConfig.decode(bytes(0x32, 0x02, 0x0a, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61))).toThrow(ProtoDecodeError);
  });

  test("invalid UTF-8 is accepted leniently", () => {
    expect(VersionRequest.decode(bytes(0x0a, 0x02, 0xc3, 0x28)).version).toBe("\ufffd(");
  });

  test("random corruption never throws anything but ProtoDecodeError", () => {
    const good = CreateContainerRequest.encode(richCreateContainer());
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let failures = 0;
    for (let i = 0; i < 3000; i++) {
      const buf = good.slice(0, rand(4) === 0 ? rand(good.length) : good.length);
      for (let k = rand(4) + 1; k > 0; k--) if (buf.length) buf[rand(buf.length)] = rand(256);
      try {
        CreateContainerRequest.decode(buf);
      } catch (e) {
        if (!(e instanceof ProtoDecodeError)) throw e;
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(0);
  });

  test("errors report the failing offset", () => {
    let err: unknown;
    try {
      PortMapping.decode(bytes(0x08, 0x01, 0x22, 0x09, 0x61));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtoDecodeError);
    expect((err as ProtoDecodeError).offset).toBe(3);
    expect((err as Error).message).toBe("length 9 exceeds remaining input (1 bytes) (at byte 3)");
  });
});
