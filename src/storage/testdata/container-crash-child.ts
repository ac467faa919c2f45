// Test helper run as a separate process: opens a store and starts creating a container, stopping
// forever at `step` ("layer": the incomplete layer is saved; "record": the container record is
// saved too) after printing "AT <container id> <layer id>", so the test can SIGKILL it there.
//   bun container-crash-child.ts <root> <runroot> <step> [image]
import { createContainerHooks, Store } from "../store.ts";

const [root, runroot, step, image] = process.argv.slice(2) as [string, string, string, string | undefined];
const store = await Store.open({ root, runroot, driver: "overlay" });
createContainerHooks.afterStep = async (at, ids) => {
  if (at !== step) return;
  console.log(`AT ${ids.container} ${ids.layer}`);
  await new Promise(() => {}); // hang until killed
};
await store.createContainer({ names: ["half-made"], imageId: image, metadata: "{}" });
