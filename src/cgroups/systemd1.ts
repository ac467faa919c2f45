// A typed client for systemd's org.freedesktop.systemd1.Manager over D-Bus: the calls the systemd
// cgroup manager needs, and waiting for the jobs they start.
//
// Signatures (org.freedesktop.systemd1(5)):
//   StartTransientUnit(in s name, in s mode, in a(sv) properties, in a(sa(sv)) aux, out o job)
//   StartUnit(in s name, in s mode, out o job)       StopUnit(in s name, in s mode, out o job)
//   GetUnit(in s name, out o unit)                    AttachProcessesToUnit(in s unit, in s subcgroup, in au pids)
//   signal JobRemoved(u id, o job, s unit, s result)  result: done, canceled, timeout, failed, dependency, skipped
import { existsSync } from "node:fs";
import { DBusConnectError, DBusConnection, DBusError, type Message, Variant } from "./dbus.ts";
import { SystemdUnavailableError } from "./errors.ts";
import type { UnitProperty } from "./resources.ts";

export const SYSTEMD_SERVICE = "org.freedesktop.systemd1";
export const SYSTEMD_PATH = "/org/freedesktop/systemd1";
export const MANAGER_INTERFACE = "org.freedesktop.systemd1.Manager";
const PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties";

/** Where systemd may be reached: a message bus (needs Hello) or systemd's private peer socket. */
export interface SystemdEndpoint {
  path: string;
  bus: boolean;
}

/**
 * The endpoints to try, in go-systemd's order: the system bus ($DBUS_SYSTEM_BUS_ADDRESS when it
 * names a unix path), then, for root, systemd's private socket, which works without dbus-daemon.
 */
export function defaultEndpoints(env: Record<string, string | undefined> = process.env, euid = process.geteuid?.() ?? 0): SystemdEndpoint[] {
  let bus = "/run/dbus/system_bus_socket";
  const addr = env.DBUS_SYSTEM_BUS_ADDRESS;
  if (addr) {
    for (const option of addr.split(";")) {
      const m = /^unix:(?:.*,)?path=([^,]+)/.exec(option);
      if (m?.[1]) {
        bus = decodeURIComponent(m[1]);
        break;
      }
    }
  }
  const out: SystemdEndpoint[] = [{ path: bus, bus: true }];
  if (euid === 0) out.push({ path: "/run/systemd/private", bus: false });
  return out;
}

/** How a job ended: systemd's JobRemoved result string. */
export type JobResult = "done" | "canceled" | "timeout" | "failed" | "dependency" | "skipped" | string;

export interface SystemdClientOptions {
  /** Per-call limit (ms). */
  timeoutMs?: number;
  /** How long to wait for a job to finish (ms). */
  jobTimeoutMs?: number;
  /** How often to check a job that has sent no JobRemoved yet (ms). */
  jobPollMs?: number;
}

export class SystemdClient {
  readonly endpoint: SystemdEndpoint;
  private readonly conn: DBusConnection;
  private readonly finished = new Map<string, JobResult>();
  private readonly waiters = new Map<string, (result: JobResult) => void>();
  private versionCache: number | undefined;
  private readonly jobTimeoutMs: number;
  private readonly jobPollMs: number;

  private constructor(conn: DBusConnection, endpoint: SystemdEndpoint, opts: SystemdClientOptions) {
    this.conn = conn;
    this.endpoint = endpoint;
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 60_000;
    this.jobPollMs = opts.jobPollMs ?? 1000;
    conn.onSignal((m) => this.onSignal(m));
  }

  /**
   * Connects to the first endpoint that answers. A bus connection says Hello and adds a match rule
   * for JobRemoved (the bus delivers only signals someone matched); on the private socket systemd
   * sends its signals to every peer. Throws SystemdUnavailableError listing each failure.
   */
  static async connect(endpoints: SystemdEndpoint[] = defaultEndpoints(), opts: SystemdClientOptions = {}): Promise<SystemdClient> {
    const attempts: { path: string; error: string }[] = [];
    let lastErr: unknown;
    for (const ep of endpoints) {
      let conn: DBusConnection | undefined;
      try {
        conn = await DBusConnection.connect({ path: ep.path, hello: ep.bus, timeoutMs: opts.timeoutMs ?? 25_000 });
        const client = new SystemdClient(conn, ep, opts);
        if (ep.bus) {
          await conn.call({
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            signature: "s",
            body: [`type='signal',sender='${SYSTEMD_SERVICE}',path='${SYSTEMD_PATH}',interface='${MANAGER_INTERFACE}',member='JobRemoved'`],
          });
        }
        // Proves systemd (not just a bus) answers, and caches the version for feature checks.
        await client.version();
        return client;
      } catch (err) {
        conn?.close();
        lastErr = err;
        const code = err instanceof DBusConnectError && err.code ? ` (${err.code})` : "";
        attempts.push({ path: ep.path, error: `${err instanceof Error ? err.message : String(err)}${code}` });
      }
    }
    throw new SystemdUnavailableError(attempts, existsSync("/run/systemd/system"), { cause: lastErr });
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  close(): void {
    this.conn.close();
  }

  /** The systemd version number (252 for "252 (252.38-1~deb12u1)"); 0 when unparseable. */
  async version(): Promise<number> {
    if (this.versionCache !== undefined) return this.versionCache;
    const v = await this.getProperty(SYSTEMD_PATH, MANAGER_INTERFACE, "Version");
    const n = parseInt(String(v.value), 10);
    this.versionCache = Number.isFinite(n) ? n : 0;
    return this.versionCache;
  }

  /** Creates and starts a transient unit (a scope needs PIDs); returns the job path. */
  async startTransientUnit(name: string, mode: string, properties: UnitProperty[], aux: [string, UnitProperty[]][] = []): Promise<string> {
    const r = await this.manager("StartTransientUnit", "ssa(sv)a(sa(sv))", [name, mode, properties, aux]);
    return String(r.body[0]);
  }

  async startUnit(name: string, mode: string): Promise<string> {
    return String((await this.manager("StartUnit", "ss", [name, mode])).body[0]);
  }

  async stopUnit(name: string, mode: string): Promise<string> {
    return String((await this.manager("StopUnit", "ss", [name, mode])).body[0]);
  }

  /** Moves processes into an existing unit's cgroup (systemd 238+). */
  async attachProcessesToUnit(name: string, subcgroup: string, pids: number[]): Promise<void> {
    await this.manager("AttachProcessesToUnit", "ssau", [name, subcgroup, pids]);
  }

  /** The object path of a loaded unit; DBusError org.freedesktop.systemd1.NoSuchUnit otherwise. */
  async getUnit(name: string): Promise<string> {
    return String((await this.manager("GetUnit", "s", [name])).body[0]);
  }

  async getProperty(path: string, iface: string, property: string): Promise<Variant> {
    const r = await this.conn.call({
      destination: SYSTEMD_SERVICE,
      path,
      interface: PROPERTIES_INTERFACE,
      member: "Get",
      signature: "ss",
      body: [iface, property],
    });
    const v = r.body[0];
    if (!(v instanceof Variant)) throw new DBusError("org.freedesktop.DBus.Error.InvalidSignature", `Get ${property} returned ${r.signature}`);
    return v;
  }

  /**
   * Waits for `job` to finish and returns its result. The JobRemoved signal decides; should it be
   * lost, a poll notices the job object has gone and asks the unit's ActiveState instead
   * (`expect` says which state means done: "active" after a start, "inactive" after a stop).
   */
  async waitJob(job: string, unit: string, expect: "active" | "inactive"): Promise<JobResult> {
    const early = this.finished.get(job);
    if (early !== undefined) {
      this.finished.delete(job);
      return early;
    }
    return new Promise<JobResult>((resolve, reject) => {
      let settled = false;
      let unsubscribe = (): void => {};
      const finish = (err: Error | undefined, result?: JobResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(poll);
        unsubscribe();
        this.waiters.delete(job);
        if (err) reject(err);
        else resolve(result ?? "done");
      };
      this.waiters.set(job, (result) => finish(undefined, result));
      const deadline = setTimeout(
        () => finish(new Error(`systemd job ${job} for ${unit} did not finish within ${this.jobTimeoutMs} ms`)),
        this.jobTimeoutMs,
      );
      let polling = false;
      const poll = setInterval(() => {
        if (polling || settled) return;
        polling = true;
        this.pollJob(job, unit, expect)
          .then((result) => {
            if (result !== undefined) finish(undefined, result);
          })
          .catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))))
          .finally(() => {
            polling = false;
          });
      }, this.jobPollMs);
      unsubscribe = this.conn.onClose((err) => finish(err));
    });
  }

  private async pollJob(job: string, unit: string, expect: "active" | "inactive"): Promise<JobResult | undefined> {
    try {
      await this.getProperty(job, "org.freedesktop.systemd1.Job", "State");
      return undefined; // still queued or running
    } catch (err) {
      if (!(err instanceof DBusError) || err.errorName !== "org.freedesktop.DBus.Error.UnknownObject") throw err;
    }
    let state: string;
    try {
      state = String((await this.getProperty(await this.getUnit(unit), "org.freedesktop.systemd1.Unit", "ActiveState")).value);
    } catch (err) {
      if (err instanceof DBusError && err.errorName === "org.freedesktop.systemd1.NoSuchUnit") state = "inactive";
      else throw err;
    }
    if (state === expect) return "done";
    if (state === "failed" || (expect === "active" && state === "inactive")) return "failed";
    return undefined; // activating/deactivating: keep waiting
  }

  private manager(member: string, signature: string, body: unknown[]): Promise<Message> {
    return this.conn.call({ destination: SYSTEMD_SERVICE, path: SYSTEMD_PATH, interface: MANAGER_INTERFACE, member, signature, body });
  }

  private onSignal(m: Message): void {
    if (m.interface !== MANAGER_INTERFACE || m.member !== "JobRemoved" || m.signature !== "uoss") return;
    const job = String(m.body[1]);
    const result = String(m.body[3]);
    const waiter = this.waiters.get(job);
    if (waiter) {
      waiter(result);
      return;
    }
    // The signal may overtake our reading of the reply; keep a bounded memory of finished jobs
    // (on the private socket systemd reports every job, not only ours).
    this.finished.set(job, result);
    if (this.finished.size > 256) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
  }
}
