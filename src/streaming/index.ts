// The CRI streaming server: exec, attach and port-forward over SPDY/3.1 and WebSocket.
//
//   const streaming = new StreamingServer(backend, {
//     address: config.stream_address, port: config.stream_port,
//     idleTimeout: config.stream_idle_timeout, tls: { cert, key } /* if stream_enable_tls */,
//   });
//   await streaming.listen();                 // binds; port 0 picks one
//   // in the Exec RPC, after checking the container runs:
//   return { url: streaming.getExec({ containerId, cmd, tty, stdin, stdout, stderr }) };
//   // likewise getAttach(...) and getPortForward({ podSandboxId, ports });
//   await streaming.close();                  // on shutdown
//
// The backend (types.ts) does the container work; the server only speaks the protocols.
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_STREAM_CREATION_TIMEOUT_MS,
  StreamingServer,
  type StreamingServerOptions,
} from "./server.ts";
export type {
  AttachRequest,
  ExecRequest,
  OutputStream,
  PortForwardConnection,
  PortForwardRequest,
  StreamingBackend,
  StreamIO,
  TerminalSize,
} from "./types.ts";
