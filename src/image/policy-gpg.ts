// OpenPGP verification of "simple signing" signatures (the signedBy policy requirement with
// keyType GPGKeys). We do not implement OpenPGP: Debian's gpgv (package gpgv, installed with
// every Debian system) checks the signature against a keyring holding only the policy's trusted
// keys, in a private home directory, and writes the signed payload out. Its machine-readable
// status lines, not its exit status alone, decide the result.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export class GpgVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpgVerificationError";
  }
}

export interface GpgVerification {
  /** The signed data (the simple-signing JSON), now known to be signed by a trusted key. */
  plaintext: Uint8Array;
  /** Fingerprint of the signing (sub)key. */
  fingerprint: string;
  /** Fingerprint of its primary key. */
  primaryFingerprint: string;
}

export interface GpgOptions {
  gpgv?: string;
  tmpDir?: string;
}

/**
 * Binary OpenPGP packets from ASCII-armored or binary key data; armored input may hold several
 * blocks. gpgv reads only binary keyrings, and binary keyrings concatenate.
 */
export function dearmor(data: Uint8Array): Uint8Array {
  const text = Buffer.from(data).toString("latin1");
  if (!text.includes("-----BEGIN PGP ")) return data;
  const parts: Buffer[] = [];
  const re = /-----BEGIN PGP [A-Z ]+-----\r?\n([\s\S]*?)-----END PGP [A-Z ]+-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const lines = (m[1] ?? "").split(/\r?\n/);
    // Armor headers ("Version: …") end at the first empty line, when there are any.
    const blank = lines.findIndex((l) => l.trim() === "");
    const hasHeaders = lines.slice(0, Math.max(blank, 0)).some((l) => l.includes(":"));
    const body = (hasHeaders ? lines.slice(blank + 1) : lines)
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("=")) // "=XXXX" is the CRC-24 checksum line
      .join("");
    parts.push(Buffer.from(body, "base64"));
  }
  if (parts.length === 0) throw new GpgVerificationError("ASCII-armored key data without a complete PGP block");
  return Buffer.concat(parts);
}

/**
 * Verifies an OpenPGP signed message (gpg --sign output) with the given trusted public keys and
 * returns the signed data. Rejects unless gpgv reports exactly one good, valid signature from a
 * key that has not expired or been revoked.
 */
export async function verifyGpgSignature(trustedKeys: readonly Uint8Array[], signature: Uint8Array, opts: GpgOptions = {}): Promise<GpgVerification> {
  if (trustedKeys.length === 0) throw new GpgVerificationError("No public keys imported");
  const dir = mkdtempSync(path.join(opts.tmpDir ?? tmpdir(), "crio-gpgv-"));
  try {
    const keyring = path.join(dir, "trusted.gpg");
    const sigFile = path.join(dir, "signature");
    const outFile = path.join(dir, "payload");
    writeFileSync(keyring, Buffer.concat(trustedKeys.map((k) => Buffer.from(dearmor(k)))), { mode: 0o600 });
    writeFileSync(sigFile, signature, { mode: 0o600 });
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(
        [opts.gpgv ?? "gpgv", "--homedir", dir, "--keyring", keyring, "--status-fd", "1", "--output", outFile, sigFile],
        { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } },
      );
    } catch (err) {
      throw new GpgVerificationError(`cannot run gpgv (Debian package gpgv): ${(err as Error).message}`);
    }
    const [status, stderr, code] = await Promise.all([
      new Response(proc.stdout as ReadableStream).text(),
      new Response(proc.stderr as ReadableStream).text(),
      proc.exited,
    ]);
    const lines = status.split("\n").filter((l) => l.startsWith("[GNUPG:] ")).map((l) => l.slice(9).split(" "));
    const has = (kw: string) => lines.filter((l) => l[0] === kw);
    for (const bad of ["BADSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG", "NO_PUBKEY", "ERRSIG"]) {
      if (has(bad).length > 0) throw new GpgVerificationError(`Invalid GPG signature: ${describeStatus(bad, has(bad)[0] ?? [])}`);
    }
    const good = has("GOODSIG");
    const valid = has("VALIDSIG");
    if (code !== 0 || good.length !== 1 || valid.length !== 1 || has("NEWSIG").length > 1) {
      if (good.length > 1 || valid.length > 1) throw new GpgVerificationError("Unexpected GPG signature count");
      const detail = stderr.trim().split("\n").slice(-1)[0] ?? "";
      throw new GpgVerificationError(`Invalid GPG signature${detail ? `: ${detail}` : ` (gpgv exit status ${code})`}`);
    }
    const v = valid[0] ?? [];
    const fingerprint = v[1] ?? "";
    const primaryFingerprint = v[10] ?? fingerprint;
    return { plaintext: new Uint8Array(readFileSync(outFile)), fingerprint, primaryFingerprint };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function describeStatus(kw: string, fields: string[]): string {
  const key = fields[1] ?? "unknown key";
  switch (kw) {
    case "BADSIG":
      return `bad signature by key ${key}`;
    case "EXPKEYSIG":
      return `signature by expired key ${key}`;
    case "REVKEYSIG":
      return `signature by revoked key ${key}`;
    case "EXPSIG":
      return `expired signature by key ${key}`;
    case "NO_PUBKEY":
      return `signed by key ${key}, which is not trusted`;
    default:
      return `signature could not be checked (${fields.join(" ")})`;
  }
}
