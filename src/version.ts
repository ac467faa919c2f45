// Build identity. scripts/build stamps these through `bun build --define`; a run from source
// (bun src/main.ts) reports a development build.
declare const CRIO_BUILD_VERSION: string | undefined;
declare const CRIO_BUILD_GIT_COMMIT: string | undefined;
declare const CRIO_BUILD_GIT_COMMIT_DATE: string | undefined;
declare const CRIO_BUILD_GIT_TREE_STATE: string | undefined;
declare const CRIO_BUILD_DATE: string | undefined;

import { readFileSync } from "node:fs";
import { arch } from "node:process";

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

function stamped(v: string | undefined, dev: string): string {
  return v === undefined || v === "" ? dev : v;
}

/** The CRI API version this runtime serves (runtime.v1). */
export const CRI_API_VERSION = "v1";
/** The name reported by Version: CRI clients (and operators' tooling) know this runtime as cri-o. */
export const RUNTIME_NAME = "cri-o";
/** Version of the kubelet runtime API (VersionResponse.version), fixed at 0.1.0 as CRI-O does. */
export const KUBE_API_VERSION = "0.1.0";

export interface VersionInfo {
  version: string;
  gitCommit: string;
  gitCommitDate: string;
  gitTreeState: string;
  buildDate: string;
  bunVersion: string;
  compiler: string;
  platform: string;
  linkmode: string;
  seccompEnabled: boolean;
  appArmorEnabled: boolean;
}

const goArch: Record<string, string> = { x64: "amd64", arm64: "arm64" };

export function versionInfo(): VersionInfo {
  return {
    version: stamped(typeof CRIO_BUILD_VERSION === "undefined" ? undefined : CRIO_BUILD_VERSION, "0.0.0-dev"),
    gitCommit: stamped(typeof CRIO_BUILD_GIT_COMMIT === "undefined" ? undefined : CRIO_BUILD_GIT_COMMIT, "unknown"),
    gitCommitDate: stamped(
      typeof CRIO_BUILD_GIT_COMMIT_DATE === "undefined" ? undefined : CRIO_BUILD_GIT_COMMIT_DATE,
      "unknown",
    ),
    gitTreeState: stamped(
      typeof CRIO_BUILD_GIT_TREE_STATE === "undefined" ? undefined : CRIO_BUILD_GIT_TREE_STATE,
      "unknown",
    ),
    buildDate: stamped(typeof CRIO_BUILD_DATE === "undefined" ? undefined : CRIO_BUILD_DATE, "unknown"),
    bunVersion: Bun.version,
    compiler: "bun",
    platform: `linux/${goArch[arch] ?? arch}`,
    linkmode: "dynamic",
    seccompEnabled: /^Seccomp:/m.test(readOr("/proc/self/status", "")),
    appArmorEnabled: readOr("/sys/module/apparmor/parameters/enabled", "N").trim() === "Y",
  };
}

const labels: [keyof VersionInfo, string][] = [
  ["version", "Version"],
  ["gitCommit", "GitCommit"],
  ["gitCommitDate", "GitCommitDate"],
  ["gitTreeState", "GitTreeState"],
  ["buildDate", "BuildDate"],
  ["bunVersion", "BunVersion"],
  ["compiler", "Compiler"],
  ["platform", "Platform"],
  ["linkmode", "Linkmode"],
  ["seccompEnabled", "SeccompEnabled"],
  ["appArmorEnabled", "AppArmorEnabled"],
];

/** `crio version` text: one `Key:  value` per line, values aligned as CRI-O's tabwriter does. */
export function formatVersion(info: VersionInfo): string {
  const width = Math.max(...labels.map(([, l]) => l.length)) + 2;
  return labels.map(([k, l]) => `${(l + ":").padEnd(width)}${String(info[k])}`).join("\n") + "\n";
}
