// Pseudo-terminals for streaming exec with a TTY: the daemon keeps the master, the runtime
// (`runc exec` in the foreground) gets the slave as its stdin, stdout and stderr, as CRI-O's
// creack/pty does. The master is opened non-blocking, so Bun's fd reader can stream it and a
// write that would block reports EAGAIN instead of stalling the event loop.
//
// ioctl(2) is variadic in C; binding it with a fixed third pointer argument is sound on the
// LP64 Linux ABIs this runs on (x86_64 passes variadic integer arguments in the same
// registers, and AArch64 Linux follows the standard AAPCS64 for them). The request numbers
// below are the same in the x86 and asm-generic (arm64) ioctl tables.
import { FFIType } from "bun:ffi";
import { bindLibc, check, ptr } from "./libc.ts";

const { i32, u64, ptr: pointer } = FFIType;
const fns = bindLibc({
  open: { args: [pointer, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  ioctl: { args: [i32, u64, pointer], returns: i32 },
  tcgetattr: { args: [i32, pointer], returns: i32 },
  tcsetattr: { args: [i32, i32, pointer], returns: i32 },
  cfmakeraw: { args: [pointer], returns: FFIType.void },
});

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const TIOCGWINSZ = 0x5413n;
const TIOCSWINSZ = 0x5414n;
const TIOCGPTN = 0x80045430n;
const TIOCSPTLCK = 0x40045431n;
const TCSANOW = 0;
// glibc's struct termios is 60 bytes on x86_64 and aarch64; a little slack costs nothing.
const TERMIOS_SIZE = 64;

export interface Pty {
  /** The master side: O_RDWR | O_NONBLOCK | O_CLOEXEC. The daemon reads and writes it. */
  master: number;
  /** The slave side: O_RDWR | O_NOCTTY | O_CLOEXEC (a child gets it through spawn's stdio). */
  slave: number;
  /** /dev/pts/N */
  slavePath: string;
}

/** A terminal size in character cells. */
export interface WindowSize {
  rows: number;
  cols: number;
}

const encoder = new TextEncoder();

function openPath(path: string, flags: number): number {
  return check("open", fns.open(ptr(encoder.encode(`${path}\0`)), flags, 0), path);
}

/**
 * Opens a new pseudo-terminal pair (posix_openpt + unlockpt + open of the slave, done with the
 * ioctls glibc uses). Neither side becomes anyone's controlling terminal. Close both fds with
 * closePtyFd when done; the master reads EIO (end of stream) once every slave fd is closed.
 */
export function openPty(): Pty {
  const master = openPath("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  try {
    const unlock = new Int32Array([0]);
    check("ioctl", fns.ioctl(master, TIOCSPTLCK, ptr(unlock)), "TIOCSPTLCK");
    const n = new Uint32Array(1);
    check("ioctl", fns.ioctl(master, TIOCGPTN, ptr(n)), "TIOCGPTN");
    const slavePath = `/dev/pts/${n[0]}`;
    const slave = openPath(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC);
    return { master, slave, slavePath };
  } catch (err) {
    fns.close(master);
    throw err;
  }
}

export function closePtyFd(fd: number): void {
  check("close", fns.close(fd), String(fd));
}

/** TIOCSWINSZ: sets the terminal's size (on either side; the kernel keeps one per pair). */
export function setWindowSize(fd: number, size: WindowSize): void {
  const ws = new Uint16Array([clampU16(size.rows), clampU16(size.cols), 0, 0]);
  check("ioctl", fns.ioctl(fd, TIOCSWINSZ, ptr(ws)), "TIOCSWINSZ");
}

/** TIOCGWINSZ: the terminal's size. */
export function getWindowSize(fd: number): WindowSize {
  const ws = new Uint16Array(4);
  check("ioctl", fns.ioctl(fd, TIOCGWINSZ, ptr(ws)), "TIOCGWINSZ");
  return { rows: ws[0]!, cols: ws[1]! };
}

/**
 * cfmakeraw + tcsetattr(TCSANOW): no echo, no line editing, no signal characters, no output
 * processing. Done on the slave before the runtime starts, so that nothing written to the
 * master in the meantime is echoed back as output or held for a line.
 */
export function makeRaw(fd: number): void {
  const t = new Uint8Array(TERMIOS_SIZE);
  check("tcgetattr", fns.tcgetattr(fd, ptr(t)));
  fns.cfmakeraw(ptr(t));
  check("tcsetattr", fns.tcsetattr(fd, TCSANOW, ptr(t)));
}

/** The termios local-mode flags (c_lflag, the fourth 32-bit field), for tests and diagnostics. */
export function localModeFlags(fd: number): number {
  const t = new Uint8Array(TERMIOS_SIZE);
  check("tcgetattr", fns.tcgetattr(fd, ptr(t)));
  return new DataView(t.buffer).getUint32(12, true);
}

export const ECHO = 0o10;
export const ICANON = 0o2;

function clampU16(n: number): number {
  if (!Number.isFinite(n) || n < 0) return 0;
  return Math.min(Math.trunc(n), 0xffff);
}
