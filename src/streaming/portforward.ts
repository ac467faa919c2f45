// Port forwarding sessions, as kubelet's CRI streaming server serves them
// (k8s.io/kubelet/pkg/cri/streaming/portforward).
//
// SPDY ("portforward.k8s.io"): one session carries any number of forwarded connections. For
// each, the client opens an error stream and a data stream with the same `requestID` header and
// the target `port`; once both are there the backend forwards the data stream, and when it is
// done the server half-closes both. A failure is reported as JSON on the error stream.
//
// WebSocket: the ports come with the request; port i gets channel 2i (data, both ways) and
// 2i+1 (error, server to client), and the server first writes the port number (uint16, little
// endian) on both. Each port carries a single connection for the life of the WebSocket.

import { log } from "../log.ts";
import { RstStatus, type SpdySession, type SpdyStream } from "./spdy.ts";
import { portForwardError } from "./status.ts";
import type { StreamingBackend } from "./types.ts";
import type { WebSocketConnection } from "./websocket.ts";
import { ChannelConnection } from "./ws-channels.ts";

export const SPDY_PORTFORWARD_PROTOCOLS = ["portforward.k8s.io"];
export const WS_PORTFORWARD_PROTOCOLS = ["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

interface StreamPair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer?: ReturnType<typeof setTimeout>;
}

const utf8 = new TextEncoder();

/** Serves port forwarding on an upgraded SPDY session until the session closes. */
export async function servePortForwardSpdy(
  session: SpdySession,
  podSandboxId: string,
  backend: StreamingBackend,
  creationTimeoutMs: number,
): Promise<void> {
  const pairs = new Map<string, StreamPair>();

  const fail = (pair: StreamPair, message: string): void => {
    log.warn(`streaming: port forward: ${message}`);
    void pair.error?.write(utf8.encode(message)).catch(() => undefined);
  };

  const run = async (pair: StreamPair): Promise<void> => {
    const data = pair.data as SpdyStream;
    const error = pair.error as SpdyStream;
    const port = Number(data.header("port"));
    const abort = new AbortController();
    data.once("reset", () => abort.abort());
    void session.closed.then(() => abort.abort());
    try {
      await backend.portForward(podSandboxId, port, { input: data, write: (b) => data.write(b), signal: abort.signal });
    } catch (err) {
      log.warn("streaming: port forward failed", { port, podSandboxId, error: err });
      await error.write(portForwardError(port, podSandboxId, err)).catch(() => undefined);
    } finally {
      await error.end();
      await data.end();
      // Drain what the client still sends until it resets or half-closes the stream.
      void data.discardInbound();
    }
  };

  const onStream = (stream: SpdyStream): void => {
    const type = stream.header("streamtype") as "data" | "error";
    const requestId = stream.header("requestid") || fallbackRequestId(stream, type);
    let pair = pairs.get(requestId);
    if (!pair) {
      const created: StreamPair = { requestId };
      created.timer = setTimeout(() => {
        pairs.delete(requestId);
        fail(created, `(request=${requestId}) timed out waiting for streams`);
        void created.error?.end();
        created.data?.reset(RstStatus.CANCEL);
      }, creationTimeoutMs);
      pairs.set(requestId, created);
      pair = created;
    }
    if (pair[type]) {
      fail(pair, `error processing stream for request ${requestId}: ${type} stream already assigned`);
      stream.reset(RstStatus.CANCEL);
      return;
    }
    pair[type] = stream;
    if (type === "error") void stream.discardInbound();
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      void run(pair);
    }
  };

  session.on("stream", (stream: SpdyStream) => {
    const reason = rejectStream(stream);
    if (reason) {
      log.warn(`streaming: port forward stream rejected: ${reason}`);
      stream.reset(RstStatus.CANCEL);
      return;
    }
    stream.accept().then(
      () => onStream(stream),
      () => undefined,
    );
  });
  await session.closed;
  for (const pair of pairs.values()) clearTimeout(pair.timer);
}

/** kubelet's httpStreamReceived checks: a valid port and a data or error stream type. */
function rejectStream(stream: SpdyStream): string | undefined {
  const portText = stream.header("port") ?? "";
  if (portText === "") return `"port" header is required`;
  if (!/^\d+$/.test(portText) || Number(portText) > 0xffff) return `unable to parse "${portText}" as a port`;
  if (Number(portText) < 1) return `port "${portText}" must be > 0`;
  const type = stream.header("streamtype") ?? "";
  if (type === "") return `"streamType" header is required`;
  if (type !== "error" && type !== "data") return `invalid stream type "${type}"`;
  return undefined;
}

/**
 * Clients older than the requestID header get a pseudo id from the stream ids: an error stream
 * opened right before its data stream (kubelet's best-effort fallback).
 */
function fallbackRequestId(stream: SpdyStream, type: "data" | "error"): string {
  return String(type === "error" ? stream.id : stream.id - 2);
}

/** Serves port forwarding for `ports` on an open WebSocket; resolves when it is over. */
export async function servePortForwardWebSocket(
  ws: WebSocketConnection,
  protocol: string,
  podSandboxId: string,
  ports: number[],
  backend: StreamingBackend,
): Promise<void> {
  const channels = new ChannelConnection(
    ws,
    protocol.includes("base64"),
    ports.flatMap(() => [
      { read: true, write: true },
      { read: false, write: true },
    ]),
  );
  const abort = new AbortController();
  void ws.closed.then(() => abort.abort());
  for (const [i, port] of ports.entries()) {
    const portBytes = Uint8Array.of(port & 0xff, port >> 8);
    await channels.write(2 * i, portBytes).catch(() => undefined);
    await channels.write(2 * i + 1, portBytes).catch(() => undefined);
  }
  await Promise.all(
    ports.map(async (port, i) => {
      try {
        await backend.portForward(podSandboxId, port, {
          input: channels.input(2 * i),
          write: (b) => channels.write(2 * i, b),
          signal: abort.signal,
        });
      } catch (err) {
        log.warn("streaming: port forward failed", { port, podSandboxId, error: err });
        await channels.write(2 * i + 1, portForwardError(port, podSandboxId, err)).catch(() => undefined);
      }
    }),
  );
  await channels.close();
}
