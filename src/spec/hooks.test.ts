import { describe, expect, test } from "bun:test";
import { applyHooks, hookMatches, type HookDefinition, type HookMatchContext } from "./hooks.ts";
import type { OciSpec } from "./types.ts";

const spec = (args: string[], hooks?: OciSpec["hooks"]): OciSpec => ({
  ociVersion: "1.2.0",
  process: { user: { uid: 0, gid: 0 }, args, env: [], cwd: "/" },
  root: { path: "/r" },
  mounts: [],
  linux: { namespaces: [] },
  ...(hooks ? { hooks } : {}),
});
const ctx: HookMatchContext = { annotations: { "io.example/gpu": "nvidia-a100", other: "x" }, hasBindMounts: false };
const def = (name: string, when: HookDefinition["when"], stages: HookDefinition["stages"] = ["prestart"]): HookDefinition => ({
  name,
  hook: { path: `/hooks/${name}` },
  when,
  stages,
});

describe("hookMatches", () => {
  test("always", () => {
    expect(hookMatches({ always: true }, ["sh"], ctx)).toBe(true);
    expect(hookMatches({ always: false }, ["sh"], ctx)).toBe(false);
  });
  test("annotations: some annotation matches both key and value regexes (unanchored)", () => {
    expect(hookMatches({ annotations: { "gpu$": "a100" } }, ["sh"], ctx)).toBe(true);
    expect(hookMatches({ annotations: { "gpu$": "^a100" } }, ["sh"], ctx)).toBe(false);
    expect(hookMatches({ annotations: { "^other$": "x", "gpu": "nvidia" } }, ["sh"], ctx)).toBe(true);
    expect(hookMatches({ annotations: { "^other$": "y", "gpu": "nvidia" } }, ["sh"], ctx)).toBe(false);
  });
  test("commands match process.args[0]", () => {
    expect(hookMatches({ commands: [".*/init$", "^sh$"] }, ["sh", "-c"], ctx)).toBe(true);
    expect(hookMatches({ commands: [".*/init$"] }, ["/usr/sbin/init"], ctx)).toBe(true);
    expect(hookMatches({ commands: [".*/init$"] }, ["sh", "/init"], ctx)).toBe(false);
  });
  test("hasBindMounts", () => {
    expect(hookMatches({ hasBindMounts: true }, ["sh"], ctx)).toBe(false);
    expect(hookMatches({ hasBindMounts: true }, ["sh"], { ...ctx, hasBindMounts: true })).toBe(true);
  });
  test("all conditions must hold, unless or (0.1.0 files)", () => {
    expect(hookMatches({ always: true, commands: ["^init$"] }, ["sh"], ctx)).toBe(false);
    expect(hookMatches({ always: true, commands: ["^init$"], or: true }, ["sh"], ctx)).toBe(true);
    expect(hookMatches({ or: true }, ["sh"], ctx)).toBe(false);
  });
});

describe("applyHooks", () => {
  test("matching hooks in lower-cased file name order, appended after existing hooks, per stage", () => {
    const base = spec(["sh"], { poststop: [{ path: "/already" }] });
    const out = applyHooks(
      base,
      [
        def("B-second.json", { always: true }, ["poststop"]),
        def("a-first.json", { always: true }, ["poststop", "createRuntime"]),
        def("c-nomatch.json", { commands: ["^init$"] }, ["poststop"]),
      ],
      ctx,
    );
    expect(out.hooks).toEqual({
      poststop: [{ path: "/already" }, { path: "/hooks/a-first.json" }, { path: "/hooks/B-second.json" }],
      createRuntime: [{ path: "/hooks/a-first.json" }],
    });
    expect(base.hooks).toEqual({ poststop: [{ path: "/already" }] });
  });
  test("no match leaves the spec as it is", () => {
    const s = spec(["sh"]);
    expect(applyHooks(s, [def("x.json", { always: false })], ctx)).toBe(s);
    expect(s.hooks).toBeUndefined();
  });
});
