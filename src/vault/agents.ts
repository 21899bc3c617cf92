// Agents of one vault: create (the token is returned once), rotate, revoke, delete, grant and
// revoke grants, set a policy. Tokens are kept only as SHA-256 hashes, like session tokens.
import { randomBytes } from "node:crypto";
import { AgentVaultError } from "../shared/errors.ts";
import { describeProblem } from "./issues.ts";
import { type Agent, AgentNameSchema, type Policy, PolicySchema } from "./agent.schema.ts";
import { randomHex } from "./crypto.ts";
import { hashToken } from "./sessions.ts";
import { type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";
import { didYouMean } from "../shared/suggest.ts";

export const AGENT_TOKEN_PREFIX = "av_agt_";

export function checkAgentName(name: string): string {
  const parsed = AgentNameSchema.safeParse(name);
  if (!parsed.success) throw new AgentVaultError("invalid_argument", `invalid agent name "${name.slice(0, 80)}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export function findAgent(vault: VaultRecord, name: string): Agent {
  const agent = vault.agents.find((a) => a.name === name);
  if (!agent) throw new AgentVaultError("not_found", `no agent "${name.slice(0, 80)}" in vault "${vault.name}"`, { hint: "list agents with `agent-vault agent list`" });
  return agent;
}

function newToken(): { token: string; hash: string; hint: string } {
  const token = `${AGENT_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { token, hash: hashToken(token), hint: token.slice(0, AGENT_TOKEN_PREFIX.length + 4) };
}

/** Unexpired grants at `now`. */
export function activeGrants(agent: Agent, now = Date.now()): Agent["grants"] {
  return agent.grants.filter((g) => g.expires_at === null || Date.parse(g.expires_at) > now);
}

export async function createAgent(store: VaultStore, vaultName: string, name: string, description = ""): Promise<{ token: string; agent: Agent }> {
  checkAgentName(name);
  if (description.length > 500) throw new AgentVaultError("invalid_argument", "the description is longer than 500 characters");
  const { token, hash, hint } = newToken();
  const agent: Agent = {
    id: `agt_${randomHex(6)}`,
    name,
    description,
    token_sha256: hash,
    token_hint: hint,
    created_at: new Date().toISOString(),
    rotated_at: null,
    revoked_at: null,
    grants: [],
    policy: null,
    usage: 0,
  };
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    if (vault.agents.some((a) => a.name === name))
      throw new AgentVaultError("conflict", `vault "${vault.name}" already has an agent "${name}"`, { hint: "choose another name, or `agent rotate` it for a new token" });
    vault.agents.push(agent);
    store.audit.record({ kind: "agent_changed", vault: vault.name, agent: name, detail: "created" });
  });
  return { token, agent };
}

/** Updates one agent in one write; `change` may throw to refuse. */
async function updateAgent(store: VaultStore, vaultName: string, name: string, change: (agent: Agent, vault: VaultRecord) => void): Promise<Agent> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    const agent = findAgent(vault, name);
    change(agent, vault);
    return agent;
  });
}

/** A new token; the old one stops working at once. A revoked agent comes back to life this way. */
export async function rotateAgent(store: VaultStore, vaultName: string, name: string): Promise<{ token: string; agent: Agent }> {
  const { token, hash, hint } = newToken();
  const agent = await updateAgent(store, vaultName, name, (a, vault) => {
    store.audit.record({ kind: "agent_changed", vault: vault.name, agent: a.name, detail: a.revoked_at === null ? "token rotated" : "token rotated (revoked agent restored)" });
    a.token_sha256 = hash;
    a.token_hint = hint;
    a.rotated_at = new Date().toISOString();
    a.revoked_at = null;
  });
  return { token, agent };
}

export async function revokeAgent(store: VaultStore, vaultName: string, name: string): Promise<Agent> {
  return updateAgent(store, vaultName, name, (a, vault) => {
    if (a.revoked_at === null) a.revoked_at = new Date().toISOString();
    store.audit.record({ kind: "agent_changed", vault: vault.name, agent: a.name, detail: "revoked" });
  });
}

export async function deleteAgent(store: VaultStore, vaultName: string, name: string): Promise<void> {
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    const agent = findAgent(vault, name);
    vault.agents = vault.agents.filter((a) => a.id !== agent.id);
    // Sessions started as this agent end with it.
    const now = new Date().toISOString();
    for (const s of vault.sessions) if (s.agent === agent.id && s.revoked_at === null) s.revoked_at = now;
    store.audit.record({ kind: "agent_changed", vault: vault.name, agent: agent.name, detail: "deleted" });
  });
}

/** Grants (or re-grants, replacing the expiry) each service; ttlMs null: until revoked. */
export async function grantServices(store: VaultStore, vaultName: string, name: string, services: readonly string[], ttlMs: number | null, by: string, now = Date.now()): Promise<Agent> {
  if (services.length === 0) throw new AgentVaultError("invalid_argument", "name at least one --service");
  return updateAgent(store, vaultName, name, (agent, vault) => {
    for (const service of services) {
      if (!vault.services.some((s) => s.name === service)) {
        throw new AgentVaultError(
          "service_not_found",
          `no service "${service.slice(0, 80)}" in vault "${vault.name}"${didYouMean(
            service,
            vault.services.map((s) => s.name),
          )}`,
        );
      }
    }
    const stamp = new Date(now).toISOString();
    const expires = ttlMs === null ? null : new Date(now + ttlMs).toISOString();
    agent.grants = [...agent.grants.filter((g) => !services.includes(g.service)), ...services.map((service) => ({ service, created_at: stamp, expires_at: expires, by }))];
    store.audit.record({ kind: "grant_added", vault: vault.name, agent: agent.name, services: [...services], by, ...(expires ? { detail: `until ${expires}` } : {}) });
  });
}

export async function revokeGrants(store: VaultStore, vaultName: string, name: string, services: readonly string[]): Promise<Agent> {
  if (services.length === 0) throw new AgentVaultError("invalid_argument", "name at least one --service");
  return updateAgent(store, vaultName, name, (agent, vault) => {
    const missing = services.filter((s) => !agent.grants.some((g) => g.service === s));
    if (missing.length > 0) throw new AgentVaultError("not_found", `agent "${agent.name}" has no grant for ${missing.join(", ")}`);
    agent.grants = agent.grants.filter((g) => !services.includes(g.service));
    store.audit.record({ kind: "grant_revoked", vault: vault.name, agent: agent.name, services: [...services] });
  });
}

/** Checks a policy from a file or the API; the error names the offending field (and a near-miss). */
export function parsePolicy(input: unknown): Policy {
  const parsed = PolicySchema.safeParse(input);
  if (!parsed.success) {
    const problem = describeProblem(parsed.error, input, PolicySchema);
    throw new AgentVaultError("invalid_argument", `policy: ${problem.text}`, { details: { path: problem.path } });
  }
  return parsed.data;
}

/**
 * Refuses a policy with a rule for a service the vault does not have: such a rule restricts
 * nothing (a typo like "canry" would leave the session or agent unrestricted), so it is an error
 * wherever a policy is set (`agent policy`, `run --policy`), with a near-miss named.
 */
export function checkPolicyServices(policy: Policy | null, vault: Pick<VaultRecord, "name" | "services">, where = ""): void {
  for (const rule of policy?.rules ?? []) {
    if (!vault.services.some((s) => s.name === rule.service))
      throw new AgentVaultError(
        "service_not_found",
        `${where ? `${where}: ` : ""}policy rule for unknown service "${rule.service.slice(0, 80)}" in vault "${vault.name}"${didYouMean(
          rule.service,
          vault.services.map((s) => s.name),
        )}`,
        { hint: "`agent-vault vault service list` shows the services; a rule for a service that is not there would restrict nothing" },
      );
  }
}

export async function setAgentPolicy(store: VaultStore, vaultName: string, name: string, policy: Policy | null): Promise<Agent> {
  return updateAgent(store, vaultName, name, (agent, vault) => {
    checkPolicyServices(policy, vault);
    agent.policy = policy;
    store.audit.record({ kind: "agent_changed", vault: vault.name, agent: agent.name, detail: policy === null ? "policy cleared" : "policy set" });
  });
}

/** Adds counted requests (the proxy flushes its counters in batches). */
export async function addUsage(store: VaultStore, counts: ReadonlyMap<string, number>): Promise<void> {
  if (counts.size === 0) return;
  await store.update((body) => {
    for (const vault of body.vaults) {
      for (const agent of vault.agents) agent.usage += counts.get(agent.id) ?? 0;
      for (const session of vault.sessions) session.usage += counts.get(session.id) ?? 0;
    }
  });
}
