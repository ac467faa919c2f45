// Run by unpack.test.ts in a fresh process, so that the RSS it reports belongs to unpacking
// alone: builds a 256 MiB layer on the fly (gzip'd by a gzip child process when asked), unpacks
// it into a temp dir, and prints {"growthMiB", "diffSize", "seconds"} as JSON.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tarStream } from "../../tar/writer.ts";
import { unpackLayer } from "../unpack.ts";

const compression = process.argv[2] === "gzip" ? "gzip" : "none";
const MiB = 1 << 20;
const block = new Uint8Array(MiB);
crypto.getRandomValues(block.subarray(0, 65536));
for (let off = 65536; off < MiB; off += 65536) crypto.getRandomValues(block.subarray(off, off + 65536));
function* data(size: number) {
  for (let off = 0; off < size; off += MiB) yield block.subarray(0, Math.min(MiB, size - off));
}
const entries = Array.from({ length: 8 }, (_, i) => ({ name: `big/f${i}`, data: data(32 * MiB), size: 32 * MiB }));
let input: ReadableStream<Uint8Array> = tarStream(entries);
if (compression === "gzip") {
  const gz = Bun.spawn(["gzip", "-1", "-c"], { stdin: "pipe", stdout: "pipe" });
  const tar = input;
  (async () => {
    for await (const chunk of tar) {
      gz.stdin.write(chunk);
      await gz.stdin.flush();
    }
    await gz.stdin.end();
  })();
  input = gz.stdout;
}
let peak = 0;
const counted = new TransformStream<Uint8Array, Uint8Array>({
  transform(chunk, c) {
    peak = Math.max(peak, process.memoryUsage().rss);
    c.enqueue(chunk);
  },
});
Bun.gc(true);
const baseline = process.memoryUsage().rss;
const dir = mkdtempSync(join(tmpdir(), "unpack-mem-"));
const t = performance.now();
try {
  const r = await unpackLayer(input.pipeThrough(counted), dir);
  console.log(JSON.stringify({ growthMiB: (peak - baseline) / MiB, diffSize: r.diffSize, seconds: (performance.now() - t) / 1000 }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
