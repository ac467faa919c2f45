// exec and attach sessions (Kubernetes "remotecommand"), over SPDY or a WebSocket, as kubelet's
// CRI streaming server serves them (k8s.io/kubelet/pkg/cri/streaming/remotecommand).
//
// SPDY: the client opens one stream per channel, named by the `streamType` header: error,
// stdin, stdout, stderr and, from v3 on, resize. The server answers each with SYN_REPLY and
// starts the command once all expected streams are there (1 + one per requested stdio stream
// + resize for a TTY), giving up after the stream creation timeout. When the command is done,
// the error stream carries its status and the connection is closed.
//
// WebSocket: channels 0..4 are stdin, stdout, stderr, error and resize; the server first sends
// an empty message on the lowest writable channel, so the client knows the session is up.

import { log } from "../log.ts";
import { RstStatus, type SpdySession, type SpdyStream } from "./spdy.ts";
import { encodeStatus, type Status } from "./status.ts";
import type { StreamIO, TerminalSize } from "./types.ts";
import type { WebSocketConnection } from "./websocket.ts";
import { ChannelConnection } from "./ws-channels.ts";

/** SPDY subprotocols, most preferred first (apimachinery SupportedStreamingProtocols). v5 only
 * differs from v4 on WebSockets (its CLOSE signal), so SPDY serves it as v4. */
export const SPDY_REMOTECOMMAND_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];

/** WebSocket subprotocols the kubelet streaming server accepts ("" = none requested). */
export const WS_REMOTECOMMAND_PROTOCOLS = [
  "",
  "channel.k8s.io",
  "base64.channel.k8s.io",
  "v4.channel.k8s.io",
  "v4.base64.channel.k8s.io",
];

export interface SessionOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Runs the backend for a session and turns its outcome into a Status. */
export type CommandRunner = (io: StreamIO) => Promise<Status>;

type StreamType = "error" | "stdin" | "stdout" | "stderr" | "resize";

function spdyVersion(protocol: string): number {
  const m = /^v(\d+)\./.exec(protocol);
  return m ? Number(m[1]) : 1;
}

/** Serves an exec/attach session on an upgraded SPDY session; resolves when it is over. */
export async function serveRemoteCommandSpdy(
  session: SpdySession,
  protocol: string,
  opts: SessionOptions,
  run: CommandRunner,
  creationTimeoutMs: number,
): Promise<void> {
  const version = spdyVersion(protocol);
  const known = new Set<string>(["error", "stdin", "stdout", "stderr"]);
  if (version >= 3) known.add("resize");
  const expected = 1 + Number(opts.stdin) + Number(opts.stdout) + Number(opts.stderr) + Number(opts.tty && version >= 3);

  const streams: Partial<Record<StreamType, SpdyStream>> = {};
  let complete = false;
  const outcome = await new Promise<"ready" | "timeout" | "closed">((resolve) => {
    let received = 0;
    const timer = setTimeout(() => resolve("timeout"), creationTimeoutMs);
    void session.closed.then(() => {
      clearTimeout(timer);
      resolve("closed");
    });
    session.on("stream", (stream: SpdyStream) => {
      if (complete) {
        stream.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      const type = stream.header("streamtype") ?? "";
      // Every stream is accepted; only the known types count (kubelet's waitForStreams).
      stream.accept().then(
        () => {
          if (!known.has(type)) {
            log.debug("streaming: unexpected stream type", { streamType: type });
            return;
          }
          streams[type as StreamType] = stream;
          if (++received === expected && !complete) {
            complete = true;
            clearTimeout(timer);
            resolve("ready");
          }
        },
        () => undefined,
      );
    });
  });
  if (outcome !== "ready") {
    if (outcome === "timeout") log.warn("streaming: timed out waiting for client to create streams");
    complete = true;
    await session.close();
    return;
  }

  // Streams we only write to: read and drop anything the client sends on them.
  for (const s of [streams.stdout, streams.stderr, streams.error]) void s?.discardInbound();
  const abort = new AbortController();
  void session.closed.then(() => abort.abort());
  const io: StreamIO = {
    stdin: opts.stdin ? (streams.stdin ?? emptyBytes()) : undefined,
    stdout: opts.stdout && streams.stdout ? writerOf(streams.stdout) : undefined,
    stderr: opts.stderr && streams.stderr ? writerOf(streams.stderr) : undefined,
    resize: streams.resize ? decodeResizeEvents(streams.resize) : noResizes(),
    signal: abort.signal,
  };
  const status = await run(io);
  const bytes = encodeStatus(status, version >= 4);
  if (bytes && streams.error) await streams.error.write(bytes).catch(() => undefined);
  await Promise.all([streams.stdout?.end(), streams.stderr?.end(), streams.error?.end()]);
  await session.close();
}

/** Serves an exec/attach session on an open WebSocket; resolves when it is over. */
export async function serveRemoteCommandWebSocket(
  ws: WebSocketConnection,
  protocol: string,
  opts: SessionOptions,
  run: CommandRunner,
): Promise<void> {
  const channels = new ChannelConnection(ws, protocol.includes("base64"), [
    { read: opts.stdin, write: false },
    { read: false, write: opts.stdout },
    { read: false, write: opts.stderr },
    { read: false, write: true },
    { read: true, write: false },
  ]);
  const first = opts.stdout ? 1 : opts.stderr ? 2 : 3;
  await channels.write(first, new Uint8Array(0)).catch(() => undefined);

  const abort = new AbortController();
  void ws.closed.then(() => abort.abort());
  const io: StreamIO = {
    stdin: opts.stdin ? channels.input(0) : undefined,
    stdout: opts.stdout ? { write: (b) => channels.write(1, b) } : undefined,
    stderr: opts.stderr ? { write: (b) => channels.write(2, b) } : undefined,
    resize: decodeResizeEvents(channels.input(4)),
    signal: abort.signal,
  };
  const status = await run(io);
  const bytes = encodeStatus(status, protocol.startsWith("v4."));
  if (bytes) await channels.write(3, bytes).catch(() => undefined);
  await channels.close();
}

function writerOf(stream: SpdyStream): { write(b: Uint8Array): Promise<void> } {
  return { write: (b) => stream.write(b) };
}

/** The stdin of a client that asked for stdin but never opened the stream: ends at once. */
async function* emptyBytes(): AsyncGenerator<Uint8Array> {}

/** Resize events of a session without a resize stream. */
async function* noResizes(): AsyncGenerator<TerminalSize> {}

/**
 * Terminal sizes from a resize stream: a sequence of JSON objects {"Width":w,"Height":h}, as
 * Go's json.Encoder writes them. Field names match case-insensitively and unknown fields are
 * ignored, as Go's decoder does; the first malformed value ends the sequence (kubelet's
 * handleResizeEvents stops there too).
 */
export async function* decodeResizeEvents(source: AsyncIterable<Uint8Array>): AsyncGenerator<TerminalSize> {
  const decoder = new TextDecoder();
  let text = "";
  let pos = 0; // scan position in text
  let start = -1; // start of the current value
  let depth = 0;
  let inString = false;
  let escaped = false;
  for await (const chunk of source) {
    text += decoder.decode(chunk, { stream: true });
    for (; pos < text.length; pos++) {
      const c = text[pos] as string;
      if (start < 0) {
        if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
        if (c !== "{") return;
        start = pos;
        depth = 0;
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) {
          const size = parseTerminalSize(text.slice(start, pos + 1));
          if (!size) return;
          yield size;
          text = text.slice(pos + 1);
          pos = -1;
          start = -1;
        }
      }
    }
  }
}

function parseTerminalSize(json: string): TerminalSize | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const size: TerminalSize = { width: 0, height: 0 };
  for (const [key, v] of Object.entries(value)) {
    const field = key.toLowerCase();
    if (field !== "width" && field !== "height") continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff) return undefined;
    size[field] = v;
  }
  return size;
}
