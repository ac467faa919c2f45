import { describe, expect, test } from "bun:test";
import { GrpcCode } from "../../errors.ts";
import { DigestHasher, digestOf, isDigest, parseDigest } from "./digest.ts";

const EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

describe("digests", () => {
  test("digestOf and the incremental hasher agree", () => {
    expect(digestOf(new Uint8Array())).toBe(EMPTY_SHA256);
    const h = new DigestHasher("sha256");
    h.update(new TextEncoder().encode("hello "));
    h.update(new TextEncoder().encode("world"));
    expect(h.bytes).toBe(11);
    expect(h.digest()).toBe(digestOf(new TextEncoder().encode("hello world")));
    expect(digestOf(new Uint8Array([1]), "sha512")).toMatch(/^sha512:[a-f0-9]{128}$/);
  });

  test("isDigest / parseDigest accept only well-formed sha256 and sha512", () => {
    expect(isDigest(EMPTY_SHA256)).toBe(true);
    expect(parseDigest(EMPTY_SHA256)).toEqual({ algorithm: "sha256", encoded: EMPTY_SHA256.slice(7) });
    for (const bad of ["latest", "sha256:abc", EMPTY_SHA256.toUpperCase(), `md5:${"a".repeat(32)}`, `sha512:${"a".repeat(64)}`, `${EMPTY_SHA256}/../x`]) {
      expect(isDigest(bad)).toBe(false);
      let err: unknown;
      try {
        parseDigest(bad);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: number }).code).toBe(GrpcCode.INVALID_ARGUMENT);
    }
  });
});
