// Storage defaults from containers-storage.conf(5). CRI-O takes its default root, runroot,
// driver, image store and driver options from this file (through containers/storage), and only
// crio.conf values that are non-empty replace them.
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "../errors.ts";
import {
  DEFAULT_STORAGE_CONF,
  FALLBACK_GRAPH_ROOT,
  FALLBACK_RUN_ROOT,
  FALLBACK_STORAGE_DRIVER,
  type StorageDefaults,
} from "./schema.ts";
import type { ConfigFs } from "./fs.ts";

/** Keys of [storage.options] (and [storage.options.<driver>]) that become driver options. */
const DRIVER_OPTION_KEYS = [
  "mountopt",
  "mount_program",
  "size",
  "skip_mount_home",
  "ignore_chown_errors",
  "force_mask",
  "inodes",
  "use_composefs",
] as const;

function isTable(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return undefined;
}

/** The storage.conf path in effect: $CONTAINERS_STORAGE_CONF or /etc/containers/storage.conf. */
export function storageConfPath(env: Record<string, string | undefined>): string {
  const p = env.CONTAINERS_STORAGE_CONF;
  return p !== undefined && p !== "" ? p : DEFAULT_STORAGE_CONF;
}

/**
 * Reads storage defaults. A missing file yields the static fallbacks
 * (/var/lib/containers/storage, /run/containers/storage, overlay). STORAGE_DRIVER and
 * STORAGE_OPTS override the driver and its options, as containers/storage does.
 */
export function readStorageDefaults(
  fs: ConfigFs,
  env: Record<string, string | undefined>,
  path: string = storageConfPath(env),
): StorageDefaults {
  const out: StorageDefaults = {
    driver: "",
    graphroot: "",
    runroot: "",
    imagestore: "",
    options: [],
  };
  const text = fs.readFileIfExists(path);
  if (text !== undefined) {
    let doc: Record<string, unknown>;
    try {
      doc = parse(text, { integersAsBigInt: "asNeeded" }) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof TomlError) {
        throw new ConfigError(`cannot parse storage configuration: ${err.message.split("\n")[0]}`, {
          source: path,
          line: err.line,
        });
      }
      throw err;
    }
    const storage = doc.storage;
    if (isTable(storage)) {
      const str = (k: string): string => (typeof storage[k] === "string" ? (storage[k] as string) : "");
      out.driver = str("driver");
      out.graphroot = str("graphroot");
      out.runroot = str("runroot");
      out.imagestore = str("imagestore");
      const driver = out.driver || FALLBACK_STORAGE_DRIVER;
      const options = storage.options;
      if (isTable(options)) {
        const stores = options.additionalimagestores;
        if (Array.isArray(stores)) {
          for (const s of stores) if (typeof s === "string") out.options.push(`${driver}.imagestore=${s}`);
        }
        const driverTable = options[driver];
        for (const key of DRIVER_OPTION_KEYS) {
          // The driver's own table wins over the older flat keys of [storage.options].
          const v = isTable(driverTable) && key in driverTable ? driverTable[key] : options[key];
          const text = scalarText(v);
          if (text !== undefined && text !== "") out.options.push(`${driver}.${key}=${text}`);
        }
      }
    }
  }
  const envDriver = env.STORAGE_DRIVER;
  if (envDriver) out.driver = envDriver;
  const envOpts = env.STORAGE_OPTS;
  if (envOpts) out.options = envOpts.split(",").filter((o) => o !== "");
  if (out.driver === "") out.driver = FALLBACK_STORAGE_DRIVER;
  if (out.graphroot === "") out.graphroot = FALLBACK_GRAPH_ROOT;
  if (out.runroot === "") out.runroot = FALLBACK_RUN_ROOT;
  return out;
}
