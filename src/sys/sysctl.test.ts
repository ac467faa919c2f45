import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { SyscallError } from "./libc.ts";
import { readSysctl, sysctlDottedName, sysctlPath, writeSysctl } from "./sysctl.ts";

describe("sysctl names", () => {
  test("dots and slashes as sysctl(8) reads them", () => {
    expect(sysctlPath("net.ipv4.ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
    expect(sysctlPath("net/ipv4/ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
    // The first separator decides; the other character is then part of a component (VLAN interfaces).
    expect(sysctlPath("net.ipv4.conf.eth0/100.rp_filter")).toBe("/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
    expect(sysctlPath("net/ipv4/conf/eth0.100/rp_filter")).toBe("/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
    expect(sysctlPath("kernel")).toBe("/proc/sys/kernel");
  });

  test("the dotted form", () => {
    expect(sysctlDottedName("net/ipv4/ip_forward")).toBe("net.ipv4.ip_forward");
    expect(sysctlDottedName("net.ipv4.ip_forward")).toBe("net.ipv4.ip_forward");
    expect(sysctlDottedName("net/ipv4/conf/eth0.100/rp_filter")).toBe("net.ipv4.conf.eth0/100.rp_filter");
  });

  test("names that would leave /proc/sys or name nothing are refused", () => {
    for (const bad of ["", ".", "net..ipv4", ".net", "net.", "net/../../etc/passwd", "/etc/passwd", "net/./ipv4", "a\0b"]) {
      expect(() => sysctlPath(bad)).toThrow(/invalid sysctl name/);
    }
  });
});

describe("reading and writing", () => {
  test("reads a value without its trailing newline", () => {
    expect(readSysctl("kernel.ostype")).toBe("Linux");
    expect(readSysctl("kernel/ostype")).toBe("Linux");
    expect(readSysctl("net.ipv4.ip_local_port_range")).toBe(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").replace(/\n$/, ""),
    );
  });

  test("a missing sysctl is ENOENT, named in the error", () => {
    try {
      readSysctl("net.ipv4.no_such_sysctl");
      throw new Error("expected an error");
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("ENOENT");
      expect((err as SyscallError).message).toContain("/proc/sys/net/ipv4/no_such_sysctl");
    }
  });

  test("writes a value (the current one, so the host is unchanged) and reports the kernel's refusal", () => {
    const before = readSysctl("net.ipv4.ip_local_port_range");
    writeSysctl("net.ipv4.ip_local_port_range", before);
    expect(readSysctl("net.ipv4.ip_local_port_range")).toBe(before);
    try {
      writeSysctl("net.ipv4.ip_local_port_range", "not a range");
      throw new Error("expected an error");
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).syscall).toBe("write");
      expect((err as SyscallError).code).toBe("EINVAL");
      expect((err as SyscallError).message).toContain("net.ipv4.ip_local_port_range=not a range");
    }
    expect(readSysctl("net.ipv4.ip_local_port_range")).toBe(before);
  });
});
