// scripts/sign: writes <tarball>.sigstore.json for each release tarball with a PEM private key,
// or (-g) makes a new key pair. See scripts/sign for the usage.
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPairPem, privateKeyFromPem, publicKeyFromPem, signArtifact, verifyArtifact } from "../../src/sigstore/index.ts";

const USAGE = "usage: scripts/sign -k PRIVATE_KEY [TARBALL...] | scripts/sign -g PRIVATE_KEY";

function fail(msg: string, code = 1): never {
  process.stderr.write(`scripts/sign: ${msg}\n`);
  process.exit(code);
}

/** The public key's file beside the private key: release.key → release.pub, other → other.pub. */
function publicKeyPath(privatePath: string): string {
  return privatePath.endsWith(".key") ? `${privatePath.slice(0, -4)}.pub` : `${privatePath}.pub`;
}

function main(argv: string[]): void {
  let keyPath = process.env.CRIO_SIGNING_KEY ?? "";
  let generate = false;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-k" || a === "-g") {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a file\n${USAGE}`, 2);
      keyPath = v;
      generate ||= a === "-g";
    } else if (a === "-h" || a === "--help") {
      process.stdout.write(`${USAGE}\n`);
      return;
    } else if (a.startsWith("-")) {
      fail(`unknown flag ${a}\n${USAGE}`, 2);
    } else files.push(a);
  }
  if (keyPath === "") fail(`no key: give -k PRIVATE_KEY (or set CRIO_SIGNING_KEY)\n${USAGE}`, 2);

  if (generate) {
    if (files.length > 0) fail(`-g makes a key pair and signs nothing\n${USAGE}`, 2);
    const pub = publicKeyPath(keyPath);
    for (const p of [keyPath, pub]) if (existsSync(p)) fail(`${p} exists: not overwriting a key`);
    const kp = generateKeyPairPem();
    writeFileSync(keyPath, kp.privateKeyPem, { mode: 0o600 });
    writeFileSync(pub, kp.publicKeyPem, { mode: 0o644 });
    process.stdout.write(`wrote ${keyPath} (private, keep it secret) and ${pub} (public)\n`);
    return;
  }

  if (!existsSync(keyPath)) fail(`${keyPath} does not exist (make a key pair with -g ${keyPath})`);
  const key = privateKeyFromPem(readFileSync(keyPath, "utf8"));
  const pub = publicKeyFromPem(readFileSync(keyPath, "utf8"));
  if (files.length === 0) {
    const dist = "dist";
    if (existsSync(dist)) for (const f of readdirSync(dist).sort()) if (/^crio\..+\.tar\.gz$/.test(f)) files.push(join(dist, f));
    if (files.length === 0) fail("no tarballs given and none in dist/: run scripts/bundle first");
  }
  for (const file of files) {
    if (!existsSync(file)) fail(`${file} does not exist`);
    const data = readFileSync(file);
    const bundle = signArtifact(data, key);
    verifyArtifact(data, bundle, pub);
    const out = `${file}.sigstore.json`;
    writeFileSync(`${out}.tmp`, JSON.stringify(bundle, null, 2) + "\n");
    chmodSync(`${out}.tmp`, 0o644);
    renameSync(`${out}.tmp`, out);
    process.stdout.write(`signed ${file} → ${out}\n`);
  }
}

try {
  main(process.argv.slice(2));
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
