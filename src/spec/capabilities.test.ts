import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { DEFAULT_CAPABILITIES } from "../config/schema.ts";
import { ALL_CAPABILITIES, capabilities, normalizeCapability } from "./capabilities.ts";

const eff = (r: ReturnType<typeof capabilities>) => r.capabilities.effective;

describe("capabilities", () => {
  test("defaults only, sorted by kernel number, ambient and inheritable empty", () => {
    const r = capabilities(DEFAULT_CAPABILITIES, [], [], false);
    expect(eff(r)).toEqual([
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    ]);
    expect(r.capabilities.bounding).toEqual(eff(r));
    expect(r.capabilities.permitted).toEqual(eff(r));
    expect(r.capabilities.ambient).toEqual([]);
    expect(r.capabilities.inheritable).toEqual([]);
  });
  test("add_inheritable_capabilities fills inheritable", () => {
    const r = capabilities(["CHOWN"], [], [], false, undefined, { addInheritable: true });
    expect(r.capabilities.inheritable).toEqual(["CAP_CHOWN"]);
  });
  test("names are case-insensitive with an optional CAP_ prefix", () => {
    expect(normalizeCapability("net_raw")).toBe("CAP_NET_RAW");
    expect(normalizeCapability("cap_Net_Raw")).toBe("CAP_NET_RAW");
    expect(eff(capabilities([], ["sys_time", "CAP_NET_RAW", "cap_mknod"], [], false))).toEqual(["CAP_NET_RAW", "CAP_SYS_TIME", "CAP_MKNOD"]);
  });
  test("drop removes from the defaults; a name in both lists ends dropped", () => {
    expect(eff(capabilities(["CHOWN", "KILL"], ["NET_RAW"], ["kill", "NET_RAW"], false))).toEqual(["CAP_CHOWN"]);
  });
  test("add ALL is every capability; later drops still apply", () => {
    const r = capabilities(["CHOWN"], ["ALL"], ["CHOWN"], false);
    expect(eff(r)).toEqual(ALL_CAPABILITIES.filter((c) => c !== "CAP_CHOWN"));
  });
  test("drop ALL ignores the defaults and keeps only named adds", () => {
    expect(eff(capabilities(DEFAULT_CAPABILITIES, ["NET_BIND_SERVICE"], ["ALL"], false))).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(eff(capabilities(DEFAULT_CAPABILITIES, [], ["all"], false))).toEqual([]);
  });
  test("add ALL and drop ALL: only named adds", () => {
    expect(eff(capabilities(DEFAULT_CAPABILITIES, ["ALL", "KILL"], ["ALL"], false))).toEqual(["CAP_KILL"]);
  });
  test("unknown names are InvalidArgument, in add, drop or defaults", () => {
    expect(() => capabilities([], ["NOPE"], [], false)).toThrow(InvalidArgumentError);
    expect(() => capabilities([], ["NOPE"], [], false)).toThrow(/unknown capability "CAP_NOPE" to add/);
    expect(() => capabilities([], [], ["CAP_BOGUS"], false)).toThrow(/to drop/);
    expect(() => capabilities(["WHAT"], [], [], false)).toThrow(InvalidArgumentError);
  });
  test("privileged is every capability, add/drop ignored", () => {
    expect(eff(capabilities([], [], ["ALL"], true))).toEqual([...ALL_CAPABILITIES]);
  });
  test("privileged is every capability the daemon holds; the rest reported", () => {
    const held = ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE" && c !== "CAP_SYS_MODULE");
    const r = capabilities([], [], [], true, held);
    expect(eff(r)).toEqual(held);
    expect(r.notHeld).toEqual(["CAP_SYS_MODULE", "CAP_SYS_RESOURCE"]);
  });
  test("non-privileged adds the daemon lacks are removed, not fatal", () => {
    const r = capabilities(["CHOWN"], ["SYS_RESOURCE"], [], false, ["chown", "KILL"]);
    expect(eff(r)).toEqual(["CAP_CHOWN"]);
    expect(r.notHeld).toEqual(["CAP_SYS_RESOURCE"]);
  });
});
