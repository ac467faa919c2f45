import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { LinuxContainerSecurityContext, SELinuxOption, SecurityProfile } from "../proto/runtime-v1.ts";
import { applySELinuxOption, apparmorProfile, selinuxLabels } from "./security.ts";

const sc = (p: Partial<LinuxContainerSecurityContext>) => LinuxContainerSecurityContext.create(p);
const profile = (profileType: 0 | 1 | 2, localhostRef = "") => SecurityProfile.create({ profileType, localhostRef });
const on = { enabled: true, privileged: false };

describe("apparmorProfile", () => {
  test("only when AppArmor is enabled and the container is not privileged", () => {
    expect(apparmorProfile(sc({ apparmor: profile(0) }), { ...on, enabled: false })).toBeUndefined();
    expect(apparmorProfile(sc({ apparmor: profile(0) }), { ...on, privileged: true })).toBeUndefined();
  });
  test("the structured field", () => {
    expect(apparmorProfile(sc({ apparmor: profile(0) }), on)).toBe("crio-default");
    expect(apparmorProfile(sc({ apparmor: profile(0) }), { ...on, defaultProfile: "my-default" })).toBe("my-default");
    expect(apparmorProfile(sc({ apparmor: profile(1) }), on)).toBe("unconfined");
    expect(apparmorProfile(sc({ apparmor: profile(2, "k8s-apparmor-example") }), on)).toBe("k8s-apparmor-example");
    expect(apparmorProfile(sc({ apparmor: profile(2, "localhost/k8s-x") }), on)).toBe("k8s-x");
    expect(() => apparmorProfile(sc({ apparmor: profile(2, "") }), on)).toThrow(InvalidArgumentError);
  });
  test("the deprecated string, used when the field is absent", () => {
    expect(apparmorProfile(sc({}), on)).toBe("crio-default");
    expect(apparmorProfile(undefined, on)).toBe("crio-default");
    expect(apparmorProfile(sc({ apparmorProfile: "runtime/default" }), on)).toBe("crio-default");
    expect(apparmorProfile(sc({ apparmorProfile: "Unconfined" }), on)).toBe("unconfined");
    expect(apparmorProfile(sc({ apparmorProfile: "localhost/custom" }), on)).toBe("custom");
    expect(apparmorProfile(sc({ apparmorProfile: "localhost/custom", apparmor: profile(1) }), on)).toBe("unconfined");
    expect(() => apparmorProfile(sc({ apparmorProfile: "localhost/" }), on)).toThrow(InvalidArgumentError);
  });
});

describe("SELinux", () => {
  test("applySELinuxOption replaces the parts the option sets", () => {
    const base = "system_u:system_r:container_t:s0:c1,c2";
    expect(applySELinuxOption(base, undefined)).toBe(base);
    expect(applySELinuxOption(base, { type: "spc_t" })).toBe("system_u:system_r:spc_t:s0:c1,c2");
    expect(applySELinuxOption(base, { level: "s0:c9,c10", user: "u" })).toBe("u:system_r:container_t:s0:c9,c10");
    expect(applySELinuxOption(undefined, { user: "u", role: "r", type: "t", level: "s0" })).toBe("u:r:t:s0");
    expect(applySELinuxOption(undefined, { type: "t" })).toBeUndefined();
    expect(() => applySELinuxOption("nonsense", {})).toThrow(InvalidArgumentError);
  });
  const base = {
    enabled: true,
    processLabel: "system_u:system_r:container_t:s0:c1,c2",
    mountLabel: "system_u:object_r:container_file_t:s0:c1,c2",
    privileged: false,
    hostPID: false,
    hostIPC: false,
    hostNetwork: false,
  };
  test("labels pass through, with the request's options applied", () => {
    const r = selinuxLabels(sc({ selinuxOptions: SELinuxOption.create({ type: "my_t", level: "s0:c3,c4" }) }), base);
    expect(r).toEqual({
      processLabel: "system_u:system_r:my_t:s0:c3,c4",
      mountLabel: "system_u:object_r:container_file_t:s0:c3,c4",
      skipRelabel: false,
    });
  });
  test("disabled: no labels", () => {
    expect(selinuxLabels(sc({}), { ...base, enabled: false })).toEqual({ skipRelabel: false });
  });
  test("privileged and host network drop the process label; host PID/IPC drop both", () => {
    expect(selinuxLabels(sc({}), { ...base, privileged: true }).processLabel).toBeUndefined();
    expect(selinuxLabels(sc({}), { ...base, privileged: true }).mountLabel).toBe(base.mountLabel);
    expect(selinuxLabels(sc({}), { ...base, hostNetwork: true }).processLabel).toBeUndefined();
    expect(selinuxLabels(sc({}), { ...base, hostNetwork: true, hostNetworkDisableSELinux: false }).processLabel).toBe(base.processLabel);
    expect(selinuxLabels(sc({}), { ...base, hostPID: true })).toEqual({ skipRelabel: false });
    expect(selinuxLabels(sc({}), { ...base, hostIPC: true })).toEqual({ skipRelabel: false });
  });
  test("spc_t on the container, or on the pod without a container type, skips relabelling", () => {
    expect(selinuxLabels(sc({ selinuxOptions: SELinuxOption.create({ type: "spc_t" }) }), base).skipRelabel).toBe(true);
    const pod = SELinuxOption.create({ type: "spc_t" });
    expect(selinuxLabels(sc({}), { ...base, sandboxOption: pod }).skipRelabel).toBe(true);
    expect(selinuxLabels(sc({ selinuxOptions: SELinuxOption.create({ type: "container_t" }) }), { ...base, sandboxOption: pod }).skipRelabel).toBe(false);
  });
});
