// OCI runtime spec builder: pure functions from (CRI request, image config, sandbox, host facts)
// to config.json. Nothing here reads files or the system; callers pass every host fact in.
//
// TODO (not built yet; each lands as its own pure function fed by the caller):
// - seccomp: RuntimeDefault (containers/common profile with CRI-O's clone/clone3/unshare
//   changes), Unconfined, Localhost files, seccomp_profile / privileged_seccomp_profile,
//   seccomp-profile.crio.io OCI artifacts, the notifier annotation.
// - AppArmor: process.apparmorProfile (crio-default, runtime/default, localhost/…), host support.
// - SELinux: process.selinuxLabel, linux.mountLabel, spc_t, hostnetwork_disable_selinux, and
//   performing the relabels buildSpecWithNotes reports.
// - devices: CRI devices, additional_devices, allowed_devices + devices.crio.io, privileged →
//   all host devices (unless privileged_without_host_devices), CDI injection, device cgroup rules
//   (linux.resources.devices only carries the deny-all rule today).
// - OCI hooks (hooks_dir) and NRI adjustments.
// - image mounts (Mount.image) and image VOLUMEs per image_volumes; /etc/resolv.conf,
//   /etc/hostname, /etc/hosts, /run/.containerenv and secrets mounts; default_mounts_file.
// - user namespaces (linux.uidMappings/gidMappings), umask annotation, timezone, GOMAXPROCS
//   injection, blockio/RDT classes, stop signal, systemd-mode mounts, sysfs for host network.
export { buildSpec, buildSpecWithNotes } from "./build.ts";
export type { BuildNotes, BuildSpecInput, HostFacts, RuntimeSettings, SandboxNamespacePaths } from "./build.ts";
export { ALL_CAPABILITIES, capabilities, normalizeCapability } from "./capabilities.ts";
export type { CapabilityOptions, CapabilityResult } from "./capabilities.ts";
export { defaultMounts, mounts } from "./mounts.ts";
export type { HostMount, MountOptions, MountResult } from "./mounts.ts";
export { COMMON_MASKED_PATHS, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedAndReadonlyPaths } from "./paths.ts";
export { DEFAULT_PATH, env, parseUlimit, processArgs, rlimits, workingDir } from "./process.ts";
export type { EnvExtras } from "./process.ts";
export { DEFAULT_CONTAINER_MIN_MEMORY, resources } from "./resources.ts";
export type { ResourceOptions, ResourceResult } from "./resources.ts";
export * from "./types.ts";
export { parseGroup, parsePasswd, user, userString } from "./user.ts";
export type { GroupEntry, PasswdEntry, ResolvedUser } from "./user.ts";
