// Debian's podman on a temporary containers-storage root, isolated from the host's storage.conf
// and libpod state, with the flags that work on these machines (no systemd, cgroup v1 hybrid,
// root without CAP_SYS_RESOURCE: cgroupfs, file events, runc, explicit ulimits for run).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MNT_DETACH, umount2 } from "../../src/sys/mount.ts";

export const BUSYBOX = "/bin/busybox";

/** A static ELF has no PT_INTERP program header. */
function isStaticElf(path: string): boolean {
  if (!existsSync(path)) return false;
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // ELF64
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/** podman's path; throws naming the package when podman or busybox-static is missing. */
export function requirePodman(): string {
  const podman = Bun.which("podman");
  if (podman === null) throw new Error("podman is not installed: apt-get install podman");
  if (!isStaticElf(BUSYBOX)) throw new Error(`${BUSYBOX} is missing or not static: apt-get install busybox-static`);
  return podman;
}

export interface PodmanRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Flags `podman run` needs here on top of the image and command. */
export const RUN_FLAGS = ["--rm", "--net=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

export interface Podman {
  run(args: string[], timeoutMs?: number): Promise<PodmanRun>;
  /** Like run, throwing with podman's stderr on a non-zero exit; returns stdout. */
  must(args: string[]): Promise<string>;
  /** Unmounts whatever podman left mounted under `base` (deepest first). */
  unmountAll(): void;
}

/** podman on root/runroot, with a storage.conf written under `base` that names them. */
export function podmanOn(base: string, root: string, runroot: string, env: Record<string, string> = {}): Podman {
  const storageConf = join(base, "podman-storage.conf");
  writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`);
  const run = async (args: string[], timeoutMs = 60_000): Promise<PodmanRun> => {
    const bin = requirePodman();
    const proc = Bun.spawn(
      [
        bin,
        "--root", root,
        "--runroot", runroot,
        "--storage-driver", "overlay",
        "--tmpdir", join(runroot, "libpod-tmp"),
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
        "--runtime", "runc",
        ...args,
      ],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, CONTAINERS_STORAGE_CONF: storageConf, ...env } },
    );
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  };
  return {
    run,
    async must(args) {
      const r = await run(args);
      if (r.code !== 0) throw new Error(`podman ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    unmountAll() {
      const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
      const points = readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((l) => unescape(l.split(" ")[4] ?? ""))
        .filter((p) => p.startsWith(`${base}/`))
        .sort((a, b) => b.length - a.length);
      for (const p of points) {
        try {
          umount2(p, MNT_DETACH);
        } catch {
          // already gone
        }
      }
    },
  };
}
