// Fixture cgroup trees for tests: a temp dir laid out like /sys/fs/cgroup (v1 per-controller
// hierarchies, v2 unified, or hybrid), and FixtureOps, which applies the kernel's rules there so
// that code that is wrong on a real node is wrong on the fixture too:
// - mkdir fills the new cgroup with its interface files (v2: only for the controllers the
//   parent's cgroup.subtree_control enables); mkdir into a missing parent is ENOENT;
// - writing a pid to cgroup.procs moves it out of every other cgroup of that hierarchy; an empty
//   v1 cpuset refuses tasks (ENOSPC); a v2 cgroup with controllers enabled for its children
//   refuses them (EBUSY, "no internal processes");
// - cgroup.subtree_control takes "+c -c" for controllers listed in cgroup.controllers only
//   (ENOENT otherwise), and not while the (non-root) cgroup holds processes (EBUSY);
// - rmdir fails with EBUSY while the cgroup holds processes or child cgroups.
// Processes are plain numbers: spawn() hands out pids, exit() removes one everywhere.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupFs, type CgroupFsOps } from "../fs.ts";

export type FixtureLayout = "v1" | "v2" | "hybrid";

/** v1 hierarchies of the fixture: directory name → controllers (cpu and cpuacct comounted, as most distros do). */
const V1_DIRS: Record<string, string[]> = {
  "cpu,cpuacct": ["cpu", "cpuacct"],
  cpuset: ["cpuset"],
  memory: ["memory"],
  devices: ["devices"],
  freezer: ["freezer"],
  blkio: ["blkio"],
  pids: ["pids"],
  hugetlb: ["hugetlb"],
  "net_cls,net_prio": ["net_cls", "net_prio"],
  systemd: ["name=systemd"],
};

const V2_ROOT_CONTROLLERS = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

/** Interface files per v1 controller, with a fresh cgroup's contents. */
const V1_FILES: Record<string, Record<string, string>> = {
  cpu: { "cpu.shares": "1024\n", "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n" },
  cpuacct: { "cpuacct.usage": "0\n" },
  cpuset: { "cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.sched_load_balance": "1\n" },
  memory: { "memory.limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "0\n" },
  pids: { "pids.max": "max\n", "pids.current": "0\n" },
  devices: { "devices.list": "a *:* rwm\n" },
  freezer: { "freezer.state": "THAWED\n" },
};

const V2_FILES: Record<string, Record<string, string>> = {
  cpu: { "cpu.max": "max 100000\n", "cpu.weight": "100\n" },
  cpuset: { "cpuset.cpus": "\n", "cpuset.mems": "\n" },
  memory: { "memory.max": "max\n", "memory.current": "0\n" },
  pids: { "pids.max": "max\n", "pids.current": "0\n" },
  io: { "io.max": "" },
  hugetlb: {},
  rdma: {},
  misc: {},
};

function errno(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

interface FixtureHierarchy {
  dir: string;
  kind: "v1" | "v2";
  controllers: string[];
}

/** The kernel's rules over a directory tree (see the file comment). */
export class FixtureOps implements CgroupFsOps {
  private readonly hierarchies: FixtureHierarchy[];
  /** Every mkdir/rmdir/write in order, for tests that assert what was done. */
  readonly log: string[] = [];

  constructor(hierarchies: FixtureHierarchy[]) {
    this.hierarchies = hierarchies;
  }

  mkdir(path: string): void {
    const h = this.hierarchyOf(path);
    if (existsSync(path)) throw errno("EEXIST", "mkdir", path);
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (!existsSync(join(parent, "cgroup.procs"))) throw errno("ENOENT", "mkdir", path);
    this.log.push(`mkdir ${path}`);
    mkdirSync(path);
    const files: Record<string, string> = { "cgroup.procs": "" };
    if (h.kind === "v1") {
      files.tasks = "";
      files.notify_on_release = "0\n";
      for (const c of h.controllers) Object.assign(files, V1_FILES[c] ?? {});
    } else {
      const enabled = this.words(join(parent, "cgroup.subtree_control"));
      files["cgroup.controllers"] = `${enabled.join(" ")}\n`;
      files["cgroup.subtree_control"] = "\n";
      files["cgroup.events"] = "populated 0\nfrozen 0\n";
      for (const c of enabled) Object.assign(files, V2_FILES[c] ?? {});
    }
    for (const [name, content] of Object.entries(files)) writeFileSync(join(path, name), content);
  }

  rmdir(path: string): void {
    const h = this.hierarchyOf(path);
    if (!existsSync(path)) throw errno("ENOENT", "rmdir", path);
    if (path === h.dir) throw errno("EBUSY", "rmdir", path);
    if (this.children(path).length > 0 || this.words(join(path, "cgroup.procs")).length > 0) throw errno("EBUSY", "rmdir", path);
    this.log.push(`rmdir ${path}`);
    rmSync(path, { recursive: true });
  }

  read(path: string): string {
    this.hierarchyOf(path);
    try {
      return readFileSync(path, "utf8");
    } catch {
      throw errno("ENOENT", "open", path);
    }
  }

  write(path: string, data: string): void {
    const h = this.hierarchyOf(path);
    if (!existsSync(path)) throw errno("ENOENT", "open", path);
    const dir = path.slice(0, path.lastIndexOf("/"));
    const file = path.slice(path.lastIndexOf("/") + 1);
    this.log.push(`write ${path} ${data}`);
    if (file === "cgroup.procs" || file === "tasks") return this.writeProcs(h, dir, data);
    if (file === "cgroup.subtree_control" && h.kind === "v2") return this.writeSubtreeControl(h, dir, data);
    writeFileSync(path, data.endsWith("\n") ? data : `${data}\n`);
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  children(path: string): string[] {
    return readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  }

  /** Removes `pid` from every cgroup, as its exit would. */
  exit(pid: number): void {
    for (const h of this.hierarchies) this.removePid(h.dir, pid);
  }

  private hierarchyOf(path: string): FixtureHierarchy {
    const h = this.hierarchies.find((x) => path === x.dir || path.startsWith(`${x.dir}/`));
    if (!h) throw errno("ENOENT", "open", path);
    return h;
  }

  private words(path: string): string[] {
    try {
      return readFileSync(path, "utf8").split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  }

  private writeProcs(h: FixtureHierarchy, dir: string, data: string): void {
    const pid = Number(data.trim());
    if (!Number.isInteger(pid) || pid <= 0) throw errno("EINVAL", "write", `${dir}/cgroup.procs`);
    if (h.kind === "v1" && h.controllers.includes("cpuset")) {
      if (this.words(join(dir, "cpuset.cpus")).length === 0 || this.words(join(dir, "cpuset.mems")).length === 0) {
        throw errno("ENOSPC", "write", `${dir}/cgroup.procs`);
      }
    }
    if (h.kind === "v2" && dir !== h.dir && this.words(join(dir, "cgroup.subtree_control")).length > 0) {
      throw errno("EBUSY", "write", `${dir}/cgroup.procs`);
    }
    this.removePid(h.dir, pid);
    const procs = this.words(join(dir, "cgroup.procs"));
    procs.push(String(pid));
    writeFileSync(join(dir, "cgroup.procs"), `${procs.join("\n")}\n`);
    if (h.kind === "v1") writeFileSync(join(dir, "tasks"), `${procs.join("\n")}\n`);
  }

  private removePid(dir: string, pid: number): void {
    const procsFile = join(dir, "cgroup.procs");
    const procs = this.words(procsFile);
    if (procs.includes(String(pid))) {
      const rest = procs.filter((p) => p !== String(pid));
      writeFileSync(procsFile, rest.length > 0 ? `${rest.join("\n")}\n` : "");
      if (existsSync(join(dir, "tasks"))) writeFileSync(join(dir, "tasks"), rest.length > 0 ? `${rest.join("\n")}\n` : "");
    }
    for (const child of this.children(dir)) this.removePid(join(dir, child), pid);
  }

  private writeSubtreeControl(h: FixtureHierarchy, dir: string, data: string): void {
    const available = this.words(join(dir, "cgroup.controllers"));
    const enabled = new Set(this.words(join(dir, "cgroup.subtree_control")));
    const ops = data.split(/\s+/).filter(Boolean);
    for (const op of ops) {
      const c = op.slice(1);
      if ((op[0] !== "+" && op[0] !== "-") || !available.includes(c)) throw errno("ENOENT", "write", `${dir}/cgroup.subtree_control`);
    }
    if (dir !== h.dir && ops.some((op) => op[0] === "+") && this.words(join(dir, "cgroup.procs")).length > 0) {
      throw errno("EBUSY", "write", `${dir}/cgroup.subtree_control`);
    }
    for (const op of ops) {
      if (op[0] === "+") enabled.add(op.slice(1));
      else enabled.delete(op.slice(1));
    }
    const ordered = V2_ROOT_CONTROLLERS.filter((c) => enabled.has(c));
    writeFileSync(join(dir, "cgroup.subtree_control"), `${ordered.join(" ")}\n`);
    // Children see the change at once: their cgroup.controllers and interface files.
    for (const child of this.children(dir)) {
      const cdir = join(dir, child);
      writeFileSync(join(cdir, "cgroup.controllers"), `${ordered.join(" ")}\n`);
      for (const c of ordered) {
        for (const [name, content] of Object.entries(V2_FILES[c] ?? {})) {
          if (!existsSync(join(cdir, name))) writeFileSync(join(cdir, name), content);
        }
      }
    }
  }
}

export interface Fixture {
  root: string;
  layout: FixtureLayout;
  ops: FixtureOps;
  fs: CgroupFs;
  /** A new fake process id (no real process). */
  spawn(): number;
  /** The fake process leaves every cgroup. */
  exit(pid: number): void;
  cleanup(): void;
}

let nextPid = 400000;

/**
 * A fresh fixture tree. v1 roots have 2 CPUs and one memory node in cpuset; a v2 root offers the
 * usual controllers and enables none (the first cgroup created enables them, as on a fresh boot).
 */
export function makeFixture(layout: FixtureLayout, opts: { removeTimeoutMs?: number } = {}): Fixture {
  const root = mkdtempSync(join(tmpdir(), `cgroup-fixture-${layout}-`));
  const hierarchies: FixtureHierarchy[] = [];
  const writeRoot = (dir: string, files: Record<string, string>) => {
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  };
  if (layout === "v2") {
    writeRoot(root, {
      "cgroup.procs": "",
      "cgroup.controllers": `${V2_ROOT_CONTROLLERS.join(" ")}\n`,
      "cgroup.subtree_control": "\n",
      "cpuset.cpus.effective": "0-1\n",
      "cpuset.mems.effective": "0\n",
    });
    hierarchies.push({ dir: root, kind: "v2", controllers: [] });
  } else {
    for (const [name, controllers] of Object.entries(V1_DIRS)) {
      const files: Record<string, string> = { "cgroup.procs": "", tasks: "" };
      for (const c of controllers) Object.assign(files, V1_FILES[c] ?? {});
      if (controllers.includes("cpuset")) Object.assign(files, { "cpuset.cpus": "0-1\n", "cpuset.mems": "0\n" });
      writeRoot(join(root, name), files);
      hierarchies.push({ dir: join(root, name), kind: "v1", controllers });
    }
    // The compatibility symlinks distributions add for comounted controllers.
    symlinkSync("cpu,cpuacct", join(root, "cpu"));
    symlinkSync("cpu,cpuacct", join(root, "cpuacct"));
    if (layout === "hybrid") {
      writeRoot(join(root, "unified"), { "cgroup.procs": "", "cgroup.controllers": "\n", "cgroup.subtree_control": "\n" });
      hierarchies.push({ dir: join(root, "unified"), kind: "v2", controllers: [] });
    }
  }
  const ops = new FixtureOps(hierarchies);
  const fs = CgroupFs.fromDir(root, ops, { removeTimeoutMs: opts.removeTimeoutMs ?? 200 });
  return {
    root,
    layout,
    ops,
    fs,
    spawn: () => nextPid++,
    exit: (pid) => ops.exit(pid),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
