// Interoperability of src/storage with Debian's real podman on one store: an image this code
// builds is listed and run by podman, an image podman imports is read by this code, and the
// two exclude each other through the lock files. Temporary roots only; no network.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  imageIdFor,
  LockFile,
  manifestBigDataKey,
  sha256Digest,
  signatureBigDataKey,
  Store,
  type Image,
  type Layer,
} from "../../src/storage/index.ts";
import { BUSYBOX, podmanOn, requirePodman } from "../lib/podman.ts";

const base = mkdtempSync(join(tmpdir(), "crio-podman-"));
const root = join(base, "root");
const runroot = join(base, "run");
const pm = podmanOn(base, root, runroot);
const podman = pm.run;
const mustPodman = pm.must;
const requireTools = requirePodman;

async function sh(cmd: string[]): Promise<void> {
  const p = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${p.stderr.toString()}`);
}

let store: Store;

beforeAll(async () => {
  store = await Store.open({ root, runroot, driver: "overlay" });
});

afterAll(() => {
  pm.unmountAll();
  rmSync(base, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);

/** Builds a one-layer busybox image with this code, stored as containers/image stores a pull. */
async function buildBusyboxImage(name: string): Promise<{ image: Image; layer: Layer; manifestDigest: string; diffId: string }> {
  requireTools();
  const stage = join(base, "stage");
  mkdirSync(join(stage, "bin"), { recursive: true });
  copyFileSync(BUSYBOX, join(stage, "bin", "busybox"));
  chmodSync(join(stage, "bin", "busybox"), 0o755);
  for (const applet of ["sh", "echo", "ls", "cat"]) symlinkSync("busybox", join(stage, "bin", applet));
  mkdirSync(join(stage, "tmp"), { mode: 0o1777 });
  chmodSync(join(stage, "tmp"), 0o1777);
  const tarPath = join(base, "layer.tar");
  await sh(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", stage, "-cf", tarPath, "."]);
  const tar = readFileSync(tarPath);
  const diffId = sha256Digest(tar);

  // The populate callback plays the layer unpacker: it extracts the tar stream into diff/.
  const layer = await store.createLayer({ uncompressedDigest: diffId, compressedDigest: diffId, compressedSize: tar.length }, async (diffDir) => {
    await sh(["tar", "--numeric-owner", "-C", diffDir, "-xpf", tarPath]);
    return { diffDigest: diffId, diffSize: tar.length, uidset: [0], gidset: [0] };
  });

  const created = "2024-01-01T00:00:00Z";
  const config = JSON.stringify({
    created,
    architecture: process.arch === "arm64" ? "arm64" : "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created, created_by: "crio storage test" }],
  });
  const configDigest = sha256Digest(config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: diffId, size: tar.length }],
  });
  const manifestDigest = sha256Digest(manifest);
  const image = await store.createImage(
    {
      id: imageIdFor(configDigest),
      names: [name],
      topLayer: layer.id,
      created,
      digest: manifestDigest,
      metadata: JSON.stringify({ "signatures-sizes": { [manifestDigest]: [] } }),
    },
    [
      { key: configDigest, data: enc(config) },
      { key: manifestBigDataKey(manifestDigest), data: enc(manifest) },
      { key: "manifest", data: enc(manifest) },
      { key: signatureBigDataKey(manifestDigest), data: new Uint8Array() },
    ],
  );
  return { image, layer, manifestDigest, diffId };
}

describe("podman and this store", () => {
  let ours: Awaited<ReturnType<typeof buildBusyboxImage>>;

  test("podman lists an image this code stored, with its ID, name and digest", async () => {
    ours = await buildBusyboxImage("localhost/crio-test/busybox:latest");
    const listed = JSON.parse(await mustPodman(["images", "--format", "json"])) as {
      Id: string;
      Names: string[];
      Digest: string;
      RepoDigests: string[];
    }[];
    const entry = listed.find((i) => i.Id === ours.image.id);
    expect(entry).toBeDefined();
    expect(entry?.Names).toEqual(["localhost/crio-test/busybox:latest"]);
    expect(entry?.Digest).toBe(ours.manifestDigest);
    expect(entry?.RepoDigests).toEqual([`localhost/crio-test/busybox@${ours.manifestDigest}`]);
  });

  test("podman runs it", async () => {
    const out = await mustPodman([
      "run", "--rm", "--net=none",
      // Root here lacks CAP_SYS_RESOURCE: keep podman's default rlimits within ours.
      "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
      "localhost/crio-test/busybox:latest", "/bin/busybox", "echo", "hi",
    ]);
    expect(out.trim()).toBe("hi");
    // podman rewrote layers.json (its container layer came and went); ours is intact.
    expect((await store.layer(ours.layer.id))?.uncompressedDigest).toBe(ours.diffId);
  });

  test("this code reads an image podman imported", async () => {
    const stage = join(base, "podman-stage");
    mkdirSync(join(stage, "bin"), { recursive: true });
    copyFileSync(BUSYBOX, join(stage, "bin", "busybox"));
    writeFileSync(join(stage, "greeting"), "made by podman\n");
    const tarPath = join(base, "podman-layer.tar");
    await sh(["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", stage, "-cf", tarPath, "."]);
    const tar = readFileSync(tarPath);
    const idLine = (await mustPodman(["import", tarPath, "localhost/podman-made:1"])).trim().split("\n").at(-1) as string;
    const id = idLine.replace(/^sha256:/, "");

    const image = (await store.images()).find((i) => i.id === id);
    expect(image).toBeDefined();
    expect(image?.names).toEqual(["localhost/podman-made:1"]);
    expect((await store.image("localhost/podman-made:1"))?.id).toBe(id);
    const manifest = await store.imageBigData(id, "manifest");
    expect(image?.digest).toBe(sha256Digest(manifest));
    expect((await store.image(image?.digest as string))?.id).toBe(id);
    const config = await store.imageBigData(id, `sha256:${id}`);
    expect(sha256Digest(config)).toBe(`sha256:${id}`);

    const layer = await store.layer(image?.topLayer as string);
    expect(layer?.uncompressedDigest).toBe(sha256Digest(tar));
    expect(layer?.uncompressedSize).toBe(tar.length);
    expect(layer?.id).toBe(sha256Digest(tar).slice(7)); // a base layer's ID is its DiffID
    expect(readFileSync(join(await store.layerDiffDir(layer?.id as string), "greeting"), "utf8")).toBe("made by podman\n");
    expect((await store.layerByUncompressedDigest(sha256Digest(tar)))?.id).toBe(layer?.id);
  });

  test("names podman changes are seen by this long-lived store", async () => {
    await mustPodman(["tag", ours.image.id, "localhost/crio-test/retagged:1"]);
    const img = await store.image("localhost/crio-test/retagged:1");
    expect(img?.id).toBe(ours.image.id);
    expect(img?.names).toContain("localhost/crio-test/busybox:latest");
  });

  test("podman waits while this process holds the image store's write lock", async () => {
    const lock = LockFile.get(join(root, "overlay-images", "images.lock"));
    await lock.lock();
    let exited = false;
    const pending = podman(["images", "--format", "json"]).then((r) => {
      exited = true;
      return r;
    });
    try {
      await Bun.sleep(1500);
      expect(exited).toBe(false);
    } finally {
      lock.unlock();
    }
    const r = await pending;
    expect(r.code).toBe(0);
  });

  test("podman lists a container this code created, and shares its mount count", async () => {
    const metadata = JSON.stringify({
      "pod-name": "pod", "pod-id": "p".repeat(64), "image-name": "localhost/crio-test/busybox:latest", "image-id": ours.image.id,
      name: "k8s_c_pod_ns_uid_0", "metadata-name": "c", uid: "uid", namespace: "ns", "created-at": 1700000000, attempt: 0,
    });
    const c = await store.createContainer({ names: ["k8s_c_pod_ns_uid_0"], imageId: "localhost/crio-test/busybox:latest", metadata });
    const listed = JSON.parse(await mustPodman(["ps", "--all", "--external", "--format", "json"])) as {
      Id: string; Names: string[]; Image: string; ImageID: string; State: string;
    }[];
    const entry = listed.find((x) => x.Id === c.id);
    expect(entry?.Names).toEqual(["k8s_c_pod_ns_uid_0"]);
    expect((await store.image(ours.image.id))?.names).toContain(entry?.Image as string); // its first name
    expect(entry?.ImageID).toBe(ours.image.id);
    expect(entry?.State).toBe("storage");

    const merged = await store.mount(c.id);
    try {
      writeFileSync(join(merged, "tmp", "from-crio"), "hello");
      // podman mounts the same root file system: one mount, count 2 in mountpoints.json.
      expect((await mustPodman(["mount", c.id])).trim()).toBe(merged);
      const counts = JSON.parse(readFileSync(join(runroot, "overlay-layers", "mountpoints.json"), "utf8")) as { id: string; count: number }[];
      expect(counts.find((m) => m.id === c.layer)?.count).toBe(2);
      expect(await store.mountCount(c.id)).toBe(2);
      expect(await store.unmount(c.id)).toBe(true); // still mounted for podman
      expect(existsSync(join(merged, "bin", "busybox"))).toBe(true);
      await mustPodman(["umount", c.id]);
      expect(await store.mountCount(c.id)).toBe(0);
      expect(existsSync(join(merged, "bin", "busybox"))).toBe(false);
    } finally {
      pm.unmountAll();
    }
    expect(readFileSync(join(await store.layerDiffDir(c.layer), "tmp", "from-crio"), "utf8")).toBe("hello");

    await store.deleteContainer(c.id);
    const after = JSON.parse(await mustPodman(["ps", "--all", "--external", "--format", "json"])) as { Id: string }[];
    expect(after.map((x) => x.Id)).not.toContain(c.id);
  });

  test("this code lists and mounts a container podman created", async () => {
    const id = (await mustPodman(["create", "--net=none", "--name", "made-by-podman", "localhost/crio-test/busybox:latest", "/bin/busybox", "true"])).trim();
    try {
      const c = await store.container("made-by-podman");
      expect(c?.id).toBe(id);
      expect(c?.image).toBe(ours.image.id);
      expect((await store.containers()).map((x) => x.id)).toContain(id);
      const layer = await store.layer(c?.layer as string);
      expect(layer?.parent).toBe(ours.layer.id);
      await expect(store.deleteImage(ours.image.id)).rejects.toThrow(/in use by container/);

      const podmanPath = (await mustPodman(["mount", id])).trim();
      try {
        const merged = await store.mount(id);
        expect(merged).toBe(podmanPath);
        expect(existsSync(join(merged, "bin", "busybox"))).toBe(true);
        expect(await store.unmount(id)).toBe(true);
        await mustPodman(["umount", id]);
        expect(await store.mountCount(id)).toBe(0);
      } finally {
        pm.unmountAll();
      }
    } finally {
      await mustPodman(["rm", "--force", id]);
    }
    expect(await store.container(id)).toBeUndefined();
  });

  test("podman deletes an image this code made, and this code deletes one podman made", async () => {
    await mustPodman(["rmi", "--force", ours.image.id]);
    expect(await store.image(ours.image.id)).toBeUndefined();
    expect(await store.layer(ours.layer.id)).toBeUndefined();
    expect(existsSync(join(root, "overlay", ours.layer.id))).toBe(false);

    const res = await store.deleteImage("localhost/podman-made:1", { deleteLayers: true });
    expect(res.layers).toHaveLength(1);
    const listed = JSON.parse(await mustPodman(["images", "--format", "json"])) as unknown[];
    expect(listed).toEqual([]);
    expect(await store.layers()).toEqual([]);
  });
});
