// Reading hooks_dir: every *.json file of each directory, parsed and validated. Directories come
// in increasing precedence: a file in a later directory masks the one of the same name in an
// earlier directory (hooks_dir in crio.conf, oci-hooks(5)). A bad file is reported and skipped;
// it does not mask a good file of the same name, and it does not stop the others from loading.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { HookDefinition } from "../spec/hooks.ts";
import { HookFileError, parseHookFile } from "./parse.ts";

export interface LoadedHooks {
  /** The valid definitions, one per file name, sorted by lower-cased file name. */
  hooks: HookDefinition[];
  /** One entry per file that could not be used (the message names the file's path). */
  errors: HookFileError[];
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Loads the hook definitions of `dirs`. A missing directory is skipped silently. */
export function loadHooks(dirs: readonly string[]): LoadedHooks {
  const byName = new Map<string, HookDefinition>();
  const errors: HookFileError[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
    } catch (err) {
      if (errno(err) === "ENOENT") continue;
      errors.push(new HookFileError(dir, `cannot read hooks directory: ${(err as Error).message}`));
      continue;
    }
    for (const file of entries) {
      const path = join(dir, file);
      try {
        if (!statSync(path).isFile()) continue;
        const def = parseHookFile(file, readFileSync(path, "utf8"));
        try {
          statSync(def.hook.path);
        } catch (err) {
          throw new HookFileError(file, `hook.path ${def.hook.path}: ${(err as Error).message}`);
        }
        byName.set(file, def);
      } catch (err) {
        if (errno(err) === "ENOENT") continue; // removed while we read the directory
        const message = err instanceof HookFileError ? err.message.slice(file.length + 2) : (err as Error).message;
        errors.push(new HookFileError(path, message));
      }
    }
  }
  const hooks = [...byName.values()].sort((a, b) => {
    const x = a.name.toLowerCase();
    const y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return { hooks, errors };
}
