import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { buildSpec, buildSpecWithNotes, type BuildSpecInput } from "./index.ts";
import { criContainerConfig } from "./test-helpers.ts";

// The golden "plain" input is the base; each test changes one thing.
function input(patch: (raw: any) => void = () => {}): BuildSpecInput {
  const raw = JSON.parse(readFileSync(join(import.meta.dir, "testdata", "plain.input.json"), "utf8"));
  patch(raw);
  return { ...raw, config: criContainerConfig(raw.config) };
}

describe("buildSpec", () => {
  test("pid POD joins the sandbox's pid namespace", () => {
    const s = buildSpec(input((r) => (r.config.linux.securityContext.namespaceOptions.pid = 0)));
    expect(s.linux.namespaces[0]).toEqual({ type: "pid", path: "/proc/4242/ns/pid" });
  });
  test("pid POD without a sandbox pid namespace is FailedPrecondition", () => {
    expect(() =>
      buildSpec(input((r) => {
        r.config.linux.securityContext.namespaceOptions.pid = 0;
        delete r.sandbox.namespaces.pid;
      })),
    ).toThrow(FailedPreconditionError);
  });
  test("pid TARGET joins the target's namespace; needs target_id and a path", () => {
    const s = buildSpec(input((r) => {
      r.config.linux.securityContext.namespaceOptions.pid = 3;
      r.config.linux.securityContext.namespaceOptions.targetId = "abc";
      r.targetPidNamespace = "/proc/99/ns/pid";
    }));
    expect(s.linux.namespaces[0]).toEqual({ type: "pid", path: "/proc/99/ns/pid" });
    expect(() => buildSpec(input((r) => (r.config.linux.securityContext.namespaceOptions.pid = 3)))).toThrow(InvalidArgumentError);
    expect(() =>
      buildSpec(input((r) => {
        r.config.linux.securityContext.namespaceOptions.pid = 3;
        r.config.linux.securityContext.namespaceOptions.targetId = "abc";
      })),
    ).toThrow(FailedPreconditionError);
  });
  test("host network drops network and uts; host ipc drops ipc; node pid drops pid", () => {
    const s = buildSpec(input((r) => (r.config.linux.securityContext.namespaceOptions = { network: 2, pid: 2, ipc: 2 })));
    expect(s.linux.namespaces).toEqual([{ type: "mount" }]);
  });
  test("user namespace path and cgroup namespace on v2", () => {
    const s = buildSpec(input((r) => {
      r.sandbox.namespaces.user = "/proc/4242/ns/user";
      r.host.cgroupV2 = true;
    }));
    expect(s.linux.namespaces.slice(-2)).toEqual([{ type: "user", path: "/proc/4242/ns/user" }, { type: "cgroup" }]);
  });
  test("notes report removed capabilities and the oom clamp", () => {
    const { notes } = buildSpecWithNotes(input((r) => {
      r.config.linux.securityContext.capabilities = { addCapabilities: ["SYS_RESOURCE"] };
      r.config.linux.resources.oomScoreAdj = -1000;
      r.host.capabilityBounding = ["CAP_CHOWN"];
    }));
    expect(notes.capabilitiesNotHeld).toContain("CAP_SYS_RESOURCE");
    expect(notes.oomScoreAdjClamped).toEqual({ requested: -1000, applied: -999 });
  });
  test("request annotations pass through; the caller's win", () => {
    const s = buildSpec(input((r) => (r.annotations = { "example.com/note": "daemon", "io.kubernetes.pod.name": "p" })));
    expect(s.annotations).toEqual({ "example.com/note": "daemon", "io.kubernetes.pod.name": "p" });
  });
  test("rlimits, sysctls and their errors", () => {
    const s = buildSpec(input((r) => {
      r.runtime.default_ulimits = ["nofile=1024:2048"];
      r.runtime.default_sysctls = ["net.ipv4.ip_forward=1", "kernel.shmmax = 1000"];
      r.sandbox.sysctls = { "net.ipv4.ip_forward": "0" };
    }));
    expect(s.process.rlimits).toEqual([{ type: "RLIMIT_NOFILE", soft: 1024, hard: 2048 }]);
    expect(s.linux.sysctl).toEqual({ "net.ipv4.ip_forward": "0", "kernel.shmmax": "1000" });
    expect(() => buildSpec(input((r) => (r.runtime.default_ulimits = ["nofile=x"])))).toThrow(InvalidArgumentError);
    expect(() => buildSpec(input((r) => (r.runtime.default_sysctls = ["nonsense"])))).toThrow(InvalidArgumentError);
  });
  test("readonly rootfs, no_new_privs, tty", () => {
    const s = buildSpec(input((r) => {
      r.config.linux.securityContext.readonlyRootfs = true;
      r.config.linux.securityContext.noNewPrivs = true;
      r.config.tty = true;
    }));
    expect(s.root.readonly).toBe(true);
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.terminal).toBe(true);
  });
  test("no linux section at all still builds, with defaults", () => {
    const s = buildSpec(input((r) => {
      delete r.config.linux;
    }));
    expect(s.linux.namespaces[0]).toEqual({ type: "pid", path: "/proc/4242/ns/pid" });
    expect(s.process.oomScoreAdj).toBe(0);
    expect(s.linux.maskedPaths?.length).toBeGreaterThan(0);
  });
  test("the spec is JSON-serialisable (no bigint left)", () => {
    expect(() => JSON.stringify(buildSpec(input()))).not.toThrow();
  });
  test("security features stay off unless the host has them", () => {
    const { spec, notes } = buildSpecWithNotes(input((r) => {
      r.config.linux.securityContext.apparmor = { profileType: 0 };
      r.selinuxLabels = { process: "system_u:system_r:container_t:s0:c1,c2", mount: "system_u:object_r:container_file_t:s0:c1,c2" };
    }));
    expect(spec.process.apparmorProfile).toBeUndefined();
    expect(spec.process.selinuxLabel).toBeUndefined();
    expect(spec.linux.mountLabel).toBeUndefined();
    // Seccomp is on by default (host.seccompEnabled defaults to true): the runtime default.
    expect(spec.linux.seccomp?.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(notes.seccompProfile).toBe("RuntimeDefault");
  });
  test("apparmor, SELinux and seccomp when enabled and asked for", () => {
    const { spec, notes } = buildSpecWithNotes(input((r) => {
      r.config.linux.securityContext.apparmor = { profileType: 2, localhostRef: "localhost/my-profile" };
      r.config.linux.securityContext.seccomp = { profileType: 2, localhostRef: "/var/lib/kubelet/seccomp/p.json" };
      r.host.apparmorEnabled = true;
      r.host.selinuxEnabled = true;
      r.host.arch = "arm64";
      r.selinuxLabels = { process: "system_u:system_r:container_t:s0:c1,c2", mount: "system_u:object_r:container_file_t:s0:c1,c2" };
      r.seccompProfiles = { localhost: JSON.stringify({ defaultAction: "SCMP_ACT_LOG" }) };
    }));
    expect(spec.process.apparmorProfile).toBe("my-profile");
    expect(spec.process.selinuxLabel).toBe("system_u:system_r:container_t:s0:c1,c2");
    expect(spec.linux.mountLabel).toBe("system_u:object_r:container_file_t:s0:c1,c2");
    expect(spec.linux.seccomp).toEqual({ defaultAction: "SCMP_ACT_LOG" });
    expect(notes.seccompProfile).toBe("/var/lib/kubelet/seccomp/p.json");
  });
  test("RuntimeDefault seccomp resolves capability rules against the final bounding set", () => {
    const withAdmin = buildSpec(input((r) => {
      r.config.linux.securityContext.seccomp = { profileType: 0 };
      r.config.linux.securityContext.capabilities = { addCapabilities: ["SYS_ADMIN"] };
      r.host.arch = "amd64";
    }));
    const unshare = withAdmin.linux.seccomp?.syscalls?.find((c) => c.names.includes("unshare"));
    expect(unshare?.action).toBe("SCMP_ACT_ALLOW");
    const bounded = buildSpec(input((r) => {
      r.config.linux.securityContext.seccomp = { profileType: 0 };
      r.config.linux.securityContext.capabilities = { addCapabilities: ["SYS_ADMIN"] };
      r.host.capabilityBounding = ["CAP_CHOWN"];
      r.host.arch = "amd64";
    }));
    expect(bounded.linux.seccomp?.syscalls?.some((c) => c.names.includes("unshare"))).toBe(false);
  });
  test("an invalid Localhost profile is InvalidArgument naming it", () => {
    expect(() =>
      buildSpec(input((r) => {
        r.config.linux.securityContext.seccomp = { profileType: 2, localhostRef: "/profiles/broken.json" };
        r.seccompProfiles = { localhost: "{not json" };
      })),
    ).toThrow(/broken\.json/);
  });
  test("devices: CRI devices and additional_devices; a missing one is InvalidArgument", () => {
    const facts = { "/dev/fuse": { type: "c", major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 } };
    const s = buildSpec(input((r) => {
      r.config.devices = [{ containerPath: "/dev/fuse", hostPath: "/dev/fuse", permissions: "rw" }];
      r.host.devices = facts;
    }));
    expect(s.linux.devices).toEqual([{ path: "/dev/fuse", type: "c", major: 10, minor: 229, uid: 0, gid: 0 }]);
    expect(s.linux.resources?.devices).toEqual([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
    ]);
    expect(() => buildSpec(input((r) => (r.runtime.additional_devices = ["/dev/kvm"])))).toThrow(/\/dev\/kvm/);
  });
  test("spc_t skips relabelling", () => {
    const relabel = (type: string) =>
      buildSpecWithNotes(input((r) => {
        r.config.mounts = [{ containerPath: "/data", hostPath: "/", selinuxRelabel: true }];
        r.config.linux.securityContext.selinuxOptions = { type };
      })).notes.relabel;
    expect(relabel("container_t")).toEqual(["/"]);
    expect(relabel("spc_t")).toEqual([]);
  });
  test("hooks from the input are matched on the container's and the pod's annotations", () => {
    const hook = (name: string, annotations: Record<string, string>) => ({
      name,
      hook: { path: `/h/${name}` },
      when: { annotations },
      stages: ["createContainer"],
    });
    const s = buildSpec(input((r) => {
      r.sandbox.annotations = { "pod.example/want": "yes" };
      r.hooks = [hook("pod.json", { "^pod\\.example/want$": "yes" }), hook("ctr.json", { "^example\\.com/note$": "kubelet" }), hook("no.json", { nope: "." })];
    }));
    expect(s.hooks).toEqual({ createContainer: [{ path: "/h/ctr.json" }, { path: "/h/pod.json" }] });
  });
});
