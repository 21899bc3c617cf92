// Step 2: which service of the session's vault this request is for (or none).
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export function matchService(flow: Flow, ctx: StepContext): void {
  const entry = flow.vault ? ctx.snapshot.vaults.get(flow.vault.id) : undefined;
  flow.service = entry ? entry.matcher.match(flow.host, flow.port, flow.path) : null;
}
