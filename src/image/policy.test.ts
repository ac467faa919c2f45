import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { GrpcCode, InvalidArgumentError } from "../errors.ts";
import { canonicalJson, type SigstoreSignature } from "./policy-sigstore.ts";
import {
  evaluatePolicy,
  matchesIdentity,
  parsePolicy,
  policyPathFor,
  policyScopes,
  PolicyFormatError,
  PolicyRejectedError,
  requirementsFor,
  type IdentityMatcher,
  type PolicyInput,
} from "./policy.ts";
import { parseReference } from "./reference.ts";

const DIGEST = `sha256:${"1a".repeat(32)}`;
const OTHER_DIGEST = `sha256:${"2b".repeat(32)}`;
const COSIGN = "cosign container image signature";

function payloadFor(reference: string, digest = DIGEST, type = COSIGN, optional: unknown = null): Uint8Array {
  return Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": reference }, image: { "docker-manifest-digest": digest }, type }, optional }));
}

function pem(key: KeyObject): string {
  return key.export({ type: "spki", format: "pem" }).toString();
}

function signPayload(priv: KeyObject, payload: Uint8Array): string {
  const alg = priv.asymmetricKeyType === "ed25519" ? null : "sha256";
  return sign(alg, payload, priv).toString("base64");
}

function signed(priv: KeyObject, reference: string, digest = DIGEST): SigstoreSignature {
  const payload = payloadFor(reference, digest);
  return { payload, signatureB64: signPayload(priv, payload) };
}

/** A Rekor SET (cosign's bundle annotation) for a hashedrekord entry, signed by `rekor`. */
function makeSET(rekor: KeyObject, keyOrCertPem: string, sigB64: string, payload: Uint8Array, integratedTime: number): string {
  const body = {
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: createHash("sha256").update(payload).digest("hex") } },
      signature: { content: sigB64, publicKey: { content: Buffer.from(keyOrCertPem).toString("base64") } },
    },
  };
  const Payload = { body: Buffer.from(JSON.stringify(body)).toString("base64"), integratedTime, logIndex: 42, logID: "c0ffee" };
  const SignedEntryTimestamp = sign("sha256", Buffer.from(canonicalJson(Payload)), rekor).toString("base64");
  return JSON.stringify({ SignedEntryTimestamp, Payload });
}

function policyWith(docker: Record<string, unknown[]>, def: unknown[] = [{ type: "reject" }]) {
  return parsePolicy(JSON.stringify({ default: def, transports: { docker } }), "/etc/containers/policy.json");
}

function input(reference: string, sigs: SigstoreSignature[], extra: Partial<PolicyInput> = {}): PolicyInput {
  return { reference: parseReference(reference), manifestDigest: DIGEST, signatures: async () => sigs, ...extra };
}

async function rejection(p: Promise<unknown>): Promise<PolicyRejectedError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyRejectedError);
    return err as PolicyRejectedError;
  }
  throw new Error("expected the policy to reject");
}

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ec2 = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rekorKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const b64 = (s: string) => Buffer.from(s).toString("base64");

// ---------------------------------------------------------------------------------------------

describe("parsing", () => {
  test("every requirement and matcher type", () => {
    const p = parsePolicy(
      JSON.stringify({
        default: [{ type: "insecureAcceptAnything" }],
        transports: {
          docker: {
            "": [{ type: "reject" }],
            "quay.io/gpg": [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k.gpg", signedIdentity: { type: "matchRepository" } }],
            "quay.io/base": [{ type: "signedBaseLayer", baseLayerIdentity: { type: "exactRepository", dockerRepository: "quay.io/base" } }],
            "quay.io/key": [{ type: "sigstoreSigned", keyData: b64(pem(ec.publicKey)), signedIdentity: { type: "exactReference", dockerReference: "quay.io/key:1" } }],
            "quay.io/ful": [
              {
                type: "sigstoreSigned",
                fulcio: { caPath: "/ca.pem", oidcIssuer: "https://i", subjectEmail: "a@b" },
                rekorPublicKeyPath: "/rekor.pub",
                signedIdentity: { type: "remapIdentity", prefix: "quay.io/ful", signedPrefix: "example.com/ful" },
              },
            ],
          },
          atomic: { "": [{ type: "insecureAcceptAnything" }] },
        },
      }),
      "/p.json",
    );
    expect(p.default).toEqual([{ type: "insecureAcceptAnything" }]);
    expect(Object.keys(p.transports.docker ?? {}).length).toBe(5);
    const gpg = p.transports.docker?.["quay.io/gpg"]?.[0];
    expect(gpg).toEqual({ type: "signedBy", keyType: "GPGKeys", keyPath: "/k.gpg", signedIdentity: { type: "matchRepository" } });
    // signedIdentity defaults to matchRepoDigestOrExact
    const p2 = policyWith({ x: [{ type: "sigstoreSigned", keyPath: "/k" }] });
    expect(p2.transports.docker?.x?.[0]).toEqual({ type: "sigstoreSigned", keyPath: "/k", signedIdentity: { type: "matchRepoDigestOrExact" } });
  });

  const bad: [string, unknown, RegExp][] = [
    ["missing default", { transports: {} }, /default policy is missing/],
    ["empty default", { default: [] }, /must not be empty/],
    ["unknown top-level field", { default: [{ type: "reject" }], extra: 1 }, /unknown field "extra"/],
    ["unknown requirement type", { default: [{ type: "trustMe" }] }, /unknown policy requirement type "trustMe"/],
    ["extra field on reject", { default: [{ type: "reject", keyPath: "/x" }] }, /unknown field "keyPath"/],
    ["bad keyType", { default: [{ type: "signedBy", keyType: "PGP", keyPath: "/x" }] }, /unrecognized keyType/],
    ["two key sources", { default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/x", keyData: "" }] }, /exactly one of keyPath/],
    ["no key source", { default: [{ type: "sigstoreSigned" }] }, /exactly one of keyPath/],
    ["fulcio without rekor", { default: [{ type: "sigstoreSigned", fulcio: { caPath: "/c", oidcIssuer: "i", subjectEmail: "e" } }] }, /Rekor public key .* is required/],
    ["fulcio without issuer", { default: [{ type: "sigstoreSigned", fulcio: { caPath: "/c", subjectEmail: "e" }, rekorPublicKeyPath: "/r" }] }, /oidcIssuer: is required/],
    ["two rekor sources", { default: [{ type: "sigstoreSigned", keyPath: "/k", rekorPublicKeyPath: "/r", rekorPublicKeyData: "" }] }, /at most one of rekor/],
    ["keyData not base64", { default: [{ type: "sigstoreSigned", keyData: "not base64!" }] }, /base64/],
    ["unknown matcher", { default: [{ type: "sigstoreSigned", keyPath: "/k", signedIdentity: { type: "anything" } }] }, /unknown policy reference match type/],
    ["exactReference without tag", { default: [{ type: "sigstoreSigned", keyPath: "/k", signedIdentity: { type: "exactReference", dockerReference: "quay.io/x" } }] }, /neither a tag nor a digest/],
    ["bad remap prefix", { default: [{ type: "sigstoreSigned", keyPath: "/k", signedIdentity: { type: "remapIdentity", prefix: "quay.io/Bad", signedPrefix: "quay.io" } }] }, /not valid/],
    ["transports not an object", { default: [{ type: "reject" }], transports: [] }, /transports: must be a JSON object/],
  ];
  for (const [name, doc, why] of bad) {
    test(`error: ${name}`, () => {
      let err: unknown;
      try {
        parsePolicy(JSON.stringify(doc), "/etc/containers/policy.json");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyFormatError);
      expect((err as PolicyFormatError).code).toBe(GrpcCode.FAILED_PRECONDITION);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toContain(`invalid policy in "/etc/containers/policy.json"`);
    });
  }

  test("error: not JSON", () => {
    expect(() => parsePolicy("{", "/p.json")).toThrow(/invalid policy in "\/p\.json": not valid JSON/);
  });
});

describe("choosing the policy file (CRI-O's per-namespace override)", () => {
  const exists = (files: string[]) => (p: string) => files.includes(p);
  test("a namespace's own file wins when it exists", () => {
    expect(policyPathFor({ signaturePolicy: "/custom.json", signaturePolicyDir: "/etc/crio/policies", namespace: "team", exists: exists(["/etc/crio/policies/team.json"]) })).toBe(
      "/etc/crio/policies/team.json",
    );
  });
  test("otherwise signature_policy, then $CONTAINERS_POLICY_JSON, then the system files", () => {
    expect(policyPathFor({ signaturePolicy: "/custom.json", signaturePolicyDir: "/etc/crio/policies", namespace: "other", exists: exists([]) })).toBe("/custom.json");
    expect(policyPathFor({ env: { CONTAINERS_POLICY_JSON: "/env.json" }, exists: exists([]) })).toBe("/env.json");
    expect(policyPathFor({ env: {}, exists: exists(["/etc/containers/policy.json", "/usr/share/containers/policy.json"]) })).toBe("/etc/containers/policy.json");
    expect(policyPathFor({ env: {}, exists: exists(["/usr/share/containers/policy.json"]) })).toBe("/usr/share/containers/policy.json");
    expect(() => policyPathFor({ env: {}, exists: exists([]) })).toThrow(/no policy.json file found/);
  });
  test("a namespace cannot escape the directory", () => {
    expect(() => policyPathFor({ signaturePolicyDir: "/etc/crio/policies", namespace: "../../etc/x", exists: () => true })).toThrow(InvalidArgumentError);
  });
});

describe("scope selection", () => {
  test("scopes from most to least specific, with wildcards from the host", () => {
    expect(policyScopes(parseReference("a.b.example.com:5000/ns/img:1"))).toEqual([
      "a.b.example.com:5000/ns/img:1",
      "a.b.example.com:5000/ns/img",
      "a.b.example.com:5000/ns",
      "a.b.example.com:5000",
      "*.b.example.com",
      "*.example.com",
      "*.com",
    ]);
    expect(policyScopes(parseReference("busybox"))).toEqual(["docker.io/library/busybox:latest", "docker.io/library/busybox", "docker.io/library", "docker.io", "*.io"]);
    expect(policyScopes(parseReference(`quay.io/x:1@${DIGEST}`))[0]).toBe(`quay.io/x@${DIGEST}`);
  });

  const p = policyWith(
    {
      "": [{ type: "insecureAcceptAnything" }],
      "docker.io/library/busybox:1": [{ type: "reject" }],
      "docker.io/library/busybox": [{ type: "sigstoreSigned", keyPath: "/repo" }],
      "docker.io/library": [{ type: "sigstoreSigned", keyPath: "/ns" }],
      "quay.io": [{ type: "sigstoreSigned", keyPath: "/host" }],
      "*.example.com": [{ type: "sigstoreSigned", keyPath: "/wild" }],
      "*.b.example.com": [{ type: "sigstoreSigned", keyPath: "/wild-b" }],
    },
    [{ type: "reject" }],
  );
  const pick = (r: string) => requirementsFor(p, parseReference(r));
  test("most specific scope wins", () => {
    expect(pick("busybox:1").scope).toBe(`transports.docker["docker.io/library/busybox:1"]`);
    expect(pick("busybox:2").scope).toBe(`transports.docker["docker.io/library/busybox"]`);
    expect(pick("alpine").scope).toBe(`transports.docker["docker.io/library"]`);
    expect(pick("quay.io/a/b").scope).toBe(`transports.docker["quay.io"]`);
    expect(pick("x.example.com/a").scope).toBe(`transports.docker["*.example.com"]`);
    expect(pick("x.b.example.com/a").scope).toBe(`transports.docker["*.b.example.com"]`);
    expect(pick("gcr.io/a").scope).toBe(`transports.docker[""]`);
  });
  test("the default applies without a docker transport entry", () => {
    expect(requirementsFor(parsePolicy(`{"default":[{"type":"reject"}]}`, "/p"), parseReference("a.io/b")).scope).toBe("default");
  });
});

describe("simple requirements", () => {
  test("insecureAcceptAnything accepts without looking at signatures", async () => {
    let fetched = false;
    const d = await evaluatePolicy(policyWith({}, [{ type: "insecureAcceptAnything" }]), {
      reference: parseReference("busybox"),
      manifestDigest: DIGEST,
      signatures: async () => {
        fetched = true;
        return [];
      },
    });
    expect(d.scope).toBe("default");
    expect(fetched).toBe(false);
  });

  test("reject names the image, the requirement, the scope and the file", async () => {
    const p = policyWith({ "docker.io/library/busybox": [{ type: "reject" }] }, [{ type: "insecureAcceptAnything" }]);
    const e = await rejection(evaluatePolicy(p, input("busybox", [])));
    expect(e.code).toBe(GrpcCode.PERMISSION_DENIED);
    expect(e.message).toBe(
      `SignatureValidationFailed: Source image rejected: Running image docker://busybox:latest is rejected by policy. ` +
        `(requirement 1 of 1, "reject", of transports.docker["docker.io/library/busybox"] in /etc/containers/policy.json)`,
    );
    expect(e.scope).toBe(`transports.docker["docker.io/library/busybox"]`);
  });

  test("every requirement must pass", async () => {
    const p = policyWith({}, [{ type: "insecureAcceptAnything" }, { type: "reject" }]);
    const e = await rejection(evaluatePolicy(p, input("quay.io/a:1", [])));
    expect(e.message).toContain("requirement 2 of 2");
  });

  test("signedBaseLayer, non-GPG signedBy and pki are not implemented and reject", async () => {
    for (const req of [
      { type: "signedBaseLayer", baseLayerIdentity: { type: "matchRepository" } },
      { type: "signedBy", keyType: "X509Certificates", keyPath: "/x" },
      { type: "sigstoreSigned", pki: { caRootsPath: "/r", subjectEmail: "e" } },
    ]) {
      const e = await rejection(evaluatePolicy(policyWith({}, [req]), input("quay.io/a:1", [])));
      expect(e.reason).toMatch(/not implemented|Unimplemented|not supported/);
    }
  });
});

describe("sigstoreSigned with public keys", () => {
  const keyPolicy = (extra: Record<string, unknown> = {}) => policyWith({ "quay.io/app": [{ type: "sigstoreSigned", keyData: b64(pem(ec.publicKey)), ...extra }] });

  test("a valid signature is accepted", async () => {
    const d = await evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec.privateKey, "quay.io/app:v1")]));
    expect(d.scope).toBe(`transports.docker["quay.io/app"]`);
  });

  test("Ed25519 and RSA keys, keyPaths and keyDatas", async () => {
    const ed = generateKeyPairSync("ed25519");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const files: Record<string, string> = { "/keys/ed.pub": pem(ed.publicKey), "/keys/rsa.pub": pem(rsa.publicKey) };
    const readFile = (p: string) => {
      const f = files[p];
      if (f === undefined) throw new Error(`ENOENT: no such file ${p}`);
      return Buffer.from(f);
    };
    const byPaths = policyWith({ "quay.io": [{ type: "sigstoreSigned", keyPaths: ["/keys/ed.pub", "/keys/rsa.pub"] }] });
    await evaluatePolicy(byPaths, input("quay.io/a:1", [signed(ed.privateKey, "quay.io/a:1")], { readFile }));
    await evaluatePolicy(byPaths, input("quay.io/a:1", [signed(rsa.privateKey, "quay.io/a:1")], { readFile }));
    const byDatas = policyWith({ "quay.io": [{ type: "sigstoreSigned", keyDatas: [b64(pem(ec2.publicKey)), b64(pem(ed.publicKey))] }] });
    await evaluatePolicy(byDatas, input("quay.io/a:1", [signed(ed.privateKey, "quay.io/a:1")]));
    const missing = policyWith({ "quay.io": [{ type: "sigstoreSigned", keyPath: "/keys/none.pub" }] });
    const e = await rejection(evaluatePolicy(missing, input("quay.io/a:1", [signed(ed.privateKey, "quay.io/a:1")], { readFile })));
    expect(e.reason).toContain("/keys/none.pub");
  });

  test("a signature by another key is rejected", async () => {
    const e = await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec2.privateKey, "quay.io/app:v1")])));
    expect(e.reason).toBe("cryptographic signature verification failed");
  });

  test("a tampered payload is rejected", async () => {
    const s = signed(ec.privateKey, "quay.io/app:v1");
    const tampered = { ...s, payload: payloadFor("quay.io/app:v1", OTHER_DIGEST) };
    const e = await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [tampered])));
    expect(e.reason).toBe("cryptographic signature verification failed");
  });

  test("a signature for another manifest digest is rejected", async () => {
    const e = await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec.privateKey, "quay.io/app:v1", OTHER_DIGEST)])));
    expect(e.reason).toBe(`Signature for digest ${OTHER_DIGEST} does not match`);
  });

  test("the manifest bytes, when given, are hashed with the signature's algorithm", async () => {
    const manifest = Buffer.from(`{"schemaVersion":2}`);
    const sha512 = `sha512:${createHash("sha512").update(manifest).digest("hex")}`;
    await evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec.privateKey, "quay.io/app:v1", sha512)], { manifest, manifestDigest: OTHER_DIGEST }));
  });

  test("no signature at all, and several bad ones", async () => {
    expect((await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [])))).reason).toBe("A signature was required, but no signature exists");
    const e = await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec2.privateKey, "quay.io/app:v1"), signed(ec.privateKey, "quay.io/other:v1")])));
    expect(e.reason).toMatch(/^None of the signatures were accepted, reasons: cryptographic signature verification failed; Signature for identity "quay.io\/other:v1" is not accepted$/);
  });

  test("one good signature among bad ones is enough", async () => {
    await evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [signed(ec2.privateKey, "quay.io/app:v1"), signed(ec.privateKey, "quay.io/app:v1")]));
  });

  test("malformed payloads are rejected", async () => {
    const cases: [Uint8Array, RegExp][] = [
      [payloadFor("quay.io/app:v1", DIGEST, "atomic container signature"), /unrecognized signature type/],
      [Buffer.from(`{"critical":{"identity":{"docker-reference":"quay.io/app:v1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"${COSIGN}","extra":1},"optional":null}`), /unexpected field "extra"/],
      [Buffer.from(`{"critical":{}}`), /missing field "optional"/],
      [payloadFor("quay.io/app:v1", "sha256:abc"), /invalid docker-manifest-digest/],
      [Buffer.from("not json"), /not valid JSON/],
    ];
    for (const [payload, why] of cases) {
      const e = await rejection(evaluatePolicy(keyPolicy(), input("quay.io/app:v1", [{ payload, signatureB64: signPayload(ec.privateKey, payload) }])));
      expect(e.reason).toMatch(why);
    }
  });

  test("errors fetching signatures are not policy decisions", async () => {
    const failing = evaluatePolicy(keyPolicy(), {
      reference: parseReference("quay.io/app:v1"),
      manifestDigest: DIGEST,
      signatures: async () => {
        throw new Error("registry unreachable");
      },
    });
    await expect(failing).rejects.toThrow("registry unreachable");
  });
});

describe("signedIdentity matchers", () => {
  const intendedTag = parseReference("quay.io/ns/app:v1");
  const intendedDigest = parseReference(`quay.io/ns/app@${DIGEST}`);
  const table: [IdentityMatcher, typeof intendedTag, string, boolean][] = [
    [{ type: "matchExact" }, intendedTag, "quay.io/ns/app:v1", true],
    [{ type: "matchExact" }, intendedTag, "quay.io/ns/app:v2", false],
    [{ type: "matchExact" }, intendedTag, "quay.io/ns/app", false],
    [{ type: "matchExact" }, intendedDigest, `quay.io/ns/app@${DIGEST}`, true],
    [{ type: "matchExact" }, intendedDigest, "quay.io/ns/app:v1", false],
    [{ type: "matchRepoDigestOrExact" }, intendedTag, "quay.io/ns/app:v1", true],
    [{ type: "matchRepoDigestOrExact" }, intendedTag, "quay.io/ns/app:v2", false],
    [{ type: "matchRepoDigestOrExact" }, intendedDigest, "quay.io/ns/app:anything", true],
    [{ type: "matchRepoDigestOrExact" }, intendedDigest, "quay.io/ns/app", false],
    [{ type: "matchRepoDigestOrExact" }, intendedDigest, "quay.io/ns/other:v1", false],
    [{ type: "matchRepository" }, intendedTag, "quay.io/ns/app:v9", true],
    [{ type: "matchRepository" }, intendedTag, "quay.io/ns/app", true],
    [{ type: "matchRepository" }, intendedTag, "quay.io/other/app:v1", false],
    [{ type: "exactReference", dockerReference: "example.com/signed:1" }, intendedTag, "example.com/signed:1", true],
    [{ type: "exactReference", dockerReference: "example.com/signed:1" }, intendedTag, "quay.io/ns/app:v1", false],
    [{ type: "exactRepository", dockerRepository: "example.com/signed" }, intendedTag, "example.com/signed:whatever", true],
    [{ type: "exactRepository", dockerRepository: "example.com/signed" }, intendedTag, "quay.io/ns/app:v1", false],
    [{ type: "remapIdentity", prefix: "quay.io/ns", signedPrefix: "example.com/upstream" }, intendedTag, "example.com/upstream/app:v1", true],
    [{ type: "remapIdentity", prefix: "quay.io/ns", signedPrefix: "example.com/upstream" }, intendedTag, "quay.io/ns/app:v1", false],
    [{ type: "remapIdentity", prefix: "quay.io/ns", signedPrefix: "example.com/upstream" }, intendedDigest, "example.com/upstream/app:x", true],
    [{ type: "remapIdentity", prefix: "quay.io/n", signedPrefix: "example.com/upstream" }, intendedTag, "quay.io/ns/app:v1", true], // prefix must end at "/"
    [{ type: "remapIdentity", prefix: "quay.io", signedPrefix: "docker.io" }, parseReference("quay.io/app:v1"), "docker.io/library/app:v1", false], // not canonical
    [{ type: "matchRepoDigestOrExact" }, intendedTag, "not a reference", false],
    [{ type: "matchRepoDigestOrExact" }, parseReference("busybox:1"), "busybox:1", true], // the signed reference is normalised
  ];
  for (const [m, intended, signedRef, want] of table) {
    test(`${m.type} ${JSON.stringify(signedRef)} for ${intended.tag ?? "digest"} → ${want}`, () => {
      expect(matchesIdentity(m, intended, signedRef)).toBe(want);
    });
  }

  test("end to end: an identity mismatch for each matcher rejects with the signed identity named", async () => {
    const matchers: IdentityMatcher[] = [
      { type: "matchExact" },
      { type: "matchRepoDigestOrExact" },
      { type: "matchRepository" },
      { type: "exactReference", dockerReference: "quay.io/ns/app:v2" },
      { type: "exactRepository", dockerRepository: "quay.io/ns/else" },
      { type: "remapIdentity", prefix: "quay.io/ns", signedPrefix: "example.com/up" },
    ];
    for (const signedIdentity of matchers) {
      const p = policyWith({ "quay.io": [{ type: "sigstoreSigned", keyData: b64(pem(ec.publicKey)), signedIdentity }] });
      const e = await rejection(evaluatePolicy(p, input("quay.io/ns/app:v1", [signed(ec.privateKey, "quay.io/intruder/app:v1")])));
      expect(e.reason).toBe(`Signature for identity "quay.io/intruder/app:v1" is not accepted`);
    }
  });
});

describe("canonical JSON (RFC 8785) for Rekor SETs", () => {
  test("keys sorted by UTF-16 code units, ECMAScript numbers and strings, no whitespace", () => {
    expect(canonicalJson({ b: [3, 1e21, 0.000001, -0, "x\u2028\n"], a: { d: null, c: true }, "€": 1.5, Z: "é" })).toBe(
      `{"Z":"é","a":{"c":true,"d":null},"b":[3,1e+21,0.000001,0,"x\u2028\\n"],"€":1.5}`,
    );
  });
});

describe("sigstoreSigned with Rekor", () => {
  const rekorPolicy = () =>
    policyWith({ "quay.io": [{ type: "sigstoreSigned", keyData: b64(pem(ec.publicKey)), rekorPublicKeyData: b64(pem(rekorKey.publicKey)) }] });
  const withSET = (s: SigstoreSignature, opts: { rekor?: KeyObject; key?: string; payload?: Uint8Array } = {}): SigstoreSignature => ({
    ...s,
    bundleJson: makeSET(opts.rekor ?? rekorKey.privateKey, opts.key ?? pem(ec.publicKey), s.signatureB64, opts.payload ?? s.payload, 1_700_000_000),
  });

  test("a signature logged in Rekor is accepted", async () => {
    await evaluatePolicy(rekorPolicy(), input("quay.io/a:1", [withSET(signed(ec.privateKey, "quay.io/a:1"))]));
  });

  test("missing, forged or mismatched SETs are rejected", async () => {
    const s = signed(ec.privateKey, "quay.io/a:1");
    const cases: [SigstoreSignature, RegExp][] = [
      [s, /missing dev.sigstore.cosign\/bundle/],
      [withSET(s, { rekor: ec2.privateKey }), /Rekor SET failed/],
      [withSET(s, { key: pem(ec2.publicKey) }), /public key in the Rekor SET does not match/],
      [withSET(s, { payload: payloadFor("quay.io/a:2") }), /payload in the Rekor SET does not match/],
      [{ ...withSET(s), bundleJson: withSET(s).bundleJson?.replace(`"logIndex":42`, `"logIndex":43`) ?? "" }, /Rekor SET failed/],
    ];
    for (const [sig, why] of cases) {
      const e = await rejection(evaluatePolicy(rekorPolicy(), input("quay.io/a:1", [sig])));
      expect(e.reason).toMatch(why);
    }
  });
});

describe("sigstoreSigned with Fulcio (a test CA built with openssl)", () => {
  let dir = "";
  let rootPem = "";
  let otherRootPem = "";
  let intPem = "";
  let leafPem = "";
  let leafKey: KeyObject;
  const ISSUER = "https://issuer.example.com";
  const EMAIL = "signer@example.com";

  function openssl(args: string[]): void {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "crio-fulcio-test-"));
    writeFileSync(path.join(dir, "int.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\nextendedKeyUsage=codeSigning\n");
    writeFileSync(
      path.join(dir, "leaf.ext"),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=codeSigning",
        `subjectAltName=critical,email:${EMAIL}`,
        `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(ISSUER).toString("hex")}`,
        `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${ISSUER}`,
        "",
      ].join("\n"),
    );
    const ca = (name: string) =>
      openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "3650", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    ca("root");
    ca("otherroot");
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=intermediate"]);
    openssl(["x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-out", "int.pem", "-days", "3650", "-extfile", "int.ext", "-set_serial", "2"]);
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf"]);
    openssl(["x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key", "-out", "leaf.pem", "-days", "1", "-extfile", "leaf.ext", "-set_serial", "3"]);
    const read = (f: string) => readFileSync(path.join(dir, f), "utf8");
    rootPem = read("root.pem");
    otherRootPem = read("otherroot.pem");
    intPem = read("int.pem");
    leafPem = read("leaf.pem");
    leafKey = createPrivateKey(read("leaf.key"));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const now = () => Math.floor(Date.now() / 1000);
  const fulcioPolicy = (over: Record<string, unknown> = {}, caPem = rootPem) =>
    policyWith({
      "quay.io": [
        {
          type: "sigstoreSigned",
          fulcio: { caData: b64(caPem), oidcIssuer: ISSUER, subjectEmail: EMAIL, ...over },
          rekorPublicKeyData: b64(pem(rekorKey.publicKey)),
        },
      ],
    });
  function fulcioSig(opts: { reference?: string; time?: number; chain?: string; cert?: string; key?: KeyObject } = {}): SigstoreSignature {
    const payload = payloadFor(opts.reference ?? "quay.io/a:1");
    const signatureB64 = signPayload(opts.key ?? leafKey, payload);
    const cert = opts.cert ?? leafPem;
    return { payload, signatureB64, certificatePem: cert, chainPem: opts.chain ?? intPem + rootPem, bundleJson: makeSET(rekorKey.privateKey, cert, signatureB64, payload, opts.time ?? now()) };
  }

  test("a Fulcio-certified, Rekor-logged signature is accepted", async () => {
    await evaluatePolicy(fulcioPolicy(), input("quay.io/a:1", [fulcioSig()]));
  });

  test("the intermediate may come from the policy's CA file instead of the chain annotation", async () => {
    await evaluatePolicy(fulcioPolicy({}, intPem + rootPem), input("quay.io/a:1", [fulcioSig({ chain: "" })]));
  });

  test("wrong email or issuer, untrusted CA, missing intermediate, expired certificate, wrong signing key", async () => {
    const cases: [ReturnType<typeof fulcioPolicy>, SigstoreSignature, RegExp][] = [
      [fulcioPolicy({ subjectEmail: "someone@else.com" }), fulcioSig(), /required email "someone@else.com" not found/],
      [fulcioPolicy({ oidcIssuer: "https://other" }), fulcioSig(), /unexpected Fulcio OIDC issuer "https:\/\/issuer.example.com"/],
      [fulcioPolicy({}, otherRootPem), fulcioSig(), /does not chain to a trusted Fulcio CA/],
      [fulcioPolicy(), fulcioSig({ chain: "" }), /does not chain to a trusted Fulcio CA/],
      [fulcioPolicy(), fulcioSig({ time: now() + 10 * 86400 }), /not valid at/],
      [fulcioPolicy(), fulcioSig({ key: ec.privateKey }), /cryptographic signature verification failed/],
      [fulcioPolicy({ buildSignerURI: "https://ci/x" }), fulcioSig(), /build signer URI/],
      [fulcioPolicy(), { ...fulcioSig(), certificatePem: undefined } as SigstoreSignature, /missing dev.sigstore.cosign\/certificate/],
      // The root in the chain annotation is not trusted just for being there.
      [fulcioPolicy({}, otherRootPem), fulcioSig({ chain: intPem + rootPem }), /does not chain/],
      // A self-signed "intermediate" in the chain does not make a path either.
      [fulcioPolicy(), fulcioSig({ chain: otherRootPem + otherRootPem }), /does not chain/],
    ];
    for (const [p, sig, why] of cases) {
      const e = await rejection(evaluatePolicy(p, input("quay.io/a:1", [sig])));
      expect(e.reason).toMatch(why);
    }
  });

  test("a CA certificate cannot sign as a leaf", async () => {
    const intKey = createPrivateKey(readFileSync(path.join(dir, "int.key"), "utf8"));
    const e = await rejection(evaluatePolicy(fulcioPolicy(), input("quay.io/a:1", [fulcioSig({ cert: intPem, key: intKey, chain: rootPem + rootPem })])));
    expect(e.reason).toMatch(/OIDC issuer|code signing|chain/);
  });
});
