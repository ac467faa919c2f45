// Test helper run as a separate process: holds a lock on a file, prints "LOCKED", waits for a
// line on stdin (or a delay), then releases and exits.
//   bun lock-child.ts <path> ofd|posix read|write [holdMs]
import { closeSync, openSync } from "node:fs";
import { tryLockOfd, tryLockPosix } from "../../sys/lockfile.ts";
import { LockFile } from "../lock.ts";

const [path, flavor, kind, holdMs] = process.argv.slice(2) as [string, string, "read" | "write", string | undefined];

async function waitRelease(): Promise<void> {
  if (holdMs !== undefined) {
    await Bun.sleep(Number(holdMs));
    return;
  }
  for await (const _ of console) return;
}

if (flavor === "store") {
  // Through the LockFile class, recording a write like a store does.
  const lock = LockFile.get(path);
  if (kind === "write") await lock.lock();
  else await lock.rlock();
  if (kind === "write") lock.recordWrite();
  console.log("LOCKED");
  await waitRelease();
  lock.unlock();
} else {
  const fd = openSync(path, "r+");
  const take = flavor === "posix" ? tryLockPosix : tryLockOfd;
  while (!take(fd, kind)) await Bun.sleep(5);
  console.log("LOCKED");
  await waitRelease();
  closeSync(fd);
}
console.log("RELEASED");
