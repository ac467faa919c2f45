import { describe, expect, test } from "bun:test";
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedAndReadonlyPaths } from "./paths.ts";

describe("maskedAndReadonlyPaths", () => {
  test("defaults when the request gives none", () => {
    const r = maskedAndReadonlyPaths(false);
    expect(r.maskedPaths).toEqual([...DEFAULT_MASKED_PATHS]);
    expect(r.maskedPaths[0]).toBe("/proc/acpi");
    expect(r.maskedPaths.at(-1)).toBe("/proc/scsi");
    expect(r.readonlyPaths).toEqual(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
  });
  test("privileged: nothing masked or read-only, whatever the request says", () => {
    expect(maskedAndReadonlyPaths(true, ["/proc/kcore"], ["/proc/sys"])).toEqual({ maskedPaths: [], readonlyPaths: [] });
  });
  test("explicitly empty lists (procMount Unmasked) unmask", () => {
    expect(maskedAndReadonlyPaths(false, [], [])).toEqual({ maskedPaths: [], readonlyPaths: [] });
  });
  test("a request list is merged with CRI-O's own defaults, sorted, without duplicates", () => {
    const r = maskedAndReadonlyPaths(false, ["/proc/zz", "/proc/kcore"], undefined, ["/sys/devices/system/cpu/cpu0/thermal_throttle"]);
    expect(r.maskedPaths.slice(0, DEFAULT_MASKED_PATHS.length)).toEqual([...DEFAULT_MASKED_PATHS]);
    const extra = r.maskedPaths.slice(DEFAULT_MASKED_PATHS.length);
    expect(extra).toEqual([...extra].sort());
    expect(extra).toContain("/proc/zz");
    expect(extra).toContain("/proc/interrupts");
    expect(extra).toContain("/sys/devices/system/cpu/cpu0/thermal_throttle");
    expect(new Set(r.maskedPaths).size).toBe(r.maskedPaths.length);
    expect(r.readonlyPaths).toEqual([...DEFAULT_READONLY_PATHS]);
  });
  test("a request readonly list is added to the defaults", () => {
    expect(maskedAndReadonlyPaths(false, undefined, ["/proc/sys", "/custom"]).readonlyPaths).toEqual([...DEFAULT_READONLY_PATHS, "/custom"]);
  });
});
