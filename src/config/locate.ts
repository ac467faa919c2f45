// Line numbers for TOML keys. smol-toml returns plain values without positions, so error messages
// find the line of a key by scanning the source: table headers set the current table, and each
// `key = value` line is recorded under its full dotted path. Good enough for messages; the parse
// itself is smol-toml's.

const SEP = "\u0000";

export type KeyLines = ReadonlyMap<string, number>;

interface KeyPath {
  segments: string[];
  end: number;
}

/** Reads a dotted key (bare or quoted segments) starting at `i`. */
function readKeyPath(s: string, i: number): KeyPath | undefined {
  const segments: string[] = [];
  for (;;) {
    while (s[i] === " " || s[i] === "\t") i++;
    const c = s[i];
    if (c === '"') {
      let j = i + 1;
      let raw = "";
      while (j < s.length && s[j] !== '"') {
        if (s[j] === "\\") {
          raw += s.slice(j, j + 2);
          j += 2;
        } else raw += s[j++];
      }
      if (j >= s.length) return undefined;
      try {
        segments.push(JSON.parse(`"${raw}"`) as string);
      } catch {
        segments.push(raw);
      }
      i = j + 1;
    } else if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) return undefined;
      segments.push(s.slice(i + 1, j));
      i = j + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(s.slice(i));
      if (!m) return undefined;
      segments.push(m[0]);
      i += m[0].length;
    }
    while (s[i] === " " || s[i] === "\t") i++;
    if (s[i] !== ".") return { segments, end: i };
    i++;
  }
}

/** Maps every key and table header of a TOML text to its 1-based line. */
export function locateKeys(text: string): KeyLines {
  const lines = text.split(/\r?\n/);
  const out = new Map<string, number>();
  let table: string[] = [];
  let inMultiline: string | undefined;
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (inMultiline) {
      if (line.split(inMultiline).length % 2 === 0) inMultiline = undefined;
      return;
    }
    const t = line.trimStart();
    if (t === "" || t.startsWith("#")) return;
    if (t.startsWith("[")) {
      const arrayTable = t.startsWith("[[");
      const kp = readKeyPath(t, arrayTable ? 2 : 1);
      if (kp) {
        table = kp.segments;
        const key = table.join(SEP);
        if (!out.has(key)) out.set(key, lineNo);
      }
      return;
    }
    const kp = readKeyPath(t, 0);
    if (!kp || t[kp.end] !== "=") return;
    const full = [...table, ...kp.segments].join(SEP);
    if (!out.has(full)) out.set(full, lineNo);
    const rest = t.slice(kp.end + 1);
    for (const q of ['"""', "'''"]) {
      if (rest.split(q).length % 2 === 0) {
        inMultiline = q;
        break;
      }
    }
  });
  return out;
}

/** Line of a dotted key path, falling back to its nearest enclosing key or table. */
export function lineOf(lines: KeyLines | undefined, path: readonly string[]): number | undefined {
  if (!lines) return undefined;
  for (let n = path.length; n > 0; n--) {
    const l = lines.get(path.slice(0, n).join(SEP));
    if (l !== undefined) return l;
  }
  return undefined;
}
