// Which sysctls a pod may set. Only namespaced sysctls can be given to one pod without changing
// the node for everyone, and only when the pod has its own namespace of that kind. The table is
// the one kubelet (k8s.io/component-helpers/node/util/sysctl, NamespacedBy) and CRI-O
// (internal/config: Sysctl.Validate) use, plus the UTS names runc accepts in a private UTS
// namespace (libcontainer/configs/validate).
//
// Everything here is pure: it runs before any namespace is created, so a refusal leaks nothing.
import { ConfigError, InvalidArgumentError } from "../errors.ts";
import { sysctlDottedName } from "../sys/sysctl.ts";

/** The namespace kind a sysctl lives in. */
export type SysctlNamespace = "net" | "ipc" | "uts";

const EXACT: Readonly<Record<string, SysctlNamespace>> = {
  "kernel.sem": "ipc",
  "kernel.domainname": "uts",
  "kernel.hostname": "uts",
};
const PREFIXES: ReadonlyArray<readonly [string, SysctlNamespace]> = [
  ["kernel.shm", "ipc"],
  ["kernel.msg", "ipc"],
  ["fs.mqueue.", "ipc"],
  ["net.", "net"],
];

/**
 * The namespace kind of a sysctl (name with dots or slashes), or undefined when it is not known
 * to be namespaced (kernel.panic, vm.*, fs.file-max, ...): setting it would change the node.
 */
export function sysctlNamespace(name: string): SysctlNamespace | undefined {
  const dotted = sysctlDottedName(name);
  const exact = EXACT[dotted];
  if (exact) return exact;
  for (const [prefix, ns] of PREFIXES) if (dotted.startsWith(prefix)) return ns;
  return undefined;
}

/** Which of the pod's namespaces are the node's own (CRI NamespaceMode NODE). */
export interface PodNamespaceModes {
  hostNetwork: boolean;
  hostIPC: boolean;
  /** Defaults to hostNetwork: a pod on the node's network also uses the node's host name. */
  hostUTS?: boolean;
}

// A sysctl name as Kubernetes validates it (IsValidSysctlName), dots or slashes as separators;
// uppercase is allowed too, since interface names in net.ipv4.conf.<if>.* may have it.
const SEGMENT = "[A-Za-z0-9]([-_A-Za-z0-9]*[A-Za-z0-9])?";
const NAME = new RegExp(`^(${SEGMENT}[./])*${SEGMENT}$`);
const MAX_NAME = 253;

const KIND: Readonly<Record<SysctlNamespace, string>> = { net: "network", ipc: "IPC", uts: "UTS" };

/** Why `name` cannot be set for a pod with these namespace modes, or undefined when it can. */
export function sysctlRefusal(name: string, modes: PodNamespaceModes): string | undefined {
  if (name.length > MAX_NAME || !NAME.test(name)) return "invalid sysctl name";
  const ns = sysctlNamespace(name);
  if (ns === undefined) {
    return "not a namespaced sysctl: setting it for one pod would change the whole node " +
      "(allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname, kernel.hostname)";
  }
  const onHost = ns === "net" ? modes.hostNetwork : ns === "ipc" ? modes.hostIPC : (modes.hostUTS ?? modes.hostNetwork);
  if (onHost) return `not allowed with host ${KIND[ns]} namespace enabled: it would change the node's`;
  return undefined;
}

/**
 * Checks a pod's sysctls against its namespace modes and returns them as [name, value] pairs,
 * names in dotted form. Throws InvalidArgumentError naming the first offending sysctl and why.
 */
export function validatePodSysctls(
  sysctls: Readonly<Record<string, string>>,
  modes: PodNamespaceModes,
): Array<[name: string, value: string]> {
  const out: Array<[string, string]> = [];
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(sysctls)) {
    const why = sysctlRefusal(name, modes);
    if (why !== undefined) throw new InvalidArgumentError(`sysctl ${JSON.stringify(name)}: ${why}`);
    if (value === "") throw new InvalidArgumentError(`sysctl ${JSON.stringify(name)}: empty value`);
    if (value.includes("\0")) throw new InvalidArgumentError(`sysctl ${JSON.stringify(name)}: value contains a NUL byte`);
    const dotted = sysctlDottedName(name);
    const before = seen.get(dotted);
    if (before !== undefined && before !== name) {
      throw new InvalidArgumentError(`sysctl ${JSON.stringify(name)}: given twice (also as ${JSON.stringify(before)})`);
    }
    seen.set(dotted, name);
    out.push([dotted, value]);
  }
  return out;
}

/** One default_sysctls entry, parsed. */
export interface SysctlEntry {
  name: string;
  value: string;
}

/**
 * Parses crio.conf's default_sysctls ("name=value" entries) as CRI-O does: empty entries are
 * skipped, the value is everything after the first "=", and spaces around either side are an
 * error (neither pinns nor runc would accept them). Errors name the bad entry.
 */
export function parseDefaultSysctls(entries: readonly string[], key = "crio.runtime.default_sysctls"): SysctlEntry[] {
  const out: SysctlEntry[] = [];
  for (const entry of entries) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq < 0) throw new ConfigError(`${JSON.stringify(entry)} is not in name=value format`, { key });
    const name = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (name.trim() !== name || value.trim() !== value) {
      throw new ConfigError(`${JSON.stringify(entry)} is invalid, extra spaces found: format should be name=value`, { key });
    }
    if (name === "") throw new ConfigError(`${JSON.stringify(entry)} has an empty name`, { key });
    if (value === "") throw new ConfigError(`${JSON.stringify(entry)} has an empty value`, { key });
    if (name.length > MAX_NAME || !NAME.test(name)) {
      throw new ConfigError(`${JSON.stringify(entry)}: invalid sysctl name ${JSON.stringify(name)}`, { key });
    }
    out.push({ name, value });
  }
  return out;
}

/** The sysctls a pod gets, and the configured defaults that did not apply to it. */
export interface PodSysctls {
  sysctls: Array<[name: string, value: string]>;
  /** Defaults left out for this pod (e.g. a net.* default on a hostNetwork pod), for a warning. */
  skipped: Array<{ name: string; reason: string }>;
}

/**
 * Merges the configured defaults with the pod's own sysctls. As in CRI-O, a default that does not
 * fit this pod's namespaces is skipped (the caller logs it), and the pod's value wins over a
 * default of the same name. Unlike CRI-O, which only logs it, a pod sysctl that does not fit is
 * refused with InvalidArgumentError: kubelet already rejects such pods, so one reaching the
 * runtime is a client error, and silently dropping it would run the pod misconfigured.
 */
export function podSysctls(
  defaults: readonly SysctlEntry[],
  pod: Readonly<Record<string, string>>,
  modes: PodNamespaceModes,
): PodSysctls {
  const fromPod = validatePodSysctls(pod, modes);
  const merged = new Map<string, string>();
  const skipped: PodSysctls["skipped"] = [];
  for (const { name, value } of defaults) {
    const reason = sysctlRefusal(name, modes);
    if (reason !== undefined) skipped.push({ name, reason });
    else merged.set(sysctlDottedName(name), value);
  }
  for (const [name, value] of fromPod) {
    merged.delete(name);
    merged.set(name, value);
  }
  return { sysctls: [...merged], skipped };
}
