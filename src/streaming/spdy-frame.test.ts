import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./spdy-dictionary.ts";
import {
  decodeHeaderBlock,
  encodeDataFrame,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeStreamHeaders,
  encodeSynStream,
  encodeWindowUpdate,
  FLAG_FIN,
  FrameParser,
  FrameType,
  SpdyProtocolError,
  ZlibContext,
} from "./spdy-frame.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("SPDY/3 header dictionary", () => {
  test("is the draft's 1423 bytes", () => {
    // Length and digest of the dictionary in SPDY draft 3 section 2.6.10.1 (the same bytes as
    // moby/spdystream's headerDictionary).
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(createHash("sha256").update(SPDY3_DICTIONARY).digest("hex")).toBe(
      "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    );
  });
});

describe("frame encoding", () => {
  test("control frame headers carry the control bit, version 3, type, flags and length", () => {
    expect(hex(encodeRstStream(5, 5))).toBe("80030003" + "00000008" + "00000005" + "00000005");
    expect(hex(encodePing(2))).toBe("80030006" + "00000004" + "00000002");
    expect(hex(encodeGoAway(7, 0))).toBe("80030007" + "00000008" + "00000007" + "00000000");
    expect(hex(encodeWindowUpdate(0, 0x8000))).toBe("80030009" + "00000008" + "00000000" + "00008000");
    expect(hex(encodeSettings([{ id: 7, value: 1 << 20 }]))).toBe(
      "80030004" + "0000000c" + "00000001" + "00000007" + "00100000",
    );
  });

  test("DATA frames: stream id without the control bit, flags in the length word", () => {
    expect(hex(encodeDataFrame(3, FLAG_FIN, Uint8Array.of(0xaa, 0xbb)))).toBe("00000003" + "01000002" + "aabb");
  });

  test("SYN_STREAM puts priority in the top three bits after the associated stream id", () => {
    const f = encodeSynStream(1, 0, Uint8Array.of(0xff), 7, 0);
    expect(hex(f)).toBe("80030001" + "0000000b" + "00000001" + "00000000" + "e000" + "ff");
  });

  test("the parser reassembles frames split at any byte", () => {
    const frames = [
      encodeDataFrame(1, 0, new Uint8Array(300).fill(7)),
      encodePing(1),
      encodeStreamHeaders(FrameType.SYN_REPLY, 1, FLAG_FIN, Uint8Array.of(1, 2, 3)),
      encodeDataFrame(1, FLAG_FIN, new Uint8Array(0)),
    ];
    const all = Buffer.concat(frames);
    for (const step of [1, 3, 8, 64, all.length]) {
      const parser = new FrameParser();
      const out = [];
      for (let i = 0; i < all.length; i += step) {
        parser.push(all.subarray(i, i + step));
        for (let f = parser.next(); f; f = parser.next()) out.push(f);
      }
      expect(out.map((f) => f.kind)).toEqual(["data", "control", "control", "data"]);
      const [data, ping, reply, fin] = out;
      expect(data?.kind === "data" && data.data.length).toBe(300);
      expect(ping?.kind === "control" && ping.type).toBe(FrameType.PING);
      expect(reply?.kind === "control" && [reply.version, reply.flags, hex(reply.payload)]).toEqual([3, 1, "00000001010203"]);
      expect(fin?.kind === "data" && [fin.streamId, fin.flags, fin.data.length]).toEqual([1, 1, 0]);
      expect(parser.buffered).toBe(0);
    }
  });

  test("a frame over the parser's limit is a protocol error", () => {
    const parser = new FrameParser(1024);
    parser.push(encodeDataFrame(1, 0, new Uint8Array(2048)));
    expect(() => parser.next()).toThrow(SpdyProtocolError);
  });
});

describe("header blocks", () => {
  test("round trip, lowercasing names and splitting NUL-joined values", () => {
    const block = encodeHeaderBlock({ streamType: "error", Port: ["80", "81"], requestid: "0" });
    expect(decodeHeaderBlock(block)).toEqual({ streamtype: ["error"], port: ["80", "81"], requestid: ["0"] });
  });

  test("the layout is 32-bit counts and lengths", () => {
    expect(hex(encodeHeaderBlock({ a: "bc" }))).toBe("00000001" + "00000001" + "61" + "00000002" + "6263");
  });

  test("truncated blocks are protocol errors", () => {
    const block = encodeHeaderBlock({ streamtype: "stdout" });
    expect(() => decodeHeaderBlock(block.subarray(0, block.length - 1))).toThrow(SpdyProtocolError);
  });
});

describe("zlib contexts", () => {
  test("one context per direction: later blocks refer back to earlier ones", async () => {
    const deflater = ZlibContext.deflater();
    const inflater = ZlibContext.inflater();
    const blocks: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) blocks.push(encodeHeaderBlock({ streamtype: i % 2 ? "stdout" : "stderr", requestid: String(i) }));
    const compressed = await Promise.all(blocks.map((b) => deflater.process(b)));
    // Sync-flushed blocks end with an empty stored block, and shared history makes the later
    // (repetitive) blocks smaller than the first.
    for (const c of compressed) expect(hex(c.subarray(c.length - 4))).toBe("0000ffff");
    expect((compressed[5] as Uint8Array).length).toBeLessThan((compressed[0] as Uint8Array).length);
    const restored = await Promise.all(compressed.map((c) => inflater.process(c)));
    restored.forEach((r, i) => expect(hex(r)).toBe(hex(blocks[i] as Uint8Array)));
    deflater.close();
    inflater.close();
  });

  test("the first block is primed with the SPDY dictionary", async () => {
    const deflater = ZlibContext.deflater();
    const c = await deflater.process(encodeHeaderBlock({ "content-type": "text/plain" }));
    // zlib header with FDICT set, then the dictionary's Adler-32.
    expect(c[1]! & 0x20).toBe(0x20);
    const plain = zlib.inflateSync(c, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(decodeHeaderBlock(plain)).toEqual({ "content-type": ["text/plain"] });
    deflater.close();
  });

  test("garbage fails the inflater for good", async () => {
    const inflater = ZlibContext.inflater();
    await expect(inflater.process(Uint8Array.of(1, 2, 3, 4, 5))).rejects.toThrow(SpdyProtocolError);
    await expect(inflater.process(Uint8Array.of(1))).rejects.toThrow(SpdyProtocolError);
  });

  test("a block inflating past the limit is refused", async () => {
    const deflater = ZlibContext.deflater();
    const inflater = ZlibContext.inflater(1000);
    const c = await deflater.process(encodeHeaderBlock({ big: "x".repeat(5000) }));
    await expect(inflater.process(c)).rejects.toThrow("too large");
    deflater.close();
  });
});
