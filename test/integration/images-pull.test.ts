// PullImage beyond the happy path, end to end against the compiled daemon: registry credentials
// (CRI AuthConfig, global_auth_file, basic and token auth), TLS trust from certs.d, mirrors and
// blocked registries, short-name resolution, the signature policy (reject, per-namespace files,
// cosign signatures with a key), and registries that fail or serve what this runtime cannot use.
// Every failure must carry the right gRPC code, name what was at fault without leaking a secret,
// and leave nothing behind: no image, no new layer, nothing in the staging directory.
//
// Registries are Debian's docker-registry on 127.0.0.1 (test/lib/registry.ts) or an in-process
// fake for misbehaviour; every registries.conf here names only 127.0.0.1 registries, so no pull
// can fall through to a public one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { TarInput } from "../../src/image/tar/writer.ts";
import { assembleImage, buildLayer, hostArch, MEDIA, sha256, type BuiltImage, type BuiltLayer, type LayerCompression } from "../lib/images.ts";
import { makeRandomImage, pushImage, type PushAuth, type PushableImage } from "../lib/push.ts";
import { startFakeRegistry, startRegistry, type FakeRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, tempDir, type Daemon, type DaemonOptions } from "./harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** An image whose small layers are its own, so that a stored layer can only come from its pull. */
function uniqueImage(tag: string, opts: { compression?: LayerCompression; padding?: number; layers?: number } = {}): BuiltImage {
  const id = `${tag} ${crypto.randomUUID()}`;
  const layers = Array.from({ length: opts.layers ?? 1 }, (_, i) => {
    const entries: TarInput[] = [{ name: "id/" }, { name: `id/layer${i}`, data: `${id}\n` }];
    if (opts.padding) entries.push({ name: `id/padding${i}`, data: crypto.getRandomValues(new Uint8Array(opts.padding)) });
    return buildLayer(entries, "oci", opts.compression ?? "gzip");
  });
  return assembleImage(layers, { tag, config: { Labels: { id } } });
}

/** A blob of the same length as `layer`'s but other content (uncompressed layers only). */
function impostorOf(layer: BuiltLayer): Uint8Array {
  const tar = new Uint8Array(layer.blob);
  const at = tar.indexOf(0x0a, 512); // the newline that ends the first file's content
  tar[at - 1] = tar[at - 1] === 0x30 ? 0x31 : 0x30;
  return tar;
}

const idOf = (img: BuiltImage) => img.configDigest.replace("sha256:", "");

function withTag(img: PushableImage, tag: string): PushableImage {
  return { ...img, manifests: img.manifests.map((m) => ({ ...m, reference: tag })) };
}

/** A 127.0.0.1 port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const insecureRegistry = (location: string) => [`[[registry]]`, `location = "${location}"`, `insecure = true`, ``].join("\n");

const daemons: Daemon[] = [];
async function daemon(opts: DaemonOptions): Promise<Daemon> {
  const d = await startDaemon(opts);
  daemons.push(d);
  return d;
}

const pull = (d: Daemon, image: string, extra: object = {}) => d.image.call("PullImage", { image: { image }, ...extra }, 30_000);
const status = (d: Daemon, image: string) => d.image.call("ImageStatus", { image: { image } });

function layerIds(d: Daemon): string[] {
  const file = join(d.root, "overlay-layers", "layers.json");
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, "utf8")) as { id: string }[]).map((l) => l.id).sort();
}

/**
 * Pulls `image`, expects the pull to fail, and checks that it left nothing behind: no image under
 * that name, no new layer, an empty staging directory. Returns the gRPC error.
 */
async function pullFails(d: Daemon, image: string, extra: object = {}): Promise<grpc.ServiceError> {
  const before = layerIds(d);
  const err = await pull(d, image, extra).then(
    (r) => {
      throw new Error(`pulling ${image} should have failed, but gave ${JSON.stringify(r)}`);
    },
    (e: grpc.ServiceError) => e,
  );
  expect(typeof err.code).toBe("number");
  expect((await status(d, image)).image).toBeUndefined();
  expect(layerIds(d)).toEqual(before);
  expect(readdirSync(join(d.root, "overlay", ".crio-staging"))).toEqual([]);
  return err;
}

let plain: TestRegistry; // the primary registry of most tests
let mirror: TestRegistry; // a second plain registry: mirror, second search registry
const scratch = tempDir("crio-pull-test-");

beforeAll(async () => {
  [plain, mirror] = await Promise.all([startRegistry(), startRegistry()]);
}, 60_000);

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.cleanup()));
  await Promise.all([plain?.stop(), mirror?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe("credentials", () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  let d: Daemon;
  const authFile = join(scratch, "auth.json");
  const images = { basic: uniqueImage("v1"), token: uniqueImage("v1") };

  beforeAll(async () => {
    [basic, token] = await Promise.all([startRegistry({ auth: "htpasswd" }), startRegistry({ auth: "token" })]);
    const creds: PushAuth = { username: basic.username!, password: basic.password! };
    for (const repo of ["basic/a", "basic/b", "basic/c", "basic/d", "basic/e"]) await pushImage(basic.url, repo, images.basic, creds);
    for (const repo of ["token/a", "token/b", "token/c", "token/d"]) {
      await pushImage(token.url, repo, images.token, { username: token.username!, password: token.password! });
    }
    d = await daemon({
      registriesConf: insecureRegistry(basic.host) + insecureRegistry(token.host),
      // The only auth file is one this test controls (absent until a test writes it), so no
      // file of the host's can lend credentials; debug logging, so that the secrecy check below
      // covers everything the daemon can say.
      config: `[crio.image]\nglobal_auth_file = "${authFile}"\n`,
      args: ["--log-level", "debug"],
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([basic?.stop(), token?.stop()]);
  });

  test("basic auth without credentials: UNAUTHENTICATED naming the registry", async () => {
    const err = await pullFails(d, `${basic.host}/basic/a:v1`);
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toContain(basic.host);
    expect(err.details).toContain("no credentials");
    expect(err.details).not.toContain(basic.password!);
  });

  test("basic auth with the CRI AuthConfig's username and password", async () => {
    const r = await pull(d, `${basic.host}/basic/b:v1`, { auth: { username: basic.username, password: basic.password } });
    expect(r.imageRef).toBe(idOf(images.basic));
  });

  test("basic auth with the CRI AuthConfig's auth field (base64 user:password)", async () => {
    const r = await pull(d, `${basic.host}/basic/c:v1`, { auth: { auth: b64(`${basic.username}:${basic.password}`) } });
    expect(r.imageRef).toBe(idOf(images.basic));
  });

  test("basic auth from global_auth_file", async () => {
    writeFileSync(authFile, JSON.stringify({ auths: { [basic.host]: { auth: b64(`${basic.username}:${basic.password}`) } } }));
    try {
      const r = await pull(d, `${basic.host}/basic/d:v1`);
      expect(r.imageRef).toBe(idOf(images.basic));
    } finally {
      rmSync(authFile, { force: true });
    }
  });

  test("a wrong password: UNAUTHENTICATED, and the password is neither in the error nor in the logs", async () => {
    const wrong = `wrong-${crypto.randomUUID()}`;
    for (const auth of [{ username: basic.username, password: wrong }, { auth: b64(`${basic.username}:${wrong}`) }]) {
      const err = await pullFails(d, `${basic.host}/basic/e:v1`, { auth });
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toContain(basic.host);
      expect(err.details).toContain("authentication failed");
      expect(err.details).not.toContain(wrong);
      expect(err.details).not.toContain(b64(`${basic.username}:${wrong}`));
    }
    const logs = d.logs();
    expect(logs).toContain(`${basic.host}/basic/e:v1`); // the failures were logged...
    for (const secret of [wrong, b64(`${basic.username}:${wrong}`), basic.password!, b64(`${basic.username}:${basic.password}`)]) {
      expect(logs).not.toContain(secret); // ...without any secret
    }
  });

  test("token auth: anonymous is refused, the CRI AuthConfig's credentials and identity token work, a wrong password is refused", async () => {
    const anon = await pullFails(d, `${token.host}/token/a:v1`);
    expect(anon.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(anon.details).toContain(token.host);

    const r = await pull(d, `${token.host}/token/b:v1`, { auth: { username: token.username, password: token.password } });
    expect(r.imageRef).toBe(idOf(images.token));
    const viaRefresh = await pull(d, `${token.host}/token/c:v1`, { auth: { identityToken: token.identityToken } });
    expect(viaRefresh.imageRef).toBe(idOf(images.token));
    // The token server saw the pull scope with the right account, and a refresh-token grant.
    expect(token.tokenRequests!.some((q) => q.authorized && q.account === token.username && q.scope.includes("repository:token/b:pull"))).toBe(true);
    expect(token.tokenRequests!.some((q) => q.authorized && q.method === "POST" && q.scope.includes("repository:token/c:pull"))).toBe(true);

    const wrong = `wrong-${crypto.randomUUID()}`;
    const err = await pullFails(d, `${token.host}/token/d:v1`, { auth: { username: token.username, password: wrong } });
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toContain(token.host);
    expect(err.details).not.toContain(wrong);
    expect(d.logs()).not.toContain(wrong);
    expect(d.logs()).not.toContain(token.password!);
  });
});

// ---------------------------------------------------------------------------------------------

describe("TLS", () => {
  let secure: TestRegistry;
  let strict: Daemon; // insecure = false
  let lax: Daemon; // insecure = true
  const img = uniqueImage("v1");
  // The daemon reads registry CAs from /etc/containers/certs.d/<host:port>/ (no option moves it).
  const caDir = () => join("/etc/containers/certs.d", secure.host);
  const trustCa = () => {
    mkdirSync(caDir(), { recursive: true });
    writeFileSync(join(caDir(), "ca.crt"), secure.caPem!);
  };
  const untrustCa = () => rmSync(caDir(), { recursive: true, force: true });

  beforeAll(async () => {
    secure = await startRegistry({ tls: true });
    for (const tag of ["a", "b", "c", "d"]) await pushImage(secure.url, "tls/app", withTag(img, tag), { ca: secure.caPem! });
    strict = await daemon({ registriesConf: [`[[registry]]`, `location = "${secure.host}"`, `insecure = false`, ``].join("\n") });
    lax = await daemon({ registriesConf: insecureRegistry(secure.host) });
  }, 60_000);

  afterAll(async () => {
    if (secure) untrustCa();
    await secure?.stop();
  });

  test("an untrusted CA: UNAVAILABLE naming the registry and where to put its CA", async () => {
    untrustCa();
    const err = await pullFails(strict, `${secure.host}/tls/app:a`);
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain(secure.host);
    expect(err.details).toContain(`/etc/containers/certs.d/${secure.host}/ca.crt`);
  });

  test("the CA in certs.d: verified TLS works; removed again, it fails again", async () => {
    trustCa();
    try {
      expect((await pull(strict, `${secure.host}/tls/app:b`)).imageRef).toBe(idOf(img));
    } finally {
      untrustCa();
    }
    // No connection or TLS setting of the trusted pull is reused for the next one.
    const err = await pullFails(strict, `${secure.host}/tls/app:c`);
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain(secure.host);
  });

  test("insecure = true without the CA: TLS without verification", async () => {
    untrustCa();
    expect((await pull(lax, `${secure.host}/tls/app:d`)).imageRef).toBe(idOf(img));
  });
});

// ---------------------------------------------------------------------------------------------

describe("mirrors and blocked registries", () => {
  let d: Daemon;
  // The primary and the mirror hold different images under the same tag: which one a pull
  // returns shows where it came from.
  const onPrimary = uniqueImage("v1");
  const onMirror = uniqueImage("v1");
  const onlyOnMirror = uniqueImage("mirror-only");
  const onlyOnPrimary = uniqueImage("primary-only");
  let down: number;

  beforeAll(async () => {
    down = await closedPort();
    for (const ns of ["all", "digestonly", "bydigest", "down"]) {
      await pushImage(plain.url, `${ns}/app`, onPrimary);
      await pushImage(plain.url, `${ns}/app`, onlyOnPrimary);
      await pushImage(mirror.url, `${ns}/app`, onMirror);
      await pushImage(mirror.url, `${ns}/app`, onlyOnMirror);
    }
    await pushImage(plain.url, "blocked/app", onPrimary);
    const entry = (ns: string, mirrorLines: string[], extra: string[] = []) =>
      [
        `[[registry]]`,
        `location = "${plain.host}/${ns}"`,
        `insecure = true`,
        ...extra,
        `[[registry.mirror]]`,
        ...mirrorLines,
        ``,
      ].join("\n");
    d = await daemon({
      registriesConf: [
        entry("all", [`location = "${mirror.host}/all"`, `insecure = true`]),
        entry("digestonly", [`location = "${mirror.host}/digestonly"`, `insecure = true`, `pull-from-mirror = "digest-only"`]),
        entry("bydigest", [`location = "${mirror.host}/bydigest"`, `insecure = true`], [`mirror-by-digest-only = true`]),
        // Not insecure: an insecure endpoint would also be tried over plain HTTP, doubling the
        // connection retries this test waits for.
        entry("down", [`location = "127.0.0.1:${down}/down"`]),
        [`[[registry]]`, `location = "${plain.host}/blocked"`, `blocked = true`, ``].join("\n"),
        insecureRegistry(plain.host),
      ].join("\n"),
    });
  }, 60_000);

  test("the mirror is tried first; a tag only the primary has falls back to it; the image keeps the name asked for", async () => {
    expect((await pull(d, `${plain.host}/all/app:v1`)).imageRef).toBe(idOf(onMirror));
    expect((await status(d, `${plain.host}/all/app:v1`)).image.repoTags).toEqual([`${plain.host}/all/app:v1`]);
    expect((await pull(d, `${plain.host}/all/app:primary-only`)).imageRef).toBe(idOf(onlyOnPrimary));
    expect((await pull(d, `${plain.host}/all/app@${onlyOnMirror.manifestDigest}`)).imageRef).toBe(idOf(onlyOnMirror));
  });

  test('pull-from-mirror = "digest-only": tags come from the primary, digests from the mirror', async () => {
    expect((await pull(d, `${plain.host}/digestonly/app:v1`)).imageRef).toBe(idOf(onPrimary));
    const err = await pullFails(d, `${plain.host}/digestonly/app:mirror-only`);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain(plain.host);
    expect(err.details).not.toContain(mirror.host); // the mirror was not asked
    expect((await pull(d, `${plain.host}/digestonly/app@${onlyOnMirror.manifestDigest}`)).imageRef).toBe(idOf(onlyOnMirror));
  });

  test("mirror-by-digest-only = true: the same for every mirror of the registry", async () => {
    expect((await pull(d, `${plain.host}/bydigest/app:v1`)).imageRef).toBe(idOf(onPrimary));
    expect((await pull(d, `${plain.host}/bydigest/app@${onlyOnMirror.manifestDigest}`)).imageRef).toBe(idOf(onlyOnMirror));
  });

  test("a mirror that is down: the primary serves the pull", async () => {
    expect((await pull(d, `${plain.host}/down/app:v1`)).imageRef).toBe(idOf(onPrimary));
  }, 30_000);

  test("a blocked registry: PERMISSION_DENIED naming it, and nothing is contacted", async () => {
    const err = await pullFails(d, `${plain.host}/blocked/app:v1`);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toContain(`${plain.host}/blocked`);
    expect(err.details).toContain("blocked");
  });
});

// ---------------------------------------------------------------------------------------------

describe("short names", () => {
  let enforcing: Daemon;
  let disabled: Daemon;
  const first = uniqueImage("v1");
  const second = uniqueImage("v1");
  const secondOnly = uniqueImage("v1");
  const aliasTarget = uniqueImage("v1");

  beforeAll(async () => {
    await pushImage(plain.url, "sn/both", first);
    await pushImage(mirror.url, "sn/both", second);
    await pushImage(mirror.url, "sn/second-only", secondOnly);
    await pushImage(plain.url, "sn/aliased", first); // what search would find
    await pushImage(mirror.url, "elsewhere/target", aliasTarget); // what the alias names
    const conf = [
      `unqualified-search-registries = ["${plain.host}", "${mirror.host}"]`,
      insecureRegistry(plain.host),
      insecureRegistry(mirror.host),
      `[aliases]`,
      `"sn/aliased" = "${mirror.host}/elsewhere/target"`,
      ``,
    ].join("\n");
    [enforcing, disabled] = await Promise.all([
      daemon({ registriesConf: conf, config: `[crio.image]\nshort_name_mode = "enforcing"\n` }),
      daemon({ registriesConf: conf, config: `[crio.image]\nshort_name_mode = "disabled"\n` }),
    ]);
  }, 60_000);

  test('"enforcing" with two search registries: INVALID_ARGUMENT listing both candidates', async () => {
    const err = await pullFails(enforcing, "sn/both:v1");
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("ambiguous");
    expect(err.details).toContain(`${plain.host}/sn/both:v1`);
    expect(err.details).toContain(`${mirror.host}/sn/both:v1`);
  });

  test('"disabled": the first search registry that has the image wins', async () => {
    expect((await pull(disabled, "sn/both:v1")).imageRef).toBe(idOf(first));
    expect((await status(disabled, `${plain.host}/sn/both:v1`)).image.id).toBe(idOf(first));
    expect((await pull(disabled, "sn/second-only:v1")).imageRef).toBe(idOf(secondOnly));
    expect((await status(disabled, `${mirror.host}/sn/second-only:v1`)).image.id).toBe(idOf(secondOnly));
    const err = await pullFails(disabled, "sn/nowhere:v1");
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain(`${plain.host}/sn/nowhere:v1`);
    expect(err.details).toContain(`${mirror.host}/sn/nowhere:v1`);
  });

  test("an [aliases] entry wins over the search registries, even when enforcing", async () => {
    for (const d of [enforcing, disabled]) {
      expect((await pull(d, "sn/aliased:v1")).imageRef).toBe(idOf(aliasTarget));
      expect((await status(d, `${mirror.host}/elsewhere/target:v1`)).image.id).toBe(idOf(aliasTarget));
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** A cosign signature artifact for `manifestDigest`, claiming `payloadDigest`, signed with `key`. */
function cosignSignature(dockerReference: string, manifestDigest: string, key: KeyObject, payloadDigest = manifestDigest): PushableImage {
  const payload = enc(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": dockerReference },
        image: { "docker-manifest-digest": payloadDigest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  const signature = sign("sha256", payload, { key, dsaEncoding: "der" }).toString("base64");
  const config = enc("{}");
  const manifest = enc(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: sha256(config), size: config.length },
      layers: [
        {
          mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
          digest: sha256(payload),
          size: payload.length,
          annotations: { "dev.cosignproject.cosign/signature": signature },
        },
      ],
    }),
  );
  return {
    blobs: new Map([
      [sha256(config), config],
      [sha256(payload), payload],
    ]),
    manifests: [{ reference: `${manifestDigest.replace(":", "-")}.sig`, mediaType: MEDIA.ociManifest, bytes: manifest }],
  };
}

describe("signature policy", () => {
  let d: Daemon;
  const policyDir = join(scratch, "policies");
  const pubKeyPath = join(scratch, "cosign.pub");
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const otherKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const img = uniqueImage("v1");
  const signed = uniqueImage("signed");
  const unsigned = uniqueImage("unsigned");
  const otherKey = uniqueImage("other-key");
  const wrongDigest = uniqueImage("wrong-digest");

  beforeAll(async () => {
    for (const ns of ["rejected/app", "allowed/app", "ns/app"]) await pushImage(plain.url, ns, img);
    const repo = `${plain.host}/signed/app`;
    for (const i of [signed, unsigned, otherKey, wrongDigest]) await pushImage(plain.url, "signed/app", i);
    await pushImage(plain.url, "signed/app", cosignSignature(repo, signed.manifestDigest, keys.privateKey));
    await pushImage(plain.url, "signed/app", cosignSignature(repo, otherKey.manifestDigest, otherKeys.privateKey));
    await pushImage(plain.url, "signed/app", cosignSignature(repo, wrongDigest.manifestDigest, keys.privateKey, signed.manifestDigest));

    writeFileSync(pubKeyPath, keys.publicKey.export({ type: "spki", format: "pem" }));
    mkdirSync(policyDir, { recursive: true });
    writeFileSync(join(policyDir, "ns1.json"), JSON.stringify({ default: [{ type: "reject" }] }));
    d = await daemon({
      registriesConf: insecureRegistry(plain.host),
      config: `[crio.image]\nsignature_policy_dir = "${policyDir}"\n`,
      policy: JSON.stringify({
        default: [{ type: "insecureAcceptAnything" }],
        transports: {
          docker: {
            [`${plain.host}/rejected`]: [{ type: "reject" }],
            [`${plain.host}/allowed/app`]: [{ type: "insecureAcceptAnything" }],
            [`${plain.host}/signed`]: [{ type: "sigstoreSigned", keyPath: pubKeyPath, signedIdentity: { type: "matchRepository" } }],
          },
        },
      }),
    });
  }, 60_000);

  test("reject for a scope: PERMISSION_DENIED naming the requirement and the scope", async () => {
    const err = await pullFails(d, `${plain.host}/rejected/app:v1`);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toContain("SignatureValidationFailed");
    expect(err.details).toContain('"reject"');
    expect(err.details).toContain(`${plain.host}/rejected`);
    expect(err.details).toContain(join(d.dir, "policy.json"));
  });

  test("insecureAcceptAnything for another scope, and the default, accept", async () => {
    expect((await pull(d, `${plain.host}/allowed/app:v1`)).imageRef).toBe(idOf(img));
    expect((await pull(d, `${plain.host}/ns/app:v1`)).imageRef).toBe(idOf(img));
  });

  test("signature_policy_dir: the pod namespace's policy file applies to its pulls only", async () => {
    const sandbox = (namespace: string) => ({ sandboxConfig: { metadata: { name: "p", uid: "u", namespace, attempt: 0 } } });
    await d.image.call("RemoveImage", { image: { image: idOf(img) } });
    const err = await pullFails(d, `${plain.host}/ns/app:v1`, sandbox("ns1"));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toContain(join(policyDir, "ns1.json"));
    expect((await pull(d, `${plain.host}/ns/app:v1`, sandbox("ns2"))).imageRef).toBe(idOf(img));
  });

  test("sigstoreSigned with a key: a valid cosign signature is accepted", async () => {
    expect((await pull(d, `${plain.host}/signed/app:signed`)).imageRef).toBe(idOf(signed));
  });

  for (const [what, image, reason] of [
    ["an unsigned image", unsigned, "no signature exists"],
    ["a signature by another key", otherKey, "cryptographic signature verification failed"],
    ["a signature for another digest", wrongDigest, `Signature for digest ${signed.manifestDigest} does not match`],
  ] as const) {
    test(`sigstoreSigned: ${what} is PERMISSION_DENIED`, async () => {
      const err = await pullFails(d, `${plain.host}/signed/app:${image.manifests[0]!.reference}`);
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err.details).toContain('"sigstoreSigned"');
      expect(err.details).toContain(reason);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe("registry failures", () => {
  let fake: FakeRegistry;
  let d: Daemon;
  let flaky = 0;
  const good = uniqueImage("v1");
  // Big enough (incompressible) that the decompressor meets the damage before the blob's end.
  const corrupt = uniqueImage("v1", { padding: 256 * 1024 });
  // Uncompressed, so that an impostor blob of exactly the same length is easy to make.
  const otherContent = uniqueImage("v1", { compression: "none" });
  const badTopLate = uniqueImage("v1", { compression: "none", layers: 2 });
  const badTopEarly = uniqueImage("v1", { compression: "none", layers: 2 });
  const slow = new Set<string>(); // blob digests answered late
  const foreign = makeRandomImage({
    tag: "v1",
    platforms: hostArch() === "amd64" ? [{ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "s390x" }] : [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "s390x" }],
  });

  beforeAll(async () => {
    fake = startFakeRegistry({
      handler: async (req, url) => {
        if (slow.has(url.pathname.split("/").pop()!)) await Bun.sleep(500);
        if (/^\/v2\/down\/.*\/manifests\//.test(url.pathname)) return Response.json({ errors: [{ code: "UNAVAILABLE", message: "try later" }] }, { status: 500 });
        if (/^\/v2\/flaky\/.*\/manifests\//.test(url.pathname) && flaky++ === 0) return new Response("oops", { status: 503 });
        return undefined;
      },
    });
    fake.add("down/app", good);
    fake.add("flaky/app", good);
    // Layers whose bytes are not what the manifest's digest says: a gzip blob damaged in the
    // middle, and a valid tar of the same length with other content.
    fake.add("corrupt/app", corrupt);
    const flipped = new Uint8Array(corrupt.layers[0]!.blob);
    flipped[flipped.length >> 1]! ^= 0xff;
    fake.blobs.set(corrupt.layers[0]!.digest, flipped);
    fake.add("swapped/app", otherContent);
    fake.blobs.set(otherContent.layers[0]!.digest, impostorOf(otherContent.layers[0]!));
    // Two-layer images with a bad top layer, one answering late (the good layer is committed
    // first if the pull does not wait), one early (the good layer's download is still running).
    for (const [repo, img] of [["badtop-late", badTopLate], ["badtop-early", badTopEarly]] as const) {
      fake.add(`${repo}/app`, img);
      fake.blobs.set(img.layers[1]!.digest, impostorOf(img.layers[1]!));
    }
    slow.add(badTopLate.layers[1]!.digest);
    slow.add(badTopEarly.layers[0]!.digest);
    fake.add("foreign/app", foreign);
    fake.manifests.set("schema1/app:v1", {
      mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws",
      bytes: enc(JSON.stringify({ schemaVersion: 1, name: "schema1/app", tag: "v1", architecture: "amd64", fsLayers: [], history: [], signatures: [] })),
    });
    const encrypted = JSON.parse(new TextDecoder().decode(good.manifests[0]!.bytes));
    encrypted.layers[0].mediaType = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";
    fake.manifests.set("encrypted/app:v1", { mediaType: MEDIA.ociManifest, bytes: enc(JSON.stringify(encrypted)) });
    d = await daemon({ registriesConf: insecureRegistry(fake.host) });
  }, 60_000);

  afterAll(async () => {
    await fake?.stop();
  });

  test("HTTP 500 for a manifest: retried, then UNAVAILABLE naming the registry", async () => {
    const err = await pullFails(d, `${fake.host}/down/app:v1`);
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain(fake.host);
    expect(err.details).toContain("500");
    expect(fake.count("GET", "/v2/down/app/manifests/v1")).toBe(3);
  }, 30_000);

  test("one 503 and then an answer: the retry succeeds", async () => {
    expect((await pull(d, `${fake.host}/flaky/app:v1`)).imageRef).toBe(idOf(good));
    expect(fake.count("GET", "/v2/flaky/app/manifests/v1")).toBe(2);
  }, 30_000);

  test("a layer blob with the wrong bytes: DATA_LOSS naming the digest, nothing stored", async () => {
    for (const [repo, img] of [["corrupt", corrupt], ["swapped", otherContent]] as const) {
      const err = await pullFails(d, `${fake.host}/${repo}/app:v1`);
      expect(err.code, repo).toBe(grpc.status.DATA_LOSS);
      expect(err.details).toContain(img.layers[0]!.digest);
    }
  });

  test("a bad top layer: no layer of the image is kept, and the error is the bad layer's", async () => {
    for (const [repo, img] of [["badtop-late", badTopLate], ["badtop-early", badTopEarly]] as const) {
      const err = await pullFails(d, `${fake.host}/${repo}/app:v1`);
      expect(err.code, repo).toBe(grpc.status.DATA_LOSS);
      expect(err.details, repo).toContain(img.layers[1]!.digest);
    }
  });

  test("an index without the host's platform: NOT_FOUND naming the platform and what there is", async () => {
    const err = await pullFails(d, `${fake.host}/foreign/app:v1`);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain(`linux/${hostArch()}`);
    expect(err.details).toContain("linux/s390x");
  });

  test("a Docker schema 1 manifest and an encrypted layer: UNIMPLEMENTED naming the media type", async () => {
    const s1 = await pullFails(d, `${fake.host}/schema1/app:v1`);
    expect(s1.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(s1.details).toContain("schema 1");
    const e = await pullFails(d, `${fake.host}/encrypted/app:v1`);
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(e.details).toContain("application/vnd.oci.image.layer.v1.tar+gzip+encrypted");
  });
});
