// Containers through the compiled daemon with Debian's conmon and runc, checked from outside:
// the CRI log file conmon writes, exit codes, stop escalation, state transitions and
// idempotency, exec, resources in the container's cgroup, security settings seen from inside,
// and restart recovery. Root only. Pods use the host network (no CNI needed here: the sandbox
// tests cover networking) unless a test says otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { existsSync, mkdirSync, writeFileSync, readdirSync, readlinkSync, readFileSync, renameSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, NamespaceMode } from "../../src/proto/index.ts";
import { busyboxImage } from "../lib/images.ts";
import { podmanOn } from "../lib/podman.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { pauseImage } from "../../scripts/lib/cri-bench.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const CGROUP_PARENT = `/crio-ctr-${tag}`;
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));

let reg: TestRegistry;
let d: Daemon;
let dir: string;
let IMAGE = "";
let seq = 0;

function config(dir: string): string {
  return containerConfig(dir, { image: [`pause_image = "${reg.host}/test/pause:latest"`], runtime: ["enable_pod_events = true", 'log_level = "debug"'] });
}

async function start(): Promise<Daemon> {
  return startDaemon({
    dir,
    config: config(dir),
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
  });
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("container tests need root");
  for (const tool of ["/usr/bin/conmon", "/usr/sbin/runc"]) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: apt-get install -y ${tool.endsWith("conmon") ? "conmon" : "runc"}`);
  }
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", busyboxImage({ tag: "latest", config: { StopSignal: "SIGUSR1" } }));
  IMAGE = `${reg.host}/test/busybox:latest`;
  await pushImage(reg.url, "test/pause", pauseImage());
  dir = tempDir("crio-ctr-");
  d = await start();
  await d.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
}, 120_000);

afterAll(async () => {
  const problems: string[] = [];
  try {
    for (const p of (await d.runtime.call("ListPodSandbox", {})).items) {
      await d.runtime.call("RemovePodSandbox", { podSandboxId: p.id }, 60_000).catch((e: Error) => problems.push(`RemovePodSandbox ${p.id}: ${e.message}`));
    }
    await d.stop();
  } catch (e) {
    problems.push(String(e));
  }
  // After every pod is removed nothing of theirs may be mounted. Left by design: the store's
  // private home bind mount (<root>/overlay, as containers-storage makes it) and the namespace
  // directories made shared bind mounts so pins can live in them (as CRI-O's pinns does).
  const mounts = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`));
  const leaked = mounts().filter((m) => m !== join(dir, "root", "overlay") && !/\/ns\/[a-z]+ns$/.test(m));
  if (leaked.length > 0) problems.push(`mounts left after removing every pod: ${leaked.join(", ")}`);
  for (const m of mounts().reverse()) Bun.spawnSync(["umount", "-l", m]);
  writeFileSync("/tmp/crio-ctr-last.log", d.logs());
  await d?.cleanup();
  await reg?.stop();
  for (const c of cgroupDirs(CGROUP_PARENT)) {
    try {
      rmdirSync(c);
    } catch (e) {
      problems.push(`cgroup ${c} not removable (left non-empty?): ${(e as Error).message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
}, 120_000);

function podConfig(extra: Record<string, unknown> = {}) {
  seq++;
  return {
    metadata: { name: `ctr-pod-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    logDirectory: join(dir, "pods", `p${seq}`),
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
    ...extra,
  };
}

async function runPod(extra: Record<string, unknown> = {}): Promise<{ id: string; config: any }> {
  const cfg = podConfig(extra);
  const r = await d.runtime.call("RunPodSandbox", { config: cfg }, 30_000);
  return { id: r.podSandboxId, config: cfg };
}

function ctrConfig(name: string, command: string[], extra: Record<string, unknown> = {}) {
  return {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    logPath: `${name}/0.log`,
    labels: { app: name },
    annotations: { "example.com/x": "y" },
    linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
    ...extra,
  };
}

async function create(pod: { id: string; config: any }, name: string, command: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await d.runtime.call("CreateContainer", { podSandboxId: pod.id, config: ctrConfig(name, command, extra), sandboxConfig: pod.config }, 60_000);
  return r.containerId;
}

async function status(id: string, verbose = false) {
  return d.runtime.call("ContainerStatus", { containerId: id, verbose });
}

async function waitExited(id: string, timeoutMs = 15_000) {
  await waitFor(async () => (await status(id)).status.state === ContainerState.CONTAINER_EXITED, timeoutMs, () => `container ${id} did not exit`);
  return (await status(id)).status;
}

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

describe("container lifecycle", () => {
  test("create → CREATED; start → RUNNING; exit code and CRI log from conmon", async () => {
    const pod = await runPod();
    const id = await create(pod, "echo", ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    let s = (await status(id)).status;
    expect(s.state).toBe(ContainerState.CONTAINER_CREATED);
    expect(Number(s.createdAt)).toBeGreaterThan(0);
    expect(Number(s.startedAt)).toBe(0);
    expect(s.logPath).toBe(join(pod.config.logDirectory, "echo/0.log"));
    expect(s.labels.app).toBe("echo");
    expect(s.image.image).toBe(IMAGE);
    expect(s.imageRef).toContain("@sha256:");

    await d.runtime.call("StartContainer", { containerId: id });
    s = await waitExited(id);
    expect(s.exitCode).toBe(3);
    expect(s.reason).toBe("Error");
    expect(Number(s.finishedAt)).toBeGreaterThanOrEqual(Number(s.startedAt));
    expect(Number(s.startedAt)).toBeGreaterThan(0);

    const lines = readFileSync(s.logPath, "utf8").trim().split("\n");
    const re = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) (P|F) (.*)$/;
    const parsed = lines.map((l) => re.exec(l));
    expect(parsed.every((m) => m !== null)).toBe(true);
    expect(parsed.map((m) => `${m![2]} ${m![3]} ${m![4]}`).sort()).toEqual(["stderr F to-stderr", "stdout F to-stdout"]);

    // A second start of an exited container is refused.
    expect(await codeOf(d.runtime.call("StartContainer", { containerId: id }))).toBe(grpc.status.FAILED_PRECONDITION);
    await d.runtime.call("RemoveContainer", { containerId: id });
    expect(await codeOf(status(id))).toBe(grpc.status.NOT_FOUND);
    await d.runtime.call("RemoveContainer", { containerId: id }); // idempotent
  }, 60_000);

  test("exit 0 is Completed", async () => {
    const pod = await runPod();
    const id = await create(pod, "ok", ["/bin/true"]);
    await d.runtime.call("StartContainer", { containerId: id });
    const s = await waitExited(id);
    expect(s.exitCode).toBe(0);
    expect(s.reason).toBe("Completed");
  }, 60_000);

  test("stop escalates to SIGKILL for a process ignoring the stop signal; stop is idempotent", async () => {
    const pod = await runPod();
    // The image's StopSignal is SIGUSR1, which the shell ignores here.
    const id = await create(pod, "stubborn", ["/bin/sh", "-c", "trap '' USR1 TERM; echo ready; while :; do sleep 1; done"]);
    await d.runtime.call("StartContainer", { containerId: id });
    expect((await status(id)).status.state).toBe(ContainerState.CONTAINER_RUNNING);
    expect((await status(id)).status.stopSignal).toBeGreaterThan(0);
    const t0 = Date.now();
    await d.runtime.call("StopContainer", { containerId: id, timeout: 2 }, 60_000);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    const s = (await status(id)).status;
    expect(s.state).toBe(ContainerState.CONTAINER_EXITED);
    expect(s.exitCode).toBe(137);
    await d.runtime.call("StopContainer", { containerId: id, timeout: 10 });
    expect((await status(id)).status.exitCode).toBe(137);
  }, 60_000);

  test("the stop signal reaches a process that handles it; timeout 0 kills at once", async () => {
    const pod = await runPod();
    const id = await create(pod, "polite", ["/bin/sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.2; done"]);
    await d.runtime.call("StartContainer", { containerId: id });
    await Bun.sleep(300);
    await d.runtime.call("StopContainer", { containerId: id, timeout: 20 }, 60_000);
    expect((await status(id)).status.exitCode).toBe(42);

    const id2 = await create(pod, "killed", ["/bin/sleep", "1000"]);
    await d.runtime.call("StartContainer", { containerId: id2 });
    const t0 = Date.now();
    await d.runtime.call("StopContainer", { containerId: id2, timeout: 0 }, 60_000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await status(id2)).status.exitCode).toBe(137);
  }, 60_000);

  test("remove of a running container force-stops it; a name is reusable only after remove", async () => {
    const pod = await runPod();
    const id = await create(pod, "named", ["/bin/sleep", "1000"]);
    const err = await d.runtime.call("CreateContainer", { podSandboxId: pod.id, config: ctrConfig("named", ["/bin/true"]), sandboxConfig: pod.config }).catch((e) => e);
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(err.details).toContain(id);
    await d.runtime.call("StartContainer", { containerId: id });
    const pid = JSON.parse((await status(id, true)).info.info).pid;
    expect(pid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    // conmon runs in its own cgroup beside the pod's containers (monitor_cgroup "pod" under cgroupfs).
    const monitor = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).find((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
        return argv[0]?.endsWith("conmon") && argv.includes(id) && !argv.includes("-e");
      } catch {
        return false;
      }
    });
    expect(monitor).toBeDefined();
    expect(readFileSync(`/proc/${monitor}/cgroup`, "utf8")).toContain(`:memory:${CGROUP_PARENT}/crio-conmon-${id}\n`);
    expect(readFileSync(`/proc/${pid}/cgroup`, "utf8")).toContain(`:memory:${CGROUP_PARENT}/crio-${id}\n`);
    await d.runtime.call("RemoveContainer", { containerId: id }, 60_000);
    await waitFor(() => !existsSync(`/proc/${pid}`), 5000, () => `pid ${pid} still alive after remove`);
    const again = await create(pod, "named", ["/bin/true"]);
    expect(again).not.toBe(id);
  }, 60_000);

  test("status API: GET /containers/:id and pause/unpause; `crio status containers`", async () => {
    const pod = await runPod();
    const id = await create(pod, "inspected", ["/bin/sh", "-c", "while :; do date +%s%N > /tmp/t; sleep 0.05; done"]);
    await d.runtime.call("StartContainer", { containerId: id });
    const res = await fetch(`http://localhost/containers/${id}`, { unix: d.socket } as RequestInit);
    expect(res.status).toBe(200);
    const info = await res.json() as any;
    expect(info.name).toBe(`k8s_inspected_${pod.config.metadata.name}_default_${pod.config.metadata.uid}_0`);
    expect(info.sandbox).toBe(pod.id);
    expect(info.pid).toBe(JSON.parse((await status(id, true)).info.info).pid);
    expect(info.image).toBe(IMAGE);
    expect(info.crio_annotations["io.kubernetes.cri-o.ContainerID"]).toBe(id);
    expect(info.log_path).toBe((await status(id)).status.logPath);
    expect((await fetch(`http://localhost/containers/${"f".repeat(64)}`, { unix: d.socket } as RequestInit)).status).toBe(404);
    // The CLI prints the same facts.
    const cli = Bun.spawnSync([join(import.meta.dir, "../../dist/crio-linux-amd64"), "status", "--socket", d.socket, "containers", "--id", id]);
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout.toString()).toContain(pod.id);
    // Pause freezes the process (its clock file stops changing); unpause resumes it.
    expect((await fetch(`http://localhost/pause/${id}`, { unix: d.socket } as RequestInit)).status).toBe(200);
    const pid = info.pid as number;
    await waitFor(() => /^State:\s+[SD]/m.test(readFileSync(`/proc/${pid}/status`, "utf8")), 2000, () => "not frozen");
    const frozen = readFileSync(`/sys/fs/cgroup/freezer${CGROUP_PARENT}/crio-${id}/freezer.state`, "utf8").trim();
    expect(frozen).toBe("FROZEN");
    expect((await fetch(`http://localhost/unpause/${id}`, { unix: d.socket } as RequestInit)).status).toBe(200);
    expect(readFileSync(`/sys/fs/cgroup/freezer${CGROUP_PARENT}/crio-${id}/freezer.state`, "utf8").trim()).toBe("THAWED");
  }, 60_000);

  test("podman lists the container as an external container, and not after RemoveContainer", async () => {
    const pod = await runPod();
    const id = await create(pod, "seen-by-podman", ["/bin/sleep", "1000"]);
    const podman = podmanOn(dir, d.root, d.runroot);
    const list = JSON.parse(await podman.must(["ps", "-a", "--external", "--format", "json"])) as Array<{ Id: string; Names: string[]; IsExternal?: boolean; Image?: string }>;
    const mine = list.find((c) => c.Id === id);
    expect(mine).toBeDefined();
    expect(mine!.Names).toEqual([`k8s_seen-by-podman_${pod.config.metadata.name}_default_${pod.config.metadata.uid}_0`]);
    await d.runtime.call("RemoveContainer", { containerId: id });
    const after = JSON.parse(await podman.must(["ps", "-a", "--external", "--format", "json"])) as Array<{ Id: string }>;
    expect(after.some((c) => c.Id === id)).toBe(false);
  }, 60_000);

  test("list filters: id prefix, state, pod sandbox, labels", async () => {
    const pod = await runPod();
    const a = await create(pod, "list-a", ["/bin/sleep", "1000"], { labels: { role: "a", team: "x" } });
    const b = await create(pod, "list-b", ["/bin/true"], { labels: { role: "b", team: "x" } });
    await d.runtime.call("StartContainer", { containerId: a });
    const list = async (filter: object) => (await d.runtime.call("ListContainers", { filter })).containers.map((c: any) => c.id).sort();
    expect(await list({ podSandboxId: pod.id })).toEqual([a, b].sort());
    expect(await list({ podSandboxId: pod.id.slice(0, 12) })).toEqual([a, b].sort());
    expect(await list({ id: a.slice(0, 10) })).toEqual([a]);
    expect(await list({ podSandboxId: pod.id, state: { state: ContainerState.CONTAINER_RUNNING } })).toEqual([a]);
    expect(await list({ podSandboxId: pod.id, state: { state: ContainerState.CONTAINER_CREATED } })).toEqual([b]);
    expect(await list({ labelSelector: { team: "x", role: "b" } })).toEqual([b]);
    expect(await list({ id: "ffffffffffff" })).toEqual([]);
    // The streaming variants answer the same as the lists.
    const streamed = (await d.runtime.stream("StreamContainers", { filter: { podSandboxId: pod.id } }, 5000)).flatMap((m: any) => m.containers).map((c: any) => c.id).sort();
    expect(streamed).toEqual([a, b].sort());
    const pods = (await d.runtime.stream("StreamPodSandboxes", { filter: { id: pod.id } }, 5000)).flatMap((m: any) => m.podSandboxes);
    expect(pods.map((p: any) => p.id)).toEqual([pod.id]);
    const stats = (await d.runtime.stream("StreamContainerStats", { filter: { podSandboxId: pod.id } }, 5000)).flatMap((m: any) => m.containerStats);
    expect(stats.map((s: any) => s.attributes.id).sort()).toEqual([a, b].sort()); // exited ones would be left out
    const podStats = (await d.runtime.stream("StreamPodSandboxStats", { filter: { id: pod.id } }, 5000)).flatMap((m: any) => m.podSandboxStats);
    expect(podStats.map((s: any) => s.attributes.id)).toEqual([pod.id]);
    const all = (await d.runtime.call("ListContainers", {})).containers.find((c: any) => c.id === a);
    expect(all.podSandboxId).toBe(pod.id);
    expect(all.metadata.name).toBe("list-a");
    expect(all.imageRef).toContain("@sha256:");
  }, 60_000);

  test("bad input: clear codes, nothing left behind", async () => {
    const pod = await runPod();
    const before = readdirSync(join(d.root, "overlay-containers")).length;
    const call = (podSandboxId: string, config: object) => codeOf(d.runtime.call("CreateContainer", { podSandboxId, config, sandboxConfig: pod.config }));
    expect(await call("0".repeat(64), ctrConfig("x", ["/bin/true"]))).toBe(grpc.status.NOT_FOUND);
    expect(await call(pod.id, { ...ctrConfig("x", ["/bin/true"]), image: { image: `${reg.host}/test/missing:1` } })).toBe(grpc.status.NOT_FOUND);
    expect(await call(pod.id, { ...ctrConfig("x", ["/bin/true"]), metadata: { name: "" } })).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await call(pod.id, ctrConfig("x", ["/bin/true"], { mounts: [{ containerPath: "rel", hostPath: "/tmp" }] }))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await call(pod.id, ctrConfig("x", ["/bin/true"], {
      linux: { securityContext: { capabilities: { addCapabilities: ["CAP_NOT_A_THING"] }, namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } } },
    }))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await call(pod.id, ctrConfig("x", ["/bin/true"], {
      linux: { resources: { memoryLimitInBytes: 4096 }, securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } } },
    }))).toBe(grpc.status.INVALID_ARGUMENT);
    // A runtime failure (no such executable) returns the runtime's message and leaves nothing.
    const err = await d.runtime.call("CreateContainer", { podSandboxId: pod.id, config: ctrConfig("x", ["/no/such/binary"]), sandboxConfig: pod.config }).catch((e) => e);
    expect(err.code).toBeDefined();
    expect(String(err.details)).toMatch(/no such file|not found/i);
    expect(readdirSync(join(d.root, "overlay-containers")).length).toBe(before);
    expect(await codeOf(d.runtime.call("StartContainer", { containerId: "0".repeat(64) }))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(d.runtime.call("StopContainer", { containerId: "0".repeat(64) }))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(d.runtime.call("ExecSync", { containerId: "0".repeat(64), cmd: ["true"] }))).toBe(grpc.status.NOT_FOUND);
  }, 60_000);
});

describe("exec, resources, logs", () => {
  test("ExecSync: split output, exit code; timeout reports -1 and kills; refused when not running", async () => {
    const pod = await runPod();
    const id = await create(pod, "exec", ["/bin/sleep", "1000"]);
    expect(await codeOf(d.runtime.call("ExecSync", { containerId: id, cmd: ["true"] }))).toBe(grpc.status.FAILED_PRECONDITION);
    await d.runtime.call("StartContainer", { containerId: id });
    const r = await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], timeout: 10 }, 30_000);
    expect(Buffer.from(r.stdout).toString()).toBe("out\n");
    expect(Buffer.from(r.stderr).toString()).toBe("err\n");
    expect(r.exitCode).toBe(7);
    const t0 = Date.now();
    const slow = await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", "echo started; sleep 30"], timeout: 1 }, 30_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(slow.exitCode).toBe(-1);
    // Bytes come back as they are, and each stream is capped at 16 MiB.
    const bin = await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", "echo -ne '\\0377\\0376\\0000x'"], timeout: 10 }, 30_000);
    expect([...Buffer.from(bin.stdout)]).toEqual([0xff, 0xfe, 0x00, 0x78]);
    const big = await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", "head -c 20000000 /dev/zero"], timeout: 30 }, 60_000);
    expect(big.exitCode).toBe(0);
    expect(big.stdout.length).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(big.stdout.length).toBeGreaterThan(15 * 1024 * 1024);
    const ps = await d.runtime.call("ExecSync", { containerId: id, cmd: ["ps"], timeout: 10 }, 30_000);
    expect(Buffer.from(ps.stdout).toString()).not.toContain("sleep 30");
  }, 60_000);

  test("resources land in the container's cgroup and change with UpdateContainerResources", async () => {
    const pod = await runPod();
    const id = await create(pod, "res", ["/bin/sleep", "1000"], {
      linux: {
        resources: { memoryLimitInBytes: 64 * 1024 * 1024, cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000 },
        securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } },
      },
    });
    await d.runtime.call("StartContainer", { containerId: id });
    const cg = `${CGROUP_PARENT}/crio-${id}`;
    const mem = `/sys/fs/cgroup/memory${cg}/memory.limit_in_bytes`;
    const shares = `/sys/fs/cgroup/cpu${cg}/cpu.shares`;
    expect(readFileSync(mem, "utf8").trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(shares, "utf8").trim()).toBe("512");
    let s = (await status(id)).status;
    expect(Number(s.resources.linux.memoryLimitInBytes)).toBe(64 * 1024 * 1024);
    await d.runtime.call("UpdateContainerResources", { containerId: id, linux: { memoryLimitInBytes: 128 * 1024 * 1024, cpuShares: 256 } });
    expect(readFileSync(mem, "utf8").trim()).toBe(String(128 * 1024 * 1024));
    expect(readFileSync(shares, "utf8").trim()).toBe("256");
    s = (await status(id)).status;
    expect(Number(s.resources.linux.memoryLimitInBytes)).toBe(128 * 1024 * 1024);
    expect(Number(s.resources.linux.cpuShares)).toBe(256);
    const spec = JSON.parse((await status(id, true)).info.info).runtimeSpec;
    expect(spec.linux.resources.memory.limit).toBe(128 * 1024 * 1024);
  }, 60_000);

  test("ReopenContainerLog: the log can be rotated away and conmon writes a new file", async () => {
    const pod = await runPod();
    const id = await create(pod, "logger", ["/bin/sh", "-c", "i=0; while :; do echo line$i; i=$((i+1)); sleep 0.1; done"]);
    await d.runtime.call("StartContainer", { containerId: id });
    const logPath = (await status(id)).status.logPath;
    await waitFor(() => existsSync(logPath) && readFileSync(logPath, "utf8").includes("line2"), 5000, () => "no log lines");
    renameSync(logPath, `${logPath}.1`);
    await d.runtime.call("ReopenContainerLog", { containerId: id });
    await waitFor(() => existsSync(logPath) && readFileSync(logPath, "utf8").includes(" stdout F line"), 5000, () => "new log file has no lines");
    const old = readFileSync(`${logPath}.1`, "utf8");
    const fresh = readFileSync(logPath, "utf8");
    const lastOld = Number(/line(\d+)\n$/.exec(old)![1]);
    const firstNew = Number(/line(\d+)/.exec(fresh)![1]);
    expect(firstNew).toBeGreaterThan(lastOld);
  }, 60_000);
});

describe("infra container (pod-level PID namespace)", () => {
  test("a pod sharing one PID namespace runs pause (pulled on demand); its containers see each other", async () => {
    const pod = await runPod({
      linux: {
        cgroupParent: CGROUP_PARENT,
        securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD, ipc: NamespaceMode.POD } },
      },
    });
    const info = JSON.parse((await d.runtime.call("PodSandboxStatus", { podSandboxId: pod.id, verbose: true })).info.info);
    expect(info.pid).toBeGreaterThan(0);
    const infraPid: number = info.pid;
    expect(readFileSync(`/proc/${infraPid}/cmdline`, "utf8")).toBe("/pause\0");
    // The pause image was pulled by RunPodSandbox and is pinned.
    const img = (await d.image.call("ImageStatus", { image: { image: `${reg.host}/test/pause:latest` } })).image;
    expect(img.pinned).toBe(true);
    // The infra container sits in the pod's cgroup.
    expect(readFileSync(`/proc/${infraPid}/cgroup`, "utf8")).toContain(`${CGROUP_PARENT}/crio-${pod.id}`);

    const shared = { network: NamespaceMode.NODE, pid: NamespaceMode.POD, ipc: NamespaceMode.POD };
    const a = await create(pod, "a", ["/bin/sleep", "1001"], { linux: { securityContext: { namespaceOptions: shared } } });
    const b = await create(pod, "b", ["/bin/sleep", "1002"], { linux: { securityContext: { namespaceOptions: shared } } });
    for (const c of [a, b]) await d.runtime.call("StartContainer", { containerId: c });
    const ps = Buffer.from((await d.runtime.call("ExecSync", { containerId: a, cmd: ["ps", "-o", "pid,args"], timeout: 10 }, 30_000)).stdout).toString();
    expect(ps).toMatch(/^\s*1\s+\/pause/m);
    expect(ps).toContain("sleep 1001");
    expect(ps).toContain("sleep 1002");
    expect(readlinkSync(`/proc/${infraPid}/ns/pid`)).toBe(readlinkSync(`/proc/${JSON.parse((await status(a, true)).info.info).pid}/ns/pid`));

    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 60_000);
    expect(existsSync(`/proc/${infraPid}`)).toBe(false);
    expect((await status(b)).status.state).toBe(ContainerState.CONTAINER_EXITED);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 60_000);
    expect(cgroupDirs(`${CGROUP_PARENT}/crio-${pod.id}`)).toEqual([]);
    expect(cgroupDirs(`${CGROUP_PARENT}/crio-conmon-${pod.id}`)).toEqual([]);
  }, 90_000);

  test("stopping a container of a shared PID namespace also kills the processes started in it", async () => {
    const pod = await runPod({
      linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD } } },
    });
    const shared = { network: NamespaceMode.NODE, pid: NamespaceMode.POD };
    const id = await create(pod, "with-daemon", ["/bin/sleep", "1006"], { linux: { securityContext: { namespaceOptions: shared } } });
    await d.runtime.call("StartContainer", { containerId: id });
    // A background process the exec leaves behind, in the container's cgroup.
    await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", "sleep 1007 >/dev/null 2>&1 &"], timeout: 10 }, 30_000);
    const procs = `/sys/fs/cgroup/pids${CGROUP_PARENT}/crio-${id}/cgroup.procs`;
    await waitFor(() => readFileSync(procs, "utf8").trim().split("\n").length >= 2, 5000, () => "the background process is not in the cgroup");
    const pids = readFileSync(procs, "utf8").trim().split("\n");
    await d.runtime.call("StopContainer", { containerId: id, timeout: 0 }, 30_000);
    await waitFor(() => pids.every((p) => !existsSync(`/proc/${p}`)), 5000, () => `still alive: ${pids.filter((p) => existsSync(`/proc/${p}`))}`);
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 30_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 30_000);
  }, 60_000);

  test("a pod whose pause process dies turns NOTREADY", async () => {
    const pod = await runPod({
      linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD } } },
    });
    const infraPid = JSON.parse((await d.runtime.call("PodSandboxStatus", { podSandboxId: pod.id, verbose: true })).info.info).pid;
    process.kill(infraPid, "SIGKILL");
    await waitFor(async () => (await d.runtime.call("PodSandboxStatus", { podSandboxId: pod.id })).status.state === 1, 5000, () => "pod stayed READY");
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 60_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 60_000);
  }, 60_000);
});

describe("GetContainerEvents (enable_pod_events)", () => {
  test("a stream sees CREATED, STARTED, STOPPED, DELETED for pods and containers, with the pod's statuses", async () => {
    const events: any[] = [];
    const call = (d.runtime.raw as any).GetContainerEvents({}) as grpc.ClientReadableStream<any>;
    const ended = new Promise<void>((resolve) => {
      call.on("data", (e) => events.push(e));
      call.on("error", () => resolve());
      call.on("end", () => resolve());
    });
    await Bun.sleep(100); // the stream is registered
    const pod = await runPod();
    const id = await create(pod, "evented", ["/bin/sh", "-c", "sleep 0.2; exit 4"]);
    await d.runtime.call("StartContainer", { containerId: id });
    await waitExited(id);
    await d.runtime.call("RemoveContainer", { containerId: id });
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 30_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 30_000);
    await waitFor(() => events.some((e) => e.containerId === pod.id && e.containerEventType === 3), 5000, () => `events: ${JSON.stringify(events.map((e) => [e.containerId.slice(0, 6), e.containerEventType]))}`);
    call.cancel();
    await ended;
    const seq = events.filter((e) => e.containerId === id || e.containerId === pod.id).map((e) => `${e.containerId === id ? "ctr" : "pod"}:${e.containerEventType}`);
    expect(seq).toEqual(["pod:0", "pod:1", "ctr:0", "ctr:1", "ctr:2", "ctr:3", "pod:2", "pod:3"]);
    const stopped = events.find((e) => e.containerId === id && e.containerEventType === 2);
    expect(stopped.podSandboxStatus.id).toBe(pod.id);
    expect(stopped.containersStatuses.find((c: any) => c.id === id).exitCode).toBe(4);
    expect(Number(stopped.createdAt)).toBeGreaterThan(0);
    // PodSandboxStatus carries the containers' statuses and a timestamp with enable_pod_events.
    const pod2 = await runPod();
    const c2 = await create(pod2, "listed", ["/bin/true"]);
    const st = await d.runtime.call("PodSandboxStatus", { podSandboxId: pod2.id });
    expect(st.containersStatuses.map((c: any) => c.id)).toEqual([c2]);
    expect(Number(st.timestamp)).toBeGreaterThan(0);
  }, 60_000);
});

describe("namespaces and mounts", () => {
  test("pid TARGET joins another container's PID namespace; pid NODE sees the host's", async () => {
    const pod = await runPod();
    const a = await create(pod, "target", ["/bin/sleep", "1003"]);
    await d.runtime.call("StartContainer", { containerId: a });
    const b = await create(pod, "joiner", ["/bin/sleep", "1004"], {
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.TARGET, targetId: a } } },
    });
    await d.runtime.call("StartContainer", { containerId: b });
    const ps = Buffer.from((await d.runtime.call("ExecSync", { containerId: b, cmd: ["ps", "-o", "args"], timeout: 10 }, 30_000)).stdout).toString();
    expect(ps).toContain("sleep 1003");
    expect(ps).toContain("sleep 1004");
    const node = await create(pod, "host-pid", ["/bin/sleep", "1005"], {
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.NODE } } },
    });
    await d.runtime.call("StartContainer", { containerId: node });
    const pid = JSON.parse((await status(node, true)).info.info).pid;
    expect(readlinkSync(`/proc/${pid}/ns/pid`)).toBe(readlinkSync("/proc/self/ns/pid"));
    // A target that is not running is refused.
    const err = await d.runtime.call("CreateContainer", {
      podSandboxId: pod.id,
      config: ctrConfig("bad-target", ["/bin/true"], { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.TARGET, targetId: "f".repeat(64) } } } }),
      sandboxConfig: pod.config,
    }).catch((e) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
  }, 60_000);

  test("recursive read-only bind mount: submounts are read-only too", async () => {
    const src = join(dir, `rro-${tag}`);
    mkdirSync(join(src, "sub"), { recursive: true });
    expect(Bun.spawnSync(["mount", "-t", "tmpfs", "tmpfs", join(src, "sub")]).exitCode).toBe(0);
    try {
      const pod = await runPod();
      const mounts = (recursiveReadOnly: boolean) => [{ containerPath: "/data", hostPath: src, readonly: true, recursiveReadOnly, propagation: 0 }];
      const run = async (name: string, rro: boolean) => {
        const id = await create(pod, name, ["/bin/sh", "-c", "touch /data/sub/x && echo writable || echo refused"], { mounts: mounts(rro) });
        await d.runtime.call("StartContainer", { containerId: id });
        const s = await waitExited(id);
        return readFileSync(s.logPath, "utf8");
      };
      expect(await run("ro-only", false)).toContain("writable"); // plain read-only leaves submounts writable
      expect(await run("rro", true)).toContain("refused");
    } finally {
      Bun.spawnSync(["umount", "-l", join(src, "sub")]);
    }
  }, 60_000);
});

describe("restart", () => {
  test("kill -9 of the daemon: running and exited containers come back; exits while down are picked up", async () => {
    const pod = await runPod();
    const running = await create(pod, "survivor", ["/bin/sleep", "1000"]);
    const exited = await create(pod, "done", ["/bin/sh", "-c", "exit 5"]);
    const laterExit = await create(pod, "later", ["/bin/sh", "-c", "sleep 2; exit 9"]);
    const created = await create(pod, "never-started", ["/bin/true"]);
    for (const c of [running, exited, laterExit]) await d.runtime.call("StartContainer", { containerId: c });
    await waitExited(exited);
    const pid = JSON.parse((await status(running, true)).info.info).pid;
    d.proc.kill("SIGKILL");
    await d.proc.exited;
    expect(existsSync(`/proc/${pid}`)).toBe(true); // conmon keeps it running
    await Bun.sleep(2500); // "later" exits while no daemon runs
    d = await start();
    const st = async (c: string) => (await status(c)).status;
    expect((await st(running)).state).toBe(ContainerState.CONTAINER_RUNNING);
    expect((await st(exited)).exitCode).toBe(5);
    const l = await st(laterExit);
    expect(l.state).toBe(ContainerState.CONTAINER_EXITED);
    expect(l.exitCode).toBe(9);
    expect((await st(created)).state).toBe(ContainerState.CONTAINER_CREATED);
    await d.runtime.call("StartContainer", { containerId: created });
    expect((await waitExited(created)).exitCode).toBe(0);
    await d.runtime.call("StopContainer", { containerId: running, timeout: 0 }, 30_000);
    expect((await st(running)).exitCode).toBe(137);
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 60_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 60_000);
    expect((await d.runtime.call("ListContainers", { filter: { podSandboxId: pod.id } })).containers).toEqual([]);
  }, 90_000);

  test("StopPodSandbox stops the pod's containers; RemovePodSandbox removes them", async () => {
    const pod = await runPod();
    const a = await create(pod, "a", ["/bin/sleep", "1000"]);
    await d.runtime.call("StartContainer", { containerId: a });
    const pid = JSON.parse((await status(a, true)).info.info).pid;
    await d.runtime.call("StopPodSandbox", { podSandboxId: pod.id }, 60_000);
    expect((await status(a)).status.state).toBe(ContainerState.CONTAINER_EXITED);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(await codeOf(d.runtime.call("CreateContainer", { podSandboxId: pod.id, config: ctrConfig("b", ["/bin/true"]), sandboxConfig: pod.config }))).toBe(grpc.status.FAILED_PRECONDITION);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: pod.id }, 60_000);
    expect(await codeOf(status(a))).toBe(grpc.status.NOT_FOUND);
    expect(cgroupDirs(`${CGROUP_PARENT}/crio-${a}`)).toEqual([]);
  }, 60_000);
});
