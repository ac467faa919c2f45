import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { busyboxImage, maliciousLayers, randomBytes, sha256 } from "../../../test/lib/images.ts";
import { createTar, tarStream, type TarInput } from "../tar/writer.ts";
import { cleanName, extractTar, LayerError, unpackLayer } from "./unpack.ts";

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "unpack-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function target(): string {
  const d = join(work, `t${n++}`);
  mkdirSync(d);
  return d;
}

function xattr(path: string, key: string): string | null {
  const r = Bun.spawnSync([
    "python3", "-c",
    "import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())\nexcept OSError: print('<none>')",
    path, key,
  ]);
  const out = r.stdout.toString().trim();
  return out === "<none>" ? null : out;
}

function chunked(bytes: Uint8Array, size = 64 << 10): Uint8Array[] {
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

describe("cleanName", () => {
  test("drops empty, '.', a leading '/'; applies '..'; refuses climbing out", () => {
    expect(cleanName("./a//b/./c/")).toEqual(["a", "b", "c"]);
    expect(cleanName("/etc/passwd")).toEqual(["etc", "passwd"]);
    expect(cleanName("a/../b")).toEqual(["b"]);
    expect(cleanName("/../x")).toEqual(["x"]); // as filepath.Clean("/../x") = "/x"
    expect(cleanName("../x")).toBeNull();
    expect(cleanName("a/../../x")).toBeNull();
    expect(cleanName("./")).toEqual([]);
  });
});

describe("unpackLayer semantics", () => {
  const entries: TarInput[] = [
    { name: "dir/", mode: 0o750, uid: 1000, gid: 1000, mtime: { sec: 1600000000, nsec: 111 } },
    { name: "dir/file", data: "data", mode: 0o640, uid: 1000, gid: 1001, mtime: { sec: 1700000000, nsec: 123456789 }, xattrs: { "user.a": "1", "trusted.b": "2" } },
    { name: "dir/setuid", data: "s", mode: 0o4755 },
    { name: "dir/setgid", data: "g", mode: 0o2755 },
    { name: "sticky/", mode: 0o1777 },
    { name: "dir/symlink", type: "symlink", linkname: "../nowhere", uid: 5, gid: 6, mtime: 1000 },
    { name: "dir/hardlink", type: "link", linkname: "dir/file", mode: 0o640, uid: 1000, gid: 1001, mtime: { sec: 1700000000, nsec: 123456789 } },
    { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "dev/loop9", type: "block", devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
    { name: "run/fifo", type: "fifo", mode: 0o620 },
    { name: "implicit/parents/file", data: "p" },
    { name: "/absolute/file", data: "abs" },
    { name: "./dotted/./name", data: "dot" },
    { name: "unicode-é", data: "é" },
  ];
  let dir: string;
  let result: Awaited<ReturnType<typeof unpackLayer>>;
  const tar = createTar(entries);
  beforeAll(async () => {
    dir = target();
    result = await unpackLayer(chunked(tar, 1000), dir);
  });

  test("reports the diff digest and size of the tar, and the owners", () => {
    expect(result.diffDigest).toBe(sha256(tar));
    expect(result.diffSize).toBe(tar.length);
    expect(result.compression).toBe("none");
    expect(result.compressedDigest).toBe(result.diffDigest);
    expect(result.uidset).toEqual([0, 5, 1000]);
    expect(result.gidset).toEqual([0, 6, 1000, 1001]);
  });

  test("files: data, mode, owner, nanosecond mtime, xattrs", () => {
    const st = lstatSync(join(dir, "dir/file"), { bigint: true });
    expect(readFileSync(join(dir, "dir/file"), "utf8")).toBe("data");
    expect(Number(st.mode) & 0o7777).toBe(0o640);
    expect([Number(st.uid), Number(st.gid)]).toEqual([1000, 1001]);
    expect(st.mtimeNs).toBe(1700000000123456789n);
    expect(xattr(join(dir, "dir/file"), "user.a")).toBe("1");
    expect(xattr(join(dir, "dir/file"), "trusted.b")).toBe("2");
  });

  test("setuid, setgid and sticky bits are kept", () => {
    expect(statSync(join(dir, "dir/setuid")).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(dir, "dir/setgid")).mode & 0o7777).toBe(0o2755);
    expect(statSync(join(dir, "sticky")).mode & 0o7777).toBe(0o1777);
  });

  test("directories: mode, owner, and mtime set after their contents", () => {
    const st = lstatSync(join(dir, "dir"), { bigint: true });
    expect(Number(st.mode) & 0o7777).toBe(0o750);
    expect([Number(st.uid), Number(st.gid)]).toEqual([1000, 1000]);
    expect(st.mtimeNs).toBe(1600000000000000111n);
  });

  test("symlinks: target kept as data, own owner and mtime", () => {
    const st = lstatSync(join(dir, "dir/symlink"));
    expect(st.isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, "dir/symlink"))).toBe("../nowhere");
    expect([st.uid, st.gid, st.mtimeMs]).toEqual([5, 6, 1000000]);
  });

  test("hard links share the inode", () => {
    const a = statSync(join(dir, "dir/file"));
    const b = statSync(join(dir, "dir/hardlink"));
    expect(b.ino).toBe(a.ino);
    expect(a.nlink).toBe(2);
  });

  test("devices and fifos", () => {
    const nul = lstatSync(join(dir, "dev/null"));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe(0x103);
    expect(nul.mode & 0o7777).toBe(0o666);
    const loop = lstatSync(join(dir, "dev/loop9"));
    expect(loop.isBlockDevice()).toBe(true);
    expect([loop.rdev, loop.gid]).toEqual([0x709, 6]);
    const fifo = lstatSync(join(dir, "run/fifo"));
    expect(fifo.isFIFO()).toBe(true);
    expect(fifo.mode & 0o7777).toBe(0o620);
  });

  test("missing parents are created 0755 root; absolute and dotted names land inside", () => {
    const p = statSync(join(dir, "implicit/parents"));
    expect([p.mode & 0o7777, p.uid, p.gid]).toEqual([0o755, 0, 0]);
    expect(readFileSync(join(dir, "implicit/parents/file"), "utf8")).toBe("p");
    expect(readFileSync(join(dir, "absolute/file"), "utf8")).toBe("abs");
    expect(readFileSync(join(dir, "dotted/name"), "utf8")).toBe("dot");
    expect(readFileSync(join(dir, "unicode-é"), "utf8")).toBe("é");
  });
});

describe("entries replacing existing ones", () => {
  test("file over dir, dir over file, symlink over file, dir over dir merges", async () => {
    const dir = target();
    mkdirSync(join(dir, "was-dir/sub"), { recursive: true });
    writeFileSync(join(dir, "was-dir/sub/f"), "old");
    writeFileSync(join(dir, "was-file"), "old");
    writeFileSync(join(dir, "to-symlink"), "old");
    mkdirSync(join(dir, "merge"));
    writeFileSync(join(dir, "merge/kept"), "kept");
    await unpackLayer([createTar([
      { name: "was-dir", data: "now a file" },
      { name: "was-file/", mode: 0o700 },
      { name: "to-symlink", type: "symlink", linkname: "was-dir" },
      { name: "merge/", mode: 0o711 },
      { name: "merge/new", data: "new" },
    ])], dir);
    expect(readFileSync(join(dir, "was-dir"), "utf8")).toBe("now a file");
    expect(statSync(join(dir, "was-file")).isDirectory()).toBe(true);
    expect(readlinkSync(join(dir, "to-symlink"))).toBe("was-dir");
    expect(readdirSync(join(dir, "merge")).sort()).toEqual(["kept", "new"]);
    expect(statSync(join(dir, "merge")).mode & 0o7777).toBe(0o711);
  });

  test("a file replacing a symlink replaces the link, never writes through it", async () => {
    const dir = target();
    const victim = join(work, "victim");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(dir, "link"));
    await unpackLayer([createTar([{ name: "link", data: "replaced" }])], dir);
    expect(lstatSync(join(dir, "link")).isFile()).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("untouched");
  });

  test("a later entry of the same name in the same layer wins", async () => {
    const dir = target();
    await unpackLayer([createTar([{ name: "x", data: "first" }, { name: "x", data: "second" }, { name: "d/" }, { name: "d", data: "file" }])], dir);
    expect(readFileSync(join(dir, "x"), "utf8")).toBe("second");
    expect(readFileSync(join(dir, "d"), "utf8")).toBe("file");
  });

  test("the root entry applies its metadata to the target; a non-directory root is refused", async () => {
    const dir = target();
    await unpackLayer([createTar([{ name: "./", mode: 0o711, mtime: 12345 }, { name: "f", data: "x" }])], dir);
    expect(statSync(dir).mode & 0o7777).toBe(0o711);
    expect(statSync(dir).mtimeMs).toBe(12345000);
  });
});

describe("whiteouts (overlay format)", () => {
  test(".wh.NAME becomes a 0:0 char device, .wh..wh..opq an opaque xattr", async () => {
    const dir = target();
    await unpackLayer([createTar([
      { name: "a/.wh.gone", data: "", uid: 7, gid: 8 },
      { name: "o/", mode: 0o755 },
      { name: "o/.wh..wh..opq", data: "" },
      { name: "o/new", data: "n" },
      { name: "b/.wh..wh.plnk", data: "" },
      { name: ".wh.top", data: "" },
      { name: ".wh.x", data: "" },
      { name: "x/.wh.y", data: "" }, // under a whited-out directory: skipped, as upstream
    ])], dir);
    const wh = lstatSync(join(dir, "a/gone"));
    expect(wh.isCharacterDevice()).toBe(true);
    expect([wh.rdev, wh.uid, wh.gid]).toEqual([0, 7, 8]);
    expect(existsSync(join(dir, "a/.wh.gone"))).toBe(false);
    expect(xattr(join(dir, "o"), "trusted.overlay.opaque")).toBe("y");
    expect(existsSync(join(dir, "o/.wh..wh..opq"))).toBe(false);
    expect(readdirSync(join(dir, "b"))).toEqual([]);
    expect(lstatSync(join(dir, "top")).isCharacterDevice()).toBe(true);
    expect(lstatSync(join(dir, "x")).isCharacterDevice()).toBe(true);
  });

  test("trusted.overlay.* xattrs from the archive are not applied", async () => {
    const dir = target();
    const warnings: string[] = [];
    await unpackLayer([createTar([{ name: "d/", xattrs: { "trusted.overlay.redirect": "/etc", "user.ok": "1" } }])], dir, {
      onWarning: (w) => warnings.push(w),
    });
    expect(xattr(join(dir, "d"), "trusted.overlay.redirect")).toBeNull();
    expect(xattr(join(dir, "d"), "user.ok")).toBe("1");
    expect(warnings.join()).toContain("trusted.overlay.redirect");
  });
});

describe("compression", () => {
  const tar = createTar([{ name: "f", data: "payload ".repeat(10000) }, { name: "d/" }]);
  const blobs = {
    gzip: gzipSync(tar),
    zstd: zstdCompressSync(tar),
    none: tar,
  };
  for (const [kind, blob] of Object.entries(blobs)) {
    test(`${kind}: detected from the magic bytes; digests of the tar and of the blob`, async () => {
      const dir = target();
      const r = await unpackLayer(new Blob([blob]).stream(), dir);
      expect(r.compression).toBe(kind as never);
      expect(r.diffDigest).toBe(sha256(tar));
      expect(r.diffSize).toBe(tar.length);
      expect(r.compressedDigest).toBe(sha256(blob));
      expect(r.compressedSize).toBe(blob.length);
      expect(readFileSync(join(dir, "f"), "utf8")).toBe("payload ".repeat(10000));
    });
  }

  test("a media type that disagrees with the bytes is a warning; the bytes win", async () => {
    const warnings: string[] = [];
    const r = await unpackLayer([blobs.zstd], target(), {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      onWarning: (w) => warnings.push(w),
    });
    expect(r.compression).toBe("zstd");
    expect(warnings[0]).toContain("says gzip");
  });

  test("concatenated gzip members are one stream", async () => {
    const half = tar.length / 2;
    const blob = new Uint8Array([...gzipSync(tar.subarray(0, half)), ...gzipSync(tar.subarray(half))]);
    const r = await unpackLayer([blob], target());
    expect(r.diffDigest).toBe(sha256(tar));
  });

  test("bytes after the end-of-archive blocks are part of the diff digest", async () => {
    const padded = new Uint8Array([...tar, ...new Uint8Array(10240)]);
    const r = await unpackLayer([gzipSync(padded)], target());
    expect(r.diffDigest).toBe(sha256(padded));
    expect(r.diffSize).toBe(padded.length);
  });

  test("an empty blob is an empty layer", async () => {
    const r = await unpackLayer([], target());
    expect(r.diffSize).toBe(0);
    expect(r.diffDigest).toBe(sha256(new Uint8Array(0)));
  });
});

describe("corrupt and truncated streams fail clearly", () => {
  const tar = createTar([{ name: "f", data: randomBytes(300000) }, { name: "g", data: "x".repeat(100000) }]);
  async function failure(input: Uint8Array): Promise<LayerError> {
    const err = await unpackLayer(chunked(input, 4096), target()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerError);
    return err as LayerError;
  }

  test("truncated gzip", async () => {
    const gz = gzipSync(tar);
    const err = await failure(gz.subarray(0, gz.length - 1000));
    expect(err.kind).toBe("corrupt");
    expect(err.message).toMatch(/gzip stream: unexpected end of file/);
  });

  test("corrupt gzip", async () => {
    const gz = gzipSync(tar).slice();
    for (let i = 50; i < 60; i++) gz[i] = gz[i]! ^ 0xff;
    expect((await failure(gz)).message).toContain("gzip stream");
  });

  test("corrupt zstd (a damaged block header)", async () => {
    const zs = zstdCompressSync(tar).slice();
    // After the frame header (magic + descriptor + window + content size) comes the first block header.
    for (let i = 4; i < 16; i++) zs[i] = 0xff;
    const err = await failure(zs);
    expect(err.kind).toBe("corrupt");
    expect(err.message).toContain("zstd stream");
  });

  test("truncated zstd", async () => {
    const zs = zstdCompressSync(tar);
    expect((await failure(zs.subarray(0, zs.length - 100))).message).toContain("zstd stream");
  });

  test("truncated uncompressed tar", async () => {
    const err = await failure(tar.subarray(0, 200000));
    expect(err.message).toContain("unexpected end of archive inside file data");
    expect(err.entry).toBe("f");
  });

  test("bad header checksum", async () => {
    const bad = tar.slice();
    bad[10] = bad[10]! ^ 1;
    const err = await failure(bad);
    expect(err.kind).toBe("corrupt");
    expect(err.message).toContain("invalid header checksum");
  });

  test("sparse entries are refused as unsupported", async () => {
    const w = createTar([{ name: "s", data: "" }]).slice();
    w[156] = 0x53; // 'S'
    w.fill(0x20, 148, 156);
    w.set(new TextEncoder().encode(w.subarray(0, 512).reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    const err = await failure(w);
    expect(err.kind).toBe("unsupported");
    expect(err.message).toContain("sparse");
  });

  test("an aborted unpack stops between entries", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(unpackLayer([tar], target(), { signal: ac.signal })).rejects.toThrow();
  });
});

describe("malicious layers", () => {
  let outside: string;
  let snapshot: string;
  const listing = (): string =>
    Bun.spawnSync(["bash", "-c", `cd ${outside} && find . -printf '%p %y %m %s %n %T@\\n' | sort && cat sentinel`]).stdout.toString();

  beforeAll(() => {
    outside = join(work, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "sentinel"), "sentinel\n");
    snapshot = listing();
  });

  const layers = maliciousLayers("/placeholder"); // names only: rebuilt below with the real sentinel path
  for (const name of Object.keys(layers)) {
    test(`${name}: ${layers[name]!.expect}, nothing outside touched`, async () => {
      const layer = maliciousLayers(outside)[name]!;
      const dir = target();
      const shadowBefore = statSync("/etc/shadow").nlink;
      const err = await unpackLayer([layer.tar], dir).then(() => null, (e: unknown) => e);
      if (layer.expect === "refused") {
        expect(err).toBeInstanceOf(LayerError);
        // Named by its entry, except when the archive itself is malformed (no entry to name).
        expect((err as LayerError).message).toMatch(/^layer( entry "|: tar: )/);
      } else {
        expect(err).toBeNull();
        for (const p of layer.landsAt ?? []) expect(existsSync(join(dir, p)) || lstatSync(join(dir, p)).isCharacterDevice()).toBe(true);
      }
      expect(listing()).toBe(snapshot);
      expect(statSync("/etc/shadow").nlink).toBe(shadowBefore);
      expect(existsSync("/tmp/x")).toBe(false);
      expect(existsSync(join(work, "pwned"))).toBe(false);
    });
  }
});

describe("the busybox image through overlayfs", () => {
  test("three unpacked layers mount as lowerdirs: whiteout hides, opaque dir hides, hard link shares, busybox runs", async () => {
    const image = busyboxImage({ layers: "multi", compression: "gzip" });
    const dirs: string[] = [];
    for (const [i, layer] of image.layers.entries()) {
      const dir = join(work, `overlay-l${i + 1}`);
      mkdirSync(dir);
      const r = await unpackLayer([layer.blob], dir, { mediaType: layer.mediaType });
      expect(r.diffDigest).toBe(image.layerDiffIds[i]!);
      expect(r.compressedDigest).toBe(image.layerDigests[i]!);
      dirs.push(dir);
    }
    const l2 = dirs[1]!;
    expect(statSync(join(l2, "data/hello-hardlink")).ino).toBe(statSync(join(l2, "data/hello.txt")).ino);
    expect(lstatSync(join(dirs[2]!, "data/remove-me.txt")).rdev).toBe(0);
    const merged = join(work, "merged");
    mkdirSync(merged);
    const mount = Bun.spawnSync(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${dirs[2]}:${dirs[1]}:${dirs[0]}`, merged]);
    expect(mount.stderr.toString()).toBe("");
    try {
      expect(existsSync(join(merged, "data/remove-me.txt"))).toBe(false);
      expect(readFileSync(join(merged, "data/hello.txt"), "utf8")).toBe("hello from layer 2\n");
      expect(readdirSync(join(merged, "opaque")).sort()).toEqual(["new.txt"]);
      expect(statSync(join(merged, "data/hello-hardlink")).ino).toBe(statSync(join(merged, "data/hello.txt")).ino);
      expect(readlinkSync(join(merged, "data/hello-symlink"))).toBe("hello.txt");
      expect(statSync(join(merged, "data/setuid")).mode & 0o7777).toBe(0o4755);
      expect(statSync(join(merged, "tmp")).mode & 0o7777).toBe(0o1777);
      expect(statSync(join(merged, "data/nanotime"), { bigint: true }).mtimeNs).toBe(1600000000123456789n);
      const run = Bun.spawnSync(["chroot", merged, "/bin/sh", "-c", "cat /data/hello.txt /etc/layer3; ls /opaque; id -u app"]);
      expect(run.stdout.toString()).toBe("hello from layer 2\nlayer 3 was here\nnew.txt\n1000\n");
    } finally {
      Bun.spawnSync(["umount", merged]);
    }
  });
});

describe("memory stays bounded", () => {
  // Measured in a fresh process (testdata/memory-probe.ts): RSS in this shared test process
  // depends on everything that ran before.
  for (const compression of ["none", "gzip"] as const) test(`a 256 MiB layer (${compression}) streams through in bounded memory`, async () => {
    const probe = Bun.spawn([process.execPath, join(import.meta.dir, "testdata", "memory-probe.ts"), compression], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(probe.stdout).text(), new Response(probe.stderr).text(), probe.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const r = JSON.parse(out) as { growthMiB: number; diffSize: number; seconds: number };
    console.log(`${compression}: unpacked ${(r.diffSize / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s, peak RSS growth ${r.growthMiB.toFixed(1)} MiB`);
    expect(r.diffSize).toBeGreaterThan(256 * 2 ** 20);
    expect(r.growthMiB).toBeLessThan(64);
  }, 120_000);
});

describe("extractTar", () => {
  test("applies a plain tar stream without hashing", async () => {
    const dir = target();
    const r = await extractTar([createTar([{ name: "a", data: "b", uid: 3 }])], dir);
    expect(r.uidset).toEqual([3]);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("b");
  });
});
