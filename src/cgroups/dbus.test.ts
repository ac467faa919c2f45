// The D-Bus wire format against bytes worked out by hand from the specification, and the
// connection against the reference bus daemon (dbus-daemon, when installed).
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DBusConnectError,
  DBusConnection,
  DBusError,
  DBusProtocolError,
  decodeMessage,
  encodeMessage,
  externalAuthId,
  marshal,
  type Message,
  MessageType,
  messageLength,
  parseSignature,
  unmarshal,
  Variant,
} from "./dbus.ts";
import { requireDbusTools, withDbusDaemon } from "./testing/dbus-daemon.ts";

/** Bytes from pieces: numbers are bytes, "x:..." hex, other strings ASCII. */
function bytes(...pieces: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of pieces) {
    if (typeof p === "number") out.push(p);
    else if (p.startsWith("x:")) for (const h of p.slice(2).match(/../g) ?? []) out.push(parseInt(h, 16));
    else for (const c of p) out.push(c.charCodeAt(0));
  }
  return new Uint8Array(out);
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("marshalling", () => {
  test("Hello, byte for byte (D-Bus spec: 16-byte header, a(yv) fields, 8-padding)", () => {
    const m = encodeMessage({
      type: MessageType.METHOD_CALL,
      flags: 0,
      serial: 1,
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "Hello",
      destination: "org.freedesktop.DBus",
      signature: "",
      body: [],
    });
    const expected = bytes(
      "l", 1, 0, 1, "x:00000000", "x:01000000", "x:6d000000", // little-endian call, flags 0, v1, no body, serial 1, fields 109 bytes
      1, 1, "o", 0, "x:15000000", "/org/freedesktop/DBus", 0, "x:0000", // PATH (offset 16..45) + pad to 48
      2, 1, "s", 0, "x:14000000", "org.freedesktop.DBus", 0, "x:000000", // INTERFACE (48..76) + pad to 80
      3, 1, "s", 0, "x:05000000", "Hello", 0, "x:0000", // MEMBER (80..93) + pad to 96
      6, 1, "s", 0, "x:14000000", "org.freedesktop.DBus", 0, "x:000000", // DESTINATION (96..124) + pad to 128
    );
    expect(hex(m)).toBe(hex(expected));
    expect(m.length).toBe(128);
    expect(messageLength(m)).toBe(128);
  });

  test("StartTransientUnit's body ssa(sv)a(sa(sv)), byte for byte", () => {
    const body = marshal("ssa(sv)a(sa(sv))", ["a.scope", "replace", [["PIDs", new Variant("au", [1])]], []]);
    const expected = bytes(
      "x:07000000", "a.scope", 0, // 0..11
      "x:07000000", "replace", 0, // 12..23
      "x:18000000", "x:00000000", // a(sv): 24 bytes of elements, padded from 28 to the struct alignment 32
      "x:04000000", "PIDs", 0, // struct at 32: s
      2, "au", 0, // variant signature at 41
      "x:000000", "x:04000000", "x:01000000", // pad 45..47, array of 4 bytes, u32 1 → 56
      "x:00000000", "x:00000000", // empty a(sa(sv)): length 0, and the padding to 8 is still written → 64
    );
    expect(hex(body)).toBe(hex(expected));
  });

  test("alignment is from the start: y then t pads to 8; b is 4 bytes", () => {
    expect(hex(marshal("yt", [7, 1n]))).toBe("07000000000000000100000000000000");
    expect(hex(marshal("b", [true]))).toBe("01000000");
    expect(hex(marshal("g", ["a(sv)"]))).toBe(hex(bytes(5, "a(sv)", 0)));
    expect(hex(marshal("ay", [new Uint8Array([1, 2, 3])]))).toBe("03000000010203");
  });

  test("round trips every type the client uses", () => {
    const cases: [string, unknown[]][] = [
      ["ybnqiuxtd", [255, true, -2, 65535, -7, 4294967295, -(1n << 63n), (1n << 64n) - 1n, 1.5]],
      ["sog", ["héllo", "/org/freedesktop/systemd1/job/42", "a{sv}"]],
      ["a(sv)", [[["PIDs", new Variant("au", [1, 2])], ["Delegate", new Variant("b", true)], ["After", new Variant("as", ["crio.service"])]]]],
      ["a(sa(sv))", [[["x.service", [["Description", new Variant("s", "d")]]]]]],
      ["a{sv}", [[["k", new Variant("t", 5n)]]]],
      ["v", [new Variant("ay", new Uint8Array([3, 0, 1]))]],
      ["uoss", [7, "/org/freedesktop/systemd1/job/7", "crio-x.scope", "done"]],
      ["av", [[new Variant("v", new Variant("i", -1))]]],
    ];
    for (const [sig, values] of cases) {
      const decoded = unmarshal(sig, marshal(sig, values));
      expect(decoded).toEqual(values as never);
    }
  });

  test("numbers are accepted for 64-bit integers and come back as bigint", () => {
    expect(unmarshal("t", marshal("t", [12]))).toEqual([12n]);
  });

  test("bad values and signatures are refused", () => {
    expect(() => marshal("u", [-1])).toThrow(DBusProtocolError);
    expect(() => marshal("y", [256])).toThrow(DBusProtocolError);
    expect(() => marshal("o", ["not/a/path"])).toThrow(DBusProtocolError);
    expect(() => marshal("s", ["nul\0inside"])).toThrow(DBusProtocolError);
    expect(() => marshal("v", ["not a variant"])).toThrow(DBusProtocolError);
    expect(() => marshal("(su)", [["only one"]])).toThrow(DBusProtocolError);
    expect(() => marshal("su", ["one"])).toThrow(DBusProtocolError);
    for (const sig of ["a", "(", "()", "a{vs}", "a{s}", "z", "(s"]) expect(() => parseSignature(sig)).toThrow(DBusProtocolError);
  });

  test("decoding refuses non-zero padding, bad booleans and truncation", () => {
    const good = marshal("yt", [1, 2n]);
    const badPad = good.slice();
    badPad[3] = 1;
    expect(() => unmarshal("yt", badPad)).toThrow(/padding/);
    expect(() => unmarshal("b", new Uint8Array([2, 0, 0, 0]))).toThrow(/boolean/);
    expect(() => unmarshal("s", new Uint8Array([9, 0, 0, 0, 65]))).toThrow(/truncated/);
  });

  test("a big-endian message decodes", () => {
    // A signal as a big-endian peer would send it: 'B', SIGNAL, serial 9, body "u" = 5.
    const fields = bytes(
      1, 1, "o", 0, "x:00000002", "/a", 0, "x:0000000000", // PATH "/a" (16..26), pad to 32
      2, 1, "s", 0, "x:00000001", "b", 0, "x:000000000000", // INTERFACE "b" (32..41), pad to 48
      3, 1, "s", 0, "x:00000001", "c", 0, "x:000000000000", // MEMBER "c" (48..57), pad to 64
      8, 1, "g", 0, 1, "u", 0, // SIGNATURE "u" (64..70): the array ends here, 55 bytes
    );
    const header = bytes("B", 4, 0, 1, "x:00000004", "x:00000009", "x:00000037");
    const framed = new Uint8Array([...header, ...fields, 0, ...bytes("x:00000005")]);
    expect(messageLength(framed)).toBe(76);
    const m = decodeMessage(framed);
    expect(m).toMatchObject({ type: MessageType.SIGNAL, serial: 9, path: "/a", interface: "b", member: "c", signature: "u", body: [5] });
  });

  test("SASL EXTERNAL sends the uid's decimal digits as hex", () => {
    expect(externalAuthId(0)).toBe("30");
    expect(externalAuthId(1000)).toBe("31303030");
  });
});

describe("connection", () => {
  test("a missing socket is a DBusConnectError with ENOENT", async () => {
    let err: unknown;
    try {
      await DBusConnection.connect({ path: "/nonexistent/bus.sock", hello: true, timeoutMs: 2000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DBusConnectError);
    expect((err as DBusConnectError).code).toBe("ENOENT");
  });

  test("a server that rejects authentication fails the connect", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dbus-rej-"));
    const path = join(dir, "s.sock");
    const server = Bun.listen({ unix: path, socket: { data: (s) => void s.write("REJECTED EXTERNAL\r\n") } });
    try {
      const err = await DBusConnection.connect({ path, hello: false, timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DBusConnectError);
      expect((err as Error).message).toContain("REJECTED EXTERNAL");
    } finally {
      server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("connection against dbus-daemon (the reference implementation)", () => {
  beforeAll(() => requireDbusTools());
  test("authenticates, says Hello and gets a unique name; the daemon accepts our calls", async () => {
    await withDbusDaemon(async (socket) => {
      const conn = await DBusConnection.connect({ path: socket, hello: true });
      try {
        expect(conn.uniqueName).toMatch(/^:1\.\d+$/);
        expect(conn.guid).toMatch(/^[0-9a-f]{32}$/);
        const id = await conn.call({ destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "GetId" });
        expect(id.signature).toBe("s");
        expect(String(id.body[0])).toMatch(/^[0-9a-f]{32}$/);
        const names = await conn.call({ destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "ListNames" });
        expect(names.body[0]).toContain(conn.uniqueName);
      } finally {
        conn.close();
      }
    });
  });

  test("an error reply becomes a DBusError carrying the error name", async () => {
    await withDbusDaemon(async (socket) => {
      const conn = await DBusConnection.connect({ path: socket, hello: true });
      try {
        const err = await conn
          .call({ destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "NoSuchMethod" })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DBusError);
        expect((err as DBusError).errorName).toBe("org.freedesktop.DBus.Error.UnknownMethod");
        const err2 = await conn
          .call({ destination: "org.example.Nobody", path: "/", interface: "org.example.X", member: "Y" })
          .catch((e: unknown) => e);
        expect((err2 as DBusError).errorName).toBe("org.freedesktop.DBus.Error.ServiceUnknown");
      } finally {
        conn.close();
      }
    });
  });

  test("a signal libdbus marshalled (dbus-send) reaches a connection whose match rule names it", async () => {
    await withDbusDaemon(async (socket) => {
      const conn = await DBusConnection.connect({ path: socket, hello: true });
      try {
        await conn.call({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "AddMatch",
          signature: "s",
          body: ["type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"],
        });
        const got = new Promise<Message>((resolve) => conn.onSignal(resolve));
        const send = Bun.spawn([
          "dbus-send", `--bus=unix:path=${socket}`, "--type=signal", "/org/freedesktop/systemd1",
          "org.freedesktop.systemd1.Manager.JobRemoved", "uint32:7", "objpath:/org/freedesktop/systemd1/job/7",
          "string:crio-conmon-abc.scope", "string:done",
        ]);
        expect(await send.exited).toBe(0);
        // Bounded, so that the daemon is stopped even when the signal never comes.
        const m = await Promise.race([got, Bun.sleep(3000).then(() => Promise.reject(new Error("no JobRemoved signal within 3 s")))]);
        expect(m).toMatchObject({
          type: MessageType.SIGNAL,
          path: "/org/freedesktop/systemd1",
          interface: "org.freedesktop.systemd1.Manager",
          member: "JobRemoved",
          signature: "uoss",
          body: [7, "/org/freedesktop/systemd1/job/7", "crio-conmon-abc.scope", "done"],
        });
      } finally {
        conn.close();
      }
    });
  });
});
