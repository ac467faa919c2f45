// `crio status`: a client of the daemon's HTTP status API over its unix socket.
import http from "node:http";
import type { ContainerInfo, CrioInfo } from "../server/http.ts";

/** GET `path` over the unix socket; rejects with a readable message when the daemon is not there. */
export function getOverSocket(socketPath: string, path: string, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: "GET", headers: { Host: "crio" }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") reject(new Error(`cannot connect to ${socketPath}: the socket does not exist (is crio running?)`));
      else if (err.code === "ECONNREFUSED") reject(new Error(`cannot connect to ${socketPath}: connection refused (is crio running?)`));
      else if (err.code === "EACCES") reject(new Error(`cannot connect to ${socketPath}: permission denied`));
      else reject(new Error(`cannot connect to ${socketPath}: ${err.message}`));
    });
    req.end();
  });
}

async function getOk(socketPath: string, path: string): Promise<string> {
  const res = await getOverSocket(socketPath, path);
  if (res.status !== 200) throw new Error(res.body.trim() || `GET ${path}: HTTP ${res.status}`);
  return res.body;
}

export async function statusConfig(socketPath: string): Promise<string> {
  return getOk(socketPath, "/config");
}

export async function statusInfo(socketPath: string): Promise<string> {
  const info = JSON.parse(await getOk(socketPath, "/info")) as CrioInfo;
  const lines = [
    `cgroup driver: ${info.cgroup_driver}`,
    `storage driver: ${info.storage_driver}`,
    `storage graph root: ${info.storage_root}`,
    `storage image: ${info.storage_image}`,
    "default GID mappings (format <container>:<host>:<size>):",
    ...(info.default_id_mappings.gids ?? []).map((m) => `  ${m.container_id}:${m.host_id}:${m.size}`),
    "default UID mappings (format <container>:<host>:<size>):",
    ...(info.default_id_mappings.uids ?? []).map((m) => `  ${m.container_id}:${m.host_id}:${m.size}`),
  ];
  return lines.join("\n") + "\n";
}

export async function statusContainer(socketPath: string, id: string): Promise<string> {
  const c = JSON.parse(await getOk(socketPath, `/containers/${encodeURIComponent(id)}`)) as ContainerInfo;
  const map = (m: Record<string, string> | null) => Object.entries(m ?? {}).map(([k, v]) => `  ${k}: ${v}`);
  const lines = [
    `name: ${c.name}`,
    `pid: ${c.pid}`,
    `image: ${c.image}`,
    `image ref: ${c.image_ref}`,
    `created: ${c.created_time}`,
    "labels:",
    ...map(c.labels),
    "annotations:",
    ...map(c.annotations),
    "CRI-O annotations:",
    ...map(c.crio_annotations),
    `log path: ${c.log_path}`,
    `graph root: ${c.root}`,
    `sandbox: ${c.sandbox}`,
    `ips: ${(c.ip_addresses ?? []).join(", ")}`,
  ];
  return lines.join("\n") + "\n";
}
