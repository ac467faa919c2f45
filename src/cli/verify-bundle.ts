// `crio verify-bundle FILE BUNDLE --key PUB`: checks, offline, that BUNDLE (a sigstore bundle such
// as scripts/sign writes beside each release tarball) holds a signature over FILE made with the
// key whose PEM public half is PUB. Prints "Verified OK" and exits 0, or names the reason and
// exits 1. The get script uses it to check a release where cosign is not installed.
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { HELP_FLAG, type Command } from "./commands.ts";

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export const verifyBundleCommand: Command = {
  name: "verify-bundle",
  description: "Verify a sigstore bundle (FILE.sigstore.json) over FILE with a public key, offline",
  flags: [{ name: "key", aliases: ["k"], kind: "string", description: "PEM public key the bundle must be signed with", valueHint: "path" }, HELP_FLAG],
  positionals: [
    { name: "file", description: "the signed file" },
    { name: "bundle", description: "its sigstore bundle" },
  ],
  run: async (ctx) => {
    const keyPath = ctx.flags.key;
    if (typeof keyPath !== "string" || keyPath === "") throw new UsageError("--key is required: the PEM public key the bundle must be signed with");
    if (ctx.args.length !== 2) throw new UsageError("verify-bundle takes two arguments: FILE BUNDLE");
    const [file, bundlePath] = ctx.args as [string, string];
    // The sigstore libraries load only for this command, never on the daemon's start-up path.
    const { publicKeyFromPem, verifyArtifact } = await import("../sigstore/index.ts");
    const key = publicKeyFromPem(read(keyPath, "key").toString("utf8"));
    let bundle: unknown;
    try {
      bundle = JSON.parse(read(bundlePath, "bundle").toString("utf8"));
    } catch (err) {
      if (err instanceof SyntaxError) throw new Error(`${bundlePath} is not JSON: ${err.message}`);
      throw err;
    }
    verifyArtifact(read(file, "file"), bundle, key);
    process.stdout.write("Verified OK\n");
    return 0;
  },
};
