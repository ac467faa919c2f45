// The cgroup file system as the managers see it: a set of mounted hierarchies (v1 per-controller
// trees, a v2 tree, or both in hybrid mode) and the few file operations cgroups need. Every
// manager works through a CgroupFs, so the same code runs on /sys/fs/cgroup and on a fixture
// tree in a temp dir (testing/fixture.ts emulates the kernel's rules there).
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync } from "node:fs";
import { posix } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import { log } from "../log.ts";
import { detectCgroupVersion, hostHierarchies, V1_CONTROLLERS, type CgroupVersion, type Hierarchy } from "./detect.ts";
import { CgroupBusyError } from "./errors.ts";
import { v1Writes, v2Writes, type CgroupResources } from "./resources.ts";

/** The file operations cgroups need; errors carry the errno name in `code` as node:fs errors do. */
export interface CgroupFsOps {
  mkdir(path: string): void;
  rmdir(path: string): void;
  read(path: string): string;
  /** Writes to an existing file (never creates one: cgroup files exist or the controller is absent). */
  write(path: string, data: string): void;
  exists(path: string): boolean;
  /** Names of the child cgroups (directories) of `path`. */
  children(path: string): string[];
}

/** node:fs on the real cgroup mounts. */
export const hostOps: CgroupFsOps = {
  mkdir: (p) => mkdirSync(p, { mode: 0o755 }),
  rmdir: (p) => rmdirSync(p),
  read: (p) => readFileSync(p, "utf8"),
  write: (p, data) => {
    const fd = openSync(p, constants.O_WRONLY);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  exists: (p) => existsSync(p),
  children: (p) =>
    readdirSync(p, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name),
};

/** v2 controllers a runtime delegates to the cgroups it creates (runc's set). */
export const V2_CONTROLLERS: readonly string[] = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | undefined)?.code;
  return typeof c === "string" ? c : undefined;
}

/**
 * A cgroup path relative to every hierarchy's root: absolute, normalized, no `..`. Kubelet's
 * cgroupfs parents are absolute already ("/kubepods/burstable/pod<uid>"); a relative one is taken
 * from the root, as CRI-O does by joining "/".
 */
export function normalizeCgroup(p: string): string {
  if (p.includes("\0") || p.split("/").includes("..")) {
    throw new InvalidArgumentError(`invalid cgroup path ${JSON.stringify(p)}`);
  }
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

export interface CgroupFsOptions {
  /** How long remove() retries an rmdir that fails with EBUSY (ms). */
  removeTimeoutMs?: number;
}

/** The mounted cgroup hierarchies of a node (or of a fixture tree) and the operations on them. */
export class CgroupFs {
  readonly version: CgroupVersion;
  readonly hierarchies: readonly Hierarchy[];
  readonly ops: CgroupFsOps;
  readonly removeTimeoutMs: number;

  constructor(version: CgroupVersion, hierarchies: readonly Hierarchy[], ops: CgroupFsOps = hostOps, opts: CgroupFsOptions = {}) {
    if (hierarchies.length === 0) throw new NotFoundError("no cgroup hierarchy is mounted");
    this.version = version;
    this.hierarchies = hierarchies;
    this.ops = ops;
    this.removeTimeoutMs = opts.removeTimeoutMs ?? 1000;
  }

  /** This host's hierarchies under `root` (normally /sys/fs/cgroup). */
  static host(root = "/sys/fs/cgroup", opts: CgroupFsOptions = {}): CgroupFs {
    const version = detectCgroupVersion(root);
    const all = hostHierarchies(root);
    const hierarchies = all.filter((h) =>
      version === "unified" ? h.kind === "v2" && h.dir === root : version === "v1" ? h.kind === "v1" : h.kind === "v1" || h.dir === `${root}/unified`,
    );
    return new CgroupFs(version, hierarchies, hostOps, opts);
  }

  /**
   * A tree laid out like /sys/fs/cgroup: `root/cgroup.controllers` makes it unified; otherwise
   * each subdirectory is a v1 hierarchy named by its controllers ("cpu,cpuacct", "memory";
   * "systemd" is name=systemd; symlinks such as cpu -> cpu,cpuacct are skipped), and a
   * `unified` subdirectory makes it hybrid.
   */
  static fromDir(root: string, ops: CgroupFsOps = hostOps, opts: CgroupFsOptions = {}): CgroupFs {
    if (ops.exists(`${root}/cgroup.controllers`)) {
      return new CgroupFs("unified", [{ dir: root, kind: "v2", controllers: [] }], ops, opts);
    }
    const hierarchies: Hierarchy[] = [];
    let hybrid = false;
    for (const name of ops.children(root).sort()) {
      const dir = `${root}/${name}`;
      if (name === "unified") {
        hybrid = true;
        hierarchies.push({ dir, kind: "v2", controllers: [] });
        continue;
      }
      const controllers = name === "systemd" ? ["name=systemd"] : name.split(",").filter((c) => V1_CONTROLLERS.includes(c));
      if (controllers.length > 0) hierarchies.push({ dir, kind: "v1", controllers });
    }
    return new CgroupFs(hybrid ? "hybrid" : "v1", hierarchies, ops, opts);
  }

  /** Whether v2 resource control is ours (unified mode); in hybrid mode v2 only tracks processes. */
  get unified(): boolean {
    return this.version === "unified";
  }

  /** The directory of `cgroup` in each hierarchy. */
  dirs(cgroup: string): { hierarchy: Hierarchy; dir: string }[] {
    const c = normalizeCgroup(cgroup);
    return this.hierarchies.map((hierarchy) => ({ hierarchy, dir: c === "/" ? hierarchy.dir : `${hierarchy.dir}${c}` }));
  }

  /** The directory of `cgroup` in the hierarchy that holds `controller` (v2: the unified tree). */
  controllerDir(controller: string, cgroup: string): string | undefined {
    const h = this.unified ? this.hierarchies[0] : this.hierarchies.find((x) => x.kind === "v1" && x.controllers.includes(controller));
    if (!h) return undefined;
    const c = normalizeCgroup(cgroup);
    return c === "/" ? h.dir : `${h.dir}${c}`;
  }

  /** Whether `cgroup` exists in any hierarchy (a half-made one still needs removing). */
  exists(cgroup: string): boolean {
    return this.dirs(cgroup).some(({ dir }) => this.ops.exists(dir));
  }

  /**
   * Creates `cgroup` and its missing ancestors in every hierarchy. v1 cpuset levels get their
   * parent's cpus and mems when empty (a task cannot join an empty cpuset); in unified mode each
   * ancestor's cgroup.subtree_control first enables the controllers it offers, so that the new
   * cgroup gets them. `cpusetLoadBalance: false` writes cpuset.sched_load_balance=0 on the leaf
   * before its cpus are filled in (CRI-O does this for the empty sandbox cgroup so that CPU
   * load-balancing isolation does not rebuild the scheduler domains). Idempotent.
   */
  create(cgroup: string, opts: { cpusetLoadBalance?: boolean } = {}): void {
    const parts = normalizeCgroup(cgroup).split("/").filter(Boolean);
    for (const h of this.hierarchies) {
      let dir = h.dir;
      parts.forEach((part, i) => {
        const parent = dir;
        dir = `${dir}/${part}`;
        if (h.kind === "v2" && this.unified) this.enableControllers(parent);
        if (!this.ops.exists(dir)) {
          try {
            this.ops.mkdir(dir);
          } catch (err) {
            if (codeOf(err) !== "EEXIST") throw err;
          }
        }
        if (h.kind === "v1" && h.controllers.includes("cpuset")) {
          if (i === parts.length - 1 && opts.cpusetLoadBalance === false) this.writeIfPresent(`${dir}/cpuset.sched_load_balance`, "0");
          this.copyCpusetIfEmpty(parent, dir);
        }
      });
    }
  }

  /**
   * Removes `cgroup` in every hierarchy, its child cgroups first. Absent is fine. EBUSY is
   * retried until removeTimeoutMs (the kernel frees a cgroup a moment after its last process
   * exits), then reported as CgroupBusyError naming the directory and the processes in it;
   * nothing is killed. Every hierarchy is tried before the first error is thrown.
   */
  async remove(cgroup: string): Promise<void> {
    const deadline = Date.now() + this.removeTimeoutMs;
    let first: unknown;
    for (const { dir } of this.dirs(cgroup)) {
      try {
        await this.removeTree(cgroup, dir, deadline);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  /** Moves process `pid` (its whole thread group) into `cgroup` in every hierarchy. */
  async join(pid: number, cgroup: string): Promise<void> {
    if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`invalid pid ${pid}`);
    for (const { dir } of this.dirs(cgroup)) {
      if (!this.ops.exists(dir)) throw new NotFoundError(`cgroup ${cgroup} does not exist (${dir})`);
      // EINVAL: the task may still be in TASK_NEW right after fork; runc retries the same way.
      for (let attempt = 0; ; attempt++) {
        try {
          this.ops.write(`${dir}/cgroup.procs`, String(pid));
          break;
        } catch (err) {
          if (codeOf(err) !== "EINVAL" || attempt >= 4) {
            throw new Error(`cannot move process ${pid} into ${dir}: ${(err as Error).message}`, { cause: err });
          }
          await sleep(30);
        }
      }
    }
  }

  /** The processes in `cgroup` (any hierarchy; not its descendants). */
  pids(cgroup: string): number[] {
    const out = new Set<number>();
    for (const { dir } of this.dirs(cgroup)) for (const pid of this.pidsIn(dir)) out.add(pid);
    return [...out].sort((a, b) => a - b);
  }

  /** Writes `r` into `cgroup`'s controller files (v1 or unified v2; hybrid v2 tracks only). */
  apply(cgroup: string, r: CgroupResources): void {
    for (const w of this.unified ? v2Writes(r) : v1Writes(r)) {
      const dir = this.controllerDir(w.controller, cgroup);
      if (dir === undefined) throw new InvalidArgumentError(`cannot set ${w.file}: the ${w.controller} controller is not mounted`);
      try {
        this.ops.write(`${dir}/${w.file}`, w.value);
      } catch (err) {
        throw new Error(`cannot write ${w.value} to ${dir}/${w.file}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** The memory limit of `cgroup` in bytes; undefined when unlimited or unknown. */
  memoryLimit(cgroup: string): number | undefined {
    const dir = this.controllerDir("memory", cgroup);
    if (dir === undefined) return undefined;
    let text: string;
    try {
      text = this.ops.read(`${dir}/${this.unified ? "memory.max" : "memory.limit_in_bytes"}`).trim();
    } catch {
      return undefined;
    }
    if (text === "" || text === "max") return undefined;
    const n = Number(text);
    // v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 on 4K pages).
    return Number.isFinite(n) && n < 2 ** 62 ? n : undefined;
  }

  private pidsIn(dir: string): number[] {
    let text: string;
    try {
      text = this.ops.read(`${dir}/cgroup.procs`);
    } catch {
      return [];
    }
    return text.split("\n").filter((l) => l.trim() !== "").map(Number);
  }

  private async removeTree(cgroup: string, dir: string, deadline: number): Promise<void> {
    if (!this.ops.exists(dir)) return;
    let children: string[] = [];
    try {
      children = this.ops.children(dir);
    } catch (err) {
      if (codeOf(err) === "ENOENT") return;
      throw err;
    }
    for (const child of children) await this.removeTree(cgroup, `${dir}/${child}`, deadline);
    let delay = 10;
    for (;;) {
      try {
        this.ops.rmdir(dir);
        return;
      } catch (err) {
        const code = codeOf(err);
        if (code === "ENOENT") return;
        if (code !== "EBUSY" && code !== "ENOTEMPTY") throw err;
        if (Date.now() >= deadline) throw new CgroupBusyError(cgroup, dir, this.pidsIn(dir), { cause: err });
        await sleep(delay);
        delay = Math.min(delay * 2, 100);
      }
    }
  }

  private enableControllers(dir: string): void {
    const words = (f: string) => {
      try {
        return this.ops.read(`${dir}/${f}`).split(/\s+/).filter(Boolean);
      } catch {
        return [];
      }
    };
    const enabled = new Set(words("cgroup.subtree_control"));
    const wanted = words("cgroup.controllers").filter((c) => V2_CONTROLLERS.includes(c) && !enabled.has(c));
    if (wanted.length === 0) return;
    try {
      this.ops.write(`${dir}/cgroup.subtree_control`, wanted.map((c) => `+${c}`).join(" "));
      return;
    } catch {
      // One at a time, so that one controller the kernel refuses does not cost the others.
    }
    const refused: string[] = [];
    let firstError = "";
    for (const c of wanted) {
      try {
        this.ops.write(`${dir}/cgroup.subtree_control`, `+${c}`);
      } catch (err) {
        refused.push(c);
        firstError ||= (err as Error).message;
      }
    }
    if (refused.length > 0) {
      log.warn("cannot enable cgroup controllers for child cgroups", { cgroup: dir, controllers: refused.join(" "), error: firstError });
    }
  }

  private copyCpusetIfEmpty(parent: string, dir: string): void {
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      let current: string;
      try {
        current = this.ops.read(`${dir}/${f}`).trim();
      } catch {
        continue;
      }
      if (current !== "") continue;
      const inherited = this.ops.read(`${parent}/${f}`).trim();
      if (inherited !== "") this.ops.write(`${dir}/${f}`, inherited);
    }
  }

  private writeIfPresent(path: string, data: string): void {
    if (this.ops.exists(path)) this.ops.write(path, data);
  }
}
