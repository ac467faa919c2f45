// Reading conmon's sync pipe: a stream of JSON objects, `{"pid": N}` after `runtime create`
// (N = -1 with "message" on failure), `{"exit_code": N, "message": …}` after an exec.
// The parent end is put in non-blocking mode and polled, so a stuck conmon cannot block the
// event loop and the read has a deadline.
import { closeSync, readSync } from "node:fs";
import { setNonblock } from "../sys/proc.ts";

export interface SyncMessage {
  pid?: number;
  exit_code?: number;
  data?: number;
  message?: string;
}

/** Splits concatenated JSON objects (conmon writes one per event, newline-terminated or not). */
export function parseSyncObjects(text: string): { objects: SyncMessage[]; rest: string } {
  const objects: SyncMessage[] = [];
  let depth = 0, start = -1, inStr = false, esc = false, consumed = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      if (esc) esc = false;
      else if (ch === "\\") esc = true;
      else if (ch === '"') inStr = false;
      continue;
    }
    if (ch === '"') inStr = true;
    else if (ch === "{") { if (depth++ === 0) start = i; }
    else if (ch === "}" && depth > 0 && --depth === 0) {
      try { objects.push(JSON.parse(text.slice(start, i + 1)) as SyncMessage); } catch { /* skip garbage */ }
      consumed = i + 1;
    }
  }
  return { objects, rest: text.slice(consumed) };
}

export class SyncPipeReader {
  private buf = "";
  private eof = false;
  private closed = false;
  constructor(private readonly fd: number) {
    setNonblock(fd, true);
  }

  /**
   * Resolves with the first message `accept` takes, or undefined at EOF. Throws on the deadline.
   */
  async next(accept: (m: SyncMessage) => boolean, deadline: number, what: string): Promise<SyncMessage | undefined> {
    const chunk = Buffer.alloc(4096);
    for (;;) {
      const { objects, rest } = parseSyncObjects(this.buf);
      for (let i = 0; i < objects.length; i++) {
        const m = objects[i]!;
        if (accept(m)) {
          // Keep any later objects for the next call: re-serialise them in front of the rest.
          this.buf = objects.slice(i + 1).map((o) => JSON.stringify(o)).join("") + rest;
          return m;
        }
      }
      this.buf = rest;
      if (this.eof) return undefined;
      let n = 0;
      try {
        n = readSync(this.fd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        if (Date.now() > deadline) throw new Error(`timed out waiting for conmon ${what}`);
        await Bun.sleep(5);
        continue;
      }
      if (n === 0) this.eof = true;
      else this.buf += chunk.subarray(0, n).toString("utf8");
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
