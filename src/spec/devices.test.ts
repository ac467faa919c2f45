import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { Device } from "../proto/runtime-v1.ts";
import { deviceHostPaths, devices, parseDeviceSpec, type HostPathFact } from "./devices.ts";

const fuse: HostPathFact = { type: "c", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 };
const tun: HostPathFact = { type: "c", major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 };
const card0: HostPathFact = { type: "c", major: 226, minor: 0, fileMode: 0o660, uid: 0, gid: 44 };
const render: HostPathFact = { type: "c", major: 226, minor: 128, fileMode: 0o660, uid: 0, gid: 109 };
const sda: HostPathFact = { type: "b", major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 };
const facts: Record<string, HostPathFact> = {
  "/dev/fuse": fuse,
  "/dev/net/tun": tun,
  "/dev/dri": { type: "d" },
  "/dev/dri/card0": card0,
  "/dev/dri/renderD128": render,
  "/dev/sda": sda,
};
const dev = (hostPath: string, containerPath = hostPath, permissions = "rwm") => Device.create({ hostPath, containerPath, permissions });
const DENY = { allow: false, access: "rwm" };

describe("parseDeviceSpec", () => {
  test("host[:container][:permissions]", () => {
    expect(parseDeviceSpec("/dev/fuse")).toEqual({ hostPath: "/dev/fuse", containerPath: "/dev/fuse", permissions: "rwm" });
    expect(parseDeviceSpec("/dev/sdc:/dev/xvdc")).toEqual({ hostPath: "/dev/sdc", containerPath: "/dev/xvdc", permissions: "rwm" });
    expect(parseDeviceSpec("/dev/sdc:r")).toEqual({ hostPath: "/dev/sdc", containerPath: "/dev/sdc", permissions: "r" });
    expect(parseDeviceSpec("/dev/sdc:/dev/xvdc:rw")).toEqual({ hostPath: "/dev/sdc", containerPath: "/dev/xvdc", permissions: "rw" });
  });
  test("rejects bad entries", () => {
    for (const bad of ["/dev/a:/dev/b:rwx", "/dev/a:/dev/b:rr", "/dev/a:xyz", "/dev/a:/b/c", "a:b:c:d", ":/dev/a"]) {
      expect(() => parseDeviceSpec(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe("devices", () => {
  test("nothing asked: only the deny-all rule", () => {
    expect(devices([], { privileged: false })).toEqual({ devices: [], cgroup: [DENY] });
  });
  test("CRI devices become nodes plus allow rules with the requested permissions", () => {
    const r = devices([dev("/dev/fuse", "/dev/fuse", "rw"), dev("/dev/sda", "/dev/xvda", "r")], { privileged: false, facts });
    expect(r.devices).toEqual([
      { path: "/dev/fuse", type: "c", major: 10, minor: 229, uid: 0, gid: 0 },
      { path: "/dev/xvda", type: "b", major: 8, minor: 0, uid: 0, gid: 6 },
    ]);
    expect(r.cgroup).toEqual([
      DENY,
      { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
      { allow: true, type: "b", major: 8, minor: 0, access: "r" },
    ]);
  });
  test("a directory brings the nodes below it, rebased on the container path", () => {
    const r = devices([dev("/dev/dri", "/dev/gpu/")], { privileged: false, facts });
    expect(r.devices.map((d) => d.path)).toEqual(["/dev/gpu/card0", "/dev/gpu/renderD128"]);
    expect(r.cgroup.slice(1).map((c) => c.minor)).toEqual([0, 128]);
  });
  test("a missing device is InvalidArgument naming it", () => {
    expect(() => devices([dev("/dev/nvidia0")], { privileged: false, facts })).toThrow(/\/dev\/nvidia0/);
    expect(() => devices([dev("/dev/nvidia0")], { privileged: false })).toThrow(InvalidArgumentError);
    expect(() => devices([dev("/dev/fuse", "/dev/fuse", "rwx")], { privileged: false, facts })).toThrow(InvalidArgumentError);
  });
  test("additional_devices come first, with their file mode; a later same path replaces", () => {
    const r = devices([dev("/dev/fuse", "/dev/net/tun", "r")], { privileged: false, facts, additional: ["/dev/net/tun:/dev/net/tun:rwm"] });
    expect(r.devices).toEqual([{ path: "/dev/net/tun", type: "c", major: 10, minor: 229, uid: 0, gid: 0 }]);
    expect(r.cgroup).toEqual([DENY, { allow: true, type: "c", major: 10, minor: 200, access: "rwm" }, { allow: true, type: "c", major: 10, minor: 229, access: "r" }]);
    const only = devices([], { privileged: false, facts, additional: ["/dev/net/tun"] });
    expect(only.devices[0]).toEqual({ path: "/dev/net/tun", type: "c", major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 });
    expect(() => devices([], { privileged: false, facts, additional: ["/dev/dri"] })).toThrow(/not a device/);
  });
  test("the devices annotation is limited to allowed_devices", () => {
    const r = devices([], { privileged: false, facts, annotation: "/dev/fuse,/dev/net/tun:/dev/tun0:rw", allowed: ["/dev/fuse", "/dev/net/tun"] });
    expect(r.devices.map((d) => d.path)).toEqual(["/dev/fuse", "/dev/tun0"]);
    expect(() => devices([], { privileged: false, facts, annotation: "/dev/sda", allowed: ["/dev/fuse"] })).toThrow(/allowed_devices/);
  });
  test("privileged: every host device and an allow-all rule, unless privileged_without_host_devices", () => {
    const hostDevices = [
      { path: "/dev/sda", ...(sda as Extract<HostPathFact, { major: number }>) },
      { path: "/dev/broken", type: "c" as const, major: 0, minor: 0, fileMode: 0, uid: 0, gid: 0 },
    ];
    const r = devices([dev("/dev/fuse")], { privileged: true, facts, hostDevices });
    expect(r.devices.map((d) => d.path)).toEqual(["/dev/sda", "/dev/fuse"]);
    expect(r.cgroup[0]).toEqual({ allow: true, access: "rwm" });
    const without = devices([], { privileged: true, privilegedWithoutHostDevices: true, facts, hostDevices });
    expect(without).toEqual({ devices: [], cgroup: [DENY] });
    expect(() => devices([dev("/dev/fuse", "/dev/sda")], { privileged: true, facts, hostDevices })).toThrow(/already exists on the host/);
  });
  test("device_ownership_from_security_context uses run_as_user/run_as_group when non-zero", () => {
    const opts = { privileged: false, facts, ownershipFromSecurityContext: true, runAsUser: 1000, runAsGroup: 2000 };
    expect(devices([dev("/dev/sda")], opts).devices[0]).toMatchObject({ uid: 1000, gid: 2000 });
    expect(devices([dev("/dev/sda")], { ...opts, runAsUser: 0 }).devices[0]).toMatchObject({ uid: 0, gid: 2000 });
    expect(devices([dev("/dev/sda")], { ...opts, ownershipFromSecurityContext: false }).devices[0]).toMatchObject({ uid: 0, gid: 6 });
  });
  test("deviceHostPaths lists what the caller must stat", () => {
    expect(deviceHostPaths([dev("/dev/dri", "/dev/gpu"), dev("/dev/fuse")], { additional: ["/dev/fuse:/dev/f2"], annotation: "/dev/net/tun" })).toEqual([
      "/dev/fuse",
      "/dev/net/tun",
      "/dev/dri",
    ]);
  });
});
