// signedBy (GPG) verification through Debian's gpgv. Keys are generated with gpg in a private
// home directory; its agent is stopped and the directory removed afterwards.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { dearmor, verifyGpgSignature } from "./policy-gpg.ts";
import { evaluatePolicy, parsePolicy, PolicyRejectedError } from "./policy.ts";
import { parseReference } from "./reference.ts";

const DIGEST = `sha256:${"3c".repeat(32)}`;
const haveGpg = Bun.which("gpg") !== null && Bun.which("gpgv") !== null;

let home = "";
let trustedBin: Uint8Array;
let trustedAsc: Uint8Array;
let untrustedBin: Uint8Array;
let trustedFpr = "";

function gpg(homedir: string, args: string[], stdin?: Uint8Array): Buffer {
  const r = Bun.spawnSync(["gpg", "--homedir", homedir, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...args], {
    stdin: stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`gpg ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout;
}

function simpleSigning(reference: string, digest = DIGEST): Uint8Array {
  return Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": reference }, image: { "docker-manifest-digest": digest }, type: "atomic container signature" }, optional: { creator: "test" } }));
}

function signWith(homedir: string, uid: string, data: Uint8Array): Uint8Array {
  return new Uint8Array(gpg(homedir, ["--local-user", uid, "--sign", "--output", "-"], data));
}

beforeAll(() => {
  if (!haveGpg) return;
  home = mkdtempSync(path.join(tmpdir(), "crio-gpg-test-"));
  gpg(home, ["--quick-gen-key", "Trusted <trusted@example.com>", "ed25519", "sign", "never"]);
  gpg(home, ["--quick-gen-key", "Other <other@example.com>", "ed25519", "sign", "never"]);
  trustedBin = new Uint8Array(gpg(home, ["--export", "trusted@example.com"]));
  trustedAsc = new Uint8Array(gpg(home, ["--armor", "--export", "trusted@example.com"]));
  untrustedBin = new Uint8Array(gpg(home, ["--export", "other@example.com"]));
  const colons = gpg(home, ["--with-colons", "--fingerprint", "trusted@example.com"]).toString();
  trustedFpr = colons.split("\n").find((l) => l.startsWith("fpr:"))?.split(":")[9] ?? "";
});

afterAll(() => {
  if (!home) return;
  Bun.spawnSync(["gpgconf", "--homedir", home, "--kill", "all"], { stdout: "ignore", stderr: "ignore" });
  rmSync(home, { recursive: true, force: true });
});

describe("gpgv verification", () => {
  beforeAll(() => {
    if (!haveGpg) throw new Error("gpg and gpgv are needed: apt-get install gnupg gpgv");
  });
  test("a good signature yields the payload and the key fingerprint", async () => {
    const payload = simpleSigning("quay.io/a:1");
    const v = await verifyGpgSignature([trustedBin], signWith(home, "trusted@example.com", payload));
    expect(Buffer.from(v.plaintext).toString()).toBe(Buffer.from(payload).toString());
    expect(v.primaryFingerprint).toBe(trustedFpr);
  });

  test("armored keys are accepted", async () => {
    expect(Buffer.from(dearmor(trustedAsc)).equals(Buffer.from(trustedBin))).toBe(true);
    await verifyGpgSignature([trustedAsc], signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1")));
  });

  test("a signature by a key outside the trusted set is rejected", async () => {
    const sig = signWith(home, "other@example.com", simpleSigning("quay.io/a:1"));
    await expect(verifyGpgSignature([trustedBin], sig)).rejects.toThrow(/not trusted|Invalid GPG signature/);
  });

  test("a corrupted signature is rejected", async () => {
    const sig = signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1"));
    const bad = new Uint8Array(sig);
    bad[bad.length - 10] = (bad[bad.length - 10] ?? 0) ^ 0xff;
    await expect(verifyGpgSignature([trustedBin], bad)).rejects.toThrow(/Invalid GPG signature/);
  });
});

describe("signedBy policy", () => {
  beforeAll(() => {
    if (!haveGpg) throw new Error("gpg and gpgv are needed: apt-get install gnupg gpgv");
  });
  const dir = () => {
    const d = mkdtempSync(path.join(tmpdir(), "crio-gpg-policy-"));
    writeFileSync(path.join(d, "trusted.gpg"), trustedBin);
    writeFileSync(path.join(d, "both.gpg"), Buffer.concat([Buffer.from(untrustedBin), Buffer.from(trustedBin)]));
    return d;
  };

  async function evaluate(keyFile: string, sigs: Uint8Array[], reference = "quay.io/a:1", signedIdentity?: unknown) {
    const d = dir();
    try {
      const policy = parsePolicy(
        JSON.stringify({
          default: [{ type: "reject" }],
          transports: { docker: { "quay.io": [{ type: "signedBy", keyType: "GPGKeys", keyPath: path.join(d, keyFile), ...(signedIdentity ? { signedIdentity } : {}) }] } },
        }),
        "/etc/containers/policy.json",
      );
      return await evaluatePolicy(policy, { reference: parseReference(reference), manifestDigest: DIGEST, gpgSignatures: async () => sigs });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }

  test("accepts a trusted signature for the image", async () => {
    const d = await evaluate("trusted.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1"))]);
    expect(d.scope).toBe(`transports.docker["quay.io"]`);
    await evaluate("both.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1"))]);
  });

  test("rejects an untrusted key, another identity, another digest, no signature", async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => evaluate("trusted.gpg", [signWith(home, "other@example.com", simpleSigning("quay.io/a:1"))]), /Invalid GPG signature/],
      [() => evaluate("trusted.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/b:1"))]), /Signature for identity "quay.io\/b:1" is not accepted/],
      [() => evaluate("trusted.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1", `sha256:${"9".repeat(64)}`))]), /Signature for digest sha256:9+ does not match/],
      [() => evaluate("trusted.gpg", []), /A signature was required, but no signature exists/],
      [() => evaluate("missing.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/a:1"))]), /missing\.gpg/],
    ];
    for (const [p, why] of cases) {
      let err: unknown;
      try {
        await p();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyRejectedError);
      expect((err as PolicyRejectedError).reason).toMatch(why);
      expect((err as Error).message).toStartWith("SignatureValidationFailed: Source image rejected: ");
    }
  });

  test("signedIdentity applies to GPG signatures too", async () => {
    await evaluate("trusted.gpg", [signWith(home, "trusted@example.com", simpleSigning("quay.io/a:other"))], "quay.io/a:1", { type: "matchRepository" });
  });

  test("a cosign payload is not a simple signing payload", async () => {
    const cosignPayload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "quay.io/a:1" }, image: { "docker-manifest-digest": DIGEST }, type: "cosign container image signature" }, optional: null }));
    await expect(evaluate("trusted.gpg", [signWith(home, "trusted@example.com", cosignPayload)])).rejects.toThrow(/unrecognized signature type/);
  });
});
