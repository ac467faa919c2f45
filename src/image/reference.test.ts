import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import {
  familiarName,
  familiarString,
  formatReference,
  isImageId,
  isShortName,
  parseCanonicalReference,
  parseReference,
  preferDigest,
  repository,
  withDefaultTag,
} from "./reference.ts";

const H64 = "a".repeat(64);
const D256 = `sha256:${"0123456789abcdef".repeat(4)}`;
const D512 = `sha512:${"f".repeat(128)}`;

describe("parseReference: valid references and their normal form", () => {
  const table: [string, string, { domain: string; path: string; tag?: string; digest?: string }][] = [
    ["busybox", "docker.io/library/busybox", { domain: "docker.io", path: "library/busybox" }],
    ["busybox:1.36", "docker.io/library/busybox:1.36", { domain: "docker.io", path: "library/busybox", tag: "1.36" }],
    ["library/busybox:1.36", "docker.io/library/busybox:1.36", { domain: "docker.io", path: "library/busybox", tag: "1.36" }],
    ["docker.io/busybox", "docker.io/library/busybox", { domain: "docker.io", path: "library/busybox" }],
    ["index.docker.io/busybox", "docker.io/library/busybox", { domain: "docker.io", path: "library/busybox" }],
    ["index.docker.io/foo/bar", "docker.io/foo/bar", { domain: "docker.io", path: "foo/bar" }],
    ["user/repo", "docker.io/user/repo", { domain: "docker.io", path: "user/repo" }],
    ["localhost/img", "localhost/img", { domain: "localhost", path: "img" }],
    ["localhost:5000/a/b:tag", "localhost:5000/a/b:tag", { domain: "localhost:5000", path: "a/b", tag: "tag" }],
    ["127.0.0.1:5000/x", "127.0.0.1:5000/x", { domain: "127.0.0.1:5000", path: "x" }],
    ["[::1]:5000/x:t", "[::1]:5000/x:t", { domain: "[::1]:5000", path: "x", tag: "t" }],
    [`quay.io/x/y@${D256}`, `quay.io/x/y@${D256}`, { domain: "quay.io", path: "x/y", digest: D256 }],
    [`quay.io/x/y:v1@${D256}`, `quay.io/x/y:v1@${D256}`, { domain: "quay.io", path: "x/y", tag: "v1", digest: D256 }],
    [`registry.k8s.io/pause@${D512}`, `registry.k8s.io/pause@${D512}`, { domain: "registry.k8s.io", path: "pause", digest: D512 }],
    ["a.b.c/d__e/f-g.h_i", "a.b.c/d__e/f-g.h_i", { domain: "a.b.c", path: "d__e/f-g.h_i" }],
    ["my-registry.example.com:443/team/app:v1.2.3-rc.1", "my-registry.example.com:443/team/app:v1.2.3-rc.1", { domain: "my-registry.example.com:443", path: "team/app", tag: "v1.2.3-rc.1" }],
    [`busybox:${"T".repeat(128)}`, `docker.io/library/busybox:${"T".repeat(128)}`, { domain: "docker.io", path: "library/busybox", tag: "T".repeat(128) }],
    // An uppercase first component cannot be a path component, so it is taken as a domain (as upstream).
    ["Foo/bar", "Foo/bar", { domain: "Foo", path: "bar" }],
  ];
  for (const [input, normal, parts] of table) {
    test(input, () => {
      const ref = parseReference(input);
      expect({ ...ref }).toEqual(parts);
      expect(formatReference(ref)).toBe(normal);
    });
  }
});

describe("parseReference: invalid references", () => {
  const table: [string, RegExp][] = [
    ["", /empty/],
    ["Busybox", /must be lowercase/],
    ["docker.io/Library/busybox", /must be lowercase/],
    ["quay.io/Org/img:tag", /must be lowercase/],
    [`busybox:${"a".repeat(129)}`, /longer than 128/],
    ["busybox:-tag", /tag/],
    ["busybox:.tag", /tag/],
    ["busybox@sha256:abc", /digest/],
    [`busybox@sha256:${"a".repeat(63)}`, /64 hex/],
    [`busybox@sha256:${"A".repeat(64)}`, /lowercase hex/],
    [`busybox@md5:${"a".repeat(32)}`, /unsupported digest algorithm/],
    [`busybox@sha512:${"a".repeat(64)}`, /128 hex/],
    ["a//b", /not a valid reference/],
    ["/busybox", /not a valid reference/],
    ["busybox/", /not a valid reference/],
    ["a-/b", /not a valid reference/],
    ["-a/b", /not a valid reference/],
    ["http://quay.io/x", /not a valid reference/],
    [H64, /image ID/],
    [`quay.io/${"a".repeat(250)}`, /255 characters/],
  ];
  for (const [input, why] of table) {
    test(JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input), () => {
      let err: unknown;
      try {
        parseReference(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      const msg = (err as Error).message;
      expect(msg).toMatch(why);
      expect(msg).toContain(JSON.stringify(input).slice(0, 20)); // names the input
    });
  }
});

describe("forms", () => {
  test("familiar form elides docker.io and library/", () => {
    expect(familiarName(parseReference("busybox:1"))).toBe("busybox");
    expect(familiarString(parseReference("busybox:1"))).toBe("busybox:1");
    expect(familiarName(parseReference("docker.io/library/a/b"))).toBe("library/a/b");
    expect(familiarName(parseReference("docker.io/user/repo"))).toBe("user/repo");
    expect(familiarName(parseReference("quay.io/library/busybox"))).toBe("quay.io/library/busybox");
    expect(familiarString(parseReference(`localhost:5000/x@${D256}`))).toBe(`localhost:5000/x@${D256}`);
  });

  test("repository, default tag, digest preference", () => {
    const ref = parseReference("busybox");
    expect(repository(ref)).toBe("docker.io/library/busybox");
    expect(formatReference(withDefaultTag(ref))).toBe("docker.io/library/busybox:latest");
    expect(formatReference(withDefaultTag(parseReference(`busybox@${D256}`)))).toBe(`docker.io/library/busybox@${D256}`);
    expect(formatReference(preferDigest(parseReference(`busybox:1@${D256}`)))).toBe(`docker.io/library/busybox@${D256}`);
    expect(formatReference(preferDigest(parseReference("busybox:1")))).toBe("docker.io/library/busybox:1");
  });

  test("isShortName: no registry given by the user", () => {
    for (const s of ["busybox", "busybox:1", "library/busybox", "ns/img", `img@${D256}`]) expect(isShortName(s)).toBe(true);
    for (const s of ["quay.io/img", "localhost/img:tag", "server.org:5000/lib/image", "docker.io/busybox", "localhost:5000/x", "BAD NAME"]) {
      expect(isShortName(s)).toBe(false);
    }
  });

  test("isImageId", () => {
    expect(isImageId(H64)).toBe(true);
    expect(isImageId(H64.slice(1))).toBe(false);
    expect(isImageId("A".repeat(64))).toBe(false);
    expect(isImageId(`sha256:${H64}`)).toBe(false);
  });

  test("parseCanonicalReference requires the canonical spelling", () => {
    expect(formatReference(parseCanonicalReference("docker.io/library/busybox:1"))).toBe("docker.io/library/busybox:1");
    expect(() => parseCanonicalReference("busybox")).toThrow(/canonical/);
    expect(() => parseCanonicalReference("docker.io/busybox")).toThrow(/canonical/);
    expect(() => parseCanonicalReference("index.docker.io/library/busybox")).toThrow(/canonical/);
  });
});
