import { describe, expect, test } from "bun:test";
import { InvalidArgumentError, UnimplementedError } from "../errors.ts";
import { ImageSpec, MountPropagation } from "../proto/runtime-v1.ts";
import { defaultMounts, mounts, sandboxFileMounts, type MountOptions } from "./mounts.ts";
import { criMount } from "./test-helpers.ts";

const base: MountOptions = {
  shmPath: "/run/sb/shm",
  hostMounts: [
    { mountpoint: "/", optional: "" },
    { mountpoint: "/shared", optional: "shared:3" },
    { mountpoint: "/slave", optional: "master:5" },
  ],
  rroSupported: true,
};
const dests = (ms: { destination: string }[]) => ms.map((m) => m.destination);
const bind = (r: ReturnType<typeof mounts>, dst: string) => r.mounts.find((m) => m.destination === dst);

describe("defaultMounts", () => {
  test("the runtime-tools set with the sandbox shm and a read-only cgroup mount", () => {
    const ms = defaultMounts("/run/sb/shm");
    expect(dests(ms)).toEqual(["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm"]);
    expect(ms.find((m) => m.destination === "/dev/shm")).toEqual({ destination: "/dev/shm", type: "bind", source: "/run/sb/shm", options: ["rw", "bind"] });
    expect(ms.find((m) => m.destination === "/sys")?.options).toContain("ro");
    expect(ms.find((m) => m.destination === "/sys/fs/cgroup")?.options?.at(-1)).toBe("ro");
  });
  test("cgroupRW and privileged make them rw", () => {
    expect(defaultMounts("/s", true).find((m) => m.destination === "/sys/fs/cgroup")?.options?.at(-1)).toBe("rw");
    for (const m of defaultMounts("/s", false, true)) {
      expect(m.options).not.toContain("ro");
      expect(m.options).toContain("rw");
    }
  });
});

describe("mounts", () => {
  test("propagation mapping", () => {
    const r = mounts(
      [
        criMount({ containerPath: "/a", hostPath: "/data/a", propagation: MountPropagation.PROPAGATION_PRIVATE }),
        criMount({ containerPath: "/b", hostPath: "/slave/b", propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }),
      ],
      base,
    );
    expect(bind(r, "/a")?.options).toEqual(["rbind", "rprivate", "rw"]);
    expect(bind(r, "/b")?.options).toEqual(["rbind", "rslave", "rw"]);
    expect(r.rootfsPropagation).toBe("rslave");
  });
  test("bidirectional needs a shared host mount and makes the rootfs rshared", () => {
    const r = mounts(
      [
        criMount({ containerPath: "/c", hostPath: "/shared/x/y", propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }),
        criMount({ containerPath: "/d", hostPath: "/shared/z", propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }),
      ],
      base,
    );
    expect(bind(r, "/c")?.options).toEqual(["rbind", "rshared", "rw"]);
    expect(r.rootfsPropagation).toBe("rshared");
  });
  test("bidirectional on a private or slave host mount is InvalidArgument", () => {
    const m = (hostPath: string) => criMount({ containerPath: "/c", hostPath, propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL });
    expect(() => mounts([m("/data")], base)).toThrow(/is mounted on "\/" but it is not a shared mount/);
    expect(() => mounts([m("/slave/q")], base)).toThrow(InvalidArgumentError);
  });
  test("host-to-container on a private host mount is InvalidArgument", () => {
    const m = criMount({ containerPath: "/c", hostPath: "/data", propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER });
    expect(() => mounts([m], base)).toThrow(/not a shared or slave mount/);
  });
  test("a host path with no mount above it is InvalidArgument", () => {
    const m = criMount({ containerPath: "/c", hostPath: "/x", propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER });
    expect(() => mounts([m], { ...base, hostMounts: [] })).toThrow(/could not find source mount/);
  });
  test("readonly and recursive read-only", () => {
    const r = mounts(
      [criMount({ containerPath: "/ro", hostPath: "/d1", readonly: true }), criMount({ containerPath: "/rro", hostPath: "/d2", readonly: true, recursiveReadOnly: true })],
      base,
    );
    expect(bind(r, "/ro")?.options).toEqual(["rbind", "rprivate", "ro"]);
    expect(bind(r, "/rro")?.options).toEqual(["rbind", "rprivate", "rro"]);
  });
  test("recursive read-only errors: kernel, propagation, not readonly", () => {
    const rro = criMount({ containerPath: "/rro", hostPath: "/d2", readonly: true, recursiveReadOnly: true });
    expect(() => mounts([rro], { ...base, rroSupported: false })).toThrow(/recursive read-only mount support is not available/);
    expect(() =>
      mounts([criMount({ containerPath: "/r", hostPath: "/slave/x", readonly: true, recursiveReadOnly: true, propagation: 1 })], base),
    ).toThrow(/requires private propagation.*PROPAGATION_HOST_TO_CONTAINER/);
    expect(() => mounts([criMount({ containerPath: "/r", hostPath: "/d", recursiveReadOnly: true })], base)).toThrow(/conflicts with read-write/);
  });
  test("selinux relabel is reported, bind_mount_prefix applied", () => {
    const r = mounts([criMount({ containerPath: "/l", hostPath: "/var/x", selinuxRelabel: true })], { ...base, bindMountPrefix: "/host" });
    expect(bind(r, "/l")?.source).toBe("/host/var/x");
    expect(r.relabel).toEqual(["/host/var/x"]);
  });
  test("a private mount containing the storage root becomes host-to-container", () => {
    const r = mounts([criMount({ containerPath: "/var", hostPath: "/slave" })], { ...base, storageRoot: "/slave/containers/storage" });
    expect(bind(r, "/var")?.options).toEqual(["rbind", "rslave", "rw"]);
    const other = mounts([criMount({ containerPath: "/var", hostPath: "/slave/containers/storage/sub" })], { ...base, storageRoot: "/slave/containers/storage" });
    expect(bind(other, "/var")?.options).toEqual(["rbind", "rprivate", "rw"]);
  });
  test("requested mounts shadow defaults; /dev and /sys take their children with them", () => {
    const r = mounts([criMount({ containerPath: "/dev", hostPath: "/dev" }), criMount({ containerPath: "/sys/", hostPath: "/sys" })], base);
    expect(dests(r.mounts)).toEqual(["/proc", "/dev", "/sys/"]);
    expect(r.mounts.find((m) => m.destination === "/dev")?.type).toBe("bind");
  });
  test("bind mounts are sorted parents first, stable", () => {
    const r = mounts(
      [criMount({ containerPath: "/a/b/c", hostPath: "/1" }), criMount({ containerPath: "/z", hostPath: "/2" }), criMount({ containerPath: "/a", hostPath: "/3" })],
      base,
    );
    expect(dests(r.mounts).slice(-3)).toEqual(["/z", "/a", "/a/b/c"]);
  });
  test("id mappings need runtime support", () => {
    const m = criMount({ containerPath: "/i", hostPath: "/i", uidMappings: [{ hostId: 100000, containerId: 0, length: 65536 }] });
    expect(() => mounts([m], base)).toThrow(/idmap mounts specified/);
    expect(bind(mounts([m], { ...base, idmapSupported: true }), "/i")?.uidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
  });
  test("empty paths and image mounts are refused", () => {
    expect(() => mounts([criMount({ containerPath: "", hostPath: "/x" })], base)).toThrow(InvalidArgumentError);
    expect(() => mounts([criMount({ containerPath: "/x", hostPath: "" })], base)).toThrow(/HostPath is empty/);
    expect(() => mounts([criMount({ containerPath: "/x", image: ImageSpec.create({ image: "busybox" }) })], base)).toThrow(UnimplementedError);
  });
});

describe("sandbox files", () => {
  const files = { resolvPath: "/run/sb/resolv.conf", hostnamePath: "/run/sb/hostname", hostsPath: "/etc/hosts", containerEnvPath: "/run/sb/.containerenv" };
  test("bind mounted rw, resolv.conf also nodev,nosuid,noexec", () => {
    expect(sandboxFileMounts(files, new Set(), false)).toEqual([
      { destination: "/etc/resolv.conf", type: "bind", source: "/run/sb/resolv.conf", options: ["rw", "bind", "nodev", "nosuid", "noexec"] },
      { destination: "/etc/hostname", type: "bind", source: "/run/sb/hostname", options: ["rw", "bind"] },
      { destination: "/run/.containerenv", type: "bind", source: "/run/sb/.containerenv", options: ["rw", "bind"] },
      { destination: "/etc/hosts", type: "bind", source: "/etc/hosts", options: ["rw", "bind"] },
    ]);
  });
  test("read-only with a read-only root, except for privileged containers", () => {
    expect(sandboxFileMounts(files, new Set(), true).map((m) => m.options?.[0])).toEqual(["ro", "ro", "ro", "ro"]);
    const priv = sandboxFileMounts(files, new Set(), true, true);
    expect(priv[0]?.options).toEqual(["bind", "nodev", "nosuid", "noexec", "rw"]);
    expect(priv.every((m) => !m.options?.includes("ro"))).toBe(true);
  });
  test("absent files and paths the request mounts itself are skipped", () => {
    expect(sandboxFileMounts({ hostnamePath: "/run/sb/hostname" }, new Set(), false).map((m) => m.destination)).toEqual(["/etc/hostname"]);
    expect(sandboxFileMounts(files, new Set(["/etc/hosts", "/etc/resolv.conf"]), false).map((m) => m.destination)).toEqual(["/etc/hostname", "/run/.containerenv"]);
  });
  test("mounts() puts them after the defaults and before the request's bind mounts", () => {
    const r = mounts([criMount({ containerPath: "/etc/hosts", hostPath: "/k/etc-hosts" }), criMount({ containerPath: "/data", hostPath: "/shared/d" })], {
      ...base,
      sandboxFiles: files,
      readonlyRootfs: true,
    });
    // The request's /etc/hosts replaces the sandbox's; request mounts sort parents first.
    expect(dests(r.mounts).slice(6)).toEqual(["/dev/shm", "/etc/resolv.conf", "/etc/hostname", "/run/.containerenv", "/data", "/etc/hosts"]);
    expect(bind(r, "/etc/hosts")?.source).toBe("/k/etc-hosts");
    expect(bind(r, "/etc/hostname")?.options).toEqual(["ro", "bind"]);
  });
});
