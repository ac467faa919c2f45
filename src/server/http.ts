// CRI-O's HTTP status API, served on the CRI socket beside gRPC (what `crio status` reads):
//   GET /info             daemon facts (storage, cgroup driver, id mappings)
//   GET /config           the running configuration as TOML
//   GET /containers/:id   one container's facts
//   GET /pause/:id        pause a container; GET /unpause/:id resumes it
import http from "node:http";
import { log } from "../log.ts";

/** JSON shape of GET /info, field names as CRI-O's pkg/types.CrioInfo. */
export interface CrioInfo {
  storage_driver: string;
  storage_image: string;
  storage_root: string;
  cgroup_driver: string;
  default_id_mappings: { uids: IdMap[] | null; gids: IdMap[] | null };
}
export interface IdMap {
  container_id: number;
  host_id: number;
  size: number;
}

/** JSON shape of GET /containers/:id, field names as CRI-O's pkg/types.ContainerInfo. */
export interface ContainerInfo {
  name: string;
  pid: number;
  image: string;
  image_ref: string;
  created_time: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  crio_annotations: Record<string, string>;
  log_path: string;
  root: string;
  sandbox: string;
  ip_addresses: string[];
}

/** What the status API needs from the daemon; container lookups answer undefined for unknown IDs. */
export interface StatusSource {
  info(): CrioInfo;
  configToml(): string;
  container(id: string): ContainerInfo | undefined;
  pause(id: string): Promise<boolean>;
  unpause(id: string): Promise<boolean>;
}

type Reply = { status: number; type: string; body: string };

const text = (status: number, body: string): Reply => ({ status, type: "text/plain; charset=utf-8", body: body + "\n" });
const json = (value: unknown): Reply => ({ status: 200, type: "application/json", body: JSON.stringify(value) });

async function route(src: StatusSource, method: string, url: string): Promise<Reply> {
  const path = url.split("?")[0] ?? "/";
  if (method !== "GET" && method !== "HEAD") return text(405, `method ${method} not allowed`);
  if (path === "/info") return json(src.info());
  if (path === "/config") return { status: 200, type: "application/toml", body: src.configToml() };
  const m = /^\/(containers|pause|unpause)\/([^/]+)$/.exec(path);
  if (m) {
    const [, what, rawId] = m;
    const id = decodeURIComponent(rawId ?? "");
    if (what === "containers") {
      const info = src.container(id);
      return info ? json(info) : text(404, `can't find the container with id ${id}`);
    }
    const ok = what === "pause" ? await src.pause(id) : await src.unpause(id);
    return ok ? text(200, "200 OK") : text(404, `can't find the container with id ${id}`);
  }
  return text(404, `404 page not found: ${path}`);
}

/** An HTTP/1 server that is never bound: the CRI socket hands it connections. */
export function createStatusServer(src: StatusSource): http.Server {
  return http.createServer((req, res) => {
    const started = performance.now();
    route(src, req.method ?? "GET", req.url ?? "/")
      .catch((err: unknown): Reply => {
        log.error("status API request failed", { path: req.url, error: err });
        return text(500, err instanceof Error ? err.message : String(err));
      })
      .then((reply) => {
        res.writeHead(reply.status, { "Content-Type": reply.type, "Content-Length": Buffer.byteLength(reply.body) });
        res.end(req.method === "HEAD" ? undefined : reply.body);
        log.debug("status API request", { method: req.method, path: req.url, status: reply.status, duration: `${(performance.now() - started).toFixed(2)}ms` });
      });
  });
}
