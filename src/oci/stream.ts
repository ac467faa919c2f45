// The process side of the CRI streaming RPCs (kubectl exec, attach and port-forward), as
// CRI-O's internal/oci does it; the SPDY/WebSocket side lives in src/streaming.
//
// - exec runs `runtime exec --process <file> <id>` directly (not through conmon), in the
//   foreground: with pipes for stdin/stdout/stderr, or with a TTY: a pseudo-terminal whose
//   slave is the runtime's stdio. runc then makes its own console inside the container and
//   relays between it and that slave (runc refuses --console-socket in the foreground), and
//   copies the slave's size to it on SIGWINCH.
// - attach connects to conmon's attach socket (SOCK_SEQPACKET): every record conmon sends is one
//   read of the container's output, its first byte naming the stream; what the client sends
//   is written to the container's stdin. Window sizes go to conmon's ctl fifo.
// - port-forward connects to localhost:<port> inside the pod's network namespace and relays.
//
// Byte streams are AsyncIterable<Uint8Array> in and a write callback out; a write that returns
// a promise is awaited before more is read from the process (backpressure). Every function
// resolves when the session is over and leaves no fd or process of its own behind.
//
// How fds are read without blocking the event loop: pipes and the pty master are read with
// Bun's own fd readers (Bun.spawn's pipes, Bun.file(fd).stream()); connected sockets (the
// attach socket, the port-forward TCP socket) are handed to Bun's socket layer with
// Bun.connect({ fd }), which reads each socket with one recv per event, so a SEQPACKET record
// arrives as one `data` call and conmon's framing survives. Writes that would block (a full
// pipe, pty or attach socket) are retried after a short, growing sleep: they only happen when
// the process falls behind its input.
import { closeSync, constants as fsConstants, fchownSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, SocketHandler, Subprocess } from "bun";
import { InvalidArgumentError } from "../errors.ts";
import { SyscallError } from "../sys/libc.ts";
import { NamespaceRestoreError } from "../sys/namespaces.ts";
import { closeSocketFd, connectInNetns, connectResult } from "../sys/netns-connect.ts";
import { O_CLOEXEC, pipe, setNonblock } from "../sys/proc.ts";
import { closePtyFd, makeRaw, openPty, setWindowSize } from "../sys/pty.ts";
import { closeSocket, connectSeqpacket, sendRecord, shutdownWrite } from "../sys/seqpacket.ts";
import { OciError } from "./runtime.ts";

/** A terminal size as kubectl sends it (client-go remotecommand.TerminalSize). */
export interface TerminalSize {
  width: number;
  height: number;
}

/** Takes bytes for the client; a returned promise is awaited before more is read. */
export type StreamWriter = (chunk: Uint8Array) => void | Promise<void>;

/**
 * After the runtime exited, its output is still relayed until the pipes reach end of file.
 * runc copies the process's stdio through pipes of its own and exits only once those are
 * closed, so a background child that keeps them open keeps `runc exec` (and the session)
 * running, as with CRI-O. A runtime that hands its stdio to the process instead leaves our
 * pipes open in such a child: once nothing has arrived for this long after the exit (and no
 * write to the client is pending), the rest is dropped.
 */
const OUTPUT_IDLE_AFTER_EXIT_MS = 2000;
/** Backoff bounds for retrying a write that would block. */
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 20;

// ─── exec ────────────────────────────────────────────────────────────────────────────────────

export interface ExecStreamingOptions {
  runtimePath: string;
  runtimeRoot: string;
  /** Pass --systemd-cgroup to the runtime (cgroup_manager = "systemd"). */
  systemdCgroup?: boolean;
  id: string;
  /** The container's bundle: the `process` of its config.json is the exec's base. */
  bundleDir: string;
  cmd: string[];
  tty: boolean;
  /** The client's stdin; its end closes the process's stdin (without a TTY). */
  stdin?: AsyncIterable<Uint8Array>;
  stdout?: StreamWriter;
  /** Not used with a TTY: the terminal merges both streams into stdout. */
  stderr?: StreamWriter;
  /** Window size changes (TTY only). */
  resize?: AsyncIterable<TerminalSize>;
  /**
   * The client went away: the exec'd process is killed (SIGKILL), and the promise resolves
   * with its exit code once the runtime returned.
   */
  signal?: AbortSignal;
}

/**
 * Runs `cmd` in the running container `id` with its stdio streamed, as CRI-O's ExecContainer
 * does, and resolves with the exit code `runtime exec` returned (the process's, or 128+signal;
 * a runtime failure, such as an unknown command, is a non-zero code with the runtime's message
 * on stderr). A write callback that throws ends the session: the process is killed and the
 * error rethrown.
 */
export async function execStreaming(o: ExecStreamingOptions): Promise<{ exitCode: number }> {
  if (o.cmd.length === 0) throw new InvalidArgumentError("exec: empty command");
  const spec = readProcessSpec(o.bundleDir);
  const dir = mkdtempSync(join(tmpdir(), "crio-exec-"));
  try {
    const processFile = join(dir, "process.json");
    const pidFile = join(dir, "pid");
    const argv = [
      o.runtimePath, "--root", o.runtimeRoot, ...(o.systemdCgroup ? ["--systemd-cgroup"] : []),
      "exec", "--process", processFile, "--pid-file", pidFile, o.id,
    ];
    // A copy of the container's process with the new args; terminal set either way (it would
    // otherwise be inherited from the container's).
    const writeProcess = (consoleSize?: TerminalSize) => {
      const p: Record<string, unknown> = { ...spec, args: o.cmd, terminal: o.tty };
      if (consoleSize) p.consoleSize = { height: consoleSize.height, width: consoleSize.width };
      else delete p.consoleSize;
      writeFileSync(processFile, JSON.stringify(p), { mode: 0o600 });
    };
    if (o.tty) return { exitCode: await execTty(o, argv, pidFile, writeProcess) };
    writeProcess();
    return { exitCode: await execPipes(o, argv, pidFile, spec.user as { uid?: number; gid?: number } | undefined) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readProcessSpec(bundleDir: string): Record<string, unknown> {
  const path = join(bundleDir, "config.json");
  const spec = JSON.parse(readFileSync(path, "utf8")) as { process?: Record<string, unknown> };
  if (!spec.process || typeof spec.process !== "object") throw new Error(`${path} has no process to base the exec on`);
  return spec.process;
}

async function execPipes(
  o: ExecStreamingOptions, argv: string[], pidFile: string, user: { uid?: number; gid?: number } | undefined,
): Promise<number> {
  const session = new Session(o.signal);
  let stdinRead = -1;
  let stdinWrite = -1;
  let proc: Subprocess<number | "ignore", "pipe" | "ignore", "pipe" | "ignore">;
  try {
    if (o.stdin) {
      // A pipe of our own rather than Bun's: its read end is handed to the container's user, as
      // CRI-O does, so that the process can reopen /proc/self/fd/0 (or /dev/stdin).
      [stdinRead, stdinWrite] = pipe(O_CLOEXEC);
      if (user?.uid !== undefined) fchownSync(stdinRead, user.uid, user.gid ?? 0);
      setNonblock(stdinWrite, true);
    }
    proc = spawnRuntime(argv, {
      stdin: o.stdin ? stdinRead : "ignore",
      stdout: o.stdout ? "pipe" : "ignore",
      stderr: o.stderr ? "pipe" : "ignore",
    });
  } catch (err) {
    if (stdinWrite >= 0) closeSync(stdinWrite);
    session.dispose();
    throw err;
  } finally {
    // The runtime has its own copy now; ours would keep the pipe from reporting end of file.
    if (stdinRead >= 0) closeSync(stdinRead);
  }

  const exited = proc.exited;
  const done = new Latch();
  void exited.then(() => done.fire());
  void session.stopped.promise.then(() => killExec(proc, pidFile));

  const outputs = [
    o.stdout && proc.stdout instanceof ReadableStream ? new OutputPump(proc.stdout, o.stdout, session) : undefined,
    o.stderr && proc.stderr instanceof ReadableStream ? new OutputPump(proc.stderr, o.stderr, session) : undefined,
  ];

  let stdinOpen = stdinWrite >= 0;
  const closeStdin = () => {
    if (!stdinOpen) return;
    stdinOpen = false;
    closeSync(stdinWrite);
  };
  if (o.stdin) {
    // The client's end of input is the process's: the pipe is closed, the process reads EOF.
    void feed(o.stdin, [done, session.stopped], async (chunk) => {
      if (stdinOpen) await writeFdAll(stdinWrite, chunk, () => !stdinOpen);
    }).catch(() => { /* EPIPE: the process closed its stdin; the rest of the input is dropped */ })
      .finally(closeStdin);
  }

  const exitCode = await exited;
  closeStdin();
  await Promise.all(outputs.map((p) => p?.finish(OUTPUT_IDLE_AFTER_EXIT_MS)));
  session.dispose();
  if (session.error !== undefined) throw session.error;
  return exitCode;
}

async function execTty(
  o: ExecStreamingOptions, argv: string[], pidFile: string, writeProcess: (consoleSize?: TerminalSize) => void,
): Promise<number> {
  const session = new Session(o.signal);
  // The first size, when the client sends it at once (kubectl does), goes into the process
  // spec: runc sizes the container's console with it before the process starts. Sizes set
  // later race with the process's first look at its terminal.
  const resize = o.resize ? await firstValue(o.resize, FIRST_SIZE_WAIT_MS, session) : undefined;
  let pty;
  try {
    writeProcess(resize?.first);
    pty = openPty();
  } catch (err) {
    session.dispose();
    throw err;
  }
  let masterOpen = true;
  let proc: Subprocess<number, number, number> | undefined;
  const done = new Latch();
  try {
    // Raw before the runtime starts (it sets raw mode itself, but only once running): input
    // written meanwhile must neither be echoed back as output nor held for a line.
    makeRaw(pty.slave);
    if (resize?.first) setWindowSize(pty.master, { rows: resize.first.height, cols: resize.first.width });
    if (resize) {
      // runc copies the slave's size to the container's console on every SIGWINCH. The
      // runtime is not the terminal's session leader, so the kernel does not send that signal.
      void feed(resize.rest, [done, session.stopped], (size) => {
        if (!masterOpen) return;
        try {
          setWindowSize(pty.master, { rows: size.height, cols: size.width });
          if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGWINCH");
        } catch { /* a size the kernel refuses, or the runtime just exited */ }
      }).catch(() => {});
    }
    proc = spawnRuntime(argv, { stdin: pty.slave, stdout: pty.slave, stderr: pty.slave });
  } catch (err) {
    done.fire();
    masterOpen = false;
    closePtyFd(pty.master);
    session.dispose();
    throw err;
  } finally {
    // Only the runtime holds the slave from here on: once it exits, the master reads EIO (end).
    closePtyFd(pty.slave);
  }

  const running = proc;
  const exited = running.exited;
  void exited.then(() => done.fire());
  void session.stopped.promise.then(() => killExec(running, pidFile));

  // The master is read even without a stdout to write to: a full terminal would block runc.
  const output = new OutputPump(Bun.file(pty.master).stream(), o.stdout, session);
  if (o.stdin) {
    // A TTY has no end of input to pass on: as in CRI-O, the client's EOF only stops the copy.
    void feed(o.stdin, [done, session.stopped], async (chunk) => {
      if (masterOpen) await writeFdAll(pty.master, chunk, () => !masterOpen);
    }).catch(() => { /* EIO: the runtime is gone */ });
  }

  const exitCode = await exited;
  await output.finish(OUTPUT_IDLE_AFTER_EXIT_MS);
  masterOpen = false;
  closePtyFd(pty.master);
  session.dispose();
  if (session.error !== undefined) throw session.error;
  return exitCode;
}

/** How long a TTY exec waits for the client's first window size before starting. */
const FIRST_SIZE_WAIT_MS = 100;

/**
 * The first value of `source` if it comes within `ms` (undefined otherwise), and the rest of
 * it, which includes that value when it came later.
 */
async function firstValue<T>(source: AsyncIterable<T>, ms: number, session: Session): Promise<{ first?: T; rest: AsyncIterable<T> }> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined = it.next();
  pending.catch(() => {});
  const r = await Promise.race([pending, session.stopped.promise.then(() => undefined), Bun.sleep(ms).then(() => undefined)]);
  let first: T | undefined;
  if (r !== undefined) {
    pending = undefined;
    if (!r.done) first = r.value;
  }
  const rest: AsyncIterator<T> = {
    next: () => {
      const p = pending;
      pending = undefined;
      return p ?? (r?.done ? Promise.resolve({ done: true, value: undefined }) : it.next());
    },
    return: () => {
      pending = undefined;
      return it.return?.() ?? Promise.resolve({ done: true, value: undefined });
    },
  };
  return { first, rest: { [Symbol.asyncIterator]: () => rest } };
}

function spawnRuntime<In extends number | "ignore", Out extends number | "pipe" | "ignore", Err extends number | "pipe" | "ignore">(
  argv: string[], stdio: { stdin: In; stdout: Out; stderr: Err },
): Subprocess<In, Out, Err> {
  try {
    return Bun.spawn(argv, { ...stdio });
  } catch (e) {
    throw new OciError(`cannot run runtime ${argv[0]}: ${(e as Error).message}`);
  }
}

/**
 * Kills the exec'd process (not the runtime, which would leave it running): its pid is in the
 * runtime's --pid-file once started. Until the runtime exits the process is its unreaped
 * child, so the pid cannot have been reused. A runtime that never writes the file is killed.
 */
async function killExec(proc: RuntimeProcess, pidFile: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (proc.exitCode === null && proc.signalCode === null) {
    const pid = readPid(pidFile);
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* exited meanwhile */ }
      // runc returns once the process's stdio pipes close; a child the process left behind
      // may hold them. The runtime is then killed too, leaving that child to the container.
      const giveUp = Date.now() + RUNTIME_EXIT_AFTER_KILL_MS;
      while (proc.exitCode === null && proc.signalCode === null && Date.now() < giveUp) await Bun.sleep(20);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      return;
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      return;
    }
    await Bun.sleep(10);
  }
}

/** How long the runtime may take to return after the exec'd process was killed. */
const RUNTIME_EXIT_AFTER_KILL_MS = 2000;

/** What killExec needs of a Bun subprocess. */
interface RuntimeProcess {
  readonly exitCode: number | null;
  readonly signalCode: string | number | null;
  kill(signal?: NodeJS.Signals | number): void;
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// ─── attach ──────────────────────────────────────────────────────────────────────────────────

/** conmon's stream ids: the first byte of every attach socket record (stdpipe_t in conmon). */
export const ATTACH_PIPE_STDIN = 1;
export const ATTACH_PIPE_STDOUT = 2;
export const ATTACH_PIPE_STDERR = 3;
/**
 * Stdin is sent in records no larger than this: conmon reads each record with one recvfrom
 * into a fixed buffer and silently drops whatever does not fit (8192 − 1 in older conmon).
 */
export const ATTACH_STDIN_RECORD_MAX = 8191;
/** conmon's ctl fifo message kinds (config.h). */
const CTL_WINDOW_RESIZE = 1;
const SUN_PATH_MAX = 108;

/**
 * Where conmon (run with `--socket-dir-path <dir> -u <id>`) makes the attach socket reachable:
 * `<dir>/<id>` is a symlink to the bundle, where the socket `attach` lives. conmon shortens the
 * link's name by one character when it is exactly as long as sun_path allows (107).
 */
export function attachSocketPath(attachSocketDir: string, containerId: string): string {
  let base = join(attachSocketDir, containerId);
  if (new TextEncoder().encode(base).length === SUN_PATH_MAX - 1) base = base.slice(0, -1);
  return join(base, "attach");
}

/** conmon's control fifo for a container: `<bundle>/ctl`. */
export function ctlFifoPath(bundleDir: string): string {
  return join(bundleDir, "ctl");
}

export interface AttachStreamingOptions {
  /** attachSocketPath(container_attach_socket_dir, id), or `<bundle>/attach`. */
  attachSocketPath: string;
  /** ctlFifoPath(bundle). */
  ctlPath: string;
  tty: boolean;
  stdin?: AsyncIterable<Uint8Array>;
  stdout?: StreamWriter;
  stderr?: StreamWriter;
  resize?: AsyncIterable<TerminalSize>;
  /**
   * The container's own config (CRI ContainerConfig.stdin / stdin_once), which decides what the
   * end of the client's stdin means, as in CRI-O: with stdin kept open (stdin && !stdinOnce)
   * and no TTY, the client detaches at once; otherwise the attach lasts until the container's
   * output ends (for stdin_once, conmon closes the container's stdin when the client's ends).
   */
  containerStdin?: boolean;
  stdinOnce?: boolean;
  /** The client went away: detach (the container keeps running). */
  signal?: AbortSignal;
}

/**
 * Attaches to a running container through conmon: relays its output from the moment of
 * attaching until it exits, the client detaches (see containerStdin) or `signal` aborts.
 */
export async function attachStreaming(o: AttachStreamingOptions): Promise<void> {
  const session = new Session(o.signal);
  const finished = new Latch();
  let ctl = -1;
  let sock: AdoptedSocket | undefined;
  let sockOpen = false;
  try {
    try {
      // Non-blocking: conmon holds the fifo's read end while it runs; without a reader the open
      // fails (ENXIO) instead of waiting for one.
      ctl = openSync(o.ctlPath, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK | O_CLOEXEC);
    } catch (err) {
      throw new Error(`failed to open container ctl file ${o.ctlPath}: ${(err as Error).message}`, { cause: err });
    }
    const fd = await connectAttachSocket(o.attachSocketPath, session);
    if (fd === undefined) return; // aborted while connecting
    sock = await adoptSocket(fd, {
      data(s, record) {
        if (record.length === 0) return;
        const dest = record[0] === ATTACH_PIPE_STDOUT ? o.stdout : record[0] === ATTACH_PIPE_STDERR ? o.stderr : undefined;
        if (!dest || session.error !== undefined) return;
        deliver(s, dest, record.subarray(1), session);
      },
      end() { finished.fire(); },
      close() { sockOpen = false; finished.fire(); },
      error(_s, err) { session.fail(err); },
    });
    sockOpen = true;
    const socketFd = fd;

    if (o.resize) {
      void feed(o.resize, [finished, session.stopped], (size) => {
        // Dropped when the fifo is full (EAGAIN), as conmon itself drops resizes it cannot pass on.
        try {
          writeSync(ctl, `${CTL_WINDOW_RESIZE} ${Math.trunc(size.height)} ${Math.trunc(size.width)}\n`);
        } catch { /* conmon gone or fifo full */ }
      }).catch(() => {});
    }
    if (o.stdin) {
      const detachOnEof = o.containerStdin === true && o.stdinOnce !== true && !o.tty;
      void feed(o.stdin, [finished, session.stopped], async (chunk) => {
        for (let off = 0; off < chunk.length; off += ATTACH_STDIN_RECORD_MAX) {
          await sendRecordAll(socketFd, chunk.subarray(off, off + ATTACH_STDIN_RECORD_MAX), () => !sockOpen);
        }
      }).then((how) => {
        if (how !== "ended" || !sockOpen) return;
        // conmon reads end of stream: for a stdin_once container it closes the container's stdin.
        shutdownWrite(socketFd);
        if (detachOnEof) finished.fire();
      }).catch(() => { /* conmon went away: the socket's close ends the session */ });
    }

    await Promise.race([finished.promise, session.stopped.promise]);
  } finally {
    finished.fire();
    if (sock && sockOpen) {
      sockOpen = false;
      sock.terminate();
    }
    if (ctl >= 0) closeSync(ctl);
    session.dispose();
  }
  if (session.error !== undefined) throw session.error;
}

/** Connects, retrying while conmon's listen backlog is full; undefined when aborted. */
async function connectAttachSocket(path: string, session: Session): Promise<number | undefined> {
  const deadline = Date.now() + 10_000;
  let delay = RETRY_MIN_MS;
  for (;;) {
    if (session.stopped.fired) return undefined;
    try {
      return connectSeqpacket(path);
    } catch (err) {
      if (!(err instanceof SyscallError && err.code === "EAGAIN") || Date.now() > deadline) {
        throw new Error(`failed to connect to container attach socket ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

async function sendRecordAll(fd: number, record: Uint8Array, closed: () => boolean): Promise<void> {
  let delay = RETRY_MIN_MS;
  for (;;) {
    if (closed()) throw new Error("attach socket closed");
    if (sendRecord(fd, record) > 0) return;
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

// ─── port-forward ────────────────────────────────────────────────────────────────────────────

export interface PortForwardStreamingOptions {
  /** The pod's pinned network namespace; null for a host-network pod (the daemon's own). */
  netnsPath: string | null;
  port: number;
  /** Bytes from the client; its end half-closes the connection (the server reads EOF). */
  input: AsyncIterable<Uint8Array>;
  write: StreamWriter;
  /** The server closed its side: no more writes will come. */
  end?: () => void;
  signal?: AbortSignal;
  /** How long the TCP handshake may take (default 10 s). */
  connectTimeoutMs?: number;
}

/** Connecting to the port failed; `code` is the errno name of the last attempt (ECONNREFUSED). */
export class PortForwardError extends Error {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PortForwardError";
  }
}

/**
 * After the server closed its side, how long the client may still send before the connection
 * is closed (CRI-O gives the other direction one second once either one finished).
 */
const PORT_FORWARD_DRAIN_MS = 1000;

/**
 * Connects to localhost:`port` inside the network namespace at `netnsPath` (127.0.0.1 first,
 * then ::1, one after the other, as CRI-O does) and relays both ways until both directions are
 * done, the connection fails or `signal` aborts.
 */
export async function portForwardStreaming(o: PortForwardStreamingOptions): Promise<void> {
  const session = new Session(o.signal);
  const inputEnded = new Latch();
  const remoteEnded = new Latch();
  const closed = new Latch();
  let sock: AdoptedSocket | undefined;
  let graceTimer: Parameters<typeof clearTimeout>[0];
  let over = false;
  let drained: (() => void) | undefined;
  const wake = () => {
    const d = drained;
    drained = undefined;
    d?.();
  };
  const serverEof = () => {
    if (remoteEnded.fired) return;
    remoteEnded.fire();
    try {
      o.end?.();
    } catch (err) {
      session.fail(err);
    }
  };
  try {
    const fd = await dialLoopback(o.netnsPath, o.port, o.connectTimeoutMs ?? 10_000, session);
    if (fd === undefined) return;
    sock = await adoptSocket(fd, {
      data(s, chunk) {
        if (session.error === undefined) deliver(s, o.write, chunk, session);
      },
      drain() { wake(); },
      end() { serverEof(); },
      close(_s, err) {
        // Bun reports the server's FIN as a close without `end` when our side was shut down first.
        if (err) session.fail(err);
        else serverEof();
        closed.fire();
        wake();
      },
      error(_s, err) { session.fail(err); },
    });
    const s = sock;

    void feed(o.input, [closed, session.stopped], async (chunk) => {
      let off = 0;
      while (off < chunk.length) {
        if (closed.fired) return;
        const n = s.write(chunk.subarray(off));
        if (n < 0) throw Object.assign(new Error("port-forward connection closed"), { code: "EPIPE" });
        off += n;
        if (off < chunk.length) await new Promise<void>((resolve) => { drained = resolve; });
      }
    }).then((how) => {
      if (how === "ended" && !closed.fired) s.shutdown(); // FIN: the server reads end of file
      inputEnded.fire();
    }, (err: unknown) => session.fail(err));

    await Promise.race([
      closed.promise,
      session.stopped.promise,
      Promise.all([inputEnded.promise, remoteEnded.promise]),
      remoteEnded.promise.then(() => new Promise<void>((r) => {
        if (!over) graceTimer = setTimeout(r, PORT_FORWARD_DRAIN_MS);
      })),
    ]);
  } finally {
    over = true;
    clearTimeout(graceTimer);
    inputEnded.fire();
    remoteEnded.fire();
    if (sock && !closed.fired) sock.terminate();
    closed.fire();
    wake();
    session.dispose();
  }
  if (session.error !== undefined) throw session.error;
}

/** A connected TCP socket inside the namespace, or undefined when aborted meanwhile. */
async function dialLoopback(netnsPath: string | null, port: number, timeoutMs: number, session: Session): Promise<number | undefined> {
  const failures: string[] = [];
  let lastCode = "ECONNREFUSED";
  let lastError: unknown;
  for (const family of [4, 6] as const) {
    const where = family === 4 ? `127.0.0.1:${port}` : `[::1]:${port}`;
    let conn;
    try {
      conn = connectInNetns(netnsPath, family, port);
    } catch (err) {
      if (err instanceof NamespaceRestoreError) throw err;
      if (err instanceof SyscallError && (err.syscall === "open" || err.syscall === "setns")) {
        throw new PortForwardError(`port forward into network namespace ${netnsPath}: ${err.message}`, err.code, { cause: err });
      }
      failures.push(`${where}: ${(err as Error).message}`);
      if (err instanceof SyscallError) lastCode = err.code;
      lastError = err;
      continue;
    }
    let state: "pending" | number = conn.pending ? "pending" : 0;
    const deadline = Date.now() + timeoutMs;
    let delay = 0;
    while (state === "pending" && !session.stopped.fired && Date.now() < deadline) {
      await (delay === 0 ? new Promise<void>((r) => setImmediate(r)) : Bun.sleep(delay));
      delay = Math.min(Math.max(delay * 2, RETRY_MIN_MS), RETRY_MAX_MS);
      state = connectResult(conn.fd);
    }
    if (state === 0) return conn.fd;
    closeSocketFd(conn.fd);
    if (session.stopped.fired) return undefined;
    const err = state === "pending"
      ? Object.assign(new Error(`connection timed out after ${timeoutMs} ms`), { code: "ETIMEDOUT" })
      : new SyscallError("connect", state);
    failures.push(`${where}: ${err.message}`);
    lastCode = (err as { code: string }).code;
    lastError = err;
  }
  throw new PortForwardError(
    `failed to connect to localhost:${port} inside ${netnsPath === null ? "the host network namespace" : `network namespace ${netnsPath}`}: ${failures.join("; ")}`,
    lastCode, { cause: lastError },
  );
}

// ─── plumbing ────────────────────────────────────────────────────────────────────────────────

/** A one-shot event. */
class Latch {
  fired = false;
  readonly promise: Promise<void>;
  private resolve!: () => void;
  constructor() {
    this.promise = new Promise<void>((r) => { this.resolve = r; });
  }
  fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.resolve();
  }
}

/** A session's end by the caller (abort) or by a failed write to the client. */
class Session {
  readonly stopped = new Latch();
  error: unknown;
  private readonly onAbort = () => this.stopped.fire();
  constructor(private readonly signal?: AbortSignal) {
    if (signal?.aborted) this.stopped.fire();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }
  fail(err: unknown): void {
    if (this.error === undefined) this.error = err ?? new Error("stream failed");
    this.stopped.fire();
  }
  dispose(): void {
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

/**
 * Passes every value of `source` to `each` (awaited, so the source is read no faster than it is
 * consumed) until it ends ("ended") or one of `until` fires ("stopped"). Stopping does not wait
 * for a pending next(): the iterator is asked to return and whatever it yields later is dropped.
 */
async function feed<T>(source: AsyncIterable<T>, until: Latch[], each: (v: T) => void | Promise<void>): Promise<"ended" | "stopped"> {
  const it = source[Symbol.asyncIterator]();
  const stop = Promise.race(until.map((l) => l.promise)).then((): typeof STOP => STOP);
  const stopped = () => until.some((l) => l.fired);
  let ended = false;
  try {
    for (;;) {
      if (stopped()) return "stopped";
      const next = it.next();
      next.catch(() => {});
      const r = await Promise.race([next, stop]);
      if (r === STOP || stopped()) return "stopped";
      if (r.done) {
        ended = true;
        return "ended";
      }
      await each(r.value);
    }
  } finally {
    if (!ended) void Promise.resolve().then(() => it.return?.()).catch(() => {});
  }
}
const STOP = Symbol("stop");

/**
 * Relays a process's output stream to the client. A failed write ends the session (the caller
 * is gone) and the rest is read and dropped, so the process never blocks on a full pipe.
 */
class OutputPump {
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<void> };
  private readonly done: Promise<void>;
  private settled = false;
  private writing = false;
  private lastActivity = Date.now();

  constructor(stream: ReadableStream<Uint8Array>, private readonly write: StreamWriter | undefined, private readonly session: Session) {
    this.reader = stream.getReader();
    this.done = this.run().finally(() => { this.settled = true; });
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done || value === undefined) return;
        this.lastActivity = Date.now();
        if (!this.write || this.session.error !== undefined || value.length === 0) continue;
        this.writing = true;
        try {
          await this.write(value);
        } catch (err) {
          this.session.fail(err);
        } finally {
          this.writing = false;
          this.lastActivity = Date.now();
        }
      }
    } catch {
      // A pty master reads EIO once the runtime (the last holder of the slave) exited: the end.
    }
  }

  /** Waits for end of file; gives up once the stream has been idle for `idleMs`. */
  async finish(idleMs: number): Promise<void> {
    while (!this.settled) {
      const idle = Date.now() - this.lastActivity;
      if (!this.writing && idle >= idleMs) {
        await this.reader.cancel().catch(() => {});
        break;
      }
      await Promise.race([this.done, Bun.sleep(Math.max(10, Math.min(100, idleMs - idle)))]);
    }
    await this.done;
  }
}

/** Writes all of `chunk` to a non-blocking fd, sleeping while it would block. */
async function writeFdAll(fd: number, chunk: Uint8Array, closed: () => boolean): Promise<void> {
  let off = 0;
  let delay = RETRY_MIN_MS;
  while (off < chunk.length) {
    if (closed()) throw new Error("closed");
    try {
      off += writeSync(fd, chunk, off, chunk.length - off);
      delay = RETRY_MIN_MS;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }
}

/** A Bun socket over an fd we connected; pause/resume stop and restart reading it. */
type AdoptedSocket = Socket<undefined> & { pause(): void; resume(): void };
type AdoptHandlers = Pick<SocketHandler<undefined>, "data" | "drain" | "end" | "close" | "error">;

/**
 * Hands a connected, non-blocking socket fd to Bun's event loop (Bun.connect's `fd` option:
 * bun-types declares FdSocketOptions but not the overload). The socket owns the fd from here:
 * terminate() or the peer's close releases it.
 */
async function adoptSocket(fd: number, handlers: AdoptHandlers): Promise<AdoptedSocket> {
  const connect = Bun.connect as unknown as (o: { fd: number; allowHalfOpen: boolean; socket: AdoptHandlers }) => Promise<Socket<undefined>>;
  let s: Socket<undefined>;
  try {
    s = await connect({ fd, allowHalfOpen: true, socket: handlers });
  } catch (err) {
    try {
      closeSocket(fd);
    } catch { /* Bun closed it already */ }
    throw err;
  }
  const adopted = s as AdoptedSocket;
  if (typeof adopted.pause !== "function" || typeof adopted.resume !== "function") {
    // Without them there is no backpressure towards the process, but nothing is lost.
    adopted.pause = () => {};
    adopted.resume = () => {};
  }
  return adopted;
}

/**
 * Writes socket data to the client; while a write is pending the socket is not read, so a slow
 * client slows the source down instead of filling memory.
 */
function deliver(s: Socket<undefined>, write: StreamWriter, chunk: Uint8Array, session: Session): void {
  let r: void | Promise<void>;
  try {
    r = write(chunk);
  } catch (err) {
    session.fail(err);
    return;
  }
  if (!(r instanceof Promise)) return;
  const sock = s as AdoptedSocket;
  sock.pause();
  r.then(() => {
    try {
      sock.resume();
    } catch { /* closed meanwhile */ }
  }, (err: unknown) => session.fail(err));
}
