// buildSpec: the whole OCI runtime spec of one container from the request, the image, the
// sandbox and the facts about the host, all given as data. No I/O.
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { NamespaceMode, type ContainerConfig, type SELinuxOption } from "../proto/runtime-v1.ts";
import { capabilities } from "./capabilities.ts";
import { devices, type HostDevice, type HostPathFact } from "./devices.ts";
import { applyHooks, type HookDefinition } from "./hooks.ts";
import { mounts, type HostMount } from "./mounts.ts";
import { maskedAndReadonlyPaths } from "./paths.ts";
import { env, processArgs, rlimits, workingDir } from "./process.ts";
import { resources } from "./resources.ts";
import { seccomp, type SeccompProfileContents } from "./seccomp.ts";
import { apparmorProfile, selinuxLabels } from "./security.ts";
import { OCI_VERSION, type ImageConfig, type OciNamespace, type OciSpec } from "./types.ts";
import { user } from "./user.ts";

/** Namespace files of the sandbox (e.g. pinned /var/run/netns/…, /proc/<infra>/ns/ipc). */
export interface SandboxNamespacePaths {
  network?: string;
  ipc?: string;
  uts?: string;
  pid?: string;
  user?: string;
}

/** The [crio.runtime] options the builder reads (names as in the config file). */
export interface RuntimeSettings {
  default_capabilities: readonly string[];
  add_inheritable_capabilities?: boolean;
  default_ulimits: readonly string[];
  default_env: readonly string[];
  default_sysctls: readonly string[];
  pids_limit?: number;
  bind_mount_prefix?: string;
  /** AppArmor profile for RuntimeDefault (default "crio-default"). */
  apparmor_profile?: string;
  /** Paths of the seccomp profiles, only to name them in errors and the seccomp reference. */
  seccomp_profile?: string;
  privileged_seccomp_profile?: string;
  /** "host[:container][:rwm]" devices for every container. */
  additional_devices?: readonly string[];
  /** Host devices the devices.crio.io annotation may ask for. */
  allowed_devices?: readonly string[];
  /** The runtime handler's privileged_without_host_devices. */
  privileged_without_host_devices?: boolean;
  device_ownership_from_security_context?: boolean;
  /** Default true: host-network containers run without an SELinux process label. */
  hostnetwork_disable_selinux?: boolean;
}

/** Facts about the host and the daemon, found by the caller. */
export interface HostFacts {
  /** The daemon's capability bounding set; capabilities outside it are removed. Undefined = no limit. */
  capabilityBounding?: readonly string[];
  /** The daemon's own oom_score_adj; lower requests are raised to it. */
  oomScoreAdj?: number;
  cgroupV2?: boolean;
  hasMemorySwap?: boolean;
  hasHugetlb?: boolean;
  /** Kernel ≥ 5.12 and runtime support for recursive read-only mounts. */
  rroSupported: boolean;
  idmapSupported?: boolean;
  /** The host's mount table (mountpoint + optional fields), for the propagation checks. */
  mounts: readonly HostMount[];
  storageRoot?: string;
  /** Extra paths to mask (CRI-O: /sys/devices/system/cpu/cpuN/thermal_throttle that exist). */
  maskedPaths?: readonly string[];
  containerMinMemory?: number;
  /** Native architecture (Go or Node name); picks the seccomp archMap entry and arch rules. Default process.arch. */
  arch?: string;
  /** Running kernel "major.minor...", for seccomp rules with minKernel. */
  kernelVersion?: string;
  /** Seccomp usable (kernel and runtime); default true. */
  seccompEnabled?: boolean;
  /** AppArmor enabled on the host; default false (no process.apparmorProfile). */
  apparmorEnabled?: boolean;
  /** SELinux enabled on the host; default false (no labels). */
  selinuxEnabled?: boolean;
  /** stat() results for every path deviceHostPaths() lists (directories with their nodes below). */
  devices?: Readonly<Record<string, HostPathFact>>;
  /** Every device node under the host's /dev, for privileged containers. */
  hostDevices?: readonly HostDevice[];
}

export interface BuildSpecInput {
  config: ContainerConfig;
  /** The image's config object (image-spec "config"). */
  imageConfig?: ImageConfig;
  /** Contents of the image's /etc/passwd and /etc/group, if it has them. */
  passwd?: string;
  group?: string;
  /** The container's mounted root filesystem. */
  rootfsPath: string;
  cgroupsPath: string;
  /** The sandbox's hostname (also HOSTNAME in the environment). */
  hostname: string;
  sandbox: {
    shmPath: string;
    namespaces: SandboxNamespacePaths;
    /** The pod's sysctls (already validated against its namespaces). */
    sysctls?: Record<string, string>;
    /** Sandbox files bind mounted into the container unless the request mounts the same path. */
    resolvPath?: string;
    hostnamePath?: string;
    /** The host's /etc/hosts; give it for host-network pods only (kubelet mounts one otherwise). */
    hostsPath?: string;
    containerEnvPath?: string;
    /** The pod's annotations (matched by OCI hooks together with the container's). */
    annotations?: Record<string, string>;
    /** The pod's selinux_options (a pod of type spc_t skips relabelling). */
    selinuxOptions?: SELinuxOption;
  };
  /** PID namespace file of the target container, for namespace_options.pid = TARGET. */
  targetPidNamespace?: string;
  runtime: RuntimeSettings;
  host: HostFacts;
  /** Annotations to add to the request's own (io.kubernetes.*, io.container.manager, ...); these win. */
  annotations?: Record<string, string>;
  /** Seccomp profile contents the caller read (seccomp_profile, privileged, the Localhost file). */
  seccompProfiles?: SeccompProfileContents;
  /** The SELinux labels allocated for the container ("user:role:type:level"). */
  selinuxLabels?: { process?: string; mount?: string };
  /** Value of the devices.crio.io annotation, if the runtime handler allows it. */
  deviceAnnotation?: string;
  /** Hook definitions loaded from hooks_dir (src/hooks); the matching ones go into spec.hooks. */
  hooks?: readonly HookDefinition[];
}

/** Things the caller should log: adjustments made instead of letting runc fail. */
export interface BuildNotes {
  capabilitiesNotHeld: string[];
  oomScoreAdjClamped?: { requested: number; applied: number };
  /** Host paths to relabel for SELinux (the mounts asked for selinux_relabel; none for spc_t). */
  relabel: string[];
  /** The seccomp profile in use: "", "Unconfined", "RuntimeDefault" or a profile path. */
  seccompProfile: string;
}

function namespaces(input: BuildSpecInput, privileged: boolean): OciNamespace[] {
  const opts = input.config.linux?.securityContext?.namespaceOptions;
  const sb = input.sandbox.namespaces;
  const out: OciNamespace[] = [];
  const join = (type: OciNamespace["type"], path: string | undefined, what: string) => {
    if (!path) throw new FailedPreconditionError(`sandbox has no ${what} namespace for the container to join`);
    out.push({ type, path });
  };
  switch (opts?.pid ?? NamespaceMode.POD) {
    case NamespaceMode.POD:
      join("pid", sb.pid, "PID");
      break;
    case NamespaceMode.CONTAINER:
      out.push({ type: "pid" });
      break;
    case NamespaceMode.NODE:
      break;
    case NamespaceMode.TARGET:
      if (!opts?.targetId) throw new InvalidArgumentError("namespace_options.pid is TARGET but target_id is empty");
      if (!input.targetPidNamespace) {
        throw new FailedPreconditionError(`target container ${opts.targetId} has no PID namespace to join`);
      }
      out.push({ type: "pid", path: input.targetPidNamespace });
      break;
    default:
      throw new InvalidArgumentError(`unknown pid namespace mode ${opts?.pid}`);
  }
  const hostNetwork = opts?.network === NamespaceMode.NODE;
  if (!hostNetwork) join("network", sb.network, "network");
  if (opts?.ipc !== NamespaceMode.NODE) join("ipc", sb.ipc, "IPC");
  // The UTS namespace follows the network: a host-network pod sees the node's hostname.
  if (!hostNetwork) join("uts", sb.uts, "UTS");
  out.push({ type: "mount" });
  if (sb.user) out.push({ type: "user", path: sb.user });
  if (input.host.cgroupV2 && !privileged) out.push({ type: "cgroup" });
  return out;
}

function parseSysctls(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`invalid default_sysctls entry ${JSON.stringify(entry)}: want name=value`);
    out[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
  }
  return out;
}

/** buildSpec plus what the caller should log. */
export function buildSpecWithNotes(input: BuildSpecInput): { spec: OciSpec; notes: BuildNotes } {
  const cfg = input.config;
  const sc = cfg.linux?.securityContext;
  const privileged = sc?.privileged ?? false;
  const img = input.imageConfig;

  const args = processArgs(img, cfg);
  const u = user(img?.User, sc, input.passwd, input.group);
  const caps = capabilities(
    input.runtime.default_capabilities,
    sc?.capabilities?.addCapabilities ?? [],
    sc?.capabilities?.dropCapabilities ?? [],
    privileged,
    input.host.capabilityBounding,
    { addInheritable: input.runtime.add_inheritable_capabilities ?? false },
  );
  const res = resources(cfg.linux?.resources, {
    daemonOomScoreAdj: input.host.oomScoreAdj,
    containerMinMemory: input.host.containerMinMemory,
    hasMemorySwap: input.host.hasMemorySwap,
    hasHugetlb: input.host.hasHugetlb,
    cgroupV2: input.host.cgroupV2,
    pidsLimit: input.runtime.pids_limit,
  });
  const m = mounts(cfg.mounts ?? [], {
    shmPath: input.sandbox.shmPath,
    hostMounts: input.host.mounts,
    rroSupported: input.host.rroSupported,
    idmapSupported: input.host.idmapSupported,
    bindMountPrefix: input.runtime.bind_mount_prefix,
    storageRoot: input.host.storageRoot,
    privileged,
    sandboxFiles: {
      resolvPath: input.sandbox.resolvPath,
      hostnamePath: input.sandbox.hostnamePath,
      hostsPath: input.sandbox.hostsPath,
      containerEnvPath: input.sandbox.containerEnvPath,
    },
    readonlyRootfs: sc?.readonlyRootfs ?? false,
  });
  const devs = devices(cfg.devices ?? [], {
    additional: input.runtime.additional_devices,
    annotation: input.deviceAnnotation,
    allowed: input.runtime.allowed_devices,
    privileged,
    privilegedWithoutHostDevices: input.runtime.privileged_without_host_devices,
    hostDevices: input.host.hostDevices,
    facts: input.host.devices,
    ownershipFromSecurityContext: input.runtime.device_ownership_from_security_context,
    runAsUser: sc?.runAsUser ? Number(sc.runAsUser.value) : undefined,
    runAsGroup: sc?.runAsGroup ? Number(sc.runAsGroup.value) : undefined,
  });
  const sec = seccomp(sc, {
    privileged,
    enabled: input.host.seccompEnabled,
    arch: input.host.arch ?? process.arch,
    kernelVersion: input.host.kernelVersion,
    capabilities: caps.capabilities.bounding,
    profiles: input.seccompProfiles,
    runtimeDefaultName: input.runtime.seccomp_profile,
    privilegedName: input.runtime.privileged_seccomp_profile,
  });
  const nsOpts = sc?.namespaceOptions;
  const labels = selinuxLabels(sc, {
    enabled: input.host.selinuxEnabled ?? false,
    processLabel: input.selinuxLabels?.process,
    mountLabel: input.selinuxLabels?.mount,
    sandboxOption: input.sandbox.selinuxOptions,
    privileged,
    hostPID: nsOpts?.pid === NamespaceMode.NODE,
    hostIPC: nsOpts?.ipc === NamespaceMode.NODE,
    hostNetwork: nsOpts?.network === NamespaceMode.NODE,
    hostNetworkDisableSELinux: input.runtime.hostnetwork_disable_selinux,
  });
  const apparmor = apparmorProfile(sc, {
    enabled: input.host.apparmorEnabled ?? false,
    defaultProfile: input.runtime.apparmor_profile,
    privileged,
  });
  // An empty repeated field cannot be told from an absent one on the wire: both mean defaults.
  const masked = sc?.maskedPaths?.length ? sc.maskedPaths : undefined;
  const readonly = sc?.readonlyPaths?.length ? sc.readonlyPaths : undefined;
  const paths = maskedAndReadonlyPaths(privileged, masked, readonly, input.host.maskedPaths ?? []);

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: cfg.tty ?? false,
      user: { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids },
      args,
      env: env(img?.Env, input.runtime.default_env, cfg.envs ?? [], { hostname: input.hostname, tty: cfg.tty }),
      cwd: workingDir(img, cfg.workingDir),
      capabilities: caps.capabilities,
      rlimits: rlimits(input.runtime.default_ulimits),
      noNewPrivileges: sc?.noNewPrivs ?? false,
      oomScoreAdj: res.oomScoreAdj,
      ...(apparmor ? { apparmorProfile: apparmor } : {}),
      ...(labels.processLabel ? { selinuxLabel: labels.processLabel } : {}),
    },
    root: { path: input.rootfsPath, readonly: sc?.readonlyRootfs ?? false },
    // Only a private UTS namespace can have its own hostname (host-network pods share the node's).
    hostname: input.config.linux?.securityContext?.namespaceOptions?.network === NamespaceMode.NODE ? undefined : input.hostname,
    mounts: m.mounts,
    linux: {
      namespaces: namespaces(input, privileged),
      ...(devs.devices.length > 0 ? { devices: devs.devices } : {}),
      // Deny every device (allow all for privileged), then allow the container's own; runc
      // adds its defaults (/dev/null, /dev/zero, ...) on top.
      resources: { devices: devs.cgroup, ...res.resources },
      cgroupsPath: input.cgroupsPath,
      maskedPaths: paths.maskedPaths,
      readonlyPaths: paths.readonlyPaths,
    },
  };
  const sysctl = { ...parseSysctls(input.runtime.default_sysctls), ...(input.sandbox.sysctls ?? {}) };
  if (Object.keys(sysctl).length > 0) spec.linux.sysctl = sysctl;
  if (m.rootfsPropagation) spec.linux.rootfsPropagation = m.rootfsPropagation;
  if (sec.seccomp) spec.linux.seccomp = sec.seccomp;
  if (labels.mountLabel) spec.linux.mountLabel = labels.mountLabel;
  const annotations = { ...(cfg.annotations ?? {}), ...(input.annotations ?? {}) };
  if (Object.keys(annotations).length > 0) spec.annotations = annotations;

  const notes: BuildNotes = {
    capabilitiesNotHeld: caps.notHeld,
    relabel: labels.skipRelabel ? [] : m.relabel,
    seccompProfile: sec.profile,
  };
  if (res.oomScoreAdjClamped) notes.oomScoreAdjClamped = res.oomScoreAdjClamped;
  if (input.hooks?.length) {
    // CRI-O matches hooks against the container's and the pod's annotations (the pod's win)
    // and counts any requested mount as a bind mount.
    const hookAnnotations = { ...(cfg.annotations ?? {}), ...(input.sandbox.annotations ?? {}) };
    return { spec: applyHooks(spec, input.hooks, { annotations: hookAnnotations, hasBindMounts: (cfg.mounts ?? []).length > 0 }), notes };
  }
  return { spec, notes };
}

/** The container's OCI runtime spec (config.json). Throws CrioError subclasses on bad input. */
export function buildSpec(input: BuildSpecInput): OciSpec {
  return buildSpecWithNotes(input).spec;
}
