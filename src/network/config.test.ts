import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadNetworks, notReadyMessage, parseConf, parseConfList } from "./config.ts";
import { findPlugin } from "./invoke.ts";
import { fakePlugins } from "./test-helpers.ts";

const plugins = fakePlugins("bridge", "portmap", "host-local");
const root = mkdtempSync(join(tmpdir(), "crio-cni-config-"));
afterAll(() => {
  plugins.remove();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function netDir(files: Record<string, unknown>): string {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

const list = (name: string, ...types: string[]) => ({ cniVersion: "1.0.0", name, plugins: types.map((type) => ({ type })) });

describe("parsing", () => {
  test("a conflist keeps its bytes and reads disableCheck as bool or string", () => {
    const text = JSON.stringify({ ...list("a", "bridge"), disableCheck: "true" });
    const l = parseConfList(text, "x.conflist");
    expect(l).toMatchObject({ name: "a", cniVersion: "1.0.0", disableCheck: true, bytes: text });
    expect(l.plugins).toEqual([{ type: "bridge" }]);
  });

  test("a single .conf is wrapped into a list, as libcni's ConfListFromConf", () => {
    const conf = { cniVersion: "0.4.0", name: "single", type: "bridge", bridge: "br9", ipam: { type: "host-local" } };
    const l = parseConf(JSON.stringify(conf), "x.conf");
    expect(l.plugins).toEqual([conf]);
    expect(JSON.parse(l.bytes)).toEqual({ name: "single", cniVersion: "0.4.0", plugins: [conf] });
  });

  test.each([
    ["{", /invalid JSON/],
    ["[]", /not a JSON object/],
    [JSON.stringify({ cniVersion: "1.0.0", plugins: [{ type: "bridge" }] }), /no network name/],
    [JSON.stringify({ name: "a", plugins: [{ type: "bridge" }] }), /no 'cniVersion'/],
    [JSON.stringify({ name: "a", cniVersion: "one", plugins: [{ type: "bridge" }] }), /invalid cniVersion "one"/],
    [JSON.stringify({ name: "a b", cniVersion: "1.0.0", plugins: [{ type: "bridge" }] }), /invalid network name/],
    [JSON.stringify({ name: "a", cniVersion: "1.0.0" }), /no 'plugins' key/],
    [JSON.stringify({ name: "a", cniVersion: "1.0.0", plugins: [] }), /no plugins in list/],
    [JSON.stringify({ name: "a", cniVersion: "1.0.0", plugins: [{ bridge: "x" }] }), /plugin entry has no 'type'/],
    [JSON.stringify({ name: "a", cniVersion: "1.0.0", plugins: [{ type: "../../bin/sh" }] }), /invalid plugin type/],
  ])("conflist %s is rejected", (text, re) => {
    expect(() => parseConfList(text, "f.conflist")).toThrow(re);
  });

  test("a .conf holding a list says so", () => {
    expect(() => parseConf(JSON.stringify(list("a", "bridge")), "f.conf")).toThrow(/perhaps this is a .conflist/);
  });
});

describe("loading a directory", () => {
  test("conflist, conf and json are loaded sorted by file name; other files are ignored", async () => {
    const dir = netDir({
      "20-b.conf": { cniVersion: "1.0.0", name: "b", type: "bridge" },
      "10-a.conflist": list("a", "bridge", "portmap"),
      "30-c.json": { cniVersion: "1.0.0", name: "c", type: "bridge" },
      "05-x.lock": "junk",
      "README": "junk",
    });
    mkdirSync(join(dir, "00-dir.conflist"));
    const loaded = await loadNetworks({ networkDir: dir, pluginDirs: [plugins.dir] });
    expect(loaded.networks.map((l) => l.name)).toEqual(["a", "b", "c"]);
    expect(loaded.networks.map((l) => l.file)).toEqual([join(dir, "10-a.conflist"), join(dir, "20-b.conf"), join(dir, "30-c.json")]);
    expect(loaded.defaultNetwork?.name).toBe("a");
    expect(loaded.problems).toEqual([]);
    expect(notReadyMessage(loaded)).toBeUndefined();
  });

  test("cni_default_network picks a network by name, not by file", async () => {
    const dir = netDir({ "10-a.conflist": list("a", "bridge"), "20-b.conflist": list("b", "bridge") });
    const loaded = await loadNetworks({ networkDir: dir, pluginDirs: [plugins.dir], defaultNetwork: "b" });
    expect(loaded.defaultNetwork?.name).toBe("b");
    const missing = await loadNetworks({ networkDir: dir, pluginDirs: [plugins.dir], defaultNetwork: "zz" });
    expect(missing.defaultNetwork).toBeUndefined();
    expect(notReadyMessage(missing)).toBe(
      `no CNI configuration file in ${dir}. Has your network provider started? Default network "zz" (cni_default_network) is not among the loaded networks: a, b.`,
    );
  });

  test("invalid files are skipped with their reason, and the next valid one is the default", async () => {
    const dir = netDir({
      "01-bad.conflist": "{ nope",
      "02-noplugin.conflist": list("np", "bridge", "nosuch"),
      "03-dup.conflist": list("good", "bridge"),
      "04-dup.conflist": list("good", "portmap"),
    });
    const loaded = await loadNetworks({ networkDir: dir, pluginDirs: ["/nonexistent/cni", plugins.dir] });
    expect(loaded.defaultNetwork?.name).toBe("good");
    expect(loaded.defaultNetwork?.plugins[0]?.type).toBe("bridge");
    expect(loaded.problems.map((p) => p.file)).toEqual([join(dir, "01-bad.conflist"), join(dir, "02-noplugin.conflist"), join(dir, "04-dup.conflist")]);
    expect(loaded.problems[0]?.message).toMatch(/^invalid JSON/);
    expect(loaded.problems[1]?.message).toBe(
      `failed to find CNI plugin "nosuch" in plugin_dirs [/nonexistent/cni, ${plugins.dir}] (missing directories: /nonexistent/cni)`,
    );
    expect(loaded.problems[2]?.message).toMatch(/already defined by an earlier file/);
  });

  test("a plugin that does not support the configuration's version makes it invalid", async () => {
    const old = fakePlugins("oldie");
    try {
      old.behave("oldie", { versions: ["0.3.0", "0.3.1"] });
      const dir = netDir({ "10-a.conflist": list("a", "oldie") });
      const loaded = await loadNetworks({ networkDir: dir, pluginDirs: [old.dir] });
      expect(loaded.defaultNetwork).toBeUndefined();
      expect(loaded.problems[0]?.message).toMatch(/plugin oldie \(.*\) does not support config version "1.0.0" \(supports 0.3.0, 0.3.1\)/);
      const unchecked = await loadNetworks({ networkDir: dir, pluginDirs: [old.dir], checkPluginVersions: false });
      expect(unchecked.defaultNetwork?.name).toBe("a");
    } finally {
      old.remove();
    }
  });

  test("an empty or missing directory is not ready, in ocicni's words", async () => {
    const missing = join(root, "absent");
    const loaded = await loadNetworks({ networkDir: missing, pluginDirs: [plugins.dir] });
    expect(loaded.candidates).toBe(0);
    expect(notReadyMessage(loaded)).toBe(`no CNI configuration file in ${missing}. Has your network provider started?`);
    const bad = netDir({ "10-x.conflist": list("x", "nosuch") });
    expect(notReadyMessage(await loadNetworks({ networkDir: bad, pluginDirs: [plugins.dir] }))).toMatch(
      /Has your network provider started\? Skipped: 10-x.conflist: failed to find CNI plugin "nosuch"/,
    );
  });
});

describe("plugin lookup", () => {
  test("the first executable in plugin_dirs wins; non-executables and missing dirs are skipped", () => {
    const a = join(root, "pa");
    mkdirSync(a);
    writeFileSync(join(a, "bridge"), "#!/bin/sh\n");
    chmodSync(join(a, "bridge"), 0o644);
    expect(findPlugin("bridge", ["/nonexistent", a, plugins.dir])).toBe(join(plugins.dir, "bridge"));
    expect(() => findPlugin("bridge", ["/nonexistent", a])).toThrow(
      `failed to find CNI plugin "bridge" in plugin_dirs [/nonexistent, ${a}] (missing directories: /nonexistent)`,
    );
    expect(() => findPlugin("../sh", [a])).toThrow(/invalid CNI plugin type/);
  });
});
