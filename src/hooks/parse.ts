// Parsing and validating one hook definition file (oci-hooks(5) schemas 1.0.0 and the
// deprecated 0.1.0, which is translated to 1.0.0 as containers/common does). Pure: the loader
// (load.ts) reads the files and checks that hook.path exists.
import { OCI_HOOK_STAGES, type OciHook, type OciHookStage } from "../spec/types.ts";
import type { HookDefinition, HookWhen } from "../spec/hooks.ts";

/** A problem with one file; the file is skipped, the others still load. */
export class HookFileError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "HookFileError";
    this.file = file;
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function strings(v: unknown, what: string, file: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new HookFileError(file, `${what} must be an array of strings`);
  return v as string[];
}

function checkRegex(pattern: string, what: string, file: string): void {
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new HookFileError(file, `invalid ${what} ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

function stagesOf(v: unknown, file: string): OciHookStage[] {
  const list = strings(v, "stages", file);
  if (!list || list.length === 0) throw new HookFileError(file, "missing required property: stages");
  for (const s of list) {
    if (!(OCI_HOOK_STAGES as readonly string[]).includes(s)) throw new HookFileError(file, `unknown stage ${JSON.stringify(s)}`);
  }
  return list as OciHookStage[];
}

function validateWhen(when: HookWhen, file: string): void {
  if (when.always === undefined && when.annotations === undefined && when.commands === undefined && when.hasBindMounts === undefined) {
    throw new HookFileError(file, "no when conditions set (need always, annotations, commands or hasBindMounts)");
  }
  for (const [k, v] of Object.entries(when.annotations ?? {})) {
    checkRegex(k, "annotation key", file);
    checkRegex(v, "annotation value", file);
  }
  for (const c of when.commands ?? []) checkRegex(c, "command", file);
}

function validatePath(path: unknown, file: string): string {
  if (typeof path !== "string" || path === "") throw new HookFileError(file, "missing required property: hook.path");
  if (!path.startsWith("/")) throw new HookFileError(file, `hook.path ${JSON.stringify(path)} is not absolute`);
  return path;
}

function parseV1(raw: Json, file: string): HookDefinition {
  if (!isObject(raw.hook)) throw new HookFileError(file, "missing required property: hook");
  const h = raw.hook;
  const hook: OciHook = { path: validatePath(h.path, file) };
  const args = strings(h.args, "hook.args", file);
  if (args) hook.args = args;
  const env = strings(h.env, "hook.env", file);
  if (env) hook.env = env;
  if (h.timeout !== undefined && h.timeout !== null) {
    if (typeof h.timeout !== "number" || !Number.isInteger(h.timeout) || h.timeout <= 0) {
      throw new HookFileError(file, "hook.timeout must be a positive integer (seconds)");
    }
    hook.timeout = h.timeout;
  }
  if (!isObject(raw.when)) throw new HookFileError(file, "missing required property: when");
  const w = raw.when;
  const when: HookWhen = {};
  if (w.always !== undefined) {
    if (typeof w.always !== "boolean") throw new HookFileError(file, "when.always must be a boolean");
    when.always = w.always;
  }
  if (w.hasBindMounts !== undefined) {
    if (typeof w.hasBindMounts !== "boolean") throw new HookFileError(file, "when.hasBindMounts must be a boolean");
    when.hasBindMounts = w.hasBindMounts;
  }
  if (w.annotations !== undefined) {
    if (!isObject(w.annotations) || Object.values(w.annotations).some((v) => typeof v !== "string")) {
      throw new HookFileError(file, "when.annotations must map regular expressions to regular expressions");
    }
    when.annotations = w.annotations as Record<string, string>;
  }
  const commands = strings(w.commands, "when.commands", file);
  if (commands) when.commands = commands;
  validateWhen(when, file);
  return { name: file, hook, when, stages: stagesOf(raw.stages, file) };
}

/** 0.1.0: hook (path), arguments, stage|stages, cmd|cmds, annotation|annotations, hasbindmounts; any condition matches. */
function parseV0(raw: Json, file: string): HookDefinition {
  const one = (a: string, b: string): unknown => {
    if (raw[a] !== undefined && raw[b] !== undefined) throw new HookFileError(file, `cannot set both '${a}' and '${b}'`);
    return raw[a] ?? raw[b];
  };
  if (raw.hook === undefined) throw new HookFileError(file, "missing required property: hook");
  const path = validatePath(raw.hook, file);
  const hook: OciHook = { path };
  const args = strings(raw.arguments, "arguments", file);
  if (args?.length) hook.args = [path, ...args];
  const stages = stagesOf(one("stage", "stages"), file);
  const when: HookWhen = { or: true };
  const cmds = strings(one("cmd", "cmds"), "cmds", file);
  if (cmds?.length) when.commands = cmds;
  const annotations = strings(one("annotation", "annotations"), "annotations", file);
  if (annotations?.length) when.annotations = { ".*": annotations.join("|") };
  if (raw.hasbindmounts !== undefined) {
    if (typeof raw.hasbindmounts !== "boolean") throw new HookFileError(file, "hasbindmounts must be a boolean");
    when.hasBindMounts = raw.hasbindmounts;
  }
  validateWhen(when, file);
  return { name: file, hook, when, stages };
}

/** Parses one hook file's content; `file` is its name (not path), used for ordering and errors. */
export function parseHookFile(file: string, content: string): HookDefinition {
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch (err) {
    throw new HookFileError(file, (err as Error).message);
  }
  if (!isObject(raw)) throw new HookFileError(file, "not a JSON object");
  if (raw.version === "1.0.0") return parseV1(raw, file);
  if (raw.version === "0.1.0" || (raw.version === undefined && typeof raw.hook === "string")) return parseV0(raw, file);
  throw new HookFileError(file, `unrecognized hook version: ${JSON.stringify(raw.version ?? "")}`);
}
