import { describe, expect, test } from "bun:test";
import { compilePinnedPattern, PinnedImages } from "./pinned.ts";

describe("pinned_images", () => {
  test("exact, prefix and keyword patterns", () => {
    expect(compilePinnedPattern("quay.io/a/b:1").test("quay.io/a/b:1")).toBe(true);
    expect(compilePinnedPattern("quay.io/a/b:1").test("quay.io/a/b:12")).toBe(false);
    expect(compilePinnedPattern("quay.io/a/*").test("quay.io/a/b:1")).toBe(true);
    expect(compilePinnedPattern("quay.io/a/*").test("docker.io/quay.io/a/b")).toBe(false);
    expect(compilePinnedPattern("*busy*").test("docker.io/library/busybox:latest")).toBe(true);
    expect(compilePinnedPattern("*busy*").test("docker.io/library/alpine:latest")).toBe(false);
  });

  test("regex characters in names are literal", () => {
    expect(compilePinnedPattern("a.b/c:1").test("aXb/c:1")).toBe(false);
    expect(compilePinnedPattern("a*b").test("aXb")).toBe(false);
    expect(compilePinnedPattern("a*b").test("a*b")).toBe(true);
  });

  test("the pause image is always pinned; any name of an image may match", () => {
    const p = new PinnedImages(["*nginx*"], "registry.k8s.io/pause:3.10.1");
    expect(p.isPinned(["registry.k8s.io/pause:3.10.1"])).toBe(true);
    expect(p.isPinned(["docker.io/library/busybox:latest", "docker.io/library/nginx:1"])).toBe(true);
    expect(p.isPinned(["docker.io/library/busybox:latest"])).toBe(false);
    expect(new PinnedImages([], "").isPinned(["x"])).toBe(false);
  });
});
