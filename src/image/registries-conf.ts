// containers-registries.conf(5), version 2, read and interpreted as containers/image's
// sysregistriesv2 and shortnames packages do, so that a node's registries.conf means the same to
// this daemon as to CRI-O, podman and skopeo:
//
//   - the main file, then every *.conf in the drop-in directory in lexical order (drop-ins must
//     use the v2 format). A later file replaces `unqualified-search-registries`,
//     `short-name-mode` and `credential-helpers` when it sets them, replaces whole [[registry]]
//     entries with the same prefix, and merges [aliases] key by key (an empty alias value
//     removes an earlier alias);
//   - the deprecated v1 format ([registries.search], [registries.insecure], [registries.block])
//     is converted to v2 in the main file; mixing v1 and v2 keys in one file is an error;
//   - a reference is matched against [[registry]] prefixes, longest prefix wins; "*.example.com"
//     matches any subdomain of example.com;
//   - pulls go to the mirrors in order (subject to mirror-by-digest-only and pull-from-mirror),
//     then to the primary location, each with the reference rewritten from prefix to location.
import * as path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { nodeFs, type ConfigFs } from "../config/fs.ts";
import { ConfigError, CrioError, FailedPreconditionError, GrpcCode, InvalidArgumentError } from "../errors.ts";
import {
  formatReference,
  isValidDomain,
  parseCanonicalReference,
  parseReference,
  preferDigest,
  repository,
  splitUserInput,
  withDefaultTag,
  type ImageReference,
} from "./reference.ts";

export const DEFAULT_REGISTRIES_CONF = "/etc/containers/registries.conf";
export const DEFAULT_REGISTRIES_CONF_DIR = "/etc/containers/registries.conf.d";
/** Where podman records short-name aliases for root; containers/image consults it first. */
export const DEFAULT_SHORT_NAME_ALIASES_CONF = "/var/cache/containers/short-name-aliases.conf";
/** The credential-helpers entry that means "read containers-auth.json files". */
export const AUTH_FILE_HELPER = "containers-auth.json";

export type ShortNameMode = "enforcing" | "permissive" | "disabled";
export type PullFromMirror = "all" | "digest-only" | "tag-only";

export interface Endpoint {
  /** host[:port][/namespace…]; empty only for a wildcard-prefix registry without a location. */
  readonly location: string;
  readonly insecure: boolean;
  /** Only on mirrors. */
  readonly pullFromMirror?: PullFromMirror;
  readonly proxy?: string;
}

export interface Registry extends Endpoint {
  /** What references this entry applies to; defaults to the location. */
  readonly prefix: string;
  readonly mirrors: readonly Endpoint[];
  readonly blocked: boolean;
  readonly mirrorByDigestOnly: boolean;
  /** The file that defined this entry. */
  readonly source: string;
}

export interface Alias {
  /** The fully-qualified repository, or null when a later file reset the alias with "". */
  readonly value: ImageReference | null;
  readonly source: string;
}

export interface RegistriesConf {
  /** Unique by prefix, sorted by prefix (as containers/image keeps them). */
  readonly registries: readonly Registry[];
  readonly unqualifiedSearchRegistries: readonly string[];
  /** The file that set unqualifiedSearchRegistries ("" when none did). */
  readonly unqualifiedSearchRegistriesSource: string;
  readonly shortNameMode: ShortNameMode;
  readonly credentialHelpers: readonly string[];
  /** [aliases] from registries.conf and its drop-ins. */
  readonly aliases: ReadonlyMap<string, Alias>;
  /** The machine-written short-name-aliases.conf, which takes precedence over `aliases`. */
  readonly userAliases: ReadonlyMap<string, Alias>;
  /** Every file read, in order, for messages. */
  readonly files: readonly string[];
  /** "main file, drop-in dir" as containers/image describes its configuration in errors. */
  readonly description: string;
}

export interface LoadRegistriesConfOptions {
  /** The main file (config.image.registries_conf). */
  path?: string;
  /** The drop-in directory (config.image.registries_conf_dir). */
  dir?: string;
  /** Fail when the main file is missing (the user named it explicitly). */
  required?: boolean;
  /** podman's machine-written alias file; "" to ignore it. */
  shortNameAliasesPath?: string;
  fs?: ConfigFs;
}

/** A file's contribution before merging; undefined means "not set in this file". */
interface FileConf {
  source: string;
  registries: Registry[];
  unqualifiedSearchRegistries?: string[];
  credentialHelpers?: string[];
  shortNameMode?: ShortNameMode;
  aliases: Map<string, Alias>;
}

export function loadRegistriesConf(opts: LoadRegistriesConfOptions = {}): RegistriesConf {
  const fsys = opts.fs ?? nodeFs;
  const mainPath = opts.path || DEFAULT_REGISTRIES_CONF;
  const dir = opts.dir ?? DEFAULT_REGISTRIES_CONF_DIR;
  const files: string[] = [];

  let merged: FileConf = { source: "", registries: [], aliases: new Map() };
  const mainText = fsys.readFileIfExists(mainPath);
  if (mainText === undefined) {
    if (opts.required) throw new ConfigError("file does not exist", { source: mainPath });
  } else {
    files.push(mainPath);
    merged = parseRegistriesConfFile(mainText, mainPath, { forceV2: false });
  }

  for (const file of dropInFiles(fsys, dir)) {
    const text = fsys.readFileIfExists(file);
    if (text === undefined) continue; // removed between listing and reading
    files.push(file);
    merged = mergeFileConf(merged, parseRegistriesConfFile(text, file, { forceV2: true }));
  }

  const userAliases = new Map<string, Alias>();
  const aliasesPath = opts.shortNameAliasesPath ?? DEFAULT_SHORT_NAME_ALIASES_CONF;
  if (aliasesPath) {
    const text = fsys.readFileIfExists(aliasesPath);
    if (text !== undefined) {
      const table = parseTomlFile(text, aliasesPath);
      for (const [k, v] of parseAliases(table.aliases, aliasesPath)) userAliases.set(k, v);
    }
  }

  return {
    registries: merged.registries,
    unqualifiedSearchRegistries: merged.unqualifiedSearchRegistries ?? [],
    unqualifiedSearchRegistriesSource: merged.unqualifiedSearchRegistries ? merged.source : "",
    shortNameMode: merged.shortNameMode ?? "permissive",
    credentialHelpers: merged.credentialHelpers && merged.credentialHelpers.length > 0 ? merged.credentialHelpers : [AUTH_FILE_HELPER],
    aliases: merged.aliases,
    userAliases,
    files,
    description: dir ? `${mainPath}, ${dir}` : mainPath,
  };
}

/** *.conf directly in `dir` (no recursion), lexical order, as containers/image reads them. */
function dropInFiles(fsys: ConfigFs, dir: string): string[] {
  if (!dir || fsys.kind(dir) !== "dir") return [];
  return fsys
    .readdir(dir)
    .filter((n) => n.endsWith(".conf"))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => path.join(dir, n))
    .filter((p) => fsys.kind(p) === "file");
}

// ---------------------------------------------------------------------------------------------
// One file

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function parseTomlFile(text: string, source: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0] ?? err.message;
      throw new ConfigError(`not valid TOML: ${first}`, { source, line: err.line });
    }
    throw err;
  }
}

function fail(source: string, key: string | undefined, message: string): never {
  throw new ConfigError(message, { source, ...(key !== undefined ? { key } : {}) });
}

function optString(t: Table, k: string, source: string, at: string): string | undefined {
  const v = t[k];
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(source, at + k, `must be a string, not ${describe(v)}`);
  return v;
}

function optBool(t: Table, k: string, source: string, at: string): boolean | undefined {
  const v = t[k];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") fail(source, at + k, `must be true or false, not ${describe(v)}`);
  return v;
}

function optStrings(t: Table, k: string, source: string, at: string): string[] | undefined {
  const v = t[k];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) fail(source, at + k, "must be an array of strings");
  return v as string[];
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  if (isTable(v)) return "a table";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Trims trailing slashes; a URL scheme is not a location. */
function parseLocation(input: string, source: string, key: string): string {
  const trimmed = input.replace(/\/+$/, "");
  if (/^https?:\/\//.test(trimmed)) fail(source, key, `invalid location ${JSON.stringify(input)}: URI schemes are not supported`);
  return trimmed;
}

function parseProxy(input: string | undefined, source: string, key: string): string | undefined {
  if (input === undefined || input === "") return undefined;
  let scheme: string;
  try {
    scheme = new URL(input).protocol.replace(/:$/, "");
  } catch {
    fail(source, key, `invalid proxy URL ${JSON.stringify(input)}`);
  }
  if (!["http", "https", "socks5", "socks5h"].includes(scheme)) {
    fail(source, key, `proxy URL scheme ${JSON.stringify(scheme)} is not supported; use http, https, socks5 or socks5h`);
  }
  return input;
}

const SHORT_NAME_MODES: readonly ShortNameMode[] = ["enforcing", "permissive", "disabled"];
const PULL_FROM_MIRROR: readonly PullFromMirror[] = ["all", "digest-only", "tag-only"];

/** Parses one file into its contribution. Exported for tests and `crio config` diagnostics. */
export function parseRegistriesConfFile(text: string, source: string, opts: { forceV2: boolean }): FileConf {
  const doc = parseTomlFile(text, source);

  // The v1 keys live under a top-level [registries] table.
  let v1: { search?: string[]; insecure?: string[]; block?: string[] } | undefined;
  if (doc.registries !== undefined) {
    if (!isTable(doc.registries)) fail(source, "registries", "must be a table ([registries.search] etc., the deprecated v1 format)");
    const found: { search?: string[]; insecure?: string[]; block?: string[] } = {};
    for (const k of ["search", "insecure", "block"] as const) {
      const sub = doc.registries[k];
      if (sub === undefined) continue;
      if (!isTable(sub)) fail(source, `registries.${k}`, "must be a table");
      const list = optStrings(sub, "registries", source, `registries.${k}.`);
      if (list !== undefined) found[k] = list;
    }
    if (Object.keys(found).length > 0) v1 = found;
  }

  const v2Set =
    doc.registry !== undefined ||
    doc["unqualified-search-registries"] !== undefined ||
    doc["credential-helpers"] !== undefined ||
    doc.aliases !== undefined ||
    (typeof doc["short-name-mode"] === "string" && doc["short-name-mode"] !== "") ||
    (typeof doc["additional-layer-store-auth-helper"] === "string" && doc["additional-layer-store-auth-helper"] !== "");

  if (v1) {
    if (opts.forceV2) fail(source, "registries", "drop-in files must use the v2 format, but this one uses the v1 [registries.*] tables");
    if (v2Set) fail(source, "registries", "mixing the v1 [registries.*] tables with v2 keys in one file is not supported");
    return convertV1(v1, source);
  }

  const out: FileConf = { source, registries: [], aliases: new Map() };

  const usr = optStrings(doc, "unqualified-search-registries", source, "");
  if (usr !== undefined) {
    out.unqualifiedSearchRegistries = usr.map((r, i) => {
      const loc = parseLocation(r, source, `unqualified-search-registries[${i}]`);
      if (!isValidDomain(loc)) {
        fail(source, `unqualified-search-registries[${i}]`, `${JSON.stringify(loc)} is not a host[:port] (no namespaces allowed)`);
      }
      return loc;
    });
  }

  const helpers = optStrings(doc, "credential-helpers", source, "");
  if (helpers !== undefined) out.credentialHelpers = helpers;

  const mode = optString(doc, "short-name-mode", source, "");
  if (mode !== undefined && mode !== "") {
    if (!SHORT_NAME_MODES.includes(mode as ShortNameMode)) {
      fail(source, "short-name-mode", `invalid short-name mode ${JSON.stringify(mode)}; use enforcing, permissive or disabled`);
    }
    out.shortNameMode = mode as ShortNameMode;
  }

  if (doc.registry !== undefined) {
    if (!Array.isArray(doc.registry) || doc.registry.some((r) => !isTable(r))) {
      fail(source, "registry", "must be an array of tables ([[registry]])");
    }
    out.registries = (doc.registry as Table[]).map((r, i) => parseRegistry(r, source, `registry[${i}].`));
  }
  out.registries = postProcessRegistries(out.registries, source);

  for (const [k, v] of parseAliases(doc.aliases, source)) out.aliases.set(k, v);
  return out;
}

function parseEndpoint(t: Table, source: string, at: string): Endpoint {
  const location = parseLocation(optString(t, "location", source, at) ?? "", source, `${at}location`);
  const insecure = optBool(t, "insecure", source, at) ?? false;
  const pfm = optString(t, "pull-from-mirror", source, at);
  const proxy = parseProxy(optString(t, "proxy", source, at), source, `${at}proxy`);
  if (pfm !== undefined && pfm !== "" && !PULL_FROM_MIRROR.includes(pfm as PullFromMirror)) {
    fail(source, `${at}pull-from-mirror`, `unsupported value ${JSON.stringify(pfm)}; use all, digest-only or tag-only`);
  }
  return {
    location,
    insecure,
    ...(pfm !== undefined && pfm !== "" ? { pullFromMirror: pfm as PullFromMirror } : {}),
    ...(proxy !== undefined ? { proxy } : {}),
  };
}

function parseRegistry(t: Table, source: string, at: string): Registry {
  const ep = parseEndpoint(t, source, at);
  const rawPrefix = optString(t, "prefix", source, at) ?? "";
  let prefix: string;
  if (rawPrefix === "") {
    if (ep.location === "") fail(source, at.slice(0, -1), "both location and prefix are unset");
    prefix = ep.location;
  } else {
    prefix = parseLocation(rawPrefix, source, `${at}prefix`);
    if (!prefix.startsWith("*.") && ep.location === "") {
      fail(source, `${at}location`, "location is unset and the prefix is not a wildcard of the form *.example.com");
    }
  }
  if (prefix.startsWith("*.") && /[/@:]/.test(prefix)) {
    fail(source, `${at}prefix`, `wildcard prefix ${JSON.stringify(prefix)} must be of the form *.example.com (no port, namespace or digest)`);
  }
  if (ep.pullFromMirror !== undefined) {
    fail(source, `${at}pull-from-mirror`, `pull-from-mirror must not be set for the primary registry ${JSON.stringify(prefix)}, only on its mirrors`);
  }
  const mirrorByDigestOnly = optBool(t, "mirror-by-digest-only", source, at) ?? false;
  const blocked = optBool(t, "blocked", source, at) ?? false;

  let mirrors: Endpoint[] = [];
  if (t.mirror !== undefined) {
    if (!Array.isArray(t.mirror) || t.mirror.some((m) => !isTable(m))) fail(source, `${at}mirror`, "must be an array of tables ([[registry.mirror]])");
    mirrors = (t.mirror as Table[]).map((m, j) => {
      const mat = `${at}mirror[${j}].`;
      const mir = parseEndpoint(m, source, mat);
      if (mir.location === "") fail(source, `${mat}location`, "mirror location is unset");
      if (mirrorByDigestOnly && mir.pullFromMirror !== undefined) {
        fail(
          source,
          `${mat}pull-from-mirror`,
          `cannot set mirror-by-digest-only for the registry ${JSON.stringify(prefix)} and pull-from-mirror ` +
            `for its mirror ${JSON.stringify(mir.location)} at the same time`,
        );
      }
      return mir;
    });
  }
  return { ...ep, prefix, mirrors, blocked, mirrorByDigestOnly, source };
}

/**
 * The per-file consistency checks of containers/image: entries for one location must agree on
 * insecure, blocked and proxy; then entries are made unique by prefix (the first wins, as it did
 * for matching) and sorted by prefix.
 */
function postProcessRegistries(regs: Registry[], source: string): Registry[] {
  const byLocation = new Map<string, Registry>();
  for (const r of regs) {
    const key = r.location === "" ? r.prefix : r.location;
    const other = byLocation.get(key);
    if (other === undefined) {
      byLocation.set(key, r);
      continue;
    }
    for (const field of ["insecure", "blocked", "proxy"] as const) {
      if (other[field] !== r[field]) {
        fail(source, "registry", `registry ${JSON.stringify(key)} is defined multiple times with conflicting ${JSON.stringify(field)} settings`);
      }
    }
  }
  const unique = new Map<string, Registry>();
  for (const r of regs) if (!unique.has(r.prefix)) unique.set(r.prefix, r);
  return [...unique.values()].sort(byPrefix);
}

function byPrefix(a: Registry, b: Registry): number {
  return a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0;
}

function convertV1(v1: { search?: string[]; insecure?: string[]; block?: string[] }, source: string): FileConf {
  const byLoc = new Map<string, { location: string; insecure: boolean; blocked: boolean }>();
  const get = (loc: string, key: string) => {
    const location = parseLocation(loc, source, key);
    let r = byLoc.get(location);
    if (!r) {
      r = { location, insecure: false, blocked: false };
      byLoc.set(location, r);
    }
    return r;
  };
  (v1.block ?? []).forEach((l, i) => (get(l, `registries.block.registries[${i}]`).blocked = true));
  (v1.insecure ?? []).forEach((l, i) => (get(l, `registries.insecure.registries[${i}]`).insecure = true));
  const registries: Registry[] = [...byLoc.values()].map((r) => ({ ...r, prefix: r.location, mirrors: [], mirrorByDigestOnly: false, source }));
  const out: FileConf = { source, registries: postProcessRegistries(registries, source), aliases: new Map() };
  if (v1.search !== undefined) {
    out.unqualifiedSearchRegistries = v1.search.map((r, i) => {
      const loc = parseLocation(r, source, `registries.search.registries[${i}]`);
      if (!isValidDomain(loc)) fail(source, `registries.search.registries[${i}]`, `${JSON.stringify(loc)} is not a host[:port]`);
      return loc;
    });
  }
  return out;
}

/**
 * [aliases]: short name → fully-qualified repository. Every bad entry is reported at once, as
 * containers/image does, so that fixing a file is not a game of whack-a-mole.
 */
function parseAliases(raw: unknown, source: string): Map<string, Alias> {
  const out = new Map<string, Alias>();
  if (raw === undefined) return out;
  if (!isTable(raw)) fail(source, "aliases", "must be a table");
  const problems: string[] = [];
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== "string") {
      problems.push(`${JSON.stringify(name)}: the value must be a string`);
      continue;
    }
    const nameProblem = aliasNameProblem(name);
    if (nameProblem) problems.push(nameProblem);
    if (value === "") {
      out.set(name, { value: null, source });
      continue;
    }
    const parsed = aliasValue(value);
    if (typeof parsed === "string") problems.push(parsed);
    else if (!nameProblem) out.set(name, { value: parsed, source });
  }
  if (problems.length > 0) fail(source, "aliases", problems.join("; "));
  return out;
}

function aliasNameProblem(name: string): string | undefined {
  try {
    const u = splitUserInput(name);
    if (u.digest !== undefined) return `invalid short name ${JSON.stringify(name)}: must not contain a digest`;
    if (u.tag !== undefined) return `invalid short name ${JSON.stringify(name)}: must not contain a tag`;
    if (!u.short) return `invalid short name ${JSON.stringify(name)}: must not contain a registry`;
    return undefined;
  } catch (err) {
    return `cannot parse short name ${JSON.stringify(name)}: ${(err as Error).message}`;
  }
}

function aliasValue(value: string): ImageReference | string {
  try {
    const u = splitUserInput(value);
    if (u.digest !== undefined) return `invalid alias ${JSON.stringify(value)}: must not contain a digest`;
    if (u.tag !== undefined) return `invalid alias ${JSON.stringify(value)}: must not contain a tag`;
    if (u.short) return `invalid alias ${JSON.stringify(value)}: must contain registry and repository`;
    return parseReference(value);
  } catch (err) {
    return `parsing alias ${JSON.stringify(value)}: ${(err as Error).message}`;
  }
}

function mergeFileConf(base: FileConf, update: FileConf): FileConf {
  const byPrefixMap = new Map<string, Registry>();
  for (const r of base.registries) byPrefixMap.set(r.prefix, r);
  for (const r of update.registries) byPrefixMap.set(r.prefix, r);
  const aliases = new Map(base.aliases);
  for (const [k, v] of update.aliases) aliases.set(k, v);
  const usr = update.unqualifiedSearchRegistries ?? base.unqualifiedSearchRegistries;
  const helpers = update.credentialHelpers ?? base.credentialHelpers;
  const mode = update.shortNameMode ?? base.shortNameMode;
  return {
    // `source` tracks where unqualified-search-registries came from.
    source: update.unqualifiedSearchRegistries !== undefined ? update.source : base.source,
    registries: [...byPrefixMap.values()].sort(byPrefix),
    ...(usr !== undefined ? { unqualifiedSearchRegistries: usr } : {}),
    ...(helpers !== undefined ? { credentialHelpers: helpers } : {}),
    ...(mode !== undefined ? { shortNameMode: mode } : {}),
    aliases,
  };
}

// ---------------------------------------------------------------------------------------------
// Matching and pull sources

/**
 * The length of `prefix` that `ref` (a registry, namespace, repository or full reference string)
 * matches, or -1. A prefix matches at a component boundary (':' '/' '@' or the end); "*.x.com"
 * matches "a.x.com" and "a.b.x.com" but not "x.com".
 */
function refMatchingPrefix(ref: string, prefix: string): number {
  if (prefix.startsWith("*.")) {
    const suffix = prefix.slice(1); // ".example.com"
    const idx = ref.indexOf(suffix);
    if (idx === -1 || ref.slice(0, idx).includes("/")) return -1;
    const end = idx + suffix.length;
    if (end === ref.length) return end;
    return ":/@".includes(ref[end] ?? "") ? end : -1;
  }
  if (ref.length < prefix.length) return -1;
  if (ref.length === prefix.length) return ref === prefix ? prefix.length : -1;
  if (!ref.startsWith(prefix)) return -1;
  // Like containers/image this lets "example.com:5000" match the prefix "example.com".
  return ":/@".includes(ref[prefix.length] ?? "") ? prefix.length : -1;
}

/** The [[registry]] entry with the longest matching prefix, or undefined. */
export function findRegistry(conf: RegistriesConf, ref: ImageReference | string): Registry | undefined {
  const name = typeof ref === "string" ? ref : repository(ref);
  let best: Registry | undefined;
  for (const r of conf.registries) {
    if (refMatchingPrefix(name, r.prefix) !== -1 && r.prefix.length > (best?.prefix.length ?? 0)) best = r;
  }
  return best;
}

export interface PullSource {
  /** host[:port][/path] of the endpoint, as in the rewritten reference. */
  readonly location: string;
  readonly insecure: boolean;
  readonly mirror: boolean;
  /** The reference rewritten onto this endpoint; look up credentials for this one. */
  readonly reference: ImageReference;
  readonly proxy?: string;
}

/**
 * A pull from a blocked registry. PERMISSION_DENIED rather than FAILED_PRECONDITION: the node's
 * administrator forbids this registry, the same kind of refusal as a signature policy "reject"
 * (which we also report as PERMISSION_DENIED); nothing about the daemon's state would make a
 * retry succeed, and the kubelet treats both the same (ErrImagePull with this message).
 */
export class BlockedRegistryError extends CrioError {
  readonly prefix: string;
  constructor(prefix: string, where: string) {
    super(GrpcCode.PERMISSION_DENIED, `registry ${prefix} is blocked in ${where}`);
    this.prefix = prefix;
  }
}

function rewriteReference(ref: ImageReference, reg: Registry, ep: Endpoint): ImageReference {
  const refString = formatReference(ref);
  const prefixLen = refMatchingPrefix(refString, reg.prefix);
  if (prefixLen === -1) throw new FailedPreconditionError(`invalid prefix ${JSON.stringify(reg.prefix)} for reference ${JSON.stringify(refString)}`);
  if (ep.location === "") return ref; // wildcard prefix without a location: pull from the host itself
  const rewritten = ep.location + refString.slice(prefixLen);
  try {
    return parseCanonicalReference(rewritten);
  } catch (err) {
    throw new FailedPreconditionError(
      `rewriting ${refString} for registry ${JSON.stringify(reg.prefix)} (${reg.source}) onto ` +
        `${JSON.stringify(ep.location)} gives an invalid reference: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Where to pull `ref` from, in order: the usable mirrors, then the primary location. Throws
 * BlockedRegistryError when the matching registry is blocked.
 */
export function pullSources(conf: RegistriesConf, ref: ImageReference): PullSource[] {
  const reg = findRegistry(conf, ref);
  if (!reg) return [{ location: ref.domain, insecure: false, mirror: false, reference: ref }];
  if (reg.blocked) throw new BlockedRegistryError(reg.prefix, conf.description);

  const digested = ref.digest !== undefined;
  const mirrors = reg.mirrors.filter((m) => {
    if (reg.mirrorByDigestOnly) return digested;
    if (m.pullFromMirror === "digest-only") return digested;
    if (m.pullFromMirror === "tag-only") return !digested;
    return true;
  });
  const out: PullSource[] = [];
  for (const ep of mirrors) out.push(source(ref, reg, ep, true));
  out.push(source(ref, reg, reg, false));
  return out;
}

function source(ref: ImageReference, reg: Registry, ep: Endpoint, mirror: boolean): PullSource {
  const reference = rewriteReference(ref, reg, ep);
  return {
    location: ep.location || reference.domain,
    insecure: ep.insecure,
    mirror,
    reference,
    ...(ep.proxy !== undefined ? { proxy: ep.proxy } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Short names

/**
 * CRI-O's short_name_mode mapped as CRI-O maps it onto containers/image: "disabled" disables the
 * ambiguity check, anything else (including "") enforces it.
 */
export function crioShortNameMode(configured: string): ShortNameMode {
  return configured === "disabled" ? "disabled" : "enforcing";
}

export interface ShortNameResolution {
  /** Fully-qualified references to try in order; tagged ":latest" when the input had neither tag nor digest. */
  readonly candidates: readonly ImageReference[];
  /** How the name was resolved. */
  readonly rationale: "fully-qualified" | "alias" | "search";
  /** The alias used, with the file that defined it. */
  readonly alias?: { readonly name: string; readonly value: ImageReference; readonly source: string };
  /** A line for the log (empty for a fully-qualified name), as containers/image prints it. */
  readonly description: string;
}

/** The user's tag and digest, to carry over onto an alias or search registry. */
function tagAndDigest(user: { tag?: string; digest?: string }): { tag?: string; digest?: string } {
  return { ...(user.tag !== undefined ? { tag: user.tag } : {}), ...(user.digest !== undefined ? { digest: user.digest } : {}) };
}

function candidate(ref: ImageReference): ImageReference {
  // CRI-O drops the tag of name:tag@digest and pulls by digest.
  return preferDigest(withDefaultTag(ref));
}

function lookupAlias(conf: RegistriesConf, name: string): Alias | undefined {
  return conf.userAliases.get(name) ?? conf.aliases.get(name);
}

/**
 * Resolves a possibly-short image name as containers/image's shortnames.Resolve does for a
 * caller without a terminal (a daemon):
 *   - a fully-qualified name (or "localhost/…") is the only candidate;
 *   - an alias (short-name-aliases.conf, then registries.conf [aliases]) is the only candidate,
 *     with the input's tag or digest;
 *   - otherwise each unqualified-search registry in order;
 *   - with more than one such candidate, mode "enforcing" refuses (it would have to prompt),
 *     "permissive" and "disabled" return them all.
 * `mode` overrides the files' short-name-mode (pass crioShortNameMode(config.image.short_name_mode)
 * to behave as CRI-O); undefined uses the files' mode.
 */
export function resolveShortName(conf: RegistriesConf, input: string, mode?: ShortNameMode): ShortNameResolution {
  const effective = mode ?? conf.shortNameMode;
  const user = splitUserInput(input);
  if (!user.short) {
    return { candidates: [candidate(parseReference(input))], rationale: "fully-qualified", description: "" };
  }
  const tagDigest = tagAndDigest(user);

  const alias = lookupAlias(conf, user.name);
  if (alias?.value) {
    const ref = candidate({ domain: alias.value.domain, path: alias.value.path, ...tagDigest });
    return {
      candidates: [ref],
      rationale: "alias",
      alias: { name: user.name, value: alias.value, source: alias.source },
      description: `Resolved ${JSON.stringify(user.name)} as an alias (${alias.source})`,
    };
  }

  const usr = conf.unqualifiedSearchRegistries;
  if (usr.length === 0) {
    const where = conf.unqualifiedSearchRegistriesSource
      ? `unqualified-search registries are defined in ${JSON.stringify(conf.unqualifiedSearchRegistriesSource)}`
      : `unqualified-search registries are defined in ${conf.description}`;
    throw new InvalidArgumentError(`short name ${JSON.stringify(input)} did not resolve to an alias and no ${where}; use a fully-qualified image name`);
  }
  const candidates = usr.map((reg) => candidate(parseReference(`${reg}/${input}`)));
  const description = `Resolving ${JSON.stringify(user.name)} using unqualified-search registries (${conf.unqualifiedSearchRegistriesSource})`;
  if (candidates.length > 1 && effective === "enforcing") {
    throw new InvalidArgumentError(
      `short name ${JSON.stringify(input)} is ambiguous: it could be ${candidates.map(formatReference).join(", ")} ` +
        `(unqualified-search-registries in ${conf.unqualifiedSearchRegistriesSource}) and short-name mode is enforcing; ` +
        `use a fully-qualified image name or define an alias in [aliases]`,
    );
  }
  return { candidates, rationale: "search", description };
}

/**
 * Names a possibly-short input may already be stored under, as containers/image's
 * ResolveLocally orders them: the alias, then "localhost/", then each unqualified-search
 * registry. For looking images up in local storage, never for pulling.
 */
export function localCandidates(conf: RegistriesConf, input: string): ImageReference[] {
  const user = splitUserInput(input);
  if (!user.short) return [withDefaultTag(parseReference(input))];
  const out: ImageReference[] = [];
  const alias = lookupAlias(conf, user.name);
  if (alias?.value) {
    out.push(withDefaultTag({ domain: alias.value.domain, path: alias.value.path, ...tagAndDigest(user) }));
  }
  for (const reg of ["localhost", ...conf.unqualifiedSearchRegistries]) out.push(withDefaultTag(parseReference(`${reg}/${input}`)));
  return out;
}
