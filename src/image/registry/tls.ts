// TLS settings for one registry, as containers/image's tlsclientconfig.SetupCertificates reads
// them: the first existing <certs dir>/<host[:port]>/ among /etc/containers/certs.d and
// /etc/docker/certs.d holds `*.crt` CA certificates (trusted in addition to the system's) and
// `*.cert` + `*.key` client certificate pairs. A .cert without its .key, or the reverse, is a
// configuration error, as there.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { join } from "node:path";
import { FailedPreconditionError } from "../../errors.ts";

export const DEFAULT_CERTS_DIRS = ["/etc/containers/certs.d", "/etc/docker/certs.d"];
export const DEFAULT_SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt";

export interface RegistryTls {
  /** CA certificates to trust: the system bundle followed by the registry's own. */
  ca: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  /** The certs.d directory used, if any. */
  dir?: string;
}

let systemCaCache: { file: string; pem: string[] } | undefined;

/**
 * The system's trusted CAs: Debian's bundle (so certificates added with update-ca-certificates
 * count, as they do for Go's system pool), else Bun's built-in Mozilla list. Giving fetch a `ca`
 * replaces its defaults, so registry CAs are always passed together with these.
 */
export function systemCa(file: string = DEFAULT_SYSTEM_CA_FILE): string[] {
  if (systemCaCache?.file === file) return systemCaCache.pem;
  let pem: string[];
  try {
    pem = [readFileSync(file, "utf8")];
  } catch {
    pem = [...rootCertificates];
  }
  systemCaCache = { file, pem };
  return pem;
}

/** The certs.d directory for `hostPort`: the first existing one, as dockerCertDir picks it. */
export function certsDirFor(hostPort: string, certsDirs: string[]): string | undefined {
  for (const base of certsDirs) {
    const dir = join(base, hostPort);
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // Missing or unreadable: try the next one.
    }
  }
  return undefined;
}

/** Reads the TLS settings for `hostPort`. `insecure` turns verification off (the CAs still load). */
export function loadRegistryTls(
  hostPort: string,
  opts: { certsDirs: string[]; insecure: boolean; systemCaFile?: string },
): RegistryTls {
  const ca = [...systemCa(opts.systemCaFile)];
  const tls: RegistryTls = { ca, rejectUnauthorized: !opts.insecure };
  const dir = certsDirFor(hostPort, opts.certsDirs);
  if (dir === undefined) return tls;
  tls.dir = dir;
  const names = readdirSync(dir).sort();
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith(".crt")) {
      ca.push(readFileSync(path, "utf8"));
    } else if (name.endsWith(".cert")) {
      const keyName = name.slice(0, -".cert".length) + ".key";
      if (!existsSync(join(dir, keyName))) {
        throw new FailedPreconditionError(`missing key ${keyName} for client certificate ${name} in ${dir}`);
      }
      if (tls.cert === undefined) {
        tls.cert = readFileSync(path, "utf8");
        tls.key = readFileSync(join(dir, keyName), "utf8");
      }
    } else if (name.endsWith(".key")) {
      const certName = name.slice(0, -".key".length) + ".cert";
      if (!existsSync(join(dir, certName))) {
        throw new FailedPreconditionError(`missing client certificate ${certName} for key ${name} in ${dir}`);
      }
    }
  }
  return tls;
}
