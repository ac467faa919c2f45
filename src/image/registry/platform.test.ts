import { describe, expect, test } from "bun:test";
import { GrpcCode } from "../../errors.ts";
import { NoMatchingPlatformError } from "./errors.ts";
import { MediaType, type Descriptor, type ImageIndex } from "./manifest.ts";
import { armVariantFromCpuinfo, choosePlatform, hostPlatform, wantedPlatforms } from "./platform.ts";

const d = (n: number, platform?: Descriptor["platform"], mediaType: string = MediaType.ociManifest): Descriptor => ({
  mediaType,
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100 + n,
  ...(platform ? { platform } : {}),
});

const index = (...manifests: Descriptor[]): ImageIndex => ({ schemaVersion: 2, manifests });

describe("wantedPlatforms (containers/image rules)", () => {
  test("no variant: variant-less first, then the base variant (arm64 → v8)", () => {
    expect(wantedPlatforms({ os: "linux", architecture: "arm64" })).toEqual([
      { os: "linux", architecture: "arm64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ]);
    expect(wantedPlatforms({ os: "linux", architecture: "amd64" })).toEqual([{ os: "linux", architecture: "amd64" }]);
    expect(wantedPlatforms({ os: "linux", architecture: "arm" })).toEqual([{ os: "linux", architecture: "arm" }]);
  });

  test("a variant accepts older compatible variants, then none", () => {
    expect(wantedPlatforms({ os: "linux", architecture: "arm", variant: "v7" }).map((p) => p.variant ?? "")).toEqual(["v7", "v6", "v5", ""]);
    expect(wantedPlatforms({ os: "linux", architecture: "arm", variant: "v6" }).map((p) => p.variant ?? "")).toEqual(["v6", "v5", ""]);
    expect(wantedPlatforms({ os: "linux", architecture: "arm64", variant: "v8" }).map((p) => p.variant ?? "")).toEqual(["v8", ""]);
    expect(wantedPlatforms({ os: "linux", architecture: "riscv64", variant: "rva22" }).map((p) => p.variant ?? "")).toEqual(["rva22", ""]);
  });

  test("architecture aliases", () => {
    expect(wantedPlatforms({ os: "linux", architecture: "x86_64" })[0]!.architecture).toBe("amd64");
    expect(wantedPlatforms({ os: "linux", architecture: "aarch64" })[0]!.architecture).toBe("arm64");
  });
});

describe("choosePlatform", () => {
  const amd64 = d(1, { os: "linux", architecture: "amd64" });
  const arm64 = d(2, { os: "linux", architecture: "arm64", variant: "v8" });
  const armv7 = d(3, { os: "linux", architecture: "arm", variant: "v7" });
  const armv6 = d(4, { os: "linux", architecture: "arm", variant: "v6" });
  const win = d(5, { os: "windows", architecture: "amd64" });
  const attestation = d(6, { os: "unknown", architecture: "unknown" });
  const idx = index(win, amd64, arm64, armv6, armv7, attestation);

  test("exact os/arch/variant; arm64 without variant takes v8; arm v7 before v6", () => {
    expect(choosePlatform(idx, { os: "linux", architecture: "amd64" }, "x")).toBe(amd64);
    expect(choosePlatform(idx, { os: "linux", architecture: "arm64" }, "x")).toBe(arm64);
    expect(choosePlatform(idx, { os: "linux", architecture: "arm", variant: "v7" }, "x")).toBe(armv7);
    expect(choosePlatform(index(armv6, armv7), { os: "linux", architecture: "arm", variant: "v7" }, "x")).toBe(armv7);
    expect(choosePlatform(index(armv6), { os: "linux", architecture: "arm", variant: "v7" }, "x")).toBe(armv6);
    expect(choosePlatform(idx, { os: "windows", architecture: "amd64" }, "x")).toBe(win);
  });

  test("a variant-less entry is preferred for a variant-less want, and accepted as the last resort", () => {
    const plain = d(7, { os: "linux", architecture: "arm64" });
    expect(choosePlatform(index(arm64, plain), { os: "linux", architecture: "arm64" }, "x")).toBe(plain);
    expect(choosePlatform(index(plain), { os: "linux", architecture: "arm64", variant: "v8" }, "x")).toBe(plain);
  });

  test("entries without a platform or that are indexes are never chosen", () => {
    const nested = d(8, { os: "linux", architecture: "amd64" }, MediaType.ociIndex);
    expect(() => choosePlatform(index(d(9), nested), { os: "linux", architecture: "amd64" }, "x")).toThrow(NoMatchingPlatformError);
  });

  test("no match names the wanted platform and the available ones", () => {
    let err: unknown;
    try {
      choosePlatform(index(amd64, armv7), { os: "linux", architecture: "arm64", variant: "v8" }, "127.0.0.1:5000/test/busybox:latest");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoMatchingPlatformError);
    const e = err as NoMatchingPlatformError;
    expect(e.code).toBe(GrpcCode.NOT_FOUND);
    expect(e.message).toContain("127.0.0.1:5000/test/busybox:latest");
    expect(e.message).toContain("linux/arm64/v8");
    expect(e.message).toContain("available: linux/amd64, linux/arm/v7");
    expect(e.available).toEqual(["linux/amd64", "linux/arm/v7"]);
  });
});

describe("host platform", () => {
  test("GOARCH spelling of this machine", () => {
    const p = hostPlatform();
    expect(p.os).toBe("linux");
    expect(p.architecture).toBe(process.arch === "x64" ? "amd64" : process.arch);
  });

  test("ARM variant from /proc/cpuinfo", () => {
    expect(armVariantFromCpuinfo("processor\t: 0\nCPU architecture: 8\n")).toBe("v8");
    expect(armVariantFromCpuinfo("CPU architecture: 7\n")).toBe("v7");
    expect(armVariantFromCpuinfo("CPU architecture: 6TEJ\n")).toBe("v6");
    expect(armVariantFromCpuinfo("model name: x86\n")).toBeUndefined();
  });
});
