// The metric kinds' semantics: label checking, counters that never go down, resets, and the
// summary's sliding window.
import { describe, expect, test } from "bun:test";
import { Counter, Gauge, Histogram, Summary } from "./registry.ts";

describe("labels", () => {
  test("every label must be given, and no other", () => {
    const c = new Counter({ name: "c_total", help: "h", labelNames: ["a", "b"] });
    expect(() => c.inc({ a: "1" })).toThrow(/missing label "b"/);
    expect(() => c.inc({ a: "1", b: "2", c: "3" })).toThrow(/want/);
    expect(() => c.inc()).toThrow(/missing label/);
    c.inc({ b: "2", a: "1" });
    expect(c.value({ a: "1", b: "2" })).toBe(1);
  });

  test("invalid metric and label names, and reserved labels, are refused", () => {
    expect(() => new Counter({ name: "1bad", help: "h" })).toThrow(/invalid metric name/);
    expect(() => new Counter({ name: "ok_total", help: "h", labelNames: ["bad-label"] })).toThrow(/invalid label name/);
    expect(() => new Counter({ name: "ok_total", help: "h", labelNames: ["__name"] })).toThrow(/invalid label name/);
    expect(() => new Histogram({ name: "h", help: "h", labelNames: ["le"], buckets: [1] })).toThrow(/invalid label name/);
    expect(() => new Summary({ name: "s", help: "h", labelNames: ["quantile"] })).toThrow(/invalid label name/);
    expect(() => new Counter({ name: "ok_total", help: "h", labelNames: ["x", "x"] })).toThrow(/duplicate/);
  });

  test("remove drops one label set; reset drops all", () => {
    const g = new Gauge({ name: "g", help: "h", labelNames: ["runtime"] });
    g.set(1, { runtime: "runc" });
    g.set(1, { runtime: "crun" });
    expect(g.remove({ runtime: "runc" })).toBe(true);
    expect(g.collect()[0]!.samples.map((s) => s.labels)).toEqual([[["runtime", "crun"]]]);
    g.reset();
    expect(g.collect()[0]!.samples).toEqual([]);
  });
});

describe("kinds", () => {
  test("a counter refuses to decrease", () => {
    const c = new Counter({ name: "c_total", help: "h" });
    expect(() => c.add(-1)).toThrow(/cannot decrease/);
    expect(() => c.add(NaN)).toThrow(/cannot decrease/);
    c.add(2.5);
    c.inc();
    expect(c.value()).toBe(3.5);
  });

  test("a gauge goes both ways", () => {
    const g = new Gauge({ name: "g", help: "h" });
    g.inc();
    g.inc();
    g.dec();
    g.add(0.5);
    expect(g.value()).toBe(1.5);
    g.set(-3);
    expect(g.value()).toBe(-3);
  });

  test("histogram buckets must increase", () => {
    expect(() => new Histogram({ name: "h", help: "h", buckets: [2, 1] })).toThrow(/increasing/);
  });
});

describe("summary window", () => {
  test("quantiles forget observations older than maxAge; sum and count do not", () => {
    let now = 0;
    const s = new Summary({ name: "s", help: "h", maxAgeMs: 10_000, ageBuckets: 5, now: () => now });
    for (let i = 0; i < 10; i++) s.observe(100);
    now = 5_000;
    s.observe(1);
    expect(s.quantileValues()).toEqual([100, 100, 100]);
    now = 10_500; // the slice holding the 100s is older than maxAge now
    expect(s.quantileValues()).toEqual([1, 1, 1]);
    now = 30_000;
    expect(s.quantileValues().every(Number.isNaN)).toBe(true);
    const fam = s.collect()[0]!;
    expect(fam.samples.find((x) => x.name === "s_count")?.value).toBe(11);
    expect(fam.samples.find((x) => x.name === "s_sum")?.value).toBe(1001);
  });

  test("past the sample cap a uniform sample is kept, so quantiles stay close", () => {
    const s = new Summary({ name: "s", help: "h", sampleCap: 200, now: () => 0 });
    for (let i = 1; i <= 10_000; i++) s.observe(i);
    const [p50, p90, p99] = s.quantileValues() as [number, number, number];
    expect(Math.abs(p50 - 5_000)).toBeLessThan(1_000);
    expect(Math.abs(p90 - 9_000)).toBeLessThan(600);
    expect(p99).toBeGreaterThan(9_500);
  });
});
