// CreateContainer: CRI-O server/container_create.go. Validate (nothing is made for a refused
// request), reserve the name, storage container + rootfs mount, the OCI spec, conmon + runtime
// create, record. Any failure undoes what was made, newest first.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { SystemdUnavailableError } from "../../cgroups/index.ts";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../../errors.ts";
import { log } from "../../log.ts";
import { ContainerEventType, NamespaceMode, type CreateContainerRequest, type CreateContainerResponse } from "../../proto/index.ts";
import { buildSpecWithNotes, stopSignal as specStopSignal, type ImageConfig, type OciSpec } from "../../spec/index.ts";
import { ContainerIndex, containerName, type ContainerRecord, type StoredResources } from "../../state/containers.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import { atomicWriteFile } from "../../storage/atomic.ts";
import { O_RDONLY, openInRoot } from "../../sys/fsat.ts";
import type { ServerContext } from "../context.ts";
import { monitorCgroupOf, ociFor, releaseMonitorCgroup } from "./container-common.ts";
import { apparmorEnabled, deviceFacts, hooks, hostDevices, seccompProfiles, selinuxEnabled } from "./spec-inputs.ts";
import { hostFacts } from "./host-facts.ts";

/** CRI-O's annotation keys on the spec (pkg/annotations), so a restart or `crio status` can tell. */
export const ANN = {
  ContainerID: "io.kubernetes.cri-o.ContainerID",
  ContainerName: "io.kubernetes.cri-o.Name",
  ContainerType: "io.kubernetes.cri-o.ContainerType",
  Created: "io.kubernetes.cri-o.Created",
  Image: "io.kubernetes.cri-o.Image",
  ImageName: "io.kubernetes.cri-o.ImageName",
  ImageRef: "io.kubernetes.cri-o.ImageRef",
  Labels: "io.kubernetes.cri-o.Labels",
  Annotations: "io.kubernetes.cri-o.Annotations",
  LogPath: "io.kubernetes.cri-o.LogPath",
  Metadata: "io.kubernetes.cri-o.Metadata",
  MountPoint: "io.kubernetes.cri-o.MountPoint",
  ResolvPath: "io.kubernetes.cri-o.ResolvPath",
  HostnamePath: "io.kubernetes.cri-o.HostnamePath",
  SandboxID: "io.kubernetes.cri-o.SandboxID",
  SandboxName: "io.kubernetes.cri-o.SandboxName",
  Stdin: "io.kubernetes.cri-o.Stdin",
  StdinOnce: "io.kubernetes.cri-o.StdinOnce",
  TTY: "io.kubernetes.cri-o.TTY",
  RuntimeHandler: "io.kubernetes.cri-o.RuntimeHandler",
  ContainerManager: "io.container.manager",
} as const;

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, ki: 1024, kib: 1024, m: 1e6, mb: 1e6, mi: 2 ** 20, mib: 2 ** 20, g: 1e9, gb: 1e9, gi: 2 ** 30, gib: 2 ** 30 };

/** "12MiB", "500KiB", "" → bytes (undefined when empty or unparsable). */
export function parseMinMemory(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] as string).toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

/**
 * TEST ONLY (test/integration/containers-crash.test.ts): points of create() at which a daemon
 * started with CRIO_TEST_KILL_AT=<step> SIGKILLs itself. Each names the step just finished.
 */
export const CONTAINER_CRASH_STEPS = [
  "ctr-storage", // the storage container exists
  "ctr-mount", // its rootfs is mounted
  "ctr-spec", // config.json written
  "ctr-created", // conmon runs and the runtime has the container (created, not started)
  "ctr-record", // container.json written
] as const;
const KILL_AT = process.env.CRIO_TEST_KILL_AT;
function crashPoint(step: (typeof CONTAINER_CRASH_STEPS)[number]): void {
  if (KILL_AT === step) process.kill(process.pid, "SIGKILL");
}

/** CRI-O's annotation asking for host devices (admitted by a handler's allowed_annotations). */
const DEVICES_ANNOTATION = "devices.crio.io";

function annotationAllowed(allowed: readonly string[], name: string): boolean {
  return allowed.some((a) => a === name || name.startsWith(a));
}

export function createContainerHandler(ctx: ServerContext) {
  return async (req: CreateContainerRequest): Promise<CreateContainerResponse> => {
    const cfg = req.config;
    if (req.podSandboxId === "") throw new InvalidArgumentError("PodSandboxId should not be empty");
    if (cfg === undefined) throw new InvalidArgumentError("ContainerConfig should not be empty");
    const md = cfg.metadata;
    if (md === undefined || md.name === "") throw new InvalidArgumentError("ContainerConfig.Metadata.Name should not be empty");
    if (md.name.includes("/") || md.name.includes("\0")) throw new InvalidArgumentError(`ContainerConfig.Metadata.Name ${JSON.stringify(md.name)} must not contain "/" or NUL`);
    if (cfg.image === undefined || cfg.image.image === "") throw new InvalidArgumentError("ContainerConfig.Image.Image should not be empty");
    const sb = ctx.sandboxes.find(req.podSandboxId);
    if (sb === undefined) throw new NotFoundError(`could not find pod sandbox ${JSON.stringify(req.podSandboxId)}`);
    if (sb.state !== "READY" || sb.stopped) throw new FailedPreconditionError(`CreateContainer failed as the sandbox was stopped: ${sb.id}`);

    const name = containerName({ name: md.name, attempt: md.attempt }, sb.metadata);
    const id = ctx.containers.newId((x) => ctx.sandboxes.knows(x));
    ctx.containers.reserveName(name, id);
    let rec: ContainerRecord | undefined;
    try {
      rec = await ctx.containers.locks.run(id, () => create(ctx, req, sb, id, name));
      ctx.containers.settle(name, id, rec);
      ctx.events.emit(id, ContainerEventType.CONTAINER_CREATED_EVENT, sb.id);
      log.info("Created container", { id, name });
      return { containerId: id };
    } finally {
      ctx.containers.settle(name, id, rec);
    }
  };
}

async function create(ctx: ServerContext, req: CreateContainerRequest, sb: SandboxRecord, id: string, name: string): Promise<ContainerRecord> {
  const cfg = req.config!;
  const md = cfg.metadata!;
  const conf = ctx.config;
  const undo: Array<{ what: string; fn: () => Promise<void> | void }> = [];
  try {
    const found = await ctx.images.find(cfg.image!.image);
    if (found === undefined) throw new NotFoundError(`image ${JSON.stringify(cfg.image!.image)} not found: pull it first`);
    const view = await ctx.images.view(found.image);
    const imageConfig = (view.config?.config ?? {}) as ImageConfig;
    const imageId = found.image.id;
    const imageName = found.matchedName ?? found.image.names[0] ?? imageId;
    const imageRef = view.image.repoDigests[0] ?? imageId;

    const handler = sb.runtimeHandler;
    const oci = ociFor(ctx, handler);
    const h = conf.runtime.runtimes[handler]!;
    const privileged = cfg.linux?.securityContext?.privileged ?? false;

    // Mounts: absolute paths; a missing host path is made as a directory, as kubelet expects.
    for (const m of cfg.mounts) {
      if (!isAbsolute(m.containerPath)) throw new InvalidArgumentError(`mount container path ${JSON.stringify(m.containerPath)} must be absolute`);
      if (m.hostPath === "" || !isAbsolute(m.hostPath)) throw new InvalidArgumentError(`mount host path ${JSON.stringify(m.hostPath)} for ${m.containerPath} must be absolute`);
    }

    const createdNs = BigInt(Date.now()) * 1_000_000n;
    await ctx.store.createContainer({
      id,
      names: [name],
      imageId,
      metadata: ContainerIndex.storageMetadata({
        id, sandbox: sb, name, metadataName: md.name, attempt: md.attempt, imageName, imageId, createdNs, privileged,
      }),
    });
    undo.push({ what: "storage container", fn: () => ctx.store.deleteContainer(id) });
    crashPoint("ctr-storage");
    const persistDir = await ctx.store.containerDirectory(id);
    const bundleDir = await ctx.store.containerRunDirectory(id);
    const mountPoint = await ctx.store.mount(id);
    undo.push({ what: "rootfs mount", fn: async () => void (await ctx.store.unmount(id, true)) });
    crashPoint("ctr-mount");

    for (const m of cfg.mounts) {
      if (!existsSync(m.hostPath)) {
        mkdirSync(m.hostPath, { recursive: true, mode: 0o755 });
        log.debug("created missing mount source directory", { id, path: m.hostPath });
      }
    }

    const { passwd, group } = readUserFiles(mountPoint);
    const cgroupManager = ctx.cgroups();
    const cgroupParent = sb.cgroupParent ?? "";
    if (cgroupManager.name === "systemd" && sb.cgroupParent === undefined) {
      throw new FailedPreconditionError("cgroup_manager is systemd but systemd is not reachable on this node: set cgroup_manager = \"cgroupfs\"");
    }
    const cgroupsPath = cgroupManager.containerCgroupPath(cgroupParent, id);

    let logPath = cfg.logPath;
    logPath = logPath === "" ? join(sb.logDirectory, `${id}.log`) : join(sb.logDirectory, logPath);
    mkdirSync(dirname(logPath), { recursive: true, mode: 0o700 });

    const stopSignal = specStopSignal(imageConfig, cfg.stopSignal).number;

    const host = hostFacts(cgroupManager, cfg.mounts.length > 0);
    host.storageRoot = conf.root;
    host.containerMinMemory = parseMinMemory(h.container_min_memory);
    host.apparmorEnabled = apparmorEnabled();
    // With `selinux = true` on an SELinux host the request's selinux_options are passed through
    // (a complete user:role:type:level); labels are not allocated here yet (no MCS pairs).
    host.selinuxEnabled = conf.runtime.selinux && selinuxEnabled();
    const deviceAnnotation = annotationAllowed(h.allowed_annotations, DEVICES_ANNOTATION) ? cfg.annotations[DEVICES_ANNOTATION] : undefined;
    host.devices = deviceFacts(conf, cfg, deviceAnnotation);
    if (privileged && !h.privileged_without_host_devices) host.hostDevices = hostDevices();
    const nsOpts = cfg.linux?.securityContext?.namespaceOptions;
    let targetPidNamespace: string | undefined;
    if (nsOpts?.pid === NamespaceMode.TARGET) {
      const target = ctx.containers.find(nsOpts.targetId);
      if (target?.pid === undefined) throw new NotFoundError(`target container ${JSON.stringify(nsOpts.targetId)} is not running`);
      targetPidNamespace = `/proc/${target.pid}/ns/pid`;
    }
    const createdIso = new Date(Number(createdNs / 1_000_000n)).toISOString();
    const { spec, notes } = buildSpecWithNotes({
      config: cfg,
      imageConfig,
      passwd,
      group,
      rootfsPath: mountPoint,
      cgroupsPath,
      hostname: sb.hostname,
      sandbox: {
        shmPath: sb.shmPath ?? "/dev/shm",
        namespaces: {
          network: sb.netnsPath,
          ipc: sb.ipcnsPath,
          uts: sb.utsnsPath,
          pid: sb.infraPid !== undefined ? `/proc/${sb.infraPid}/ns/pid` : undefined,
        },
        sysctls: sb.sysctls,
        resolvPath: sb.resolvPath,
        hostnamePath: sb.hostnamePath,
        hostsPath: sb.hostsPath,
        annotations: sb.annotations,
      },
      seccompProfiles: seccompProfiles(conf, handler, cfg),
      deviceAnnotation,
      hooks: hooks(conf),
      targetPidNamespace,
      runtime: {
        default_capabilities: conf.runtime.default_capabilities,
        add_inheritable_capabilities: conf.runtime.add_inheritable_capabilities,
        default_ulimits: conf.runtime.default_ulimits,
        default_env: conf.runtime.default_env,
        default_sysctls: [],
        pids_limit: conf.runtime.pids_limit > 0 ? conf.runtime.pids_limit : undefined,
        bind_mount_prefix: conf.runtime.bind_mount_prefix || undefined,
        apparmor_profile: conf.runtime.apparmor_profile,
        seccomp_profile: h.seccomp_profile || conf.runtime.seccomp_profile,
        privileged_seccomp_profile: conf.runtime.privileged_seccomp_profile,
        additional_devices: conf.runtime.additional_devices,
        allowed_devices: conf.runtime.allowed_devices,
        privileged_without_host_devices: h.privileged_without_host_devices,
        device_ownership_from_security_context: conf.runtime.device_ownership_from_security_context,
        hostnetwork_disable_selinux: conf.runtime.hostnetwork_disable_selinux,
      },
      host,
      annotations: {
        [ANN.ContainerID]: id,
        [ANN.ContainerName]: name,
        [ANN.ContainerType]: "container",
        [ANN.Created]: createdIso,
        [ANN.Image]: imageId,
        [ANN.ImageName]: imageName,
        [ANN.ImageRef]: imageRef,
        [ANN.Labels]: JSON.stringify(cfg.labels),
        [ANN.Annotations]: JSON.stringify(cfg.annotations),
        [ANN.LogPath]: logPath,
        [ANN.Metadata]: JSON.stringify({ name: md.name, attempt: md.attempt }),
        [ANN.MountPoint]: mountPoint,
        [ANN.ResolvPath]: sb.resolvPath,
        [ANN.HostnamePath]: sb.hostnamePath,
        [ANN.SandboxID]: sb.id,
        [ANN.SandboxName]: sb.name,
        [ANN.Stdin]: String(cfg.stdin),
        [ANN.StdinOnce]: String(cfg.stdinOnce),
        [ANN.TTY]: String(cfg.tty),
        [ANN.RuntimeHandler]: handler,
        [ANN.ContainerManager]: "cri-o",
        "io.kubernetes.pod.name": sb.metadata.name,
        "io.kubernetes.pod.namespace": sb.metadata.namespace,
        "io.kubernetes.pod.uid": sb.metadata.uid,
        "io.kubernetes.container.name": md.name,
      },
    });
    if (notes.capabilitiesNotHeld.length > 0) log.warn("capabilities the daemon does not hold were left out", { id, capabilities: notes.capabilitiesNotHeld });
    if (notes.seccompProfile !== "") log.debug("seccomp profile", { id, profile: notes.seccompProfile });
    if (notes.oomScoreAdjClamped) log.info("oom_score_adj raised to the daemon's", { id, ...notes.oomScoreAdjClamped });

    const specText = JSON.stringify(spec);
    writeFileSync(join(bundleDir, "config.json"), specText, { mode: 0o600 });
    await atomicWriteFile(join(persistDir, "config.json"), specText, 0o600);
    crashPoint("ctr-spec");

    const monitorCgroup = monitorCgroupOf(ctx, handler);
    // Undone after the runtime's container (undo runs newest first): conmon must be gone first.
    undo.push({ what: "monitor cgroup", fn: () => releaseMonitorCgroup(ctx, { id, runtimeHandler: handler, cgroupParent }) });
    const created = await oci.createContainer({
      id,
      name,
      bundleDir,
      logPath,
      exitsDir: conf.runtime.container_exits_dir,
      persistDir,
      terminal: cfg.tty,
      stdin: cfg.stdin,
      stdinOnce: cfg.stdinOnce,
      timeoutMs: (h.container_create_timeout > 0 ? h.container_create_timeout : 240) * 1000,
      moveMonitor: async (pid) => {
        try {
          await cgroupManager.placeMonitor({ containerId: id, cgroupParent, monitorCgroup, pid });
        } catch (err) {
          if (err instanceof SystemdUnavailableError) throw new FailedPreconditionError(`cannot place conmon: ${err.message}`);
          throw err;
        }
      },
    });
    undo.push({
      what: "runtime container",
      fn: async () => {
        await oci.killContainer(id, 9).catch(() => {});
        await oci.deleteContainer(id, true).catch(() => {});
      },
    });
    crashPoint("ctr-created");

    const rec: ContainerRecord = {
      version: 1,
      id,
      name,
      sandboxId: sb.id,
      metadata: { name: md.name, attempt: md.attempt },
      labels: { ...cfg.labels },
      annotations: { ...cfg.annotations },
      image: { image: cfg.image!.image, annotations: { ...cfg.image!.annotations }, userSpecifiedImage: cfg.image!.userSpecifiedImage },
      imageName,
      imageId,
      imageRef,
      createdNs: createdNs.toString(),
      started: false,
      logPath,
      bundleDir,
      persistDir,
      mountPoint,
      runtimeHandler: handler,
      cgroupsPath,
      cgroupParent,
      mounts: cfg.mounts.map((m) => ({
        containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly, selinuxRelabel: m.selinuxRelabel, propagation: m.propagation,
      })),
      stopSignal,
      user: { uid: spec.process.user.uid, gid: spec.process.user.gid, supplementalGroups: spec.process.user.additionalGids ?? [] },
      resources: storedResources(spec),
      privileged,
      sharedPidNamespace: !spec.linux.namespaces.some((n) => n.type === "pid" && n.path === undefined),
      tty: cfg.tty,
      stdin: cfg.stdin,
      stdinOnce: cfg.stdinOnce,
      pid: created.pid,
      monitorPid: created.monitorPid,
    };
    await ctx.containers.persist(rec);
    crashPoint("ctr-record");
    return rec;
  } catch (err) {
    for (const u of undo.reverse()) {
      try {
        await u.fn();
      } catch (e) {
        log.error(`CreateContainer rollback: could not remove the ${u.what}`, { id, error: e });
      }
    }
    throw err;
  }
}

/** The image's /etc/passwd and /etc/group, read inside the rootfs (symlinks cannot leave it). */
function readUserFiles(rootfs: string): { passwd?: string; group?: string } {
  const rootfd = openSync(rootfs, "r");
  try {
    const read = (path: string): string | undefined => {
      let fd: number;
      try {
        fd = openInRoot(rootfd, path, O_RDONLY);
      } catch {
        return undefined;
      }
      try {
        if (statSync(`/proc/self/fd/${fd}`).size > 16 * 1024 * 1024) return undefined;
        return readFileSync(fd, "utf8");
      } catch {
        return undefined;
      } finally {
        closeSync(fd);
      }
    };
    return { passwd: read("etc/passwd"), group: read("etc/group") };
  } finally {
    closeSync(rootfd);
  }
}

/** The resources ContainerStatus reports, from the spec's linux.resources. */
export function storedResources(spec: OciSpec): StoredResources {
  const r = spec.linux.resources ?? {};
  return {
    cpuPeriod: r.cpu?.period ?? 0,
    cpuQuota: r.cpu?.quota ?? 0,
    cpuShares: r.cpu?.shares ?? 0,
    memoryLimitInBytes: r.memory?.limit ?? 0,
    memorySwapLimitInBytes: r.memory?.swap ?? 0,
    oomScoreAdj: spec.process.oomScoreAdj ?? 0,
    cpusetCpus: r.cpu?.cpus ?? "",
    cpusetMems: r.cpu?.mems ?? "",
    hugepageLimits: (r.hugepageLimits ?? []).map((x) => ({ pageSize: x.pageSize, limit: x.limit })),
    unified: { ...(r.unified ?? {}) },
  };
}
