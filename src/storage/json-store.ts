// What the layer, image and container stores share: a JSON file of records guarded by a lock
// file, cached in memory and reloaded when another process (or another store object of this
// one) recorded a write, as the upstream startReading/startWriting/reloadIfChanged do.
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { atomicWriteFile } from "./atomic.ts";
import type { LastWrite, LockFile } from "./lock.ts";
import { marshalRecords, type FieldSpec, type RawRecord } from "./json.ts";

/** Records files are written with mode 0600, like every upstream store. */
export const RECORDS_FILE_MODE = 0o600;

export abstract class JsonStore {
  protected readonly lock: LockFile;
  private lastWrite: LastWrite | undefined;
  private readonly mtimes = new Map<string, bigint>();
  /** True while an operation of this object holds the lock for writing. */
  private writing = false;

  protected constructor(lock: LockFile) {
    this.lock = lock;
  }

  /** Files whose modification time also signals a change (someone edited them by hand). */
  protected abstract watchedFiles(): string[];

  /** Replaces the in-memory state with the files' content. */
  protected abstract load(lockedForWriting: boolean): Promise<void>;

  /** Called with the write lock held, after any reload (e.g. to clean up crash leftovers). */
  protected async repair(): Promise<void> {}

  /**
   * Runs `fn` over fresh state with the lock held for reading. While this object itself holds
   * the write lock (a layer being unpacked, say), no other process can change the files, so
   * `fn` runs at once on the in-memory state instead of waiting for the writer to finish.
   */
  async read<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.writing) return await fn();
    await this.lock.rlock();
    try {
      await this.reloadIfChanged(false);
      return await fn();
    } finally {
      this.lock.unlock();
    }
  }

  /** Runs `fn` over fresh state with the lock held for writing. */
  async write<T>(fn: () => T | Promise<T>): Promise<T> {
    await this.lock.lock();
    try {
      await this.reloadIfChanged(true);
      await this.repair();
      // From here on the in-memory state is what the files hold, and only we can change them.
      this.writing = true;
      return await fn();
    } finally {
      this.writing = false;
      this.lock.unlock();
    }
  }

  /** Loads unconditionally with the write lock held (store construction). */
  async initialize(): Promise<void> {
    await this.lock.lock();
    try {
      this.lastWrite = this.lock.getLastWrite();
      await this.load(true);
      await this.recordMtimes();
      await this.repair();
    } finally {
      this.lock.unlock();
    }
  }

  private async reloadIfChanged(lockedForWriting: boolean): Promise<void> {
    const { lastWrite, modified } = this.lock.modifiedSince(this.lastWrite);
    if (modified || (await this.filesChanged())) {
      await this.load(lockedForWriting);
      await this.recordMtimes();
      this.lastWrite = lastWrite;
    }
  }

  private async filesChanged(): Promise<boolean> {
    for (const path of this.watchedFiles()) {
      if ((await mtimeOf(path)) !== this.mtimes.get(path)) return true;
    }
    return false;
  }

  private async recordMtimes(): Promise<void> {
    for (const path of this.watchedFiles()) {
      const m = await mtimeOf(path);
      if (m === undefined) this.mtimes.delete(path);
      else this.mtimes.set(path, m);
    }
  }

  /**
   * Writes records files. The lock's last-write token is recorded first, as upstream does: a
   * writer killed after the token but before the file makes readers reload needlessly, never
   * miss a change.
   */
  protected async saveFiles(files: { path: string; records: readonly RawRecord[]; spec: readonly FieldSpec[]; noSync?: boolean }[]): Promise<void> {
    this.lastWrite = this.lock.recordWrite();
    for (const f of files) {
      await atomicWriteFile(f.path, marshalRecords(f.records, f.spec), RECORDS_FILE_MODE, { noSync: f.noSync });
    }
    await this.recordMtimes();
  }
}

/** A file's mtime in ns. Synchronous: a stat of a local file costs microseconds, a thread-pool round trip more. */
async function mtimeOf(path: string): Promise<bigint | undefined> {
  return statSync(path, { bigint: true, throwIfNoEntry: false })?.mtimeNs;
}

/** A file's text, or "" when it does not exist. */
export async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}
