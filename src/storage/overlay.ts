// The overlay graph driver's on-disk layout (drivers/overlay/overlay.go), for read-only image
// layers:
//
//   <root>/overlay/<id>/diff     the layer's files (mode 0555, or the parent's diff mode)
//   <root>/overlay/<id>/link     26-char short name (base32 of random bytes), mode 0644
//   <root>/overlay/<id>/lower    "l/<parent short>:l/<grandparent short>:...", absent for base layers
//   <root>/overlay/<id>/empty    base layers only: the dummy lower dir a mount uses
//   <root>/overlay/<id>/work, merged   0700, for mounting
//   <root>/overlay/l/<short>  -> ../<id>/diff
//
// Init also checks, once per boot (cached in <runroot>/overlay/overlay-true|false as podman
// caches it), that native overlay works on the backing file system: d_type support, a test
// mount with two lowers and a character-device whiteout.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import {
  FS_MAGIC,
  fsName,
  isMountPoint,
  mknod,
  mount,
  MNT_DETACH,
  MS_BIND,
  MS_PRIVATE,
  pageSize,
  parseMountOptions,
  S_IFCHR,
  statfsType,
  supportsDType,
  umount2,
} from "../sys/mount.ts";

export const DRIVER_NAME = "overlay";
const LINK_DIR = "l";
const LOWER_FILE = "lower";
const ID_LENGTH = 26;
const DEFAULT_DIFF_PERMS = 0o555;
const MAX_DEPTH = 500;

/** Parsed overlay driver options (storage.conf [storage.options.overlay], STORAGE_OPTS). */
export interface OverlayOptions {
  mountOptions: string;
  mountProgram: string;
  skipMountHome: boolean;
  ignoreChownErrors: boolean;
  forceMask: number | undefined;
  size: string;
  inodes: string;
}

function parseBool(key: string, v: string): boolean {
  // strconv.ParseBool
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw new InvalidArgumentError(`overlay: invalid boolean ${JSON.stringify(v)} for ${key}`);
}

/**
 * Parses driver options as overlay's parseOptions does: "overlay." / "overlay2." / "." prefixes
 * are stripped, keys are case-insensitive, unknown keys are an error. Options this
 * implementation cannot honour (additional image or layer stores, composefs) are refused with a
 * clear error rather than ignored.
 */
export function parseOverlayOptions(options: readonly string[]): OverlayOptions {
  const o: OverlayOptions = {
    mountOptions: "",
    mountProgram: "",
    skipMountHome: false,
    ignoreChownErrors: false,
    forceMask: undefined,
    size: "",
    inodes: "",
  };
  for (const option of options) {
    const eq = option.indexOf("=");
    if (eq < 0) throw new InvalidArgumentError(`unable to parse key/value option: ${option}`);
    const key = option.slice(0, eq);
    const val = option.slice(eq + 1);
    const k = key.toLowerCase().replace(/^overlay\./, "").replace(/^overlay2\./, "").replace(/^\./, "");
    switch (k) {
      case "override_kernel_check":
        break;
      case "mountopt":
        o.mountOptions = val;
        break;
      case "size":
        o.size = val;
        break;
      case "inodes":
        o.inodes = val;
        break;
      case "mount_program":
        o.mountProgram = val;
        break;
      case "skip_mount_home":
        o.skipMountHome = parseBool(key, val);
        break;
      case "ignore_chown_errors":
        o.ignoreChownErrors = parseBool(key, val);
        break;
      case "force_mask": {
        const mask = val === "shared" ? 0o755 : val === "private" ? 0o700 : Number.parseInt(val, 8);
        if (!Number.isInteger(mask) || mask < 0 || mask > 0o7777) throw new InvalidArgumentError(`overlay: invalid force_mask ${JSON.stringify(val)}`);
        o.forceMask = mask;
        break;
      }
      case "use_composefs":
        if (parseBool(key, val)) throw new InvalidArgumentError("overlay: use_composefs is not supported by this runtime");
        break;
      case "imagestore":
      case "additionalimagestore":
      case "additionallayerstore":
        if (val !== "") throw new InvalidArgumentError(`overlay: ${k} is not supported by this runtime`);
        break;
      default:
        throw new InvalidArgumentError(`overlay: Unknown option ${key}`);
    }
  }
  if (o.mountProgram !== "") {
    throw new InvalidArgumentError(`overlay: mount_program (${o.mountProgram}) is not supported by this runtime; native overlay is required`);
  }
  if (o.forceMask !== undefined) {
    throw new InvalidArgumentError("overlay: 'force_mask' is supported only with 'mount_program'");
  }
  if (o.size !== "" || o.inodes !== "") {
    throw new InvalidArgumentError("overlay: size and inodes quotas need project quota on XFS, which this runtime does not support");
  }
  return o;
}

/** generateID(26): base32 (RFC 4648, upper case) of 17 random bytes, cut to 26 characters. */
export function generateLinkId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = randomBytes(Math.ceil((ID_LENGTH * 5) / 8));
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.slice(0, ID_LENGTH);
}

/** What a mount of a layer may add (drivers.MountOpts). */
export interface MountOptions {
  /** SELinux label for the mount (context=...), used only when SELinux is enabled. */
  mountLabel?: string;
  /** Mount options replacing the driver's mountopt (e.g. ["nodev", "metacopy=on"]). */
  options?: readonly string[];
}

/** label.FormatMountLabel: `context="<label>"` appended when SELinux is on and a label is given. */
function formatMountLabel(opts: string, mountLabel: string | undefined): string {
  if (mountLabel === undefined || mountLabel === "" || !selinuxEnabled()) return opts;
  return `${opts},context=${JSON.stringify(mountLabel)}`;
}

function selinuxEnabled(): boolean {
  return existsSync("/sys/fs/selinux/enforce");
}

/**
 * The mount data for a read-write layer (overlay.go Get): "[opts,]lowerdir=...,upperdir=...,
 * workdir=..." with absolute paths through the l/ short links; when that does not fit in a page,
 * the same with paths relative to the driver home (the caller then mounts from there), as
 * upstream does for deep images (up to 500 layers).
 */
export function overlayMountData(
  home: string,
  id: string,
  lowers: readonly string[],
  extra: string,
  mountLabel: string | undefined,
  limit: number,
): { data: string; relative: boolean } {
  const lowerRel = lowers.length > 0 ? [...lowers] : [join(id, "empty")];
  const prefix = extra === "" ? "" : `${extra},`;
  const abs = `${prefix}lowerdir=${lowerRel.map((l) => join(home, l)).join(":")},upperdir=${join(home, id, "diff")},workdir=${join(home, id, "work")}`;
  let data = formatMountLabel(abs, mountLabel);
  if (data.length <= limit) return { data, relative: false };
  const rel = `${prefix}lowerdir=${lowerRel.join(":")},upperdir=${join(id, "diff")},workdir=${join(id, "work")}`;
  data = formatMountLabel(rel, mountLabel);
  if (data.length > limit) {
    throw new InvalidArgumentError(`cannot mount layer ${id}: mount data too large ${data.length} > page size ${limit + 1}`);
  }
  return { data, relative: true };
}

export class OverlayDriver {
  /** <root>/overlay */
  readonly home: string;
  /** <runroot>/overlay */
  readonly runhome: string;
  readonly options: OverlayOptions;

  private constructor(home: string, runhome: string, options: OverlayOptions) {
    this.home = home;
    this.runhome = runhome;
    this.options = options;
  }

  /** Creates the driver directories and verifies native overlay works there (overlay Init). */
  static async init(home: string, runhome: string, options: OverlayOptions): Promise<OverlayDriver> {
    const magic = statfsType(home);
    await mkdir(join(home, LINK_DIR), { recursive: true, mode: 0o755 });
    await mkdir(runhome, { recursive: true, mode: 0o700 });
    const driver = new OverlayDriver(home, runhome, options);
    await driver.checkNativeOverlay(magic);
    return driver;
  }

  dir(id: string): string {
    return join(this.home, id);
  }

  diffPath(id: string): string {
    return join(this.home, id, "diff");
  }

  exists(id: string): boolean {
    return existsSync(this.dir(id));
  }

  /** Creates the directories of a read-only layer on top of `parent` (overlay create()). */
  async create(id: string, parent: string | undefined): Promise<void> {
    const dir = this.dir(id);
    await mkdir(join(this.home, LINK_DIR), { recursive: true, mode: 0o755 });
    let uid = 0;
    let gid = 0;
    let perms = DEFAULT_DIFF_PERMS;
    if (parent !== undefined) {
      const st = await stat(this.dir(parent));
      uid = st.uid;
      gid = st.gid;
      perms = (await stat(join(this.dir(parent), "diff"))).mode & 0o7777;
    }
    if (await exists(dir)) {
      // A directory without a record: left by a crash. Remove it with its link first.
      await this.remove(id);
    }
    await mkdir(dir, { mode: 0o700 });
    try {
      await mkdirAs(join(dir, "diff"), perms, uid, gid);
      const lid = generateLinkId();
      await symlink(join("..", id, "diff"), join(this.home, LINK_DIR, lid));
      await writeFile(join(dir, "link"), lid, { mode: 0o644 });
      await mkdirAs(join(dir, "work"), 0o700, uid, gid);
      await mkdirAs(join(dir, "merged"), 0o700, uid, gid);
      if (parent === undefined) {
        await mkdirAs(join(dir, "empty"), 0o700, uid, gid);
      } else {
        const lower = await this.lowerFor(parent);
        if (lower !== "") await writeFile(join(dir, LOWER_FILE), lower, { mode: 0o666 });
      }
    } catch (err) {
      await this.remove(id).catch(() => {});
      throw err;
    }
  }

  /** Longest mount data mount(2) takes (a page minus the NUL); tests lower it. */
  mountDataLimit = pageSize() - 1;

  /** The layer's lower entries as its lower file lists them ("l/<short>"), uppermost first. */
  private async lowerEntries(id: string): Promise<string[]> {
    try {
      const text = (await readFile(join(this.dir(id), LOWER_FILE), "utf8")).trim();
      return text === "" ? [] : text.split(":").filter((l) => l !== "");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  /**
   * Mounts a read-write layer at <home>/<id>/merged and returns that path (overlay Get): the
   * parent chain as lowerdirs through the l/ short links (or <id>/empty for a layer without
   * parent), diff/ as upperdir, work/ as workdir; the driver's mountopt, or `options.options`,
   * in front. Mount counting is the layer store's business; a merged dir that is already a
   * mount point is returned as it is.
   */
  async get(id: string, options: MountOptions = {}): Promise<string> {
    const dir = this.dir(id);
    const merged = join(dir, "merged");
    if (!existsSync(join(dir, "diff"))) throw new FailedPreconditionError(`overlay: layer ${id} has no diff directory`);
    if (isMountPoint(merged)) return merged;
    for (const l of await this.lowerEntries(id)) {
      // A missing short link means a broken chain: fail here with a clear message, not EINVAL.
      if (!existsSync(join(this.home, l))) throw new FailedPreconditionError(`overlay: lower ${l} of layer ${id} is missing`);
    }
    await mkdir(merged, { recursive: true, mode: 0o700 });
    await mkdir(join(dir, "work"), { recursive: true, mode: 0o700 });
    this.makeHomePrivate();
    const extra = options.options !== undefined && options.options.length > 0 ? options.options.join(",") : this.options.mountOptions;
    const { data, relative } = overlayMountData(this.home, id, await this.lowerEntries(id), extra, options.mountLabel, this.mountDataLimit);
    const { flags, data: fsData } = parseMountOptions(data);
    if (!relative) {
      mount("overlay", merged, "overlay", flags, fsData);
      return merged;
    }
    // mountOverlayFrom: upstream forks a helper that chdirs into the home; mount(2) resolves
    // the relative paths against the cwd, and nothing else runs on this thread meanwhile.
    const cwd = process.cwd();
    process.chdir(this.home);
    try {
      mount("overlay", join(id, "merged"), "overlay", flags, fsData);
    } finally {
      process.chdir(cwd);
    }
    return merged;
  }

  /**
   * mount.MakePrivate(home), as overlay Init does unless skip_mount_home is set: home becomes a
   * private bind mount of itself, so layer mounts do not propagate to other namespaces. Podman
   * does this on every start; mounting under the same bind mount keeps one tree of mounts for
   * both (a layer mounted before podman's bind would be invisible through it). Done at the
   * first mount rather than at open, so stores that only hold images add no mount.
   */
  private makeHomePrivate(): void {
    if (this.options.skipMountHome) return;
    if (!isMountPoint(this.home)) mount(this.home, this.home, "none", MS_BIND);
    mount("", this.home, "none", MS_PRIVATE);
  }

  /** Unmounts a layer's merged dir (overlay Put); not being mounted is fine. */
  put(id: string): void {
    const merged = join(this.dir(id), "merged");
    if (!isMountPoint(merged)) return;
    umount2(merged, MNT_DETACH);
  }

  /** Removes a layer's directory and its short link (overlay Remove). Missing parts are fine. */
  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    // Never recurse into a mounted root file system.
    this.put(id);
    try {
      const lid = (await readFile(join(dir, "link"), "utf8")).trim();
      if (lid !== "" && !lid.includes("/")) await rm(join(this.home, LINK_DIR, lid), { force: true });
    } catch {
      // no link file: nothing to unlink
    }
    await rm(dir, { recursive: true, force: true });
  }

  /** The lower file content for a child of `parent`. */
  private async lowerFor(parent: string): Promise<string> {
    const parentDir = this.dir(parent);
    const link = (await readFile(join(parentDir, "link"), "utf8")).trim();
    const lowers = [`${LINK_DIR}/${link}`];
    try {
      const parentLower = (await readFile(join(parentDir, LOWER_FILE), "utf8")).trim();
      if (parentLower !== "") lowers.push(...parentLower.split(":"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (lowers.length > MAX_DEPTH) throw new InvalidArgumentError(`overlay: max depth (${MAX_DEPTH}) exceeded`);
    return lowers.join(":");
  }

  /** The layer's lower directories as absolute paths, uppermost first (for mounting). */
  async lowerDirs(id: string): Promise<string[]> {
    let text: string;
    try {
      text = (await readFile(join(this.dir(id), LOWER_FILE), "utf8")).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: string[] = [];
    for (const l of text.split(":")) {
      if (l === "") continue;
      const target = await readlink(join(this.home, l));
      out.push(join(this.home, LINK_DIR, target));
    }
    return out;
  }

  private async checkNativeOverlay(magic: number): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new FailedPreconditionError("the overlay storage driver needs root (rootless storage needs fuse-overlayfs, which is not supported)");
    }
    const flag = join(this.home, ".has-mount-program");
    let flagText = "";
    try {
      flagText = (await readFile(flag, "utf8")).trim();
    } catch {
      // first use of this root
    }
    if (flagText === "true") {
      throw new FailedPreconditionError(`storage at ${this.home} was set up with a mount program (fuse-overlayfs), which this runtime does not support`);
    }
    if (flagText === "") await writeFile(flag, "false", { mode: 0o600 });

    if (magic === FS_MAGIC.aufs || magic === FS_MAGIC.overlay || magic === FS_MAGIC.ecryptfs) {
      throw new FailedPreconditionError(`'overlay' is not supported over ${fsName(magic)} at ${this.home}, a mount_program is required`);
    }
    const yes = join(this.runhome, "overlay-true");
    const no = join(this.runhome, "overlay-false");
    if (existsSync(yes)) return;
    if (existsSync(no)) {
      const text = await readFile(no, "utf8").catch(() => "");
      throw new FailedPreconditionError(text !== "" ? text : `kernel does not support overlay fs at ${this.home}`);
    }
    try {
      await testMount(this.home, magic);
    } catch (err) {
      const text = `kernel does not support overlay fs: ${(err as Error).message}`;
      await writeFile(no, text, { mode: 0o644 });
      throw new FailedPreconditionError(text, { cause: err });
    }
    await writeFile(yes, "", { mode: 0o644 });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function mkdirAs(path: string, mode: number, uid: number, gid: number): Promise<void> {
  await mkdir(path, { mode });
  await chmod(path, mode); // mkdir(2) applies the umask
  if (uid !== 0 || gid !== 0) await chown(path, uid, gid);
}

/** supportsOverlay: d_type, then a test mount with two lowers over a whiteout in the upper. */
async function testMount(home: string, magic: number): Promise<void> {
  const layerDir = await mkdtemp(join(home, "compat"));
  const merged = join(layerDir, "merged");
  try {
    await writeFile(join(layerDir, "probe"), "");
    if (!supportsDType(layerDir)) {
      throw new Error(`the backing ${fsName(magic)} file system is formatted without d_type support, which overlay requires`);
    }
    for (const d of ["merged", "lower1", "lower2", "upper", "work"]) await mkdir(join(layerDir, d), { mode: 0o700 });
    mknod(join(layerDir, "upper", "whiteout"), S_IFCHR | 0o600, 0);
    const opts = `lowerdir=${join(layerDir, "lower1")}:${join(layerDir, "lower2")},upperdir=${join(layerDir, "upper")},workdir=${join(layerDir, "work")}`;
    mount("overlay", merged, "overlay", 0, opts);
    umount2(merged, MNT_DETACH);
  } finally {
    try {
      umount2(merged, MNT_DETACH);
    } catch {
      // not mounted
    }
    await rm(layerDir, { recursive: true, force: true });
  }
}
