import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { parse } from "smol-toml";
import { configToToml, renderConfig } from "./render.ts";
import { defaultConfig, zeroHandler, type Config } from "./schema.ts";
import { load, TempTree } from "./test-helpers.ts";

let t: TempTree;
beforeEach(() => {
  t = new TempTree();
});
afterEach(() => {
  t.cleanup();
});

function roundTrip(text: string): ReturnType<typeof load> {
  t.write("crio.conf", text);
  return load(t);
}

/** A configuration that differs from the defaults almost everywhere. */
function customConfig(): Config {
  const c = defaultConfig();
  c.root = "/srv/crio/root";
  c.storage_option = ["overlay.mountopt=nodev", "overlay.size=10G"];
  c.log_dir = "/var/log/pods with space";
  c.internal_repair = false;
  c.api.listen = "/run/crio/other.sock";
  c.api.stream_port = "10010";
  c.api.stream_idle_timeout = "4h";
  c.api.tls_min_version = "VersionTLS13";
  c.api.tls_cipher_suites = ["TLS_AES_128_GCM_SHA256"];
  c.api.grpc_max_recv_msg_size = 1024;
  c.runtime.default_ulimits = ["nofile=1024:2048"];
  c.runtime.default_env = ['QUOTE="x"', "BACKSLASH=a\\b", "NEWLINE=a\nb", "TAB=\t", "UNICODE=\u00e9\u4e2d", "DEL=\u007f"];
  c.runtime.min_injected_gomaxprocs = 2;
  c.runtime.selinux = true;
  c.runtime.cgroup_manager = "cgroupfs";
  c.runtime.default_capabilities = [];
  c.runtime.log_level = "debug";
  c.runtime.log_filter = "^request:.*$";
  c.runtime.default_runtime = "kata.qemu";
  c.runtime.timezone = "Local";
  c.runtime.runtimes.runc!.runtime_path = "/usr/libexec/crio/runc";
  c.runtime.runtimes.runc!.monitor_env = [];
  c.runtime.runtimes["kata.qemu"] = {
    ...zeroHandler(),
    runtime_path: "/usr/bin/containerd-shim-kata-v2",
    runtime_type: "vm",
    runtime_config_path: "/etc/kata/qemu.toml",
    platform_runtime_paths: { "linux/arm64": "/usr/bin/kata-arm64", 'weird "key"': "/x" },
    default_annotations: { "io.kubernetes.cri-o.userns-mode": "auto" },
    container_create_timeout: 60,
  };
  c.runtime.workloads["management"] = {
    activation_annotation: "target.workload.openshift.io/management",
    annotation_prefix: "resources.workload.openshift.io",
    allowed_annotations: [],
    resources: { cpushares: 1024, cpuset: "0-1", cpuquota: 0, cpuperiod: 100000, cpulimit: 0 },
  };
  c.checkpoint_restore.container_level_enabled = "none";
  c.image.pause_image = "registry.example.com/pause:9";
  c.image.pinned_images = ["quay.io/*", "*keyword*"];
  c.image.image_volumes = "bind";
  c.image.pull_progress_timeout = "1m30s";
  c.image.short_name_mode = "disabled";
  c.network.plugin_dirs = ["/opt/cni/bin", "/usr/libexec/cni"];
  c.network.cni_status_grace_period = "10s";
  c.metrics.enable_metrics = true;
  c.metrics.metrics_collectors = ["operations_total"];
  c.tracing.tracing_sampling_rate_per_million = 1000000;
  c.nri.enable_nri = false;
  c.nri.nri_plugin_request_timeout = "500ms";
  c.nri.default_validator.nri_enable_default_validator = true;
  c.nri.default_validator.nri_validator_required_plugins = ["policy"];
  c.stats.collection_period = 10;
  c.stats.included_pod_metrics = ["cpu", "memory"];
  return c;
}

describe("crio config", () => {
  test("defaults round-trip without warnings", () => {
    const d = defaultConfig();
    const r = roundTrip(renderConfig(d));
    expect(r.warnings).toEqual([]);
    expect(r.config).toEqual(d);
  });

  test("a non-default configuration round-trips without warnings", () => {
    const c = customConfig();
    const text = renderConfig(c);
    const r = roundTrip(text);
    expect(r.warnings).toEqual([]);
    expect(r.config).toEqual(c);
  });

  test("rendering is stable: render(load(render(c))) === render(c)", () => {
    const c = customConfig();
    const text = renderConfig(c);
    expect(renderConfig(roundTrip(text).config)).toBe(text);
  });

  test("defaults are commented out, other values live, headers always live", () => {
    const c = defaultConfig();
    c.runtime.log_level = "debug";
    const text = renderConfig(c);
    expect(text).toContain('\nlog_level = "debug"\n');
    expect(text).toContain('\n# cgroup_manager = "systemd"\n');
    expect(text).toContain('\n# default_capabilities = [\n# \t"CHOWN",\n# \t"DAC_OVERRIDE",');
    expect(text).toContain("\n# storage_option = [\n# ]\n");
    for (const h of [
      "[crio]",
      "[crio.api]",
      "[crio.runtime]",
      "[crio.runtime.runtimes.crun]",
      "[crio.runtime.runtimes.runc]",
      "[crio.checkpoint_restore]",
      "[crio.image]",
      "[crio.network]",
      "[crio.metrics]",
      "[crio.tracing]",
      "[crio.nri]",
      "[crio.nri.default_validator]",
      "[crio.stats]",
    ]) {
      expect(text).toContain(`\n${h}\n`);
    }
    // CRI-O's table order
    const order = ["[crio]", "[crio.api]", "[crio.runtime]", "[crio.checkpoint_restore]", "[crio.image]", "[crio.network]", "[crio.metrics]", "[crio.tracing]", "[crio.nri]", "[crio.stats]"];
    const pos = order.map((h) => text.indexOf(`\n${h}\n`));
    expect([...pos].sort((a, b) => a - b)).toEqual(pos);
    // every option is preceded by its documentation
    expect(text).toMatch(/# Least severe level of daemon log messages that are written\. Reloaded on\n# SIGHUP\.\nlog_level = "debug"/);
    // flag-only settings are not part of crio.conf
    expect(text).not.toContain("log_format");
    expect(text).not.toContain("registries_conf");
  });

  test("live arrays put one quoted element per line after a tab", () => {
    const c = defaultConfig();
    c.runtime.hooks_dir = ["/a", "/b"];
    expect(renderConfig(c)).toContain('\nhooks_dir = [\n\t"/a",\n\t"/b",\n]\n');
  });

  test("--default prints every option live and loads as the defaults", () => {
    const text = renderConfig(customConfig(), { defaults: true });
    expect(text).not.toMatch(/^# [a-z_]+ = /m);
    expect(text).toContain('\nlog_level = "info"\n');
    const r = roundTrip(text);
    expect(r.warnings).toEqual([]);
    expect(r.config).toEqual(defaultConfig());
  });

  test("the baseline decides what counts as a default (storage.conf values)", () => {
    t.write("storage.conf", `[storage]\ndriver = "overlay"\ngraphroot = "/srv/graph"`);
    const r = load(t);
    const text = renderConfig(r.config, { baseline: r.defaults });
    expect(text).toContain('\n# root = "/srv/graph"\n');
    const again = roundTrip(text);
    expect(again.config).toEqual(r.config);
  });

  test("a handler name that is not a bare key is quoted", () => {
    expect(renderConfig(customConfig())).toContain('\n[crio.runtime.runtimes."kata.qemu"]\n');
  });
});

describe("configToToml", () => {
  test("plain TOML of the whole [crio] tree round-trips", () => {
    const c = customConfig();
    const text = configToToml(c);
    expect(text).not.toContain("#");
    const doc = parse(text) as { crio: { runtime: { log_level: string } } };
    expect(doc.crio.runtime.log_level).toBe("debug");
    const r = roundTrip(text);
    expect(r.warnings).toEqual([]);
    expect(r.config).toEqual(c);
  });
});
