// The image store is podman's too: an image pulled through CRI is listed and run by Debian's
// podman on the same root, and an image podman pulled is found and removed through CRI.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage } from "../lib/images.ts";
import { podmanOn, RUN_FLAGS, type Podman } from "../lib/podman.ts";
import { pushImage } from "../lib/push.ts";
import { startRegistry, type TestRegistry } from "../lib/registry.ts";
import { startDaemon, type Daemon } from "./harness.ts";

let reg: TestRegistry;
let d: Daemon;
let podman: Podman;
const multi = busyboxImage({ format: "oci", compression: "gzip", layers: "multi", tag: "multi" });
const single = busyboxImage({ format: "docker", compression: "gzip", layers: "single", tag: "single", config: { Labels: { from: "podman" } } });

beforeAll(async () => {
  reg = await startRegistry();
  await pushImage(reg.url, "test/busybox", multi);
  await pushImage(reg.url, "test/busybox", single);
  d = await startDaemon({ registriesConf: `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n` });
  // podman gets its own registries.conf too, so that it never looks beyond 127.0.0.1.
  const regConf = join(d.dir, "podman-registries.conf");
  writeFileSync(regConf, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
  podman = podmanOn(d.dir, d.root, d.runroot, { CONTAINERS_REGISTRIES_CONF: regConf });
}, 60_000);

afterAll(async () => {
  podman?.unmountAll();
  await d?.cleanup();
  await reg?.stop();
});

describe("podman on the daemon's store", () => {
  test("an image pulled through CRI is listed by podman and runs", async () => {
    const name = `${reg.host}/test/busybox:multi`;
    const id = (await d.image.call("PullImage", { image: { image: name } }, 60_000)).imageRef;
    const listed = JSON.parse(await podman.must(["images", "--format", "json"])) as { Id: string; Names?: string[]; Digest?: string }[];
    const mine = listed.find((i) => i.Id === id);
    expect(mine?.Names).toContain(name);
    expect(mine?.Digest).toBe(multi.manifestDigest);
    // The three layers (with a whiteout and an opaque dir) as podman's overlay driver mounts them.
    const out = await podman.must(["run", ...RUN_FLAGS, "--entrypoint", "/bin/sh", name, "-c", "cat /data/hello.txt; ls /data /opaque; id -u"]);
    expect(out).toContain("hello from layer 2");
    expect(out).not.toContain("remove-me.txt");
    expect(out).not.toContain("old.txt");
    expect(out.trim().split("\n").at(-1)).toBe("1000");
  });

  test("an image podman pulled is found, listed and removed through CRI", async () => {
    const name = `${reg.host}/test/busybox:single`;
    await podman.must(["pull", "--tls-verify=false", name]);
    const id = single.configDigest.replace("sha256:", "");
    const s = await d.image.call("ImageStatus", { image: { image: name } });
    expect(s.image?.id).toBe(id);
    expect(s.image.repoTags).toEqual([name]);
    expect(s.image.repoDigests).toContain(`${reg.host}/test/busybox@${single.manifestDigest}`);
    const all = (await d.image.call("ListImages", {})).images.map((i: { id: string }) => i.id);
    expect(all).toContain(id);
    await d.image.call("RemoveImage", { image: { image: id } });
    const after = JSON.parse(await podman.must(["images", "--format", "json"])) as { Id: string }[];
    expect(after.map((i) => i.Id)).not.toContain(id);
  });
});
