// Image references in the docker grammar (distribution/reference), normalised the way
// containers/image does it, so that a name means here exactly what it means to CRI-O, podman and
// skopeo on the same node:
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component ( "/" path-component )*
//   domain     := host [ ":" port ]                    host: DNS name or [IPv6]
//   path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex                     sha256/sha384/sha512, lowercase hex
//
// Normalisation: the first path component is a domain only when it contains "." or ":", or is
// "localhost" (or has an uppercase letter, which a path component cannot); otherwise the domain
// is docker.io. "index.docker.io" is the legacy spelling of docker.io, and a one-component
// repository on docker.io lives under "library/".
import { InvalidArgumentError } from "../errors.ts";

export const DEFAULT_DOMAIN = "docker.io";
export const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
export const OFFICIAL_REPO_PREFIX = "library/";
export const DEFAULT_TAG = "latest";
/** distribution/reference's NameTotalLengthMax, counted on the normalised domain/path. */
export const NAME_TOTAL_LENGTH_MAX = 255;

/** A normalised, fully-qualified image reference. `path` never starts with the domain. */
export interface ImageReference {
  readonly domain: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const NAME = `(?:${DOMAIN}/)?${REMOTE_NAME}`;

const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const ANCHORED_TAG_RE = new RegExp(`^${TAG}$`);
const ANCHORED_NAME_RE = new RegExp(`^${NAME}$`);
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

/** Hex lengths of the digest algorithms go-digest registers by default. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference ${JSON.stringify(input)}: ${why}`);
}

/** Checks `algorithm:hex`; returns the reason it is invalid, or undefined. */
export function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(":");
  if (colon <= 0) return `digest ${JSON.stringify(digest)} is not of the form algorithm:hex`;
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) return `unsupported digest algorithm ${JSON.stringify(algorithm)}`;
  if (!/^[a-f0-9]*$/.test(hex)) return `digest ${JSON.stringify(digest)} must be lowercase hexadecimal`;
  if (hex.length !== want) return `${algorithm} digest must have ${want} hex characters, not ${hex.length}`;
  return undefined;
}

export function isValidDigest(digest: string): boolean {
  return digestProblem(digest) === undefined;
}

/** The reference as written: its name part (possibly without a domain), tag and digest. */
interface RawReference {
  name: string;
  tag?: string;
  digest?: string;
}

function parseRaw(input: string): RawReference {
  if (input === "") throw invalid(input, "empty reference");
  const m = REFERENCE_RE.exec(input);
  if (!m) {
    if (REFERENCE_RE.test(input.toLowerCase())) throw invalid(input, "repository name must be lowercase");
    const at = input.indexOf("@");
    if (at >= 0 && !new RegExp(`^${DIGEST}$`).test(input.slice(at + 1))) {
      throw invalid(input, "the digest is not of the form algorithm:hex (at least 32 hex characters)");
    }
    const colon = input.lastIndexOf(":");
    const tag = colon > input.lastIndexOf("/") ? input.slice(colon + 1, at >= 0 ? at : undefined) : undefined;
    if (tag !== undefined && tag.length > 128) throw invalid(input, "tag is longer than 128 characters");
    if (tag !== undefined && !ANCHORED_TAG_RE.test(tag) && !tag.includes("/")) {
      throw invalid(input, `tag ${JSON.stringify(tag)} has characters outside [A-Za-z0-9_.-] or starts with "." or "-"`);
    }
    throw invalid(input, "not a valid reference (name[:tag][@digest], lowercase repository path)");
  }
  const [, name = "", tag, digest] = m;
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) throw invalid(input, problem);
  }
  return { name, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * The domain named by the first component of `name`, or undefined when there is none (a short
 * name such as "busybox" or "library/busybox").
 */
function explicitDomain(name: string): string | undefined {
  const slash = name.indexOf("/");
  if (slash < 0) return undefined;
  const first = name.slice(0, slash);
  const isDomain = first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first;
  return isDomain ? first : undefined;
}

/** splitDockerDomain: the normalised domain and path of a name. */
function splitDomain(name: string): { domain: string; path: string } {
  let domain = explicitDomain(name);
  let path = domain === undefined ? name : name.slice(domain.length + 1);
  if (domain === undefined || domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_REPO_PREFIX + path;
  return { domain, path };
}

/**
 * Parses and normalises a reference: `busybox` → docker.io/library/busybox (no tag is added;
 * see withDefaultTag). Throws InvalidArgumentError naming the input and the problem.
 */
export function parseReference(input: string): ImageReference {
  if (IMAGE_ID_RE.test(input)) {
    throw invalid(input, "a 64-character hexadecimal string is an image ID, not a repository name");
  }
  const raw = parseRaw(input);
  const { domain, path } = splitDomain(raw.name);
  if (!ANCHORED_DOMAIN_RE.test(domain)) throw invalid(input, `invalid domain ${JSON.stringify(domain)}`);
  if (path.toLowerCase() !== path) throw invalid(input, `repository path ${JSON.stringify(path)} must be lowercase`);
  if (!new RegExp(`^${REMOTE_NAME}$`).test(path)) throw invalid(input, `invalid repository path ${JSON.stringify(path)}`);
  if (domain.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  return { domain, path, ...(raw.tag !== undefined ? { tag: raw.tag } : {}), ...(raw.digest !== undefined ? { digest: raw.digest } : {}) };
}

/**
 * Parses a reference that must already be in canonical form (explicit domain, docker.io paths
 * with "library/"), as containers/image's ParseNamed does for rewritten references and identity
 * remapping. "busybox" or "docker.io/busybox" are rejected here.
 */
export function parseCanonicalReference(input: string): ImageReference {
  const ref = parseReference(input);
  if (formatReference(ref) !== input) {
    throw invalid(input, `not in canonical form (expected ${JSON.stringify(formatReference(ref))})`);
  }
  return ref;
}

/** domain/path[:tag][@digest] */
export function formatReference(ref: ImageReference): string {
  return `${repository(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** domain/path: what containers/image calls the reference's Name(). */
export function repository(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The repository as users write it: docker.io and its library/ namespace elided. */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repository(ref);
  const rest = ref.path;
  if (rest.startsWith(OFFICIAL_REPO_PREFIX) && !rest.slice(OFFICIAL_REPO_PREFIX.length).includes("/")) {
    return rest.slice(OFFICIAL_REPO_PREFIX.length);
  }
  return rest;
}

/** familiarName with the tag and digest. */
export function familiarString(ref: ImageReference): string {
  return `${familiarName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** The reference with ":latest" when it has neither a tag nor a digest (TagNameOnly). */
export function withDefaultTag(ref: ImageReference): ImageReference {
  if (ref.tag !== undefined || ref.digest !== undefined) return ref;
  return { ...ref, tag: DEFAULT_TAG };
}

/** The repository alone, without tag or digest (TrimNamed). */
export function withoutTagOrDigest(ref: ImageReference): ImageReference {
  return { domain: ref.domain, path: ref.path };
}

/**
 * CRI-O pulls `name:tag@digest` by digest only: containers/image rejects references carrying
 * both, and the digest is the stronger statement of what the user wants.
 */
export function preferDigest(ref: ImageReference): ImageReference {
  if (ref.tag === undefined || ref.digest === undefined) return ref;
  return { domain: ref.domain, path: ref.path, digest: ref.digest };
}

/**
 * Whether the user gave no registry: "busybox", "library/busybox:1", "ns/img@sha256:…" are short;
 * "quay.io/x", "localhost/x", "host:5000/x" are not. Unparseable input is not a short name.
 */
export function isShortName(input: string): boolean {
  try {
    return explicitDomain(parseRaw(input).name) === undefined;
  } catch {
    return false;
  }
}

/**
 * The parts of a possibly-short reference as written, for short-name resolution: the name
 * without tag/digest ("busybox", "library/busybox"), whether it has an explicit domain, and the
 * tag and digest. Throws InvalidArgumentError on invalid input.
 */
export function splitUserInput(input: string): { name: string; short: boolean; tag?: string; digest?: string } {
  if (IMAGE_ID_RE.test(input)) {
    throw invalid(input, "a 64-character hexadecimal string is an image ID, not a repository name");
  }
  const raw = parseRaw(input);
  return { ...raw, short: explicitDomain(raw.name) === undefined };
}

/** A full 64-hex image ID (resolving unique prefixes is the store's job). */
export function isImageId(s: string): boolean {
  return IMAGE_ID_RE.test(s);
}

/** Whether `s` matches the name grammar (domain optional), without normalising it. */
export function isValidName(s: string): boolean {
  return ANCHORED_NAME_RE.test(s) && s.length <= NAME_TOTAL_LENGTH_MAX;
}

/** Whether `s` is a valid host[:port] (a registry domain). */
export function isValidDomain(s: string): boolean {
  return ANCHORED_DOMAIN_RE.test(s);
}
