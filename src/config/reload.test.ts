import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { reloadConfig } from "./load.ts";
import { defaultConfig, zeroHandler } from "./schema.ts";
import { load, TempTree } from "./test-helpers.ts";

let t: TempTree;
beforeEach(() => {
  t = new TempTree();
});
afterEach(() => {
  t.cleanup();
});

describe("reloadConfig", () => {
  test("applies only the options SIGHUP reloads", () => {
    const current = defaultConfig();
    const fresh = defaultConfig();
    // reloadable
    fresh.runtime.log_level = "debug";
    fresh.runtime.log_filter = "req";
    fresh.image.pause_image = "example.com/pause:2";
    fresh.image.pause_command = "";
    fresh.image.pinned_images = ["a*"];
    fresh.runtime.seccomp_profile = "/etc/seccomp.json";
    fresh.runtime.apparmor_profile = "unconfined";
    fresh.runtime.cdi_spec_dirs = ["/etc/cdi"];
    fresh.runtime.runtimes.kata = { ...zeroHandler(), runtime_type: "vm" };
    fresh.runtime.default_runtime = "kata";
    // not reloadable
    fresh.runtime.cgroup_manager = "cgroupfs";
    fresh.api.listen = "/tmp/other.sock";
    fresh.root = "/elsewhere";
    fresh.metrics.enable_metrics = true;
    fresh.flagOnly.log_format = "json";

    const before = structuredClone(current);
    const { config, changed } = reloadConfig(current, fresh);
    expect(current).toEqual(before); // input untouched
    expect(changed.sort()).toEqual(
      [
        "runtime.log_level",
        "runtime.log_filter",
        "image.pause_image",
        "image.pause_command",
        "image.pinned_images",
        "runtime.seccomp_profile",
        "runtime.apparmor_profile",
        "runtime.cdi_spec_dirs",
        "runtime.default_runtime",
        "runtime.runtimes",
      ].sort(),
    );
    expect(config.runtime.log_level).toBe("debug");
    expect(config.image.pause_command).toBe("");
    expect(config.runtime.runtimes.kata?.runtime_type).toBe("vm");
    expect(config.runtime.default_runtime).toBe("kata");
    expect(config.runtime.cgroup_manager).toBe("systemd");
    expect(config.api.listen).toBe("/var/run/crio/crio.sock");
    expect(config.root).toBe(current.root);
    expect(config.metrics.enable_metrics).toBe(false);
    expect(config.flagOnly.log_format).toBe("text");
  });

  test("nothing changed: nothing reported", () => {
    expect(reloadConfig(defaultConfig(), defaultConfig()).changed).toEqual([]);
  });

  test("works with what the loader returns after the file changed", () => {
    t.write("crio.conf", `[crio.runtime]\nlog_level = "info"\ncgroup_manager = "systemd"`);
    const first = load(t).config;
    t.write("crio.conf", `[crio.runtime]\nlog_level = "trace"\ncgroup_manager = "cgroupfs"\n[crio.runtime.runtimes.runc]\nruntime_path = "/bin/runc2"`);
    const { config, changed } = reloadConfig(first, load(t).config);
    expect(changed.sort()).toEqual(["runtime.log_level", "runtime.runtimes"]);
    expect(config.runtime.runtimes.runc!.runtime_path).toBe("/bin/runc2");
    expect(config.runtime.cgroup_manager).toBe("systemd");
  });
});
