import { describe, expect, test } from "bun:test";
import { fields, goEscape, goTimeNow, marshalRecords, normalizeTime } from "./json.ts";

describe("Go-compatible JSON", () => {
  const spec = fields("id names? created flags? big-data-sizes?");

  test("struct order, omitempty, sorted maps, unknown fields kept last", () => {
    const out = marshalRecords(
      [{ extra: 1, flags: {}, names: [], created: "2024-01-01T00:00:00Z", id: "x", "big-data-sizes": { b: 2, a: 1 } }],
      spec,
    );
    expect(out).toBe('[{"id":"x","created":"2024-01-01T00:00:00Z","big-data-sizes":{"a":1,"b":2},"extra":1}]');
  });

  test("HTML-safe escaping as encoding/json does", () => {
    expect(goEscape(JSON.stringify({ m: "<a&b>" }))).toBe('{"m":"\\u003ca\\u0026b\\u003e"}');
  });

  test("times: trailing zeros trimmed, caller values kept when RFC 3339", () => {
    expect(goTimeNow(new Date("2024-01-02T03:04:05.120Z"))).toBe("2024-01-02T03:04:05.12Z");
    expect(goTimeNow(new Date("2024-01-02T03:04:50.000Z"))).toBe("2024-01-02T03:04:50Z");
    expect(normalizeTime("2023-05-06T07:08:09.123456789+02:00")).toBe("2023-05-06T07:08:09.123456789+02:00");
    expect(normalizeTime("yesterday")).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});
