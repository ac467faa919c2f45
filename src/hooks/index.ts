// OCI hooks configuration (oci-hooks(5)): load.ts reads hooks_dir, parse.ts validates one file.
// Matching hooks to a container and adding them to its spec is applyHooks in src/spec.
export { loadHooks } from "./load.ts";
export type { LoadedHooks } from "./load.ts";
export { HookFileError, parseHookFile } from "./parse.ts";
