// The container store: <root>/overlay-containers/containers.json (+ volatile-containers.json,
// which a transient store keeps in <runroot>/overlay-containers/), guarded by
// <root>/overlay-containers/containers.lock. Read-only for now: it tells which images and
// layers podman's or CRI-O's containers use, so that they are not deleted under them.
// Creating containers comes with container creation in the runtime service.
import { join } from "node:path";
import { JsonStore, readIfExists } from "./json-store.ts";
import { obj, parseRecords, str, strList, type RawRecord } from "./json.ts";
import { LockFile } from "./lock.ts";

/** A container record as the API shows it (a copy). */
export interface Container {
  id: string;
  names: string[];
  /** The image it was created from ("" for none). */
  image: string;
  /** Its read-write layer. */
  layer: string;
  metadata: string | undefined;
  created: string | undefined;
  flags: Record<string, unknown>;
  volatile: boolean;
}

function toContainer(rec: RawRecord, volatile: boolean): Container {
  return {
    id: rec.id as string,
    names: strList(rec, "names"),
    image: str(rec, "image") ?? "",
    layer: str(rec, "layer") ?? "",
    metadata: str(rec, "metadata"),
    created: str(rec, "created"),
    flags: { ...obj(rec, "flags") },
    volatile,
  };
}

export class ContainerStore extends JsonStore {
  readonly dir: string;
  readonly rundir: string;
  private containers: Container[] = [];

  constructor(dir: string, rundir: string) {
    super(LockFile.get(join(dir, "containers.lock")));
    this.dir = dir;
    this.rundir = rundir;
  }

  private files(): [string, boolean][] {
    return [
      [join(this.dir, "containers.json"), false],
      [join(this.dir, "volatile-containers.json"), true],
      [join(this.rundir, "volatile-containers.json"), true],
    ];
  }

  protected watchedFiles(): string[] {
    return this.files().map(([p]) => p);
  }

  protected async load(): Promise<void> {
    const seen = new Set<string>();
    const out: Container[] = [];
    for (const [path, volatile] of this.files()) {
      for (const rec of parseRecords(await readIfExists(path), path)) {
        if (seen.has(rec.id as string)) continue;
        seen.add(rec.id as string);
        out.push(toContainer(rec, volatile));
      }
    }
    this.containers = out;
  }

  /** Call inside read(). */
  list(): Container[] {
    return this.containers.map((c) => ({ ...c, names: [...c.names], flags: { ...c.flags } }));
  }
}
