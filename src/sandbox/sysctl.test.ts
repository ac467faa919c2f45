import { describe, expect, test } from "bun:test";
import { ConfigError, GrpcCode, InvalidArgumentError } from "../errors.ts";
import { parseDefaultSysctls, podSysctls, sysctlNamespace, sysctlRefusal, validatePodSysctls } from "./sysctl.ts";

const POD = { hostNetwork: false, hostIPC: false };

function refusal(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err;
    throw err;
  }
  throw new Error("expected an InvalidArgumentError");
}

describe("sysctlNamespace", () => {
  test("the kubelet/CRI-O table, plus the UTS names", () => {
    expect(sysctlNamespace("net.ipv4.ip_local_port_range")).toBe("net");
    expect(sysctlNamespace("net/ipv4/conf/eth0.100/rp_filter")).toBe("net");
    expect(sysctlNamespace("kernel.shmmax")).toBe("ipc");
    expect(sysctlNamespace("kernel.shm_rmid_forced")).toBe("ipc");
    expect(sysctlNamespace("kernel.msgmnb")).toBe("ipc");
    expect(sysctlNamespace("kernel.sem")).toBe("ipc");
    expect(sysctlNamespace("fs.mqueue.msg_max")).toBe("ipc");
    expect(sysctlNamespace("kernel.domainname")).toBe("uts");
    expect(sysctlNamespace("kernel.hostname")).toBe("uts");
    for (const host of ["kernel.panic", "vm.swappiness", "fs.file-max", "kernel.semx", "fs.mqueue", "netx.y", "kernel.pid_max"]) {
      expect(sysctlNamespace(host)).toBeUndefined();
    }
  });
});

describe("validatePodSysctls", () => {
  test("accepts namespaced sysctls of the pod's own namespaces, normalising names to dots", () => {
    expect(
      validatePodSysctls(
        { "net.ipv4.ip_local_port_range": "1024 65000", "kernel/shmmax": "1000", "kernel.domainname": "example" },
        POD,
      ),
    ).toEqual([
      ["net.ipv4.ip_local_port_range", "1024 65000"],
      ["kernel.shmmax", "1000"],
      ["kernel.domainname", "example"],
    ]);
    expect(validatePodSysctls({}, { hostNetwork: true, hostIPC: true })).toEqual([]);
  });

  test("non-namespaced sysctls are refused, naming the sysctl and why", () => {
    for (const name of ["kernel.panic", "vm.overcommit_memory", "fs.file-max"]) {
      const err = refusal(() => validatePodSysctls({ [name]: "1" }, POD));
      expect(err.code).toBe(GrpcCode.INVALID_ARGUMENT);
      expect(err.message).toContain(`"${name}"`);
      expect(err.message).toContain("not a namespaced sysctl");
    }
  });

  test("net.* needs the pod network namespace; IPC sysctls a private IPC namespace; UTS ones a private UTS", () => {
    expect(refusal(() => validatePodSysctls({ "net.core.somaxconn": "1024" }, { hostNetwork: true, hostIPC: false })).message)
      .toBe('sysctl "net.core.somaxconn": not allowed with host network namespace enabled: it would change the node\'s');
    for (const name of ["kernel.shmmax", "kernel.msgmax", "kernel.sem", "fs.mqueue.queues_max"]) {
      expect(refusal(() => validatePodSysctls({ [name]: "1" }, { hostNetwork: false, hostIPC: true })).message)
        .toContain(`"${name}": not allowed with host IPC namespace`);
      expect(validatePodSysctls({ [name]: "1" }, { hostNetwork: true, hostIPC: false })).toHaveLength(1);
    }
    // UTS follows hostNetwork unless given.
    expect(refusal(() => validatePodSysctls({ "kernel.domainname": "x" }, { hostNetwork: true, hostIPC: false })).message)
      .toContain("host UTS namespace");
    expect(validatePodSysctls({ "kernel.domainname": "x" }, { hostNetwork: true, hostIPC: false, hostUTS: false })).toHaveLength(1);
    expect(refusal(() => validatePodSysctls({ "kernel.hostname": "x" }, { ...POD, hostUTS: true })).message)
      .toContain("host UTS namespace");
  });

  test("bad names and values", () => {
    for (const name of ["", "net..ipv4", "net/../../etc", ".net", "net.ipv4.", "net ipv4", "net.ipv4.*"]) {
      expect(refusal(() => validatePodSysctls({ [name]: "1" }, POD)).message).toContain("invalid sysctl name");
    }
    expect(refusal(() => validatePodSysctls({ "net.ipv4.tcp_syncookies": "" }, POD)).message).toContain("empty value");
    expect(refusal(() => validatePodSysctls({ "net.ipv4.tcp_syncookies": "1\0" }, POD)).message).toContain("NUL");
    expect(refusal(() => validatePodSysctls({ "net.ipv4.ip_forward": "1", "net/ipv4/ip_forward": "0" }, POD)).message)
      .toContain("given twice");
  });

  test("sysctlRefusal is undefined for an allowed sysctl", () => {
    expect(sysctlRefusal("net.ipv4.ping_group_range", POD)).toBeUndefined();
  });
});

describe("default_sysctls", () => {
  test("parses name=value entries, skipping empty ones; the value may contain '='", () => {
    expect(parseDefaultSysctls(["net.ipv4.ping_group_range=0 2147483647", "", "kernel.domainname=a=b"])).toEqual([
      { name: "net.ipv4.ping_group_range", value: "0 2147483647" },
      { name: "kernel.domainname", value: "a=b" },
    ]);
  });

  test("errors name the bad entry and the config key", () => {
    const cases: Array<[string, RegExp]> = [
      ["net.ipv4.ip_forward", /"net.ipv4.ip_forward" is not in name=value format/],
      ["net.ipv4.ip_forward = 1", /"net.ipv4.ip_forward = 1" is invalid, extra spaces found/],
      ["=1", /"=1" has an empty name/],
      ["net.ipv4.ip_forward=", /"net.ipv4.ip_forward=" has an empty value/],
      ["net..x=1", /"net..x=1": invalid sysctl name/],
    ];
    for (const [entry, re] of cases) {
      try {
        parseDefaultSysctls(["kernel.sem=1 2 3 4", entry]);
        throw new Error(`expected ${entry} to be refused`);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).message).toMatch(re);
        expect((err as ConfigError).key).toBe("crio.runtime.default_sysctls");
      }
    }
  });

  test("podSysctls: defaults that do not fit the pod are skipped with a reason; the pod's value wins", () => {
    const defaults = parseDefaultSysctls(["net.ipv4.ping_group_range=0 0", "kernel.shmmni=100", "kernel.panic=1"]);
    const hostNet = podSysctls(defaults, { "kernel.shmmni": "200" }, { hostNetwork: true, hostIPC: false });
    expect(hostNet.sysctls).toEqual([["kernel.shmmni", "200"]]);
    expect(hostNet.skipped.map((s) => s.name)).toEqual(["net.ipv4.ping_group_range", "kernel.panic"]);
    expect(hostNet.skipped[0]!.reason).toContain("host network");

    const own = podSysctls(defaults, { "net/ipv4/ping_group_range": "1 1" }, POD);
    expect(own.sysctls).toEqual([["kernel.shmmni", "100"], ["net.ipv4.ping_group_range", "1 1"]]);

    // A pod sysctl that does not fit is refused, not skipped.
    expect(() => podSysctls(defaults, { "vm.swappiness": "1" }, POD)).toThrow(InvalidArgumentError);
  });
});
