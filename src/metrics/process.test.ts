// Process metrics from a fixture /proc tree (exact values) and from this process's own.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderText } from "./exposition.ts";
import { ProcessCollector, readProcessSnapshot } from "./process.ts";

const root = mkdtempSync(join(tmpdir(), "crio-metrics-proc-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fixture(): string {
  const proc = join(root, "proc");
  const self = join(proc, "self");
  mkdirSync(join(self, "fd"), { recursive: true });
  for (const fd of ["0", "1", "2", "7"]) writeFileSync(join(self, "fd", fd), "");
  writeFileSync(join(proc, "stat"), "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");
  // Fields: pid (comm) state ppid ... utime(14)=250 stime(15)=50 ... starttime(22)=12345 vsize(23) rss(24)
  const fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", "250", "50", "0", "0", "20", "0", "1", "0", "12345", "104857600", "100"];
  writeFileSync(join(self, "stat"), `42 (cr io) x) ${fields.join(" ")} 0 0 0\n`);
  writeFileSync(join(self, "status"), "Name:\tcrio\nVmSize:\t  102400 kB\nVmRSS:\t    2048 kB\n");
  writeFileSync(
    join(self, "limits"),
    [
      "Limit                     Soft Limit           Hard Limit           Units     ",
      "Max open files            1024                 524288               files     ",
      "Max address space         unlimited            unlimited            bytes     ",
      "",
    ].join("\n"),
  );
  return proc;
}

describe("process metrics", () => {
  test("read from stat, status, limits and fd of a fixture tree", () => {
    const proc = fixture();
    expect(readProcessSnapshot(proc)).toEqual({
      cpuSeconds: 3,
      openFds: 4,
      maxFds: 1024,
      virtualBytes: 104857600,
      virtualMaxBytes: Infinity,
      residentBytes: 2048 * 1024,
      startTimeSeconds: 1700000000 + 123.45,
    });
    const text = renderText(new ProcessCollector(proc).collect());
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3\n");
    expect(text).toContain("process_open_fds 4\n");
    expect(text).toContain("process_max_fds 1024\n");
    expect(text).toContain("process_resident_memory_bytes 2.097152e+06\n");
    expect(text).toContain("process_virtual_memory_bytes 1.048576e+08\n");
    expect(text).toContain("process_virtual_memory_max_bytes 1.8446744073709552e+19\n");
    expect(text).toContain("process_start_time_seconds 1.70000012345e+09\n");
  });

  test("this process: resident memory above zero, a start time in the past, open fds", () => {
    const s = readProcessSnapshot();
    expect(s.residentBytes).toBeGreaterThan(0);
    expect(s.virtualBytes).toBeGreaterThanOrEqual(s.residentBytes);
    expect(s.openFds).toBeGreaterThan(2);
    expect(s.startTimeSeconds).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(s.startTimeSeconds).toBeGreaterThan(Date.now() / 1000 - 3600 * 24 * 365);
  });

  test("an unreadable /proc gives no process metrics, not an error", () => {
    expect(new ProcessCollector(join(root, "nowhere")).collect()).toEqual([]);
  });
});
