import { describe, expect, test } from "bun:test";
import { parseWwwAuthenticate } from "./challenge.ts";

describe("parseWwwAuthenticate", () => {
  test("docker/distribution bearer challenge", () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.example.test/token",service="registry.example.test",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: { realm: "https://auth.example.test/token", service: "registry.example.test", scope: "repository:library/busybox:pull" },
      },
    ]);
  });

  test("basic, case-insensitive scheme and names, spaces", () => {
    expect(parseWwwAuthenticate('BASIC  Realm = "basic-realm"')).toEqual([{ scheme: "basic", params: { realm: "basic-realm" } }]);
  });

  test("several challenges in one header, quoted commas and escapes", () => {
    expect(parseWwwAuthenticate('Basic realm="a, b", Bearer realm="http://127.0.0.1/t",scope="x \\"y\\""')).toEqual([
      { scheme: "basic", params: { realm: "a, b" } },
      { scheme: "bearer", params: { realm: "http://127.0.0.1/t", scope: 'x "y"' } },
    ]);
  });

  test("token68 and unquoted values", () => {
    expect(parseWwwAuthenticate("Negotiate abc123==, Bearer realm=http://127.0.0.1:5/token")).toEqual([
      { scheme: "negotiate", params: { abc123: "" } },
      { scheme: "bearer", params: { realm: "http://127.0.0.1:5/token" } },
    ]);
  });

  test("empty and garbage", () => {
    expect(parseWwwAuthenticate(null)).toEqual([]);
    expect(parseWwwAuthenticate("")).toEqual([]);
    expect(parseWwwAuthenticate("  ,, ")).toEqual([]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: "bearer", params: { realm: "unterminated" } }]);
  });
});
