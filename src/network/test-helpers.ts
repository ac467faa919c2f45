// Helpers for the network tests: a directory of fake CNI plugins (testdata/fake-plugin.ts behind
// a shell wrapper per type) whose invocations can be read back, and a polling wait.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeCall {
  type: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

export interface FakePlugins {
  dir: string;
  /** Adds executables for these types. */
  install(...types: string[]): void;
  /** Sets what a type answers (see testdata/fake-plugin.ts). */
  behave(type: string, behaviour: Record<string, unknown>): void;
  calls(): FakeCall[];
  /** Calls other than VERSION, as "TYPE COMMAND" strings. */
  trace(): string[];
  clearCalls(): void;
  remove(): void;
}

export function fakePlugins(...types: string[]): FakePlugins {
  const dir = mkdtempSync(join(tmpdir(), "crio-cni-fake-"));
  const script = join(import.meta.dir, "testdata", "fake-plugin.ts");
  const behaviour: Record<string, Record<string, unknown>> = {};
  const callsFile = join(dir, "calls.jsonl");
  const api: FakePlugins = {
    dir,
    install(...ts) {
      for (const t of ts) {
        const p = join(dir, t);
        writeFileSync(p, `#!/bin/sh\nexec '${process.execPath}' '${script}' '${t}' '${dir}'\n`);
        chmodSync(p, 0o755);
      }
    },
    behave(type, b) {
      behaviour[type] = b;
      writeFileSync(join(dir, "behaviour.json"), JSON.stringify(behaviour));
    },
    calls() {
      if (!existsSync(callsFile)) return [];
      return readFileSync(callsFile, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as FakeCall);
    },
    trace() {
      return api
        .calls()
        .filter((c) => c.env.CNI_COMMAND !== "VERSION")
        .map((c) => `${c.type} ${c.env.CNI_COMMAND}`);
    },
    clearCalls() {
      rmSync(callsFile, { force: true });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  api.install(...types);
  return api;
}

/** Polls `cond` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await Bun.sleep(stepMs);
  }
  return cond();
}

/** `iptables-save -t nat`, one line per element. */
export function natRules(): string[] {
  const r = Bun.spawnSync(["iptables-save", "-t", "nat"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`iptables-save failed: ${r.stderr.toString()}`);
  return r.stdout.toString().split("\n");
}

const SHARED_HOSTPORT_CHAINS = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"];

/** Whether portmap's shared chains exist (to know whether a test created them). */
export function hostportChainsExist(): boolean {
  return natRules().some((l) => l.startsWith(":CNI-HOSTPORT-DNAT "));
}

/**
 * Test cleanup for the nat table: deletes every rule whose line matches `match`, and the CNI-*
 * chains those rules jump to. With `sharedChains`, also portmap's shared CNI-HOSTPORT-* chains
 * (and the jumps into them) when no per-pod DNAT rule is left in them. Returns the lines deleted.
 */
export function sweepNat(match: (line: string) => boolean, sharedChains = false): string[] {
  const lines = natRules();
  const matched = lines.filter((l) => l.startsWith("-A ") && match(l));
  const drop = new Set<string>();
  for (const l of matched) {
    const target = / -j (CNI-[A-Za-z0-9_-]+)/.exec(l)?.[1];
    if (target && !SHARED_HOSTPORT_CHAINS.includes(target)) drop.add(target);
  }
  const deletes = matched.filter((l) => !drop.has(l.split(" ")[1] ?? ""));
  if (sharedChains) {
    const left = lines.filter((l) => l.startsWith("-A CNI-HOSTPORT-DNAT ") && !match(l));
    if (left.length === 0 && lines.some((l) => l.startsWith(":CNI-HOSTPORT-DNAT "))) {
      for (const l of lines) {
        const chain = l.split(" ")[1] ?? "";
        const target = / -j (CNI-HOSTPORT-[A-Z]+)/.exec(l)?.[1];
        if (l.startsWith("-A ") && target && !SHARED_HOSTPORT_CHAINS.includes(chain) && !deletes.includes(l)) deletes.push(l);
      }
      for (const c of SHARED_HOSTPORT_CHAINS) if (lines.some((l) => l.startsWith(`:${c} `))) drop.add(c);
    }
  }
  if (deletes.length === 0 && drop.size === 0) return [];
  const script = ["*nat", ...deletes.map((l) => `-D${l.slice(2)}`), ...[...drop].map((c) => `-F ${c}`), ...[...drop].map((c) => `-X ${c}`), "COMMIT", ""].join("\n");
  const r = Bun.spawnSync(["iptables-restore", "--noflush"], { stdin: new TextEncoder().encode(script), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`iptables-restore failed: ${r.stderr.toString()}\n${script}`);
  return [...deletes, ...[...drop].map((c) => `chain ${c}`)];
}

/** Where Debian installs the CNI plugins; tests with the real plugins need them and root. */
export const PLUGIN_DIR = "/usr/lib/cni";
export const realPluginsRunnable = process.getuid?.() === 0 && existsSync(join(PLUGIN_DIR, "bridge"));

/** Runs a command to completion, capturing its output. */
export function sh(cmd: string[]): { exitCode: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A 10.89.x prefix whose /24 no route or address on this host uses (and not in `avoid`). */
export function freeSubnetPrefix(avoid: string[] = []): string {
  for (let i = 0; i < 200; i++) {
    const prefix = `10.89.${100 + Math.floor(Math.random() * 150)}`;
    if (avoid.includes(prefix)) continue;
    if (sh(["ip", "-4", "route", "show", "to", "match", `${prefix}.1`]).stdout.includes(`${prefix}.0/`)) continue;
    if (sh(["ip", "-4", "addr"]).stdout.includes(` ${prefix}.`)) continue;
    return prefix;
  }
  throw new Error("no free 10.89.x.0/24 subnet");
}
