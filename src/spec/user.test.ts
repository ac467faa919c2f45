import { describe, expect, test } from "bun:test";
import { InvalidArgumentError } from "../errors.ts";
import { Int64Value, LinuxContainerSecurityContext, SupplementalGroupsPolicy } from "../proto/runtime-v1.ts";
import { parseGroup, parsePasswd, user } from "./user.ts";

const passwd = [
  "# comment",
  "root:x:0:0:root:/root:/bin/sh",
  "www:x:33:33:www-data:/var/www:/usr/sbin/nologin",
  "app:x:1000:1000::/home/app:/bin/sh",
  "broken:line",
].join("\n");
const group = ["root:x:0:", "www:x:33:", "logs:x:4:www,app", "video:x:44:app", "staff:x:50:"].join("\n");

const sc = (p: Partial<LinuxContainerSecurityContext>) => LinuxContainerSecurityContext.create(p);
const i64 = (v: number) => Int64Value.create({ value: BigInt(v) });

describe("parsePasswd / parseGroup", () => {
  test("skip comments and malformed lines", () => {
    expect(parsePasswd(passwd).map((p) => p.name)).toEqual(["root", "www", "app"]);
    expect(parseGroup(group).find((g) => g.name === "logs")?.members).toEqual(["www", "app"]);
  });
});

describe("user", () => {
  test("no user anywhere is root", () => {
    expect(user("", undefined, passwd, group)).toMatchObject({ uid: 0, gid: 0, additionalGids: [0] });
  });
  test("image USER name resolves uid, gid and the user's groups (Merge)", () => {
    expect(user("app", undefined, passwd, group)).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 4, 44], username: "app", home: "/home/app" });
  });
  test("image USER uid present in passwd also gets its groups", () => {
    expect(user("33", undefined, passwd, group)).toMatchObject({ uid: 33, gid: 33, additionalGids: [33, 4], username: "www" });
  });
  test("image USER uid absent from passwd: gid 0, no groups", () => {
    expect(user("4242", undefined, passwd, group)).toEqual({ uid: 4242, gid: 0, additionalGids: [0] });
  });
  test("uid:gid numbers need no entries", () => {
    expect(user("5000:6000", undefined, undefined, undefined)).toEqual({ uid: 5000, gid: 6000, additionalGids: [6000] });
  });
  test("name:group uses the group and skips supplementary groups", () => {
    expect(user("app:staff", undefined, passwd, group)).toMatchObject({ uid: 1000, gid: 50, additionalGids: [50] });
  });
  test("run_as_user beats the image USER", () => {
    expect(user("app", sc({ runAsUser: i64(33) }), passwd, group)).toMatchObject({ uid: 33, gid: 33 });
  });
  test("run_as_username beats run_as_user", () => {
    expect(user("", sc({ runAsUser: i64(33), runAsUsername: "app" }), passwd, group)).toMatchObject({ uid: 1000 });
  });
  test("run_as_group overrides the primary gid; supplemental groups are appended", () => {
    const got = user("app", sc({ runAsUser: i64(1000), runAsGroup: i64(3000), supplementalGroups: [7n, 4n] }), passwd, group);
    expect(got).toMatchObject({ uid: 1000, gid: 3000, additionalGids: [3000, 4, 44, 7] });
  });
  test("Strict keeps only the request's groups", () => {
    const got = user("app", sc({ supplementalGroupsPolicy: SupplementalGroupsPolicy.Strict, supplementalGroups: [7n] }), passwd, group);
    expect(got.additionalGids).toEqual([1000, 7]);
  });
  test("run_as_group without a user is InvalidArgument", () => {
    expect(() => user("app", sc({ runAsGroup: i64(1) }), passwd, group)).toThrow(/user group is specified without user or username/);
  });
  test("unknown user name names it and says why", () => {
    expect(() => user("nobody", undefined, passwd, group)).toThrow(InvalidArgumentError);
    expect(() => user("nobody", undefined, passwd, group)).toThrow(/"nobody".*no matching entry/);
    expect(() => user("", sc({ runAsUsername: "ghost" }), undefined, undefined)).toThrow(/"ghost".*no \/etc\/passwd/);
  });
  test("unknown group name is InvalidArgument", () => {
    expect(() => user("app:wheel", undefined, passwd, group)).toThrow(/unable to find group "wheel"/);
  });
  test("out-of-range ids", () => {
    expect(() => user("", sc({ runAsUser: i64(-1) }), passwd, group)).toThrow(InvalidArgumentError);
    expect(() => user("4294967296", undefined, passwd, group)).toThrow(InvalidArgumentError);
  });
  test("unknown policy value", () => {
    expect(() => user("", sc({ supplementalGroupsPolicy: 9 as SupplementalGroupsPolicy }), passwd, group)).toThrow(InvalidArgumentError);
  });
});
