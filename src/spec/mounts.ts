// The spec's mounts: the runtime's default filesystems and the request's bind mounts
// (CRI-O server/container_create_linux.go addOCIBindMounts, runtime-tools generator defaults).
import { InvalidArgumentError, UnimplementedError } from "../errors.ts";
import { MountPropagation, MountPropagationName, type IDMapping, type Mount } from "../proto/runtime-v1.ts";
import type { OciIdMapping, OciMount } from "./types.ts";

/** One line of the host's /proc/self/mountinfo that matters here. */
export interface HostMount {
  mountpoint: string;
  /** The optional fields, e.g. "shared:1", "master:3", "shared:2 master:1", "" (private). */
  optional: string;
}

export interface MountOptions {
  /** Host path of the sandbox's /dev/shm (a tmpfs the sandbox owns, or /dev/shm for host IPC). */
  shmPath: string;
  /** The host's mount table, for the propagation checks. */
  hostMounts: readonly HostMount[];
  /** Kernel ≥ 5.12 and a runtime that knows "rro" (mount_setattr MOUNT_ATTR_RDONLY|AT_RECURSIVE). */
  rroSupported: boolean;
  /** The runtime can do idmapped mounts. */
  idmapSupported?: boolean;
  /** bind_mount_prefix, joined in front of every host path. */
  bindMountPrefix?: string;
  /** Storage root: a private mount of a path containing it is made HOST_TO_CONTAINER. */
  storageRoot?: string;
  /** Mount the cgroup filesystem read-write (cgroup v2 with the rw annotation). */
  cgroupRW?: boolean;
  privileged?: boolean;
  /** Files the sandbox provides, bind mounted unless the request mounts the same path. */
  sandboxFiles?: SandboxFiles;
  /** The container's root is read-only: the sandbox files are mounted "ro" too. */
  readonlyRootfs?: boolean;
}

/** Host paths of the per-sandbox files every container of the pod shares. */
export interface SandboxFiles {
  /** → /etc/resolv.conf (the sandbox's generated or copied resolver config). */
  resolvPath?: string;
  /** → /etc/hostname. */
  hostnamePath?: string;
  /** → /etc/hosts; CRI-O gives it only to host-network pods (kubelet mounts its own otherwise). */
  hostsPath?: string;
  /** → /run/.containerenv. */
  containerEnvPath?: string;
}

export interface MountResult {
  mounts: OciMount[];
  /** linux.rootfsPropagation when a mount needs it ("rshared" or "rslave"). */
  rootfsPropagation?: string;
  /** Host paths whose SELinux label the caller must set (selinux_relabel requested). */
  relabel: string[];
}

function cleanPath(p: string): string {
  const abs = p.startsWith("/");
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  const joined = parts.join("/");
  return abs ? `/${joined}` : joined || ".";
}

function joinPath(prefix: string, p: string): string {
  return prefix ? cleanPath(`${prefix}/${p}`) : cleanPath(p);
}

/** CRI-O isSubDirectoryOf(base, target): base is target or lies below it. */
function isSubDirectoryOf(base: string, target: string): boolean {
  const b = `${cleanPath(base)}/`.replace("//", "/");
  const t = `${cleanPath(target)}/`.replace("//", "/");
  return b.startsWith(t);
}

/** The mount a path lives on: itself or its nearest ancestor in the host table. */
function sourceMount(path: string, hostMounts: readonly HostMount[]): HostMount {
  let p = cleanPath(path);
  for (;;) {
    const m = hostMounts.find((h) => h.mountpoint === p);
    if (m) return m;
    if (p === "/") break;
    p = p.slice(0, p.lastIndexOf("/")) || "/";
  }
  throw new InvalidArgumentError(`could not find source mount of ${path}`);
}

function ensureShared(path: string, hostMounts: readonly HostMount[]): void {
  const m = sourceMount(path, hostMounts);
  if (m.optional.split(" ").some((o) => o.startsWith("shared:"))) return;
  throw new InvalidArgumentError(`path ${JSON.stringify(path)} is mounted on ${JSON.stringify(m.mountpoint)} but it is not a shared mount`);
}

function ensureSharedOrSlave(path: string, hostMounts: readonly HostMount[]): void {
  const m = sourceMount(path, hostMounts);
  if (m.optional.split(" ").some((o) => o.startsWith("shared:") || o.startsWith("master:"))) return;
  throw new InvalidArgumentError(
    `path ${JSON.stringify(path)} is mounted on ${JSON.stringify(m.mountpoint)} but it is not a shared or slave mount`,
  );
}

function idMappings(m: readonly IDMapping[]): OciIdMapping[] | undefined {
  if (m.length === 0) return undefined;
  return m.map((x) => ({ containerID: x.containerId, hostID: x.hostId, size: x.length }));
}

/**
 * runtime-tools' default filesystems with CRI-O's changes: /dev/shm is the sandbox's shm bind
 * mount, and /sys/fs/cgroup is added (ro unless cgroupRW). Privileged containers get every "ro"
 * replaced by "rw" (CRI-O setOCIBindMountsPrivileged).
 */
export function defaultMounts(shmPath: string, cgroupRW = false, privileged = false): OciMount[] {
  const mounts: OciMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", cgroupRW ? "rw" : "ro"],
    },
    { destination: "/dev/shm", type: "bind", source: shmPath, options: ["rw", "bind"] },
  ];
  if (privileged) {
    for (const m of mounts) {
      const opts = m.options ?? [];
      if (opts.includes("rw")) continue;
      m.options = [...opts.filter((o) => o !== "ro"), "rw"];
    }
  }
  return mounts;
}

const depth = (p: string) => cleanPath(p).split("/").length - 1;

/**
 * Bind mounts of the sandbox's files (CRI-O setupContainerMounts): "ro" when the root is
 * read-only, else "rw"; resolv.conf also nodev,nosuid,noexec. A path the request mounts itself is
 * left to the request (kubelet brings its own /etc/hosts for pod-network pods). Privileged
 * containers get them read-write, as CRI-O's setOCIBindMountsPrivileged does for every mount
 * added before the request's.
 */
export function sandboxFileMounts(
  files: SandboxFiles,
  requested: ReadonlySet<string>,
  readonlyRootfs: boolean,
  privileged = false,
): OciMount[] {
  const mode = readonlyRootfs ? "ro" : "rw";
  const out: OciMount[] = [];
  const add = (destination: string, source: string | undefined, extra: string[]) => {
    if (!source || requested.has(destination)) return;
    let options = [mode, "bind", ...extra];
    if (privileged && mode === "ro") options = [...options.filter((o) => o !== "ro"), "rw"];
    out.push({ destination, type: "bind", source, options });
  };
  add("/etc/resolv.conf", files.resolvPath, ["nodev", "nosuid", "noexec"]);
  add("/etc/hostname", files.hostnamePath, []);
  add("/run/.containerenv", files.containerEnvPath, []);
  add("/etc/hosts", files.hostsPath, []);
  return out;
}

/**
 * The spec's mounts: defaults not shadowed by the request (a requested /dev or /sys also drops
 * the defaults below it, and a requested /sys drops /sys/fs/cgroup), then the sandbox's files
 * (sandboxFileMounts) the request does not mount itself, then the request's bind
 * mounts sorted by depth (so a parent is mounted before its children). Each bind mount gets
 * "rbind", its propagation (PRIVATE → rprivate; HOST_TO_CONTAINER → rslave, needs the host mount
 * shared or slave, makes the rootfs rslave; BIDIRECTIONAL → rshared, needs the host mount
 * shared, makes the rootfs rshared), then "rro" / "ro" / "rw". Recursive read-only needs
 * readonly, PRIVATE propagation and kernel support.
 */
export function mounts(criMounts: readonly Mount[], options: MountOptions): MountResult {
  const sorted = [...criMounts].sort((a, b) => depth(a.containerPath) - depth(b.containerPath));
  const requested = new Set(sorted.filter((m) => m.containerPath !== "").map((m) => cleanPath(m.containerPath)));
  const out: OciMount[] = [];
  for (const m of defaultMounts(options.shmPath, options.cgroupRW, options.privileged)) {
    const dst = cleanPath(m.destination);
    if (requested.has(dst)) continue;
    if (requested.has("/dev") && dst.startsWith("/dev/")) continue;
    if (requested.has("/sys") && dst.startsWith("/sys/")) continue;
    out.push(m);
  }
  if (options.sandboxFiles) {
    out.push(...sandboxFileMounts(options.sandboxFiles, requested, options.readonlyRootfs ?? false, options.privileged ?? false));
  }

  let rootfsPropagation: string | undefined;
  const relabel: string[] = [];
  for (const m of sorted) {
    if (m.containerPath === "") throw new InvalidArgumentError("mount.ContainerPath is empty");
    if (m.image?.image) {
      throw new UnimplementedError(`image volume mount at ${m.containerPath} (image ${m.image.image}) is not supported yet`);
    }
    if (m.hostPath === "") throw new InvalidArgumentError(`mount.HostPath is empty for ${m.containerPath}`);
    let propagation = m.propagation;
    if (options.storageRoot && propagation === MountPropagation.PROPAGATION_PRIVATE && isSubDirectoryOf(options.storageRoot, m.hostPath)) {
      // CRI-O: a private mount that includes the storage root would pin container mounts.
      propagation = MountPropagation.PROPAGATION_HOST_TO_CONTAINER;
    }
    const src = joinPath(options.bindMountPrefix ?? "", m.hostPath);
    const opts = ["rbind"];
    switch (propagation) {
      case MountPropagation.PROPAGATION_BIDIRECTIONAL:
        ensureShared(src, options.hostMounts);
        opts.push("rshared");
        rootfsPropagation = "rshared";
        break;
      case MountPropagation.PROPAGATION_HOST_TO_CONTAINER:
        ensureSharedOrSlave(src, options.hostMounts);
        opts.push("rslave");
        if (rootfsPropagation !== "rshared") rootfsPropagation = "rslave";
        break;
      default: // PRIVATE, and unknown values as CRI-O does
        opts.push("rprivate");
    }
    if (m.recursiveReadOnly && m.readonly) {
      if (!options.rroSupported) {
        throw new InvalidArgumentError(`recursive read-only mount support is not available for hostPath ${JSON.stringify(m.hostPath)}`);
      }
      if (propagation !== MountPropagation.PROPAGATION_PRIVATE) {
        throw new InvalidArgumentError(
          `recursive read-only mount requires private propagation for hostPath ${JSON.stringify(m.hostPath)}, got: ${MountPropagationName[propagation] ?? propagation}`,
        );
      }
      opts.push("rro");
    } else if (m.recursiveReadOnly) {
      throw new InvalidArgumentError(`recursive read-only mount conflicts with read-write mount for hostPath ${JSON.stringify(m.hostPath)}`);
    } else {
      opts.push(m.readonly ? "ro" : "rw");
    }
    if (m.selinuxRelabel) relabel.push(src);
    const uidMappings = idMappings(m.uidMappings ?? []);
    const gidMappings = idMappings(m.gidMappings ?? []);
    if ((uidMappings || gidMappings) && !options.idmapSupported) {
      throw new InvalidArgumentError("idmap mounts specified but OCI runtime does not support them. Perhaps the OCI runtime is too old");
    }
    const mount: OciMount = { destination: m.containerPath, type: "bind", source: src, options: opts };
    if (uidMappings) mount.uidMappings = uidMappings;
    if (gidMappings) mount.gidMappings = gidMappings;
    out.push(mount);
  }
  const result: MountResult = { mounts: out, relabel };
  if (rootfsPropagation) result.rootfsPropagation = rootfsPropagation;
  return result;
}
