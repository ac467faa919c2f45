// CNI results and spec versions: parsing a plugin's stdout, and converting results between the
// spec's result formats (SPEC.md "Result" and the 0.x formats it replaced), the way libcni's
// pkg/types/{020,040,100} GetAsVersion do, so that a chain mixes plugins of different versions.
//
//   0.1.0, 0.2.0   { ip4: { ip, gateway, routes }, ip6: {...}, dns }
//   0.3.0 - 0.4.0  { interfaces, ips: [{ version: "4"|"6", address, gateway, interface }], routes, dns }
//   1.0.0, 1.1.0   as 0.4.0 without ips[].version
import { InternalError } from "../errors.ts";

export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
/** The result format this module hands out: CNI 1.0 (CRI-O reads results as types/100 too). */
export const CURRENT_VERSION = "1.0.0";

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The netns path for container interfaces; empty or absent for host interfaces. */
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIpConfig {
  /** CIDR notation: "10.89.0.5/24". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A CNI 1.0 result. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** A result as a plugin printed it, in whatever version it speaks. */
export type RawResult = Record<string, unknown>;

/** Parses "x.y.z" into a tuple; undefined for anything else. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Compares two spec versions; throws on malformed ones. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) throw new InternalError(`invalid CNI version: ${JSON.stringify(pa ? b : a)}`);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] as number) - (pb[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function ipFamily(cidrOrIp: string): 4 | 6 {
  return cidrOrIp.includes(":") ? 6 : 4;
}

/** Strips the prefix length: "10.0.0.2/24" → "10.0.0.2". */
export function addressOf(cidr: string): string {
  const slash = cidr.indexOf("/");
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function routesFrom(v: unknown): CniRoute[] {
  if (!Array.isArray(v)) return [];
  const out: CniRoute[] = [];
  for (const r of v) {
    if (!isObject(r) || typeof r.dst !== "string") continue;
    const route: CniRoute = { dst: r.dst };
    if (typeof r.gw === "string") route.gw = r.gw;
    for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
      if (typeof r[k] === "number") route[k] = r[k] as number;
    }
    out.push(route);
  }
  return out;
}

function dnsFrom(v: unknown): CniDns | undefined {
  if (!isObject(v)) return undefined;
  const dns: CniDns = {};
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : undefined);
  const ns = strings(v.nameservers);
  if (ns?.length) dns.nameservers = ns;
  if (typeof v.domain === "string" && v.domain !== "") dns.domain = v.domain;
  const search = strings(v.search);
  if (search?.length) dns.search = search;
  const options = strings(v.options);
  if (options?.length) dns.options = options;
  return Object.keys(dns).length > 0 ? dns : undefined;
}

/**
 * Reads a result of any supported version into the CNI 1.0 shape. `fallbackVersion` is used
 * when the result carries no cniVersion (libcni assumes the config's version then).
 */
export function toCurrent(raw: RawResult, fallbackVersion = CURRENT_VERSION): CniResult {
  const version = str(raw.cniVersion) || fallbackVersion;
  const parsed = parseVersion(version);
  if (!parsed) throw new InternalError(`CNI result has an invalid cniVersion ${JSON.stringify(version)}`);
  const result: CniResult = { cniVersion: CURRENT_VERSION };

  if (compareVersions(version, "0.3.0") < 0) {
    // 0.1.0 / 0.2.0: one address per family, routes nested in it, no interfaces.
    const ips: CniIpConfig[] = [];
    const routes: CniRoute[] = [];
    for (const key of ["ip4", "ip6"] as const) {
      const block = raw[key];
      if (!isObject(block) || typeof block.ip !== "string") continue;
      const ip: CniIpConfig = { address: block.ip };
      if (typeof block.gateway === "string") ip.gateway = block.gateway;
      ips.push(ip);
      routes.push(...routesFrom(block.routes));
    }
    if (ips.length) result.ips = ips;
    if (routes.length) result.routes = routes;
  } else {
    if (Array.isArray(raw.interfaces)) {
      result.interfaces = raw.interfaces.filter(isObject).map((i) => {
        const iface: CniInterface = { name: str(i.name) ?? "" };
        if (typeof i.mac === "string" && i.mac !== "") iface.mac = i.mac;
        if (typeof i.mtu === "number") iface.mtu = i.mtu;
        if (typeof i.sandbox === "string" && i.sandbox !== "") iface.sandbox = i.sandbox;
        if (typeof i.socketPath === "string" && i.socketPath !== "") iface.socketPath = i.socketPath;
        if (typeof i.pciID === "string" && i.pciID !== "") iface.pciID = i.pciID;
        return iface;
      });
    }
    if (Array.isArray(raw.ips)) {
      const ips: CniIpConfig[] = [];
      for (const i of raw.ips) {
        if (!isObject(i) || typeof i.address !== "string") continue;
        const ip: CniIpConfig = { address: i.address };
        if (typeof i.gateway === "string" && i.gateway !== "") ip.gateway = i.gateway;
        if (typeof i.interface === "number") ip.interface = i.interface;
        ips.push(ip);
      }
      result.ips = ips;
    }
    const routes = routesFrom(raw.routes);
    if (routes.length) result.routes = routes;
  }
  const dns = dnsFrom(raw.dns);
  if (dns) result.dns = dns;
  return result;
}

/**
 * Converts a result to the format of `version`, for a plugin's prevResult (the spec wants it in
 * the configuration's version) or a caller that speaks an older version.
 */
export function convertResult(raw: RawResult, version: string, fallbackVersion = CURRENT_VERSION): RawResult {
  const from = str(raw.cniVersion) || fallbackVersion;
  if (from === version) return raw;
  const cur = toCurrent(raw, fallbackVersion);
  if (compareVersions(version, "1.0.0") >= 0) return { ...cur, cniVersion: version };
  if (compareVersions(version, "0.3.0") >= 0) {
    const out: RawResult = { cniVersion: version };
    if (cur.interfaces) out.interfaces = cur.interfaces;
    out.ips = (cur.ips ?? []).map((ip) => ({ version: String(ipFamily(ip.address)), ...ip }));
    if (cur.routes) out.routes = cur.routes;
    if (cur.dns) out.dns = cur.dns;
    return out;
  }
  // 0.1.0 / 0.2.0: the first address of each family, with the routes of that family.
  const out: RawResult = { cniVersion: version };
  for (const family of [4, 6] as const) {
    const ip = (cur.ips ?? []).find((i) => ipFamily(i.address) === family);
    if (!ip) continue;
    const block: Record<string, unknown> = { ip: ip.address };
    if (ip.gateway) block.gateway = ip.gateway;
    const routes = (cur.routes ?? []).filter((r) => ipFamily(r.dst) === family);
    if (routes.length) block.routes = routes;
    out[family === 4 ? "ip4" : "ip6"] = block;
  }
  if (cur.dns) out.dns = cur.dns;
  return out;
}

/**
 * The pod's addresses from a result, without prefix length: IPv4 first, then IPv6, each in
 * result order. Addresses on host-side interfaces (an interface without a sandbox) are skipped.
 */
export function podIps(result: CniResult): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const ip of result.ips ?? []) {
    if (ip.interface !== undefined) {
      const iface = result.interfaces?.[ip.interface];
      if (iface && !iface.sandbox) continue;
    }
    const addr = addressOf(ip.address);
    (ipFamily(addr) === 4 ? v4 : v6).push(addr);
  }
  return [...v4, ...v6];
}
