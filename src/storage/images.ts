// The image store: <root>/overlay-images/images.json guarded by images.lock; each image's big
// data items (manifests, config, signatures) are files in <root>/overlay-images/<id>/ named by
// bigDataFileName(key). The image's "digest" and its list of digests (kept in memory only, as
// upstream's json:"-" field) come from the "manifest*" big-data digests (recomputeDigests).
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { atomicWriteFile } from "./atomic.ts";
import { applyNameOperation, bigDataFileName, checkDigest, checkId, dedupe, isDigest, isManifestKey, resolvePrefix, sha256Digest, type NameOperation } from "./ids.ts";
import { JsonStore, readIfExists } from "./json-store.ts";
import { fields, normalizeTime, numMap, obj, parseRecords, str, strList, strMap, type RawRecord } from "./json.ts";
import { LockFile } from "./lock.ts";

/** Field order and omitempty of images.go's Image struct ("digests" is never serialized). */
const IMAGE_FIELDS = fields(`
  id digest? names? names-history? layer? mapped-layers? metadata? big-data-names? big-data-sizes?
  big-data-digests? created flags?
`);

/** An image as the API shows it (a copy). */
export interface Image {
  id: string;
  /** The digest the image was pulled by, else its first manifest digest. */
  digest: string | undefined;
  /** Every digest identifying the image: `digest` and the digests of its manifest big data. */
  digests: string[];
  names: string[];
  namesHistory: string[];
  topLayer: string | undefined;
  mappedTopLayers: string[];
  metadata: string | undefined;
  bigDataNames: string[];
  bigDataSizes: Record<string, number>;
  bigDataDigests: Record<string, string>;
  created: string | undefined;
  flags: Record<string, unknown>;
}

export interface BigDataItem {
  key: string;
  data: Uint8Array;
  /** Defaults to the sha256 of `data` (right for every key except signed schema1 manifests). */
  digest?: string;
}

export interface CreateImageOptions {
  /** The image ID: imageIdFor(config digest) for images pulled by containers/image. */
  id: string;
  /** Names (normalized references); each moves here from any other image that had it. */
  names?: string[];
  /** ID of the image's top layer. */
  topLayer?: string;
  /** Creation time (the config's "created"); default now. */
  created?: string | Date;
  /** The JSON metadata containers/image keeps (signature sizes). */
  metadata?: string;
  /** The digest to find the image by (the pulled manifest's, or the manifest list's). */
  digest?: string;
  namesHistory?: string[];
  flags?: Record<string, unknown>;
}

/** recomputeDigests: `digest` first, then manifest big-data digests, deduplicated. */
function digestsOf(rec: RawRecord): { digest: string | undefined; digests: string[] } {
  const out: string[] = [];
  const fixed = str(rec, "digest");
  if (fixed !== undefined && isDigest(fixed)) out.push(fixed);
  const bd = strMap(rec, "big-data-digests");
  const keys = strList(rec, "big-data-names").filter((k) => isManifestKey(k) && bd[k] !== undefined);
  // The plain "manifest" item is the image's own manifest: prefer it when no digest is fixed.
  keys.sort((a, b) => (a === "manifest" ? -1 : b === "manifest" ? 1 : 0));
  for (const k of keys) {
    const d = bd[k] as string;
    if (isDigest(d) && !out.includes(d)) out.push(d);
  }
  return { digest: fixed ?? out[0], digests: out };
}

export function toImage(rec: RawRecord): Image {
  const { digest, digests } = digestsOf(rec);
  return {
    id: rec.id as string,
    digest,
    digests,
    names: strList(rec, "names"),
    namesHistory: strList(rec, "names-history"),
    topLayer: str(rec, "layer"),
    mappedTopLayers: strList(rec, "mapped-layers"),
    metadata: str(rec, "metadata"),
    bigDataNames: strList(rec, "big-data-names"),
    bigDataSizes: numMap(rec, "big-data-sizes"),
    bigDataDigests: strMap(rec, "big-data-digests"),
    created: str(rec, "created"),
    flags: { ...obj(rec, "flags") },
  };
}

export class ImageStore extends JsonStore {
  readonly dir: string;
  private records: RawRecord[] = [];
  private byId = new Map<string, RawRecord>();
  private byName = new Map<string, RawRecord>();

  constructor(dir: string) {
    super(LockFile.get(join(dir, "images.lock")));
    this.dir = dir;
  }

  private get path(): string {
    return join(this.dir, "images.json");
  }

  protected watchedFiles(): string[] {
    return [this.path];
  }

  protected async load(): Promise<void> {
    const records = parseRecords(await readIfExists(this.path), this.path);
    const byId = new Map<string, RawRecord>();
    const byName = new Map<string, RawRecord>();
    for (const rec of records) {
      byId.set(rec.id as string, rec);
      for (const name of strList(rec, "names")) {
        const other = byName.get(name);
        if (other !== undefined && other !== rec) other.names = strList(other, "names").filter((n) => n !== name);
        byName.set(name, rec);
      }
    }
    this.records = records;
    this.byId = byId;
    this.byName = byName;
  }

  // ---- queries; call inside read() or write() ----

  list(): Image[] {
    return this.records.map(toImage);
  }

  private lookup(ref: string): RawRecord | undefined {
    const direct = this.byId.get(ref) ?? this.byName.get(ref);
    if (direct !== undefined) return direct;
    if (isDigest(ref)) {
      for (const rec of this.records) if (digestsOf(rec).digests.includes(ref)) return rec;
      // "sha256:<image id>": the config digest, which is the image ID.
      const byConfig = this.byId.get(ref.slice("sha256:".length));
      if (byConfig !== undefined) return byConfig;
    }
    const id = resolvePrefix(this.byId.keys(), ref, "image");
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** By full ID, name, digest (manifest digest or "sha256:<id>"), or unique ID prefix. */
  get(ref: string): Image | undefined {
    const rec = this.lookup(ref);
    return rec === undefined ? undefined : toImage(rec);
  }

  /** Images whose digests include `digest`. */
  byDigest(digest: string): Image[] {
    return this.records.filter((r) => digestsOf(r).digests.includes(digest)).map(toImage);
  }

  bigDataPath(id: string, key: string): string {
    return join(this.dir, id, bigDataFileName(key));
  }

  async bigData(ref: string, key: string): Promise<Uint8Array> {
    if (key === "") throw new InvalidArgumentError("big data key must not be empty");
    const rec = this.lookup(ref);
    if (rec === undefined) throw new NotFoundError(`image ${ref} not found`);
    try {
      return new Uint8Array(await readFile(this.bigDataPath(rec.id as string, key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`image ${rec.id as string} has no ${JSON.stringify(key)} data`);
      throw err;
    }
  }

  // ---- changes; call inside write() ----

  /**
   * Creates the image, or, when an image with this ID and top layer exists, replaces its big
   * data and metadata and adds the names (what containers/image does on ErrDuplicateID).
   * Atomic: the big-data files are written first, then one save of images.json makes the whole
   * image visible; a crash before that leaves only an unreferenced directory, removed on the
   * next attempt.
   */
  async create(opts: CreateImageOptions, bigData: readonly BigDataItem[]): Promise<Image> {
    const id = checkId(opts.id, "image");
    if (opts.digest !== undefined) checkDigest(opts.digest, "image digest");
    const keys = new Set<string>();
    for (const item of bigData) {
      if (item.key === "") throw new InvalidArgumentError("big data key must not be empty");
      if (keys.has(item.key)) throw new InvalidArgumentError(`big data key ${JSON.stringify(item.key)} given twice`);
      keys.add(item.key);
      if (item.digest !== undefined) checkDigest(item.digest, `digest of ${item.key}`);
    }
    const existing = this.byId.get(id);
    if (existing !== undefined && str(existing, "layer") !== opts.topLayer) {
      throw new AlreadyExistsError(`image ${id} already exists with a different top layer`);
    }

    const dir = join(this.dir, id);
    if (existing === undefined) await rm(dir, { recursive: true, force: true }); // crash leftover
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const rec: RawRecord = existing !== undefined ? structuredClone(existing) : {
      id,
      digest: opts.digest,
      "names-history": opts.namesHistory ?? [],
      layer: opts.topLayer,
      metadata: opts.metadata,
      "big-data-names": [],
      "big-data-sizes": {},
      "big-data-digests": {},
      created: normalizeTime(opts.created),
      flags: opts.flags ?? {},
    };
    if (existing !== undefined) {
      if (opts.digest !== undefined) rec.digest = opts.digest;
      if (opts.metadata !== undefined && opts.metadata !== "") rec.metadata = opts.metadata;
    }
    const names = strList(rec, "big-data-names");
    const sizes = numMap(rec, "big-data-sizes");
    const digests = strMap(rec, "big-data-digests");
    try {
      for (const item of bigData) {
        await atomicWriteFile(this.bigDataPath(id, item.key), item.data, 0o600);
        sizes[item.key] = item.data.length;
        digests[item.key] = item.digest ?? sha256Digest(item.data);
        if (!names.includes(item.key)) names.push(item.key);
      }
    } catch (err) {
      if (existing === undefined) await rm(dir, { recursive: true, force: true });
      throw err;
    }
    rec["big-data-names"] = names;
    rec["big-data-sizes"] = sizes;
    rec["big-data-digests"] = digests;
    // recomputeDigests sets the fixed digest from the manifests when none was given, and it is
    // saved that way.
    if (str(rec, "digest") === undefined) rec.digest = digestsOf(rec).digest;

    const before = this.snapshot();
    if (existing === undefined) {
      rec.names = [];
      this.records = [...this.records, rec];
    } else {
      this.records = this.records.map((r) => (r === existing ? rec : r));
    }
    this.byId.set(id, rec);
    this.reindexNames();
    this.updateNamesOf(rec, opts.names ?? [], "add");
    try {
      await this.save();
    } catch (err) {
      this.restore(before);
      if (existing === undefined) await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return toImage(rec);
  }

  /** Adds, removes or sets names (updateNames); an added name leaves any other image. */
  async updateNames(ref: string, names: readonly string[], op: NameOperation): Promise<Image> {
    const rec = this.lookup(ref);
    if (rec === undefined) throw new NotFoundError(`image ${ref} not found`);
    const before = this.snapshot();
    this.updateNamesOf(rec, dedupe(names), op);
    try {
      await this.save();
    } catch (err) {
      this.restore(before);
      throw err;
    }
    return toImage(rec);
  }

  /** Removes the record and the big-data directory (images.go Delete). */
  async delete(id: string): Promise<void> {
    const rec = this.byId.get(id);
    if (rec === undefined) throw new NotFoundError(`image ${id} not found`);
    const before = this.snapshot();
    this.records = this.records.filter((r) => r !== rec);
    this.byId.delete(id);
    this.reindexNames();
    try {
      await this.save();
    } catch (err) {
      this.restore(before);
      throw err;
    }
    await rm(join(this.dir, id), { recursive: true, force: true });
  }

  private updateNamesOf(rec: RawRecord, names: readonly string[], op: NameOperation): void {
    const oldNames = strList(rec, "names");
    const result = applyNameOperation(oldNames, names, op);
    for (const name of oldNames) this.byName.delete(name);
    let history = strList(rec, "names-history");
    for (const name of result) {
      const other = this.byName.get(name);
      if (other !== undefined && other !== rec) other.names = strList(other, "names").filter((n) => n !== name);
      this.byName.set(name, rec);
      history = dedupe([name, ...history]); // addNameToHistory, for every resulting name
    }
    rec.names = result;
    rec["names-history"] = history;
  }

  private reindexNames(): void {
    this.byName = new Map();
    for (const rec of this.records) for (const name of strList(rec, "names")) this.byName.set(name, rec);
  }

  private snapshot(): RawRecord[] {
    return this.records.map((r) => structuredClone(r));
  }

  private restore(records: RawRecord[]): void {
    this.records = records;
    this.byId = new Map(records.map((r) => [r.id as string, r]));
    this.reindexNames();
  }

  private async save(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.saveFiles([{ path: this.path, records: this.records, spec: IMAGE_FIELDS }]);
  }
}
