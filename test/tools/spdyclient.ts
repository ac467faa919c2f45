// Builds and runs test/tools/spdyclient (Go, on moby/spdystream: the SPDY library client-go
// uses), an independent client for the streaming server's tests. The binary is built once per
// source version into a cache directory under the system temp dir. Building needs Debian's
// golang-go and golang-github-docker-spdystream-dev (scripts/setup installs both); without
// them this fails, naming the packages.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SOURCE = join(import.meta.dir, "spdyclient", "main.go");
const GOPATH = "/usr/share/gocode";
const SPDYSTREAM = join(GOPATH, "src/github.com/moby/spdystream");

let built: Promise<string> | undefined;

/** Path of the built client; builds it on first use. */
export function spdyClientBinary(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  const go = Bun.which("go");
  if (!go) throw new Error("spdyclient needs the Go toolchain: install the Debian package golang-go (scripts/setup does)");
  if (!existsSync(SPDYSTREAM)) {
    throw new Error(
      `spdyclient needs moby/spdystream at ${SPDYSTREAM}: install the Debian package golang-github-docker-spdystream-dev (scripts/setup does)`,
    );
  }
  const source = readFileSync(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), `crio-ts-spdyclient-${hash}`);
  const binary = join(dir, "spdyclient");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  const proc = Bun.spawn([go, "build", "-o", partial, SOURCE], {
    cwd: join(import.meta.dir, "spdyclient"),
    env: {
      ...process.env,
      GO111MODULE: "off",
      GOPATH,
      GOCACHE: join(dir, "gocache"),
      GOFLAGS: "",
      CGO_ENABLED: "0",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`building spdyclient failed (go build exited ${code}):\n${err}`);
  }
  renameSync(partial, binary);
  return binary;
}

export interface SpdyClientResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
  report: {
    protocol: string;
    httpStatus: number;
    httpBody?: string;
    errorStream: string;
    exitCode: number;
    message?: string;
  };
}

/** Runs `spdyclient <args>` feeding it `stdin`; never throws for a non-zero exit. */
export async function runSpdyClient(
  args: string[],
  options: { stdin?: Uint8Array | string; keepStdinOpen?: boolean; timeoutMs?: number } = {},
): Promise<SpdyClientResult> {
  const binary = await spdyClientBinary();
  const reportPath = join(tmpdir(), `spdyclient-report-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  const [command, ...rest] = args;
  const proc = Bun.spawn([binary, command as string, "-report", reportPath, ...rest], {
    stdin: options.keepStdinOpen ? "pipe" : options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill(), options.timeoutMs ?? 20_000);
  try {
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).arrayBuffer(),
      new Response(proc.stderr).text(),
    ]);
    let report: SpdyClientResult["report"] = { protocol: "", httpStatus: 0, errorStream: "", exitCode: code };
    if (existsSync(reportPath)) report = JSON.parse(readFileSync(reportPath, "utf8"));
    return { code, stdout: new Uint8Array(stdout), stderr, report };
  } finally {
    clearTimeout(timer);
    rmSync(reportPath, { force: true });
  }
}
