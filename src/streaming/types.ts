// What the streaming server needs from the rest of the daemon. The server knows nothing about
// containers: it authenticates a URL (a single-use token minted by the Exec/Attach/PortForward
// RPC), speaks SPDY or WebSocket with the client, and hands the resulting byte streams to a
// StreamingBackend. The backend owns everything container-specific (conmon's attach socket,
// `runc exec`, entering the sandbox's network namespace).
//
// Byte streams are AsyncIterable<Uint8Array> inbound and write() outbound. write() resolves
// when the transport accepted the bytes; awaiting it is how the backend gets backpressure from
// a slow client. The server closes every stream itself after the backend's promise settles.

/** CRI ExecRequest, as the RPC handler validated it. */
export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** CRI AttachRequest. */
export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** CRI PortForwardRequest. `ports` only matters to WebSocket clients; SPDY clients name the
 * port of each forwarded connection in a stream header. */
export interface PortForwardRequest {
  podSandboxId: string;
  ports: number[];
}

/** A terminal size as kubectl sends it (client-go remotecommand.TerminalSize). */
export interface TerminalSize {
  width: number;
  height: number;
}

export interface OutputStream {
  /** Resolves when the transport has taken the bytes; rejects once the client is gone. */
  write(chunk: Uint8Array): Promise<void>;
}

/** The client's side of an exec or attach session. */
export interface StreamIO {
  /** The client's stdin, present when the request asked for stdin; ends when the client closes
   * it (SPDY half-close) or the connection ends. */
  stdin?: AsyncIterable<Uint8Array>;
  /** Present when the request asked for stdout. With a TTY, the terminal's output goes here. */
  stdout?: OutputStream;
  /** Present when the request asked for stderr (never with a TTY). */
  stderr?: OutputStream;
  /** Terminal size changes, in order; only sent for TTY sessions. Ends with the session; never
   * yields for non-TTY sessions or protocols without resize support (SPDY v1/v2). */
  resize: AsyncIterable<TerminalSize>;
  /** Aborted when the client connection closes (or idles out) before the backend finished. */
  signal: AbortSignal;
}

/** One forwarded TCP connection (a SPDY data stream, or a WebSocket data channel). */
export interface PortForwardConnection {
  /** Bytes from the client; ends when the client half-closes or the connection ends. */
  input: AsyncIterable<Uint8Array>;
  /** Bytes to the client. */
  write(chunk: Uint8Array): Promise<void>;
  /** Aborted when the client connection closes or resets the stream. */
  signal: AbortSignal;
}

export interface StreamingBackend {
  /**
   * Runs `req.cmd` in the container, wired to `io`, and resolves with its exit code once it
   * exited (and its output was written). A non-zero code reaches the client as a
   * NonZeroExitCode status; a rejection reaches it as an InternalError status carrying the
   * error's message ("error executing command in container: <message>").
   */
  exec(req: ExecRequest, io: StreamIO): Promise<{ exitCode: number }>;
  /** Attaches `io` to the running container until the client detaches (stdin ends), the
   * container exits or `io.signal` aborts. A rejection reaches the client as an InternalError
   * status ("error attaching to container: <message>"). */
  attach(req: AttachRequest, io: StreamIO): Promise<void>;
  /**
   * Forwards one connection to `port` inside the sandbox's network namespace. Resolves when
   * both directions are done. A rejection is reported on the connection's error stream; an
   * error whose `code` is EPIPE or ECONNRESET tells the client to keep the forwarding session.
   */
  portForward(podSandboxId: string, port: number, conn: PortForwardConnection): Promise<void>;
}
