import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { expandSlice, isValidUnitName, parseSystemdCgroupsPath, systemdCgroupsPathToPath, unitName } from "./slice.ts";

describe("expandSlice (runc's ExpandSlice, systemd's slice nesting)", () => {
  test.each([
    ["-.slice", "/"],
    ["system.slice", "/system.slice"],
    ["a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"],
    ["kubepods-burstable-pod1234_5678.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice"],
    ["kubepods.slice", "/kubepods.slice"],
  ])("%s → %s", (slice, path) => {
    expect(expandSlice(slice)).toBe(path);
  });

  test.each(["", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "a.scope", "a b.slice"])("%p is invalid", (slice) => {
    expect(() => expandSlice(slice)).toThrow(InvalidArgumentError);
  });
});

describe("systemd cgroupsPath slice:prefix:name", () => {
  test("names the scope prefix-name.scope inside the slice", () => {
    const p = parseSystemdCgroupsPath("kubepods-besteffort-pod1.slice:crio:0123abcd");
    expect(p).toEqual({ slice: "kubepods-besteffort-pod1.slice", prefix: "crio", name: "0123abcd" });
    expect(unitName(p)).toBe("crio-0123abcd.scope");
    expect(systemdCgroupsPathToPath("kubepods-besteffort-pod1.slice:crio:0123abcd")).toBe(
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/crio-0123abcd.scope",
    );
    expect(systemdCgroupsPathToPath("system.slice:crio-conmon:ab")).toBe("/system.slice/crio-conmon-ab.scope");
  });

  test("an empty slice means system.slice; -.slice is the root", () => {
    expect(systemdCgroupsPathToPath(":crio:x")).toBe("/system.slice/crio-x.scope");
    expect(systemdCgroupsPathToPath("-.slice:crio:x")).toBe("/crio-x.scope");
  });

  test.each(["a.slice:crio", "a.slice::x", "a.slice:crio:", "/a/b", "a.slice:crio:x y"])("%p is refused", (p) => {
    expect(() => parseSystemdCgroupsPath(p)).toThrow(InvalidArgumentError);
  });

  test("unit names follow systemd's character set and length", () => {
    expect(isValidUnitName("crio-conmon-abc.scope", ".scope")).toBe(true);
    expect(isValidUnitName("crio-abc.scope", ".slice")).toBe(false);
    expect(isValidUnitName(`${"a".repeat(250)}.scope`)).toBe(false);
    expect(isValidUnitName("noext")).toBe(false);
  });
});
