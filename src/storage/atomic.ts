// Atomic file replacement (pkg/ioutils AtomicWriteFile): write a temporary file in the same
// directory, fsync it, rename it over the target, fsync the directory. Readers see the old
// content or the new, never a mix; a crash leaves at most a stray ".tmp-*" file.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Skip the fsyncs (upstream does for volatile data that need not survive a crash). */
  noSync?: boolean;
}

export async function atomicWriteFile(
  path: string,
  data: Uint8Array | string,
  mode: number,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.tmp-${basename(path)}${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      await fh.chmod(mode); // the umask must not change the mode upstream asks for
      await fh.writeFile(data);
      if (!options.noSync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (!options.noSync) await syncDir(dir);
}

/** fsync(2) on a directory, making a rename or unlink in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
