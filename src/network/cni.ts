// Pod networking through CNI plugins (SPEC.md, CNI 1.0), as CRI-O does it through ocicni and
// libcni: ADD runs the network's plugins in order, each given the previous one's result; DEL runs
// them in reverse with the result of ADD read back from the results cache; CHECK verifies.
//
// Ordering for the sandbox code (a sketch is in index.ts):
//   pin the netns → setUp(pod) → start the infra container; on any later failure → tearDown(pod)
//   stop: stop containers → tearDown(pod) → unpin the netns
// setUp rolls its own partial work back when a plugin fails; tearDown is idempotent and works
// from the cache alone (after a daemon restart, or after setUp failed half-way).
import { statfsSync } from "node:fs";
import {
  AlreadyExistsError,
  CrioError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
} from "../errors.ts";
import { log } from "../log.ts";
import { type CacheEntry, CACHE_KIND, DEFAULT_CACHE_DIR, decodeConfig, encodeConfig, ResultCache } from "./cache.ts";
import {
  DEFAULT_NETWORK_DIR,
  DEFAULT_PLUGIN_DIRS,
  type NetworkConfigList,
  type PluginConf,
  parseConfList,
  validateContainerId,
  validateInterfaceName,
} from "./config.ts";
import { type CniCommand, describePlugin, execPlugin, findPlugin, pluginVersions } from "./invoke.ts";
import {
  type CniResult,
  compareVersions,
  convertResult,
  podIps,
  type RawResult,
  toCurrent,
  versionAtLeast,
} from "./result.ts";
import { NETWORK_NOT_READY_REASON, NetworkConfigWatcher, type NetworkReadiness } from "./watch.ts";

export const DEFAULT_IFNAME = "eth0";
/** The network name containerd and ocicni use for the loopback attachment. */
export const LOOPBACK_NETWORK = "cni-loopback";
/** statfs(2) f_type of nsfs: what a pinned or /proc network namespace path is. */
const NSFS_MAGIC = 0x6e736673;

/** A CRI PortMapping as CNI's portMappings capability takes it (CONVENTIONS.md). */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** "tcp" (default), "udp" or "sctp"; any case. */
  protocol?: string;
  hostIP?: string;
}

/** The bandwidth capability (bits per second, burst in bits), from kubernetes.io/{ingress,egress}-bandwidth. */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** One entry of the ipRanges capability. */
export interface IpRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface PodNetwork {
  /** The sandbox ID: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. */
  id: string;
  name: string;
  namespace: string;
  uid: string;
  /** The pinned network namespace (a bind mount of the nsfs file). */
  netnsPath: string;
  /** Passed to plugins declaring `capabilities: {portMappings: true}`; hostPort 0 entries are dropped. */
  portMappings?: PortMapping[];
  bandwidth?: Bandwidth;
  ipRanges?: IpRange[][];
  /** The sandbox's cgroup parent (capability `cgroupPath`). */
  cgroupPath?: string;
  /** The pod's annotations (capability `io.kubernetes.cri.pod-annotations`). */
  annotations?: Record<string, string>;
  /** Further capability arguments, passed to plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
  /** The network to attach to; default: the default network. */
  network?: string;
  /** Interface name in the pod; default eth0. */
  ifName?: string;
}

/**
 * What tearDown needs: the ID, and whatever else is known. With a cache entry the cached
 * arguments are used; without one the current configuration and these fields are.
 */
export type PodNetworkRef = Pick<PodNetwork, "id"> & Partial<Omit<PodNetwork, "id">>;

export interface NetworkAttachment {
  network: string;
  ifName: string;
  /** The pod's addresses without prefix length: IPv4 first, then IPv6. */
  ips: string[];
  /** The result in CNI 1.0 form. */
  result: CniResult;
  /** The result as the last plugin printed it (what the cache holds, in its own cniVersion). */
  rawResult: RawResult;
}

export interface CniNetworkOptions {
  networkDir?: string;
  pluginDirs?: readonly string[];
  /** cni_default_network; "" takes the first configuration by file name. */
  defaultNetwork?: string;
  /** libcni's cache directory; results go to <cacheDir>/results. Default /var/lib/cni. */
  cacheDir?: string;
  /** Deadline for a whole ADD (all plugins). Default 5 min, as CRI-O. */
  addTimeoutMs?: number;
  /** Deadline for a whole DEL. Default 1 min, as CRI-O. */
  delTimeoutMs?: number;
  /** Deadline for CHECK and STATUS. Default 1 min. */
  checkTimeoutMs?: number;
  /**
   * Bring the pod's `lo` up before ADD by running the loopback plugin as network "cni-loopback"
   * (ocicni brings it up itself; containerd runs this plugin). Default true.
   */
  loopback?: boolean;
  /** Watch the directories (default true); false loads once at start() and on reload(). */
  watch?: boolean;
  pollIntervalMs?: number;
  /** Validate plugins with VERSION when loading (default true). */
  checkPluginVersions?: boolean;
}

/** Runs async work one at a time per key: the spec forbids parallel operations on one container. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** One invocation context: who, where, with which arguments. */
interface Invocation {
  containerId: string;
  netns: string;
  ifName: string;
  args: [string, string][];
  capabilityArgs: Record<string, unknown>;
  deadline: number;
}

function withPrefix(err: unknown, prefix: string): unknown {
  if (err instanceof Error) {
    err.message = `${prefix}: ${err.message}`;
    return err;
  }
  return new InternalError(`${prefix}: ${String(err)}`);
}

function fullPodName(pod: PodNetworkRef): string {
  return `${pod.namespace ?? ""}_${pod.name ?? ""}`;
}

/** The path if it is a network namespace (nsfs), else undefined. */
function netnsIfValid(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return statfsSync(path).type === NSFS_MAGIC ? path : undefined;
  } catch {
    return undefined;
  }
}

export class CniNetwork {
  readonly networkDir: string;
  readonly pluginDirs: readonly string[];
  readonly cache: ResultCache;
  readonly watcher: NetworkConfigWatcher;
  private readonly locks = new KeyedMutex();
  private readonly opts: CniNetworkOptions;

  constructor(opts: CniNetworkOptions = {}) {
    this.opts = opts;
    this.networkDir = opts.networkDir ?? DEFAULT_NETWORK_DIR;
    this.pluginDirs = opts.pluginDirs && opts.pluginDirs.length > 0 ? opts.pluginDirs : DEFAULT_PLUGIN_DIRS;
    this.cache = new ResultCache(opts.cacheDir ?? DEFAULT_CACHE_DIR);
    this.watcher = new NetworkConfigWatcher({
      networkDir: this.networkDir,
      pluginDirs: this.pluginDirs,
      defaultNetwork: opts.defaultNetwork ?? "",
      checkPluginVersions: opts.checkPluginVersions ?? true,
      pollIntervalMs: opts.watch === false ? 0 : opts.pollIntervalMs,
      useFsWatch: opts.watch !== false,
    });
  }

  /** From the daemon's [crio.network] table. */
  static fromConfig(
    network: { network_dir: string; plugin_dirs: string[]; cni_default_network: string },
    extra: Omit<CniNetworkOptions, "networkDir" | "pluginDirs" | "defaultNetwork"> = {},
  ): CniNetwork {
    return new CniNetwork({
      ...extra,
      networkDir: network.network_dir,
      pluginDirs: network.plugin_dirs,
      defaultNetwork: network.cni_default_network,
    });
  }

  /** Loads the configurations and starts watching them. */
  async start(): Promise<void> {
    await this.watcher.start();
  }

  close(): void {
    this.watcher.close();
  }

  /** The NetworkReady condition from the last load (no plugin is run). */
  ready(): NetworkReadiness {
    return this.watcher.ready();
  }

  /** Waits until a default network is loaded (CRI-O's waitForCNIPlugin before a pod's ADD). */
  waitReady(timeoutMs: number): Promise<boolean> {
    return this.watcher.waitReady(timeoutMs);
  }

  /**
   * ready(), and for a default network of cniVersion 1.1.0 or later the plugins' own STATUS
   * (libcni GetStatusNetworkList): a plugin reporting an error makes the network not ready.
   */
  async status(): Promise<NetworkReadiness> {
    const r = this.ready();
    const net = this.watcher.current().defaultNetwork;
    if (!r.ready || !net || compareVersions(net.cniVersion, "1.1.0") < 0) return r;
    const deadline = Date.now() + (this.opts.checkTimeoutMs ?? 60_000);
    try {
      for (const plugin of net.plugins) {
        await this.exec("STATUS", net, plugin, { ...this.emptyInvocation(), deadline }, undefined);
      }
    } catch (err) {
      return { ready: false, reason: NETWORK_NOT_READY_REASON, message: `Network plugin returns error: ${(err as Error).message}` };
    }
    return r;
  }

  /**
   * Attaches the pod to its network (CNI ADD) and caches the result. The netns must be pinned
   * already. When a plugin fails, the chain is deleted again (DEL, with what the plugins before
   * it returned) before the error is thrown; if that DEL fails too the cache entry stays, and
   * tearDown retries it.
   */
  async setUp(pod: PodNetwork): Promise<NetworkAttachment> {
    validateContainerId(pod.id);
    const ifName = pod.ifName ?? DEFAULT_IFNAME;
    validateInterfaceName(ifName);
    const netns = netnsIfValid(pod.netnsPath);
    if (!netns) throw new InvalidArgumentError(`network namespace ${JSON.stringify(pod.netnsPath)} of pod sandbox ${pod.id} is not a network namespace`);
    const net = await this.network(pod.network);
    return this.locks.run(pod.id, async () => {
      const existing = await this.cache.read(net.name, pod.id, ifName);
      if (existing?.result) {
        throw new AlreadyExistsError(`pod sandbox ${pod.id} is already attached to CNI network ${JSON.stringify(net.name)} as ${ifName}`);
      }
      if (existing) {
        // A previous ADD died half-way (daemon crash): finish its DEL before adding again.
        await this.delEntry(existing, pod, this.deadline("del"));
      }
      const inv: Invocation = {
        containerId: pod.id,
        netns,
        ifName,
        args: cniArgs(pod),
        capabilityArgs: capabilityArgs(pod),
        deadline: this.deadline("add"),
      };
      if (this.opts.loopback ?? true) await this.bringUpLoopback(inv);

      log.info(`Adding pod ${fullPodName(pod)} to CNI network ${JSON.stringify(net.name)} (type=${net.plugins[0]?.type})`);
      const entry: CacheEntry = {
        kind: CACHE_KIND,
        containerId: pod.id,
        config: encodeConfig(net.bytes),
        ifName,
        networkName: net.name,
        netns,
        cniArgs: inv.args,
        capabilityArgs: inv.capabilityArgs,
      };
      await this.cache.write(entry);

      let raw: RawResult | undefined;
      try {
        for (const plugin of net.plugins) {
          const out = await this.exec("ADD", net, plugin, inv, raw);
          if (typeof out !== "object" || out === null || Array.isArray(out)) {
            throw new InternalError(`${describePlugin(plugin.type)} failed (add): it printed no result`);
          }
          raw = out as RawResult;
          // libcni: a result without a version is in the configuration's version.
          if (typeof raw.cniVersion !== "string" || raw.cniVersion === "") raw = { ...raw, cniVersion: net.cniVersion };
        }
        if (!raw) throw new InternalError(`CNI network ${JSON.stringify(net.name)} has no plugins`);
        const result = toCurrent(raw, net.cniVersion);
        await this.cache.write({ ...entry, result: raw });
        const ips = podIps(result);
        log.info(`Got pod network ${fullPodName(pod)} on CNI network ${JSON.stringify(net.name)}`, { ips });
        return { network: net.name, ifName, ips, result, rawResult: raw };
      } catch (err) {
        const error = withPrefix(err, `error adding pod ${fullPodName(pod)} to CNI network ${JSON.stringify(net.name)}`);
        await this.rollback({ ...entry, ...(raw ? { result: raw } : {}) }, pod, error);
        throw error;
      }
    });
  }

  /**
   * Detaches the pod (CNI DEL) from every network the cache says it is attached to, with the
   * cached configuration, arguments and result; without a cache entry, from the configured
   * network with what `pod` carries. Idempotent: plugins tolerate repeated DELs and a vanished
   * netns (which is then passed as an empty CNI_NETNS). On success the cache entries are gone.
   */
  async tearDown(pod: PodNetworkRef): Promise<void> {
    validateContainerId(pod.id);
    await this.locks.run(pod.id, async () => {
      const deadline = this.deadline("del");
      let entries = (await this.cache.entriesFor(pod.id)).filter((e) => e.networkName !== LOOPBACK_NETWORK);
      if (pod.network !== undefined || pod.ifName !== undefined) {
        entries = entries.filter((e) => (pod.network === undefined || e.networkName === pod.network) && (pod.ifName === undefined || e.ifName === pod.ifName));
      }
      if (entries.length === 0) {
        const net = await this.network(pod.network).catch(() => undefined);
        if (!net) {
          log.warn(`No cached CNI result and no CNI network for pod sandbox ${pod.id}: nothing to tear down`);
          return;
        }
        entries = [
          {
            kind: CACHE_KIND,
            containerId: pod.id,
            config: encodeConfig(net.bytes),
            ifName: pod.ifName ?? DEFAULT_IFNAME,
            networkName: net.name,
            cniArgs: cniArgs({ name: "", namespace: "", uid: "", ...pod }),
            capabilityArgs: capabilityArgs(pod),
          },
        ];
      }
      const errors: unknown[] = [];
      for (const entry of entries) {
        log.info(`Deleting pod ${fullPodName(pod)} from CNI network ${JSON.stringify(entry.networkName)}`);
        try {
          await this.delEntry(entry, pod, deadline);
        } catch (err) {
          // An entry without a result is an ADD that never completed. If DEL with the
          // configuration it started with fails (a configuration no plugin can parse, say), and
          // the file has changed since, the fixed configuration gets its chance.
          const onDisk = entry.result ? undefined : this.watcher.current().networks.find((n) => n.name === entry.networkName);
          if (onDisk && onDisk.bytes !== decodeConfig(entry.config)) {
            log.warn(`CNI DEL with the cached configuration of ${entry.networkName} failed; retrying with the one on disk`, { error: err });
            try {
              await this.delEntry({ ...entry, config: encodeConfig(onDisk.bytes) }, pod, deadline);
              continue;
            } catch (err2) {
              err = err2;
            }
          }
          errors.push(withPrefix(err, `error removing pod ${fullPodName(pod)} from CNI network ${JSON.stringify(entry.networkName)}`));
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new InternalError(errors.map((e) => (e as Error).message).join("; "), { cause: errors[0] });
    });
  }

  /**
   * Verifies the pod's attachment (CNI CHECK, for cniVersion 0.4.0 and later unless the network
   * disables it) and returns the cached result: how CRI-O restores a pod's IPs after a restart.
   * Without a cache entry, the addresses are read from the interface in the netns.
   */
  async check(pod: PodNetworkRef): Promise<NetworkAttachment> {
    validateContainerId(pod.id);
    return this.locks.run(pod.id, async () => {
      const ifName = pod.ifName ?? DEFAULT_IFNAME;
      const entries = (await this.cache.entriesFor(pod.id)).filter(
        (e) => e.networkName !== LOOPBACK_NETWORK && (pod.network === undefined || e.networkName === pod.network) && e.ifName === ifName,
      );
      const entry = entries[0];
      if (!entry) return this.attachmentFromNetns(pod, ifName);
      if (!entry.result) {
        throw new FailedPreconditionError(`CNI ADD of pod sandbox ${pod.id} to network ${JSON.stringify(entry.networkName)} did not complete`);
      }
      const net = this.cachedList(entry);
      const netns = netnsIfValid(pod.netnsPath ?? entry.netns);
      if (!netns) throw new FailedPreconditionError(`network namespace of pod sandbox ${pod.id} is gone`);
      if (versionAtLeast(net.cniVersion, "0.4.0") && !net.disableCheck) {
        const inv: Invocation = {
          containerId: pod.id,
          netns,
          ifName: entry.ifName,
          args: entry.cniArgs ?? cniArgs({ name: "", namespace: "", uid: "", ...pod }),
          capabilityArgs: entry.capabilityArgs ?? {},
          deadline: this.deadline("check"),
        };
        for (const plugin of net.plugins) {
          try {
            await this.exec("CHECK", net, plugin, inv, entry.result);
          } catch (err) {
            throw withPrefix(err, `error checking pod ${fullPodName(pod)} for CNI network ${JSON.stringify(net.name)}`);
          }
        }
      }
      const result = toCurrent(entry.result, net.cniVersion);
      return { network: entry.networkName, ifName: entry.ifName, ips: podIps(result), result, rawResult: entry.result };
    });
  }

  /** The cached attachment of a pod without running any plugin, or undefined. */
  async cachedAttachment(podId: string, ifName = DEFAULT_IFNAME): Promise<NetworkAttachment | undefined> {
    const entry = (await this.cache.entriesFor(podId)).find((e) => e.networkName !== LOOPBACK_NETWORK && e.ifName === ifName && e.result);
    if (!entry?.result) return undefined;
    const result = toCurrent(entry.result);
    return { network: entry.networkName, ifName: entry.ifName, ips: podIps(result), result, rawResult: entry.result };
  }

  /**
   * Deletes every cached attachment whose pod is not in `livePodIds` (CRI-O's CNI GC at startup,
   * for pods that vanished while the daemon was down). Returns the IDs it tore down.
   */
  async gc(livePodIds: ReadonlySet<string>): Promise<string[]> {
    const stale = new Set<string>();
    for (const e of await this.cache.all()) {
      if (e.networkName !== LOOPBACK_NETWORK && !livePodIds.has(e.containerId)) stale.add(e.containerId);
    }
    const done: string[] = [];
    for (const id of stale) {
      try {
        await this.tearDown({ id });
        done.push(id);
      } catch (err) {
        log.warn("CNI GC: tearing down a stale attachment failed", { id, error: err });
      }
    }
    return done;
  }

  // --- internals -------------------------------------------------------------------------------

  private deadline(kind: "add" | "del" | "check"): number {
    const ms = kind === "add" ? (this.opts.addTimeoutMs ?? 300_000) : kind === "del" ? (this.opts.delTimeoutMs ?? 60_000) : (this.opts.checkTimeoutMs ?? 60_000);
    return Date.now() + ms;
  }

  private emptyInvocation(): Invocation {
    return { containerId: "", netns: "", ifName: "", args: [], capabilityArgs: {}, deadline: Date.now() };
  }

  /** The named network, or the default; reloads once if it is not loaded (as ocicni does). */
  private async network(name: string | undefined): Promise<NetworkConfigList> {
    const pick = () => {
      const loaded = this.watcher.current();
      return name === undefined || name === "" ? loaded.defaultNetwork : loaded.networks.find((n) => n.name === name);
    };
    let net = pick();
    if (!net) {
      await this.watcher.reload();
      net = pick();
    }
    if (net) return net;
    if (name) throw new FailedPreconditionError(`failed to find requested CNI network name ${name} in ${this.networkDir}`);
    throw new FailedPreconditionError(this.watcher.ready().message);
  }

  /** The configuration a cache entry was added with; undefined config falls back to disk. */
  private cachedList(entry: CacheEntry): NetworkConfigList {
    const text = entry.config ? decodeConfig(entry.config) : "";
    try {
      const list = parseConfList(text, `cached config of ${entry.networkName}`);
      return list;
    } catch (err) {
      // libcni falls back to a plain network config, which some caches hold.
      try {
        const raw = JSON.parse(text) as PluginConf & { name: string; cniVersion: string };
        if (typeof raw.type === "string" && typeof raw.name === "string" && typeof raw.cniVersion === "string") {
          return { name: raw.name, cniVersion: raw.cniVersion, disableCheck: false, plugins: [raw], bytes: text };
        }
      } catch {
        // fall through
      }
      const fromDisk = this.watcher.current().networks.find((n) => n.name === entry.networkName);
      if (fromDisk) {
        log.warn(`Unusable cached CNI config for ${entry.networkName}; using the one on disk`, { error: err });
        return fromDisk;
      }
      throw err;
    }
  }

  /** DEL of one attachment from its cache entry; removes the entry when every plugin succeeded. */
  private async delEntry(entry: CacheEntry, pod: PodNetworkRef, deadline: number): Promise<void> {
    const net = this.cachedList(entry);
    // Spec: without a usable netns, DEL still runs and plugins release what they can.
    const netns = netnsIfValid(pod.netnsPath) ?? netnsIfValid(entry.netns) ?? "";
    const inv: Invocation = {
      containerId: entry.containerId,
      netns,
      ifName: entry.ifName,
      args: entry.cniArgs ?? cniArgs({ name: "", namespace: "", uid: "", ...pod }),
      capabilityArgs: entry.capabilityArgs ?? capabilityArgs(pod),
      deadline,
    };
    // The cached result is passed on DEL from spec 0.4.0 on (libcni DelNetworkList).
    const prev = versionAtLeast(net.cniVersion, "0.4.0") ? entry.result : undefined;
    for (let i = net.plugins.length - 1; i >= 0; i--) {
      await this.exec("DEL", net, net.plugins[i] as PluginConf, inv, prev);
    }
    await this.cache.remove(entry.networkName, entry.containerId, entry.ifName);
  }

  /** After a failed ADD: DEL the whole chain with what is known; keep the entry if that fails. */
  private async rollback(entry: CacheEntry, pod: PodNetworkRef, cause: unknown): Promise<void> {
    try {
      await this.cache.write(entry);
      await this.delEntry(entry, pod, this.deadline("del"));
    } catch (err) {
      log.error(`Rolling back the failed CNI ADD of pod ${fullPodName(pod)} failed; tearDown will retry`, { error: err, cause });
      if (cause instanceof CrioError || cause instanceof Error) cause.message += ` (cleanup failed: ${(err as Error).message})`;
    }
  }

  /** One plugin invocation with the stdin libcni builds (buildOneConfig + injectRuntimeConfig). */
  private async exec(command: CniCommand, net: NetworkConfigList, plugin: PluginConf, inv: Invocation, prevResult: RawResult | undefined): Promise<unknown> {
    const pluginPath = findPlugin(plugin.type, this.pluginDirs);
    const stdin: Record<string, unknown> = { ...plugin, name: net.name, cniVersion: net.cniVersion };
    if (prevResult && command !== "STATUS") stdin.prevResult = convertResult(prevResult, net.cniVersion, net.cniVersion);
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, enabled] of Object.entries(plugin.capabilities ?? {})) {
      if (enabled === true && inv.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = inv.capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length > 0) stdin.runtimeConfig = runtimeConfig;
    const remaining = inv.deadline - Date.now();
    return execPlugin({
      type: plugin.type,
      pluginPath,
      command,
      containerId: inv.containerId,
      netns: inv.netns,
      ifName: inv.ifName,
      args: inv.args,
      cniPath: this.pluginDirs,
      stdin,
      timeoutMs: Math.max(remaining, 1),
    });
  }

  /**
   * `lo` up in the pod: the loopback plugin as network "cni-loopback" (not cached: the netns
   * takes the interface with it), or `ip link set lo up` in the netns when it is not installed.
   */
  private async bringUpLoopback(inv: Invocation): Promise<void> {
    let path: string | undefined;
    try {
      path = findPlugin("loopback", this.pluginDirs);
    } catch {
      path = undefined;
    }
    if (path) {
      const versions = await pluginVersions("loopback", path, "1.0.0");
      const version = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(compareVersions).at(-1) ?? "0.1.0";
      await execPlugin({
        type: "loopback",
        pluginPath: path,
        command: "ADD",
        containerId: inv.containerId,
        netns: inv.netns,
        ifName: "lo",
        args: inv.args,
        cniPath: this.pluginDirs,
        stdin: { cniVersion: version, name: LOOPBACK_NETWORK, type: "loopback" },
        timeoutMs: Math.max(inv.deadline - Date.now(), 1),
      });
      return;
    }
    const r = Bun.spawnSync(["nsenter", `--net=${inv.netns}`, "ip", "link", "set", "lo", "up"], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new InternalError(`failed to bring up loopback in ${inv.netns}: ${r.stderr.toString().trim()}`);
  }

  /** ocicni's fallback for a pod without a cached result: the addresses on the interface. */
  private attachmentFromNetns(pod: PodNetworkRef, ifName: string): NetworkAttachment {
    const netns = netnsIfValid(pod.netnsPath);
    if (!netns) throw new NotFoundError(`no cached CNI result for pod sandbox ${pod.id} and no network namespace to inspect`);
    const r = Bun.spawnSync(["nsenter", `--net=${netns}`, "ip", "-j", "addr", "show", "dev", ifName], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new NotFoundError(`no cached CNI result for pod sandbox ${pod.id}, and ${ifName}: ${r.stderr.toString().trim()}`);
    const links = JSON.parse(r.stdout.toString()) as { address?: string; addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[] }[];
    const link = links[0];
    const ips = (link?.addr_info ?? [])
      .filter((a) => (a.family === "inet" || a.family === "inet6") && a.scope === "global" && a.local)
      .map((a) => ({ address: `${a.local}/${a.prefixlen}`, interface: 0 }));
    if (ips.length === 0) throw new NotFoundError(`neither IPv4 nor IPv6 found on ${ifName} of pod sandbox ${pod.id}`);
    const result: CniResult = { cniVersion: "1.0.0", interfaces: [{ name: ifName, ...(link?.address ? { mac: link.address } : {}), sandbox: netns }], ips };
    return { network: pod.network ?? this.watcher.current().defaultNetwork?.name ?? "", ifName, ips: podIps(result), result, rawResult: { ...result } };
  }
}

/** CNI_ARGS as ocicni builds them, plus the daemon's own CNI_ARGS pairs (ocicni propagates them). */
export function cniArgs(pod: Pick<PodNetwork, "id" | "name" | "namespace" | "uid">): [string, string][] {
  const args: [string, string][] = [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", pod.namespace],
    ["K8S_POD_NAME", pod.name],
    ["K8S_POD_INFRA_CONTAINER_ID", pod.id],
    ["K8S_POD_UID", pod.uid],
  ];
  for (const kv of (process.env.CNI_ARGS ?? "").split(";")) {
    const eq = kv.indexOf("=");
    if (eq > 0) args.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }
  return args;
}

/** The capability arguments of a pod; each reaches only plugins that declare it. */
export function capabilityArgs(pod: Partial<PodNetwork>): Record<string, unknown> {
  const caps: Record<string, unknown> = {};
  const ports = (pod.portMappings ?? [])
    .filter((p) => p.hostPort > 0)
    .map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: (p.protocol ?? "tcp").toLowerCase(),
      ...(p.hostIP ? { hostIP: p.hostIP } : {}),
    }));
  if (ports.length > 0) caps.portMappings = ports;
  if (pod.bandwidth) caps.bandwidth = pod.bandwidth;
  if (pod.ipRanges && pod.ipRanges.length > 0) caps.ipRanges = pod.ipRanges;
  if (pod.cgroupPath) caps.cgroupPath = pod.cgroupPath;
  if (pod.annotations) caps["io.kubernetes.cri.pod-annotations"] = pod.annotations;
  Object.assign(caps, pod.capabilityArgs ?? {});
  return caps;
}
