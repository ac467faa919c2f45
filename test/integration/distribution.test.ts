// Distribution end to end: scripts/bundle makes the release files in dist/, a local HTTP server
// serves them, scripts/get downloads, verifies and installs them into a DESTDIR, the installed
// crio runs (its daemon answers CRI and pulls from a local registry), and uninstall leaves
// nothing behind. Then every refusal: a tampered or truncated download, an unknown arch or tag,
// no network, no root, a wrong signature, an operator's changed config, a failing install.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { ImageServiceMethods, RuntimeServiceMethods } from "../../src/proto/index.ts";
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
  test("installs into DESTDIR; the installed crio runs, serves CRI and pulls; uninstall leaves nothing", async () => {
    const root = tmp("crio-root-");
    // A bare version means its v-tag.
    const r = await get(["-t", version], { DESTDIR: root });
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
    const work = tmp("crio-run-");
    writeFileSync(join(work, "crio.conf"), "");
    const files = ["--config", join(work, "crio.conf"), "--config-dir", join(root, "etc/crio/crio.conf.d")];
    const c = await run([crio, ...files, "config"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^signature_policy = "\/etc\/crio\/policy.json"$/m);
    expect(c.stdout).toContain('"/usr/lib/cni/"');

    // The daemon on the installed configs, with a temp socket and storage, pulling from a
    // local registry (named in a registries.conf of the test's own: plain HTTP on 127.0.0.1).
    let reg: TestRegistry | undefined;
    let proc: ReturnType<typeof Bun.spawn> | undefined;
    const socket = join(work, "crio.sock");
    const runtime = criClient(socket, RuntimeServiceMethods, "RuntimeService");
    const image = criClient(socket, ImageServiceMethods, "ImageService");
    try {
      reg = await startRegistry();
      const busybox = busyboxImage({ tag: "1.0" });
      await pushImage(reg.url, "test/busybox", busybox);
      writeFileSync(join(work, "registries.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
      let logs = "";
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
          "--log-dir", join(work, "logs"),
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
      const pulled = await image.call("PullImage", { image: { image: `${reg.host}/test/busybox:1.0` } }, 60_000);
      expect(pulled.imageRef).toBe(busybox.configDigest.replace("sha256:", ""));
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
    } finally {
      runtime.close();
      image.close();
      if (proc && proc.exitCode === null) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      await reg?.stop();
    }

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
