// Test images, built in memory with the project's own tar writer: busybox images (from Debian's
// busybox-static) in OCI or Docker v2 form, multi-arch indexes, big images for benchmarks, and
// malicious layers for the unpacker's confinement tests. The { blobs, manifests } shape is what
// test/lib/push.ts pushes to a registry.
import { createCipheriv } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { createTar, type TarInput } from "../../src/image/tar/writer.ts";

export type ImageFormat = "oci" | "docker";
export type LayerCompression = "gzip" | "zstd" | "none";
export type Arch = "amd64" | "arm64";

export const BUSYBOX = "/bin/busybox";

export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
} as const;

export interface ManifestEntry {
  /** The tag or digest to put the manifest under. */
  reference: string;
  mediaType: string;
  bytes: Uint8Array;
  digest: string;
}

export interface BuiltLayer {
  /** Uncompressed tar. */
  tar: Uint8Array;
  /** The blob as stored in the registry. */
  blob: Uint8Array;
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
}

export interface BuiltImage {
  blobs: Map<string, Uint8Array>;
  /** Per-platform manifests first, then the index (if any): push order. */
  manifests: ManifestEntry[];
  /** The top manifest (the index for a multi-arch image). */
  manifestDigest: string;
  manifestMediaType: string;
  configDigest: string;
  config: ImageConfig;
  layers: BuiltLayer[];
  layerDigests: string[];
  layerDiffIds: string[];
}

export interface MultiArchImage extends BuiltImage {
  platforms: { architecture: Arch; os: "linux"; manifestDigest: string; image: BuiltImage }[];
}

export interface ImageConfig {
  architecture: string;
  os: string;
  created: string;
  config: {
    Env: string[];
    Entrypoint: string[] | null;
    Cmd: string[];
    User: string;
    WorkingDir: string;
    Labels: Record<string, string>;
    StopSignal: string;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history: { created: string; created_by: string; empty_layer?: boolean }[];
}

/** Fixed times keep every build byte-identical. */
const MTIME = 1700000000;
const CREATED = "2023-11-14T22:13:20Z";

export function sha256(bytes: Uint8Array): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
}

export function hostArch(): Arch {
  return process.arch === "arm64" ? "arm64" : "amd64";
}

export function compress(tar: Uint8Array, compression: LayerCompression, level = 6): Uint8Array {
  switch (compression) {
    case "gzip":
      return gzipSync(tar, { level });
    case "zstd":
      return zstdCompressSync(tar);
    case "none":
      return tar;
  }
}

function layerMediaType(format: ImageFormat, compression: LayerCompression): string {
  if (format === "docker") {
    if (compression === "zstd") throw new Error("Docker v2 manifests have no zstd layer media type");
    return compression === "gzip" ? MEDIA.dockerLayerGzip : MEDIA.dockerLayer;
  }
  return compression === "none" ? MEDIA.ociLayer : `${MEDIA.ociLayer}+${compression}`;
}

/** A layer blob from tar entries. */
export function buildLayer(entries: TarInput[], format: ImageFormat, compression: LayerCompression, level?: number): BuiltLayer {
  const tar = createTar(entries.map((e) => ({ mtime: MTIME, ...e })));
  return layerFromTar(tar, format, compression, level);
}

export function layerFromTar(tar: Uint8Array, format: ImageFormat, compression: LayerCompression, level?: number): BuiltLayer {
  const blob = compress(tar, compression, level);
  return { tar, blob, digest: sha256(blob), diffId: sha256(tar), mediaType: layerMediaType(format, compression), size: blob.length };
}

const encoder = new TextEncoder();

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export interface ImageOptions {
  format?: ImageFormat;
  compression?: LayerCompression;
  /** The tag the manifest is put under (default "latest"). */
  tag?: string;
  architecture?: Arch;
  /** Overrides for the image config (User, Cmd, ...). */
  config?: Partial<ImageConfig["config"]>;
}

/** An image from layers: config and manifest built around them. */
export function assembleImage(layers: BuiltLayer[], opts: ImageOptions & { history?: string[] } = {}): BuiltImage {
  const format = opts.format ?? "oci";
  const config: ImageConfig = {
    architecture: opts.architecture ?? hostArch(),
    os: "linux",
    created: CREATED,
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TEST_IMAGE=busybox"],
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: ["echo hello from busybox; exec sleep 3600"],
      User: "1000",
      WorkingDir: "/home/app",
      Labels: { "org.opencontainers.image.title": "crio-ts test busybox", "io.crio-ts.test": "true" },
      StopSignal: "SIGTERM",
      ...opts.config,
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: CREATED, created_by: opts.history?.[i] ?? `layer ${i + 1}` })),
  };
  const configBytes = json(config);
  const configDigest = sha256(configBytes);
  const manifestMediaType = format === "oci" ? MEDIA.ociManifest : MEDIA.dockerManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: format === "oci" ? MEDIA.ociConfig : MEDIA.dockerConfig, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = json(manifest);
  const manifestDigest = sha256(manifestBytes);
  const blobs = new Map<string, Uint8Array>([[configDigest, configBytes]]);
  for (const l of layers) blobs.set(l.digest, l.blob);
  return {
    blobs,
    manifests: [{ reference: opts.tag ?? "latest", mediaType: manifestMediaType, bytes: manifestBytes, digest: manifestDigest }],
    manifestDigest,
    manifestMediaType,
    configDigest,
    config,
    layers,
    layerDigests: layers.map((l) => l.digest),
    layerDiffIds: layers.map((l) => l.diffId),
  };
}

/** The applets linked in /bin (what tests run inside containers). */
export const APPLETS = [
  "sh", "ash", "cat", "chmod", "cp", "date", "echo", "env", "false", "grep", "head", "hostname", "id", "kill",
  "ln", "ls", "mkdir", "mount", "mv", "nc", "ps", "pwd", "rm", "sleep", "stat", "tail", "test", "touch",
  "true", "uname", "wc", "wget", "whoami",
];

export const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "app:x:1000:1000:app:/home/app:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "",
].join("\n");

export const GROUP = ["root:x:0:", "app:x:1000:", "nogroup:x:65534:", ""].join("\n");

function busyboxBytes(): Uint8Array {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install -y busybox-static`);
  return readFileSync(BUSYBOX);
}

/** The base layer: busybox, its applet links, /etc/passwd and group, the usual directories. */
export function baseEntries(busybox: Uint8Array = busyboxBytes()): TarInput[] {
  return [
    { name: "bin/" },
    { name: "bin/busybox", data: busybox, mode: 0o755 },
    ...APPLETS.map((a): TarInput => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "dev/" },
    { name: "etc/" },
    { name: "etc/passwd", data: PASSWD },
    { name: "etc/group", data: GROUP },
    { name: "home/" },
    { name: "home/app/", uid: 1000, gid: 1000, mode: 0o750 },
    { name: "proc/", mode: 0o555 },
    { name: "root/", mode: 0o700 },
    { name: "sys/", mode: 0o555 },
    { name: "tmp/", mode: 0o1777 },
    { name: "usr/" },
    { name: "usr/bin/" },
    { name: "usr/bin/env", type: "symlink", linkname: "/bin/busybox" },
    { name: "var/" },
    { name: "var/log/" },
  ];
}

/** Layer 2 of the multi-layer image: files with owners, modes and xattrs, a hard link, a symlink. */
export const LAYER2: TarInput[] = [
  { name: "data/", mode: 0o755, uid: 1000, gid: 1000 },
  { name: "data/hello.txt", data: "hello from layer 2\n", uid: 1000, gid: 1000, mode: 0o640, xattrs: { "user.origin": "layer2" } },
  { name: "data/hello-hardlink", type: "link", linkname: "data/hello.txt", uid: 1000, gid: 1000, mode: 0o640 },
  { name: "data/hello-symlink", type: "symlink", linkname: "hello.txt" },
  { name: "data/remove-me.txt", data: "deleted by layer 3\n" },
  { name: "data/setuid", data: "#!/bin/sh\nid\n", mode: 0o4755 },
  { name: "data/nanotime", data: "mtime has nanoseconds\n", mtime: { sec: 1600000000, nsec: 123456789 } },
  { name: "opaque/", mode: 0o755 },
  { name: "opaque/old.txt", data: "hidden by layer 3\n" },
  { name: "opaque/sub/", mode: 0o755 },
  { name: "opaque/sub/old2.txt", data: "hidden by layer 3 too\n" },
];

/** Layer 3: a whiteout of a layer-2 file and an opaque directory with new content. */
export const LAYER3: TarInput[] = [
  { name: "data/", mode: 0o755, uid: 1000, gid: 1000 },
  { name: "data/.wh.remove-me.txt", data: "" },
  { name: "opaque/", mode: 0o755 },
  { name: "opaque/.wh..wh..opq", data: "" },
  { name: "opaque/new.txt", data: "only this is visible\n" },
  { name: "etc/" },
  { name: "etc/layer3", data: "layer 3 was here\n" },
];

export interface BusyboxOptions extends ImageOptions {
  layers?: "single" | "multi";
}

/** A runnable busybox image: one layer, or base + files/links + whiteouts/opaque (see LAYER2, LAYER3). */
export function busyboxImage(opts: BusyboxOptions = {}): BuiltImage {
  const format = opts.format ?? "oci";
  const compression = opts.compression ?? "gzip";
  const base = buildLayer(baseEntries(), format, compression);
  if ((opts.layers ?? "single") === "single") return assembleImage([base], { ...opts, history: ["busybox"] });
  const layers = [base, buildLayer(LAYER2, format, compression), buildLayer(LAYER3, format, compression)];
  return assembleImage(layers, { ...opts, history: ["busybox", "files, hard link, symlink", "whiteout, opaque dir"] });
}

/**
 * A two-platform image (amd64 + arm64) behind an OCI index or a Docker manifest list. The host's
 * platform gets the real busybox image; the other a small synthetic layer.
 */
export function multiArchIndex(opts: ImageOptions = {}): MultiArchImage {
  const format = opts.format ?? "oci";
  const compression = opts.compression ?? "gzip";
  const platforms = (["amd64", "arm64"] as const).map((arch) => {
    const layers =
      arch === hostArch()
        ? [buildLayer(baseEntries(), format, compression)]
        : [buildLayer([
            { name: "bin/" },
            { name: "bin/busybox", data: `not a real busybox: a synthetic ${arch} layer\n`, mode: 0o755 },
            { name: "etc/" },
            { name: "etc/passwd", data: PASSWD },
            { name: "etc/arch", data: `${arch}\n` },
          ], format, compression)];
    const image = assembleImage(layers, { ...opts, architecture: arch, history: [`busybox ${arch}`] });
    return { architecture: arch, os: "linux" as const, manifestDigest: image.manifestDigest, image };
  });
  const indexMediaType = format === "oci" ? MEDIA.ociIndex : MEDIA.dockerList;
  const index = {
    schemaVersion: 2,
    mediaType: indexMediaType,
    manifests: platforms.map((p) => ({
      mediaType: p.image.manifestMediaType,
      digest: p.manifestDigest,
      size: p.image.manifests[0]!.bytes.length,
      platform: { architecture: p.architecture, os: p.os },
    })),
  };
  const indexBytes = json(index);
  const indexDigest = sha256(indexBytes);
  const host = platforms.find((p) => p.architecture === hostArch())!.image;
  const blobs = new Map<string, Uint8Array>();
  for (const p of platforms) for (const [d, b] of p.image.blobs) blobs.set(d, b);
  return {
    ...host,
    blobs,
    manifests: [
      ...platforms.map((p) => ({ ...p.image.manifests[0]!, reference: p.manifestDigest })),
      { reference: opts.tag ?? "latest", mediaType: indexMediaType, bytes: indexBytes, digest: indexDigest },
    ],
    manifestDigest: indexDigest,
    manifestMediaType: indexMediaType,
    platforms,
  };
}

/** Deterministic incompressible bytes (AES-128-CTR keystream of `seed`). */
export function randomBytes(size: number, seed = 1): Uint8Array {
  const key = Buffer.alloc(16, seed & 0xff);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return new Uint8Array(cipher.update(Buffer.alloc(size)));
}

export interface BigImageOptions extends ImageOptions {
  /** How many layers share the size (default 4). */
  layerCount?: number;
  /** Size of each file (default 8 MiB). */
  fileMiB?: number;
}

/** An image of about `sizeMiB` of incompressible data spread over several layers (gzip level 1). */
export function bigImage(sizeMiB: number, opts: BigImageOptions = {}): BuiltImage {
  const format = opts.format ?? "oci";
  const compression = opts.compression ?? "gzip";
  const layerCount = opts.layerCount ?? 4;
  const fileSize = (opts.fileMiB ?? 8) << 20;
  const perLayer = Math.ceil((sizeMiB << 20) / layerCount);
  const layers: BuiltLayer[] = [];
  for (let l = 0; l < layerCount; l++) {
    const entries: TarInput[] = [{ name: `big${l}/` }];
    for (let off = 0, i = 0; off < perLayer; off += fileSize, i++) {
      entries.push({ name: `big${l}/file${i}.bin`, data: randomBytes(Math.min(fileSize, perLayer - off), l * 1000 + i + 1) });
    }
    layers.push(buildLayer(entries, format, compression, 1));
  }
  return assembleImage(layers, { ...opts, history: layers.map((_, i) => `big layer ${i}`) });
}

export interface MaliciousLayer {
  /** Uncompressed tar. */
  tar: Uint8Array;
  description: string;
  /** "refused": unpacking fails; "neutralised": it succeeds with everything kept inside the target. */
  expect: "refused" | "neutralised";
  /** For neutralised layers: paths (relative to the target) where the escaping entry must have landed. */
  landsAt?: string[];
}

/**
 * Layers that try to write outside the directory they are unpacked into, one per escape kind.
 * `outside` is an absolute directory the attacker aims at (tests make it a sentinel directory
 * holding a file named "sentinel"); each must be refused or neutralised, with nothing written
 * outside the target.
 */
export function maliciousLayers(outside = "/tmp/x"): Record<string, MaliciousLayer> {
  const rel = outside.replace(/^\/+/, "");
  const up = "../".repeat(32);
  const tar = (entries: TarInput[]): Uint8Array => createTar(entries.map((e) => ({ mtime: MTIME, ...e })));
  const L: Record<string, MaliciousLayer> = {
    "dotdot-path": {
      description: "a ../ path climbing out of the root",
      expect: "refused",
      tar: tar([{ name: `${up}${rel}/pwned`, data: "pwned" }]),
    },
    "dotdot-inner": {
      description: "a path that climbs out through a directory (a/../../x)",
      expect: "refused",
      tar: tar([{ name: "a/" }, { name: `a/../${up}${rel}/pwned`, data: "pwned" }]),
    },
    "absolute-path": {
      description: "an absolute path: the leading / is dropped, as upstream does",
      expect: "neutralised",
      tar: tar([{ name: `${outside}/pwned-absolute`, data: "pwned" }]),
      landsAt: [`${rel}/pwned-absolute`],
    },
    "symlink-write-through": {
      description: "a symlink to the outside directory, then a file written through it",
      expect: "refused",
      tar: tar([{ name: "a", type: "symlink", linkname: outside }, { name: "a/pwned", data: "pwned" }]),
    },
    "symlink-write-through-resolved": {
      description: "as above, but the symlink's target exists inside the layer: the file lands there",
      expect: "neutralised",
      tar: tar([
        { name: `${rel}/` },
        { name: "a", type: "symlink", linkname: outside },
        { name: "a/pwned", data: "pwned" },
      ]),
      landsAt: [`${rel}/pwned`],
    },
    "symlink-dotdot-chain": {
      description: "a symlink made of ../ components, then a file written through it",
      expect: "refused",
      tar: tar([{ name: "up", type: "symlink", linkname: `${up}${rel}` }, { name: "up/pwned", data: "pwned" }]),
    },
    "symlink-dotdot-root": {
      description: "a symlink to ../../.. (the host root), then a path through it: it resolves to the layer root",
      expect: "neutralised",
      tar: tar([{ name: "root", type: "symlink", linkname: up }, { name: `root/${rel}/pwned`, data: "pwned" }]),
      landsAt: [`${rel}/pwned`],
    },
    "symlink-dir-nested": {
      description: "a directory created through an escaping symlink",
      expect: "refused",
      tar: tar([{ name: "s", type: "symlink", linkname: outside }, { name: "s/newdir/" }]),
    },
    "hardlink-etc-shadow": {
      description: "a hard link to /etc/shadow",
      expect: "refused",
      tar: tar([{ name: "shadow", type: "link", linkname: "/etc/shadow" }]),
    },
    "hardlink-outside-absolute": {
      description: "a hard link to the sentinel file by its absolute path",
      expect: "refused",
      tar: tar([{ name: "stolen", type: "link", linkname: `${outside}/sentinel` }]),
    },
    "hardlink-dotdot": {
      description: "a hard link whose target climbs out with ../",
      expect: "refused",
      tar: tar([{ name: "stolen", type: "link", linkname: `${up}${rel}/sentinel` }]),
    },
    "hardlink-via-symlink-dir": {
      description: "a symlinked directory to the outside, then a hard link to a file through it",
      expect: "refused",
      tar: tar([
        { name: "od", type: "symlink", linkname: outside },
        { name: "stolen", type: "link", linkname: "od/sentinel" },
        { name: "stolen", data: "overwritten through the link" },
      ]),
    },
    "hardlink-via-etc-symlink": {
      description: "a symlink to /etc, then a hard link to etc/shadow through it",
      expect: "refused",
      tar: tar([{ name: "etcdir", type: "symlink", linkname: "/etc" }, { name: "shadow", type: "link", linkname: "etcdir/shadow" }]),
    },
    "whiteout-dotdot": {
      description: "a whiteout of ../x (outside the root)",
      expect: "refused",
      tar: tar([{ name: `${up}${rel}/.wh.sentinel`, data: "" }]),
    },
    "whiteout-name-dotdot": {
      description: "a whiteout named .wh... (whiting out '..')",
      expect: "refused",
      tar: tar([{ name: "d/" }, { name: "d/.wh...", data: "" }]),
    },
    "whiteout-through-symlink": {
      description: "a whiteout under a symlink to the outside directory",
      expect: "refused",
      tar: tar([{ name: "s", type: "symlink", linkname: outside }, { name: "s/.wh.sentinel", data: "" }]),
    },
    "opaque-through-symlink": {
      description: "an opaque marker under a symlink to the outside directory",
      expect: "refused",
      tar: tar([{ name: "s", type: "symlink", linkname: outside }, { name: "s/.wh..wh..opq", data: "" }]),
    },
    "dir-swapped-for-symlink": {
      description: "a directory, a file in it, the directory replaced by an escaping symlink, a file through it",
      expect: "refused",
      tar: tar([
        { name: "d/" },
        { name: "d/f", data: "inside" },
        { name: "d", type: "symlink", linkname: outside },
        { name: "d/pwned", data: "pwned" },
      ]),
    },
    "root-replaced-by-symlink": {
      description: "an entry for the root itself that is a symlink",
      expect: "refused",
      tar: tar([{ name: "./", type: "symlink", linkname: outside }]),
    },
    "nul-in-name": {
      description: "a pax path with a NUL byte",
      expect: "refused",
      tar: tar([{ name: "placeholder", data: "x", pax: { path: "a\u0000/../../x" } }]),
    },
    "very-long-path": {
      description: "a 5000-byte path",
      expect: "refused",
      tar: tar([{ name: `${"d/".repeat(2500)}f`, data: "x" }]),
    },
    "very-long-component": {
      description: "a 300-byte file name",
      expect: "refused",
      tar: tar([{ name: "n".repeat(300), data: "x" }]),
    },
    "device-node": {
      description: "a /dev/mem-like character device: created inside the layer (root only; skipped otherwise)",
      expect: "neutralised",
      tar: tar([{ name: "mem", type: "char", devmajor: 1, devminor: 1, mode: 0o600 }]),
      landsAt: ["mem"],
    },
  };
  return L;
}
