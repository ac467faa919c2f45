// ListContainers with the CRI filter: ID (or unique prefix), state, pod sandbox ID (or prefix),
// label selector (all pairs must match).
import type { ListContainersRequest, ListContainersResponse } from "../../proto/index.ts";
import type { ServerContext } from "../context.ts";
import { criState, toCriContainer } from "./container-common.ts";

export function listContainersHandler(ctx: ServerContext) {
  return async (req: ListContainersRequest): Promise<ListContainersResponse> => {
    const f = req.filter;
    let recs = ctx.containers.list();
    if (f?.id) {
      let one;
      try {
        one = ctx.containers.find(f.id);
      } catch {
        one = undefined; // an ambiguous prefix matches nothing
      }
      recs = one ? [one] : [];
    }
    if (f?.podSandboxId) {
      let sbId: string | undefined;
      try {
        sbId = ctx.sandboxes.find(f.podSandboxId)?.id;
      } catch {
        sbId = undefined;
      }
      recs = sbId === undefined ? [] : recs.filter((r) => r.sandboxId === sbId);
    }
    await Promise.all(recs.map((r) => ctx.exits.poll(r)));
    if (f?.state) recs = recs.filter((r) => criState(r) === f.state!.state);
    const sel = Object.entries(f?.labelSelector ?? {});
    if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.labels[k] === v));
    return { containers: recs.map(toCriContainer) };
  };
}
