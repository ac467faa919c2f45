import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import type { ConfigFs } from "../config/fs.ts";
import { ConfigError, GrpcCode, InvalidArgumentError } from "../errors.ts";
import { formatReference, parseReference } from "./reference.ts";
import {
  BlockedRegistryError,
  crioShortNameMode,
  findRegistry,
  loadRegistriesConf,
  localCandidates,
  pullSources,
  resolveShortName,
  type RegistriesConf,
} from "./registries-conf.ts";

const D256 = `sha256:${"ab".repeat(32)}`;

/** An in-memory file system: absolute path → contents. Directories are implied. */
function memFs(files: Record<string, string>): ConfigFs {
  const dirs = new Set<string>();
  for (const f of Object.keys(files)) for (let d = path.dirname(f); d !== "/"; d = path.dirname(d)) dirs.add(d);
  return {
    readFileIfExists: (p) => files[p],
    kind: (p) => (p in files ? "file" : dirs.has(p) ? "dir" : undefined),
    isSymlink: () => false,
    readdir: (p) => [...new Set(Object.keys(files).filter((f) => path.dirname(f) === p).map((f) => path.basename(f)))],
  };
}

const MAIN = "/etc/containers/registries.conf";
const DIR = "/etc/containers/registries.conf.d";

function load(files: Record<string, string>, extra: { required?: boolean; shortNameAliasesPath?: string } = {}): RegistriesConf {
  return loadRegistriesConf({ path: MAIN, dir: DIR, fs: memFs(files), shortNameAliasesPath: extra.shortNameAliasesPath ?? "", ...(extra.required ? { required: true } : {}) });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const refs = (xs: readonly { reference: unknown }[]) => xs.map((x) => formatReference(x.reference as never));

describe("loading and merging", () => {
  test("no files: empty configuration with upstream defaults", () => {
    const c = load({});
    expect(c.registries).toEqual([]);
    expect(c.unqualifiedSearchRegistries).toEqual([]);
    expect(c.shortNameMode).toBe("permissive");
    expect(c.credentialHelpers).toEqual(["containers-auth.json"]);
    expect(c.files).toEqual([]);
  });

  test("a missing main file is an error only when required", () => {
    expect(configError(() => load({}, { required: true })).source).toBe(MAIN);
  });

  test("drop-ins in lexical order override scalars, merge registries by prefix and aliases by key", () => {
    const c = load({
      [MAIN]: `
unqualified-search-registries = ["main.example.com"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json", "pass"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"busybox" = "docker.io/library/busybox"
[[registry]]
location = "quay.io"
insecure = true
[[registry]]
location = "example.com"
`,
      [`${DIR}/20-b.conf`]: `
short-name-mode = "disabled"
[aliases]
"busybox" = ""
"alpine" = "docker.io/alpine"
[[registry]]
location = "quay.io"
blocked = true
`,
      [`${DIR}/10-a.conf`]: `
unqualified-search-registries = ["a.example.com", "b.example.com"]
short-name-mode = "permissive"
`,
      [`${DIR}/30-ignored.txt`]: `this is not read`,
    });
    expect(c.files).toEqual([MAIN, `${DIR}/10-a.conf`, `${DIR}/20-b.conf`]);
    expect(c.unqualifiedSearchRegistries).toEqual(["a.example.com", "b.example.com"]);
    expect(c.unqualifiedSearchRegistriesSource).toBe(`${DIR}/10-a.conf`);
    expect(c.shortNameMode).toBe("disabled");
    expect(c.credentialHelpers).toEqual(["containers-auth.json", "pass"]);
    expect(c.registries.map((r) => [r.prefix, r.blocked, r.insecure])).toEqual([
      ["example.com", false, false],
      ["quay.io", true, false], // replaced wholesale by the later entry with the same prefix
    ]);
    expect(c.aliases.get("fedora")?.value && formatReference(c.aliases.get("fedora")!.value!)).toBe("registry.fedoraproject.org/fedora");
    expect(c.aliases.get("busybox")?.value).toBeNull(); // reset by a drop-in
    expect(c.aliases.get("alpine")?.value && formatReference(c.aliases.get("alpine")!.value!)).toBe("docker.io/library/alpine");
  });

  test("an empty unqualified-search-registries in a drop-in clears the list", () => {
    const c = load({ [MAIN]: `unqualified-search-registries = ["a.io"]`, [`${DIR}/x.conf`]: `unqualified-search-registries = []` });
    expect(c.unqualifiedSearchRegistries).toEqual([]);
  });

  test("within a file the first entry for a prefix wins; entries are sorted by prefix", () => {
    const c = load({
      [MAIN]: `
[[registry]]
prefix = "z.io"
location = "first.io"
[[registry]]
prefix = "z.io"
location = "second.io"
[[registry]]
location = "a.io"
`,
    });
    expect(c.registries.map((r) => [r.prefix, r.location])).toEqual([
      ["a.io", "a.io"],
      ["z.io", "first.io"],
    ]);
  });

  test("v1 format is converted; mixing with v2 or using it in a drop-in is an error", () => {
    const c = load({
      [MAIN]: `
[registries.search]
registries = ["docker.io", "quay.io"]
[registries.insecure]
registries = ["localhost:5000"]
[registries.block]
registries = ["evil.example.com"]
`,
    });
    expect(c.unqualifiedSearchRegistries).toEqual(["docker.io", "quay.io"]);
    expect(c.registries.map((r) => [r.prefix, r.insecure, r.blocked])).toEqual([
      ["evil.example.com", false, true],
      ["localhost:5000", true, false],
    ]);
    expect(configError(() => load({ [MAIN]: `unqualified-search-registries = ["a.io"]\n[registries.search]\nregistries = ["b.io"]` })).message).toMatch(/mixing/);
    const e = configError(() => load({ [`${DIR}/old.conf`]: `[registries.search]\nregistries = ["b.io"]` }));
    expect(e.source).toBe(`${DIR}/old.conf`);
    expect(e.message).toMatch(/v2 format/);
  });

  const bad: [string, string, RegExp][] = [
    ["invalid TOML", `[[registry]\nlocation = "x"`, /not valid TOML/],
    ["scheme in location", `[[registry]]\nlocation = "https://quay.io"`, /URI schemes/],
    ["no location or prefix", `[[registry]]\ninsecure = true`, /both location and prefix are unset/],
    ["non-wildcard prefix without location", `[[registry]]\nprefix = "quay.io"`, /location is unset/],
    ["wildcard with a port", `[[registry]]\nprefix = "*.example.com:5000"\nlocation = "x.io"`, /wildcard prefix/],
    ["wildcard with a namespace", `[[registry]]\nprefix = "*.example.com/ns"\nlocation = "x.io"`, /wildcard prefix/],
    ["pull-from-mirror on the primary", `[[registry]]\nlocation = "q.io"\npull-from-mirror = "all"`, /must not be set for the primary/],
    ["bad pull-from-mirror", `[[registry]]\nlocation = "q.io"\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "sometimes"`, /unsupported value/],
    ["mirror without location", `[[registry]]\nlocation = "q.io"\n[[registry.mirror]]\ninsecure = true`, /mirror location is unset/],
    [
      "digest-only plus pull-from-mirror",
      `[[registry]]\nlocation = "q.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "tag-only"`,
      /at the same time/,
    ],
    ["conflicting insecure", `[[registry]]\nprefix = "a.io/x"\nlocation = "q.io"\ninsecure = true\n[[registry]]\nprefix = "a.io/y"\nlocation = "q.io"`, /conflicting "insecure"/],
    ["wrong type", `[[registry]]\nlocation = "q.io"\ninsecure = "yes"`, /true or false/],
    ["bad short-name-mode", `short-name-mode = "prompt"`, /invalid short-name mode/],
    ["search registry with a namespace", `unqualified-search-registries = ["quay.io/ns"]`, /host\[:port\]/],
    ["alias with a tag", `[aliases]\n"x" = "quay.io/x:1"`, /must not contain a tag/],
    ["alias to a short name", `[aliases]\n"x" = "other/x"`, /must contain registry/],
    ["alias name with a registry", `[aliases]\n"quay.io/x" = "quay.io/x"`, /must not contain a registry/],
  ];
  for (const [name, text, why] of bad) {
    test(`error: ${name} (names the file)`, () => {
      const e = configError(() => load({ [`${DIR}/50-bad.conf`]: text }));
      expect(e.message).toMatch(why);
      expect(e.source).toBe(`${DIR}/50-bad.conf`);
    });
  }

  test("all bad aliases are reported at once", () => {
    const e = configError(() => load({ [MAIN]: `[aliases]\n"a" = "quay.io/a:1"\n"b" = "b"` }));
    expect(e.message).toMatch(/"quay\.io\/a:1".*; .*"b"/);
  });

  test("the machine-written short-name-aliases.conf takes precedence", () => {
    const c = load(
      { [MAIN]: `[aliases]\n"app" = "quay.io/conf/app"`, "/var/cache/containers/short-name-aliases.conf": `[aliases]\n"app" = "quay.io/user/app"` },
      { shortNameAliasesPath: "/var/cache/containers/short-name-aliases.conf" },
    );
    expect(resolveShortName(c, "app").candidates.map(formatReference)).toEqual(["quay.io/user/app:latest"]);
  });
});

describe("findRegistry and pullSources", () => {
  const conf = load({
    [MAIN]: `
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror-a.local:5000"
insecure = true
[[registry.mirror]]
location = "mirror-b.local/dockerhub"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror-c.local"
pull-from-mirror = "tag-only"

[[registry]]
prefix = "docker.io/library"
location = "lib-proxy.local/library"

[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.local"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"

[[registry]]
location = "blocked.io"
blocked = true

[[registry]]
prefix = "*.wild.io"
location = "wild-mirror.local"

[[registry]]
prefix = "*.direct.io"
insecure = true
`,
  });

  test("longest prefix wins, at component boundaries only", () => {
    expect(findRegistry(conf, parseReference("docker.io/library/busybox"))?.prefix).toBe("docker.io/library");
    expect(findRegistry(conf, parseReference("docker.io/user/app"))?.prefix).toBe("docker.io");
    expect(findRegistry(conf, "example.com/foo")?.prefix).toBe("example.com/foo");
    expect(findRegistry(conf, "example.com/foobar")).toBeUndefined();
    expect(findRegistry(conf, "quay.io.evil.com/x")).toBeUndefined();
    expect(findRegistry(conf, "gcr.io/x")).toBeUndefined();
  });

  test("wildcard prefixes match subdomains, not the bare domain", () => {
    expect(findRegistry(conf, "a.wild.io/x")?.prefix).toBe("*.wild.io");
    expect(findRegistry(conf, "a.b.wild.io:5000/x")?.prefix).toBe("*.wild.io");
    expect(findRegistry(conf, "wild.io/x")).toBeUndefined();
    expect(findRegistry(conf, "notwild.io/x")).toBeUndefined();
  });

  test("a tag pull uses the all and tag-only mirrors, then the primary", () => {
    const s = pullSources(conf, parseReference("docker.io/user/app:1"));
    expect(s.map((x) => [x.location, x.insecure, x.mirror])).toEqual([
      ["mirror-a.local:5000", true, true],
      ["mirror-c.local", false, true],
      ["docker.io", false, false],
    ]);
    expect(refs(s)).toEqual(["mirror-a.local:5000/user/app:1", "mirror-c.local/user/app:1", "docker.io/user/app:1"]);
  });

  test("a digest pull uses the all and digest-only mirrors, rewritten onto the mirror path", () => {
    const s = pullSources(conf, parseReference(`docker.io/user/app@${D256}`));
    expect(refs(s)).toEqual([`mirror-a.local:5000/user/app@${D256}`, `mirror-b.local/dockerhub/user/app@${D256}`, `docker.io/user/app@${D256}`]);
  });

  test("mirror-by-digest-only keeps tag pulls on the primary", () => {
    expect(refs(pullSources(conf, parseReference("quay.io/x/y:1")))).toEqual(["quay.io/x/y:1"]);
    expect(refs(pullSources(conf, parseReference(`quay.io/x/y@${D256}`)))).toEqual([`quay-mirror.local/x/y@${D256}`, `quay.io/x/y@${D256}`]);
  });

  test("prefix to location rewriting", () => {
    expect(refs(pullSources(conf, parseReference("example.com/foo/img:v")))).toEqual(["internal.example.com/bar/img:v"]);
    expect(refs(pullSources(conf, parseReference("busybox:1")))).toEqual(["lib-proxy.local/library/busybox:1"]);
    expect(refs(pullSources(conf, parseReference("x.wild.io/ns/img:v")))).toEqual(["wild-mirror.local/ns/img:v"]);
  });

  test("a wildcard entry without a location pulls from the host itself with its settings", () => {
    const s = pullSources(conf, parseReference("reg.direct.io/ns/img:v"));
    expect(s.map((x) => [x.location, x.insecure, formatReference(x.reference)])).toEqual([["reg.direct.io", true, "reg.direct.io/ns/img:v"]]);
  });

  test("an unconfigured registry is its own only source", () => {
    expect(pullSources(conf, parseReference("gcr.io/x:1")).map((x) => [x.location, x.insecure, x.mirror])).toEqual([["gcr.io", false, false]]);
  });

  test("a blocked registry is refused with PERMISSION_DENIED naming it and the configuration", () => {
    let err: unknown;
    try {
      pullSources(conf, parseReference("blocked.io/x:1"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BlockedRegistryError);
    expect((err as BlockedRegistryError).code).toBe(GrpcCode.PERMISSION_DENIED);
    expect((err as Error).message).toBe(`registry blocked.io is blocked in ${MAIN}, ${DIR}`);
  });

  test("a rewrite that is not a canonical reference is a clear error", () => {
    const c = load({ [MAIN]: `[[registry]]\nprefix = "quay.io/x"\nlocation = "docker.io"` });
    expect(() => pullSources(c, parseReference("quay.io/x/img:1"))).toThrow(/invalid reference/);
  });
});

describe("short names", () => {
  const conf = (mode = "") =>
    load({
      [MAIN]: `
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
${mode ? `short-name-mode = "${mode}"` : ""}
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"library/busybox" = "quay.io/prometheus/busybox"
"gone" = ""
`,
    });
  const cands = (c: RegistriesConf, s: string, m?: "enforcing" | "permissive" | "disabled") => resolveShortName(c, s, m).candidates.map(formatReference);

  test("a fully-qualified name is its own candidate, tagged latest", () => {
    const r = resolveShortName(conf(), "quay.io/x/y", "enforcing");
    expect(r.rationale).toBe("fully-qualified");
    expect(r.candidates.map(formatReference)).toEqual(["quay.io/x/y:latest"]);
    expect(cands(conf(), "localhost/img:1", "enforcing")).toEqual(["localhost/img:1"]);
    expect(cands(conf(), `docker.io/busybox:1@${D256}`, "enforcing")).toEqual([`docker.io/library/busybox@${D256}`]);
  });

  test("an alias wins, keeping the tag or digest, even under enforcing", () => {
    const r = resolveShortName(conf(), "fedora:39", "enforcing");
    expect(r.rationale).toBe("alias");
    expect(r.candidates.map(formatReference)).toEqual(["registry.fedoraproject.org/fedora:39"]);
    expect(r.alias?.source).toBe(MAIN);
    expect(r.description).toContain("alias");
    expect(cands(conf(), `fedora@${D256}`, "enforcing")).toEqual([`registry.fedoraproject.org/fedora@${D256}`]);
    expect(cands(conf(), "library/busybox", "enforcing")).toEqual(["quay.io/prometheus/busybox:latest"]);
  });

  test("enforcing with several search registries and no alias is ambiguous", () => {
    let err: unknown;
    try {
      resolveShortName(conf(), "busybox", "enforcing");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    const msg = (err as Error).message;
    expect(msg).toContain("ambiguous");
    expect(msg).toContain("registry.fedoraproject.org/busybox:latest");
    expect(msg).toContain("docker.io/library/busybox:latest");
    // A reset alias ("") does not resolve.
    expect(() => resolveShortName(conf(), "gone", "enforcing")).toThrow(/ambiguous/);
  });

  test("permissive and disabled return every search registry in order", () => {
    for (const m of ["permissive", "disabled"] as const) {
      expect(cands(conf(), "busybox:1", m)).toEqual(["registry.fedoraproject.org/busybox:1", "docker.io/library/busybox:1"]);
    }
  });

  test("the files' mode applies when the caller gives none (default permissive)", () => {
    expect(cands(conf(), "busybox")).toHaveLength(2);
    expect(() => resolveShortName(conf("enforcing"), "busybox")).toThrow(/ambiguous/);
    expect(cands(conf("enforcing"), "busybox", "disabled")).toHaveLength(2); // the caller overrides
  });

  test("a single search registry is never ambiguous", () => {
    const c = load({ [MAIN]: `unqualified-search-registries = ["docker.io"]\nshort-name-mode = "enforcing"` });
    expect(cands(c, "busybox")).toEqual(["docker.io/library/busybox:latest"]);
  });

  test("no alias and no search registries is an error naming the name", () => {
    expect(() => resolveShortName(load({}), "busybox", "disabled")).toThrow(/"busybox" did not resolve to an alias and no unqualified-search registries/);
  });

  test("CRI-O's short_name_mode: only \"disabled\" disables enforcement", () => {
    expect(crioShortNameMode("disabled")).toBe("disabled");
    expect(crioShortNameMode("enforcing")).toBe("enforcing");
    expect(crioShortNameMode("")).toBe("enforcing");
  });

  test("invalid input and image IDs are rejected", () => {
    expect(() => resolveShortName(conf(), "Busybox", "disabled")).toThrow(InvalidArgumentError);
    expect(() => resolveShortName(conf(), "a".repeat(64), "disabled")).toThrow(/image ID/);
  });

  test("local candidates: alias, then localhost/, then the search registries", () => {
    expect(localCandidates(conf(), "fedora").map(formatReference)).toEqual([
      "registry.fedoraproject.org/fedora:latest",
      "localhost/fedora:latest",
      "registry.fedoraproject.org/fedora:latest",
      "docker.io/library/fedora:latest",
    ]);
    expect(localCandidates(conf(), "quay.io/x").map(formatReference)).toEqual(["quay.io/x:latest"]);
  });
});
