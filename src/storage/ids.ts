// Identifiers and names as containers/storage and containers/image compute them, so that this
// daemon and podman arrive at the same layer and image IDs for the same content.
import { createHash, randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../errors.ts";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;

/** sha256 digest string ("sha256:<hex>") of `data`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function isDigest(d: string): boolean {
  return DIGEST_RE.test(d);
}

/** Throws InvalidArgumentError unless `d` is a canonical "sha256:<64 hex>" digest. */
export function checkDigest(d: string, what: string): string {
  if (!isDigest(d)) throw new InvalidArgumentError(`${what} ${JSON.stringify(d)} is not a sha256 digest`);
  return d;
}

/** The hex part of a digest ("sha256:abc" → "abc"). */
export function digestHex(d: string): string {
  const i = d.indexOf(":");
  return i < 0 ? d : d.slice(i + 1);
}

export function isFullId(id: string): boolean {
  return HEX64_RE.test(id);
}

/** A random 64-hex-character ID, as stringid.GenerateRandomID makes. */
export function randomId(): string {
  return randomBytes(32).toString("hex");
}

/**
 * The storage ID of a layer pulled by containers/image (storage_dest.go, layerID): a base
 * layer's ID is the hex of its DiffID (uncompressed digest); a layer above `parentId` is
 * sha256(parentId + "+" + diffIdHex). Not Docker's chain ID: the parent term is the parent's
 * storage ID and the separator is "+".
 */
export function layerIdFor(parentId: string | undefined, diffId: string): string {
  const component = digestHex(checkDigest(diffId, "diff ID"));
  if (parentId === undefined || parentId === "") return component;
  return createHash("sha256").update(`${parentId}+${component}`).digest("hex");
}

/** The storage ID of an image with a schema2/OCI manifest: the hex of its config digest. */
export function imageIdFor(configDigest: string): string {
  return digestHex(checkDigest(configDigest, "config digest"));
}

/** Big-data key under which containers/image stores the manifest with `digest`. */
export function manifestBigDataKey(digest: string): string {
  return `manifest-${checkDigest(digest, "manifest digest")}`;
}

/** Big-data key under which containers/image stores the signatures of manifest `digest`. */
export function signatureBigDataKey(digest: string): string {
  return `signature-${digestHex(checkDigest(digest, "manifest digest"))}`;
}

/** Whether a big-data key holds a manifest whose digest identifies the image ("manifest*"). */
export function isManifestKey(key: string): boolean {
  return key.startsWith("manifest");
}

/**
 * The file name of a big-data item (makeBigDataBaseName): the key itself when it is made only of
 * [.0-9a-z], otherwise "=" + base64(key). Reproduces upstream's reader quirk exactly: the scan
 * stops after consuming the first offending character, so a key whose only offending character
 * is its last one keeps its plain name.
 */
export function bigDataFileName(key: string): string {
  const bytes = new TextEncoder().encode(key);
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const size = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    i += size;
    const ok = size === 1 && (b === 0x2e || (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a));
    if (!ok) break;
  }
  if (i < bytes.length) return `=${Buffer.from(bytes).toString("base64")}`;
  return key;
}

/** Keeps the first occurrence of each string, in order (dedupeStrings). */
export function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}

export type NameOperation = "set" | "add" | "remove";

/** applyNameOperation: the resulting name list ("add" puts the new names first). */
export function applyNameOperation(oldNames: readonly string[], names: readonly string[], op: NameOperation): string[] {
  switch (op) {
    case "set":
      return dedupe(names);
    case "remove":
      return dedupe(oldNames.filter((n) => !names.includes(n)));
    case "add":
      return dedupe([...names, ...oldNames]);
  }
}

/**
 * Resolves a unique ID prefix (truncindex): undefined when nothing matches, InvalidArgumentError
 * when more than one ID starts with `prefix`.
 */
export function resolvePrefix(ids: Iterable<string>, prefix: string, what: string): string | undefined {
  if (prefix === "" || prefix.includes(":")) return undefined;
  let found: string | undefined;
  for (const id of ids) {
    if (!id.startsWith(prefix)) continue;
    if (found !== undefined && found !== id) {
      throw new InvalidArgumentError(`${what} ID prefix ${JSON.stringify(prefix)} is ambiguous`);
    }
    found = id;
  }
  return found;
}

const SAFE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** Layer and image IDs become directory names: refuse anything that is not one plain component. */
export function checkId(id: string, what: string): string {
  if (!SAFE_ID_RE.test(id) || id === "l") throw new InvalidArgumentError(`invalid ${what} ID ${JSON.stringify(id)}`);
  return id;
}
