// Distribution end to end: scripts/bundle makes the release files in dist/, a local HTTP server
// serves them, scripts/get downloads, verifies and installs them into a DESTDIR, the installed
// crio runs (its daemon, on the installed configs, pulls from a local registry and runs a pod on
// the installed bridge conflist with a container in it), and uninstall leaves nothing behind. Then every refusal: a tampered or truncated download, an unknown arch or tag,
// no network, no root, a wrong signature, an operator's changed config, a failing install.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { PLUGIN_DIR, freeSubnetPrefix, natRules, realPluginsRunnable, sh, sweepNat } from "../../src/network/test-helpers.ts";
import { ContainerState, ImageServiceMethods, NamespaceMode, PodSandboxState, RuntimeServiceMethods } from "../../src/proto/index.ts";
import { listPinned } from "../../src/sandbox/namespaces.ts";
import { serveDir, type FileServer } from "../lib/file-server.ts";
import { busyboxImage } from "../lib/images.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { criClient, tempDir, waitFor } from "./harness.ts";

const REPO = resolve(import.meta.dir, "../..");
const DIST = join(REPO, "dist");
const QEMU = "/usr/bin/qemu-aarch64-static";
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without the installer's variables, so each test sets exactly its own. */
function baseEnv(): Record<string, string> {
  const drop = /^(DESTDIR|PREFIX|BINDIR|LIBEXECDIR|MANDIR|ETCDIR|SYSTEMDDIR|CNIDIR|CONTAINERS_.*|.*INSTALLDIR|CRIO_.*|CONTAINER_.*|NOTIFY_SOCKET|COSIGN)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !drop.test(k))) as Record<string, string>;
}

async function run(cmd: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<Result> {
  const proc = Bun.spawn(cmd, { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...baseEnv(), ...env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Every file and directory under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p) + (e.isDirectory() ? "/" : ""));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** What the bundle's conflist names (scripts/bundle.d/files/11-crio-ipv4-bridge.conflist). */
const INSTALLED_BRIDGE = "cni0";
const INSTALLED_SUBNET = "10.85.0.0/16";
const CNI_RESULTS = "/var/lib/cni/results"; // the daemon's CNI cache, fixed as in libcni
const runTag = Math.random().toString(16).slice(2, 8);

const ipv4 = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
/** Whether two IPv4 CIDRs (or addresses) share an address. */
function overlaps(a: string, b: string): boolean {
  const [an = "", al = "32"] = a.split("/");
  const [bn = "", bl = "32"] = b.split("/");
  const len = Math.min(Number(al), Number(bl));
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipv4(an) & mask) >>> 0) === ((ipv4(bn) & mask) >>> 0);
}

/** Why the installed conflist's bridge and subnet cannot be used here as they are, or undefined. */
function installedNetworkClash(): string | undefined {
  if (sh(["ip", "link", "show", INSTALLED_BRIDGE]).exitCode === 0) return `a link named ${INSTALLED_BRIDGE} exists`;
  const lines = [...sh(["ip", "-4", "-o", "addr", "show"]).stdout.split("\n"), ...sh(["ip", "-4", "route", "show", "table", "all"]).stdout.split("\n")];
  for (const line of lines) {
    // The first address on the line: the route's destination or the interface's address
    // (a default route's gateway, which must not be in the subnet either).
    const cidr = line.split(/\s+/).find((w) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(w));
    if (cidr && !cidr.endsWith("/0") && overlaps(cidr, INSTALLED_SUBNET)) return `"${line.trim()}" overlaps ${INSTALLED_SUBNET}`;
  }
  return undefined;
}

const bridgePorts = (bridge: string) => (JSON.parse(sh(["ip", "-j", "link", "show", "master", bridge]).stdout || "[]") as Array<{ ifname: string }>).map((l) => l.ifname);
const cgroupDirs = (sub: string) => readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, sub)).filter((d) => existsSync(d));
/** Mount points at or under `dir`, in mount order. */
const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m === dir || m.startsWith(`${dir}/`));
/** PIDs of processes whose command line names `dir` (the daemon, conmon, runc). */
function processesMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(dir)) pids.push(Number(e));
    } catch {} // exited meanwhile
  }
  return pids;
}

const INSTALLED_FILES = [
  "etc/cni/net.d/11-crio-ipv4-bridge.conflist",
  "etc/containers/registries.conf.d/crio.conf",
  "etc/crictl.yaml",
  "etc/crio/crio.conf.d/10-crio.conf",
  "etc/crio/policy.json",
  "etc/sysconfig/crio",
  "usr/local/bin/crio",
  "usr/local/lib/systemd/system/crio.service",
  "usr/local/libexec/crio/install",
  "usr/local/libexec/crio/installed-files",
  "usr/local/libexec/crio/versions",
  "usr/local/share/bash-completion/completions/crio",
  "usr/local/share/fish/completions/crio.fish",
  "usr/local/share/man/man5/crio.conf.5",
  "usr/local/share/man/man5/crio.conf.d.5",
  "usr/local/share/man/man8/crio.8",
  "usr/local/share/zsh/site-functions/_crio",
];

let version: string; // what the built binary reports, e.g. 0.1.0
let tag: string; // v0.1.0
let server: FileServer;
const temps: string[] = [];
const tmp = (prefix: string) => {
  const d = tempDir(prefix);
  temps.push(d);
  return d;
};
const tarball = (arch: string) => `crio.${arch}.${tag}.tar.gz`;
const get = (args: string[], env: Record<string, string>, base = server.url) => run(["bash", "scripts/get", "-b", base, ...args], env);

beforeAll(async () => {
  const b = await run(["scripts/bundle", "-a", "all"], {}, 110_000);
  if (b.code !== 0) throw new Error(`scripts/bundle failed:\n${b.stdout}\n${b.stderr}`);
  version = JSON.parse((await run([join(DIST, "crio-linux-amd64"), "version", "--json"])).stdout).version;
  tag = `v${version}`;
  server = await serveDir(DIST);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe("scripts/bundle", () => {
  test("the tarball: one top folder with the binary, configs, unit, man pages, completions, installer, licence", async () => {
    const list = (await run(["tar", "-tzvf", join(DIST, tarball("amd64"))])).stdout.trim().split("\n");
    const names = list.map((l) => l.split(/\s+/).pop()!);
    for (const f of [
      "crio/bin/crio", "crio/etc/10-crio.conf", "crio/etc/crictl.yaml", "crio/etc/sysconfig/crio",
      "crio/contrib/crio.service", "crio/contrib/policy.json", "crio/contrib/registries.conf",
      "crio/contrib/11-crio-ipv4-bridge.conflist", "crio/man/crio.8", "crio/man/crio.conf.5", "crio/man/crio.conf.d.5",
      "crio/completions/bash/crio", "crio/completions/zsh/_crio", "crio/completions/fish/crio.fish",
      "crio/install", "crio/README.md", "crio/LICENSE", "crio/versions",
    ]) expect(names).toContain(f);
    expect(names.every((n) => n.startsWith("crio/"))).toBe(true);
    // Fixed owners and mtimes: every entry root-owned, all with one timestamp.
    expect(list.every((l) => l.split(/\s+/)[1] === "0/0")).toBe(true);
    expect(new Set(list.map((l) => l.split(/\s+/).slice(3, 5).join(" "))).size).toBe(1);

    const x = tmp("crio-bundle-x-");
    expect((await run(["tar", "-xzf", join(DIST, tarball("amd64")), "-C", x])).code).toBe(0);
    expect(sha256(join(x, "crio/bin/crio"))).toBe(sha256(join(DIST, "crio-linux-amd64")));
    const unit = readFileSync(join(x, "crio/contrib/crio.service"), "utf8");
    for (const line of ["Type=notify", "ExecReload=/bin/kill -s HUP $MAINPID", "LimitNOFILE=1048576", "LimitNPROC=1048576", "LimitCORE=infinity", "TasksMax=infinity", "OOMScoreAdjust=-999"]) {
      expect(unit).toContain(line);
    }
    expect(JSON.parse(readFileSync(join(x, "crio/contrib/policy.json"), "utf8")).default).toEqual([{ type: "insecureAcceptAnything" }]);
    expect(readFileSync(join(x, "crio/contrib/registries.conf"), "utf8")).toContain('unqualified-search-registries = ["docker.io"]');
    expect(readFileSync(join(x, "crio/contrib/11-crio-ipv4-bridge.conflist"), "utf8")).toContain('"subnet": "10.85.0.0/16"');
    expect(readFileSync(join(x, "crio/LICENSE"), "utf8")).toContain("Apache License\n                           Version 2.0, January 2004");
    // The man pages and completions are the binary's own output.
    expect(readFileSync(join(x, "crio/man/crio.conf.5"), "utf8")).toBe((await run([join(DIST, "crio-linux-amd64"), "man", "crio.conf.5"])).stdout);
    expect(readFileSync(join(x, "crio/completions/zsh/_crio"), "utf8")).toBe((await run([join(DIST, "crio-linux-amd64"), "completion", "zsh"])).stdout);
    const versions = readFileSync(join(x, "crio/versions"), "utf8");
    expect(versions).toContain(`CRIO_VERSION=${version}\n`);
    expect(versions).toContain(`CRIO_TAG=${tag}\n`);
    expect(versions).toMatch(/^HOST_CONMON=\d/m);
    expect(versions).toMatch(/^HOST_RUNC=\d/m);
    expect(versions).toMatch(/^HOST_CNI_SPEC=\d/m);
    expect(versions).toMatch(/^BUN_VERSION=\d/m);
  });

  test("beside it: a sha256sum file and an SPDX 2.3 SBOM of every npm package compiled into the binary", () => {
    for (const arch of ["amd64", "arm64"]) {
      const name = tarball(arch);
      expect(readFileSync(join(DIST, `${name}.sha256sum`), "utf8")).toBe(`${sha256(join(DIST, name))}  ${name}\n`);
      const sbom = JSON.parse(readFileSync(join(DIST, `${name}.spdx.json`), "utf8"));
      expect(sbom.spdxVersion).toBe("SPDX-2.3");
      expect(sbom.dataLicense).toBe("CC0-1.0");
      const byName = new Map<string, any>(sbom.packages.map((p: any) => [p.name, p]));
      expect(byName.get(name).checksums).toEqual([{ algorithm: "SHA256", checksumValue: sha256(join(DIST, name)) }]);
      expect(byName.get("crio").checksums).toContainEqual({ algorithm: "SHA256", checksumValue: sha256(join(DIST, `crio-linux-${arch}`)) });
      const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")).packages;
      // The runtime dependencies the binary uses, and the Bun runtime it is made from, with the
      // lockfile's versions, licences and integrity hashes; no dev-only tool.
      for (const dep of ["@grpc/grpc-js", "@sigstore/verify", "@sigstore/core", "citty", "smol-toml", "protobufjs", `@oven/bun-linux-${arch === "arm64" ? "aarch64" : "x64"}`]) {
        const p = byName.get(dep);
        const l = lock[`node_modules/${dep}`];
        expect(p, dep).toBeDefined();
        expect(p.versionInfo).toBe(l.version);
        expect(p.licenseDeclared).toBe(l.license);
        expect(p.checksums).toEqual([{ algorithm: "SHA512", checksumValue: Buffer.from(l.integrity.slice(7), "base64").toString("hex") }]);
        expect(sbom.relationships).toContainEqual({ spdxElementId: "SPDXRef-Package-crio", relationshipType: "CONTAINS", relatedSpdxElement: p.SPDXID });
      }
      for (const dev of ["typescript", "@types/bun", "bun"]) expect(byName.has(dev)).toBe(false);
    }
  });

  test("two bundles from the same commit are byte-identical", async () => {
    const out = tmp("crio-bundle-again-");
    const b = await run(["scripts/bundle", "-a", "amd64", "-o", out], {}, 60_000);
    expect(b.code).toBe(0);
    for (const f of [tarball("amd64"), `${tarball("amd64")}.sha256sum`, `${tarball("amd64")}.spdx.json`]) {
      expect(sha256(join(out, f)), f).toBe(sha256(join(DIST, f)));
    }
  }, 60_000);
});

describe("scripts/get", () => {
  test("installs into DESTDIR; the installed crio runs a pod and a container on the installed bridge network; uninstall leaves nothing", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test runs pods: it needs root");
    if (!realPluginsRunnable) throw new Error(`the installed conflist needs the CNI plugins in ${PLUGIN_DIR}: apt-get install -y containernetworking-plugins`);
    const root = tmp("crio-root-");
    // A bare version means its v-tag.
    const t0 = performance.now();
    const r = await get(["-t", version], { DESTDIR: root });
    console.log(`scripts/get: downloaded, checked and installed ${tarball("amd64")} in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("checksum OK");
    expect(server.requests).toContain(tarball("amd64"));
    expect(tree(root).filter((p) => !p.endsWith("/"))).toEqual(INSTALLED_FILES);
    expect(statSync(join(root, "usr/local/bin/crio")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(root, "usr/local/lib/systemd/system/crio.service"), "utf8")).toContain("ExecStart=/usr/local/bin/crio \\");
    expect(readFileSync(join(root, "etc/crio/crio.conf.d/10-crio.conf"), "utf8")).toContain('signature_policy = "/etc/crio/policy.json"');

    const crio = join(root, "usr/local/bin/crio");
    const v = await run([crio, "version", "--json"]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).version).toBe(version);

    // The installed configs, and a crio.conf of the test's own with only what a test must change:
    // its own dirs instead of the host's /var/run/crio, /run/runc and /var/log/crio, and cgroupfs
    // (no systemd here). Storage, socket, policy, registries and CNI dirs come as flags below
    // (the drop-in names /etc paths; the files are under DESTDIR).
    const work = tmp("crio-run-");
    writeFileSync(
      join(work, "crio.conf"),
      [
        "[crio]",
        `log_dir = ${JSON.stringify(join(work, "logs"))}`,
        "[crio.runtime]",
        'cgroup_manager = "cgroupfs"',
        `namespaces_dir = ${JSON.stringify(join(work, "ns"))}`,
        `container_exits_dir = ${JSON.stringify(join(work, "exits"))}`,
        `container_attach_socket_dir = ${JSON.stringify(join(work, "attach"))}`,
        "[crio.runtime.runtimes.runc]",
        `runtime_root = ${JSON.stringify(join(work, "runc"))}`,
        "",
      ].join("\n"),
    );
    const files = ["--config", join(work, "crio.conf"), "--config-dir", join(root, "etc/crio/crio.conf.d")];
    const c = await run([crio, ...files, "config"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^signature_policy = "\/etc\/crio\/policy.json"$/m);
    expect(c.stdout).toMatch(/^cgroup_manager = "cgroupfs"$/m);
    expect(c.stdout).toContain('"/usr/lib/cni/"');

    // The network: the installed conflist (bridge cni0, host-local 10.85.0.0/16, ipMasq) as it is,
    // unless this host already has a cni0 or routes into 10.85.0.0/16 (a real CRI-O, say). Then
    // the installed copy gets a bridge of the test's own and a free /24, and its original bytes
    // back before uninstall (which would keep a changed file).
    const conflistFile = join(root, "etc/cni/net.d/11-crio-ipv4-bridge.conflist");
    const conflistText = readFileSync(conflistFile, "utf8");
    let bridge = INSTALLED_BRIDGE;
    let subnet = INSTALLED_SUBNET;
    const clash = installedNetworkClash();
    if (clash) {
      bridge = `cni-d${runTag}`;
      subnet = `${freeSubnetPrefix()}.0/24`;
      const rewritten = conflistText.replace(`"bridge": "${INSTALLED_BRIDGE}"`, `"bridge": "${bridge}"`).replace(`"subnet": "${INSTALLED_SUBNET}"`, `"subnet": "${subnet}"`);
      expect(rewritten).toContain(subnet);
      expect(rewritten).toContain(bridge);
      writeFileSync(conflistFile, rewritten);
      console.log(`installed conflist rewritten to bridge ${bridge}, subnet ${subnet}: ${clash}`);
    }
    const netName = JSON.parse(conflistText).name as string;
    const ipamDir = join("/var/lib/cni/networks", netName); // host-local's default dataDir
    // host-local makes these; the ones that did not exist before are removed afterwards.
    const madeDirs = [ipamDir, dirname(ipamDir), "/var/lib/cni"].filter((d) => !existsSync(d));
    const ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
    const cgroupParent = `/crio-dist-${runTag}`;
    const cacheFilesOf = (id: string) => (existsSync(CNI_RESULTS) ? readdirSync(CNI_RESULTS).filter((f) => f.includes(id)) : []);

    // The daemon on the installed configs, with a temp socket and storage, pulling from a
    // local registry (named in a registries.conf of the test's own: plain HTTP on 127.0.0.1).
    let reg: TestRegistry | undefined;
    let proc: ReturnType<typeof Bun.spawn> | undefined;
    let podId = "";
    const problems: string[] = [];
    const socket = join(work, "crio.sock");
    const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
    const image = criClient(socket, ImageServiceMethods, "ImageService");
    try {
      reg = await startRegistry();
      const busybox = busyboxImage({ tag: "1.0" });
      await pushImage(reg.url, "test/busybox", busybox);
      const ref = `${reg.host}/test/busybox:1.0`;
      writeFileSync(join(work, "registries.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
      let logs = "";
      const started = performance.now();
      proc = Bun.spawn(
        [
          crio, ...files,
          "--listen", socket,
          "--root", join(work, "root"), "--runroot", join(work, "runroot"),
          "--signature-policy", join(root, "etc/crio/policy.json"),
          "--registries-conf", join(work, "registries.conf"),
          "--registries-conf-dir", join(root, "etc/containers/registries.conf.d"),
          "--cni-config-dir", join(root, "etc/cni/net.d"),
          "--version-file", join(work, "version"), "--clean-shutdown-file", join(work, "clean.shutdown"),
        ],
        { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: baseEnv() },
      );
      const p = proc;
      void (async () => {
        for await (const chunk of p.stderr as ReadableStream<Uint8Array>) logs += new TextDecoder().decode(chunk);
      })();
      await waitFor(
        async () => {
          if (p.exitCode !== null) throw new Error(`the installed daemon exited with ${p.exitCode}:\n${logs}`);
          return runtime.call("Version", {}, 1000).then(() => true, () => false);
        },
        15_000,
        () => `the installed daemon did not answer Version:\n${logs}`,
      );
      console.log(`installed crio: cold start to ready (answers Version) in ${(performance.now() - started).toFixed(0)} ms`);
      const ver = await runtime.call("Version", {});
      expect(ver.runtimeName).toBe("cri-o");
      expect(ver.runtimeVersion).toBe(version);
      const status = await runtime.call("Status", {});
      expect(status.status.conditions.find((x: any) => x.type === "RuntimeReady")?.status).toBe(true);
      // The installed conflist with the drop-in's plugin_dirs finds the host's CNI plugins.
      await waitFor(
        async () => (await runtime.call("Status", {})).status.conditions.find((x: any) => x.type === "NetworkReady")?.status === true,
        10_000,
        () => `NetworkReady stayed false with the installed conflist and drop-in:\n${logs}`,
      );
      console.log(`installed crio: cold start to NetworkReady in ${(performance.now() - started).toFixed(0)} ms`);
      const pulled = await image.call("PullImage", { image: { image: ref } }, 60_000);
      expect(pulled.imageRef).toBe(busybox.configDigest.replace("sha256:", ""));

      // A pod on the installed network, and a container in it.
      const namespaceOptions = { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
      const podConfig = {
        metadata: { name: `dist-${runTag}`, namespace: "default", uid: `uid-dist-${runTag}`, attempt: 0 },
        logDirectory: join(work, "pods"),
        linux: { cgroupParent, securityContext: { namespaceOptions } },
      };
      podId = (await runtime.call("RunPodSandbox", { config: podConfig }, 30_000)).podSandboxId;
      const pod = (await runtime.call("PodSandboxStatus", { podSandboxId: podId })).status;
      expect(pod.state).toBe(PodSandboxState.SANDBOX_READY);
      const ip = pod.network.ip as string;
      expect(overlaps(ip, subnet), `${ip} in ${subnet}`).toBe(true);
      expect(existsSync(join(ipamDir, ip))).toBe(true);
      expect(bridgePorts(bridge)).toHaveLength(1);
      expect(listPinned(join(work, "ns"), { allNames: true })).toHaveLength(1);

      const command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo hello from the installed crio; while :; do sleep 1 & wait $!; done"];
      const ctrConfig = { metadata: { name: "hello", attempt: 0 }, image: { image: ref }, command, logPath: "hello/0.log", linux: { securityContext: { namespaceOptions } } };
      const ctrId = (await runtime.call("CreateContainer", { podSandboxId: podId, config: ctrConfig, sandboxConfig: podConfig }, 60_000)).containerId;
      await runtime.call("StartContainer", { containerId: ctrId }, 30_000);
      const ctr = (await runtime.call("ContainerStatus", { containerId: ctrId })).status;
      expect(ctr.state).toBe(ContainerState.CONTAINER_RUNNING);
      expect(ctr.logPath).toBe(join(work, "pods", "hello/0.log"));
      await waitFor(
        () => existsSync(ctr.logPath) && / stdout F hello from the installed crio$/m.test(readFileSync(ctr.logPath, "utf8")),
        10_000,
        () => `no output in ${ctr.logPath}: ${existsSync(ctr.logPath) ? readFileSync(ctr.logPath, "utf8") : "(missing)"}\n${logs}`,
      );
      // The exec runs in the pod's network namespace: its eth0 has the pod's address.
      const ex = await runtime.call("ExecSync", { containerId: ctrId, cmd: ["/bin/sh", "-c", "ls /sys/class/net; cat /proc/net/fib_trie"], timeout: 10 }, 30_000);
      expect(ex.exitCode, Buffer.from(ex.stderr).toString()).toBe(0);
      const out = Buffer.from(ex.stdout).toString();
      expect(out.split("\n")).toContain("eth0");
      expect(out).toContain(ip);

      await runtime.call("StopContainer", { containerId: ctrId, timeout: 10 }, 30_000);
      const stopped = (await runtime.call("ContainerStatus", { containerId: ctrId })).status;
      expect(stopped.state).toBe(ContainerState.CONTAINER_EXITED);
      expect(stopped.exitCode).toBe(0); // the trap, not SIGKILL
      await runtime.call("RemoveContainer", { containerId: ctrId }, 30_000);
      await runtime.call("StopPodSandbox", { podSandboxId: podId }, 30_000);
      await runtime.call("RemovePodSandbox", { podSandboxId: podId }, 30_000);
      expect((await runtime.call("ListContainers", {})).containers).toEqual([]);
      expect((await runtime.call("ListPodSandbox", {})).items).toEqual([]);

      // Everything of the pod's is gone: pins, address, veth, CNI cache, masquerade rules,
      // cgroups, and conmon. Left by design: the store's home bind mount and the shared bind
      // mounts of the <type>ns directories (as containers-storage and CRI-O's pinns make them).
      expect(listPinned(join(work, "ns"), { allNames: true })).toEqual([]);
      expect(existsSync(join(ipamDir, ip))).toBe(false);
      expect(bridgePorts(bridge)).toEqual([]);
      expect(cacheFilesOf(podId)).toEqual([]);
      expect(natRules().filter((l) => l.includes(podId))).toEqual([]);
      expect(cgroupDirs(cgroupParent).flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${d}/${e.name}`))).toEqual([]);
      expect(mountsUnder(work).filter((m) => m !== join(work, "root", "overlay") && !/\/ns\/[a-z]+ns$/.test(m))).toEqual([]);
      expect(processesMentioning(work).filter((pid) => pid !== p.pid)).toEqual([]);
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect(processesMentioning(work)).toEqual([]);
    } finally {
      // What the test made, or what a failure left: the pod, the daemon, leftover processes (by
      // PID), mounts, the bridge, masquerade rules, the address directory, ip_forward, cgroups.
      if (podId && proc?.exitCode === null) {
        await runtime.call("RemovePodSandbox", { podSandboxId: podId }, 30_000).catch((e: Error) => problems.push(`RemovePodSandbox: ${e.message}`));
      }
      runtime.close();
      image.close();
      if (proc && proc.exitCode === null) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      for (const pid of processesMentioning(work)) {
        problems.push(`process ${pid} left: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ")}`);
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      for (const m of mountsUnder(work).reverse()) sh(["umount", "-l", m]);
      if (podId) {
        try {
          sweepNat((l) => l.includes(podId));
        } catch (e) {
          problems.push(String(e));
        }
        for (const f of cacheFilesOf(podId)) rmSync(join(CNI_RESULTS, f), { force: true });
      }
      // The bridge is the test's: the installed name when none existed before, or its own.
      if (sh(["ip", "link", "show", bridge]).exitCode === 0) sh(["ip", "link", "del", bridge]);
      // The address directory holds host-local's lock and last-reserved files; its parents are
      // removed only when empty (another user may have come meanwhile).
      if (madeDirs.includes(ipamDir)) rmSync(ipamDir, { recursive: true, force: true });
      for (const d of madeDirs.filter((d) => d !== ipamDir)) {
        try {
          rmdirSync(d);
        } catch {}
      }
      writeFileSync("/proc/sys/net/ipv4/ip_forward", ipForwardBefore);
      for (const d of cgroupDirs(cgroupParent)) {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) sh(["rmdir", join(d, e.name)]);
        sh(["rmdir", d]);
      }
      if (clash) writeFileSync(conflistFile, conflistText);
      await reg?.stop();
    }
    expect(problems).toEqual([]);
    expect(mountsUnder(work)).toEqual([]);
    expect(mountsUnder(root)).toEqual([]);
    expect(sh(["ip", "link", "show", bridge]).exitCode).not.toBe(0);
    expect(cgroupDirs(cgroupParent)).toEqual([]);
    expect(madeDirs.filter((d) => existsSync(d))).toEqual([]);

    const u = await get(["-u"], { DESTDIR: root });
    expect(u.code, u.stderr).toBe(0);
    expect(tree(root)).toEqual([]);
  }, 90_000);

  test("the installer checks the host dependencies and says how to get the missing ones", async () => {
    const x = tmp("crio-bundle-x-");
    expect((await run(["tar", "-xzf", join(DIST, tarball("amd64")), "-C", x])).code).toBe(0);
    const installer = join(x, "crio/install");
    const ok = await run([installer, "-c"]);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/^  conmon \d[\d.]* \(/m);
    // A PATH with the shell's tools but no conmon, runc or crun.
    const bin = tmp("crio-path-");
    for (const c of ["bash", "sed", "sort", "head", "grep", "id", "cat", "dirname"]) {
      expect((await run(["ln", "-s", Bun.which(c)!, join(bin, c)])).code).toBe(0);
    }
    const missing = await run([join(bin, "bash"), installer, "-c"], { PATH: bin });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain("missing: conmon >= 2.1.0");
    expect(missing.stdout).toContain("Debian/Ubuntu: apt-get install conmon");
    expect(missing.stdout).toContain("Fedora/RHEL:   dnf install conmon");
    expect(missing.stdout).toContain("missing: an OCI runtime, runc >= 1.1.0 or crun >= 1.8.0");
  });

  test("the arm64 bundle installs the arm64 binary, which runs `crio version` under qemu-user-static", async () => {
    for (const p of [QEMU, join(ARM64_SYSROOT, "lib/ld-linux-aarch64.so.1")]) {
      if (!existsSync(p)) throw new Error(`${p} is missing: scripts/setup installs qemu-user-static and libc6-arm64-cross`);
    }
    const root = tmp("crio-root-arm64-");
    const r = await get(["-a", "arm64", "-t", tag], { DESTDIR: root });
    expect(r.code, r.stderr).toBe(0);
    const crio = join(root, "usr/local/bin/crio");
    expect(sha256(crio)).toBe(sha256(join(DIST, "crio-linux-arm64")));
    const v = await run([QEMU, "-L", ARM64_SYSROOT, crio, "version"]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^Version:\\s+${version.replace(/\./g, "\\.")}$`, "m"));
    expect(v.stdout).toMatch(/^Platform:\s+linux\/arm64$/m);
  }, 60_000);

  test("PREFIX, ETCDIR, LIBEXECDIR and SYSTEMDDIR move what goes where; uninstall takes the same variables", async () => {
    const root = tmp("crio-root-vars-");
    const env = { DESTDIR: root, PREFIX: "/opt/crio", ETCDIR: "/opt/crio/etc", LIBEXECDIR: "/opt/crio/lib", SYSTEMDDIR: "/etc/systemd/system" };
    const r = await get(["-t", tag], env);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ["opt/crio/bin/crio", "opt/crio/etc/crio/crio.conf.d/10-crio.conf", "opt/crio/lib/crio/installed-files", "etc/systemd/system/crio.service", "opt/crio/share/man/man8/crio.8"]) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    const unit = readFileSync(join(root, "etc/systemd/system/crio.service"), "utf8");
    expect(unit).toContain("ExecStart=/opt/crio/bin/crio \\");
    expect(unit).toContain("EnvironmentFile=-/opt/crio/etc/sysconfig/crio");
    expect(readFileSync(join(root, "opt/crio/etc/crio/crio.conf.d/10-crio.conf"), "utf8")).toContain('signature_policy = "/opt/crio/etc/crio/policy.json"');
    const u = await get(["-u"], env);
    expect(u.code, u.stderr).toBe(0);
    expect(tree(root)).toEqual([]);
  }, 60_000);

  test("an operator's changed config is kept, the new one written as .rpmnew, with a message and exit 3", async () => {
    const root = tmp("crio-root-conf-");
    expect((await get(["-t", tag], { DESTDIR: root })).code).toBe(0);
    const conf = join(root, "etc/crio/crio.conf.d/10-crio.conf");
    const mine = readFileSync(conf, "utf8") + '\n[crio.runtime]\nlog_size_max = 1048576\n';
    writeFileSync(conf, mine);
    const again = await get(["-t", tag], { DESTDIR: root });
    expect(again.code).toBe(3);
    expect(again.stderr).toContain(`kept your changed ${conf}; the new version is ${conf}.rpmnew`);
    expect(readFileSync(conf, "utf8")).toBe(mine);
    expect(readFileSync(`${conf}.rpmnew`, "utf8")).not.toContain("log_size_max");
    // Everything else is installed and recorded.
    expect(tree(root).filter((p) => !p.endsWith("/"))).toEqual([...INSTALLED_FILES, "etc/crio/crio.conf.d/10-crio.conf.rpmnew"].sort());
    // Unchanged files are replaced silently on a second install.
    const third = await get(["-t", tag], { DESTDIR: root });
    expect(third.code).toBe(3);
    // Uninstall removes what it installed, .rpmnew included, and keeps the changed file.
    const u = await get(["-u"], { DESTDIR: root });
    expect(u.code).toBe(0);
    expect(u.stdout).toContain(`kept ${conf}: changed since it was installed`);
    expect(tree(root).filter((p) => !p.endsWith("/"))).toEqual(["etc/crio/crio.conf.d/10-crio.conf"]);
  }, 60_000);

  test("a signed release: verified with the pinned key (crio verify-bundle), refused with another key", async () => {
    const dir = tmp("crio-signed-");
    for (const f of [tarball("amd64"), `${tarball("amd64")}.sha256sum`]) copyFileSync(join(DIST, f), join(dir, f));
    const keys = tmp("crio-keys-");
    expect((await run(["scripts/sign", "-g", join(keys, "release.key")])).code).toBe(0);
    expect((await run(["scripts/sign", "-g", join(keys, "other.key")])).code).toBe(0);
    expect(statSync(join(keys, "release.key")).mode & 0o777).toBe(0o600);
    const s = await run(["scripts/sign", "-k", join(keys, "release.key"), join(dir, tarball("amd64"))]);
    expect(s.code, s.stderr).toBe(0);
    const bundle = JSON.parse(readFileSync(join(dir, `${tarball("amd64")}.sigstore.json`), "utf8"));
    expect(bundle.mediaType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json");
    expect(bundle.verificationMaterial.publicKey.hint).toBeString();

    const crio = join(DIST, "crio-linux-amd64");
    const file = join(dir, tarball("amd64"));
    const ok = await run([crio, "verify-bundle", file, `${file}.sigstore.json`, "--key", join(keys, "release.pub")]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe("Verified OK\n");
    const wrong = await run([crio, "verify-bundle", file, `${file}.sigstore.json`, "--key", join(keys, "other.pub")]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("signature does not verify with the given key");
    const noKey = await run([crio, "verify-bundle", file, `${file}.sigstore.json`]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("--key is required");

    const signed = await serveDir(dir);
    try {
      const root = tmp("crio-root-signed-");
      const good = await get(["-t", tag, "-k", join(keys, "release.pub")], { DESTDIR: root }, signed.url);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stdout).toContain("signature OK");
      const root2 = tmp("crio-root-badsig-");
      const bad = await get(["-t", tag, "-k", join(keys, "other.pub")], { DESTDIR: root2 }, signed.url);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("signature check failed");
      expect(tree(root2)).toEqual([]);
      // With a key, an unsigned release is refused.
      const unsigned = await get(["-t", tag, "-k", join(keys, "release.pub")], { DESTDIR: root2 });
      expect(unsigned.code).toBe(1);
      expect(unsigned.stderr).toContain("is not signed");
      expect(tree(root2)).toEqual([]);
    } finally {
      await signed.stop();
    }
  }, 60_000);
});

describe("scripts/get refuses bad input, installing nothing", () => {
  let bad: FileServer;
  beforeAll(async () => {
    // A tampered tarball (one byte changed) beside the genuine checksum.
    const badDir = tmp("crio-bad-");
    const name = tarball("amd64");
    const bytes = readFileSync(join(DIST, name));
    const at = bytes.length >> 1;
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(join(badDir, name), bytes);
    copyFileSync(join(DIST, `${name}.sha256sum`), join(badDir, `${name}.sha256sum`));
    bad = await serveDir(badDir);
  });
  afterAll(async () => {
    await bad?.stop();
  });

  async function refused(args: string[], env: Record<string, string>, message: string | RegExp, base?: string): Promise<void> {
    const root = env.DESTDIR;
    const r = await get(args, env, base);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(message);
    if (root) expect(tree(root)).toEqual([]);
  }

  test("a tampered tarball: checksum mismatch", async () => {
    await refused(["-t", tag], { DESTDIR: tmp("crio-root-") }, /checksum mismatch for crio\.amd64\..*: refusing to install/, bad.url);
  });

  test("a truncated download", async () => {
    server.truncate.add(tarball("amd64"));
    try {
      await refused(["-t", tag], { DESTDIR: tmp("crio-root-") }, /was cut short \(truncated\)/);
    } finally {
      server.truncate.clear();
    }
  });

  test("an unknown architecture", async () => {
    await refused(["-a", "mips64", "-t", tag], { DESTDIR: tmp("crio-root-") }, /unsupported architecture 'mips64'/);
  });

  test("a tag that does not exist", async () => {
    await refused(["-t", "v9.9.9"], { DESTDIR: tmp("crio-root-") }, /release v9\.9\.9 for amd64 does not exist at http:\/\/127\.0\.0\.1:\d+/);
  });

  test("no network: nothing listens at the base URL", async () => {
    await refused(["-t", tag], { DESTDIR: tmp("crio-root-") }, /cannot connect to http:\/\/127\.0\.0\.1:9\//, "http://127.0.0.1:9");
  });

  test("not root and no DESTDIR", async () => {
    const before = server.requests.length;
    const r = await run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "scripts/get", "-b", server.url, "-t", tag], { HOME: "/" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("must run as root to install under /; or set DESTDIR");
    expect(server.requests.length).toBe(before); // refused before downloading anything
  });

  test("an install that fails midway (a target is a directory) changes nothing", async () => {
    const root = tmp("crio-root-");
    mkdirSync(join(root, "usr/local/share/man/man8/crio.8"), { recursive: true });
    const r = await get(["-t", tag], { DESTDIR: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${root}/usr/local/share/man/man8/crio.8 is a directory`);
    expect(r.stderr).toContain("nothing was changed");
    expect(tree(root)).toEqual(["usr/", "usr/local/", "usr/local/share/", "usr/local/share/man/", "usr/local/share/man/man8/", "usr/local/share/man/man8/crio.8/"]);
  });

  test("uninstall with nothing installed", async () => {
    await refused(["-u"], { DESTDIR: tmp("crio-root-") }, /nothing to uninstall/);
  });
});
