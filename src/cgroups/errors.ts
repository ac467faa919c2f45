// Errors of the cgroup managers. Both carry gRPC codes through src/errors.ts's base classes.
import { FailedPreconditionError, UnavailableError } from "../errors.ts";

/**
 * A cgroup could not be removed because processes are still in it (or, after they have gone,
 * the kernel kept it busy past the retry deadline). The managers never kill: the caller stops
 * the processes first and retries.
 */
export class CgroupBusyError extends FailedPreconditionError {
  /** The cgroup as the caller named it, e.g. /kubepods/pod1/crio-abc. */
  readonly cgroup: string;
  /** The directory that refused rmdir. */
  readonly dir: string;
  /** The processes still listed in it (may be empty: kernel lag). */
  readonly pids: number[];
  constructor(cgroup: string, dir: string, pids: number[], options?: { cause?: unknown }) {
    super(
      pids.length > 0
        ? `cgroup ${cgroup} is busy: ${dir} still holds process${pids.length === 1 ? "" : "es"} ${pids.join(", ")}; stop them before removing it`
        : `cgroup ${cgroup} is busy: rmdir ${dir} kept failing with EBUSY although it lists no processes`,
      options,
    );
    this.cgroup = cgroup;
    this.dir = dir;
    this.pids = pids;
  }
}

/** The systemd cgroup manager was asked to work but no systemd answers on D-Bus. */
export class SystemdUnavailableError extends UnavailableError {
  /** Each endpoint tried and why it failed. */
  readonly attempts: { path: string; error: string }[];
  constructor(attempts: { path: string; error: string }[], booted: boolean, options?: { cause?: unknown }) {
    const tried = attempts.map((a) => `${a.path}: ${a.error}`).join("; ");
    super(
      `cgroup_manager = "systemd" needs systemd, but none answers on D-Bus (tried ${tried || "no endpoint"})` +
        (booted ? "" : "; this node was not booted with systemd (/run/systemd/system is missing)") +
        `. Set cgroup_manager = "cgroupfs" in crio.conf (and the kubelet's cgroupDriver to cgroupfs), or run systemd`,
      options,
    );
    this.attempts = attempts;
  }
}
