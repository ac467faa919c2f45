// Choosing the manifest for a platform from an image index, with containers/image's rules
// (internal/pkg/platform/platform_matcher.go): os and architecture match exactly; a wanted
// variant accepts itself and the older variants of that architecture, then an entry without a
// variant; no wanted variant accepts an entry without one, then the architecture's base variant
// (arm64 → v8). The host's variant comes from /proc/cpuinfo, as there.
import { readFileSync } from "node:fs";
import { NoMatchingPlatformError } from "./errors.ts";
import { isImageManifestMediaType, type Descriptor, type ImageIndex } from "./manifest.ts";

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Variants of an architecture, most capable first; each runs the ones after it. */
const COMPATIBILITY: Record<string, string[]> = {
  arm: ["v7", "v6", "v5"],
  arm64: ["v8"],
};
/** The variant every machine of an architecture supports. */
const BASE_VARIANT: Record<string, string> = { arm64: "v8" };

/** Node's process.arch → GOARCH, the spelling of image indexes. */
const NODE_TO_GOARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** Other spellings users and tools write for an architecture. */
const ARCH_ALIASES: Record<string, string> = { x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64", i386: "386" };

/** The ARM variant from a /proc/cpuinfo text (its "CPU architecture" line), or undefined. */
export function armVariantFromCpuinfo(cpuinfo: string): string | undefined {
  const m = /^CPU architecture\s*:\s*(.+)$/im.exec(cpuinfo);
  if (!m) return undefined;
  switch (m[1]!.trim().toLowerCase()) {
    case "8":
    case "aarch64":
      return "v8";
    case "7":
    case "7m":
    case "?(12)":
    case "?(13)":
    case "?(14)":
    case "?(15)":
    case "?(16)":
    case "?(17)":
      return "v7";
    case "6":
    case "6tej":
      return "v6";
    case "5":
    case "5t":
    case "5te":
    case "5tej":
      return "v5";
    default:
      return undefined;
  }
}

/** This machine's platform: linux, its GOARCH, and for ARM the variant its CPU reports. */
export function hostPlatform(): PlatformSpec {
  const architecture = NODE_TO_GOARCH[process.arch] ?? process.arch;
  const p: PlatformSpec = { os: "linux", architecture };
  if (architecture === "arm" || architecture === "arm64") {
    let cpuinfo = "";
    try {
      cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      // No /proc: fall back to the variant-less rules below.
    }
    const v = armVariantFromCpuinfo(cpuinfo);
    if (v !== undefined) p.variant = v;
  }
  return p;
}

/** "os/arch[/variant]" */
export function formatPlatform(p: { os: string; architecture: string; variant?: string | undefined }): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** The platforms acceptable for `wanted`, best first (containers/image's WantedPlatforms). */
export function wantedPlatforms(wanted: PlatformSpec): PlatformSpec[] {
  const os = wanted.os.toLowerCase();
  const architecture = ARCH_ALIASES[wanted.architecture.toLowerCase()] ?? wanted.architecture.toLowerCase();
  let variants: string[];
  if (wanted.variant) {
    const order = COMPATIBILITY[architecture];
    const i = order ? order.indexOf(wanted.variant) : -1;
    variants = order && i >= 0 ? order.slice(i) : [wanted.variant];
    variants.push("");
  } else {
    variants = [""];
    const base = BASE_VARIANT[architecture];
    if (base !== undefined) variants.push(base);
  }
  return variants.map((v) => (v === "" ? { os, architecture } : { os, architecture, variant: v }));
}

/**
 * The index entry for `wanted`: the first entry matching the best acceptable platform, entries
 * in index order. Entries without a platform or that are not image manifests (nested indexes,
 * attestations are unknown/unknown anyway) are never chosen. Throws NoMatchingPlatformError
 * naming the wanted platform and the available ones.
 */
export function choosePlatform(index: ImageIndex, wanted: PlatformSpec, image: string): Descriptor {
  const candidates = index.manifests.filter((m) => m.platform !== undefined && isImageManifestMediaType(m.mediaType));
  for (const w of wantedPlatforms(wanted)) {
    const hit = candidates.find(
      (m) => m.platform!.os === w.os && m.platform!.architecture === w.architecture && (m.platform!.variant ?? "") === (w.variant ?? ""),
    );
    if (hit) return hit;
  }
  const available = [...new Set(index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!)))];
  throw new NoMatchingPlatformError(image, formatPlatform(wanted), available);
}
