// The conformance suite (testing/conformance.ts) against both managers on v1 and v2 fixture trees
// (and cgroupfs on a hybrid one, this project's test machines' layout). The systemd manager talks
// to a fake systemd over a real unix socket; the fake creates unit cgroups in the same fixture.
// The cgroupfs manager on this host's real tree is in host.test.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupfsManager } from "./cgroupfs.ts";
import { SystemdManager } from "./systemd.ts";
import { cgroupManagerConformance, type Harness } from "./testing/conformance.ts";
import { FakeSystemd } from "./testing/fake-systemd.ts";
import { makeFixture, type FixtureLayout } from "./testing/fixture.ts";

function cgroupfsOnFixture(layout: FixtureLayout): () => Promise<Harness> {
  return async () => {
    const fx = makeFixture(layout);
    return {
      manager: new CgroupfsManager(fx.fs),
      parent: "/kubepods/burstable/pod1234",
      subParent: (name) => `/kubepods/burstable/pod1234/${name}`,
      foreignParent: "kubepods-burstable-pod1234.slice",
      spawn: async () => fx.spawn(),
      kill: async (pid) => fx.exit(pid),
      cleanup: async () => fx.cleanup(),
    };
  };
}

function systemdOnFixture(layout: FixtureLayout): () => Promise<Harness> {
  return async () => {
    const fx = makeFixture(layout);
    const dir = mkdtempSync(join(tmpdir(), "fake-systemd-"));
    const socket = join(dir, "bus.sock");
    const fake = FakeSystemd.listen(socket, { fs: fx.fs, kill: (pid) => fx.exit(pid) });
    const manager = new SystemdManager(fx.fs, { endpoints: [{ path: socket, bus: true }], jobPollMs: 50, jobTimeoutMs: 5000 });
    return {
      manager,
      parent: "kubepods-burstable-pod1234.slice",
      subParent: (name) => `kubepods-burstable-pod1234-${name}.slice`,
      foreignParent: "/kubepods/burstable/pod1234",
      spawn: async () => fx.spawn(),
      kill: async (pid) => fx.exit(pid),
      cleanup: async () => {
        manager.close();
        fake.stop();
        rmSync(dir, { recursive: true, force: true });
        fx.cleanup();
      },
    };
  };
}

cgroupManagerConformance("cgroupfs on a v1 fixture", cgroupfsOnFixture("v1"));
cgroupManagerConformance("cgroupfs on a v2 fixture", cgroupfsOnFixture("v2"));
cgroupManagerConformance("cgroupfs on a hybrid fixture", cgroupfsOnFixture("hybrid"));
cgroupManagerConformance("systemd on a v1 fixture", systemdOnFixture("v1"));
cgroupManagerConformance("systemd on a v2 fixture", systemdOnFixture("v2"));
