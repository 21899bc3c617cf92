// Held requests of one vault (held.schema.ts): the proxy records one when an `approve` entry holds a
// request, a person answers it (`held allow|deny`, the TUI), the proxy reads the answer off the
// state. Every write goes through VaultStore.update, which needs the data key: the agent, which
// can write the state file but not MAC it, can neither answer nor forge a record (a forged or
// edited file fails verification; an old copy is refused by its generation and carries no
// record with a nonce the proxy is waiting for).
//
// answerHeld is the one place a person's decision is made; it, holdRequest and expireHeld put it
// on the audit trail (src/vault/audit.ts) in the same write.
import { randomBytes } from "node:crypto";
import { AgentVaultError } from "../shared/errors.ts";
import { type Held, HELD_KEEP_MS, MAX_PENDING_HELD } from "./held.schema.ts";
import { type Body, type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";

/** What the proxy knows about a request it holds (no value: the body is a hash and a safe preview). */
export interface HeldRequest {
  readonly vaultId: string;
  readonly principal: string;
  readonly session: string | null;
  readonly agent: string | null;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly rule: string;
  readonly bodySha256: string;
  readonly bodyBytes: number;
  readonly preview: string;
  readonly timeoutMs: number;
}

export type HeldDecision = { readonly allow: true; readonly forSession: boolean } | { readonly allow: false; readonly reason: string };

/** A pending record past its deadline reads as timed out even before the proxy marks it. */
export function heldStatusOf(held: Held, now = Date.now()): Held["status"] {
  return held.status === "pending" && Date.parse(held.expires_at) <= now ? "timeout" : held.status;
}

/** The audit record of a held request's step: its id, request (the path without its query) and who. */
function audit(store: VaultStore, vault: VaultRecord, held: Held, kind: "held_waiting" | "held_allowed" | "held_denied" | "held_timeout"): void {
  store.audit.record({
    kind,
    vault: vault.name,
    session: held.session,
    agent: held.agent,
    method: held.method,
    host: held.host,
    path: held.path.split("?")[0]!,
    rule: held.rule,
    id: String(held.id),
    ...(held.answered_by ? { by: held.answered_by } : {}),
    ...(held.reason ? { reason: held.reason } : {}),
    ...(held.for_session ? { detail: "allowed for the rest of the session" } : {}),
  });
}

/** Answered records past HELD_KEEP_MS are dropped; for-session allowances stay while their session does. */
function prune(vault: VaultRecord, now: number): void {
  const sessions = new Set(vault.sessions.filter((s) => s.revoked_at === null && Date.parse(s.expires_at) > now).map((s) => s.id));
  vault.held = vault.held.filter((h) => {
    if (h.status === "allowed" && h.for_session && h.session !== null && sessions.has(h.session)) return true;
    if (h.status === "pending") return Date.parse(h.expires_at) > now - HELD_KEEP_MS;
    return Date.parse(h.answered_at ?? h.expires_at) > now - HELD_KEEP_MS;
  });
}

/** Records a held request (the proxy, which holds the data key); the nonce is the proxy's to keep. */
export async function holdRequest(store: VaultStore, request: HeldRequest, now = Date.now()): Promise<Held> {
  return store.update((body) => {
    const vault = body.vaults.find((v) => v.id === request.vaultId);
    if (!vault) throw new AgentVaultError("vault_not_found", "the session's vault is gone");
    prune(vault, now);
    const pending = vault.held.filter((h) => heldStatusOf(h, now) === "pending").length;
    if (pending >= MAX_PENDING_HELD) {
      throw new AgentVaultError("approval_denied", `vault "${vault.name}" already holds ${pending} requests for approval; answer those first`);
    }
    const id = vault.held_seq + 1;
    const held: Held = {
      id,
      status: "pending",
      nonce: randomBytes(16).toString("hex"),
      principal: request.principal,
      session: request.session,
      agent: request.agent,
      method: request.method,
      host: request.host,
      port: request.port,
      path: request.path.slice(0, 2048),
      rule: request.rule.slice(0, 600),
      body_sha256: request.bodySha256,
      body_bytes: request.bodyBytes,
      preview: request.preview,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + request.timeoutMs).toISOString(),
      answered_at: null,
      answered_by: null,
      reason: null,
      for_session: false,
    };
    vault.held_seq = id;
    vault.held.push(held);
    audit(store, vault, held, "held_waiting");
    return held;
  });
}

export function findHeld(vault: VaultRecord, id: number): Held {
  const held = vault.held.find((h) => h.id === id);
  if (!held) {
    throw new AgentVaultError("not_found", `no held request #${id} in vault "${vault.name}"`, { hint: "list them with `agent-vault held list`" });
  }
  return held;
}

/**
 * A person's answer (`held allow|deny`, the TUI): the only function that decides a held request.
 * Once: a request already answered or timed out is a conflict, also when two people race (the lock
 * serializes them; the second sees it decided).
 */
export async function answerHeld(store: VaultStore, vaultName: string, id: number, decision: HeldDecision, by: string, now = Date.now()): Promise<Held> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    const held = findHeld(vault, id);
    const status = heldStatusOf(held, now);
    if (status !== "pending") throw new AgentVaultError("conflict", `held request #${id} is already ${status === "timeout" ? "timed out" : status}`);
    held.status = decision.allow ? "allowed" : "denied";
    held.for_session = decision.allow && decision.forSession && held.session !== null;
    held.reason = decision.allow ? null : decision.reason.slice(0, 500);
    held.answered_at = new Date(now).toISOString();
    held.answered_by = by.slice(0, 200);
    audit(store, vault, held, decision.allow ? "held_allowed" : "held_denied");
    return { ...held };
  });
}

/** The proxy gave up waiting: the record says so (unless a person answered in the meantime). */
export async function expireHeld(store: VaultStore, vaultId: string, id: number, nonce: string, now = Date.now()): Promise<Held | null> {
  return store.update((body) => {
    const vault = body.vaults.find((v) => v.id === vaultId);
    const held = vault?.held.find((h) => h.id === id && h.nonce === nonce);
    if (!vault || !held) return null;
    if (held.status === "pending") {
      held.status = "timeout";
      held.answered_at = new Date(now).toISOString();
      audit(store, vault, held, "held_timeout");
    }
    return { ...held };
  });
}

/** The record the proxy waits on, only if it still carries the proxy's nonce. */
export function heldFor(body: Body, vaultId: string, id: number, nonce: string): Held | null {
  return body.vaults.find((v) => v.id === vaultId)?.held.find((h) => h.id === id && h.nonce === nonce) ?? null;
}

/** `held allow --for-session` earlier in this session for this method, host and approve entry. */
export function isAllowedForSession(vault: VaultRecord, session: string | null, method: string, host: string, rule: string): boolean {
  if (session === null) return false;
  return vault.held.some((h) => h.status === "allowed" && h.for_session && h.session === session && h.method === method && h.host === host && h.rule === rule);
}

/** Pending held requests (oldest first), what `held list`, `status` and the TUI show. */
export function pendingHeld(vault: VaultRecord, now = Date.now()): Held[] {
  return vault.held.filter((h) => heldStatusOf(h, now) === "pending").sort((a, b) => a.id - b.id);
}

/** Pending held requests of every vault (the TUI's banner and `status` look at them all). */
export function allPendingHeld(body: Body, now = Date.now()): { vault: string; held: Held }[] {
  return body.vaults.flatMap((vault) => pendingHeld(vault, now).map((held) => ({ vault: vault.name, held })));
}
