import { describe, expect, test } from "bun:test";
import { canonicalDuration, durationToMs, formatGoDuration, parseGoDuration } from "./duration.ts";
import { flagDefs } from "./flags.ts";
import {
  allOptions,
  configKeyOf,
  defaultConfig,
  LEGACY_KEYS,
  reloadableKeys,
  RUNTIME_HANDLER_OPTIONS,
  sectionOf,
  TABLES,
  WORKLOAD_OPTIONS,
  WORKLOAD_RESOURCE_OPTIONS,
  type OptionSpec,
} from "./schema.ts";

function checkSpec(name: string, spec: OptionSpec): void {
  expect(spec.doc.length, `${name} doc`).toBeGreaterThan(10);
  const d = spec.default as unknown;
  switch (spec.kind) {
    case "string":
    case "duration":
      expect(typeof d, name).toBe("string");
      if (spec.kind === "duration" && d !== "") expect(canonicalDuration(d as string), name).toBe(d as string);
      break;
    case "enum":
      expect(spec.values as readonly string[], name).toContain(d as string);
      break;
    case "bool":
      expect(typeof d, name).toBe("boolean");
      break;
    case "int":
      expect(Number.isInteger(d), name).toBe(true);
      break;
    case "float":
      expect(typeof d, name).toBe("number");
      break;
    case "string[]":
      expect(Array.isArray(d) && (d as unknown[]).every((x) => typeof x === "string"), name).toBe(true);
      break;
    case "map":
      expect(typeof d === "object" && d !== null && !Array.isArray(d), name).toBe(true);
      break;
  }
}

describe("schema", () => {
  test("every option has a doc, a known type and a default of that type", () => {
    for (const { table, key, spec } of allOptions()) checkSpec(`${table.id}.${key}`, spec);
    for (const [k, s] of Object.entries(RUNTIME_HANDLER_OPTIONS)) checkSpec(`handler.${k}`, s as OptionSpec);
    for (const [k, s] of Object.entries(WORKLOAD_OPTIONS)) checkSpec(`workload.${k}`, s as OptionSpec);
    for (const [k, s] of Object.entries(WORKLOAD_RESOURCE_OPTIONS)) checkSpec(`resources.${k}`, s as OptionSpec);
  });

  test("the schema is big enough to be all of crio.conf(5)", () => {
    const top = allOptions().filter((o) => o.spec.toml !== false).length;
    const handler = Object.keys(RUNTIME_HANDLER_OPTIONS).length;
    expect(top).toBeGreaterThanOrEqual(110);
    expect(handler).toBe(20);
  });

  test("flag names, aliases and environment variables are unique", () => {
    const names = new Map<string, string>();
    const envs = new Map<string, string>();
    for (const f of flagDefs()) {
      for (const n of [f.name, ...f.aliases]) {
        expect(names.has(n), `flag name ${n} used by ${names.get(n)} and ${f.name}`).toBe(false);
        names.set(n, f.name);
      }
      for (const e of [...(f.env ? [f.env] : []), ...(f.envFallback ?? [])]) {
        expect(envs.has(e), `env ${e} used by ${envs.get(e)} and ${f.name}`).toBe(false);
        envs.set(e, f.name);
      }
    }
  });

  test("a table key never collides with a legacy key", () => {
    for (const l of LEGACY_KEYS) {
      const t = TABLES.find((x) => x.id === l.table);
      expect(t, l.table).toBeDefined();
      expect(Object.hasOwn(t!.options, l.key), `${l.table}.${l.key}`).toBe(false);
    }
  });

  // CRI-O's DefaultConfig on Linux (pkg/config/config.go, crio.conf(5)), with this project's
  // runtime decisions (runc default with runc and crun handlers).
  const CRIO_DEFAULTS: Record<string, unknown> = {
    root: "/var/lib/containers/storage",
    runroot: "/run/containers/storage",
    storage_driver: "overlay",
    log_dir: "/var/log/crio/pods",
    version_file: "/var/run/crio/version",
    version_file_persist: "",
    internal_wipe: true,
    internal_repair: true,
    clean_shutdown_file: "/var/lib/crio/clean.shutdown",
    "api.listen": "/var/run/crio/crio.sock",
    "api.stream_address": "127.0.0.1",
    "api.stream_port": "0",
    "api.grpc_max_send_msg_size": 83886080,
    "api.grpc_max_recv_msg_size": 83886080,
    "runtime.default_runtime": "runc",
    "runtime.cgroup_manager": "systemd",
    "runtime.log_level": "info",
    "runtime.decryption_keys_path": "/etc/crio/keys/",
    "runtime.apparmor_profile": "crio-default",
    "runtime.default_capabilities": ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"],
    "runtime.allowed_devices": ["/dev/fuse", "/dev/net/tun"],
    "runtime.cdi_spec_dirs": ["/etc/cdi", "/var/run/cdi"],
    "runtime.hooks_dir": ["/usr/share/containers/oci/hooks.d"],
    "runtime.pids_limit": -1,
    "runtime.log_size_max": -1,
    "runtime.container_exits_dir": "/var/run/crio/exits",
    "runtime.container_attach_socket_dir": "/var/run/crio",
    "runtime.minimum_mappable_uid": -1,
    "runtime.minimum_mappable_gid": -1,
    "runtime.ctr_stop_timeout": 30,
    "runtime.drop_infra_ctr": true,
    "runtime.namespaces_dir": "/var/run",
    "runtime.irqbalance_config_file": "/etc/sysconfig/irqbalance",
    "runtime.irqbalance_config_restore_file": "/etc/sysconfig/orig_irq_banned_cpus",
    "runtime.hostnetwork_disable_selinux": true,
    "runtime.enable_criu_support": true,
    "image.default_transport": "docker://",
    "image.pause_image": "registry.k8s.io/pause:3.10.1",
    "image.pause_command": "/pause",
    "image.signature_policy_dir": "/etc/crio/policies",
    "image.namespaced_auth_dir": "/etc/crio/auth",
    "image.image_volumes": "mkdir",
    "image.short_name_mode": "enforcing",
    "image.pull_progress_timeout": "0s",
    "image.oci_artifact_mount_support": true,
    "network.network_dir": "/etc/cni/net.d/",
    "network.plugin_dirs": ["/opt/cni/bin/"],
    "metrics.metrics_host": "127.0.0.1",
    "metrics.metrics_port": 9090,
    "tracing.tracing_endpoint": "127.0.0.1:4317",
    "tracing.tracing_sampling_rate_per_million": 0,
    "nri.enable_nri": true,
    "nri.nri_listen": "/var/run/nri/nri.sock",
    "nri.nri_plugin_dir": "/opt/nri/plugins",
    "nri.nri_plugin_config_dir": "/etc/nri/conf.d",
    "nri.nri_plugin_registration_timeout": "5s",
    "nri.nri_plugin_request_timeout": "2s",
    "nri.default_validator.nri_enable_default_validator": false,
    "stats.collection_period": 0,
    "flagOnly.log_format": "text",
    "flagOnly.profile_port": 6060,
  };

  test("defaults match CRI-O's DefaultConfig", () => {
    const d = defaultConfig() as unknown as Record<string, unknown>;
    for (const [path, want] of Object.entries(CRIO_DEFAULTS)) {
      let cur: unknown = d;
      for (const p of path.split(".")) cur = (cur as Record<string, unknown>)[p];
      expect(cur, path).toEqual(want);
    }
    expect(defaultConfig().metrics.metrics_collectors).toHaveLength(18);
  });

  test("runc and crun are defined out of the box", () => {
    const r = defaultConfig().runtime.runtimes;
    expect(Object.keys(r).sort()).toEqual(["crun", "runc"]);
    expect(r.runc!.runtime_root).toBe("/run/runc");
    expect(r.crun!.runtime_root).toBe("/run/crun");
    for (const h of [r.runc!, r.crun!]) {
      expect(h.monitor_path).toBe("");
      expect(h.runtime_type).toBe("oci");
      expect(h.monitor_env).toEqual(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    }
  });

  test("defaults are fresh objects", () => {
    const a = defaultConfig();
    a.runtime.default_capabilities.push("SYS_ADMIN");
    a.runtime.runtimes.runc!.monitor_env.push("X=1");
    const b = defaultConfig();
    expect(b.runtime.default_capabilities).not.toContain("SYS_ADMIN");
    expect(b.runtime.runtimes.runc!.monitor_env).toHaveLength(1);
  });

  test("reloadable options are CRI-O's reload.go set", () => {
    expect(reloadableKeys().sort()).toEqual(
      [
        "runtime.log_level",
        "runtime.log_filter",
        "image.pause_image",
        "image.pause_image_auth_file",
        "image.pause_command",
        "image.pinned_images",
        "runtime.decryption_keys_path",
        "runtime.seccomp_profile",
        "runtime.privileged_seccomp_profile",
        "runtime.apparmor_profile",
        "runtime.blockio_config_file",
        "runtime.blockio_reload",
        "runtime.rdt_config_file",
        "runtime.default_runtime",
        "runtime.cdi_spec_dirs",
        "runtime.runtimes",
      ].sort(),
    );
  });

  test("env variables follow CRI-O's names", () => {
    const env = new Map(flagDefs().map((f) => [f.name, f.env]));
    expect(env.get("log-level")).toBe("CONTAINER_LOG_LEVEL");
    expect(env.get("root")).toBe("CONTAINER_ROOT");
    expect(env.get("cni-plugin-dir")).toBe("CONTAINER_CNI_PLUGIN_DIR");
    expect(env.get("stream-enable-tls")).toBe("CONTAINER_ENABLE_TLS");
    expect(env.get("separate-pull-cgroup")).toBe("PULL_IN_A_CGROUP");
    expect(env.get("timezone")).toBe("CONTAINER_TIME_ZONE");
    expect(env.get("ctr-stop-timeout")).toBe("CONTAINER_STOP_TIMEOUT");
    expect(env.get("config")).toBe("CONTAINER_CONFIG");
  });

  test("sectionOf reaches nested tables", () => {
    const d = defaultConfig();
    const t = TABLES.find((x) => x.id === "crio.nri.default_validator")!;
    expect(sectionOf(d, t)).toBe(d.nri.default_validator as unknown as Record<string, unknown>);
    expect(configKeyOf(t, "nri_enable_default_validator")).toBe("nri.default_validator.nri_enable_default_validator");
  });
});

describe("durations", () => {
  test("parse and format like Go", () => {
    expect(parseGoDuration("1m30s")).toBe(90_000_000_000n);
    expect(parseGoDuration("1.5h")).toBe(5_400_000_000_000n);
    expect(parseGoDuration("300ms")).toBe(300_000_000n);
    expect(parseGoDuration("0")).toBe(0n);
    expect(parseGoDuration("10")).toBeUndefined();
    expect(parseGoDuration("abc")).toBeUndefined();
    expect(parseGoDuration("")).toBeUndefined();
    expect(formatGoDuration(0n)).toBe("0s");
    expect(formatGoDuration(60_000_000_000n)).toBe("1m0s");
    expect(formatGoDuration(3_600_000_000_000n)).toBe("1h0m0s");
    expect(formatGoDuration(1_500_000_000n)).toBe("1.5s");
    expect(formatGoDuration(2_000_000n)).toBe("2ms");
    expect(formatGoDuration(1_500n)).toBe("1.5\u00b5s");
    expect(canonicalDuration("90s")).toBe("1m30s");
    expect(durationToMs("2s")).toBe(2000);
    expect(durationToMs("")).toBe(0);
  });
});
