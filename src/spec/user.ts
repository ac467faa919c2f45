// process.user: uid, gid and additionalGids from the request's security context, the image's
// USER and the image's /etc/passwd and /etc/group (given as text; reading them is the caller's
// job). Name resolution follows runc's libcontainer/user GetExecUser, which CRI-O calls.
import { InvalidArgumentError } from "../errors.ts";
import { SupplementalGroupsPolicy, type LinuxContainerSecurityContext } from "../proto/runtime-v1.ts";

/** The largest id libcontainer accepts (user.maxId = 1<<31 - 1). */
const MAX_ID = 2 ** 31 - 1;

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** /etc/passwd lines "name:password:uid:gid:gecos:home:shell"; malformed lines are skipped. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of (text ?? "").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" });
  }
  return out;
}

/** /etc/group lines "name:password:gid:member1,member2"; malformed lines are skipped. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of (text ?? "").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    const members = (f[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "");
    out.push({ name: f[0]!, gid: Number(f[2]), members });
  }
  return out;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first, then the image's groups for the user (Merge), then the request's. */
  additionalGids: number[];
  /** The passwd name, when the user was found there. */
  username?: string;
  /** The passwd home directory, when the user was found there. */
  home?: string;
}

function numericId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  return Number(text);
}

function checkId(kind: string, value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_ID) {
    throw new InvalidArgumentError(`${kind} ${what} is out of range 0..${MAX_ID}`);
  }
  return value;
}

/**
 * Which user string applies: run_as_username, else run_as_user, else the image's USER
 * (CRI-O generateUserString). Empty means root.
 */
export function userString(imageUser: string | undefined, sc: LinuxContainerSecurityContext | undefined): string {
  if (sc?.runAsUsername) return sc.runAsUsername;
  if (sc?.runAsUser) return String(sc.runAsUser.value);
  return imageUser ?? "";
}

/**
 * Resolves the container's user. User strings are "user" or "user:group", each a name or a
 * number. A name must exist in the image's /etc/passwd (or /etc/group); a number need not.
 * The image's supplementary groups (groups in /etc/group listing the user's name) are added
 * only when the user was named implicitly, i.e. without ":group", as libcontainer does, and only
 * under supplemental_groups_policy Merge; Strict keeps just the request's groups.
 */
export function user(
  imageUser: string | undefined,
  sc: LinuxContainerSecurityContext | undefined,
  passwdText: string | undefined,
  groupText: string | undefined,
): ResolvedUser {
  if (sc?.runAsGroup && !sc.runAsUser && !sc.runAsUsername) {
    throw new InvalidArgumentError("user group is specified without user or username");
  }
  if (sc?.runAsUser && !sc.runAsUsername) checkId("run_as_user", Number(sc.runAsUser.value), String(sc.runAsUser.value));
  const policy = sc?.supplementalGroupsPolicy ?? SupplementalGroupsPolicy.Merge;
  if (policy !== SupplementalGroupsPolicy.Merge && policy !== SupplementalGroupsPolicy.Strict) {
    throw new InvalidArgumentError(`unsupported supplemental_groups_policy ${policy}`);
  }

  const spec = userString(imageUser, sc);
  const colon = spec.indexOf(":");
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? "" : spec.slice(colon + 1);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let entry: PasswdEntry | undefined;
  const uidNum = numericId(userArg);
  if (userArg === "") {
    entry = passwd.find((p) => p.uid === 0);
  } else if (uidNum !== undefined) {
    uid = checkId("uid", uidNum, userArg);
    entry = passwd.find((p) => p.uid === uidNum);
  } else {
    entry = passwd.find((p) => p.name === userArg);
    if (!entry) {
      const where = passwdText === undefined ? "the image has no /etc/passwd" : "no matching entry in the image's /etc/passwd";
      throw new InvalidArgumentError(`unable to find user ${JSON.stringify(userArg)}: ${where}`);
    }
  }
  if (entry) {
    uid = entry.uid;
    gid = entry.gid;
  }

  let imageGroups: number[] = [];
  if (groupArg !== "") {
    const gidNum = numericId(groupArg);
    const match = groups.find((g) => (gidNum !== undefined ? g.gid === gidNum : g.name === groupArg));
    if (match) gid = match.gid;
    else if (gidNum !== undefined) gid = checkId("gid", gidNum, groupArg);
    else {
      const where = groupText === undefined ? "the image has no /etc/group" : "no matching entry in the image's /etc/group";
      throw new InvalidArgumentError(`unable to find group ${JSON.stringify(groupArg)}: ${where}`);
    }
  } else if (entry) {
    imageGroups = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  }

  if (sc?.runAsGroup) gid = checkId("run_as_group", Number(sc.runAsGroup.value), String(sc.runAsGroup.value));

  const additional: number[] = [gid];
  if (policy === SupplementalGroupsPolicy.Merge) additional.push(...imageGroups);
  for (const g of sc?.supplementalGroups ?? []) additional.push(checkId("supplemental group", Number(g), String(g)));
  const resolved: ResolvedUser = { uid, gid, additionalGids: [...new Set(additional)] };
  if (entry) {
    resolved.username = entry.name;
    resolved.home = entry.home;
  }
  return resolved;
}
