// The containers-storage store (store.go) over the overlay driver: one root and one runroot
// shared with podman, buildah and CRI-O. Locks are taken in upstream's order (storage.lock,
// then layers, images, containers) so that no two of us can deadlock.
import { existsSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { ContainerStore, MOUNT_LABEL_FLAG, PROCESS_LABEL_FLAG, type Container } from "./containers.ts";
import { diskUsage, type Usage } from "./disk-usage.ts";
import { ImageStore, type BigDataItem, type CreateImageOptions, type Image } from "./images.ts";
import { LayerStore, type CreateLayerOptions, type Layer, type Populate } from "./layers.ts";
import { LockFile } from "./lock.ts";
import { DRIVER_NAME, OverlayDriver, parseOverlayOptions, type MountOptions, type OverlayOptions } from "./overlay.ts";

export interface StoreOptions {
  /** Graph root, e.g. /var/lib/containers/storage. */
  root: string;
  /** Run root, e.g. /run/containers/storage. */
  runroot: string;
  /** "overlay" (or its alias "overlay2"); "" picks overlay. */
  driver: string;
  /** Driver options, e.g. "overlay.mountopt=nodev" (storage.conf / STORAGE_OPTS). */
  options?: readonly string[];
}

export interface FsUsage extends Usage {
  /** What CRI-O reports as the file system's mount point. */
  mountpoint: string;
}

export interface DiskUsage {
  /** Image layers and image metadata; CRI-O reports <root>/overlay-images as the mount point. */
  imageStore: FsUsage;
  /** Container read-write layers. */
  containerStore: FsUsage;
}

export interface CreateContainerOptions {
  /** The container ID; default: a random one. */
  id?: string;
  /** Names, unique among containers (AlreadyExistsError names the holder). */
  names?: string[];
  /** ID, name or digest of the image whose top layer the rootfs goes on; none: an empty rootfs. */
  imageId?: string;
  /** Opaque metadata (CRI-O: RuntimeContainerMetadata JSON). */
  metadata?: string;
  /** SELinux labels, recorded in flags as MountLabel/ProcessLabel ("" when SELinux is off). */
  mountLabel?: string;
  processLabel?: string;
  /** Extra flags to record. */
  flags?: Record<string, unknown>;
}

/**
 * Test hooks: awaited at the steps of createContainer (after the incomplete layer is saved,
 * after the container record is saved), so a test can kill a process exactly there.
 * @internal
 */
export const createContainerHooks: { afterStep?: (step: "layer" | "record", ids: { container: string; layer: string }) => Promise<void> } = {};

const OTHER_DRIVERS = ["vfs", "btrfs", "zfs", "aufs", "devicemapper"];

export class Store {
  readonly root: string;
  readonly runroot: string;
  readonly driverName = DRIVER_NAME;
  readonly driverOptions: OverlayOptions;
  private readonly driver: OverlayDriver;
  private readonly layerStore: LayerStore;
  private readonly imageStore: ImageStore;
  private readonly containerStore: ContainerStore;

  private constructor(root: string, runroot: string, driver: OverlayDriver, layers: LayerStore, images: ImageStore, containers: ContainerStore) {
    this.root = root;
    this.runroot = runroot;
    this.driver = driver;
    this.driverOptions = driver.options;
    this.layerStore = layers;
    this.imageStore = images;
    this.containerStore = containers;
  }

  /**
   * Opens (creating as needed) the store: the directories with upstream's modes, storage.lock
   * and userns.lock, the overlay driver (checked to work on this file system), then each
   * sub-store, deleting layers a crash left incomplete.
   */
  static async open(opts: StoreOptions): Promise<Store> {
    if (opts.root === "" || opts.runroot === "") throw new InvalidArgumentError("storage root and runroot must be set");
    const root = resolve(opts.root);
    const runroot = resolve(opts.runroot);
    const name = opts.driver === "overlay2" ? DRIVER_NAME : opts.driver;
    if (name === "") {
      for (const other of OTHER_DRIVERS) {
        if (existsSync(join(root, other)) && (await readdir(join(root, other))).length > 0) {
          throw new FailedPreconditionError(`storage at ${root} holds ${other} driver data; only the overlay driver is supported`);
        }
      }
    } else if (name !== DRIVER_NAME) {
      throw new InvalidArgumentError(`storage driver ${JSON.stringify(opts.driver)} is not supported: only "overlay" is`);
    }
    const options = parseOverlayOptions(opts.options ?? []);

    await mkdir(runroot, { recursive: true, mode: 0o700 });
    await mkdir(root, { recursive: true, mode: 0o700 });
    await mkdir(join(root, DRIVER_NAME), { recursive: true, mode: 0o700 });
    const graphLock = LockFile.get(join(root, "storage.lock"));
    LockFile.get(join(root, "userns.lock"));

    const driver = await graphLock.withWrite(() =>
      OverlayDriver.init(join(root, DRIVER_NAME), join(runroot, DRIVER_NAME), options),
    );
    const dirs = {
      images: join(root, `${DRIVER_NAME}-images`),
      containers: join(root, `${DRIVER_NAME}-containers`),
      runContainers: join(runroot, `${DRIVER_NAME}-containers`),
      layers: join(root, `${DRIVER_NAME}-layers`),
      runLayers: join(runroot, `${DRIVER_NAME}-layers`),
      locks: join(runroot, `${DRIVER_NAME}-locks`),
    };
    for (const d of Object.values(dirs)) await mkdir(d, { recursive: true, mode: 0o700 });

    const layers = new LayerStore(dirs.layers, dirs.runLayers, driver);
    const images = new ImageStore(dirs.images);
    const containers = new ContainerStore(dirs.containers, dirs.runContainers);
    // Upstream order: layers, images, containers.
    await layers.initialize();
    await images.initialize();
    await containers.initialize();
    const store = new Store(root, runroot, driver, layers, images, containers);
    await layers.write(() => containers.write(() => store.removeHalfContainers()));
    return store;
  }

  // ---- layers ----

  async layers(): Promise<Layer[]> {
    return this.layerStore.read(() => this.layerStore.list());
  }

  /** A layer by ID, name or unique ID prefix; undefined when absent. */
  async layer(idOrName: string): Promise<Layer | undefined> {
    return this.layerStore.read(() => this.layerStore.get(idOrName));
  }

  /** The first layer whose DiffID is `digest` (possibly with another parent: compare IDs). */
  async layerByUncompressedDigest(digest: string): Promise<Layer | undefined> {
    return this.layerStore.read(() => this.layerStore.byUncompressedDigest(digest)[0]);
  }

  /** The first layer created from the blob `digest`. */
  async layerByCompressedDigest(digest: string): Promise<Layer | undefined> {
    return this.layerStore.read(() => this.layerStore.byCompressedDigest(digest)[0]);
  }

  /**
   * Creates a read-only layer and fills it with `populate(diffDir)`, which must write the
   * unpacked content into diffDir (overlay whiteouts: 0/0 character devices and
   * trusted.overlay.opaque=y) and report the DiffID and size of the tar stream. Holds the
   * layer store's write lock meanwhile, as upstream's PutLayer does (other processes wait;
   * readers in this process keep reading). Without an `id`, the ID follows containers/image:
   * layerIdFor(parent, uncompressedDigest). If that layer already exists on the same parent,
   * it is returned and `populate` is not called.
   */
  async createLayer(opts: CreateLayerOptions, populate: Populate): Promise<Layer> {
    return this.layerStore.write(async () => {
      const containerLayers = await this.containerStore.read(() => new Set(this.containerStore.list().map((c) => c.layer)));
      return this.layerStore.create(opts, populate, (id) => containerLayers.has(id));
    });
  }

  /**
   * Deletes a layer that nothing uses: refused (FailedPreconditionError) while it has child
   * layers, is an image's top layer, is a container's layer, or is mounted.
   */
  async deleteLayer(idOrName: string): Promise<void> {
    await this.layerStore.write(async () => {
      const layer = this.layerStore.get(idOrName);
      if (layer === undefined) throw new NotFoundError(`layer ${idOrName} not found`);
      const children = this.layerStore.children(layer.id);
      if (children.length > 0) throw new FailedPreconditionError(`layer ${layer.id} is the parent of layer ${children[0] as string}`);
      const image = await this.imageStore.read(() =>
        this.imageStore.list().find((i) => i.topLayer === layer.id || i.mappedTopLayers.includes(layer.id)),
      );
      if (image !== undefined) throw new FailedPreconditionError(`layer ${layer.id} is used by image ${image.id}`);
      const container = await this.containerStore.read(() => this.containerStore.list().find((c) => c.layer === layer.id));
      if (container !== undefined) throw new FailedPreconditionError(`layer ${layer.id} is used by container ${container.id}`);
      if ((await this.layerStore.mountCounts()).has(layer.id)) throw new FailedPreconditionError(`layer ${layer.id} is mounted`);
      await this.layerStore.delete([layer.id]);
    });
  }

  /** Uncompressed size of a layer: the recorded diff-size, else what its diff/ holds. */
  async layerDiffSize(idOrName: string): Promise<number> {
    const layer = await this.layer(idOrName);
    if (layer === undefined) throw new NotFoundError(`layer ${idOrName} not found`);
    if (layer.uncompressedDigest !== undefined && layer.uncompressedSize !== undefined) return layer.uncompressedSize;
    return (await diskUsage([this.driver.diffPath(layer.id)])).bytes;
  }

  /** The directory holding a layer's files (read-only for image layers). */
  async layerDiffDir(idOrName: string): Promise<string> {
    const layer = await this.layer(idOrName);
    if (layer === undefined) throw new NotFoundError(`layer ${idOrName} not found`);
    return this.driver.diffPath(layer.id);
  }

  // ---- images ----

  async images(): Promise<Image[]> {
    return this.imageStore.read(() => this.imageStore.list());
  }

  /**
   * An image by full ID, name, digest (a manifest digest, or "sha256:<id>"), or unique ID
   * prefix; undefined when absent; InvalidArgumentError when a prefix is ambiguous.
   */
  async image(ref: string): Promise<Image | undefined> {
    return this.imageStore.read(() => this.imageStore.get(ref));
  }

  /** Images with `digest` among their manifest digests. */
  async imagesByDigest(digest: string): Promise<Image[]> {
    return this.imageStore.read(() => this.imageStore.byDigest(digest));
  }

  /**
   * Creates an image over an existing top layer, with its big data, atomically: either the whole
   * image is visible or nothing. `names` move here from any other image that had them. An image
   * with the same ID and top layer is updated instead (new big data, metadata and names).
   */
  async createImage(opts: CreateImageOptions, bigData: readonly BigDataItem[]): Promise<Image> {
    return this.layerStore.read(async () => {
      if (opts.topLayer !== undefined) {
        const top = this.layerStore.get(opts.topLayer);
        if (top === undefined) throw new NotFoundError(`layer ${opts.topLayer} not found`);
        opts = { ...opts, topLayer: top.id };
      }
      return this.imageStore.write(() => this.imageStore.create(opts, bigData));
    });
  }

  /** Adds names to an image; each leaves any other image that had it (AddNames). */
  async addNames(ref: string, names: readonly string[]): Promise<Image> {
    return this.imageStore.write(() => this.imageStore.updateNames(ref, names, "add"));
  }

  /** Removes names from an image (RemoveNames). */
  async removeNames(ref: string, names: readonly string[]): Promise<Image> {
    return this.imageStore.write(() => this.imageStore.updateNames(ref, names, "remove"));
  }

  /** Replaces an image's names (SetNames). */
  async setNames(ref: string, names: readonly string[]): Promise<Image> {
    return this.imageStore.write(() => this.imageStore.updateNames(ref, names, "set"));
  }

  /** One big-data item of an image (NotFoundError when the image or item is absent). */
  async imageBigData(ref: string, key: string): Promise<Uint8Array> {
    return this.imageStore.read(() => this.imageStore.bigData(ref, key));
  }

  /**
   * Deletes an image (DeleteImage). Refused while a container uses it. With deleteLayers, also
   * deletes its layers from the top down, stopping at the first one another image, a container
   * or another layer still uses. Returns the IDs of the deleted layers.
   */
  async deleteImage(ref: string, opts: { deleteLayers: boolean } = { deleteLayers: true }): Promise<{ id: string; layers: string[] }> {
    return this.layerStore.write(() =>
      this.imageStore.write(() =>
        this.containerStore.read(async () => {
          const image = this.imageStore.get(ref);
          if (image === undefined) throw new NotFoundError(`image ${ref} not found`);
          const containers = this.containerStore.list();
          const user = containers.find((c) => c.image === image.id);
          if (user !== undefined) throw new FailedPreconditionError(`image ${image.id} is in use by container ${user.id}`);
          const toRemove = opts.deleteLayers ? this.unusedLayers(image, containers) : [];
          await this.imageStore.delete(image.id);
          if (toRemove.length > 0) await this.layerStore.delete(toRemove);
          return { id: image.id, layers: toRemove };
        }),
      ),
    );
  }

  /** Layers of `image` no one else needs, top-most first (the walk in store.go DeleteImage). */
  private unusedLayers(image: Image, containers: Container[]): string[] {
    const otherTops = new Set<string>();
    for (const other of this.imageStore.list()) {
      if (other.id === image.id) continue;
      if (other.topLayer !== undefined) otherTops.add(other.topLayer);
      for (const l of other.mappedTopLayers) otherTops.add(l);
    }
    const containerLayers = new Set(containers.map((c) => c.layer));
    const remove: string[] = [...image.mappedTopLayers.filter((l) => this.layerStore.get(l) !== undefined)];
    const removing = new Set(remove);
    let layer = image.topLayer;
    while (layer !== undefined) {
      if (containerLayers.has(layer) || otherTops.has(layer)) break;
      const rec = this.layerStore.get(layer);
      if (rec === undefined) break;
      const check = layer === image.topLayer ? [layer, ...image.mappedTopLayers] : [layer];
      if (check.some((l) => this.layerStore.children(l).some((c) => !removing.has(c)))) break;
      remove.push(layer);
      removing.add(layer);
      layer = rec.parent;
    }
    return remove;
  }

  /** Sum of an image's big data and of its layers' diff sizes (c/image storage source size). */
  async imageSize(ref: string): Promise<number> {
    const image = await this.image(ref);
    if (image === undefined) throw new NotFoundError(`image ${ref} not found`);
    let size = Object.values(image.bigDataSizes).reduce((a, b) => a + b, 0);
    let layer = image.topLayer;
    while (layer !== undefined) {
      const l = await this.layer(layer);
      if (l === undefined) break;
      size += await this.layerDiffSize(l.id);
      layer = l.parent;
    }
    return size;
  }

  // ---- containers ----

  async containers(): Promise<Container[]> {
    return this.containerStore.read(() => this.containerStore.list());
  }

  /** A container by ID, name or unique ID prefix; undefined when absent. */
  async container(idOrName: string): Promise<Container | undefined> {
    return this.containerStore.read(() => this.containerStore.get(idOrName));
  }

  /**
   * Creates a container (store.go CreateContainer): a read-write layer (random ID, no names)
   * on the image's top layer, the record in containers.json, and its userdata directories
   * under <root>/overlay-containers/<id>/ and <runroot>/overlay-containers/<id>/.
   *
   * Crash safety: the layer is saved flagged incomplete, then the container record, and only
   * then is the flag cleared. A crash before the record leaves an incomplete layer that the next
   * writer (us or podman) deletes; a crash after it leaves a record whose layer is incomplete or
   * gone, which the next Store.open (or createContainer/deleteContainer) removes.
   */
  async createContainer(opts: CreateContainerOptions): Promise<Container> {
    const names = [...new Set(opts.names ?? [])];
    const mountLabel = opts.mountLabel ?? "";
    const processLabel = opts.processLabel ?? "";
    return this.layerStore.write(async () => {
      let imageId = "";
      let topLayer: string | undefined;
      if (opts.imageId !== undefined && opts.imageId !== "") {
        const ref = opts.imageId;
        const image = await this.imageStore.read(() => this.imageStore.get(ref));
        if (image === undefined) throw new NotFoundError(`image ${ref} not found`);
        imageId = image.id;
        topLayer = image.topLayer;
        if (topLayer !== undefined && this.layerStore.get(topLayer) === undefined) {
          throw new FailedPreconditionError(`top layer ${topLayer} of image ${image.id} is missing`);
        }
      }
      return this.containerStore.write(async () => {
        await this.removeHalfContainers();
        const id = opts.id ?? this.containerStore.newId();
        this.containerStore.checkNew(id, names);
        const layer = await this.layerStore.createWritable({ parent: topLayer, mountLabel });
        let created: Container | undefined;
        try {
          await createContainerHooks.afterStep?.("layer", { container: id, layer: layer.id });
          created = await this.containerStore.create({
            id,
            names,
            image: imageId,
            layer: layer.id,
            metadata: opts.metadata ?? "",
            flags: { ...(opts.flags ?? {}), [MOUNT_LABEL_FLAG]: mountLabel, [PROCESS_LABEL_FLAG]: processLabel },
          });
          await createContainerHooks.afterStep?.("record", { container: id, layer: layer.id });
          await this.layerStore.complete(layer.id);
          for (const d of [this.containerStore.dataDir(id), this.containerStore.runDir(id)]) {
            await mkdir(d, { recursive: true, mode: 0o700 });
            await mkdir(join(d, "userdata"), { recursive: true, mode: 0o700 });
          }
          return created;
        } catch (err) {
          await this.layerStore.delete([layer.id]).catch(() => {});
          if (created !== undefined) await this.containerStore.delete(id).catch(() => {});
          await rm(this.containerStore.dataDir(id), { recursive: true, force: true });
          await rm(this.containerStore.runDir(id), { recursive: true, force: true });
          throw err;
        }
      });
    });
  }

  /**
   * Deletes a container (store.go DeleteContainer): unmounts and deletes its layer, then the
   * record, then its directories. NotFoundError for an unknown container.
   */
  async deleteContainer(idOrName: string): Promise<void> {
    await this.layerStore.write(() =>
      this.containerStore.write(async () => {
        const c = this.containerStore.get(idOrName);
        if (c === undefined) throw new NotFoundError(`container ${idOrName} not found`);
        await this.removeContainer(c);
      }),
    );
  }

  /** Layer, then record, then directories; a crash in between leaves a half container for removeHalfContainers. */
  private async removeContainer(c: Container): Promise<void> {
    if (c.layer !== "" && this.layerStore.get(c.layer) !== undefined) {
      await this.layerStore.unmount(c.layer, true);
      if (this.layerStore.children(c.layer).length > 0) throw new FailedPreconditionError(`layer ${c.layer} of container ${c.id} has child layers`);
      await this.layerStore.delete([c.layer]);
    }
    await this.containerStore.delete(c.id);
    await rm(this.containerStore.dataDir(c.id), { recursive: true, force: true });
    await rm(this.containerStore.runDir(c.id), { recursive: true, force: true });
  }

  /**
   * With the layer and container write locks held (no one is between steps of a create or
   * delete then): removes container records whose layer is gone or incomplete, and container
   * directories without a record.
   */
  private async removeHalfContainers(): Promise<void> {
    for (const c of this.containerStore.list()) {
      if (this.layerStore.get(c.layer) === undefined) await this.removeContainer(c);
    }
    await this.containerStore.removeStrayDirs();
  }

  /**
   * Mounts a container's root file system (store.go Mount) and returns the merged path
   * <root>/overlay/<layer>/merged. Mounts are counted in mountpoints.json, shared with podman:
   * a second mount only raises the count. The mount label defaults to the container's.
   */
  async mount(idOrName: string, opts: MountOptions = {}): Promise<string> {
    return this.layerStore.write(async () => {
      const c = await this.containerStore.read(() => this.containerStore.get(idOrName));
      if (c === undefined) throw new NotFoundError(`container ${idOrName} not found`);
      const label = opts.mountLabel ?? (typeof c.flags[MOUNT_LABEL_FLAG] === "string" ? (c.flags[MOUNT_LABEL_FLAG] as string) : undefined);
      return this.layerStore.mount(c.layer, { ...opts, mountLabel: label === "" ? undefined : label });
    });
  }

  /**
   * Drops one mount of a container's root file system, unmounting it when the count reaches 0
   * (at once with `force`). Returns whether it is still mounted.
   */
  async unmount(idOrName: string, force = false): Promise<boolean> {
    return this.layerStore.write(async () => {
      const c = await this.containerStore.read(() => this.containerStore.get(idOrName));
      if (c === undefined) throw new NotFoundError(`container ${idOrName} not found`);
      return this.layerStore.unmount(c.layer, force);
    });
  }

  /** How many times a container's root file system is mounted (0 when it is not). */
  async mountCount(idOrName: string): Promise<number> {
    const c = await this.container(idOrName);
    if (c === undefined) throw new NotFoundError(`container ${idOrName} not found`);
    return (await this.layerStore.mountCounts()).get(c.layer) ?? 0;
  }

  /** <root>/overlay-containers/<id>/userdata, created if missing (ContainerDirectory). */
  async containerDirectory(idOrName: string): Promise<string> {
    return this.userdataDir(idOrName, (id) => this.containerStore.dataDir(id));
  }

  /** <runroot>/overlay-containers/<id>/userdata, created if missing (ContainerRunDirectory). */
  async containerRunDirectory(idOrName: string): Promise<string> {
    return this.userdataDir(idOrName, (id) => this.containerStore.runDir(id));
  }

  private async userdataDir(idOrName: string, dirOf: (id: string) => string): Promise<string> {
    const c = await this.container(idOrName);
    if (c === undefined) throw new NotFoundError(`container ${idOrName} not found`);
    const d = join(dirOf(c.id), "userdata");
    await mkdir(d, { recursive: true, mode: 0o700 });
    return d;
  }

  /** Stores a big-data item of a container (SetContainerBigData). */
  async setContainerBigData(idOrName: string, key: string, data: Uint8Array): Promise<void> {
    await this.containerStore.write(() => this.containerStore.setBigData(idOrName, key, data));
  }

  /** A big-data item of a container (NotFoundError when the container or item is absent). */
  async containerBigData(idOrName: string, key: string): Promise<Uint8Array> {
    return this.containerStore.read(() => this.containerStore.bigData(idOrName, key));
  }

  // ---- usage ----

  /**
   * Disk usage for ImageFsInfo. The image store counts image layers under <root>/overlay plus
   * the layer and image metadata; the container store counts container layers. Mounted
   * container root file systems are not descended into. (CRI-O 1.29+ reports the image file
   * system for both unless an imagestore is configured; the caller decides.)
   */
  async diskUsage(): Promise<DiskUsage> {
    const containerLayers = new Set((await this.containers()).map((c) => c.layer));
    const home = this.driver.home;
    const entries = await readdir(home);
    const seen = new Set<string>();
    const images = await diskUsage(
      [
        ...entries.filter((e) => !containerLayers.has(e)).map((e) => join(home, e)),
        this.imageStore.dir,
        this.layerStore.dir,
      ],
      seen,
    );
    const containers = await diskUsage(
      [...entries.filter((e) => containerLayers.has(e)).map((e) => join(home, e)), join(this.root, `${DRIVER_NAME}-containers`)],
      seen,
    );
    return {
      imageStore: { mountpoint: this.imageStore.dir, ...images },
      containerStore: { mountpoint: join(this.root, `${DRIVER_NAME}-containers`), ...containers },
    };
  }
}
