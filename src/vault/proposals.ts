// Proposals of one vault: an agent files one, a person approves (supplying values) or rejects it.
// Approval applies every service and credential change in one vault write, or nothing; a proposal
// is decided once, also when two reviewers race (the lock serializes them; the second sees it
// decided). Values never appear in a view, a message or the audit.
import { AgentVaultError, formatIssuePath } from "../shared/errors.ts";
import { PROPOSAL_VALUE_KIND } from "./sealed-kinds.ts";
import { type CredentialRecord } from "./credential.schema.ts";
import { CREDENTIAL_KIND } from "./credentials.ts";
import { makeSourceSpec } from "./source.schema.ts";
import { MAX_PENDING_PROPOSALS, type Proposal, type ProposalInput, ProposalInputSchema, PROPOSAL_TTL_MS, type ProposalStatus, type StoredSlot } from "./proposal.schema.ts";
import { credentialKeysOf, type Service } from "./service.schema.ts";
import { type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";

export function statusOf(proposal: Proposal, now = Date.now()): ProposalStatus {
  return proposal.status === "pending" && Date.parse(proposal.expires_at) <= now ? "expired" : proposal.status;
}

/** Parses an untrusted proposal body; the error names the first offending field. */
export function parseProposalInput(input: unknown): ProposalInput {
  const parsed = ProposalInputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An unknown field is named itself, not only its parent.
    const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue.path;
    throw new AgentVaultError("invalid_request", `${formatIssuePath(path)}: ${issue.message}`, { details: { field: formatIssuePath(path) } });
  }
  return parsed.data;
}

/** Every key a set-service names must exist in the vault or be set by the same proposal. */
function checkReferences(vault: VaultRecord, services: Proposal["services"], credentials: readonly { action: string; key: string }[]): void {
  const setKeys = new Set(credentials.filter((c) => c.action === "set").map((c) => c.key));
  const deleted = new Set(credentials.filter((c) => c.action === "delete").map((c) => c.key));
  services.forEach((service, i) => {
    if (service.action !== "set") return;
    for (const key of credentialKeysOf(service.auth)) {
      if (setKeys.has(key) || (key in vault.credentials && !deleted.has(key))) continue;
      throw new AgentVaultError("invalid_request", `services[${i}].auth: credential ${key} is not in vault "${vault.name}" and the proposal does not set it`, {
        details: { field: `services[${i}].auth` },
      });
    }
  });
}

export async function fileProposal(store: VaultStore, vaultName: string, input: ProposalInput, sessionId: string | null, now = Date.now()): Promise<Proposal> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    checkReferences(vault, input.services, input.credentials);
    const pending = vault.proposals.filter((p) => statusOf(p, now) === "pending").length;
    if (pending >= MAX_PENDING_PROPOSALS) {
      throw new AgentVaultError("too_many_pending_proposals", `vault "${vault.name}" already has ${pending} pending proposals`);
    }
    const id = vault.proposal_seq + 1;
    const credentials: StoredSlot[] = input.credentials.map((slot) => {
      if (slot.action === "delete") return slot;
      const { value, ...given } = slot;
      const rest = given.source !== undefined ? { ...given, type: "source" as const } : given;
      return value === undefined ? rest : { ...rest, sealed_value: store.sealValue(PROPOSAL_VALUE_KIND, vault.id, `${id}:${slot.key}`, value) };
    });
    const created = new Date(now).toISOString();
    const proposal: Proposal = {
      id,
      status: "pending",
      created_at: created,
      expires_at: new Date(now + PROPOSAL_TTL_MS).toISOString(),
      session_id: sessionId,
      services: input.services,
      credentials,
      message: input.message,
      ...(input.user_message !== undefined ? { user_message: input.user_message } : {}),
      audit: [{ at: created, action: "filed", by: sessionId ? `session ${sessionId}` : "cli" }],
    };
    vault.proposal_seq = id;
    vault.proposals.push(proposal);
    store.audit.record({ kind: "proposal_filed", vault: vault.name, proposal: id, session: sessionId, keys: input.credentials.map((c) => c.key), services: input.services.map((s) => s.name) });
    return proposal;
  });
}

export function findProposal(vault: VaultRecord, id: number): Proposal {
  const proposal = vault.proposals.find((p) => p.id === id);
  if (!proposal) throw new AgentVaultError("proposal_not_found", `no proposal #${id} in vault "${vault.name}"`);
  return proposal;
}

/**
 * The proposals a caller filed, the only ones the agent API shows it: another session's proposals
 * (their ids, messages, what they ask for) are not its business. A session sees what it filed; an
 * agent's own token also sees what sessions acting as that agent filed. People see all of them.
 */
export function proposalsFiledBy(vault: VaultRecord, caller: { readonly kind: "session" | "agent"; readonly id: string }): Proposal[] {
  const filers = new Set([caller.id]);
  if (caller.kind === "agent") for (const session of vault.sessions) if (session.agent === caller.id) filers.add(session.id);
  return vault.proposals.filter((p) => p.session_id !== null && filers.has(p.session_id));
}

/** Slots that need a value from the reviewer: static sets without an agent-supplied value. */
export function slotsNeedingValues(proposal: Proposal): string[] {
  return proposal.credentials.filter((c) => c.action === "set" && c.type === "static" && c.sealed_value === undefined).map((c) => c.key);
}

/** The agent-supplied value, for masked display to the reviewer only. */
export function agentSuppliedValue(store: VaultStore, vault: VaultRecord, proposal: Proposal, key: string): string | null {
  const slot = proposal.credentials.find((c) => c.action === "set" && c.key === key);
  if (!slot || slot.action !== "set" || slot.sealed_value === undefined) return null;
  return store.openValue(PROPOSAL_VALUE_KIND, vault.id, `${proposal.id}:${key}`, slot.sealed_value);
}

function requirePending(proposal: Proposal, now: number): void {
  const status = statusOf(proposal, now);
  if (status !== "pending") throw new AgentVaultError("conflict", `proposal #${proposal.id} is ${status === "applied" ? "already approved" : status}`);
}

/** Applies every change of the proposal in one write, or none. `values` fills the slots that need one. */
export async function approveProposal(store: VaultStore, vaultName: string, id: number, values: Readonly<Record<string, string>>, by: string, now = Date.now()): Promise<Proposal> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    const proposal = findProposal(vault, id);
    requirePending(proposal, now);
    const unknown = Object.keys(values).filter((k) => !proposal.credentials.some((c) => c.action === "set" && c.key === k));
    if (unknown.length > 0) throw new AgentVaultError("invalid_argument", `proposal #${id} has no credential slot ${unknown.join(", ")}`);
    const missing = slotsNeedingValues(proposal).filter((k) => values[k] === undefined || values[k] === "");
    if (missing.length > 0)
      throw new AgentVaultError("invalid_argument", `proposal #${id} needs a value for ${missing.join(", ")}`, {
        hint: `pass ${missing[0]}=- to read it from stdin, or run in a terminal to be asked`,
      });
    checkReferences(vault, proposal.services, proposal.credentials);
    const stamp = new Date(now).toISOString();
    for (const slot of proposal.credentials) {
      if (slot.action === "delete") {
        delete vault.credentials[slot.key];
        continue;
      }
      const existing = vault.credentials[slot.key];
      const value = values[slot.key] ?? (slot.sealed_value !== undefined ? store.openValue(PROPOSAL_VALUE_KIND, vault.id, `${id}:${slot.key}`, slot.sealed_value) : "");
      const metadata: Record<string, string> = { proposal: String(id) };
      if (slot.type === "oauth" && slot.oauth) {
        metadata.oauth_status = "not_connected";
        metadata.oauth_token_url = slot.oauth.token_url;
        if (slot.oauth.authorization_url) metadata.oauth_authorization_url = slot.oauth.authorization_url;
        if (slot.oauth.scopes) metadata.oauth_scopes = slot.oauth.scopes;
        if (slot.oauth.client_id) metadata.oauth_client_id = slot.oauth.client_id;
        if (slot.oauth.token_auth_method) metadata.oauth_token_auth_method = slot.oauth.token_auth_method;
      }
      // A source slot stores the reference the reviewer saw, sealed like a value (source.schema.ts).
      const sealed = slot.type === "source" ? JSON.stringify(makeSourceSpec(slot.source ?? "")) : value;
      const record: CredentialRecord = {
        type: slot.type,
        description: slot.description ?? existing?.description ?? "",
        created_at: existing?.created_at ?? stamp,
        updated_at: stamp,
        expires_at: existing?.expires_at ?? null,
        metadata,
        value: store.sealValue(CREDENTIAL_KIND, vault.id, slot.key, sealed),
      };
      vault.credentials[slot.key] = record;
    }
    for (const change of proposal.services) {
      if (change.action === "delete") {
        vault.services = vault.services.filter((s) => s.name !== change.name);
        continue;
      }
      const existing = vault.services.find((s) => s.name === change.name);
      const service: Service = {
        name: change.name,
        host: change.host,
        auth: change.auth,
        enabled: change.enabled ?? true,
        ...(change.description !== undefined ? { description: change.description } : {}),
        created_at: existing?.created_at ?? stamp,
      };
      if (existing) vault.services[vault.services.indexOf(existing)] = service;
      else vault.services.push(service);
    }
    // Agent-supplied values now live in the credentials; the proposal keeps no copy.
    proposal.credentials = proposal.credentials.map((slot) => {
      if (slot.action !== "set" || slot.sealed_value === undefined) return slot;
      const { sealed_value: _, ...rest } = slot;
      return rest;
    });
    proposal.status = "applied";
    proposal.audit.push({ at: stamp, action: "approved", by });
    store.audit.record({ kind: "proposal_approved", vault: vault.name, proposal: id, by, keys: proposal.credentials.map((c) => c.key), services: proposal.services.map((s) => s.name) });
    return proposal;
  });
}

export async function rejectProposal(store: VaultStore, vaultName: string, id: number, reason: string, by: string, now = Date.now()): Promise<Proposal> {
  return store.update((body) => {
    const proposal = findProposal(findVault(body, vaultName), id);
    requirePending(proposal, now);
    const stamp = new Date(now).toISOString();
    proposal.status = "rejected";
    if (reason) proposal.reason = reason;
    proposal.credentials = proposal.credentials.map((slot) => {
      if (slot.action !== "set" || slot.sealed_value === undefined) return slot;
      const { sealed_value: _, ...rest } = slot;
      return rest;
    });
    proposal.audit.push({ at: stamp, action: "rejected", by, ...(reason ? { note: reason } : {}) });
    store.audit.record({ kind: "proposal_rejected", vault: vaultName, proposal: id, by, ...(reason ? { reason: reason.slice(0, 500) } : {}) });
    return proposal;
  });
}

/** What an agent or a listing sees: no values, `has_value` for agent-supplied ones. */
export function proposalView(proposal: Proposal, now = Date.now()) {
  return {
    id: proposal.id,
    status: statusOf(proposal, now),
    message: proposal.message,
    ...(proposal.user_message !== undefined ? { user_message: proposal.user_message } : {}),
    services: proposal.services,
    credentials: proposal.credentials.map((slot) => {
      if (slot.action !== "set") return slot;
      const { sealed_value, ...rest } = slot;
      return { ...rest, has_value: sealed_value !== undefined };
    }),
    created_at: proposal.created_at,
    expires_at: proposal.expires_at,
    ...(proposal.reason !== undefined ? { reason: proposal.reason } : {}),
    audit: proposal.audit,
  };
}

export function approvalHint(id: number): string {
  return `proposal #${id} is waiting for a human: they approve it with \`agent-vault vault proposal approve ${id}\` (or in \`agent-vault tui\`). Poll GET /v1/proposals/${id} for its status.`;
}

/** Enough of an agent-supplied value to recognise it, never enough to use it. */
export function maskValue(value: string): string {
  return value.length >= 16 ? `${value.slice(0, 4)}…${value.slice(-2)} (${value.length} characters)` : `•••••••• (${value.length} characters)`;
}
