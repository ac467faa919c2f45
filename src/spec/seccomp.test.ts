import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { LinuxContainerSecurityContext, SecurityProfile, SecurityProfile_ProfileType as PT } from "../proto/runtime-v1.ts";
import { convertSeccompProfile, goArch, seccomp, seccompLocalhostPath, seccompRequest } from "./seccomp.ts";
import { CLONE_NAMESPACE_MASK, defaultSeccompProfile } from "./seccomp-default.ts";
import type { OciSeccomp, SeccompProfile } from "./types.ts";

const DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"];
const sc = (p: Partial<LinuxContainerSecurityContext>) => LinuxContainerSecurityContext.create(p);
const field = (profileType: number, localhostRef = "") => SecurityProfile.create({ profileType: profileType as 0 | 1 | 2, localhostRef });

/** The action the converted profile gives `name` when it is called without argument filters. */
function plainAction(s: OciSeccomp, name: string): string {
  const hit = s.syscalls?.find((r) => r.names.includes(name) && !r.args);
  return hit ? `${hit.action}${hit.errnoRet !== undefined ? `(${hit.errnoRet})` : ""}` : `default ${s.defaultAction}(${s.defaultErrnoRet})`;
}
const rulesFor = (s: OciSeccomp, name: string) => (s.syscalls ?? []).filter((r) => r.names.includes(name));

describe("convertSeccompProfile", () => {
  const profile: SeccompProfile = {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
    ],
    syscalls: [
      { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64"] } },
      { names: ["chroot"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_CHROOT"] } },
      { names: ["chroot"], action: "SCMP_ACT_ERRNO", errno: "EPERM", excludes: { caps: ["CAP_SYS_CHROOT"] } },
      { names: ["bpf"], action: "SCMP_ACT_ERRNO", errnoRet: 1, excludes: { caps: ["CAP_SYS_ADMIN", "CAP_BPF"] } },
      { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
      { name: "personality", action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, valueTwo: 0, op: "SCMP_CMP_EQ" }] },
    ],
  };

  test("picks the native archMap entry and resolves arch, capability and kernel conditions", () => {
    const s = convertSeccompProfile(profile, "test", { arch: "x64", capabilities: ["CAP_BPF"], kernelVersion: "4.4.0-21" })!;
    expect(s.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(s.defaultErrnoRet).toBe(1);
    expect(s.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(s.syscalls).toEqual([
      { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW" },
      { names: ["chroot"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
      { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
    ]);
  });
  test("another architecture, capabilities held, a newer kernel", () => {
    const s = convertSeccompProfile(profile, "test", { arch: "arm64", capabilities: ["CAP_SYS_CHROOT"], kernelVersion: "6.1.0" })!;
    expect(s.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    const names = s.syscalls!.map((r) => `${r.names.join(",")}:${r.action}`);
    expect(names).toEqual([
      "read,write:SCMP_ACT_ALLOW",
      "chroot:SCMP_ACT_ALLOW",
      "bpf:SCMP_ACT_ERRNO",
      "ptrace:SCMP_ACT_ALLOW",
      "personality:SCMP_ACT_ALLOW",
    ]);
  });
  test("an architecture without an archMap entry gets no architectures", () => {
    expect(convertSeccompProfile(profile, "t", { arch: "ppc64le", capabilities: [] })!.architectures).toBeUndefined();
  });
  test("old 'architectures' pass through; both forms at once is an error", () => {
    const old = { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], syscalls: [] };
    expect(convertSeccompProfile(old, "t", { arch: "amd64", capabilities: [] })).toEqual({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"] });
    expect(() => convertSeccompProfile({ ...old, archMap: profile.archMap }, "t", { arch: "amd64", capabilities: [] })).toThrow(/archMap/);
  });
  test("file content: invalid JSON is InvalidArgument naming the profile", () => {
    const err = (() => {
      try {
        convertSeccompProfile("{ nope", "/etc/crio/profiles/x.json", { arch: "amd64", capabilities: [] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain("/etc/crio/profiles/x.json");
    expect(() => convertSeccompProfile("[]", "p", { arch: "amd64", capabilities: [] })).toThrow(InvalidArgumentError);
  });
  test("content round trip equals the parsed form", () => {
    const opts = { arch: "amd64", capabilities: DEFAULT_CAPS };
    expect(convertSeccompProfile(JSON.stringify(profile), "p", opts)).toEqual(convertSeccompProfile(profile, "p", opts));
  });
  test("no default action and no rules means no seccomp", () => {
    expect(convertSeccompProfile("{}", "p", { arch: "amd64", capabilities: [] })).toBeUndefined();
  });
  test("rejects bad rules", () => {
    const o = { arch: "amd64", capabilities: [] };
    const bad = (rule: object) => () => convertSeccompProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [rule as never] }, "p", o);
    expect(bad({ name: "a", names: ["b"], action: "SCMP_ACT_ALLOW" })).toThrow(/both 'name' and 'names'/);
    expect(bad({ names: ["a"], action: "SCMP_ACT_MAYBE" })).toThrow(/unknown action/);
    expect(bad({ names: ["a"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_SORTOF" }] })).toThrow(/unknown op/);
    expect(bad({ names: ["a"], action: "SCMP_ACT_ERRNO", errno: "EWHATEVER" })).toThrow(/unknown/);
    expect(bad({ names: ["a"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2 ** 60, op: "SCMP_CMP_EQ" }] })).toThrow(/2\^53/);
    expect(() => convertSeccompProfile({ defaultAction: "SCMP_ACT_NOPE" }, "p", o)).toThrow(/defaultAction/);
  });
  test("defaultErrno by name", () => {
    expect(convertSeccompProfile({ defaultAction: "SCMP_ACT_ERRNO", defaultErrno: "ENOSYS" }, "p", { arch: "amd64", capabilities: [] })!.defaultErrnoRet).toBe(38);
  });
  test("goArch maps Node's names", () => {
    expect(goArch("x64")).toBe("amd64");
    expect(goArch("arm64")).toBe("arm64");
    expect(goArch("amd64")).toBe("amd64");
  });
});

describe("built-in RuntimeDefault profile", () => {
  const convert = (caps: string[], arch = "amd64") => convertSeccompProfile(defaultSeccompProfile(), "default", { arch, capabilities: caps })!;

  test("denies by default with ENOSYS, as containers/common", () => {
    const s = convert(DEFAULT_CAPS);
    expect(s.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(s.defaultErrnoRet).toBe(38);
    expect(plainAction(s, "read")).toBe("SCMP_ACT_ALLOW");
    expect(plainAction(s, "kexec_load")).toBe("SCMP_ACT_ERRNO(1)");
    expect(plainAction(s, "arch_prctl")).toBe("SCMP_ACT_ALLOW");
    expect(plainAction(s, "set_tls")).toMatch(/^default/);
  });
  test("capability-gated syscalls follow the bounding set", () => {
    expect(plainAction(convert(DEFAULT_CAPS), "chroot")).toBe("SCMP_ACT_ERRNO(1)");
    expect(plainAction(convert([...DEFAULT_CAPS, "CAP_SYS_CHROOT"]), "chroot")).toBe("SCMP_ACT_ALLOW");
    expect(plainAction(convert(DEFAULT_CAPS), "setns")).toBe("SCMP_ACT_ALLOW"); // unconditional in containers/common
    expect(plainAction(convert([...DEFAULT_CAPS, "CAP_BPF"]), "bpf")).toBe("SCMP_ACT_ALLOW");
    expect(plainAction(convert(DEFAULT_CAPS), "bpf")).toBe("SCMP_ACT_ERRNO(1)");
  });
  test("CRI-O: unshare, clone3 and namespace-creating clone need CAP_SYS_ADMIN", () => {
    const s = convert(DEFAULT_CAPS);
    expect(plainAction(s, "unshare")).toMatch(/^default SCMP_ACT_ERRNO\(38\)/);
    expect(plainAction(s, "clone3")).toBe("SCMP_ACT_ERRNO(38)");
    const clone = rulesFor(s, "clone");
    expect(clone[0]).toEqual({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NAMESPACE_MASK, op: "SCMP_CMP_MASKED_EQ" }] });
    expect(clone.slice(1).every((r) => r.action === "SCMP_ACT_ERRNO" && r.errnoRet === 1 && r.args?.[0]?.value === r.args?.[0]?.valueTwo)).toBe(true);
    expect(clone.length).toBe(8);
    expect(CLONE_NAMESPACE_MASK).toBe(0x7e020000);

    const admin = convert([...DEFAULT_CAPS, "CAP_SYS_ADMIN"]);
    for (const n of ["unshare", "clone", "clone3"]) expect(plainAction(admin, n)).toBe("SCMP_ACT_ALLOW");
    expect(rulesFor(admin, "clone").every((r) => r.action === "SCMP_ACT_ALLOW")).toBe(true);
  });
  test("s390x filters clone's flags in the second argument", () => {
    const s = convert(DEFAULT_CAPS, "s390x");
    expect(s.architectures).toEqual(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]);
    expect(rulesFor(s, "clone").every((r) => r.args?.[0]?.index === 1)).toBe(true);
  });
  test("arm64", () => {
    const s = convert(DEFAULT_CAPS, "arm64");
    expect(s.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(plainAction(s, "set_tls")).toBe("SCMP_ACT_ALLOW");
    expect(plainAction(s, "arch_prctl")).toMatch(/^default/);
  });
  test("each call returns an independent copy", () => {
    const a = defaultSeccompProfile();
    a.syscalls!.length = 0;
    expect(defaultSeccompProfile().syscalls!.length).toBeGreaterThan(30);
  });
});

describe("seccompRequest", () => {
  test("the field wins over the deprecated path", () => {
    expect(seccompRequest(sc({ seccomp: field(PT.Unconfined), seccompProfilePath: "runtime/default" }))).toEqual({ kind: "unconfined" });
    expect(seccompRequest(sc({ seccomp: field(PT.RuntimeDefault) }))).toEqual({ kind: "runtime-default" });
    expect(seccompRequest(sc({ seccomp: field(PT.Localhost, "/p.json") }))).toEqual({ kind: "localhost", path: "/p.json" });
    expect(() => seccompRequest(sc({ seccomp: field(PT.Localhost) }))).toThrow(InvalidArgumentError);
  });
  test("deprecated paths", () => {
    expect(seccompRequest(sc({ seccompProfilePath: "runtime/default" }))).toEqual({ kind: "runtime-default" });
    expect(seccompRequest(sc({ seccompProfilePath: "docker/default" }))).toEqual({ kind: "runtime-default" });
    expect(seccompRequest(sc({ seccompProfilePath: "unconfined" }))).toEqual({ kind: "unconfined" });
    expect(seccompRequest(sc({ seccompProfilePath: "localhost//var/lib/kubelet/seccomp/a.json" }))).toEqual({ kind: "localhost", path: "/var/lib/kubelet/seccomp/a.json" });
    expect(seccompRequest(sc({}))).toEqual({ kind: "none" });
    expect(seccompRequest(undefined)).toEqual({ kind: "none" });
    expect(() => seccompRequest(sc({ seccompProfilePath: "/abs.json" }))).toThrow(/unknown seccomp profile path/);
  });
  test("seccompLocalhostPath tells the caller which file to read", () => {
    expect(seccompLocalhostPath(sc({ seccompProfilePath: "localhost//a.json" }))).toBe("/a.json");
    expect(seccompLocalhostPath(sc({ seccomp: field(PT.RuntimeDefault) }))).toBeUndefined();
  });
});

describe("seccomp", () => {
  const opts = { arch: "amd64", capabilities: DEFAULT_CAPS, privileged: false };
  const localProfile = JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] });

  test("nothing requested gets the runtime default; Unconfined gets no seccomp", () => {
    const none = seccomp(sc({}), opts);
    expect(none.profile).toBe("RuntimeDefault");
    expect(none.seccomp).toEqual(seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), opts).seccomp!);
    expect(seccomp(sc({ seccomp: field(PT.Unconfined) }), opts)).toEqual({ profile: "Unconfined" });
  });
  test("RuntimeDefault: built-in profile, or seccomp_profile content when given", () => {
    const builtIn = seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), opts);
    expect(builtIn.profile).toBe("RuntimeDefault");
    expect(builtIn.seccomp?.defaultErrnoRet).toBe(38);
    const custom = seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), { ...opts, profiles: { runtimeDefault: localProfile } });
    expect(custom.seccomp).toEqual({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] });
    expect(() =>
      seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), { ...opts, profiles: { runtimeDefault: "{" }, runtimeDefaultName: "/etc/crio/seccomp.json" }),
    ).toThrow(/\/etc\/crio\/seccomp\.json/);
  });
  test("Localhost uses the content the caller read, and needs it", () => {
    const r = seccomp(sc({ seccomp: field(PT.Localhost, "/var/lib/kubelet/seccomp/p.json") }), { ...opts, profiles: { localhost: localProfile } });
    expect(r.profile).toBe("/var/lib/kubelet/seccomp/p.json");
    expect(r.seccomp?.defaultAction).toBe("SCMP_ACT_ALLOW");
    expect(() => seccomp(sc({ seccomp: field(PT.Localhost, "/wontwork") }), opts)).toThrow(/wontwork/);
    expect(() => seccomp(sc({ seccomp: field(PT.Localhost, "/bad.json") }), { ...opts, profiles: { localhost: "nope" } })).toThrow(/bad\.json/);
  });
  test("privileged: unconfined unless privileged_seccomp_profile is given, which wins over the request", () => {
    const p = { ...opts, privileged: true };
    expect(seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), p)).toEqual({ profile: "Unconfined" });
    const r = seccomp(sc({ seccomp: field(PT.Unconfined) }), { ...p, profiles: { privileged: localProfile }, privilegedName: "/etc/crio/priv.json" });
    expect(r.profile).toBe("/etc/crio/priv.json");
    expect(r.seccomp?.syscalls?.[0]?.names).toEqual(["chmod"]);
  });
  test("seccomp disabled on the host: unconfined, and Localhost is refused", () => {
    expect(seccomp(sc({ seccomp: field(PT.RuntimeDefault) }), { ...opts, enabled: false })).toEqual({ profile: "Unconfined" });
    expect(() => seccomp(sc({ seccomp: field(PT.Localhost, "/p") }), { ...opts, enabled: false, profiles: { localhost: localProfile } })).toThrow(
      /not enabled/,
    );
  });
});
