import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging } from "../log.ts";
import { fakePlugins, waitFor } from "./test-helpers.ts";
import { NetworkConfigWatcher } from "./watch.ts";

const logs: string[] = [];
configureLogging({ write: (l) => logs.push(l) });
const fake = fakePlugins("bridge");
const root = mkdtempSync(join(tmpdir(), "crio-cni-watch-"));
const watchers: NetworkConfigWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});
afterAll(() => {
  fake.remove();
  rmSync(root, { recursive: true, force: true });
  configureLogging({ write: (l) => process.stderr.write(`${l}\n`) });
});

let n = 0;
const newDir = () => join(root, `d${++n}`);
const conflist = (name: string, type = "bridge") => JSON.stringify({ cniVersion: "1.0.0", name, plugins: [{ type }] });

async function start(opts: { networkDir: string; pluginDirs?: string[]; pollIntervalMs?: number; useFsWatch?: boolean; defaultNetwork?: string }) {
  const w = new NetworkConfigWatcher({ pluginDirs: [fake.dir], ...opts });
  watchers.push(w);
  await w.start();
  return w;
}

describe("readiness", () => {
  test("flips to ready when a conflist appears and back when it goes (fs.watch)", async () => {
    const dir = newDir();
    mkdirSync(dir);
    // A poll interval far beyond the test: only inotify can make this pass.
    const w = await start({ networkDir: dir, pollIntervalMs: 600_000 });
    expect(w.ready()).toEqual({
      ready: false,
      reason: "NetworkPluginNotReady",
      message: `Network plugin returns error: no CNI configuration file in ${dir}. Has your network provider started?`,
    });
    // Written as the installers do: a temp file renamed into place.
    writeFileSync(join(dir, ".tmp"), conflist("net1"));
    renameSync(join(dir, ".tmp"), join(dir, "10-net1.conflist"));
    expect(await waitFor(() => w.ready().ready)).toBe(true);
    expect(w.ready()).toEqual({ ready: true, reason: "", message: "" });
    expect(w.current().defaultNetwork?.name).toBe("net1");

    // An earlier file name takes over as the default.
    writeFileSync(join(dir, "05-net0.conflist"), conflist("net0"));
    expect(await waitFor(() => w.current().defaultNetwork?.name === "net0")).toBe(true);

    unlinkSync(join(dir, "05-net0.conflist"));
    unlinkSync(join(dir, "10-net1.conflist"));
    expect(await waitFor(() => !w.ready().ready)).toBe(true);
    expect(w.ready().reason).toBe("NetworkPluginNotReady");
  });

  test("the poll alone catches changes, and a directory created after start", async () => {
    const dir = newDir();
    const w = await start({ networkDir: dir, pollIntervalMs: 30, useFsWatch: false });
    expect(w.ready().ready).toBe(false);
    mkdirSync(dir);
    writeFileSync(join(dir, "10-a.conflist"), conflist("a"));
    expect(await waitFor(() => w.ready().ready)).toBe(true);
    rmSync(dir, { recursive: true });
    expect(await waitFor(() => !w.ready().ready)).toBe(true);
  });

  test("a directory deleted and recreated is watched again", async () => {
    const dir = newDir();
    mkdirSync(dir);
    const w = await start({ networkDir: dir, pollIntervalMs: 50 });
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeFileSync(join(dir, "10-a.conflist"), conflist("a"));
    expect(await waitFor(() => w.ready().ready)).toBe(true);
  });

  test("installing the missing plugin makes the configuration valid", async () => {
    const dir = newDir();
    mkdirSync(dir);
    writeFileSync(join(dir, "10-a.conflist"), conflist("a", "later"));
    const w = await start({ networkDir: dir, pollIntervalMs: 600_000 });
    expect(w.ready().message).toMatch(/Skipped: 10-a.conflist: failed to find CNI plugin "later"/);
    fake.install("later");
    expect(await waitFor(() => w.ready().ready)).toBe(true);
  });

  test("a named default network waits for that network", async () => {
    const dir = newDir();
    mkdirSync(dir);
    writeFileSync(join(dir, "10-a.conflist"), conflist("a"));
    const w = await start({ networkDir: dir, defaultNetwork: "b", pollIntervalMs: 600_000 });
    expect(w.ready().ready).toBe(false);
    const waiting = w.waitReady(5000);
    writeFileSync(join(dir, "20-b.conflist"), conflist("b"));
    expect(await waiting).toBe(true);
    expect(w.current().defaultNetwork?.name).toBe("b");
    expect(await w.waitReady(10)).toBe(true);
  });

  test("waitReady gives up after its timeout", async () => {
    const dir = newDir();
    const w = await start({ networkDir: dir, pollIntervalMs: 0 });
    expect(await w.waitReady(50)).toBe(false);
  });
});
