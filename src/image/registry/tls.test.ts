import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcCode } from "../../errors.ts";
import { certsDirFor, loadRegistryTls } from "./tls.ts";

const root = mkdtempSync(join(tmpdir(), "registry-tls-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function dir(...parts: string[]): string {
  const d = join(root, ...parts);
  mkdirSync(d, { recursive: true });
  return d;
}

describe("certs.d", () => {
  test("the first existing <dir>/<host:port> wins", () => {
    const a = dir("a");
    const b = dir("b");
    dir("b", "127.0.0.1:5000");
    expect(certsDirFor("127.0.0.1:5000", [a, b])).toBe(join(b, "127.0.0.1:5000"));
    dir("a", "127.0.0.1:5000");
    expect(certsDirFor("127.0.0.1:5000", [a, b])).toBe(join(a, "127.0.0.1:5000"));
    expect(certsDirFor("127.0.0.1:5001", [a, b])).toBeUndefined();
  });

  test("*.crt are CAs after the system bundle; *.cert + *.key is the client pair", () => {
    const d = dir("c", "localhost:5000");
    writeFileSync(join(d, "ca.crt"), "CA-ONE");
    writeFileSync(join(d, "other.crt"), "CA-TWO");
    writeFileSync(join(d, "client.cert"), "CLIENT-CERT");
    writeFileSync(join(d, "client.key"), "CLIENT-KEY");
    const sys = join(root, "system.pem");
    writeFileSync(sys, "SYSTEM-BUNDLE");
    const t = loadRegistryTls("localhost:5000", { certsDirs: [join(root, "c")], insecure: false, systemCaFile: sys });
    expect(t.ca).toEqual(["SYSTEM-BUNDLE", "CA-ONE", "CA-TWO"]);
    expect(t.cert).toBe("CLIENT-CERT");
    expect(t.key).toBe("CLIENT-KEY");
    expect(t.rejectUnauthorized).toBe(true);
    expect(loadRegistryTls("localhost:5000", { certsDirs: [join(root, "c")], insecure: true, systemCaFile: sys }).rejectUnauthorized).toBe(false);
  });

  test("a .cert without its .key (or the reverse) is a configuration error naming the file", () => {
    const d = dir("d", "h:1");
    writeFileSync(join(d, "lonely.cert"), "x");
    let err: { code?: number; message: string } | undefined;
    try {
      loadRegistryTls("h:1", { certsDirs: [join(root, "d")], insecure: false });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe(GrpcCode.FAILED_PRECONDITION);
    expect(err?.message).toContain("lonely.key");
    const d2 = dir("e", "h:1");
    writeFileSync(join(d2, "lonely.key"), "x");
    expect(() => loadRegistryTls("h:1", { certsDirs: [join(root, "e")], insecure: false })).toThrow("lonely.cert");
  });
});
