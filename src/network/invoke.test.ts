import { afterAll, describe, expect, test } from "bun:test";
import { DeadlineExceededError } from "../errors.ts";
import { CniPluginError, execPlugin } from "./invoke.ts";
import { fakePlugins } from "./test-helpers.ts";

const fake = fakePlugins("p");
afterAll(() => fake.remove());
const base = { type: "p", pluginPath: `${fake.dir}/p`, cniPath: ["/a", "/b"], timeoutMs: 10_000 };

describe("execPlugin", () => {
  test("passes the CNI_* environment and the configuration on stdin", async () => {
    fake.clearCalls();
    fake.behave("p", {});
    const out = await execPlugin({
      ...base,
      command: "ADD",
      containerId: "c1",
      netns: "/run/netns/x",
      ifName: "eth0",
      args: [["IgnoreUnknown", "1"], ["K8S_POD_NAME", "web"]],
      stdin: { cniVersion: "1.0.0", name: "n", type: "p" },
    });
    expect(out).toMatchObject({ cniVersion: "1.0.0", ips: [{ address: "10.1.2.3/24" }] });
    const [call] = fake.calls();
    expect(call?.env).toMatchObject({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c1",
      CNI_NETNS: "/run/netns/x",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web",
      CNI_PATH: "/a:/b",
    });
    expect(call?.stdin).toEqual({ cniVersion: "1.0.0", name: "n", type: "p" });
  });

  test("a plugin's error object becomes a CniPluginError with its message and details", async () => {
    fake.behave("p", { ADD: { exit: 1, stdout: { cniVersion: "1.0.0", code: 7, msg: "invalid subnet", details: "10.0.0.0/33" } } });
    const err = await execPlugin({ ...base, command: "ADD", stdin: {} }).then(() => undefined, (e: CniPluginError) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err?.message).toBe('plugin type="p" failed (add): invalid subnet; 10.0.0.0/33');
    expect(err).toMatchObject({ cniCode: 7, pluginMessage: "invalid subnet", details: "10.0.0.0/33", plugin: "p", command: "ADD", code: 13 });
  });

  test("a failure without an error object reports what the plugin printed", async () => {
    fake.behave("p", { DEL: { exit: 2, stdout: "something broke\n" } });
    const err = await execPlugin({ ...base, command: "DEL", stdin: {} }).then(() => undefined, (e: CniPluginError) => e);
    expect(err?.message).toBe('plugin type="p" failed (del): something broke');
  });

  test("a known code without msg is named", async () => {
    fake.behave("p", { DEL: { exit: 1, stdout: { code: 11 } } });
    const err = await execPlugin({ ...base, command: "DEL", stdin: {} }).then(() => undefined, (e: CniPluginError) => e);
    expect(err?.message).toMatch(/failed \(del\): try again later/);
  });

  test("a plugin running past its deadline is killed", async () => {
    fake.behave("p", { ADD: { sleepMs: 30_000 } });
    const started = Date.now();
    const err = await execPlugin({ ...base, command: "ADD", stdin: {}, timeoutMs: 300 }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(err?.message).toMatch(/plugin type="p" timed out \(add\)/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("invalid JSON on success is an error", async () => {
    fake.behave("p", { ADD: { stdout: "not json" } });
    await expect(execPlugin({ ...base, command: "ADD", stdin: {} })).rejects.toThrow(/invalid JSON on stdout: not json/);
  });
});
