// Root only: makes a network namespace with `ip netns add` (iproute2) and removes it afterwards.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import net from "node:net";
import { SyscallError } from "./libc.ts";
import { threadNamespaceId } from "./namespaces.ts";
import { closeSocketFd, connectInNetns, connectResult, loopbackAddress } from "./netns-connect.ts";

const name = `crio-nc-test-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
const nsPath = `/run/netns/${name}`;
let hostNs = "";
let server: ReturnType<typeof Bun.spawn> | undefined;
let hostListener: net.Server | undefined;
const PORT = 20000 + Math.floor(Math.random() * 20000);

function ip(...args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
}

function taskNetNamespaces(): string[] {
  const out: string[] = [];
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      out.push(readlinkSync(`/proc/${process.pid}/task/${tid}/ns/net`));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Polls a started connect until it settles: 0 or an errno. */
async function settle(fd: number, pending: boolean): Promise<number> {
  if (!pending) return 0;
  for (let i = 0; i < 500; i++) {
    const r = connectResult(fd);
    if (r !== "pending") return r;
    await Bun.sleep(2);
  }
  throw new Error("connect did not settle");
}

async function tryConnect(family: 4 | 6, port: number): Promise<number> {
  let c;
  try {
    c = connectInNetns(nsPath, family, port);
  } catch (err) {
    if (err instanceof SyscallError && err.syscall === "connect") return err.errno;
    throw err;
  }
  try {
    return await settle(c.fd, c.pending);
  } finally {
    closeSocketFd(c.fd);
  }
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("needs root (ip netns add)");
  hostNs = threadNamespaceId("net");
  ip("netns", "add", name);
  ip("-n", name, "link", "set", "lo", "up");
  // The same port is listened on in the host (on 127.0.0.1) but not in the namespace at first:
  // a connect that reached the host would succeed.
  hostListener = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => hostListener!.listen(PORT, "127.0.0.1", () => r()));
});

afterAll(async () => {
  server?.kill("SIGKILL");
  await server?.exited;
  hostListener?.close();
  try {
    ip("netns", "del", name);
  } catch { /* already gone */ }
});

describe("connectInNetns", () => {
  test("sockaddr encoding of 127.0.0.1 and ::1", () => {
    expect([...loopbackAddress(4, 0x1234)]).toEqual([2, 0, 0x12, 0x34, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    const v6 = loopbackAddress(6, 80);
    expect(v6.length).toBe(28);
    expect([...v6.subarray(0, 4)]).toEqual([10, 0, 0, 80]);
    expect(v6[23]).toBe(1);
    expect(() => loopbackAddress(4, 0)).toThrow(/invalid port/);
  });

  test("the connection is made in the namespace (refused there though the host listens); the thread is home after", async () => {
    expect(await tryConnect(4, PORT)).toBe(111); // ECONNREFUSED
    expect(await tryConnect(6, PORT)).toBe(111);
    expect(threadNamespaceId("net")).toBe(hostNs);
    expect(new Set(taskNetNamespaces())).toEqual(new Set([hostNs]));
  });

  test("a listener inside the namespace is reached over IPv4 and IPv6", async () => {
    // busybox nc -l binds the IPv6 wildcard (dual stack) and takes one connection per run: -ll keeps it listening.
    server = Bun.spawn(["ip", "netns", "exec", name, "busybox", "nc", "-ll", "-p", String(PORT), "-e", "true"], { stdout: "ignore", stderr: "ignore" });
    let r = -1;
    for (let i = 0; i < 100 && r !== 0; i++) {
      r = await tryConnect(4, PORT);
      if (r !== 0) await Bun.sleep(20);
    }
    expect(r).toBe(0);
    expect(await tryConnect(6, PORT)).toBe(0);
    expect(new Set(taskNetNamespaces())).toEqual(new Set([hostNs]));
  });

  test("null: the calling thread's own namespace (host network), where the host listener is", async () => {
    const c = connectInNetns(null, 4, PORT);
    try {
      expect(await settle(c.fd, c.pending)).toBe(0);
    } finally {
      closeSocketFd(c.fd);
    }
    expect(threadNamespaceId("net")).toBe(hostNs);
  });

  test("a missing namespace file or one that is not a network namespace: clear errors, thread unchanged", () => {
    expect(() => connectInNetns("/run/netns/does-not-exist", 4, PORT)).toThrow(/open \/run\/netns\/does-not-exist: .*ENOENT/);
    let err: unknown;
    try {
      connectInNetns("/proc/self/ns/uts", 4, PORT);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).syscall).toBe("setns");
    expect((err as SyscallError).code).toBe("EINVAL");
    expect(threadNamespaceId("net")).toBe(hostNs);
  });
});
