// The container store: <root>/overlay-containers/containers.json (+ volatile-containers.json,
// which a transient store keeps in <runroot>/overlay-containers/), guarded by
// <root>/overlay-containers/containers.lock. Each container has <root>/overlay-containers/<id>/
// (its big data items and userdata/) and <runroot>/overlay-containers/<id>/userdata.
//
// The records only: the container's read-write layer, and the order of the steps that keep a
// crash from leaving half a container, are the Store's business (store.ts createContainer).
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, NotFoundError } from "../errors.ts";
import { atomicWriteFile } from "./atomic.ts";
import { bigDataFileName, checkId, dedupe, randomId, resolvePrefix, sha256Digest } from "./ids.ts";
import { JsonStore, readIfExists } from "./json-store.ts";
import { fields, goEscape, goTimeNow, numMap, orderRecord, obj, parseRecords, str, strList, strMap, type RawRecord } from "./json.ts";
import { LockFile } from "./lock.ts";

/**
 * Field order and omitempty of containers.go's Container struct ("created" is a time.Time,
 * which omitempty never drops).
 */
const CONTAINER_FIELDS = fields(`
  id names? image layer metadata? big-data-names? big-data-sizes? big-data-digests? created uidmap? gidmap? flags?
`);

/** Flag keys store.go CreateContainer sets (SELinux labels; "" when SELinux is off). */
export const MOUNT_LABEL_FLAG = "MountLabel";
export const PROCESS_LABEL_FLAG = "ProcessLabel";

/**
 * CRI-O's RuntimeContainerMetadata (internal/storage/runtime.go), the JSON CRI-O keeps in a
 * container's `metadata`; podman and crictl-era tools read it from there.
 */
export interface RuntimeContainerMetadata {
  "pod-name": string;
  "pod-id": string;
  "image-name": string;
  "image-id": string;
  /** The container's name (k8s_<name>_<pod>_<namespace>_<uid>_<attempt>). */
  name: string;
  /** The name in the CRI ContainerMetadata. */
  "metadata-name": string;
  uid?: string;
  namespace?: string;
  mountlabel?: string;
  /** Unix seconds. */
  "created-at": number;
  attempt?: number;
  /** True for the pod's infra (sandbox) container. */
  pod?: boolean;
  privileged?: boolean;
}

const RUNTIME_METADATA_FIELDS = fields(`
  pod-name pod-id image-name image-id name metadata-name uid? namespace? mountlabel? created-at attempt? pod? privileged?
`);

/** The metadata string as CRI-O's json.Marshal writes it (field order, omitempty, escaping). */
export function marshalRuntimeContainerMetadata(m: RuntimeContainerMetadata): string {
  return goEscape(JSON.stringify(orderRecord({ ...m }, RUNTIME_METADATA_FIELDS)));
}

/** A container record as the API shows it (a copy). */
export interface Container {
  id: string;
  names: string[];
  /** The image it was created from ("" for none). */
  image: string;
  /** Its read-write layer. */
  layer: string;
  metadata: string | undefined;
  bigDataNames: string[];
  bigDataSizes: Record<string, number>;
  bigDataDigests: Record<string, string>;
  created: string | undefined;
  flags: Record<string, unknown>;
  volatile: boolean;
}

export interface CreateContainerRecord {
  id?: string;
  names: readonly string[];
  image: string;
  layer: string;
  metadata: string;
  flags: Record<string, unknown>;
}

interface Entry {
  rec: RawRecord;
  /** The records file it came from (containers.json or one of the volatile files). */
  file: string;
}

function toContainer(e: Entry, stable: string): Container {
  const rec = e.rec;
  return {
    id: rec.id as string,
    names: strList(rec, "names"),
    image: str(rec, "image") ?? "",
    layer: str(rec, "layer") ?? "",
    metadata: str(rec, "metadata"),
    bigDataNames: strList(rec, "big-data-names"),
    bigDataSizes: numMap(rec, "big-data-sizes"),
    bigDataDigests: strMap(rec, "big-data-digests"),
    created: str(rec, "created"),
    flags: { ...obj(rec, "flags") },
    volatile: e.file !== stable,
  };
}

export class ContainerStore extends JsonStore {
  readonly dir: string;
  readonly rundir: string;
  private entries: Entry[] = [];
  private byId = new Map<string, Entry>();
  private byName = new Map<string, Entry>();

  constructor(dir: string, rundir: string) {
    super(LockFile.get(join(dir, "containers.lock")));
    this.dir = dir;
    this.rundir = rundir;
  }

  private get stablePath(): string {
    return join(this.dir, "containers.json");
  }

  private files(): string[] {
    return [this.stablePath, join(this.dir, "volatile-containers.json"), join(this.rundir, "volatile-containers.json")];
  }

  protected watchedFiles(): string[] {
    return this.files();
  }

  protected async load(): Promise<void> {
    const entries: Entry[] = [];
    const byId = new Map<string, Entry>();
    for (const file of this.files()) {
      for (const rec of parseRecords(await readIfExists(file), file)) {
        if (byId.has(rec.id as string)) continue;
        const e = { rec, file };
        entries.push(e);
        byId.set(rec.id as string, e);
      }
    }
    const byName = new Map<string, Entry>();
    for (const e of entries) for (const name of strList(e.rec, "names")) byName.set(name, e);
    this.entries = entries;
    this.byId = byId;
    this.byName = byName;
  }

  /** <root>/overlay-containers/<id>: big data and userdata/. */
  dataDir(id: string): string {
    return join(this.dir, checkId(id, "container"));
  }

  /** <runroot>/overlay-containers/<id>. */
  runDir(id: string): string {
    return join(this.rundir, checkId(id, "container"));
  }

  // ---- queries; call inside read() or write() ----

  list(): Container[] {
    return this.entries.map((e) => toContainer(e, this.stablePath));
  }

  private lookupEntry(idOrName: string): Entry | undefined {
    const e = this.byId.get(idOrName) ?? this.byName.get(idOrName);
    if (e !== undefined) return e;
    const id = resolvePrefix(this.byId.keys(), idOrName, "container");
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** By ID, name or unique ID prefix. */
  get(idOrName: string): Container | undefined {
    const e = this.lookupEntry(idOrName);
    return e === undefined ? undefined : toContainer(e, this.stablePath);
  }

  /** Which container holds `name`, if any. */
  nameHolder(name: string): string | undefined {
    return this.byName.get(name)?.rec.id as string | undefined;
  }

  async bigData(idOrName: string, key: string): Promise<Uint8Array> {
    const e = this.lookupEntry(idOrName);
    if (e === undefined) throw new NotFoundError(`container ${idOrName} not found`);
    if (!strList(e.rec, "big-data-names").includes(key)) throw new NotFoundError(`container ${e.rec.id as string} has no big data item ${JSON.stringify(key)}`);
    return new Uint8Array(await readFile(join(this.dataDir(e.rec.id as string), bigDataFileName(key))));
  }

  // ---- changes; call inside write() ----

  /** Validates and reserves the ID and names (ErrDuplicateID / ErrDuplicateName). */
  checkNew(id: string, names: readonly string[]): void {
    checkId(id, "container");
    if (this.byId.has(id)) throw new AlreadyExistsError(`container ID ${id} is already in use`);
    for (const name of names) {
      const holder = this.byName.get(name);
      if (holder !== undefined) throw new AlreadyExistsError(`the container name ${JSON.stringify(name)} is already in use by ${holder.rec.id as string}`);
    }
  }

  /** A fresh random ID no container has. */
  newId(): string {
    for (;;) {
      const id = randomId();
      if (!this.byId.has(id)) return id;
    }
  }

  /** Adds the record and saves containers.json (containers.go create). */
  async create(opts: CreateContainerRecord & { id: string }): Promise<Container> {
    const names = dedupe(opts.names);
    this.checkNew(opts.id, names);
    const rec: RawRecord = {
      id: opts.id,
      names,
      image: opts.image,
      layer: opts.layer,
      metadata: opts.metadata,
      "big-data-names": [],
      "big-data-sizes": {},
      "big-data-digests": {},
      created: goTimeNow(),
      flags: { ...opts.flags },
    };
    const e: Entry = { rec, file: this.stablePath };
    this.entries = [...this.entries, e];
    this.byId.set(opts.id, e);
    for (const name of names) this.byName.set(name, e);
    try {
      await this.save();
    } catch (err) {
      this.forget(e);
      throw err;
    }
    return toContainer(e, this.stablePath);
  }

  /** Drops the record (and saves); its directories are the caller's to remove. */
  async delete(id: string): Promise<void> {
    const e = this.byId.get(id);
    if (e === undefined) throw new NotFoundError(`container ${id} not found`);
    this.forget(e);
    await this.save();
  }

  /** SetBigData: the item's file first, then the record naming it. */
  async setBigData(idOrName: string, key: string, data: Uint8Array): Promise<void> {
    const e = this.lookupEntry(idOrName);
    if (e === undefined) throw new NotFoundError(`container ${idOrName} not found`);
    if (key === "") throw new NotFoundError("can't set empty name for container big data item");
    const dir = this.dataDir(e.rec.id as string);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await atomicWriteFile(join(dir, bigDataFileName(key)), data, 0o600);
    const names = strList(e.rec, "big-data-names");
    e.rec["big-data-names"] = names.includes(key) ? names : [...names, key];
    e.rec["big-data-sizes"] = { ...numMap(e.rec, "big-data-sizes"), [key]: data.length };
    e.rec["big-data-digests"] = { ...strMap(e.rec, "big-data-digests"), [key]: sha256Digest(data) };
    await this.save();
  }

  /** Removes directories under dir/ and rundir/ named like container IDs that have no record. */
  async removeStrayDirs(): Promise<void> {
    for (const base of [this.dir, this.rundir]) {
      let names: string[];
      try {
        names = await readdir(base);
      } catch {
        continue;
      }
      for (const n of names) {
        if (/^[0-9a-f]{64}$/.test(n) && !this.byId.has(n)) await rm(join(base, n), { recursive: true, force: true });
      }
    }
  }

  private forget(e: Entry): void {
    this.entries = this.entries.filter((x) => x !== e);
    this.byId.delete(e.rec.id as string);
    for (const name of strList(e.rec, "names")) if (this.byName.get(name) === e) this.byName.delete(name);
  }

  private async save(): Promise<void> {
    const files: { path: string; records: RawRecord[]; spec: typeof CONTAINER_FIELDS; noSync?: boolean }[] = [];
    for (const file of this.files()) {
      const records = this.entries.filter((e) => e.file === file).map((e) => e.rec);
      if (file !== this.stablePath && records.length === 0 && (await readIfExists(file)) === "") continue;
      files.push({ path: file, records, spec: CONTAINER_FIELDS, noSync: file !== this.stablePath });
    }
    await this.saveFiles(files);
  }
}
