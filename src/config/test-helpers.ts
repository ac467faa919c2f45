// Shared helpers for the config unit tests: temp directories with files, and a loader call that
// never touches the real /etc.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { loadConfig, type LoadOptions, type LoadResult } from "./load.ts";

export class TempTree {
  readonly root: string;
  constructor() {
    this.root = mkdtempSync(path.join(tmpdir(), "crio-config-test-"));
  }
  path(rel: string): string {
    return path.join(this.root, rel);
  }
  write(rel: string, text: string): string {
    const p = this.path(rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  }
  mkdir(rel: string): string {
    const p = this.path(rel);
    mkdirSync(p, { recursive: true });
    return p;
  }
  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * loadConfig with every path inside `t`: main file crio.conf, drop-ins crio.conf.d/, no
 * storage.conf unless the test writes one, and an empty environment unless given.
 */
export function load(t: TempTree, opts: LoadOptions = {}): LoadResult {
  return loadConfig({
    configFile: t.path("crio.conf"),
    configFileExplicit: false,
    configDir: t.path("crio.conf.d"),
    storageConf: t.path("storage.conf"),
    env: {},
    ...opts,
  });
}
