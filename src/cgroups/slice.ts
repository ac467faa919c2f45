// systemd naming: how a slice name maps to a cgroup path, and runc's "slice:prefix:name"
// cgroupsPath syntax for the systemd cgroup driver (runc libcontainer/cgroups/systemd).
import { InvalidArgumentError } from "../errors.ts";

/** systemd's default slice for system units; what an empty parent means under the systemd manager. */
export const DEFAULT_SLICE = "system.slice";

const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+$/;

/** Whether `name` is a valid systemd unit name with the given suffix (".slice", ".scope"). */
export function isValidUnitName(name: string, suffix?: string): boolean {
  if (name.length === 0 || name.length > 255 || !UNIT_NAME.test(name)) return false;
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return false;
  return suffix === undefined || name.endsWith(suffix);
}

/**
 * The cgroup path of a slice: each dash opens a level, so `a-b-c.slice` lives at
 * `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root. `a--b.slice`, `-a.slice` and
 * names with a slash are invalid, as in systemd.
 */
export function expandSlice(slice: string): string {
  const suffix = ".slice";
  if (slice.length <= suffix.length || !slice.endsWith(suffix) || slice.includes("/") || !isValidUnitName(slice)) {
    throw new InvalidArgumentError(`invalid slice name: ${JSON.stringify(slice)}`);
  }
  const name = slice.slice(0, -suffix.length);
  if (name === "-") return "/";
  let path = "";
  let prefix = "";
  for (const component of name.split("-")) {
    if (component === "") throw new InvalidArgumentError(`invalid slice name: ${JSON.stringify(slice)}`);
    path += `/${prefix}${component}${suffix}`;
    prefix += `${component}-`;
  }
  return path;
}

/** A parsed systemd cgroupsPath `slice:prefix:name`: the unit `prefix-name.scope` in `slice`. */
export interface SystemdCgroupsPath {
  slice: string;
  prefix: string;
  name: string;
}

export function isSystemdCgroupsPath(p: string): boolean {
  return p.split(":").length === 3 && !p.startsWith("/");
}

export function parseSystemdCgroupsPath(p: string): SystemdCgroupsPath {
  const parts = p.split(":");
  if (parts.length !== 3) {
    throw new InvalidArgumentError(`systemd cgroupsPath must be "slice:prefix:name", got ${JSON.stringify(p)}`);
  }
  const [slice = "", prefix = "", name = ""] = parts;
  if (prefix === "" || name === "") {
    throw new InvalidArgumentError(`systemd cgroupsPath needs a prefix and a name, got ${JSON.stringify(p)}`);
  }
  const parsed = { slice: slice === "" ? DEFAULT_SLICE : slice, prefix, name };
  expandSlice(parsed.slice);
  const unit = unitName(parsed);
  if (!isValidUnitName(unit)) throw new InvalidArgumentError(`invalid systemd unit name ${JSON.stringify(unit)}`);
  return parsed;
}

/** The unit a systemd cgroupsPath names: `prefix-name.scope` (runc's rule). */
export function unitName(p: SystemdCgroupsPath): string {
  return `${p.prefix}-${p.name}.scope`;
}

/** The cgroup path (relative to each hierarchy's root) of a systemd cgroupsPath. */
export function systemdCgroupsPathToPath(p: string): string {
  const parsed = parseSystemdCgroupsPath(p);
  const slice = expandSlice(parsed.slice);
  return `${slice === "/" ? "" : slice}/${unitName(parsed)}`;
}
