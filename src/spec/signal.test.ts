import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { Signal } from "../proto/runtime-v1.ts";
import { criSignal, parseSignal, stopSignal } from "./signal.ts";

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

describe("criSignal", () => {
  test("maps numbers to the CRI enum, real-time ones included; unknown numbers are RUNTIME_DEFAULT", () => {
    expect(criSignal(15)).toBe(Signal.SIGTERM);
    expect(criSignal(9)).toBe(Signal.SIGKILL);
    expect(criSignal(10)).toBe(Signal.SIGUSR1);
    expect(criSignal(6)).toBe(Signal.SIGABRT);
    expect(criSignal(34)).toBe(Signal.SIGRTMIN);
    expect(criSignal(37)).toBe(Signal.SIGRTMINPLUS3);
    expect(criSignal(62)).toBe(Signal.SIGRTMAXMINUS2);
    expect(criSignal(64)).toBe(Signal.SIGRTMAX);
    expect(criSignal(0)).toBe(Signal.RUNTIME_DEFAULT);
    expect(criSignal(99)).toBe(Signal.RUNTIME_DEFAULT);
    // Round trip through stopSignal for every enum value.
    for (const v of Object.values(Signal)) {
      if (v === Signal.RUNTIME_DEFAULT || v === Signal.SIGCLD || v === Signal.SIGIOT || v === Signal.SIGPOLL) continue;
      expect(criSignal(stopSignal(undefined, v).number)).toBe(v);
    }
  });
});
