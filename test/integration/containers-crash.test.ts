// kill -9 of the daemon at every step of CreateContainer (CONTAINER_CRASH_STEPS, through the
// test-only CRIO_TEST_KILL_AT hook): after a restart the container is either whole (listed,
// CREATED, and it starts, stops and goes cleanly) or gone without a trace — no storage
// container, runtime state, conmon, mount, cgroup or exit file — and kubelet's retry of the
// same CreateContainer succeeds. Root only; one daemon directory, restarted again and again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, NamespaceMode } from "../../src/proto/index.ts";
import { CONTAINER_CRASH_STEPS } from "../../src/server/runtime/create-container.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon, unmountUnder } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const CGROUP_PARENT = `/crio-ctrcrash-${tag}`;
const NS = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
const dir = tempDir("crio-ctrcrash-");
let reg: TestRegistry;
let d: Daemon | undefined;
let IMAGE = "";
let podId = "";
const pod = {
  metadata: { name: `crash-pod-${tag}`, namespace: "default", uid: `uid-${tag}`, attempt: 0 },
  logDirectory: join(dir, "podlogs"),
  linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: NS } },
};

async function start(env?: Record<string, string>): Promise<Daemon> {
  d = await startDaemon({
    dir,
    env,
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
    config: containerConfig(dir, { runtime: ['log_level = "debug"'] }),
  });
  return d;
}

const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((p) => existsSync(p));
const storageIds = () => {
  const f = join(dir, "root", "overlay-containers", "containers.json");
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Array<{ id: string }>).map((c) => c.id).filter((id) => id !== podId) : [];
};
const conmons = () =>
  readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      return argv[0]?.endsWith("conmon") && argv.some((a) => a.startsWith(`${dir}/`));
    } catch {
      return false;
    }
  });
/** Everything a container leaves while it exists; all must be empty when none does. */
function traces() {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
    // The pod's own (its /dev/shm, its pins), the store's home bind mount and the ns type dirs stay.
    .filter((m) => m.startsWith(`${dir}/`) && !m.includes(podId) && m !== join(dir, "root", "overlay") && !/\/ns\/[a-z]+ns(\/|$)/.test(m));
  return {
    storage: storageIds(),
    runtime: existsSync(join(dir, "runc")) ? readdirSync(join(dir, "runc")) : [],
    conmon: conmons(),
    mounts,
    cgroups: cgroupDirs(CGROUP_PARENT).flatMap((p) => readdirSync(p, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== `crio-${podId}`).map((e) => `${p}/${e.name}`)),
    exits: existsSync(join(dir, "exits")) ? readdirSync(join(dir, "exits")) : [],
  };
}
const CLEAN = { storage: [], runtime: [], conmon: [], mounts: [], cgroups: [], exits: [] };

function ctrConfig(name: string) {
  return {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command: ["/bin/sleep", "1000"],
    logPath: `${name}.log`,
    linux: { securityContext: { namespaceOptions: NS } },
  };
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("the container crash tests need root");
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", busyboxImage({ tag: "latest" }));
  IMAGE = `${reg.host}/test/busybox:latest`;
  const first = await start();
  await first.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
  podId = (await first.runtime.call("RunPodSandbox", { config: pod }, 30_000)).podSandboxId;
  await first.stop();
  await first.cleanup();
}, 120_000);

afterAll(async () => {
  const problems: string[] = [];
  try {
    if (d === undefined || d.proc.exitCode !== null || d.proc.signalCode !== null) d = await start();
    await d.runtime.call("RemovePodSandbox", { podSandboxId: podId }, 60_000);
    await d.stop();
  } catch (e) {
    problems.push(String(e));
  }
  await d?.cleanup();
  await reg?.stop();
  unmountUnder(dir);
  for (const c of cgroupDirs(CGROUP_PARENT)) {
    try {
      rmdirSync(c);
    } catch (e) {
      problems.push(`cgroup ${c}: ${(e as Error).message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
}, 120_000);

describe("kill -9 during CreateContainer", () => {
  for (const step of CONTAINER_CRASH_STEPS) {
    const whole = step === "ctr-record";
    test(`after step ${step}: ${whole ? "the whole container" : "nothing"} after a restart, and kubelet's retry works`, async () => {
      const name = `c-${step}`;
      const dying = await start({ CRIO_TEST_KILL_AT: step });
      const err = await dying.runtime.call("CreateContainer", { podSandboxId: podId, config: ctrConfig(name), sandboxConfig: pod }, 30_000).then(() => undefined, (e) => e);
      expect(err).toBeDefined();
      await dying.exited(15_000);
      expect(dying.proc.signalCode).toBe("SIGKILL");
      await dying.cleanup();

      const live = await start();
      const listed = (await live.runtime.call("ListContainers", {})).containers;
      if (whole) {
        expect(listed.map((c: any) => [c.metadata.name, c.state])).toEqual([[name, ContainerState.CONTAINER_CREATED]]);
      } else {
        expect(listed).toEqual([]);
        expect(traces()).toEqual(CLEAN);
        expect(live.logs()).not.toContain("could not remove a half-made container");
      }
      // kubelet retries: a whole container's name is taken (ALREADY_EXISTS naming it); otherwise the retry makes it.
      let id: string;
      if (whole) {
        const again = await live.runtime.call("CreateContainer", { podSandboxId: podId, config: ctrConfig(name), sandboxConfig: pod }).then(() => undefined, (e) => e);
        expect(again?.code).toBe(6); // ALREADY_EXISTS
        id = listed[0].id;
        expect(again.details).toContain(id);
      } else {
        id = (await live.runtime.call("CreateContainer", { podSandboxId: podId, config: ctrConfig(name), sandboxConfig: pod }, 30_000)).containerId;
      }
      await live.runtime.call("StartContainer", { containerId: id });
      const pid = JSON.parse((await live.runtime.call("ContainerStatus", { containerId: id, verbose: true })).info.info).pid;
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toBe("/bin/sleep\0" + "1000\0");
      await live.runtime.call("StopContainer", { containerId: id, timeout: 0 }, 30_000);
      await live.runtime.call("RemoveContainer", { containerId: id }, 30_000);
      await waitFor(() => JSON.stringify(traces()) === JSON.stringify(CLEAN), 5000, () => `left behind: ${JSON.stringify(traces())}`);
      await live.stop();
      await live.cleanup();
    }, 60_000);
  }
});
