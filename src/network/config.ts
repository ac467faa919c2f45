// CNI network configurations: the files in network_dir (*.conflist, *.conf, *.json), parsed and
// validated as libcni's conf.go does, sorted by file name, with the default network chosen as
// ocicni does (cni_default_network, else the first valid file). A network whose plugins are not
// installed, or do not speak its cniVersion, is skipped with the reason recorded: readiness
// reports it instead of a pod failing later.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { findPlugin, pluginVersions } from "./invoke.ts";
import { parseVersion } from "./result.ts";

export const CONFIG_EXTENSIONS = [".conf", ".conflist", ".json"] as const;
export const DEFAULT_NETWORK_DIR = "/etc/cni/net.d/";
export const DEFAULT_PLUGIN_DIRS: readonly string[] = ["/opt/cni/bin/"];

/** One plugin's entry in a list: `type`, optional `capabilities`, and plugin-specific keys. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  /** `disableCheck`: the runtime must not run CHECK for this network. */
  disableCheck: boolean;
  plugins: PluginConf[];
  /**
   * The list's JSON text, the configuration cached on ADD (libcni caches the list's bytes; a
   * single .conf is wrapped into a list first, as libcni's ConfListFromConf does).
   */
  bytes: string;
  /** The file it came from (absent for a configuration read back from the results cache). */
  file?: string;
}

export interface ConfigFileProblem {
  file: string;
  message: string;
}

export interface LoadedNetworks {
  dir: string;
  /** Valid networks, by file name; the first file wins when two share a network name. */
  networks: NetworkConfigList[];
  /** The network pods attach to, when one is configured and valid. */
  defaultNetwork: NetworkConfigList | undefined;
  /** The name asked for in cni_default_network, or "" to take the first file. */
  requestedDefault: string;
  /** Files that were skipped, and why. */
  problems: ConfigFileProblem[];
  /** How many candidate files (by extension) the directory held. */
  candidates: number;
}

// libcni pkg/utils: network names and container IDs share this alphabet, so that the cache
// file name <network>-<containerID>-<ifname> is a plain file name.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateNetworkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new InvalidArgumentError(`invalid CNI network name ${JSON.stringify(name)}: must match ${NAME_RE.source}`);
  }
}

export function validateContainerId(id: string): void {
  if (!NAME_RE.test(id)) {
    throw new InvalidArgumentError(`invalid CNI container ID ${JSON.stringify(id)}: must match ${NAME_RE.source}`);
  }
}

/** SPEC.md: not empty, not "." or "..", under 16 bytes, no "/", ":" or whitespace. */
export function validateInterfaceName(name: string): void {
  if (name === "" || name === "." || name === ".." || Buffer.byteLength(name) > 15 || /[/:\s]/.test(name)) {
    throw new InvalidArgumentError(`invalid CNI interface name ${JSON.stringify(name)}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(source: string, message: string): never {
  throw new InvalidArgumentError(`${source}: ${message}`);
}

function parseJson(text: string, source: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(source, `invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) fail(source, "not a JSON object");
  return raw;
}

function checkNameAndVersion(raw: Record<string, unknown>, source: string): { name: string; cniVersion: string } {
  const { name, cniVersion } = raw;
  if (typeof name !== "string" || name === "") fail(source, "no network name ('name')");
  if (!NAME_RE.test(name)) fail(source, `invalid network name ${JSON.stringify(name)}: must match ${NAME_RE.source}`);
  if (typeof cniVersion !== "string" || cniVersion === "") fail(source, "no 'cniVersion'");
  if (!parseVersion(cniVersion)) fail(source, `invalid cniVersion ${JSON.stringify(cniVersion)}`);
  return { name, cniVersion };
}

function checkPlugin(raw: unknown, source: string): PluginConf {
  if (!isObject(raw)) fail(source, "plugin entry is not a JSON object");
  const { type } = raw;
  if (typeof type !== "string" || type === "") fail(source, "plugin entry has no 'type'");
  // The type names an executable in plugin_dirs; a path would escape them.
  if (!NAME_RE.test(type)) fail(source, `invalid plugin type ${JSON.stringify(type)}`);
  if (raw.capabilities !== undefined && !isObject(raw.capabilities)) fail(source, `plugin ${type}: 'capabilities' is not an object`);
  return raw as PluginConf;
}

/** Parses a configuration list (a .conflist file, or the cached configuration). */
export function parseConfList(text: string, source: string): NetworkConfigList {
  const raw = parseJson(text, source);
  const { name, cniVersion } = checkNameAndVersion(raw, source);
  let disableCheck = false;
  if (typeof raw.disableCheck === "boolean") disableCheck = raw.disableCheck;
  else if (typeof raw.disableCheck === "string") disableCheck = raw.disableCheck.toLowerCase() === "true";
  else if (raw.disableCheck !== undefined) fail(source, "'disableCheck' is not a boolean");
  if (raw.plugins === undefined) fail(source, "no 'plugins' key");
  if (!Array.isArray(raw.plugins)) fail(source, "'plugins' is not a list");
  if (raw.plugins.length === 0) fail(source, "no plugins in list");
  const plugins = raw.plugins.map((p) => checkPlugin(p, source));
  return { name, cniVersion, disableCheck, plugins, bytes: text };
}

/** Parses a single-plugin configuration (.conf, .json) and wraps it into a list, as libcni does. */
export function parseConf(text: string, source: string): NetworkConfigList {
  const raw = parseJson(text, source);
  if (raw.type === undefined && raw.plugins !== undefined) fail(source, "no 'type'; perhaps this is a .conflist?");
  const { name, cniVersion } = checkNameAndVersion(raw, source);
  const plugin = checkPlugin(raw, source);
  const bytes = JSON.stringify({ name, cniVersion, plugins: [raw] });
  return { name, cniVersion, disableCheck: false, plugins: [plugin], bytes };
}

/** Parses a file's text by its extension. */
export function parseConfigFile(text: string, file: string): NetworkConfigList {
  const list = extname(file) === ".conflist" ? parseConfList(text, file) : parseConf(text, file);
  list.file = file;
  return list;
}

/** The candidate files of `dir`, sorted; an absent directory holds none. */
export function configFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
  const files: string[] = [];
  for (const name of names.sort()) {
    if (!(CONFIG_EXTENSIONS as readonly string[]).includes(extname(name))) continue;
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
    } catch {
      continue; // removed meanwhile, or a dangling link
    }
    files.push(path);
  }
  return files;
}

export interface LoadOptions {
  networkDir: string;
  pluginDirs: readonly string[];
  /** cni_default_network; "" takes the first valid file. */
  defaultNetwork?: string;
  /**
   * Ask every plugin for the versions it supports (VERSION) and skip networks whose cniVersion
   * one of them lacks, as ocicni's ValidateNetworkList does. Default true.
   */
  checkPluginVersions?: boolean;
}

/** Checks that every plugin of `list` is installed (and speaks its version). Returns the problem, if any. */
export async function validatePlugins(list: NetworkConfigList, pluginDirs: readonly string[], checkVersions: boolean): Promise<string | undefined> {
  const problems: string[] = [];
  for (const type of new Set(list.plugins.map((p) => p.type))) {
    let path: string;
    try {
      path = findPlugin(type, pluginDirs);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    if (!checkVersions) continue;
    try {
      const versions = await pluginVersions(type, path, list.cniVersion);
      if (!versions.includes(list.cniVersion)) {
        problems.push(`plugin ${type} (${path}) does not support config version ${JSON.stringify(list.cniVersion)} (supports ${versions.join(", ")})`);
      }
    } catch (err) {
      problems.push(`plugin ${type} (${path}) failed VERSION: ${(err as Error).message}`);
    }
  }
  return problems.length > 0 ? problems.join("; ") : undefined;
}

/** Loads every configuration in the directory. Never throws for a bad file: it is recorded in `problems`. */
export async function loadNetworks(opts: LoadOptions): Promise<LoadedNetworks> {
  const files = configFiles(opts.networkDir);
  const networks: NetworkConfigList[] = [];
  const problems: ConfigFileProblem[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let list: NetworkConfigList;
    try {
      list = parseConfigFile(readFileSync(file, "utf8"), file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "ENOENT") continue; // removed while we read the directory
      problems.push({ file, message: e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message });
      continue;
    }
    if (seen.has(list.name)) {
      problems.push({ file, message: `network ${JSON.stringify(list.name)} is already defined by an earlier file; ignored` });
      continue;
    }
    const problem = await validatePlugins(list, opts.pluginDirs, opts.checkPluginVersions ?? true);
    if (problem) {
      problems.push({ file, message: problem });
      continue;
    }
    seen.add(list.name);
    networks.push(list);
  }
  const requestedDefault = opts.defaultNetwork ?? "";
  const defaultNetwork = requestedDefault === "" ? networks[0] : networks.find((n) => n.name === requestedDefault);
  return { dir: opts.networkDir, networks, defaultNetwork, requestedDefault, problems, candidates: files.length };
}

/**
 * Why pods cannot get a network, in ocicni's wording ("no CNI configuration file in %s. Has your
 * network provider started?") plus what was found instead; undefined when a default network is loaded.
 */
export function notReadyMessage(loaded: LoadedNetworks): string | undefined {
  if (loaded.defaultNetwork) return undefined;
  let msg = `no CNI configuration file in ${loaded.dir}. Has your network provider started?`;
  if (loaded.requestedDefault !== "" && loaded.networks.length > 0) {
    msg += ` Default network ${JSON.stringify(loaded.requestedDefault)} (cni_default_network) is not among the loaded networks: ${loaded.networks.map((n) => n.name).join(", ")}.`;
  }
  if (loaded.problems.length > 0) {
    msg += ` Skipped: ${loaded.problems.map((p) => `${basename(p.file)}: ${p.message}`).join("; ")}`;
  }
  return msg;
}
