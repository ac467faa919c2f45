import { describe, expect, test } from "bun:test";
import { createHash, generateKeyPairSync } from "node:crypto";
import {
  BundleVerificationError,
  generateKeyPairPem,
  keyHint,
  privateKeyFromPem,
  publicKeyFromPem,
  signArtifact,
  verifyArtifact,
} from "./index.ts";

const data = new TextEncoder().encode("crio.amd64.v0.1.0.tar.gz contents");
const pair = generateKeyPairPem();
const priv = privateKeyFromPem(pair.privateKeyPem);
const pub = publicKeyFromPem(pair.publicKeyPem);
const bundle = signArtifact(data, priv) as any;

function rejects(fn: () => void, message: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(BundleVerificationError);
  expect((err as Error).message).toMatch(message);
}

describe("signArtifact", () => {
  test("writes a v0.3 bundle: a SHA-256 message signature and the key's hint, no tlog", () => {
    expect(bundle.mediaType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json");
    expect(bundle.messageSignature.messageDigest).toEqual({ algorithm: "SHA2_256", digest: createHash("sha256").update(data).digest("base64") });
    expect(bundle.verificationMaterial.publicKey.hint).toBe(keyHint(pub));
    expect(bundle.verificationMaterial.tlogEntries ?? []).toEqual([]);
  });
});

describe("verifyArtifact", () => {
  test("accepts the signed bytes with the signer's public key, and an RSA key's bundle too", () => {
    verifyArtifact(data, bundle, pub);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    verifyArtifact(data, signArtifact(data, rsa.privateKey), rsa.publicKey);
  });

  test("rejects other bytes, another key, a forged signature and a broken bundle, naming why", () => {
    rejects(() => verifyArtifact(new TextEncoder().encode("other"), bundle, pub), /digest does not match the file/);
    rejects(() => verifyArtifact(data, bundle, publicKeyFromPem(generateKeyPairPem().publicKeyPem)), /does not verify with the given key \(the bundle names another key/);
    const forged = structuredClone(bundle);
    forged.messageSignature.signature = Buffer.from(forged.messageSignature.signature, "base64").reverse().toString("base64");
    rejects(() => verifyArtifact(data, forged, pub), /does not verify with the given key: /);
    rejects(() => verifyArtifact(data, { mediaType: "text/plain" }, pub), /not a valid sigstore bundle/);
  });

  test("a keyless (certificate) bundle is sent to cosign", () => {
    const keyless = structuredClone(bundle);
    delete keyless.verificationMaterial.publicKey;
    keyless.verificationMaterial.certificate = { rawBytes: Buffer.from("not really a certificate").toString("base64") };
    rejects(() => verifyArtifact(data, keyless, pub), /signed with a certificate \(keyless\)/);
  });
});

describe("keys", () => {
  test("cosign's encrypted private keys and unsupported key types are refused clearly", () => {
    rejects(() => privateKeyFromPem("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), /encrypted key format is not supported/);
    rejects(() => publicKeyFromPem("hello"), /not a PEM public key/);
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    rejects(() => publicKeyFromPem(ed), /unsupported key type ed25519/);
  });
});
