// process.capabilities, with CRI-O's add/drop semantics (internal/factory/container
// SpecSetupCapabilities) and the daemon's own bounding set as a ceiling (DESIGN §4).
import { InvalidArgumentError } from "../errors.ts";
import type { OciCapabilities } from "./types.ts";

/** Every capability Linux defines, in kernel number order (capability.h, 0..40). */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];
const ORDER = new Map(ALL_CAPABILITIES.map((c, i) => [c, i]));

/** "chown", "CHOWN", "cap_chown" → "CAP_CHOWN". */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
}

function validated(name: string, what: string): string {
  const cap = normalizeCapability(name);
  if (!ORDER.has(cap)) throw new InvalidArgumentError(`unknown capability ${JSON.stringify(cap)} to ${what}`);
  return cap;
}

const isAll = (s: string) => s.trim().toUpperCase() === "ALL";

export interface CapabilityOptions {
  /** add_inheritable_capabilities: also fill the inheritable set (off by default, CVE-2022-27652). */
  addInheritable?: boolean;
}

export interface CapabilityResult {
  capabilities: OciCapabilities;
  /** Capabilities the container would get but the daemon does not hold; removed, for the caller to log. */
  notHeld: string[];
}

/**
 * The container's capability sets.
 * - Not privileged: start from `defaults` unless add or drop contains "ALL"; add "ALL" = every
 *   capability; drop "ALL" = start empty; then the named adds, then the named drops (so a name in
 *   both lists ends up dropped). Names are case-insensitive, "CAP_" optional; unknown names in
 *   defaults, add or drop are InvalidArgumentError.
 * - Privileged: every capability; add and drop are ignored (CRI-O SetupPrivileged).
 * Either way the result is cut down to `daemonBounding` when given (a capability the daemon does
 * not hold makes runc fail). Ambient is always empty (Kubernetes expects a switch to a non-root
 * user to drop capabilities); inheritable is filled only with `addInheritable`.
 */
export function capabilities(
  defaults: readonly string[],
  add: readonly string[],
  drop: readonly string[],
  privileged: boolean,
  daemonBounding?: readonly string[],
  options: CapabilityOptions = {},
): CapabilityResult {
  const set = new Set<string>();
  if (privileged) {
    for (const c of ALL_CAPABILITIES) set.add(c);
  } else {
    const addAll = add.some(isAll);
    const dropAll = drop.some(isAll);
    // Validate everything first so an error never depends on the order of the lists.
    const defaultCaps = defaults.map((c) => validated(c, "add"));
    const adds = add.filter((c) => !isAll(c)).map((c) => validated(c, "add"));
    const drops = drop.filter((c) => !isAll(c)).map((c) => validated(c, "drop"));
    if (addAll) for (const c of ALL_CAPABILITIES) set.add(c);
    if (!addAll && !dropAll) for (const c of defaultCaps) set.add(c);
    if (dropAll) set.clear();
    for (const c of adds) set.add(c);
    for (const c of drops) set.delete(c);
  }

  const notHeld: string[] = [];
  if (daemonBounding) {
    const held = new Set(daemonBounding.map(normalizeCapability));
    for (const c of [...set]) {
      if (!held.has(c)) {
        set.delete(c);
        notHeld.push(c);
      }
    }
  }
  const list = [...set].sort((a, b) => ORDER.get(a)! - ORDER.get(b)!);
  notHeld.sort((a, b) => ORDER.get(a)! - ORDER.get(b)!);
  return {
    capabilities: {
      bounding: [...list],
      effective: [...list],
      inheritable: options.addInheritable ? [...list] : [],
      permitted: [...list],
      ambient: [],
    },
    notHeld,
  };
}
