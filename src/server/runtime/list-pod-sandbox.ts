// ListPodSandbox: every sandbox, or those matching the filter (ID or unique ID prefix, state,
// and every label of the selector). An ID matching nothing, or ambiguously, lists nothing.
import type { ListPodSandboxRequest, ListPodSandboxResponse } from "../../proto/index.ts";
import type { SandboxRecord } from "../../state/sandboxes.ts";
import type { ServerContext } from "../context.ts";
import { refreshSandboxState } from "./infra-container.ts";
import { criSandbox, criState } from "./sandbox-common.ts";

export function listPodSandboxHandler(ctx: ServerContext) {
  return async (req: ListPodSandboxRequest): Promise<ListPodSandboxResponse> => {
    await Promise.all(ctx.sandboxes.list().map((rec) => refreshSandboxState(ctx, rec)));
    const f = req.filter;
    let items: SandboxRecord[];
    if (f !== undefined && f.id !== "") {
      let one: SandboxRecord | undefined;
      try {
        one = ctx.sandboxes.find(f.id);
      } catch {
        one = undefined; // ambiguous prefix: CRI-O lists nothing
      }
      items = one ? [one] : [];
    } else {
      items = ctx.sandboxes.list();
    }
    if (f?.state !== undefined) items = items.filter((r) => criState(r) === f.state!.state);
    const selector = Object.entries(f?.labelSelector ?? {});
    if (selector.length > 0) items = items.filter((r) => selector.every(([k, v]) => r.labels[k] === v));
    items.sort((a, b) => (BigInt(a.createdNs) < BigInt(b.createdNs) ? -1 : 1));
    return { items: items.map(criSandbox) };
  };
}
