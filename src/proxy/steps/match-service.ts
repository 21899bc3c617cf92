// Step 2: which service of the session's vault this request is for (or none).
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export function matchService(flow: Flow, ctx: StepContext): void {
  const entry = flow.vault ? ctx.snapshot.vaults.get(flow.vault.id) : undefined;
  flow.service = entry ? entry.matcher.match(flow.host, flow.port, flow.path) : null;
  const carved = entry?.matcher.carvedOut(flow.host, flow.port, flow.path, flow.service);
  if (carved) {
    answer(
      flow,
      "invalid_request",
      `this path may read as under ${carved.host} (service ${carved.name}) on a server that ignores case or ; parameters, though not as sent: send it as that server reads it`,
    );
  }
}
