// The zlib dictionary that primes SPDY/3 header compression (SPDY Protocol Draft 3, section
// 2.6.10.1). Both directions of every SPDY/3 and SPDY/3.1 session deflate their header blocks
// against it, so a peer decompressing with a different dictionary fails at the first frame.
//
// The dictionary is a run of header names and common values, each preceded by its length as a
// 32-bit big-endian integer, followed by a tail of status lines, dates and media types that
// carries no length prefixes. It is built here from those two parts rather than spelled out
// byte by byte; spdy-frame.test.ts pins its length and SHA-256.

const LENGTH_PREFIXED = [
  "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
  "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
  "cache-control", "connection", "content-base", "content-encoding", "content-language",
  "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
  "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match",
  "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma",
  "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server", "te",
  "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
  "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
  "public", "set-cookie", "keep-alive", "origin",
];

const TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request" +
  "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented" +
  "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 " +
  "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif," +
  "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=" +
  "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

function build(): Uint8Array {
  const parts: number[] = [];
  for (const word of LENGTH_PREFIXED) {
    const n = word.length;
    parts.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    for (let i = 0; i < n; i++) parts.push(word.charCodeAt(i));
  }
  for (let i = 0; i < TAIL.length; i++) parts.push(TAIL.charCodeAt(i));
  return Uint8Array.from(parts);
}

/** The SPDY/3 header compression dictionary (1423 bytes). */
export const SPDY3_DICTIONARY: Uint8Array = build();
