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
