// The files and host facts CreateContainer reads for the (pure) spec builder: seccomp profiles,
// OCI hooks, device nodes, and whether the host has AppArmor. Everything here is I/O; the
// decisions are the builder's.
import { existsSync, lstatSync, readdirSync, readFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../config/index.ts";
import { InvalidArgumentError } from "../../errors.ts";
import { loadHooks } from "../../hooks/index.ts";
import { log } from "../../log.ts";
import type { ContainerConfig } from "../../proto/index.ts";
import { deviceHostPaths, seccompLocalhostPath, type HostDevice, type HostPathFact, type SeccompProfileContents } from "../../spec/index.ts";
import type { HookDefinition } from "../../spec/index.ts";

/** Reads a profile file; a missing optional file means "use the built-in" (crio.conf(5)). */
function readProfile(path: string, what: string, required: boolean): string | undefined {
  if (path === "") return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (required) throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} cannot be read: ${(err as Error).message}`);
    log.debug(`${what} ${path} is missing: using the built-in profile`);
    return undefined;
  }
}

export function seccompProfiles(conf: Config, handler: string, cfg: ContainerConfig): SeccompProfileContents {
  const h = conf.runtime.runtimes[handler];
  const defaultPath = h?.seccomp_profile || conf.runtime.seccomp_profile;
  // Privileged containers run without the requested profile (CRI-O skips seccomp setup for
  // them), so a Localhost file they name is not read: a missing one must not fail them.
  const sc = cfg.linux?.securityContext;
  const localhost = sc?.privileged ? undefined : seccompLocalhostPath(sc);
  return {
    runtimeDefault: readProfile(defaultPath, "seccomp_profile", false),
    privileged: readProfile(conf.runtime.privileged_seccomp_profile, "privileged_seccomp_profile", false),
    localhost: localhost !== undefined ? readProfile(localhost, "seccomp profile", true) : undefined,
  };
}

export function hooks(conf: Config): HookDefinition[] {
  const r = loadHooks(conf.runtime.hooks_dir);
  for (const e of r.errors) log.warn("ignoring an OCI hook file", { error: e.message });
  return r.hooks;
}

function nodeFact(st: Stats): HostPathFact | undefined {
  const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : st.isDirectory() ? "d" : undefined;
  if (type === undefined) return undefined;
  if (type === "d") return { type };
  const rdev = st.rdev;
  // glibc's gnu_dev_major / gnu_dev_minor for a 32-bit dev_t (12-bit major, 20-bit minor).
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  return { type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** Facts for every device path the request, additional_devices and the annotation name. */
export function deviceFacts(conf: Config, cfg: ContainerConfig, annotation: string | undefined): Record<string, HostPathFact> {
  const out: Record<string, HostPathFact> = {};
  const visit = (path: string, depth: number) => {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      return; // missing: the builder names it
    }
    const f = nodeFact(st);
    if (f === undefined) return;
    out[path] = f;
    if (f.type === "d" && depth < 8) for (const e of readdirSync(path)) visit(join(path, e), depth + 1);
  };
  for (const p of deviceHostPaths(cfg.devices, { additional: conf.runtime.additional_devices, annotation })) visit(p, 0);
  return out;
}

/** runc's HostDevices(): every node under /dev but a few virtual directories and the console. */
export function hostDevices(): HostDevice[] {
  const skip = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);
  const out: HostDevice[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (!skip.has(name)) walk(path);
        continue;
      }
      if (path === "/dev/console") continue;
      const f = nodeFact(st);
      if (f !== undefined && f.type !== "d") out.push({ path, ...f });
    }
  };
  walk("/dev");
  return out;
}

let apparmor: boolean | undefined;

/** AppArmor is usable: the kernel module says Y and apparmor_parser is installed (as CRI-O checks). */
export function apparmorEnabled(): boolean {
  if (apparmor === undefined) {
    let on = false;
    try {
      on = readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim() === "Y";
    } catch { /* no module */ }
    apparmor = on && (existsSync("/sbin/apparmor_parser") || existsSync("/usr/sbin/apparmor_parser"));
  }
  return apparmor;
}

/** The kernel runs SELinux (selinuxfs is mounted). */
export function selinuxEnabled(): boolean {
  return existsSync("/sys/fs/selinux/enforce");
}
