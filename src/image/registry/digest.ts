// Content digests as the OCI image spec defines them (descriptor.md#digests): `algorithm:encoded`.
// The registry client verifies every manifest and blob it hands out against one.
import { InvalidArgumentError } from "../../errors.ts";

/** The algorithms the OCI image spec registers; sha256 is the one every registry uses. */
export type DigestAlgorithm = "sha256" | "sha512";

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^(sha256|sha512):([a-f0-9]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  encoded: string;
}

/** Whether `s` is a well-formed digest of a registered algorithm (lowercase hex, right length). */
export function isDigest(s: string): boolean {
  const m = DIGEST_RE.exec(s);
  return m !== null && m[2]!.length === ENCODED_LENGTH[m[1] as DigestAlgorithm];
}

/** Parses a digest, throwing InvalidArgumentError naming it when it is malformed. */
export function parseDigest(s: string): ParsedDigest {
  const m = DIGEST_RE.exec(s);
  if (m === null || m[2]!.length !== ENCODED_LENGTH[m[1] as DigestAlgorithm]) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(s.slice(0, 200))}: want sha256:<64 hex> or sha512:<128 hex>`);
  }
  return { algorithm: m[1] as DigestAlgorithm, encoded: m[2]! };
}

/** The digest of `bytes` with `algorithm` (sha256 by default). */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${new Bun.CryptoHasher(algorithm).update(bytes).digest("hex")}`;
}

/** Incremental digest of a stream of chunks, in the algorithm of an expected digest. */
export class DigestHasher {
  readonly algorithm: DigestAlgorithm;
  private readonly hasher: Bun.CryptoHasher;
  /** Bytes hashed so far. */
  bytes = 0;

  constructor(algorithm: DigestAlgorithm) {
    this.algorithm = algorithm;
    this.hasher = new Bun.CryptoHasher(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hasher.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The digest of everything hashed; call once. */
  digest(): string {
    return `${this.algorithm}:${this.hasher.digest("hex")}`;
  }
}
