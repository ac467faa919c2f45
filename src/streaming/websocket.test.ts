import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import {
  acceptKey,
  checkHandshake,
  isWebSocketRequest,
  offeredProtocols,
  WebSocketConnection,
  writeHandshakeResponse,
  type WebSocketOptions,
} from "./websocket.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** An echo server: each message goes back as it came. */
async function echoServer(options: WebSocketOptions = {}): Promise<{ port: number; conns: WebSocketConnection[] }> {
  const conns: WebSocketConnection[] = [];
  const server = http.createServer((_req, res) => res.end());
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const rejection = checkHandshake(req.method, req.headers);
    if (rejection) {
      socket.end(`HTTP/1.1 ${rejection.status} x\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    writeHandshakeResponse(socket, req.headers, offeredProtocols(req.headers)[0]);
    const ws = new WebSocketConnection(socket, { ...options, head });
    conns.push(ws);
    void (async () => {
      for await (const m of ws) await ws.send(m.binary ? m.data : new TextDecoder().decode(m.data)).catch(() => undefined);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, conns };
}

interface ServerFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/** A raw client: writes frames byte by byte as told, parses what comes back. */
async function rawClient(port: number, extraHeaders = ""): Promise<{
  response: string;
  send(opcode: number, payload: Uint8Array, opts?: { fin?: boolean; mask?: boolean }): void;
  next(): Promise<ServerFrame | null>;
  socket: net.Socket;
}> {
  const socket = net.connect(port, "127.0.0.1");
  cleanups.push(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  const key = randomBytes(16).toString("base64");
  socket.write(
    `GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
  );
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | undefined;
  socket.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    wake?.();
  });
  socket.on("close", () => {
    ended = true;
    wake?.();
  });
  const waitData = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  while (!buf.includes("\r\n\r\n") && !ended) await waitData();
  const end = buf.indexOf("\r\n\r\n") + 4;
  const response = buf.subarray(0, end).toString();
  buf = buf.subarray(end);
  return {
    response,
    socket,
    send(opcode, payload, opts = {}) {
      const mask = opts.mask ?? true;
      const n = payload.length;
      const head = n < 126 ? [n] : n < 65536 ? [126, n >> 8, n & 0xff] : [127, 0, 0, 0, 0, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
      const key = randomBytes(4);
      const body = Buffer.from(payload);
      if (mask) for (let i = 0; i < n; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
      socket.write(
        Buffer.concat([
          Buffer.from([((opts.fin ?? true) ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | (head[0] as number), ...head.slice(1)]),
          mask ? key : Buffer.alloc(0),
          body,
        ]),
      );
    },
    async next() {
      for (;;) {
        if (buf.length >= 2) {
          const b1 = buf[1] as number;
          let len = b1 & 0x7f;
          let off = 2;
          if (len === 126 && buf.length >= 4) {
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127 && buf.length >= 10) {
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          if ((len < 126 || off > 2) && buf.length >= off + len) {
            const frame = {
              fin: ((buf[0] as number) & 0x80) !== 0,
              opcode: (buf[0] as number) & 0x0f,
              masked: (b1 & 0x80) !== 0,
              payload: new Uint8Array(buf.subarray(off, off + len)),
            };
            buf = buf.subarray(off + len);
            return frame;
          }
        }
        if (ended) return null;
        await waitData();
      }
    },
  };
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const closeCode = (f: ServerFrame | null): number => (f ? ((f.payload[0] as number) << 8) | (f.payload[1] as number) : -1);

describe("WebSocket handshake", () => {
  test("Sec-WebSocket-Accept is computed as RFC 6455 section 1.3 shows", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("requests are recognised and checked", () => {
    const ok = {
      upgrade: "WebSocket",
      connection: "keep-alive, Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-protocol": "v4.channel.k8s.io, channel.k8s.io",
    };
    expect(isWebSocketRequest(ok)).toBe(true);
    expect(isWebSocketRequest({ ...ok, connection: "keep-alive" })).toBe(false);
    expect(offeredProtocols(ok)).toEqual(["v4.channel.k8s.io", "channel.k8s.io"]);
    expect(checkHandshake("GET", ok)).toBeUndefined();
    expect(checkHandshake("POST", ok)?.status).toBe(405);
    expect(checkHandshake("GET", { ...ok, "sec-websocket-version": "8" })).toEqual({
      status: 426,
      message: "websocket: unsupported version",
      headers: { "Sec-WebSocket-Version": "13" },
    });
    expect(checkHandshake("GET", { ...ok, "sec-websocket-key": "short" })?.status).toBe(400);
  });

  test("the 101 carries the accept key and the chosen subprotocol", async () => {
    const { port } = await echoServer();
    const c = await rawClient(port, "Sec-WebSocket-Protocol: base64.channel.k8s.io\r\n");
    expect(c.response).toStartWith("HTTP/1.1 101 Switching Protocols\r\n");
    expect(c.response).toContain("Sec-WebSocket-Protocol: base64.channel.k8s.io\r\n");
    expect(c.response).toMatch(/Sec-WebSocket-Accept: [A-Za-z0-9+/]{27}=\r\n/);
  });
});

describe("WebSocketConnection", () => {
  test("echoes text and binary messages, unmasked, with 7-, 16- and 64-bit lengths", async () => {
    const { port } = await echoServer();
    const c = await rawClient(port);
    for (const n of [0, 125, 126, 65535, 70000]) {
      const data = randomBytes(n);
      c.send(2, data);
      const f = await c.next();
      expect(f && [f.fin, f.opcode, f.masked, f.payload.length]).toEqual([true, 2, false, n]);
      expect(Buffer.compare(Buffer.from(f!.payload), data)).toBe(0);
    }
    c.send(1, utf8("héllo"));
    const t = await c.next();
    expect(t?.opcode).toBe(1);
    expect(new TextDecoder().decode(t!.payload)).toBe("héllo");
  });

  test("reassembles fragments and answers a ping sent between them", async () => {
    const { port } = await echoServer();
    const c = await rawClient(port);
    c.send(1, utf8("Hel"), { fin: false });
    c.send(9, utf8("are you there"));
    c.send(0, utf8("lo"), { fin: false });
    c.send(0, utf8(", world"));
    const pong = await c.next();
    expect(pong?.opcode).toBe(10);
    expect(new TextDecoder().decode(pong!.payload)).toBe("are you there");
    const msg = await c.next();
    expect(new TextDecoder().decode(msg!.payload)).toBe("Hello, world");
  });

  test("the closing handshake echoes the code and ends the connection", async () => {
    const { port, conns } = await echoServer();
    const c = await rawClient(port);
    c.send(8, Uint8Array.of(0x03, 0xe8, ...utf8("bye")));
    const f = await c.next();
    expect(f?.opcode).toBe(8);
    expect(closeCode(f)).toBe(1000);
    expect(await c.next()).toBeNull();
    expect(await conns[0]!.closed).toEqual({ code: 1000, reason: "bye" });
  });

  test.each([
    ["an unmasked client frame", 1002, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(2, utf8("x"), { mask: false })],
    ["invalid UTF-8 in a text message", 1007, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(1, Uint8Array.of(0xc3, 0x28))],
    ["a continuation without a message", 1002, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(0, utf8("x"))],
    ["a fragmented control frame", 1002, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(9, utf8("x"), { fin: false })],
    ["reserved opcode 3", 1002, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(3, utf8("x"))],
    ["a message over the size limit", 1009, (c: Awaited<ReturnType<typeof rawClient>>) => c.send(2, new Uint8Array(2000))],
  ])("%s fails the connection with %i", async (_name, code, act) => {
    const { port } = await echoServer({ maxMessageSize: 1024 });
    const c = await rawClient(port);
    act(c);
    const f = await c.next();
    expect(f?.opcode).toBe(8);
    expect(closeCode(f)).toBe(code);
    expect(await c.next()).toBeNull();
  });

  test("an idle connection is closed with 1001", async () => {
    const { port } = await echoServer({ idleTimeoutMs: 60 });
    const c = await rawClient(port);
    const f = await c.next();
    expect(closeCode(f)).toBe(1001);
  });
});
