// The one configuration schema. Every crio.conf(5) option is declared here exactly once: its TOML
// table and key (CRI-O's names), type, built-in default, documentation, command-line flag and
// environment variable, whether SIGHUP reloads it, and whether it is deprecated. Defaults, the
// loader, `crio config`, the flag list and both man pages are all generated from this file.
//
// The TypeScript shape of the loaded configuration (`Config`) is declared next to the schema and
// the compiler checks that each table spec declares exactly the keys of its interface, with a
// default of the right type (see `TableSpec`).

// ---------------------------------------------------------------------------------------------
// Option specs
// ---------------------------------------------------------------------------------------------

export type OptionKind = "string" | "bool" | "int" | "float" | "string[]" | "duration" | "enum" | "map";

/** How an option is reachable from the command line. */
export interface FlagSpec {
  /** Long flag name without the leading dashes, e.g. "log-level". */
  readonly name: string;
  /** Other names (without dashes): one-letter short forms like "l" or long aliases like "tz". */
  readonly aliases?: readonly string[];
  /** Hidden from help output (CRI-O hides a few flags). */
  readonly hidden?: boolean;
  /**
   * Environment variable read when the flag is not given. Omitted: CONTAINER_<NAME_UPPER_SNAKE>,
   * the rule CRI-O follows for most flags; a string where CRI-O uses another name; null: none.
   */
  readonly env?: string | null;
  /** Further variables consulted, with lower precedence, when the primary one is unset. */
  readonly fallbackEnv?: readonly string[];
}

interface OptionCommon {
  /** What the option does, in full sentences. Rendered as `# ` comments and in crio.conf(5). */
  readonly doc: string;
  readonly flag?: FlagSpec;
  /** Applied on SIGHUP without a restart (CRI-O's reload.go). */
  readonly reload?: boolean;
  /** Set when CRI-O deprecates the option: what to use instead, or why it no longer matters. */
  readonly deprecated?: string;
  /** False for settings that exist only on the command line (never read from or written to TOML). */
  readonly toml?: false;
  /** The value names a file or directory (used for completions and man pages). */
  readonly path?: boolean;
}

export interface StringOption extends OptionCommon {
  readonly kind: "string";
  readonly default: string;
}
export interface EnumOption<T extends string = string> extends OptionCommon {
  readonly kind: "enum";
  readonly default: T;
  readonly values: readonly T[];
  /** Compare case-insensitively (log levels are parsed that way by CRI-O). */
  readonly caseInsensitive?: boolean;
}
export interface DurationOption extends OptionCommon {
  readonly kind: "duration";
  /** Go duration syntax, canonical form ("0s", "1m30s"), or "" where allowEmpty is set. */
  readonly default: string;
  readonly allowEmpty?: boolean;
  /** Keep the text as written instead of normalizing it (CRI-O stores some as plain strings). */
  readonly keepText?: boolean;
}
export interface BoolOption extends OptionCommon {
  readonly kind: "bool";
  readonly default: boolean;
}
export interface IntOption extends OptionCommon {
  readonly kind: "int";
  readonly default: number;
}
export interface FloatOption extends OptionCommon {
  readonly kind: "float";
  readonly default: number;
}
export interface ListOption extends OptionCommon {
  readonly kind: "string[]";
  readonly default: readonly string[];
}
export interface MapOption extends OptionCommon {
  readonly kind: "map";
  readonly default: Readonly<Record<string, string>>;
}

export type OptionSpec =
  | StringOption
  | EnumOption
  | DurationOption
  | BoolOption
  | IntOption
  | FloatOption
  | ListOption
  | MapOption;

/** The spec type allowed for a Config field of type T. */
type SpecFor<T> = [T] extends [boolean]
  ? BoolOption
  : [T] extends [number]
    ? IntOption | FloatOption
    : [T] extends [string[]]
      ? ListOption
      : [T] extends [Record<string, string>]
        ? MapOption
        : [T] extends [string]
          ? string extends T
            ? StringOption | DurationOption | EnumOption<string>
            : EnumOption<T>
          : never;

/** A table spec must declare every key of its interface, each with a matching spec. */
export type TableSpec<S> = { readonly [K in keyof S]-?: SpecFor<S[K]> };

// ---------------------------------------------------------------------------------------------
// The Config shape (TOML names, TOML nesting)
// ---------------------------------------------------------------------------------------------

export type CgroupManager = "systemd" | "cgroupfs";
export type LogLevel = "fatal" | "panic" | "error" | "warn" | "warning" | "info" | "debug" | "trace";
export type ImageVolumes = "mkdir" | "bind" | "ignore";
export type ShortNameMode = "enforcing" | "disabled" | "";
export type RuntimeType = "oci" | "vm" | "pod" | "";
export type MonitorExecCgroup = "" | "container";
export type ExecCpuAffinity = "" | "first";
export type TlsVersion = "VersionTLS10" | "VersionTLS11" | "VersionTLS12" | "VersionTLS13";
export type CheckpointRestoreLevel = "none" | "checkpoint_only" | "checkpoint_restore";
export type LogFormat = "text" | "json";

/** Keys directly under [crio]. */
export interface CrioRootOptions {
  root: string;
  runroot: string;
  imagestore: string;
  storage_driver: string;
  storage_option: string[];
  log_dir: string;
  version_file: string;
  version_file_persist: string;
  internal_wipe: boolean;
  internal_repair: boolean;
  clean_shutdown_file: string;
}

/** [crio.api] */
export interface ApiConfig {
  listen: string;
  stream_address: string;
  stream_port: string;
  stream_enable_tls: boolean;
  stream_idle_timeout: string;
  stream_tls_cert: string;
  stream_tls_key: string;
  stream_tls_ca: string;
  tls_min_version: TlsVersion;
  tls_cipher_suites: string[];
  grpc_max_send_msg_size: number;
  grpc_max_recv_msg_size: number;
}

/** Plain options of [crio.runtime] (the runtimes and workloads maps are added in RuntimeConfig). */
export interface RuntimeOptions {
  default_ulimits: string[];
  no_pivot: boolean;
  decryption_keys_path: string;
  additional_artifact_stores: string[];
  default_env: string[];
  min_injected_gomaxprocs: number;
  selinux: boolean;
  seccomp_profile: string;
  privileged_seccomp_profile: string;
  apparmor_profile: string;
  blockio_config_file: string;
  blockio_reload: boolean;
  irqbalance_config_file: string;
  irqbalance_config_restore_file: string;
  rdt_config_file: string;
  cgroup_manager: CgroupManager;
  separate_pull_cgroup: string;
  default_capabilities: string[];
  add_inheritable_capabilities: boolean;
  default_sysctls: string[];
  allowed_devices: string[];
  additional_devices: string[];
  cdi_spec_dirs: string[];
  device_ownership_from_security_context: boolean;
  hooks_dir: string[];
  default_mounts_file: string;
  pids_limit: number;
  log_size_max: number;
  log_to_journald: boolean;
  container_exits_dir: string;
  container_attach_socket_dir: string;
  bind_mount_prefix: string;
  read_only: boolean;
  log_level: LogLevel;
  log_filter: string;
  uid_mappings: string;
  gid_mappings: string;
  minimum_mappable_uid: number;
  minimum_mappable_gid: number;
  ctr_stop_timeout: number;
  drop_infra_ctr: boolean;
  infra_ctr_cpuset: string;
  shared_cpuset: string;
  namespaces_dir: string;
  pinns_path: string;
  enable_criu_support: boolean;
  enable_pod_events: boolean;
  default_runtime: string;
  absent_mount_sources_to_reject: string[];
  hostnetwork_disable_selinux: boolean;
  disable_hostport_mapping: boolean;
  timezone: string;
}

/** [crio.runtime.runtimes.<handler>] */
export interface RuntimeHandler {
  runtime_path: string;
  runtime_type: RuntimeType;
  runtime_root: string;
  inherit_default_runtime: boolean;
  runtime_config_path: string;
  container_min_memory: string;
  monitor_path: string;
  monitor_cgroup: string;
  monitor_exec_cgroup: MonitorExecCgroup;
  monitor_env: string[];
  allowed_annotations: string[];
  privileged_without_host_devices: boolean;
  platform_runtime_paths: Record<string, string>;
  default_annotations: Record<string, string>;
  no_sync_log: boolean;
  stream_websockets: boolean;
  exec_cpu_affinity: ExecCpuAffinity;
  seccomp_profile: string;
  container_create_timeout: number;
  runtime_pull_image: boolean;
}

/** [crio.runtime.workloads.<name>] */
export interface WorkloadOptions {
  activation_annotation: string;
  annotation_prefix: string;
  allowed_annotations: string[];
}

/** [crio.runtime.workloads.<name>.resources] */
export interface WorkloadResources {
  cpushares: number;
  cpuset: string;
  cpuquota: number;
  cpuperiod: number;
  cpulimit: number;
}

export interface Workload extends WorkloadOptions {
  resources: WorkloadResources;
}

export interface RuntimeConfig extends RuntimeOptions {
  runtimes: Record<string, RuntimeHandler>;
  workloads: Record<string, Workload>;
}

/** [crio.checkpoint_restore] */
export interface CheckpointRestoreConfig {
  container_level_enabled: CheckpointRestoreLevel;
}

/** [crio.image] (registries_conf and registries_conf_dir come from flags/env only). */
export interface ImageConfig {
  default_transport: string;
  global_auth_file: string;
  namespaced_auth_dir: string;
  pause_image: string;
  pause_image_auth_file: string;
  pause_command: string;
  pinned_images: string[];
  signature_policy: string;
  signature_policy_dir: string;
  insecure_registries: string[];
  image_volumes: ImageVolumes;
  big_files_temporary_dir: string;
  auto_reload_registries: boolean;
  pull_progress_timeout: string;
  oci_artifact_mount_support: boolean;
  short_name_mode: ShortNameMode;
  registries_conf: string;
  registries_conf_dir: string;
}

/** [crio.network] */
export interface NetworkConfig {
  cni_default_network: string;
  network_dir: string;
  plugin_dirs: string[];
  cni_status_grace_period: string;
}

/** [crio.metrics] */
export interface MetricsConfig {
  enable_metrics: boolean;
  metrics_collectors: string[];
  metrics_host: string;
  metrics_port: number;
  metrics_socket: string;
  metrics_cert: string;
  metrics_key: string;
}

/** [crio.tracing] */
export interface TracingConfig {
  enable_tracing: boolean;
  tracing_endpoint: string;
  tracing_sampling_rate_per_million: number;
}

/** [crio.stats] */
export interface StatsConfig {
  stats_collection_period: number;
  collection_period: number;
  included_pod_metrics: string[];
}

/** Plain options of [crio.nri]. */
export interface NriOptions {
  enable_nri: boolean;
  nri_listen: string;
  nri_plugin_dir: string;
  nri_plugin_config_dir: string;
  nri_disable_connections: boolean;
  nri_plugin_registration_timeout: string;
  nri_plugin_request_timeout: string;
}

/** [crio.nri.default_validator] */
export interface NriDefaultValidatorConfig {
  nri_enable_default_validator: boolean;
  nri_validator_reject_oci_hook_adjustment: boolean;
  nri_validator_reject_runtime_default_seccomp_adjustment: boolean;
  nri_validator_reject_unconfined_seccomp_adjustment: boolean;
  nri_validator_reject_custom_seccomp_adjustment: boolean;
  nri_validator_reject_namespace_adjustment: boolean;
  nri_validator_required_plugins: string[];
  nri_validator_tolerate_missing_plugins_annotation: string;
}

export interface NriConfig extends NriOptions {
  default_validator: NriDefaultValidatorConfig;
}

/** Daemon settings that CRI-O only takes from the command line (never from crio.conf). */
export interface FlagOnlyConfig {
  log: string;
  log_format: LogFormat;
  profile: boolean;
  profile_cpu: string;
  profile_mem: string;
  profile_port: number;
  enable_profile_unix_socket: boolean;
  address: string;
}

/** The loaded configuration: the [crio] TOML tree with TOML names, plus command-line-only settings. */
export interface Config extends CrioRootOptions {
  api: ApiConfig;
  runtime: RuntimeConfig;
  checkpoint_restore: CheckpointRestoreConfig;
  image: ImageConfig;
  network: NetworkConfig;
  metrics: MetricsConfig;
  tracing: TracingConfig;
  nri: NriConfig;
  stats: StatsConfig;
  flagOnly: FlagOnlyConfig;
}

// ---------------------------------------------------------------------------------------------
// Constants shared with the daemon
// ---------------------------------------------------------------------------------------------

export const DEFAULT_CONFIG_FILE = "/etc/crio/crio.conf";
export const DEFAULT_CONFIG_DIR = "/etc/crio/crio.conf.d";
export const DEFAULT_STORAGE_CONF = "/etc/containers/storage.conf";
export const FALLBACK_GRAPH_ROOT = "/var/lib/containers/storage";
export const FALLBACK_RUN_ROOT = "/run/containers/storage";
export const FALLBACK_STORAGE_DRIVER = "overlay";
export const DEFAULT_MONITOR_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The cgroup CRI-O puts the container monitor in under the systemd manager. */
export const DEFAULT_MONITOR_CGROUP = "system.slice";
/** Annotations the built-in handlers may process (the syscall-tracing hook and device requests). */
export const DEFAULT_ALLOWED_ANNOTATIONS: readonly string[] = ["io.containers.trace-syscall", "devices.crio.io"];
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "KILL",
];
/** Every metrics collector CRI-O knows; all are enabled by default. */
export const ALL_METRICS_COLLECTORS: readonly string[] = [
  "image_pulls_layer_size",
  "containers_events_dropped_total",
  "containers_oom_total",
  "processes_defunct",
  "operations_total",
  "operations_latency_seconds",
  "operations_latency_seconds_total",
  "operations_errors_total",
  "image_pulls_bytes_total",
  "image_pulls_skipped_bytes_total",
  "image_pulls_failure_total",
  "image_pulls_success_total",
  "image_layer_reuse_total",
  "containers_oom_count_total",
  "containers_seccomp_notifier_count_total",
  "resources_stalled_at_stage",
  "containers_stopped_monitor_count",
  "default_runtime",
];
/** Metric groups accepted by included_pod_metrics. */
export const POD_METRIC_GROUPS: readonly string[] = [
  "all",
  "cpu",
  "hugetlb",
  "memory",
  "network",
  "oom",
  "process",
  "spec",
  "disk",
  "diskIO",
  "pressure",
];

// ---------------------------------------------------------------------------------------------
// [crio]
// ---------------------------------------------------------------------------------------------

const ROOT_OPTIONS: TableSpec<CrioRootOptions> = {
  root: {
    kind: "string",
    default: FALLBACK_GRAPH_ROOT,
    path: true,
    flag: { name: "root", aliases: ["r"] },
    doc:
      "Directory that holds all persistent data: image layers, image metadata and the writable " +
      "layers of containers. When unset or empty, the graphroot of containers-storage.conf(5) " +
      "is used.",
  },
  runroot: {
    kind: "string",
    default: FALLBACK_RUN_ROOT,
    path: true,
    flag: { name: "runroot" },
    doc:
      "Directory for volatile state such as mount points and lock files; it is expected to be " +
      "on a tmpfs. When unset or empty, the runroot of containers-storage.conf(5) is used.",
  },
  imagestore: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "imagestore" },
    doc:
      "Optional separate location for newly pulled images. When empty, images live below root " +
      "together with the container layers.",
  },
  storage_driver: {
    kind: "string",
    default: FALLBACK_STORAGE_DRIVER,
    flag: { name: "storage-driver", aliases: ["s"] },
    doc:
      "Storage driver that manages image and container layers. When empty, the driver of " +
      "containers-storage.conf(5) is used; see that page for the drivers available.",
  },
  storage_option: {
    kind: "string[]",
    default: [],
    flag: { name: "storage-opt" },
    doc:
      "Options handed to the storage driver, such as \"overlay.mountopt=nodev\". Values from the " +
      "main file and every drop-in file accumulate; a repeated option keeps its last position.",
  },
  log_dir: {
    kind: "string",
    default: "/var/log/crio/pods",
    path: true,
    flag: { name: "log-dir" },
    doc:
      "Directory where container logs are written when the kubelet does not name one. Must be " +
      "an absolute path.",
  },
  version_file: {
    kind: "string",
    default: "/var/run/crio/version",
    path: true,
    flag: { name: "version-file" },
    doc:
      "File recording the version that last ran. It should live on a tmpfs: when it is missing " +
      "at start-up the node has rebooted, and containers left in storage are wiped.",
  },
  version_file_persist: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "version-file-persist" },
    doc:
      "File recording the version that last ran, kept across reboots. When it shows an older " +
      "version, the daemon was upgraded and stored images are wiped. Empty disables the check.",
  },
  internal_wipe: {
    kind: "bool",
    default: true,
    flag: { name: "internal-wipe" },
    deprecated: "the option will be removed and the daemon will then always wipe at start-up",
    doc:
      "Let the daemon itself wipe containers after a reboot and images after an upgrade when it " +
      "starts. When false, `crio wipe` has to be run before the daemon.",
  },
  internal_repair: {
    kind: "bool",
    default: true,
    flag: { name: "internal-repair" },
    doc:
      "After an unclean shutdown, check the container and image storage for corruption and " +
      "repair it where possible before serving.",
  },
  clean_shutdown_file: {
    kind: "string",
    default: "/var/lib/crio/clean.shutdown",
    path: true,
    flag: { name: "clean-shutdown-file" },
    doc:
      "File written when the daemon stops cleanly after syncing storage to disk. If it is " +
      "absent at start-up, the storage is considered damaged and is checked or cleared.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.api]
// ---------------------------------------------------------------------------------------------

const API_OPTIONS: TableSpec<ApiConfig> = {
  listen: {
    kind: "string",
    default: "/var/run/crio/crio.sock",
    path: true,
    flag: { name: "listen" },
    doc: "Path of the unix socket serving the CRI gRPC API and the HTTP status API.",
  },
  stream_address: {
    kind: "string",
    default: "127.0.0.1",
    flag: { name: "stream-address" },
    doc: "IP address the streaming server (exec, attach, port-forward) binds to.",
  },
  stream_port: {
    kind: "string",
    default: "0",
    flag: { name: "stream-port" },
    doc: "Port of the streaming server. \"0\" picks a free port at random.",
  },
  stream_enable_tls: {
    kind: "bool",
    default: false,
    flag: { name: "stream-enable-tls", env: "CONTAINER_ENABLE_TLS" },
    doc: "Serve the streaming server over TLS. Requires stream_tls_cert and stream_tls_key.",
  },
  stream_idle_timeout: {
    kind: "duration",
    default: "",
    allowEmpty: true,
    keepText: true,
    flag: { name: "stream-idle-timeout", env: "STREAM_IDLE_TIMEOUT" },
    doc:
      "How long a streaming connection may stay idle before it is closed, as a duration such " +
      "as \"4h\". Empty keeps the built-in limit of four hours.",
  },
  stream_tls_cert: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "stream-tls-cert", env: "CONTAINER_TLS_CERT" },
    doc:
      "X.509 certificate served by the streaming server. The file is watched: a replaced " +
      "certificate is picked up without a restart.",
  },
  stream_tls_key: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "stream-tls-key", env: "CONTAINER_TLS_KEY" },
    doc: "Private key of stream_tls_cert. Changes are picked up without a restart.",
  },
  stream_tls_ca: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "stream-tls-ca", env: "CONTAINER_TLS_CA" },
    doc:
      "X.509 CA bundle used to verify client certificates on the streaming server. Changes are " +
      "picked up without a restart.",
  },
  tls_min_version: {
    kind: "enum",
    default: "VersionTLS12",
    values: ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"],
    flag: { name: "tls-min-version" },
    doc: "Oldest TLS protocol version the TLS-enabled servers accept.",
  },
  tls_cipher_suites: {
    kind: "string[]",
    default: [],
    flag: { name: "tls-cipher-suites" },
    doc:
      "Cipher suites offered by the TLS-enabled servers, by their IANA names. Empty uses a " +
      "secure built-in selection.",
  },
  grpc_max_send_msg_size: {
    kind: "int",
    default: 83886080,
    flag: { name: "grpc-max-send-msg-size" },
    doc: "Largest gRPC message the daemon sends, in bytes. Zero or less means 80 MiB.",
  },
  grpc_max_recv_msg_size: {
    kind: "int",
    default: 83886080,
    flag: { name: "grpc-max-recv-msg-size" },
    doc: "Largest gRPC message the daemon accepts, in bytes. Zero or less means 80 MiB.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.runtime]
// ---------------------------------------------------------------------------------------------

const RUNTIME_OPTIONS: TableSpec<RuntimeOptions> = {
  default_ulimits: {
    kind: "string[]",
    default: [],
    flag: { name: "default-ulimits" },
    doc:
      "Resource limits applied to every container, each written as \"name=soft:hard\", for " +
      "example \"nofile=1024:2048\". Limits not listed are inherited from the daemon.",
  },
  no_pivot: {
    kind: "bool",
    default: false,
    flag: { name: "no-pivot" },
    doc:
      "Ask the OCI runtime to move the root file system with MS_MOVE instead of pivot_root, " +
      "for setups (such as a ramdisk root) where pivot_root is unavailable.",
  },
  decryption_keys_path: {
    kind: "string",
    default: "/etc/crio/keys/",
    path: true,
    reload: true,
    flag: { name: "decryption-keys-path" },
    doc: "Directory of private keys used to decrypt encrypted images while pulling them.",
  },
  additional_artifact_stores: {
    kind: "string[]",
    default: [],
    flag: { name: "additional-artifact-stores" },
    doc:
      "Extra read-only directories searched for OCI artifacts before they are pulled, for " +
      "example stores pre-populated on the node image.",
  },
  default_env: {
    kind: "string[]",
    default: [],
    flag: { name: "default-env" },
    doc:
      "Environment variables (\"NAME=value\") given to every container. The image and the " +
      "container request can override them.",
  },
  min_injected_gomaxprocs: {
    kind: "int",
    default: 0,
    flag: { name: "min-injected-gomaxprocs" },
    doc:
      "When above zero, containers with a CPU request but no GOMAXPROCS variable get one derived " +
      "from the request, never lower than this value. Zero turns the injection off.",
  },
  selinux: {
    kind: "bool",
    default: false,
    flag: { name: "selinux" },
    doc:
      "Label pods and containers with SELinux to keep them apart. Only useful on hosts where " +
      "SELinux is enabled.",
  },
  seccomp_profile: {
    kind: "string",
    default: "",
    path: true,
    reload: true,
    flag: { name: "seccomp-profile" },
    doc:
      "JSON seccomp profile used for containers that ask for the runtime default. Empty (or a " +
      "missing file) selects the built-in profile. A handler's own seccomp_profile wins over it.",
  },
  privileged_seccomp_profile: {
    kind: "string",
    default: "",
    path: true,
    reload: true,
    flag: { name: "privileged-seccomp-profile" },
    doc:
      "Seccomp profile applied to privileged containers, which otherwise run unconfined. Empty " +
      "keeps them unconfined.",
  },
  apparmor_profile: {
    kind: "string",
    default: "crio-default",
    reload: true,
    flag: { name: "apparmor-profile" },
    doc:
      "AppArmor profile for containers that do not request one. The built-in \"crio-default\" " +
      "is loaded when missing; \"unconfined\" turns AppArmor off for such containers.",
  },
  blockio_config_file: {
    kind: "string",
    default: "",
    path: true,
    reload: true,
    flag: { name: "blockio-config-file" },
    doc: "File defining block I/O classes for the cgroup blkio/io controller. Empty disables classes.",
  },
  blockio_reload: {
    kind: "bool",
    default: false,
    reload: true,
    flag: { name: "blockio-reload" },
    doc:
      "Re-read blockio_config_file and rescan block devices each time a block I/O class is " +
      "applied, so that newly attached devices are covered.",
  },
  irqbalance_config_file: {
    kind: "string",
    default: "/etc/sysconfig/irqbalance",
    path: true,
    flag: { name: "irqbalance-config-file" },
    doc:
      "Configuration file of the irqbalance service, updated when high-performance pods ban " +
      "CPUs from interrupt handling. Debian-based systems use /etc/default/irqbalance.",
  },
  irqbalance_config_restore_file: {
    kind: "string",
    default: "/etc/sysconfig/orig_irq_banned_cpus",
    path: true,
    flag: { name: "irqbalance-config-restore-file" },
    doc:
      "File holding the CPU mask of banned interrupt CPUs to restore into the irqbalance " +
      "configuration at start-up. Empty (or \"disable\") skips the restore.",
  },
  rdt_config_file: {
    kind: "string",
    default: "",
    path: true,
    reload: true,
    flag: { name: "rdt-config-file" },
    doc: "File configuring Intel RDT classes in the resctrl file system. Empty disables RDT.",
  },
  cgroup_manager: {
    kind: "enum",
    default: "systemd",
    values: ["systemd", "cgroupfs"],
    flag: { name: "cgroup-manager" },
    doc:
      "How cgroups are created: through systemd (transient scopes and slices) or by writing " +
      "to the cgroup file system directly. Must match the kubelet's cgroup driver.",
  },
  separate_pull_cgroup: {
    kind: "string",
    default: "",
    flag: { name: "separate-pull-cgroup", env: "PULL_IN_A_CGROUP" },
    doc:
      "Pull images in a cgroup of their own: \"pod\" uses the pod's cgroup, a systemd slice " +
      "name uses that slice. Empty pulls inside the daemon. Needs the systemd cgroup manager.",
  },
  default_capabilities: {
    kind: "string[]",
    default: DEFAULT_CAPABILITIES,
    flag: { name: "default-capabilities" },
    doc:
      "Capabilities every container starts with, before the request adds or drops any. " +
      "Names are given without the CAP_ prefix.",
  },
  add_inheritable_capabilities: {
    kind: "bool",
    default: false,
    flag: { name: "add-inheritable-capabilities" },
    doc:
      "Also put the container's capabilities in the inheritable set. Needed when non-root " +
      "processes are expected to keep capabilities across exec.",
  },
  default_sysctls: {
    kind: "string[]",
    default: [],
    flag: { name: "default-sysctls" },
    doc:
      "Sysctls (\"name=value\") set in every pod, for example " +
      "\"net.ipv4.ping_group_range=0 2147483647\" to allow unprivileged ping.",
  },
  allowed_devices: {
    kind: "string[]",
    default: ["/dev/fuse", "/dev/net/tun"],
    flag: { name: "allowed-devices" },
    doc: "Host devices that pods may request through the devices annotation.",
  },
  additional_devices: {
    kind: "string[]",
    default: [],
    flag: { name: "additional-devices" },
    doc:
      "Host devices added to every container, each as \"host-path:container-path:permissions\", " +
      "for example \"/dev/sdc:/dev/xvdc:rwm\".",
  },
  cdi_spec_dirs: {
    kind: "string[]",
    default: ["/etc/cdi", "/var/run/cdi"],
    reload: true,
    flag: { name: "cdi-spec-dirs" },
    doc:
      "Directories scanned for Container Device Interface specifications. A spec in a later " +
      "directory overrides one of the same name in an earlier one.",
  },
  device_ownership_from_security_context: {
    kind: "bool",
    default: false,
    flag: { name: "device-ownership-from-security-context" },
    doc:
      "Give devices inside the container the owner and group the container runs as " +
      "(runAsUser/runAsGroup) instead of the owner on the host.",
  },
  hooks_dir: {
    kind: "string[]",
    default: ["/usr/share/containers/oci/hooks.d"],
    flag: { name: "hooks-dir" },
    doc:
      "Directories of OCI hook definitions (*.json, see oci-hooks(5)). Missing directories are " +
      "skipped; a file in a later directory masks one of the same name in an earlier one.",
  },
  default_mounts_file: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "default-mounts-file" },
    doc:
      "File listing bind mounts (\"/SRC:/DST\", one per line) added to every container. Empty " +
      "reads /etc/containers/mounts.conf and then /usr/share/containers/mounts.conf.",
  },
  pids_limit: {
    kind: "int",
    default: -1,
    flag: { name: "pids-limit" },
    deprecated: "set the kubelet's --pod-pids-limit instead",
    doc: "Maximum number of processes per container. Negative means no limit from the runtime.",
  },
  log_size_max: {
    kind: "int",
    default: -1,
    flag: { name: "log-size-max" },
    deprecated: "set the kubelet's --container-log-max-size instead",
    doc:
      "Maximum size of a container log file in bytes; the file is truncated when it is " +
      "reached. Negative means unlimited; otherwise the value must be at least 8192.",
  },
  log_to_journald: {
    kind: "bool",
    default: false,
    flag: { name: "log-journald" },
    doc: "Send container output to the systemd journal as well as to the container log file.",
  },
  container_exits_dir: {
    kind: "string",
    default: "/var/run/crio/exits",
    path: true,
    flag: { name: "container-exits-dir", env: "CONTAINER_EXITS_DIR" },
    doc: "Directory where the container monitor writes exit status files.",
  },
  container_attach_socket_dir: {
    kind: "string",
    default: "/var/run/crio",
    path: true,
    flag: { name: "container-attach-socket-dir", env: "CONTAINER_ATTACH_SOCKET_DIR" },
    doc: "Directory for the per-container attach sockets.",
  },
  bind_mount_prefix: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "bind-mount-prefix" },
    doc:
      "Prefix added to the source of every bind mount. Useful when the daemon itself runs in a " +
      "container that sees the host's root file system under a directory such as /host.",
  },
  read_only: {
    kind: "bool",
    default: false,
    flag: { name: "read-only" },
    doc:
      "Run every container with a read-only root file system; tmpfs mounts are added on /run, " +
      "/tmp and /var/tmp so that programs still find writable scratch space.",
  },
  log_level: {
    kind: "enum",
    default: "info",
    values: ["fatal", "panic", "error", "warn", "warning", "info", "debug", "trace"],
    caseInsensitive: true,
    reload: true,
    flag: { name: "log-level", aliases: ["l"] },
    doc: "Least severe level of daemon log messages that are written.",
  },
  log_filter: {
    kind: "string",
    default: "",
    reload: true,
    flag: { name: "log-filter" },
    doc:
      "Regular expression; when set, only daemon log messages matching it are written (for " +
      "example \"request:.*\" for the gRPC request log).",
  },
  uid_mappings: {
    kind: "string",
    default: "",
    flag: { name: "uid-mappings" },
    deprecated: "use Kubernetes user namespaces (hostUsers: false) instead",
    doc:
      "UID ranges for a user namespace around every container, as comma-separated " +
      "\"containerUID:hostUID:size\" triples.",
  },
  gid_mappings: {
    kind: "string",
    default: "",
    flag: { name: "gid-mappings" },
    deprecated: "use Kubernetes user namespaces (hostUsers: false) instead",
    doc:
      "GID ranges for a user namespace around every container, as comma-separated " +
      "\"containerGID:hostGID:size\" triples.",
  },
  minimum_mappable_uid: {
    kind: "int",
    default: -1,
    flag: { name: "minimum-mappable-uid" },
    deprecated: "use Kubernetes user namespaces (hostUsers: false) instead",
    doc:
      "Lowest host UID that a requested mapping may use for pods not running as root. " +
      "Negative means no such mappings are allowed.",
  },
  minimum_mappable_gid: {
    kind: "int",
    default: -1,
    flag: { name: "minimum-mappable-gid" },
    deprecated: "use Kubernetes user namespaces (hostUsers: false) instead",
    doc:
      "Lowest host GID that a requested mapping may use for pods not running as root. " +
      "Negative means no such mappings are allowed.",
  },
  ctr_stop_timeout: {
    kind: "int",
    default: 30,
    flag: { name: "ctr-stop-timeout", env: "CONTAINER_STOP_TIMEOUT" },
    doc:
      "Seconds to wait for a stopping container before reporting a timeout. Values below 30 " +
      "are raised to 30.",
  },
  drop_infra_ctr: {
    kind: "bool",
    default: true,
    flag: { name: "drop-infra-ctr" },
    doc:
      "Create pods without a pause (infra) container when nothing needs one, that is when the " +
      "pod does not share a PID namespace and no VM-based runtime is used.",
  },
  infra_ctr_cpuset: {
    kind: "string",
    default: "",
    flag: { name: "infra-ctr-cpuset" },
    doc:
      "CPUs (Linux list format, such as \"0-1,4\") that infra containers run on. Setting it to " +
      "the kubelet's reserved CPUs keeps them off the CPUs of guaranteed pods. Empty allows all.",
  },
  shared_cpuset: {
    kind: "string",
    default: "",
    flag: { name: "shared-cpuset" },
    doc:
      "CPUs (Linux list format) that guaranteed containers may share on request, in addition " +
      "to their exclusive CPUs. Empty disables sharing.",
  },
  namespaces_dir: {
    kind: "string",
    default: "/var/run",
    path: true,
    flag: { name: "namespaces-dir" },
    doc: "Directory below which pinned pod namespaces are bind-mounted.",
  },
  pinns_path: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "pinns-path" },
    doc:
      "Path of the pinns helper that pins pod namespaces. Empty searches $PATH.",
  },
  enable_criu_support: {
    kind: "bool",
    default: true,
    flag: { name: "enable-criu-support" },
    deprecated: "use [crio.checkpoint_restore] container_level_enabled instead",
    doc:
      "Allow checkpoint and restore with CRIU when the criu binary is found in $PATH.",
  },
  enable_pod_events: {
    kind: "bool",
    default: false,
    flag: { name: "enable-pod-events", env: "ENABLE_POD_EVENTS" },
    doc:
      "Stream container lifecycle events to the kubelet (GetContainerEvents), which lets it use " +
      "the evented PLEG instead of polling.",
  },
  default_runtime: {
    kind: "string",
    default: "runc",
    reload: true,
    flag: { name: "default-runtime" },
    doc:
      "Name of the runtime handler used when a pod names none. It must match a " +
      "[crio.runtime.runtimes.<name>] table.",
  },
  absent_mount_sources_to_reject: {
    kind: "string[]",
    default: [],
    flag: { name: "absent-mount-sources-to-reject" },
    doc:
      "Host paths that must exist when a container mounts them: if such a source is missing, " +
      "container creation fails instead of creating an empty directory in its place (useful " +
      "for files such as /etc/hostname).",
  },
  hostnetwork_disable_selinux: {
    kind: "bool",
    default: true,
    flag: { name: "hostnetwork-disable-selinux" },
    doc: "Run pods that use the host network namespace without SELinux separation.",
  },
  disable_hostport_mapping: {
    kind: "bool",
    default: false,
    flag: { name: "disable-hostport-mapping", env: "DISABLE_HOSTPORT_MAPPING" },
    doc:
      "Do not set up host port forwarding for pods; leave it to a CNI plugin such as " +
      "portmap.",
  },
  timezone: {
    kind: "string",
    default: "",
    flag: { name: "timezone", aliases: ["tz"], env: "CONTAINER_TIME_ZONE" },
    doc:
      "Time zone made visible inside containers, as an IANA name like \"Europe/Berlin\" or " +
      "\"Local\" for the host's. Empty leaves containers as the image defines them.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.runtime.runtimes.<handler>]
// ---------------------------------------------------------------------------------------------

/** Fields of a runtime handler table; defaults are what an omitted field means. */
export const RUNTIME_HANDLER_OPTIONS: TableSpec<RuntimeHandler> = {
  runtime_path: {
    kind: "string",
    default: "",
    path: true,
    doc:
      "Absolute path of the runtime executable. Empty looks up an executable named like the " +
      "handler in $PATH.",
  },
  runtime_type: {
    kind: "enum",
    default: "",
    values: ["", "oci", "vm", "pod"],
    doc:
      "Kind of runtime: \"oci\" for runc/crun-style runtimes driven through conmon, \"vm\" for " +
      "containerd shim v2 runtimes such as Kata, \"pod\" for one conmon-rs per pod. Empty " +
      "means \"oci\".",
  },
  runtime_root: {
    kind: "string",
    default: "",
    path: true,
    doc: "Directory where the runtime keeps the state of its containers.",
  },
  inherit_default_runtime: {
    kind: "bool",
    default: false,
    doc:
      "Copy runtime_path, runtime_type, runtime_root and runtime_config_path from the default " +
      "handler when the configuration is loaded; useful for handlers that differ only in " +
      "annotations or monitor settings.",
  },
  runtime_config_path: {
    kind: "string",
    default: "",
    path: true,
    doc: "Configuration file passed to the runtime. Only valid with runtime_type \"vm\".",
  },
  container_min_memory: {
    kind: "string",
    default: "",
    doc:
      "Smallest memory limit a container of this handler may have, with a unit such as " +
      "\"12MiB\". Empty means 12MiB.",
  },
  monitor_path: {
    kind: "string",
    default: "",
    path: true,
    doc: "Path of the container monitor (conmon or conmon-rs). Empty searches $PATH.",
  },
  monitor_cgroup: {
    kind: "string",
    default: "",
    doc:
      "Cgroup the monitor process is placed in: a systemd slice such as \"system.slice\", or " +
      "\"pod\" for the pod's cgroup. With the cgroupfs manager only \"pod\" or empty is valid.",
  },
  monitor_exec_cgroup: {
    kind: "enum",
    default: "",
    values: ["", "container"],
    doc: "\"container\" runs exec probes inside the container's cgroup; empty keeps them in the monitor's.",
  },
  monitor_env: {
    kind: "string[]",
    default: [],
    doc:
      "Environment (\"NAME=value\") of the monitor process. With conmon-rs, LOG_DRIVER, " +
      "HEAPTRACK_OUTPUT_PATH and HEAPTRACK_BINARY_PATH configure it further.",
  },
  allowed_annotations: {
    kind: "string[]",
    default: [],
    doc:
      "Experimental annotations pods of this handler may use, for example " +
      "\"io.containers.trace-syscall\", \"devices.crio.io\", \"shm-size.crio.io\", " +
      "\"userns-mode.crio.io\", \"unified-cgroup.crio.io\", \"seccomp-profile.crio.io\", " +
      "\"seccomp-notifier-action.crio.io\", \"umask.crio.io\" or \"disable-fips.crio.io\".",
  },
  privileged_without_host_devices: {
    kind: "bool",
    default: false,
    doc: "Do not hand all host devices to privileged containers of this handler.",
  },
  platform_runtime_paths: {
    kind: "map",
    default: {},
    doc:
      "Runtime executable per platform, keyed \"os/arch\" (for example \"linux/arm64\"), used " +
      "instead of runtime_path when the image's platform matches.",
  },
  default_annotations: {
    kind: "map",
    default: {},
    doc: "Annotations added to every pod of this handler unless the pod sets them itself.",
  },
  no_sync_log: {
    kind: "bool",
    default: false,
    doc:
      "Skip fsync of the container log on rotation and exit. Faster, but log lines can be lost " +
      "when the machine crashes. Only valid for runtime_type \"oci\".",
  },
  stream_websockets: {
    kind: "bool",
    default: false,
    doc:
      "Serve exec, attach and port-forward over WebSockets from the monitor. Only valid for " +
      "runtime_type \"pod\".",
  },
  exec_cpu_affinity: {
    kind: "enum",
    default: "",
    values: ["", "first"],
    doc:
      "CPU that exec'd processes are pinned to: empty leaves it to the runtime, \"first\" uses " +
      "the first shared CPU if the container has any, else its first exclusive CPU.",
  },
  seccomp_profile: {
    kind: "string",
    default: "",
    path: true,
    doc:
      "Seccomp profile used as the runtime default for this handler, taking precedence over " +
      "the global seccomp_profile. Empty defers to the global setting.",
  },
  container_create_timeout: {
    kind: "int",
    default: 0,
    doc:
      "Seconds a container creation may take. Zero means 240; values below 30 are raised to 30.",
  },
  runtime_pull_image: {
    kind: "bool",
    default: false,
    doc: "The runtime pulls images itself (some VM runtimes do), so the daemon skips the pull.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.runtime.workloads.<name>]
// ---------------------------------------------------------------------------------------------

export const WORKLOAD_OPTIONS: TableSpec<WorkloadOptions> = {
  activation_annotation: {
    kind: "string",
    default: "",
    doc: "Pod annotation key (the value is ignored) that opts a pod into this workload.",
  },
  annotation_prefix: {
    kind: "string",
    default: "",
    doc:
      "Prefix of per-container override annotations, written as " +
      "\"<prefix>.<resource>/<container>\" = \"value\".",
  },
  allowed_annotations: {
    kind: "string[]",
    default: [],
    doc: "Experimental annotations that pods of this workload may use.",
  },
};

export const WORKLOAD_RESOURCE_OPTIONS: TableSpec<WorkloadResources> = {
  cpushares: { kind: "int", default: 0, doc: "Default CPU shares of the workload's containers." },
  cpuset: { kind: "string", default: "", doc: "Default CPU set (Linux list format) of the containers." },
  cpuquota: { kind: "int", default: 0, doc: "Default CFS quota in microseconds." },
  cpuperiod: { kind: "int", default: 0, doc: "Default CFS period in microseconds." },
  cpulimit: {
    kind: "int",
    default: 0,
    doc: "CPU limit in millicores; when set it overrides cpuquota, computed against cpuperiod.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.checkpoint_restore]
// ---------------------------------------------------------------------------------------------

const CHECKPOINT_RESTORE_OPTIONS: TableSpec<CheckpointRestoreConfig> = {
  container_level_enabled: {
    kind: "enum",
    default: "checkpoint_only",
    values: ["none", "checkpoint_only", "checkpoint_restore"],
    flag: { name: "checkpoint-restore-container-level-enabled" },
    doc:
      "Which container-level CRIU operations are offered: \"none\", \"checkpoint_only\" " +
      "(checkpoints for forensics, no restore), or \"checkpoint_restore\". Restoring is off by " +
      "default because a restored container keeps the security context it was checkpointed with.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.image]
// ---------------------------------------------------------------------------------------------

const IMAGE_OPTIONS: TableSpec<ImageConfig> = {
  default_transport: {
    kind: "string",
    default: "docker://",
    flag: { name: "default-transport" },
    doc: "Transport prefixed to image names that carry none.",
  },
  global_auth_file: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "global-auth-file" },
    doc:
      "Registry credentials used for every pull when the request carries none, in the format " +
      "of /var/lib/kubelet/config.json.",
  },
  namespaced_auth_dir: {
    kind: "string",
    default: "/etc/crio/auth",
    path: true,
    flag: { name: "namespaced-auth-dir", hidden: true },
    doc:
      "Directory of per-namespace credential files (\"<namespace>-<sha256 of image name>.json\", " +
      "written by a credential provider). A matching file is used once, for one pull, instead " +
      "of global_auth_file. Must be absolute.",
  },
  pause_image: {
    kind: "string",
    default: "registry.k8s.io/pause:3.10.1",
    reload: true,
    flag: { name: "pause-image" },
    doc: "Image of the infra container that holds a pod's namespaces. Always pinned.",
  },
  pause_image_auth_file: {
    kind: "string",
    default: "",
    path: true,
    reload: true,
    flag: { name: "pause-image-auth-file" },
    doc: "Credentials (kubelet config.json format) used only to pull pause_image.",
  },
  pause_command: {
    kind: "string",
    default: "/pause",
    reload: true,
    flag: { name: "pause-command" },
    doc:
      "Command run in the infra container. An explicit empty value runs the entrypoint and " +
      "command of the pause image instead.",
  },
  pinned_images: {
    kind: "string[]",
    default: [],
    reload: true,
    flag: { name: "pinned-images" },
    doc:
      "Images the kubelet must never garbage-collect. An entry is an exact name, a prefix " +
      "ending in \"*\", or a keyword surrounded by \"*\". The pause image is always pinned.",
  },
  signature_policy: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "signature-policy" },
    doc:
      "Signature verification policy (containers-policy.json(5)). Empty uses the system-wide " +
      "/etc/containers/policy.json, which is usually what you want.",
  },
  signature_policy_dir: {
    kind: "string",
    default: "/etc/crio/policies",
    path: true,
    flag: { name: "signature-policy-dir" },
    doc:
      "Directory of per-namespace policies: a pull for a pod in namespace N uses " +
      "\"<dir>/N.json\" when that file exists, else signature_policy. Must be absolute.",
  },
  insecure_registries: {
    kind: "string[]",
    default: [],
    flag: { name: "insecure-registry" },
    deprecated: "it has no effect; mark registries insecure in registries.conf(5) instead",
    doc:
      "Registries to contact without TLS verification. Ignored; configure \"insecure = true\" " +
      "for the registry in containers-registries.conf(5).",
  },
  image_volumes: {
    kind: "enum",
    default: "mkdir",
    values: ["mkdir", "bind", "ignore"],
    flag: { name: "image-volumes" },
    doc:
      "What to do with VOLUME entries of images: \"mkdir\" creates the directories in the " +
      "container's root file system, \"bind\" bind-mounts fresh directories from the " +
      "container's state directory, \"ignore\" skips them.",
  },
  big_files_temporary_dir: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "big-files-temporary-dir" },
    doc: "Directory for large temporary files, such as image blobs during a pull. Empty uses /var/tmp.",
  },
  auto_reload_registries: {
    kind: "bool",
    default: false,
    flag: { name: "auto-reload-registries" },
    doc:
      "Watch registries.conf.d and re-read the registries configuration whenever a file there " +
      "changes, not only on SIGHUP.",
  },
  pull_progress_timeout: {
    kind: "duration",
    default: "0s",
    flag: { name: "pull-progress-timeout" },
    doc:
      "Cancel a pull that makes no progress for this long; progress is also logged at a tenth " +
      "of this interval. \"0s\" disables both.",
  },
  oci_artifact_mount_support: {
    kind: "bool",
    default: true,
    flag: { name: "oci-artifact-mount-support" },
    doc: "Allow image volumes to mount OCI artifacts. When false such mounts are rejected.",
  },
  short_name_mode: {
    kind: "enum",
    default: "enforcing",
    values: ["enforcing", "disabled", ""],
    flag: { name: "short-name-mode" },
    doc:
      "Handling of short image names that match several registries: \"enforcing\" fails the " +
      "pull as ambiguous, \"disabled\" takes the first candidate.",
  },
  registries_conf: {
    kind: "string",
    default: "/etc/containers/registries.conf",
    path: true,
    toml: false,
    flag: {
      name: "registries-conf",
      hidden: true,
      env: "CONTAINER_REGISTRIES_CONF",
      fallbackEnv: ["CONTAINERS_REGISTRIES_CONF"],
    },
    doc: "Path of containers-registries.conf(5). Command line and environment only.",
  },
  registries_conf_dir: {
    kind: "string",
    default: "/etc/containers/registries.conf.d",
    path: true,
    toml: false,
    flag: { name: "registries-conf-dir", hidden: true, env: "CONTAINER_REGISTRIES_CONF_DIR" },
    doc: "Directory of registries.conf drop-in files. Command line and environment only.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.network]
// ---------------------------------------------------------------------------------------------

const NETWORK_OPTIONS: TableSpec<NetworkConfig> = {
  cni_default_network: {
    kind: "string",
    default: "",
    flag: { name: "cni-default-network" },
    doc:
      "Name of the CNI network pods are attached to. Empty takes the first configuration " +
      "found in network_dir.",
  },
  network_dir: {
    kind: "string",
    default: "/etc/cni/net.d/",
    path: true,
    flag: { name: "cni-config-dir" },
    doc: "Directory of CNI network configurations (*.conf, *.conflist, *.json).",
  },
  plugin_dirs: {
    kind: "string[]",
    default: ["/opt/cni/bin/"],
    flag: { name: "cni-plugin-dir" },
    doc: "Directories searched for CNI plugin executables.",
  },
  cni_status_grace_period: {
    kind: "duration",
    default: "0s",
    flag: { name: "cni-status-grace-period" },
    doc:
      "How long a failing CNI STATUS check is tolerated before the network is reported not " +
      "ready. Above zero, STATUS is also polled periodically. \"0s\" checks only on demand.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.metrics]
// ---------------------------------------------------------------------------------------------

const METRICS_OPTIONS: TableSpec<MetricsConfig> = {
  enable_metrics: {
    kind: "bool",
    default: false,
    flag: { name: "enable-metrics" },
    doc: "Serve Prometheus metrics.",
  },
  metrics_collectors: {
    kind: "string[]",
    default: ALL_METRICS_COLLECTORS,
    flag: { name: "metrics-collectors" },
    doc:
      "Metric collectors to enable. Names may also carry the \"crio_\" or " +
      "\"container_runtime_crio_\" prefix; by default all are enabled.",
  },
  metrics_host: {
    kind: "string",
    default: "127.0.0.1",
    flag: { name: "metrics-host" },
    doc: "Address the metrics server listens on.",
  },
  metrics_port: {
    kind: "int",
    default: 9090,
    flag: { name: "metrics-port" },
    doc: "TCP port of the metrics server.",
  },
  metrics_socket: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "metrics-socket" },
    doc: "Unix socket on which metrics are served in addition to the TCP port. Empty: none.",
  },
  metrics_cert: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "metrics-cert" },
    doc:
      "Certificate for serving metrics over HTTPS, with metrics_key; both files must exist (no " +
      "self-signed certificate is generated, and the files are read at start-up only).",
  },
  metrics_key: {
    kind: "string",
    default: "",
    path: true,
    flag: { name: "metrics-key" },
    doc: "Private key of metrics_cert.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.tracing]
// ---------------------------------------------------------------------------------------------

const TRACING_OPTIONS: TableSpec<TracingConfig> = {
  enable_tracing: {
    kind: "bool",
    default: false,
    flag: { name: "enable-tracing" },
    doc: "Export OpenTelemetry traces of CRI requests.",
  },
  tracing_endpoint: {
    kind: "string",
    default: "127.0.0.1:4317",
    flag: { name: "tracing-endpoint" },
    doc: "Address of the OTLP/gRPC collector traces are sent to.",
  },
  tracing_sampling_rate_per_million: {
    kind: "int",
    default: 0,
    flag: { name: "tracing-sampling-rate-per-million" },
    doc: "How many of every million spans are sampled; 1000000 samples all of them.",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.stats]
// ---------------------------------------------------------------------------------------------

const STATS_OPTIONS: TableSpec<StatsConfig> = {
  stats_collection_period: {
    kind: "int",
    default: 0,
    flag: { name: "stats-collection-period" },
    deprecated: "use collection_period instead",
    doc: "Seconds between collections of pod and container stats; 0 collects on demand.",
  },
  collection_period: {
    kind: "int",
    default: 0,
    flag: { name: "collection-period" },
    doc:
      "Seconds between background collections of pod and container stats and pod metrics; 0 " +
      "collects them when they are requested.",
  },
  included_pod_metrics: {
    kind: "string[]",
    default: [],
    flag: { name: "included-pod-metrics" },
    doc:
      "Metric groups reported by ListPodSandboxMetrics: any of \"cpu\", \"hugetlb\", " +
      "\"memory\", \"network\", \"oom\", \"process\", \"spec\", \"disk\", \"diskIO\", " +
      "\"pressure\", or \"all\".",
  },
};

// ---------------------------------------------------------------------------------------------
// [crio.nri]
// ---------------------------------------------------------------------------------------------

const NRI_OPTIONS: TableSpec<NriOptions> = {
  enable_nri: {
    kind: "bool",
    default: true,
    flag: { name: "enable-nri" },
    doc: "Support Node Resource Interface plugins.",
  },
  nri_listen: {
    kind: "string",
    default: "/var/run/nri/nri.sock",
    path: true,
    flag: { name: "nri-listen" },
    doc: "Socket on which externally started NRI plugins connect.",
  },
  nri_plugin_dir: {
    kind: "string",
    default: "/opt/nri/plugins",
    path: true,
    flag: { name: "nri-plugin-dir" },
    doc: "Directory of NRI plugins started by the daemon itself.",
  },
  nri_plugin_config_dir: {
    kind: "string",
    default: "/etc/nri/conf.d",
    path: true,
    flag: { name: "nri-plugin-config-dir" },
    doc: "Directory holding the configuration of those pre-installed plugins.",
  },
  nri_disable_connections: {
    kind: "bool",
    default: false,
    flag: { name: "nri-disable-connections" },
    doc: "Refuse connections from externally started plugins.",
  },
  nri_plugin_registration_timeout: {
    kind: "duration",
    default: "5s",
    flag: { name: "nri-plugin-registration-timeout" },
    doc: "Time a plugin has to register after it was started or connected.",
  },
  nri_plugin_request_timeout: {
    kind: "duration",
    default: "2s",
    flag: { name: "nri-plugin-request-timeout" },
    doc: "Time a plugin has to answer one request.",
  },
};

const NRI_DEFAULT_VALIDATOR_OPTIONS: TableSpec<NriDefaultValidatorConfig> = {
  nri_enable_default_validator: {
    kind: "bool",
    default: false,
    flag: { name: "nri-enable-default-validator" },
    doc: "Turn on the built-in validator that vets adjustments NRI plugins make to containers.",
  },
  nri_validator_reject_oci_hook_adjustment: {
    kind: "bool",
    default: false,
    flag: { name: "nri-validator-reject-oci-hook-adjustment" },
    doc: "Reject containers for which a plugin injected OCI hooks.",
  },
  nri_validator_reject_runtime_default_seccomp_adjustment: {
    kind: "bool",
    default: false,
    flag: { name: "nri-validator-reject-runtime-default-seccomp-adjustment" },
    doc: "Reject plugin changes to the seccomp policy of containers using the runtime default profile.",
  },
  nri_validator_reject_unconfined_seccomp_adjustment: {
    kind: "bool",
    default: false,
    flag: { name: "nri-validator-reject-unconfined-seccomp-adjustment" },
    doc: "Reject plugin changes to the seccomp policy of unconfined containers.",
  },
  nri_validator_reject_custom_seccomp_adjustment: {
    kind: "bool",
    default: false,
    flag: { name: "nri-validator-reject-custom-seccomp-adjustment" },
    doc: "Reject plugin changes to the seccomp policy of containers with a custom (localhost) profile.",
  },
  nri_validator_reject_namespace_adjustment: {
    kind: "bool",
    default: false,
    flag: { name: "nri-validator-reject-namespace-adjustment" },
    doc: "Reject plugin changes to the Linux namespaces of containers.",
  },
  nri_validator_required_plugins: {
    kind: "string[]",
    default: [],
    flag: { name: "nri-validator-required-plugins" },
    doc: "Plugins that must have seen a container's creation, or the container is rejected.",
  },
  nri_validator_tolerate_missing_plugins_annotation: {
    kind: "string",
    default: "",
    flag: { name: "nri-validator-tolerate-missing-plugins-annotation" },
    doc: "Annotation with which a pod may opt out of the required-plugins check.",
  },
};

// ---------------------------------------------------------------------------------------------
// Command-line-only settings
// ---------------------------------------------------------------------------------------------

const FLAG_ONLY_OPTIONS: TableSpec<FlagOnlyConfig> = {
  log: {
    kind: "string",
    default: "",
    path: true,
    toml: false,
    flag: { name: "log" },
    doc: "File the daemon's own log is written to in addition to standard error. Empty: none.",
  },
  log_format: {
    kind: "enum",
    default: "text",
    values: ["text", "json"],
    toml: false,
    flag: { name: "log-format" },
    doc: "Format of the daemon's log lines: \"text\" or \"json\".",
  },
  profile: {
    kind: "bool",
    default: false,
    toml: false,
    flag: { name: "profile" },
    doc: "Serve a profiling endpoint on 127.0.0.1 at profile_port.",
  },
  profile_cpu: {
    kind: "string",
    default: "",
    path: true,
    toml: false,
    flag: { name: "profile-cpu" },
    doc: "Write a CPU profile of the whole run to this file.",
  },
  profile_mem: {
    kind: "string",
    default: "",
    path: true,
    toml: false,
    flag: { name: "profile-mem" },
    doc: "Write a heap profile to this file when the daemon exits.",
  },
  profile_port: {
    kind: "int",
    default: 6060,
    toml: false,
    flag: { name: "profile-port" },
    doc: "Port of the profiling endpoint enabled by --profile.",
  },
  enable_profile_unix_socket: {
    kind: "bool",
    default: false,
    toml: false,
    flag: { name: "enable-profile-unix-socket", env: "ENABLE_PROFILE_UNIX_SOCKET" },
    doc: "Also serve the profiling endpoints on the daemon's unix socket under /debug/pprof.",
  },
  address: {
    kind: "string",
    default: "",
    toml: false,
    flag: { name: "address", hidden: true, env: null },
    doc: "Address used by the internal publish command.",
  },
};

// ---------------------------------------------------------------------------------------------
// Table registry, in `crio config` order
// ---------------------------------------------------------------------------------------------

export type TableId =
  | "crio"
  | "crio.api"
  | "crio.runtime"
  | "crio.checkpoint_restore"
  | "crio.image"
  | "crio.network"
  | "crio.metrics"
  | "crio.tracing"
  | "crio.nri"
  | "crio.nri.default_validator"
  | "crio.stats"
  | "flag-only";

export interface TableDef {
  readonly id: TableId;
  /** Property path from the Config root to the object holding this table's options. */
  readonly configPath: readonly string[];
  /** Whether the table exists in TOML (false for the command-line-only settings). */
  readonly toml: boolean;
  readonly doc: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
}

export const TABLES: readonly TableDef[] = [
  {
    id: "crio",
    configPath: [],
    toml: true,
    doc:
      "The top-level table. Storage locations default to the values of " +
      "containers-storage.conf(5) (/etc/containers/storage.conf, or $CONTAINERS_STORAGE_CONF); " +
      "setting them here changes them for this daemon only.",
    options: ROOT_OPTIONS,
  },
  {
    id: "crio.api",
    configPath: ["api"],
    toml: true,
    doc: "The gRPC/HTTP socket used by the kubelet and the streaming server.",
    options: API_OPTIONS,
  },
  {
    id: "crio.runtime",
    configPath: ["runtime"],
    toml: true,
    doc: "How containers are created and run: OCI runtimes, security defaults, cgroups, logging.",
    options: RUNTIME_OPTIONS,
  },
  {
    id: "crio.checkpoint_restore",
    configPath: ["checkpoint_restore"],
    toml: true,
    doc: "Checkpointing and restoring containers with CRIU.",
    options: CHECKPOINT_RESTORE_OPTIONS,
  },
  {
    id: "crio.image",
    configPath: ["image"],
    toml: true,
    doc:
      "Image pulls and the pause image. Registries, mirrors and short-name aliases are set in " +
      "containers-registries.conf(5) (/etc/containers/registries.conf).",
    options: IMAGE_OPTIONS,
  },
  {
    id: "crio.network",
    configPath: ["network"],
    toml: true,
    doc: "Pod networking through CNI plugins.",
    options: NETWORK_OPTIONS,
  },
  {
    id: "crio.metrics",
    configPath: ["metrics"],
    toml: true,
    doc: "The Prometheus metrics server.",
    options: METRICS_OPTIONS,
  },
  {
    id: "crio.tracing",
    configPath: ["tracing"],
    toml: true,
    doc: "OpenTelemetry trace export.",
    options: TRACING_OPTIONS,
  },
  {
    id: "crio.nri",
    configPath: ["nri"],
    toml: true,
    doc: "Node Resource Interface (NRI) plugins.",
    options: NRI_OPTIONS,
  },
  {
    id: "crio.nri.default_validator",
    configPath: ["nri", "default_validator"],
    toml: true,
    doc:
      "The built-in NRI validator. When enabled it can reject a container whose creation a " +
      "plugin adjusted in a restricted way (OCI hooks, seccomp policy, namespaces), or that a " +
      "required plugin did not process.",
    options: NRI_DEFAULT_VALIDATOR_OPTIONS,
  },
  {
    id: "crio.stats",
    configPath: ["stats"],
    toml: true,
    doc: "Container and pod statistics and pod metrics.",
    options: STATS_OPTIONS,
  },
  {
    id: "flag-only",
    configPath: ["flagOnly"],
    toml: false,
    doc: "Daemon settings available only as command-line flags (and their environment variables).",
    options: FLAG_ONLY_OPTIONS,
  },
];

export const TABLE_BY_ID: ReadonlyMap<TableId, TableDef> = new Map(TABLES.map((t) => [t.id, t]));

export function tableDef(id: TableId): TableDef {
  const t = TABLE_BY_ID.get(id);
  if (!t) throw new Error(`unknown table ${id}`);
  return t;
}

/** Map tables under [crio.runtime]: handler name → handler, workload name → workload. */
export const RUNTIMES_TABLE = "crio.runtime.runtimes";
export const WORKLOADS_TABLE = "crio.runtime.workloads";

export const RUNTIMES_DOC =
  "Runtime handlers, one [crio.runtime.runtimes.<name>] table each. A pod picks one through its " +
  "RuntimeClass handler; pods naming none use default_runtime. Handlers from several files are " +
  "combined: a later table for the same name changes only the fields it sets. On SIGHUP the " +
  "whole set of handlers and default_runtime are reloaded.";

export const WORKLOADS_DOC =
  "Workloads (experimental): named groups of resource defaults that a pod opts into with an " +
  "annotation, with per-container overrides through prefixed annotations. Resources are set in " +
  "a [crio.runtime.workloads.<name>.resources] table with cpushares, cpuset, cpuquota, " +
  "cpuperiod and cpulimit.";

// ---------------------------------------------------------------------------------------------
// Deprecated and removed keys written by older releases
// ---------------------------------------------------------------------------------------------

/** What happens to a legacy key's value. */
export type LegacyAction =
  | { type: "monitor"; field: "monitor_path" | "monitor_cgroup" | "monitor_env" }
  | { type: "append"; target: { table: TableId; key: string } }
  | { type: "move"; target: { table: TableId; key: string } }
  | { type: "ignore" };

export interface LegacyKeyDef {
  readonly table: string;
  readonly key: string;
  readonly kind: OptionKind;
  /** What replaces it, in words that go into the warning. */
  readonly replacement: string;
  readonly action: LegacyAction;
  readonly flag?: FlagSpec;
  readonly doc: string;
}

/**
 * Keys that crio.conf files written by CRI-O 1.2x and earlier may still contain. They are
 * accepted, mapped to their current meaning where there is one, and reported with a warning.
 */
export const LEGACY_KEYS: readonly LegacyKeyDef[] = [
  {
    table: "crio.runtime",
    key: "conmon",
    kind: "string",
    replacement: "monitor_path in [crio.runtime.runtimes.<handler>]",
    action: { type: "monitor", field: "monitor_path" },
    flag: { name: "conmon" },
    doc: "Path of conmon. Now set per handler as monitor_path.",
  },
  {
    table: "crio.runtime",
    key: "conmon_cgroup",
    kind: "string",
    replacement: "monitor_cgroup in [crio.runtime.runtimes.<handler>]",
    action: { type: "monitor", field: "monitor_cgroup" },
    flag: { name: "conmon-cgroup" },
    doc: "Cgroup of conmon. Now set per handler as monitor_cgroup.",
  },
  {
    table: "crio.runtime",
    key: "conmon_env",
    kind: "string[]",
    replacement: "monitor_env in [crio.runtime.runtimes.<handler>]",
    action: { type: "monitor", field: "monitor_env" },
    flag: { name: "conmon-env" },
    doc: "Environment of conmon. Now set per handler as monitor_env.",
  },
  {
    table: "crio.runtime",
    key: "seccomp_use_default_when_empty",
    kind: "bool",
    replacement: "nothing: an unset seccomp profile now always means the runtime default",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "manage_ns_lifecycle",
    kind: "bool",
    replacement: "nothing: namespaces are always pinned and managed",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "manage_network_ns_lifecycle",
    kind: "bool",
    replacement: "nothing: namespaces are always pinned and managed",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "default_mounts",
    kind: "string[]",
    replacement: "default_mounts_file (a mounts.conf file); the listed mounts are not applied",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "file_locking",
    kind: "bool",
    replacement: "nothing: removed",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "file_locking_path",
    kind: "string",
    replacement: "nothing: removed",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "runtime",
    kind: "string",
    replacement: "runtime_path in [crio.runtime.runtimes.<handler>]; the value is not applied",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "runtime_untrusted_workload",
    kind: "string",
    replacement: "a separate [crio.runtime.runtimes.<handler>] table; the value is not applied",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.runtime",
    key: "default_workload_trust",
    kind: "string",
    replacement: "RuntimeClass handlers; the value is not applied",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.image",
    key: "registries",
    kind: "string[]",
    replacement: "unqualified-search-registries in containers-registries.conf(5); the value is not applied",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.network",
    key: "plugin_dir",
    kind: "string",
    replacement: "plugin_dirs (the directory is appended to it)",
    action: { type: "append", target: { table: "crio.network", key: "plugin_dirs" } },
    doc: "Single CNI plugin directory; appended to plugin_dirs.",
  },
  {
    table: "crio.network",
    key: "included_pod_metrics",
    kind: "string[]",
    replacement: "included_pod_metrics in [crio.stats] (the value is moved there)",
    action: { type: "move", target: { table: "crio.stats", key: "included_pod_metrics" } },
    doc: "Some releases printed included_pod_metrics under [crio.network]; it belongs to [crio.stats].",
  },
  {
    table: "crio.api",
    key: "host_ip",
    kind: "string[]",
    replacement: "nothing: the host IPs are detected automatically",
    action: { type: "ignore" },
    doc: "Removed.",
  },
  {
    table: "crio.nri",
    key: "nri_config_file",
    kind: "string",
    replacement: "nothing: NRI is configured through [crio.nri] alone",
    action: { type: "ignore" },
    doc: "Removed.",
  },
];

// ---------------------------------------------------------------------------------------------
// Built-in defaults
// ---------------------------------------------------------------------------------------------

function baseHandler(root: string, minMemory: string): RuntimeHandler {
  return {
    ...zeroHandler(),
    runtime_type: "oci",
    runtime_root: root,
    container_min_memory: minMemory,
    monitor_cgroup: DEFAULT_MONITOR_CGROUP,
    monitor_env: [DEFAULT_MONITOR_PATH_ENV],
    allowed_annotations: [...DEFAULT_ALLOWED_ANNOTATIONS],
    container_create_timeout: 240,
  };
}

/**
 * The handlers defined out of the box. Project decision: both runc (the default) and crun are
 * available without configuration; the monitor (conmon) is found in $PATH.
 */
export function builtinRuntimes(): Record<string, RuntimeHandler> {
  return {
    crun: baseHandler("/run/crun", "500KiB"),
    runc: baseHandler("/run/runc", "12MiB"),
  };
}

/** A handler with every field at its "omitted" value. */
export function zeroHandler(): RuntimeHandler {
  return buildSection<RuntimeHandler>(RUNTIME_HANDLER_OPTIONS);
}

/** A workload with every field at its "omitted" value. */
export function zeroWorkload(): Workload {
  return {
    ...buildSection<WorkloadOptions>(WORKLOAD_OPTIONS),
    resources: buildSection<WorkloadResources>(WORKLOAD_RESOURCE_OPTIONS),
  };
}

export function cloneValue<T>(v: T): T {
  if (Array.isArray(v)) return [...v] as T;
  if (v !== null && typeof v === "object") return { ...(v as object) } as T;
  return v;
}

function buildSection<S>(options: Readonly<Record<string, OptionSpec>>): S {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(options)) out[key] = cloneValue(spec.default);
  return out as S;
}

/** Storage values taken from containers-storage.conf(5); they replace the static defaults. */
export interface StorageDefaults {
  driver: string;
  graphroot: string;
  runroot: string;
  imagestore: string;
  options: string[];
}

/**
 * CRI-O's built-in configuration (DefaultConfig on Linux, with this project's runtime
 * decisions). Storage values come from `storage` when given, else the static fallbacks.
 */
export function defaultConfig(storage?: StorageDefaults): Config {
  const section = <S>(id: TableId): S => buildSection<S>(tableDef(id).options);
  const config: Config = {
    ...section<CrioRootOptions>("crio"),
    api: section<ApiConfig>("crio.api"),
    runtime: { ...section<RuntimeOptions>("crio.runtime"), runtimes: builtinRuntimes(), workloads: {} },
    checkpoint_restore: section<CheckpointRestoreConfig>("crio.checkpoint_restore"),
    image: section<ImageConfig>("crio.image"),
    network: section<NetworkConfig>("crio.network"),
    metrics: section<MetricsConfig>("crio.metrics"),
    tracing: section<TracingConfig>("crio.tracing"),
    nri: { ...section<NriOptions>("crio.nri"), default_validator: section<NriDefaultValidatorConfig>("crio.nri.default_validator") },
    stats: section<StatsConfig>("crio.stats"),
    flagOnly: section<FlagOnlyConfig>("flag-only"),
  };
  if (storage) {
    config.root = storage.graphroot;
    config.runroot = storage.runroot;
    config.storage_driver = storage.driver;
    config.imagestore = storage.imagestore;
    config.storage_option = [...storage.options];
  }
  return config;
}

// ---------------------------------------------------------------------------------------------
// Helpers over the schema
// ---------------------------------------------------------------------------------------------

/** The object inside `config` that holds the options of table `t`. */
export function sectionOf(config: Config, t: TableDef): Record<string, unknown> {
  let cur: unknown = config;
  for (const p of t.configPath) cur = (cur as Record<string, unknown>)[p];
  return cur as Record<string, unknown>;
}

/** Dotted path of an option inside the Config object, e.g. "runtime.log_level". */
export function configKeyOf(t: TableDef, key: string): string {
  return [...t.configPath, key].join(".");
}

/** Dotted TOML name of an option, e.g. "crio.runtime.log_level". */
export function tomlKeyOf(t: TableDef, key: string): string {
  return `${t.id}.${key}`;
}

export interface OptionRef {
  readonly table: TableDef;
  readonly key: string;
  readonly spec: OptionSpec;
}

/** Every option of every table, in schema order. */
export function allOptions(): OptionRef[] {
  const out: OptionRef[] = [];
  for (const table of TABLES) {
    for (const [key, spec] of Object.entries(table.options)) out.push({ table, key, spec });
  }
  return out;
}

/** The environment variable of a flag, following CRI-O's naming. */
export function envOf(flag: FlagSpec): string | undefined {
  if (flag.env === null) return undefined;
  return flag.env ?? `CONTAINER_${flag.name.toUpperCase().replace(/-/g, "_")}`;
}

/** Options SIGHUP applies, as Config paths ("runtime.log_level", ..., "runtime.runtimes"). */
export function reloadableKeys(): string[] {
  const keys = allOptions()
    .filter((o) => o.spec.reload)
    .map((o) => configKeyOf(o.table, o.key));
  keys.push("runtime.runtimes");
  return keys;
}

/** Structural equality of option values (strings, numbers, booleans, arrays, plain objects). */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => valuesEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every(
      (k) => Object.hasOwn(b, k) && valuesEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return false;
}
