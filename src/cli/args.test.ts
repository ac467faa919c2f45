import { describe, expect, test } from "bun:test";
import { UsageError } from "../errors.ts";
import { parseFlags, type FlagSpec } from "./args.ts";

const specs: FlagSpec[] = [
  { name: "config", aliases: ["c"], kind: "string" },
  { name: "drop-infra-ctr", kind: "bool" },
  { name: "hooks-dir", kind: "string[]" },
  { name: "help", aliases: ["h"], kind: "bool" },
];

describe("parseFlags", () => {
  test("long, short, inline and separate values; stops at the subcommand", () => {
    const r = parseFlags(["--config", "/a", "-c=/b", "--drop-infra-ctr", "status", "--socket", "x"], specs);
    expect(r.values).toEqual({ config: "/b", "drop-infra-ctr": true });
    expect(r.rest).toEqual(["status", "--socket", "x"]);
  });

  test("booleans take =true/=false; list flags accumulate", () => {
    const r = parseFlags(["--drop-infra-ctr=false", "--hooks-dir", "/a", "--hooks-dir=/b,/c"], specs);
    expect(r.values).toEqual({ "drop-infra-ctr": false, "hooks-dir": ["/a", "/b,/c"] });
  });

  test("an empty value is a value (-c '' skips the main file)", () => {
    expect(parseFlags(["-c", ""], specs).values).toEqual({ config: "" });
  });

  test("-- ends flags", () => {
    expect(parseFlags(["--", "--config"], specs).rest).toEqual(["--config"]);
  });

  test("positionals interleaved when not stopping", () => {
    expect(parseFlags(["a", "-h", "b"], specs, false)).toEqual({ values: { help: true }, rest: ["a", "b"] });
  });

  test("errors: unknown flag, missing value, bad boolean", () => {
    expect(() => parseFlags(["--nope"], specs)).toThrow(new UsageError("flag provided but not defined: --nope"));
    expect(() => parseFlags(["--config"], specs)).toThrow(UsageError);
    expect(() => parseFlags(["--drop-infra-ctr=maybe"], specs)).toThrow(/invalid boolean/);
  });
});
