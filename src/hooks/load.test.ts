import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadHooks } from "./load.ts";

const root = mkdtempSync(join(tmpdir(), "crio-hooks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const hook = (path: string, extra: object = {}) =>
  JSON.stringify({ version: "1.0.0", hook: { path }, when: { always: true }, stages: ["prestart"], ...extra });

function dir(name: string, files: Record<string, string>): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  for (const [f, c] of Object.entries(files)) writeFileSync(join(d, f), c);
  return d;
}

describe("loadHooks", () => {
  test("later directories mask same-named files; result sorted by lower-cased name", () => {
    const usr = dir("usr", { "01-a.json": hook("/bin/sh"), "02-b.json": hook("/bin/sh"), "notes.txt": "ignored" });
    const etc = dir("etc", { "01-a.json": hook("/bin/true"), "00-Z.json": hook("/bin/sh") });
    const { hooks, errors } = loadHooks([usr, etc]);
    expect(errors).toEqual([]);
    expect(hooks.map((h) => h.name)).toEqual(["00-Z.json", "01-a.json", "02-b.json"]);
    expect(hooks.find((h) => h.name === "01-a.json")?.hook.path).toBe("/bin/true");
  });
  test("bad files are reported with their path and skipped; they do not mask a good one", () => {
    const low = dir("low", { "10-x.json": hook("/bin/sh"), "20-ok.json": hook("/bin/sh") });
    const high = dir("high", {
      "10-x.json": "{ broken",
      "30-missing-binary.json": hook("/does/not/exist/hook"),
      "40-bad-stage.json": hook("/bin/sh", { stages: ["sometime"] }),
    });
    const { hooks, errors } = loadHooks([low, high]);
    expect(hooks.map((h) => h.name)).toEqual(["10-x.json", "20-ok.json"]);
    expect(hooks[0]?.hook.path).toBe("/bin/sh");
    expect(errors.map((e) => e.file).sort()).toEqual([join(high, "10-x.json"), join(high, "30-missing-binary.json"), join(high, "40-bad-stage.json")]);
    expect(errors.find((e) => e.file.endsWith("30-missing-binary.json"))?.message).toContain("/does/not/exist/hook");
    expect(errors.find((e) => e.file.endsWith("40-bad-stage.json"))?.message).toContain("unknown stage");
  });
  test("a missing directory is skipped", () => {
    expect(loadHooks([join(root, "nope")])).toEqual({ hooks: [], errors: [] });
  });
});
