// OCI runtime spec builder: pure functions from (CRI request, image config, sandbox, host facts)
// to config.json. Nothing here reads files or the system; callers pass every host fact in.
//
// What the caller reads or finds before buildSpecWithNotes (all optional; absent = feature off):
// - seccomp: input.seccompProfiles = contents of seccomp_profile (RuntimeDefault override),
//   privileged_seccomp_profile (privileged containers) and the Localhost file
//   (seccompLocalhostPath(securityContext) names it); host.seccompEnabled (default true);
//   host.arch (default process.arch). notes.seccompProfile is the reference to record.
// - AppArmor: host.apparmorEnabled and runtime.apparmor_profile (the daemon loads crio-default).
// - SELinux: host.selinuxEnabled and input.selinuxLabels (the labels allocated for the
//   container); notes.relabel lists the paths to relabel with spec.linux.mountLabel.
// - devices: host.devices = stat results for deviceHostPaths(...) (directories with the nodes
//   below them), host.hostDevices = the host's /dev nodes for privileged containers,
//   input.deviceAnnotation = the devices.crio.io value when the handler allows it.
// - sandbox files: sandbox.resolvPath / hostnamePath / containerEnvPath, and hostsPath for
//   host-network pods; paths the request mounts itself are left to the request.
// - OCI hooks: loadHooks(hooks_dir) from src/hooks (at startup and on reload); pass the
//   definitions as input.hooks (matched on the container's + sandbox.annotations) or call
//   applyHooks(spec, hooks, ctx) on the built spec.
// - stop signal: stopSignal(imageConfig, config.stopSignal), kept with the container record.
//
// TODO (not built yet):
// - seccomp: OCI-artifact profiles (seccomp-profile.crio.io), the notifier
//   (seccomp-notifier-action.crio.io: SCMP_ACT_NOTIFY rules and listenerPath).
// - devices: CDI injection (CDIDevices + cdi.k8s.io/* annotations).
// - SELinux: init label for systemd containers; AppArmor/SELinux profile loading is the caller's.
// - mounts: image mounts (Mount.image) and image VOLUMEs per image_volumes; mounts.conf secrets
//   and default_mounts_file; /etc/localtime (timezone); /etc/passwd and /etc/group generation;
//   global read_only (tmpfs /run, /tmp, /var/tmp); systemd-mode mounts; sysfs for host network
//   and rw /sys for privileged; disable-fips.
// - user namespaces (linux.uidMappings/gidMappings), umask annotation, GOMAXPROCS injection,
//   blockio/RDT classes, unified cgroup annotations, NRI adjustments.
// - hooks: extension stages; watching hooks_dir for changes is the caller's (reload loadHooks).
export { buildSpec, buildSpecWithNotes } from "./build.ts";
export type { BuildNotes, BuildSpecInput, HostFacts, RuntimeSettings, SandboxNamespacePaths } from "./build.ts";
export { ALL_CAPABILITIES, capabilities, normalizeCapability } from "./capabilities.ts";
export type { CapabilityOptions, CapabilityResult } from "./capabilities.ts";
export { deviceHostPaths, devices, parseDeviceSpec } from "./devices.ts";
export type { DeviceOptions, DeviceResult, DeviceSpec, HostDevice, HostDeviceNode, HostPathFact } from "./devices.ts";
export { applyHooks, hookMatches } from "./hooks.ts";
export type { HookDefinition, HookMatchContext, HookWhen } from "./hooks.ts";
export { defaultMounts, mounts, sandboxFileMounts } from "./mounts.ts";
export type { HostMount, MountOptions, MountResult, SandboxFiles } from "./mounts.ts";
export { COMMON_MASKED_PATHS, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedAndReadonlyPaths } from "./paths.ts";
export { DEFAULT_PATH, env, parseUlimit, processArgs, rlimits, workingDir } from "./process.ts";
export type { EnvExtras } from "./process.ts";
export { DEFAULT_CONTAINER_MIN_MEMORY, resources } from "./resources.ts";
export type { ResourceOptions, ResourceResult } from "./resources.ts";
export { convertSeccompProfile, goArch, seccomp, seccompLocalhostPath, seccompRequest } from "./seccomp.ts";
export type { SeccompConvertOptions, SeccompOptions, SeccompProfileContents, SeccompRequest, SeccompResult } from "./seccomp.ts";
export { CLONE_NAMESPACE_FLAGS, CLONE_NAMESPACE_MASK, defaultSeccompProfile } from "./seccomp-default.ts";
export { apparmorProfile, applySELinuxOption, DEFAULT_APPARMOR_PROFILE, selinuxLabels, SPC_TYPE } from "./security.ts";
export type { AppArmorOptions, SELinuxOptions, SELinuxResult } from "./security.ts";
export { criSignal, parseSignal, stopSignal } from "./signal.ts";
export type { StopSignal } from "./signal.ts";
export * from "./types.ts";
export { parseGroup, parsePasswd, user, userString } from "./user.ts";
export type { GroupEntry, PasswdEntry, ResolvedUser } from "./user.ts";
