// containers-storage lock files (pkg/lockfile): a read/write lock that works between processes
// (a whole-file fcntl lock) and between the concurrent operations of this process (an async
// read/write mutex in front of it), plus the "last write" token kept in the file's content.
//
// The token: every writer stores 64 fresh bytes at offset 0 before it rewrites the data the
// lock protects: u64 LE UnixNano time, u64 LE per-process counter, u32 LE pid, 44 random bytes
// (lockfile_unix.go newLastWrite). A holder compares the content with the value it saw when it
// last loaded the data (ModifiedSince) and reloads when they differ. Older containers/storage
// wrote 64 random hex characters instead; any difference means "reload", so both interoperate.
//
// Waiting: the file lock is polled with F_OFD_SETLK and short sleeps (1 ms doubling up to
// 25 ms), never a blocking fcntl, so a podman holding a lock for minutes never stalls the event
// loop. The cost is fairness: a blocked podman waits in the kernel's queue, we poll.
import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { tryLockOfd } from "../sys/lockfile.ts";
import { InternalError } from "../errors.ts";

export const LAST_WRITE_SIZE = 64;

/** The last-write token; an empty token is a lock file nobody wrote yet. */
export type LastWrite = Uint8Array;

export function sameLastWrite(a: LastWrite | undefined, b: LastWrite): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

let writeCounter = 0n;

/** A new token, different from any other this or another process makes. */
export function newLastWrite(): LastWrite {
  const buf = new Uint8Array(LAST_WRITE_SIZE);
  const view = new DataView(buf.buffer);
  const nowNs = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  writeCounter += 1n;
  view.setBigUint64(0, nowNs, true);
  view.setBigUint64(8, writeCounter, true);
  view.setUint32(16, process.pid >>> 0, true);
  buf.set(randomBytes(LAST_WRITE_SIZE - 20), 20);
  return buf;
}

const O_CLOEXEC = 0o2000000;

interface Waiter {
  kind: "read" | "write";
  grant: () => void;
}

const registry = new Map<string, LockFile>();

/**
 * One lock file. Use LockFile.get: one object per path per process, so every store object of
 * this process shares the same in-process queue (as upstream's lockfile registry does).
 */
export class LockFile {
  readonly path: string;
  readonly readOnly: boolean;
  private fd = -1;
  private holders = 0;
  private mode: "read" | "write" | undefined;
  private readonly queue: Waiter[] = [];
  private fileLocked: Promise<void> | undefined;

  private constructor(path: string, readOnly: boolean) {
    this.path = path;
    this.readOnly = readOnly;
  }

  static get(path: string, readOnly = false): LockFile {
    const abs = resolve(path);
    let lock = registry.get(abs);
    if (lock === undefined) {
      lock = new LockFile(abs, readOnly);
      closeSync(lock.open()); // fail early, and create the file, as GetLockFile does
      registry.set(abs, lock);
    } else if (lock.readOnly !== readOnly) {
      throw new InternalError(`lock ${abs} is already open ${lock.readOnly ? "read-only" : "read-write"}`);
    }
    return lock;
  }

  /** Whether some operation of this process holds the lock for writing. */
  get heldForWriting(): boolean {
    return this.mode === "write";
  }

  /** Whether some operation of this process holds the lock at all. */
  get held(): boolean {
    return this.holders > 0;
  }

  /** Takes the lock for writing (exclusive in this process and against every other one). */
  async lock(): Promise<void> {
    if (this.readOnly) throw new InternalError(`can't take a write lock on read-only lock file ${this.path}`);
    await this.acquire("write");
  }

  /** Takes the lock for reading (shared). */
  async rlock(): Promise<void> {
    await this.acquire("read");
  }

  /** Releases one hold taken with lock() or rlock(). */
  unlock(): void {
    if (this.holders <= 0) throw new InternalError(`lock ${this.path} unlocked too often`);
    this.holders--;
    if (this.holders === 0) {
      // Closing the only descriptor of the open file releases the OFD lock.
      if (this.fd >= 0) closeSync(this.fd);
      this.fd = -1;
      this.mode = undefined;
      this.fileLocked = undefined;
      this.dispatch();
    }
  }

  /** Runs `fn` holding the lock for writing. */
  async withWrite<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.lock();
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }

  /** Runs `fn` holding the lock for reading. */
  async withRead<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.rlock();
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }

  /** The token currently in the file (GetLastWrite). Requires the lock. */
  getLastWrite(): LastWrite {
    this.assertHeld();
    const buf = new Uint8Array(LAST_WRITE_SIZE);
    const n = readSync(this.fd, buf, 0, LAST_WRITE_SIZE, 0);
    return buf.slice(0, n);
  }

  /** Whether the token differs from `previous`, and the current token (ModifiedSince). */
  modifiedSince(previous: LastWrite | undefined): { lastWrite: LastWrite; modified: boolean } {
    const lastWrite = this.getLastWrite();
    return { lastWrite, modified: !sameLastWrite(previous, lastWrite) };
  }

  /**
   * Stores a fresh token (RecordWrite). Must be called BEFORE the protected data is rewritten:
   * a writer killed between the two leaves readers reloading needlessly, never trusting stale
   * data. Requires the lock for writing.
   */
  recordWrite(): LastWrite {
    if (this.mode !== "write") throw new InternalError(`lock ${this.path} is not held for writing`);
    const lw = newLastWrite();
    const n = writeSync(this.fd, lw, 0, lw.length, 0);
    if (n !== lw.length) throw new InternalError(`short write to lock file ${this.path}`);
    return lw;
  }

  private assertHeld(): void {
    if (this.holders <= 0 || this.fd < 0) throw new InternalError(`lock ${this.path} is not held`);
  }

  private open(): number {
    const flags = (this.readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT) | O_CLOEXEC;
    try {
      return openSync(this.path, flags, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      // The directory of the lock file was removed: recreate it, as openLock does.
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      return openSync(this.path, flags, 0o644);
    }
  }

  private canGrant(kind: "read" | "write"): boolean {
    if (this.holders === 0) return this.queue.length === 0;
    // Readers join readers, unless a writer is already waiting (no writer starvation).
    return kind === "read" && this.mode === "read" && this.queue.length === 0;
  }

  private async acquire(kind: "read" | "write"): Promise<void> {
    if (this.canGrant(kind)) {
      this.grant(kind);
    } else {
      await new Promise<void>((res) => this.queue.push({ kind, grant: res }));
    }
    try {
      await this.fileLocked;
    } catch (err) {
      this.unlock();
      throw err;
    }
  }

  /** Records an in-process hold; the first holder starts taking the file lock. */
  private grant(kind: "read" | "write"): void {
    this.holders++;
    if (this.holders === 1) {
      this.mode = kind;
      this.fileLocked = this.lockFile(kind);
      // Holders await it; keep an unobserved rejection from being reported as unhandled.
      this.fileLocked.catch(() => {});
    }
  }

  private dispatch(): void {
    const head = this.queue[0];
    if (head === undefined || this.holders > 0) return;
    if (head.kind === "write") {
      this.queue.shift();
      this.grant("write");
      head.grant();
      return;
    }
    while (this.queue[0]?.kind === "read") {
      const w = this.queue.shift() as Waiter;
      this.grant("read");
      w.grant();
    }
  }

  private async lockFile(kind: "read" | "write"): Promise<void> {
    this.fd = this.open();
    let delay = 1;
    while (!tryLockOfd(this.fd, kind)) {
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 25);
    }
  }
}
