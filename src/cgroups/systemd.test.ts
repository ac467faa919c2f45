// The systemd manager and its D-Bus client against a fake systemd: the exact conversation (SASL
// lines, Hello, the JobRemoved match rule, StartTransientUnit's name, mode and properties with
// their D-Bus types), job completion by signal or by polling, error paths, and the "no systemd
// here" error. Then, with Debian's dbus-daemon and busctl, the same call's bytes compared with
// what sd-bus (systemd's own D-Bus library) marshals.
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcCode, InternalError, InvalidArgumentError } from "../errors.ts";
import { DBusError, externalAuthId, marshal, Variant } from "./dbus.ts";
import { CgroupBusyError, SystemdUnavailableError } from "./errors.ts";
import { SystemdManager } from "./systemd.ts";
import { defaultEndpoints, SystemdClient } from "./systemd1.ts";
import { requireDbusTools, withDbusDaemon } from "./testing/dbus-daemon.ts";
import { FakeSystemd, type FakeSystemdOptions } from "./testing/fake-systemd.ts";
import { makeFixture, type Fixture, type FixtureLayout } from "./testing/fixture.ts";

const POD_SLICE = "kubepods-burstable-pod1.slice";
const POD_SLICE_PATH = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice";
const MATCH_RULE =
  "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const v = (sig: string, value: unknown) => new Variant(sig, value as never);

/** The properties CRI-O's MoveConmonToCgroup sends for conmon, in its order (Slice last). */
function conmonProperties(pid: number, slice: string, collectMode = true): [string, Variant][] {
  return [
    ["PIDs", v("au", [pid])],
    ["Delegate", v("b", true)],
    ["DefaultDependencies", v("b", false)],
    ["KillSignal", v("i", 13)],
    ["After", v("as", ["crio.service"])],
    ...(collectMode ? ([["CollectMode", v("s", "inactive-or-failed")]] as [string, Variant][]) : []),
    ["Slice", v("s", slice)],
  ];
}

interface Env {
  fx: Fixture;
  fake: FakeSystemd;
  socket: string;
  manager: SystemdManager;
  restart(opts?: FakeSystemdOptions): void;
}

let dir = "";
let env: Env | undefined;

function setup(layout: FixtureLayout = "v1", opts: FakeSystemdOptions = {}, bus = true): Env {
  const fx = makeFixture(layout);
  const socket = join(dir, "bus.sock");
  const fakeOpts = (o: FakeSystemdOptions) => ({ fs: fx.fs, kill: (pid: number) => fx.exit(pid), ...o });
  const e: Env = {
    fx,
    socket,
    fake: FakeSystemd.listen(socket, fakeOpts(opts)),
    manager: new SystemdManager(fx.fs, { endpoints: [{ path: socket, bus }], jobPollMs: 30, jobTimeoutMs: 3000 }),
    restart(o = {}) {
      this.fake.stop();
      this.fake = FakeSystemd.listen(socket, fakeOpts(o));
    },
  };
  env = e;
  return e;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "systemd-test-"));
});
afterEach(() => {
  env?.manager.close();
  env?.fake.stop();
  env?.fx.cleanup();
  env = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("the conversation with systemd", () => {
  test("placing conmon: SASL, Hello, the JobRemoved match, Version, then StartTransientUnit with CRI-O's properties", async () => {
    const { fx, fake, manager } = setup();
    const pid = fx.spawn();
    const cgroup = await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid });

    expect(fake.authLines).toEqual([`\\0AUTH EXTERNAL ${externalAuthId(process.geteuid?.() ?? 0)}`, "BEGIN"]);
    expect(fake.calls.map((c) => `${c.interface}.${c.member}`)).toEqual([
      "org.freedesktop.DBus.Hello",
      "org.freedesktop.DBus.AddMatch",
      "org.freedesktop.DBus.Properties.Get",
      "org.freedesktop.systemd1.Manager.StartTransientUnit",
    ]);
    const [hello, match, get, start] = fake.calls;
    expect(hello).toMatchObject({ destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", signature: "", body: [] });
    expect(match).toMatchObject({ destination: "org.freedesktop.DBus", signature: "s", body: [MATCH_RULE] });
    expect(get).toMatchObject({
      destination: "org.freedesktop.systemd1",
      path: "/org/freedesktop/systemd1",
      signature: "ss",
      body: ["org.freedesktop.systemd1.Manager", "Version"],
    });
    expect(start).toMatchObject({ destination: "org.freedesktop.systemd1", path: "/org/freedesktop/systemd1", signature: "ssa(sv)a(sa(sv))" });
    const expected = ["crio-conmon-abc.scope", "replace", conmonProperties(pid, POD_SLICE), []];
    expect(start?.body).toEqual(expected as never);
    expect(hex(start?.bodyBytes ?? new Uint8Array())).toBe(hex(marshal("ssa(sv)a(sa(sv))", expected)));

    expect(cgroup).toBe(`${POD_SLICE_PATH}/crio-conmon-abc.scope`);
    expect(fx.fs.pids(cgroup)).toEqual([pid]);
  });

  test("monitor_cgroup naming a slice puts conmon's scope there instead of the pod's slice", async () => {
    const { fx, fake, manager } = setup();
    const cgroup = await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "system.slice", pid: fx.spawn() });
    expect(cgroup).toBe("/system.slice/crio-conmon-abc.scope");
    const props = fake.managerCalls("StartTransientUnit")[0]?.body[2] as [string, Variant][];
    expect(props.at(-1)).toEqual(["Slice", v("s", "system.slice")]);
  });

  test("systemd older than 236 gets no CollectMode (it would reject the whole unit)", async () => {
    const { fx, fake, manager } = setup("v1", { version: "235" });
    const pid = fx.spawn();
    await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid });
    expect(fake.managerCalls("StartTransientUnit")[0]?.body[2]).toEqual(conmonProperties(pid, POD_SLICE, false) as never);
  });

  test("monitor resources become properties spelled for the cgroup version (v1: CPUShares)", async () => {
    const { fx, fake, manager } = setup("v1");
    await manager.placeMonitor({
      containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn(),
      resources: { cpuShares: 512, cpuQuotaUs: 12345, cpuPeriodUs: 100000, cpusetCpus: "0-1" },
    });
    const props = new Map(fake.managerCalls("StartTransientUnit")[0]?.body[2] as [string, Variant][]);
    expect(props.get("CPUShares")).toEqual(v("t", 512n));
    expect(props.get("CPUQuotaPeriodUSec")).toEqual(v("t", 100000n));
    expect(props.get("CPUQuotaPerSecUSec")).toEqual(v("t", 130000n));
    expect(props.has("AllowedCPUs")).toBe(false); // systemd has no cpuset on v1
  });

  test("monitor resources on v2: CPUWeight and AllowedCPUs as a little-endian bitmask", async () => {
    const { fx, fake, manager } = setup("v2");
    await manager.placeMonitor({
      containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn(),
      resources: { cpuShares: 1024, cpusetCpus: "0,9-10" },
    });
    const props = new Map(fake.managerCalls("StartTransientUnit")[0]?.body[2] as [string, Variant][]);
    expect(props.get("CPUWeight")).toEqual(v("t", 100n));
    expect(props.get("AllowedCPUs")).toEqual(v("ay", new Uint8Array([0x01, 0x06])));
  });

  test("a peer connection (systemd's private socket) skips Hello and AddMatch and still hears JobRemoved", async () => {
    const { fx, fake, manager } = setup("v1", {}, false);
    await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn() });
    expect(fake.calls.map((c) => c.member)).toEqual(["Get", "StartTransientUnit"]);
  });

  test("a moveProcess to a systemd cgroupsPath starts the scope crio-<id>.scope in that slice", async () => {
    const { fx, fake, manager } = setup();
    const pid = fx.spawn();
    await manager.moveProcess(pid, `${POD_SLICE}:crio:ctr1`);
    expect(fake.managerCalls("StartTransientUnit")[0]?.body).toEqual([
      "crio-ctr1.scope",
      "replace",
      [["PIDs", v("au", [pid])], ["Delegate", v("b", true)], ["DefaultDependencies", v("b", false)], ["Slice", v("s", POD_SLICE)]],
      [],
    ] as never);
    expect(manager.pids(`${POD_SLICE}:crio:ctr1`)).toEqual([pid]);
  });

  test("a scope that exists already gets the process through AttachProcessesToUnit", async () => {
    const { fx, fake, manager } = setup();
    const [a, b] = [fx.spawn(), fx.spawn()];
    await manager.moveProcess(a, `${POD_SLICE}:crio:ctr1`);
    await manager.moveProcess(b, `${POD_SLICE}:crio:ctr1`);
    expect(fake.managerCalls().map((c) => c.member)).toEqual(["StartTransientUnit", "StartTransientUnit", "AttachProcessesToUnit"]);
    expect(fake.managerCalls("AttachProcessesToUnit")[0]?.body).toEqual(["crio-ctr1.scope", "", [b]]);
    expect(manager.pids(`${POD_SLICE}:crio:ctr1`)).toEqual([a, b]);
  });
});

describe("job completion", () => {
  test("JobRemoved arriving before the method reply is not missed", async () => {
    const { fx, manager } = setup("v1", { jobRemoved: "before" });
    await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn() });
  });

  test("without JobRemoved the job is polled: its object gone, the unit's ActiveState decides", async () => {
    const { fx, fake, manager } = setup("v1", { jobRemoved: "never" });
    await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn() });
    const tail = fake.calls.slice(-3).map((c) => [c.member, c.path, c.body]);
    expect(tail).toEqual([
      ["Get", "/org/freedesktop/systemd1/job/1", ["org.freedesktop.systemd1.Job", "State"]],
      ["GetUnit", "/org/freedesktop/systemd1", ["crio-conmon-abc.scope"]],
      ["Get", "/org/freedesktop/systemd1/unit/crio_2dconmon_2dabc_2escope", ["org.freedesktop.systemd1.Unit", "ActiveState"]],
    ] as never);
  });

  test("a job that ends other than done is an error naming the unit and the result", async () => {
    const { fx, manager } = setup("v1", { jobResult: () => "failed" });
    const err = await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: fx.spawn() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as Error).message).toContain('crio-conmon-abc.scope ended with result "failed"');
  });

  test("a systemd error reply reaches the caller with its name", async () => {
    const { fx, manager } = setup();
    const err = await manager.moveProcess(fx.spawn(), `${POD_SLICE}:crio:bad name`).catch((e: unknown) => e);
    expect((err as Error).message).toContain("invalid systemd unit name");
    const err2 = await manager.placeMonitor({ containerId: "x", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: 0 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(InvalidArgumentError); // systemd would read PID 0 as the daemon itself
    const client = await SystemdClient.connect([{ path: env?.socket ?? "", bus: true }]);
    try {
      const err3 = await client.startTransientUnit("x.scope", "replace", [["PIDs", v("u", 1)]]).catch((e: unknown) => e);
      expect(err3).toBeInstanceOf(DBusError);
      expect((err3 as DBusError).errorName).toBe("org.freedesktop.DBus.Error.InvalidArgs");
      expect((err3 as Error).message).toContain("PIDs");
    } finally {
      client.close();
    }
  });

  test("a lost connection is replaced on the next call", async () => {
    const e = setup();
    await e.manager.placeMonitor({ containerId: "a1", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: e.fx.spawn() });
    e.restart();
    await Bun.sleep(20);
    await e.manager.placeMonitor({ containerId: "a2", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: e.fx.spawn() });
    expect(e.fake.calls.map((c) => c.member)).toEqual(["Hello", "AddMatch", "Get", "StartTransientUnit"]);
  });
});

describe("slices and removal", () => {
  test("a missing pod slice is started as a transient slice with accounting on; an existing one is left alone", async () => {
    const { fake, manager } = setup("v1");
    const cgroup = await manager.createSandboxCgroup("kubepods-besteffort-pod9.slice", "sb1");
    expect(cgroup).toBe("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/crio-sb1");
    expect(fake.managerCalls("StartTransientUnit").map((c) => c.body)).toEqual([
      [
        "kubepods-besteffort-pod9.slice",
        "replace",
        [
          ["Description", v("s", "CRI-O pod slice kubepods-besteffort-pod9.slice")],
          ["MemoryAccounting", v("b", true)],
          ["CPUAccounting", v("b", true)],
          ["TasksAccounting", v("b", true)],
          ["BlockIOAccounting", v("b", true)],
        ],
        [],
      ],
    ] as never);
    await manager.createSandboxCgroup("kubepods-besteffort-pod9.slice", "sb2");
    expect(fake.managerCalls().length).toBe(1);
  });

  test("a slice unit systemd knows but has not started is started with StartUnit", async () => {
    const { fake, manager } = setup("v2");
    fake.units.set("kubepods-pod7.slice", { name: "kubepods-pod7.slice", properties: new Map(), state: "inactive", cgroup: "/kubepods.slice/kubepods-pod7.slice" });
    await manager.createSandboxCgroup("kubepods-pod7.slice", "sb1");
    expect(fake.managerCalls().map((c) => [c.member, c.body[0]])).toEqual([
      ["StartTransientUnit", "kubepods-pod7.slice"],
      ["StartUnit", "kubepods-pod7.slice"],
    ]);
    expect(fake.managerCalls("StartTransientUnit")[0]?.body[2]).toContainEqual(["IOAccounting", v("b", true)]);
  });

  test("removing conmon's scope: busy while conmon lives, StopUnit once it is empty, nothing to do once collected", async () => {
    const { fx, fake, manager } = setup();
    const pid = fx.spawn();
    const req = { containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod" };
    await manager.placeMonitor({ ...req, pid });
    const err = await manager.removeMonitorCgroup(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CgroupBusyError);
    expect(fake.managerCalls("StopUnit")).toEqual([]); // nothing is killed
    fx.exit(pid);
    await manager.removeMonitorCgroup(req);
    expect(fake.managerCalls("StopUnit").map((c) => c.body)).toEqual([["crio-conmon-abc.scope", "replace"]]);
    expect(manager.exists(manager.monitorCgroupPath(req))).toBe(false);
    const before = fake.calls.length;
    await manager.removeMonitorCgroup(req);
    expect(fake.calls.length).toBe(before);
  });

  test("removing the sandbox cgroup needs no D-Bus and leaves the kubelet's slice", async () => {
    const { fake, manager } = setup();
    await manager.createSandboxCgroup(POD_SLICE, "sb1");
    const calls = fake.calls.length;
    await manager.removeSandboxCgroup(POD_SLICE, "sb1");
    expect(fake.calls.length).toBe(calls);
    expect(manager.fs.exists(`${POD_SLICE_PATH}/crio-sb1`)).toBe(false);
    expect(manager.fs.exists(POD_SLICE_PATH)).toBe(true);
  });
});

describe("no systemd on this node", () => {
  test("every operation needing systemd fails with SystemdUnavailableError naming cgroup_manager = \"cgroupfs\"", async () => {
    const fx = makeFixture("v1");
    const manager = new SystemdManager(fx.fs, {
      endpoints: [{ path: join(dir, "no-bus.sock"), bus: true }, { path: join(dir, "no-private.sock"), bus: false }],
    });
    try {
      const err = await manager.check().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SystemdUnavailableError);
      const e = err as SystemdUnavailableError;
      expect(e.code).toBe(GrpcCode.UNAVAILABLE);
      expect(e.message).toContain('cgroup_manager = "cgroupfs"');
      expect(e.message).toContain(`${join(dir, "no-bus.sock")}: `);
      expect(e.message).toContain("(ENOENT)");
      expect(e.attempts.map((a) => a.path)).toEqual([join(dir, "no-bus.sock"), join(dir, "no-private.sock")]);
      const err2 = await manager.placeMonitor({ containerId: "c", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid: 1 }).catch((x: unknown) => x);
      expect(err2).toBeInstanceOf(SystemdUnavailableError);
      // Path logic needs no systemd.
      expect(manager.containerCgroupPath(POD_SLICE, "c")).toBe(`${POD_SLICE}:crio:c`);
    } finally {
      manager.close();
      fx.cleanup();
    }
  });

  test("a system bus without systemd on it is reported the same way", async () => {
    requireDbusTools();
    await withDbusDaemon(async (socket) => {
      const err = await SystemdClient.connect([{ path: socket, bus: true }], { timeoutMs: 3000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SystemdUnavailableError);
      expect((err as Error).message).toContain("org.freedesktop.DBus.Error.ServiceUnknown");
    });
  });

  test("default endpoints: the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured), then systemd's private socket for root", () => {
    expect(defaultEndpoints({}, 0)).toEqual([
      { path: "/run/dbus/system_bus_socket", bus: true },
      { path: "/run/systemd/private", bus: false },
    ]);
    expect(defaultEndpoints({ DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/tmp/x%20y/bus,guid=00" }, 1000)).toEqual([{ path: "/tmp/x y/bus", bus: true }]);
  });
});

describe("against dbus-daemon and busctl (systemd's sd-bus)", () => {
  beforeAll(() => requireDbusTools({ busctl: true }));
  test("our StartTransientUnit body is byte-identical to sd-bus's for the same call, and routes through a real bus", async () => {
    await withDbusDaemon(async (socket) => {
      const fx = makeFixture("v1");
      const fake = await FakeSystemd.onBus(socket, { fs: fx.fs });
      const manager = new SystemdManager(fx.fs, { endpoints: [{ path: socket, bus: true }], jobTimeoutMs: 5000 });
      try {
        const pid = fx.spawn();
        const busctl = Bun.spawn(
          [
            "busctl", `--address=unix:path=${socket}`, "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", "crio-conmon-abc.scope", "replace",
            "7", "PIDs", "au", "1", String(pid), "Delegate", "b", "true", "DefaultDependencies", "b", "false",
            "KillSignal", "i", "13", "After", "as", "1", "crio.service", "CollectMode", "s", "inactive-or-failed",
            "Slice", "s", POD_SLICE, "0",
          ],
          { stdout: "pipe", stderr: "pipe" },
        );
        const [out, errOut, code] = [await new Response(busctl.stdout).text(), await new Response(busctl.stderr).text(), await busctl.exited];
        expect({ code, errOut }).toEqual({ code: 0, errOut: "" });
        expect(out.trim()).toBe('o "/org/freedesktop/systemd1/job/1"'); // sd-bus parsed our reply
        const sdbus = fake.managerCalls("StartTransientUnit")[0]?.bodyBytes;

        fake.units.delete("crio-conmon-abc.scope");
        await manager.placeMonitor({ containerId: "abc", cgroupParent: POD_SLICE, monitorCgroup: "pod", pid });
        const ours = fake.managerCalls("StartTransientUnit")[1]?.bodyBytes;
        expect(sdbus).toBeDefined();
        expect(hex(ours ?? new Uint8Array())).toBe(hex(sdbus ?? new Uint8Array([1])));
      } finally {
        manager.close();
        fake.stop();
        fx.cleanup();
      }
    });
  });

  test("sd-bus reads our variant replies and error replies", async () => {
    await withDbusDaemon(async (socket) => {
      const fake = await FakeSystemd.onBus(socket, { version: "252 (252.38-1~deb12u1)" });
      try {
        const run = async (...args: string[]) => {
          const p = Bun.spawn(["busctl", `--address=unix:path=${socket}`, ...args], { stdout: "pipe", stderr: "pipe" });
          return { out: (await new Response(p.stdout).text()).trim(), err: (await new Response(p.stderr).text()).trim(), code: await p.exited };
        };
        expect(await run("get-property", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "Version")).toEqual({
          out: 's "252 (252.38-1~deb12u1)"',
          err: "",
          code: 0,
        });
        const missing = await run("call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "GetUnit", "s", "nope.scope");
        expect(missing.code).not.toBe(0);
        expect(missing.err).toContain("Unit nope.scope not loaded.");
      } finally {
        fake.stop();
      }
    });
  });
});
