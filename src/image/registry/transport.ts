// HTTP to one registry: scheme detection with the /v2/ ping, authentication from its
// challenges, bounded retries, and redirects. Follows containers/image's docker/docker_client.go:
// - ping GET /v2/ over HTTPS; 200 or 401 means a v2 registry, and the 401's WWW-Authenticate
//   challenges are used for every later request (detectPropertiesHelper, setupRequestAuth);
//   an `insecure` registry is pinged over HTTPS without verification, then over plain HTTP;
// - Bearer: a token from the realm for `repository:<name>:pull`, with basic credentials (GET) or
//   an identity token (POST grant_type=refresh_token, as getBearerTokenOAuth2), cached per scope
//   until it expires (at least 60 s); a registry token is sent as is; Basic: the credentials;
// - 429 is retried honouring Retry-After; here 5xx and connection failures are retried too.
// Redirects are followed by hand so the Authorization header never leaves the registry's origin
// (blob URLs redirect to storage that must not see the registry token), as Go's client does.
import { CrioError } from "../../errors.ts";
import { log } from "../../log.ts";
import { versionInfo } from "../../version.ts";
import { parseWwwAuthenticate, type Challenge } from "./challenge.ts";
import {
  RegistryResponseError,
  RegistryUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  abortError,
} from "./errors.ts";
import { SingleFlight, raceSignal, sleep } from "./flight.ts";
import { DEFAULT_CERTS_DIRS, loadRegistryTls, type RegistryTls } from "./tls.ts";
import type { Credentials, CredentialsProvider, Endpoint, RegistryClientOptions } from "./types.ts";

const DOCKER_HUB = "docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";
const MIN_TOKEN_LIFETIME_S = 60;
const TOKEN_EXPIRY_MARGIN_MS = 5_000;
const MAX_REDIRECTS = 10;
const MAX_TOKEN_BODY = 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface ParsedLocation {
  /** host[:port] as configured: the name for certs.d, credentials and messages. */
  host: string;
  /** host[:port] requests go to (registry-1.docker.io for docker.io). */
  apiHost: string;
  /** Path prefix without slashes, or "". */
  prefix: string;
}

export function parseLocation(location: string): ParsedLocation {
  const loc = location.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "");
  const slash = loc.indexOf("/");
  const host = (slash < 0 ? loc : loc.slice(0, slash)).toLowerCase();
  const prefix = slash < 0 ? "" : loc.slice(slash + 1);
  if (host === "" || /[\s@?#]/.test(host)) throw new RegistryResponseError(location, `invalid registry location ${JSON.stringify(location)}`);
  return { host, apiHost: host === DOCKER_HUB ? DOCKER_HUB_API : host, prefix };
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface RequestOptions {
  /** Full repository path on the registry (prefix included), for the auth scope. */
  repository: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** What this request is for, in error messages: "reading manifest x:y". */
  what: string;
}

/** Whether a thrown fetch error is worth another attempt (not a TLS or URL problem). */
export function isRetryableNetworkError(e: unknown): boolean {
  if (e instanceof CrioError) return false;
  const code = String((e as { code?: unknown })?.code ?? "");
  const msg = String((e as Error)?.message ?? "");
  if (/CERT|SELF_SIGNED|UNABLE_TO|TLS|EPROTO|ALTNAME|HOSTNAME|SSL|INVALID_URL/i.test(code)) return false;
  if (/certificate|TLS handshake|self[- ]signed/i.test(msg)) return false;
  return true;
}

function isTlsError(e: unknown): boolean {
  const code = String((e as { code?: unknown })?.code ?? "");
  const msg = String((e as Error)?.message ?? "");
  return /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME|SSL/i.test(code) || /certificate|self[- ]signed/i.test(msg);
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message.replace(/ For more information, pass `verbose: true`.*$/s, "");
  return String(e);
}

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  if (!Number.isNaN(t) && t > Date.now()) return t - Date.now();
  return undefined;
}

/** Reads at most `max` bytes of a body; more is an error naming `what`. */
export async function readCapped(res: Response, max: number, what: string, registry: string): Promise<Uint8Array> {
  const len = Number(res.headers.get("content-length") ?? NaN);
  if (!Number.isNaN(len) && len > max) {
    await res.body?.cancel();
    throw new RegistryResponseError(registry, `${what}: body of ${len} bytes exceeds the limit of ${max}`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel();
      throw new RegistryResponseError(registry, `${what}: body exceeds the limit of ${max} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

let userAgentCache: string | undefined;
function defaultUserAgent(): string {
  userAgentCache ??= `cri-o/${versionInfo().version} bun/${Bun.version} os/linux`;
  return userAgentCache;
}

/** One registry endpoint. Safe to share across pulls: tokens are cached per scope and per credentials. */
export class RegistryTransport {
  readonly endpoint: Endpoint;
  /** host[:port] as configured (docker.io stays docker.io). */
  readonly registry: string;
  readonly apiHost: string;
  readonly prefix: string;
  private readonly credentialsProvider: CredentialsProvider | undefined;
  private readonly certsDirs: string[];
  private readonly systemCaFile: string | undefined;
  private readonly userAgent: string;
  private readonly attempts: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly headerTimeoutMs: number;

  private tlsConfig: RegistryTls | undefined;
  private scheme: "https" | "http" | undefined;
  private challenges: Challenge[] = [];
  private readonly pingFlight = new SingleFlight<void>();
  private readonly tokenFlight = new SingleFlight<CachedToken>();
  private readonly tokens = new Map<string, CachedToken>();
  /** Every secret this transport has handled, scrubbed from any text it puts in an error. */
  private readonly secrets = new Set<string>();

  constructor(opts: RegistryClientOptions) {
    this.endpoint = opts.endpoint;
    const loc = parseLocation(opts.endpoint.location);
    this.registry = loc.host;
    this.apiHost = loc.apiHost;
    this.prefix = loc.prefix;
    this.credentialsProvider = opts.credentials;
    this.certsDirs = opts.certsDirs ?? DEFAULT_CERTS_DIRS;
    this.systemCaFile = opts.systemCaFile;
    this.userAgent = opts.userAgent ?? defaultUserAgent();
    this.attempts = Math.max(1, opts.retry?.attempts ?? 3);
    this.initialDelayMs = opts.retry?.initialDelayMs ?? 1000;
    this.maxDelayMs = opts.retry?.maxDelayMs ?? 30_000;
    this.headerTimeoutMs = opts.responseHeaderTimeoutMs ?? 60_000;
  }

  /** Bounded retry count, also used for resuming interrupted blob bodies. */
  get maxAttempts(): number {
    return this.attempts;
  }

  /** The full repository path on the registry: the location's prefix, then `repo`. */
  fullRepository(repo: string): string {
    return this.prefix ? `${this.prefix}/${repo}` : repo;
  }

  /** Replaces every known secret in `text` by "***". */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (s.length >= 4) out = out.split(s).join("***");
    return out;
  }

  private tls(): RegistryTls {
    this.tlsConfig ??= loadRegistryTls(this.registry, {
      certsDirs: this.certsDirs,
      insecure: this.endpoint.insecure,
      ...(this.systemCaFile !== undefined ? { systemCaFile: this.systemCaFile } : {}),
    });
    return this.tlsConfig;
  }

  private async credentials(repository: string): Promise<Credentials | undefined> {
    const c = await this.credentialsProvider?.(this.registry, repository);
    if (c) for (const s of [c.password, c.identityToken, c.registryToken]) if (s) this.remember(s);
    return c;
  }

  /** Adds a secret to scrub; the oldest are forgotten past a bound (a long-lived client renews tokens). */
  private remember(secret: string): void {
    this.secrets.delete(secret);
    this.secrets.add(secret);
    if (this.secrets.size > 256) this.secrets.delete(this.secrets.values().next().value!);
  }

  /** Detects the scheme and challenges once; a failed ping is tried again by the next request. */
  async ping(signal?: AbortSignal): Promise<void> {
    if (this.scheme !== undefined) return;
    await this.pingFlight.do("ping", () => this.doPing(), signal);
  }

  private async doPing(): Promise<void> {
    const what = `pinging container registry ${this.registry}`;
    const attempt = async (scheme: "https" | "http"): Promise<void> => {
      const url = `${scheme}://${this.apiHost}/v2/`;
      const res = await this.withRetries(what, undefined, () => this.send("GET", url, {}, undefined, undefined));
      log.debug("registry ping", { url, status: res.status });
      if (res.status !== 200 && res.status !== 401) throw await this.statusError(res, what, {});
      await res.body?.cancel();
      this.challenges = parseWwwAuthenticate(res.headers.get("www-authenticate"));
      this.scheme = scheme;
    };
    try {
      await attempt("https");
    } catch (httpsErr) {
      if (!this.endpoint.insecure) throw this.pingError(httpsErr);
      try {
        await attempt("http");
      } catch (httpErr) {
        throw new RegistryUnavailableError(
          this.registry,
          `${what}: https: ${this.describe(httpsErr)}; http: ${this.describe(httpErr)}`,
          { cause: httpErr },
        );
      }
    }
  }

  /** The ping failure, with a hint when TLS was the problem. */
  private pingError(e: unknown): Error {
    const netErr = e instanceof RegistryUnavailableError ? e.cause : e;
    if (e instanceof CrioError && !(e instanceof RegistryUnavailableError)) return e;
    let hint = "";
    if (String((netErr as { code?: unknown })?.code ?? "") === "EPROTO") {
      hint = " (if it serves plain HTTP, mark it insecure in registries.conf)";
    } else if (isTlsError(netErr)) {
      hint = ` (trust its CA in ${this.certsDirs[0] ?? DEFAULT_CERTS_DIRS[0]}/${this.registry}/ca.crt, or mark it insecure in registries.conf)`;
    }
    if (e instanceof RegistryUnavailableError) {
      return hint ? new RegistryUnavailableError(this.registry, e.message + hint, { cause: netErr }) : e;
    }
    return new RegistryUnavailableError(this.registry, `pinging container registry ${this.registry}: ${this.describe(e)}${hint}`, { cause: e });
  }

  private describe(e: unknown): string {
    return this.redact(errorText(e));
  }

  /**
   * An authenticated request to `pathOrUrl` (a path under the registry, or an absolute URL),
   * after the ping, with retries. Returns the final response whatever its status; callers map
   * statuses with `statusError`.
   */
  async request(method: string, pathOrUrl: string, opts: RequestOptions): Promise<Response> {
    await this.ping(opts.signal);
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.scheme}://${this.apiHost}${pathOrUrl}`;
    return this.withRetries(opts.what, opts.signal, () =>
      this.sendAuthenticated(method, url, opts.headers ?? {}, opts.repository, opts.signal),
    );
  }

  private async withRetries(what: string, signal: AbortSignal | undefined, once: () => Promise<Response>): Promise<Response> {
    let delay = this.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal, what);
      let res: Response;
      try {
        res = await once();
      } catch (e) {
        if (signal?.aborted) throw abortError(signal, what);
        if (e instanceof CrioError) throw e;
        if (attempt < this.attempts && isRetryableNetworkError(e)) {
          log.debug("registry request failed, retrying", { registry: this.registry, attempt, error: this.describe(e) });
          await sleep(delay, signal);
          delay = Math.min(delay * 2, this.maxDelayMs);
          continue;
        }
        throw new RegistryUnavailableError(this.registry, `${what}: ${this.describe(e)}`, { cause: e });
      }
      const retryable = res.status === 429 || (res.status >= 500 && res.status !== 501);
      if (retryable && attempt < this.attempts) {
        const wait = Math.min(retryAfterMs(res) ?? delay, this.maxDelayMs);
        await res.body?.cancel();
        log.debug("registry answered with a retryable status", { registry: this.registry, status: res.status, attempt, waitMs: wait });
        await sleep(wait, signal);
        delay = Math.min(delay * 2, this.maxDelayMs);
        continue;
      }
      return res;
    }
  }

  private async sendAuthenticated(
    method: string,
    url: string,
    headers: Record<string, string>,
    repository: string,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const scope = `repository:${repository}:pull`;
    const authz = await this.authorization(scope, repository, signal, false);
    const res = await this.send(method, url, headers, authz, signal);
    if (res.status !== 401) return res;
    // Unauthorized: the ping may not have challenged (some registries only challenge on the
    // repository), or a cached token was revoked. Take this response's challenge and try once more.
    const challenges = parseWwwAuthenticate(res.headers.get("www-authenticate"));
    if (challenges.some((c) => c.scheme === "bearer" || c.scheme === "basic")) this.challenges = challenges;
    for (const key of [...this.tokens.keys()]) if (key.includes(`\u0000${scope}\u0000`)) this.tokens.delete(key);
    const retryAuthz = await this.authorization(scope, repository, signal, true);
    if (retryAuthz === undefined || retryAuthz === authz) return res;
    await res.body?.cancel();
    return this.send(method, url, headers, retryAuthz, signal);
  }

  /** The Authorization header for `scope` from the challenges, or undefined for anonymous. */
  private async authorization(
    scope: string,
    repository: string,
    signal: AbortSignal | undefined,
    fresh: boolean,
  ): Promise<string | undefined> {
    for (const ch of this.challenges) {
      if (ch.scheme === "basic") {
        const c = await this.credentials(repository);
        if (c?.username === undefined || c.password === undefined) return undefined;
        const b64 = Buffer.from(`${c.username}:${c.password}`).toString("base64");
        this.remember(b64);
        return `Basic ${b64}`;
      }
      if (ch.scheme === "bearer") {
        const c = await this.credentials(repository);
        if (c?.registryToken) return `Bearer ${c.registryToken}`;
        const token = await this.bearerToken(ch, scope, repository, c, signal, fresh);
        return `Bearer ${token}`;
      }
    }
    if (this.challenges.length > 0) {
      log.debug("no supported challenge from the registry, trying anonymously", {
        registry: this.registry,
        schemes: this.challenges.map((c) => c.scheme).join(","),
      });
    }
    return undefined;
  }

  private async bearerToken(
    ch: Challenge,
    scope: string,
    repository: string,
    c: Credentials | undefined,
    signal: AbortSignal | undefined,
    fresh: boolean,
  ): Promise<string> {
    // The credentials are part of the key: a client shared by pulls with different pull secrets
    // must never hand one pull's token to another.
    const who = new Bun.CryptoHasher("sha256")
      .update(JSON.stringify([c?.username ?? "", c?.password ?? "", c?.identityToken ?? ""]))
      .digest("hex");
    const cacheKey = `${ch.params.realm ?? ""}\u0000${ch.params.service ?? ""}\u0000${scope}\u0000${who}`;
    const cached = this.tokens.get(cacheKey);
    if (!fresh && cached && cached.expiresAt - TOKEN_EXPIRY_MARGIN_MS > Date.now()) return cached.token;
    const t = await this.tokenFlight.do(cacheKey, () => this.fetchToken(ch, scope, repository, c), signal);
    this.tokens.set(cacheKey, t);
    return t.token;
  }

  private async fetchToken(ch: Challenge, scope: string, repository: string, c: Credentials | undefined): Promise<CachedToken> {
    const what = `requesting a bearer token for ${this.registry}/${repository}`;
    const realm = ch.params.realm;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? "");
      if (realmUrl.protocol !== "https:" && realmUrl.protocol !== "http:") throw new Error("not http(s)");
    } catch {
      throw new RegistryResponseError(this.registry, `${what}: the registry's bearer challenge has no usable realm`);
    }
    const service = ch.params.service;
    let res: Response;
    if (c?.identityToken) {
      // OAuth2 refresh-token grant (distribution's docs/spec/auth/oauth.md), as getBearerTokenOAuth2.
      const form = new URLSearchParams();
      if (service) form.set("service", service);
      form.append("scope", scope);
      form.set("grant_type", "refresh_token");
      form.set("refresh_token", c.identityToken);
      form.set("client_id", "containers/image");
      res = await this.withRetries(what, undefined, () =>
        this.send("POST", realmUrl.href, { "content-type": "application/x-www-form-urlencoded" }, undefined, undefined, form.toString()),
      );
    } else {
      const u = new URL(realmUrl.href);
      if (c?.username) u.searchParams.set("account", c.username);
      if (service) u.searchParams.set("service", service);
      u.searchParams.append("scope", scope);
      let authz: string | undefined;
      if (c?.username && c.password) {
        const b64 = Buffer.from(`${c.username}:${c.password}`).toString("base64");
        this.remember(b64);
        authz = `Basic ${b64}`;
      }
      res = await this.withRetries(what, undefined, () => this.send("GET", u.href, {}, authz, undefined));
    }
    if (res.status !== 200) {
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        const detail = c?.username || c?.identityToken ? "the credentials were refused" : "anonymous access was refused and no credentials are configured";
        throw new UnauthorizedError(this.registry, res.status, `${what}: token server ${realmUrl.origin} answered ${res.status}: ${detail}`);
      }
      throw await this.statusError(res, `${what} from ${realmUrl.origin}`, {});
    }
    const body = await readCapped(res, MAX_TOKEN_BODY, what, this.registry);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(new TextDecoder().decode(body)) as typeof doc;
    } catch {
      throw new RegistryResponseError(this.registry, `${what}: the token server's answer is not JSON`);
    }
    const token = typeof doc.token === "string" && doc.token !== "" ? doc.token : doc.access_token;
    if (typeof token !== "string" || token === "") {
      throw new RegistryResponseError(this.registry, `${what}: the token server's answer has no token`);
    }
    this.remember(token);
    const expiresIn = typeof doc.expires_in === "number" && doc.expires_in >= MIN_TOKEN_LIFETIME_S ? doc.expires_in : MIN_TOKEN_LIFETIME_S;
    const issued = typeof doc.issued_at === "string" ? Date.parse(doc.issued_at) : NaN;
    const issuedAt = Number.isNaN(issued) ? Date.now() : issued;
    log.debug("obtained a bearer token", { registry: this.registry, scope, expiresIn });
    return { token, expiresAt: issuedAt + expiresIn * 1000 };
  }

  /**
   * One HTTP exchange, following redirects by hand: Authorization goes only to the URL's own
   * origin. TLS settings are the registry's for every hop (as Go's one transport does).
   */
  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
    authz: string | undefined,
    signal: AbortSignal | undefined,
    body?: string,
  ): Promise<Response> {
    let cur = new URL(url);
    const origin = cur.origin;
    let m = method;
    let b = body;
    for (let hop = 0; ; hop++) {
      const h = new Headers(headers);
      h.set("user-agent", this.userAgent);
      h.set("docker-distribution-api-version", "registry/2.0");
      if (authz !== undefined && cur.origin === origin) h.set("authorization", authz);
      const init: BunFetchRequestInit = { method: m, headers: h, redirect: "manual" };
      // Bound the wait for the response head (Go's transports bound the TLS handshake and
      // dialing); the body has no such limit, only the caller's signal.
      const headTimeout = new AbortController();
      init.signal = signal ? AbortSignal.any([signal, headTimeout.signal]) : headTimeout.signal;
      if (b !== undefined) init.body = b;
      if (cur.protocol === "https:") {
        const t = this.tls();
        init.tls = { ca: t.ca, rejectUnauthorized: t.rejectUnauthorized };
        if (t.cert !== undefined && t.key !== undefined) {
          init.tls.cert = t.cert;
          init.tls.key = t.key;
        }
      }
      // Go's ProxyFromEnvironment never proxies loopback; Bun would.
      if (isLoopback(cur.hostname)) init.proxy = false;
      log.debug("registry request", { method: m, url: cur.href });
      const timer = setTimeout(() => headTimeout.abort(), this.headerTimeoutMs);
      let res: Response;
      try {
        res = await fetch(cur, init);
      } catch (e) {
        if (headTimeout.signal.aborted && !signal?.aborted) {
          throw Object.assign(new Error(`no response from ${cur.host} within ${this.headerTimeoutMs / 1000} s`), { code: "ETIMEDOUT" });
        }
        throw e;
      } finally {
        clearTimeout(timer);
      }
      const location = res.headers.get("location");
      if (!REDIRECT_STATUSES.has(res.status) || !location) return res;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new RegistryResponseError(this.registry, `${m} ${url}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, cur);
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw new RegistryResponseError(this.registry, `${m} ${url}: redirect to an unsupported URL scheme ${next.protocol}`);
      }
      if (res.status === 303 && m !== "GET" && m !== "HEAD") {
        m = "GET";
        b = undefined;
      }
      cur = next;
    }
  }

  /**
   * The typed error for an unsuccessful response (the body is consumed): 401/403 Unauthorized,
   * 429 TooManyRequests, 5xx RegistryUnavailable, else RegistryResponseError. The registry's
   * error codes and messages are included (redacted, shortened), never its `detail`.
   */
  async statusError(res: Response, what: string, opts: { repository?: string }): Promise<CrioError> {
    let detail = "";
    try {
      const text = new TextDecoder().decode(await readCapped(res, MAX_ERROR_BODY, what, this.registry));
      const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
      if (Array.isArray(doc.errors)) {
        detail = doc.errors
          .map((e) => [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "))
          .filter((s) => s !== "")
          .join("; ");
      }
    } catch {
      // Not a registry error document: the status says enough.
    }
    detail = this.redact(detail).slice(0, 300);
    const suffix = detail ? ` (${detail})` : "";
    const s = res.status;
    if (s === 401 || s === 403) {
      const why =
        s === 401
          ? opts.repository !== undefined && !(await this.hasCredentials(opts.repository))
            ? "authentication required and no credentials are configured"
            : "authentication failed"
          : "access denied";
      return new UnauthorizedError(this.registry, s, `${what}: ${why} by registry ${this.registry}: HTTP ${s}${suffix}`);
    }
    if (s === 429) return new TooManyRequestsError(this.registry, `${what}: registry ${this.registry} answered 429 Too Many Requests${suffix}`);
    if (s >= 500) return new RegistryUnavailableError(this.registry, `${what}: registry ${this.registry} answered HTTP ${s}${suffix}`, { status: s });
    return new RegistryResponseError(this.registry, `${what}: registry ${this.registry} answered HTTP ${s}${suffix}`, { status: s });
  }

  /** Whether the credentials callback gives anything for `repository` (for error wording). */
  async hasCredentials(repository: string): Promise<boolean> {
    const c = await this.credentials(repository);
    return !!(c && (c.username || c.identityToken || c.registryToken));
  }

  /** Waits for `p` unless `signal` fires (exported for the client's shared flights). */
  race<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
    return signal ? raceSignal(p, signal, what) : p;
  }
}
