// CRI gRPC on grpc-js: service definitions built from the generated method tables, and the one
// instrumented wrapper every RPC goes through. The wrapper
//   - answers UNAVAILABLE until the daemon is ready (restart recovery finished),
//   - answers INVALID_ARGUMENT for a request that does not decode (grpc-js itself would say
//     INTERNAL, which kubelet treats as a runtime fault),
//   - logs one line per RPC at debug with its duration, failures at error with context,
//   - maps thrown errors to gRPC codes in one place (grpcCodeOf).
import * as grpc from "@grpc/grpc-js";
import { grpcCodeOf, GrpcCode, InvalidArgumentError, UnavailableError, UnimplementedError } from "../errors.ts";
import { log } from "../log.ts";
import { crioMetrics } from "../metrics/crio.ts";
import type { MethodDescriptor } from "../proto/index.ts";

/** One RPC of a generated method table (RuntimeServiceMethods, ImageServiceMethods). */
export type MethodInfo = MethodDescriptor<any, any>;

/** A unary handler, or a server-streaming one that calls `send` per message. */
export type UnaryHandler = (req: any, signal: AbortSignal) => Promise<any>;
export type StreamHandler = (req: any, send: (msg: any) => void, signal: AbortSignal) => Promise<void>;
export type Handler = UnaryHandler | StreamHandler;

/** Stands in for a request whose bytes did not decode, so the wrapper can answer InvalidArgument. */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export interface Gate {
  /** undefined when RPCs may run; otherwise why they may not (answered as UNAVAILABLE). */
  notReady(): string | undefined;
}

function statusOf(err: unknown): grpc.StatusObject {
  const code = grpcCodeOf(err);
  const details = err instanceof Error ? err.message : String(err);
  return { code: code as number as grpc.status, details, metadata: new grpc.Metadata() };
}

function logOutcome(service: string, m: MethodInfo, started: number, err?: unknown): void {
  crioMetrics.recordOperation(m.name, (performance.now() - started) / 1000, err !== undefined);
  const duration = `${(performance.now() - started).toFixed(3)}ms`;
  if (err === undefined) {
    log.debug(`${service}/${m.name}`, { duration });
    return;
  }
  const code = grpcCodeOf(err);
  const fields = { rpc: `${service}/${m.name}`, code: grpc.status[code as number] ?? code, duration, error: err };
  // Expected answers (not found, unimplemented, not ready) are not daemon errors.
  if (code === GrpcCode.NOT_FOUND || code === GrpcCode.UNIMPLEMENTED || code === GrpcCode.UNAVAILABLE) {
    log.debug(`${service}/${m.name} failed`, fields);
  } else if (code === GrpcCode.INTERNAL) {
    log.error(`${service}/${m.name} failed`, { ...fields, stack: err instanceof Error ? err.stack : undefined });
  } else {
    log.error(`${service}/${m.name} failed`, fields);
  }
}

function checkRequest(gate: Gate, m: MethodInfo, req: unknown): void {
  const why = gate.notReady();
  if (why !== undefined) throw new UnavailableError(why);
  if (req instanceof MalformedRequest) throw new InvalidArgumentError(`malformed ${m.name} request: ${req.reason}`);
}

/** Abort signal that fires when the client cancels or the deadline passes. */
function callSignal(call: { once(event: "cancelled", listener: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  call.once("cancelled", () => ac.abort(new Error("call cancelled by the client")));
  return ac.signal;
}

function wrapUnary(service: string, m: MethodInfo, handler: UnaryHandler | undefined, gate: Gate) {
  return (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
    const started = performance.now();
    (async () => {
      checkRequest(gate, m, call.request);
      if (!handler) throw new UnimplementedError(`${m.name} is not implemented by this runtime yet`);
      return handler(call.request, callSignal(call));
    })().then(
      (res) => {
        logOutcome(service, m, started);
        callback(null, res);
      },
      (err: unknown) => {
        logOutcome(service, m, started, err);
        callback(statusOf(err));
      },
    );
  };
}

function wrapStream(service: string, m: MethodInfo, handler: StreamHandler | undefined, gate: Gate) {
  return (call: grpc.ServerWritableStream<any, any>) => {
    const started = performance.now();
    (async () => {
      checkRequest(gate, m, call.request);
      if (!handler) throw new UnimplementedError(`${m.name} is not implemented by this runtime yet`);
      await handler(call.request, (msg) => call.write(msg), callSignal(call));
    })().then(
      () => {
        logOutcome(service, m, started);
        call.end();
      },
      (err: unknown) => {
        logOutcome(service, m, started, err);
        call.emit("error", statusOf(err));
      },
    );
  };
}

/**
 * Adds one CRI service to `server`: every method of `methods` is registered, those without a
 * handler answer UNIMPLEMENTED naming the RPC.
 */
export function addCriService(
  server: grpc.Server,
  service: string,
  methods: Readonly<Record<string, MethodInfo>>,
  handlers: Partial<Record<string, Handler>>,
  gate: Gate,
): void {
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of Object.values(methods)) {
    if (m.requestStream) throw new Error(`${service}/${m.name}: client-streaming RPCs are not supported`);
    definition[m.name] = {
      path: m.path,
      requestStream: false,
      responseStream: m.responseStream,
      requestSerialize: (v: any) => toBuffer(m.request.encode(v)),
      requestDeserialize: (b: Buffer) => {
        try {
          return m.request.decode(b);
        } catch (err) {
          return new MalformedRequest(err instanceof Error ? err.message : String(err));
        }
      },
      responseSerialize: (v: any) => toBuffer(m.response.encode(v)),
      responseDeserialize: (b: Buffer) => m.response.decode(b),
    };
    const h = handlers[m.name];
    impl[m.name] = m.responseStream
      ? wrapStream(service, m, h as StreamHandler | undefined, gate)
      : wrapUnary(service, m, h as UnaryHandler | undefined, gate);
  }
  server.addService(definition, impl);
}

/** grpc-js client definition for the same tables (tests, `crio` tooling). */
export function clientDefinition(methods: Readonly<Record<string, MethodInfo>>): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const m of Object.values(methods)) {
    def[m.name] = {
      path: m.path,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (v: any) => toBuffer(m.request.encode(v)),
      requestDeserialize: (b: Buffer) => m.request.decode(b),
      responseSerialize: (v: any) => toBuffer(m.response.encode(v)),
      responseDeserialize: (b: Buffer) => m.response.decode(b),
    };
  }
  return def;
}
