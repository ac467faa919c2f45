// Concurrency helpers for pulls: a bounded pool for layer downloads, and single-flight so that
// concurrent requests for the same thing (a blob, a token, an image) share one execution.
import { abortError } from "./errors.ts";

/**
 * containers/image copies up to 6 layers at once (copy.Options.MaxParallelDownloads default);
 * the same here.
 */
export const DEFAULT_PARALLEL_DOWNLOADS = 6;

/** Runs at most `limit` tasks at a time; the rest wait in FIFO order. */
export class ParallelLimiter {
  readonly limit: number;
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(limit: number = DEFAULT_PARALLEL_DOWNLOADS) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`ParallelLimiter: limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Tasks running now. */
  get running(): number {
    return this.active;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Runs `fn` when a slot is free. A signal that fires while waiting rejects without running it. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /**
   * Maps `items` through `fn` with this limiter's bound, results in input order. On the first
   * failure it starts nothing more, aborts the signal handed to the running tasks, waits for
   * them to settle (so nothing still writes after it returns), then rejects with that failure.
   */
  async map<T, R>(
    items: readonly T[],
    fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<R[]> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    let failure: { error: unknown } | undefined;
    const results = new Array<R>(items.length);
    try {
      await Promise.allSettled(
        items.map((item, i) =>
          this.run(async () => {
            if (failure || ac.signal.aborted) return;
            try {
              results[i] = await fn(item, i, ac.signal);
            } catch (e) {
              if (!failure) {
                failure = { error: e };
                ac.abort(e);
              }
            }
          }),
        ),
      );
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
    if (failure) throw failure.error;
    if (opts.signal?.aborted) throw abortError(opts.signal, "parallel tasks");
    return results;
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, "waiting for a download slot"));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.active++;
        resolve();
      };
      const onAbort = () => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortError(signal!, "waiting for a download slot"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.active--;
    const next = this.queue.shift();
    if (next) next();
  }
}

/**
 * Single-flight: concurrent calls with the same key share one execution of `fn` and its
 * outcome. The key is forgotten when the flight settles, so a later call runs again (a failed
 * download is retried by the next pull; a finished one is found in storage by the caller).
 */
export class SingleFlight<T = unknown> {
  private readonly flights = new Map<string, Promise<T>>();

  /** Whether a flight for `key` is in progress. */
  has(key: string): boolean {
    return this.flights.has(key);
  }

  get size(): number {
    return this.flights.size;
  }

  /**
   * Runs `fn` unless a flight for `key` is in progress, then waits for it. `signal` only stops
   * this caller's wait (rejecting with CancelledError/DeadlineExceededError); the flight goes on
   * for the others, so `fn` should not take a caller's signal.
   */
  do(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let p = this.flights.get(key);
    if (p === undefined) {
      p = (async () => {
        try {
          return await fn();
        } finally {
          this.flights.delete(key);
        }
      })();
      this.flights.set(key, p);
    }
    return signal ? raceSignal(p, signal, `waiting for ${key}`) : p;
  }
}

const shared = new SingleFlight<unknown>();

/** Process-wide single-flight: `dedupe("blob:" + digest, () => download(digest))`. */
export function dedupe<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return shared.do(key, fn, signal) as Promise<T>;
}

/** `p`, or a rejection with the abort error as soon as `signal` fires. */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Waits `ms`, or rejects with the abort error when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal, "waiting to retry"));
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!, "waiting to retry"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
