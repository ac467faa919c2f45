import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TarError, TarReader, type TarHeader } from "./reader.ts";
import { createTar, TarWriter } from "./writer.ts";

let dir: string;
let tree: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tarr-"));
  // A tree for GNU tar and python to archive: long names, links, special files, xattrs.
  tree = join(dir, "tree");
  const deep = join(tree, "a".repeat(60), "b".repeat(60), "c".repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "long-file-name-" + "x".repeat(90)), "deep data\n");
  writeFileSync(join(tree, "plain"), "plain data\n");
  linkSync(join(tree, "plain"), join(tree, "hardlink"));
  symlinkSync("plain", join(tree, "symlink"));
  symlinkSync("l".repeat(180), join(tree, "longlink"));
  Bun.spawnSync(["mkfifo", join(tree, "fifo")]);
  Bun.spawnSync(["python3", "-c", "import os,sys; os.setxattr(sys.argv[1], 'user.color', b'blue')", join(tree, "plain")]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Read extends TarHeader {
  data: string;
}

async function readAll(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>, opts = {}): Promise<Read[]> {
  const out: Read[] = [];
  for await (const e of new TarReader(source, opts)) out.push({ ...e.header, data: new TextDecoder().decode(await e.bytes()) });
  return out;
}

function byName(entries: Read[], suffix: string): Read {
  const e = entries.find((x) => x.name.replace(/\/$/, "").endsWith(suffix));
  if (!e) throw new Error(`no entry ending in ${suffix}: ${entries.map((x) => x.name).join(", ")}`);
  return e;
}

function checkTree(entries: Read[]): void {
  const deep = byName(entries, "long-file-name-" + "x".repeat(90));
  expect(deep.name.length).toBeGreaterThan(255);
  expect(deep.data).toBe("deep data\n");
  // "plain" and "hardlink" share an inode: whichever comes first carries the data, the other links to it.
  const pair = [byName(entries, "/plain"), byName(entries, "/hardlink")];
  const file = pair.find((e) => e.type === "file")!;
  const link = pair.find((e) => e.type === "link")!;
  expect(file.data).toBe("plain data\n");
  expect(link.linkname).toBe(file.name);
  expect(byName(entries, "/symlink").linkname).toBe("plain");
  expect(byName(entries, "longlink").linkname).toBe("l".repeat(180));
  expect(byName(entries, "fifo").type).toBe("fifo");
  expect(byName(entries, "tree").type).toBe("dir");
}

describe("reading archives written by other tools", () => {
  for (const format of ["gnu", "posix", "ustar-with-long-names-as-gnu"] as const) {
    test(`GNU tar --format=${format}`, async () => {
      const file = join(dir, `gnu-${format}.tar`);
      const fmt = format === "ustar-with-long-names-as-gnu" ? "oldgnu" : format;
      const r = Bun.spawnSync(["tar", `--format=${fmt}`, "--xattrs", "--xattrs-include=user.*", "-cf", file, "-C", dir, "tree"]);
      expect(r.stderr.toString()).toBe("");
      const entries = await readAll([readFileSync(file)]);
      checkTree(entries);
      if (format === "posix") {
        const withData = [byName(entries, "/plain"), byName(entries, "/hardlink")].find((e) => e.type === "file")!;
        expect(withData.xattrs.get("user.color")).toEqual(new TextEncoder().encode("blue"));
        expect(withData.format).toBe("pax");
      }
    });
  }

  for (const format of ["GNU_FORMAT", "PAX_FORMAT"] as const) {
    test(`python tarfile ${format}`, async () => {
      const file = join(dir, `py-${format}.tar`);
      const script = [
        "import tarfile, sys, io",
        `t = tarfile.open(sys.argv[1], 'w', format=tarfile.${format})`,
        "t.add(sys.argv[2], arcname='tree')",
        // base-256 (GNU) or pax (PAX) numbers: a huge uid, a negative mtime, a fractional one.
        "i = tarfile.TarInfo('big-ids'); i.uid = 3000000000; i.gid = 4000000; i.mtime = -1; i.size = 3",
        "t.addfile(i, io.BytesIO(b'abc'))",
        "i = tarfile.TarInfo('frac'); i.mtime = 1700000000.25; i.size = 0",
        "t.addfile(i)",
        "t.close()",
      ].join("\n");
      const r = Bun.spawnSync(["python3", "-c", script, file, tree]);
      expect(r.stderr.toString()).toBe("");
      const entries = await readAll([readFileSync(file)]);
      checkTree(entries);
      const big = byName(entries, "big-ids");
      expect([big.uid, big.gid, big.mtime.sec, big.data]).toEqual([3000000000, 4000000, -1, "abc"]);
      if (format === "PAX_FORMAT") expect(byName(entries, "frac").mtime).toEqual({ sec: 1700000000, nsec: 250000000 });
    });
  }

  test("GNU sparse files are refused clearly (old GNU and pax forms)", async () => {
    const sparse = join(dir, "sparse-src");
    mkdirSync(sparse);
    Bun.spawnSync(["truncate", "-s", "10M", join(sparse, "holes")]);
    writeFileSync(join(sparse, "holes"), "x", { flag: "r+" });
    for (const fmt of ["gnu", "posix"]) {
      const file = join(dir, `sparse-${fmt}.tar`);
      Bun.spawnSync(["tar", `--format=${fmt}`, "-S", "-cf", file, "-C", sparse, "holes"]);
      await expect(readAll([readFileSync(file)])).rejects.toThrow(/sparse file .*holes.* not supported/);
    }
  });
});

describe("TarReader", () => {
  const sample = createTar([
    { name: "d/", mtime: 5 },
    { name: "d/a", data: "A".repeat(1000) },
    { name: `${"n".repeat(120)}/b`, data: "B" },
    { name: "link", type: "link", linkname: "d/a" },
  ]);

  test("gives the same entries whatever the chunking (down to one byte)", async () => {
    const whole = await readAll([sample]);
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < sample.length; i++) bytes.push(sample.subarray(i, i + 1));
    expect(await readAll(bytes)).toEqual(whole);
    const odd: Uint8Array[] = [];
    for (let i = 0; i < sample.length; i += 777) odd.push(sample.subarray(i, i + 777));
    expect(await readAll(odd)).toEqual(whole);
  });

  test("reads a ReadableStream", async () => {
    const entries = await readAll(new Blob([sample]).stream());
    expect(entries.map((e) => e.name)).toEqual(["d/", "d/a", `${"n".repeat(120)}/b`, "link"]);
  });

  test("skips data the caller does not read", async () => {
    const names = [];
    for await (const e of new TarReader([sample])) names.push(e.header.name);
    expect(names.length).toBe(4);
  });

  test("base-256 size, uid and mtime fields", async () => {
    const w = new TarWriter();
    const hdr = w.header({ name: "b256", size: 5 });
    // Rewrite size (124..136), uid (108..116) and mtime (136..148) as GNU base-256.
    const put = (off: number, len: number, value: bigint) => {
      let x = value < 0n ? -value - 1n : value;
      for (let i = len - 1; i >= 0; i--) {
        const b = Number(x & 0xffn);
        hdr[off + i] = value < 0n ? ~b & 0xff : b;
        x >>= 8n;
      }
      hdr[off] = value < 0n ? 0xff : 0x80;
    };
    put(124, 12, 5n);
    put(108, 8, 1n << 40n);
    put(136, 12, -86400n);
    hdr.fill(0x20, 148, 156);
    const sum = hdr.reduce((a, b) => a + b, 0);
    hdr.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    const tar = new Uint8Array([...hdr, ...new TextEncoder().encode("hello"), ...new Uint8Array(507), ...w.end()]);
    const [e] = await readAll([tar]);
    expect([e!.size, e!.uid, e!.mtime.sec, e!.data]).toEqual([5, 2 ** 40, -86400, "hello"]);
  });

  test("LIBARCHIVE.xattr records (URL-encoded name, base64 value)", async () => {
    const tar = createTar([{ name: "f", data: "", pax: { "LIBARCHIVE.xattr.user.with%20space": Buffer.from([0, 1, 2]).toString("base64") } }]);
    const [e] = await readAll([tar]);
    expect(e!.xattrs.get("user.with space")).toEqual(new Uint8Array([0, 1, 2]));
  });

  test("pax global headers are reported; applied to later entries only when asked", async () => {
    // The writer makes no 'g' entries: build one from a header whose typeflag is patched.
    const w = new TarWriter();
    const records = "13 uid=77000\n";
    const g = w.header({ name: "pax_global_header", size: records.length });
    g[156] = 0x67;
    g.fill(0x20, 148, 156);
    g.set(new TextEncoder().encode(g.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    const body = new Uint8Array(512);
    body.set(new TextEncoder().encode(records));
    const archive = new Uint8Array([...g, ...body, ...w.entry({ name: "f" }, "x"), ...w.end()]);
    const plain = await readAll([archive]);
    expect(plain.map((e) => [e.type, e.uid])).toEqual([["global", 0], ["file", 0]]);
    expect(plain[0]!.pax.get("uid")).toBe("77000");
    const applied = await readAll([archive], { applyGlobalPax: true });
    expect(applied[1]!.uid).toBe(77000);
  });

  test("old-style regular entry with a trailing slash is a directory", async () => {
    const w = new TarWriter();
    const h = w.header({ name: "olddir/", type: "file" });
    h[156] = 0;
    h.fill(0x20, 148, 156);
    h.set(new TextEncoder().encode(h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    const [e] = await readAll([new Uint8Array([...h, ...w.end()])]);
    expect(e!.type).toBe("dir");
  });

  describe("end of archive, as Go's archive/tar", () => {
    const body = sample.subarray(0, sample.length - 1024);
    test("trailing garbage after the two zero blocks is not read", async () => {
      const tail = new Uint8Array([...sample, ...new TextEncoder().encode("garbage that is not a header".repeat(40))]);
      expect((await readAll([tail])).length).toBe(4);
    });
    test("no end marker at all", async () => expect((await readAll([body])).length).toBe(4));
    test("a single zero block", async () => expect((await readAll([body, new Uint8Array(512)])).length).toBe(4));
    test("a zero block followed by a non-zero block is an error", async () => {
      const bad = new Uint8Array([...body, ...new Uint8Array(512), ...sample.subarray(0, 512)]);
      await expect(readAll([bad])).rejects.toThrow("a zero block followed by a non-zero block");
    });
  });

  describe("errors", () => {
    test("a corrupted header fails its checksum", async () => {
      const bad = sample.slice();
      bad[600] = bad[600]! ^ 1; // inside the second header's name
      const err = await readAll([bad]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TarError);
      expect((err as TarError).code).toBe("checksum");
    });
    test("truncated inside file data", async () => {
      const err = await readAll([sample.subarray(0, 1024 + 300)]).catch((e: unknown) => e);
      expect((err as TarError).code).toBe("truncated");
      expect(String(err)).toContain("inside file data");
    });
    test("truncated inside a header", async () => {
      await expect(readAll([sample.subarray(0, 100)])).rejects.toThrow("inside a header");
    });
    test("truncated after an extended header", async () => {
      const pax = createTar([{ name: "p".repeat(200), data: "" }]);
      await expect(readAll([pax.subarray(0, 1024)])).rejects.toThrow("after an extended header");
    });
    test("an oversized pax header is refused", async () => {
      const w = new TarWriter();
      const h = w.header({ name: "x", size: 2 << 20 });
      h[156] = 0x78;
      h.fill(0x20, 148, 156);
      h.set(new TextEncoder().encode(h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
      await expect(readAll([h])).rejects.toThrow("x header of 2097152 bytes");
    });
    test("an invalid octal field", async () => {
      const w = new TarWriter();
      const h = w.header({ name: "x" });
      h.set(new TextEncoder().encode("12x4"), 124);
      h.fill(0x20, 148, 156);
      h.set(new TextEncoder().encode(h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
      await expect(readAll([h])).rejects.toThrow("invalid octal");
    });
  });
});
