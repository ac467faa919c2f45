import { describe, expect, test } from "bun:test";
import { HookFileError, parseHookFile } from "./parse.ts";

const v1 = (o: object) => JSON.stringify({ version: "1.0.0", hook: { path: "/usr/bin/true" }, when: { always: true }, stages: ["prestart"], ...o });

describe("parseHookFile 1.0.0", () => {
  test("a complete definition", () => {
    const d = parseHookFile(
      "nvidia.json",
      JSON.stringify({
        version: "1.0.0",
        hook: { path: "/usr/sbin/nvidia-hook", args: ["nvidia-hook", "prestart"], env: ["A=1"], timeout: 5 },
        when: { annotations: { "^com\\.example\\.department$": ".*fluid-dynamics$" }, commands: [".*/init$"], hasBindMounts: true },
        stages: ["prestart", "createRuntime"],
      }),
    );
    expect(d).toEqual({
      name: "nvidia.json",
      hook: { path: "/usr/sbin/nvidia-hook", args: ["nvidia-hook", "prestart"], env: ["A=1"], timeout: 5 },
      when: { annotations: { "^com\\.example\\.department$": ".*fluid-dynamics$" }, commands: [".*/init$"], hasBindMounts: true },
      stages: ["prestart", "createRuntime"],
    });
  });
  const bad: [string, string, RegExp][] = [
    ["invalid JSON", "{", /JSON|Unexpected|parse/i],
    ["not an object", "[]", /not a JSON object/],
    ["unknown version", JSON.stringify({ version: "2.0.0" }), /unrecognized hook version/],
    ["no path", v1({ hook: {} }), /hook\.path/],
    ["relative path", v1({ hook: { path: "bin/true" } }), /not absolute/],
    ["no stages", v1({ stages: [] }), /stages/],
    ["unknown stage", v1({ stages: ["prestart", "later"] }), /unknown stage "later"/],
    ["no when", v1({ when: undefined }), /when/],
    ["empty when", v1({ when: {} }), /no when conditions/],
    ["bad annotation regex", v1({ when: { annotations: { "[": "a" } } }), /annotation key/],
    ["bad command regex", v1({ when: { commands: ["("] } }), /invalid command/],
    ["bad timeout", v1({ hook: { path: "/x", timeout: -1 } }), /timeout/],
    ["args not strings", v1({ hook: { path: "/x", args: [1] } }), /hook\.args/],
  ];
  for (const [what, content, re] of bad) {
    test(`rejects: ${what}`, () => {
      let err: unknown;
      try {
        parseHookFile("f.json", content);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HookFileError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message.startsWith("f.json: ")).toBe(true);
    });
  }
});

describe("parseHookFile 0.1.0", () => {
  test("translated to 1.0.0 with any-condition matching", () => {
    const d = parseHookFile(
      "old.json",
      JSON.stringify({ hook: "/usr/libexec/oci-umount", arguments: ["--debug"], stage: ["prestart"], cmds: [".*/init$"], annotations: ["a", "b"], hasbindmounts: true }),
    );
    expect(d).toEqual({
      name: "old.json",
      hook: { path: "/usr/libexec/oci-umount", args: ["/usr/libexec/oci-umount", "--debug"] },
      when: { or: true, commands: [".*/init$"], annotations: { ".*": "a|b" }, hasBindMounts: true },
      stages: ["prestart"],
    });
  });
  test("synonyms may not both be set", () => {
    expect(() => parseHookFile("o.json", JSON.stringify({ hook: "/x", stage: ["prestart"], stages: ["prestart"], cmd: ["a"] }))).toThrow(/'stage' and 'stages'/);
    expect(() => parseHookFile("o.json", JSON.stringify({ hook: "/x", stages: ["prestart"], cmd: ["a"], cmds: ["b"] }))).toThrow(/'cmd' and 'cmds'/);
  });
});
