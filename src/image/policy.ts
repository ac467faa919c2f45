// Signature policy: containers-policy.json(5), loaded and evaluated as containers/image does for
// the docker transport, chosen per pull as CRI-O chooses it.
//
// Which file: a pull for a pod in namespace N uses <signature_policy_dir>/N.json when it exists,
// else `signature_policy`, else $CONTAINERS_POLICY_JSON, else /etc/containers/policy.json
// (then /usr/share/containers/policy.json).
//
// Which requirements: transports.docker is searched from the most specific scope to the least —
// the full reference ("quay.io/ns/img:tag" or "…@sha256:…"), the repository, each parent
// namespace, the host[:port], then "*.sub.example.com", "*.example.com", "*.com" — then the
// transport's "" scope, then "default". Every requirement of the chosen scope must pass.
//
// The file is parsed strictly (unknown fields and requirement types are errors), because a typo
// in a security policy must not silently weaken it.
import { readFileSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { CrioError, FailedPreconditionError, GrpcCode, InvalidArgumentError } from "../errors.ts";
import { verifyGpgSignature } from "./policy-gpg.ts";
import {
  InvalidSignatureError,
  parseCertificatesPem,
  parsePublicKeyPem,
  verifySigstoreSignature,
  type SigstoreSignature,
  type SigstoreTrustRoot,
} from "./policy-sigstore.ts";
import {
  digestProblem,
  familiarString,
  formatReference,
  isValidDomain,
  isValidName,
  parseCanonicalReference,
  parseReference,
  preferDigest,
  repository,
  withDefaultTag,
  type ImageReference,
} from "./reference.ts";

export type { SigstoreSignature } from "./policy-sigstore.ts";

export const DEFAULT_POLICY_PATHS = ["/etc/containers/policy.json", "/usr/share/containers/policy.json"] as const;

// ---------------------------------------------------------------------------------------------
// Types

export type IdentityMatcher =
  | { readonly type: "matchExact" }
  | { readonly type: "matchRepoDigestOrExact" }
  | { readonly type: "matchRepository" }
  | { readonly type: "exactReference"; readonly dockerReference: string }
  | { readonly type: "exactRepository"; readonly dockerRepository: string }
  | { readonly type: "remapIdentity"; readonly prefix: string; readonly signedPrefix: string };

export interface FulcioConfig {
  readonly caPath?: string;
  readonly caData?: Uint8Array;
  readonly oidcIssuer: string;
  readonly subjectEmail?: string;
  readonly buildSignerURI?: string;
}

export type PolicyRequirement =
  | { readonly type: "insecureAcceptAnything" }
  | { readonly type: "reject" }
  | {
      readonly type: "signedBy";
      readonly keyType: "GPGKeys" | "signedByGPGKeys" | "X509Certificates" | "signedByX509CAs";
      readonly keyPath?: string;
      readonly keyPaths?: readonly string[];
      readonly keyData?: Uint8Array;
      readonly signedIdentity: IdentityMatcher;
    }
  | { readonly type: "signedBaseLayer"; readonly baseLayerIdentity: IdentityMatcher }
  | {
      readonly type: "sigstoreSigned";
      readonly keyPath?: string;
      readonly keyPaths?: readonly string[];
      readonly keyData?: Uint8Array;
      readonly keyDatas?: readonly Uint8Array[];
      readonly fulcio?: FulcioConfig;
      /** Parsed so that such policies load; evaluation rejects (not implemented). */
      readonly pki?: Readonly<Record<string, unknown>>;
      readonly rekorPublicKeyPath?: string;
      readonly rekorPublicKeyPaths?: readonly string[];
      readonly rekorPublicKeyData?: Uint8Array;
      readonly rekorPublicKeyDatas?: readonly Uint8Array[];
      readonly signedIdentity: IdentityMatcher;
    };

export type PolicyRequirements = readonly PolicyRequirement[];

export interface Policy {
  /** The file it came from, for messages. */
  readonly source: string;
  readonly default: PolicyRequirements;
  /** transport name → scope → requirements ("" is the transport-wide default scope). */
  readonly transports: Readonly<Record<string, Readonly<Record<string, PolicyRequirements>>>>;
}

/** A malformed or missing policy file: the node's configuration, not the request, is at fault. */
export class PolicyFormatError extends CrioError {
  readonly source: string;
  readonly key: string | undefined;
  constructor(message: string, source: string, key?: string) {
    super(GrpcCode.FAILED_PRECONDITION, `invalid policy in ${JSON.stringify(source)}${key ? `: ${key}` : ""}: ${message}`);
    this.source = source;
    this.key = key;
  }
}

/**
 * The policy refused the image. The message starts with the CRI's "SignatureValidationFailed"
 * (k8s.io/cri-api errors), as CRI-O's does, so the kubelet reports it as a signature failure;
 * then containers/image's "Source image rejected: …" wording, then which requirement of which
 * scope of which file applied.
 */
export class PolicyRejectedError extends CrioError {
  readonly reason: string;
  readonly scope: string;
  readonly requirement: string;
  readonly policySource: string;
  constructor(reason: string, where: { scope: string; requirement: string; index: number; count: number; policySource: string }) {
    super(
      GrpcCode.PERMISSION_DENIED,
      `SignatureValidationFailed: Source image rejected: ${reason} ` +
        `(requirement ${where.index + 1} of ${where.count}, ${JSON.stringify(where.requirement)}, of ${where.scope} in ${where.policySource})`,
    );
    this.reason = reason;
    this.scope = where.scope;
    this.requirement = where.requirement;
    this.policySource = where.policySource;
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

class Parser {
  constructor(readonly source: string) {}

  fail(key: string, message: string): never {
    throw new PolicyFormatError(message, this.source, key || undefined);
  }

  object(v: unknown, key: string): Json {
    if (!isObj(v)) this.fail(key, "must be a JSON object");
    return v;
  }

  onlyKeys(o: Json, allowed: readonly string[], key: string): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(key, `unknown field ${JSON.stringify(k)} (expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")})`);
    }
  }

  string(o: Json, k: string, key: string, required: boolean): string | undefined {
    const v = o[k];
    if (v === undefined) {
      if (required) this.fail(`${key}.${k}`, "is required");
      return undefined;
    }
    if (typeof v !== "string") this.fail(`${key}.${k}`, "must be a string");
    return v;
  }

  strings(o: Json, k: string, key: string): string[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) this.fail(`${key}.${k}`, "must be an array of strings");
    if (v.length === 0) this.fail(`${key}.${k}`, "contains no entries");
    return v as string[];
  }

  /** Go's []byte in JSON: a base64 string. */
  bytes(o: Json, k: string, key: string): Uint8Array | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) this.fail(`${key}.${k}`, "must be a base64 string");
    return new Uint8Array(Buffer.from(v, "base64"));
  }

  bytesList(o: Json, k: string, key: string): Uint8Array[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.fail(`${key}.${k}`, "must be an array of base64 strings");
    if (v.length === 0) this.fail(`${key}.${k}`, "contains no entries");
    return v.map((_, i) => this.bytes(v as unknown as Json, String(i), `${key}.${k}`) ?? new Uint8Array());
  }

  requirements(v: unknown, key: string): PolicyRequirement[] {
    if (!Array.isArray(v)) this.fail(key, "must be an array of policy requirements");
    if (v.length === 0) this.fail(key, "the list of verification policy requirements must not be empty");
    return v.map((r, i) => this.requirement(r, `${key}[${i}]`));
  }

  requirement(v: unknown, key: string): PolicyRequirement {
    const o = this.object(v, key);
    const type = o.type;
    switch (type) {
      case "insecureAcceptAnything":
      case "reject":
        this.onlyKeys(o, ["type"], key);
        return { type };
      case "signedBy":
        return this.signedBy(o, key);
      case "signedBaseLayer":
        this.onlyKeys(o, ["type", "baseLayerIdentity"], key);
        if (o.baseLayerIdentity === undefined) this.fail(`${key}.baseLayerIdentity`, "is required");
        return { type, baseLayerIdentity: this.matcher(o.baseLayerIdentity, `${key}.baseLayerIdentity`) };
      case "sigstoreSigned":
        return this.sigstoreSigned(o, key);
      default:
        this.fail(key, `unknown policy requirement type ${JSON.stringify(type)}`);
    }
  }

  signedBy(o: Json, key: string): PolicyRequirement {
    this.onlyKeys(o, ["type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"], key);
    const keyType = this.string(o, "keyType", key, true);
    if (keyType !== "GPGKeys" && keyType !== "signedByGPGKeys" && keyType !== "X509Certificates" && keyType !== "signedByX509CAs") {
      this.fail(`${key}.keyType`, `unrecognized keyType value ${JSON.stringify(keyType)}`);
    }
    const keyPath = this.string(o, "keyPath", key, false);
    const keyPaths = this.strings(o, "keyPaths", key);
    const keyData = this.bytes(o, "keyData", key);
    const sources = [keyPath, keyPaths, keyData].filter((x) => x !== undefined).length;
    if (sources !== 1) this.fail(key, `exactly one of keyPath, keyPaths and keyData must be specified, ${sources === 0 ? "none" : "more than one"} present`);
    return {
      type: "signedBy",
      keyType,
      ...(keyPath !== undefined ? { keyPath } : {}),
      ...(keyPaths !== undefined ? { keyPaths } : {}),
      ...(keyData !== undefined ? { keyData } : {}),
      signedIdentity: o.signedIdentity === undefined ? { type: "matchRepoDigestOrExact" } : this.matcher(o.signedIdentity, `${key}.signedIdentity`),
    };
  }

  sigstoreSigned(o: Json, key: string): PolicyRequirement {
    this.onlyKeys(
      o,
      [
        "type",
        ...["keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki"],
        ...["rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas"],
        "signedIdentity",
      ],
      key,
    );
    const keyPath = this.string(o, "keyPath", key, false);
    const keyPaths = this.strings(o, "keyPaths", key);
    const keyData = this.bytes(o, "keyData", key);
    const keyDatas = this.bytesList(o, "keyDatas", key);
    const fulcio = o.fulcio === undefined ? undefined : this.fulcio(o.fulcio, `${key}.fulcio`);
    const pki = o.pki === undefined ? undefined : this.pki(o.pki, `${key}.pki`);
    const sources = [keyPath, keyPaths, keyData, keyDatas, fulcio, pki].filter((x) => x !== undefined).length;
    if (sources !== 1) this.fail(key, "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be specified");
    const rekorPublicKeyPath = this.string(o, "rekorPublicKeyPath", key, false);
    const rekorPublicKeyPaths = this.strings(o, "rekorPublicKeyPaths", key);
    const rekorPublicKeyData = this.bytes(o, "rekorPublicKeyData", key);
    const rekorPublicKeyDatas = this.bytesList(o, "rekorPublicKeyDatas", key);
    const rekor = [rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData, rekorPublicKeyDatas].filter((x) => x !== undefined).length;
    if (rekor > 1) this.fail(key, "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used");
    if (fulcio && rekor === 0) {
      this.fail(key, "a Rekor public key (rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData or rekorPublicKeyDatas) is required with fulcio");
    }
    if (pki && rekor > 0) this.fail(key, "Rekor public keys are not supported with pki");
    return {
      type: "sigstoreSigned",
      ...(keyPath !== undefined ? { keyPath } : {}),
      ...(keyPaths !== undefined ? { keyPaths } : {}),
      ...(keyData !== undefined ? { keyData } : {}),
      ...(keyDatas !== undefined ? { keyDatas } : {}),
      ...(fulcio !== undefined ? { fulcio } : {}),
      ...(pki !== undefined ? { pki } : {}),
      ...(rekorPublicKeyPath !== undefined ? { rekorPublicKeyPath } : {}),
      ...(rekorPublicKeyPaths !== undefined ? { rekorPublicKeyPaths } : {}),
      ...(rekorPublicKeyData !== undefined ? { rekorPublicKeyData } : {}),
      ...(rekorPublicKeyDatas !== undefined ? { rekorPublicKeyDatas } : {}),
      signedIdentity: o.signedIdentity === undefined ? { type: "matchRepoDigestOrExact" } : this.matcher(o.signedIdentity, `${key}.signedIdentity`),
    };
  }

  fulcio(v: unknown, key: string): FulcioConfig {
    const o = this.object(v, key);
    this.onlyKeys(o, ["caPath", "caData", "oidcIssuer", "subjectEmail", "buildSignerURI"], key);
    const caPath = this.string(o, "caPath", key, false);
    const caData = this.bytes(o, "caData", key);
    if (caPath !== undefined && caData !== undefined) this.fail(key, "caPath and caData cannot be used simultaneously");
    if (caPath === undefined && caData === undefined) this.fail(key, "one of caPath and caData must be specified");
    const oidcIssuer = this.string(o, "oidcIssuer", key, false);
    if (!oidcIssuer) this.fail(`${key}.oidcIssuer`, "is required");
    const subjectEmail = this.string(o, "subjectEmail", key, false);
    const buildSignerURI = this.string(o, "buildSignerURI", key, false);
    if (!subjectEmail && !buildSignerURI) this.fail(key, "at least one of subjectEmail and buildSignerURI must be specified");
    return {
      ...(caPath !== undefined ? { caPath } : {}),
      ...(caData !== undefined ? { caData } : {}),
      oidcIssuer,
      ...(subjectEmail ? { subjectEmail } : {}),
      ...(buildSignerURI ? { buildSignerURI } : {}),
    };
  }

  pki(v: unknown, key: string): Json {
    const o = this.object(v, key);
    this.onlyKeys(o, ["caRootsPath", "caRootsData", "caIntermediatesPath", "caIntermediatesData", "subjectEmail", "subjectHostname"], key);
    return o;
  }

  matcher(v: unknown, key: string): IdentityMatcher {
    const o = this.object(v, key);
    const type = o.type;
    switch (type) {
      case "matchExact":
      case "matchRepoDigestOrExact":
      case "matchRepository":
        this.onlyKeys(o, ["type"], key);
        return { type };
      case "exactReference": {
        this.onlyKeys(o, ["type", "dockerReference"], key);
        const dockerReference = this.string(o, "dockerReference", key, true) ?? "";
        let ref: ImageReference;
        try {
          ref = parseReference(dockerReference);
        } catch (err) {
          this.fail(`${key}.dockerReference`, (err as Error).message);
        }
        if (ref.tag === undefined && ref.digest === undefined) {
          this.fail(`${key}.dockerReference`, `${JSON.stringify(dockerReference)} contains neither a tag nor a digest`);
        }
        return { type, dockerReference };
      }
      case "exactRepository": {
        this.onlyKeys(o, ["type", "dockerRepository"], key);
        const dockerRepository = this.string(o, "dockerRepository", key, true) ?? "";
        try {
          parseReference(dockerRepository);
        } catch (err) {
          this.fail(`${key}.dockerRepository`, (err as Error).message);
        }
        return { type, dockerRepository };
      }
      case "remapIdentity": {
        this.onlyKeys(o, ["type", "prefix", "signedPrefix"], key);
        const prefix = this.string(o, "prefix", key, true) ?? "";
        const signedPrefix = this.string(o, "signedPrefix", key, true) ?? "";
        for (const [k, p] of [["prefix", prefix], ["signedPrefix", signedPrefix]] as const) {
          if (!validRemapPrefix(p)) this.fail(`${key}.${k}`, `prefix ${JSON.stringify(p)} is not valid (host[:port] or host[:port]/namespace…)`);
        }
        return { type, prefix, signedPrefix };
      }
      default:
        this.fail(key, `unknown policy reference match type ${JSON.stringify(type)}`);
    }
  }
}

/** A remapIdentity prefix: a bare host[:port], or a name that starts with an explicit domain. */
function validRemapPrefix(p: string): boolean {
  if (isValidDomain(p)) return true;
  const slash = p.indexOf("/");
  return slash > 0 && isValidDomain(p.slice(0, slash)) && isValidName(p);
}

/** Parses containers-policy.json text. Throws PolicyFormatError naming `source` and the key. */
export function parsePolicy(text: string, source: string): Policy {
  const p = new Parser(source);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    p.fail("", `not valid JSON: ${(err as Error).message}`);
  }
  const o = p.object(doc, "");
  p.onlyKeys(o, ["default", "transports"], "");
  if (o.default === undefined) p.fail("default", "the default policy is missing");
  const def = p.requirements(o.default, "default");
  const transports: Record<string, Record<string, PolicyRequirements>> = {};
  if (o.transports !== undefined && o.transports !== null) {
    const t = p.object(o.transports, "transports");
    for (const [name, scopes] of Object.entries(t)) {
      const s = p.object(scopes, `transports.${name}`);
      const out: Record<string, PolicyRequirements> = {};
      for (const [scope, reqs] of Object.entries(s)) {
        const key = `transports.${name}[${JSON.stringify(scope)}]`;
        // Like containers/image, any scope string is accepted: one that can never match
        // (a short name, say) is useless but harmless.
        out[scope] = p.requirements(reqs, key);
      }
      transports[name] = out;
    }
  }
  return { source, default: def, transports };
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface PolicyLocationOptions {
  /** config.image.signature_policy ("" for the system default). */
  signaturePolicy?: string;
  /** config.image.signature_policy_dir. */
  signaturePolicyDir?: string;
  /** The pod's namespace from PullImageRequest.sandbox_config.metadata.namespace. */
  namespace?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Whether a regular file exists (tests substitute it). */
  exists?: (p: string) => boolean;
}

function fileExists(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** The policy file CRI-O would use for this pull. */
export function policyPathFor(opts: PolicyLocationOptions = {}): string {
  const exists = opts.exists ?? fileExists;
  const ns = opts.namespace ?? "";
  if (ns !== "" && opts.signaturePolicyDir) {
    // Kubernetes namespaces are DNS labels; anything else must not become a path.
    if (ns.includes("/") || ns.includes("\0") || ns === "." || ns === "..") throw new InvalidArgumentError(`invalid pod namespace ${JSON.stringify(ns)}`);
    const candidate = path.join(opts.signaturePolicyDir, `${ns}.json`);
    if (exists(candidate)) return candidate;
  }
  if (opts.signaturePolicy) return opts.signaturePolicy;
  const env = opts.env ?? process.env;
  if (env.CONTAINERS_POLICY_JSON) return env.CONTAINERS_POLICY_JSON;
  for (const p of DEFAULT_POLICY_PATHS) if (exists(p)) return p;
  throw new FailedPreconditionError(`no policy.json file found (searched paths: ${DEFAULT_POLICY_PATHS.join(", ")})`);
}

/** Reads and parses the policy for this pull. */
export function loadPolicy(opts: PolicyLocationOptions & { readFile?: (p: string) => string } = {}): Policy {
  const file = policyPathFor(opts);
  let text: string;
  try {
    text = (opts.readFile ?? ((p: string) => readFileSync(p, "utf8")))(file);
  } catch (err) {
    throw new PolicyFormatError(`cannot read the file: ${(err as Error).message}`, file);
  }
  return parsePolicy(text, file);
}

// ---------------------------------------------------------------------------------------------
// Scope selection

/** The reference as evaluated: digest wins over tag (as CRI-O pulls), ":latest" when neither. */
function normalizedForPolicy(ref: ImageReference): ImageReference {
  return withDefaultTag(preferDigest(ref));
}

/** The scopes to look up for `ref`, most specific first (containers/image's identity and namespaces). */
export function policyScopes(ref: ImageReference): string[] {
  const r = normalizedForPolicy(ref);
  const out = [formatReference(r)];
  for (let name = repository(r); ; ) {
    out.push(name);
    const slash = name.lastIndexOf("/");
    if (slash < 0) break;
    name = name.slice(0, slash);
  }
  // Wildcards come from the host without its port: a.b.example.com → *.b.example.com, *.example.com, *.com.
  let host = r.domain;
  const colon = host.indexOf(":");
  if (colon >= 0) host = host.slice(0, colon);
  for (let dot = host.indexOf("."); dot >= 0; dot = host.indexOf(".")) {
    host = host.slice(dot + 1);
    out.push(`*.${host}`);
  }
  return out;
}

export interface ScopeSelection {
  /** A description: `transports.docker["quay.io/ns"]`, `transports.docker[""]` or `default`. */
  readonly scope: string;
  readonly requirements: PolicyRequirements;
}

export function requirementsFor(policy: Policy, ref: ImageReference): ScopeSelection {
  const docker = policy.transports.docker;
  if (docker) {
    for (const s of policyScopes(ref)) {
      const reqs = docker[s];
      if (reqs) return { scope: `transports.docker[${JSON.stringify(s)}]`, requirements: reqs };
    }
    const any = docker[""];
    if (any) return { scope: `transports.docker[""]`, requirements: any };
  }
  return { scope: "default", requirements: policy.default };
}

// ---------------------------------------------------------------------------------------------
// Identity matching

function nameOnly(r: ImageReference): boolean {
  return r.tag === undefined && r.digest === undefined;
}

function parseSigned(s: string): ImageReference | undefined {
  try {
    return parseReference(s);
  } catch {
    return undefined;
  }
}

function repoDigestOrExact(intended: ImageReference, signed: ImageReference): boolean {
  if (nameOnly(signed)) return false;
  if (intended.tag !== undefined) return formatReference(signed) === formatReference(intended);
  if (intended.digest !== undefined) return repository(signed) === repository(intended);
  return false;
}

/** Whether a signature claiming `signedReference` is acceptable for pulling `intended`. */
export function matchesIdentity(matcher: IdentityMatcher, intended: ImageReference, signedReference: string): boolean {
  const signed = parseSigned(signedReference);
  if (!signed) return false;
  switch (matcher.type) {
    case "matchExact":
      return !nameOnly(intended) && !nameOnly(signed) && formatReference(signed) === formatReference(intended);
    case "matchRepoDigestOrExact":
      return repoDigestOrExact(intended, signed);
    case "matchRepository":
      return repository(signed) === repository(intended);
    case "exactReference": {
      const want = parseSigned(matcher.dockerReference);
      return !!want && !nameOnly(want) && !nameOnly(signed) && formatReference(signed) === formatReference(want);
    }
    case "exactRepository": {
      const want = parseSigned(matcher.dockerRepository);
      return !!want && repository(signed) === repository(want);
    }
    case "remapIdentity": {
      let remapped = intended;
      const name = repository(intended);
      if (name === matcher.prefix || name.startsWith(`${matcher.prefix}/`)) {
        try {
          remapped = parseCanonicalReference(matcher.signedPrefix + formatReference(intended).slice(matcher.prefix.length));
        } catch {
          return false;
        }
      }
      return repoDigestOrExact(remapped, signed);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Signature payloads

const SIMPLE_SIGNING_TYPE = "atomic container signature";
const COSIGN_TYPE = "cosign container image signature";

interface SignedClaims {
  manifestDigest: string;
  dockerReference: string;
}

/**
 * Parses a verified payload strictly, as containers/image does: exactly {critical, optional},
 * critical exactly {type, image: {docker-manifest-digest}, identity: {docker-reference}}.
 */
export function parseSignaturePayload(payload: Uint8Array, expectedType: string): SignedClaims {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw new InvalidSignatureError("the signature payload is not valid JSON");
  }
  const exact = (o: unknown, keys: string[], what: string): Json => {
    if (!isObj(o)) throw new InvalidSignatureError(`${what} is not a JSON object`);
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw new InvalidSignatureError(`unexpected field ${JSON.stringify(k)} in ${what}`);
    for (const k of keys) if (!(k in o)) throw new InvalidSignatureError(`missing field ${JSON.stringify(k)} in ${what}`);
    return o;
  };
  const top = exact(doc, ["critical", "optional"], "the signature payload");
  if (top.optional !== null) {
    if (!isObj(top.optional)) throw new InvalidSignatureError("optional in the signature payload is not a JSON object");
    const ts = top.optional.timestamp;
    if (ts !== undefined && (typeof ts !== "number" || !Number.isInteger(ts))) throw new InvalidSignatureError("field optional.timestamp is not an integer");
    const creator = top.optional.creator;
    if (creator !== undefined && typeof creator !== "string") throw new InvalidSignatureError("field optional.creator is not a string");
  }
  const critical = exact(top.critical, ["type", "image", "identity"], "critical");
  if (critical.type !== expectedType) throw new InvalidSignatureError(`unrecognized signature type ${JSON.stringify(critical.type)}`);
  const image = exact(critical.image, ["docker-manifest-digest"], "critical.image");
  const identity = exact(critical.identity, ["docker-reference"], "critical.identity");
  const manifestDigest = image["docker-manifest-digest"];
  const dockerReference = identity["docker-reference"];
  if (typeof manifestDigest !== "string") throw new InvalidSignatureError("docker-manifest-digest is not a string");
  if (typeof dockerReference !== "string") throw new InvalidSignatureError("docker-reference is not a string");
  const problem = digestProblem(manifestDigest);
  if (problem) throw new InvalidSignatureError(`invalid docker-manifest-digest value ${JSON.stringify(manifestDigest)}: ${problem}`);
  return { manifestDigest, dockerReference };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export interface PolicyInput {
  /** The image as the user asked for it (after short-name resolution), not a mirror's rewrite. */
  reference: ImageReference;
  /** Digest of the manifest that was pulled ("sha256:…"). */
  manifestDigest: string;
  /** The manifest bytes, when available: lets a signature use another digest algorithm. */
  manifest?: Uint8Array;
  /** Cosign signatures of the manifest (the sha256-<hex>.sig artifact); called at most once. */
  signatures?: () => Promise<SigstoreSignature[]>;
  /** Simple-signing (GPG) signature blobs; called at most once. */
  gpgSignatures?: () => Promise<Uint8Array[]>;
  /** File reader for keyPath & co (tests substitute it). */
  readFile?: (p: string) => Uint8Array;
  gpgv?: string;
}

export interface PolicyDecision {
  readonly policySource: string;
  readonly scope: string;
  readonly requirements: PolicyRequirements;
}

/** Thrown inside evaluation for "this requirement rejects", carrying the reason. */
class Rejection extends Error {}

interface EvalContext {
  intended: ImageReference;
  input: PolicyInput;
  sigstore: () => Promise<SigstoreSignature[]>;
  gpg: () => Promise<Uint8Array[]>;
  readFile: (p: string) => Uint8Array;
}

function once<T>(f: (() => Promise<T>) | undefined, empty: T): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f ? f() : Promise.resolve(empty));
}

/**
 * Evaluates the policy for an image whose manifest is known. Resolves with the scope that
 * applied; throws PolicyRejectedError when a requirement rejects. Errors fetching signatures
 * propagate unchanged (they are not policy decisions).
 */
export async function evaluatePolicy(policy: Policy, input: PolicyInput): Promise<PolicyDecision> {
  const intended = normalizedForPolicy(input.reference);
  const { scope, requirements } = requirementsFor(policy, intended);
  const ctx: EvalContext = {
    intended,
    input,
    sigstore: once(input.signatures, [] as SigstoreSignature[]),
    gpg: once(input.gpgSignatures, [] as Uint8Array[]),
    readFile: input.readFile ?? ((p) => new Uint8Array(readFileSync(p))),
  };
  if (requirements.length === 0) {
    throw new PolicyRejectedError("List of verification policy requirements must not be empty", {
      scope,
      requirement: "",
      index: 0,
      count: 0,
      policySource: policy.source,
    });
  }
  for (const [index, req] of requirements.entries()) {
    try {
      await evaluateRequirement(req, ctx);
    } catch (err) {
      if (!(err instanceof Rejection)) throw err;
      throw new PolicyRejectedError(err.message, { scope, requirement: req.type, index, count: requirements.length, policySource: policy.source });
    }
  }
  return { policySource: policy.source, scope, requirements };
}

async function evaluateRequirement(req: PolicyRequirement, ctx: EvalContext): Promise<void> {
  switch (req.type) {
    case "insecureAcceptAnything":
      return;
    case "reject":
      throw new Rejection(`Running image docker://${familiarString(ctx.intended)} is rejected by policy.`);
    case "signedBaseLayer":
      throw new Rejection("signedBaseLayer not implemented yet!");
    case "signedBy":
      return evaluateSignedBy(req, ctx);
    case "sigstoreSigned":
      return evaluateSigstoreSigned(req, ctx);
  }
}

/** Applies the payload rules shared by both signature kinds; throws Rejection-worthy errors. */
function checkClaims(claims: SignedClaims, matcher: IdentityMatcher, ctx: EvalContext): void {
  if (!manifestMatches(claims.manifestDigest, ctx.input)) {
    throw new InvalidSignatureError(`Signature for digest ${claims.manifestDigest} does not match`);
  }
  if (!matchesIdentity(matcher, ctx.intended, claims.dockerReference)) {
    throw new InvalidSignatureError(`Signature for identity ${JSON.stringify(claims.dockerReference)} is not accepted`);
  }
}

function manifestMatches(signedDigest: string, input: PolicyInput): boolean {
  if (input.manifest) {
    const algorithm = signedDigest.slice(0, signedDigest.indexOf(":"));
    return `${algorithm}:${createHash(algorithm).update(input.manifest).digest("hex")}` === signedDigest;
  }
  return signedDigest === input.manifestDigest;
}

/** One accepted signature is enough; otherwise summarise why each was rejected. */
function summarise(reasons: string[]): never {
  if (reasons.length === 0) throw new Rejection("A signature was required, but no signature exists");
  if (reasons.length === 1) throw new Rejection(reasons[0] ?? "");
  throw new Rejection(`None of the signatures were accepted, reasons: ${reasons.join("; ")}`);
}

function loadSources(paths: readonly string[], ctx: EvalContext, what: string): Uint8Array[] {
  return paths.map((p) => {
    try {
      return ctx.readFile(p);
    } catch (err) {
      throw new Rejection(`reading ${what} ${p}: ${(err as Error).message}`);
    }
  });
}

async function evaluateSignedBy(req: Extract<PolicyRequirement, { type: "signedBy" }>, ctx: EvalContext): Promise<void> {
  if (req.keyType !== "GPGKeys") throw new Rejection(`Unimplemented "keyType" value ${JSON.stringify(req.keyType)}`);
  const keys = req.keyData ? [req.keyData] : loadSources(req.keyPath !== undefined ? [req.keyPath] : (req.keyPaths ?? []), ctx, "GPG key");
  const sigs = await ctx.gpg();
  const reasons: string[] = [];
  for (const sig of sigs) {
    try {
      const verified = await verifyGpgSignature(keys, sig, ctx.input.gpgv !== undefined ? { gpgv: ctx.input.gpgv } : {});
      checkClaims(parseSignaturePayload(verified.plaintext, SIMPLE_SIGNING_TYPE), req.signedIdentity, ctx);
      return;
    } catch (err) {
      reasons.push((err as Error).message);
    }
  }
  summarise(reasons);
}

function sigstoreTrust(req: Extract<PolicyRequirement, { type: "sigstoreSigned" }>, ctx: EvalContext): SigstoreTrustRoot {
  if (req.pki) throw new Rejection("sigstoreSigned with pki is not supported by this runtime, so the image cannot be verified");
  const trust: SigstoreTrustRoot = {};
  const keyBlobs =
    req.keyData !== undefined
      ? [req.keyData]
      : req.keyDatas !== undefined
        ? [...req.keyDatas]
        : req.keyPath !== undefined || req.keyPaths !== undefined
          ? loadSources(req.keyPath !== undefined ? [req.keyPath] : (req.keyPaths ?? []), ctx, "public key")
          : undefined;
  if (keyBlobs) {
    trust.publicKeys = keyBlobs.map((b, i) => {
      try {
        return parsePublicKeyPem(b);
      } catch (err) {
        throw new Rejection(`parsing public key ${i + 1}: ${(err as Error).message}`);
      }
    });
  }
  if (req.fulcio) {
    const [ca] = req.fulcio.caData !== undefined ? [req.fulcio.caData] : loadSources([req.fulcio.caPath ?? ""], ctx, "Fulcio CA certificates");
    let caCertificates;
    try {
      caCertificates = parseCertificatesPem(ca ?? new Uint8Array());
    } catch (err) {
      throw new Rejection(`loading Fulcio CA certificates: ${(err as Error).message}`);
    }
    if (caCertificates.length === 0) throw new Rejection("error loading Fulcio CA certificates: none found");
    trust.fulcio = {
      caCertificates,
      oidcIssuer: req.fulcio.oidcIssuer,
      ...(req.fulcio.subjectEmail !== undefined ? { subjectEmail: req.fulcio.subjectEmail } : {}),
      ...(req.fulcio.buildSignerURI !== undefined ? { buildSignerURI: req.fulcio.buildSignerURI } : {}),
    };
  }
  const rekorBlobs =
    req.rekorPublicKeyData !== undefined
      ? [req.rekorPublicKeyData]
      : req.rekorPublicKeyDatas !== undefined
        ? [...req.rekorPublicKeyDatas]
        : req.rekorPublicKeyPath !== undefined || req.rekorPublicKeyPaths !== undefined
          ? loadSources(req.rekorPublicKeyPath !== undefined ? [req.rekorPublicKeyPath] : (req.rekorPublicKeyPaths ?? []), ctx, "Rekor public key")
          : undefined;
  if (rekorBlobs) {
    trust.rekorPublicKeys = rekorBlobs.map((b, i) => {
      let k;
      try {
        k = parsePublicKeyPem(b);
      } catch (err) {
        throw new Rejection(`parsing Rekor public key ${i + 1}: ${(err as Error).message}`);
      }
      if (k.asymmetricKeyType !== "ec") throw new Rejection(`Rekor public key ${i + 1} is not using ECDSA`);
      return k;
    });
  }
  return trust;
}

async function evaluateSigstoreSigned(req: Extract<PolicyRequirement, { type: "sigstoreSigned" }>, ctx: EvalContext): Promise<void> {
  const trust = sigstoreTrust(req, ctx);
  const sigs = await ctx.sigstore();
  const reasons: string[] = [];
  for (const sig of sigs) {
    try {
      const payload = verifySigstoreSignature(trust, sig);
      checkClaims(parseSignaturePayload(payload, COSIGN_TYPE), req.signedIdentity, ctx);
      return;
    } catch (err) {
      reasons.push((err as Error).message);
    }
  }
  summarise(reasons);
}
