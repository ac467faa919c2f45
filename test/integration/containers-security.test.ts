// Container security settings seen from inside real containers (conmon + runc, through the
// compiled daemon): users and groups, capabilities, privileged, masked and read-only paths,
// read-only rootfs, no_new_privs, seccomp, bind mounts and their propagation, the sandbox's
// hostname/resolv.conf/hosts files, OOM kills, devices, OCI hooks, and crun's refusal of this
// cgroup v1 hybrid host. Root only. One daemon and a few host-network pods serve every test;
// most checks run a short container and read what it printed from its CRI log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname as hostHostname } from "node:os";
import { join } from "node:path";
import { ContainerState, MountPropagation, NamespaceMode, SecurityProfile_ProfileType, SupplementalGroupsPolicy } from "../../src/proto/index.ts";
import { splitCriLog } from "../../src/oci/cri-log.ts";
import { ALL_CAPABILITIES } from "../../src/spec/capabilities.ts";
import { DEFAULT_CAPABILITIES } from "../../src/config/schema.ts";
import { assembleImage, baseEntries, buildLayer } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { pauseImage } from "../../scripts/lib/cri-bench.ts";
import { containerConfig, startDaemon, tempDir, waitFor, type Daemon } from "./harness.ts";

const tag = Math.random().toString(16).slice(2, 8);
const CGROUP_PARENT = `/crio-sec-${tag}`;
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));
const NS = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };

let reg: TestRegistry;
let d: Daemon;
let dir: string;
let IMAGE = "";
let seq = 0;
/** The pod most tests run their containers in (host network, DNS settings, a hostname). */
let pod: Pod;
/** Host mounts the propagation test makes (unmounted by afterAll if the test failed midway). */
const hostMounts: string[] = [];

/** The image's /etc/group: app (1000) is also in audio (29) and extra (3000); nobody in extra. */
const GROUP = ["root:x:0:", "app:x:1000:", "audio:x:29:app", "extra:x:3000:app,nobody", "nogroup:x:65534:", ""].join("\n");

function config(dir: string): string {
  return containerConfig(dir, {
    image: [`pause_image = "${reg.host}/test/pause:latest"`],
    runtime: [`hooks_dir = [${JSON.stringify(join(dir, "hooks.d"))}]`, 'log_level = "debug"'],
    tables: ["[crio.runtime.runtimes.crun]", 'runtime_path = "/usr/bin/crun"', `runtime_root = ${JSON.stringify(join(dir, "crun"))}`],
  });
}

/** A hook script: writes the state it gets on stdin to <out>/<label>-<pid>.json. */
function writeHooks(): void {
  const hooksDir = join(dir, "hooks.d");
  const out = join(dir, "hook-out");
  mkdirSync(hooksDir, { recursive: true });
  mkdirSync(out, { recursive: true });
  const script = join(dir, "hook.sh");
  writeFileSync(script, '#!/bin/sh\ncat > "$1/$2-$$.json"\n');
  chmodSync(script, 0o755);
  const hook = (label: string, when: object, stages: string[]) =>
    JSON.stringify({ version: "1.0.0", hook: { path: script, args: ["hook.sh", out, label] }, when, stages });
  writeFileSync(join(hooksDir, "10-always.json"), hook("always", { always: true }, ["createRuntime"]));
  writeFileSync(join(hooksDir, "20-annotated.json"), hook("annotated", { annotations: { "^example\\.com/hook$": "^yes$" } }, ["prestart"]));
  writeFileSync(join(hooksDir, "30-never.json"), hook("never", { annotations: { "^example\\.com/hook$": "^never-set$" } }, ["prestart"]));
}

/** The states the hooks wrote, by label, for one container id. */
function hookRuns(id: string): string[] {
  const out = join(dir, "hook-out");
  return readdirSync(out)
    .filter((f) => {
      try {
        return JSON.parse(readFileSync(join(out, f), "utf8")).id === id;
      } catch {
        return false;
      }
    })
    .map((f) => f.slice(0, f.indexOf("-")))
    .sort();
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("container security tests need root");
  for (const [tool, pkg] of [["/usr/bin/conmon", "conmon"], ["/usr/sbin/runc", "runc"], ["/usr/bin/crun", "crun"], ["/bin/busybox", "busybox-static"]]) {
    if (!existsSync(tool!)) throw new Error(`${tool} is missing: apt-get install -y ${pkg}`);
  }
  reg = await startRegistry();
  // busybox with group memberships for app and nobody, and a file to mask.
  const extra = buildLayer([{ name: "etc/" }, { name: "etc/group", data: GROUP }, { name: "etc/secret", data: "top secret\n" }], "oci", "gzip");
  await pushImage(reg.url, "test/busybox-sec", assembleImage([buildLayer(baseEntries(), "oci", "gzip"), extra], { history: ["busybox", "groups"] }));
  IMAGE = `${reg.host}/test/busybox-sec:latest`;
  await pushImage(reg.url, "test/pause", pauseImage());
  dir = tempDir("crio-sec-");
  writeHooks();
  d = await startDaemon({
    dir,
    config: config(dir),
    registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`,
  });
  await d.image.call("PullImage", { image: { image: IMAGE } }, 60_000);
  pod = await runPod({ dnsConfig: { servers: ["127.0.0.53"], searches: ["sec.example.test"], options: ["ndots:2"] }, hostname: `sec-host-${tag}` });
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
  for (const m of hostMounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
  const mounts = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`));
  const leaked = mounts().filter((m) => m !== join(dir, "root", "overlay") && !/\/ns\/[a-z]+ns$/.test(m));
  if (leaked.length > 0) problems.push(`mounts left after removing every pod: ${leaked.join(", ")}`);
  for (const m of mounts().reverse()) Bun.spawnSync(["umount", "-l", m]);
  if (d) writeFileSync("/tmp/crio-sec-last.log", d.logs());
  await d?.cleanup();
  await reg?.stop();
  for (const c of cgroupDirs(CGROUP_PARENT)) {
    try {
      rmdirSync(c);
    } catch (e) {
      problems.push(`cgroup ${c} not removable (left non-empty?): ${(e as Error).message}`);
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join("; ")}`);
}, 120_000);

interface Pod {
  id: string;
  config: any;
}

async function runPod(extra: Record<string, unknown> = {}): Promise<Pod> {
  seq++;
  const cfg = {
    metadata: { name: `sec-pod-${tag}-${seq}`, namespace: "default", uid: `uid-${tag}-${seq}`, attempt: 0 },
    logDirectory: join(dir, "pods", `p${seq}`),
    linux: { cgroupParent: CGROUP_PARENT, securityContext: { namespaceOptions: NS } },
    ...extra,
  };
  const r = await d.runtime.call("RunPodSandbox", { config: cfg, runtimeHandler: (extra.runtimeHandler as string) ?? "" }, 30_000);
  return { id: r.podSandboxId, config: cfg };
}

interface CtrOptions {
  /** Merged into linux.securityContext (namespace options are always the pod's). */
  sc?: Record<string, unknown>;
  resources?: Record<string, unknown>;
  /** Other ContainerConfig fields (mounts, devices, annotations, ...). */
  extra?: Record<string, unknown>;
}

function ctrConfig(name: string, command: string[], o: CtrOptions = {}) {
  return {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    logPath: `${name}.log`,
    linux: { ...(o.resources ? { resources: o.resources } : {}), securityContext: { namespaceOptions: NS, ...o.sc } },
    ...o.extra,
  };
}

async function create(pod: Pod, name: string, command: string[], o: CtrOptions = {}): Promise<string> {
  const r = await d.runtime.call("CreateContainer", { podSandboxId: pod.id, config: ctrConfig(name, command, o), sandboxConfig: pod.config }, 60_000);
  return r.containerId;
}

/** The gRPC code CreateContainer fails with (undefined when it succeeds), and the message. */
async function createError(pod: Pod, name: string, command: string[], o: CtrOptions = {}): Promise<{ code?: number; details: string }> {
  try {
    await create(pod, name, command, o);
    return { details: "" };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
}

async function status(id: string) {
  return (await d.runtime.call("ContainerStatus", { containerId: id })).status;
}

async function waitExited(id: string, timeoutMs = 20_000) {
  await waitFor(async () => (await status(id)).state === ContainerState.CONTAINER_EXITED, timeoutMs, () => `container ${id} did not exit`);
  return status(id);
}

/** Runs `script` under /bin/sh to its end; its exit code and output (from the CRI log). */
async function run(pod: Pod, name: string, script: string, o: CtrOptions = {}) {
  const id = await create(pod, name, ["/bin/sh", "-c", script], o);
  await d.runtime.call("StartContainer", { containerId: id }, 30_000);
  const s = await waitExited(id);
  const log = splitCriLog(existsSync(s.logPath) ? readFileSync(s.logPath, "utf8") : "");
  return { id, status: s, exitCode: s.exitCode as number, out: log.stdout, err: log.stderr };
}

/** `sh -c` in a running container through ExecSync. */
async function exec(id: string, script: string) {
  const r = await d.runtime.call("ExecSync", { containerId: id, cmd: ["/bin/sh", "-c", script], timeout: 10 }, 30_000);
  return { exitCode: r.exitCode as number, out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString() };
}

/** A field of /proc/self/status as the container printed it. */
function statusField(text: string, field: string): string {
  const m = new RegExp(`^${field}:\\s*(\\S+)`, "m").exec(text);
  if (!m) throw new Error(`no ${field} in:\n${text}`);
  return m[1]!;
}

function capMask(caps: readonly string[]): bigint {
  let mask = 0n;
  for (const c of caps) {
    const i = ALL_CAPABILITIES.indexOf(c.startsWith("CAP_") ? c : `CAP_${c}`);
    if (i < 0) throw new Error(`unknown capability ${c}`);
    mask |= 1n << BigInt(i);
  }
  return mask;
}

const hex = (s: string) => BigInt(`0x${s}`);
/** The bounding set of this process, which started the daemon: privileged gets exactly this. */
const daemonBounding = () => hex(statusField(readFileSync("/proc/self/status", "utf8"), "CapBnd"));
const CAPS = "grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status";
const ROOT = { runAsUser: { value: 0 } };

/** `id` output → { uid, gid, groups } with names, groups sorted by number. */
function parseId(text: string) {
  const m = /uid=(\S+) gid=(\S+)(?: groups=(\S+))?/.exec(text);
  if (!m) throw new Error(`not id output: ${text}`);
  const groups = (m[3] ?? "").split(",").filter((g) => g !== "").sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  return { uid: m[1], gid: m[2], groups };
}

describe("users and groups", () => {
  test("image USER, run_as_user/group, run_as_username and supplemental groups (Merge and Strict) in `id` and ContainerStatus.user", async () => {
    const cases = await Promise.all([
      run(pod, "user-image", "id"),
      run(pod, "user-name", "id", { sc: { runAsUsername: "nobody" } }),
      run(pod, "user-merge", "id", { sc: { runAsUser: { value: 1000 }, runAsGroup: { value: 4000 }, supplementalGroups: [5000, 5001] } }),
      run(pod, "user-strict", "id", {
        sc: { runAsUser: { value: 1000 }, runAsGroup: { value: 4000 }, supplementalGroups: [5000], supplementalGroupsPolicy: SupplementalGroupsPolicy.Strict },
      }),
      run(pod, "user-root", "id", { sc: ROOT }),
      run(pod, "user-unknown-uid", "id", { sc: { runAsUser: { value: 4242 } } }),
    ]);
    const [image, named, merge, strict, root, unknown] = cases;
    for (const c of cases) expect(c.exitCode).toBe(0);
    // The image's USER is "1000": app, with its primary group and its groups from /etc/group.
    expect(parseId(image!.out)).toEqual({ uid: "1000(app)", gid: "1000(app)", groups: ["29(audio)", "1000(app)", "3000(extra)"] });
    expect(parseId(named!.out)).toEqual({ uid: "65534(nobody)", gid: "65534(nogroup)", groups: ["3000(extra)", "65534(nogroup)"] });
    // run_as_group replaces the primary group; Merge keeps the image's groups for the user.
    expect(parseId(merge!.out)).toEqual({ uid: "1000(app)", gid: "4000", groups: ["29(audio)", "3000(extra)", "4000", "5000", "5001"] });
    // Strict: only the primary group and the request's.
    expect(parseId(strict!.out)).toEqual({ uid: "1000(app)", gid: "4000", groups: ["4000", "5000"] });
    expect(parseId(root!.out)).toEqual({ uid: "0(root)", gid: "0(root)", groups: ["0(root)"] });
    // A uid the image does not know runs with gid 0 and no extra groups.
    expect(parseId(unknown!.out)).toEqual({ uid: "4242", gid: "0(root)", groups: ["0(root)"] });

    const user = (s: any) => ({
      uid: Number(s.user.linux.uid),
      gid: Number(s.user.linux.gid),
      groups: s.user.linux.supplementalGroups.map(Number).sort((a: number, b: number) => a - b),
    });
    expect(user(image!.status)).toEqual({ uid: 1000, gid: 1000, groups: [29, 1000, 3000] });
    expect(user(named!.status)).toEqual({ uid: 65534, gid: 65534, groups: [3000, 65534] });
    expect(user(merge!.status)).toEqual({ uid: 1000, gid: 4000, groups: [29, 3000, 4000, 5000, 5001] });
    expect(user(strict!.status)).toEqual({ uid: 1000, gid: 4000, groups: [4000, 5000] });
    expect(user(root!.status)).toEqual({ uid: 0, gid: 0, groups: [0] });
  }, 60_000);

  test("an unknown run_as_username, or run_as_group without a user, is INVALID_ARGUMENT and leaves nothing", async () => {
    const before = readdirSync(join(d.root, "overlay-containers")).length;
    const ghost = await createError(pod, "ghost", ["id"], { sc: { runAsUsername: "ghost" } });
    expect(ghost.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(ghost.details).toContain("ghost");
    expect((await createError(pod, "group-only", ["id"], { sc: { runAsGroup: { value: 5 } } })).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(readdirSync(join(d.root, "overlay-containers")).length).toBe(before);
  }, 30_000);
});

describe("capabilities, privileged, no_new_privs, seccomp", () => {
  test("the default set is default_capabilities; add, drop and ALL change it; a non-root user has none effective", async () => {
    const [def, addDrop, dropAll, addAll, onlyChown, nonRoot] = await Promise.all([
      run(pod, "caps-default", CAPS, { sc: ROOT }),
      run(pod, "caps-add-drop", CAPS, { sc: { ...ROOT, capabilities: { addCapabilities: ["NET_ADMIN", "CAP_SYS_TIME"], dropCapabilities: ["KILL", "CAP_CHOWN"] } } }),
      run(pod, "caps-drop-all", `${CAPS}; touch /tmp/f; chown 1000 /tmp/f && echo chown-ok`, { sc: { ...ROOT, capabilities: { dropCapabilities: ["ALL"] } } }),
      run(pod, "caps-add-all", CAPS, { sc: { ...ROOT, capabilities: { addCapabilities: ["ALL"] } } }),
      run(pod, "caps-only-chown", `${CAPS}; touch /tmp/f; chown 1000 /tmp/f && echo chown-ok`, {
        sc: { ...ROOT, capabilities: { addCapabilities: ["chown"], dropCapabilities: ["ALL"] } },
      }),
      run(pod, "caps-nonroot", CAPS),
    ]);
    const expectCaps = (r: { out: string }, mask: bigint, effective = mask) => {
      expect(hex(statusField(r.out, "CapBnd"))).toBe(mask);
      expect(hex(statusField(r.out, "CapPrm"))).toBe(effective);
      expect(hex(statusField(r.out, "CapEff"))).toBe(effective);
      expect(hex(statusField(r.out, "CapAmb"))).toBe(0n);
    };
    const defaults = capMask(DEFAULT_CAPABILITIES);
    expect(defaults).toBe(0x5fbn); // the nine capabilities of CRI-O's default_capabilities
    expectCaps(def, defaults);
    expectCaps(addDrop, (defaults | capMask(["NET_ADMIN", "SYS_TIME"])) & ~capMask(["KILL", "CHOWN"]));
    expectCaps(dropAll, 0n);
    expect(dropAll.out).not.toContain("chown-ok");
    expect(dropAll.err).toMatch(/Operation not permitted/);
    // ALL is every capability the daemon holds (this host's root lacks CAP_SYS_RESOURCE).
    expectCaps(addAll, daemonBounding());
    expectCaps(onlyChown, capMask(["CHOWN"]));
    expect(onlyChown.out).toContain("chown-ok");
    // uid 1000 keeps the bounding set but has no effective or permitted capabilities.
    expectCaps(nonRoot, defaults, 0n);
  }, 60_000);

  test("an unknown capability name is INVALID_ARGUMENT", async () => {
    for (const caps of [{ addCapabilities: ["CAP_NOT_A_THING"] }, { dropCapabilities: ["bogus"] }]) {
      const e = await createError(pod, "bad-cap", ["true"], { sc: { capabilities: caps } });
      expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e.details).toMatch(/NOT_A_THING|BOGUS/);
    }
  }, 30_000);

  test("privileged: every capability the daemon holds, the host's devices, nothing masked, no seccomp", async () => {
    const script = `${CAPS}; echo devs=$(ls /dev | wc -l); echo timer=$(cat /proc/timer_list | wc -c); echo keys-mounts=$(grep -c ' /proc/keys ' /proc/self/mountinfo); grep ' /proc/sys ' /proc/self/mountinfo || echo no-proc-sys-mount`;
    const [priv, plain] = await Promise.all([
      run(pod, "privileged", script, { sc: { ...ROOT, privileged: true } }),
      run(pod, "unprivileged", script, { sc: ROOT }),
    ]);
    expect(hex(statusField(priv.out, "CapEff"))).toBe(daemonBounding());
    expect(hex(statusField(priv.out, "CapBnd"))).toBe(daemonBounding());
    expect(statusField(priv.out, "Seccomp")).toBe("0");
    const devs = (r: { out: string }) => Number(/devs=(\d+)/.exec(r.out)![1]);
    expect(devs(priv)).toBeGreaterThan(devs(plain) + 10);
    // /proc/timer_list is root-readable and non-empty on the host; masked it reads empty.
    expect(Number(/timer=(\d+)/.exec(priv.out)![1])).toBeGreaterThan(0);
    expect(Number(/timer=(\d+)/.exec(plain.out)![1])).toBe(0);
    expect(priv.out).toContain("keys-mounts=0");
    expect(priv.out).toContain("no-proc-sys-mount");
    expect(plain.out).toContain("keys-mounts=1");
    expect(plain.out).toMatch(/ \/proc\/sys ro,/);
  }, 60_000);

  test("default masked and read-only paths; the request's own masked_paths and readonly_paths add to them", async () => {
    const script = [
      "echo timer=$(cat /proc/timer_list | wc -c) keys=$(cat /proc/keys | wc -c) secret=$(cat /etc/secret | wc -c)",
      "grep -E ' /proc/(acpi|keys|timer_list|sys) ' /proc/self/mountinfo",
      "echo 1 > /proc/sys/kernel/domainname || echo proc-sys-refused",
      "echo c > /proc/sysrq-trigger || echo sysrq-refused",
      "touch /tmp/f && echo tmp-writable",
    ].join("; ");
    const [def, custom] = await Promise.all([
      run(pod, "masked-default", script, { sc: ROOT }),
      run(pod, "masked-custom", script, { sc: { ...ROOT, maskedPaths: ["/etc/secret"], readonlyPaths: ["/tmp"] } }),
    ]);
    expect(def.out).toContain("timer=0 keys=0 secret=11");
    // Masked directories get an empty read-only tmpfs, files /dev/null; /proc/sys is read-only.
    expect(def.out).toMatch(/ \/proc\/acpi ro,.* - tmpfs /);
    expect(def.out).toMatch(/ \/proc\/keys .* - devtmpfs |\/null \/proc\/keys /);
    expect(def.out).toMatch(/ \/proc\/sys ro,/);
    expect(def.out).toContain("proc-sys-refused");
    expect(def.out).toContain("sysrq-refused");
    expect(def.err).toMatch(/\/proc\/sys\/kernel\/domainname: Read-only file system/);
    expect(def.out).toContain("tmp-writable");
    // The defaults stay; the request's paths come on top.
    expect(custom.out).toContain("timer=0 keys=0 secret=0");
    expect(custom.out).toContain("proc-sys-refused");
    expect(custom.out).not.toContain("tmp-writable");
    expect(custom.err).toMatch(/\/tmp\/f: Read-only file system/);
    const spec = JSON.parse((await d.runtime.call("ContainerStatus", { containerId: custom.id, verbose: true })).info.info).runtimeSpec;
    expect(spec.linux.maskedPaths).toEqual(expect.arrayContaining(["/proc/kcore", "/proc/keys", "/proc/timer_list", "/etc/secret"]));
    expect(spec.linux.readonlyPaths).toEqual(expect.arrayContaining(["/proc/sys", "/proc/sysrq-trigger", "/tmp"]));
  }, 60_000);

  test("readonly_rootfs: writes to / and /tmp fail with EROFS (no tmpfs is added); /dev/shm stays writable", async () => {
    const r = await run(pod, "ro-root", "touch /x || echo root-refused; touch /tmp/x || echo tmp-refused; touch /dev/shm/x && echo shm-ok; echo > /etc/hostname || echo hostname-refused; grep ' / ' /proc/self/mountinfo", {
      sc: { ...ROOT, readonlyRootfs: true },
    });
    expect(r.out).toContain("root-refused");
    expect(r.out).toContain("tmp-refused");
    expect(r.out).toContain("shm-ok");
    // The sandbox's files are mounted read-only too.
    expect(r.out).toContain("hostname-refused");
    expect(r.err).toMatch(/touch: \/x: Read-only file system/);
    expect(r.err).toMatch(/touch: \/tmp\/x: Read-only file system/);
    expect(r.out).toMatch(/ \/ ro,/);
  }, 30_000);

  test("no_new_privs shows in /proc/self/status", async () => {
    const [on, off] = await Promise.all([
      run(pod, "nnp-on", CAPS, { sc: { noNewPrivs: true } }),
      run(pod, "nnp-off", CAPS),
    ]);
    expect(statusField(on.out, "NoNewPrivs")).toBe("1");
    expect(statusField(off.out, "NoNewPrivs")).toBe("0");
  }, 30_000);

  test("seccomp: RuntimeDefault by default refuses namespace creation without CAP_SYS_ADMIN; Unconfined; a Localhost profile", async () => {
    const profile = join(dir, "deny-mkdir.json");
    writeFileSync(profile, JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    }));
    const script = `${CAPS}; unshare -U true && echo userns-ok; mkdir /tmp/d && echo mkdir-ok`;
    const [none, runtimeDefault, sysAdmin, unconfined, localhost, legacyLocalhost] = await Promise.all([
      run(pod, "seccomp-none", script, { sc: ROOT }),
      run(pod, "seccomp-default", script, { sc: { ...ROOT, seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } }),
      run(pod, "seccomp-sysadmin", "unshare -m true && echo mountns-ok", { sc: { ...ROOT, capabilities: { addCapabilities: ["SYS_ADMIN"] } } }),
      run(pod, "seccomp-unconfined", script, { sc: { ...ROOT, seccomp: { profileType: SecurityProfile_ProfileType.Unconfined } } }),
      run(pod, "seccomp-localhost", script, { sc: { ...ROOT, seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: profile } } }),
      run(pod, "seccomp-legacy", script, { sc: { ...ROOT, seccompProfilePath: `localhost/${profile}` } }),
    ]);
    for (const r of [none, runtimeDefault]) {
      expect(statusField(r.out, "Seccomp")).toBe("2");
      expect(r.out).not.toContain("userns-ok");
      // CRI-O takes unshare out of the profile's allow list unless the container holds
      // CAP_SYS_ADMIN: it then gets the profile's default action, ENOSYS.
      expect(r.err).toMatch(/unshare.*Function not implemented/);
      expect(r.out).toContain("mkdir-ok");
    }
    // With CAP_SYS_ADMIN the default profile lets unshare through.
    expect(sysAdmin.out).toContain("mountns-ok");
    expect(statusField(unconfined.out, "Seccomp")).toBe("0");
    expect(unconfined.out).toContain("userns-ok");
    expect(unconfined.out).toContain("mkdir-ok");
    for (const r of [localhost, legacyLocalhost]) {
      expect(statusField(r.out, "Seccomp")).toBe("2");
      expect(r.out).toContain("userns-ok");
      expect(r.out).not.toContain("mkdir-ok");
      expect(r.err).toMatch(/mkdir.*Operation not permitted/);
    }
  }, 60_000);

  test("ExecSync runs with the container's user, capabilities, no_new_privs and seccomp", async () => {
    const id = await create(pod, "exec-sec", ["/bin/sleep", "1000"], {
      sc: { runAsUser: { value: 1000 }, supplementalGroups: [7000], noNewPrivs: true, capabilities: { dropCapabilities: ["ALL"] } },
    });
    await d.runtime.call("StartContainer", { containerId: id }, 30_000);
    try {
      const r = await exec(id, `id; ${CAPS}`);
      expect(r.exitCode).toBe(0);
      expect(parseId(r.out)).toEqual({ uid: "1000(app)", gid: "1000(app)", groups: ["29(audio)", "1000(app)", "3000(extra)", "7000"] });
      expect(hex(statusField(r.out, "CapBnd"))).toBe(0n);
      expect(statusField(r.out, "NoNewPrivs")).toBe("1");
      expect(statusField(r.out, "Seccomp")).toBe("2");
    } finally {
      await d.runtime.call("RemoveContainer", { containerId: id }, 60_000);
    }
  }, 30_000);

  test("a missing or invalid Localhost seccomp profile is INVALID_ARGUMENT and leaves nothing (privileged ignores it)", async () => {
    const before = readdirSync(join(d.root, "overlay-containers")).length;
    const bad = join(dir, "bad-profile.json");
    writeFileSync(bad, "{ not json");
    const missing = join(dir, "no-such-profile.json");
    const m = await createError(pod, "seccomp-missing", ["true"], { sc: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: missing } } });
    expect(m.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(m.details).toContain(missing);
    const b = await createError(pod, "seccomp-bad", ["true"], { sc: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: bad } } });
    expect(b.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(b.details).toContain(bad);
    const e = await createError(pod, "seccomp-empty", ["true"], { sc: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost } } });
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(readdirSync(join(d.root, "overlay-containers")).length).toBe(before);
    // A privileged container runs unconfined whatever profile it names, so the file is not read.
    const priv = await run(pod, "seccomp-missing-privileged", CAPS, {
      sc: { ...ROOT, privileged: true, seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: missing } },
    });
    expect(statusField(priv.out, "Seccomp")).toBe("0");
  }, 30_000);
});

describe("mounts, sandbox files, devices", () => {
  test("a read-only bind mount; a missing host path is created as a directory", async () => {
    const src = join(dir, "vol", "ro");
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, "hello"), "from the host\n");
    const missing = join(dir, "vol", "missing", "deep");
    const r = await run(pod, "binds", "cat /ro/hello; touch /ro/x || echo ro-refused; echo made > /made/file && echo made-ok; grep -E ' /(ro|made) ' /proc/self/mountinfo", {
      sc: ROOT,
      extra: { mounts: [{ containerPath: "/ro", hostPath: src, readonly: true }, { containerPath: "/made", hostPath: missing }] },
    });
    expect(r.out).toContain("from the host");
    expect(r.out).toContain("ro-refused");
    expect(r.err).toMatch(/\/ro\/x: Read-only file system/);
    expect(r.out).toContain("made-ok");
    expect(readFileSync(join(missing, "file"), "utf8")).toBe("made\n");
    expect(existsSync(join(src, "x"))).toBe(false);
    // Default propagation is private (no shared:/master: tag on the container's mounts).
    const lines = r.out.split("\n").filter((l) => / \/(ro|made) /.test(l));
    expect(lines.length).toBe(2);
    for (const l of lines) expect(l).not.toMatch(/shared:|master:/);
    const st = await status(r.id);
    expect(st.mounts.map((m: any) => [m.containerPath, m.hostPath, m.readonly])).toEqual([["/ro", src, true], ["/made", missing, false]]);
  }, 30_000);

  test("propagation: Bidirectional (rshared) and HostToContainer (rslave) see later host mounts; Private does not", async () => {
    // The sources must be on a shared mount: make one.
    const shared = join(dir, "shared");
    for (const s of ["bi/sub", "bi/fromctr", "h2c/sub", "h2c/fromctr", "priv/sub"]) mkdirSync(join(shared, s), { recursive: true });
    const sh = (args: string[]) => {
      const r = Bun.spawnSync(args, { stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`${args.join(" ")}: ${r.stderr.toString()}`);
    };
    sh(["mount", "--bind", shared, shared]);
    hostMounts.push(shared);
    sh(["mount", "--make-shared", shared]);
    // A propagation the host mount cannot give is refused.
    const refused = await createError(pod, "prop-refused", ["true"], {
      extra: { mounts: [{ containerPath: "/bi", hostPath: join(dir, "vol"), propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }] },
    });
    expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.details).toContain("not a shared mount");

    const id = await create(pod, "prop", ["/bin/sleep", "1000"], {
      sc: { ...ROOT, privileged: true },
      extra: {
        mounts: [
          { containerPath: "/bi", hostPath: join(shared, "bi"), propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL },
          { containerPath: "/h2c", hostPath: join(shared, "h2c"), propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER },
          { containerPath: "/priv", hostPath: join(shared, "priv"), propagation: MountPropagation.PROPAGATION_PRIVATE },
        ],
      },
    });
    await d.runtime.call("StartContainer", { containerId: id }, 30_000);
    try {
      const verbose = await d.runtime.call("ContainerStatus", { containerId: id, verbose: true });
      expect(JSON.parse(verbose.info.info).runtimeSpec.linux.rootfsPropagation).toBe("rshared");
      expect(verbose.status.mounts.map((m: any) => m.propagation)).toEqual([
        MountPropagation.PROPAGATION_BIDIRECTIONAL, MountPropagation.PROPAGATION_HOST_TO_CONTAINER, MountPropagation.PROPAGATION_PRIVATE,
      ]);
      for (const s of ["bi", "h2c", "priv"]) {
        const target = join(shared, s, "sub");
        sh(["mount", "-t", "tmpfs", "tmpfs", target]);
        hostMounts.push(target);
        writeFileSync(join(target, "marker"), `${s}\n`);
      }
      const seen = await exec(id, "cat /bi/sub/marker /h2c/sub/marker /priv/sub/marker 2>&1; grep -E ' /(bi|h2c|priv) ' /proc/self/mountinfo");
      expect(seen.out).toContain("bi\n");
      expect(seen.out).toContain("h2c\n");
      expect(seen.out).toMatch(/\/priv\/sub\/marker'?: No such file/);
      expect(seen.out).toMatch(/ \/bi .*shared:/);
      expect(seen.out).toMatch(/ \/h2c .*master:/);
      expect(seen.out).not.toMatch(/ \/priv .*(shared|master):/);
      // Mounts made inside come back to the host only through the Bidirectional mount.
      const inside = await exec(id, "mount -t tmpfs tmpfs /bi/fromctr && touch /bi/fromctr/hello && mount -t tmpfs tmpfs /h2c/fromctr && touch /h2c/fromctr/hello && echo mounted");
      expect(inside.out).toContain("mounted");
      hostMounts.push(join(shared, "bi", "fromctr"));
      expect(existsSync(join(shared, "bi", "fromctr", "hello"))).toBe(true);
      expect(existsSync(join(shared, "h2c", "fromctr", "hello"))).toBe(false);
    } finally {
      await d.runtime.call("RemoveContainer", { containerId: id }, 60_000);
      for (const m of hostMounts.splice(0).reverse()) Bun.spawnSync(["umount", "-l", m]);
    }
  }, 60_000);

  test("/etc/hostname, /etc/resolv.conf and /etc/hosts come from the sandbox", async () => {
    const r = await run(pod, "files", "echo hostname=$(cat /etc/hostname) env=$HOSTNAME; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts");
    const [head, resolv, hosts] = r.out.split("---\n");
    expect(head).toBe(`hostname=sec-host-${tag} env=sec-host-${tag}\n`);
    expect(resolv).toBe("search sec.example.test\nnameserver 127.0.0.53\noptions ndots:2\n");
    // A host-network pod gets a copy of the host's hosts file.
    expect(hosts).toBe(readFileSync("/etc/hosts", "utf8"));
    // A host-network pod without a hostname uses the node's.
    const other = await runPod();
    const r2 = await run(other, "files-default", "cat /etc/hostname; hostname");
    expect(r2.out).toBe(`${hostHostname()}\n${hostHostname()}\n`);
    await d.runtime.call("StopPodSandbox", { podSandboxId: other.id }, 60_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: other.id }, 60_000);
  }, 60_000);

  test("a CRI device appears under its container path; a missing host device is INVALID_ARGUMENT", async () => {
    // /dev/loop-control is not among runc's always-allowed devices (/dev/null is),
    // so the device cgroup shows what the request's permissions allow.
    if (!existsSync("/dev/loop-control")) throw new Error("/dev/loop-control is missing on this host (kernel module loop)");
    const script = "stat -c '%t:%T %F' /dev/mynull /dev/myloop; echo data > /dev/mynull && echo write-ok; true < /dev/myloop && echo read-ok; true > /dev/myloop || echo write-refused";
    const r = await run(pod, "device", script, {
      sc: ROOT,
      extra: {
        devices: [
          { containerPath: "/dev/mynull", hostPath: "/dev/null", permissions: "rw" },
          { containerPath: "/dev/myloop", hostPath: "/dev/loop-control", permissions: "r" },
        ],
      },
    });
    expect(r.out).toBe("1:3 character special file\na:ed character special file\nwrite-ok\nread-ok\nwrite-refused\n");
    expect(r.err).toMatch(/\/dev\/myloop: Operation not permitted/);
    const before = readdirSync(join(d.root, "overlay-containers")).length;
    const e = await createError(pod, "no-device", ["true"], { extra: { devices: [{ containerPath: "/dev/nope", hostPath: "/dev/does-not-exist", permissions: "rw" }] } });
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toContain("/dev/does-not-exist");
    expect(readdirSync(join(d.root, "overlay-containers")).length).toBe(before);
  }, 30_000);
});

describe("OOM, hooks, crun", () => {
  test("a container over its memory limit is OOM-killed: reason OOMKilled, exit code 137", async () => {
    // busybox tail keeps a line that never ends (/dev/zero has no newline) in memory.
    const r = await run(pod, "oom", "exec tail /dev/zero", { resources: { memoryLimitInBytes: 32 * 1024 * 1024 } });
    expect(r.exitCode).toBe(137);
    expect(r.status.reason).toBe("OOMKilled");
    // A plain SIGKILL is not an OOM kill.
    const id = await create(pod, "killed", ["/bin/sleep", "1000"], { resources: { memoryLimitInBytes: 32 * 1024 * 1024 } });
    await d.runtime.call("StartContainer", { containerId: id }, 30_000);
    await d.runtime.call("StopContainer", { containerId: id, timeout: 0 }, 30_000);
    const s = await status(id);
    expect(s.exitCode).toBe(137);
    expect(s.reason).toBe("Error");
  }, 60_000);

  test("OCI hooks from hooks_dir: always and annotation matches run with the container state on stdin; others do not", async () => {
    const [annotated, plain] = await Promise.all([
      run(pod, "hooked", "true", { extra: { annotations: { "example.com/hook": "yes" } } }),
      run(pod, "unhooked", "true", { extra: { annotations: { "example.com/hook": "no" } } }),
    ]);
    expect(hookRuns(annotated.id)).toEqual(["always", "annotated"]);
    expect(hookRuns(plain.id)).toEqual(["always"]);
    const out = join(dir, "hook-out");
    const states = readdirSync(out).filter((f) => f.startsWith("always-")).map((f) => JSON.parse(readFileSync(join(out, f), "utf8")));
    const state = states.find((s) => s.id === annotated.id)!;
    expect(state.status).toBe("creating");
    expect(state.pid).toBeGreaterThan(0);
    expect(state.bundle).toContain(annotated.id);
    expect(state.annotations["example.com/hook"]).toBe("yes");
    expect(readdirSync(out).some((f) => f.startsWith("never-"))).toBe(false);
  }, 30_000);

  // crun 1.8 refuses cgroup v1 hybrid hosts whose v2 hierarchy has a controller bound (these
  // machines: hugetlb sits in /sys/fs/cgroup/unified). Elsewhere the same handler must just work.
  const hybrid = !existsSync("/sys/fs/cgroup/cgroup.controllers")
    && existsSync("/sys/fs/cgroup/unified/cgroup.controllers")
    && readFileSync("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").trim() !== "";
  test(hybrid
    ? "crun refuses this cgroup v1 hybrid host with its own message and leaves nothing behind"
    : "a container runs on the crun handler", async () => {
    const crunPod = await runPod({ runtimeHandler: "crun" });
    if (!hybrid) {
      const r = await run(crunPod, "on-crun", "id -u");
      expect(r.exitCode).toBe(0);
      expect(r.out).toBe("1000\n");
    } else {
      const listing = () => ["root", "runroot", "exits"].map((w) => {
        const p = w === "exits" ? join(dir, "exits") : join(w === "root" ? d.root : d.runroot, "overlay-containers");
        return existsSync(p) ? readdirSync(p).sort() : [];
      });
      const storageBefore = listing();
      const mountsBefore = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(dir)).length;
      const cgBefore = readdirSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}`).sort();
      const e = await createError(crunPod, "on-crun", ["true"]);
      // The runtime's own words reach the caller (as a runtime failure: INTERNAL).
      expect(e.code).toBe(grpc.status.INTERNAL);
      expect(e.details).toContain("cgroups in hybrid mode not supported");
      // No storage container, bundle or exit file.
      expect(listing()).toEqual(storageBefore);
      expect(readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(dir)).length).toBe(mountsBefore);
      expect((await d.runtime.call("ListContainers", { filter: { podSandboxId: crunPod.id } })).containers).toEqual([]);
      expect(existsSync(join(dir, "crun")) ? readdirSync(join(dir, "crun")) : []).toEqual([]);
      expect(readdirSync(`/sys/fs/cgroup/memory${CGROUP_PARENT}`).sort()).toEqual(cgBefore);
      // No conmon is left for it.
      const conmons = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`--root=${join(dir, "crun")}`);
        } catch {
          return false;
        }
      });
      expect(conmons).toEqual([]);
      // The name is free again.
      expect((await createError(crunPod, "on-crun", ["true"])).details).toContain("cgroups in hybrid mode not supported");
    }
    await d.runtime.call("StopPodSandbox", { podSandboxId: crunPod.id }, 60_000);
    await d.runtime.call("RemovePodSandbox", { podSandboxId: crunPod.id }, 60_000);
  }, 60_000);
});
