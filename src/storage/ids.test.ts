import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../errors.ts";
import {
  applyNameOperation,
  bigDataFileName,
  checkId,
  imageIdFor,
  layerIdFor,
  manifestBigDataKey,
  resolvePrefix,
  sha256Digest,
  signatureBigDataKey,
} from "./ids.ts";

const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

describe("layer and image IDs (containers/image storage_dest.go)", () => {
  test("a base layer's ID is its DiffID hex", () => {
    expect(layerIdFor(undefined, D1)).toBe("a".repeat(64));
    expect(layerIdFor("", D1)).toBe("a".repeat(64));
  });

  test("a child's ID is sha256(parentID + '+' + diffID hex)", () => {
    const parent = layerIdFor(undefined, D1);
    const want = createHash("sha256").update(`${parent}+${"b".repeat(64)}`).digest("hex");
    expect(layerIdFor(parent, D2)).toBe(want);
    expect(layerIdFor(parent, D2)).not.toBe(layerIdFor(undefined, D2));
  });

  test("image ID is the config digest hex; keys follow containers/image", () => {
    expect(imageIdFor(D1)).toBe("a".repeat(64));
    expect(manifestBigDataKey(D1)).toBe(`manifest-${D1}`);
    expect(signatureBigDataKey(D1)).toBe(`signature-${"a".repeat(64)}`);
    expect(() => layerIdFor(undefined, "sha256:xyz")).toThrow(InvalidArgumentError);
  });

  test("sha256Digest", () => {
    expect(sha256Digest("")).toBe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("big data file names (makeBigDataBaseName)", () => {
  test("plain names stay, others are =base64", () => {
    expect(bigDataFileName("manifest")).toBe("manifest");
    expect(bigDataFileName("signature.1")).toBe("signature.1");
    // As podman 4.3 named the config item of an imported image.
    const key = "sha256:ddc5d24c498233023985672a5f51a3afc83e755665d4360c388767c73449250b";
    expect(bigDataFileName(key)).toBe(`=${Buffer.from(key).toString("base64")}`);
    expect(bigDataFileName(`manifest-${D1}`)).toBe(`=${Buffer.from(`manifest-${D1}`).toString("base64")}`);
  });

  test("upstream's quirk: a single offending last character keeps the plain name", () => {
    expect(bigDataFileName("abC")).toBe("abC");
    expect(bigDataFileName("aBc")).toBe(`=${Buffer.from("aBc").toString("base64")}`);
    expect(bigDataFileName("é")).toBe("é");
  });
});

describe("names", () => {
  test("applyNameOperation", () => {
    expect(applyNameOperation(["a", "b"], ["c", "a"], "add")).toEqual(["c", "a", "b"]);
    expect(applyNameOperation(["a", "b", "c"], ["b"], "remove")).toEqual(["a", "c"]);
    expect(applyNameOperation(["a"], ["x", "x"], "set")).toEqual(["x"]);
  });

  test("resolvePrefix: unique, absent, ambiguous", () => {
    const ids = ["abc1", "abd2", "ff00"];
    expect(resolvePrefix(ids, "abc", "image")).toBe("abc1");
    expect(resolvePrefix(ids, "f", "image")).toBe("ff00");
    expect(resolvePrefix(ids, "zz", "image")).toBeUndefined();
    expect(resolvePrefix(ids, "", "image")).toBeUndefined();
    expect(() => resolvePrefix(ids, "ab", "image")).toThrow(InvalidArgumentError);
  });

  test("IDs must be one safe path component", () => {
    expect(checkId("a".repeat(64), "layer")).toBe("a".repeat(64));
    for (const bad of ["", "../x", "a/b", ".hidden", "l"]) expect(() => checkId(bad, "layer")).toThrow(InvalidArgumentError);
  });
});
