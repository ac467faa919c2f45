import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as f from "./fsat.ts";
import { SyscallError } from "./index.ts";

let dir: string;
let root: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fsat-"));
  root = f.openat2(f.AT_FDCWD, dir, f.O_RDONLY | f.O_DIRECTORY, 0, 0);
});

afterEach(() => {
  f.close(root);
  rmSync(dir, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SyscallError) return err;
    throw err;
  }
  throw new Error("expected a SyscallError");
}

describe("openat2 confinement", () => {
  test("RESOLVE_IN_ROOT clamps absolute symlinks and .. at the root", () => {
    mkdirSync(join(dir, "etc"));
    writeFileSync(join(dir, "etc/passwd"), "inside");
    symlinkSync("/etc", join(dir, "abs"));
    symlinkSync("../../../../../../etc", join(dir, "rel"));
    for (const p of ["abs/passwd", "rel/passwd", "../../../etc/passwd", "/etc/passwd"]) {
      const fd = f.openInRoot(root, p, f.O_RDONLY);
      try {
        expect(readFileSync(fd, "utf8")).toBe("inside");
      } finally {
        f.close(fd);
      }
    }
  });

  test("a path that resolves to nothing inside the root is ENOENT, even if it exists on the host", () => {
    symlinkSync("/etc", join(dir, "esc"));
    const err = errorOf(() => f.openInRoot(root, "esc/hostname", f.O_RDONLY));
    expect(err.syscall).toBe("openat2");
    expect(err.code).toBe("ENOENT");
  });

  test("openBeneath refuses symlinks and ..", () => {
    mkdirSync(join(dir, "d"));
    symlinkSync("d", join(dir, "link"));
    expect(errorOf(() => f.openBeneath(root, "link", f.O_RDONLY | f.O_DIRECTORY)).errno).toBe(40); // ELOOP
    expect(errorOf(() => f.openBeneath(root, "..", f.O_RDONLY | f.O_DIRECTORY)).errno).toBe(18); // EXDEV
    const fd = f.openBeneath(root, "d", f.O_RDONLY | f.O_DIRECTORY);
    f.close(fd);
  });

  test("magic links are refused", () => {
    const proc = f.openat2(f.AT_FDCWD, "/proc/self", f.O_RDONLY | f.O_DIRECTORY, 0, 0);
    try {
      expect(() => f.openInRoot(proc, "exe", f.O_RDONLY)).toThrow(SyscallError);
    } finally {
      f.close(proc);
    }
  });
});

describe("creating entries relative to a directory fd", () => {
  test("file: data, owner, mode with setuid, xattr, nanosecond times", () => {
    const fd = f.openat(root, "file", f.O_WRONLY | f.O_CREAT | f.O_EXCL | f.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, new TextEncoder().encode("hello"));
      f.fchown(fd, 1000, 1001);
      f.fchmod(fd, 0o4755);
      f.fsetxattr(fd, "user.k", new TextEncoder().encode("v"));
      f.futimens(fd, { sec: 100, nsec: 1 }, { sec: 1700000000, nsec: 123456789 });
      const st = f.fstat(fd);
      expect(st.mode).toBe(f.S_IFREG | 0o4755);
      expect([st.uid, st.gid, st.size]).toEqual([1000, 1001, 5]);
      expect(st.mtime).toEqual({ sec: 1700000000, nsec: 123456789 });
      expect(st.atime).toEqual({ sec: 100, nsec: 1 });
    } finally {
      f.close(fd);
    }
    expect(readFileSync(join(dir, "file"), "utf8")).toBe("hello");
    const py = Bun.spawnSync(["python3", "-c", "import os,sys; print(os.getxattr(sys.argv[1], 'user.k').decode())", join(dir, "file")]);
    expect(py.stdout.toString().trim()).toBe("v");
  });

  test("O_EXCL|O_NOFOLLOW does not follow a planted symlink", () => {
    symlinkSync(join(dir, "target"), join(dir, "planted"));
    expect(errorOf(() => f.openat(root, "planted", f.O_WRONLY | f.O_CREAT | f.O_EXCL | f.O_NOFOLLOW, 0o644)).code).toBe("EEXIST");
    expect(() => lstatSync(join(dir, "target"))).toThrow();
  });

  test("symlink: own owner and times, and an xattr through /proc/self/fd", () => {
    f.symlinkat("/nonexistent/target", root, "sl");
    f.fchownat(root, "sl", 7, 8, f.AT_SYMLINK_NOFOLLOW);
    f.utimensat(root, "sl", null, { sec: 42, nsec: 7 }, f.AT_SYMLINK_NOFOLLOW);
    f.lsetxattrAt(root, "sl", "trusted.test", new Uint8Array([1, 2, 3]));
    const st = f.lstatAt(root, "sl")!;
    expect(st.mode & f.S_IFMT).toBe(f.S_IFLNK);
    expect([st.uid, st.gid]).toEqual([7, 8]);
    expect(st.mtime).toEqual({ sec: 42, nsec: 7 });
    expect(readlinkSync(join(dir, "sl"))).toBe("/nonexistent/target");
    expect(() => f.lsetxattrAt(root, "a/b", "trusted.x", new Uint8Array(1))).toThrow("single path component");
  });

  test("mknodat: whiteout 0:0, block device with large numbers, fifo", () => {
    f.mknodat(root, "wh", f.S_IFCHR, 0, 0);
    f.mknodat(root, "blk", f.S_IFBLK | 0o600, 259, 300000);
    f.mknodat(root, "fifo", f.S_IFIFO | 0o644);
    const wh = f.lstatAt(root, "wh")!;
    expect(wh.mode & f.S_IFMT).toBe(f.S_IFCHR);
    expect([wh.rdevMajor, wh.rdevMinor]).toEqual([0, 0]);
    const blk = f.lstatAt(root, "blk")!;
    expect([blk.rdevMajor, blk.rdevMinor]).toEqual([259, 300000]);
    expect(f.lstatAt(root, "fifo")!.mode & f.S_IFMT).toBe(f.S_IFIFO);
  });

  test("makedev matches glibc's encoding", () => {
    expect(f.makedev(1, 3)).toBe(0x103n);
    expect(f.makedev(259, 300000)).toBe((0x103n << 8n) | (BigInt(300000 & 0xff)) | (BigInt(300000 & ~0xff) << 12n));
  });

  test("linkat, renameat, unlinkat, lstatAt, readdirAt, removeAllAt", () => {
    writeFileSync(join(dir, "a"), "x");
    f.linkat(root, "a", root, "b");
    expect(f.lstatAt(root, "b")!.nlink).toBe(2);
    f.renameat(root, "b", root, "c");
    expect(f.lstatAt(root, "b")).toBeNull();
    mkdirSync(join(dir, "tree/sub/deep"), { recursive: true });
    writeFileSync(join(dir, "tree/sub/deep/file"), "x");
    symlinkSync(dir, join(dir, "tree/sub/loop")); // must be removed, not followed
    const names = f.readdirAt(root).map((n) => new TextDecoder().decode(n)).sort();
    expect(names).toEqual(["a", "c", "tree"]);
    f.removeAllAt(root, "tree");
    expect(f.lstatAt(root, "tree")).toBeNull();
    expect(f.lstatAt(root, "a")).not.toBeNull();
    f.unlinkat(root, "c");
    const err = errorOf(() => f.unlinkat(root, "c"));
    expect([err.syscall, err.code]).toEqual(["unlinkat", "ENOENT"]);
    expect(err.message).toContain("c");
  });

  test("a NUL inside a name is refused before any call", () => {
    expect(() => f.mkdirat(root, "a\0b", 0o755)).toThrow("NUL");
  });

  test("mkdirat of an existing name reports EEXIST with the name", () => {
    f.mkdirat(root, "d", 0o755);
    const err = errorOf(() => f.mkdirat(root, "d", 0o755));
    expect(err.code).toBe("EEXIST");
    expect(err.message).toContain("mkdirat d");
  });
});
