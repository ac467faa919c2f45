// Process metrics as client_golang's process collector exposes them for every Go program (CRI-O
// included), read from /proc/self; and the node's defunct process count (CRI-O's
// internal/process.DefunctProcesses) for processes_defunct.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../log.ts";
import type { MetricFamily } from "./exposition.ts";
import type { Collector } from "./registry.ts";

/** Clock ticks per second of /proc's times; fixed at 100 on Linux (USER_HZ), as Go's procfs assumes. */
const USER_HZ = 100;

/** The fields of /proc/<pid>/stat after the command name (field 3, the state, is index 0). */
function statFields(text: string): string[] {
  // The command name is in parentheses and may itself contain spaces and parentheses.
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error("malformed stat line");
  return text.slice(close + 2).trim().split(/\s+/);
}

/** Processes in state Z (zombie) under `procRoot`. Processes that vanish while reading are skipped. */
export function countDefunctProcesses(procRoot = "/proc"): number {
  let n = 0;
  for (const entry of readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(join(procRoot, entry, "stat"), "utf8");
    } catch {
      continue; // exited in between
    }
    try {
      if (statFields(text)[0] === "Z") n++;
    } catch {
      continue;
    }
  }
  return n;
}

/** The soft limit of one row of /proc/<pid>/limits ("Max open files  1024  4096  files"). */
function softLimit(limits: string, row: string): number | undefined {
  const line = limits.split("\n").find((l) => l.startsWith(row));
  if (line === undefined) return undefined;
  const soft = line.slice(row.length).trim().split(/\s+/)[0];
  if (soft === undefined) return undefined;
  return soft === "unlimited" ? Infinity : Number(soft);
}

function gauge(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "gauge", samples: [{ name, labels: [], value }] };
}

export interface ProcessSnapshot {
  cpuSeconds: number;
  openFds: number;
  maxFds: number | undefined;
  virtualBytes: number;
  virtualMaxBytes: number | undefined;
  residentBytes: number;
  startTimeSeconds: number;
}

/** The figures of the process collector, from `procRoot`/self (a fixture tree in tests). */
export function readProcessSnapshot(procRoot = "/proc", pid = "self"): ProcessSnapshot {
  const dir = join(procRoot, pid);
  const f = statFields(readFileSync(join(dir, "stat"), "utf8"));
  // proc(5) numbering: utime 14, stime 15, starttime 22, vsize 23, rss 24; f[0] is field 3.
  const field = (n: number) => Number(f[n - 3]);
  const status = readFileSync(join(dir, "status"), "utf8");
  const rssKb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  const btime = /^btime\s+(\d+)/m.exec(readFileSync(join(procRoot, "stat"), "utf8"))?.[1];
  const limits = readFileSync(join(dir, "limits"), "utf8");
  return {
    cpuSeconds: (field(14) + field(15)) / USER_HZ,
    openFds: readdirSync(join(dir, "fd")).length,
    maxFds: softLimit(limits, "Max open files"),
    virtualBytes: field(23),
    virtualMaxBytes: softLimit(limits, "Max address space"),
    // VmRSS is in kB whatever the page size; stat's rss would need the page size.
    residentBytes: rssKb !== undefined ? Number(rssKb) * 1024 : field(24) * 4096,
    startTimeSeconds: Number(btime ?? 0) + field(22) / USER_HZ,
  };
}

/** process_* metrics (client_golang's names and types); nothing when /proc cannot be read. */
export class ProcessCollector implements Collector {
  private warned = false;

  constructor(private readonly procRoot = "/proc") {}

  collect(): MetricFamily[] {
    let s: ProcessSnapshot;
    try {
      s = readProcessSnapshot(this.procRoot);
    } catch (err) {
      if (!this.warned) log.warn(`cannot read the process metrics from ${this.procRoot}`, { error: err });
      this.warned = true;
      return [];
    }
    const out: MetricFamily[] = [
      {
        name: "process_cpu_seconds_total",
        help: "Total user and system CPU time spent in seconds.",
        type: "counter",
        samples: [{ name: "process_cpu_seconds_total", labels: [], value: s.cpuSeconds }],
      },
      gauge("process_open_fds", "Number of open file descriptors.", s.openFds),
      gauge("process_resident_memory_bytes", "Resident memory size in bytes.", s.residentBytes),
      gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", s.startTimeSeconds),
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", s.virtualBytes),
    ];
    if (s.maxFds !== undefined) out.push(gauge("process_max_fds", "Maximum number of open file descriptors.", s.maxFds));
    if (s.virtualMaxBytes !== undefined) {
      // Go reports an unlimited address space as 2^64-1 (RLIM_INFINITY), printed 1.8446744073709552e+19.
      const v = s.virtualMaxBytes === Infinity ? 18446744073709551615 : s.virtualMaxBytes;
      out.push(gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", v));
    }
    return out;
  }
}
