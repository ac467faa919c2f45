// The text format: escaping, number formatting as Go prints it, and the rendering of every
// metric kind through the registry (histogram buckets with +Inf, summary quantiles, label order).
import { describe, expect, test } from "bun:test";
import { escapeHelp, escapeLabelValue, formatValue, renderText } from "./exposition.ts";
import { Counter, Gauge, GaugeFunc, Histogram, Registry, Summary, type Collector } from "./registry.ts";

const render = (...c: Collector[]) => renderText(new Registry().register(...c).collect());

describe("escaping", () => {
  test("label values escape backslash, double quote and line feed, nothing else", () => {
    expect(escapeLabelValue(`a\\b"c\nd\te`)).toBe(`a\\\\b\\"c\\nd\te`);
    expect(escapeLabelValue(">1 MiB")).toBe(">1 MiB");
  });

  test("HELP escapes backslash and line feed but not quotes", () => {
    expect(escapeHelp(`say "hi"\\\nbye`)).toBe(`say "hi"\\\\\\nbye`);
  });

  test("a label value with every special character renders escaped", () => {
    const c = new Counter({ name: "x_total", help: "h", labelNames: ["name"] });
    c.inc({ name: 'we\\ird "name"\nhere' });
    expect(render(c)).toContain(`x_total{name="we\\\\ird \\"name\\"\\nhere"} 1\n`);
  });
});

describe("formatValue (Go's strconv 'g', shortest)", () => {
  test.each([
    [0, "0"],
    [1, "1"],
    [-1, "-1"],
    [0.5, "0.5"],
    [123456, "123456"],
    [1e6, "1e+06"],
    [1234567, "1.234567e+06"],
    [1e10, "1e+10"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [1.5e-7, "1.5e-07"],
    [1e100, "1e+100"],
    [NaN, "NaN"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
  ])("%p → %s", (v, want) => {
    expect(formatValue(v)).toBe(want);
  });
});

describe("rendering", () => {
  test("HELP and TYPE precede the samples; families sorted by name", () => {
    const b = new Counter({ name: "b_total", help: "B things." });
    const a = new Gauge({ name: "a", help: "An a." });
    a.set(2.5);
    b.add(3);
    expect(render(b, a)).toBe("# HELP a An a.\n# TYPE a gauge\na 2.5\n# HELP b_total B things.\n# TYPE b_total counter\nb_total 3\n");
  });

  test("an unlabelled metric is there from the start; a labelled one only once used", () => {
    const plain = new Counter({ name: "plain_total", help: "p" });
    const vec = new Counter({ name: "vec_total", help: "v", labelNames: ["k"] });
    expect(render(plain, vec)).toBe("# HELP plain_total p\n# TYPE plain_total counter\nplain_total 0\n");
    vec.inc({ k: "x" });
    expect(render(plain, vec)).toContain('vec_total{k="x"} 1\n');
  });

  test("label pairs sorted by name, series by label values", () => {
    const c = new Counter({ name: "c_total", help: "h", labelNames: ["size", "mediatype"] });
    c.add(5, { size: ">1 MiB", mediatype: "b" });
    c.add(7, { mediatype: "a", size: ">1 KiB" });
    const text = render(c);
    expect(text).toContain('c_total{mediatype="a",size=">1 KiB"} 7\nc_total{mediatype="b",size=">1 MiB"} 5\n');
  });

  test("histogram: cumulative _bucket lines with le in Go's float form, +Inf, _sum and _count", () => {
    const h = new Histogram({ name: "h", help: "sizes", buckets: [1000, 1e6, 1e7] });
    h.observe(10);
    h.observe(1000); // bounds are inclusive
    h.observe(5e6);
    h.observe(2e7);
    expect(render(h)).toBe(
      [
        "# HELP h sizes",
        "# TYPE h histogram",
        'h_bucket{le="1000"} 2',
        'h_bucket{le="1e+06"} 2',
        'h_bucket{le="1e+07"} 3',
        'h_bucket{le="+Inf"} 4',
        "h_sum 2.500101e+07",
        "h_count 4",
        "",
      ].join("\n"),
    );
  });

  test("histogram with labels puts le last", () => {
    const h = new Histogram({ name: "h", help: "x", labelNames: ["op"], buckets: [1] });
    h.observe(0.5, { op: "a" });
    const text = render(h);
    expect(text).toContain('h_bucket{op="a",le="1"} 1\n');
    expect(text).toContain('h_bucket{op="a",le="+Inf"} 1\n');
    expect(text).toContain('h_sum{op="a"} 0.5\n');
    expect(text).toContain('h_count{op="a"} 1\n');
  });

  test("summary: quantile lines (quantile label last), _sum and _count", () => {
    const s = new Summary({ name: "s", help: "lat", labelNames: ["operation"] });
    for (let i = 1; i <= 100; i++) s.observe(i, { operation: "Version" });
    expect(render(s)).toBe(
      [
        "# HELP s lat",
        "# TYPE s summary",
        's{operation="Version",quantile="0.5"} 50',
        's{operation="Version",quantile="0.9"} 90',
        's{operation="Version",quantile="0.99"} 99',
        's_sum{operation="Version"} 5050',
        's_count{operation="Version"} 100',
        "",
      ].join("\n"),
    );
  });

  test("an unlabelled summary without observations shows NaN quantiles", () => {
    const s = new Summary({ name: "s", help: "h", quantiles: [0.5] });
    expect(render(s)).toBe('# HELP s h\n# TYPE s summary\ns{quantile="0.5"} NaN\ns_sum 0\ns_count 0\n');
  });

  test("a gauge func is read at every scrape", () => {
    let n = 1;
    const g = new GaugeFunc({ name: "g", help: "h" }, () => n);
    expect(render(g)).toContain("\ng 1\n");
    n = 7;
    expect(render(g)).toContain("\ng 7\n");
  });

  test("a name registered twice is refused at collection", () => {
    const a = new Counter({ name: "dup_total", help: "h" });
    const b = new Counter({ name: "dup_total", help: "h" });
    expect(() => new Registry().register(a, b).collect()).toThrow(/registered twice/);
  });
});
