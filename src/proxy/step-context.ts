// What every step of pipeline.ts is given: the vault as of this request, the proxy's options and
// the shared helpers (OAuth refresh, source values, rate limits, the guard's patterns). Apart from
// pipeline.ts, which imports the steps, so that a step's import of these types runs one way.
import { type NetguardOptions } from "../net/netguard.ts";
import { type OAuthRefresher } from "../oauth/refresh.ts";
import { type SourceCache } from "../sources/cache.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { type Flow } from "./flow.ts";
import { type AccessLimits } from "./limits.ts";
import { type Pattern } from "./secrets.ts";
import { type Snapshot } from "./state.ts";
import { type RequestTails } from "./tails.ts";

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
  /** Values of source credentials, one fetch per credential, shared by every request of this proxy. */
  readonly sources?: SourceCache;
  /** Rate limits and usage counts of agents' and sessions' policies. */
  readonly limits: AccessLimits;
  /** The vault's credential values as patterns for the guard and scrubbing (cached per state version). */
  readonly secrets: (vault: VaultRecord) => readonly Pattern[];
  /** What each principal last sent each host (the guard joins it to the next request). */
  readonly tails?: RequestTails;
  /** How many tunnels and WebSockets a principal holds open through this proxy. */
  readonly openConnections?: (principal: string) => number;
}

export type Step = (flow: Flow, ctx: StepContext) => void | Promise<void>;
