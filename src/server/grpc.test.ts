// The instrumented wrapper, in-process: typed errors map to their gRPC codes, anything else to
// INTERNAL, the readiness gate answers UNAVAILABLE, undecodable requests INVALID_ARGUMENT,
// missing handlers UNIMPLEMENTED, server-streaming handlers stream and fail with codes too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AlreadyExistsError,
  ConfigError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../errors.ts";
import { configureLogging } from "../log.ts";
import { RuntimeServiceMethods } from "../proto/index.ts";
import { addCriService, clientDefinition, type Handler } from "./grpc.ts";

const methods = RuntimeServiceMethods;

describe("addCriService", () => {
  let dir: string;
  let server: grpc.Server;
  let client: any;
  let ready = true;
  let throwNext: unknown;
  const logs: string[] = [];

  beforeAll(async () => {
    configureLogging({ level: "debug", write: (l) => logs.push(l) });
    dir = mkdtempSync(join(tmpdir(), "grpc-test-"));
    server = new grpc.Server();
    const handlers: Partial<Record<string, Handler>> = {
      Version: async (req: any) => {
        if (throwNext !== undefined) {
          const e = throwNext;
          throwNext = undefined;
          throw e;
        }
        return { version: "0.1.0", runtimeName: `echo ${req.version}`, runtimeVersion: "", runtimeApiVersion: "v1" };
      },
      GetContainerEvents: async (_req: any, send: (m: any) => void) => {
        send({ containerId: "a" });
        send({ containerId: "b" });
        if (throwNext !== undefined) {
          const e = throwNext;
          throwNext = undefined;
          throw e;
        }
      },
    };
    addCriService(server, "runtime.v1.RuntimeService", methods, handlers, { notReady: () => (ready ? undefined : "still restoring") });
    await new Promise<void>((res, rej) =>
      server.bindAsync(`unix://${join(dir, "s.sock")}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
    );
    const Ctor = grpc.makeGenericClientConstructor(clientDefinition(methods), "RuntimeService");
    client = new Ctor(`unix://${join(dir, "s.sock")}`, grpc.credentials.createInsecure());
  });
  afterAll(() => {
    client?.close();
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
    configureLogging({ level: "info", write: (l) => process.stderr.write(l + "\n") });
  });

  const call = (method: string, req: object) =>
    new Promise<{ err: grpc.ServiceError | null; res: any }>((resolve) => client[method](req, (err: grpc.ServiceError | null, res: any) => resolve({ err, res })));

  test("a handler's answer is returned", async () => {
    const { err, res } = await call("Version", { version: "v1" });
    expect(err).toBeNull();
    expect(res.runtimeName).toBe("echo v1");
  });

  const cases: [unknown, grpc.status][] = [
    [new NotFoundError("no such pod"), grpc.status.NOT_FOUND],
    [new InvalidArgumentError("bad"), grpc.status.INVALID_ARGUMENT],
    [new AlreadyExistsError("dup"), grpc.status.ALREADY_EXISTS],
    [new FailedPreconditionError("not running"), grpc.status.FAILED_PRECONDITION],
    [new UnavailableError("later"), grpc.status.UNAVAILABLE],
    [new InternalError("broken"), grpc.status.INTERNAL],
    [new DeadlineExceededError("slow"), grpc.status.DEADLINE_EXCEEDED],
    [new ConfigError("bad value", { key: "crio.x" }), grpc.status.INVALID_ARGUMENT],
    [new Error("plain"), grpc.status.INTERNAL],
    [Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }), grpc.status.RESOURCE_EXHAUSTED],
    [new Error("wrapped", { cause: Object.assign(new Error("quota"), { code: "EDQUOT" }) }), grpc.status.RESOURCE_EXHAUSTED],
    ["a string", grpc.status.INTERNAL],
  ];
  for (const [thrown, code] of cases) {
    test(`${thrown instanceof Error ? thrown.constructor.name : typeof thrown} → ${grpc.status[code]}`, async () => {
      throwNext = thrown;
      const { err } = await call("Version", {});
      expect(err?.code).toBe(code);
      expect(err?.details).toBe(thrown instanceof Error ? thrown.message : String(thrown));
    });
  }

  test("failures are logged with the RPC name and code", async () => {
    logs.length = 0;
    throwNext = new InternalError("disk on fire");
    await call("Version", {});
    const line = logs.find((l) => l.includes("disk on fire"));
    expect(line).toContain("level=error");
    expect(line).toContain("RuntimeService/Version");
    expect(line).toContain("code=INTERNAL");
  });

  test("not ready → UNAVAILABLE, whatever the RPC", async () => {
    ready = false;
    try {
      for (const m of ["Version", "ListContainers"]) {
        const { err } = await call(m, {});
        expect(err?.code).toBe(grpc.status.UNAVAILABLE);
        expect(err?.details).toBe("still restoring");
      }
    } finally {
      ready = true;
    }
  });

  test("no handler → UNIMPLEMENTED naming the RPC", async () => {
    const { err } = await call("ListContainers", {});
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err?.details).toContain("ListContainers");
  });

  test("server streaming: messages then OK, or messages then the mapped code", async () => {
    const collect = () =>
      new Promise<{ got: string[]; err?: grpc.ServiceError }>((resolve) => {
        const got: string[] = [];
        const s = client.GetContainerEvents({});
        s.on("data", (m: any) => got.push(m.containerId));
        s.on("error", (err: grpc.ServiceError) => resolve({ got, err }));
        s.on("end", () => resolve({ got }));
      });
    const ok = await collect();
    expect(ok.got).toEqual(["a", "b"]);
    expect(ok.err).toBeUndefined();
    throwNext = new NotFoundError("gone");
    const bad = await collect();
    expect(bad.err?.code).toBe(grpc.status.NOT_FOUND);
  });
});
