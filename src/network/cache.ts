// The results cache, in libcni's on-disk format so that CRI-O, podman and this daemon read each
// other's entries: <cacheDir>/results/<network>-<containerID>-<ifname>, a JSON object
//   { kind: "cniCacheV1", containerId, config: base64(list JSON), ifName, networkName,
//     netns?, cniArgs?: [[k, v], ...], capabilityArgs?: {...}, result?: <ADD result> }
// (libcni api.go cachedInfo; Go encodes the []byte config as base64). DEL after a daemon restart
// runs with the cached configuration and passes the cached result as prevResult.
//
// One addition libcni does not make: an entry without `result` is written before ADD starts, so
// that a crash or failure in the middle of ADD still leaves the configuration and arguments DEL
// needs. libcni tolerates such an entry (it drops it and runs DEL without prevResult).
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { atomicWriteFile } from "../storage/atomic.ts";
import { log } from "../log.ts";
import type { RawResult } from "./result.ts";

export const CACHE_KIND = "cniCacheV1";
export const DEFAULT_CACHE_DIR = "/var/lib/cni";

export interface CacheEntry {
  kind: typeof CACHE_KIND;
  containerId: string;
  /** base64 of the network configuration list's JSON. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: RawResult;
}

export class ResultCache {
  readonly resultsDir: string;

  constructor(readonly cacheDir: string = DEFAULT_CACHE_DIR) {
    this.resultsDir = join(cacheDir, "results");
  }

  path(networkName: string, containerId: string, ifName: string): string {
    return join(this.resultsDir, `${networkName}-${containerId}-${ifName}`);
  }

  async write(entry: CacheEntry): Promise<void> {
    await mkdir(this.resultsDir, { recursive: true, mode: 0o700 });
    // Not fsynced: a torn entry after a power loss is read as absent, and DEL then falls back
    // to the configuration on disk (which libcni does too).
    await atomicWriteFile(this.path(entry.networkName, entry.containerId, entry.ifName), JSON.stringify(entry), 0o600, { noSync: true });
  }

  /** The entry, or undefined when there is none or it is unreadable (logged). */
  async read(networkName: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    return this.readFile(this.path(networkName, containerId, ifName));
  }

  async remove(networkName: string, containerId: string, ifName: string): Promise<void> {
    await rm(this.path(networkName, containerId, ifName), { force: true });
  }

  /**
   * Every entry of a container, by file name (ocicni's getCachedNetworkInfo): the file name
   * must contain "-<id>-" and the entry's containerId must match.
   */
  async entriesFor(containerId: string): Promise<CacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.resultsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const part = `-${containerId}-`;
    const out: CacheEntry[] = [];
    for (const name of names.sort()) {
      if (name.startsWith(".tmp-")) continue; // an atomic write in progress
      const pos = name.indexOf(part);
      if (pos <= 0 || pos + part.length >= name.length) continue;
      const entry = await this.readFile(join(this.resultsDir, name));
      if (entry && entry.containerId === containerId) out.push(entry);
    }
    return out;
  }

  /** Every entry in the cache (for garbage collection at startup). */
  async all(): Promise<CacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.resultsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: CacheEntry[] = [];
    for (const name of names.sort()) {
      if (name.startsWith(".tmp-")) continue;
      const entry = await this.readFile(join(this.resultsDir, name));
      if (entry) out.push(entry);
    }
    return out;
  }

  private async readFile(path: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn("cannot read CNI cache file", { file: path, error: err });
      return undefined;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      log.warn("corrupt CNI cache file", { file: path, error: err });
      return undefined;
    }
    const e = raw as Partial<CacheEntry> & { containerID?: string };
    if (typeof raw !== "object" || raw === null || e.kind !== CACHE_KIND) {
      log.warn("unknown CNI cache file kind", { file: path, kind: e?.kind });
      return undefined;
    }
    // Go matches JSON keys case-insensitively; ocicni's reader spells it "containerID".
    const containerId = e.containerId ?? e.containerID;
    if (typeof containerId !== "string" || typeof e.ifName !== "string" || typeof e.networkName !== "string" || e.ifName === "" || e.networkName === "") {
      log.warn("CNI cache file lacks containerId, ifName or networkName", { file: path });
      return undefined;
    }
    return {
      kind: CACHE_KIND,
      containerId,
      config: typeof e.config === "string" ? e.config : "",
      ifName: e.ifName,
      networkName: e.networkName,
      ...(typeof e.netns === "string" ? { netns: e.netns } : {}),
      ...(Array.isArray(e.cniArgs) ? { cniArgs: e.cniArgs.filter((a): a is [string, string] => Array.isArray(a) && a.length === 2 && a.every((x) => typeof x === "string")) } : {}),
      ...(e.capabilityArgs && typeof e.capabilityArgs === "object" ? { capabilityArgs: e.capabilityArgs } : {}),
      ...(e.result && typeof e.result === "object" && !Array.isArray(e.result) ? { result: e.result } : {}),
    };
  }
}

export function encodeConfig(json: string): string {
  return Buffer.from(json, "utf8").toString("base64");
}

export function decodeConfig(b64: string): string {
  return Buffer.from(b64, "base64").toString("utf8");
}
