// Root only: these tests create namespaces and mounts, and clean them up in finally blocks.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SyscallError } from "./libc.ts";
import { mount, MNT_DETACH, umount2 } from "./mount.ts";
import {
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  closeFd,
  gettid,
  makeSharedMountPoint,
  MS_BIND,
  namespaceInode,
  openNamespace,
  pinNewNamespaces,
  setns,
  threadNamespaceId,
  unmountAndRemove,
  unshare,
} from "./namespaces.ts";
import { readSysctl, writeSysctl } from "./sysctl.ts";

function mountsAt(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[4] === path);
}

/** The net namespace of every thread of this process. */
function taskNetNamespaces(): Map<string, string> {
  const out = new Map<string, string>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      out.set(tid, readlinkSync(`/proc/${process.pid}/task/${tid}/ns/net`));
    } catch {
      // a thread that exited meanwhile
    }
  }
  return out;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sys-ns-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("thread-local namespaces in Bun", () => {
  test("JavaScript runs on the main thread, and the process has other threads", () => {
    expect(gettid()).toBe(process.pid);
    expect(readdirSync(`/proc/${process.pid}/task`).length).toBeGreaterThan(1);
  });

  test("unshare moves only the JS thread; /proc/sys/net opened from it is the new namespace's; setns returns", () => {
    const host = threadNamespaceId("net");
    const hostRange = readSysctl("net.ipv4.ip_local_port_range");
    const fd = openNamespace("/proc/thread-self/ns/net");
    let inside: string | undefined;
    let others: Map<string, string> | undefined;
    let rangeInside: string | undefined;
    try {
      unshare(CLONE_NEWNET);
      try {
        inside = threadNamespaceId("net");
        others = taskNetNamespaces();
        writeSysctl("net.ipv4.ip_local_port_range", "20000 30000");
        rangeInside = readSysctl("net.ipv4.ip_local_port_range");
      } finally {
        setns(fd, CLONE_NEWNET);
      }
    } finally {
      closeFd(fd);
    }
    expect(inside).not.toBe(host);
    // Only the calling thread moved; Bun's other threads stayed in the host namespace.
    for (const [tid, ns] of others ?? []) expect(ns).toBe(Number(tid) === process.pid ? inside! : host);
    expect(rangeInside).toBe("20000\t30000");
    expect(threadNamespaceId("net")).toBe(host);
    expect(readSysctl("net.ipv4.ip_local_port_range")).toBe(hostRange);
  });

  test("a user namespace cannot be unshared in a multi-threaded process (EINVAL)", () => {
    const before = threadNamespaceId("user");
    try {
      unshare(CLONE_NEWUSER);
      throw new Error("expected an error");
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("EINVAL");
    }
    expect(threadNamespaceId("user")).toBe(before);
  });

  test("namespaceInode parses the kernel's id", () => {
    expect(namespaceInode("net:[4026531840]")).toBe(4026531840);
    expect(statSync("/proc/thread-self/ns/net").ino).toBe(namespaceInode(threadNamespaceId("net")));
    expect(() => namespaceInode("net")).toThrow();
  });
});

describe("makeSharedMountPoint", () => {
  test("bind-mounts a plain directory onto itself as shared, once however often it runs", () => {
    const d = join(dir, "netns");
    mkdirSync(d);
    try {
      makeSharedMountPoint(d);
      makeSharedMountPoint(d);
      const lines = mountsAt(d);
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(/ shared:\d+ /);
    } finally {
      while (mountsAt(d).length > 0) umount2(d, MNT_DETACH);
    }
  });
});

describe("unmountAndRemove", () => {
  test("missing files, plain files and stacked mounts", () => {
    unmountAndRemove(join(dir, "missing"));
    const plain = join(dir, "plain");
    writeFileSync(plain, "");
    unmountAndRemove(plain);
    expect(existsSync(plain)).toBe(false);

    const stacked = join(dir, "stacked");
    writeFileSync(stacked, "");
    try {
      mount("/proc/thread-self/ns/net", stacked, "none", MS_BIND);
      mount("/proc/thread-self/ns/net", stacked, "none", MS_BIND);
      expect(mountsAt(stacked).length).toBe(2);
      unmountAndRemove(stacked);
      expect(mountsAt(stacked).length).toBe(0);
      expect(existsSync(stacked)).toBe(false);
    } finally {
      while (mountsAt(stacked).length > 0) umount2(stacked, MNT_DETACH);
    }
  });

  test("refuses what is not a pin: a directory, a file with something else mounted on it", () => {
    expect(() => unmountAndRemove(dir)).toThrow(/not a pinned namespace file/);
    expect(() => unmountAndRemove("/")).toThrow(/not a pinned namespace file/);
    const other = join(dir, "other");
    const target = join(dir, "target");
    writeFileSync(other, "data");
    writeFileSync(target, "");
    try {
      mount(other, target, "none", MS_BIND);
      expect(() => unmountAndRemove(target)).toThrow(/EBUSY/);
      expect(mountsAt(target).length).toBe(1);
      expect(readFileSync(target, "utf8")).toBe("data");
    } finally {
      while (mountsAt(target).length > 0) umount2(target, MNT_DETACH);
    }
  });
});

describe("pinNewNamespaces", () => {
  test("pins net, ipc and uts; the thread returns; rollback on failure", () => {
    const ids = { net: threadNamespaceId("net"), ipc: threadNamespaceId("ipc"), uts: threadNamespaceId("uts") };
    const pins = { net: join(dir, "net"), ipc: join(dir, "ipc"), uts: join(dir, "uts") };
    try {
      pinNewNamespaces({ pins, hostname: "pinned", sysctls: [["kernel.shmmni", "1234"]] });
      for (const t of ["net", "ipc", "uts"] as const) {
        expect(threadNamespaceId(t)).toBe(ids[t]);
        expect(statSync(pins[t]).ino).not.toBe(namespaceInode(ids[t]));
        expect(mountsAt(pins[t]).length).toBe(1);
      }
      const fd = openNamespace(pins.uts);
      closeFd(fd);
    } finally {
      for (const p of Object.values(pins)) unmountAndRemove(p);
    }

    // A failure after unshare (the sysctl write) leaves nothing behind, and names the step.
    try {
      pinNewNamespaces({ pins, sysctls: [["kernel.shmmni", "100"], ["net.ipv4.ip_local_port_range", "bogus"]] });
      throw new Error("expected an error");
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).syscall).toBe("write");
      expect((err as SyscallError).code).toBe("EINVAL");
      expect((err as SyscallError).message).toContain("/proc/sys/net/ipv4/ip_local_port_range (net.ipv4.ip_local_port_range=bogus)");
    }
    try {
      pinNewNamespaces({ pins, sysctls: [["net.ipv4.no_such_sysctl", "1"]] });
      throw new Error("expected an error");
    } catch (err) {
      expect((err as SyscallError).syscall).toBe("open");
      expect((err as SyscallError).code).toBe("ENOENT");
    }
    for (const t of ["net", "ipc", "uts"] as const) {
      expect(threadNamespaceId(t)).toBe(ids[t]);
      expect(existsSync(pins[t])).toBe(false);
      expect(mountsAt(pins[t]).length).toBe(0);
    }
  });

  test("an existing target is not touched (EEXIST) and nothing else stays pinned", () => {
    const taken = join(dir, "ipc");
    writeFileSync(taken, "someone else's");
    const pins = { net: join(dir, "net"), ipc: taken };
    try {
      expect(() => pinNewNamespaces({ pins })).toThrow(/EEXIST/);
      expect(readFileSync(taken, "utf8")).toBe("someone else's");
      expect(existsSync(pins.net)).toBe(false);
      expect(mountsAt(pins.net).length).toBe(0);
    } finally {
      unmountAndRemove(pins.net);
    }
  });

  test("flags and arguments", () => {
    expect(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS).toBe(0x4c000000);
    expect(() => pinNewNamespaces({ pins: {} })).toThrow(/no namespace/);
    expect(() => pinNewNamespaces({ pins: { net: join(dir, "n") }, hostname: "x" })).toThrow(/UTS/);
    expect(existsSync(join(dir, "n"))).toBe(false);
  });
});
