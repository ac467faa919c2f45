// linux.devices and the device cgroup rules in linux.resources.devices (CRI-O
// internal/factory/container/device_linux.go SpecAddDevices, internal/config/device). The caller
// stats the host paths (deviceHostPaths lists them) and passes what it found; nothing here
// touches the file system.
import { InvalidArgumentError } from "../errors.ts";
import type { Device } from "../proto/runtime-v1.ts";
import type { OciDevice, OciDeviceCgroup } from "./types.ts";

/** A device node on the host, as stat(2) shows it. */
export interface HostDeviceNode {
  /** "c" character, "b" block, "p" FIFO. */
  type: "c" | "b" | "p";
  major: number;
  minor: number;
  /** Permission bits (st_mode without the file type), e.g. 0o666. */
  fileMode: number;
  uid: number;
  gid: number;
}

/** What the caller found at a host path: a device node, or a directory (its nodes are listed under it). */
export type HostPathFact = HostDeviceNode | { type: "d" };

/** A host device with its path, for privileged containers (runc's devices.HostDevices()). */
export interface HostDevice extends HostDeviceNode {
  path: string;
}

/** One "host[:container][:permissions]" entry (additional_devices, devices.crio.io). */
export interface DeviceSpec {
  hostPath: string;
  containerPath: string;
  permissions: string;
}

function validMode(mode: string): boolean {
  if (mode === "") return false;
  const seen = new Set<string>();
  for (const c of mode) {
    if (!"rwm".includes(c) || seen.has(c)) return false;
    seen.add(c);
  }
  return true;
}

/**
 * Parses "host[:container][:permissions]" (podman's ParseDevice): the container path defaults
 * to the host path, the permissions to "rwm"; the second field is a permission string if it
 * looks like one. The container path must lie under /dev/.
 */
export function parseDeviceSpec(entry: string): DeviceSpec {
  const parts = entry.split(":");
  if (parts.length > 3 || parts[0] === "") throw new InvalidArgumentError(`invalid device specification: ${JSON.stringify(entry)}`);
  const hostPath = parts[0] ?? "";
  let containerPath = "";
  let permissions = "rwm";
  if (parts.length === 3) {
    if (!validMode(parts[2] ?? "")) throw new InvalidArgumentError(`invalid device mode: ${JSON.stringify(parts[2])} in ${JSON.stringify(entry)}`);
    permissions = parts[2] ?? "rwm";
  }
  if (parts.length >= 2) {
    const second = parts[1] ?? "";
    if (parts.length === 2 && validMode(second)) permissions = second;
    else if (second !== "" && !second.startsWith("/")) throw new InvalidArgumentError(`invalid device mode: ${JSON.stringify(second)} in ${JSON.stringify(entry)}`);
    else containerPath = second;
  }
  if (containerPath === "") containerPath = hostPath;
  if (!containerPath.startsWith("/dev/")) {
    throw new InvalidArgumentError(`invalid device ${JSON.stringify(entry)}: the container path must be under /dev/`);
  }
  return { hostPath, containerPath, permissions };
}

export interface DeviceOptions {
  /** additional_devices: added to every container. */
  additional?: readonly string[];
  /** The devices.crio.io annotation value ("spec,spec,..."), checked against allowed_devices. */
  annotation?: string;
  allowed?: readonly string[];
  privileged: boolean;
  /** privileged_without_host_devices of the runtime handler. */
  privilegedWithoutHostDevices?: boolean;
  /** Every device on the host (for privileged containers). */
  hostDevices?: readonly HostDevice[];
  /** What stat found at each host path deviceHostPaths listed, keyed by full path. */
  facts?: Readonly<Record<string, HostPathFact>>;
  /** device_ownership_from_security_context, with the container's run_as_user / run_as_group. */
  ownershipFromSecurityContext?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
}

export interface DeviceResult {
  devices: OciDevice[];
  /** linux.resources.devices: deny-all first (or allow-all for privileged), then the allows. */
  cgroup: OciDeviceCgroup[];
}

/** The host paths the caller must stat (and walk, for directories) before calling devices(). */
export function deviceHostPaths(criDevices: readonly Device[], options: Pick<DeviceOptions, "additional" | "annotation">): string[] {
  const paths = [
    ...(options.additional ?? []).filter((e) => e !== "").map((e) => parseDeviceSpec(e).hostPath),
    ...(options.annotation ?? "").split(",").filter((e) => e !== "").map((e) => parseDeviceSpec(e).hostPath),
    ...criDevices.map((d) => d.hostPath),
  ];
  return [...new Set(paths)];
}

function node(facts: DeviceOptions["facts"], path: string, what: string): HostDeviceNode {
  const f = facts?.[path];
  if (!f) throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} does not exist on the host`);
  if (f.type === "d") throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} is not a device`);
  return f;
}

/**
 * The container's devices, in CRI-O's order: additional_devices, then the devices annotation
 * (only host paths in allowed_devices), then for privileged containers every host device with
 * an allow-all cgroup rule (unless privileged_without_host_devices), then the request's devices.
 * A request device whose host path is a directory brings every device node below it, with the
 * container path rebased. A host path that is missing (or, outside directories, not a device)
 * is InvalidArgument. A later device with the same container path replaces an earlier one.
 */
export function devices(criDevices: readonly Device[], options: DeviceOptions): DeviceResult {
  const list: OciDevice[] = [];
  let cgroup: OciDeviceCgroup[] = [{ allow: false, access: "rwm" }];
  const add = (d: OciDevice) => {
    const i = list.findIndex((x) => x.path === d.path);
    if (i >= 0) list[i] = d;
    else list.push(d);
  };
  const allowRule = (n: HostDeviceNode, access: string): OciDeviceCgroup => ({ allow: true, type: n.type, major: n.major, minor: n.minor, access });

  const configured = (entries: readonly string[], what: string, allowed?: ReadonlySet<string>) => {
    for (const entry of entries) {
      if (entry === "") continue;
      const spec = parseDeviceSpec(entry);
      if (allowed && !allowed.has(spec.hostPath)) {
        throw new InvalidArgumentError(`device ${spec.hostPath} is specified but is not in allowed_devices`);
      }
      const n = node(options.facts, spec.hostPath, what);
      add({ path: spec.containerPath, type: n.type, major: n.major, minor: n.minor, fileMode: n.fileMode, uid: n.uid, gid: n.gid });
      cgroup.push(allowRule(n, spec.permissions));
    }
  };
  configured(options.additional ?? [], "additional device");
  if (options.annotation) configured(options.annotation.split(","), "annotated device", new Set(options.allowed ?? []));

  const hostDevices = options.privileged && !options.privilegedWithoutHostDevices;
  if (hostDevices) {
    for (const d of options.hostDevices ?? []) {
      if (d.major === 0 && d.minor === 0) continue; // not a real device (a dangling link, say)
      add({ path: d.path, type: d.type, major: d.major, minor: d.minor, uid: d.uid, gid: d.gid });
    }
    cgroup = [{ allow: true, access: "rwm" }];
  }

  const owner = (runAs: number | undefined, host: number) =>
    options.ownershipFromSecurityContext && runAs !== undefined && runAs > 0 ? runAs : host;
  for (const d of criDevices) {
    if (d.hostPath === "" || d.containerPath === "") {
      throw new InvalidArgumentError(`device needs both host_path and container_path, got ${JSON.stringify(d.hostPath)} → ${JSON.stringify(d.containerPath)}`);
    }
    const access = d.permissions === "" ? "rwm" : d.permissions;
    if (!validMode(access)) throw new InvalidArgumentError(`invalid permissions ${JSON.stringify(d.permissions)} for device ${d.hostPath}`);
    if (hostDevices && d.containerPath !== d.hostPath && (options.hostDevices ?? []).some((h) => h.path === d.containerPath)) {
      // The host's node at that path is already in the container and would hide the request's.
      throw new InvalidArgumentError(
        `privileged container was configured with a device container path that already exists on the host: ${d.containerPath}`,
      );
    }
    const fact = options.facts?.[d.hostPath];
    const prefix = `${d.hostPath.replace(/\/+$/, "")}/`;
    const children = Object.entries(options.facts ?? {}).filter(([p, f]) => p.startsWith(prefix) && f.type !== "d");
    if (fact && fact.type !== "d") {
      add({
        path: d.containerPath,
        type: fact.type,
        major: fact.major,
        minor: fact.minor,
        uid: owner(options.runAsUser, fact.uid),
        gid: owner(options.runAsGroup, fact.gid),
      });
      cgroup.push(allowRule(fact, access));
    } else if (fact?.type === "d" || children.length > 0) {
      for (const [path, n] of children.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (n.type === "d") continue;
        add({ path: d.containerPath.replace(/\/+$/, "") + path.slice(prefix.length - 1), type: n.type, major: n.major, minor: n.minor, uid: n.uid, gid: n.gid });
        cgroup.push(allowRule(n, access));
      }
    } else {
      throw new InvalidArgumentError(`device ${JSON.stringify(d.hostPath)} does not exist on the host`);
    }
  }
  return { devices: list, cgroup };
}
