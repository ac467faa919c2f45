// The pod's infra ("pause") container: run only when something needs it (drop_infra_ctr = false,
// or a pod that shares one PID namespace between its containers, which needs a process to hold
// that namespace). It runs pause_command from pause_image under conmon + the pod's runtime, in
// the pod's pinned net/ipc/uts namespaces and its cgroup, as CRI-O's infra container does. The
// sandbox's storage container is its container (same ID), made from the pause image.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError } from "../../errors.ts";
import { log } from "../../log.ts";
import { readExitFile } from "../../oci/index.ts";
import { ContainerConfig, NamespaceMode, type LinuxSandboxSecurityContext } from "../../proto/index.ts";
import { buildSpecWithNotes, type ImageConfig } from "../../spec/index.ts";
import type { SandboxMetadata, SandboxRecord } from "../../state/sandboxes.ts";
import { atomicWriteFile } from "../../storage/atomic.ts";
import type { ServerContext } from "../context.ts";
import { monitorCgroupOf, ociFor, releaseMonitorCgroup, waitMonitorGone } from "./container-common.ts";
import { hostFacts } from "./host-facts.ts";

/** CRI-O's infra container settings: lowest oom_score_adj a pod gets, minimal CPU weight. */
const INFRA_OOM_SCORE_ADJ = -998;
const INFRA_CPU_SHARES = 2;

export function needsInfra(ctx: ServerContext, pidMode: NamespaceMode): boolean {
  return !ctx.config.runtime.drop_infra_ctr || pidMode === NamespaceMode.POD;
}

/** The pause image's ID, pulled first when missing (with pause_image_auth_file). */
export async function pauseImage(ctx: ServerContext): Promise<{ id: string; config: ImageConfig }> {
  const img = ctx.config.image;
  let found = await ctx.images.find(img.pause_image);
  if (found === undefined) {
    log.info("Pulling the pause image", { image: img.pause_image });
    await ctx.images.pull(img.pause_image, img.pause_image_auth_file ? { authFile: img.pause_image_auth_file } : {});
    found = await ctx.images.find(img.pause_image);
    if (found === undefined) throw new FailedPreconditionError(`pause image ${img.pause_image} is not in storage after pulling it`);
  }
  const view = await ctx.images.view(found.image);
  return { id: found.image.id, config: (view.config?.config ?? {}) as ImageConfig };
}

export interface InfraSpec {
  id: string;
  name: string;
  metadata: SandboxMetadata;
  runtimeHandler: string;
  hostname: string;
  hostNetwork: boolean;
  hostIPC: boolean;
  namespaces: { net?: string; ipc?: string; uts?: string };
  shmPath: string;
  cgroupParent: string;
  cgroupPath: string;
  sysctls: Record<string, string>;
  securityContext: LinuxSandboxSecurityContext | undefined;
  resolvPath: string;
  hostnamePath: string;
  imageConfig: ImageConfig;
}

/** Creates and starts the infra container (its storage container exists, made from the pause image). */
export async function startInfra(ctx: ServerContext, s: InfraSpec): Promise<{ pid: number; monitorPid: number }> {
  const conf = ctx.config;
  const oci = ociFor(ctx, s.runtimeHandler);
  const mountPoint = await ctx.store.mount(s.id);
  const bundleDir = await ctx.store.containerRunDirectory(s.id);
  const persistDir = await ctx.store.containerDirectory(s.id);
  const sc = s.securityContext;
  const config = ContainerConfig.create({
    metadata: { name: "POD", attempt: s.metadata.attempt },
    command: [conf.image.pause_command],
    linux: {
      resources: { cpuShares: BigInt(INFRA_CPU_SHARES), oomScoreAdj: BigInt(INFRA_OOM_SCORE_ADJ) } as never,
      securityContext: {
        namespaceOptions: {
          network: s.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD,
          pid: NamespaceMode.CONTAINER,
          ipc: s.hostIPC ? NamespaceMode.NODE : NamespaceMode.POD,
          targetId: "",
          userNsOptions: undefined,
        },
        privileged: sc?.privileged ?? false,
        runAsUser: sc?.runAsUser,
        runAsGroup: sc?.runAsGroup,
        readonlyRootfs: sc?.readonlyRootfs ?? false,
        seccomp: sc?.seccomp,
        apparmor: sc?.apparmor,
        seccompProfilePath: sc?.seccompProfilePath ?? "",
        selinuxOptions: sc?.selinuxOptions,
        noNewPrivs: true,
      } as never,
    } as never,
  });
  const { spec } = buildSpecWithNotes({
    config,
    imageConfig: { ...s.imageConfig, Entrypoint: undefined, Cmd: undefined },
    rootfsPath: mountPoint,
    // The pod's own cgroup (<parent>/crio-<pod id>), which the infra container lives in.
    cgroupsPath: ctx.cgroups().containerCgroupPath(s.cgroupParent, s.id),
    hostname: s.hostname,
    sandbox: {
      shmPath: s.shmPath,
      namespaces: { network: s.namespaces.net, ipc: s.namespaces.ipc, uts: s.namespaces.uts },
      sysctls: s.sysctls,
    },
    runtime: {
      default_capabilities: conf.runtime.default_capabilities,
      default_ulimits: conf.runtime.default_ulimits,
      default_env: [],
      default_sysctls: [],
    },
    host: hostFacts(ctx.cgroups()),
    annotations: {
      "io.kubernetes.cri-o.ContainerType": "sandbox",
      "io.kubernetes.cri-o.SandboxID": s.id,
      "io.kubernetes.cri-o.ContainerID": s.id,
      "io.kubernetes.cri-o.Name": s.name,
      "io.kubernetes.cri-o.RuntimeHandler": s.runtimeHandler,
      "io.container.manager": "cri-o",
      "io.kubernetes.pod.name": s.metadata.name,
      "io.kubernetes.pod.namespace": s.metadata.namespace,
      "io.kubernetes.pod.uid": s.metadata.uid,
    },
  });
  const text = JSON.stringify(spec);
  writeFileSync(join(bundleDir, "config.json"), text, { mode: 0o600 });
  await atomicWriteFile(join(persistDir, "config.json"), text, 0o600);
  const cgroupManager = ctx.cgroups();
  const monitorCgroup = monitorCgroupOf(ctx, s.runtimeHandler);
  try {
    const created = await oci.createContainer({
      id: s.id,
      name: s.name,
      bundleDir,
      logPath: join(bundleDir, "infra.log"),
      exitsDir: conf.runtime.container_exits_dir,
      persistDir,
      moveMonitor: (pid) => cgroupManager.placeMonitor({ containerId: s.id, cgroupParent: s.cgroupParent, monitorCgroup, pid }).then(() => {}),
    });
    await oci.startContainer(s.id);
    log.info("Started infra container", { id: s.id, pid: created.pid });
    return created;
  } catch (err) {
    await releaseInfra(ctx, { id: s.id, runtimeHandler: s.runtimeHandler, cgroupParent: s.cgroupParent });
    throw err;
  }
}

/** How long the pause process gets for SIGTERM before SIGKILL. */
const INFRA_STOP_MS = 10_000;

/**
 * Stops the infra container and removes what the runtime and conmon hold (runtime state,
 * monitor cgroup, rootfs mount, exit file). Idempotent; also cleans up after a crashed create.
 */
export async function releaseInfra(ctx: ServerContext, r: { id: string; runtimeHandler: string; cgroupParent: string; infraMonitorPid?: number }): Promise<void> {
  const oci = ociFor(ctx, r.runtimeHandler);
  const exitFile = join(ctx.config.runtime.container_exits_dir, r.id);
  const st = await oci.state(r.id).catch(() => undefined);
  if (st !== undefined && st.status !== "stopped") {
    await oci.killContainer(r.id, "TERM").catch(() => {});
    const deadline = Date.now() + INFRA_STOP_MS;
    while (readExitFile(exitFile) === undefined && Date.now() < deadline && (await oci.state(r.id).then((x) => x.status !== "stopped", () => false))) {
      await Bun.sleep(20);
    }
    if (readExitFile(exitFile) === undefined) await oci.killContainer(r.id, "KILL").catch(() => {});
  }
  await oci.deleteContainer(r.id, true).catch(() => {});
  let monitorPid = r.infraMonitorPid;
  const pidFile = join(await ctx.store.containerRunDirectory(r.id).catch(() => "/nonexistent"), "conmon-pidfile");
  if (monitorPid === undefined && existsSync(pidFile)) monitorPid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10) || undefined;
  await waitMonitorGone({ monitorPid });
  await releaseMonitorCgroup(ctx, { id: r.id, runtimeHandler: r.runtimeHandler, cgroupParent: r.cgroupParent });
  await ctx.store.unmount(r.id, true).catch(() => {});
  rmSync(exitFile, { force: true });
}

/** Whether the infra container's process has exited (the pod can no longer run containers). */
export function infraExited(ctx: ServerContext, id: string, pid: number | undefined): boolean {
  if (readExitFile(join(ctx.config.runtime.container_exits_dir, id)) !== undefined) return true;
  return pid !== undefined && !existsSync(`/proc/${pid}`);
}

/** A READY sandbox whose infra container died is NOTREADY (kubelet then recreates the pod). */
export async function refreshSandboxState(ctx: ServerContext, rec: SandboxRecord): Promise<void> {
  if (rec.state !== "READY" || rec.infraPid === undefined) return;
  if (!infraExited(ctx, rec.id, rec.infraPid)) return;
  log.warn("the infra container of a pod sandbox exited: marking the sandbox NOTREADY", { id: rec.id });
  rec.state = "NOTREADY";
  await ctx.sandboxes.persist(rec);
}
