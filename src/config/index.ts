// The configuration module: one schema (schema.ts) from which defaults, loading, `crio config`
// output, command-line flags and man pages are derived.
export * from "./schema.ts";
export { loadConfig, reloadConfig, cloneConfig, type LoadOptions, type LoadResult, type FlagInput } from "./load.ts";
export { renderConfig, configToToml, tomlString, type RenderOptions } from "./render.ts";
export { flagDefs, flagForKey, flagValueType, type FlagDef, type FlagKind } from "./flags.ts";
export { renderCrioConfMan, renderCrioConfDMan, renderCrioMan } from "./man.ts";
export { readStorageDefaults, storageConfPath } from "./storage-conf.ts";
export { nodeFs, rootedFs, walkDropIns, type ConfigFs, type EntryKind } from "./fs.ts";
export { parseGoDuration, formatGoDuration, canonicalDuration, durationToMs } from "./duration.ts";
