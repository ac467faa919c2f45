import { describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sdNotify, SyscallError } from "./index.ts";

describe("sdNotify", () => {
  test("returns false without NOTIFY_SOCKET", () => {
    expect(sdNotify("READY=1", "")).toBe(false);
  });

  test("delivers a datagram a real receiver reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "notify-"));
    const path = join(dir, "notify.sock");
    // python3 is on every machine of this project; it is a receiver independent of our code.
    const rx = spawn(["python3", "-c",
      `import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\nprint(s.recv(100).decode(),flush=True)`, path],
      { stdout: "pipe" });
    try {
      const reader = rx.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain("bound");
      expect(sdNotify("READY=1\nSTATUS=ok", path)).toBe(true);
      let out = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      expect(out.trim()).toBe("READY=1\nSTATUS=ok");
    } finally {
      rx.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing socket is a SyscallError naming sendto and ENOENT", () => {
    let err: unknown;
    try {
      sdNotify("READY=1", "/nonexistent/dir/notify.sock");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).syscall).toBe("sendto");
    expect((err as SyscallError).code).toBe("ENOENT");
  });
});
