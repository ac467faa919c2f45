// The SPDX 2.3 JSON SBOM of one bundle tarball (scripts/bundle writes it as <tarball>.spdx.json).
// Generated, never written by hand, from:
//   - the bundler's metafile (`bun build --compile --metafile`): which node_modules files were
//     compiled into bin/crio, hence which packages;
//   - package-lock.json: each such package's version, declared licence and integrity hash, and
//     the Bun runtime the executable is built on (@oven/bun-linux-<arch>);
//   - the tarball and the executable themselves, for their checksums.
// The same inputs give the same bytes: `created` is SOURCE_DATE_EPOCH and the namespace derives
// from the tarball's digest.
// Usage: bun scripts/bundle.d/sbom.ts --tarball T --binary B --metafile M --arch A --tag V \
//          --version X --epoch S [--lock package-lock.json] [--package package.json]
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface LockEntry {
  version?: string;
  license?: unknown;
  integrity?: string;
  dev?: boolean;
}

interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo: string;
  packageFileName?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  checksums: { algorithm: string; checksumValue: string }[];
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
  primaryPackagePurpose: string;
  comment?: string;
}

function args(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i] ?? "";
    const v = argv[i + 1];
    if (!k.startsWith("--") || v === undefined) throw new Error(`sbom: bad arguments near ${JSON.stringify(k)}`);
    out[k.slice(2)] = v;
  }
  for (const k of ["tarball", "binary", "metafile", "arch", "tag", "version", "epoch"]) {
    if (!out[k]) throw new Error(`sbom: --${k} is required`);
  }
  return out;
}

const digest = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest("hex");

/** The lockfile key of the package a bundled file belongs to: the path up to its package folder. */
function lockKeyOf(input: string): string | undefined {
  const at = input.lastIndexOf("node_modules/");
  if (at === -1) return undefined;
  const rest = input.slice(at + "node_modules/".length).split("/");
  const name = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  const start = input.indexOf("node_modules/");
  return `${input.slice(start, at)}node_modules/${name}`;
}

const nameOf = (key: string) => key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);

/** An SPDX licence expression from the lockfile's `license`, or NOASSERTION. */
function licenseOf(l: unknown): string {
  return typeof l === "string" && /^[A-Za-z0-9.+\-() ]+$/.test(l) && !/^SEE /.test(l) ? l : "NOASSERTION";
}

/** SPDX checksums from an npm integrity string ("sha512-<base64> ..."). */
function checksumsOf(integrity: string | undefined, key: string): SpdxPackage["checksums"] {
  const out: SpdxPackage["checksums"] = [];
  for (const part of (integrity ?? "").split(/\s+/)) {
    const m = /^(sha512|sha384|sha256|sha1)-(.+)$/.exec(part);
    if (m) out.push({ algorithm: m[1]!.toUpperCase(), checksumValue: Buffer.from(m[2]!, "base64").toString("hex") });
  }
  if (out.length === 0) throw new Error(`sbom: ${key} has no integrity hash in package-lock.json`);
  return out;
}

const spdxId = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, "-");
const purl = (name: string, version: string) => `pkg:npm/${name.replace(/^@/, "%40")}@${version}`;

function npmPackage(key: string, e: LockEntry, comment?: string): SpdxPackage {
  const name = nameOf(key);
  const version = e.version ?? "NOASSERTION";
  const license = licenseOf(e.license);
  return {
    SPDXID: `SPDXRef-npm-${spdxId(name)}-${spdxId(version)}`,
    name,
    versionInfo: version,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: license,
    licenseDeclared: license,
    copyrightText: "NOASSERTION",
    checksums: checksumsOf(e.integrity, key),
    externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl(name, version) }],
    primaryPackagePurpose: "LIBRARY",
    ...(comment ? { comment } : {}),
  };
}

function buildSbom(o: Record<string, string>): object {
  const lock = JSON.parse(readFileSync(o.lock ?? "package-lock.json", "utf8")) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(o.package ?? "package.json", "utf8")) as { license?: string; description?: string };
  const meta = JSON.parse(readFileSync(o.metafile!, "utf8")) as { inputs: Record<string, unknown> };
  const tarball = readFileSync(o.tarball!);
  const binary = readFileSync(o.binary!);
  const tarName = basename(o.tarball!);
  const tarSha = digest("sha256", tarball);

  const keys = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const key = lockKeyOf(input);
    if (key === undefined) continue;
    if (!lock.packages[key]) throw new Error(`sbom: ${input} was bundled, but ${key} is not in package-lock.json`);
    keys.add(key);
  }
  const runtimeKey = `node_modules/@oven/bun-linux-${o.arch === "arm64" ? "aarch64" : "x64"}`;
  const runtime = lock.packages[runtimeKey];
  if (!runtime) throw new Error(`sbom: ${runtimeKey} (the Bun runtime) is not in package-lock.json`);

  const libs = [...keys].sort().map((k) => npmPackage(k, lock.packages[k]!));
  libs.push(npmPackage(runtimeKey, runtime, "The Bun runtime that `bun build --compile` makes the executable from."));
  const projectLicense = licenseOf(pkg.license);
  const crio: SpdxPackage = {
    SPDXID: "SPDXRef-Package-crio",
    name: "crio",
    versionInfo: o.version!,
    packageFileName: "crio/bin/crio",
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: projectLicense,
    licenseDeclared: projectLicense,
    copyrightText: "NOASSERTION",
    checksums: [
      { algorithm: "SHA1", checksumValue: digest("sha1", binary) },
      { algorithm: "SHA256", checksumValue: digest("sha256", binary) },
    ],
    primaryPackagePurpose: "APPLICATION",
    comment: `${pkg.description ?? "crio"}: one executable for linux/${o.arch} compiled by Bun; the LIBRARY packages of this document are inside it.`,
  };
  const archive: SpdxPackage = {
    SPDXID: "SPDXRef-Package-bundle",
    name: tarName,
    versionInfo: o.tag!,
    packageFileName: tarName,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: projectLicense,
    licenseDeclared: projectLicense,
    copyrightText: "NOASSERTION",
    checksums: [{ algorithm: "SHA256", checksumValue: tarSha }],
    primaryPackagePurpose: "ARCHIVE",
  };
  const created = new Date(Number(o.epoch) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: tarName,
    documentNamespace: `https://spdx.org/spdxdocs/crio-${o.tag}-${o.arch}-${tarSha}`,
    creationInfo: {
      created,
      creators: ["Tool: crio-scripts-bundle"],
      comment: "npm packages from the bundler's input list (bun build --metafile), versions, licences and checksums from package-lock.json.",
    },
    packages: [archive, crio, ...libs],
    relationships: [
      { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: archive.SPDXID },
      { spdxElementId: archive.SPDXID, relationshipType: "CONTAINS", relatedSpdxElement: crio.SPDXID },
      ...libs.map((l) => ({ spdxElementId: crio.SPDXID, relationshipType: "CONTAINS", relatedSpdxElement: l.SPDXID })),
    ],
  };
}

if (import.meta.main) {
  process.stdout.write(JSON.stringify(buildSbom(args(process.argv.slice(2))), null, 2) + "\n");
}
