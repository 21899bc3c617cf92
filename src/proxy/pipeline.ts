// The proxy's policy, in order, in one place (STYLE: the pipeline is visible in one file). Each
// step is a small function over a Flow; a step that answers early sets flow.answer and the rest
// are skipped. Forwarding and the request log follow in the adapter.
import { type VaultStore } from "../vault/vault.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type Flow } from "./flow.ts";
import { type Pattern } from "./secrets.ts";
import { type RequestTails } from "./tails.ts";
import { guardRequest } from "./steps/guard.ts";
import { type AccessLimits } from "./limits.ts";
import { type NetguardOptions } from "./netguard.ts";
import { type Snapshot } from "./state.ts";
import { authenticate } from "./steps/authenticate.ts";
import { stripHeaders } from "./steps/headers.ts";
import { dropRanges } from "./steps/ranges.ts";
import { injectCredential } from "./steps/inject.ts";
import { matchService } from "./steps/match-service.ts";
import { guardNetwork } from "./steps/netguard.ts";
import { type OAuthRefresher } from "../oauth/refresh.ts";
import { refreshOAuth } from "./steps/oauth.ts";
import { applyPolicy } from "./steps/policy.ts";

export interface ProxyOptions {
  readonly netguard: NetguardOptions;
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
}

export interface StepContext {
  readonly snapshot: Snapshot;
  readonly store: VaultStore;
  readonly options: ProxyOptions;
  readonly now: number;
  /** Refreshes OAuth tokens, one flight per credential, shared by every request of this proxy. */
  readonly oauth: OAuthRefresher;
  /** Rate limits and usage counts of agents' and sessions' policies. */
  readonly limits: AccessLimits;
  /** The vault's credential values as patterns for the guard and scrubbing (cached per state version). */
  readonly secrets: (vault: VaultRecord) => readonly Pattern[];
  /** What each principal last sent each host (the guard joins it to the next request). */
  readonly tails?: RequestTails;
}

export type Step = (flow: Flow, ctx: StepContext) => void | Promise<void>;

export const PIPELINE: readonly Step[] = [authenticate, matchService, applyPolicy, stripHeaders, dropRanges, guardRequest, refreshOAuth, injectCredential, guardNetwork];

export async function runPipeline(flow: Flow, ctx: StepContext, steps: readonly Step[] = PIPELINE): Promise<void> {
  for (const step of steps) {
    if (flow.answer) return;
    await step(flow, ctx);
  }
}
