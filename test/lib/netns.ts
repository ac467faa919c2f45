// Network namespaces for tests: `ip netns add crio-test-<random>` (a pinned namespace at
// /run/netns/<name>) and `ip netns del`, plus small helpers to run commands inside one. Tests
// send traffic only to 127.0.0.1 and to namespaces they created.
import { randomBytes } from "node:crypto";

export interface TestNetns {
  name: string;
  /** /run/netns/<name>: what CNI_NETNS gets. */
  path: string;
  /** Runs a command inside the namespace (`ip netns exec`), synchronously. */
  exec(cmd: string[]): { exitCode: number; stdout: string; stderr: string };
  /** Deletes the namespace; safe to call twice. */
  remove(): void;
}

function run(cmd: string[]): { exitCode: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Creates a fresh named network namespace. */
export function createNetns(prefix = "crio-test"): TestNetns {
  const name = `${prefix}-${randomBytes(4).toString("hex")}`;
  const r = run(["ip", "netns", "add", name]);
  if (r.exitCode !== 0) throw new Error(`ip netns add ${name} failed: ${r.stderr.trim()}`);
  let removed = false;
  return {
    name,
    path: `/run/netns/${name}`,
    exec: (cmd) => run(["ip", "netns", "exec", name, ...cmd]),
    remove() {
      if (removed) return;
      removed = true;
      const d = run(["ip", "netns", "del", name]);
      if (d.exitCode !== 0 && !/No such file/.test(d.stderr)) throw new Error(`ip netns del ${name} failed: ${d.stderr.trim()}`);
    },
  };
}

/** Runs `fn` with a fresh namespace and deletes it afterwards, even when `fn` throws. */
export async function withNetns<T>(fn: (ns: TestNetns) => Promise<T> | T): Promise<T> {
  const ns = createNetns();
  try {
    return await fn(ns);
  } finally {
    ns.remove();
  }
}
