// Pod networking through CNI: configuration loading and readiness (config.ts, watch.ts), plugin
// execution and the libcni-compatible results cache (invoke.ts, cache.ts, cni.ts), results in
// every spec version (result.ts).
//
// Use from the sandbox code:
//   const cni = CniNetwork.fromConfig(config.network);  await cni.start();   // daemon start
//   status RPC:    cni.ready()  → { ready, reason: "NetworkPluginNotReady", message }
//   RunPodSandbox: await cni.waitReady(timeout); pin the netns; then
//                  const { ips, result } = await cni.setUp({ id, name, namespace, uid, netnsPath, portMappings });
//                  (setUp rolls back its own half-done ADD; on a later failure call tearDown)
//   StopPodSandbox: await cni.tearDown({ id, name, namespace, uid, netnsPath });  then unpin the netns
//                  (idempotent; after a restart { id } alone is enough: the cache has the rest)
//   restore:       await cni.check({ id, netnsPath }) or cni.cachedAttachment(id); cni.gc(liveIds)
export { CniNetwork, cniArgs, capabilityArgs, DEFAULT_IFNAME, LOOPBACK_NETWORK } from "./cni.ts";
export type { Bandwidth, CniNetworkOptions, IpRange, NetworkAttachment, PodNetwork, PodNetworkRef, PortMapping } from "./cni.ts";
export { NetworkConfigWatcher, NETWORK_NOT_READY_REASON } from "./watch.ts";
export type { NetworkReadiness, WatcherOptions } from "./watch.ts";
export { loadNetworks, notReadyMessage, parseConf, parseConfList, parseConfigFile, DEFAULT_NETWORK_DIR, DEFAULT_PLUGIN_DIRS } from "./config.ts";
export type { LoadedNetworks, NetworkConfigList, PluginConf } from "./config.ts";
export { CniPluginError, findPlugin } from "./invoke.ts";
export { ResultCache, CACHE_KIND, DEFAULT_CACHE_DIR } from "./cache.ts";
export type { CacheEntry } from "./cache.ts";
export { convertResult, podIps, toCurrent } from "./result.ts";
export type { CniResult, RawResult } from "./result.ts";
