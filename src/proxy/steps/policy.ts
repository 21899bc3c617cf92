// Step 3: may this request go at all? Answered here, before any dial:
// - a disabled service (403 service_disabled);
// - a service the principal may not use: outside a session's list, or without an unexpired grant
//   for an agent (403 host_not_allowed);
// - a policy of the agent or session: time windows, method and path rules (403 policy_denied,
//   naming the rule), the usage cap (403 policy_denied), the rate limit (429 rate_limited with
//   Retry-After and RateLimit-* headers);
// - an unmatched host under the `deny` policy (403 host_not_allowed with a proposal_hint);
// - a target starting `//` or holding a `\` or a `#` (400 invalid_request), on every route.
import { type Answer, problem } from "../../shared/answers.ts";
import { type ServiceRule } from "../../vault/agent.schema.ts";
import { refusalOf } from "../../vault/policy.ts";
import { proposalHintFor } from "../proposal-hint.ts";
import { answer, type Flow } from "../flow.ts";
import { bodyKinds, bodyMethods, queryMethods, sniffedKinds } from "../method-params.ts";
import { GUARD_BUFFER_BYTES } from "../request-body.ts";
import { type StepContext } from "../step-context.ts";
import { type AccessLimits } from "../limits.ts";
import { type PolicyHolder } from "../../vault/principals.ts";

/**
 * Headers some servers (Google's APIs, method-override middleware) read as the request's method,
 * spelt with `-` or `_` alike: Rack and CGI servers that keep underscore headers map
 * `X_HTTP_METHOD_OVERRIDE` to the same HTTP_X_HTTP_METHOD_OVERRIDE as the dashed name.
 */
const METHOD_OVERRIDE = /^x[-_](?:http[-_]method(?:[-_]override)?|method[-_]override)$/;

/** Whether a rule's answer can depend on the method: it names methods somewhere. */
function namesMethods(rule: ServiceRule): boolean {
  return !!rule.methods || !!rule.deny?.some((d) => d.methods) || !!rule.approve?.some((a) => a.methods);
}

function hasBody(flow: Flow): boolean {
  const length = flow.headers["content-length"];
  return flow.headers["transfer-encoding"] !== undefined || (length !== undefined && String(length) !== "0");
}

/**
 * The rules judge one method, the request line's. A server may act on another the request carries:
 * an override header, a `_method` parameter in the query or in the body (method-params.ts). Under
 * rules that name methods, a request carrying any method other than its own is refused (the
 * policy could allow it only by ignoring that method); the value is the agent's and is not
 * repeated. The body is read later, by the exchange: its `_method` is looked for there, after the
 * guard read it whole and before anything is dialled (flow.checkWholeBody, which hold.ts chains).
 */
function refuseOtherMethods(flow: Flow, owner: string): void {
  const own = flow.method.toUpperCase();
  const refuse = (carrier: string): Answer =>
    problem("policy_denied", `the policy of ${owner} refuses this request: ${carrier} would change the method its rules judge; send that method itself`, {
      rule: `no ${carrier.replace(/^an? /, "").replace(/ \(.*\)$/, "")} under a policy`,
    });
  const header = Object.keys(flow.headers).find((name) => METHOD_OVERRIDE.test(name) && String(flow.headers[name]).trim().toUpperCase() !== own);
  const refusal = header ? refuse(header) : queryMethods(flow.path).some((m) => m !== own) ? refuse("a _method query parameter (or another method override)") : null;
  if (refusal) return answer(flow, refusal.code, refusal.message, refusal.extra);
  if (!hasBody(flow)) return;
  const contentType = flow.headers["content-type"];
  const declared = bodyKinds(contentType, flow.method);
  const length = flow.headers["content-length"] === undefined ? null : Number(flow.headers["content-length"]);
  // A body of a type a framework reads fields from is read whole (refused past the buffer). Any
  // other body is read as JSON and as a form too when its declared length fits the buffer: some
  // servers parse every type (body-parser with type */*). One past it, or chunked, streams as sent
  // (uploads under a policy that names methods keep working; docs/security.md says what that leaves).
  const fits = length !== null && length <= GUARD_BUFFER_BYTES;
  if (declared.length === 0 && !fits) return;
  if (!fits && length !== null) {
    const rule = "no _method field under a policy";
    return answer(
      flow,
      "policy_denied",
      `the policy of ${owner} refuses this request: under rules that name methods, a ${declared[0]} body is read whole to look for a _method field, and this one is larger than ${GUARD_BUFFER_BYTES} bytes`,
      { rule },
    );
  }
  const kinds = fits ? sniffedKinds(contentType, flow.method) : declared;
  flow.checkWholeBody = async (body) => (kinds.some((kind) => bodyMethods(body.decoded, kind).some((m) => m !== own)) ? refuse("a _method field in the body (or another method override)") : null);
}

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
  // A target `//host/x` is a network-path reference to a server that resolves it as a URL (`new
  // URL(target, base)`, urljoin): it would act on /x of "host" while the rules judged /host/x. A
  // WHATWG URL reads `\` in a path as `/` (`/\host/x`, `/repos/a\..\..\admin`), which the rules
  // do not. Refused rather than rewritten: the agent sends the path it means.
  if (flow.path.startsWith("//")) {
    return answer(flow, "invalid_request", "the request target starts with //, which a server may read as another host (//host/path): send the path with one leading slash");
  }
  if (flow.path.split("?")[0]!.includes("\\")) {
    return answer(flow, "invalid_request", "the request path has a backslash, which some servers read as /: send / or %5C");
  }
  // A fragment is never part of a request target (RFC 9112 3.2): the rules judge the path before a
  // `#`, and a server that does not cut there would act on what follows it (`/repos/a#/../../admin`).
  if (flow.path.includes("#")) {
    return answer(flow, "invalid_request", "the request target has a #, which no client sends (a fragment stays in the client): send it as %23");
  }
  const holders = principal?.policies ?? [];
  if (holders.length === 0) return;
  const ruling = service ? holders.find((h) => h.policy.rules?.some((r) => r.service === service.name && namesMethods(r))) : undefined;
  if (ruling) {
    refuseOtherMethods(flow, ruling.owner);
    if (flow.answer) return;
  }
  for (const holder of holders) {
    const refusal = refusalOf(holder.policy, service?.name ?? null, flow.method, flow.path, ctx.now);
    if (refusal) return answer(flow, "policy_denied", `the policy of ${holder.owner} refuses this request: ${refusal}`, { rule: refusal });
  }
  const limited = takeLimits(holders, ctx.limits, ctx.now);
  if ("refused" in limited) {
    const { code, message, rule } = limited.refused;
    answer(flow, code, message, { rule });
    if (limited.headers) flow.answer = { ...flow.answer!, headers: limited.headers };
    return;
  }
  flow.responseHeaders = limited.headers;
}

export interface LimitRefusal {
  readonly code: "policy_denied" | "rate_limited";
  readonly message: string;
  readonly rule: string;
}

/**
 * The usage caps and rate limits of the principal's policies: one request taken and counted, or
 * the refusal. A WebSocket's every message from the agent is taken here too (listener.ts), else an
 * open socket would be a way past both.
 */
export function takeLimits(holders: readonly PolicyHolder[], limits: AccessLimits, now: number): { headers: Record<string, string> } | { refused: LimitRefusal; headers?: Record<string, string> } {
  for (const holder of holders) {
    const cap = holder.policy.usage_cap;
    if (cap !== undefined && holder.usage + limits.unflushed(holder.id) >= cap) {
      return {
        refused: {
          code: "policy_denied",
          message: `the policy of ${holder.owner} refuses this request: usage cap of ${cap} ${cap === 1 ? "request" : "requests"} reached`,
          rule: `usage cap: ${cap} ${cap === 1 ? "request" : "requests"}`,
        },
      };
    }
  }
  const rate = limits.takeRate(holders, now);
  if (rate.refusedBy) {
    const limit = rate.refusedBy.policy.rate_limit!.requests_per_minute;
    return {
      refused: {
        code: "rate_limited",
        message: `the policy of ${rate.refusedBy.owner} allows ${limit} requests per minute; retry in ${rate.headers["retry-after"]} s`,
        rule: `rate limit: ${limit} requests per minute`,
      },
      headers: rate.headers,
    };
  }
  limits.count(holders);
  return { headers: rate.headers };
}
