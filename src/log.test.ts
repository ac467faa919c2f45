import { afterAll, describe, expect, test } from "bun:test";
import { configureLogging, formatLine, log } from "./log.ts";

describe("log", () => {
  afterAll(() => configureLogging({ level: "info", format: "text", write: (l) => process.stderr.write(l + "\n") }));

  test("text lines look like logrus's", () => {
    const line = formatLine("text", new Date(0), "info", 'say "hi"', { id: "abc", n: 3, path: "/a b" });
    expect(line).toBe('time="1970-01-01T00:00:00.000Z" level=info msg="say \\"hi\\"" id=abc n=3 path="/a b"');
  });

  test("json lines carry level, msg, time and fields", () => {
    const o = JSON.parse(formatLine("json", new Date(0), "error", "boom", { err: new Error("why"), big: 2n ** 70n }));
    expect(o).toEqual({ err: "why", big: "1180591620717411303424", level: "error", msg: "boom", time: "1970-01-01T00:00:00.000Z" });
  });

  test("levels filter, and every CRI-O level name is accepted", () => {
    const lines: string[] = [];
    configureLogging({ level: "warn", format: "text", write: (l) => lines.push(l) });
    log.info("hidden");
    log.warn("shown");
    log.error("also", { k: "v" });
    expect(lines.length).toBe(2);
    expect(lines[0]).toContain("level=warning");
    expect(lines[1]).toContain("level=error");
    expect(lines[1]).toContain("k=v");
    for (const l of ["fatal", "panic", "error", "warn", "warning", "info", "debug", "trace"]) configureLogging({ level: l });
    expect(() => configureLogging({ level: "loud" })).toThrow(/unknown log level/);
    configureLogging({ level: "DEBUG" });
    expect(log.level).toBe(4);
  });

  test("log_filter keeps only matching messages; an empty filter clears it", () => {
    const lines: string[] = [];
    configureLogging({ level: "info", format: "text", filter: "^keep", write: (l) => lines.push(l) });
    log.info("keep me", { x: "drop" });
    log.info("drop me", { x: "keep" });
    configureLogging({ filter: "" });
    log.info("after");
    expect(lines.map((l) => /msg="([^"]*)"/.exec(l)?.[1])).toEqual(["keep me", "after"]);
    expect(() => configureLogging({ filter: "(" })).toThrow();
  });
});
