import { describe, expect, test } from "bun:test";
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, detectCgroupVersion, parseCgroupMounts, parseProcCgroup, TMPFS_MAGIC } from "./detect.ts";

describe("detectCgroupVersion (statfs magic)", () => {
  const fake = (types: Record<string, number>) => (p: string) => types[p];
  test("cgroup2 at the root is unified", () => {
    expect(detectCgroupVersion("/sys/fs/cgroup", fake({ "/sys/fs/cgroup": CGROUP2_SUPER_MAGIC }))).toBe("unified");
  });
  test("a tmpfs root with cgroup2 at unified/ is hybrid", () => {
    expect(detectCgroupVersion("/sys/fs/cgroup", fake({ "/sys/fs/cgroup": TMPFS_MAGIC, "/sys/fs/cgroup/unified": CGROUP2_SUPER_MAGIC }))).toBe("hybrid");
  });
  test("a tmpfs root without it is v1", () => {
    expect(detectCgroupVersion("/sys/fs/cgroup", fake({ "/sys/fs/cgroup": TMPFS_MAGIC, "/sys/fs/cgroup/memory": CGROUP_SUPER_MAGIC }))).toBe("v1");
  });
});

// Mount lines as this project's test machines have them (hybrid, each controller on its own),
// plus a comounted cpu,cpuacct and a duplicate bind mount as other distributions have.
const MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:9 - cgroup cgroup rw,net_cls,net_prio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /sys/fs/cgroup/elsewhere rw,relatime - cgroup cgroup rw,name=other
50 23 0:32 / /mnt/memory-again rw,relatime - cgroup cgroup rw,memory
51 31 0:32 / /sys/fs/cgroup/memory2 rw,relatime - cgroup cgroup rw,memory
`;

describe("parseCgroupMounts", () => {
  test("lists each hierarchy under /sys/fs/cgroup once, with its controllers", () => {
    expect(parseCgroupMounts(MOUNTINFO)).toEqual([
      { dir: "/sys/fs/cgroup/cpu,cpuacct", kind: "v1", controllers: ["cpu", "cpuacct"] },
      { dir: "/sys/fs/cgroup/cpuset", kind: "v1", controllers: ["cpuset"] },
      { dir: "/sys/fs/cgroup/memory", kind: "v1", controllers: ["memory"] },
      { dir: "/sys/fs/cgroup/net_cls,net_prio", kind: "v1", controllers: ["net_cls", "net_prio"] },
      { dir: "/sys/fs/cgroup/systemd", kind: "v1", controllers: ["name=systemd"] },
      { dir: "/sys/fs/cgroup/unified", kind: "v2", controllers: [] },
    ]);
  });
  test("unified mode: one cgroup2 mount", () => {
    expect(parseCgroupMounts("30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n")).toEqual([
      { dir: "/sys/fs/cgroup", kind: "v2", controllers: [] },
    ]);
  });
  test("octal escapes in mount points are decoded", () => {
    expect(parseCgroupMounts("1 2 0:3 / /x/with\\040space rw - cgroup2 cgroup2 rw\n", "/x/with space")[0]?.dir).toBe("/x/with space");
  });
});

test("parseProcCgroup keys v1 lines by controller list and the v2 line by the empty string", () => {
  const m = parseProcCgroup("9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/d\n");
  expect([...m.entries()]).toEqual([["name=systemd", "/"], ["memory", "/a/b"], ["cpu,cpuacct", "/c"], ["", "/d"]]);
});
