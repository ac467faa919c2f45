import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TarReader } from "./reader.ts";
import { createTar, tarStream, TarWriter, type TarInput } from "./writer.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tarw-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(tar: Uint8Array | ReadableStream<Uint8Array>) {
  const out = [];
  for await (const e of new TarReader(tar instanceof Uint8Array ? [tar] : tar)) {
    out.push({ ...e.header, data: new TextDecoder().decode(await e.bytes()) });
  }
  return out;
}

const sample: TarInput[] = [
  { name: "dir/", mode: 0o755, mtime: 1700000000 },
  { name: "dir/file", data: "hello", mode: 0o4755, uid: 1000, gid: 1000, uname: "app", gname: "app" },
  { name: `${"long/".repeat(40)}name.txt`, data: "long" },
  { name: "sym", type: "symlink", linkname: "x".repeat(150) },
  { name: "hard", type: "link", linkname: "dir/file" },
  { name: "dev", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "pipe", type: "fifo" },
  { name: "ünïcödé", data: "u" },
];

describe("TarWriter", () => {
  test("is deterministic and pads to whole blocks", () => {
    const a = createTar(sample, { mtime: 1 });
    const b = createTar(sample, { mtime: 1 });
    expect(a).toEqual(b);
    expect(a.length % 512).toBe(0);
    expect(a.subarray(a.length - 1024).every((x) => x === 0)).toBe(true);
  });

  test("fixed uid/gid/mtime override the entries'", async () => {
    const entries = await readAll(createTar(sample, { uid: 0, gid: 0, uname: "", gname: "", mtime: 42 }));
    for (const e of entries) {
      expect([e.uid, e.gid, e.mtime.sec]).toEqual([0, 0, 42]);
    }
  });

  test("round trip through the reader (pax)", async () => {
    const entries = await readAll(createTar(sample));
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ["dir/", "dir"],
      ["dir/file", "file"],
      [`${"long/".repeat(40)}name.txt`, "file"],
      ["sym", "symlink"],
      ["hard", "link"],
      ["dev", "char"],
      ["pipe", "fifo"],
      ["ünïcödé", "file"],
    ]);
    const file = entries[1]!;
    expect([file.mode, file.uid, file.gid, file.uname, file.gname, file.data]).toEqual([0o4755, 1000, 1000, "app", "app", "hello"]);
    expect(entries[3]!.linkname).toBe("x".repeat(150));
    expect(entries[4]!.linkname).toBe("dir/file");
    expect([entries[5]!.devmajor, entries[5]!.devminor, entries[5]!.mode]).toEqual([1, 3, 0o666]);
    expect(entries[7]!.format).toBe("pax");
  });

  test("round trip in GNU format (long names and links as L/K entries, base-256 numbers)", async () => {
    const long = `${"gnu/".repeat(70)}file`;
    const tar = createTar(
      [
        { name: long, data: "x", uid: 1 << 30, gid: 3000000 },
        { name: "l", type: "symlink", linkname: "y".repeat(300) },
        { name: "old", data: "", mtime: -1000 },
      ],
      { format: "gnu" },
    );
    const entries = await readAll(tar);
    expect(entries[0]!.name).toBe(long);
    expect(entries[0]!.format).toBe("gnu");
    expect([entries[0]!.uid, entries[0]!.gid]).toEqual([1 << 30, 3000000]);
    expect(entries[1]!.linkname).toBe("y".repeat(300));
    expect(entries[2]!.mtime.sec).toBe(-1000);
    // GNU tar agrees.
    writeFileSync(join(dir, "gnu.tar"), tar);
    const listing = Bun.spawnSync(["tar", "--numeric-owner", "-tvf", join(dir, "gnu.tar")]).stdout.toString();
    expect(listing).toContain(long);
    expect(listing).toContain("1073741824/3000000");
  });

  test("pax records: nanosecond mtime, large ids, xattrs, extra records", async () => {
    const tar = createTar([
      {
        name: "f",
        data: "d",
        uid: 5_000_000,
        mtime: { sec: 1700000000, nsec: 120000000 },
        xattrs: { "user.a": "1", "security.capability": new Uint8Array([1, 0, 0, 2, 0xff]) },
        pax: { comment: "hi" },
      },
    ]);
    const [e] = await readAll(tar);
    expect(e!.uid).toBe(5_000_000);
    expect(e!.mtime).toEqual({ sec: 1700000000, nsec: 120000000 });
    expect(e!.xattrs.get("security.capability")).toEqual(new Uint8Array([1, 0, 0, 2, 0xff]));
    expect(e!.pax.get("comment")).toBe("hi");
    expect(e!.pax.get("mtime")).toBe("1700000000.12");
  });

  test("python's tarfile and GNU tar read what we write", () => {
    const file = join(dir, "ours.tar");
    writeFileSync(file, createTar([...sample, { name: "x", data: "1", xattrs: { "user.k": "v" }, mtime: { sec: 5, nsec: 5e8 } }]));
    const py = Bun.spawnSync([
      "python3",
      "-c",
      "import tarfile,sys\nfor m in tarfile.open(sys.argv[1]): print(m.name, m.type.decode() if m.type != b'\\x00' else '0', oct(m.mode), m.uid, m.linkname, m.mtime, m.pax_headers.get('SCHILY.xattr.user.k',''))",
      file,
    ]);
    const lines = py.stdout.toString().trim().split("\n");
    expect(py.exitCode).toBe(0);
    expect(lines).toContain("dir/file 0 0o4755 1000  0 ");
    expect(lines).toContain(`${"long/".repeat(40)}name.txt 0 0o644 0  0 `);
    expect(lines).toContain("hard 1 0o644 0 dir/file 0 ");
    expect(lines).toContain("x 0 0o644 0  5.5 v");
    const gnu = Bun.spawnSync(["tar", "--xattrs", "--xattrs-include=*", "-tvvf", file]);
    expect(gnu.exitCode).toBe(0);
    expect(gnu.stdout.toString()).toContain("ünïcödé");
  });

  test("tarStream streams entries with lazy data and checks sizes", async () => {
    async function* chunks() {
      yield new TextEncoder().encode("abc");
      yield new TextEncoder().encode("def");
    }
    const stream = tarStream([{ name: "a", data: chunks(), size: 6 }, { name: "b", data: "inline" }]);
    const entries = await readAll(stream);
    expect(entries.map((e) => [e.name, e.data])).toEqual([["a", "abcdef"], ["b", "inline"]]);
    const bad = tarStream([{ name: "a", data: chunks(), size: 5 }]);
    await expect(readAll(bad)).rejects.toThrow("more data than its size");
  });

  test("refuses data on non-files and NUL in names", () => {
    const w = new TarWriter();
    expect(() => w.entry({ name: "d/" }, "x")).toThrow("only regular files");
    expect(() => w.entry({ name: "a\0b" }, "x")).toThrow("NUL");
  });

  test("GNU tar extracts what we write", () => {
    const file = join(dir, "roundtrip.tar");
    writeFileSync(file, createTar([{ name: "a/", mtime: 1 }, { name: "a/b", data: "data", mtime: 1 }]));
    const x = mkdtempSync(join(dir, "x-"));
    expect(Bun.spawnSync(["tar", "-xf", file, "-C", x]).exitCode).toBe(0);
    expect(readFileSync(join(x, "a/b"), "utf8")).toBe("data");
  });
});
