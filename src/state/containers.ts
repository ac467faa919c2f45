// The daemon's containers: an in-memory index (64-hex IDs with unique-prefix lookup, the
// k8s_<name>_<pod>_<namespace>_<uid>_<attempt> name reservation) backed by one JSON record per
// container (container.json) in its storage container's userdata directory, written atomically.
// The storage container's metadata carries CRI-O's RuntimeContainerMetadata (pod: false), so
// podman lists it as an external container.
//
// Crash safety: CreateContainer writes container.json only once conmon reported the container's
// pid. A storage container of one of our sandboxes without container.json is a creation the
// daemon did not finish; restore() hands it to the caller's cleanup (runtime delete, conmon
// killed, rootfs unmounted) and deletes it.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../errors.ts";
import { log } from "../log.ts";
import { atomicWriteFile } from "../storage/atomic.ts";
import { marshalRuntimeContainerMetadata, type Container, type Store } from "../storage/index.ts";
import { KeyedMutex, type SandboxRecord } from "./sandboxes.ts";

export const CONTAINER_FILE = "container.json";

/** A CRI Mount as stored (plain JSON). */
export interface StoredMount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  selinuxRelabel: boolean;
  propagation: number;
}

/** The container's linux resources as ContainerStatus reports them (numbers, not bigints). */
export interface StoredResources {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimitInBytes: number;
  memorySwapLimitInBytes: number;
  oomScoreAdj: number;
  cpusetCpus: string;
  cpusetMems: string;
  hugepageLimits: Array<{ pageSize: string; limit: number }>;
  unified: Record<string, string>;
}

/** The persisted container (container.json). Times are Unix nanoseconds as decimal strings. */
export interface ContainerRecord {
  version: 1;
  id: string;
  /** k8s_<name>_<pod name>_<namespace>_<uid>_<attempt>. */
  name: string;
  sandboxId: string;
  metadata: { name: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The image as the request named it, and its annotations. */
  image: { image: string; annotations: Record<string, string>; userSpecifiedImage: string };
  /** The stored image's name the request resolved to (or the ID when it named one). */
  imageName: string;
  /** The image ID (config digest hex). */
  imageId: string;
  /** A repo digest of the image (name@sha256:…), else its ID. */
  imageRef: string;
  createdNs: string;
  startedNs?: string;
  finishedNs?: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** StartContainer ran (the container left CREATED). */
  started: boolean;
  logPath: string;
  /** OCI bundle: <runroot>/overlay-containers/<id>/userdata (config.json, conmon's pid files, ctl fifo). */
  bundleDir: string;
  /** conmon's --persist-dir: <root>/overlay-containers/<id>/userdata (config.json copy, exit, oom). */
  persistDir: string;
  mountPoint: string;
  runtimeHandler: string;
  cgroupsPath: string;
  /** The sandbox cgroup parent (for the monitor cgroup). */
  cgroupParent: string;
  mounts: StoredMount[];
  /** Signal number for StopContainer. */
  stopSignal: number;
  user: { uid: number; gid: number; supplementalGroups: number[] };
  resources: StoredResources;
  privileged: boolean;
  /** The container joins a PID namespace it does not own (pod, node or target). */
  sharedPidNamespace?: boolean;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  pid?: number;
  monitorPid?: number;
}

export type ContainerStateName = "CREATED" | "RUNNING" | "EXITED";

export function containerState(rec: ContainerRecord): ContainerStateName {
  if (rec.finishedNs !== undefined) return "EXITED";
  return rec.started ? "RUNNING" : "CREATED";
}

/** k8s_<container>_<pod>_<namespace>_<uid>_<attempt> (CRI-O server/naming.go makeContainerName). */
export function containerName(ctr: { name: string; attempt: number }, pod: SandboxRecord["metadata"]): string {
  return ["k8s", ctr.name, pod.name, pod.namespace, pod.uid, String(ctr.attempt)].join("_");
}

const HEX64 = /^[0-9a-f]{64}$/;

export class ContainerIndex {
  private readonly byId = new Map<string, ContainerRecord>();
  /** name → id, for live containers and creations in progress. */
  private readonly names = new Map<string, string>();
  /** IDs being created (name reserved, no record yet). */
  private readonly creating = new Set<string>();
  readonly locks = new KeyedMutex();

  constructor(private readonly store: Store) {}

  newId(isTaken: (id: string) => boolean = () => false): string {
    for (;;) {
      const id = randomBytes(32).toString("hex");
      if (!this.byId.has(id) && !this.creating.has(id) && !isTaken(id)) return id;
    }
  }

  /** Reserves a name for a creation; AlreadyExistsError naming the holder when taken. */
  reserveName(name: string, id: string): void {
    const holder = this.names.get(name);
    if (holder !== undefined) {
      throw new AlreadyExistsError(`the container name ${JSON.stringify(name)} is already in use by ${holder}. You have to remove that container to be able to reuse that name`);
    }
    this.names.set(name, id);
    this.creating.add(id);
  }

  /** Ends a creation: with a record the name stays, otherwise it is freed. */
  settle(name: string, id: string, rec: ContainerRecord | undefined): void {
    this.creating.delete(id);
    if (rec) this.byId.set(id, rec);
    else if (this.names.get(name) === id) this.names.delete(name);
  }

  delete(id: string): void {
    const rec = this.byId.get(id);
    this.byId.delete(id);
    if (rec && this.names.get(rec.name) === id) this.names.delete(rec.name);
  }

  has(id: string): boolean {
    return this.byId.has(id) || this.creating.has(id);
  }

  /** The container an ID or unique ID prefix names; undefined when none does. */
  find(idOrPrefix: string): ContainerRecord | undefined {
    if (idOrPrefix === "") return undefined;
    const exact = this.byId.get(idOrPrefix);
    if (exact) return exact;
    let found: ContainerRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(idOrPrefix)) continue;
      if (found) throw new InvalidArgumentError(`container ID prefix ${JSON.stringify(idOrPrefix)} is ambiguous: it matches more than one container`);
      found = rec;
    }
    return found;
  }

  get(idOrPrefix: string): ContainerRecord {
    if (idOrPrefix === "") throw new InvalidArgumentError("ContainerId should not be empty");
    const rec = this.find(idOrPrefix);
    if (!rec) throw new NotFoundError(`could not find container ${JSON.stringify(idOrPrefix)}`);
    return rec;
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  ofSandbox(sandboxId: string): ContainerRecord[] {
    return this.list().filter((c) => c.sandboxId === sandboxId);
  }

  async persist(rec: ContainerRecord): Promise<void> {
    await atomicWriteFile(join(rec.persistDir, CONTAINER_FILE), JSON.stringify(rec, null, 2), 0o600);
  }

  static storageMetadata(o: {
    id: string; sandbox: SandboxRecord; name: string; metadataName: string; attempt: number;
    imageName: string; imageId: string; createdNs: bigint; privileged: boolean;
  }): string {
    return marshalRuntimeContainerMetadata({
      "pod-name": o.sandbox.name,
      "pod-id": o.sandbox.id,
      "image-name": o.imageName,
      "image-id": o.imageId,
      name: o.name,
      "metadata-name": o.metadataName,
      uid: o.sandbox.metadata.uid,
      namespace: o.sandbox.metadata.namespace,
      "created-at": Number(o.createdNs / 1_000_000_000n),
      attempt: o.attempt,
      privileged: o.privileged || undefined,
    });
  }

  /**
   * Loads every container of a known sandbox from storage. Storage containers of our sandboxes
   * without a valid container.json go to `dropHalfMade`, then are deleted. Others (podman's,
   * sandboxes) are left alone.
   */
  async restore(isSandbox: (id: string) => boolean, dropHalfMade: (c: Container) => Promise<void>): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const c of await this.store.containers()) {
      const podId = podIdOf(c);
      if (podId === undefined || podId === c.id || !isSandbox(podId)) continue;
      const dir = await this.store.containerDirectory(c.id);
      let rec: ContainerRecord | undefined;
      try {
        rec = JSON.parse(await readFile(join(dir, CONTAINER_FILE), "utf8")) as ContainerRecord;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn("unreadable container record, dropping the container", { id: c.id, error: err });
      }
      if (rec === undefined || rec.id !== c.id || rec.version !== 1) {
        log.info("removing a container whose creation did not finish", { id: c.id });
        try {
          await dropHalfMade(c);
          await this.store.deleteContainer(c.id);
        } catch (err) {
          log.error("could not remove a half-made container", { id: c.id, error: err });
        }
        continue;
      }
      this.byId.set(rec.id, rec);
      this.names.set(rec.name, rec.id);
      out.push(rec);
    }
    return out;
  }
}

function podIdOf(c: Container): string | undefined {
  if (!HEX64.test(c.id) || !c.metadata) return undefined;
  try {
    const m = JSON.parse(c.metadata) as { pod?: unknown; "pod-id"?: unknown };
    if (m.pod === true || typeof m["pod-id"] !== "string") return undefined;
    return m["pod-id"];
  } catch {
    return undefined;
  }
}
