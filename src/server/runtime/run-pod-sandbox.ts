// RunPodSandbox: the pod's namespaces, network, cgroup and files, with no infra container
// (drop_infra_ctr = true behaviour). CRI-O server/sandbox_run_linux.go runPodSandbox, in order:
// validate (nothing is made for a refused request), reserve the name, storage container, pins,
// cgroup, CNI ADD, files, record. Any failure undoes what was made, newest first.
//
// Crash safety: each resource is named in the progress file (creating.json) before it is made,
// so that a daemon killed at any point between two steps leaves nothing restart recovery cannot
// find (SandboxIndex.restore hands it to releaseAll). Only sandbox.json makes the pod real.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname as hostHostname } from "node:os";
import { isAbsolute, join } from "node:path";
import { SystemdUnavailableError } from "../../cgroups/index.ts";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../../errors.ts";
import { log } from "../../log.ts";
import {
  ContainerEventType,
  NamespaceMode,
  Protocol,
  type DNSConfig,
  type PodSandboxConfig,
  type RunPodSandboxRequest,
  type RunPodSandboxResponse,
} from "../../proto/index.ts";
import { namespacePath, pinNamespaces, type PinnedPaths, type PodNamespaceType } from "../../sandbox/namespaces.ts";
import { parseDefaultSysctls, podSysctls } from "../../sandbox/sysctl.ts";
import {
  SandboxIndex,
  sandboxName,
  infraContainerName,
  type SandboxMetadata,
  type SandboxPortMapping,
  type SandboxRecord,
  type SandboxResources,
} from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";
import { crioMetrics } from "../../metrics/index.ts";
import { needsInfra, pauseImage, releaseInfra, startInfra } from "./infra-container.ts";
import { DEFAULT_SHM_SIZE, HOST_SHM, mountShm, releaseCgroup, releaseNetworkAndPins, releaseShm } from "./sandbox-common.ts";

/** How long a pod that needs CNI waits for a network configuration before UNAVAILABLE. */
export const CNI_READY_TIMEOUT_MS = 5_000;

const PROTOCOLS: Readonly<Record<number, SandboxPortMapping["protocol"]>> = {
  [Protocol.TCP]: "tcp",
  [Protocol.UDP]: "udp",
  [Protocol.SCTP]: "sctp",
};

/**
 * TEST ONLY (test/integration/sandbox-crash.test.ts): the points of create() at which a daemon
 * started with CRIO_TEST_KILL_AT=<step> SIGKILLs itself, to prove that a restart after a kill at
 * any step leaves either the whole sandbox or nothing. Each names the step just finished.
 */
export const CRASH_STEPS = [
  "storage-container", // the storage container exists, nothing is recorded yet
  "shm", // the /dev/shm tmpfs is mounted
  "pin-planned", // the pin paths are recorded, nothing is pinned yet (a crash mid-pin finds files there)
  "pin", // the namespaces are pinned
  "cgroup", // the sandbox cgroup exists
  "cni-add", // CNI ADD finished (address, veth, hostport rules, cache entry)
  "files", // resolv.conf, hostname, hosts, log directory written
  "infra", // the infra container runs (pods that need one)
  "record", // sandbox.json written, creating.json not yet removed
] as const;
export type CrashStep = (typeof CRASH_STEPS)[number];

// Read once: when unset (always, outside that test) a crash point is a comparison with undefined.
const KILL_AT = process.env.CRIO_TEST_KILL_AT;

function crashPoint(step: CrashStep): void {
  if (KILL_AT === step) process.kill(process.pid, "SIGKILL");
}

/** CRI-O's annotation for the pod's /dev/shm size (a Kubernetes quantity), if the handler allows it. */
export const SHM_SIZE_ANNOTATION = "shm-size.crio.io";

export function runPodSandboxHandler(ctx: ServerContext) {
  return async (req: RunPodSandboxRequest): Promise<RunPodSandboxResponse> => {
    const plan = planSandbox(ctx, req);
    const reservation = await ctx.sandboxes.reserveName(plan.name, plan.id);
    if (!reservation.reserved) {
      log.info("RunPodSandbox: the pod already exists, returning it", { name: plan.name, id: reservation.existingId });
      return { podSandboxId: reservation.existingId };
    }
    let ok = false;
    try {
      const rec = await ctx.sandboxes.locks.run(plan.id, () => create(ctx, plan));
      ctx.sandboxes.add(rec);
      ok = true;
      ctx.events.emit(rec.id, ContainerEventType.CONTAINER_CREATED_EVENT, rec.id);
      ctx.events.emit(rec.id, ContainerEventType.CONTAINER_STARTED_EVENT, rec.id);
      log.info("Ran pod sandbox", { id: rec.id, name: rec.name });
      return { podSandboxId: rec.id };
    } finally {
      ctx.sandboxes.settleName(plan.name, plan.id, ok);
    }
  };
}

/** A request checked and resolved, before anything is made. */
interface Plan {
  id: string;
  name: string;
  metadata: SandboxMetadata;
  config: PodSandboxConfig;
  runtimeHandler: string;
  hostNetwork: boolean;
  hostIPC: boolean;
  namespaceOptions: SandboxRecord["namespaceOptions"];
  sysctls: Record<string, string>;
  hostname: string;
  logDirectory: string;
  portMappings: SandboxPortMapping[];
  cgroupParent: string | undefined;
  cgroupPath: string;
  labels: Record<string, string>;
  /** Bytes of the pod's /dev/shm tmpfs (unused with host IPC). */
  shmSize: number;
  /** The pod runs an infra container (drop_infra_ctr = false or a shared PID namespace). */
  infra: boolean;
}

function planSandbox(ctx: ServerContext, req: RunPodSandboxRequest): Plan {
  const config = req.config;
  if (config === undefined) throw new InvalidArgumentError("PodSandboxConfig should not be empty");
  const md = config.metadata;
  if (md === undefined) throw new InvalidArgumentError("PodSandboxConfig.Metadata should not be empty");
  for (const [field, value] of [["Name", md.name], ["Namespace", md.namespace], ["Uid", md.uid]] as const) {
    if (value === "") throw new InvalidArgumentError(`PodSandboxConfig.Metadata.${field} should not be empty`);
    // The fields make up the pod's name (k8s_<name>_<namespace>_<uid>_<attempt>) and file names.
    if (value.includes("/") || value.includes("\0")) {
      throw new InvalidArgumentError(`PodSandboxConfig.Metadata.${field} ${JSON.stringify(value)} must not contain "/" or NUL`);
    }
  }
  const metadata: SandboxMetadata = { name: md.name, namespace: md.namespace, uid: md.uid, attempt: md.attempt };
  const cfg = ctx.config;

  const handler = req.runtimeHandler;
  if (handler !== "" && !Object.hasOwn(cfg.runtime.runtimes, handler)) {
    throw new InvalidArgumentError(`failed to find runtime handler ${JSON.stringify(handler)} from runtime list [${Object.keys(cfg.runtime.runtimes).join(" ")}]`);
  }
  const runtimeHandler = handler === "" ? cfg.runtime.default_runtime : handler;

  const nsOpts = config.linux?.securityContext?.namespaceOptions;
  const namespaceOptions = {
    network: nsOpts?.network ?? NamespaceMode.POD,
    pid: nsOpts?.pid ?? NamespaceMode.POD,
    ipc: nsOpts?.ipc ?? NamespaceMode.POD,
    targetId: nsOpts?.targetId ?? "",
  };
  const hostNetwork = namespaceOptions.network === NamespaceMode.NODE;
  const hostIPC = namespaceOptions.ipc === NamespaceMode.NODE;

  // Sysctls first: a refused sysctl must leave nothing behind.
  const merged = podSysctls(parseDefaultSysctls(cfg.runtime.default_sysctls), config.linux?.sysctls ?? {}, { hostNetwork, hostIPC });
  for (const s of merged.skipped) log.warn(`default sysctl ${s.name} skipped for pod ${md.namespace}/${md.name}: ${s.reason}`);

  const id = ctx.sandboxes.newId();
  let hostname = config.hostname;
  if (hostname === "") hostname = hostNetwork ? hostHostname() : id.slice(0, 12);
  const len = Buffer.byteLength(hostname);
  if (len > 64 || hostname.includes("\0") || hostname.includes("\n")) {
    throw new InvalidArgumentError(`PodSandboxConfig.Hostname ${JSON.stringify(hostname)} is invalid: must be 1 to 64 bytes`);
  }

  if (config.logDirectory !== "" && !isAbsolute(config.logDirectory)) {
    throw new InvalidArgumentError(`PodSandboxConfig.LogDirectory ${JSON.stringify(config.logDirectory)} must be an absolute path`);
  }
  const logDirectory = config.logDirectory !== "" ? config.logDirectory : join(cfg.log_dir, id);

  const portMappings = config.portMappings.map((p): SandboxPortMapping => {
    const protocol = PROTOCOLS[p.protocol];
    if (protocol === undefined) throw new InvalidArgumentError(`PortMapping protocol ${p.protocol} is unknown`);
    if (p.containerPort <= 0 || p.containerPort > 65535) throw new InvalidArgumentError(`PortMapping container port ${p.containerPort} is out of range`);
    if (p.hostPort < 0 || p.hostPort > 65535) throw new InvalidArgumentError(`PortMapping host port ${p.hostPort} is out of range`);
    return { protocol, containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIp };
  });

  // The cgroup parent is validated here (a systemd slice under cgroupfs is refused) so that a
  // bad one makes nothing; the systemd manager's slice check needs no D-Bus.
  let cgroupParent: string | undefined;
  let cgroupPath = "";
  const sc = ctx.cgroups().sandboxCgroupPath(config.linux?.cgroupParent ?? "", id);
  cgroupParent = sc.parent;
  cgroupPath = sc.path;

  // kubelet sets these labels; crictl does not (CRI-O adds them, step 1 of §4.1).
  const labels = { ...config.labels };
  labels["io.kubernetes.pod.name"] ??= md.name;
  labels["io.kubernetes.pod.namespace"] ??= md.namespace;
  labels["io.kubernetes.pod.uid"] ??= md.uid;

  let shmSize = DEFAULT_SHM_SIZE;
  const shmAnn = config.annotations[SHM_SIZE_ANNOTATION];
  if (shmAnn !== undefined && !hostIPC && annotationAllowed(cfg, runtimeHandler, SHM_SIZE_ANNOTATION)) {
    const q = parseQuantity(shmAnn);
    if (q === undefined || q <= 0) throw new InvalidArgumentError(`unable to parse shm size ${JSON.stringify(shmAnn)}`);
    shmSize = q;
  }

  return {
    id,
    name: sandboxName(metadata),
    metadata,
    config,
    runtimeHandler,
    hostNetwork,
    hostIPC,
    namespaceOptions,
    sysctls: Object.fromEntries(merged.sysctls),
    hostname,
    logDirectory,
    portMappings,
    cgroupParent,
    cgroupPath,
    labels,
    shmSize,
    infra: needsInfra(ctx, namespaceOptions.pid),
  };
}

/** Whether the runtime handler's allowed_annotations (or a prefix entry of it) admit `name`. */
function annotationAllowed(cfg: ServerContext["config"], handler: string, name: string): boolean {
  const allowed = cfg.runtime.runtimes[handler]?.allowed_annotations ?? [];
  return allowed.some((a) => a === name || name.startsWith(a));
}

const QUANTITY_SUFFIX: Readonly<Record<string, number>> = {
  "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("64Mi", "1G", "1e6", "2.5Gi") in whole units, rounded up; undefined if invalid. */
export function parseQuantity(s: string): number | undefined {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$/.exec(s.trim());
  if (m === null) return undefined;
  const n = Number(m[1]) * (m[2] !== undefined ? 10 ** Number(m[2].slice(1)) : (QUANTITY_SUFFIX[m[3] ?? ""] as number));
  return Number.isFinite(n) ? Math.ceil(n) : undefined;
}

async function create(ctx: ServerContext, p: Plan): Promise<SandboxRecord> {
  const undo: Array<{ what: string; fn: () => Promise<void> }> = [];
  const made: SandboxResources = {};
  const createdNs = BigInt(Date.now()) * 1_000_000n;
  try {
    // Non-host-network pods need a network: CRI-O waits for the CNI plugin (waitForCNIPlugin).
    if (!p.hostNetwork && !(await ctx.network.waitReady(CNI_READY_TIMEOUT_MS))) {
      const r = ctx.networkStatus();
      throw new UnavailableError(`cannot run pod sandbox ${p.name}: the network is not ready: ${r.message}`);
    }

    // The infra container's rootfs is the pause image (pulled now if missing, before anything is made).
    const pause = p.infra ? await pauseImage(ctx) : undefined;
    if (p.infra && p.cgroupParent === undefined) {
      throw new FailedPreconditionError("this pod needs an infra container, which needs a cgroup: cgroup_manager is systemd but systemd is not reachable; set cgroup_manager = \"cgroupfs\"");
    }
    await ctx.store.createContainer({
      id: p.id,
      imageId: pause?.id,
      names: [infraContainerName(p.metadata)],
      metadata: SandboxIndex.storageMetadata(p.id, p.metadata, createdNs),
    });
    undo.push({ what: "storage container", fn: () => ctx.store.deleteContainer(p.id) });
    crashPoint("storage-container");
    const dir = await ctx.store.containerDirectory(p.id);
    const runDir = await ctx.store.containerRunDirectory(p.id);

    // The pod's /dev/shm (CRI-O setupShm): the host's with host IPC, else a tmpfs of its own.
    if (p.hostIPC) {
      made.shmPath = HOST_SHM;
    } else {
      const shmPath = join(runDir, "shm");
      await mkdir(shmPath, { recursive: true, mode: 0o700 });
      made.shmPath = shmPath; // recorded before the mount: a crash right after it still unmounts
      await ctx.sandboxes.saveProgress(p.id, made);
      mountShm(shmPath, p.shmSize);
      undo.push({ what: "/dev/shm mount", fn: async () => releaseShm({ shmPath }) });
      crashPoint("shm");
    }

    // Namespaces: net and uts unless the pod is on the host's network, ipc unless host IPC.
    // Their paths are chosen and recorded before pinning: a crash inside the pinning, or right
    // after it, leaves files (pinned or not) only where creating.json says.
    const types: PodNamespaceType[] = [];
    if (!p.hostNetwork) types.push("net", "uts");
    if (!p.hostIPC) types.push("ipc");
    const namespacesDir = ctx.config.runtime.namespaces_dir;
    const pinId = randomUUID();
    const planned: PinnedPaths = {};
    for (const t of types) planned[t] = namespacePath(namespacesDir, t, pinId);
    made.netnsPath = planned.net;
    made.ipcnsPath = planned.ipc;
    made.utsnsPath = planned.uts;
    // Reads `made` when it runs: once ADD was attempted, DEL comes before the unpin. Unpinning
    // paths that were never pinned is a no-op, so this is safe from here on.
    undo.push({ what: "network and namespaces", fn: () => releaseNetworkAndPins(ctx, p.id, p, { ...made }) });
    await ctx.sandboxes.saveProgress(p.id, made);
    crashPoint("pin-planned");
    pinNamespaces({
      namespacesDir,
      types,
      hostname: p.hostNetwork ? undefined : p.hostname,
      sysctls: p.sysctls,
      id: pinId,
    });
    crashPoint("pin");

    if (p.cgroupParent !== undefined) {
      // Recorded before it is made (removing a cgroup that does not exist is a no-op).
      made.cgroupParent = p.cgroupParent;
      await ctx.sandboxes.saveProgress(p.id, made);
      undo.push({ what: "cgroup", fn: () => releaseCgroup(ctx, p.id, { cgroupParent: p.cgroupParent }) });
      try {
        await ctx.cgroups().createSandboxCgroup(p.cgroupParent, p.id);
      } catch (err) {
        if (!(err instanceof SystemdUnavailableError)) throw err;
        delete made.cgroupParent;
        // TODO(systemd): on a node without a reachable systemd the pod gets no cgroup of its own
        // (no infra container runs, so nothing is left unaccounted). Create the slice once the
        // systemd manager is usable here.
        log.warn("cgroup_manager is systemd but systemd is not reachable: pod sandbox cgroup skipped", { id: p.id, error: err.message });
      }
      crashPoint("cgroup");
    }

    let ips: string[] = [];
    if (!p.hostNetwork) {
      // Recorded before ADD: a failed or interrupted ADD still needs its DEL.
      made.network = true;
      await ctx.sandboxes.saveProgress(p.id, made);
      const netStarted = performance.now();
      const att = await ctx.network.setUp({
        id: p.id,
        name: p.metadata.name,
        namespace: p.metadata.namespace,
        uid: p.metadata.uid,
        netnsPath: made.netnsPath as string,
        portMappings: p.portMappings.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIP: m.hostIp })),
        cgroupPath: p.cgroupParent,
        annotations: p.config.annotations,
      });
      ips = att.ips;
      // CRI-O's network_setup_pod / network_setup_overall latency gauges (one CNI attachment here).
      const secs = (performance.now() - netStarted) / 1000;
      crioMetrics.operationsLatencySeconds.set(secs, { operation: "network_setup_pod" });
      crioMetrics.operationsLatencySeconds.set(secs, { operation: "network_setup_overall" });
      crashPoint("cni-add");
    }

    const resolvPath = join(runDir, "resolv.conf");
    await writeFile(resolvPath, await resolvConf(p.config.dnsConfig), { mode: 0o644 });
    const hostnamePath = join(runDir, "hostname");
    await writeFile(hostnamePath, `${p.hostname}\n`, { mode: 0o644 });
    // A host-network pod sees the node's names: a copy of the host's /etc/hosts (CRI-O gives its
    // containers the host's file when kubelet mounts none).
    let hostsPath: string | undefined;
    if (p.hostNetwork) {
      hostsPath = join(runDir, "hosts");
      await writeFile(hostsPath, await readFile("/etc/hosts").catch(() => Buffer.alloc(0)), { mode: 0o644 });
    }

    // A log directory the daemon makes is recorded first, as everything else; one that exists
    // (kubelet makes /var/log/pods/<pod> itself) is never the daemon's to remove.
    if (!existsSync(p.logDirectory)) {
      made.logDirectoryCreated = p.logDirectory;
      await ctx.sandboxes.saveProgress(p.id, made);
      undo.push({ what: "log directory", fn: () => rm(p.logDirectory, { recursive: true, force: true }) });
    }
    await mkdir(p.logDirectory, { recursive: true, mode: 0o700 });
    crashPoint("files");

    let infra: { pid: number; monitorPid: number } | undefined;
    if (pause !== undefined) {
      made.infra = { runtimeHandler: p.runtimeHandler };
      await ctx.sandboxes.saveProgress(p.id, made);
      undo.push({ what: "infra container", fn: () => releaseInfra(ctx, { id: p.id, runtimeHandler: p.runtimeHandler, cgroupParent: p.cgroupParent ?? "" }) });
      infra = await startInfra(ctx, {
        id: p.id,
        name: infraContainerName(p.metadata),
        metadata: p.metadata,
        runtimeHandler: p.runtimeHandler,
        hostname: p.hostname,
        hostNetwork: p.hostNetwork,
        hostIPC: p.hostIPC,
        namespaces: { net: made.netnsPath, ipc: made.ipcnsPath, uts: made.utsnsPath },
        shmPath: made.shmPath ?? HOST_SHM,
        cgroupParent: p.cgroupParent ?? "",
        cgroupPath: p.cgroupPath,
        sysctls: p.sysctls,
        securityContext: p.config.linux?.securityContext,
        resolvPath,
        hostnamePath,
        imageConfig: pause.config,
      });
      crashPoint("infra");
    }

    const dns = p.config.dnsConfig;
    const rec: SandboxRecord = {
      version: 1,
      id: p.id,
      name: p.name,
      metadata: p.metadata,
      labels: p.labels,
      annotations: { ...p.config.annotations },
      state: "READY",
      createdNs: createdNs.toString(),
      runtimeHandler: p.runtimeHandler,
      namespaceOptions: p.namespaceOptions,
      hostNetwork: p.hostNetwork,
      ips,
      cgroupPath: made.cgroupParent !== undefined ? p.cgroupPath : "",
      logDirectory: p.logDirectory,
      dns: dns ? { servers: [...dns.servers], searches: [...dns.searches], options: [...dns.options] } : undefined,
      hostname: p.hostname,
      resolvPath,
      hostnamePath,
      hostsPath,
      portMappings: p.portMappings,
      sysctls: p.sysctls,
      stopped: false,
      infraPid: infra?.pid,
      infraMonitorPid: infra?.monitorPid,
      ...made,
    };
    await ctx.sandboxes.persist(rec);
    undo.push({ what: "record", fn: async () => void (await rm(join(dir, "sandbox.json"), { force: true })) });
    crashPoint("record");
    await ctx.sandboxes.clearProgress(p.id);
    return rec;
  } catch (err) {
    for (const u of undo.reverse()) {
      try {
        await u.fn();
      } catch (e) {
        log.error(`RunPodSandbox rollback: could not remove the ${u.what}`, { id: p.id, error: e });
      }
    }
    throw err;
  }
}

/**
 * resolv.conf for the pod (CRI-O §4.7): the host's file when the pod gives no DNS settings,
 * otherwise search, nameserver and options lines from them.
 */
export async function resolvConf(dns: DNSConfig | undefined): Promise<string> {
  if (dns === undefined || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) {
    try {
      return await readFile("/etc/resolv.conf", "utf8");
    } catch {
      return "";
    }
  }
  let out = "";
  if (dns.searches.length > 0) out += `search ${dns.searches.join(" ")}\n`;
  for (const s of dns.servers) out += `nameserver ${s}\n`;
  if (dns.options.length > 0) out += `options ${dns.options.join(" ")}\n`;
  return out;
}
