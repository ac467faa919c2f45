// The few file-system reads the loader needs, behind an interface so that tests (or a chroot-like
// setup) can substitute their own. Reading only: loading a configuration never creates anything.
import * as fs from "node:fs";
import * as path from "node:path";

export type EntryKind = "file" | "dir" | "other";

export interface ConfigFs {
  /** File contents, or undefined when the path does not exist. Other errors throw. */
  readFileIfExists(p: string): string | undefined;
  /** What the path is after following symlinks, or undefined when it does not exist. */
  kind(p: string): EntryKind | undefined;
  /** Whether the path itself (not its target) is a symbolic link. */
  isSymlink(p: string): boolean;
  /** Names in a directory. */
  readdir(p: string): string[];
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export const nodeFs: ConfigFs = {
  readFileIfExists(p) {
    try {
      return fs.readFileSync(p, "utf8");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  kind(p) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return undefined;
    return st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
  },
  isSymlink(p) {
    return fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  },
  readdir(p) {
    return fs.readdirSync(p);
  },
};

/** A ConfigFs that resolves every absolute path below `root` (for tests and image builds). */
export function rootedFs(root: string, base: ConfigFs = nodeFs): ConfigFs {
  const at = (p: string): string => path.join(root, p);
  return {
    readFileIfExists: (p) => base.readFileIfExists(at(p)),
    kind: (p) => base.kind(at(p)),
    isSymlink: (p) => base.isSymlink(at(p)),
    readdir: (p) => base.readdir(at(p)),
  };
}

/**
 * Regular files below `dir` in the order CRI-O applies drop-ins: a depth-first walk in lexical
 * order of names (like Go's filepath.Walk). Symlinked directories are not followed; symlinks to
 * files are read. A `dir` that is itself a file yields just that file; a missing one yields none.
 */
export function walkDropIns(fsys: ConfigFs, dir: string): string[] {
  const kind = fsys.kind(dir);
  if (kind === undefined) return [];
  if (kind === "file") return [dir];
  if (kind !== "dir") return [];
  const out: string[] = [];
  const visit = (d: string): void => {
    const names = fsys.readdir(d).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const p = path.join(d, name);
      const k = fsys.kind(p);
      if (k === "file") out.push(p);
      else if (k === "dir" && !fsys.isSymlink(p)) visit(p);
    }
  };
  visit(dir);
  return out;
}
