// Generates src/proto/runtime-v1.ts from proto/runtime/v1/api.proto.
//
//   node_modules/.bin/bun scripts/gen-proto.ts           write the generated file
//   node_modules/.bin/bun scripts/gen-proto.ts --check   exit 1 if the checked-in file is stale
//
// Contains a small proto3 parser (messages and enums, nested ones included,
// repeated, map<K,V>, optional, oneof, reserved, options, services with
// stream) and a code generator that emits per-message TypeScript interfaces
// and codecs on top of src/proto/wire.ts. No protobuf library is used,
// neither here nor at run time.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

// ---------------------------------------------------------------------------
// Model

export type ScalarType =
  | "double"
  | "float"
  | "int64"
  | "uint64"
  | "int32"
  | "fixed64"
  | "fixed32"
  | "bool"
  | "string"
  | "bytes"
  | "uint32"
  | "sfixed32"
  | "sfixed64"
  | "sint32"
  | "sint64";

interface ScalarInfo {
  /** Wire type of a single value. */
  wt: 0 | 1 | 2 | 5;
  /** TypeScript type. */
  ts: string;
  /** TypeScript default value expression. */
  def: string;
  /** Writer/Reader method name. */
  method: string;
  /** How the proto3 "is default" test is written. */
  test: "truthy" | "float" | "bytes";
}

const SCALARS: Record<ScalarType, ScalarInfo> = {
  double: { wt: 1, ts: "number", def: "0", method: "double", test: "float" },
  float: { wt: 5, ts: "number", def: "0", method: "float", test: "float" },
  int64: { wt: 0, ts: "bigint", def: "0n", method: "int64", test: "truthy" },
  uint64: { wt: 0, ts: "bigint", def: "0n", method: "uint64", test: "truthy" },
  int32: { wt: 0, ts: "number", def: "0", method: "int32", test: "truthy" },
  fixed64: { wt: 1, ts: "bigint", def: "0n", method: "fixed64", test: "truthy" },
  fixed32: { wt: 5, ts: "number", def: "0", method: "fixed32", test: "truthy" },
  bool: { wt: 0, ts: "boolean", def: "false", method: "bool", test: "truthy" },
  string: { wt: 2, ts: "string", def: '""', method: "string", test: "truthy" },
  bytes: { wt: 2, ts: "Uint8Array", def: "new Uint8Array(0)", method: "bytes", test: "bytes" },
  uint32: { wt: 0, ts: "number", def: "0", method: "uint32", test: "truthy" },
  sfixed32: { wt: 5, ts: "number", def: "0", method: "sfixed32", test: "truthy" },
  sfixed64: { wt: 1, ts: "bigint", def: "0n", method: "sfixed64", test: "truthy" },
  sint32: { wt: 0, ts: "number", def: "0", method: "sint32", test: "truthy" },
  sint64: { wt: 0, ts: "bigint", def: "0n", method: "sint64", test: "truthy" },
};

function isScalar(t: string): t is ScalarType {
  return Object.hasOwn(SCALARS, t);
}

const MAP_KEY_TYPES = new Set<string>([
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
]);

/** A field type: a scalar, or a reference resolved to a message or enum. */
export interface TypeRef {
  /** As written in the .proto file. */
  raw: string;
  scalar?: ScalarType;
  /** Fully qualified name (no leading dot) after resolution. */
  resolved?: string;
}

export interface FieldDef {
  name: string;
  /** protoc's json_name: underscores removed, the following letter upper-cased. */
  jsonName: string;
  number: number;
  /** "optional" is proto3 explicit presence. */
  label: "singular" | "optional" | "repeated";
  type: TypeRef;
  map?: { key: ScalarType; value: TypeRef };
  oneof?: string;
  /** Value of a [packed=...] option, when given. */
  packed?: boolean;
  deprecated: boolean;
  line: number;
}

export interface MessageDef {
  kind: "message";
  name: string;
  fullName: string;
  tsName: string;
  fields: FieldDef[];
  oneofs: string[];
  reservedRanges: Array<[number, number]>;
  reservedNames: string[];
  messages: MessageDef[];
  enums: EnumDef[];
  line: number;
}

export interface EnumDef {
  kind: "enum";
  name: string;
  fullName: string;
  tsName: string;
  values: Array<{ name: string; number: number }>;
  allowAlias: boolean;
  reservedRanges: Array<[number, number]>;
  reservedNames: string[];
  line: number;
}

export interface MethodDef {
  name: string;
  input: TypeRef;
  output: TypeRef;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

export interface ServiceDef {
  name: string;
  fullName: string;
  methods: MethodDef[];
}

export interface ProtoFile {
  syntax: string;
  package: string;
  messages: MessageDef[];
  enums: EnumDef[];
  services: ServiceDef[];
}

export class ProtoParseError extends Error {
  override readonly name = "ProtoParseError";
}

// ---------------------------------------------------------------------------
// Tokenizer

interface Token {
  kind: "ident" | "int" | "float" | "str" | "sym" | "eof";
  text: string;
  /** Decoded value of a string literal. */
  value?: string;
  line: number;
  col: number;
}

function tokenize(src: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const err = (msg: string): never => {
    throw new ProtoParseError(`${file}:${line}:${i - lineStart + 1}: ${msg}`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\n") {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) err("unterminated block comment");
      for (let j = i; j < end; j++) {
        if (src[j] === "\n") {
          line++;
          lineStart = j + 1;
        }
      }
      i = end + 2;
      continue;
    }
    const col = i - lineStart + 1;
    if (/[A-Za-z_]/.test(c) || (c === "." && /[A-Za-z_]/.test(src[i + 1] ?? ""))) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_.]/.test(src[j]!)) j++;
      out.push({ kind: "ident", text: src.slice(i, j), line, col });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || ((c === "-" || c === "+" || c === ".") && /[0-9]/.test(src[i + 1] ?? ""))) {
      const m = /^[-+]?(0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|[0-9]+\.)/.exec(src.slice(i));
      if (!m) err("bad number");
      const text = m![0];
      const isFloat = !/^[-+]?0[xX]/.test(text) && /[.eE]/.test(text);
      out.push({ kind: isFloat ? "float" : "int", text, line, col });
      i += text.length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let value = "";
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\n") err("newline in string literal");
        if (src[j] === "\\") {
          const e = src[j + 1] ?? "";
          const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0" };
          value += simple[e] ?? e;
          j += 2;
        } else {
          value += src[j];
          j++;
        }
      }
      if (j >= src.length) err("unterminated string literal");
      out.push({ kind: "str", text: src.slice(i, j + 1), value, line, col });
      i = j + 1;
      continue;
    }
    if ("{}[]()<>=;,:-+".includes(c)) {
      out.push({ kind: "sym", text: c, line, col });
      i++;
      continue;
    }
    err(`unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: "eof", text: "<end of file>", line, col: i - lineStart + 1 });
  return out;
}

// ---------------------------------------------------------------------------
// Parser

const MAX_FIELD_NUMBER = 536870911;

export function toJsonName(name: string): string {
  let out = "";
  let upper = false;
  for (const ch of name) {
    if (ch === "_") {
      upper = true;
      continue;
    }
    out += upper ? ch.toUpperCase() : ch;
    upper = false;
  }
  return out;
}

class Parser {
  private pos = 0;
  private readonly toks: Token[];

  constructor(
    src: string,
    private readonly file: string,
  ) {
    this.toks = tokenize(src, file);
  }

  private peek(offset = 0): Token {
    return this.toks[Math.min(this.pos + offset, this.toks.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (this.pos < this.toks.length - 1) this.pos++;
    return t;
  }

  private fail(msg: string, t: Token = this.peek()): never {
    throw new ProtoParseError(`${this.file}:${t.line}:${t.col}: ${msg} (at ${JSON.stringify(t.text)})`);
  }

  private is(text: string): boolean {
    const t = this.peek();
    return (t.kind === "sym" || t.kind === "ident") && t.text === text;
  }

  private accept(text: string): boolean {
    if (this.is(text)) {
      this.pos++;
      return true;
    }
    return false;
  }

  private expect(text: string): Token {
    if (!this.is(text)) this.fail(`expected ${JSON.stringify(text)}`);
    return this.next();
  }

  private ident(what: string): string {
    const t = this.peek();
    if (t.kind !== "ident") this.fail(`expected ${what}`);
    this.pos++;
    return t.text;
  }

  private simpleName(what: string): string {
    const name = this.ident(what);
    if (name.includes(".")) this.fail(`${what} must not contain dots`);
    return name;
  }

  private int(what: string): number {
    let neg = false;
    if (this.accept("-")) neg = true;
    const t = this.peek();
    if (t.kind !== "int") this.fail(`expected ${what}`);
    this.pos++;
    const v = Number(t.text);
    if (!Number.isSafeInteger(v)) this.fail(`${what} out of range`, t);
    return neg ? -v : v;
  }

  private str(what: string): string {
    const t = this.peek();
    if (t.kind !== "str") this.fail(`expected ${what}`);
    this.pos++;
    let v = t.value ?? "";
    // Adjacent string literals concatenate.
    while (this.peek().kind === "str") v += this.next().value ?? "";
    return v;
  }

  /** Option name: ident, or "(" ident ")" followed by ".ident" parts. */
  private optionName(): string {
    let name = "";
    if (this.accept("(")) {
      name = `(${this.ident("option name")})`;
      this.expect(")");
      if (this.peek().kind === "ident" && this.peek().text.startsWith(".")) name += this.next().text;
    } else {
      name = this.ident("option name");
    }
    return name;
  }

  /** Constant: returns a textual form; aggregates are skipped. */
  private constant(): string {
    const t = this.peek();
    if (t.kind === "str") return this.str("string");
    if (t.kind === "ident") return this.next().text;
    if (t.kind === "int" || t.kind === "float") return this.next().text;
    if (this.is("-") || this.is("+")) {
      const sign = this.next().text;
      const n = this.next();
      if (n.kind !== "int" && n.kind !== "float" && n.kind !== "ident") this.fail("expected number", n);
      return sign + n.text;
    }
    if (this.is("{")) {
      let depth = 0;
      do {
        const x = this.next();
        if (x.kind === "eof") this.fail("unterminated aggregate option value");
        if (x.text === "{" && x.kind === "sym") depth++;
        if (x.text === "}" && x.kind === "sym") depth--;
      } while (depth > 0);
      return "{...}";
    }
    return this.fail("expected constant");
  }

  /** `option name = value;` (the `option` keyword already consumed). */
  private optionStatement(): [string, string] {
    const name = this.optionName();
    this.expect("=");
    const value = this.constant();
    this.expect(";");
    return [name, value];
  }

  /** `[a = b, c = d]` after a field or enum value. */
  private fieldOptions(): Map<string, string> {
    const opts = new Map<string, string>();
    if (!this.accept("[")) return opts;
    do {
      const name = this.optionName();
      this.expect("=");
      opts.set(name, this.constant());
    } while (this.accept(","));
    this.expect("]");
    return opts;
  }

  private reserved(ranges: Array<[number, number]>, names: string[], max: number): void {
    do {
      if (this.peek().kind === "str") {
        names.push(this.str("reserved name"));
        continue;
      }
      const from = this.int("reserved number");
      let to = from;
      if (this.accept("to")) to = this.accept("max") ? max : this.int("reserved range end");
      if (to < from) this.fail("reserved range end before its start");
      ranges.push([from, to]);
    } while (this.accept(","));
    this.expect(";");
  }

  private typeRef(): TypeRef {
    const raw = this.ident("type name");
    return isScalar(raw) ? { raw, scalar: raw } : { raw };
  }

  parseFile(): ProtoFile {
    const file: ProtoFile = { syntax: "", package: "", messages: [], enums: [], services: [] };
    if (this.accept("syntax")) {
      this.expect("=");
      file.syntax = this.str("syntax string");
      this.expect(";");
    }
    if (file.syntax !== "proto3") this.fail('only `syntax = "proto3";` files are supported', this.toks[0]);
    let sawPackage = false;
    while (this.peek().kind !== "eof") {
      if (this.accept(";")) continue;
      if (this.accept("package")) {
        if (sawPackage) this.fail("duplicate package statement");
        file.package = this.ident("package name");
        sawPackage = true;
        this.expect(";");
      } else if (this.accept("option")) {
        this.optionStatement();
      } else if (this.is("import")) {
        this.fail("imports are not supported by this generator");
      } else if (this.accept("message")) {
        file.messages.push(this.message(file.package));
      } else if (this.accept("enum")) {
        file.enums.push(this.enumDef(file.package));
      } else if (this.accept("service")) {
        file.services.push(this.service(file.package));
      } else {
        this.fail("expected a top-level statement (package, option, message, enum, service)");
      }
    }
    return file;
  }

  private message(scope: string): MessageDef {
    const line = this.peek().line;
    const name = this.simpleName("message name");
    const fullName = scope ? `${scope}.${name}` : name;
    const msg: MessageDef = {
      kind: "message",
      name,
      fullName,
      tsName: "",
      fields: [],
      oneofs: [],
      reservedRanges: [],
      reservedNames: [],
      messages: [],
      enums: [],
      line,
    };
    this.expect("{");
    while (!this.accept("}")) {
      if (this.peek().kind === "eof") this.fail(`unterminated message ${name}`);
      if (this.accept(";")) continue;
      if (this.accept("message")) msg.messages.push(this.message(fullName));
      else if (this.accept("enum")) msg.enums.push(this.enumDef(fullName));
      else if (this.accept("option")) this.optionStatement();
      else if (this.accept("reserved")) this.reserved(msg.reservedRanges, msg.reservedNames, MAX_FIELD_NUMBER);
      else if (this.is("extensions") || this.is("extend") || this.is("required") || this.is("group")) {
        this.fail(`${this.peek().text} is not supported in proto3`);
      } else if (this.accept("oneof")) {
        const oneof = this.simpleName("oneof name");
        msg.oneofs.push(oneof);
        this.expect("{");
        while (!this.accept("}")) {
          if (this.accept(";")) continue;
          if (this.accept("option")) {
            this.optionStatement();
            continue;
          }
          if (this.is("repeated") || this.is("optional") || this.is("map")) this.fail("labels and maps are not allowed in a oneof");
          msg.fields.push(this.field("singular", oneof));
        }
      } else if (this.is("map") && this.peek(1).text === "<") {
        msg.fields.push(this.mapField());
      } else if (this.accept("repeated")) {
        msg.fields.push(this.field("repeated"));
      } else if (this.accept("optional")) {
        msg.fields.push(this.field("optional"));
      } else {
        msg.fields.push(this.field("singular"));
      }
    }
    return msg;
  }

  private field(label: FieldDef["label"], oneof?: string): FieldDef {
    const line = this.peek().line;
    const type = this.typeRef();
    const name = this.simpleName("field name");
    this.expect("=");
    const number = this.int("field number");
    const opts = this.fieldOptions();
    this.expect(";");
    const f: FieldDef = { name, jsonName: toJsonName(name), number, label, type, deprecated: opts.get("deprecated") === "true", line };
    if (oneof !== undefined) f.oneof = oneof;
    const packed = opts.get("packed");
    if (packed !== undefined) f.packed = packed === "true";
    return f;
  }

  private mapField(): FieldDef {
    const line = this.peek().line;
    this.expect("map");
    this.expect("<");
    const keyTok = this.peek();
    const key = this.ident("map key type");
    if (!MAP_KEY_TYPES.has(key)) this.fail(`invalid map key type ${key}`, keyTok);
    this.expect(",");
    const value = this.typeRef();
    this.expect(">");
    const name = this.simpleName("field name");
    this.expect("=");
    const number = this.int("field number");
    const opts = this.fieldOptions();
    this.expect(";");
    return {
      name,
      jsonName: toJsonName(name),
      number,
      label: "repeated",
      type: { raw: `map<${key}, ${value.raw}>` },
      map: { key: key as ScalarType, value },
      deprecated: opts.get("deprecated") === "true",
      line,
    };
  }

  private enumDef(scope: string): EnumDef {
    const line = this.peek().line;
    const name = this.simpleName("enum name");
    const e: EnumDef = {
      kind: "enum",
      name,
      fullName: scope ? `${scope}.${name}` : name,
      tsName: "",
      values: [],
      allowAlias: false,
      reservedRanges: [],
      reservedNames: [],
      line,
    };
    this.expect("{");
    while (!this.accept("}")) {
      if (this.peek().kind === "eof") this.fail(`unterminated enum ${name}`);
      if (this.accept(";")) continue;
      if (this.accept("option")) {
        const [k, v] = this.optionStatement();
        if (k === "allow_alias") e.allowAlias = v === "true";
        continue;
      }
      if (this.accept("reserved")) {
        this.reserved(e.reservedRanges, e.reservedNames, 2147483647);
        continue;
      }
      const vname = this.simpleName("enum value name");
      this.expect("=");
      const number = this.int("enum value number");
      this.fieldOptions();
      this.expect(";");
      e.values.push({ name: vname, number });
    }
    return e;
  }

  private service(scope: string): ServiceDef {
    const name = this.simpleName("service name");
    const svc: ServiceDef = { name, fullName: scope ? `${scope}.${name}` : name, methods: [] };
    this.expect("{");
    while (!this.accept("}")) {
      if (this.peek().kind === "eof") this.fail(`unterminated service ${name}`);
      if (this.accept(";")) continue;
      if (this.accept("option")) {
        this.optionStatement();
        continue;
      }
      this.expect("rpc");
      const mname = this.simpleName("rpc name");
      this.expect("(");
      const clientStreaming = this.is("stream") && this.peek(1).kind === "ident" ? (this.next(), true) : false;
      const input = this.typeRef();
      this.expect(")");
      this.expect("returns");
      this.expect("(");
      const serverStreaming = this.is("stream") && this.peek(1).kind === "ident" ? (this.next(), true) : false;
      const output = this.typeRef();
      this.expect(")");
      if (this.accept("{")) {
        while (!this.accept("}")) {
          if (this.accept(";")) continue;
          this.expect("option");
          this.optionStatement();
        }
      } else {
        this.expect(";");
      }
      if (input.scalar || output.scalar) this.fail(`rpc ${mname}: request and response must be message types`);
      svc.methods.push({ name: mname, input, output, clientStreaming, serverStreaming });
    }
    return svc;
  }
}

// ---------------------------------------------------------------------------
// Resolution and validation

type TypeDef = MessageDef | EnumDef;

function allMessages(list: MessageDef[], out: MessageDef[] = []): MessageDef[] {
  for (const m of list) {
    out.push(m);
    allMessages(m.messages, out);
  }
  return out;
}

function allEnums(file: ProtoFile): EnumDef[] {
  const out = [...file.enums];
  for (const m of allMessages(file.messages)) out.push(...m.enums);
  return out;
}

/** Parses and resolves a proto3 file; throws ProtoParseError on any problem. */
export function parseProto(src: string, fileName = "<input>"): ProtoFile {
  const file = new Parser(src, fileName).parseFile();
  const types = new Map<string, TypeDef>();
  const pkgPrefix = file.package ? `${file.package}.` : "";
  const tsNames = new Map<string, string>();
  const register = (t: TypeDef): void => {
    if (types.has(t.fullName)) throw new ProtoParseError(`${fileName}:${t.line}: duplicate definition of ${t.fullName}`);
    types.set(t.fullName, t);
    t.tsName = t.fullName.slice(pkgPrefix.length).replaceAll(".", "_");
  };
  const messages = allMessages(file.messages);
  const enums = allEnums(file);
  for (const m of messages) register(m);
  for (const e of enums) register(e);

  // Exported identifiers must not collide (Outer_Inner vs a top-level Outer_Inner, FooName, ...).
  const claim = (id: string, owner: string): void => {
    const prev = tsNames.get(id);
    if (prev !== undefined) throw new ProtoParseError(`${fileName}: TypeScript name ${id} is used by both ${prev} and ${owner}`);
    tsNames.set(id, owner);
  };
  for (const m of messages) claim(m.tsName, m.fullName);
  for (const e of enums) {
    claim(e.tsName, e.fullName);
    claim(`${e.tsName}Name`, e.fullName);
  }
  for (const s of file.services) {
    claim(`${s.name}Name`, s.fullName);
    claim(`${s.name}Methods`, s.fullName);
    claim(`${s.name}Handlers`, s.fullName);
  }

  const resolve = (ref: TypeRef, scope: string, where: string): void => {
    if (ref.scalar) return;
    let found: string | undefined;
    if (ref.raw.startsWith(".")) {
      if (types.has(ref.raw.slice(1))) found = ref.raw.slice(1);
    } else {
      let s = scope;
      for (;;) {
        const candidate = s ? `${s}.${ref.raw}` : ref.raw;
        if (types.has(candidate)) {
          found = candidate;
          break;
        }
        if (!s) break;
        const dot = s.lastIndexOf(".");
        s = dot < 0 ? "" : s.slice(0, dot);
      }
    }
    if (found === undefined) throw new ProtoParseError(`${where}: unknown type ${ref.raw}`);
    ref.resolved = found;
  };

  for (const m of messages) {
    const numbers = new Map<number, string>();
    const jsonNames = new Map<string, string>();
    for (const f of m.fields) {
      const where = `${fileName}:${f.line}: ${m.fullName}.${f.name}`;
      if (f.number < 1 || f.number > MAX_FIELD_NUMBER) throw new ProtoParseError(`${where}: field number ${f.number} out of range`);
      if (f.number >= 19000 && f.number <= 19999) throw new ProtoParseError(`${where}: field number ${f.number} is reserved for protobuf`);
      const dup = numbers.get(f.number);
      if (dup !== undefined) throw new ProtoParseError(`${where}: field number ${f.number} already used by ${dup}`);
      numbers.set(f.number, f.name);
      const dupJson = jsonNames.get(f.jsonName);
      if (dupJson !== undefined) throw new ProtoParseError(`${where}: JSON name ${f.jsonName} clashes with field ${dupJson}`);
      jsonNames.set(f.jsonName, f.name);
      for (const [a, b] of m.reservedRanges) {
        if (f.number >= a && f.number <= b) throw new ProtoParseError(`${where}: field number ${f.number} is reserved`);
      }
      if (m.reservedNames.includes(f.name)) throw new ProtoParseError(`${where}: field name is reserved`);
      if (f.map) resolve(f.map.value, m.fullName, where);
      else resolve(f.type, m.fullName, where);
      if (f.packed !== undefined && (f.label !== "repeated" || f.map)) throw new ProtoParseError(`${where}: [packed] only applies to repeated scalar fields`);
    }
  }
  for (const e of enums) {
    const where = `${fileName}:${e.line}: enum ${e.fullName}`;
    if (e.values.length === 0) throw new ProtoParseError(`${where}: enum has no values`);
    if (e.values[0]!.number !== 0) throw new ProtoParseError(`${where}: the first value of a proto3 enum must be 0`);
    const seen = new Map<number, string>();
    const names = new Set<string>();
    for (const v of e.values) {
      if (names.has(v.name)) throw new ProtoParseError(`${where}: duplicate value name ${v.name}`);
      names.add(v.name);
      const prev = seen.get(v.number);
      if (prev !== undefined && !e.allowAlias) throw new ProtoParseError(`${where}: ${v.name} reuses number ${v.number} of ${prev} without allow_alias`);
      if (prev === undefined) seen.set(v.number, v.name);
    }
  }
  for (const s of file.services) {
    const names = new Set<string>();
    for (const m of s.methods) {
      const where = `${fileName}: ${s.fullName}.${m.name}`;
      if (names.has(m.name)) throw new ProtoParseError(`${where}: duplicate rpc`);
      names.add(m.name);
      resolve(m.input, file.package, where);
      resolve(m.output, file.package, where);
      for (const ref of [m.input, m.output]) {
        if (types.get(ref.resolved!)?.kind !== "message") throw new ProtoParseError(`${where}: ${ref.raw} is not a message`);
      }
    }
  }
  return file;
}

// ---------------------------------------------------------------------------
// Code generation

export interface GenerateOptions {
  /** Path of the .proto file as shown in the header. */
  sourcePath: string;
  /** Exact text of the .proto file (hashed into the header). */
  sourceText: string;
  /** Import specifier of the wire runtime. */
  wireImport?: string;
}

export interface GenerateResult {
  code: string;
  stats: { messages: number; enums: number; services: Array<{ name: string; rpcs: number }> };
}

class Emitter {
  private readonly lines: string[] = [];
  line(s = ""): void {
    this.lines.push(s);
  }
  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

function tagOf(number: number, wt: number): number {
  return number * 8 + wt;
}

export function generate(file: ProtoFile, opts: GenerateOptions): GenerateResult {
  const types = new Map<string, TypeDef>();
  const messages = allMessages(file.messages);
  const enums = allEnums(file);
  for (const t of [...messages, ...enums]) types.set(t.fullName, t);
  const typeOf = (ref: TypeRef): TypeDef => {
    const t = types.get(ref.resolved ?? "");
    if (!t) throw new Error(`unresolved type ${ref.raw}`);
    return t;
  };

  // Kind of one value (field element or map value).
  type ValueKind = { k: "scalar"; s: ScalarType; info: ScalarInfo } | { k: "enum"; e: EnumDef } | { k: "message"; m: MessageDef };
  const kindOf = (ref: TypeRef): ValueKind => {
    if (ref.scalar) return { k: "scalar", s: ref.scalar, info: SCALARS[ref.scalar] };
    const t = typeOf(ref);
    return t.kind === "enum" ? { k: "enum", e: t } : { k: "message", m: t };
  };
  const tsTypeOf = (v: ValueKind): string => (v.k === "scalar" ? v.info.ts : v.k === "enum" ? v.e.tsName : v.m.tsName);
  const wireTypeOf = (v: ValueKind): number => (v.k === "scalar" ? v.info.wt : v.k === "enum" ? 0 : 2);
  const readExpr = (v: ValueKind): string =>
    v.k === "scalar" ? `r.${v.info.method}()` : v.k === "enum" ? `r.int32() as ${v.e.tsName}` : `r.message(${v.m.tsName})`;
  const writeCall = (v: ValueKind, expr: string): string => (v.k === "scalar" ? `${v.info.method}(${expr})` : `int32(${expr})`);
  const packable = (v: ValueKind): boolean => v.k === "enum" || (v.k === "scalar" && v.info.wt !== 2);

  const e = new Emitter();
  const sha = createHash("sha256").update(opts.sourceText).digest("hex");
  const rpcCounts = file.services.map((s) => ({ name: s.name, rpcs: s.methods.length }));
  const countLine = `${messages.length} messages, ${enums.length} enums; ${rpcCounts.map((s) => `${s.name}: ${s.rpcs} RPCs`).join(", ")}.`;

  e.line(`// Code generated by scripts/gen-proto.ts from ${opts.sourcePath}. DO NOT EDIT.`);
  e.line(`// Regenerate with: node_modules/.bin/bun scripts/gen-proto.ts`);
  e.line(`// Source sha256: ${sha}`);
  e.line(`// Package ${file.package}: ${countLine}`);
  e.line("//");
  e.line("// Per message Foo: `interface Foo` (proto3 semantics, field names are protoc JSON names;");
  e.line("// 64-bit integers are bigint, nested messages are `Foo | undefined`) and `const Foo` codec");
  e.line("// with encode/decode/create. Per enum: a const object, its value type and FooName lookup.");
  e.line("// Per service: a method table (gRPC paths, stream flags, codecs) and a handler interface.");
  e.line("");
  e.line(`import { defineMessage, setEntry, type MessageCodec, type MethodDescriptor, type Reader, type Writer } from "${opts.wireImport ?? "./wire.ts"}";`);

  // Enums.
  for (const en of enums) {
    e.line("");
    e.line(`/** ${en.fullName} */`);
    e.line(`export const ${en.tsName} = {`);
    for (const v of en.values) e.line(`  ${v.name}: ${v.number},`);
    e.line("} as const;");
    e.line(`export type ${en.tsName} = (typeof ${en.tsName})[keyof typeof ${en.tsName}];`);
    const names: string[] = [];
    const seen = new Set<number>();
    for (const v of en.values) {
      if (seen.has(v.number)) continue;
      seen.add(v.number);
      names.push(`${v.number < 0 ? JSON.stringify(String(v.number)) : v.number}: ${JSON.stringify(v.name)}`);
    }
    e.line(`export const ${en.tsName}Name: Readonly<Record<number, string>> = { ${names.join(", ")} };`);
  }

  // Map entry helpers, one pair per distinct key/value type combination.
  const mapHelpers = new Map<string, { key: ScalarType; value: ValueKind }>();
  const mapHelperName = (key: ScalarType, value: ValueKind): string => {
    const id = `${key}_${value.k === "scalar" ? value.s : tsTypeOf(value)}`;
    if (!mapHelpers.has(id)) mapHelpers.set(id, { key, value });
    return id;
  };
  for (const m of messages) for (const f of m.fields) if (f.map) mapHelperName(f.map.key, kindOf(f.map.value));
  if (mapHelpers.size > 0) {
    e.line("");
    e.line("// Map fields: entries are messages with key = 1 and value = 2.");
  }
  for (const [id, { key, value }] of mapHelpers) {
    const kinfo = SCALARS[key];
    const vts = tsTypeOf(value);
    const keyTag = tagOf(1, kinfo.wt);
    const valTag = tagOf(2, wireTypeOf(value));
    const keyToWire = key === "string" ? "k" : key === "bool" ? 'k === "true"' : kinfo.ts === "bigint" ? "BigInt(k)" : "Number(k)";
    const keyDefault = key === "string" ? '""' : key === "bool" ? '"false"' : '"0"';
    const keyFromWire = key === "string" ? "r.string()" : `String(r.${kinfo.method}())`;
    const valDefault = value.k === "scalar" ? value.info.def : value.k === "enum" ? "0" : `${value.m.tsName}.create()`;
    e.line(`function writeMap_${id}(w: Writer, tag: number, o: Record<string, ${vts}>): void {`);
    e.line("  for (const k in o) {");
    e.line("    const p = w.uint32(tag).fork();");
    e.line(`    w.uint32(${keyTag}).${kinfo.method}(${keyToWire});`);
    if (value.k === "message") e.line(`    w.message(${valTag}, ${value.m.tsName}, o[k] ?? {});`);
    else e.line(`    w.uint32(${valTag}).${writeCall(value, `o[k] ?? ${valDefault}`)};`);
    e.line("    w.ldelim(p);");
    e.line("  }");
    e.line("}");
    e.line(`function readMap_${id}(r: Reader, o: Record<string, ${vts}>): void {`);
    e.line("  const end = r.lenEnd();");
    e.line(`  let k = ${keyDefault};`);
    if (value.k === "message") e.line(`  let v: ${vts} | undefined;`);
    else e.line(`  let v: ${vts} = ${valDefault};`);
    e.line("  while (r.pos < end) {");
    e.line("    const t = r.uint32();");
    e.line(`    if (t === ${keyTag}) k = ${keyFromWire};`);
    if (value.k === "message") e.line(`    else if (t === ${valTag}) v = r.message(${value.m.tsName}, v);`);
    else e.line(`    else if (t === ${valTag}) v = ${readExpr(value)};`);
    e.line("    else r.skip(t);");
    e.line("  }");
    e.line("  r.checkEnd(end);");
    e.line(`  setEntry(o, k, v${value.k === "message" ? ` ?? ${valDefault}` : ""});`);
    e.line("}");
  }

  // Messages.
  for (const m of messages) {
    const byNumber = [...m.fields].sort((a, b) => a.number - b.number);
    const presence = (f: FieldDef): boolean => f.label === "optional" || f.oneof !== undefined;
    e.line("");
    e.line(`/** ${m.fullName} */`);
    if (m.fields.length === 0) {
      e.line(`export interface ${m.tsName} {}`);
    } else {
      e.line(`export interface ${m.tsName} {`);
      for (const f of m.fields) {
        let ts: string;
        if (f.map) ts = `Record<string, ${tsTypeOf(kindOf(f.map.value))}>`;
        else {
          const v = kindOf(f.type);
          if (f.label === "repeated") ts = `${tsTypeOf(v)}[]`;
          else if (v.k === "message" || presence(f)) ts = `${tsTypeOf(v)} | undefined`;
          else ts = tsTypeOf(v);
        }
        const decl = f.map
          ? `map<${f.map.key}, ${f.map.value.raw}>`
          : `${f.label === "repeated" ? "repeated " : f.label === "optional" ? "optional " : ""}${f.type.raw}`;
        const oneof = f.oneof !== undefined ? ` (oneof ${f.oneof})` : "";
        e.line(`  /** ${f.deprecated ? "@deprecated " : ""}\`${decl} ${f.name} = ${f.number}\`${oneof} */ ${f.jsonName}: ${ts};`);
      }
      e.line("}");
    }

    e.line(`export const ${m.tsName}: MessageCodec<${m.tsName}> = defineMessage<${m.tsName}>(`);
    e.line(`  ${JSON.stringify(m.fullName)},`);

    // create
    if (m.fields.length === 0) e.line("  () => ({}),");
    else {
      e.line("  (p) => ({");
      for (const f of m.fields) {
        let def: string | undefined;
        if (f.map) def = "{}";
        else if (f.label === "repeated") def = "[]";
        else {
          const v = kindOf(f.type);
          if (v.k === "message" || presence(f)) def = undefined;
          else def = v.k === "enum" ? "0" : v.info.def;
        }
        e.line(`    ${f.jsonName}: p?.${f.jsonName}${def === undefined ? "" : ` ?? ${def}`},`);
      }
      e.line("  }),");
    }

    // write
    if (m.fields.length === 0) e.line("  () => {},");
    else {
      e.line("  (m, w) => {");
      for (const f of byNumber) {
        const acc = `m.${f.jsonName}`;
        if (f.map) {
          const id = mapHelperName(f.map.key, kindOf(f.map.value));
          e.line(`    if (${acc}) writeMap_${id}(w, ${tagOf(f.number, 2)}, ${acc});`);
          continue;
        }
        const v = kindOf(f.type);
        if (f.label === "repeated") {
          if (v.k === "message") {
            e.line(`    if (${acc}) for (const v of ${acc}) w.message(${tagOf(f.number, 2)}, ${v.m.tsName}, v);`);
          } else if (packable(v) && f.packed !== false) {
            e.line(`    if (${acc}?.length) {`);
            e.line(`      const p = w.uint32(${tagOf(f.number, 2)}).fork();`);
            e.line(`      for (const v of ${acc}) w.${writeCall(v, "v")};`);
            e.line("      w.ldelim(p);");
            e.line("    }");
          } else {
            e.line(`    if (${acc}) for (const v of ${acc}) w.uint32(${tagOf(f.number, wireTypeOf(v))}).${writeCall(v, "v")};`);
          }
          continue;
        }
        if (v.k === "message") {
          e.line(`    if (${acc} != null) w.message(${tagOf(f.number, 2)}, ${v.m.tsName}, ${acc});`);
          continue;
        }
        let cond: string;
        if (presence(f)) cond = `${acc} != null`;
        else if (v.k === "enum" || v.info.test === "truthy") cond = acc;
        else if (v.info.test === "bytes") cond = `${acc}?.length`;
        else cond = `${acc} != null && !Object.is(${acc}, 0)`;
        e.line(`    if (${cond}) w.uint32(${tagOf(f.number, wireTypeOf(v))}).${writeCall(v, acc)};`);
      }
      e.line("  },");
    }

    // read
    if (m.fields.length === 0) {
      e.line("  (r, end) => {");
      e.line("    while (r.pos < end) r.skip(r.uint32());");
      e.line("  },");
    } else {
      e.line("  (r, end, m) => {");
      e.line("    while (r.pos < end) {");
      e.line("      const t = r.uint32();");
      e.line("      switch (t) {");
      for (const f of byNumber) {
        const acc = `m.${f.jsonName}`;
        if (f.map) {
          const id = mapHelperName(f.map.key, kindOf(f.map.value));
          e.line(`        case ${tagOf(f.number, 2)}: readMap_${id}(r, ${acc}); break;`);
          continue;
        }
        const v = kindOf(f.type);
        const clearOthers =
          f.oneof !== undefined
            ? m.fields
                .filter((o) => o.oneof === f.oneof && o !== f)
                .map((o) => ` m.${o.jsonName} = undefined;`)
                .join("")
            : "";
        if (f.label === "repeated") {
          if (packable(v)) {
            e.line(`        case ${tagOf(f.number, 2)}: {`);
            e.line("          const e = r.lenEnd();");
            e.line(`          while (r.pos < e) ${acc}.push(${readExpr(v)});`);
            e.line("          r.checkEnd(e);");
            e.line("          break;");
            e.line("        }");
            e.line(`        case ${tagOf(f.number, wireTypeOf(v))}: ${acc}.push(${readExpr(v)}); break;`);
          } else {
            e.line(`        case ${tagOf(f.number, wireTypeOf(v))}: ${acc}.push(${readExpr(v)}); break;`);
          }
          continue;
        }
        if (v.k === "message") {
          e.line(`        case ${tagOf(f.number, 2)}: ${acc} = r.message(${v.m.tsName}, ${acc});${clearOthers} break;`);
          continue;
        }
        e.line(`        case ${tagOf(f.number, wireTypeOf(v))}: ${acc} = ${readExpr(v)};${clearOthers} break;`);
      }
      e.line("        default: r.skip(t);");
      e.line("      }");
      e.line("    }");
      e.line("  },");
    }
    e.line(");");
  }

  // Services.
  for (const s of file.services) {
    e.line("");
    e.line(`/** ${s.fullName} */`);
    e.line(`export const ${s.name}Name = ${JSON.stringify(s.fullName)};`);
    e.line("");
    e.line(`/** Methods of ${s.fullName}, keyed by RPC name. */`);
    e.line(`export const ${s.name}Methods = {`);
    for (const rpc of s.methods) {
      const req = typeOf(rpc.input).tsName;
      const res = typeOf(rpc.output).tsName;
      e.line(
        `  ${rpc.name}: { name: ${JSON.stringify(rpc.name)}, path: ${JSON.stringify(`/${s.fullName}/${rpc.name}`)}, ` +
          `requestStream: ${rpc.clientStreaming}, responseStream: ${rpc.serverStreaming}, request: ${req}, response: ${res} },`,
      );
    }
    e.line("} as const satisfies Record<string, MethodDescriptor<unknown, unknown>>;");
    e.line("");
    e.line(`/**`);
    e.line(` * Server-side implementation of ${s.fullName}. Unary RPCs resolve to the response;`);
    e.line(" * server-streaming RPCs call `send` per message and resolve when the stream is complete.");
    e.line(" * `signal` aborts when the client cancels or the deadline passes.");
    e.line(" */");
    e.line(`export interface ${s.name}Handlers {`);
    for (const rpc of s.methods) {
      const req = typeOf(rpc.input).tsName;
      const res = typeOf(rpc.output).tsName;
      const reqParam = rpc.clientStreaming ? `requests: AsyncIterable<${req}>` : `req: ${req}`;
      if (rpc.serverStreaming) {
        e.line(`  ${rpc.name}(${reqParam}, send: (msg: ${res}) => void, signal: AbortSignal): Promise<void>;`);
      } else {
        e.line(`  ${rpc.name}(${reqParam}, signal: AbortSignal): Promise<${res}>;`);
      }
    }
    e.line("}");
  }

  return {
    code: e.text(),
    stats: { messages: messages.length, enums: enums.length, services: rpcCounts },
  };
}

// ---------------------------------------------------------------------------
// CLI

export const ROOT = join(dirname(new URL(import.meta.url).pathname), "..");
export const PROTO_PATH = join(ROOT, "proto/runtime/v1/api.proto");
export const OUTPUT_PATH = join(ROOT, "src/proto/runtime-v1.ts");

/** Generates the TypeScript module for the checked-in proto file (no file is written). */
export function generateRuntimeV1(): GenerateResult {
  const sourceText = readFileSync(PROTO_PATH, "utf8");
  const sourcePath = relative(ROOT, PROTO_PATH);
  const file = parseProto(sourceText, sourcePath);
  return generate(file, { sourcePath, sourceText });
}

function main(argv: string[]): number {
  const check = argv.includes("--check");
  const result = generateRuntimeV1();
  const outRel = relative(ROOT, OUTPUT_PATH);
  if (check) {
    let current = "";
    try {
      current = readFileSync(OUTPUT_PATH, "utf8");
    } catch {
      // missing counts as stale
    }
    if (current !== result.code) {
      console.error(`${outRel} is stale; run: node_modules/.bin/bun scripts/gen-proto.ts`);
      return 1;
    }
    console.log(`${outRel} is up to date`);
  } else {
    writeFileSync(OUTPUT_PATH, result.code);
    console.log(`wrote ${outRel} (${result.code.length} bytes)`);
  }
  const { stats } = result;
  console.log(`messages: ${stats.messages}`);
  console.log(`enums: ${stats.enums}`);
  for (const s of stats.services) console.log(`${s.name}: ${s.rpcs} RPCs`);
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
