// Exit monitoring: conmon writes `<exits dir>/<id>` (and `<persist dir>/exit`) holding the
// decimal exit code when the container's init process ends. CRI-O watches the directory with
// fsnotify; here fs.watch plus a scan at start-up catches exits that happened while no daemon
// was running.
import { existsSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";

export interface ContainerExit {
  id: string;
  exitCode: number;
  /** ctime of the exit file: CRI-O's FinishedAt. */
  finishedAt: Date;
}

/** Reads an exit file; undefined while it is missing or not yet written. */
export function readExitFile(path: string): { exitCode: number; finishedAt: Date } | undefined {
  try {
    const text = readFileSync(path, "utf8").trim();
    if (!/^-?\d+$/.test(text)) return undefined;
    return { exitCode: Number.parseInt(text, 10), finishedAt: statSync(path).ctime };
  } catch {
    return undefined;
  }
}

/**
 * The exit status kept in a container's persist dir (`exit`) and whether it was OOM-killed
 * (conmon's `oom` file, in the persist dir or, as older CRI-O reads it, the bundle).
 */
export function readExitStatus(persistDir: string, bundleDir?: string): {
  exitCode?: number;
  finishedAt?: Date;
  oomKilled: boolean;
} {
  const exit = readExitFile(join(persistDir, "exit"));
  const oomKilled = existsSync(join(persistDir, "oom")) || (bundleDir !== undefined && existsSync(join(bundleDir, "oom")));
  return { ...exit, oomKilled };
}

/** conmon writes exit files through g_file_set_contents: a `<id>.XXXXXX` temp, then rename. */
function isTempName(name: string): boolean {
  return name.startsWith(".") || /\.[A-Za-z0-9]{6}$/.test(name);
}

export class ExitWatcher {
  private watcher: FSWatcher | undefined;
  private readonly seen = new Set<string>();
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly exitsDir: string,
    private readonly onExit: (exit: ContainerExit) => void,
  ) {}

  start(): void {
    this.watcher = watch(this.exitsDir, (_event, name) => {
      if (name) this.check(String(name), 0);
    });
    for (const name of readdirSync(this.exitsDir)) this.check(name, 0);
  }

  /** Forgets a reported exit (call after deleting its file) so a re-created id is seen again. */
  forget(id: string): void {
    this.seen.delete(id);
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private check(name: string, attempt: number): void {
    if (this.seen.has(name) || isTempName(name) || !this.watcher) return;
    const path = join(this.exitsDir, name);
    const exit = readExitFile(path);
    if (exit) {
      this.seen.add(name);
      this.onExit({ id: name, ...exit });
      return;
    }
    // Created but not yet written: look again shortly (bounded).
    if (existsSync(path) && attempt < 20 && !this.pending.has(name)) {
      this.pending.set(name, setTimeout(() => {
        this.pending.delete(name);
        this.check(name, attempt + 1);
      }, 25));
    }
  }
}
