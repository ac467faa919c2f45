// Root only. Every namespace is pinned under a temporary namespaces_dir (one test uses
// /var/run/netns for `ip netns exec`, with a unique name) and checked from outside the test
// process with nsenter/ip. Everything is unpinned and unmounted in finally blocks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, UnimplementedError } from "../errors.ts";
import { SyscallError } from "../sys/libc.ts";
import { MNT_DETACH, umount2 } from "../sys/mount.ts";
import { namespaceInode, threadNamespaceId } from "../sys/namespaces.ts";
import { readSysctl } from "../sys/sysctl.ts";
import {
  listPinned,
  namespacePath,
  namespaceTypeDir,
  parseMountInfo,
  pinNamespaces,
  POD_NAMESPACE_TYPES,
  readMountInfo,
  unpinNamespaces,
  type PinnedNamespaces,
} from "./namespaces.ts";

function run(cmd: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

function mustRun(cmd: string[]): string {
  const r = run(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")}: exit ${r.code}: ${r.err}`);
  return r.out.trim();
}

const mountPoints = () => readMountInfo().map((m) => m.mountPoint);
const mountsUnder = (dir: string) => mountPoints().filter((p) => p === dir || p.startsWith(`${dir}/`));
/**
 * The fds the pin sequence could leak: namespace handles, /proc files and pin files. Counting all
 * fds is not exact, since Bun's other threads open and close their own (spawn pipes) at any time.
 */
function pinFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the fd readdir itself used, or another thread's)
    }
    if (/^[a-z]+:\[\d+\]$/.test(target) && !/^(socket|pipe|anon_inode):/.test(target)) out.push(`${fd} ${target}`);
    else if (target.startsWith("/proc/") || target.includes("pinned-ns-") || target.startsWith("/run/")) out.push(`${fd} ${target}`);
  }
  return out.sort();
}
const fdCount = () => readdirSync("/proc/self/fd").length;
const hostIds = () => ({ net: threadNamespaceId("net"), ipc: threadNamespaceId("ipc"), uts: threadNamespaceId("uts") });

/** Detaches the shared self-bind mounts the pins made of <dir>/<type>ns, then removes the tree. */
function removeNamespacesDir(dir: string): void {
  for (const entry of listPinned(dir, { allNames: true })) unpinNamespaces(entry.paths);
  for (const t of POD_NAMESPACE_TYPES) {
    const d = namespaceTypeDir(dir, t);
    if (!existsSync(d)) continue;
    const real = realpathSync(d);
    while (mountPoints().includes(real)) umount2(real, MNT_DETACH);
  }
  rmSync(dir, { recursive: true, force: true });
}

let dir: string;
let host: ReturnType<typeof hostIds>;
const hostSysctls = () => ({
  range: readSysctl("net.ipv4.ip_local_port_range"),
  ping: readSysctl("net.ipv4.ping_group_range"),
  shmmni: readSysctl("kernel.shmmni"),
  domain: readSysctl("kernel.domainname"),
});
let hostValues: ReturnType<typeof hostSysctls>;
let hostHostname: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pinned-ns-"));
  host = hostIds();
  hostValues = hostSysctls();
  hostHostname = mustRun(["hostname"]);
});

afterAll(() => {
  removeNamespacesDir(dir);
});

/** Threads of this process not in the host's net, IPC or UTS namespace (none should ever be). */
function straysFromHost(): string[] {
  const out: string[] = [];
  for (const tid of readdirSync("/proc/self/task")) {
    for (const t of ["net", "ipc", "uts"] as const) {
      try {
        const ns = readlinkSync(`/proc/self/task/${tid}/ns/${t}`);
        if (ns !== host[t]) out.push(`${tid} ${ns}`);
      } catch {
        // the thread exited meanwhile
      }
    }
  }
  return out;
}

/** The thread is back where it started, and so is everything the host sees. */
function expectHostUnchanged(): void {
  expect(hostIds()).toEqual(host);
  expect(straysFromHost()).toEqual([]);
  expect(hostSysctls()).toEqual(hostValues);
  // A child forks from the JS thread and inherits its namespaces: it sees the host's too.
  expect(mustRun(["readlink", "/proc/self/ns/net"])).toBe(host.net);
  expect(mustRun(["sysctl", "-n", "net.ipv4.ip_local_port_range"])).toBe(hostValues.range);
  expect(mustRun(["hostname"])).toBe(hostHostname);
}

describe("pinNamespaces", () => {
  test("pins net+ipc+uts with a host name and sysctls, visible from other processes; unpin removes it all", () => {
    let pinned: PinnedNamespaces | undefined;
    try {
      pinned = pinNamespaces({
        namespacesDir: dir,
        types: ["net", "ipc", "uts"],
        hostname: "pod-a",
        sysctls: {
          "net.ipv4.ip_local_port_range": "20000 30000",
          "net/ipv4/ping_group_range": "0 2147483647",
          "kernel.shmmni": "1234",
          "kernel.domainname": "pods.test",
        },
      });
      const { id, paths } = pinned;
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(paths).toEqual({
        net: join(dir, "netns", id),
        ipc: join(dir, "ipcns", id),
        uts: join(dir, "utsns", id),
      });

      // From outside: a fresh network namespace with only lo, its own sysctls, host name, IPC limits.
      const links = mustRun(["nsenter", `--net=${paths.net}`, "ip", "-o", "link"]).split("\n");
      expect(links.map((l) => l.split(":")[1]!.trim())).toEqual(["lo"]);
      expect(mustRun(["nsenter", `--net=${paths.net}`, "sysctl", "-n", "net.ipv4.ip_local_port_range"])).toBe("20000\t30000");
      expect(mustRun(["nsenter", `--net=${paths.net}`, "sysctl", "-n", "net.ipv4.ping_group_range"])).toBe("0\t2147483647");
      expect(mustRun(["nsenter", `--uts=${paths.uts}`, "hostname"])).toBe("pod-a");
      expect(mustRun(["nsenter", `--uts=${paths.uts}`, "sysctl", "-n", "kernel.domainname"])).toBe("pods.test");
      expect(mustRun(["nsenter", `--ipc=${paths.ipc}`, "sysctl", "-n", "kernel.shmmni"])).toBe("1234");

      // The pins are nsfs mounts of new namespaces, under shared <type>ns mount points.
      const info = readMountInfo();
      for (const t of ["net", "ipc", "uts"] as const) {
        const p = paths[t]!;
        expect(info.filter((m) => m.mountPoint === p).map((m) => m.fsType)).toEqual(["nsfs"]);
        expect(statSync(p).ino).not.toBe(namespaceInode(host[t]));
        const typeDir = info.find((m) => m.mountPoint === namespaceTypeDir(dir, t));
        expect(typeDir?.optional.some((o) => o.startsWith("shared:"))).toBe(true);
      }
      expect(listPinned(dir)).toEqual([{ id, paths, mounted: ["net", "ipc", "uts"] }]);
      expectHostUnchanged();

      unpinNamespaces(paths);
      for (const p of Object.values(paths)) {
        expect(existsSync(p)).toBe(false);
        expect(mountPoints()).not.toContain(p);
      }
      expect(listPinned(dir)).toEqual([]);
      unpinNamespaces(paths); // idempotent
      pinned = undefined;
    } finally {
      if (pinned) unpinNamespaces(pinned.paths);
    }
    expectHostUnchanged();
  });

  test("under /var/run, `ip netns exec <id>` enters the pinned network namespace", () => {
    const netnsDir = "/var/run/netns";
    const existed = existsSync(netnsDir);
    const id = `crio-ts-test-${crypto.randomUUID().slice(0, 8)}`;
    let pinned: PinnedNamespaces | undefined;
    try {
      pinned = pinNamespaces({ namespacesDir: "/var/run", types: ["net"], id, sysctls: { "net.ipv4.ip_forward": "1" } });
      expect(pinned.paths).toEqual({ net: `${netnsDir}/${id}` });
      expect(mustRun(["ip", "netns", "list"])).toContain(id);
      expect(mustRun(["ip", "netns", "exec", id, "ip", "-o", "link"]).split("\n")).toHaveLength(1);
      expect(mustRun(["ip", "netns", "exec", id, "sysctl", "-n", "net.ipv4.ip_forward"])).toBe("1");
      expect(listPinned("/var/run", { allNames: true }).find((e) => e.id === id)?.mounted).toEqual(["net"]);
      expect(listPinned("/var/run").find((e) => e.id === id)).toBeUndefined(); // not a UUID: not ours by default
    } finally {
      if (pinned) unpinNamespaces(pinned.paths);
      // Leave /var/run/netns as found: remove it only if this test created it and it is empty.
      if (!existed && existsSync(netnsDir) && readdirSync(netnsDir).length === 0) {
        const real = realpathSync(netnsDir);
        while (mountPoints().includes(real)) umount2(real, MNT_DETACH);
        rmdirSync(real);
      }
    }
    expect(existsSync(`${netnsDir}/${id}`)).toBe(false);
    expectHostUnchanged();
  });

  test("pins and their removal propagate into a mount namespace copied earlier (shared <type>ns)", async () => {
    // Make sure <dir>/netns is already the shared mount point before the copy is made.
    unpinNamespaces(pinNamespaces({ namespacesDir: dir, types: ["net"] }).paths);
    const other = Bun.spawn(["unshare", "--mount", "--propagation", "slave", "sleep", "60"], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    let pinned: PinnedNamespaces | undefined;
    try {
      // Wait until the child is in its own mount namespace.
      const ownMnt = threadNamespaceId("mnt");
      for (let i = 0; i < 200; i++) {
        try {
          if (readlinkSync(`/proc/${other.pid}/ns/mnt`) !== ownMnt && run(["cat", `/proc/${other.pid}/comm`]).out.trim() === "sleep") break;
        } catch {
          // not started yet
        }
        await Bun.sleep(5);
      }
      pinned = pinNamespaces({ namespacesDir: dir, types: ["net"] });
      const p = realpathSync(pinned.paths.net!);
      const inOther = (cmd: string[]) => run(["nsenter", "-t", String(other.pid), "-m", "--", ...cmd]);
      expect(inOther(["nsenter", `--net=${p}`, "ip", "-o", "link"]).out.trim().split("\n")).toHaveLength(1);
      expect(inOther(["grep", "-c", ` ${p} `, "/proc/self/mountinfo"]).out.trim()).toBe("1");
      unpinNamespaces(pinned.paths);
      pinned = undefined;
      expect(inOther(["grep", "-c", ` ${p} `, "/proc/self/mountinfo"]).out.trim()).toBe("0");
    } finally {
      if (pinned) unpinNamespaces(pinned.paths);
      other.kill();
      await other.exited;
    }
  });

  test("200 pin/unpin cycles leak no mounts, files or fds", () => {
    const cycle = () => {
      const { paths } = pinNamespaces({
        namespacesDir: dir,
        types: ["net", "ipc", "uts"],
        hostname: "cycle",
        sysctls: { "net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "99" },
      });
      unpinNamespaces(paths);
    };
    cycle(); // the first pin may create and share-mount the <type>ns directories
    // Only this test's mounts count: other processes on the machine mount and unmount meanwhile.
    const ours = () => readMountInfo().filter((m) => m.mountPoint.startsWith(`${dir}/`) || m.mountPoint === dir).length;
    const mounts = ours();
    const fds = fdCount();
    const nsFds = pinFds();
    for (let i = 0; i < 200; i++) {
      cycle();
      // No thread (a JIT worker, a GC helper) may be born inside a pod's namespaces.
      if (i % 20 === 0) expect(straysFromHost()).toEqual([]);
    }
    expect(ours()).toBe(mounts);
    expect(pinFds()).toEqual(nsFds);
    // Other threads may hold a few more or fewer meanwhile; a leak would be hundreds.
    expect(fdCount()).toBeLessThan(fds + 10);
    for (const t of ["net", "ipc", "uts"] as const) expect(readdirSync(namespaceTypeDir(dir, t))).toEqual([]);
    expectHostUnchanged();
  }, 120_000);

  test("a failure after unshare (a sysctl the kernel refuses) leaves nothing pinned and the thread home", () => {
    const cases: Array<Record<string, string>> = [
      { "net.ipv4.ip_local_port_range": "not a range" }, // write fails: EINVAL
      { "net.ipv4.no_such_sysctl": "1" }, // open fails: ENOENT
      { "net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "99999999" }, // the second one fails
    ];
    for (const sysctls of cases) {
      const mounts = readMountInfo().length;
      const fds = pinFds();
      expect(() => pinNamespaces({ namespacesDir: dir, types: ["net", "ipc", "uts"], hostname: "fails", sysctls })).toThrow(
        SyscallError,
      );
      expect(listPinned(dir, { allNames: true })).toEqual([]);
      expect(readMountInfo().length).toBe(mounts);
      expect(pinFds()).toEqual(fds);
      expectHostUnchanged();
    }
  });

  test("a pin whose id is taken fails without touching the existing one", () => {
    const first = pinNamespaces({ namespacesDir: dir, types: ["net", "uts"] });
    try {
      expect(() => pinNamespaces({ namespacesDir: dir, types: ["net", "uts"], id: first.id })).toThrow(/EEXIST/);
      expect(listPinned(dir)).toEqual([{ id: first.id, paths: first.paths, mounted: ["net", "uts"] }]);
      expect(mustRun(["nsenter", `--net=${first.paths.net}`, "ip", "-o", "link"]).split("\n")).toHaveLength(1);
    } finally {
      unpinNamespaces(first.paths);
    }
    expectHostUnchanged();
  });

  test("refusals happen before anything is created", () => {
    const fresh = mkdtempSync(join(tmpdir(), "pinned-ns-refused-"));
    try {
      const cases: Array<[Parameters<typeof pinNamespaces>[0], typeof InvalidArgumentError | typeof UnimplementedError, RegExp]> = [
        [{ types: ["net", "ipc", "uts"], sysctls: { "kernel.panic": "1" } }, InvalidArgumentError, /"kernel.panic": not a namespaced/],
        [{ types: ["ipc", "uts"], sysctls: { "net.ipv4.ip_forward": "1" } }, InvalidArgumentError, /host network/],
        [{ types: ["net", "uts"], sysctls: { "kernel.shmmax": "1" } }, InvalidArgumentError, /host IPC/],
        [{ types: ["net", "ipc"], sysctls: { "kernel.domainname": "x" } }, InvalidArgumentError, /host UTS/],
        [{ types: ["net", "ipc"], hostname: "x" }, InvalidArgumentError, /needs a new UTS/],
        [{ types: ["uts"], hostname: "x".repeat(65) }, InvalidArgumentError, /invalid host name/],
        [{ types: ["uts"], hostname: "a", sysctls: { "kernel.hostname": "b" } }, InvalidArgumentError, /conflicts/],
        [{ types: ["net"], id: "../escape" }, InvalidArgumentError, /invalid pinned namespace id/],
        [{ types: ["net", "user"] }, InvalidArgumentError, /needs uid and gid mappings/],
        [
          { types: ["net", "user"], idMappings: { uids: [{ containerID: 0, hostID: 100000, size: 65536 }], gids: [] } },
          UnimplementedError,
          /user namespace is not supported/,
        ],
        [{ types: ["net"], idMappings: { uids: [], gids: [] } }, InvalidArgumentError, /without a new user namespace/],
        [{ types: ["pid" as "net"] }, InvalidArgumentError, /invalid namespace type: pid/],
      ];
      const mounts = readMountInfo().length;
      for (const [opts, cls, re] of cases) {
        expect(() => pinNamespaces({ ...opts, namespacesDir: fresh })).toThrow(cls);
        expect(() => pinNamespaces({ ...opts, namespacesDir: fresh })).toThrow(re);
      }
      expect(readdirSync(fresh)).toEqual([]); // not even the <type>ns directories
      expect(readMountInfo().length).toBe(mounts);
      expect(pinNamespaces({ namespacesDir: fresh, types: [] }).paths).toEqual({});
    } finally {
      removeNamespacesDir(fresh);
    }
    expectHostUnchanged();
  });

  test("concurrent async callers each get their own namespaces (the pin sequence cannot interleave)", async () => {
    const pins: PinnedNamespaces[] = [];
    try {
      const results = await Promise.all(
        ["pod-x", "pod-y", "pod-z"].map(async (hostname, i) => {
          await Bun.sleep(0);
          const p = pinNamespaces({
            namespacesDir: dir,
            types: ["net", "uts"],
            hostname,
            sysctls: { "net.ipv4.ip_local_port_range": `${20000 + i} 30000` },
          });
          pins.push(p);
          // Between pins the thread is home: an await lets the others run.
          expect(hostIds()).toEqual(host);
          await Bun.sleep(1);
          return { p, hostname, i };
        }),
      );
      const inodes = new Set(results.map(({ p }) => statSync(p.paths.net!).ino));
      expect(inodes.size).toBe(3);
      for (const { p, hostname, i } of results) {
        expect(mustRun(["nsenter", `--uts=${p.paths.uts}`, "hostname"])).toBe(hostname);
        expect(mustRun(["nsenter", `--net=${p.paths.net}`, "sysctl", "-n", "net.ipv4.ip_local_port_range"])).toBe(
          `${20000 + i}\t30000`,
        );
      }
    } finally {
      for (const p of pins) unpinNamespaces(p.paths);
    }
    expect(listPinned(dir)).toEqual([]);
    expectHostUnchanged();
  });
});

describe("listPinned", () => {
  test("groups pins by id and tells leftovers (unmounted files) from live pins", () => {
    const live = pinNamespaces({ namespacesDir: dir, types: ["net", "ipc"] });
    const stale = crypto.randomUUID();
    const stalePath = namespacePath(dir, "uts", stale);
    try {
      writeFileSync(stalePath, "");
      writeFileSync(namespacePath(dir, "net", "from-ip-netns-add"), "");
      const entries = listPinned(dir);
      expect(entries).toContainEqual({ id: live.id, paths: live.paths, mounted: ["net", "ipc"] });
      expect(entries).toContainEqual({ id: stale, paths: { uts: stalePath }, mounted: [] });
      expect(entries.map((e) => e.id)).not.toContain("from-ip-netns-add");
      expect(listPinned(dir, { allNames: true }).map((e) => e.id)).toContain("from-ip-netns-add");
      expect(listPinned(join(dir, "missing"))).toEqual([]);
    } finally {
      unpinNamespaces(live.paths);
      unpinNamespaces({ uts: stalePath, net: namespacePath(dir, "net", "from-ip-netns-add") });
    }
    expect(listPinned(dir, { allNames: true })).toEqual([]);
  });
});

describe("parseMountInfo", () => {
  test("fields, optional tags and escapes", () => {
    const [m] = parseMountInfo(
      "612 25 0:4 net:[4026532290] /run/netns/with\\040space rw shared:268 master:1 - nsfs nsfs rw\n",
    );
    expect(m).toEqual({
      id: 612,
      parentId: 25,
      root: "net:[4026532290]",
      mountPoint: "/run/netns/with space",
      options: "rw",
      optional: ["shared:268", "master:1"],
      fsType: "nsfs",
      source: "nsfs",
    });
    expect(parseMountInfo("garbage\n\n")).toEqual([]);
  });
});
