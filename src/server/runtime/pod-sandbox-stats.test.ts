// The pure parts of the pod stats: which cgroup is the pod's, and /proc/net/dev parsing. The RPCs
// themselves run in test/integration/stats.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { CgroupfsManager } from "../../cgroups/cgroupfs.ts";
import { SystemdManager } from "../../cgroups/systemd.ts";
import { makeFixture, type Fixture } from "../../cgroups/testing/fixture.ts";
import { parseNetDev, podCgroup } from "./pod-sandbox-stats.ts";

const fixtures: Fixture[] = [];
afterEach(() => {
  for (const fx of fixtures.splice(0)) fx.cleanup();
});
function fs() {
  const fx = makeFixture("v1");
  fixtures.push(fx);
  return fx.fs;
}

describe("podCgroup", () => {
  test("cgroupfs: the kubelet's per-pod parent is the pod's cgroup; the default /crio is shared", () => {
    const m = new CgroupfsManager(fs());
    expect(podCgroup(m, { id: "abc", cgroupParent: "/kubepods/burstable/pod1" })).toBe("/kubepods/burstable/pod1");
    expect(podCgroup(m, { id: "abc", cgroupParent: "/crio" })).toBeUndefined();
    expect(podCgroup(m, { id: "abc", cgroupParent: "/" })).toBeUndefined();
    expect(podCgroup(m, { id: "abc", cgroupParent: undefined })).toBeUndefined();
  });

  test("systemd: a pod slice is expanded; system.slice (the default) is shared", () => {
    const m = new SystemdManager(fs());
    expect(podCgroup(m, { id: "abc", cgroupParent: "kubepods-burstable-pod1.slice" })).toBe(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
    );
    expect(podCgroup(m, { id: "abc", cgroupParent: "system.slice" })).toBeUndefined();
    m.close();
  });
});

test("parseNetDev: rx/tx bytes and errors per interface, headers and junk skipped", () => {
  const text = [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0",
    "  eth0: 18446744073709551615 42 3 0 0 0 0 0 2048 20 4 0 0 0 0 0",
    "garbage line",
    "",
  ].join("\n");
  expect(parseNetDev(text)).toEqual([
    { name: "lo", rxBytes: { value: 840n }, rxErrors: { value: 0n }, txBytes: { value: 840n }, txErrors: { value: 0n } },
    { name: "eth0", rxBytes: { value: 18446744073709551615n }, rxErrors: { value: 3n }, txBytes: { value: 2048n }, txErrors: { value: 4n } },
  ]);
});
