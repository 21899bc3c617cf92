// Every decision the proxy makes, in order, in one place (mitmproxy's addons, STYLE: the pipeline
// is visible in one file). Each step is a small function over a Flow, run at one event: a CONNECT,
// a request, an upstream 401, the sweep of open connections. A step that answers early sets
// flow.answer and the rest are skipped. The listener, tunnels, WebSocket relay and exchange only
// move bytes: what they do differently for a flow is read off fields these steps set.
import { type Flow } from "./flow.ts";
import { type Step, type StepContext } from "./step-context.ts";
import { guardRequest } from "./steps/guard.ts";
import { authenticate } from "./steps/authenticate.ts";
import { limitConnections } from "./steps/connections.ts";
import { stripHeaders } from "./steps/headers.ts";
import { planRanges } from "./steps/ranges.ts";
import { injectCredential } from "./steps/inject.ts";
import { substitutePlaceholders } from "./steps/placeholders.ts";
import { matchService } from "./steps/match-service.ts";
import { guardNetwork } from "./steps/netguard.ts";
import { refreshAfterUnauthorized, refreshOAuth } from "./steps/oauth.ts";
import { chooseInspection } from "./steps/inspect.ts";
import { guardPassthrough, routeTunnel } from "./steps/route.ts";
import { isStillAllowed } from "./steps/sweep.ts";
import { applyPolicy } from "./steps/policy.ts";
import { holdForApproval } from "./steps/hold.ts";
import { fetchSources } from "./steps/sources.ts";

/** A CONNECT, before the tunnel opens: who is asking, and whether we read the tunnel or pass it on. */
export const ON_CONNECT: readonly Step[] = [authenticate, limitConnections, routeTunnel, guardPassthrough];

/**
 * Each request read from the agent (in a tunnel, plain, or on the explicit /proxy/ route) and each
 * WebSocket handshake, before anything goes upstream. The exchange then reads the body under the
 * guard if guardBody is set, puts values for placeholders in it if substitutions is set,
 * scrubs the response if scrubBody is set (a ranged part masked and cut to the agent's range if
 * range is set), and on a 401 calls onUnauthorized.
 */
export const ON_REQUEST: readonly Step[] = [
  authenticate,
  matchService,
  applyPolicy,
  chooseInspection,
  stripHeaders,
  guardRequest,
  holdForApproval,
  refreshOAuth,
  fetchSources,
  substitutePlaceholders,
  injectCredential,
  planRanges,
  guardNetwork,
];

/** The request steps (tests run a few of them by name). */
export const PIPELINE = ON_REQUEST;

/**
 * The upstream answered 401 to a request that carried OAuth tokens: refresh them once and inject
 * again; true sends the request once more.
 */
export function onUnauthorized(flow: Flow, ctx: StepContext): (() => Promise<boolean>) | undefined {
  if (flow.oauthUsed.length === 0) return undefined;
  // Injected again from the headers as they were before inject, so the range is planned again too.
  return () =>
    refreshAfterUnauthorized(flow, ctx, (f, c) => {
      injectCredential(f, c);
      if (!f.answer) planRanges(f, c);
    });
}

/** Every 500 ms, per open tunnel and WebSocket: false closes it (steps/sweep.ts). */
export const ON_SWEEP = isStillAllowed;

export async function runPipeline(flow: Flow, ctx: StepContext, steps: readonly Step[] = ON_REQUEST): Promise<void> {
  for (const step of steps) {
    if (flow.answer) return;
    // Most steps are synchronous: awaiting only the ones that return a promise saves a microtask
    // turn and a promise per step on every request.
    const pending = step(flow, ctx);
    if (pending) await pending;
  }
}
