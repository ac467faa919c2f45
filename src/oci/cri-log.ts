// The CRI log format conmon writes: "<RFC3339Nano> <stdout|stderr> <F|P> <content>\n", where P
// marks a partial line whose continuation follows in the next record (CRI-O `parseLog`).

export interface CriLogRecord {
  time: string;
  stream: "stdout" | "stderr";
  partial: boolean;
  content: string;
}

/** Parses one record; undefined for a malformed line (CRI-O skips those too). */
export function parseCriLogLine(line: string): CriLogRecord | undefined {
  const a = line.indexOf(" ");
  const b = a < 0 ? -1 : line.indexOf(" ", a + 1);
  const c = b < 0 ? -1 : line.indexOf(" ", b + 1);
  if (c < 0 && b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  if (tag !== "F" && tag !== "P") return undefined;
  return { time: line.slice(0, a), stream, partial: tag === "P", content: c < 0 ? "" : line.slice(c + 1) };
}

/**
 * Splits a CRI log into its two streams, as ExecSync returns them: full lines get their
 * newline back, partial records are concatenated without one.
 */
export function splitCriLog(text: string): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const rec = parseCriLogLine(line);
    if (!rec) continue;
    out[rec.stream] += rec.partial ? rec.content : `${rec.content}\n`;
  }
  return out;
}

/**
 * splitCriLog on raw bytes, so that output which is not UTF-8 comes back unchanged (ExecSync
 * answers bytes). conmon never puts a newline inside a record's content.
 */
export function splitCriLogBytes(log: Uint8Array): { stdout: Uint8Array; stderr: Uint8Array } {
  const parts: Record<"stdout" | "stderr", Uint8Array[]> = { stdout: [], stderr: [] };
  const NL = new Uint8Array([0x0a]);
  const SP = 0x20;
  let start = 0;
  while (start < log.length) {
    let end = log.indexOf(0x0a, start);
    if (end < 0) end = log.length;
    const a = log.indexOf(SP, start);
    const b = a < 0 || a >= end ? -1 : log.indexOf(SP, a + 1);
    if (b > 0 && b < end) {
      const stream = Buffer.from(log.subarray(a + 1, b)).toString("latin1");
      const c = log.indexOf(SP, b + 1);
      const tagEnd = c < 0 || c > end ? end : c;
      const tag = Buffer.from(log.subarray(b + 1, tagEnd)).toString("latin1");
      if ((stream === "stdout" || stream === "stderr") && (tag === "F" || tag === "P")) {
        const content = tagEnd < end ? log.subarray(tagEnd + 1, end) : new Uint8Array(0);
        parts[stream].push(content);
        if (tag === "F") parts[stream].push(NL);
      }
    }
    start = end + 1;
  }
  return { stdout: Buffer.concat(parts.stdout), stderr: Buffer.concat(parts.stderr) };
}
