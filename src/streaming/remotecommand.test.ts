import { describe, expect, test } from "bun:test";
import { decodeResizeEvents } from "./remotecommand.ts";
import type { TerminalSize } from "./types.ts";

async function decode(chunks: string[]): Promise<TerminalSize[]> {
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) yield new TextEncoder().encode(c);
  }
  const out: TerminalSize[] = [];
  for await (const s of decodeResizeEvents(source())) out.push(s);
  return out;
}

describe("decodeResizeEvents", () => {
  test("reads the JSON values json.Encoder writes, split anywhere", async () => {
    const stream = '{"Width":80,"Height":24}\n{"Width":100,"Height":30}\n';
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(await decode([stream.slice(0, cut), stream.slice(cut)])).toEqual([
        { width: 80, height: 24 },
        { width: 100, height: 30 },
      ]);
    }
  });

  test("matches field names case-insensitively and ignores unknown fields", async () => {
    expect(await decode(['{"width":1,"HEIGHT":2,"x":{"y":"}"}}  {"Height":7}'])).toEqual([
      { width: 1, height: 2 },
      { width: 0, height: 7 },
    ]);
  });

  test("stops at the first value Go's decoder would reject", async () => {
    expect(await decode(['{"Width":1,"Height":1}{"Width":-1,"Height":1}{"Width":2,"Height":2}'])).toEqual([
      { width: 1, height: 1 },
    ]);
    expect(await decode(['{"Width":70000}'])).toEqual([]);
    expect(await decode(["[1,2]"])).toEqual([]);
    expect(await decode(["garbage"])).toEqual([]);
  });
});
