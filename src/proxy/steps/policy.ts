// Step 3: may this request go at all? A disabled service, a service outside the session's grant,
// or an unmatched host under the `deny` policy is answered with 403 here, before any dial.
import { proposalHintFor } from "../proposal-hint.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../pipeline.ts";

export function applyPolicy(flow: Flow, _ctx: StepContext): void {
  const service = flow.service;
  const session = flow.session?.session;
  if (service) {
    if (!service.enabled) return answer(flow, 403, "service_disabled", `service "${service.name}" is disabled`);
    if (session?.services && !session.services.includes(service.name)) {
      return answer(flow, 403, "host_not_allowed", `this session may not use service "${service.name}"`);
    }
    return;
  }
  if (flow.vault?.settings.unmatched === "deny") {
    return answer(flow, 403, "host_not_allowed", `no service in vault "${flow.vault?.name ?? "?"}" covers ${flow.host}`, {
      proposal_hint: proposalHintFor(flow.host, flow.port),
    });
  }
}
