// A static file server on 127.0.0.1 for tests of downloads (scripts/get): GET /<name> answers the
// file <dir>/<name> or 404. Names in `truncate` are sent with their full Content-Length but only
// half their bytes before the connection is cut, as a download broken off midway looks.
import { createServer, type Server } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { AddressInfo } from "node:net";

export interface FileServer {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** Requested paths, in order. */
  requests: string[];
  truncate: Set<string>;
  stop(): Promise<void>;
}

export async function serveDir(dir: string): Promise<FileServer> {
  const requests: string[] = [];
  const truncate = new Set<string>();
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "/").split("?")[0]!.slice(1));
    requests.push(name);
    const file = join(dir, basename(name));
    if (name !== basename(name) || name === "" || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body.length) });
    if (truncate.has(name)) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    truncate,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
