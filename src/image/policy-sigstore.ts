// Cryptographic verification of cosign ("sigstore") image signatures for the sigstoreSigned
// policy requirement, following containers/image's signature/policy_eval_sigstore.go:
//
//   - with public keys: the signature (annotation dev.cosignproject.cosign/signature) must verify
//     over the payload with one of the keys (ECDSA and RSA PKCS#1 v1.5 with SHA-256, Ed25519);
//     when Rekor keys are configured, the Rekor SET (dev.sigstore.cosign/bundle) must also vouch
//     for that key, signature and payload;
//   - with Fulcio: the Rekor SET must vouch for the certificate (dev.sigstore.cosign/certificate),
//     signature and payload; the certificate must chain to the configured CA at the SET's
//     integration time (intermediates may come from dev.sigstore.cosign/chain), be valid for code
//     signing, and carry the configured OIDC issuer and subject email (or build signer URI);
//     the payload must then verify with the certificate's key.
// Only the cryptography lives here; the payload's meaning (digest, identity) is checked by the
// caller. Anything that cannot be verified is rejected with a reason: nothing is accepted on
// trust.
import { createPublicKey, verify as cryptoVerify, constants, createHash, type KeyObject } from "node:crypto";
import { ASN1Obj, X509Certificate } from "@sigstore/core";

/** A signature as fetched from the registry's cosign "sha256-<hex>.sig" artifact. */
export interface SigstoreSignature {
  /** The layer blob: the simple-signing JSON payload that was signed. */
  payload: Uint8Array;
  /** Annotation dev.cosignproject.cosign/signature: base64 of the signature over `payload`. */
  signatureB64: string;
  /** Annotation dev.sigstore.cosign/certificate (Fulcio or PKI signing certificate, PEM). */
  certificatePem?: string;
  /** Annotation dev.sigstore.cosign/chain (intermediates then root, PEM). */
  chainPem?: string;
  /** Annotation dev.sigstore.cosign/bundle: the Rekor SET as cosign stores it. */
  bundleJson?: string;
}

/** A reason to reject a signature. Messages never contain secrets (there are none here). */
export class InvalidSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidSignatureError";
  }
}

export interface FulcioTrust {
  caCertificates: X509Certificate[];
  oidcIssuer: string;
  subjectEmail?: string;
  buildSignerURI?: string;
}

export interface SigstoreTrustRoot {
  publicKeys?: KeyObject[];
  fulcio?: FulcioTrust;
  rekorPublicKeys?: KeyObject[];
}

// ---------------------------------------------------------------------------------------------
// PEM and keys

export interface PemBlock {
  type: string;
  der: Buffer<ArrayBuffer>;
}

/** Every PEM block in `text`, with anything between blocks ignored. */
export function decodePemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const body = (m[2] ?? "")
      .split(/\r?\n/)
      .filter((l) => !l.includes(":")) // RFC 1421 headers
      .join("")
      .replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new InvalidSignatureError(`PEM block ${m[1]} is not valid base64`);
    out.push({ type: m[1] ?? "", der: Buffer.from(body, "base64") });
  }
  return out;
}

/** A PEM public key (SubjectPublicKeyInfo, or PKCS#1 for RSA), as cosign writes them. */
export function parsePublicKeyPem(pem: string | Uint8Array): KeyObject {
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("utf8");
  const block = decodePemBlocks(text)[0];
  if (!block) throw new InvalidSignatureError("no PEM-encoded public key found");
  if (block.type === "PUBLIC KEY") return createPublicKey({ key: block.der, format: "der", type: "spki" });
  if (block.type === "RSA PUBLIC KEY") return createPublicKey({ key: block.der, format: "der", type: "pkcs1" });
  throw new InvalidSignatureError(`unsupported PEM block type ${JSON.stringify(block.type)} for a public key`);
}

export function parseCertificatesPem(pem: string | Uint8Array): X509Certificate[] {
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("utf8");
  return decodePemBlocks(text)
    .filter((b) => b.type === "CERTIFICATE")
    .map((b) => {
      try {
        return X509Certificate.parse(b.der);
      } catch (err) {
        throw new InvalidSignatureError(`parsing certificate: ${(err as Error).message}`);
      }
    });
}

function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/**
 * Verifies `signature` over `data` with SHA-256, as sigstore's LoadVerifier(key, SHA256) does:
 * ECDSA (ASN.1 DER signature), RSA PKCS#1 v1.5, or pure Ed25519.
 */
function verifyWithKey(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (key.asymmetricKeyType) {
      case "ec":
        return cryptoVerify("sha256", data, { key, dsaEncoding: "der" }, signature);
      case "rsa":
        return cryptoVerify("sha256", data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case "ed25519":
        return cryptoVerify(null, data, key, signature);
      default:
        throw new InvalidSignatureError(`unsupported public key type ${JSON.stringify(key.asymmetricKeyType)}`);
    }
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw err;
    return false;
  }
}

function decodeBase64Strict(s: string, what: string): Buffer {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) throw new InvalidSignatureError(`${what} is not valid base64`);
  return Buffer.from(t, "base64");
}

// ---------------------------------------------------------------------------------------------
// Rekor SET

/** RFC 8785 (JCS) canonical JSON: sorted keys, ECMAScript number and string serialisation. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new InvalidSignatureError("non-finite number in JSON");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) throw new InvalidSignatureError(`unexpected field ${JSON.stringify(k)} in ${what}`);
  for (const k of keys) if (!(k in obj)) throw new InvalidSignatureError(`missing field ${JSON.stringify(k)} in ${what}`);
}

function field<T>(obj: unknown, key: string, what: string, check: (v: unknown) => v is T): T {
  if (!isObject(obj)) throw new InvalidSignatureError(`${what} is not a JSON object`);
  const v = obj[key];
  if (!check(v)) throw new InvalidSignatureError(`missing or invalid ${JSON.stringify(key)} in ${what}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isObj = (v: unknown): v is Record<string, unknown> => isObject(v);

/**
 * Verifies the Rekor SET (cosign's bundle annotation) with one of the Rekor keys, and checks that
 * the logged hashedrekord entry is for exactly `keyOrCertDer`, `signature` and `payload`.
 * Returns the entry's integration time.
 */
export function verifyRekorSET(
  rekorKeys: readonly KeyObject[],
  bundleJson: string,
  keyOrCertDer: Uint8Array,
  signature: Uint8Array,
  payload: Uint8Array,
): Date {
  let set: unknown;
  try {
    set = JSON.parse(bundleJson);
  } catch {
    throw new InvalidSignatureError("the Rekor SET is not valid JSON");
  }
  if (!isObject(set)) throw new InvalidSignatureError("the Rekor SET is not a JSON object");
  exactKeys(set, ["SignedEntryTimestamp", "Payload"], "the Rekor SET");
  const setSignature = decodeBase64Strict(field(set, "SignedEntryTimestamp", "the Rekor SET", isString), "the Rekor SET signature");
  const rekorPayload = field(set, "Payload", "the Rekor SET", isObj);

  // The SET signs the canonical form of the payload; verify before interpreting anything else.
  const canonical = Buffer.from(canonicalJson(rekorPayload), "utf8");
  const verified = rekorKeys.some((k) => {
    try {
      return cryptoVerify("sha256", canonical, { key: k, dsaEncoding: "der" }, setSignature);
    } catch {
      return false;
    }
  });
  if (!verified) throw new InvalidSignatureError("cryptographic signature verification of the Rekor SET failed");

  exactKeys(rekorPayload, ["body", "integratedTime", "logIndex", "logID"], "the Rekor SET payload");
  const integratedTime = rekorPayload.integratedTime;
  if (typeof integratedTime !== "number" || !Number.isInteger(integratedTime)) {
    throw new InvalidSignatureError("integratedTime in the Rekor SET payload is not an integer");
  }
  let body: unknown;
  try {
    body = JSON.parse(decodeBase64Strict(field(rekorPayload, "body", "the Rekor SET payload", isString), "the Rekor entry body").toString("utf8"));
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw err;
    throw new InvalidSignatureError("the body of the Rekor SET payload is not valid JSON");
  }
  if (field(body, "kind", "the Rekor entry", isString) !== "hashedrekord") {
    throw new InvalidSignatureError("the Rekor entry is not a hashedrekord");
  }
  const apiVersion = field(body, "apiVersion", "the Rekor entry", isString);
  if (apiVersion !== "0.0.1") throw new InvalidSignatureError(`unsupported hashedrekord version ${JSON.stringify(apiVersion)}`);
  const spec = field(body, "spec", "the Rekor entry", isObj);
  const sig = field(spec, "signature", "the hashedrekord spec", isObj);
  const loggedSig = decodeBase64Strict(field(sig, "content", "hashedrekord signature", isString), "the logged signature");
  const loggedKey = field(sig, "publicKey", "hashedrekord signature", isObj);
  const loggedKeyPem = decodeBase64Strict(field(loggedKey, "content", "hashedrekord publicKey", isString), "the logged key").toString("utf8");
  const loggedBlocks = decodePemBlocks(loggedKeyPem);
  if (loggedBlocks.length !== 1 || !loggedBlocks[0]) throw new InvalidSignatureError("the public key in the Rekor SET is not a single PEM block");
  if (!loggedBlocks[0].der.equals(Buffer.from(keyOrCertDer))) throw new InvalidSignatureError("the public key in the Rekor SET does not match");
  if (!loggedSig.equals(Buffer.from(signature))) throw new InvalidSignatureError("the signature in the Rekor SET does not match");
  const hash = field(field(spec, "data", "the hashedrekord spec", isObj), "hash", "hashedrekord data", isObj);
  const algorithm = field(hash, "algorithm", "hashedrekord hash", isString);
  if (algorithm !== "sha256") throw new InvalidSignatureError(`unexpected hash algorithm ${JSON.stringify(algorithm)} in the Rekor SET`);
  const value = field(hash, "value", "hashedrekord hash", isString);
  if (value.toLowerCase() !== createHash("sha256").update(payload).digest("hex")) {
    throw new InvalidSignatureError("the payload in the Rekor SET does not match");
  }
  return new Date(integratedTime * 1000);
}

// ---------------------------------------------------------------------------------------------
// Fulcio certificates

const OID_FULCIO_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1";
const OID_FULCIO_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8";
const OID_FULCIO_BUILD_SIGNER_URI = "1.3.6.1.4.1.57264.1.9";
const OID_SAN = "2.5.29.17";
const OID_EKU = "2.5.29.37";
const OID_EKU_CODE_SIGNING = "1.3.6.1.5.5.7.3.3";
const OID_EKU_ANY = "2.5.29.37.0";
const OID_NAME_CONSTRAINTS = "2.5.29.30";
/** Critical extensions we understand; any other critical extension makes a certificate unusable. */
const HANDLED_CRITICAL = new Set(["2.5.29.15", "2.5.29.19", OID_SAN, OID_EKU, "2.5.29.32", "2.5.29.14", "2.5.29.35"]);

/** Reads a DER UTF8String that must be the whole of `der`. */
function derUtf8String(der: Uint8Array, what: string): string {
  if (der[0] !== 0x0c || der.length < 2) throw new InvalidSignatureError(`${what} is not an ASN.1 UTF8String`);
  let len = der[1] ?? 0;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new InvalidSignatureError(`${what} has an invalid length`);
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | (der[off + i] ?? 0);
    off += n;
  }
  if (off + len !== der.length) throw new InvalidSignatureError(`${what} has trailing data`);
  return Buffer.from(der.subarray(off)).toString("utf8");
}

function parseExtensionValue(cert: X509Certificate, oid: string): ASN1Obj | undefined {
  const ext = cert.extension(oid);
  if (!ext) return undefined;
  try {
    return ASN1Obj.parseBuffer(Buffer.from(ext.value));
  } catch {
    throw new InvalidSignatureError(`certificate extension ${oid} is not valid ASN.1`);
  }
}

function fulcioIssuer(cert: X509Certificate): string {
  const v1ext = cert.extension(OID_FULCIO_ISSUER_V1);
  const v2ext = cert.extension(OID_FULCIO_ISSUER_V2);
  const v1 = v1ext ? Buffer.from(v1ext.value).toString("utf8") : undefined;
  const v2 = v2ext ? derUtf8String(v2ext.value, "the OIDC issuer (v2) extension") : undefined;
  if (v1 !== undefined && v2 !== undefined && v1 !== v2) {
    throw new InvalidSignatureError(`inconsistent OIDC issuer extension values: v1 ${JSON.stringify(v1)}, v2 ${JSON.stringify(v2)}`);
  }
  const issuer = v2 ?? v1;
  if (issuer === undefined) throw new InvalidSignatureError("the Fulcio certificate is missing the OIDC issuer extension");
  return issuer;
}

function sanEmails(cert: X509Certificate): string[] {
  const san = parseExtensionValue(cert, OID_SAN);
  if (!san) return [];
  return san.subs.filter((gn) => gn.tag.isContextSpecific(1)).map((gn) => gn.value.toString("ascii"));
}

function extendedKeyUsages(cert: X509Certificate): string[] | undefined {
  const eku = parseExtensionValue(cert, OID_EKU);
  return eku?.subs.map((s) => s.toOID());
}

function allowsCodeSigning(cert: X509Certificate): boolean {
  const ekus = extendedKeyUsages(cert);
  return ekus === undefined || ekus.includes(OID_EKU_CODE_SIGNING) || ekus.includes(OID_EKU_ANY);
}

function checkCriticalExtensions(cert: X509Certificate, what: string): void {
  for (const ext of cert.extensions) {
    const oid = ext.subs[0]?.toOID() ?? "";
    if (oid === OID_NAME_CONSTRAINTS) throw new InvalidSignatureError(`${what} has name constraints, which this verifier does not enforce`);
    const critical = ext.subs.length === 3 && ext.subs[1]?.toBoolean() === true;
    if (critical && !HANDLED_CRITICAL.has(oid)) throw new InvalidSignatureError(`${what} has an unhandled critical extension ${oid}`);
  }
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  if (!cert.issuer.equals(issuer.subject)) return false;
  try {
    return cert.verify(issuer);
  } catch {
    return false;
  }
}

/**
 * Builds a path from `leaf` through `intermediates` to one of `roots`, valid at `at`, as Go's
 * x509 Verify would: issuers must be CAs allowed to sign certificates, within their path length,
 * and every certificate (roots included) within its validity period; any extended key usage on
 * the path must allow code signing.
 */
export function verifyCertificateChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  at: Date,
): X509Certificate[] {
  const problems = new Set<string>();
  const usableIssuer = (c: X509Certificate, depth: number, what: string): boolean => {
    if (!c.isCA) {
      problems.add(`${what} is not a CA`);
      return false;
    }
    const pathLen = c.extBasicConstraints?.pathLenConstraint;
    if (pathLen !== undefined && BigInt(depth) > pathLen) {
      problems.add(`${what} path length constraint exceeded`);
      return false;
    }
    if (!c.validForDate(at)) {
      problems.add(`${what} is not valid at ${at.toISOString()}`);
      return false;
    }
    if (!allowsCodeSigning(c)) {
      problems.add(`${what} does not allow code signing`);
      return false;
    }
    checkCriticalExtensions(c, what);
    return true;
  };
  // depth = number of intermediates between the candidate issuer and the leaf.
  const walk = (cert: X509Certificate, path: X509Certificate[], depth: number): X509Certificate[] | undefined => {
    for (const root of roots) {
      if (issuedBy(cert, root) && usableIssuer(root, depth, "the CA certificate")) return [...path, root];
    }
    if (depth >= 8) return undefined;
    for (const mid of intermediates) {
      if (path.some((p) => p.equals(mid)) || !issuedBy(cert, mid)) continue;
      if (!usableIssuer(mid, depth, "an intermediate certificate")) continue;
      const found = walk(mid, [...path, mid], depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  if (!leaf.validForDate(at)) throw new InvalidSignatureError(`the signing certificate is not valid at ${at.toISOString()}`);
  checkCriticalExtensions(leaf, "the signing certificate");
  const ekus = extendedKeyUsages(leaf);
  if (ekus !== undefined && !ekus.includes(OID_EKU_CODE_SIGNING) && !ekus.includes(OID_EKU_ANY)) {
    throw new InvalidSignatureError("the signing certificate is not valid for code signing");
  }
  const chain = walk(leaf, [leaf], 0);
  if (!chain) {
    const why = problems.size > 0 ? `: ${[...problems].join(", ")}` : "";
    throw new InvalidSignatureError(`the signing certificate does not chain to a trusted Fulcio CA${why}`);
  }
  return chain;
}

function verifyFulcioCertificate(trust: FulcioTrust, certPem: string, chainPem: string | undefined, at: Date): KeyObject {
  const leaves = parseCertificatesPem(certPem);
  if (leaves.length !== 1 || !leaves[0]) {
    throw new InvalidSignatureError(
      leaves.length === 0 ? "no certificate found in the signature's certificate" : "more than one certificate in the signature's certificate",
    );
  }
  const leaf = leaves[0];
  // The chain annotation ends with the root, which is not trusted because it is in there: only
  // the configured CA is. Keep the rest as untrusted intermediates.
  const chain = chainPem ? parseCertificatesPem(chainPem) : [];
  const intermediates = chain.length > 1 ? chain.slice(0, -1) : [];
  verifyCertificateChain(leaf, intermediates, trust.caCertificates, at);

  const issuer = fulcioIssuer(leaf);
  if (issuer !== trust.oidcIssuer) throw new InvalidSignatureError(`unexpected Fulcio OIDC issuer ${JSON.stringify(issuer)}`);
  if (trust.subjectEmail !== undefined) {
    const emails = sanEmails(leaf);
    if (!emails.includes(trust.subjectEmail)) {
      throw new InvalidSignatureError(`required email ${JSON.stringify(trust.subjectEmail)} not found (got ${JSON.stringify(emails)})`);
    }
  }
  if (trust.buildSignerURI !== undefined) {
    const ext = leaf.extension(OID_FULCIO_BUILD_SIGNER_URI);
    const got = ext ? derUtf8String(ext.value, "the build signer URI extension") : undefined;
    if (got !== trust.buildSignerURI) {
      throw new InvalidSignatureError(`required build signer URI ${JSON.stringify(trust.buildSignerURI)} not found (got ${JSON.stringify(got ?? null)})`);
    }
  }
  return createPublicKey({ key: leaf.publicKey, format: "der", type: "spki" });
}

// ---------------------------------------------------------------------------------------------

/**
 * Verifies one sigstore signature against the trust root and returns the payload, which is now
 * known to be signed but whose contents the caller must still check. Throws
 * InvalidSignatureError with the reason otherwise.
 */
export function verifySigstoreSignature(trust: SigstoreTrustRoot, sig: SigstoreSignature): Uint8Array {
  if (!sig.signatureB64) throw new InvalidSignatureError("missing dev.cosignproject.cosign/signature annotation");
  const signature = decodeBase64Strict(sig.signatureB64, "the signature");
  const payload = sig.payload;

  let keys: KeyObject[];
  if (trust.publicKeys && trust.fulcio) throw new InvalidSignatureError("internal inconsistency: both public keys and Fulcio configured");
  if (trust.publicKeys) {
    if (trust.publicKeys.length === 0) throw new InvalidSignatureError("no public keys configured");
    if (trust.rekorPublicKeys) {
      if (!sig.bundleJson) throw new InvalidSignatureError("missing dev.sigstore.cosign/bundle annotation");
      const failures: string[] = [];
      keys = [];
      for (const k of trust.publicKeys) {
        try {
          verifyRekorSET(trust.rekorPublicKeys, sig.bundleJson, spkiDer(k), signature, payload);
          keys = [k]; // a SET logs one key
          break;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      if (keys.length === 0) throw new InvalidSignatureError(`no public key verified against the Rekor SET: ${failures.join(", ")}`);
    } else {
      keys = trust.publicKeys;
    }
  } else if (trust.fulcio) {
    if (!trust.rekorPublicKeys) throw new InvalidSignatureError("internal inconsistency: Fulcio configured without a Rekor public key");
    if (!sig.bundleJson) throw new InvalidSignatureError("missing dev.sigstore.cosign/bundle annotation");
    if (!sig.certificatePem) throw new InvalidSignatureError("missing dev.sigstore.cosign/certificate annotation");
    const certBlocks = decodePemBlocks(sig.certificatePem);
    if (certBlocks.length !== 1 || !certBlocks[0]) throw new InvalidSignatureError("the signature's certificate is not a single PEM block");
    const at = verifyRekorSET(trust.rekorPublicKeys, sig.bundleJson, certBlocks[0].der, signature, payload);
    keys = [verifyFulcioCertificate(trust.fulcio, sig.certificatePem, sig.chainPem, at)];
  } else {
    throw new InvalidSignatureError("internal inconsistency: neither public keys nor Fulcio configured");
  }

  if (!keys.some((k) => verifyWithKey(k, payload, signature))) {
    throw new InvalidSignatureError("cryptographic signature verification failed");
  }
  return payload;
}
