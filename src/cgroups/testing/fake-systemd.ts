// A fake systemd for tests, speaking the D-Bus wire protocol: the Manager methods the systemd
// cgroup manager calls, with systemd's argument checks and error names, and (given a fixture
// CgroupFs) the cgroups systemd would create and remove for its units.
//
// Two ways to run it:
// - FakeSystemd.listen(path): a unix socket server that is both the bus and systemd. It runs the
//   SASL exchange (AUTH EXTERNAL only), answers org.freedesktop.DBus Hello/AddMatch, and delivers
//   signals like a bus would: to a connection that said Hello only when one of its AddMatch rules
//   names the signal; to a peer connection (no Hello, like /run/systemd/private) always.
// - FakeSystemd.onBus(path): a client of a real dbus-daemon owning org.freedesktop.systemd1, so
//   that independent D-Bus implementations (dbus-daemon, busctl) can check our messages.
import type { Socket } from "bun";
import { existsSync, rmSync } from "node:fs";
import { DBusConnection, decodeMessage, encodeMessage, externalAuthId, type DBusValue, type Message, MessageType, messageLength, Variant } from "../dbus.ts";
import type { CgroupFs } from "../fs.ts";
import { expandSlice, isValidUnitName } from "../slice.ts";
import { MANAGER_INTERFACE, SYSTEMD_PATH, SYSTEMD_SERVICE } from "../systemd1.ts";

/** Transient-unit properties systemd accepts, with their D-Bus signatures (org.freedesktop.systemd1(5)). */
export const KNOWN_PROPERTIES: Record<string, string> = {
  Description: "s", Slice: "s", PIDs: "au", Delegate: "b", DefaultDependencies: "b", KillSignal: "i",
  After: "as", Before: "as", Wants: "as", Requires: "as", CollectMode: "s",
  MemoryAccounting: "b", CPUAccounting: "b", TasksAccounting: "b", IOAccounting: "b", BlockIOAccounting: "b",
  MemoryLimit: "t", MemoryMax: "t", CPUShares: "t", CPUWeight: "t", CPUQuotaPerSecUSec: "t", CPUQuotaPeriodUSec: "t",
  TasksMax: "t", AllowedCPUs: "ay", AllowedMemoryNodes: "ay",
};

const MODES = ["replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements"];

export interface FakeUnit {
  name: string;
  properties: Map<string, Variant>;
  state: "active" | "inactive" | "failed";
  cgroup: string;
}

export interface RecordedCall {
  interface: string | undefined;
  member: string | undefined;
  path: string | undefined;
  destination: string | undefined;
  signature: string;
  body: DBusValue[];
  /** The marshalled body exactly as it arrived. */
  bodyBytes: Uint8Array;
  /** The whole message as it arrived. */
  raw: Uint8Array;
}

export interface FakeSystemdOptions {
  /** A fixture tree where units get their cgroups (and StopUnit removes them). */
  fs?: CgroupFs;
  /** Called for processes in a stopped unit (systemd would kill them). */
  kill?: (pid: number) => void;
  /** The Manager's Version property. */
  version?: string;
  /** When JobRemoved goes out: after the method reply (systemd's order), before it, or never. */
  jobRemoved?: "after" | "before" | "never";
  /** The result each job ends with (default "done"). */
  jobResult?: (unit: string) => string;
  /** Refuse AUTH EXTERNAL for any other uid (default: the process's euid). */
  uid?: number;
}

interface Reply {
  reply(signature: string, body: unknown[]): void;
  error(name: string, message: string): void;
}

class MethodError extends Error {
  constructor(readonly errorName: string, message: string) {
    super(message);
  }
}

/** systemd's bus_label_escape: anything but [A-Za-z0-9] (and a leading digit) becomes _xx. */
export function busLabelEscape(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    out += /[A-Za-z]/.test(c) || (i > 0 && /[0-9]/.test(c)) ? c : `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  }
  return out;
}

function bodyBytesOf(raw: Uint8Array): Uint8Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const len = view.getUint32(4, raw[0] === 0x6c);
  return raw.slice(raw.length - len);
}

interface PeerState {
  phase: "auth" | "messages";
  text: string;
  inbox: Buffer;
  hello: boolean;
  uniqueName: string;
  matches: string[];
  serial: number;
  pending: Uint8Array[];
}

export class FakeSystemd {
  readonly calls: RecordedCall[] = [];
  readonly units = new Map<string, FakeUnit>();
  /** The SASL lines received, in order (the leading NUL byte shown as "\0"). */
  readonly authLines: string[] = [];
  private readonly opts: FakeSystemdOptions;
  private jobs = 0;
  private readonly runningJobs = new Set<string>();
  private emitSignal: (m: Omit<Message, "serial" | "type" | "flags">) => void = () => {};
  private stopFn: () => void = () => {};

  private constructor(opts: FakeSystemdOptions) {
    this.opts = opts;
  }

  /** Serves `socketPath` as bus + systemd. */
  static listen(socketPath: string, opts: FakeSystemdOptions = {}): FakeSystemd {
    const fake = new FakeSystemd(opts);
    if (existsSync(socketPath)) rmSync(socketPath);
    const peers = new Set<Socket<PeerState>>();
    let names = 0;
    const expected = externalAuthId(opts.uid ?? process.geteuid?.() ?? 0);
    const flush = (s: Socket<PeerState>) => {
      while (s.data.pending.length > 0) {
        const chunk = s.data.pending[0];
        if (!chunk) break;
        const n = s.write(chunk);
        if (n <= 0) return;
        if (n < chunk.length) {
          s.data.pending[0] = chunk.subarray(n);
          return;
        }
        s.data.pending.shift();
      }
    };
    const send = (s: Socket<PeerState>, m: Omit<Message, "serial">) => {
      s.data.serial++;
      s.data.pending.push(encodeMessage({ ...m, serial: s.data.serial }));
      flush(s);
    };
    const onMessage = (s: Socket<PeerState>, m: Message) => {
      const reply: Reply = {
        reply: (signature, body) => send(s, { type: MessageType.METHOD_RETURN, flags: 0, replySerial: m.serial, destination: s.data.uniqueName || undefined, sender: SYSTEMD_SERVICE, signature, body: body as DBusValue[] }),
        error: (name, message) => send(s, { type: MessageType.ERROR, flags: 0, replySerial: m.serial, errorName: name, destination: s.data.uniqueName || undefined, signature: "s", body: [message] }),
      };
      if (m.destination === "org.freedesktop.DBus") {
        fake.record(m);
        if (m.member === "Hello") {
          s.data.hello = true;
          s.data.uniqueName = `:1.${++names}`;
          return reply.reply("s", [s.data.uniqueName]);
        }
        if (m.member === "AddMatch" && m.signature === "s") {
          s.data.matches.push(String(m.body[0]));
          return reply.reply("", []);
        }
        return reply.error("org.freedesktop.DBus.Error.UnknownMethod", `Unknown method ${m.member}`);
      }
      void fake.handle(m, reply);
    };
    const onData = (s: Socket<PeerState>, chunk: Buffer) => {
      if (s.data.phase === "auth") {
        s.data.text += chunk.toString("latin1");
        for (;;) {
          const eol = s.data.text.indexOf("\r\n");
          if (eol < 0) return;
          let line = s.data.text.slice(0, eol);
          s.data.text = s.data.text.slice(eol + 2);
          if (fake.authLines.length === 0 || line.startsWith("\0")) {
            // The client's first byte must be NUL (it carries credentials on some systems).
            fake.authLines.push(line.replace("\0", "\\0"));
            line = line.startsWith("\0") ? line.slice(1) : `<missing NUL>${line}`;
          } else {
            fake.authLines.push(line);
          }
          if (line === `AUTH EXTERNAL ${expected}`) s.write("OK 0123456789abcdef0123456789abcdef\r\n");
          else if (line.startsWith("AUTH")) s.write("REJECTED EXTERNAL\r\n");
          else if (line === "BEGIN") {
            s.data.phase = "messages";
            const rest = Buffer.from(s.data.text, "latin1");
            s.data.text = "";
            if (rest.length > 0) onData(s, rest);
            return;
          } else s.write("ERROR\r\n");
        }
      }
      s.data.inbox = s.data.inbox.length === 0 ? chunk : Buffer.concat([s.data.inbox, chunk]);
      for (;;) {
        const len = messageLength(s.data.inbox);
        if (len === undefined || s.data.inbox.length < len) return;
        const m = decodeMessage(s.data.inbox.subarray(0, len));
        s.data.inbox = s.data.inbox.subarray(len);
        onMessage(s, m);
      }
    };
    const server = Bun.listen<PeerState>({
      unix: socketPath,
      socket: {
        open(s) {
          s.data = { phase: "auth", text: "", inbox: Buffer.alloc(0), hello: false, uniqueName: "", matches: [], serial: 0, pending: [] };
          peers.add(s);
        },
        data(s, chunk) {
          try {
            onData(s, Buffer.from(chunk));
          } catch {
            s.end();
          }
        },
        drain(s) {
          flush(s);
        },
        close(s) {
          peers.delete(s);
        },
        error(s) {
          peers.delete(s);
        },
      },
    });
    fake.emitSignal = (sig) => {
      for (const s of peers) {
        if (s.data.phase !== "messages") continue;
        const wanted = !s.data.hello || s.data.matches.some((r) => r.includes(`member='${sig.member}'`));
        if (wanted) send(s, { ...sig, type: MessageType.SIGNAL, flags: 0, sender: s.data.hello ? SYSTEMD_SERVICE : undefined });
      }
    };
    fake.stopFn = () => {
      for (const s of peers) s.end();
      server.stop(true);
      rmSync(socketPath, { force: true });
    };
    return fake;
  }

  /** Registers as org.freedesktop.systemd1 on the bus at `busSocketPath`. */
  static async onBus(busSocketPath: string, opts: FakeSystemdOptions = {}): Promise<FakeSystemd> {
    const fake = new FakeSystemd(opts);
    const conn = await DBusConnection.connect({ path: busSocketPath, hello: true });
    const r = await conn.call({
      destination: "org.freedesktop.DBus",
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "RequestName",
      signature: "su",
      body: [SYSTEMD_SERVICE, 4],
    });
    if (r.body[0] !== 1) throw new Error(`could not own ${SYSTEMD_SERVICE}: RequestName returned ${String(r.body[0])}`);
    conn.onMethodCall((m) => {
      void fake.handle(m, {
        reply: (signature, body) => conn.reply(m, signature, body),
        error: (name, message) => conn.replyError(m, name, message),
      });
    });
    fake.emitSignal = (sig) => conn.send({ ...sig, type: MessageType.SIGNAL, flags: 0 });
    fake.stopFn = () => conn.close();
    return fake;
  }

  stop(): void {
    this.stopFn();
  }

  /** The recorded calls to systemd's Manager interface (not the bus's). */
  managerCalls(member?: string): RecordedCall[] {
    return this.calls.filter((c) => c.interface === MANAGER_INTERFACE && (member === undefined || c.member === member));
  }

  private record(m: Message): void {
    const raw = m.raw ?? encodeMessage(m);
    this.calls.push({
      interface: m.interface,
      member: m.member,
      path: m.path,
      destination: m.destination,
      signature: m.signature,
      body: m.body,
      bodyBytes: bodyBytesOf(raw),
      raw,
    });
  }

  private async handle(m: Message, r: Reply): Promise<void> {
    this.record(m);
    try {
      await this.dispatch(m, r);
    } catch (err) {
      if (err instanceof MethodError) r.error(err.errorName, err.message);
      else r.error("org.freedesktop.DBus.Error.Failed", err instanceof Error ? err.message : String(err));
    }
  }

  private expectSignature(m: Message, sig: string): void {
    if (m.signature !== sig) {
      throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", `Invalid arguments '${m.signature}' to call ${m.interface}.${m.member}(), expecting '${sig}'.`);
    }
  }

  private async dispatch(m: Message, r: Reply): Promise<void> {
    if (m.interface === "org.freedesktop.DBus.Properties" && m.member === "Get") {
      this.expectSignature(m, "ss");
      return r.reply("v", [this.getProperty(m.path ?? "", String(m.body[0]), String(m.body[1]))]);
    }
    if (m.path !== SYSTEMD_PATH || m.interface !== MANAGER_INTERFACE) {
      throw new MethodError("org.freedesktop.DBus.Error.UnknownMethod", `Unknown method ${m.member} or interface ${m.interface}.`);
    }
    switch (m.member) {
      case "StartTransientUnit": {
        this.expectSignature(m, "ssa(sv)a(sa(sv))");
        const [name, mode, props] = m.body as [string, string, [string, Variant][]];
        this.checkMode(mode);
        if (!isValidUnitName(name) || !(name.endsWith(".scope") || name.endsWith(".slice"))) {
          throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", `Unit ${name} is not a valid transient unit name.`);
        }
        if (this.units.has(name)) throw new MethodError("org.freedesktop.systemd1.UnitExists", `Unit ${name} was already loaded or has a fragment file.`);
        const properties = new Map<string, Variant>();
        for (const [key, value] of props) {
          const sig = KNOWN_PROPERTIES[key];
          if (sig === undefined) throw new MethodError("org.freedesktop.DBus.Error.PropertyReadOnly", `Cannot set property ${key}, or unknown property.`);
          if (value.signature !== sig) throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", `Invalid signature '${value.signature}' for property ${key}, expected '${sig}'.`);
          properties.set(key, value);
        }
        const pids = (properties.get("PIDs")?.value ?? []) as number[];
        if (name.endsWith(".scope") && pids.length === 0) throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", "Scope has no PIDs. Refusing.");
        const slice = String(properties.get("Slice")?.value ?? "system.slice");
        if (name.endsWith(".scope") && !slice.endsWith(".slice")) throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", `Slice ${slice} is not a slice.`);
        const cgroup = name.endsWith(".slice") ? expandSlice(name) : `${expandSlice(slice).replace(/^\/$/, "")}/${name}`;
        const unit: FakeUnit = { name, properties, state: "active", cgroup };
        this.units.set(name, unit);
        if (this.opts.fs) {
          this.opts.fs.create(cgroup);
          for (const pid of pids) await this.opts.fs.join(pid, cgroup);
        }
        return this.job(name, r);
      }
      case "StartUnit": {
        this.expectSignature(m, "ss");
        const [name, mode] = m.body as [string, string];
        this.checkMode(mode);
        let unit = this.units.get(name);
        if (!unit) {
          if (!name.endsWith(".slice")) throw new MethodError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${name} not found.`);
          unit = { name, properties: new Map(), state: "active", cgroup: expandSlice(name) };
          this.units.set(name, unit);
        }
        unit.state = "active";
        this.opts.fs?.create(unit.cgroup);
        return this.job(name, r);
      }
      case "StopUnit": {
        this.expectSignature(m, "ss");
        const [name, mode] = m.body as [string, string];
        this.checkMode(mode);
        const unit = this.units.get(name);
        if (!unit) throw new MethodError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${name} not loaded.`);
        if (this.opts.fs) {
          for (const pid of this.opts.fs.pids(unit.cgroup)) this.opts.kill?.(pid);
          await this.opts.fs.remove(unit.cgroup);
        }
        this.units.delete(name);
        return this.job(name, r);
      }
      case "AttachProcessesToUnit": {
        this.expectSignature(m, "ssau");
        const [name, sub, pids] = m.body as [string, string, number[]];
        const unit = this.units.get(name);
        if (!unit) throw new MethodError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${name} not loaded.`);
        const target = sub === "" ? unit.cgroup : `${unit.cgroup}/${sub.replace(/^\//, "")}`;
        if (this.opts.fs) for (const pid of pids) await this.opts.fs.join(pid, target);
        return r.reply("", []);
      }
      case "GetUnit": {
        this.expectSignature(m, "s");
        const name = String(m.body[0]);
        if (!this.units.has(name)) throw new MethodError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${name} not loaded.`);
        return r.reply("o", [`${SYSTEMD_PATH}/unit/${busLabelEscape(name)}`]);
      }
      case "Subscribe":
        return r.reply("", []);
      default:
        throw new MethodError("org.freedesktop.DBus.Error.UnknownMethod", `Unknown method ${m.member} or interface ${m.interface}.`);
    }
  }

  private checkMode(mode: string): void {
    if (!MODES.includes(mode)) throw new MethodError("org.freedesktop.DBus.Error.InvalidArgs", `Job mode ${mode} invalid.`);
  }

  private getProperty(path: string, iface: string, prop: string): Variant {
    if (path === SYSTEMD_PATH && iface === MANAGER_INTERFACE && prop === "Version") {
      return new Variant("s", this.opts.version ?? "252 (252.38-1~deb12u1)");
    }
    if (path.startsWith(`${SYSTEMD_PATH}/job/`)) {
      if (!this.runningJobs.has(path)) throw new MethodError("org.freedesktop.DBus.Error.UnknownObject", `Unknown object '${path}'.`);
      return new Variant("s", "running");
    }
    if (path.startsWith(`${SYSTEMD_PATH}/unit/`) && iface === "org.freedesktop.systemd1.Unit" && prop === "ActiveState") {
      const unit = [...this.units.values()].find((u) => path.endsWith(`/${busLabelEscape(u.name)}`));
      if (!unit) throw new MethodError("org.freedesktop.DBus.Error.UnknownObject", `Unknown object '${path}'.`);
      return new Variant("s", unit.state);
    }
    throw new MethodError("org.freedesktop.DBus.Error.UnknownProperty", `Unknown property ${iface}.${prop} on ${path}.`);
  }

  /** Answers with a new job's path and reports it removed (per the jobRemoved option). */
  private job(unit: string, r: Reply): void {
    const id = ++this.jobs;
    const path = `${SYSTEMD_PATH}/job/${id}`;
    const result = this.opts.jobResult?.(unit) ?? "done";
    const u = this.units.get(unit);
    if (u && result !== "done") u.state = "failed";
    const signal = () =>
      this.emitSignal({ path: SYSTEMD_PATH, interface: MANAGER_INTERFACE, member: "JobRemoved", signature: "uoss", body: [id, path, unit, result] });
    const when = this.opts.jobRemoved ?? "after";
    if (when === "before") signal();
    r.reply("o", [path]);
    if (when === "after") signal();
  }
}
