// Exec, Attach and PortForward end to end: the RPC hands out a URL of the daemon's streaming
// server, and an independent SPDY client (Go, on Debian's moby/spdystream, as client-go's) or
// Bun's WebSocket speaks to it, against real containers under conmon + runc. Port-forward goes
// into a pod's own network namespace (a loopback-only CNI network) to an echo server there.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NamespaceMode } from "../../src/proto/index.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { spdyClientBinary } from "../tools/spdyclient.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon, unmountUnder } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const CGROUP_PARENT = `/crio-stream-${tag}`;
const dir = tempDir("crio-stream-");
let reg: TestRegistry;
let d: Daemon;
let IMAGE = "";
let client = "";
let seq = 0;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("the streaming tests need root");
  if (!existsSync("/usr/lib/cni/loopback")) throw new Error("/usr/lib/cni/loopback is missing: apt-get install containernetworking-plugins");
  client = await spdyClientBinary();
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", busyboxImage({ tag: "latest" }));
  IMAGE = `${reg.host}/test/busybox:latest`;
  mkdirSync(join(dir, "net.d"), { recursive: true });
  // Pods get their own network namespace with only lo: enough for port-forward to localhost.
  writeFileSync(join(dir, "net.d", "10-lo.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: `lo-${tag}`, plugins: [{ type: "loopback" }] }));
  d = await startDaemon({
    dir,
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
    config: containerConfig(dir),
  });
  await waitFor(async () => (await d.runtime.call("Status", {})).status.conditions.find((c: any) => c.type === "NetworkReady").status === true, 10_000, () => "NetworkReady stayed false");
  await d.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
}, 120_000);

afterAll(async () => {
  const problems: string[] = [];
  try {
    for (const p of (await d.runtime.call("ListPodSandbox", {})).items) await d.runtime.call("RemovePodSandbox", { podSandboxId: p.id }, 60_000);
    await d.stop();
  } catch (e) {
    problems.push(String(e));
  }
  await d?.cleanup();
  await reg?.stop();
  unmountUnder(dir);
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const c = join("/sys/fs/cgroup", h, CGROUP_PARENT);
    if (!existsSync(c)) continue;
    try {
      rmdirSync(c);
    } catch (e) {
      problems.push(`${c}: ${(e as Error).message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(problems.join("; "));
}, 120_000);

async function runPod(network: NamespaceMode) {
  seq++;
  const config = {
    metadata: { name: `stream-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    logDirectory: join(dir, "pods", String(seq)),
    linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: { network, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
  };
  const { podSandboxId } = await d.runtime.call("RunPodSandbox", { config }, 30_000);
  return { id: podSandboxId as string, config };
}

async function runContainer(pod: { id: string; config: any }, name: string, command: string[], extra: Record<string, unknown> = {}) {
  const network = pod.config.linux.securityContext.namespaceOptions.network;
  const { containerId } = await d.runtime.call("CreateContainer", {
    podSandboxId: pod.id,
    config: {
      metadata: { name, attempt: 0 }, image: { image: IMAGE }, command, logPath: `${name}.log`,
      linux: { securityContext: { namespaceOptions: { network, pid: NamespaceMode.CONTAINER } } },
      ...extra,
    },
    sandboxConfig: pod.config,
  }, 30_000);
  await d.runtime.call("StartContainer", { containerId });
  return containerId as string;
}

/** Runs the Go SPDY client; returns its exit code and output. */
async function spdy(args: string[], stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([client, ...args], { stdin: new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe("Exec", () => {
  test("SPDY: stdin, stdout and stderr apart, the exit code from the v4 status", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    const id = await runContainer(pod, "exec", ["/bin/sleep", "1000"]);
    const { url } = await d.runtime.call("Exec", { containerId: id, cmd: ["/bin/sh", "-c", "cat; echo to-stderr >&2; exit 3"], stdin: true, stdout: true, stderr: true });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{8}$/);
    const r = await spdy(["exec", "-stdin", url], "hello through spdy\n");
    expect(r.stdout).toBe("hello through spdy\n");
    expect(r.stderr).toContain("to-stderr");
    expect(r.code).toBe(3);
    // The URL is single use.
    const again = await spdy(["exec", url]);
    expect(again.code).not.toBe(0);
  }, 60_000);

  test("SPDY with a terminal: the process sees a tty of the size the client sets", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    const id = await runContainer(pod, "tty", ["/bin/sleep", "1000"]);
    const { url } = await d.runtime.call("Exec", { containerId: id, cmd: ["/bin/sh", "-c", "tty; stty size"], tty: true, stdout: true });
    const r = await spdy(["exec", "-tty", "-stderr=false", "-sizes", "120x40", url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain("40 120");
  }, 60_000);

  test("WebSocket (v4.channel.k8s.io): output on channel 1, status on channel 3", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    const id = await runContainer(pod, "ws", ["/bin/sleep", "1000"]);
    const { url } = await d.runtime.call("Exec", { containerId: id, cmd: ["/bin/echo", "over websocket"], stdout: true });
    const ws = new WebSocket(url.replace(/^http/, "ws") + "?output=1&command=x", ["v4.channel.k8s.io"]);
    ws.binaryType = "arraybuffer";
    const got: Record<number, string> = {};
    await new Promise<void>((resolve, reject) => {
      ws.onmessage = (m) => {
        const b = new Uint8Array(m.data as ArrayBuffer);
        if (b.length === 0) return;
        got[b[0]!] = (got[b[0]!] ?? "") + Buffer.from(b.subarray(1)).toString();
      };
      ws.onclose = () => resolve();
      ws.onerror = (e) => reject(new Error(`websocket error: ${String(e)}`));
    });
    expect(got[1]).toBe("over websocket\n");
    expect(JSON.parse(got[3] ?? "{}").status).toBe("Success");
  }, 60_000);

  test("refused for a container that is not running, and for an empty command", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    const id = await runContainer(pod, "done", ["/bin/true"]);
    await waitFor(async () => (await d.runtime.call("ContainerStatus", { containerId: id })).status.state === 2, 10_000, () => "did not exit");
    const err = await d.runtime.call("Exec", { containerId: id, cmd: ["true"], stdout: true }).catch((e) => e);
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    const empty = await d.runtime.call("Exec", { containerId: id, cmd: [], stdout: true }).catch((e) => e);
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    const unknown = await d.runtime.call("Exec", { containerId: "f".repeat(64), cmd: ["true"], stdout: true }).catch((e) => e);
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  }, 60_000);
});

describe("Attach", () => {
  test("SPDY: what the client sends reaches the container's stdin; its output comes back", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    // stdin_once: the client's EOF closes the container's stdin, so the loop ends and the attach
    // returns after the output (with stdin kept open, CRI-O detaches at the client's EOF).
    const id = await runContainer(pod, "attached", ["/bin/sh", "-c", "while read l; do echo got:$l; done"], { stdin: true, stdinOnce: true });
    const { url } = await d.runtime.call("Attach", { containerId: id, stdin: true, stdout: true, stderr: true });
    expect(url).toContain("/attach/");
    const r = await spdy(["exec", "-stdin", url], "one\ntwo\n");
    expect(r.stdout).toContain("got:one\ngot:two\n");
    // The same lines are in the container's log.
    const log = readFileSync((await d.runtime.call("ContainerStatus", { containerId: id })).status.logPath, "utf8");
    expect(log).toContain("stdout F got:two");
  }, 60_000);
});

describe("Attach detach", () => {
  test("with stdin kept open, the client's EOF detaches and the container keeps running", async () => {
    const pod = await runPod(NamespaceMode.NODE);
    const id = await runContainer(pod, "stays", ["/bin/sh", "-c", "while read l; do echo got:$l; done"], { stdin: true });
    const { url } = await d.runtime.call("Attach", { containerId: id, stdin: true, stdout: true });
    const r = await spdy(["exec", "-stdin", "-stderr=false", url], "first\n");
    expect(r.code).toBe(0);
    await Bun.sleep(200);
    expect((await d.runtime.call("ContainerStatus", { containerId: id })).status.state).toBe(1); // RUNNING
    await waitFor(() => readFileSync(join(dir, "pods", String(seq), "stays.log"), "utf8").includes("got:first"), 5000, () => "the line never reached the container");
  }, 60_000);
});

describe("PortForward", () => {
  test("SPDY: bytes reach an echo server on localhost inside the pod's network namespace and come back", async () => {
    const pod = await runPod(NamespaceMode.POD);
    await runContainer(pod, "echo-server", ["/bin/nc", "-ll", "-p", "8080", "-e", "/bin/cat"]);
    await Bun.sleep(300); // the server listens
    const { url } = await d.runtime.call("PortForward", { podSandboxId: pod.id, port: [8080] });
    expect(url).toContain("/portforward/");
    const payload = "ping through the pod's namespace\n".repeat(2000);
    const r = await spdy(["portforward", url, "8080"], payload);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(payload);
    // Nothing listens on the host's 8080: the connection really went into the pod.
    const refused = await spdy(["portforward", (await d.runtime.call("PortForward", { podSandboxId: pod.id, port: [8081] })).url, "8081"], "x");
    expect(refused.code).not.toBe(0);
    const bad = await d.runtime.call("PortForward", { podSandboxId: "f".repeat(64), port: [80] }).catch((e) => e);
    expect(bad.code).toBe(grpc.status.NOT_FOUND);
  }, 60_000);
});
