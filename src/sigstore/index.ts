// Sigstore bundles for release artifacts, the offline key-pair path: a message signature over the
// artifact's bytes (SHA-256, ECDSA or RSA key), no certificate, no transparency log, no timestamp.
// Written as application/vnd.dev.sigstore.bundle.v0.3+json with verificationMaterial.publicKey.hint
// = base64(SHA-256 of the key's DER SubjectPublicKeyInfo), the form `cosign sign-blob --key
// --new-bundle-format --tlog-upload=false` writes. scripts/sign makes them; `crio verify-bundle`
// checks them (the get script's verifier where cosign is absent). Parsing and serialising go
// through @sigstore/bundle, verification through @sigstore/verify's Verifier with a trust
// material holding only the given key.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { bundleFromJSON, bundleToJSON, toMessageSignatureBundle } from "@sigstore/bundle";
import { Verifier, toSignedEntity, type TrustMaterial } from "@sigstore/verify";

/** Why a bundle was not accepted. The message is meant for the operator as is. */
export class BundleVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BundleVerificationError";
  }
}

/** The key hint a key-signed bundle carries: base64 of SHA-256 over the DER SubjectPublicKeyInfo. */
export function keyHint(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256").update(pub.export({ type: "spki", format: "der" })).digest("base64");
}

function checkKeyType(key: KeyObject): void {
  if (key.asymmetricKeyType !== "ec" && key.asymmetricKeyType !== "rsa") {
    throw new BundleVerificationError(`unsupported key type ${key.asymmetricKeyType ?? "?"}: use an ECDSA (P-256) or RSA key`);
  }
}

/** A PEM private key (PKCS#8 or SEC1/PKCS#1, unencrypted), as openssl writes it. */
export function privateKeyFromPem(pem: string): KeyObject {
  if (pem.includes("ENCRYPTED SIGSTORE PRIVATE KEY") || pem.includes("ENCRYPTED COSIGN PRIVATE KEY")) {
    throw new BundleVerificationError("cosign's encrypted key format is not supported: give a PEM private key (e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new BundleVerificationError(`not a PEM private key: ${err instanceof Error ? err.message : String(err)}`);
  }
  checkKeyType(key);
  return key;
}

/** A PEM public key (SubjectPublicKeyInfo), as `cosign generate-key-pair` and openssl write it. */
export function publicKeyFromPem(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new BundleVerificationError(`not a PEM public key: ${err instanceof Error ? err.message : String(err)}`);
  }
  checkKeyType(key);
  return key;
}

/** A new ECDSA P-256 key pair, PEM (PKCS#8 private, SPKI public). */
export function generateKeyPairPem(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Signs `artifact` and returns the sigstore bundle as its JSON object. */
export function signArtifact(artifact: Uint8Array, privateKey: KeyObject): object {
  const digest = createHash("sha256").update(artifact).digest();
  const signature = sign("sha256", artifact, privateKey);
  return bundleToJSON(toMessageSignatureBundle({ digest, signature, keyHint: keyHint(privateKey) })) as object;
}

/**
 * Checks that `bundleJson` is a valid sigstore bundle whose message signature over `artifact`
 * verifies with `publicKey`; throws BundleVerificationError naming the reason otherwise.
 * Transparency-log entries and timestamps a bundle may carry are not checked (there is no trust
 * root for them offline): the pinned key is the trust, as with cosign's --insecure-ignore-tlog.
 */
export function verifyArtifact(artifact: Uint8Array, bundleJson: unknown, publicKey: KeyObject): void {
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(bundleJson);
  } catch (err) {
    throw new BundleVerificationError(`not a valid sigstore bundle: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (bundle.verificationMaterial.content.$case !== "publicKey") {
    throw new BundleVerificationError("the bundle is signed with a certificate (keyless), not a key: verify it with cosign and the signer's identity");
  }
  if (bundle.content.$case !== "messageSignature") {
    throw new BundleVerificationError("the bundle holds a DSSE attestation, not a signature over the file");
  }
  const data = Buffer.from(artifact.buffer, artifact.byteOffset, artifact.byteLength);
  const claimed = Buffer.from(bundle.content.messageSignature.messageDigest?.digest ?? []);
  if (!claimed.equals(createHash("sha256").update(data).digest())) {
    throw new BundleVerificationError("the bundle was made for different contents: its digest does not match the file");
  }
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const trust: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => ({ publicKey, validFor: () => true }),
  };
  const entity = { ...toSignedEntity(bundle, data), tlogEntries: [], timestamps: [] };
  try {
    new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);
  } catch (err) {
    const other = hint !== "" && hint !== keyHint(publicKey) ? ` (the bundle names another key: hint ${hint})` : "";
    throw new BundleVerificationError(`signature does not verify with the given key${other}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
