// Wire compatibility with Google's reference implementation (protoc, C++).
//
//  - our parser agrees with protoc's own descriptors of the .proto files;
//  - for every CRI message, a pseudo-random instance encoded by us is byte-identical to
//    `protoc --encode` of the same instance in text format (at most one map entry, since map
//    order is unspecified), and we decode protoc's bytes back to the same value;
//  - with several map entries, `protoc --decode` reads our bytes as it reads its own;
//  - the same for a synthetic proto exercising features CRI does not use.
//
// protoc is required: `apt-get install protobuf-compiler`. Without it these tests fail.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  generate,
  parseProto,
  PROTO_PATH,
  ROOT,
  type EnumDef,
  type FieldDef,
  type MessageDef,
  type ProtoFile,
  type ScalarType,
  type TypeRef,
} from "../../scripts/gen-proto.ts";
import * as cri from "./index.ts";
import { Reader, type MessageCodec } from "./wire.ts";

// ---------------------------------------------------------------------------
// protoc

const PROTOC = Bun.which("protoc");

function requireProtoc(): string {
  if (!PROTOC) {
    throw new Error("protoc not found on PATH: install it with `apt-get install protobuf-compiler` (the wire-compatibility tests need it)");
  }
  return PROTOC;
}

interface ProtoSource {
  includeDir: string;
  file: string; // relative to includeDir
}

const CRI_SOURCE: ProtoSource = { includeDir: join(ROOT, "proto"), file: "runtime/v1/api.proto" };

function runProtoc(args: string[], stdin: Uint8Array, src: ProtoSource): Uint8Array {
  const p = Bun.spawnSync([requireProtoc(), ...args, `-I${src.includeDir}`, src.file], { stdin, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`protoc ${args.join(" ")} failed: ${p.stderr.toString()}`);
  return new Uint8Array(p.stdout);
}

function protocEncode(src: ProtoSource, type: string, text: string): Uint8Array {
  return runProtoc([`--encode=${type}`], new TextEncoder().encode(text), src);
}

function protocDecode(src: ProtoSource, type: string, bytes: Uint8Array): string {
  return new TextDecoder().decode(runProtoc([`--decode=${type}`], bytes, src));
}

function protocDescriptorSet(src: ProtoSource): Uint8Array {
  const out = join(tmp, `descriptor-${src.file.replaceAll("/", "_")}.pb`);
  const p = Bun.spawnSync([requireProtoc(), `-I${src.includeDir}`, `--descriptor_set_out=${out}`, src.file], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`protoc --descriptor_set_out failed: ${p.stderr.toString()}`);
  return new Uint8Array(readFileSync(out));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// ---------------------------------------------------------------------------
// Minimal FileDescriptorSet reader (google/protobuf/descriptor.proto field numbers).

interface RawField {
  no: number;
  int: bigint;
  bytes: Uint8Array;
}

function rawFields(buf: Uint8Array): RawField[] {
  const r = new Reader(buf);
  const out: RawField[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const no = tag >>> 3;
    switch (tag & 7) {
      case 0:
        out.push({ no, int: r.uint64(), bytes: new Uint8Array(0) });
        break;
      case 2:
        out.push({ no, int: 0n, bytes: r.bytes() });
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

const str = (fs: RawField[], no: number): string => new TextDecoder().decode(fs.find((f) => f.no === no)?.bytes ?? new Uint8Array(0));
const num = (fs: RawField[], no: number): number | undefined => {
  const f = fs.find((x) => x.no === no);
  return f ? Number(BigInt.asIntN(64, f.int)) : undefined;
};
const subs = (fs: RawField[], no: number): RawField[][] => fs.filter((f) => f.no === no).map((f) => rawFields(f.bytes));

const DESCRIPTOR_TYPES: Record<number, string> = {
  1: "double",
  2: "float",
  3: "int64",
  4: "uint64",
  5: "int32",
  6: "fixed64",
  7: "fixed32",
  8: "bool",
  9: "string",
  12: "bytes",
  13: "uint32",
  15: "sfixed32",
  16: "sfixed64",
  17: "sint32",
  18: "sint64",
};

/** Canonical summary lines of protoc's view of the file. */
function summarizeDescriptorSet(set: Uint8Array): string[] {
  const lines: string[] = [];
  const file = subs(rawFields(set), 1)[0]!; // FileDescriptorSet.file
  const pkg = str(file, 2);
  // Index message types so map entry types can be looked up by name.
  const entries = new Map<string, RawField[]>();
  const index = (msgs: RawField[][], scope: string): void => {
    for (const m of msgs) {
      const full = `${scope}.${str(m, 1)}`;
      const opts = subs(m, 7)[0];
      if (opts && num(opts, 7) === 1) entries.set(full, m);
      index(subs(m, 3), full);
    }
  };
  index(subs(file, 4), pkg);
  const typeOf = (f: RawField[]): string => {
    const t = num(f, 5)!;
    if (t === 11 || t === 14) return str(f, 6).replace(/^\./, "");
    return DESCRIPTOR_TYPES[t] ?? `type${t}`;
  };
  const enums = (list: RawField[][], scope: string): void => {
    for (const e of list) {
      const values = subs(e, 2).map((v) => `${str(v, 1)}=${num(v, 2) ?? 0}`);
      lines.push(`enum ${scope}.${str(e, 1)}: ${values.join(",")}`);
    }
  };
  const messages = (list: RawField[][], scope: string): void => {
    for (const m of list) {
      const full = `${scope}.${str(m, 1)}`;
      if (entries.has(full)) continue;
      lines.push(`message ${full}`);
      const oneofs = subs(m, 8).map((o) => str(o, 1));
      for (const f of subs(m, 2)) {
        const parts = [`  ${str(f, 1)} = ${num(f, 3)}`];
        const entry = num(f, 5) === 11 ? entries.get(str(f, 6).replace(/^\./, "")) : undefined;
        if (entry) {
          const [k, v] = subs(entry, 2);
          parts.push(`map<${typeOf(k!)}, ${typeOf(v!)}>`);
        } else {
          const proto3Optional = num(f, 17) === 1;
          parts.push(proto3Optional ? "optional" : num(f, 4) === 3 ? "repeated" : "singular", typeOf(f));
          const oneofIndex = num(f, 9);
          if (oneofIndex !== undefined && !proto3Optional) parts.push(`oneof=${oneofs[oneofIndex]}`);
        }
        parts.push(`json=${str(f, 10)}`);
        const opts = subs(f, 8)[0];
        if (opts && num(opts, 2) !== undefined) parts.push(`packed=${num(opts, 2) === 1}`);
        if (opts && num(opts, 3) === 1) parts.push("deprecated");
        lines.push(parts.join(" "));
      }
      messages(subs(m, 3), full);
      enums(subs(m, 4), full);
    }
  };
  messages(subs(file, 4), pkg);
  enums(subs(file, 5), pkg);
  for (const s of subs(file, 6)) {
    lines.push(`service ${pkg}.${str(s, 1)}`);
    for (const m of subs(s, 2)) {
      const cs = num(m, 5) === 1 ? "stream " : "";
      const ss = num(m, 6) === 1 ? "stream " : "";
      lines.push(`  rpc ${str(m, 1)}(${cs}${str(m, 2).replace(/^\./, "")}) returns (${ss}${str(m, 3).replace(/^\./, "")})`);
    }
  }
  return lines.sort();
}

/** The same summary from our parser's model. */
function summarizeModel(file: ProtoFile): string[] {
  const lines: string[] = [];
  const typeName = (t: TypeRef): string => t.scalar ?? t.resolved ?? `?${t.raw}`;
  const enums = (list: EnumDef[]): void => {
    for (const e of list) lines.push(`enum ${e.fullName}: ${e.values.map((v) => `${v.name}=${v.number}`).join(",")}`);
  };
  const messages = (list: MessageDef[]): void => {
    for (const m of list) {
      lines.push(`message ${m.fullName}`);
      for (const f of m.fields) {
        const parts = [`  ${f.name} = ${f.number}`];
        if (f.map) parts.push(`map<${f.map.key}, ${typeName(f.map.value)}>`);
        else {
          parts.push(f.label, typeName(f.type));
          if (f.oneof !== undefined) parts.push(`oneof=${f.oneof}`);
        }
        parts.push(`json=${f.jsonName}`);
        if (f.packed !== undefined) parts.push(`packed=${f.packed}`);
        if (f.deprecated) parts.push("deprecated");
        lines.push(parts.join(" "));
      }
      messages(m.messages);
      enums(m.enums);
    }
  };
  messages(file.messages);
  enums(file.enums);
  for (const s of file.services) {
    lines.push(`service ${s.fullName}`);
    for (const m of s.methods) {
      lines.push(
        `  rpc ${m.name}(${m.clientStreaming ? "stream " : ""}${m.input.resolved}) returns (${m.serverStreaming ? "stream " : ""}${m.output.resolved})`,
      );
    }
  }
  return lines.sort();
}

// ---------------------------------------------------------------------------
// Pseudo-random instances as (JS object, text format) pairs, driven by the parsed model.

class Rand {
  constructor(private seed: number) {}
  int(n: number): number {
    this.seed = (Math.imul(this.seed ^ (this.seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return this.seed % n;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
}

const I32 = [0, 1, -1, 127, 128, 300, 2147483647, -2147483648, -42];
const U32 = [0, 1, 127, 128, 65536, 2147483648, 4294967295];
const I64 = [0n, 1n, -1n, (1n << 53n) + 1n, -(1n << 53n) - 3n, (1n << 63n) - 1n, -(1n << 63n), 1_700_000_000_123_456_789n];
const U64 = [0n, 1n, (1n << 64n) - 1n, (1n << 53n) + 1n, 1n << 63n, 1_700_000_000_123_456_789n];
const F64 = [0, 1.5, -0.25, 1e300, -1e-300, 123456.789, 5e-324];
const F32 = [0, 0.5, -2.25, 1024, 3.4028234663852886e38, 1.401298464324817e-45];
const STRINGS = ["", "a", "héllo ✓ 😀", 'quote" back\\slash\nnl\ttab\u0000nul', "x".repeat(200)];
const BYTES = [new Uint8Array(0), new Uint8Array([0, 1, 2, 255]), new Uint8Array(200).map((_, i) => (i * 37) & 0xff)];

/** Text-format quoting: printable ASCII as is, everything else as octal escapes of the UTF-8 bytes. */
function quote(b: Uint8Array): string {
  let s = '"';
  for (const c of b) {
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) s += String.fromCharCode(c);
    else s += `\\${c.toString(8).padStart(3, "0")}`;
  }
  return `${s}"`;
}

const fmtDouble = (v: number): string => (Object.is(v, -0) ? "-0" : String(v));

function scalarSample(t: ScalarType, rnd: Rand): [unknown, string] {
  switch (t) {
    case "int32":
    case "sint32":
    case "sfixed32": {
      const v = rnd.pick(I32);
      return [v, String(v)];
    }
    case "uint32":
    case "fixed32": {
      const v = rnd.pick(U32);
      return [v, String(v)];
    }
    case "int64":
    case "sint64":
    case "sfixed64": {
      const v = rnd.pick(I64);
      return [v, String(v)];
    }
    case "uint64":
    case "fixed64": {
      const v = rnd.pick(U64);
      return [v, String(v)];
    }
    case "bool": {
      const v = rnd.int(3) !== 0;
      return [v, String(v)];
    }
    case "double": {
      const v = rnd.pick(F64);
      return [v, fmtDouble(v)];
    }
    case "float": {
      const v = rnd.pick(F32);
      return [v, fmtDouble(v)];
    }
    case "string": {
      const v = rnd.pick(STRINGS);
      return [v, quote(new TextEncoder().encode(v))];
    }
    case "bytes": {
      const v = rnd.pick(BYTES);
      return [v, quote(v)];
    }
  }
}

interface Ctx {
  types: Map<string, MessageDef | EnumDef>;
  codecs: Record<string, unknown>;
  rnd: Rand;
  maxMapEntries: number;
  maxDepth: number;
}

function codecOf(ctx: Ctx, m: MessageDef): MessageCodec<Record<string, unknown>> {
  return ctx.codecs[m.tsName] as MessageCodec<Record<string, unknown>>;
}

/** A value of a (non-map) field element type. */
function valueSample(ctx: Ctx, t: TypeRef, depth: number): [unknown, string] {
  if (t.scalar) return scalarSample(t.scalar, ctx.rnd);
  const def = ctx.types.get(t.resolved!)!;
  if (def.kind === "enum") {
    const v = ctx.rnd.pick(def.values);
    return [v.number, v.name];
  }
  const [obj, text] = messageSample(ctx, def, depth + 1);
  return [obj, `{ ${text} }`];
}

function defaultOf(ctx: Ctx, f: FieldDef): unknown {
  if (f.map) return {};
  if (f.label === "repeated") return [];
  if (f.label === "optional" || f.oneof !== undefined) return undefined;
  if (f.type.scalar) {
    const t = f.type.scalar;
    if (t === "string") return "";
    if (t === "bytes") return new Uint8Array(0);
    if (t === "bool") return false;
    if (/64/.test(t) && t !== "double") return 0n;
    return 0;
  }
  return ctx.types.get(f.type.resolved!)!.kind === "enum" ? 0 : undefined;
}

function messageSample(ctx: Ctx, m: MessageDef, depth: number): [Record<string, unknown>, string] {
  const obj: Record<string, unknown> = {};
  const text: string[] = [];
  const { rnd } = ctx;
  const chosenOneof = new Map<string, FieldDef | undefined>();
  for (const name of m.oneofs) {
    const members = m.fields.filter((f) => f.oneof === name);
    chosenOneof.set(name, rnd.int(members.length + 1) === 0 ? undefined : rnd.pick(members));
  }
  for (const f of m.fields) {
    obj[f.jsonName] = defaultOf(ctx, f);
    const isMessage = (t: TypeRef): boolean => !t.scalar && ctx.types.get(t.resolved!)?.kind === "message";
    if (f.oneof !== undefined && chosenOneof.get(f.oneof) !== f) continue;
    if (f.map) {
      const rec: Record<string, unknown> = {};
      const n = rnd.int(ctx.maxMapEntries + 1);
      for (let i = 0; i < n; i++) {
        let key: string;
        let keyText: string;
        if (f.map.key === "string") {
          key = i === 0 ? rnd.pick(["", "k", "héllo", "a.b/c"]) : `key${i}`;
          keyText = quote(new TextEncoder().encode(key));
        } else if (f.map.key === "bool") {
          if (i > 1) break;
          key = i === 0 ? "true" : "false";
          keyText = key;
        } else {
          const [v] = scalarSample(f.map.key, rnd);
          key = String(v);
          if (key in rec) continue;
          keyText = key;
        }
        let value: unknown;
        let valueText: string;
        if (isMessage(f.map.value) && depth >= ctx.maxDepth) {
          value = codecOf(ctx, ctx.types.get(f.map.value.resolved!) as MessageDef).create();
          valueText = "{ }";
        } else {
          [value, valueText] = valueSample(ctx, f.map.value, depth);
        }
        rec[key] = value;
        text.push(`${f.name} { key: ${keyText} value: ${valueText} }`);
      }
      obj[f.jsonName] = rec;
      continue;
    }
    if (f.label === "repeated") {
      if (isMessage(f.type) && depth >= ctx.maxDepth) continue;
      const n = rnd.int(4);
      const arr: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const [v, t] = valueSample(ctx, f.type, depth);
        arr.push(v);
        text.push(isMessage(f.type) ? `${f.name} ${t}` : `${f.name}: ${t}`);
      }
      obj[f.jsonName] = arr;
      continue;
    }
    if (isMessage(f.type)) {
      if (depth >= ctx.maxDepth || (f.oneof === undefined && rnd.int(4) === 0)) continue;
      const [v, t] = valueSample(ctx, f.type, depth);
      obj[f.jsonName] = v;
      text.push(`${f.name} ${t}`);
      continue;
    }
    const hasPresence = f.label === "optional" || f.oneof !== undefined;
    if (hasPresence && f.oneof === undefined && rnd.int(3) === 0) continue;
    const [v, t] = valueSample(ctx, f.type, depth);
    obj[f.jsonName] = v;
    text.push(`${f.name}: ${t}`);
  }
  return [obj, text.join(" ")];
}

function allMessages(list: MessageDef[]): MessageDef[] {
  return list.flatMap((m) => [m, ...allMessages(m.messages)]);
}

function typeTable(file: ProtoFile): Map<string, MessageDef | EnumDef> {
  const types = new Map<string, MessageDef | EnumDef>();
  const msgs = allMessages(file.messages);
  for (const m of msgs) types.set(m.fullName, m);
  for (const e of [...file.enums, ...msgs.flatMap((m) => m.enums)]) types.set(e.fullName, e);
  return types;
}

/** Compares our encoder with protoc --encode and our decoder with protoc's bytes, for every message. */
function checkAllMessages(src: ProtoSource, file: ProtoFile, codecs: Record<string, unknown>, seed: number, rounds: number): number {
  const types = typeTable(file);
  const ctx: Ctx = { types, codecs, rnd: new Rand(seed), maxMapEntries: 1, maxDepth: 3 };
  let checked = 0;
  for (const m of allMessages(file.messages)) {
    const codec = codecOf(ctx, m);
    for (let round = 0; round < rounds; round++) {
      const [obj, text] = messageSample(ctx, m, 0);
      const theirs = protocEncode(src, m.fullName, text);
      const ours = codec.encode(obj);
      if (hex(ours) !== hex(theirs)) {
        throw new Error(`${m.fullName}: encoding differs from protoc\ntext: ${text}\nprotoc: ${hex(theirs)}\nours:   ${hex(ours)}`);
      }
      expect(codec.decode(theirs)).toEqual(obj);
      checked++;
    }
  }
  return checked;
}

/** With several map entries (unspecified order), protoc must read our bytes as it reads its own. */
function checkMapsViaDecode(src: ProtoSource, file: ProtoFile, codecs: Record<string, unknown>, seed: number): number {
  const ctx: Ctx = { types: typeTable(file), codecs, rnd: new Rand(seed), maxMapEntries: 4, maxDepth: 2 };
  let checked = 0;
  for (const m of allMessages(file.messages)) {
    if (!m.fields.some((f) => f.map)) continue;
    const [obj, text] = messageSample(ctx, m, 0);
    const theirs = protocEncode(src, m.fullName, text);
    const ours = codecOf(ctx, m).encode(obj);
    expect(protocDecode(src, m.fullName, ours)).toBe(protocDecode(src, m.fullName, theirs));
    expect(codecOf(ctx, m).decode(theirs)).toEqual(obj);
    checked++;
  }
  return checked;
}

// ---------------------------------------------------------------------------
// Synthetic proto: features the CRI file does not use.

const FEATURES_PROTO = `syntax = "proto3";
package gen.test;
option java_package = "x.y";

/* block comment */
message Outer {
  message Inner {
    enum Color { RED = 0; GREEN = 1; BLUE = -1; }
    Color color = 1;
    sint32 s32 = 2;
    repeated Color colors = 3;
  }
  enum Kind {
    option allow_alias = true;
    KIND_UNSPECIFIED = 0;
    KIND_A = 1;
    KIND_ALIAS = 1 [deprecated = true];
  }
  reserved 3, 5 to 7;
  reserved "old_name";
  double d = 1;
  float f = 2;
  int64 i64 = 4;
  uint64 u64 = 8;
  int32 i32 = 9;
  fixed64 fx64 = 10;
  fixed32 fx32 = 11;
  bool b = 12;
  string s = 13;
  bytes by = 14;
  uint32 u32 = 15;
  sfixed32 sf32 = 16;
  sfixed64 sf64 = 17;
  sint32 si32 = 18;
  sint64 si64 = 19;
  Inner inner = 20;
  repeated Inner inners = 21;
  Kind kind = 22;
  repeated Kind kinds = 23;
  repeated sint64 packed_s64 = 24;
  repeated fixed32 packed_fx32 = 25;
  repeated double packed_d = 26;
  repeated int32 unpacked_i32 = 27 [packed = false];
  repeated bool bools = 28;
  repeated bytes blobs = 29;
  map<int64, string> by_id = 30;
  map<bool, Inner> by_flag = 31;
  map<string, Kind> kinds_by_name = 32;
  map<uint32, bytes> blob_map = 33;
  map<sint32, double> sint_map = 34;
  optional int32 maybe_i32 = 35;
  optional string maybe_s = 36;
  optional Inner.Color maybe_color = 37;
  oneof choice {
    string name = 40;
    Inner detail = 41;
    uint64 number = 42;
  }
  .gen.test.Other other = 43;
  Outer recursive = 44;
  repeated float floats = 45;
  int32 big_field = 536870911;
}

message Other {
  Outer.Inner.Color c = 1;
  map<fixed64, sfixed32> fixed_map = 2;
  map<sint64, Outer.Kind> e_map = 3;
}

message Empty {}

service Svc {
  option deprecated = true;
  rpc Unary(Outer) returns (Other);
  rpc ServerStream(Other) returns (stream Outer) {}
  rpc ClientStream(stream Other) returns (Other) { option deprecated = true; }
  rpc Bidi(stream gen.test.Outer) returns (stream .gen.test.Empty);
}
`;

let tmp = "";
let features: { file: ProtoFile; src: ProtoSource; codecs: Record<string, unknown> };

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "crio-proto-"));
  writeFileSync(join(tmp, "features.proto"), FEATURES_PROTO);
  const file = parseProto(FEATURES_PROTO, "features.proto");
  const { code } = generate(file, { sourcePath: "features.proto", sourceText: FEATURES_PROTO, wireImport: join(ROOT, "src/proto/wire.ts") });
  writeFileSync(join(tmp, "features.ts"), code);
  const codecs = (await import(join(tmp, "features.ts"))) as Record<string, unknown>;
  features = { file, src: { includeDir: tmp, file: "features.proto" }, codecs };
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe("protoc", () => {
  test("protoc is installed (apt-get install protobuf-compiler)", () => {
    expect(() => requireProtoc()).not.toThrow();
  });

  test("our parser agrees with protoc's descriptors of api.proto", () => {
    const ours = summarizeModel(parseProto(readFileSync(PROTO_PATH, "utf8"), "api.proto"));
    const theirs = summarizeDescriptorSet(protocDescriptorSet(CRI_SOURCE));
    expect(ours).toEqual(theirs);
    expect(theirs.filter((l) => l.startsWith("message ")).length).toBe(170);
  });

  test("our parser agrees with protoc's descriptors of the feature proto", () => {
    expect(summarizeModel(features.file)).toEqual(summarizeDescriptorSet(protocDescriptorSet(features.src)));
  });

  test("hand-written CRI messages encode exactly like protoc", () => {
    const cases: Array<[string, string, unknown]> = [
      [
        "PortMapping",
        "protocol: SCTP container_port: -1 host_port: 8080 host_ip: \"::1\"",
        { protocol: cri.Protocol.SCTP, containerPort: -1, hostPort: 8080, hostIp: "::1" },
      ],
      ["ExecSyncResponse", 'stdout: "\\000\\377ok" exit_code: -2147483648', { stdout: new Uint8Array([0, 255, 111, 107]), exitCode: -2147483648 }],
      [
        "LinuxContainerResources",
        'cpu_quota: -1 memory_limit_in_bytes: 9007199254740993 oom_score_adj: -998 hugepage_limits { page_size: "1GB" limit: 18446744073709551615 } unified { key: "memory.max" value: "max" }',
        {
          cpuQuota: -1n,
          memoryLimitInBytes: 9007199254740993n,
          oomScoreAdj: -998n,
          hugepageLimits: [{ pageSize: "1GB", limit: 18446744073709551615n }],
          unified: { "memory.max": "max" },
        },
      ],
      [
        "LinuxSandboxSecurityContext",
        "run_as_user { value: 0 } run_as_group { value: -1 } supplemental_groups: [1, -2, 4294967296] supplemental_groups_policy: Strict seccomp { profile_type: Localhost localhost_ref: \"p.json\" }",
        {
          runAsUser: { value: 0n },
          runAsGroup: { value: -1n },
          supplementalGroups: [1n, -2n, 4294967296n],
          supplementalGroupsPolicy: cri.SupplementalGroupsPolicy.Strict,
          seccomp: { profileType: cri.SecurityProfile_ProfileType.Localhost, localhostRef: "p.json" },
        },
      ],
      ["PortForwardRequest", 'pod_sandbox_id: "p" port: [80, 443, -1]', { podSandboxId: "p", port: [80, 443, -1] }],
      ["PsiData", "Total: 1 Avg10: 0.5 Avg60: -1e300 Avg300: 3.25", { Total: 1n, Avg10: 0.5, Avg60: -1e300, Avg300: 3.25 }],
      ["ContainerConfig", 'CDI_devices { name: "vendor.com/gpu=0" } stop_signal: SIGRTMAX tty: true', { CDIDevices: [{ name: "vendor.com/gpu=0" }], stopSignal: cri.Signal.SIGRTMAX, tty: true }],
      ["Mount", 'uidMappings { host_id: 100000 length: 65536 } image { image: "i" }', { uidMappings: [{ hostId: 100000, containerId: 0, length: 65536 }], image: { image: "i" } }],
      ["PodSandboxStatusResponse", "timestamp: 1700000000123456789 status { created_at: 1 state: SANDBOX_NOTREADY }", { timestamp: 1700000000123456789n, status: { createdAt: 1n, state: 1 } }],
    ];
    for (const [type, text, obj] of cases) {
      const codec = (cri as unknown as Record<string, MessageCodec<unknown>>)[type]!;
      expect(`${type}: ${hex(codec.encode(obj as never))}`).toBe(`${type}: ${hex(protocEncode(CRI_SOURCE, `runtime.v1.${type}`, text))}`);
    }
  });

  test("large nested messages (multi-byte lengths) match protoc", () => {
    const long = "y".repeat(20000);
    const text = `config { metadata { name: "${long}" } hostname: "h" linux { cgroup_parent: "${"z".repeat(200)}" } }`;
    const obj = { config: { metadata: { name: long }, hostname: "h", linux: { cgroupParent: "z".repeat(200) } } };
    expect(hex(cri.RunPodSandboxRequest.encode(obj as never))).toBe(hex(protocEncode(CRI_SOURCE, "runtime.v1.RunPodSandboxRequest", text)));
  });

  test("every CRI message: pseudo-random instances encode identically and decode protoc's bytes", () => {
    const file = parseProto(readFileSync(PROTO_PATH, "utf8"), "api.proto");
    const checked = checkAllMessages(CRI_SOURCE, file, cri as unknown as Record<string, unknown>, 0xc0ffee, 2);
    expect(checked).toBe(340);
  }, 120_000);

  test("CRI messages with several map entries: protoc decodes our bytes like its own", () => {
    const file = parseProto(readFileSync(PROTO_PATH, "utf8"), "api.proto");
    expect(checkMapsViaDecode(CRI_SOURCE, file, cri as unknown as Record<string, unknown>, 7)).toBeGreaterThan(15);
  }, 60_000);

  test("feature proto: all scalar kinds, packed/unpacked, maps, optional, oneof match protoc", () => {
    expect(checkAllMessages(features.src, features.file, features.codecs, 42, 25)).toBe(100);
    expect(checkMapsViaDecode(features.src, features.file, features.codecs, 43)).toBe(2);
  }, 60_000);

  test("feature proto: -0.0, explicit presence of defaults, oneof defaults", () => {
    const Outer = features.codecs.Outer as MessageCodec<Record<string, unknown>>;
    const cases: Array<[string, Record<string, unknown>]> = [
      ["d: -0 f: -0", { d: -0, f: -0 }],
      ["maybe_i32: 0 maybe_s: \"\" maybe_color: RED", { maybeI32: 0, maybeS: "", maybeColor: 0 }],
      ["number: 0", { number: 0n }],
      ["name: \"\"", { name: "" }],
      ["detail { }", { detail: {} }],
      ["inner { color: BLUE colors: [BLUE, GREEN] }", { inner: { color: -1, colors: [-1, 1] } }],
      ["unpacked_i32: [1, -1] packed_s64: [-1, 1]", { unpackedI32: [1, -1], packedS64: [-1n, 1n] }],
    ];
    for (const [text, obj] of cases) {
      expect(`${text} => ${hex(Outer.encode(obj))}`).toBe(`${text} => ${hex(protocEncode(features.src, "gen.test.Outer", text))}`);
    }
  });
});
