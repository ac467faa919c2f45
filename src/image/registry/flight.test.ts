import { describe, expect, test } from "bun:test";
import { GrpcCode } from "../../errors.ts";
import { CancelledError } from "./errors.ts";
import { ParallelLimiter, SingleFlight, dedupe, sleep } from "./flight.ts";

describe("ParallelLimiter", () => {
  test("never runs more than the limit at once, and runs everything", async () => {
    const limiter = new ParallelLimiter(3);
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(5 + (i % 3));
          running--;
          return i * 2;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i * 2));
    expect(limiter.running).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  test("map keeps order; the first failure stops new tasks, aborts running ones, waits, rejects", async () => {
    const limiter = new ParallelLimiter(2);
    expect(await limiter.map([3, 1, 2], async (n) => (await sleep(n), n * 10))).toEqual([30, 10, 20]);

    const started: number[] = [];
    const settled: number[] = [];
    const boom = new Error("layer 1 failed");
    const p = limiter.map([0, 1, 2, 3, 4], async (n, _i, signal) => {
      started.push(n);
      try {
        if (n === 1) {
          await sleep(5);
          throw boom;
        }
        await sleep(200, signal);
        return n;
      } finally {
        settled.push(n);
      }
    });
    await expect(p).rejects.toBe(boom);
    // 0 and 1 ran; 0 was aborted through its signal before the rejection; 2..4 never started.
    expect(started).toEqual([0, 1]);
    expect(settled.sort()).toEqual([0, 1]);
  });

  test("a caller's signal cancels waiting and running tasks", async () => {
    const limiter = new ParallelLimiter(1);
    const ac = new AbortController();
    const p = limiter.map([1, 2, 3], (_n, _i, signal) => sleep(1000, signal), { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).code).toBe(GrpcCode.CANCELLED);

    const blocker = limiter.run(() => sleep(30));
    const ac2 = new AbortController();
    const waiting = limiter.run(async () => "ran", ac2.signal);
    ac2.abort();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    await blocker;
    expect(limiter.waiting).toBe(0);
  });

  test("timeouts map to DEADLINE_EXCEEDED", async () => {
    const err = await sleep(1000, AbortSignal.timeout(5)).catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(GrpcCode.DEADLINE_EXCEEDED);
  });
});

describe("single flight", () => {
  test("concurrent calls share one execution; later calls run again", async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    const fn = async () => {
      runs++;
      await sleep(10);
      return 42;
    };
    expect(await Promise.all([sf.do("k", fn), sf.do("k", fn), sf.do("k", fn)])).toEqual([42, 42, 42]);
    expect(runs).toBe(1);
    expect(sf.size).toBe(0);
    await sf.do("k", fn);
    expect(runs).toBe(2);
  });

  test("failures are shared too, and not remembered", async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    const fn = async () => {
      runs++;
      await sleep(5);
      throw new Error("nope");
    };
    const results = await Promise.allSettled([sf.do("k", fn), sf.do("k", fn)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(runs).toBe(1);
    await expect(sf.do("k", async () => 1)).resolves.toBe(1);
  });

  test("a waiter's signal stops its wait only", async () => {
    const ac = new AbortController();
    const a = dedupe("shared-key", () => sleep(30).then(() => "done"));
    const b = dedupe("shared-key", () => Promise.resolve("other"), ac.signal);
    ac.abort();
    await expect(b).rejects.toBeInstanceOf(CancelledError);
    expect(await a).toBe("done");
  });
});
