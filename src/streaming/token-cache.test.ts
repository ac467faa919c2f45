import { describe, expect, test } from "bun:test";
import { CrioError, GrpcCode } from "../errors.ts";
import { TokenCache, type StreamRequest } from "./token-cache.ts";

const exec: StreamRequest = {
  kind: "exec",
  request: { containerId: "c1", cmd: ["sh"], tty: false, stdin: true, stdout: true, stderr: true },
};

describe("TokenCache", () => {
  test("tokens are 8 URL-safe characters and distinct", () => {
    const cache = new TokenCache();
    const tokens = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const t = cache.insert(exec);
      expect(t).toMatch(/^[A-Za-z0-9_-]{8}$/);
      tokens.add(t);
    }
    expect(tokens.size).toBe(500);
  });

  test("a token is good for one use", () => {
    const cache = new TokenCache();
    const t = cache.insert(exec);
    expect(cache.consume(t)).toEqual(exec);
    expect(cache.consume(t)).toBeUndefined();
    expect(cache.consume("unknown1")).toBeUndefined();
  });

  test("tokens expire after the TTL (one minute by default)", () => {
    let now = 1_000_000;
    const cache = new TokenCache({ now: () => now });
    const t = cache.insert(exec);
    now += 60_000;
    const fresh = cache.insert(exec);
    now += 1;
    expect(cache.consume(t)).toBeUndefined();
    expect(cache.consume(fresh)).toEqual(exec);
  });

  test("at most 1000 are outstanding; expired ones make room", () => {
    let now = 0;
    const cache = new TokenCache({ now: () => now });
    for (let i = 0; i < 1000; i++) cache.insert(exec);
    let err: unknown;
    try {
      cache.insert(exec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrioError);
    expect((err as CrioError).code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    expect((err as Error).message).toBe("maximum number of in-flight requests exceeded");
    now += 60_001;
    cache.insert(exec);
    expect(cache.size).toBe(1);
  });
});
