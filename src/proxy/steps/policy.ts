// Step 3: may this request go at all? Answered here, before any dial:
// - a disabled service (403 service_disabled);
// - a service the principal may not use: outside a session's list, or without an unexpired grant
//   for an agent (403 host_not_allowed);
// - a policy of the agent or session: time windows, method and path rules (403 policy_denied,
//   naming the rule), the usage cap (403 policy_denied), the rate limit (429 rate_limited with
//   Retry-After and RateLimit-* headers);
// - an unmatched host under the `deny` policy (403 host_not_allowed with a proposal_hint).
import { refusalOf } from "../../vault/policy.ts";
import { proposalHintFor } from "../proposal-hint.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

/** Headers some servers (Google's APIs, method-override middleware) read as the request's method. */
const METHOD_OVERRIDES = ["x-http-method-override", "x-http-method", "x-method-override"] as const;

export function applyPolicy(flow: Flow, ctx: StepContext): void {
  const service = flow.service;
  const principal = flow.principal;
  if (service) {
    if (!service.enabled) return answer(flow, "service_disabled", `service "${service.name}" is disabled`);
    if (principal?.services && !principal.services.has(service.name)) {
      if (principal.agent) {
        return answer(flow, "host_not_allowed", `agent "${principal.agent.name}" has no unexpired grant for service "${service.name}"`, {
          hint: `agent-vault agent grant ${principal.agent.name} --service ${service.name}`,
        });
      }
      return answer(flow, "host_not_allowed", `this session may not use service "${service.name}"`);
    }
  } else if (flow.vault?.settings.unmatched === "deny") {
    return answer(flow, "host_not_allowed", `no service in vault "${flow.vault?.name ?? "?"}" covers ${flow.host}`, {
      proposal_hint: proposalHintFor(flow.host, flow.port),
    });
  }
  const holders = principal?.policies ?? [];
  if (holders.length === 0) return;
  // The rules judge the request line's method; a server that honours an override header would act
  // on another one (POST + X-HTTP-Method-Override: DELETE past `deny DELETE`), so none passes here.
  const ruled = !!service && holders.some((h) => h.policy.rules?.some((r) => r.service === service.name));
  const override = ruled ? METHOD_OVERRIDES.find((name) => flow.headers[name] !== undefined && String(flow.headers[name]).trim().toUpperCase() !== flow.method.toUpperCase()) : undefined;
  if (override) {
    // The header's value is the agent's: not repeated in the answer or the log.
    const rule = `no ${override} under a policy`;
    return answer(flow, "policy_denied", `the policy of ${holders[0]!.owner} refuses this request: ${override} would change the method its rules judge; send that method itself`, { rule });
  }
  for (const holder of holders) {
    const refusal = refusalOf(holder.policy, service?.name ?? null, flow.method, flow.path, ctx.now);
    if (refusal) return answer(flow, "policy_denied", `the policy of ${holder.owner} refuses this request: ${refusal}`, { rule: refusal });
    const cap = holder.policy.usage_cap;
    if (cap !== undefined && holder.usage + ctx.limits.unflushed(holder.id) >= cap) {
      return answer(flow, "policy_denied", `the policy of ${holder.owner} refuses this request: usage cap of ${cap} requests reached`, { rule: `usage cap: ${cap} requests` });
    }
  }
  const rate = ctx.limits.takeRate(holders, ctx.now);
  if (rate.refusedBy) {
    const limit = rate.refusedBy.policy.rate_limit!.requests_per_minute;
    answer(flow, "rate_limited", `the policy of ${rate.refusedBy.owner} allows ${limit} requests per minute; retry in ${rate.headers["retry-after"]} s`, {
      rule: `rate limit: ${limit} requests per minute`,
    });
    flow.answer = { ...flow.answer!, headers: rate.headers };
    return;
  }
  flow.responseHeaders = rate.headers;
  ctx.limits.count(holders);
}
