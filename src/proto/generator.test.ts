// The proto parser and code generator (scripts/gen-proto.ts).
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageCodec } from "./wire.ts";
import { generate, generateRuntimeV1, OUTPUT_PATH, parseProto, PROTO_PATH, ProtoParseError, ROOT, type MessageDef } from "../../scripts/gen-proto.ts";

describe("generated src/proto/runtime-v1.ts", () => {
  test("is up to date: regenerating yields byte-identical output", () => {
    const { code } = generateRuntimeV1();
    const checkedIn = readFileSync(OUTPUT_PATH, "utf8");
    if (code !== checkedIn) {
      throw new Error("src/proto/runtime-v1.ts is stale; run: node_modules/.bin/bun scripts/gen-proto.ts");
    }
    expect(generateRuntimeV1().code).toBe(code);
  });

  test("header names the source and its hash", () => {
    const head = readFileSync(OUTPUT_PATH, "utf8").split("\n").slice(0, 4).join("\n");
    const sha = createHash("sha256").update(readFileSync(PROTO_PATH)).digest("hex");
    expect(head).toContain("DO NOT EDIT");
    expect(head).toContain("proto/runtime/v1/api.proto");
    expect(head).toContain(sha);
  });

  test("counts", () => {
    const { stats } = generateRuntimeV1();
    expect(stats.messages).toBe(170);
    expect(stats.enums).toBe(11);
    expect(stats.services).toEqual([
      { name: "RuntimeService", rpcs: 35 },
      { name: "ImageService", rpcs: 6 },
    ]);
  });

  test("does not depend on grpc-js or protobufjs", () => {
    const code = readFileSync(OUTPUT_PATH, "utf8");
    const imports = code.split("\n").filter((l) => /^import /.test(l));
    expect(imports).toEqual([expect.stringContaining('from "./wire.ts"')]);
    for (const f of ["wire.ts", "index.ts"]) {
      expect(readFileSync(join(ROOT, "src/proto", f), "utf8")).not.toMatch(/@grpc|protobufjs/);
    }
  });
});

describe("parser", () => {
  test("nested types, oneof, optional, maps, reserved, options, streams, name resolution", () => {
    const file = parseProto(
      `// leading comment
syntax = "proto3";
package a.b;
option go_package = "x" "y";
message Outer {
  option deprecated = true;
  message Inner { enum E { Z = 0; O = 1; } E e = 1; }
  enum Kind { K0 = 0; K1 = 1 [deprecated = true, (custom.opt) = { a: 1 }]; }
  reserved 2, 9 to 11, 100 to max;
  reserved "gone";
  Inner inner = 1;
  repeated Inner.E es = 3 [packed = false];
  map<string, Inner> by_name = 4;
  optional sint64 maybe = 5;
  oneof pick { string s = 6; Outer o = 7; }
  .a.b.Other other = 8;
  Kind kind = 12 [deprecated=true];
}
message Other { Outer.Inner.E e = 1; b.Outer outer = 2; }
service S {
  rpc U(Outer) returns (Other);
  rpc SS(Other) returns (stream Outer) {}
  rpc CS(stream a.b.Other) returns (.a.b.Other) { option idempotency_level = NO_SIDE_EFFECTS; }
}
`,
      "t.proto",
    );
    expect(file.package).toBe("a.b");
    const outer = file.messages[0]!;
    expect(outer.tsName).toBe("Outer");
    expect(outer.messages[0]!.tsName).toBe("Outer_Inner");
    expect(outer.messages[0]!.enums[0]!.tsName).toBe("Outer_Inner_E");
    expect(outer.enums[0]!.tsName).toBe("Outer_Kind");
    expect(outer.reservedRanges).toEqual([
      [2, 2],
      [9, 11],
      [100, 536870911],
    ]);
    expect(outer.reservedNames).toEqual(["gone"]);
    const f = (name: string) => outer.fields.find((x) => x.name === name)!;
    expect(f("inner").type.resolved).toBe("a.b.Outer.Inner");
    expect(f("es")).toMatchObject({ label: "repeated", packed: false, type: { resolved: "a.b.Outer.Inner.E" } });
    expect(f("by_name")).toMatchObject({ jsonName: "byName", map: { key: "string", value: { resolved: "a.b.Outer.Inner" } } });
    expect(f("maybe")).toMatchObject({ label: "optional", type: { scalar: "sint64" } });
    expect(f("s").oneof).toBe("pick");
    expect(f("o")).toMatchObject({ oneof: "pick", type: { resolved: "a.b.Outer" } });
    expect(f("other").type.resolved).toBe("a.b.Other");
    expect(f("kind")).toMatchObject({ deprecated: true, type: { resolved: "a.b.Outer.Kind" } });
    const other = file.messages[1]!;
    expect(other.fields.map((x) => x.type.resolved)).toEqual(["a.b.Outer.Inner.E", "a.b.Outer"]);
    expect(file.services[0]!.methods.map((m) => [m.name, m.clientStreaming, m.serverStreaming, m.input.resolved, m.output.resolved])).toEqual([
      ["U", false, false, "a.b.Outer", "a.b.Other"],
      ["SS", false, true, "a.b.Other", "a.b.Outer"],
      ["CS", true, false, "a.b.Other", "a.b.Other"],
    ]);
  });

  test("json names follow protoc", () => {
    const file = parseProto(`syntax = "proto3"; message M { string CDI_devices = 1; string uidMappings = 2; double Avg10 = 3; string a_b_c = 4; }`);
    expect(file.messages[0]!.fields.map((x) => x.jsonName)).toEqual(["CDIDevices", "uidMappings", "Avg10", "aBC"]);
  });

  const bad: Array<[string, string, RegExp]> = [
    ["missing syntax", `message M {}`, /proto3/],
    ["proto2", `syntax = "proto2"; message M {}`, /proto3/],
    ["duplicate field number", `syntax = "proto3"; message M { string a = 1; string b = 1; }`, /already used/],
    ["reserved number", `syntax = "proto3"; message M { reserved 1 to 3; string a = 2; }`, /reserved/],
    ["reserved name", `syntax = "proto3"; message M { reserved "a"; string a = 2; }`, /reserved/],
    ["unknown type", `syntax = "proto3"; message M { Nope a = 1; }`, /unknown type Nope/],
    ["enum must start at 0", `syntax = "proto3"; enum E { A = 1; }`, /must be 0/],
    ["alias without allow_alias", `syntax = "proto3"; enum E { A = 0; B = 0; }`, /allow_alias/],
    ["field number 0", `syntax = "proto3"; message M { string a = 0; }`, /out of range/],
    ["protobuf-reserved number", `syntax = "proto3"; message M { string a = 19000; }`, /reserved for protobuf/],
    ["bad map key", `syntax = "proto3"; message M { map<double, string> m = 1; }`, /invalid map key/],
    ["required label", `syntax = "proto3"; message M { required string a = 1; }`, /not supported/],
    ["imports", `syntax = "proto3"; import "x.proto";`, /imports are not supported/],
    ["unterminated message", `syntax = "proto3"; message M { string a = 1;`, /unterminated message/],
    ["unterminated comment", `syntax = "proto3"; /* x`, /unterminated block comment/],
    ["missing semicolon", `syntax = "proto3"; message M { string a = 1 }`, /expected ";"/],
    ["scalar rpc type", `syntax = "proto3"; service S { rpc A(string) returns (string); }`, /must be message types/],
    ["enum as rpc type", `syntax = "proto3"; enum E { Z = 0; } message M {} service S { rpc A(E) returns (M); }`, /not a message/],
    ["TypeScript name clash", `syntax = "proto3"; message A { message B {} } message A_B {}`, /TypeScript name A_B/],
    ["duplicate type", `syntax = "proto3"; message A {} message A {}`, /duplicate definition/],
    ["stray top-level token", `syntax = "proto3"; package a.b; stray;`, /expected a top-level statement/],
  ];
  for (const [name, src, re] of bad) {
    test(`rejects: ${name}`, () => {
      let err: unknown;
      try {
        parseProto(src, "bad.proto");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtoParseError);
      expect((err as Error).message).toMatch(re);
    });
  }

  test("errors carry file:line:col", () => {
    expect(() => parseProto(`syntax = "proto3";\nmessage M {\n  string a = x;\n}`, "f.proto")).toThrow(/^f\.proto:3:14: expected field number/);
  });
});

describe("generator", () => {
  const src = `syntax = "proto3";
package g;
message Msg {
  message Sub { int32 v = 1; }
  enum Mode { OFF = 0; ON = 1; NEG = -5; }
  optional int32 maybe = 1;
  oneof which { string text = 2; Sub sub = 3; }
  map<int64, Sub> by_id = 4;
  map<bool, Mode> flags = 5;
  repeated Mode modes = 6;
  repeated uint32 raw = 7 [packed = false];
  Mode mode = 8;
  float f = 9;
  fixed64 fx = 10;
  bytes data = 11;
}
message Empty {}
service Svc {
  rpc Get(Msg) returns (Empty);
  rpc Watch(Empty) returns (stream Msg);
  rpc Upload(stream Msg) returns (Empty);
  rpc Chat(stream Msg) returns (stream Msg);
}
`;

  test("output for a feature proto type-checks under the project's strict tsconfig and runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "crio-gen-"));
    try {
      const file = parseProto(src, "g.proto");
      const { code, stats } = generate(file, { sourcePath: "g.proto", sourceText: src, wireImport: join(ROOT, "src/proto/wire.ts") });
      expect(stats).toEqual({ messages: 3, enums: 1, services: [{ name: "Svc", rpcs: 4 }] });
      expect(code).toContain("export interface SvcHandlers {");
      expect(code).toContain("Get(req: Msg, signal: AbortSignal): Promise<Empty>;");
      expect(code).toContain("Watch(req: Empty, send: (msg: Msg) => void, signal: AbortSignal): Promise<void>;");
      expect(code).toContain("Upload(requests: AsyncIterable<Msg>, signal: AbortSignal): Promise<Empty>;");
      expect(code).toContain("Chat(requests: AsyncIterable<Msg>, send: (msg: Msg) => void, signal: AbortSignal): Promise<void>;");
      expect(code).toContain('export const Msg_ModeName: Readonly<Record<number, string>> = { 0: "OFF", 1: "ON", "-5": "NEG" };');
      writeFileSync(join(dir, "g.ts"), code);
      // Use-site checks compiled together with the generated module.
      writeFileSync(
        join(dir, "use.ts"),
        `import { Msg, Msg_Mode, SvcMethods, type Msg_Sub } from "./g.ts";
import type { MessageCodec } from ${JSON.stringify(join(ROOT, "src/proto/wire.ts"))};
const c: MessageCodec<Msg> = SvcMethods.Get.request;
const m: Msg = Msg.create({ maybe: 0, sub: { v: 1 }, byId: { "5": { v: 2 } }, modes: [Msg_Mode.NEG] });
const s: Msg_Sub | undefined = m.sub;
const n: number | undefined = m.maybe;
const big: bigint = m.fx;
export const out = [c, s, n, big, SvcMethods.Chat.requestStream, SvcMethods.Watch.responseStream];
`,
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          extends: join(ROOT, "tsconfig.json"),
          compilerOptions: { typeRoots: [join(ROOT, "node_modules/@types")], types: ["bun"] },
          include: ["g.ts", "use.ts"],
        }),
      );
      const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", join(dir, "tsconfig.json")], { stdout: "pipe", stderr: "pipe" });
      expect(`${tsc.stdout.toString()}${tsc.stderr.toString()}`).toBe("");
      expect(tsc.exitCode).toBe(0);

      const g = (await import(join(dir, "g.ts"))) as Record<string, MessageCodec<Record<string, unknown>>> & Record<string, unknown>;
      const Msg = g.Msg!;
      // proto3 optional: an explicit default is written and survives.
      expect(Buffer.from(Msg.encode({ maybe: 0 })).toString("hex")).toBe("0800");
      expect(Msg.decode(new Uint8Array([0x08, 0x00])).maybe).toBe(0);
      expect(Msg.decode(new Uint8Array(0)).maybe).toBeUndefined();
      // oneof: the last member on the wire wins, the others are cleared.
      const both = new Uint8Array([...Msg.encode({ text: "t" }), ...Msg.encode({ sub: { v: 1 } })]);
      expect(Msg.decode(both)).toMatchObject({ text: undefined, sub: { v: 1 } });
      const back = Msg.decode(Msg.encode({ text: "t" }));
      expect(back).toMatchObject({ text: "t", sub: undefined });
      // Maps with non-string keys and message/enum values; unpacked repeated by option.
      const full = { byId: { "-3": { v: 7 }, "9007199254740993": { v: 0 } }, flags: { true: 1, false: 2 }, modes: [0, -5, 1], raw: [1, 2], mode: 1, f: 0.5, fx: 2n ** 64n - 1n, data: new Uint8Array([1, 2]) };
      expect(Msg.decode(Msg.encode(full))).toMatchObject(full);
      const rawOnly = Buffer.from(Msg.encode({ raw: [1, 2] })).toString("hex");
      expect(rawOnly).toBe("38013802");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("is deterministic for the same input", () => {
    const file1 = parseProto(src, "g.proto");
    const file2 = parseProto(src, "g.proto");
    const a = generate(file1, { sourcePath: "g.proto", sourceText: src }).code;
    const b = generate(file2, { sourcePath: "g.proto", sourceText: src }).code;
    expect(a).toBe(b);
  });

  test("every CRI message has an interface and a codec", () => {
    const code = readFileSync(OUTPUT_PATH, "utf8");
    const file = parseProto(readFileSync(PROTO_PATH, "utf8"));
    const all = (ms: MessageDef[]): MessageDef[] => ms.flatMap((m) => [m, ...all(m.messages)]);
    for (const m of all(file.messages)) {
      expect(code).toContain(`export interface ${m.tsName} {`);
      expect(code).toContain(`export const ${m.tsName}: MessageCodec<${m.tsName}> = defineMessage<${m.tsName}>(`);
    }
  });
});
