// The `crio` command line, run as the compiled binary: version, config, status, completion,
// man, help, and the exit statuses for bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { runCrio, startDaemon, tempDir, type Daemon } from "./harness.ts";

describe("crio version", () => {
  test("text: one Key: value per line, stamped by the build", async () => {
    const r = await runCrio(["version"]);
    expect(r.code).toBe(0);
    const fields = Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
    expect(fields.Version).toMatch(/^\d+\.\d+\.\d+/);
    expect(fields.GitCommit).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(fields.BuildDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(fields.GitTreeState).toMatch(/^(clean|dirty|unknown)$/);
    expect(fields.Platform).toMatch(/^linux\/(amd64|arm64)$/);
  });

  test("--json", async () => {
    const r = await runCrio(["version", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof j.gitCommit).toBe("string");
    expect(typeof j.buildDate).toBe("string");
  });

  test("crio --version and -v", async () => {
    for (const flag of ["--version", "-v"]) {
      const r = await runCrio([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^crio version \d+\.\d+\.\d+/);
      expect(r.stdout).toContain("GitCommit:");
    }
  });
});

describe("crio config", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("--default prints every table with defaults live", async () => {
    const r = await runCrio(["config", "--default"]);
    expect(r.code).toBe(0);
    const t = parseToml(r.stdout) as any;
    expect(t.crio.api.listen).toBe("/var/run/crio/crio.sock");
    expect(t.crio.runtime.default_runtime).toBe("runc");
    for (const table of ["api", "runtime", "image", "network", "metrics", "tracing", "stats", "nri"]) {
      expect(r.stdout).toContain(`[crio.${table}]`);
    }
  });

  test("defaults commented out, non-defaults live; the output loads back unchanged", async () => {
    const conf = join(dir, "in.conf");
    writeFileSync(conf, `[crio.runtime]\ncgroup_manager = "cgroupfs"\n`);
    const r = await runCrio(["--config", conf, "--config-dir", "", "--log-level", "debug", "config"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cgroup_manager = "cgroupfs"$/m);
    expect(r.stdout).toMatch(/^# listen = "\/var\/run\/crio\/crio.sock"$/m);
    expect(r.stdout).toMatch(/^log_level = "debug"$/m);
    const out = join(dir, "out.conf");
    writeFileSync(out, r.stdout);
    const again = await runCrio(["--config", out, "--config-dir", "", "config"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe("");
    expect(again.stdout).toBe(r.stdout);
  });

  test("drop-ins override the main file in lexical order; env and flags override both", async () => {
    const conf = join(dir, "main.conf");
    const dd = join(dir, "main.conf.d");
    mkdirSync(dd, { recursive: true });
    writeFileSync(conf, `[crio.image]\npause_image = "localhost/main"\n[crio.runtime]\nlog_level = "warn"\n`);
    writeFileSync(join(dd, "20-b.conf"), `[crio.image]\npause_image = "localhost/b"\n`);
    writeFileSync(join(dd, "10-a.conf"), `[crio.image]\npause_image = "localhost/a"\n[crio.runtime]\nlog_level = "error"\n`);
    const r = await runCrio(["-c", conf, "-d", dd, "config"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pause_image = "localhost\/b"$/m);
    expect(r.stdout).toMatch(/^log_level = "error"$/m);
    const env = await runCrio(["-c", conf, "-d", dd, "config"], { env: { CONTAINER_PAUSE_IMAGE: "localhost/env" } });
    expect(env.stdout).toMatch(/^pause_image = "localhost\/env"$/m);
    const flag = await runCrio(["-c", conf, "-d", dd, "--pause-image", "localhost/flag", "config"], { env: { CONTAINER_PAUSE_IMAGE: "localhost/env" } });
    expect(flag.stdout).toMatch(/^pause_image = "localhost\/flag"$/m);
  });

  test("an unknown key warns with file and key, and loading goes on", async () => {
    const conf = join(dir, "unknown.conf");
    writeFileSync(conf, `[crio.runtime]\nno_such_option = 1\n`);
    const r = await runCrio(["-c", conf, "-d", "", "config"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(conf);
    expect(r.stderr).toContain("crio.runtime.no_such_option");
  });

  test("a wrong type exits 1 naming the file and the key", async () => {
    const conf = join(dir, "type.conf");
    writeFileSync(conf, `[crio.runtime]\nctr_stop_timeout = "soon"\n`);
    const r = await runCrio(["-c", conf, "-d", "", "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(conf);
    expect(r.stderr).toContain("ctr_stop_timeout");
  });

  test("an invalid enum exits 1 naming the allowed values", async () => {
    const conf = join(dir, "enum.conf");
    writeFileSync(conf, `[crio.runtime]\ncgroup_manager = "upstart"\n`);
    const r = await runCrio(["-c", conf, "-d", "", "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cgroup_manager");
    expect(r.stderr).toContain("cgroupfs");
  });

  test("an unparseable file exits 1 naming the file and line", async () => {
    const conf = join(dir, "broken.conf");
    writeFileSync(conf, `[crio.runtime]\n\nlog_level = \n`);
    const r = await runCrio(["-c", conf, "-d", "", "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(conf);
    expect(r.stderr).toMatch(/line 3/);
  });

  test("a missing explicit config file is an error; -c '' skips the main file", async () => {
    const r = await runCrio(["-c", join(dir, "nope.conf"), "-d", "", "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nope.conf");
    expect((await runCrio(["-c", "", "-d", "", "config"])).code).toBe(0);
  });

  test("deprecated keys load, mapped and warned about", async () => {
    const conf = join(dir, "old.conf");
    writeFileSync(conf, `[crio.runtime]\nconmon = "/usr/local/bin/conmon"\nconmon_cgroup = "pod"\n[crio.image]\ninsecure_registries = ["localhost:5000"]\n`);
    const r = await runCrio(["-c", conf, "-d", "", "config"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("conmon");
    expect(r.stdout).toMatch(/^monitor_path = "\/usr\/local\/bin\/conmon"$/m);
    expect(r.stdout).toMatch(/^monitor_cgroup = "pod"$/m);
  });
});

describe("crio status", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon({ config: `[crio.runtime]\ncgroup_manager = "cgroupfs"\n` });
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  test("info", async () => {
    const r = await runCrio(["status", "--socket", d.socket, "info"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cgroup driver: cgroupfs");
    expect(r.stdout).toContain("storage driver: overlay");
    expect(r.stdout).toContain("storage graph root: ");
  });

  test("config (alias c)", async () => {
    for (const sub of ["config", "c"]) {
      const r = await runCrio(["status", "-s", d.socket, sub]);
      expect(r.code).toBe(0);
      expect((parseToml(r.stdout) as any).crio.api.listen).toBe(d.socket);
    }
  });

  test("containers --id of an unknown container exits non-zero saying so", async () => {
    const r = await runCrio(["status", "-s", d.socket, "containers", "--id", "deadbeef"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("deadbeef");
  });

  test("containers without --id is a usage error", async () => {
    const r = await runCrio(["status", "-s", d.socket, "containers"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--id");
  });

  test("a missing socket says so and exits non-zero", async () => {
    const r = await runCrio(["status", "--socket", "/nonexistent/crio.sock", "info"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/nonexistent/crio.sock");
    expect(r.stderr).toContain("does not exist");
  });
});

describe("usage", () => {
  test("--help on every command exits 0 with usage", async () => {
    for (const args of [["--help"], ["-h"], ["config", "--help"], ["version", "--help"], ["status", "--help"], ["status", "info", "--help"], ["status", "containers", "--help"], ["completion", "--help"], ["man", "--help"], ["help"]]) {
      const r = await runCrio(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toContain("USAGE");
    }
  });

  test("root help lists the subcommands and option flags with env vars", async () => {
    const r = await runCrio(["--help"]);
    for (const s of ["config", "version", "status", "completion", "man", "--listen", "--cgroup-manager", "CONTAINER_LISTEN"]) {
      expect(r.stdout).toContain(s);
    }
  });

  test("an unknown flag prints usage and exits 2", async () => {
    for (const args of [["--no-such-flag"], ["config", "--bogus"], ["status", "--nope", "info"]]) {
      const r = await runCrio(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("USAGE");
      expect(r.stderr).toContain("flag provided but not defined");
    }
  });

  test("an unknown subcommand prints usage and exits 2", async () => {
    for (const args of [["frobnicate"], ["status", "frobnicate"]]) {
      const r = await runCrio(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("not supported");
    }
  });

  test("a flag missing its value is a usage error", async () => {
    const r = await runCrio(["--listen"]);
    expect(r.code).toBe(2);
  });
});

describe("completion and man", () => {
  test("bash completion is valid bash and completes subcommands", async () => {
    const r = await runCrio(["completion", "bash"]);
    expect(r.code).toBe(0);
    const dir = tempDir();
    try {
      const f = join(dir, "c.bash");
      writeFileSync(f, r.stdout);
      const check = Bun.spawnSync(["bash", "-c", `source ${f}; COMP_WORDS=(crio st); COMP_CWORD=1; _crio_complete; echo "\${COMPREPLY[@]}"; COMP_WORDS=(crio status ""); COMP_CWORD=2; _crio_complete; echo "\${COMPREPLY[@]}"`]);
      const out = check.stdout.toString().split("\n");
      expect(check.exitCode).toBe(0);
      expect(out[0]).toBe("status");
      expect(out[1]).toContain("containers");
      expect(out[1]).toContain("--socket");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("zsh and fish scripts name every subcommand", async () => {
    for (const shell of ["zsh", "fish"]) {
      const r = await runCrio(["completion", shell]);
      expect(r.code).toBe(0);
      for (const s of ["config", "version", "status", "completion", "man"]) expect(r.stdout).toContain(s);
    }
    expect((await runCrio(["completion", "tcsh"])).code).toBe(2);
  });

  test("man pages: crio.8 and crio.conf.5 are roff generated from the schema", async () => {
    const m8 = await runCrio(["man"]);
    expect(m8.code).toBe(0);
    expect(m8.stdout).toContain(".TH");
    expect(m8.stdout).toContain("listen");
    const m5 = await runCrio(["man", "crio.conf.5"]);
    expect(m5.code).toBe(0);
    expect(m5.stdout).toContain(".TH");
    for (const k of ["cgroup_manager", "pause_image", "network_dir", "enable_metrics"]) expect(m5.stdout).toContain(k);
    const d5 = await runCrio(["man", "crio.conf.d.5"]);
    expect(d5.code).toBe(0);
  });
});
