// Test helper run as a separate process: opens a store and starts creating a layer whose
// populate callback writes a file, prints "POPULATING <layer id>" and never returns, so the
// test can SIGKILL it mid-populate.
//   bun crash-child.ts <root> <runroot> [parent]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Store } from "../store.ts";

const [root, runroot, parent] = process.argv.slice(2) as [string, string, string | undefined];
const store = await Store.open({ root, runroot, driver: "overlay" });
await store.createLayer({ parent, names: ["half-done"] }, async (diffDir) => {
  writeFileSync(join(diffDir, "partial"), "x".repeat(4096));
  const id = diffDir.split("/").at(-2);
  console.log(`POPULATING ${id}`);
  await new Promise(() => {}); // hang until killed
  throw new Error("unreachable");
});
