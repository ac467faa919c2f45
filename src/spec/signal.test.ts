import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { Signal } from "../proto/runtime-v1.ts";
import { parseSignal, stopSignal } from "./signal.ts";

describe("stopSignal", () => {
  test("default SIGTERM", () => {
    expect(stopSignal(undefined)).toEqual({ name: "SIGTERM", number: 15 });
    expect(stopSignal({})).toEqual({ name: "SIGTERM", number: 15 });
    expect(stopSignal({ StopSignal: "" })).toEqual({ name: "SIGTERM", number: 15 });
  });
  test("the image's StopSignal in its usual spellings", () => {
    expect(stopSignal({ StopSignal: "SIGQUIT" })).toEqual({ name: "SIGQUIT", number: 3 });
    expect(stopSignal({ StopSignal: "QUIT" })).toEqual({ name: "SIGQUIT", number: 3 });
    expect(stopSignal({ StopSignal: "sigwinch" })).toEqual({ name: "SIGWINCH", number: 28 });
    expect(stopSignal({ StopSignal: "3" })).toEqual({ name: "SIGQUIT", number: 3 });
    expect(stopSignal({ StopSignal: "SIGRTMIN+3" })).toEqual({ name: "SIGRTMIN+3", number: 37 });
    expect(stopSignal({ StopSignal: "RTMAX-1" })).toEqual({ name: "SIGRTMAX-1", number: 63 });
    expect(stopSignal({ StopSignal: "SIGIOT" })).toEqual({ name: "SIGABRT", number: 6 });
  });
  test("the request's stop_signal overrides the image", () => {
    expect(stopSignal({ StopSignal: "SIGQUIT" }, Signal.SIGUSR1)).toEqual({ name: "SIGUSR1", number: 10 });
    expect(stopSignal(undefined, Signal.SIGRTMINPLUS2)).toEqual({ name: "SIGRTMIN+2", number: 36 });
    expect(stopSignal(undefined, Signal.SIGRTMAX)).toEqual({ name: "SIGRTMAX", number: 64 });
  });
  test("invalid values are InvalidArgument", () => {
    for (const bad of ["SIGFOO", "0", "65", "RTMIN+31", "-1", "SIG"]) {
      expect(() => stopSignal({ StopSignal: bad })).toThrow(InvalidArgumentError);
    }
    expect(() => parseSignal("TERM!")).toThrow(InvalidArgumentError);
  });
});
