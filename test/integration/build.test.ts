// scripts/build's products: one executable per architecture, the right ELF machine for each,
// and the build's identity stamped in (checked by running the host's binary in cli.test.ts).
import { describe, expect, test } from "bun:test";
import { existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { resolve } from "node:path";

const EM_X86_64 = 62;
const EM_AARCH64 = 183;

function elfMachine(path: string): number {
  const fd = openSync(path, "r");
  try {
    const hdr = Buffer.alloc(20);
    readSync(fd, hdr, 0, 20, 0);
    expect(hdr.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(hdr[4]).toBe(2); // 64-bit
    return hdr.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

describe("dist/", () => {
  for (const [arch, machine] of [["amd64", EM_X86_64], ["arm64", EM_AARCH64]] as const) {
    test(`crio-linux-${arch} is an executable ${arch} ELF`, () => {
      const path = resolve(import.meta.dir, `../../dist/crio-linux-${arch}`);
      if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/build -a all first`);
      expect(elfMachine(path)).toBe(machine);
      expect(statSync(path).mode & 0o111).not.toBe(0);
      // The compiled bundle carries the stamped version string.
      const bytes = Bun.spawnSync(["grep", "-c", "-a", "CRIO_BUILD_VERSION", path]);
      expect(bytes.stdout.toString().trim()).toBe("0");
    });
  }
});
