// Bytes and inodes used under a directory, as a du would count them: every entry is an inode,
// hard links count once, and nothing below a mount point (a container's merged rootfs) counts.
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface Usage {
  bytes: number;
  inodes: number;
}

/** Walks `roots`, adding into one total; `seen` dedupes hard links across calls. */
export async function diskUsage(roots: readonly string[], seen: Set<string> = new Set()): Promise<Usage> {
  const total: Usage = { bytes: 0, inodes: 0 };
  for (const root of roots) {
    let st;
    try {
      st = await lstat(root, { bigint: true });
    } catch {
      continue;
    }
    await walk(root, st.dev, total, seen);
  }
  return total;
}

async function walk(path: string, dev: bigint, total: Usage, seen: Set<string>): Promise<void> {
  let st;
  try {
    st = await lstat(path, { bigint: true });
  } catch {
    return; // removed while walking
  }
  if (st.dev !== dev) return; // another file system mounted here
  const key = `${st.dev}:${st.ino}`;
  if (!seen.has(key)) {
    seen.add(key);
    total.inodes += 1;
    total.bytes += Number(st.size);
  }
  if (!st.isDirectory()) return;
  let names: string[];
  try {
    names = await readdir(path);
  } catch {
    return;
  }
  for (const name of names) await walk(join(path, name), dev, total, seen);
}
