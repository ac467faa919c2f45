// Registry credentials, found as CRI-O finds them:
//   1. the PullImageRequest's AuthConfig (the kubelet's image pull secret), for every endpoint;
//   2. otherwise containers-auth.json(5) files: only `global_auth_file` when it is set (CRI-O
//      hands it to containers/image as the one auth file), else $REGISTRY_AUTH_FILE, then the
//      per-user runtime file (/run/containers/0/auth.json for root, or $XDG_RUNTIME_DIR's), then
//      $XDG_CONFIG_HOME/containers/auth.json, then Docker's config.json and legacy .dockercfg;
//      the first file with a matching entry wins;
//   3. credential helpers: a file's "credHelpers" entry for the registry, and registries.conf's
//      `credential-helpers` list (where "containers-auth.json" stands for step 2).
// Within a file the most specific key wins: "quay.io/ns/repo", then "quay.io/ns", then
// "quay.io", then keys written as URLs ("https://index.docker.io/v1/" is docker.io).
//
// Secrets never reach logs or error messages: Credentials redacts itself in toString, toJSON and
// inspection, and errors name files and keys, never values.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { inspect } from "node:util";
import * as path from "node:path";
import { FailedPreconditionError, InternalError, InvalidArgumentError } from "../errors.ts";
import { AUTH_FILE_HELPER } from "./registries-conf.ts";
import { repository, type ImageReference } from "./reference.ts";

const REDACTED = "<redacted>";

/** Credentials for one registry. Field values are secret; the object redacts itself. */
export class Credentials {
  declare readonly username?: string;
  declare readonly password?: string;
  declare readonly identityToken?: string;
  /** A bearer token to send as is, skipping the token exchange. */
  declare readonly registryToken?: string;
  /** Where they came from ("CRI AuthConfig", "/run/containers/0/auth.json (quay.io/ns)"); not secret. */
  readonly source: string;

  constructor(fields: { username?: string; password?: string; identityToken?: string; registryToken?: string }, source: string) {
    this.source = source;
    // Non-enumerable, so that spreading, Object.entries or a structured logger that walks own
    // properties does not copy them anywhere.
    for (const k of ["username", "password", "identityToken", "registryToken"] as const) {
      const v = fields[k];
      if (v !== undefined && v !== "") Object.defineProperty(this, k, { value: v, enumerable: false, writable: false });
    }
  }

  toString(): string {
    return `Credentials(${REDACTED} from ${this.source})`;
  }

  toJSON(): Record<string, string> {
    const out: Record<string, string> = { source: this.source };
    for (const k of ["username", "password", "identityToken", "registryToken"] as const) if (this[k] !== undefined) out[k] = REDACTED;
    return out;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** The CRI AuthConfig message, or anything shaped like it. */
export interface AuthConfigLike {
  username?: string;
  password?: string;
  /** base64("user:password") */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Decodes base64("user:password"); undefined when there is no colon (Docker skips such entries). */
function decodeAuth(b64: string): { username: string; password: string } | undefined {
  const trimmed = b64.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) throw new Error("not valid base64");
  const decoded = Buffer.from(trimmed, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  // Some writers pad the password with NULs.
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, "") };
}

/**
 * The credentials in a CRI AuthConfig, or undefined when it carries none. As CRI-O: `auth`
 * overrides username/password, and a username is what says "authenticate". We also honour the
 * identity and registry tokens (CRI-O ignores them; containerd uses them).
 */
export function credentialsFromAuthConfig(cri: AuthConfigLike | undefined): Credentials | undefined {
  if (!cri) return undefined;
  let username = cri.username ?? "";
  let password = cri.password ?? "";
  if (cri.auth) {
    let decoded: { username: string; password: string } | undefined;
    try {
      decoded = decodeAuth(cri.auth);
    } catch {
      throw new InvalidArgumentError("the auth field of the request's AuthConfig is not valid base64");
    }
    username = decoded?.username ?? "";
    password = decoded?.password ?? "";
  }
  const identityToken = cri.identityToken ?? "";
  const registryToken = cri.registryToken ?? "";
  if (username === "" && identityToken === "" && registryToken === "") return undefined;
  return new Credentials(
    { ...(username !== "" ? { username, password } : {}), identityToken, registryToken },
    "CRI AuthConfig",
  );
}

export interface AuthFilePath {
  readonly path: string;
  /** ~/.dockercfg: the whole file is the "auths" map, keyed by registry only. */
  readonly legacy: boolean;
}

export interface AuthLookupOptions {
  /** The request's AuthConfig. */
  cri?: AuthConfigLike;
  /** config.image.global_auth_file: when set, the only auth file. */
  authFile?: string;
  /** registries.conf credential-helpers (default ["containers-auth.json"]). */
  helpers?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  uid?: number;
  home?: string;
  /** File contents, undefined when missing. */
  readFile?: (p: string) => string | undefined;
  /** Runs docker-credential-<helper> get; undefined when it has nothing for the registry. */
  runHelper?: (helper: string, registry: string) => Promise<{ username: string; secret: string } | undefined>;
}

/** The auth files consulted, in order. */
export function authFilePaths(opts: AuthLookupOptions = {}): AuthFilePath[] {
  if (opts.authFile) return [{ path: opts.authFile, legacy: false }];
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const home = opts.home ?? env.HOME ?? "/root";
  const out: AuthFilePath[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push({ path: env.REGISTRY_AUTH_FILE, legacy: false });
  out.push({ path: env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, "containers/auth.json") : `/run/containers/${uid}/auth.json`, legacy: false });
  out.push({ path: path.join(env.XDG_CONFIG_HOME || path.join(home, ".config"), "containers/auth.json"), legacy: false });
  out.push({ path: env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, "config.json") : path.join(home, ".docker/config.json"), legacy: false });
  out.push({ path: path.join(home, ".dockercfg"), legacy: true });
  return out;
}

function readFileIfExists(p: string): string | undefined {
  try {
    return fs.readFileSync(p, "utf8");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** docker.io's several spellings, as auth files know them. */
function normalizeRegistry(registry: string): string {
  return registry === "docker.io" || registry === "registry-1.docker.io" ? "index.docker.io" : registry;
}

/** A key written as a URL ("https://quay.io/v1/") reduced to its host. */
function normalizeAuthFileKey(key: string, legacy: boolean): string {
  let stripped = key.replace(/^https?:\/\//, "");
  if (legacy || stripped !== key) stripped = stripped.split("/")[0] ?? stripped;
  return normalizeRegistry(stripped);
}

/** Keys to try, most specific first: quay.io/a/b, quay.io/a, quay.io. */
function lookupKeys(key: string, registry: string, legacy: boolean): string[] {
  if (legacy) return [registry];
  const out: string[] = [];
  for (let k = key; ; ) {
    out.push(k);
    const slash = k.lastIndexOf("/");
    if (slash < 0) break;
    k = k.slice(0, slash);
  }
  return out;
}

interface AuthFileEntry {
  auth?: unknown;
  identitytoken?: unknown;
}

interface ParsedAuthFile {
  auths: Record<string, AuthFileEntry>;
  credHelpers: Record<string, string>;
}

function parseAuthFile(text: string, file: AuthFilePath): ParsedAuthFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The parser's message may quote the text around the error, which can be a secret.
    throw new FailedPreconditionError(`reading auth file ${file.path}: not valid JSON`);
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(doc)) throw new FailedPreconditionError(`reading auth file ${file.path}: the top level must be a JSON object`);
  if (file.legacy) return { auths: doc as Record<string, AuthFileEntry>, credHelpers: {} };
  const auths = doc.auths === undefined || doc.auths === null ? {} : doc.auths;
  const helpers = doc.credHelpers === undefined || doc.credHelpers === null ? {} : doc.credHelpers;
  if (!isObj(auths)) throw new FailedPreconditionError(`reading auth file ${file.path}: "auths" must be an object`);
  if (!isObj(helpers)) throw new FailedPreconditionError(`reading auth file ${file.path}: "credHelpers" must be an object`);
  return { auths: auths as Record<string, AuthFileEntry>, credHelpers: helpers as Record<string, string> };
}

function decodeEntry(file: string, key: string, entry: AuthFileEntry): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) {
    throw new FailedPreconditionError(`reading auth file ${file}: entry ${JSON.stringify(key)} is not an object`);
  }
  const auth = typeof entry.auth === "string" ? entry.auth : "";
  let decoded: { username: string; password: string } | undefined;
  try {
    decoded = decodeAuth(auth);
  } catch {
    throw new FailedPreconditionError(`reading auth file ${file}: the "auth" field of entry ${JSON.stringify(key)} is not valid base64`);
  }
  // Docker leaves `"host": {}` behind when a credential helper holds the secret, and an entry
  // whose auth has no colon is skipped: both mean "nothing here", as for containers/image.
  if (!decoded) return undefined;
  const identityToken = typeof entry.identitytoken === "string" ? entry.identitytoken : "";
  return new Credentials({ ...decoded, identityToken }, `${file} (${key})`);
}

type HelperResult = { username: string; secret: string } | undefined;

function helperCredentials(helper: string, registry: string, r: HelperResult): Credentials | undefined {
  if (!r || (r.username === "" && r.secret === "")) return undefined;
  const where = `credential helper ${helper} (${registry})`;
  // Helpers return "<token>" as the user name for an identity token.
  if (r.username === "<token>") return new Credentials({ identityToken: r.secret }, where);
  return new Credentials({ username: r.username, password: r.secret }, where);
}

/** One auth file: its credHelpers entry for the registry, else the most specific auths key. */
async function findInFile(file: AuthFilePath, key: string, registry: string, opts: AuthLookupOptions): Promise<Credentials | undefined> {
  const text = (opts.readFile ?? readFileIfExists)(file.path);
  if (text === undefined) return undefined;
  const parsed = parseAuthFile(text, file);

  const helper = parsed.credHelpers[registry];
  if (typeof helper === "string" && helper !== "") {
    return helperCredentials(helper, registry, await (opts.runHelper ?? runCredentialHelper)(helper, registry));
  }
  for (const k of lookupKeys(key, registry, file.legacy)) {
    const entry = parsed.auths[k];
    if (entry !== undefined) return decodeEntry(file.path, k, entry);
  }
  const wanted = normalizeRegistry(registry);
  for (const [k, entry] of Object.entries(parsed.auths)) {
    if (normalizeAuthFileKey(k, file.legacy) === wanted) return decodeEntry(file.path, k, entry);
  }
  return undefined;
}

/**
 * Credentials for pulling `ref`, which must be the reference rewritten onto the endpoint being
 * contacted (a mirror has its own credentials), or undefined for an anonymous pull.
 */
export async function credentialsFor(ref: ImageReference, opts: AuthLookupOptions = {}): Promise<Credentials | undefined> {
  return credentialsForRepository(ref.domain, ref.path, opts);
}

/**
 * The same lookup keyed by registry host[:port] and repository path: the shape of the registry
 * client's credentials callback, so `(host, repo) => credentialsForRepository(host, repo, opts)`
 * can be handed to it directly.
 */
export async function credentialsForRepository(registryHost: string, repositoryPath: string, opts: AuthLookupOptions = {}): Promise<Credentials | undefined> {
  const fromCri = credentialsFromAuthConfig(opts.cri);
  if (fromCri) return fromCri;

  const key = repositoryPath ? `${registryHost}/${repositoryPath}` : registryHost;
  const helpers = opts.helpers && opts.helpers.length > 0 ? opts.helpers : [AUTH_FILE_HELPER];
  const failures: string[] = [];
  for (const helper of helpers) {
    try {
      if (helper === AUTH_FILE_HELPER) {
        for (const file of authFilePaths(opts)) {
          const found = await findInFile(file, key, registryHost, opts);
          if (found) return found;
        }
      } else {
        const found = helperCredentials(helper, registryHost, await (opts.runHelper ?? runCredentialHelper)(helper, registryHost));
        if (found) return found;
      }
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) {
    throw new FailedPreconditionError(`looking up credentials for ${key}: ${failures.join("; ")}`);
  }
  return undefined;
}

/**
 * `docker-credential-<helper> get` with the registry on stdin, per the docker-credential-helpers
 * protocol. "credentials not found" is not an error. The helper's output is never echoed into
 * errors: it may contain the secret.
 */
export async function runCredentialHelper(helper: string, registry: string): Promise<HelperResult> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) throw new InvalidArgumentError(`invalid credential helper name ${JSON.stringify(helper)}`);
  const program = `docker-credential-${helper}`;
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn([program, "get"], { stdin: new Blob([registry]), stdout: "pipe", stderr: "pipe" });
  } catch {
    throw new InternalError(`credential helper ${program} could not be run`);
  }
  const [out, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
  if (code !== 0) {
    if (/credentials not found/i.test(out)) return undefined;
    throw new InternalError(`credential helper ${program} failed for ${registry} (exit status ${code})`);
  }
  let doc: { Username?: unknown; Secret?: unknown };
  try {
    doc = JSON.parse(out) as typeof doc;
  } catch {
    throw new InternalError(`credential helper ${program} returned output that is not JSON`);
  }
  return { username: typeof doc.Username === "string" ? doc.Username : "", secret: typeof doc.Secret === "string" ? doc.Secret : "" };
}

/**
 * The per-pull auth file a credential provider (cri-o/crio-credential-provider) leaves for a
 * namespace: <namespaced_auth_dir>/<namespace>-<sha256 hex of domain/path>.json. The caller
 * checks for it and, as CRI-O does, uses it instead of global_auth_file for that one pull.
 */
export function namespacedAuthFilePath(dir: string, namespace: string, ref: ImageReference): string {
  if (namespace === "" || namespace.includes("/") || namespace === "." || namespace === "..") {
    throw new InvalidArgumentError(`invalid pod namespace ${JSON.stringify(namespace)} for a namespaced auth file`);
  }
  const hash = createHash("sha256").update(repository(ref)).digest("hex");
  return path.join(dir, `${namespace}-${hash}.json`);
}
