// linux.maskedPaths and linux.readonlyPaths.

/** runtime-tools' generator defaults, which every CRI-O container spec starts from. */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
];
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
];

/**
 * What CRI-O adds to a request's own masked list (server/masked_paths.go
 * appendDefaultMaskedPaths): containers/common DefaultMaskedPaths plus /proc/asound and
 * /proc/interrupts. (CRI-O also masks /sys/devices/system/cpu/cpuN/thermal_throttle when the
 * host has it: a host fact, passed in as `hostMaskedPaths`.)
 */
export const COMMON_MASKED_PATHS: readonly string[] = [
  "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/sched_debug",
  "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/dev/block",
  "/sys/devices/virtual/powercap", "/sys/firmware", "/sys/fs/selinux", "/proc/asound",
  "/proc/interrupts",
];

function union(...lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

/**
 * The masked and read-only paths.
 * - privileged: none (CRI-O setOCIBindMountsPrivileged).
 * - `criMasked` undefined: the defaults. On the wire an empty repeated field is the same as an
 *   absent one, so CRI-O (and buildSpec here) pass undefined for both; kubelet's procMount
 *   Unmasked (an explicitly empty list) therefore keeps the defaults in CRI-O. A caller that knows
 *   the list was explicitly empty passes [] and gets no masked paths.
 * - non-empty: the defaults, then sorted, de-duplicated (COMMON_MASKED_PATHS + host paths +
 *   the request's), as CRI-O appendDefaultMaskedPaths + AddLinuxMaskedPaths does. Duplicates of
 *   the defaults are dropped (CRI-O leaves them in; runc does not care).
 * - readonly: undefined → defaults; [] → none; non-empty → defaults then the request's.
 */
export function maskedAndReadonlyPaths(
  privileged: boolean,
  criMasked?: readonly string[],
  criReadonly?: readonly string[],
  hostMaskedPaths: readonly string[] = [],
): { maskedPaths: string[]; readonlyPaths: string[] } {
  if (privileged) return { maskedPaths: [], readonlyPaths: [] };
  let maskedPaths: string[];
  if (criMasked === undefined) maskedPaths = [...DEFAULT_MASKED_PATHS];
  else if (criMasked.length === 0) maskedPaths = [];
  else maskedPaths = union(DEFAULT_MASKED_PATHS, [...union(COMMON_MASKED_PATHS, hostMaskedPaths, criMasked)].sort());
  let readonlyPaths: string[];
  if (criReadonly === undefined) readonlyPaths = [...DEFAULT_READONLY_PATHS];
  else if (criReadonly.length === 0) readonlyPaths = [];
  else readonlyPaths = union(DEFAULT_READONLY_PATHS, criReadonly);
  return { maskedPaths, readonlyPaths };
}
