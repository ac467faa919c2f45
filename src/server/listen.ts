// The daemon's one unix socket. CRI-O serves CRI gRPC and its HTTP status API on the same
// socket: a connection whose first bytes are the HTTP/2 client preface ("PRI * HTTP/2.0") goes
// to grpc-js, anything else to the HTTP/1 server.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import net from "node:net";
import { dirname } from "node:path";

const H2_PREFACE_START = Buffer.from("PRI");
/** How long a new connection may stay silent before we give up on classifying it. */
const SNIFF_TIMEOUT_MS = 30_000;

export interface SocketHandlers {
  grpc(socket: net.Socket): void;
  http(socket: net.Socket): void;
}

/**
 * Throws when `path` is held by a live listener; removes a stale socket left by a dead daemon.
 * Anything at `path` that is not a socket is refused rather than deleted.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new Error(`listen path ${path} exists and is not a socket; remove it or choose another --listen`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
  if (alive) {
    throw new Error(`another daemon is already listening on ${path}; stop it first or choose another --listen`);
  }
  unlinkSync(path);
}

/** Binds `path` with mode 0660 (never world-accessible, not even between bind and chmod). */
export async function listenUnix(path: string, handlers: SocketHandlers): Promise<net.Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  await clearStaleSocket(path);
  const server = net.createServer((socket) => sniff(socket, handlers));
  const oldMask = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o660);
  return server;
}

/** Reads just enough of a new connection to tell HTTP/2 (gRPC) from HTTP/1, then hands it on. */
function sniff(socket: net.Socket, handlers: SocketHandlers): void {
  let buffered = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) buffered = Buffer.concat([buffered, chunk]);
    if (buffered.length < H2_PREFACE_START.length) return;
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("error", onError);
    socket.off("end", onError);
    socket.unshift(buffered);
    if (buffered.subarray(0, H2_PREFACE_START.length).equals(H2_PREFACE_START)) handlers.grpc(socket);
    else handlers.http(socket);
  };
  socket.on("readable", onReadable);
  socket.once("error", onError);
  socket.once("end", onError);
}
