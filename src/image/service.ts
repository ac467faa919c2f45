// The image service behind the CRI ImageService RPCs: lookups by name, ID, ID prefix or digest
// (short names resolved the way CRI-O resolves them against local storage), the CRI view of a
// stored image, pulls, removal and file-system usage.
import type { Config } from "../config/index.ts";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { log } from "../log.ts";
import { observePull } from "../metrics/image-pull.ts";
import type { Image as CriImage } from "../proto/index.ts";
import type { Image as StoredImage, Store } from "../storage/index.ts";
import type { AuthConfigLike } from "./auth.ts";
import { PinnedImages } from "./pinned.ts";
import { loadPolicy } from "./policy.ts";
import { Puller, type PulledImage } from "./pull.ts";
import { formatReference, parseReference, repository, type ImageReference } from "./reference.ts";
import { loadRegistriesConf, localCandidates, type RegistriesConf } from "./registries-conf.ts";

/** The parts of an OCI image config the CRI view reads. */
interface OciImageConfig {
  config?: { User?: string; Labels?: Record<string, string> };
  [k: string]: unknown;
}

/** A stored image as CRI shows it, with what verbose status adds. */
export interface ImageView {
  image: CriImage;
  /** The OCI image config (verbose ImageStatus shows it). */
  config: OciImageConfig | undefined;
}

const HEX_RE = /^(?:sha256:)?[0-9a-f]{1,64}$/;

function parseJson<T>(bytes: Uint8Array | undefined): T | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    return undefined;
  }
}

/** The uid or user name of an image's USER ("1000", "1000:1000", "app", "app:grp", ""). */
export function userOf(user: string | undefined): { uid?: bigint; username: string } {
  if (!user) return { username: "" };
  const first = user.split(":")[0] ?? "";
  if (/^[0-9]+$/.test(first)) return { uid: BigInt(first), username: "" };
  return { username: first };
}

/** repo@digest for every tagged name and every digest of the image, plus names that are digests. */
export function repoDigestsOf(img: Pick<StoredImage, "names" | "digest" | "digests">): string[] {
  const digests = [...new Set([img.digest, ...img.digests].filter((d): d is string => !!d))];
  const out = new Set<string>();
  for (const name of img.names) {
    if (name.includes("@")) {
      out.add(name);
      continue;
    }
    let ref: ImageReference;
    try {
      ref = parseReference(name);
    } catch {
      continue;
    }
    for (const d of digests) out.add(`${repository(ref)}@${d}`);
  }
  return [...out];
}

export class ImageService {
  private readonly puller: Puller;

  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
  ) {
    this.puller = new Puller(store, { root: config().root });
  }

  private registries(): RegistriesConf {
    const img = this.config().image;
    return loadRegistriesConf({ path: img.registries_conf, dir: img.registries_conf_dir });
  }

  private pinned(): PinnedImages {
    const img = this.config().image;
    return new PinnedImages(img.pinned_images, img.pause_image);
  }

  /** The stored image a CRI image string names, or undefined. */
  async find(name: string): Promise<{ image: StoredImage; byId: boolean; matchedName?: string } | undefined> {
    if (name === "") throw new InvalidArgumentError("no image specified");
    // An ID or a unique ID prefix first, as CRI-O's heuristics do ("sha256:" allowed).
    if (HEX_RE.test(name)) {
      const hex = name.replace(/^sha256:/, "");
      const img = await this.store.image(hex);
      if (img && img.id.startsWith(hex)) return { image: img, byId: true };
      // A full ID (or sha256:…) can only be an ID; a short hex string may still be a name.
      if (hex.length === 64 || name.startsWith("sha256:")) return undefined;
    }
    for (const cand of localCandidates(this.registries(), name)) {
      const formatted = formatReference(cand);
      if (cand.digest) {
        const repo = repository(cand);
        for (const img of await this.store.imagesByDigest(cand.digest)) {
          if (img.names.some((n) => repoOf(n) === repo)) return { image: img, byId: false };
        }
        continue;
      }
      const img = await this.store.image(formatted);
      if (img && img.names.includes(formatted)) return { image: img, byId: false, matchedName: formatted };
    }
    return undefined;
  }

  /** The CRI view of a stored image. */
  async view(img: StoredImage): Promise<ImageView> {
    const configDigest = `sha256:${img.id}`;
    const config = img.bigDataNames.includes(configDigest)
      ? parseJson<OciImageConfig>(await this.store.imageBigData(img.id, configDigest))
      : undefined;
    const manifest = img.bigDataNames.includes("manifest")
      ? parseJson<{ annotations?: Record<string, string> }>(await this.store.imageBigData(img.id, "manifest"))
      : undefined;
    const user = userOf(config?.config?.User);
    const image: CriImage = {
      id: img.id,
      repoTags: img.names.filter((n) => !n.includes("@")),
      repoDigests: repoDigestsOf(img),
      size: BigInt(await this.store.imageSize(img.id)),
      uid: user.uid !== undefined ? { value: user.uid } : undefined,
      username: user.username,
      spec: { image: "", annotations: manifest?.annotations ?? {}, userSpecifiedImage: "", runtimeHandler: "", imageRef: "" },
      pinned: this.pinned().isPinned(img.names),
    };
    return { image, config };
  }

  async status(name: string): Promise<ImageView | undefined> {
    const found = await this.find(name);
    return found ? this.view(found.image) : undefined;
  }

  async list(filter?: string): Promise<CriImage[]> {
    if (filter) {
      const v = await this.status(filter);
      return v ? [v.image] : [];
    }
    const out: CriImage[] = [];
    for (const img of await this.store.images()) out.push((await this.view(img)).image);
    return out;
  }

  /** `authFile` replaces global_auth_file (the pause image's pause_image_auth_file). */
  async pull(name: string, opts: { auth?: AuthConfigLike; namespace?: string; signal?: AbortSignal; authFile?: string }): Promise<PulledImage> {
    const cfg = this.config();
    if (name === "") throw new InvalidArgumentError("no image specified");
    const registries = this.registries();
    const policy = loadPolicy({
      signaturePolicy: cfg.image.signature_policy,
      signaturePolicyDir: cfg.image.signature_policy_dir,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
    });
    return observePull(this.puller.pull({
      image: name,
      registries,
      shortNameMode: cfg.image.short_name_mode,
      policy,
      auth: {
        ...(opts.auth ? { cri: opts.auth } : {}),
        ...(opts.authFile || cfg.image.global_auth_file ? { authFile: opts.authFile || cfg.image.global_auth_file } : {}),
        helpers: registries.credentialHelpers,
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    }));
  }

  /**
   * RemoveImage: by a tag that is one of several names, only that name goes; by ID (or the last
   * name) the image goes with its unused layers. Unknown images are not an error.
   */
  async remove(name: string): Promise<void> {
    const found = await this.find(name);
    if (!found) return;
    const { image } = found;
    if (this.pinned().isPinned(image.names)) {
      throw new FailedPreconditionError(`image ${name} is pinned (pinned_images or the pause image) and is never removed`);
    }
    if (!found.byId && found.matchedName && image.names.length > 1) {
      await this.store.removeNames(image.id, [found.matchedName]);
      log.info(`Untagged image ${found.matchedName}`, { id: image.id });
      return;
    }
    await this.store.deleteImage(image.id, { deleteLayers: true });
    log.info(`Removed image ${name}`, { id: image.id });
  }

  diskUsage() {
    return this.store.diskUsage();
  }
}

function repoOf(name: string): string | undefined {
  try {
    return repository(parseReference(name));
  } catch {
    return undefined;
  }
}
