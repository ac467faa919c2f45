import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { SpdySession, type SpdySessionOptions, type SpdyStream } from "./spdy.ts";
import {
  encodeHeaderBlock,
  encodeSynStream,
  encodeWindowUpdate,
  FrameParser,
  FrameType,
  GoAwayStatus,
  payloadWords,
  RstStatus,
  ZlibContext,
  type Frame,
} from "./spdy-frame.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function sockets(): Promise<{ server: net.Socket; client: net.Socket }> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => listener.once("connection", resolve));
  const client = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => client.once("connect", resolve));
  const server = await accepted;
  cleanups.push(() => {
    client.destroy();
    server.destroy();
    listener.close();
  });
  return { server, client };
}

async function sessions(
  serverOpts: SpdySessionOptions = {},
  clientOpts: SpdySessionOptions = {},
): Promise<{ server: SpdySession; client: SpdySession }> {
  const s = await sockets();
  const server = new SpdySession(s.server, { role: "server", ...serverOpts });
  const client = new SpdySession(s.client, { role: "client", ...clientOpts });
  cleanups.push(() => {
    server.destroy();
    client.destroy();
  });
  return { server, client };
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe("SpdySession streams", () => {
  test("open, reply, exchange data and half-close in both directions", async () => {
    const { server, client } = await sessions();
    const seen: Array<Record<string, string[]>> = [];
    server.on("stream", (stream: SpdyStream) => {
      seen.push(stream.headers);
      void (async () => {
        await stream.accept({ accepted: "yes" });
        const body = await readAll(stream);
        await stream.write(new TextEncoder().encode(`got ${text(body)}`));
        await stream.end();
      })().catch(() => undefined); // the second stream is still open when the test ends
    });
    const stream = client.createStream({ streamType: "stdin", Port: ["80", "81"] });
    expect(stream.id).toBe(1);
    expect(await stream.replied).toEqual({ accepted: ["yes"] });
    const closed = new Promise<void>((resolve) => stream.once("close", resolve));
    await stream.write(new TextEncoder().encode("hello"));
    await stream.end();
    expect(text(await readAll(stream))).toBe("got hello");
    await closed;
    expect(seen).toEqual([{ streamtype: ["stdin"], port: ["80", "81"] }]);
    expect(client.streamCount).toBe(0);
    const second = client.createStream({ n: "2" });
    expect(second.id).toBe(3);
    await second.replied;
  });

  test("a reset reaches the peer: the reply is refused and writes fail", async () => {
    const { server, client } = await sessions();
    server.on("stream", (stream: SpdyStream) => stream.reset(RstStatus.CANCEL));
    const stream = client.createStream({});
    const reset = new Promise<number>((resolve) => stream.once("reset", resolve));
    await expect(stream.replied).rejects.toThrow("reset");
    expect(await reset).toBe(RstStatus.CANCEL);
    await expect(stream.write(Uint8Array.of(1))).rejects.toThrow();
    expect(await stream.read()).toBeNull();
  });

  test("streams are refused when nobody handles them", async () => {
    const { client } = await sessions();
    const stream = client.createStream({});
    const status = new Promise<number>((resolve) => stream.once("reset", resolve));
    expect(await status).toBe(RstStatus.REFUSED_STREAM);
  });

  test("PINGs are answered in both directions", async () => {
    const { server, client } = await sessions();
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    expect(await server.ping()).toBeGreaterThanOrEqual(0);
  });

  test("close resets open streams, then sends GOAWAY and ends the connection", async () => {
    const { server, client } = await sessions();
    server.on("stream", (stream: SpdyStream) => void stream.accept());
    const stream = client.createStream({});
    await stream.replied;
    const goaway = new Promise<{ lastGoodStreamId: number; status: number }>((resolve) => client.once("goaway", resolve));
    const reset = new Promise<number>((resolve) => stream.once("reset", resolve));
    await server.close();
    expect(await reset).toBe(RstStatus.CANCEL);
    expect(await goaway).toEqual({ lastGoodStreamId: 1, status: GoAwayStatus.OK });
    await client.closed;
    expect(() => client.createStream({})).toThrow();
  });

  test("an idle session closes itself", async () => {
    const { server, client } = await sessions({ idleTimeoutMs: 80 });
    const started = Date.now();
    await server.closed;
    await client.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });
});

describe("SpdySession flow control", () => {
  test("a slow reader holds the sender to the 64 KiB window; 1 MiB crosses each way intact", async () => {
    const { server, client } = await sessions();
    const incoming = new Promise<SpdyStream>((resolve) => server.once("stream", resolve));
    const stream = client.createStream({});
    const peer = await incoming;
    await peer.accept();
    await stream.replied;

    const down = pattern(1 << 20, 1);
    let downDone = false;
    const downWrite = peer.write(down).then(() => (downDone = true));
    const up = pattern(1 << 20, 2);
    let upDone = false;
    const upWrite = stream.write(up).then(() => (upDone = true));
    await sleep(150);
    // Neither side reads yet: exactly one window is in flight each way, the writers wait.
    expect(stream.buffered).toBe(64 * 1024);
    expect(peer.buffered).toBe(64 * 1024);
    expect(downDone).toBe(false);
    expect(upDone).toBe(false);

    const [gotDown, gotUp] = await Promise.all([
      (async () => {
        const parts: Uint8Array[] = [];
        let total = 0;
        while (total < down.length) {
          const c = (await stream.read()) as Uint8Array;
          parts.push(c);
          total += c.length;
        }
        return Buffer.concat(parts);
      })(),
      (async () => {
        const parts: Uint8Array[] = [];
        let total = 0;
        while (total < up.length) {
          const c = (await peer.read()) as Uint8Array;
          parts.push(c);
          total += c.length;
        }
        return Buffer.concat(parts);
      })(),
    ]);
    await Promise.all([downWrite, upWrite]);
    expect(Buffer.compare(gotDown, Buffer.from(down))).toBe(0);
    expect(Buffer.compare(gotUp, Buffer.from(up))).toBe(0);
  });

  test("SETTINGS INITIAL_WINDOW_SIZE changes the peer's stream windows", async () => {
    const s = await sockets();
    const server = new SpdySession(s.server, { role: "server" });
    cleanups.push(() => server.destroy());
    const raw = await rawClient(s.client);
    // SETTINGS: one entry, INITIAL_WINDOW_SIZE = 1000.
    s.client.write(Buffer.from("800300040000000c" + "00000001" + "00000007" + "000003e8", "hex"));
    const incoming = new Promise<SpdyStream>((resolve) => server.once("stream", resolve));
    await raw.openStream(1, { a: "b" });
    const stream = await incoming;
    await stream.accept();
    void stream.write(new Uint8Array(5000)).catch(() => undefined);
    await sleep(100);
    expect(raw.dataBytes(1)).toBe(1000);
    s.client.write(encodeWindowUpdate(1, 500));
    await sleep(100);
    expect(raw.dataBytes(1)).toBe(1500);
  });

  test("a peer that never sends WINDOW_UPDATE is treated as spdystream after a grace period", async () => {
    const s = await sockets();
    const server = new SpdySession(s.server, { role: "server", legacyPeerGraceMs: 100 });
    cleanups.push(() => server.destroy());
    const raw = await rawClient(s.client);
    const incoming = new Promise<SpdyStream>((resolve) => server.once("stream", resolve));
    await raw.openStream(1, {});
    const stream = await incoming;
    await stream.accept();
    const legacy = new Promise<void>((resolve) => server.once("legacy-flow-control", resolve));
    const started = Date.now();
    await stream.write(new Uint8Array(300 * 1024));
    await legacy;
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    await sleep(50);
    expect(raw.dataBytes(1)).toBe(300 * 1024);
  });

  test("with peerFlowControl enforce, the window holds however long the peer is silent", async () => {
    const s = await sockets();
    const server = new SpdySession(s.server, { role: "server", peerFlowControl: "enforce", legacyPeerGraceMs: 10 });
    cleanups.push(() => server.destroy());
    const raw = await rawClient(s.client);
    const incoming = new Promise<SpdyStream>((resolve) => server.once("stream", resolve));
    await raw.openStream(1, {});
    const stream = await incoming;
    await stream.accept();
    void stream.write(new Uint8Array(100 * 1024)).catch(() => undefined);
    await sleep(150);
    expect(raw.dataBytes(1)).toBe(64 * 1024);
  });

  test("a sender ignoring our window is paused through TCP, not reset", async () => {
    const { server, client } = await sessions({}, { peerFlowControl: "ignore" });
    const incoming = new Promise<SpdyStream>((resolve) => server.once("stream", resolve));
    const stream = client.createStream({});
    const peer = await incoming;
    await peer.accept();
    const data = pattern(4 << 20, 3);
    const write = stream.write(data).then(() => stream.end());
    await sleep(200);
    // The server stopped reading its socket soon after the backlog passed the window.
    expect(peer.buffered).toBeGreaterThan(64 * 1024);
    expect(peer.buffered).toBeLessThan(2 << 20);
    const got = await readAll(peer);
    await write;
    expect(Buffer.compare(Buffer.from(got), Buffer.from(data))).toBe(0);
  });
});

describe("SpdySession protocol errors", () => {
  test("an undecodable header block ends the session with GOAWAY(PROTOCOL_ERROR)", async () => {
    const s = await sockets();
    const server = new SpdySession(s.server, { role: "server" });
    server.on("stream", () => undefined);
    const raw = await rawClient(s.client);
    s.client.write(encodeSynStream(1, 0, Uint8Array.of(0x78, 0xbb, 1, 2, 3, 4, 5, 6)));
    const goaway = await raw.nextControl(FrameType.GOAWAY);
    expect(payloadWords(goaway.payload, 2)).toEqual([0, GoAwayStatus.PROTOCOL_ERROR]);
    await server.closed;
  });

  test("stream ids must be odd and increasing from a client", async () => {
    const s = await sockets();
    const server = new SpdySession(s.server, { role: "server" });
    cleanups.push(() => server.destroy());
    server.on("stream", (stream: SpdyStream) => void stream.accept());
    const raw = await rawClient(s.client);
    await raw.openStream(2, {});
    const rst = await raw.nextControl(FrameType.RST_STREAM);
    expect(payloadWords(rst.payload, 2)).toEqual([2, RstStatus.PROTOCOL_ERROR]);
  });
});

/** A hand-driven SPDY client that never sends WINDOW_UPDATE, like moby/spdystream. */
async function rawClient(socket: net.Socket): Promise<{
  openStream(id: number, headers: Record<string, string>): Promise<void>;
  dataBytes(id: number): number;
  nextControl(type: number): Promise<Extract<Frame, { kind: "control" }>>;
}> {
  const deflater = ZlibContext.deflater();
  const parser = new FrameParser();
  const data = new Map<number, number>();
  const controls: Array<Extract<Frame, { kind: "control" }>> = [];
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Uint8Array) => {
    parser.push(chunk);
    for (let f = parser.next(); f; f = parser.next()) {
      if (f.kind === "data") data.set(f.streamId, (data.get(f.streamId) ?? 0) + f.data.length);
      else controls.push(f);
    }
    wake?.();
  });
  cleanups.push(() => deflater.close());
  return {
    async openStream(id, headers) {
      const block = await deflater.process(encodeHeaderBlock(headers));
      socket.write(encodeSynStream(id, 0, block));
    },
    dataBytes: (id) => data.get(id) ?? 0,
    async nextControl(type) {
      for (;;) {
        const i = controls.findIndex((c) => c.type === type);
        if (i >= 0) return controls.splice(i, 1)[0] as Extract<Frame, { kind: "control" }>;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
