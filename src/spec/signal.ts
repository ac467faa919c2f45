// The stop signal: what StopContainer sends before SIGKILL (CRI-O
// setupContainerRuntimeAndStopSignal: the request's stop_signal, else the image's StopSignal,
// else SIGTERM). Signal numbers are Linux's generic ones (x86, arm, arm64, s390x, riscv).
import { InvalidArgumentError } from "../errors.ts";
import { Signal, SignalName } from "../proto/runtime-v1.ts";
import type { ImageConfig } from "./types.ts";

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10,
  SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CLD: 17, CONT: 18,
  STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27,
  WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};
const SIGRTMIN = 34;
const SIGRTMAX = 64;
/** The name each number is shown as (the first alias above wins, as in Go's syscall tables). */
const NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(SIGNALS)) if (!NAMES.has(n)) NAMES.set(n, `SIG${name}`);

export interface StopSignal {
  /** Canonical name: "SIGTERM", "SIGRTMIN+3". */
  name: string;
  number: number;
}

function nameOf(n: number): string {
  const known = NAMES.get(n);
  if (known) return known;
  if (n === SIGRTMIN) return "SIGRTMIN";
  if (n === SIGRTMAX) return "SIGRTMAX";
  return n - SIGRTMIN <= SIGRTMAX - n ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
}

/**
 * Parses a signal as images write it: a name with or without "SIG" in any case ("SIGQUIT",
 * "quit"), "RTMIN+n" / "RTMAX-n", or a number 1..64. Anything else is InvalidArgument.
 */
export function parseSignal(value: string): StopSignal {
  const s = value.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > SIGRTMAX) throw new InvalidArgumentError(`invalid signal ${JSON.stringify(value)}: out of range 1..${SIGRTMAX}`);
    return { name: nameOf(n), number: n };
  }
  const upper = s.toUpperCase();
  const bare = upper.startsWith("SIG") ? upper.slice(3) : upper;
  const known = SIGNALS[bare];
  if (known !== undefined) return { name: nameOf(known), number: known };
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(bare);
  if (rt) {
    const offset = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === "-" ? -1 : 1);
    const n = (rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX) + offset;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return { name: nameOf(n), number: n };
  }
  throw new InvalidArgumentError(`invalid signal ${JSON.stringify(value)}`);
}

/**
 * The container's stop signal: the request's stop_signal when set (CRI ContainerConfig
 * stop_signal, KEP-4960), else the image's StopSignal, else SIGTERM. An unparsable image value
 * is InvalidArgument.
 */
export function stopSignal(imageConfig: ImageConfig | undefined, requested: Signal = Signal.RUNTIME_DEFAULT): StopSignal {
  if (requested !== Signal.RUNTIME_DEFAULT) {
    const name = SignalName[requested];
    if (!name) throw new InvalidArgumentError(`unknown stop signal ${requested}`);
    // The CRI enum spells real-time signals SIGRTMINPLUS3 / SIGRTMAXMINUS2.
    return parseSignal(name.replace("PLUS", "+").replace("MINUS", "-"));
  }
  const fromImage = imageConfig?.StopSignal ?? "";
  if (fromImage === "") return { name: "SIGTERM", number: 15 };
  return parseSignal(fromImage);
}

const CRI_SIGNALS = new Map<string, Signal>(Object.entries(SignalName).map(([k, name]) => [name, Number(k) as Signal]));

/** The CRI Signal enum value of a signal number (what ContainerStatus reports); RUNTIME_DEFAULT when it has none. */
export function criSignal(n: number): Signal {
  if (n < 1 || n > SIGRTMAX) return Signal.RUNTIME_DEFAULT;
  return CRI_SIGNALS.get(nameOf(n).replace("+", "PLUS").replace("-", "MINUS")) ?? Signal.RUNTIME_DEFAULT;
}
