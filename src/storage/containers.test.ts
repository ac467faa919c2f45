// Container records and their root file systems on temporary stores: the records as upstream
// writes them, overlay mounts with shared mount counting, deletion, and crash safety.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from "../errors.ts";
import { isMountPoint, mountPoints, MNT_DETACH, umount2 } from "../sys/mount.ts";
import { marshalRuntimeContainerMetadata } from "./containers.ts";
import { manifestBigDataKey, sha256Digest } from "./ids.ts";
import { overlayMountData, type OverlayDriver } from "./overlay.ts";
import { Store } from "./store.ts";

const base = mkdtempSync(join(tmpdir(), "crio-containers-"));
const children: Subprocess[] = [];

function unmountAllUnder(dir: string): void {
  for (const p of mountPoints().filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length)) {
    try {
      umount2(p, MNT_DETACH);
    } catch {
      // already gone
    }
  }
}

afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  unmountAllUnder(base);
  rmSync(base, { recursive: true, force: true });
});

let n = 0;
function paths(): { root: string; runroot: string } {
  const d = join(base, `s${n++}`);
  return { root: join(d, "root"), runroot: join(d, "run") };
}

async function newStore(options?: string[]): Promise<Store> {
  return Store.open({ ...paths(), driver: "overlay", options });
}

const enc = (s: string) => new TextEncoder().encode(s);

/** A two-layer image: "base" holds /a and /shared, "top" holds /b and overrides /shared. */
async function image(store: Store, name: string) {
  const mk = async (tag: string, parent: string | undefined, content: Record<string, string>) => {
    const diffDigest = sha256Digest(`tar of ${tag}`);
    return store.createLayer({ parent, uncompressedDigest: diffDigest }, async (dir) => {
      for (const [f, data] of Object.entries(content)) writeFileSync(join(dir, f), data);
      return { diffDigest, diffSize: 10 };
    });
  };
  const bottom = await mk(`${name}-base`, undefined, { a: "from base", shared: "base" });
  const top = await mk(`${name}-top`, bottom.id, { b: "from top", shared: "top" });
  const config = JSON.stringify({ name });
  const configDigest = sha256Digest(config);
  const manifest = JSON.stringify({ schemaVersion: 2, config: { digest: configDigest } });
  const img = await store.createImage({ id: configDigest.slice(7), names: [name], topLayer: top.id }, [
    { key: configDigest, data: enc(config) },
    { key: manifestBigDataKey(sha256Digest(manifest)), data: enc(manifest) },
    { key: "manifest", data: enc(manifest) },
  ]);
  return { image: img, bottom, top };
}

function containersJson(store: Store): Record<string, unknown>[] {
  const p = join(store.root, "overlay-containers", "containers.json");
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>[]) : [];
}

function mountsJson(store: Store): Record<string, unknown>[] {
  const p = join(store.runroot, "overlay-layers", "mountpoints.json");
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>[]) : [];
}

function layersJson(store: Store): Record<string, unknown>[] {
  return JSON.parse(readFileSync(join(store.root, "overlay-layers", "layers.json"), "utf8")) as Record<string, unknown>[];
}

function driverOf(store: Store): OverlayDriver {
  return (store as unknown as { driver: OverlayDriver }).driver;
}

describe("RuntimeContainerMetadata", () => {
  test("marshals in CRI-O's field order with omitempty", () => {
    const text = marshalRuntimeContainerMetadata({
      privileged: false,
      pod: true,
      "created-at": 1700000000,
      "metadata-name": "nginx",
      name: "k8s_POD_nginx_default_u1_0",
      "image-id": "i",
      "image-name": "registry.k8s.io/pause:3.9",
      "pod-id": "p",
      "pod-name": "k8s_POD_nginx_default_u1_0",
      namespace: "default",
      uid: "u1",
      attempt: 0,
      mountlabel: "",
    });
    expect(text).toBe(
      '{"pod-name":"k8s_POD_nginx_default_u1_0","pod-id":"p","image-name":"registry.k8s.io/pause:3.9","image-id":"i",' +
        '"name":"k8s_POD_nginx_default_u1_0","metadata-name":"nginx","uid":"u1","namespace":"default","created-at":1700000000,"pod":true}',
    );
  });
});

describe("createContainer", () => {
  test("writes the record, a read-write layer on the image's top layer, and the userdata dirs", async () => {
    const store = await newStore();
    const { image: img, top } = await image(store, "localhost/img:1");
    const metadata = JSON.stringify({ "pod-name": "p", "pod-id": "x", "image-name": "localhost/img:1", name: "c", pod: false });
    const c = await store.createContainer({ names: ["k8s_c_p"], imageId: "localhost/img:1", metadata });
    expect(c.id).toMatch(/^[0-9a-f]{64}$/);
    expect(c.image).toBe(img.id);
    expect(c.names).toEqual(["k8s_c_p"]);
    expect(c.metadata).toBe(metadata);
    expect(c.layer).not.toBe(c.id);

    const rec = containersJson(store)[0] as Record<string, unknown>;
    expect(Object.keys(rec)).toEqual(["id", "names", "image", "layer", "metadata", "created", "flags"]);
    expect(rec.flags).toEqual({ MountLabel: "", ProcessLabel: "" });
    expect(rec.created).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);

    const layerRec = layersJson(store).find((l) => l.id === c.layer) as Record<string, unknown>;
    expect(layerRec.parent).toBe(top.id);
    expect(layerRec.flags).toBeUndefined();
    expect(layerRec["diff-digest"]).toBeUndefined();
    const home = join(store.root, "overlay");
    const lower = readFileSync(join(home, c.layer, "lower"), "utf8").split(":");
    expect(lower).toHaveLength(2);
    expect(readlinkSync(join(home, lower[0] as string))).toBe(`../${top.id}/diff`);
    for (const d of ["diff", "work", "merged"]) expect(statSync(join(home, c.layer, d)).isDirectory()).toBe(true);

    expect(await store.containerDirectory(c.id)).toBe(join(store.root, "overlay-containers", c.id, "userdata"));
    expect(await store.containerRunDirectory("k8s_c_p")).toBe(join(store.runroot, "overlay-containers", c.id, "userdata"));
    expect(statSync(join(store.runroot, "overlay-containers", c.id, "userdata")).mode & 0o777).toBe(0o700);
    expect((await store.container("k8s_c_p"))?.id).toBe(c.id);
    expect((await store.container(c.id.slice(0, 12)))?.id).toBe(c.id);
    expect((await store.containers()).map((x) => x.id)).toEqual([c.id]);
    expect((await store.layers()).map((l) => l.id)).toContain(c.layer);
  });

  test("names and IDs are unique; the error names the holder", async () => {
    const store = await newStore();
    await image(store, "localhost/img:1");
    const a = await store.createContainer({ names: ["web"], imageId: "localhost/img:1" });
    const err = await store.createContainer({ names: ["web"], imageId: "localhost/img:1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toContain(a.id);
    await expect(store.createContainer({ id: a.id, names: ["other"] })).rejects.toThrow(AlreadyExistsError);
    await expect(store.createContainer({ names: ["x"], imageId: "localhost/missing:1" })).rejects.toThrow(NotFoundError);
    // Nothing of the failed attempts is left behind.
    expect((await store.containers()).length).toBe(1);
    expect((await store.layers()).length).toBe(3);
  });

  test("a scratch container (no image) gets an empty root file system", async () => {
    const store = await newStore();
    const c = await store.createContainer({ names: ["scratch"] });
    expect(c.image).toBe("");
    expect(containersJson(store)[0]?.image).toBe("");
    const merged = await store.mount(c.id);
    try {
      writeFileSync(join(merged, "hello"), "hi");
      expect(readFileSync(join(store.root, "overlay", c.layer, "diff", "hello"), "utf8")).toBe("hi");
    } finally {
      await store.unmount(c.id);
    }
  });

  test("big data items are kept beside the userdata dir", async () => {
    const store = await newStore();
    const c = await store.createContainer({ names: ["bd"] });
    await store.setContainerBigData(c.id, "spec", enc("{}"));
    expect(new TextDecoder().decode(await store.containerBigData("bd", "spec"))).toBe("{}");
    const rec = containersJson(store)[0] as Record<string, unknown>;
    expect(rec["big-data-names"]).toEqual(["spec"]);
    expect(rec["big-data-sizes"]).toEqual({ spec: 2 });
    expect(rec["big-data-digests"]).toEqual({ spec: sha256Digest("{}") });
    expect(existsSync(join(store.root, "overlay-containers", c.id, "spec"))).toBe(true);
    await expect(store.containerBigData(c.id, "nope")).rejects.toThrow(NotFoundError);
  });

  for (const step of ["layer", "record"] as const) {
    test(`a process killed mid-create (after the ${step} is saved) leaves nothing after reopen`, async () => {
      const p = paths();
      const first = await Store.open({ ...p, driver: "overlay" });
      const { image: img } = await image(first, "localhost/img:1");
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, "testdata", "container-crash-child.ts"), p.root, p.runroot, step, img.id], {
        stdout: "pipe",
        stderr: "inherit",
      });
      children.push(proc);
      const reader = proc.stdout.getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`crash child exited early: ${out}`);
        out += new TextDecoder().decode(value);
      }
      const [, cid, lid] = /AT (\S+) (\S+)/.exec(out) as unknown as [string, string, string];
      proc.kill("SIGKILL");
      await proc.exited;
      expect(existsSync(join(p.root, "overlay", lid))).toBe(true);
      if (step === "record") expect(containersJson(first).map((r) => r.id)).toEqual([cid]);

      const reopened = await Store.open({ ...p, driver: "overlay" });
      expect(await reopened.containers()).toEqual([]);
      expect(containersJson(reopened)).toEqual([]);
      expect((await reopened.layers()).map((l) => l.id)).not.toContain(lid);
      expect(existsSync(join(p.root, "overlay", lid))).toBe(false);
      expect(existsSync(join(p.root, "overlay-containers", cid))).toBe(false);
      expect(existsSync(join(p.runroot, "overlay-containers", cid))).toBe(false);
      // The name is free again, and the first (stale) store object sees the repair.
      const c = await first.createContainer({ names: ["half-made"], imageId: img.id });
      expect((await reopened.containers()).map((x) => x.id)).toEqual([c.id]);
    });
  }
});

describe("mount", () => {
  test("merged shows the image; writes land in the container layer's diff; unmount", async () => {
    const store = await newStore();
    await image(store, "localhost/img:1");
    const c = await store.createContainer({ names: ["m"], imageId: "localhost/img:1" });
    const merged = await store.mount(c.id);
    try {
      expect(merged).toBe(join(store.root, "overlay", c.layer, "merged"));
      expect(isMountPoint(merged)).toBe(true);
      expect(readFileSync(join(merged, "a"), "utf8")).toBe("from base");
      expect(readFileSync(join(merged, "b"), "utf8")).toBe("from top");
      expect(readFileSync(join(merged, "shared"), "utf8")).toBe("top");
      writeFileSync(join(merged, "written"), "by the container");
      expect(readFileSync(join(store.root, "overlay", c.layer, "diff", "written"), "utf8")).toBe("by the container");
      expect(mountsJson(store)).toEqual([{ id: c.layer, path: merged, count: 1 }]);
      expect(await store.mountCount("m")).toBe(1);
    } finally {
      expect(await store.unmount(c.id)).toBe(false);
    }
    expect(isMountPoint(merged)).toBe(false);
    expect(mountsJson(store)).toEqual([]);
    expect(readFileSync(join(store.root, "overlay", c.layer, "diff", "written"), "utf8")).toBe("by the container");
  });

  test("mounts are counted: the second mount shares the first; unmount at zero", async () => {
    const store = await newStore();
    await image(store, "localhost/img:1");
    const c = await store.createContainer({ names: ["m"], imageId: "localhost/img:1" });
    const other = await Store.open({ root: store.root, runroot: store.runroot, driver: "overlay" }); // another process's view
    const m1 = await store.mount(c.id);
    try {
      const m2 = await other.mount("m");
      expect(m2).toBe(m1);
      expect(mountsJson(store)).toEqual([{ id: c.layer, path: m1, count: 2 }]);
      expect(mountPoints().filter((p) => p === m1)).toHaveLength(1);
      expect(await store.unmount(c.id)).toBe(true);
      expect(isMountPoint(m1)).toBe(true);
      expect(mountsJson(store)[0]?.count).toBe(1);
      expect(await other.unmount(c.id)).toBe(false);
      expect(isMountPoint(m1)).toBe(false);
      // A stale count (the mount vanished underneath) starts over.
      await store.mount(c.id);
      umount2(m1, MNT_DETACH);
      await store.mount(c.id);
      expect(mountsJson(store)[0]?.count).toBe(1);
      expect(await store.unmount(c.id, true)).toBe(false);
      expect(isMountPoint(m1)).toBe(false);
    } finally {
      unmountAllUnder(store.root);
    }
  });

  test("mountopt from the storage options applies; per-mount options replace it", async () => {
    const store = await newStore(["overlay.mountopt=nodev"]);
    const c = await store.createContainer({ names: ["m"] });
    const opts = (p: string) =>
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .find((l) => l.split(" ")[4] === p)
        ?.split(" ")[5] ?? "";
    try {
      const merged = await store.mount(c.id);
      expect(opts(merged).split(",")).toContain("nodev");
      await store.unmount(c.id);
      await store.mount(c.id, { options: ["noexec"] });
      expect(opts(merged).split(",")).toContain("noexec");
      expect(opts(merged).split(",")).not.toContain("nodev");
      await store.unmount(c.id);
    } finally {
      unmountAllUnder(store.root);
    }
  });

  test("mount data too long for a page uses paths relative to the driver home", async () => {
    const home = "/var/lib/containers/storage/overlay";
    const lowers = Array.from({ length: 3 }, (_, i) => `l/${String(i).repeat(26)}`);
    const abs = overlayMountData(home, "abc", lowers, "nodev", undefined, 4095);
    expect(abs).toEqual({
      relative: false,
      data: `nodev,lowerdir=${lowers.map((l) => `${home}/${l}`).join(":")},upperdir=${home}/abc/diff,workdir=${home}/abc/work`,
    });
    const rel = overlayMountData(home, "abc", lowers, "", undefined, 150);
    expect(rel).toEqual({ relative: true, data: `lowerdir=${lowers.join(":")},upperdir=abc/diff,workdir=abc/work` });
    expect(() => overlayMountData(home, "abc", lowers, "", undefined, 20)).toThrow(/too large/);
    expect(overlayMountData(home, "abc", [], "", undefined, 4095).data).toStartWith(`lowerdir=${home}/abc/empty,`);

    // A real mount through the relative form (the driver chdirs into its home for it).
    const store = await newStore();
    await image(store, "localhost/img:1");
    const c = await store.createContainer({ names: ["m"], imageId: "localhost/img:1" });
    driverOf(store).mountDataLimit = 300;
    const cwd = process.cwd();
    try {
      const merged = await store.mount(c.id);
      expect(readFileSync(join(merged, "a"), "utf8")).toBe("from base");
      expect(process.cwd()).toBe(cwd);
      const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === merged) ?? "";
      expect(line).toContain(`upperdir=${c.layer}/diff`); // the relative form was used
      await store.unmount(c.id);
    } finally {
      unmountAllUnder(store.root);
    }
  });
});

describe("deleteContainer", () => {
  test("removes the record, the layer (unmounting it) and the directories; unknown is NotFound", async () => {
    const store = await newStore();
    await image(store, "localhost/img:1");
    const c = await store.createContainer({ names: ["d"], imageId: "localhost/img:1" });
    const merged = await store.mount(c.id);
    const link = readFileSync(join(store.root, "overlay", c.layer, "link"), "utf8");
    await store.deleteContainer("d");
    expect(isMountPoint(merged)).toBe(false);
    expect(await store.containers()).toEqual([]);
    expect(containersJson(store)).toEqual([]);
    expect(mountsJson(store)).toEqual([]);
    expect(await store.layer(c.layer)).toBeUndefined();
    expect(existsSync(join(store.root, "overlay", c.layer))).toBe(false);
    expect(existsSync(join(store.root, "overlay", "l", link))).toBe(false);
    expect(existsSync(join(store.root, "overlay-containers", c.id))).toBe(false);
    expect(existsSync(join(store.runroot, "overlay-containers", c.id))).toBe(false);
    await expect(store.deleteContainer(c.id)).rejects.toThrow(NotFoundError);
    // The name is free again.
    await store.createContainer({ names: ["d"], imageId: "localhost/img:1" });
  });

  test("images and layers in use by a container are not deleted", async () => {
    const store = await newStore();
    const { image: img, top } = await image(store, "localhost/img:1");
    const c = await store.createContainer({ names: ["u"], imageId: img.id });
    await expect(store.deleteImage(img.id)).rejects.toThrow(/in use by container/);
    await expect(store.deleteLayer(c.layer)).rejects.toThrow(FailedPreconditionError);
    await expect(store.deleteLayer(c.layer)).rejects.toThrow(/used by container/);
    await expect(store.deleteLayer(top.id)).rejects.toThrow(FailedPreconditionError);
    await store.deleteContainer(c.id);
    expect((await store.deleteImage(img.id)).layers).toHaveLength(2);
    expect(await store.layers()).toEqual([]);
  });
});
