// process.apparmorProfile, process.selinuxLabel and linux.mountLabel (CRI-O
// internal/config/apparmor Apply, server/container_create.go configureSELinuxLabels). The labels
// themselves (with their MCS level) are allocated by the caller; this only decides which apply.
import { InvalidArgumentError } from "../errors.ts";
import { SecurityProfile_ProfileType, type LinuxContainerSecurityContext, type SELinuxOption } from "../proto/runtime-v1.ts";

/** CRI-O's default AppArmor profile name (installed by the daemon with apparmor_parser). */
export const DEFAULT_APPARMOR_PROFILE = "crio-default";

export interface AppArmorOptions {
  /** AppArmor is enabled on the host; false = no profile at all. */
  enabled: boolean;
  /** apparmor_profile from the config (default "crio-default"). */
  defaultProfile?: string;
  privileged: boolean;
}

/**
 * The AppArmor profile the container runs under, or undefined for none:
 * - AppArmor disabled on the host, or a privileged container: none (CRI-O leaves the field
 *   unset, which runs the container unconfined);
 * - the `apparmor` field: RuntimeDefault → apparmor_profile; Unconfined → "unconfined";
 *   Localhost → localhost_ref;
 * - else the deprecated apparmor_profile string: "" or "runtime/default" → apparmor_profile,
 *   "unconfined" → "unconfined", "localhost/<name>" or "<name>" → the name.
 * A "localhost/" prefix is stripped; an empty Localhost name is InvalidArgument.
 */
export function apparmorProfile(sc: LinuxContainerSecurityContext | undefined, options: AppArmorOptions): string | undefined {
  if (!options.enabled || options.privileged) return undefined;
  const fallback = options.defaultProfile || DEFAULT_APPARMOR_PROFILE;
  const field = sc?.apparmor;
  let name: string;
  if (field) {
    switch (field.profileType) {
      case SecurityProfile_ProfileType.RuntimeDefault:
        return fallback;
      case SecurityProfile_ProfileType.Unconfined:
        return "unconfined";
      case SecurityProfile_ProfileType.Localhost:
        name = field.localhostRef ?? "";
        break;
      default:
        throw new InvalidArgumentError(`unknown AppArmor profile type ${field.profileType}`);
    }
  } else {
    const legacy = sc?.apparmorProfile ?? "";
    if (legacy === "" || legacy === "runtime/default") return fallback;
    if (legacy.toLowerCase() === "unconfined") return "unconfined";
    name = legacy;
  }
  name = name.startsWith("localhost/") ? name.slice("localhost/".length) : name;
  if (name === "") throw new InvalidArgumentError("empty localhost AppArmor profile is forbidden");
  return name;
}

/** The super-privileged container type: SELinux does not confine it, and nothing is relabelled. */
export const SPC_TYPE = "spc_t";

/**
 * `label` ("user:role:type:level", the level may itself contain colons) with the parts the
 * option sets replaced. With no base label, the option must set all four parts.
 */
export function applySELinuxOption(label: string | undefined, option: Partial<SELinuxOption> | undefined): string | undefined {
  const o = { user: option?.user ?? "", role: option?.role ?? "", type: option?.type ?? "", level: option?.level ?? "" };
  if (!label) return o.user && o.role && o.type && o.level ? `${o.user}:${o.role}:${o.type}:${o.level}` : undefined;
  const parts = label.split(":");
  if (parts.length < 3) throw new InvalidArgumentError(`invalid SELinux label ${JSON.stringify(label)}: want user:role:type[:level]`);
  const [user = "", role = "", type = ""] = parts;
  const level = parts.slice(3).join(":");
  const out = [o.user || user, o.role || role, o.type || type];
  const lvl = o.level || level;
  return lvl ? `${out.join(":")}:${lvl}` : out.join(":");
}

export interface SELinuxOptions {
  /** SELinux is enabled on the host; false = no labels. */
  enabled: boolean;
  /** The labels the caller allocated for the container (from the sandbox's, as storage does). */
  processLabel?: string;
  mountLabel?: string;
  /** The pod's selinux_options, for the spc_t check. */
  sandboxOption?: SELinuxOption;
  privileged: boolean;
  hostPID: boolean;
  hostIPC: boolean;
  hostNetwork: boolean;
  /** hostnetwork_disable_selinux (default true): host-network containers get no process label. */
  hostNetworkDisableSELinux?: boolean;
}

export interface SELinuxResult {
  processLabel?: string;
  mountLabel?: string;
  /** spc_t (container, or pod with no container type): do not relabel the container's mounts. */
  skipRelabel: boolean;
}

/**
 * The container's SELinux labels. The request's selinux_options override parts of the caller's
 * labels (user, role, type and level of the process label; user and level of the mount label).
 * Then, as CRI-O: no process label for privileged containers or host-network ones when
 * hostnetwork_disable_selinux; neither label with a host PID or IPC namespace.
 */
export function selinuxLabels(sc: LinuxContainerSecurityContext | undefined, options: SELinuxOptions): SELinuxResult {
  const ctrType = sc?.selinuxOptions?.type ?? "";
  const skipRelabel = ctrType === SPC_TYPE || (ctrType === "" && options.sandboxOption?.type === SPC_TYPE);
  if (!options.enabled) return { skipRelabel };
  const opt = sc?.selinuxOptions;
  let processLabel = applySELinuxOption(options.processLabel, opt);
  let mountLabel = applySELinuxOption(options.mountLabel, opt ? { user: opt.user, level: opt.level } : undefined);
  if (options.privileged) processLabel = undefined;
  if (options.hostPID || options.hostIPC) {
    processLabel = undefined;
    mountLabel = undefined;
  }
  if (options.hostNetwork && (options.hostNetworkDisableSELinux ?? true)) processLabel = undefined;
  const result: SELinuxResult = { skipRelabel };
  if (processLabel) result.processLabel = processLabel;
  if (mountLabel) result.mountLabel = mountLabel;
  return result;
}
