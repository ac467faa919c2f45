// The daemon's pod sandboxes: an in-memory index (64-hex IDs with unique-prefix lookup, the
// k8s_<name>_<namespace>_<uid>_<attempt> name reservation) backed by one JSON record per sandbox
// in its storage container's userdata directory (<root>/overlay-containers/<id>/userdata/
// sandbox.json), written atomically. The storage container's metadata carries CRI-O's
// RuntimeContainerMetadata (pod: true), so podman and CRI-O tooling see it as a pod.
//
// Crash safety: RunPodSandbox writes a progress file (creating.json) beside it while it builds
// the sandbox, naming what it made so far (pins, CNI, cgroup); sandbox.json only once everything
// is made. On restart a storage pod container without sandbox.json is half-made: restore() hands
// it to the caller's cleanup, which undoes what creating.json names, and deletes it.
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import { log } from "../log.ts";
import type { NamespaceMode } from "../proto/index.ts";
import { atomicWriteFile } from "../storage/atomic.ts";
import { marshalRuntimeContainerMetadata, type Container, type Store } from "../storage/index.ts";

export const SANDBOX_FILE = "sandbox.json";
export const PROGRESS_FILE = "creating.json";

export type SandboxStateName = "READY" | "NOTREADY";

export interface SandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** The pod's CRI namespace modes. */
export interface SandboxNamespaceOptions {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  targetId: string;
}

export interface SandboxPortMapping {
  protocol: "tcp" | "udp" | "sctp";
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface SandboxDns {
  servers: string[];
  searches: string[];
  options: string[];
}

/** What the daemon made for a sandbox, recorded step by step (creating.json) and in the record. */
export interface SandboxResources {
  /** An infra container was (being) created under this runtime handler. */
  infra?: { runtimeHandler: string };
  /** Pinned namespace files (absent kinds are the host's). */
  netnsPath?: string;
  ipcnsPath?: string;
  utsnsPath?: string;
  /** CNI ADD was attempted (tearDown must run). */
  network?: boolean;
  /** The sandbox cgroup was made under this parent. */
  cgroupParent?: string;
  /** The log directory was created by the daemon. */
  logDirectoryCreated?: string;
  /**
   * The pod's /dev/shm: a tmpfs the daemon mounted at <run dir>/shm, or "/dev/shm" (the host's,
   * never unmounted) for a host-IPC pod.
   */
  shmPath?: string;
}

/** The persisted sandbox (sandbox.json). */
export interface SandboxRecord extends SandboxResources {
  version: 1;
  id: string;
  /** k8s_<name>_<namespace>_<uid>_<attempt>. */
  name: string;
  metadata: SandboxMetadata;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: SandboxStateName;
  /** Unix nanoseconds, as a decimal string (JSON has no 64-bit integers). */
  createdNs: string;
  runtimeHandler: string;
  namespaceOptions: SandboxNamespaceOptions;
  hostNetwork: boolean;
  ips: string[];
  cgroupPath: string;
  logDirectory: string;
  dns?: SandboxDns;
  hostname: string;
  resolvPath: string;
  hostnamePath: string;
  /** <run dir>/hosts, a copy of the host's /etc/hosts, for host-network pods only. */
  hostsPath?: string;
  portMappings: SandboxPortMapping[];
  sysctls: Record<string, string>;
  /** The infra (pause) container's pid, when the pod runs one (its PID namespace is the pod's). */
  infraPid?: number;
  /** Its conmon's pid. */
  infraMonitorPid?: number;
  /** Whether stop completed (network torn down, namespaces unpinned). */
  stopped: boolean;
}

/** k8s_<name>_<namespace>_<uid>_<attempt> (CRI-O server/naming.go). */
export function sandboxName(m: SandboxMetadata): string {
  return ["k8s", m.name, m.namespace, m.uid, String(m.attempt)].join("_");
}

/** The infra container's name, which CRI-O gives the storage container: k8s_POD_<...>. */
export function infraContainerName(m: SandboxMetadata): string {
  return ["k8s", "POD", m.name, m.namespace, m.uid, String(m.attempt)].join("_");
}

/** Serialises async work per key (one sandbox's run/stop/remove never interleave). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

interface Reservation {
  id: string;
  /** Settles when the creation holding the name ends: the ID on success. */
  done: Promise<string | undefined>;
  resolve: (id: string | undefined) => void;
}

/** What reserveName answers: a fresh reservation, or the ID the name already belongs to. */
export type ReserveResult = { reserved: true } | { reserved: false; existingId: string };

export class SandboxIndex {
  private readonly byId = new Map<string, SandboxRecord>();
  private readonly names = new Map<string, Reservation>();
  readonly locks = new KeyedMutex();

  constructor(private readonly store: Store) {}

  /** A new random ID that no sandbox (and no ID prefix of one) collides with. */
  newId(): string {
    for (;;) {
      const id = randomBytes(32).toString("hex");
      if (!this.byId.has(id) && !this.names.has(id)) return id;
    }
  }

  /**
   * Reserves `name` for sandbox `id`. When the name is taken, waits for a creation in progress
   * under it to end: the existing sandbox's ID is returned (kubelet retrying a slow
   * RunPodSandbox gets the pod it asked for, never a second one); if that creation failed, the
   * reservation is tried again.
   */
  async reserveName(name: string, id: string): Promise<ReserveResult> {
    for (;;) {
      const held = this.names.get(name);
      if (held === undefined) {
        let resolve!: (v: string | undefined) => void;
        const done = new Promise<string | undefined>((r) => (resolve = r));
        this.names.set(name, { id, done, resolve });
        return { reserved: true };
      }
      const existing = await held.done;
      if (existing !== undefined && this.byId.has(existing)) return { reserved: false, existingId: existing };
    }
  }

  /** Ends a reservation's creation: `ok` keeps the name (the sandbox exists), otherwise frees it. */
  settleName(name: string, id: string, ok: boolean): void {
    const held = this.names.get(name);
    if (held === undefined || held.id !== id) return;
    if (!ok) this.names.delete(name);
    held.resolve(ok ? id : undefined);
  }

  private holdName(name: string, id: string): void {
    this.names.set(name, { id, done: Promise.resolve(id), resolve: () => {} });
  }

  releaseName(name: string, id: string): void {
    if (this.names.get(name)?.id === id) this.names.delete(name);
  }

  /** Whether `id` is a sandbox here, or one being created (its name is reserved). */
  knows(id: string): boolean {
    if (this.byId.has(id)) return true;
    for (const r of this.names.values()) if (r.id === id) return true;
    return false;
  }

  add(rec: SandboxRecord): void {
    this.byId.set(rec.id, rec);
  }

  delete(id: string): void {
    const rec = this.byId.get(id);
    this.byId.delete(id);
    if (rec) this.releaseName(rec.name, id);
  }

  /** The sandbox an ID or unique ID prefix names; undefined when none does. Ambiguous: InvalidArgumentError. */
  find(idOrPrefix: string): SandboxRecord | undefined {
    if (idOrPrefix === "") return undefined;
    const exact = this.byId.get(idOrPrefix);
    if (exact) return exact;
    let found: SandboxRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(idOrPrefix)) continue;
      if (found) throw new InvalidArgumentError(`pod sandbox ID prefix ${JSON.stringify(idOrPrefix)} is ambiguous: it matches more than one pod sandbox`);
      found = rec;
    }
    return found;
  }

  /** find(), NotFoundError when absent. */
  get(idOrPrefix: string): SandboxRecord {
    if (idOrPrefix === "") throw new InvalidArgumentError("PodSandboxId should not be empty");
    const rec = this.find(idOrPrefix);
    if (!rec) throw new NotFoundError(`could not find pod sandbox ${JSON.stringify(idOrPrefix)}`);
    return rec;
  }

  list(): SandboxRecord[] {
    return [...this.byId.values()];
  }

  /** Atomically rewrites the record into the sandbox's userdata directory. */
  async persist(rec: SandboxRecord): Promise<void> {
    const dir = await this.store.containerDirectory(rec.id);
    await atomicWriteFile(join(dir, SANDBOX_FILE), JSON.stringify(rec, null, 2), 0o600);
  }

  /** Records what a creation in progress has made so far (creating.json). */
  async saveProgress(id: string, made: SandboxResources): Promise<void> {
    const dir = await this.store.containerDirectory(id);
    await atomicWriteFile(join(dir, PROGRESS_FILE), JSON.stringify(made), 0o600);
  }

  async clearProgress(id: string): Promise<void> {
    const dir = await this.store.containerDirectory(id);
    await rm(join(dir, PROGRESS_FILE), { force: true });
  }

  /** The storage container's metadata string for a sandbox (CRI-O's RuntimeContainerMetadata). */
  static storageMetadata(id: string, m: SandboxMetadata, createdNs: bigint): string {
    return marshalRuntimeContainerMetadata({
      "pod-name": sandboxName(m),
      "pod-id": id,
      "image-name": "",
      "image-id": "",
      name: infraContainerName(m),
      "metadata-name": m.name,
      uid: m.uid,
      namespace: m.namespace,
      "created-at": Number(createdNs / 1_000_000_000n),
      attempt: m.attempt,
      pod: true,
    });
  }

  /**
   * Loads every sandbox from storage. Pod containers without sandbox.json (a creation the daemon
   * did not finish) go to `dropHalfMade` with what creating.json recorded, and are deleted.
   * Storage containers that are not sandboxes of this daemon are left alone.
   */
  async restore(dropHalfMade: (id: string, made: SandboxResources) => Promise<void>): Promise<number> {
    let restored = 0;
    for (const c of await this.store.containers()) {
      if (!isSandboxContainer(c)) continue;
      const dir = await this.store.containerDirectory(c.id);
      let rec: SandboxRecord | undefined;
      try {
        rec = JSON.parse(await readFile(join(dir, SANDBOX_FILE), "utf8")) as SandboxRecord;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn("unreadable sandbox record, dropping the sandbox", { id: c.id, error: err });
      }
      if (rec === undefined || rec.id !== c.id || rec.version !== 1) {
        let made: SandboxResources = {};
        try {
          made = JSON.parse(await readFile(join(dir, PROGRESS_FILE), "utf8")) as SandboxResources;
        } catch {
          // nothing recorded: nothing but the storage container was made
        }
        log.info("removing a pod sandbox whose creation did not finish", { id: c.id });
        try {
          await dropHalfMade(c.id, made);
          await this.store.deleteContainer(c.id);
        } catch (err) {
          log.error("could not remove a half-made pod sandbox", { id: c.id, error: err });
        }
        continue;
      }
      // A crash between writing sandbox.json and removing creating.json: the sandbox is whole.
      await rm(join(dir, PROGRESS_FILE), { force: true });
      // After a reboot the pinned namespaces are gone (the bind mounts were in tmpfs /run): the
      // sandbox can no longer run anything and kubelet must see it NOTREADY to recreate it.
      const pins = [rec.netnsPath, rec.ipcnsPath, rec.utsnsPath].filter((p): p is string => !!p);
      if (rec.state === "READY" && pins.some((p) => !existsSync(p))) {
        log.warn("pod sandbox lost its namespaces (node rebooted?): marking it NOTREADY", { id: rec.id });
        rec.state = "NOTREADY";
      }
      this.byId.set(rec.id, rec);
      this.holdName(rec.name, rec.id);
      restored++;
    }
    return restored;
  }
}

function isSandboxContainer(c: Container): boolean {
  if (!HEX64.test(c.id) || c.metadata === undefined || c.metadata === "") return false;
  try {
    const m = JSON.parse(c.metadata) as { pod?: unknown; "pod-id"?: unknown };
    return m.pod === true && m["pod-id"] === c.id;
  } catch {
    return false;
  }
}
