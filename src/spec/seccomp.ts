// linux.seccomp: which profile a container gets (CRI-O server/container_create.go setupSeccomp,
// internal/config/seccomp Setup) and the conversion of a containers/common or moby profile
// into the runtime-spec form (containers/common pkg/seccomp setupSeccomp).
import { InvalidArgumentError } from "../errors.ts";
import { SecurityProfile_ProfileType, type LinuxContainerSecurityContext } from "../proto/runtime-v1.ts";
import { defaultSeccompProfile } from "./seccomp-default.ts";
import type {
  OciSeccomp,
  OciSeccompArg,
  OciSyscall,
  SeccompProfile,
  SeccompProfileFilter,
  SeccompProfileRule,
} from "./types.ts";

/** Go's names for the native architectures a profile's archMap can name. */
const NATIVE_TO_SECCOMP: Record<string, string> = {
  amd64: "SCMP_ARCH_X86_64",
  arm64: "SCMP_ARCH_AARCH64",
  mips64: "SCMP_ARCH_MIPS64",
  mips64n32: "SCMP_ARCH_MIPS64N32",
  mipsel64: "SCMP_ARCH_MIPSEL64",
  mipsel64n32: "SCMP_ARCH_MIPSEL64N32",
  s390x: "SCMP_ARCH_S390X",
  ppc64le: "SCMP_ARCH_PPC64LE",
  riscv64: "SCMP_ARCH_RISCV64",
};

/** Node's process.arch names → Go's, which profiles use ("x64" → "amd64"). Go names pass through. */
export function goArch(arch: string): string {
  const node: Record<string, string> = { x64: "amd64", ia32: "386", ppc64: "ppc64le", mips64el: "mipsel64", mipsel: "mipsle" };
  return node[arch] ?? arch;
}

const ACTIONS = new Set([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
]);
const OPERATORS = new Set(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]);

/** Linux errno values (asm-generic/errno-base.h, errno.h) a profile may name instead of a number. */
const ERRNO: Record<string, number> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33,
  ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40,
  ENOTSOCK: 88, EPROTONOSUPPORT: 93, EOPNOTSUPP: 95, ENOTSUP: 95, EAFNOSUPPORT: 97,
  EADDRINUSE: 98, ECONNREFUSED: 111,
};

export interface SeccompConvertOptions {
  /** The native architecture, Go or Node naming ("amd64" or "x64"). */
  arch: string;
  /** The container's final bounding set; rules conditional on capabilities are resolved with it. */
  capabilities: readonly string[];
  /** "major.minor[...]" of the running kernel, for moby's includes.minKernel; unknown = satisfied. */
  kernelVersion?: string;
}

function kernelAtLeast(running: string | undefined, min: string): boolean {
  if (!running) return true;
  const parse = (v: string) => v.split(/[.-]/).slice(0, 2).map((n) => Number.parseInt(n, 10) || 0);
  const [ra = 0, rb = 0] = parse(running);
  const [ma = 0, mb = 0] = parse(min);
  return ra > ma || (ra === ma && rb >= mb);
}

function integer(v: unknown, what: string, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`seccomp profile ${name}: ${what} must be a non-negative integer below 2^53, got ${JSON.stringify(v)}`);
  }
  return v;
}

function errnoOf(ret: unknown, errno: unknown, what: string, name: string): number | undefined {
  if (ret !== undefined && ret !== null) return integer(ret, `${what}errnoRet`, name);
  if (errno === undefined || errno === null || errno === "") return undefined;
  const n = typeof errno === "string" ? ERRNO[errno.toUpperCase()] : undefined;
  if (n === undefined) throw new InvalidArgumentError(`seccomp profile ${name}: unknown ${what}errno ${JSON.stringify(errno)}`);
  return n;
}

function parse(content: string, name: string): SeccompProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch (err) {
    throw new InvalidArgumentError(`decoding seccomp profile ${name} failed: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`decoding seccomp profile ${name} failed: not a JSON object`);
  }
  return raw as SeccompProfile;
}

/** Does the rule apply to this container? Excludes: none may hold; includes: all must hold. */
function applies(rule: SeccompProfileRule, arch: string, caps: ReadonlySet<string>, kernel: string | undefined): boolean {
  const ex: SeccompProfileFilter = rule.excludes ?? {};
  const inc: SeccompProfileFilter = rule.includes ?? {};
  if (ex.arches?.includes(arch)) return false;
  if (ex.caps?.some((c) => caps.has(c))) return false;
  if (ex.minKernel && kernel !== undefined && kernelAtLeast(kernel, ex.minKernel)) return false;
  if (inc.arches?.length && !inc.arches.includes(arch)) return false;
  if (inc.caps?.some((c) => !caps.has(c))) return false;
  if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
  return true;
}

/**
 * Converts a seccomp profile in the containers/common (or moby) format to linux.seccomp for one
 * container: the archMap entry of the native architecture becomes `architectures`, rules whose
 * includes/excludes do not fit the architecture, the capability set or the kernel are dropped,
 * and each remaining rule becomes one syscalls entry. `profile` is the file content (or an
 * already parsed profile); `name` names it in errors. A profile with neither a default action
 * nor rules means "no seccomp" (undefined), as in containers/common.
 */
export function convertSeccompProfile(profile: string | SeccompProfile, name: string, options: SeccompConvertOptions): OciSeccomp | undefined {
  const p = typeof profile === "string" ? parse(profile, name) : profile;
  const rules = p.syscalls ?? [];
  if (!Array.isArray(rules)) throw new InvalidArgumentError(`seccomp profile ${name}: "syscalls" must be an array`);
  if (!p.defaultAction && rules.length === 0) return undefined;
  if (!ACTIONS.has(p.defaultAction)) {
    throw new InvalidArgumentError(`seccomp profile ${name}: unknown defaultAction ${JSON.stringify(p.defaultAction)}`);
  }
  if (p.architectures?.length && p.archMap?.length) {
    throw new InvalidArgumentError(`seccomp profile ${name}: 'architectures' and 'archMap' were both specified, use one`);
  }
  const arch = goArch(options.arch);
  const out: OciSeccomp = { defaultAction: p.defaultAction };
  const defaultErrno = errnoOf(p.defaultErrnoRet, p.defaultErrno, "default", name);
  if (defaultErrno !== undefined) out.defaultErrnoRet = defaultErrno;

  const architectures = [...(p.architectures ?? [])];
  const native = NATIVE_TO_SECCOMP[arch];
  const entry = native ? p.archMap?.find((a) => a.architecture === native) : undefined;
  if (entry) architectures.push(entry.architecture, ...(entry.subArchitectures ?? []));
  if (architectures.length > 0) out.architectures = architectures;
  if (p.flags?.length) out.flags = [...p.flags];

  const caps = new Set(options.capabilities);
  const syscalls: OciSyscall[] = [];
  rules.forEach((rule, i) => {
    const where = `syscalls[${i}]`;
    if (!applies(rule, arch, caps, options.kernelVersion)) return;
    if (rule.name && rule.names?.length) {
      throw new InvalidArgumentError(`seccomp profile ${name}: ${where} has both 'name' and 'names', use one`);
    }
    const names = rule.name ? [rule.name] : [...(rule.names ?? [])];
    if (names.length === 0) return;
    if (!ACTIONS.has(rule.action)) {
      throw new InvalidArgumentError(`seccomp profile ${name}: ${where} has unknown action ${JSON.stringify(rule.action)}`);
    }
    const call: OciSyscall = { names, action: rule.action };
    const ret = errnoOf(rule.errnoRet, rule.errno, `${where}.`, name);
    if (ret !== undefined) call.errnoRet = ret;
    const args: OciSeccompArg[] = (rule.args ?? []).map((a, j) => {
      if (!OPERATORS.has(a.op)) {
        throw new InvalidArgumentError(`seccomp profile ${name}: ${where}.args[${j}] has unknown op ${JSON.stringify(a.op)}`);
      }
      const arg: OciSeccompArg = {
        index: integer(a.index, `${where}.args[${j}].index`, name),
        value: integer(a.value ?? 0, `${where}.args[${j}].value`, name),
        op: a.op,
      };
      const two = integer(a.valueTwo ?? 0, `${where}.args[${j}].valueTwo`, name);
      if (two !== 0) arg.valueTwo = two;
      return arg;
    });
    if (args.length > 0) call.args = args;
    syscalls.push(call);
  });
  if (syscalls.length > 0) out.syscalls = syscalls;
  return out;
}

/** What the request asks for, from the structured field or else the deprecated path string. */
export type SeccompRequest =
  | { kind: "none" }
  | { kind: "unconfined" }
  | { kind: "runtime-default" }
  | { kind: "localhost"; path: string };

/**
 * The request's seccomp choice. The `seccomp` field wins when present (kubelet fills both);
 * the deprecated seccomp_profile_path accepts "runtime/default", "docker/default",
 * "unconfined" and "localhost/<absolute path>". Neither set: "none", which gets the runtime
 * default profile.
 */
export function seccompRequest(sc: LinuxContainerSecurityContext | undefined): SeccompRequest {
  const field = sc?.seccomp;
  if (field) {
    switch (field.profileType) {
      case SecurityProfile_ProfileType.RuntimeDefault:
        return { kind: "runtime-default" };
      case SecurityProfile_ProfileType.Unconfined:
        return { kind: "unconfined" };
      case SecurityProfile_ProfileType.Localhost: {
        const path = field.localhostRef ?? "";
        if (path === "") throw new InvalidArgumentError("seccomp profile type Localhost needs a localhost_ref");
        return { kind: "localhost", path };
      }
      default:
        throw new InvalidArgumentError(`unknown seccomp profile type ${field.profileType}`);
    }
  }
  const path = sc?.seccompProfilePath ?? "";
  if (path === "") return { kind: "none" };
  if (path === "runtime/default" || path === "docker/default") return { kind: "runtime-default" };
  if (path === "unconfined") return { kind: "unconfined" };
  if (path.startsWith("localhost/")) {
    const file = path.slice("localhost/".length);
    if (file === "") throw new InvalidArgumentError(`seccomp profile path ${JSON.stringify(path)} names no file`);
    return { kind: "localhost", path: file };
  }
  throw new InvalidArgumentError(`unknown seccomp profile path: ${JSON.stringify(path)}`);
}

/** Profile contents the caller read from disk (the builder reads nothing itself). */
export interface SeccompProfileContents {
  /** seccomp_profile (runtime-wide or the handler's); absent = the built-in default. */
  runtimeDefault?: string;
  /** privileged_seccomp_profile, for privileged containers; absent = they run unconfined. */
  privileged?: string;
  /** The file a Localhost request names (see seccompLocalhostPath). */
  localhost?: string;
}

export interface SeccompOptions extends SeccompConvertOptions {
  privileged: boolean;
  /** The host (and build) supports seccomp; false runs everything unconfined and rejects Localhost. */
  enabled?: boolean;
  profiles?: SeccompProfileContents;
  /** Names for errors and the reference: the seccomp_profile and privileged_seccomp_profile paths. */
  runtimeDefaultName?: string;
  privilegedName?: string;
}

export interface SeccompResult {
  seccomp?: OciSeccomp;
  /**
   * What the container runs with, for status and annotations (CRI-O's seccompRef): "" (nothing
   * requested), "Unconfined", "RuntimeDefault", or the Localhost profile's path.
   */
  profile: string;
}

/** The file the caller must read for a Localhost request, if the request is one. */
export function seccompLocalhostPath(sc: LinuxContainerSecurityContext | undefined): string | undefined {
  const r = seccompRequest(sc);
  return r.kind === "localhost" ? r.path : undefined;
}

/**
 * The container's linux.seccomp.
 * - seccomp disabled on the host: none, and a Localhost request is an error;
 * - privileged: none (unconfined), unless privileged_seccomp_profile content is given, which is
 *   then used whatever the request says;
 * - Unconfined: none;
 * - RuntimeDefault, or nothing requested (CRI-O's behaviour since seccomp_use_default_when_empty
 *   went away): the seccomp_profile content when given, else the built-in profile;
 * - Localhost: the content of the named file, which the caller read.
 */
export function seccomp(sc: LinuxContainerSecurityContext | undefined, options: SeccompOptions): SeccompResult {
  const profiles = options.profiles ?? {};
  const request = seccompRequest(sc);
  if (options.enabled === false) {
    if (request.kind === "localhost") throw new InvalidArgumentError("seccomp is not enabled, cannot run with a custom profile");
    return { profile: "Unconfined" };
  }
  if (options.privileged) {
    if (profiles.privileged === undefined) return { profile: "Unconfined" };
    const name = options.privilegedName || "privileged_seccomp_profile";
    return { seccomp: convertSeccompProfile(profiles.privileged, name, options), profile: name };
  }
  switch (request.kind) {
    case "unconfined":
      return { profile: "Unconfined" };
    case "none":
    case "runtime-default": {
      const custom = profiles.runtimeDefault;
      const converted =
        custom === undefined
          ? convertSeccompProfile(defaultSeccompProfile(), "RuntimeDefault (built-in)", options)
          : convertSeccompProfile(custom, options.runtimeDefaultName || "seccomp_profile", options);
      return { seccomp: converted, profile: "RuntimeDefault" };
    }
    case "localhost": {
      if (profiles.localhost === undefined) {
        throw new InvalidArgumentError(`unable to load local seccomp profile ${JSON.stringify(request.path)}: its content was not provided`);
      }
      return { seccomp: convertSeccompProfile(profiles.localhost, JSON.stringify(request.path), options), profile: request.path };
    }
  }
}
