// Who a token belongs to, and what that principal may do right now. Two kinds of token: a session
// (`avs_`, from `run`; optionally acting as an agent) and an agent's own token (`av_agt_`). Both
// resolve to a Principal: its vault, the services it may use (an agent's unexpired grants, a
// session's list, or every service) and the policies that apply. Evaluated per request, so expiry,
// revocation and a revoked grant act on the very next request, inside open tunnels too.
import { type Agent, type Policy } from "./agent.schema.ts";
import { activeGrants } from "./agents.ts";
import { hashToken, isSessionActive } from "./sessions.ts";
import { type Body, type Session, type VaultRecord } from "./state.schema.ts";

export type TokenEntry = { readonly vault: VaultRecord; readonly session: Session; readonly agent?: undefined } | { readonly vault: VaultRecord; readonly agent: Agent; readonly session?: undefined };

/** One policy and whose it is (for refusals that say which rule of whom refused). */
export interface PolicyHolder {
  /** agt_... or s_...: the key of its usage count. */
  readonly id: string;
  /** `agent "claude"` or `session s_...`. */
  readonly owner: string;
  readonly policy: Policy;
  /** Requests counted so far against its usage cap. */
  readonly usage: number;
}

export interface Principal {
  readonly kind: "session" | "agent";
  /** The session id, or the agent id for an agent's own token: tunnels and logs are keyed by it. */
  readonly id: string;
  readonly vault: VaultRecord;
  readonly session: Session | null;
  readonly agent: Agent | null;
  /** Services it may use now; null: every service of the vault. */
  readonly services: ReadonlySet<string> | null;
  readonly policies: readonly PolicyHolder[];
}

/** Token hash → owner, rebuilt once per state version. */
export function indexTokens(body: Body): Map<string, TokenEntry> {
  const index = new Map<string, TokenEntry>();
  for (const vault of body.vaults) {
    for (const session of vault.sessions) index.set(session.token_sha256, { vault, session });
    for (const agent of vault.agents) index.set(agent.token_sha256, { vault, agent });
  }
  return index;
}

function agentPart(agent: Agent, now: number): { services: Set<string>; policies: PolicyHolder[] } {
  return {
    services: new Set(activeGrants(agent, now).map((g) => g.service)),
    policies: agent.policy ? [{ id: agent.id, owner: `agent "${agent.name}"`, policy: agent.policy, usage: agent.usage }] : [],
  };
}

/** The principal behind a token, or why there is none (one line, safe to show the agent). */
export function resolvePrincipal(index: ReadonlyMap<string, TokenEntry>, token: string, now = Date.now()): Principal | { readonly error: string } {
  const entry = index.get(hashToken(token));
  if (!entry) return { error: "the token is not valid" };
  if (entry.agent) {
    const agent = entry.agent;
    if (agent.revoked_at !== null) return { error: `agent "${agent.name}" was revoked` };
    const { services, policies } = agentPart(agent, now);
    return { kind: "agent", id: agent.id, vault: entry.vault, session: null, agent, services, policies };
  }
  const session = entry.session;
  if (!isSessionActive(session, now)) return { error: session.revoked_at ? "the session was revoked" : "the session expired" };
  const own: PolicyHolder[] = session.policy ? [{ id: session.id, owner: `session ${session.id}`, policy: session.policy, usage: session.usage }] : [];
  if (session.agent === null) {
    return { kind: "session", id: session.id, vault: entry.vault, session, agent: null, services: session.services ? new Set(session.services) : null, policies: own };
  }
  const agent = entry.vault.agents.find((a) => a.id === session.agent);
  if (!agent) return { error: "the agent of this session was deleted" };
  if (agent.revoked_at !== null) return { error: `agent "${agent.name}" was revoked` };
  const part = agentPart(agent, now);
  const services = session.services ? new Set([...part.services].filter((s) => session.services!.includes(s))) : part.services;
  return { kind: "session", id: session.id, vault: entry.vault, session, agent, services, policies: [...part.policies, ...own] };
}

/** True while the principal's token would still be accepted (for closing revoked tunnels). */
export function isPrincipalLive(body: Body, id: string, now = Date.now()): boolean {
  for (const vault of body.vaults) {
    const agent = vault.agents.find((a) => a.id === id);
    if (agent) return agent.revoked_at === null;
    const session = vault.sessions.find((s) => s.id === id);
    if (session) {
      if (!isSessionActive(session, now)) return false;
      if (session.agent === null) return true;
      const owner = vault.agents.find((a) => a.id === session.agent);
      return owner !== undefined && owner.revoked_at === null;
    }
  }
  return false;
}
