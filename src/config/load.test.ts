import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../errors.ts";
import { rootedFs } from "./fs.ts";
import { loadConfig } from "./load.ts";
import { defaultConfig } from "./schema.ts";
import { load, TempTree } from "./test-helpers.ts";

let t: TempTree;
beforeEach(() => {
  t = new TempTree();
});
afterEach(() => {
  t.cleanup();
});

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const TESTDATA = path.join(import.meta.dir, "testdata");

describe("sources and precedence", () => {
  test("no files: built-in defaults, nothing read", () => {
    const r = load(t);
    expect(r.config).toEqual(defaultConfig());
    expect(r.files).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  test("defaults < main file < drop-ins (lexical) < env < flags", () => {
    t.write(
      "crio.conf",
      `[crio.runtime]\nlog_level = "warn"\npids_limit = -1\n[crio.image]\npause_command = "/main"\npause_image = "main/pause:1"\n[crio.api]\nstream_port = "1"\n[crio.metrics]\nmetrics_port = 1`,
    );
    t.write("crio.conf.d/10-b.conf", `[crio.image]\npause_command = "/ten"\n[crio.api]\nstream_port = "10"\n[crio.metrics]\nmetrics_port = 10`);
    t.write("crio.conf.d/02-a.conf", `[crio.image]\npause_command = "/two"\npause_image = "two/pause:2"\n[crio.api]\nstream_port = "2"\n[crio.metrics]\nmetrics_port = 2`);
    const r = load(t, {
      env: { CONTAINER_STREAM_PORT: "3000", CONTAINER_METRICS_PORT: "3000" },
      flags: { "metrics-port": "4000" },
    });
    const c = r.config;
    expect(c.runtime.log_level).toBe("warn"); // main file only
    expect(c.image.pause_image).toBe("two/pause:2"); // drop-in over main
    expect(c.image.pause_command).toBe("/ten"); // later drop-in over earlier
    expect(c.api.stream_port).toBe("3000"); // env over files
    expect(c.metrics.metrics_port).toBe(4000); // flag over env
    expect(r.files).toEqual([t.path("crio.conf"), t.path("crio.conf.d/02-a.conf"), t.path("crio.conf.d/10-b.conf")]);
    expect(r.warnings).toEqual([]);
  });

  test("drop-in walk is recursive, lexical, and reads every regular file", () => {
    t.write("crio.conf.d/01-x", `[crio.runtime]\nlog_filter = "one"`);
    t.write("crio.conf.d/02-sub/a.txt", `[crio.runtime]\nlog_filter = "sub"`);
    t.write("crio.conf.d/03.toml", `[crio.runtime]\ntimezone = "UTC"`);
    const r = load(t);
    expect(r.files.map((f) => path.relative(t.root, f))).toEqual(["crio.conf.d/01-x", "crio.conf.d/02-sub/a.txt", "crio.conf.d/03.toml"]);
    expect(r.config.runtime.log_filter).toBe("sub");
    expect(r.config.runtime.timezone).toBe("UTC");
  });

  test('"" skips the main file and the drop-in directory', () => {
    t.write("crio.conf", `[crio.runtime]\nlog_level = "debug"`);
    t.write("crio.conf.d/a.conf", `[crio.runtime]\nlog_filter = "x"`);
    const r = load(t, { configFile: "", configDir: "" });
    expect(r.files).toEqual([]);
    expect(r.config.runtime.log_level).toBe("info");
  });

  test("a missing default file is skipped; a missing explicit file is an error", () => {
    expect(load(t, { configFileExplicit: false }).files).toEqual([]);
    const e = configError(() => load(t, { configFileExplicit: true }));
    expect(e.source).toBe(t.path("crio.conf"));
    expect(e.message).toContain("does not exist");
    // --config given as a flag is explicit too
    const e2 = configError(() => load(t, { flags: { config: t.path("nope.conf") } }));
    expect(e2.source).toBe(t.path("nope.conf"));
  });

  test("CONTAINER_CONFIG and CONTAINER_CONFIG_DIR name the files when no option does", () => {
    t.write("other.conf", `[crio.runtime]\nlog_level = "error"`);
    t.write("other.d/x.conf", `[crio.runtime]\nlog_filter = "f"`);
    const r = loadConfig({
      env: { CONTAINER_CONFIG: t.path("other.conf"), CONTAINER_CONFIG_DIR: t.path("other.d") },
      storageConf: t.path("storage.conf"),
    });
    expect(r.config.runtime.log_level).toBe("error");
    expect(r.config.runtime.log_filter).toBe("f");
  });
});

describe("merging", () => {
  test("runtime handlers merge per handler across files", () => {
    t.write("crio.conf", `[crio.runtime.runtimes.kata]\nruntime_path = "/usr/bin/containerd-shim-kata-v2"\nruntime_type = "vm"`);
    t.write("crio.conf.d/10-runc.conf", `[crio.runtime.runtimes.runc]\nruntime_path = "/usr/libexec/crio/runc"`);
    t.write("crio.conf.d/20-kata.conf", `[crio.runtime.runtimes.kata]\nprivileged_without_host_devices = true`);
    const rt = load(t).config.runtime.runtimes;
    expect(Object.keys(rt).sort()).toEqual(["crun", "kata", "runc"]);
    // runc: only runtime_path changed, the built-in fields stay
    expect(rt.runc!.runtime_path).toBe("/usr/libexec/crio/runc");
    expect(rt.runc!.runtime_root).toBe("/run/runc");
    expect(rt.runc!.monitor_env).toEqual(defaultConfig().runtime.runtimes.runc!.monitor_env);
    // kata: fields from both files
    expect(rt.kata!.runtime_type).toBe("vm");
    expect(rt.kata!.runtime_path).toBe("/usr/bin/containerd-shim-kata-v2");
    expect(rt.kata!.privileged_without_host_devices).toBe(true);
    expect(rt.kata!.runtime_root).toBe("");
    // crun untouched
    expect(rt.crun).toEqual(defaultConfig().runtime.runtimes.crun!);
  });

  test("workloads merge, including their resources table", () => {
    t.write("crio.conf", `[crio.runtime.workloads.mgmt]\nactivation_annotation = "a/b"\n[crio.runtime.workloads.mgmt.resources]\ncpuset = "0-1"`);
    t.write("crio.conf.d/1.conf", `[crio.runtime.workloads.mgmt.resources]\ncpushares = 512`);
    const w = load(t).config.runtime.workloads.mgmt!;
    expect(w.activation_annotation).toBe("a/b");
    expect(w.resources).toEqual({ cpushares: 512, cpuset: "0-1", cpuquota: 0, cpuperiod: 0, cpulimit: 0 });
  });

  test("storage_option accumulates across files, de-duplicated keeping the last", () => {
    t.write("storage.conf", `[storage]\ndriver = "overlay"\n[storage.options.overlay]\nmountopt = "nodev"`);
    t.write("crio.conf", `[crio]\nstorage_option = ["a=1", "b=2"]`);
    t.write("crio.conf.d/1.conf", `[crio]\nstorage_option = ["c=3", "a=1"]`);
    const r = load(t);
    expect(r.config.storage_option).toEqual(["overlay.mountopt=nodev", "b=2", "c=3", "a=1"]);
    // a flag replaces the list
    expect(load(t, { flags: { "storage-opt": ["x=1,y=2"] } }).config.storage_option).toEqual(["x=1", "y=2"]);
  });

  test("storage values come from storage.conf; empty crio values keep them", () => {
    t.write(
      "storage.conf",
      `[storage]\ndriver = "btrfs"\ngraphroot = "/srv/graph"\nrunroot = "/run/graph"\n[storage.options]\nadditionalimagestores = ["/ro/store"]`,
    );
    t.write("crio.conf", `[crio]\nroot = ""\nrunroot = ""\nstorage_driver = ""`);
    const r = load(t);
    expect(r.config.root).toBe("/srv/graph");
    expect(r.config.runroot).toBe("/run/graph");
    expect(r.config.storage_driver).toBe("btrfs");
    expect(r.config.storage_option).toEqual(["btrfs.imagestore=/ro/store"]);
    expect(r.defaults.root).toBe("/srv/graph");
  });

  test("storage.conf from CONTAINERS_STORAGE_CONF, fallbacks when absent, STORAGE_DRIVER override", () => {
    const p = t.write("elsewhere/storage.conf", `[storage]\ngraphroot = "/g"`);
    const r = loadConfig({
      configFile: "",
      configDir: "",
      env: { CONTAINERS_STORAGE_CONF: p, STORAGE_DRIVER: "vfs" },
    });
    expect(r.config.root).toBe("/g");
    expect(r.config.runroot).toBe("/run/containers/storage");
    expect(r.config.storage_driver).toBe("vfs");
    const none = load(t);
    expect([none.config.root, none.config.runroot, none.config.storage_driver]).toEqual([
      "/var/lib/containers/storage",
      "/run/containers/storage",
      "overlay",
    ]);
  });

  test("a broken storage.conf is a ConfigError naming it", () => {
    t.write("storage.conf", `[storage\ndriver = 1`);
    const e = configError(() => load(t));
    expect(e.source).toBe(t.path("storage.conf"));
    expect(e.line).toBe(1);
  });
});

describe("bad input", () => {
  test("unknown keys warn with file, line and dotted key; loading continues", () => {
    t.write("crio.conf", `[crio.runtime]\nlog_level = "debug"\nno_such_option = 1\n\n[crio.runtime.runtimes.runc]\nbogus = true\n\n[other]\nx = 1`);
    const r = load(t);
    expect(r.config.runtime.log_level).toBe("debug");
    const f = t.path("crio.conf");
    expect(r.warnings).toContain(`${f}:3: unknown key "crio.runtime.no_such_option" (ignored)`);
    expect(r.warnings).toContain(`${f}:6: unknown key "crio.runtime.runtimes.runc.bogus" (ignored)`);
    expect(r.warnings.some((w) => w.startsWith(`${f}:8: unknown key "other"`))).toBe(true);
  });

  test("a wrong type names file, line, key and the expected form", () => {
    t.write("crio.conf.d/50.conf", `[crio.runtime]\n\nlog_level = "info"\nctr_stop_timeout = "30"`);
    const e = configError(() => load(t));
    expect(e.source).toBe(t.path("crio.conf.d/50.conf"));
    expect(e.line).toBe(4);
    expect(e.key).toBe("crio.runtime.ctr_stop_timeout");
    expect(e.message).toContain("expected an integer");
    expect(e.message).toContain(`the string "30"`);
  });

  test("invalid enum values are rejected", () => {
    const cases: [string, string, string][] = [
      ["crio.runtime", "cgroup_manager", `"cgroupv2"`],
      ["crio.runtime", "log_level", `"verbose"`],
      ["crio.image", "short_name_mode", `"permissive"`],
      ["crio.image", "image_volumes", `"tmpfs"`],
      ["crio.api", "tls_min_version", `"TLS1.2"`],
      ["crio.checkpoint_restore", "container_level_enabled", `"yes"`],
    ];
    for (const [table, key, value] of cases) {
      t.write("crio.conf", `[${table}]\n${key} = ${value}`);
      const e = configError(() => load(t));
      expect(e.key).toBe(`${table}.${key}`);
      expect(e.line).toBe(2);
      expect(e.message).toContain("expected one of");
    }
  });

  test("log levels are case-insensitive like logrus", () => {
    t.write("crio.conf", `[crio.runtime]\nlog_level = "DEBUG"`);
    expect(load(t).config.runtime.log_level).toBe("DEBUG" as never);
  });

  test("handler fields are type-checked too", () => {
    t.write("crio.conf", `[crio.runtime.runtimes.runc]\nruntime_type = "docker"`);
    const e = configError(() => load(t));
    expect(e.key).toBe("crio.runtime.runtimes.runc.runtime_type");
    expect(e.line).toBe(2);
  });

  test("an unparseable file names the file and line", () => {
    t.write("crio.conf", `[crio]\nroot = "/x"\nthis is not toml\n`);
    const e = configError(() => load(t));
    expect(e.source).toBe(t.path("crio.conf"));
    expect(e.line).toBe(3);
    expect(e.message).toContain("not valid TOML");
  });

  test("default_runtime without a handler table is an error naming where it was set", () => {
    t.write("crio.conf", `[crio.runtime]\ndefault_runtime = "kata"`);
    const e = configError(() => load(t));
    expect(e.source).toBe(t.path("crio.conf"));
    expect(e.line).toBe(2);
    expect(e.key).toBe("crio.runtime.default_runtime");
    expect(e.message).toContain("[crio.runtime.runtimes.kata]");
    // ... and fine when a drop-in defines it
    t.write("crio.conf.d/k.conf", `[crio.runtime.runtimes.kata]\nruntime_type = "vm"`);
    expect(load(t).config.runtime.default_runtime).toBe("kata");
  });

  test('an empty default_runtime falls back to "runc"', () => {
    t.write("crio.conf", `[crio.runtime]\ndefault_runtime = ""`);
    expect(load(t).config.runtime.default_runtime).toBe("runc");
  });

  test("log_size_max between 0 and 8191 is rejected", () => {
    t.write("crio.conf", `[crio.runtime]\nlog_size_max = 100`);
    expect(configError(() => load(t)).key).toBe("crio.runtime.log_size_max");
  });

  test("bad flag and env values name their source", () => {
    const e = configError(() => load(t, { flags: { "cgroup-manager": "foo" } }));
    expect(e.source).toBe("flag --cgroup-manager");
    const e2 = configError(() => load(t, { env: { CONTAINER_METRICS_PORT: "ninety" } }));
    expect(e2.source).toBe("environment variable CONTAINER_METRICS_PORT");
    expect(e2.key).toBe("crio.metrics.metrics_port");
  });
});

describe("flags and environment", () => {
  test("slice flags take comma-separated values and repeats; aliases work", () => {
    const r = load(t, {
      flags: {
        "default-capabilities": ["CHOWN,KILL", "NET_RAW"],
        l: "debug",
        tz: "UTC",
        selinux: true,
        "enable-metrics": "true",
        "pull-progress-timeout": "90s",
      },
    });
    expect(r.config.runtime.default_capabilities).toEqual(["CHOWN", "KILL", "NET_RAW"]);
    expect(r.config.runtime.log_level).toBe("debug");
    expect(r.config.runtime.timezone).toBe("UTC");
    expect(r.config.runtime.selinux).toBe(true);
    expect(r.config.metrics.enable_metrics).toBe(true);
    expect(r.config.image.pull_progress_timeout).toBe("1m30s");
  });

  test("environment slices split on commas; booleans parse like Go", () => {
    const r = load(t, { env: { CONTAINER_HOOKS_DIR: "/a,/b", CONTAINER_DROP_INFRA_CTR: "false", CONTAINER_LOG_FORMAT: "json" } });
    expect(r.config.runtime.hooks_dir).toEqual(["/a", "/b"]);
    expect(r.config.runtime.drop_infra_ctr).toBe(false);
    expect(r.config.flagOnly.log_format).toBe("json");
  });

  test("--runtimes adds handlers from name:path:root:type:priv:config:minmem", () => {
    const r = load(t, {
      flags: {
        runtimes: ["kata:/usr/bin/containerd-shim-kata-v2:/run/vc:vm:true:/etc/kata.toml:128MiB", "youki:/usr/bin/youki:/run/youki"],
        "default-runtime": "youki",
      },
    });
    const k = r.config.runtime.runtimes.kata!;
    expect([k.runtime_path, k.runtime_root, k.runtime_type, k.privileged_without_host_devices, k.runtime_config_path, k.container_min_memory]).toEqual([
      "/usr/bin/containerd-shim-kata-v2",
      "/run/vc",
      "vm",
      true,
      "/etc/kata.toml",
      "128MiB",
    ]);
    expect(r.config.runtime.runtimes.youki!.runtime_type).toBe("oci");
    expect(r.config.runtime.default_runtime).toBe("youki");
    expect(configError(() => load(t, { flags: { runtimes: ["broken"] } })).source).toBe("flag --runtimes");
  });

  test("registries.conf paths: flag > CONTAINER_REGISTRIES_CONF > CONTAINERS_REGISTRIES_CONF > default", () => {
    expect(load(t).config.image.registries_conf).toBe("/etc/containers/registries.conf");
    expect(load(t).config.image.registries_conf_dir).toBe("/etc/containers/registries.conf.d");
    expect(load(t, { env: { CONTAINERS_REGISTRIES_CONF: "/c" } }).config.image.registries_conf).toBe("/c");
    expect(load(t, { env: { CONTAINERS_REGISTRIES_CONF: "/c", CONTAINER_REGISTRIES_CONF: "/b" } }).config.image.registries_conf).toBe("/b");
    expect(
      load(t, { env: { CONTAINER_REGISTRIES_CONF: "/b" }, flags: { "registries-conf": "/a", "registries-conf-dir": "/d" } }).config.image,
    ).toMatchObject({ registries_conf: "/a", registries_conf_dir: "/d" });
  });

  test("registries_conf is not a crio.conf key", () => {
    t.write("crio.conf", `[crio.image]\nregistries_conf = "/x"`);
    const r = load(t);
    expect(r.config.image.registries_conf).toBe("/etc/containers/registries.conf");
    expect(r.warnings[0]).toContain(`unknown key "crio.image.registries_conf"`);
  });

  test("flag-only settings land in config.flagOnly", () => {
    const r = load(t, { flags: { log: "/var/log/crio.log", "log-format": "json", profile: true, "profile-port": "7070" } });
    expect(r.config.flagOnly).toMatchObject({ log: "/var/log/crio.log", log_format: "json", profile: true, profile_port: 7070 });
  });
});

describe("deprecated and removed keys", () => {
  test("conmon, conmon_cgroup and conmon_env map to the monitor fields of OCI handlers", () => {
    t.write(
      "crio.conf",
      `[crio.runtime]\nconmon = "/usr/libexec/crio/conmon"\nconmon_cgroup = "pod"\nconmon_env = ["PATH=/opt/bin"]\n` +
        `[crio.runtime.runtimes.runc]\nmonitor_path = "/custom/conmon"\n` +
        `[crio.runtime.runtimes.kata]\nruntime_type = "vm"\n`,
    );
    const r = load(t);
    const rt = r.config.runtime.runtimes;
    expect(rt.runc!.monitor_path).toBe("/custom/conmon"); // keeps its own
    expect(rt.crun!.monitor_path).toBe("/usr/libexec/crio/conmon");
    expect(rt.crun!.monitor_cgroup).toBe("pod");
    expect(rt.crun!.monitor_env).toEqual(["PATH=/opt/bin"]);
    expect(rt.kata!.monitor_path).toBe(""); // not an OCI handler
    const f = t.path("crio.conf");
    expect(r.warnings).toContain(
      `${f}:2: "crio.runtime.conmon" is deprecated; use monitor_path in [crio.runtime.runtimes.<handler>] (applied to the handlers that set none)`,
    );
    expect(r.warnings.filter((w) => w.includes("is deprecated; use monitor_"))).toHaveLength(3);
  });

  test("the deprecated --conmon flag maps the same way", () => {
    const r = load(t, { flags: { conmon: "/opt/conmon" } });
    expect(r.config.runtime.runtimes.runc!.monitor_path).toBe("/opt/conmon");
    expect(r.warnings[0]).toContain("--conmon is deprecated");
  });

  test("removed keys from 1.2x files are accepted and warned about", () => {
    const p = path.join(TESTDATA, "crio-legacy-1.2x.conf");
    const r = load(t, { configFile: p });
    const c = r.config;
    expect(c.network.plugin_dirs).toEqual(["/opt/cni/bin/", "/usr/lib/cni"]);
    expect(c.runtime.runtimes.runc!.monitor_path).toBe("/usr/libexec/crio/conmon");
    expect(c.runtime.runtimes.runc!.monitor_cgroup).toBe("pod");
    expect(c.runtime.log_size_max).toBe(16384);
    expect(c.runtime.ctr_stop_timeout).toBe(60);
    expect(c.image.insecure_registries).toEqual(["10.0.0.1:5000"]);
    for (const key of [
      "crio.api.host_ip",
      "crio.runtime.manage_ns_lifecycle",
      "crio.runtime.manage_network_ns_lifecycle",
      "crio.runtime.default_mounts",
      "crio.runtime.seccomp_use_default_when_empty",
      "crio.image.registries",
      "crio.network.plugin_dir",
      "crio.nri.nri_config_file",
      "crio.runtime.log_size_max",
      "crio.image.insecure_registries",
    ]) {
      const w = r.warnings.find((x) => x.includes(`"${key}"`));
      expect(w, key).toBeDefined();
      expect(w!.startsWith(`${p}:`)).toBe(true);
    }
    expect(r.warnings.find((w) => w.includes("crio.image.registries"))).toContain("unqualified-search-registries");
    expect(r.warnings.find((w) => w.includes("crio.network.plugin_dir"))).toContain("plugin_dirs");
  });

  test("a crio config output of a CRI-O 1.26-era release loads", () => {
    const p = path.join(TESTDATA, "crio-1.26-generated.conf");
    const r = load(t, { configFile: p });
    const c = r.config;
    expect(c.storage_option).toEqual(["overlay.mountopt=nodev,metacopy=on"]);
    expect(c.version_file_persist).toBe("/var/lib/crio/version");
    expect(c.runtime.runtimes.runc!.runtime_path).toBe("/usr/bin/runc");
    expect(c.runtime.runtimes.crun!.runtime_path).toBe("/usr/bin/crun");
    expect(c.runtime.runtimes.kata!.runtime_type).toBe("vm");
    expect(c.runtime.runtimes.kata!.monitor_path).toBe("");
    expect(c.runtime.workloads.management!.resources.cpuset).toBe("0-1");
    expect(c.image.pause_image).toBe("registry.k8s.io/pause:3.6");
    expect(c.runtime.pinns_path).toBe("/usr/bin/pinns");
    expect(c.nri.enable_nri).toBe(false);
    expect(c.network.plugin_dirs).toEqual(["/opt/cni/bin/", "/usr/libexec/cni"]);
    expect(c.runtime.enable_criu_support).toBe(false);
    // every warning names the fixture and a key that was deprecated or removed
    expect(r.warnings.length).toBeGreaterThan(0);
    for (const w of r.warnings) {
      expect(w.startsWith(`${p}:`)).toBe(true);
      expect(w).not.toContain("unknown key");
    }
    const keys = r.warnings.map((w) => /"([^"]+)"/.exec(w)?.[1]).sort();
    expect(keys).toEqual(
      [
        "crio.runtime.conmon",
        "crio.runtime.conmon_cgroup",
        "crio.runtime.conmon_env",
        "crio.runtime.seccomp_use_default_when_empty",
        "crio.runtime.pids_limit",
        "crio.runtime.enable_criu_support",
      ].sort(),
    );
  });
});

describe("purity", () => {
  test("loading never creates directories", () => {
    t.write("crio.conf", `[crio]\nlog_dir = "${t.path("logs")}"\n[crio.network]\nnetwork_dir = "${t.path("net")}"`);
    load(t);
    expect(existsSync(t.path("logs"))).toBe(false);
    expect(existsSync(t.path("net"))).toBe(false);
  });
});

describe("injectable file system", () => {
  test("rootedFs resolves the default paths below a directory", () => {
    t.write("etc/crio/crio.conf", `[crio.runtime]\nlog_level = "debug"`);
    t.write("etc/crio/crio.conf.d/10.conf", `[crio.runtime]\nlog_filter = "x"`);
    t.write("etc/containers/storage.conf", `[storage]\ndriver = "overlay"\ngraphroot = "/data/storage"`);
    const r = loadConfig({ fs: rootedFs(t.root), env: {} });
    expect(r.files).toEqual(["/etc/crio/crio.conf", "/etc/crio/crio.conf.d/10.conf"]);
    expect(r.config.runtime.log_level).toBe("debug");
    expect(r.config.runtime.log_filter).toBe("x");
    expect(r.config.root).toBe("/data/storage");
  });
});
