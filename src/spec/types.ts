// The subset of the OCI runtime spec (opencontainers/runtime-spec 1.2, config.md and
// config-linux.md) that the builder emits, and the subset of the OCI image config
// (image-spec config.md, "config" object) that it reads. Field names are the JSON names, so a
// value of these types serialises straight to config.json.

/**
 * The runtime-spec version written into config.json: 1.1.0, the newest version whose fields the
 * builder emits (rro mounts, mount id mappings). crun before 1.9 (Debian 12 ships 1.8.1) refuses
 * any 1.2 spec with "unknown version specified"; runc does not look at the version.
 */
export const OCI_VERSION = "1.1.0";

/** image-spec config.md: the `config` object of an image configuration. */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  inheritable: string[];
  permitted: string[];
  ambient: string[];
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciProcess {
  terminal?: boolean;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  /** config.md "apparmorProfile": the profile name the runtime switches to. */
  apparmorProfile?: string;
  /** config.md "selinuxLabel": the process label, "user:role:type:level". */
  selinuxLabel?: string;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
}

export type OciNamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time";

export interface OciNamespace {
  type: OciNamespaceType;
  path?: string;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciMemory {
  limit?: number;
  swap?: number;
}

export interface OciCpu {
  shares?: number;
  quota?: number;
  period?: number;
  cpus?: string;
  mems?: string;
}

export interface OciHugepageLimit {
  pageSize: string;
  limit: number;
}

export interface OciPids {
  limit: number;
}

/** config-linux.md "Control groups": `linux.resources`. */
export interface OciLinuxResources {
  devices?: OciDeviceCgroup[];
  memory?: OciMemory;
  cpu?: OciCpu;
  pids?: OciPids;
  hugepageLimits?: OciHugepageLimit[];
  unified?: Record<string, string>;
}

/** config-linux.md "Devices": a node the runtime creates in the container's /dev. */
export interface OciDevice {
  path: string;
  /** "c" (character), "b" (block), "u" (unbuffered character) or "p" (FIFO). */
  type: string;
  major: number;
  minor: number;
  /** Permission bits of the node (e.g. 0o666); the runtime's default when absent. */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** config-linux.md "Seccomp", `args` entry: compare syscall argument `index` with `value`. */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  /** SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ. */
  op: string;
}

export interface OciSyscall {
  names: string[];
  /** SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _KILL_THREAD, _TRAP, _TRACE, _LOG, _NOTIFY. */
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** config-linux.md "Seccomp": `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names; the native architecture is always allowed. */
  architectures?: string[];
  flags?: string[];
  syscalls?: OciSyscall[];
}

export interface OciLinux {
  namespaces: OciNamespace[];
  devices?: OciDevice[];
  resources?: OciLinuxResources;
  cgroupsPath?: string;
  sysctl?: Record<string, string>;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: OciSeccomp;
  /** config-linux.md "mountLabel": the SELinux context of the container's mounts. */
  mountLabel?: string;
}

/** config.md "POSIX-platform Hooks": one program the runtime runs at a lifecycle stage. */
export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** The hook stages of runtime-spec 1.2 (prestart is deprecated there but still run by runc). */
export const OCI_HOOK_STAGES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
export type OciHookStage = (typeof OCI_HOOK_STAGES)[number];
export type OciHooks = Partial<Record<OciHookStage, OciHook[]>>;

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations?: Record<string, string>;
  hooks?: OciHooks;
  linux: OciLinux;
}

// The seccomp profile file format of containers/common and moby (the JSON that seccomp_profile,
// privileged_seccomp_profile and Localhost profiles hold). It is richer than linux.seccomp: rules
// can be conditional on the architecture, the container's capabilities and the kernel version,
// and the converter (seccomp.ts) resolves those conditions for one container.

/** Conditions of one profile rule ("includes": all must hold; "excludes": none may hold). */
export interface SeccompProfileFilter {
  /** Capability names (CAP_*), checked against the container's bounding set. */
  caps?: string[];
  /** Go architecture names: amd64, arm64, x86, x32, arm, s390x, ppc64le, riscv64, ... */
  arches?: string[];
  /** moby: "major.minor"; the rule needs at least this kernel. */
  minKernel?: string;
}

export interface SeccompProfileArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompProfileRule {
  /** Old single-name form; a rule may not have both name and names. */
  name?: string;
  names?: string[];
  action: string;
  args?: SeccompProfileArg[] | null;
  comment?: string;
  includes?: SeccompProfileFilter;
  excludes?: SeccompProfileFilter;
  errnoRet?: number;
  /** Newer profiles: the errno by name ("EPERM"); errnoRet wins when both are set. */
  errno?: string;
}

export interface SeccompProfileArch {
  architecture: string;
  subArchitectures?: string[];
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  defaultErrno?: string;
  /** Old form: SCMP_ARCH_* names used as they are; a profile may not have both this and archMap. */
  architectures?: string[];
  /** Per native architecture, the SCMP_ARCH_* names to allow (the native one and its sub-arches). */
  archMap?: SeccompProfileArch[];
  syscalls?: SeccompProfileRule[] | null;
  flags?: string[];
}
