import { describe, expect, test } from "bun:test";
import { flagDefs } from "./flags.ts";
import { renderCrioConfDMan, renderCrioConfMan, renderCrioMan } from "./man.ts";
import { allOptions } from "./schema.ts";

describe("flagDefs", () => {
  const defs = flagDefs();
  const byName = new Map(defs.map((f) => [f.name, f]));

  test("includes the CLI's own flags and the flag-only daemon settings", () => {
    expect(byName.get("config")).toMatchObject({ aliases: ["c"], role: "cli", kind: "string", env: "CONTAINER_CONFIG" });
    expect(byName.get("config-dir")).toMatchObject({ aliases: ["d"], role: "cli" });
    expect(byName.get("help")).toMatchObject({ aliases: ["h"], kind: "bool", role: "cli" });
    expect(byName.get("version")).toMatchObject({ aliases: ["v"], kind: "bool", role: "cli" });
    expect(byName.get("log")).toMatchObject({ role: "flag-only", key: "flagOnly.log", kind: "string" });
    expect(byName.get("log-format")).toMatchObject({ role: "flag-only", values: ["text", "json"], default: '"text"' });
    for (const n of ["profile", "profile-cpu", "profile-mem", "profile-port", "enable-profile-unix-socket"]) {
      expect(byName.get(n)?.role, n).toBe("flag-only");
    }
  });

  test("option flags carry their key, kind, env and default", () => {
    expect(byName.get("log-level")).toMatchObject({
      aliases: ["l"],
      kind: "string",
      env: "CONTAINER_LOG_LEVEL",
      default: '"info"',
      key: "runtime.log_level",
      tomlKey: "crio.runtime.log_level",
      role: "option",
    });
    expect(byName.get("log-journald")).toMatchObject({ kind: "bool", key: "runtime.log_to_journald" });
    expect(byName.get("hooks-dir")).toMatchObject({ kind: "string[]", default: '"/usr/share/containers/oci/hooks.d"' });
    expect(byName.get("root")).toMatchObject({ aliases: ["r"] });
    expect(byName.get("storage-driver")).toMatchObject({ aliases: ["s"] });
    expect(byName.get("timezone")).toMatchObject({ aliases: ["tz"] });
    expect(byName.get("runtimes")).toMatchObject({ kind: "string[]", key: "runtime.runtimes" });
    expect(byName.get("conmon")).toMatchObject({ role: "legacy", env: "CONTAINER_CONMON" });
    expect(byName.get("registries-conf")).toMatchObject({ hidden: true, role: "flag-only", envFallback: ["CONTAINERS_REGISTRIES_CONF"] });
    expect(byName.get("namespaced-auth-dir")).toMatchObject({ hidden: true, role: "option" });
  });

  test("every option with a flag appears once", () => {
    const flagged = allOptions().filter((o) => o.spec.flag);
    for (const o of flagged) expect(byName.has(o.spec.flag!.name), o.spec.flag!.name).toBe(true);
    expect(defs.length).toBe(new Set(defs.map((f) => f.name)).size);
    expect(defs.map((f) => f.name)).toEqual([...defs.map((f) => f.name)].sort());
  });
});

describe("man pages", () => {
  test("crio.conf(5) documents every table and option with type, default and reload marker", () => {
    const man = renderCrioConfMan();
    expect(man).toContain(".TH CRIO.CONF 5");
    for (const { table, key, spec } of allOptions()) {
      if (spec.toml === false) continue;
      expect(man, `${table.id}.${key}`).toContain(`\\fB${key.replace(/-/g, "\\-")}\\fR = `);
    }
    expect(man).toContain('.SH "CRIO.RUNTIME.RUNTIMES TABLES"');
    expect(man).toContain('.SH "CRIO.NRI.DEFAULT_VALIDATOR TABLE"');
    expect(man).toMatch(/\\fBlog_level\\fR = "info" \("fatal" \| "panic"/);
    expect(man).toContain("Reloaded on SIGHUP.");
    expect(man).toContain("crio.runtime.conmon");
    // no line may start with a roff control character by accident
    for (const line of man.split("\n")) {
      if (line.startsWith(".") || line.startsWith("'")) expect(line).toMatch(/^\.(TH|SH|TP|PP|br|nf|fi|RS|RE|\\")/);
    }
  });

  test("crio(8) lists global options with env and defaults, the commands, files and signals", () => {
    const man = renderCrioMan([
      { name: "config", description: "Print the configuration." },
      { name: "version", description: "Print the version." },
    ]);
    expect(man).toContain(".TH CRIO 8");
    expect(man).toContain("\\fB\\-\\-log\\-level\\fR, \\fB\\-l\\fR=");
    expect(man).toContain("Environment: CONTAINER_LOG_LEVEL.");
    expect(man).toContain('Default: "info".');
    expect(man).toContain(".SH COMMANDS\n.TP\n\\fBconfig\\fR\nPrint the configuration.");
    expect(man).toContain(".SH SIGNALS");
    expect(man).toContain(".SH FILES");
    expect(man).not.toContain("registries\\-conf\\fR"); // hidden flags stay hidden
  });

  test("crio.conf.d(5) explains precedence", () => {
    const man = renderCrioConfDMan();
    expect(man).toContain(".TH CRIO.CONF.D 5");
    expect(man).toContain("lexical order");
  });
});
