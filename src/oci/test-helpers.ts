// Fixtures shared by the conmon/runc tests of this directory (not part of the daemon).
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";

export const CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE", "CAP_KILL"];

/** rmdir every `<hierarchy>/<parent>/<child>` and `<hierarchy>/<parent>` this test made. */
export function removeCgroups(parent: string): void {
  const roots = ["/sys/fs/cgroup"];
  for (const h of readdirSync("/sys/fs/cgroup")) roots.push(join("/sys/fs/cgroup", h));
  for (const root of roots) {
    const dir = join(root, parent);
    if (!existsSync(dir)) continue;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirSync(join(dir, e.name));
      rmdirSync(dir);
    } catch { /* still busy or not a hierarchy */ }
  }
}

/** A runtime spec for a busybox rootfs: a few capabilities, no seccomp, cgroup at `cgroupsPath`. */
export function minimalSpec(rootfs: string, args: string[], cgroupsPath: string, o: { hostname: string; env?: string[] }) {
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ["PATH=/bin", "HOME=/", ...(o.env ?? [])],
      cwd: "/",
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: true },
    hostname: o.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    ],
    linux: {
      cgroupsPath,
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
