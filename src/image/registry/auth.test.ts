// Authentication against fakes: Bearer challenges with a token server (anonymous, basic
// credentials, refresh tokens, registry tokens), token caching and sharing, Basic auth, the
// error codes of refusals, and that no secret ever shows in an error or a log line.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { GrpcCode } from "../../errors.ts";
import { configureLogging } from "../../log.ts";
import { makeRandomImage } from "../../../test/lib/push.ts";
import { startFakeRegistry, type FakeRegistry } from "../../../test/lib/registry.ts";
import { RegistryClient } from "./client.ts";
import { UnauthorizedError } from "./errors.ts";
import type { Credentials, RegistryClientOptions } from "./types.ts";

const REPO = "test/private";
const USER = "alice";
const PASSWORD = "s3cret-Pa55word-xyz";
const REFRESH = "refresh-token-0123456789";
const image = makeRandomImage({ tag: "v1", layerSizes: [1000, 2000, 3000] });

interface TokenRequest {
  method: string;
  params: URLSearchParams;
  authorization: string | null;
}

/**
 * A token server and a registry that accepts only its tokens (for `REPO`, pull). Tokens are
 * `tok-N`; `expiresIn`/`issuedAt` shape the answer; `revoke` makes the registry refuse a token.
 */
function bearerSetup(opts: { expiresIn?: number; issuedAt?: string; field?: "token" | "access_token"; denyRepo?: string } = {}) {
  const tokenRequests: TokenRequest[] = [];
  const valid = new Set<string>();
  let n = 0;
  const tokenServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const params = req.method === "POST" ? new URLSearchParams(await req.text()) : url.searchParams;
      tokenRequests.push({ method: req.method, params, authorization: req.headers.get("authorization") });
      const basic = req.headers.get("authorization");
      if (basic && basic !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`) {
        return Response.json({ details: "incorrect username or password" }, { status: 401 });
      }
      if (req.method === "POST" && params.get("refresh_token") !== REFRESH) return Response.json({ error: "invalid_grant" }, { status: 401 });
      const token = `tok-${++n}`;
      valid.add(token);
      const body: Record<string, unknown> = { [opts.field ?? "token"]: token };
      if (opts.expiresIn !== undefined) body.expires_in = opts.expiresIn;
      if (opts.issuedAt !== undefined) body.issued_at = opts.issuedAt;
      return Response.json(body);
    },
  });
  const challenge = `Bearer realm="http://127.0.0.1:${tokenServer.port}/token",service="fake-registry"`;
  const reg = startFakeRegistry({
    handler(req, url) {
      const auth = req.headers.get("authorization");
      const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
      if (url.pathname === "/v2/") return token && valid.has(token) ? Response.json({}) : new Response(null, { status: 401, headers: { "www-authenticate": challenge } });
      if (!token || !valid.has(token)) {
        return Response.json(
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          { status: 401, headers: { "www-authenticate": `${challenge},scope="repository:${REPO}:pull"` } },
        );
      }
      if (opts.denyRepo && url.pathname.startsWith(`/v2/${opts.denyRepo}/`)) {
        return Response.json({ errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] }, { status: 403 });
      }
      return undefined;
    },
  });
  reg.add(REPO, image);
  return {
    reg,
    tokenRequests,
    valid,
    stop: async () => {
      await reg.stop();
      await tokenServer.stop(true);
    },
  };
}

function client(reg: FakeRegistry, credentials?: Credentials | (() => Credentials | undefined), extra: Partial<RegistryClientOptions> = {}) {
  return new RegistryClient({
    endpoint: { location: reg.host, insecure: true },
    certsDirs: [],
    retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
    ...(credentials ? { credentials: typeof credentials === "function" ? credentials : () => credentials } : {}),
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: number }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: number };
  }
  throw new Error("expected a rejection");
}

/** Every way an error could carry a secret: message, stack, cause chain, own fields. */
function errorText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    if (cur instanceof Error) {
      parts.push(cur.message, cur.stack ?? "", String(cur));
      try {
        parts.push(JSON.stringify(cur));
      } catch {
        // circular: the rest covers it
      }
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      cur = undefined;
    }
  }
  return parts.join("\n");
}

const SECRETS = [PASSWORD, REFRESH, Buffer.from(`${USER}:${PASSWORD}`).toString("base64"), "registry-token-abcdef"];

describe("bearer challenges", () => {
  let s: ReturnType<typeof bearerSetup>;
  beforeAll(() => {
    s = bearerSetup({ expiresIn: 300 });
  });
  afterAll(() => s.stop());

  test("anonymous: a token for repository:<name>:pull from the realm, with the service", async () => {
    const before = s.tokenRequests.length;
    const r = await client(s.reg).resolveImage(REPO, "v1");
    expect(r.manifestDigest).toBe(image.images[0]!.manifestDigest);
    const t = s.tokenRequests[before]!;
    expect(t.method).toBe("GET");
    expect(t.params.get("service")).toBe("fake-registry");
    expect(t.params.getAll("scope")).toEqual([`repository:${REPO}:pull`]);
    expect(t.params.get("account")).toBeNull();
    expect(t.authorization).toBeNull();
  });

  test("with credentials: basic auth and account at the token endpoint", async () => {
    const before = s.tokenRequests.length;
    await client(s.reg, { username: USER, password: PASSWORD }).getManifest(REPO, "v1");
    const t = s.tokenRequests[before]!;
    expect(t.params.get("account")).toBe(USER);
    expect(t.authorization).toBe(`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`);
  });

  test("the token is cached per scope: a whole pull asks once, concurrent requests share one fetch", async () => {
    const c = client(s.reg, { username: USER, password: PASSWORD });
    const before = s.tokenRequests.length;
    const r = await c.resolveImage(REPO, "v1");
    await Promise.all(r.layers.map((l) => c.fetchBlobBytes(REPO, l)));
    await c.fetchBlobBytes(REPO, r.config);
    expect(s.tokenRequests.length - before).toBe(1);

    // Cold cache, five requests at once: one token request.
    const cold = client(s.reg, { username: USER, password: PASSWORD });
    await cold.ping();
    const mid = s.tokenRequests.length;
    await Promise.all(r.layers.concat(r.layers).map((l) => cold.fetchBlobBytes(REPO, l)));
    expect(s.tokenRequests.length - mid).toBe(1);
  });

  test("tokens are not shared between different credentials on one client", async () => {
    let creds: Credentials | undefined = { username: USER, password: PASSWORD };
    const c = client(s.reg, () => creds);
    const before = s.tokenRequests.length;
    await c.getManifest(REPO, "v1");
    creds = undefined;
    await c.getManifest(REPO, "v1");
    expect(s.tokenRequests.length - before).toBe(2);
    expect(s.tokenRequests.at(-1)!.authorization).toBeNull();
  });

  test("a revoked token is replaced once, transparently", async () => {
    const c = client(s.reg);
    await c.getManifest(REPO, "v1");
    s.valid.clear();
    const before = s.tokenRequests.length;
    expect((await c.getManifest(REPO, "v1")).digest).toBe(image.images[0]!.manifestDigest);
    expect(s.tokenRequests.length - before).toBe(1);
  });

  test("identity token: OAuth2 refresh_token grant by POST", async () => {
    const before = s.tokenRequests.length;
    await client(s.reg, { identityToken: REFRESH }).getManifest(REPO, "v1");
    const t = s.tokenRequests[before]!;
    expect(t.method).toBe("POST");
    expect(t.params.get("grant_type")).toBe("refresh_token");
    expect(t.params.get("refresh_token")).toBe(REFRESH);
    expect(t.params.get("service")).toBe("fake-registry");
    expect(t.params.getAll("scope")).toEqual([`repository:${REPO}:pull`]);
    expect(t.params.get("client_id")).toBe("containers/image");
  });

  test("a registry token is sent as is, with no token request", async () => {
    s.valid.add("registry-token-abcdef");
    const before = s.tokenRequests.length;
    await client(s.reg, { registryToken: "registry-token-abcdef" }).getManifest(REPO, "v1");
    expect(s.tokenRequests.length).toBe(before);
    expect(s.reg.requests.at(-1)!.headers.get("authorization")).toBe("Bearer registry-token-abcdef");
  });

  test("refused credentials → UNAUTHENTICATED naming the registry, without the secrets", async () => {
    for (const creds of [{ username: USER, password: "wrong-password-123" }, { identityToken: "bad-refresh-token" }]) {
      const e = await rejection(client(s.reg, creds).getManifest(REPO, "v1"));
      expect(e).toBeInstanceOf(UnauthorizedError);
      expect(e.code).toBe(GrpcCode.UNAUTHENTICATED);
      expect(e.message).toContain(s.reg.host);
      expect(e.message).toContain("credentials were refused");
      for (const secret of ["wrong-password-123", "bad-refresh-token", Buffer.from(`${USER}:wrong-password-123`).toString("base64")]) {
        expect(errorText(e)).not.toContain(secret);
      }
    }
  });
});

describe("challenges only on the repository", () => {
  test("a /v2/ that answers 200 and a repository that answers 401 Bearer: the token is fetched then", async () => {
    const s = bearerSetup({ expiresIn: 300 });
    const open = startFakeRegistry({
      async handler(req, url) {
        if (url.pathname === "/v2/") return Response.json({});
        // Everything else goes by the bearer registry's rules.
        const res = await fetch(`${s.reg.url}${url.pathname}`, { headers: req.headers, proxy: false });
        return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
      },
    });
    try {
      const c = client(open, { username: USER, password: PASSWORD });
      expect((await c.getManifest(REPO, "v1")).digest).toBe(image.images[0]!.manifestDigest);
      expect(s.tokenRequests).toHaveLength(1);
      const before = open.requests.length;
      expect((await c.getManifest(REPO, "v1")).digest).toBe(image.images[0]!.manifestDigest);
      expect(s.tokenRequests).toHaveLength(1);
      expect(open.requests.length - before).toBe(1); // the challenge is remembered: auth sent up front
    } finally {
      await open.stop();
      await s.stop();
    }
  });
});

describe("token lifetimes", () => {
  test("an expired token is fetched again; access_token is accepted", async () => {
    // issued an hour ago, valid 60 s: always expired.
    const s = bearerSetup({ expiresIn: 60, issuedAt: new Date(Date.now() - 3600_000).toISOString(), field: "access_token" });
    try {
      const c = client(s.reg);
      await c.getManifest(REPO, "v1");
      const after1 = s.tokenRequests.length;
      await c.getManifest(REPO, "v1");
      expect(s.tokenRequests.length).toBe(after1 + 1);
    } finally {
      await s.stop();
    }
  });

  test("a token without expires_in is kept at least 60 s", async () => {
    const s = bearerSetup({});
    try {
      const c = client(s.reg);
      await c.getManifest(REPO, "v1");
      await c.getManifest(REPO, "v1");
      expect(s.tokenRequests.length).toBe(1);
    } finally {
      await s.stop();
    }
  });

  test("403 → PERMISSION_DENIED", async () => {
    const s = bearerSetup({ denyRepo: REPO });
    try {
      const e = await rejection(client(s.reg, { username: USER, password: PASSWORD }).getManifest(REPO, "v1"));
      expect(e).toBeInstanceOf(UnauthorizedError);
      expect(e.code).toBe(GrpcCode.PERMISSION_DENIED);
      expect(e.message).toContain("access denied");
      expect(e.message).toContain("DENIED: requested access to the resource is denied");
    } finally {
      await s.stop();
    }
  });
});

describe("basic challenges", () => {
  let reg: FakeRegistry;
  const good = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
  beforeAll(() => {
    reg = startFakeRegistry({
      handler(req) {
        if (req.headers.get("authorization") === good) return undefined;
        // A careless registry that echoes what it got: the client must scrub it.
        return Response.json(
          { errors: [{ code: "UNAUTHORIZED", message: `bad authorization ${req.headers.get("authorization")} for ${PASSWORD}` }] },
          { status: 401, headers: { "www-authenticate": 'Basic realm="fake"' } },
        );
      },
    });
    reg.add(REPO, image);
  });
  afterAll(() => reg.stop());

  test("the credentials go in every request", async () => {
    const r = await client(reg, { username: USER, password: PASSWORD }).resolveImage(REPO, "v1");
    expect(r.manifestDigest).toBe(image.images[0]!.manifestDigest);
    expect(reg.requests.at(-1)!.headers.get("authorization")).toBe(good);
  });

  test("no credentials → UNAUTHENTICATED saying none are configured", async () => {
    const e = await rejection(client(reg).getManifest(REPO, "v1"));
    expect(e).toBeInstanceOf(UnauthorizedError);
    expect(e.code).toBe(GrpcCode.UNAUTHENTICATED);
    expect(e.message).toContain("no credentials are configured");
    expect(e.message).toContain(reg.host);
  });

  test("wrong credentials → UNAUTHENTICATED; an echoing registry's text is scrubbed", async () => {
    const e = await rejection(client(reg, { username: USER, password: "wrong-password-123" }).getManifest(REPO, "v1"));
    expect(e.code).toBe(GrpcCode.UNAUTHENTICATED);
    expect(e.message).toContain("authentication failed");
    const text = errorText(e);
    expect(text).toContain("***");
    for (const secret of ["wrong-password-123", Buffer.from(`${USER}:wrong-password-123`).toString("base64")]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe("secrets in logs", () => {
  const lines: string[] = [];
  afterEach(() => configureLogging({ level: "info", write: (l) => process.stderr.write(l + "\n") }));

  test("trace-level logs of a full authenticated pull carry no secret", async () => {
    configureLogging({ level: "trace", write: (l) => lines.push(l) });
    const s = bearerSetup({ expiresIn: 300 });
    try {
      s.valid.add("registry-token-abcdef");
      for (const creds of [{ username: USER, password: PASSWORD }, { identityToken: REFRESH }, { registryToken: "registry-token-abcdef" }]) {
        const c = client(s.reg, creds);
        const r = await c.resolveImage(REPO, "v1");
        for (const l of r.layers) await c.fetchBlobBytes(REPO, l);
      }
      await rejection(client(s.reg, { username: USER, password: "wrong-password-123" }).getManifest(REPO, "v1"));
    } finally {
      await s.stop();
    }
    expect(lines.some((l) => l.includes("registry request"))).toBe(true);
    const all = lines.join("\n");
    for (const secret of [...SECRETS, "wrong-password-123", "tok-"]) {
      expect(all).not.toContain(secret);
    }
  });
});
