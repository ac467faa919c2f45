// What the RPC handlers share: the running configuration (replaced on SIGHUP) and the daemon's
// view of its subsystems. Later issues add the image store, sandbox and container state here.
import type { Config } from "../config/index.ts";
import type { ImageService } from "../image/service.ts";
import type { CniNetwork } from "../network/index.ts";
import { newCgroupManager, type CgroupManager } from "../cgroups/index.ts";
import type { SandboxIndex } from "../state/sandboxes.ts";
import { ContainerIndex } from "../state/containers.ts";
import { ContainerExits } from "./runtime/container-common.ts";
import { ContainerEventBus } from "./runtime/container-events.ts";
import type { StreamingServer } from "../streaming/index.ts";
import { ContainerEventType } from "../proto/index.ts";
import type { Store } from "../storage/index.ts";
import type { CrioInfo } from "./http.ts";

export interface NetworkStatus {
  ready: boolean;
  reason: string;
  message: string;
}

export class ServerContext {
  readonly images: ImageService;
  readonly containers: ContainerIndex;
  /** Exit files of container_exits_dir (its path is not reloadable). */
  readonly exits: ContainerExits;
  /** The exec/attach/port-forward server (started by the daemon after the CRI socket). */
  streaming: StreamingServer | undefined;
  /** Settles when the streaming server has started (or failed to). */
  streamingReady: Promise<StreamingServer> | undefined;
  /** GetContainerEvents streams (enable_pod_events). */
  readonly events: ContainerEventBus;
  private cgroupManager: CgroupManager | undefined;

  constructor(
    public config: Config,
    images: (ctx: ServerContext) => ImageService,
    readonly network: CniNetwork,
    readonly store: Store,
    readonly sandboxes: SandboxIndex,
  ) {
    this.images = images(this);
    this.containers = new ContainerIndex(store);
    this.exits = new ContainerExits(this.containers, config.runtime.container_exits_dir);
    this.events = new ContainerEventBus(this);
    this.exits.onExit = (rec) => this.events.emit(rec.id, ContainerEventType.CONTAINER_STOPPED_EVENT, rec.sandboxId);
  }

  /** The cgroup manager cgroup_manager names (made on first use; it is not reloadable). */
  cgroups(): CgroupManager {
    this.cgroupManager ??= newCgroupManager(this.config.runtime.cgroup_manager);
    return this.cgroupManager;
  }

  /** The NetworkReady condition: whether a CNI network configuration is loaded. */
  networkStatus(): NetworkStatus {
    return this.network.ready();
  }

  /** GET /info of the status API. */
  crioInfo(): CrioInfo {
    return {
      storage_driver: this.config.storage_driver,
      storage_image: this.config.imagestore,
      storage_root: this.config.root,
      cgroup_driver: this.config.runtime.cgroup_manager,
      default_id_mappings: { uids: null, gids: null },
    };
  }
}
