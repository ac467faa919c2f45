// The pause image comes from a registry that wants credentials: RunPodSandbox of a pod that needs
// an infra container pulls it with pause_image_auth_file (and only that file), fails clearly and
// leaves nothing while the file is missing, and works once it is there.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NamespaceMode } from "../../src/proto/index.ts";
import { pauseImage } from "../../scripts/lib/cri-bench.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { containerConfig, startDaemon, tempDir, type Daemon, unmountUnder } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const CGROUP_PARENT = `/crio-infraauth-${tag}`;
const dir = tempDir("crio-infraauth-");
const authFile = join(dir, "pause-auth.json");
let reg: TestRegistry;
let d: Daemon;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests need root");
  reg = await startRegistry({ auth: "htpasswd" });
  await pushImage(reg.url, "private/pause", pauseImage(), { username: reg.username!, password: reg.password! });
  d = await startDaemon({
    dir,
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
    config: containerConfig(dir, { image: [`pause_image = "${reg.host}/private/pause:latest"`, `pause_image_auth_file = ${JSON.stringify(authFile)}`] }),
  });
}, 60_000);

afterAll(async () => {
  await d?.stop().catch(() => {});
  await d?.cleanup();
  await reg?.stop();
  unmountUnder(dir);
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const c = join("/sys/fs/cgroup", h, CGROUP_PARENT);
    if (existsSync(c)) rmdirSync(c);
  }
  rmSync(dir, { recursive: true, force: true });
});

const pod = (n: number) => ({
  metadata: { name: `auth-${tag}-${n}`, namespace: "default", uid: `uid-${tag}-${n}`, attempt: 0 },
  logDirectory: join(dir, "pods", String(n)),
  linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD } } },
});

describe("pause_image_auth_file", () => {
  test("without the file the pull is refused by the registry and nothing is left; with it the pod runs pause", async () => {
    const err = await d.runtime.call("RunPodSandbox", { config: pod(1) }, 30_000).catch((e) => e);
    expect(err.code).toBeDefined();
    expect(String(err.details)).toMatch(/unauthorized|authentication required|401/i);
    expect((await d.runtime.call("ListPodSandbox", {})).items).toEqual([]);
    const records = join(d.root, "overlay-containers", "containers.json");
    expect(existsSync(records) ? JSON.parse(readFileSync(records, "utf8")) : []).toEqual([]);

    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString("base64");
    writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth } } }), { mode: 0o600 });
    const { podSandboxId } = await d.runtime.call("RunPodSandbox", { config: pod(2) }, 30_000);
    const info = JSON.parse((await d.runtime.call("PodSandboxStatus", { podSandboxId, verbose: true })).info.info);
    expect(readFileSync(`/proc/${info.pid}/cmdline`, "utf8")).toBe("/pause\0");
    // The password never reaches the log.
    expect(d.logs()).not.toContain(reg.password!);
    await d.runtime.call("StopPodSandbox", { podSandboxId }, 30_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId }, 30_000);
  }, 60_000);
});
