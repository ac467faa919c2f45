// WWW-Authenticate parsing (RFC 7235 §4.1): one header may carry several challenges, each a
// scheme and comma-separated auth-params whose values are tokens or quoted strings. Registries
// send `Bearer realm="…",service="…",scope="…"` (docker/distribution token auth) or
// `Basic realm="…"` (htpasswd).

export interface Challenge {
  /** Lower-cased: "bearer", "basic", … */
  scheme: string;
  /** Parameter names lower-cased. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

export function parseWwwAuthenticate(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const s = header;
  let pos = 0;
  const out: Challenge[] = [];
  const skipWs = () => {
    while (pos < s.length && (s[pos] === " " || s[pos] === "\t")) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < s.length && TOKEN_CHAR.test(s[pos]!)) pos++;
    return s.slice(start, pos);
  };
  const readValue = (): string => {
    if (s[pos] === '"') {
      pos++;
      let v = "";
      while (pos < s.length && s[pos] !== '"') {
        if (s[pos] === "\\" && pos + 1 < s.length) pos++;
        v += s[pos];
        pos++;
      }
      pos++; // closing quote
      return v;
    }
    // Lenient: an unquoted value runs to the next comma or blank (some servers leave URLs unquoted).
    const start = pos;
    while (pos < s.length && s[pos] !== "," && s[pos] !== " " && s[pos] !== "\t") pos++;
    return s.slice(start, pos);
  };

  while (pos < s.length) {
    while (pos < s.length && (s[pos] === " " || s[pos] === "\t" || s[pos] === ",")) pos++;
    const scheme = readToken();
    if (scheme === "") {
      pos++; // not a token: skip the character
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    for (;;) {
      const save = pos;
      const name = readToken();
      skipWs();
      if (name === "" || s[pos] !== "=") {
        // A token not followed by "=" starts the next challenge (or is a token68: ignored).
        pos = save;
        break;
      }
      pos++; // "="
      // token68 padding ("abc==") looks like a parameter named abc with an empty value.
      while (s[pos] === "=") pos++;
      skipWs();
      challenge.params[name.toLowerCase()] = readValue();
      skipWs();
      if (s[pos] === ",") {
        pos++;
        skipWs();
        continue;
      }
      break;
    }
  }
  return out;
}
