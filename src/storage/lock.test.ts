import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { conflictingLock, tryLockOfd, tryLockPosix } from "../sys/lockfile.ts";
import { LAST_WRITE_SIZE, LockFile, newLastWrite, sameLastWrite } from "./lock.ts";

const dir = mkdtempSync(join(tmpdir(), "crio-lock-"));
const children: Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function lockPath(): string {
  return join(dir, `l${n++}.lock`);
}

/** Starts testdata/lock-child.ts and resolves once it printed LOCKED. */
async function holdInChild(path: string, flavor: "ofd" | "posix" | "store", kind: "read" | "write") {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "testdata", "lock-child.ts"), path, flavor, kind], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push(proc);
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("LOCKED")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`lock child exited early: ${out}`);
    out += new TextDecoder().decode(value);
  }
  return {
    release: async () => {
      proc.stdin.write("go\n");
      await proc.stdin.end();
      await proc.exited;
    },
    proc,
  };
}

describe("last-write token", () => {
  test("new tokens are 64 bytes: time, counter, pid, random; never equal", () => {
    const a = newLastWrite();
    const b = newLastWrite();
    expect(a.length).toBe(LAST_WRITE_SIZE);
    const va = new DataView(a.buffer);
    const vb = new DataView(b.buffer);
    expect(vb.getBigUint64(8, true)).toBe(va.getBigUint64(8, true) + 1n);
    expect(va.getUint32(16, true)).toBe(process.pid);
    const ns = va.getBigUint64(0, true);
    expect(Number(ns / 1_000_000n)).toBeGreaterThan(Date.now() - 10_000);
    expect(sameLastWrite(a, b)).toBe(false);
    expect(sameLastWrite(a, a.slice())).toBe(true);
  });

  test("recordWrite stores the token in the file; modifiedSince notices another writer", async () => {
    const path = lockPath();
    const lock = LockFile.get(path);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    await lock.lock();
    expect(lock.getLastWrite().length).toBe(0); // a new lock file: nobody wrote yet
    const mine = lock.recordWrite();
    expect(lock.modifiedSince(mine).modified).toBe(false);
    lock.unlock();
    expect(sameLastWrite(new Uint8Array(readFileSync(path)), mine)).toBe(true);

    // Another process records a write: we see the token change.
    const child = await holdInChild(path, "store", "write");
    await child.release();
    await lock.rlock();
    const { modified, lastWrite } = lock.modifiedSince(mine);
    lock.unlock();
    expect(modified).toBe(true);
    expect(lastWrite.length).toBe(LAST_WRITE_SIZE);
  });

  test("recordWrite needs the write lock", async () => {
    const lock = LockFile.get(lockPath());
    await lock.rlock();
    expect(() => lock.recordWrite()).toThrow();
    lock.unlock();
    expect(() => lock.unlock()).toThrow();
  });
});

describe("in-process read/write lock", () => {
  test("readers share, a writer waits for them, and later readers wait for the writer", async () => {
    const lock = LockFile.get(lockPath());
    const events: string[] = [];
    await lock.rlock();
    await lock.rlock();
    const writer = lock.lock().then(() => events.push("writer"));
    const lateReader = lock.rlock().then(() => events.push("late reader"));
    await Bun.sleep(20);
    expect(events).toEqual([]);
    lock.unlock();
    lock.unlock();
    await writer;
    expect(events).toEqual(["writer"]);
    expect(lock.heldForWriting).toBe(true);
    lock.unlock();
    await lateReader;
    expect(events).toEqual(["writer", "late reader"]);
    lock.unlock();
    expect(lock.held).toBe(false);
  });

  test("the file lock is released when the last holder leaves", async () => {
    const path = lockPath();
    const lock = LockFile.get(path);
    await lock.lock();
    const probe = openSync(path, "r+");
    try {
      expect(conflictingLock(probe, "read")).toBe("write");
      lock.unlock();
      expect(conflictingLock(probe, "write")).toBeUndefined();
    } finally {
      closeSync(probe);
    }
  });
});

describe("between processes", () => {
  test("a write lock held by another process blocks us until released, without blocking the event loop", async () => {
    const path = lockPath();
    const child = await holdInChild(path, "store", "write");
    const lock = LockFile.get(path);
    let acquired = false;
    const pending = lock.lock().then(() => {
      acquired = true;
    });
    // The event loop keeps running while we wait.
    const ticks = await new Promise<number>((res) => {
      let t = 0;
      const iv = setInterval(() => t++, 10);
      setTimeout(() => {
        clearInterval(iv);
        res(t);
      }, 300);
    });
    expect(ticks).toBeGreaterThan(10);
    expect(acquired).toBe(false);
    await child.release();
    await pending;
    expect(acquired).toBe(true);
    lock.unlock();
  });

  test("readers in two processes share the lock; a writer excludes both", async () => {
    const path = lockPath();
    const child = await holdInChild(path, "store", "read");
    const lock = LockFile.get(path);
    await lock.rlock(); // shared: no wait
    lock.unlock();
    let acquired = false;
    const pending = lock.lock().then(() => {
      acquired = true;
    });
    await Bun.sleep(100);
    expect(acquired).toBe(false);
    await child.release();
    await pending;
    lock.unlock();
  });

  test("our OFD locks and Go's POSIX fcntl locks exclude each other", async () => {
    const path = lockPath();
    writeFileSync(path, "");
    // Go (containers/storage) holding the lock: we cannot take it.
    const goWriter = await holdInChild(path, "posix", "write");
    const fd = openSync(path, "r+");
    try {
      expect(tryLockOfd(fd, "read")).toBe(false);
      expect(conflictingLock(fd, "read")).toBe("write");
      await goWriter.release();
      expect(tryLockOfd(fd, "write")).toBe(true);
      // Us holding it: a Go process cannot take it either.
      const probe = Bun.spawnSync([
        process.execPath,
        "-e",
        `import { openSync } from "node:fs"; import { tryLockPosix } from "${join(import.meta.dir, "../sys/lockfile.ts")}";
         const fd = openSync(${JSON.stringify(path)}, "r+"); console.log(tryLockPosix(fd, "read") ? "got" : "blocked");`,
      ]);
      expect(probe.stdout.toString().trim()).toBe("blocked");
    } finally {
      closeSync(fd);
    }
    // After closing our descriptor the lock is gone.
    const fd2 = openSync(path, "r+");
    expect(tryLockPosix(fd2, "write")).toBe(true);
    closeSync(fd2);
  });
});
