import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SyscallError } from "./libc.ts";
import {
  acceptSeqpacket, closeSocket, connectSeqpacket, listenSeqpacket, recvRecord, sendRecord, shutdownWrite,
} from "./seqpacket.ts";

let dir = "";
const fds: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sys-seqpacket-"));
});
afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      closeSocket(fd);
    } catch { /* closed by the test */ }
  }
  rmSync(dir, { recursive: true, force: true });
});

function keep(fd: number): number {
  fds.push(fd);
  return fd;
}

function pair(path: string): [client: number, server: number] {
  const l = keep(listenSeqpacket(path));
  const c = keep(connectSeqpacket(path));
  const s = acceptSeqpacket(l);
  if (s === null) throw new Error("no connection to accept");
  return [c, keep(s)];
}

describe("seqpacket", () => {
  test("records keep their boundaries both ways; nothing waiting reads as null", () => {
    const [c, s] = pair(join(dir, "sock"));
    const buf = new Uint8Array(65536);
    expect(recvRecord(s, buf)).toBeNull();
    const sizes = [1, 8193, 2, 5000];
    for (const n of sizes) expect(sendRecord(c, new Uint8Array(n).fill(n & 0xff))).toBe(n);
    for (const n of sizes) {
      expect(recvRecord(s, buf)).toBe(n);
      expect(buf[n - 1]).toBe(n & 0xff);
    }
    expect(sendRecord(s, new TextEncoder().encode("\x02out"))).toBe(4);
    expect(recvRecord(c, buf)).toBe(4);
    expect(new TextDecoder().decode(buf.subarray(0, 4))).toBe("\x02out");
  });

  test("a record longer than the buffer is truncated to it (what conmon's fixed buffer does)", () => {
    const [c, s] = pair(join(dir, "sock"));
    sendRecord(c, new Uint8Array(100));
    sendRecord(c, new Uint8Array([7]));
    const small = new Uint8Array(10);
    expect(recvRecord(s, small)).toBe(10);
    expect(recvRecord(s, small)).toBe(1);
    expect(small[0]).toBe(7);
  });

  test("shutdownWrite: the peer reads end of stream and can still send", () => {
    const [c, s] = pair(join(dir, "sock"));
    shutdownWrite(c);
    const buf = new Uint8Array(16);
    expect(recvRecord(s, buf)).toBe(0);
    expect(sendRecord(s, new Uint8Array([1, 2]))).toBe(2);
    expect(recvRecord(c, buf)).toBe(2);
  });

  test("a full socket buffer: send reports 0 and sends nothing", () => {
    const [c, s] = pair(join(dir, "sock"));
    const rec = new Uint8Array(8192);
    let sent = 0;
    while (sendRecord(c, rec) > 0) sent++;
    expect(sent).toBeGreaterThan(0);
    const buf = new Uint8Array(8192);
    let read = 0;
    while (recvRecord(s, buf) !== null) read++;
    expect(read).toBe(sent);
  });

  test("an empty record is refused (it would read as end of stream)", () => {
    const [c] = pair(join(dir, "sock"));
    expect(() => sendRecord(c, new Uint8Array(0))).toThrow(/empty record/);
  });

  test("a path longer than sun_path is reached through /proc/self/fd", () => {
    const deep = join(dir, "d".repeat(60), "e".repeat(60));
    mkdirSync(deep, { recursive: true });
    const path = join(deep, "attach");
    expect(Buffer.byteLength(path)).toBeGreaterThan(108);
    const [c, s] = pair(path);
    sendRecord(c, new Uint8Array([42]));
    const buf = new Uint8Array(4);
    expect(recvRecord(s, buf)).toBe(1);
  });

  test("connect errors carry the syscall and errno", () => {
    let err: unknown;
    try {
      connectSeqpacket(join(dir, "missing"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).syscall).toBe("connect");
    expect((err as SyscallError).code).toBe("ENOENT");
  });
});
