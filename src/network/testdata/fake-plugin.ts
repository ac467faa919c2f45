// A scriptable CNI plugin for unit tests: `fake-plugin.ts <type> <dir>`. It appends every
// invocation ({type, env, stdin}) to <dir>/calls.jsonl and answers from <dir>/behaviour.json:
//   { "<type>": { "<COMMAND>": { "exit": 1, "stdout": <JSON or string>, "sleepMs": 100 },
//                 "versions": ["0.3.1", ...] } }
// Defaults: VERSION lists 0.1.0-1.0.0; ADD passes prevResult through (or prints a result with
// one address, in the configuration's cniVersion); DEL, CHECK and STATUS print nothing.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [type = "fake", dir = "."] = process.argv.slice(2);
const stdinText = await new Response(Bun.stdin.stream()).text();
const cmd = process.env.CNI_COMMAND ?? "";
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (k.startsWith("CNI_") && v !== undefined) env[k] = v;
let stdin: Record<string, unknown> = {};
try {
  stdin = JSON.parse(stdinText);
} catch {
  // VERSION may get anything
}
appendFileSync(join(dir, "calls.jsonl"), `${JSON.stringify({ type, env, stdin })}\n`);

type Step = { exit?: number; stdout?: unknown; sleepMs?: number };
const behaviourFile = join(dir, "behaviour.json");
const all = existsSync(behaviourFile) ? (JSON.parse(readFileSync(behaviourFile, "utf8")) as Record<string, Record<string, unknown>>) : {};
const mine = all[type] ?? {};
const step = (mine[cmd] ?? {}) as Step;
if (step.sleepMs) await Bun.sleep(step.sleepMs);
const print = (v: unknown) => process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));
if (step.stdout !== undefined) print(step.stdout);
else if (cmd === "VERSION") {
  print({ cniVersion: "1.0.0", supportedVersions: (mine.versions as string[]) ?? ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] });
} else if (cmd === "ADD") {
  const version = String(stdin.cniVersion ?? "1.0.0");
  if (stdin.prevResult) print(stdin.prevResult);
  else if (version.startsWith("0.3") || version.startsWith("0.4")) {
    print({ cniVersion: version, interfaces: [{ name: env.CNI_IFNAME, sandbox: env.CNI_NETNS }], ips: [{ version: "4", address: "10.1.2.3/24", gateway: "10.1.2.1", interface: 0 }] });
  } else {
    print({ cniVersion: version, interfaces: [{ name: env.CNI_IFNAME, sandbox: env.CNI_NETNS }], ips: [{ address: "10.1.2.3/24", gateway: "10.1.2.1", interface: 0 }] });
  }
}
process.exit(step.exit ?? 0);
