import { describe, expect, test } from "bun:test";
import { inspect } from "node:util";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { formatLine } from "../log.ts";
import { authFilePaths, Credentials, credentialsFor, credentialsForRepository, credentialsFromAuthConfig, namespacedAuthFilePath, type AuthLookupOptions } from "./auth.ts";
import { parseReference } from "./reference.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const SECRET = "s3cr3t-Passw0rd";

function opts(files: Record<string, unknown>, extra: Partial<AuthLookupOptions> = {}): AuthLookupOptions {
  return {
    env: {},
    uid: 0,
    home: "/root",
    readFile: (p) => (p in files ? (typeof files[p] === "string" ? (files[p] as string) : JSON.stringify(files[p])) : undefined),
    runHelper: async () => {
      throw new Error("no helper expected");
    },
    ...extra,
  };
}

const RUN = "/run/containers/0/auth.json";

describe("auth file lookup", () => {
  test("the default file list for root, and REGISTRY_AUTH_FILE first", () => {
    expect(authFilePaths(opts({}))).toEqual([
      { path: RUN, legacy: false },
      { path: "/root/.config/containers/auth.json", legacy: false },
      { path: "/root/.docker/config.json", legacy: false },
      { path: "/root/.dockercfg", legacy: true },
    ]);
    expect(authFilePaths(opts({}, { env: { REGISTRY_AUTH_FILE: "/etc/auth.json", XDG_RUNTIME_DIR: "/run/user/0" } })).slice(0, 2)).toEqual([
      { path: "/etc/auth.json", legacy: false },
      { path: "/run/user/0/containers/auth.json", legacy: false },
    ]);
    // global_auth_file replaces the whole list, as CRI-O passes it as the one auth file.
    expect(authFilePaths(opts({}, { authFile: "/var/lib/kubelet/config.json" }))).toEqual([{ path: "/var/lib/kubelet/config.json", legacy: false }]);
  });

  const file = {
    auths: {
      "quay.io": { auth: b64("host:h") },
      "quay.io/ns": { auth: b64("ns:n") },
      "quay.io/ns/repo": { auth: b64("repo:r"), identitytoken: "idtok" },
      "https://index.docker.io/v1/": { auth: b64("hub:d") },
      "http://legacy.example.com/v1/": { auth: b64("leg:l") },
      "empty.io": {},
    },
  };

  test("most specific key first: repository, namespaces, then the registry", async () => {
    const o = opts({ [RUN]: file });
    const u = async (r: string) => (await credentialsFor(parseReference(r), o))?.username;
    expect(await u("quay.io/ns/repo:1")).toBe("repo");
    expect(await u("quay.io/ns/other")).toBe("ns");
    expect(await u("quay.io/ns/repo/deeper")).toBe("repo");
    expect(await u("quay.io/else/x")).toBe("host");
    expect(await u("gcr.io/x")).toBeUndefined();
    const c = await credentialsFor(parseReference("quay.io/ns/repo"), o);
    expect(c?.password).toBe("r");
    expect(c?.identityToken).toBe("idtok");
    expect(c?.source).toBe(`${RUN} (quay.io/ns/repo)`);
  });

  test("the registry client's (host, repository) callback shape", async () => {
    const o = opts({ [RUN]: file });
    expect((await credentialsForRepository("quay.io", "ns/repo", o))?.username).toBe("repo");
    expect((await credentialsForRepository("docker.io", "library/busybox", o))?.username).toBe("hub");
  });

  test("URL-shaped legacy keys match their host; docker.io's /v1/ key matches docker.io", async () => {
    const o = opts({ [RUN]: file });
    expect((await credentialsFor(parseReference("busybox"), o))?.username).toBe("hub");
    expect((await credentialsFor(parseReference("legacy.example.com/x"), o))?.username).toBe("leg");
  });

  test("an empty entry (credential helper marker) is no credentials", async () => {
    expect(await credentialsFor(parseReference("empty.io/x"), opts({ [RUN]: file }))).toBeUndefined();
  });

  test("the first file with a match wins; later files are fallbacks", async () => {
    const o = opts({
      [RUN]: { auths: { "a.io": { auth: b64("run:1") } } },
      "/root/.docker/config.json": { auths: { "a.io": { auth: b64("docker:2") }, "b.io": { auth: b64("docker:3") } } },
      "/root/.dockercfg": { "c.io": { auth: b64("legacy:4") } },
    });
    expect((await credentialsFor(parseReference("a.io/x"), o))?.username).toBe("run");
    expect((await credentialsFor(parseReference("b.io/x"), o))?.username).toBe("docker");
    expect((await credentialsFor(parseReference("c.io/x"), o))?.username).toBe("legacy");
  });

  test("global_auth_file is the only file consulted", async () => {
    const o = opts({ [RUN]: { auths: { "a.io": { auth: b64("run:1") } } }, "/g.json": { auths: {} } }, { authFile: "/g.json" });
    expect(await credentialsFor(parseReference("a.io/x"), o)).toBeUndefined();
  });

  test("the CRI AuthConfig wins over files, with auth overriding username/password", async () => {
    const o = opts({ [RUN]: file }, { cri: { username: "u", password: "p", auth: b64("fromauth:pw\0\0") } });
    const c = await credentialsFor(parseReference("quay.io/ns/repo"), o);
    expect([c?.username, c?.password, c?.source]).toEqual(["fromauth", "pw", "CRI AuthConfig"]);
    // An AuthConfig without a user name (or tokens) carries no credentials: fall back to files.
    expect((await credentialsFor(parseReference("quay.io/x"), opts({ [RUN]: file }, { cri: { password: "p" } })))?.username).toBe("host");
    expect(credentialsFromAuthConfig({ identityToken: "tok" })?.identityToken).toBe("tok");
    expect(credentialsFromAuthConfig({ registryToken: "bearer" })?.registryToken).toBe("bearer");
    expect(() => credentialsFromAuthConfig({ auth: "!!!not base64" })).toThrow(InvalidArgumentError);
  });

  test("credential helpers: a file's credHelpers entry, and registries.conf's list", async () => {
    const calls: string[] = [];
    const runHelper = async (h: string, reg: string) => {
      calls.push(`${h}:${reg}`);
      if (h === "ecr") return { username: "AWS", secret: SECRET };
      if (h === "gcloud") return { username: "<token>", secret: "idt" };
      return undefined;
    };
    const o = opts({ [RUN]: { credHelpers: { "123.dkr.ecr.io": "ecr" }, auths: {} } }, { runHelper, helpers: ["containers-auth.json", "gcloud"] });
    const ecr = await credentialsFor(parseReference("123.dkr.ecr.io/app"), o);
    expect([ecr?.username, ecr?.password]).toEqual(["AWS", SECRET]);
    const gc = await credentialsFor(parseReference("gcr.io/p/app"), o);
    expect([gc?.username, gc?.identityToken]).toEqual([undefined, "idt"]);
    expect(calls).toEqual(["ecr:123.dkr.ecr.io", "gcloud:gcr.io"]);
  });

  test("malformed files are errors naming the file, never its contents", async () => {
    const bad = async (content: string) => {
      try {
        await credentialsFor(parseReference("quay.io/x"), opts({ [RUN]: content }));
      } catch (err) {
        return err as Error;
      }
      throw new Error("expected an error");
    };
    const e1 = await bad(`{"auths": {"quay.io": {"auth": "${SECRET}!"}}}`);
    expect(e1).toBeInstanceOf(FailedPreconditionError);
    expect(e1.message).toContain(RUN);
    expect(e1.message).toContain(`"quay.io"`);
    expect(e1.message).not.toContain(SECRET);
    const e2 = await bad(`{"auths": {"quay.io": {"auth": "${SECRET}"`);
    expect(e2.message).toContain(RUN);
    expect(e2.message).not.toContain(SECRET);
  });

  test("namespaced auth file path: <dir>/<namespace>-<sha256 of domain/path>.json", () => {
    expect(namespacedAuthFilePath("/etc/crio/auth", "team", parseReference("quay.io/org/app:1"))).toBe(
      `/etc/crio/auth/team-${new Bun.CryptoHasher("sha256").update("quay.io/org/app").digest("hex")}.json`,
    );
    expect(() => namespacedAuthFilePath("/etc/crio/auth", "../x", parseReference("quay.io/a"))).toThrow(InvalidArgumentError);
  });
});

describe("redaction", () => {
  const creds = new Credentials({ username: "alice", password: SECRET, identityToken: `${SECRET}-id`, registryToken: `${SECRET}-reg` }, "test");

  test("fields are readable by code", () => {
    expect([creds.username, creds.password]).toEqual(["alice", SECRET]);
  });

  test("string, JSON, inspection, spreading and log lines never show secrets", () => {
    const renderings = [
      String(creds),
      `${creds}`,
      JSON.stringify(creds),
      JSON.stringify({ nested: { creds } }),
      inspect(creds),
      inspect({ creds }, { depth: 5 }),
      Bun.inspect(creds),
      JSON.stringify({ ...creds }),
      JSON.stringify(Object.entries(creds)),
      formatLine("text", new Date(0), "info", `pulling with ${creds}`, { creds }),
      formatLine("json", new Date(0), "info", "pulling", { creds }),
      new Error(`failed with ${creds}`).message,
    ];
    for (const r of renderings) {
      expect(r).not.toContain(SECRET);
      expect(r).not.toContain("alice");
    }
    expect(JSON.parse(JSON.stringify(creds))).toEqual({ source: "test", username: "<redacted>", password: "<redacted>", identityToken: "<redacted>", registryToken: "<redacted>" });
  });
});
