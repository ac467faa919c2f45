import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { KeyValue } from "../proto/runtime-v1.ts";
import { DEFAULT_PATH, env, parseUlimit, processArgs, rlimits, workingDir } from "./process.ts";

const image = { Entrypoint: ["/entry", "-e"], Cmd: ["cmd1", "cmd2"] };
const kv = (key: string, value: string) => KeyValue.create({ key, value });

describe("processArgs", () => {
  test("image Entrypoint + Cmd when the request gives neither", () => {
    expect(processArgs(image, {})).toEqual(["/entry", "-e", "cmd1", "cmd2"]);
  });
  test("args alone replace Cmd and keep Entrypoint", () => {
    expect(processArgs(image, { args: ["a1"] })).toEqual(["/entry", "-e", "a1"]);
  });
  test("command replaces Entrypoint and drops Cmd", () => {
    expect(processArgs(image, { command: ["/bin/sh"] })).toEqual(["/bin/sh"]);
  });
  test("command + args", () => {
    expect(processArgs(image, { command: ["/bin/sh", "-c"], args: ["echo hi"] })).toEqual(["/bin/sh", "-c", "echo hi"]);
  });
  test("Cmd only image", () => {
    expect(processArgs({ Cmd: ["sh"] }, {})).toEqual(["sh"]);
  });
  test("args with an image without Entrypoint become the argv", () => {
    expect(processArgs({ Cmd: ["sh"] }, { args: ["ls", "-l"] })).toEqual(["ls", "-l"]);
  });
  test("no image config", () => {
    expect(processArgs(undefined, { command: ["x"] })).toEqual(["x"]);
  });
  test("nothing to run is InvalidArgument", () => {
    expect(() => processArgs({}, {})).toThrow(InvalidArgumentError);
    expect(() => processArgs(undefined, { command: [], args: [] })).toThrow(/no command specified/);
  });
});

describe("env", () => {
  test("PATH default when the image has none, HOSTNAME", () => {
    expect(env([], [], [], { hostname: "h" })).toEqual([`PATH=${DEFAULT_PATH}`, "HOSTNAME=h"]);
  });
  test("image PATH replaces the default in place", () => {
    expect(env(["A=1", "PATH=/bin"], [], [], {})).toEqual(["PATH=/bin", "A=1"]);
  });
  test("precedence: request > image > default_env > HOSTNAME", () => {
    const out = env(["X=image", "Y=image"], ["X=default", "Z=default", "HOSTNAME=cfg"], [kv("Y", "cri")], { hostname: "h" });
    expect(out).toEqual([`PATH=${DEFAULT_PATH}`, "HOSTNAME=cfg", "X=image", "Z=default", "Y=cri"]);
  });
  test("keys are unique; the last request value wins", () => {
    expect(env([], [], [kv("A", "1"), kv("A", "2")], {})).toEqual([`PATH=${DEFAULT_PATH}`, "A=2"]);
  });
  test("values may contain '=' and be empty", () => {
    expect(env(["A=b=c", "E="], [], [], {})).toEqual([`PATH=${DEFAULT_PATH}`, "A=b=c", "E="]);
  });
  test("TERM=xterm only with a tty", () => {
    expect(env([], [], [], { tty: true })).toContain("TERM=xterm");
    expect(env([], [], [], { tty: false }).some((e) => e.startsWith("TERM="))).toBe(false);
  });
  test("malformed image entries and empty request keys are skipped", () => {
    expect(env(["NOEQUALS", "=x"], [], [kv("", "v")], {})).toEqual([`PATH=${DEFAULT_PATH}`]);
  });
  test("malformed default_env is InvalidArgument", () => {
    expect(() => env([], ["BROKEN"], [], {})).toThrow(InvalidArgumentError);
  });
});

describe("workingDir", () => {
  test("request, then image, then /", () => {
    expect(workingDir({ WorkingDir: "/img" }, "/req")).toBe("/req");
    expect(workingDir({ WorkingDir: "/img" }, "")).toBe("/img");
    expect(workingDir(undefined, "")).toBe("/");
  });
});

describe("ulimits", () => {
  test("soft:hard", () => {
    expect(parseUlimit("nofile=1024:2048")).toEqual({ type: "RLIMIT_NOFILE", soft: 1024, hard: 2048 });
  });
  test("single value means soft = hard", () => {
    expect(parseUlimit("nproc=50")).toEqual({ type: "RLIMIT_NPROC", soft: 50, hard: 50 });
  });
  test("case-insensitive name", () => {
    expect(parseUlimit("NOFILE=1").type).toBe("RLIMIT_NOFILE");
  });
  test.each([["nofile"], ["=1:2"], ["bogus=1:2"], ["nofile=a:2"], ["nofile=2:1"], ["nofile=1:2:3"], ["nofile=-1"], ["nofile="]])(
    "%p is InvalidArgument",
    (entry) => {
      expect(() => parseUlimit(entry)).toThrow(InvalidArgumentError);
    },
  );
  test("errors name the entry", () => {
    expect(() => parseUlimit("nofile=2:1")).toThrow(/"nofile=2:1".*soft limit 2 is greater than hard limit 1/);
  });
  test("later entries for the same resource win", () => {
    expect(rlimits(["nofile=1:2", "core=0", "nofile=3:4"])).toEqual([
      { type: "RLIMIT_NOFILE", soft: 3, hard: 4 },
      { type: "RLIMIT_CORE", soft: 0, hard: 0 },
    ]);
  });
});
