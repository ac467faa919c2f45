import { describe, expect, test } from "bun:test";
import { compareVersions, convertResult, podIps, toCurrent, versionAtLeast } from "./result.ts";

describe("CNI result versions", () => {
  test("versions compare numerically", () => {
    expect(compareVersions("0.10.0", "0.4.0")).toBeGreaterThan(0);
    expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
    expect(versionAtLeast("0.3.1", "0.4.0")).toBe(false);
    expect(versionAtLeast("1.1.0", "0.4.0")).toBe(true);
    expect(() => compareVersions("1.0", "1.0.0")).toThrow(/invalid CNI version/);
  });

  test("a 0.2.0 result becomes a 1.0 result", () => {
    const cur = toCurrent({
      cniVersion: "0.2.0",
      ip4: { ip: "10.0.0.5/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0" }] },
      ip6: { ip: "fd00::5/64", routes: [{ dst: "::/0", gw: "fd00::1" }] },
      dns: { nameservers: ["10.0.0.1"] },
    });
    expect(cur).toEqual({
      cniVersion: "1.0.0",
      ips: [{ address: "10.0.0.5/24", gateway: "10.0.0.1" }, { address: "fd00::5/64" }],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }],
      dns: { nameservers: ["10.0.0.1"] },
    });
  });

  test("a 0.4.0 result loses ips[].version; empty dns and macs are dropped", () => {
    const cur = toCurrent({
      cniVersion: "0.4.0",
      interfaces: [{ name: "eth0", mac: "", sandbox: "/run/netns/x" }],
      ips: [{ version: "4", address: "10.0.0.5/24", interface: 0 }],
      dns: {},
    });
    expect(cur).toEqual({
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: "/run/netns/x" }],
      ips: [{ address: "10.0.0.5/24", interface: 0 }],
    });
  });

  test("a result without cniVersion is read in the fallback version", () => {
    expect(toCurrent({ ip4: { ip: "10.0.0.2/8" } }, "0.2.0").ips).toEqual([{ address: "10.0.0.2/8" }]);
  });

  test("1.0 converts down to 0.4.0 (with version) and 0.2.0 (ip4/ip6)", () => {
    const v1 = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: "/n" }],
      ips: [
        { address: "fd00::5/64", interface: 0 },
        { address: "10.0.0.5/24", gateway: "10.0.0.1", interface: 0 },
      ],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
    };
    expect(convertResult(v1, "0.4.0")).toEqual({
      cniVersion: "0.4.0",
      interfaces: [{ name: "eth0", sandbox: "/n" }],
      ips: [
        { version: "6", address: "fd00::5/64", interface: 0 },
        { version: "4", address: "10.0.0.5/24", gateway: "10.0.0.1", interface: 0 },
      ],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
    });
    expect(convertResult(v1, "0.2.0")).toEqual({
      cniVersion: "0.2.0",
      ip4: { ip: "10.0.0.5/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0" }] },
      ip6: { ip: "fd00::5/64", routes: [{ dst: "::/0" }] },
    });
    // Same version: untouched (plugin-specific keys survive).
    const same = { cniVersion: "1.0.0", custom: 1 };
    expect(convertResult(same, "1.0.0")).toBe(same);
  });

  test("pod IPs: IPv4 first, without prefix, host-side addresses skipped", () => {
    expect(
      podIps({
        cniVersion: "1.0.0",
        interfaces: [{ name: "cni0" }, { name: "eth0", sandbox: "/n" }],
        ips: [
          { address: "fd00::5/64", interface: 1 },
          { address: "10.0.0.1/24", interface: 0 },
          { address: "10.0.0.5/24", interface: 1 },
          { address: "10.0.1.5/24" },
        ],
      }),
    ).toEqual(["10.0.0.5", "10.0.1.5", "fd00::5"]);
  });
});
