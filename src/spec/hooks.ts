// OCI hooks from hooks_dir (oci-hooks(5), containers/common pkg/hooks): which loaded hook
// definitions apply to a container and where they go in spec.hooks. Loading and validating the
// files is src/hooks; this part is pure.
import { InvalidArgumentError } from "../errors.ts";
import type { OciHook, OciHookStage, OciSpec } from "./types.ts";

/** The `when` object of a 1.0.0 hook definition. */
export interface HookWhen {
  always?: boolean;
  /** Key regex → value regex; matches when some annotation matches both. */
  annotations?: Record<string, string>;
  /** Regexes matched against process.args[0]; one must match. */
  commands?: string[];
  /** Matches when true and the request has bind mounts. */
  hasBindMounts?: boolean;
  /** Match when any condition holds instead of all (the translation of 0.1.0 files). */
  or?: boolean;
}

/** One validated hook definition (a *.json file of a hooks directory). */
export interface HookDefinition {
  /** The file name: the injection order and the key later directories mask. */
  name: string;
  hook: OciHook;
  when: HookWhen;
  stages: OciHookStage[];
}

export interface HookMatchContext {
  /** The container's annotations, with the pod's (CRI-O merges both, the pod's winning). */
  annotations: Readonly<Record<string, string>>;
  /** The request has host bind mounts (CRI-O: any CRI mount). */
  hasBindMounts: boolean;
}

/**
 * Regexes are POSIX EREs in the format; JavaScript's syntax agrees on everything the hooks in
 * the wild use (anchors, classes, alternation, repetition). Matching is unanchored, as Go's.
 */
function regex(pattern: string, what: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(pattern)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether a hook's `when` holds for the container (all conditions, or any with `or`). */
export function hookMatches(when: HookWhen, args: readonly string[], ctx: HookMatchContext): boolean {
  const results: boolean[] = [];
  if (when.always !== undefined) results.push(when.always);
  if (when.hasBindMounts !== undefined) results.push(when.hasBindMounts && ctx.hasBindMounts);
  for (const [keyPattern, valuePattern] of Object.entries(when.annotations ?? {})) {
    const k = regex(keyPattern, "annotation key");
    const v = regex(valuePattern, "annotation value");
    results.push(Object.entries(ctx.annotations).some(([key, value]) => k.test(key) && v.test(value)));
  }
  if (when.commands?.length) {
    const command = args[0];
    if (command === undefined) throw new InvalidArgumentError("process.args must have at least one entry to match hook commands");
    results.push(when.commands.some((c) => regex(c, "command").test(command)));
  }
  if (results.length === 0) return false;
  return when.or ? results.some(Boolean) : results.every(Boolean);
}

/** Code-point order of the lower-cased file names, as oci-hooks(5) defines the injection order. */
function byName(a: HookDefinition, b: HookDefinition): number {
  const x = a.name.toLowerCase();
  const y = b.name.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The spec with the matching hooks appended to its stages (after any hooks it already has), in
 * file-name order. The input spec is not changed.
 */
export function applyHooks(spec: OciSpec, hooks: readonly HookDefinition[], ctx: HookMatchContext): OciSpec {
  const matching = [...hooks].sort(byName).filter((h) => hookMatches(h.when, spec.process.args, ctx));
  if (matching.length === 0) return spec;
  const out = { ...(spec.hooks ?? {}) };
  for (const h of matching) {
    for (const stage of h.stages) {
      out[stage] = [...(out[stage] ?? []), structuredClone(h.hook)];
    }
  }
  return { ...spec, hooks: out };
}
