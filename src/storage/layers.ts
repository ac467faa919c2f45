// The layer store: <root>/overlay-layers/layers.json (+ volatile-layers.json), guarded by
// <root>/overlay-layers/layers.lock, with the overlay driver holding the contents. Mount counts
// live in <runroot>/overlay-layers/mountpoints.json under mountpoints.lock.
//
// Crash safety follows layers.go: a new layer's record is saved with flags.incomplete = true
// BEFORE its directory is created or filled, and the flag is cleared only when the content is
// complete; deletion sets the flag again before removing anything. Whoever next takes the lock
// for writing (this daemon or podman) deletes every incomplete layer it finds.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { checkDigest, checkId, dedupe, layerIdFor, randomId, resolvePrefix } from "./ids.ts";
import { atomicWriteFile } from "./atomic.ts";
import { JsonStore, readIfExists } from "./json-store.ts";
import { fields, goTimeNow, marshalRecords, num, numList, obj, parseRecords, str, strList, type RawRecord } from "./json.ts";
import { LockFile } from "./lock.ts";
import { isMountPoint } from "../sys/mount.ts";
import type { MountOptions, OverlayDriver } from "./overlay.ts";

/** Field order and omitempty of layers.go's Layer struct. */
const LAYER_FIELDS = fields(`
  id names? parent? metadata? mountlabel? created compressed-diff-digest? compressed-size?
  diff-digest? toc-digest? diff-size? compression? uidset? gidset? flags? uidmap? gidmap? big-data-names?
`);

/** layers.go layerMountPoint. */
const MOUNT_FIELDS = fields("id path count");

const INCOMPLETE = "incomplete";
const TAR_SPLIT_SUFFIX = ".tar-split.gz";

/** archive.Compression values recorded in "compression". */
export const Compression = { none: 0, bzip2: 1, gzip: 2, xz: 3, zstd: 4 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

/** A layer as the API shows it (a copy; the store keeps the raw record). */
export interface Layer {
  id: string;
  names: string[];
  parent: string | undefined;
  metadata: string | undefined;
  mountLabel: string | undefined;
  created: string | undefined;
  compressedDigest: string | undefined;
  compressedSize: number | undefined;
  uncompressedDigest: string | undefined;
  uncompressedSize: number | undefined;
  tocDigest: string | undefined;
  compression: number;
  uidset: number[];
  gidset: number[];
  flags: Record<string, unknown>;
  bigDataNames: string[];
  /** From volatile-layers.json (written without fsync). */
  volatile: boolean;
}

export interface CreateLayerOptions {
  /** The layer ID; default: layerIdFor(parent, uncompressedDigest), or random without a digest. */
  id?: string;
  /** ID or name of the parent layer. */
  parent?: string;
  names?: string[];
  /** Digest and size of the blob as fetched (compressed). Default: the diff digest and size. */
  compressedDigest?: string;
  compressedSize?: number;
  /** The expected DiffID; the populate result must match it. */
  uncompressedDigest?: string;
  /** How the blob was compressed (recorded as upstream does). */
  compression?: Compression;
  /** Extra flags to record. */
  flags?: Record<string, unknown>;
}

/** What the populate callback reports about the content it wrote. */
export interface PopulateResult {
  /** sha256 of the uncompressed tar stream (the DiffID). */
  diffDigest: string;
  /** Length of the uncompressed tar stream. */
  diffSize: number;
  /** UIDs and GIDs owning entries (whiteouts excluded), as upstream's tar logger collects. */
  uidset?: number[];
  gidset?: number[];
  /** The layer's tar-split metadata, gzip-compressed, if the unpacker produced it. */
  tarSplit?: Uint8Array;
}

export type Populate = (diffDir: string) => Promise<PopulateResult>;

interface Entry {
  rec: RawRecord;
  volatile: boolean;
}

function isIncomplete(rec: RawRecord): boolean {
  return obj(rec, "flags")[INCOMPLETE] === true;
}

export function toLayer(e: Entry): Layer {
  const r = e.rec;
  const flags = { ...obj(r, "flags") };
  return {
    id: r.id as string,
    names: strList(r, "names"),
    parent: str(r, "parent"),
    metadata: str(r, "metadata"),
    mountLabel: str(r, "mountlabel"),
    created: str(r, "created"),
    compressedDigest: str(r, "compressed-diff-digest"),
    compressedSize: num(r, "compressed-size"),
    uncompressedDigest: str(r, "diff-digest"),
    uncompressedSize: num(r, "diff-size"),
    tocDigest: str(r, "toc-digest"),
    compression: num(r, "compression") ?? 0,
    uidset: numList(r, "uidset"),
    gidset: numList(r, "gidset"),
    flags,
    bigDataNames: strList(r, "big-data-names"),
    volatile: e.volatile,
  };
}

export class LayerStore extends JsonStore {
  readonly dir: string;
  readonly rundir: string;
  private readonly driver: OverlayDriver;
  private readonly mountsLock: LockFile;
  private entries: Entry[] = [];
  private byId = new Map<string, Entry>();
  private byName = new Map<string, Entry>();

  constructor(dir: string, rundir: string, driver: OverlayDriver) {
    super(LockFile.get(join(dir, "layers.lock")));
    this.dir = dir;
    this.rundir = rundir;
    this.driver = driver;
    this.mountsLock = LockFile.get(join(rundir, "mountpoints.lock"));
  }

  private get stablePath(): string {
    return join(this.dir, "layers.json");
  }

  private get volatilePath(): string {
    return join(this.dir, "volatile-layers.json");
  }

  protected watchedFiles(): string[] {
    return [this.stablePath, this.volatilePath];
  }

  protected async load(): Promise<void> {
    const entries: Entry[] = [];
    const byId = new Map<string, Entry>();
    for (const [path, volatile] of [[this.stablePath, false], [this.volatilePath, true]] as const) {
      for (const rec of parseRecords(await readIfExists(path), path)) {
        if (byId.has(rec.id as string)) continue; // duplicated across files: keep the first
        const e = { rec, volatile };
        entries.push(e);
        byId.set(rec.id as string, e);
      }
    }
    const byName = new Map<string, Entry>();
    for (const e of entries) {
      for (const name of strList(e.rec, "names")) {
        const other = byName.get(name);
        if (other !== undefined) other.rec.names = strList(other.rec, "names").filter((n) => n !== name);
        byName.set(name, e);
      }
    }
    this.entries = entries;
    this.byId = byId;
    this.byName = byName;
  }

  /** With the write lock: delete layers a crashed writer left incomplete (layers.go load). */
  protected override async repair(): Promise<void> {
    const stale = this.entries.filter((e) => isIncomplete(e.rec));
    if (stale.length > 0) await this.removeEntries(stale);
  }

  // ---- queries; call inside read() or write() ----

  /** Complete layers, in creation order. */
  list(): Layer[] {
    return this.entries.filter((e) => !isIncomplete(e.rec)).map(toLayer);
  }

  /** `names` de-duplicated; AlreadyExistsError when another layer holds one of them. */
  private freeNames(names: readonly string[]): string[] {
    const out = dedupe([...names]);
    for (const name of out) {
      if (this.byName.has(name)) throw new AlreadyExistsError(`layer name ${JSON.stringify(name)} is already in use`);
    }
    return out;
  }

  private lookupEntry(idOrName: string): Entry | undefined {
    let e = this.byId.get(idOrName) ?? this.byName.get(idOrName);
    if (e === undefined) {
      const id = resolvePrefix(this.byId.keys(), idOrName, "layer");
      if (id !== undefined) e = this.byId.get(id);
    }
    return e !== undefined && !isIncomplete(e.rec) ? e : undefined;
  }

  get(idOrName: string): Layer | undefined {
    const e = this.lookupEntry(idOrName);
    return e === undefined ? undefined : toLayer(e);
  }

  byUncompressedDigest(d: string): Layer[] {
    return this.list().filter((l) => l.uncompressedDigest === d);
  }

  byCompressedDigest(d: string): Layer[] {
    return this.list().filter((l) => l.compressedDigest === d);
  }

  /** IDs of layers whose parent is `id` (complete or not). */
  children(id: string): string[] {
    return this.entries.filter((e) => e.rec.parent === id).map((e) => e.rec.id as string);
  }

  /** Mount counts from <runroot>/overlay-layers/mountpoints.json. */
  async mountCounts(): Promise<Map<string, number>> {
    return this.mountsLock.withRead(async () => {
      const out = new Map<string, number>();
      const text = await readIfExists(join(this.rundir, "mountpoints.json"));
      if (text.trim() === "") return out;
      const data: unknown = JSON.parse(text);
      if (!Array.isArray(data)) return out;
      for (const m of data as RawRecord[]) {
        const count = num(m, "count") ?? 0;
        if (typeof m.id === "string" && str(m, "path") !== undefined && count > 0) out.set(m.id, count);
      }
      return out;
    });
  }

  private get mountsPath(): string {
    return join(this.rundir, "mountpoints.json");
  }

  /** The raw mountpoints.json records ({id, path, count}); others' entries are kept as they are. */
  private async readMounts(): Promise<RawRecord[]> {
    const text = await readIfExists(this.mountsPath);
    if (text.trim() === "") return [];
    const data: unknown = JSON.parse(text);
    if (!Array.isArray(data)) return [];
    return (data as unknown[]).filter((m): m is RawRecord => m !== null && typeof m === "object" && typeof (m as RawRecord).id === "string");
  }

  /** saveMounts: records the write on mountpoints.lock, then replaces the file. */
  private async writeMounts(mounts: RawRecord[]): Promise<void> {
    this.mountsLock.recordWrite();
    const live = mounts.filter((m) => str(m, "path") !== undefined && (num(m, "count") ?? 0) > 0);
    await atomicWriteFile(this.mountsPath, marshalRecords(live, MOUNT_FIELDS), 0o600, { noSync: true });
  }

  /**
   * Mounts a layer (layers.go Mount), counting mounts in mountpoints.json so that podman and
   * this daemon share one count: an existing live mount only gets its count raised; a count
   * whose mount vanished (the kernel or someone else unmounted it) starts over at 1.
   * Call inside write().
   */
  async mount(id: string, options: MountOptions): Promise<string> {
    const e = this.lookupEntry(id);
    if (e === undefined) throw new NotFoundError(`layer ${id} not found`);
    const layerId = e.rec.id as string;
    return this.mountsLock.withWrite(async () => {
      const mounts = await this.readMounts();
      const m = mounts.find((r) => r.id === layerId);
      const path = m === undefined ? undefined : str(m, "path");
      if (m !== undefined && path !== undefined && (num(m, "count") ?? 0) > 0 && isMountPoint(path)) {
        m.count = (num(m, "count") ?? 0) + 1;
        await this.writeMounts(mounts);
        return path;
      }
      const label = options.mountLabel ?? str(e.rec, "mountlabel");
      const merged = await this.driver.get(layerId, { ...options, mountLabel: label });
      try {
        if (m !== undefined) {
          m.path = merged;
          m.count = 1;
        } else {
          mounts.push({ id: layerId, path: merged, count: 1 });
        }
        await this.writeMounts(mounts);
      } catch (err) {
        this.driver.put(layerId);
        throw err;
      }
      return merged;
    });
  }

  /**
   * Drops one mount of a layer, unmounting it when the count reaches 0 (or at once with
   * `force`). Returns whether it is still mounted. Call inside write().
   */
  async unmount(id: string, force: boolean): Promise<boolean> {
    const e = this.byId.get(id) ?? this.lookupEntry(id);
    if (e === undefined) throw new NotFoundError(`layer ${id} not found`);
    const layerId = e.rec.id as string;
    return this.mountsLock.withWrite(async () => {
      const mounts = await this.readMounts();
      const m = mounts.find((r) => r.id === layerId);
      const count = m === undefined ? 0 : (num(m, "count") ?? 0);
      if (!force && count > 1 && m !== undefined) {
        m.count = count - 1;
        await this.writeMounts(mounts);
        return true;
      }
      this.driver.put(layerId);
      if (m !== undefined) await this.writeMounts(mounts.filter((r) => r !== m));
      return false;
    });
  }

  /**
   * Creates an empty read-write layer for a container (layers.go create with writeable=true),
   * left flagged incomplete until complete() is called: a crash in between leaves a layer the
   * next writer deletes. Call inside write().
   */
  async createWritable(opts: { id?: string; parent?: string; mountLabel?: string; names?: string[] }): Promise<Layer> {
    let parent: string | undefined;
    if (opts.parent !== undefined && opts.parent !== "") {
      const p = this.lookupEntry(opts.parent);
      if (p === undefined) throw new NotFoundError(`parent layer ${opts.parent} not found`);
      parent = p.rec.id as string;
    }
    const id = checkId(opts.id ?? randomId(), "layer");
    if (this.byId.has(id)) throw new AlreadyExistsError(`layer ${id} already exists`);
    const names = this.freeNames(opts.names ?? []);
    const rec: RawRecord = {
      id,
      names,
      parent,
      mountlabel: opts.mountLabel,
      created: goTimeNow(),
      flags: { [INCOMPLETE]: true },
    };
    const entry: Entry = { rec, volatile: false };
    this.entries = [...this.entries, entry];
    this.byId.set(id, entry);
    for (const name of names) this.byName.set(name, entry);
    try {
      await this.save();
      await this.driver.create(id, parent);
    } catch (err) {
      await this.removeEntries([entry]).catch(() => {});
      throw err;
    }
    return toLayer(entry);
  }

  /** Clears the incomplete flag of a layer made by createWritable. Call inside write(). */
  async complete(id: string): Promise<void> {
    const e = this.byId.get(id);
    if (e === undefined) throw new NotFoundError(`layer ${id} not found`);
    const flags = { ...obj(e.rec, "flags") };
    delete flags[INCOMPLETE];
    e.rec.flags = flags;
    await this.save();
  }

  tarSplitPath(id: string): string {
    return join(this.dir, `${id}${TAR_SPLIT_SUFFIX}`);
  }

  // ---- changes; call inside write() ----

  /**
   * Creates a layer (layers.go create + applyDiff): the record is saved as incomplete, the
   * driver directories are made, `populate` fills diff/, then the record is completed. On any
   * failure everything is removed again. An existing complete layer with the same ID and parent
   * is returned as is, without calling `populate` (what containers/image does on ErrDuplicateID).
   */
  async create(opts: CreateLayerOptions, populate: Populate, isContainerLayer: (id: string) => boolean): Promise<Layer> {
    let parent: string | undefined;
    if (opts.parent !== undefined && opts.parent !== "") {
      const p = this.lookupEntry(opts.parent);
      if (p === undefined) throw new NotFoundError(`parent layer ${opts.parent} not found`);
      parent = p.rec.id as string;
      if (isContainerLayer(parent)) throw new FailedPreconditionError(`parent layer ${parent} is a container's layer`);
    }
    if (opts.uncompressedDigest !== undefined) checkDigest(opts.uncompressedDigest, "uncompressed digest");
    if (opts.compressedDigest !== undefined) checkDigest(opts.compressedDigest, "compressed digest");
    const id = checkId(
      opts.id ?? (opts.uncompressedDigest !== undefined ? layerIdFor(parent, opts.uncompressedDigest) : randomId()),
      "layer",
    );
    const existing = this.byId.get(id);
    if (existing !== undefined && !isIncomplete(existing.rec)) {
      if (str(existing.rec, "parent") === parent) return toLayer(existing);
      throw new AlreadyExistsError(`layer ${id} already exists with a different parent`);
    }
    if (existing !== undefined) await this.removeEntries([existing]);
    const names = this.freeNames(opts.names ?? []);

    const rec: RawRecord = {
      id,
      names,
      parent,
      created: goTimeNow(),
      flags: { ...(opts.flags ?? {}), [INCOMPLETE]: true },
    };
    const entry: Entry = { rec, volatile: false };
    this.entries = [...this.entries, entry];
    this.byId.set(id, entry);
    for (const name of names) this.byName.set(name, entry);

    try {
      await this.save();
      await this.driver.create(id, parent);
      const result = await populate(this.driver.diffPath(id));
      checkDigest(result.diffDigest, "populated diff digest");
      if (opts.uncompressedDigest !== undefined && result.diffDigest !== opts.uncompressedDigest) {
        throw new InvalidArgumentError(
          `layer content has diff ID ${result.diffDigest}, expected ${opts.uncompressedDigest}`,
        );
      }
      if (!Number.isSafeInteger(result.diffSize) || result.diffSize < 0) {
        throw new InvalidArgumentError(`invalid diff size ${result.diffSize}`);
      }
      if (result.tarSplit !== undefined) {
        await atomicWriteFile(this.tarSplitPath(id), result.tarSplit, 0o600);
      }
      rec["compressed-diff-digest"] = opts.compressedDigest ?? result.diffDigest;
      rec["compressed-size"] = opts.compressedSize ?? result.diffSize;
      rec["diff-digest"] = result.diffDigest;
      rec["diff-size"] = result.diffSize;
      rec.compression = opts.compression ?? Compression.none;
      rec.uidset = sortedUnique(result.uidset ?? []);
      rec.gidset = sortedUnique(result.gidset ?? []);
      const flags = { ...obj(rec, "flags") };
      delete flags[INCOMPLETE];
      rec.flags = flags;
      await this.save();
      return toLayer(entry);
    } catch (err) {
      await this.removeEntries([entry]).catch(() => {});
      throw err;
    }
  }

  /** Deletes layers by ID, top-most first. The caller has checked they are unused. */
  async delete(ids: readonly string[]): Promise<void> {
    const entries = ids.map((id) => {
      const e = this.byId.get(id);
      if (e === undefined) throw new NotFoundError(`layer ${id} not found`);
      return e;
    });
    await this.removeEntries(entries);
  }

  /** Marks incomplete, removes the contents, then drops the records (deleteInternal). */
  private async removeEntries(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return;
    let marked = false;
    for (const e of entries) {
      if (!isIncomplete(e.rec)) {
        e.rec.flags = { ...obj(e.rec, "flags"), [INCOMPLETE]: true };
        marked = true;
      }
    }
    if (marked) await this.save();
    const ids = new Set(entries.map((e) => e.rec.id as string));
    await this.mountsLock.withWrite(async () => {
      const mounts = await this.readMounts();
      if (mounts.some((m) => ids.has(m.id as string))) await this.writeMounts(mounts.filter((m) => !ids.has(m.id as string)));
    });
    for (const e of entries) {
      const id = e.rec.id as string;
      await this.driver.remove(id);
      await rm(this.tarSplitPath(id), { force: true });
      await rm(join(this.dir, id), { recursive: true, force: true });
    }
    const gone = new Set(entries);
    this.entries = this.entries.filter((e) => !gone.has(e));
    for (const e of entries) {
      const id = e.rec.id as string;
      this.byId.delete(id);
      for (const name of strList(e.rec, "names")) if (this.byName.get(name) === e) this.byName.delete(name);
    }
    await this.save();
  }

  private async save(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const stable = this.entries.filter((e) => !e.volatile).map((e) => e.rec);
    const volatile = this.entries.filter((e) => e.volatile).map((e) => e.rec);
    const files = [{ path: this.stablePath, records: stable, spec: LAYER_FIELDS }];
    // Rewrite volatile-layers.json only when it exists or has content (we never add to it).
    if (volatile.length > 0 || (await readIfExists(this.volatilePath)) !== "") {
      files.push({ path: this.volatilePath, records: volatile, spec: LAYER_FIELDS });
    }
    await this.saveFiles(files.map((f) => ({ ...f, noSync: f.path === this.volatilePath })));
  }
}

function sortedUnique(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
