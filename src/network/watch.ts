// Network readiness: the configuration directory (and the plugin directories, since a plugin
// being installed can make a configuration valid) watched with fs.watch, as ocicni watches them
// with fsnotify, plus a poll that catches what inotify misses (a directory created after start,
// or deleted and recreated, file systems without inotify). Every change reloads the networks;
// ready() answers the CRI Status RPC's NetworkReady condition from the last load.
import { type FSWatcher, readdirSync, statSync, watch } from "node:fs";
import { extname, join } from "node:path";
import { log } from "../log.ts";
import { CONFIG_EXTENSIONS, type LoadedNetworks, type LoadOptions, loadNetworks, notReadyMessage } from "./config.ts";

/** The NetworkReady condition of the CRI Status RPC. */
export interface NetworkReadiness {
  ready: boolean;
  reason: string;
  message: string;
}

export const NETWORK_NOT_READY_REASON = "NetworkPluginNotReady";

export interface WatcherOptions extends LoadOptions {
  /** How often the directories are polled for changes fs.watch missed. Default 5 s; 0 disables. */
  pollIntervalMs?: number;
  /** Events within this window cause one reload. Default 50 ms. */
  debounceMs?: number;
  /** Use fs.watch (default true); false leaves the poll alone. */
  useFsWatch?: boolean;
}

export class NetworkConfigWatcher {
  private loaded: LoadedNetworks;
  private queued: Promise<LoadedNetworks> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private debounceTimer: ReturnType<typeof setTimeout> | undefined;
  private signature = "";
  private closed = false;
  private readonly listeners = new Set<(loaded: LoadedNetworks) => void>();

  constructor(private readonly opts: WatcherOptions) {
    this.loaded = {
      dir: opts.networkDir,
      networks: [],
      defaultNetwork: undefined,
      requestedDefault: opts.defaultNetwork ?? "",
      problems: [],
      candidates: 0,
    };
  }

  /** Loads the configurations once and starts watching. */
  async start(): Promise<void> {
    await this.reload();
    if (this.closed) return;
    this.ensureWatches();
    const interval = this.opts.pollIntervalMs ?? 5000;
    if (interval > 0) {
      this.pollTimer = setInterval(() => this.poll(), interval);
      this.pollTimer.unref?.();
    }
  }

  close(): void {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.listeners.clear();
  }

  /** The networks of the last load. */
  current(): LoadedNetworks {
    return this.loaded;
  }

  ready(): NetworkReadiness {
    const why = notReadyMessage(this.loaded);
    if (why === undefined) return { ready: true, reason: "", message: "" };
    // CRI-O's Status RPC prefixes the plugin's error this way (server/runtime_status.go).
    return { ready: false, reason: NETWORK_NOT_READY_REASON, message: `Network plugin returns error: ${why}` };
  }

  /** Calls `fn` after every load that changed the default network or the set of networks. */
  onChange(fn: (loaded: LoadedNetworks) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves true once a default network is loaded, false after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.loaded.defaultNetwork) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, timeoutMs);
      const off = this.onChange((l) => {
        if (!l.defaultNetwork) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  /**
   * Reloads now. Loads never overlap; calls made while one is queued share it, so a burst of
   * events costs at most one running and one queued load.
   */
  reload(): Promise<LoadedNetworks> {
    if (this.queued) return this.queued;
    const p = this.chain.then(() => {
      this.queued = undefined;
      return this.load();
    });
    this.queued = p;
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async load(): Promise<LoadedNetworks> {
    // The signature is taken before reading, so a change made during the load triggers another.
    this.signature = this.computeSignature();
    const before = this.loaded;
    const loaded = await loadNetworks(this.opts);
    this.loaded = loaded;
    const names = (l: LoadedNetworks) => l.networks.map((n) => `${n.name}@${n.file}:${n.bytes.length}`).join(",");
    const changed = before.defaultNetwork?.name !== loaded.defaultNetwork?.name || names(before) !== names(loaded);
    if (changed) {
      for (const n of loaded.networks) log.info(`Found CNI network ${n.name} (type=${n.plugins[0]?.type}) at ${n.file}`);
      for (const p of loaded.problems) log.warn(`Error loading CNI config file ${p.file}: ${p.message}`);
      if (loaded.defaultNetwork) log.info(`Updated default CNI network name to ${loaded.defaultNetwork.name}`);
      else log.warn(notReadyMessage(loaded) ?? "no default CNI network");
      for (const fn of [...this.listeners]) {
        try {
          fn(loaded);
        } catch (err) {
          log.warn("CNI config change listener failed", { error: err });
        }
      }
    }
    return loaded;
  }

  private scheduleReload(): void {
    // The first event of a burst starts the timer; later ones ride along (the load reads the
    // directory when the timer fires, so it sees them).
    if (this.closed || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      if (this.closed) return;
      this.reload().catch((err) => log.error("CNI config loading failed, continue monitoring", { error: err }));
    }, this.opts.debounceMs ?? 50);
  }

  private poll(): void {
    if (this.closed) return;
    this.ensureWatches();
    if (this.computeSignature() !== this.signature) this.scheduleReload();
  }

  /** Watches each existing directory; re-watches one that was replaced (new inode). */
  private ensureWatches(): void {
    if (this.closed || this.opts.useFsWatch === false) return;
    for (const dir of [this.opts.networkDir, ...this.opts.pluginDirs]) {
      let ino: number | undefined;
      try {
        const st = statSync(dir);
        if (st.isDirectory()) ino = st.ino;
      } catch {
        // absent: the poll keeps looking for it
      }
      const existing = this.watchers.get(dir);
      if (existing && existing.ino === ino) continue;
      if (existing) {
        existing.watcher.close();
        this.watchers.delete(dir);
        this.scheduleReload();
      }
      if (ino === undefined) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.scheduleReload());
        watcher.on("error", (err) => {
          log.warn("CNI directory watch failed; polling instead", { dir, error: err });
          watcher.close();
          if (this.watchers.get(dir)?.watcher === watcher) this.watchers.delete(dir);
        });
        this.watchers.set(dir, { watcher, ino });
      } catch (err) {
        log.warn("cannot watch CNI directory; polling instead", { dir, error: err });
      }
    }
  }

  /** What a change to the configuration or the installed plugins alters. */
  private computeSignature(): string {
    const parts: string[] = [];
    const dirPart = (dir: string, filter: (name: string) => boolean) => {
      try {
        const st = statSync(dir);
        parts.push(`${dir}:${st.ino}:${st.mtimeMs}`);
        for (const name of readdirSync(dir).sort()) {
          if (!filter(name)) continue;
          try {
            const f = statSync(join(dir, name));
            parts.push(`${name}:${f.ino}:${f.size}:${f.mtimeMs}`);
          } catch {
            parts.push(`${name}:gone`);
          }
        }
      } catch {
        parts.push(`${dir}:absent`);
      }
    };
    dirPart(this.opts.networkDir, (n) => (CONFIG_EXTENSIONS as readonly string[]).includes(extname(n)));
    for (const d of this.opts.pluginDirs) dirPart(d, () => true);
    return parts.join("\n");
  }
}
