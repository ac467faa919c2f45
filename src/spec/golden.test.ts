// Golden files: testdata/<name>.input.json → buildSpec → testdata/<name>.golden.json.
// UPDATE_GOLDEN=1 bun test src/spec rewrites the goldens instead of comparing.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSpec, type BuildSpecInput } from "./index.ts";
import { criContainerConfig } from "./test-helpers.ts";

const dir = join(import.meta.dir, "testdata");
const inputs = readdirSync(dir).filter((f) => f.endsWith(".input.json")).sort();

function load(file: string): BuildSpecInput {
  const raw = JSON.parse(readFileSync(join(dir, file), "utf8"));
  return { ...raw, config: criContainerConfig(raw.config) } as BuildSpecInput;
}

describe("buildSpec golden files", () => {
  test("there are golden inputs", () => {
    expect(inputs.length).toBeGreaterThanOrEqual(5);
  });
  for (const file of inputs) {
    const name = file.replace(/\.input\.json$/, "");
    test(name, () => {
      const got = `${JSON.stringify(buildSpec(load(file)), null, 2)}\n`;
      const goldenPath = join(dir, `${name}.golden.json`);
      if (process.env.UPDATE_GOLDEN === "1") {
        writeFileSync(goldenPath, got);
        return;
      }
      expect(got).toBe(readFileSync(goldenPath, "utf8"));
    });
  }
});
