// The CRI streaming server (CRI-O's server/server.go + k8s.io/kubelet/pkg/cri/streaming): the
// HTTP endpoint that kubelet proxies `kubectl exec/attach/port-forward` to. The Exec, Attach
// and PortForward RPCs call getExec/getAttach/getPortForward, which validate the request, store
// it under a single-use token and return the URL; the client then upgrades a GET or POST on
// that URL to SPDY/3.1 or a WebSocket and the session is served by remotecommand.ts or
// portforward.ts against the StreamingBackend.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { parseGoDuration } from "../config/duration.ts";
import { InvalidArgumentError } from "../errors.ts";
import { log } from "../log.ts";
import {
  SPDY_PORTFORWARD_PROTOCOLS,
  WS_PORTFORWARD_PROTOCOLS,
  servePortForwardSpdy,
  servePortForwardWebSocket,
} from "./portforward.ts";
import {
  SPDY_REMOTECOMMAND_PROTOCOLS,
  WS_REMOTECOMMAND_PROTOCOLS,
  serveRemoteCommandSpdy,
  serveRemoteCommandWebSocket,
  type CommandRunner,
  type SessionOptions,
} from "./remotecommand.ts";
import { SpdySession } from "./spdy.ts";
import { exitCodeStatus, internalErrorStatus, successStatus } from "./status.ts";
import { TokenCache, type StreamRequest, type TokenCacheOptions } from "./token-cache.ts";
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend } from "./types.ts";
import { checkHandshake, isWebSocketRequest, offeredProtocols, WebSocketConnection, writeHandshakeResponse } from "./websocket.ts";

/** kubelet's DefaultConfig.StreamIdleTimeout, which CRI-O keeps when stream_idle_timeout is "". */
export const DEFAULT_IDLE_TIMEOUT_MS = 4 * 60 * 60 * 1000;
/** apimachinery's DefaultStreamCreationTimeout. */
export const DEFAULT_STREAM_CREATION_TIMEOUT_MS = 30_000;

export interface StreamingServerOptions {
  /** stream_address; default "127.0.0.1". */
  address?: string;
  /** stream_port; 0 (the default) picks a free port. */
  port?: number | string;
  /** stream_idle_timeout as a Go duration; "" or "0" mean the default of 4h. */
  idleTimeout?: string;
  /** How long a SPDY client has to open its streams. */
  streamCreationTimeoutMs?: number;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Token cache tuning (tests). */
  tokens?: TokenCacheOptions;
  /** Passed to SPDY sessions (tests). */
  legacyPeerGraceMs?: number;
}

/** An upgraded connection being served. */
interface LiveSession {
  close(): Promise<unknown>;
  destroy(): void;
}

type Conn =
  | { kind: "response"; res: http.ServerResponse }
  | { kind: "socket"; socket: Duplex; head: Uint8Array };

export class StreamingServer {
  private readonly backend: StreamingBackend;
  private readonly tokens: TokenCache;
  private readonly server: http.Server;
  /** With TLS: the listener, which hands decrypted connections to `server`. */
  private readonly tlsServer: tls.Server | undefined;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly idleTimeoutMs: number;
  private readonly creationTimeoutMs: number;
  private readonly scheme: "http" | "https";
  private readonly legacyPeerGraceMs: number | undefined;
  private readonly live = new Set<LiveSession>();
  private bound: AddressInfo | undefined;

  constructor(backend: StreamingBackend, options: StreamingServerOptions = {}) {
    this.backend = backend;
    this.tokens = new TokenCache(options.tokens);
    // "" listens on every interface, as Go's net.Listen does for ":port".
    this.host = options.address ?? "127.0.0.1";
    this.requestedPort = Number(options.port ?? 0);
    if (!Number.isInteger(this.requestedPort) || this.requestedPort < 0 || this.requestedPort > 0xffff) {
      throw new InvalidArgumentError(`invalid stream port ${JSON.stringify(options.port)}`);
    }
    this.idleTimeoutMs = idleTimeoutMs(options.idleTimeout ?? "");
    this.creationTimeoutMs = options.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS;
    this.legacyPeerGraceMs = options.legacyPeerGraceMs;
    this.scheme = options.tls ? "https" : "http";
    this.server = http.createServer();
    if (options.tls) {
      // A TLS listener feeding the HTTP server (rather than node:https) so that the
      // certificate can be replaced with setSecureContext.
      this.tlsServer = tls.createServer({ cert: options.tls.cert, key: options.tls.key }, (socket) =>
        this.server.emit("connection", socket),
      );
      this.tlsServer.on("tlsClientError", (_err: Error, socket: Duplex) => socket.destroy());
    }
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => this.route(req, { kind: "response", res }));
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      // Interactive sessions send small frames: no Nagle delay (Go sets TCP_NODELAY too).
      (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.route(req, { kind: "socket", socket, head });
    });
    this.server.on("clientError", (_err: Error, socket: Duplex) => socket.destroy());
  }

  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  listen(): Promise<AddressInfo> {
    const listener = this.tlsServer ?? this.server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      listener.once("error", onError);
      const onListening = (): void => {
        listener.off("error", onError);
        this.bound = listener.address() as AddressInfo;
        log.info(`Streaming server listening on ${this.baseUrl}`);
        resolve(this.bound);
      };
      if (this.host === "") listener.listen(this.requestedPort, onListening);
      else listener.listen(this.requestedPort, this.host, onListening);
    });
  }

  /** The bound address; throws before listen() resolved. */
  get address(): AddressInfo {
    if (!this.bound) throw new Error("streaming server is not listening");
    return this.bound;
  }

  /** scheme://host:port of the server, the prefix of every URL it hands out. */
  get baseUrl(): string {
    const { address, port } = this.address;
    const host = address.includes(":") ? `[${address}]` : address;
    return `${this.scheme}://${host}:${port}`;
  }

  /** Replaces the TLS certificate and key (on certificate rotation). */
  updateTls(material: { cert: string | Buffer; key: string | Buffer }): void {
    if (!this.tlsServer) throw new Error("streaming server does not serve TLS");
    this.tlsServer.setSecureContext({ cert: material.cert, key: material.key });
  }

  /** For the Exec RPC: validates the request and returns the URL that serves it. */
  getExec(req: ExecRequest): string {
    validateStdio(req, "one of stdin, stdout, or stderr must be set");
    return this.register({ kind: "exec", request: req });
  }

  /** For the Attach RPC. */
  getAttach(req: AttachRequest): string {
    validateStdio(req, "one of stdin, stdout, and stderr must be set");
    return this.register({ kind: "attach", request: req });
  }

  /** For the PortForward RPC. */
  getPortForward(req: PortForwardRequest): string {
    if (!req.podSandboxId) throw new InvalidArgumentError("missing required pod_sandbox_id");
    return this.register({ kind: "portforward", request: req });
  }

  /** Stops listening and closes every open session (gracefully, for up to a second). */
  async close(): Promise<void> {
    const listener = this.tlsServer ?? this.server;
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    this.server.closeAllConnections?.();
    const sessions = [...this.live];
    const timer = setTimeout(() => sessions.forEach((s) => s.destroy()), 1000);
    await Promise.all(sessions.map((s) => s.close()));
    clearTimeout(timer);
    await closed;
  }

  private register(req: StreamRequest): string {
    const token = this.tokens.insert(req);
    return `${this.baseUrl}/${req.kind}/${token}`;
  }

  private route(req: http.IncomingMessage, conn: Conn): void {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const m = /^\/(exec|attach|portforward)\/([^/]+)$/.exec(path);
    if (!m) return reply(conn, 404, "404: Page Not Found");
    if (req.method !== "GET" && req.method !== "POST") return reply(conn, 405, "405: Method Not Allowed");
    const entry = this.tokens.consume(m[2] as string);
    if (!entry || entry.kind !== m[1]) return reply(conn, 404, "404 page not found\n");
    if (isWebSocketRequest(req.headers)) this.serveWebSocket(req, conn, entry);
    else this.serveSpdy(req, conn, entry);
  }

  private serveSpdy(req: http.IncomingMessage, conn: Conn, entry: StreamRequest): void {
    // httpstream.Handshake: the client's most preferred protocol that the server supports.
    const supported = entry.kind === "portforward" ? SPDY_PORTFORWARD_PROTOCOLS : SPDY_REMOTECOMMAND_PROTOCOLS;
    const offered = commaSeparated(req.headers["x-stream-protocol-version"]);
    if (offered.length === 0) {
      // kubelet returns without writing anything (an empty 200); a 400 says what is wrong.
      return reply(conn, 400, "unable to upgrade: X-Stream-Protocol-Version is required\n");
    }
    const protocol = offered.find((p) => supported.includes(p));
    if (!protocol) {
      const message = `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], server accepts [${supported.join(" ")}]\n`;
      return reply(conn, 403, message, { "X-Accepted-Stream-Protocol-Versions": supported });
    }
    const connection = String(req.headers.connection ?? "").toLowerCase();
    const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
    if (conn.kind !== "socket" || !connection.includes("upgrade") || !upgrade.includes("spdy/3.1")) {
      return reply(conn, 400, `unable to upgrade: missing upgrade headers in request: ${JSON.stringify(req.headers)}\n`);
    }
    conn.socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    const session = new SpdySession(conn.socket, {
      head: conn.head,
      idleTimeoutMs: this.idleTimeoutMs,
      legacyPeerGraceMs: this.legacyPeerGraceMs,
    });
    const served =
      entry.kind === "portforward"
        ? servePortForwardSpdy(session, entry.request.podSandboxId, this.backend, this.creationTimeoutMs)
        : serveRemoteCommandSpdy(session, protocol, sessionOptions(entry.request), this.runner(entry), this.creationTimeoutMs);
    this.track(session, served);
  }

  private serveWebSocket(req: http.IncomingMessage, conn: Conn, entry: StreamRequest): void {
    if (conn.kind !== "socket") return reply(conn, 400, "websocket: missing upgrade headers");
    const rejection = checkHandshake(req.method, req.headers);
    if (rejection) return reply(conn, rejection.status, rejection.message, rejection.headers);
    const supported = entry.kind === "portforward" ? WS_PORTFORWARD_PROTOCOLS : WS_REMOTECOMMAND_PROTOCOLS;
    const offered = offeredProtocols(req.headers);
    const protocol = (offered.length > 0 ? offered : [""]).find((p) => supported.includes(p));
    if (protocol === undefined) {
      // golang.org/x/net/websocket answers a failed subprotocol handshake with a bare 403.
      return reply(conn, 403, "");
    }
    writeHandshakeResponse(conn.socket, req.headers, protocol);
    const ws = new WebSocketConnection(conn.socket, { head: conn.head, idleTimeoutMs: this.idleTimeoutMs });
    let served: Promise<void>;
    if (entry.kind === "portforward") {
      // The CRI request carries the ports (kubelet copies them from the URL's `port` query).
      const ports = entry.request.ports.length > 0 ? entry.request.ports : queryPorts(req.url);
      served = servePortForwardWebSocket(ws, protocol, entry.request.podSandboxId, ports, this.backend);
    } else {
      served = serveRemoteCommandWebSocket(ws, protocol, sessionOptions(entry.request), this.runner(entry));
    }
    this.track(ws, served);
  }

  private runner(entry: Extract<StreamRequest, { kind: "exec" | "attach" }>): CommandRunner {
    if (entry.kind === "exec") {
      const req = entry.request;
      return async (io) => {
        try {
          const { exitCode } = await this.backend.exec(req, io);
          return exitCode === 0 ? successStatus() : exitCodeStatus(exitCode);
        } catch (err) {
          const message = `error executing command in container: ${errorMessage(err)}`;
          log.warn(`streaming: ${message}`, { containerId: req.containerId });
          return internalErrorStatus(message);
        }
      };
    }
    const req = entry.request;
    return async (io) => {
      try {
        await this.backend.attach(req, io);
        return successStatus();
      } catch (err) {
        const message = `error attaching to container: ${errorMessage(err)}`;
        log.warn(`streaming: ${message}`, { containerId: req.containerId });
        return internalErrorStatus(message);
      }
    };
  }

  private track(session: LiveSession, served: Promise<void>): void {
    this.live.add(session);
    served
      .catch((err: unknown) => {
        log.warn("streaming: session failed", { error: err });
        return session.close();
      })
      .finally(() => this.live.delete(session));
  }
}

function validateStdio(req: ExecRequest | AttachRequest, noneMessage: string): void {
  if (!req.containerId) throw new InvalidArgumentError("missing required container_id");
  // With a TTY, stdout and stderr are one stream: there is nothing to demultiplex.
  if (req.tty && req.stderr) throw new InvalidArgumentError("tty and stderr cannot both be true");
  if (!req.stdin && !req.stdout && !req.stderr) throw new InvalidArgumentError(noneMessage);
}

function sessionOptions(req: ExecRequest | AttachRequest): SessionOptions {
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty };
}

function idleTimeoutMs(text: string): number {
  if (text === "") return DEFAULT_IDLE_TIMEOUT_MS;
  const ns = parseGoDuration(text);
  if (ns === undefined) throw new InvalidArgumentError(`invalid stream_idle_timeout ${JSON.stringify(text)}`);
  // CRI-O only overrides kubelet's default with a positive duration.
  return ns > 0n ? Number(ns / 1_000_000n) : DEFAULT_IDLE_TIMEOUT_MS;
}

function commaSeparated(value: string | string[] | undefined): string[] {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return values.flatMap((v) => v.split(",")).map((p) => p.trim()).filter((p) => p !== "");
}

function queryPorts(url: string | undefined): number[] {
  const params = new URL(url ?? "/", "http://localhost").searchParams;
  return params
    .getAll("port")
    .flatMap((v) => v.split(","))
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0 && p <= 0xffff);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Answers a request that is not upgraded, on either kind of connection. */
function reply(conn: Conn, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
  const all: Record<string, string | string[]> = {
    "Content-Type": "text/plain; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  };
  if (conn.kind === "response") {
    conn.res.writeHead(status, all);
    conn.res.end(body);
    return;
  }
  const bytes = Buffer.from(body);
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}`];
  for (const [k, v] of Object.entries(all)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  lines.push(`Content-Length: ${bytes.length}`, "Connection: close");
  conn.socket.end(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), bytes]));
}
