// Agent sessions: a 256-bit bearer token handed to one `run` child, bound to one vault and
// optionally to some services. Only the token's SHA-256 is stored, so the vault file never holds
// a usable token; lookups hash what the agent presents and compare. A session made by `run` also
// records that process (pid, start time) and is active only while it runs (src/shared/liveness.ts).
import { randomBytes } from "node:crypto";
import { AgentVaultError } from "../shared/errors.ts";
import { isProcessRunning, type ProcessIdentity } from "../shared/liveness.ts";
import { randomHex, sha256Hex } from "./crypto.ts";
import { type Policy } from "./agent.schema.ts";
import { type Body, type Session, type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";
import { didYouMean } from "../shared/suggest.ts";

export const DEFAULT_SESSION_TTL_MS = 24 * 3_600_000;
const TOKEN_PREFIX = "avs_";

/** Tokens hashed so far: the proxy hashes the session's token on every request. */
const hashed = new Map<string, string>();
const MAX_HASHED = 1024;

export function hashToken(token: string): string {
  let hash = hashed.get(token);
  if (hash === undefined) {
    if (hashed.size >= MAX_HASHED) hashed.clear();
    hashed.set(token, (hash = sha256Hex(token)));
  }
  return hash;
}

export interface NewSession {
  /** The only copy of the token: handed to the agent, never stored. */
  readonly token: string;
  readonly session: Session;
}

export async function createSession(
  store: VaultStore,
  vaultName: string,
  options: { ttlMs?: number; services?: readonly string[] | null; label?: string; agent?: string | null; policy?: Policy | null; run?: ProcessIdentity | null } = {},
): Promise<NewSession> {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  const now = Date.now();
  const session: Session = {
    id: `s_${randomHex(6)}`,
    token_sha256: hashToken(token),
    label: options.label ?? "",
    services: options.services ? [...options.services] : null,
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + (options.ttlMs ?? DEFAULT_SESSION_TTL_MS)).toISOString(),
    revoked_at: null,
    agent: null,
    policy: options.policy ?? null,
    usage: 0,
    run: options.run ? { pid: options.run.pid, start: options.run.start } : null,
  };
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    if (options.agent) {
      const agent = vault.agents.find((a) => a.name === options.agent);
      if (!agent)
        throw new AgentVaultError(
          "not_found",
          `no agent "${options.agent}" in vault "${vault.name}"${didYouMean(
            options.agent,
            vault.agents.map((a) => a.name),
          )}`,
          { hint: "list agents with `agent-vault agent list`" },
        );
      if (agent.revoked_at !== null) throw new AgentVaultError("conflict", `agent "${agent.name}" is revoked`);
      session.agent = agent.id;
    }
    for (const name of session.services ?? []) {
      if (!vault.services.some((s) => s.name === name)) {
        throw new AgentVaultError(
          "service_not_found",
          `no service "${name}" in vault "${vault.name}"${didYouMean(
            name,
            vault.services.map((s) => s.name),
          )}`,
          { hint: "list services with `agent-vault vault service list`" },
        );
      }
    }
    // Expired and revoked sessions older than a day are dropped so the list stays short.
    vault.sessions = vault.sessions.filter((s) => Date.parse(s.expires_at) > now - 86_400_000);
    // Sessions of runs that died without revoking (SIGKILL) are inactive already; say so on file.
    for (const s of vault.sessions) {
      if (s.revoked_at === null && hasSessionEnded(s)) {
        s.revoked_at = new Date(now).toISOString();
        store.audit.record({ kind: "session_ended", vault: vault.name, session: s.id, detail: "its run had exited" });
      }
    }
    vault.sessions.push(session);
    store.audit.record({
      kind: "session_started",
      vault: vault.name,
      session: session.id,
      agent: options.agent ?? null,
      services: session.services ?? undefined,
      ...(session.label ? { detail: session.label.slice(0, 200) } : {}),
    });
  });
  return { token, session };
}

/** Not revoked, not expired, and the `run` it belongs to (if any) still runs. */
export function isSessionActive(session: Session, now = Date.now()): boolean {
  return session.revoked_at === null && Date.parse(session.expires_at) > now && (session.run === null || isProcessRunning(session.run));
}

/** A session whose `run` is gone (killed, crashed) though nothing revoked it. */
export function hasSessionEnded(session: Session): boolean {
  return session.run !== null && !isProcessRunning(session.run);
}

export async function revokeSession(store: VaultStore, vaultName: string, id: string): Promise<void> {
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    const session = vault.sessions.find((s) => s.id === id);
    if (!session) throw new AgentVaultError("session_not_found", `no session ${id} in vault "${vault.name}"`);
    if (session.revoked_at === null) {
      session.revoked_at = new Date().toISOString();
      store.audit.record({ kind: "session_ended", vault: vault.name, session: session.id });
    }
  });
}

export interface SessionMatch {
  readonly vault: VaultRecord;
  readonly session: Session;
}

/** An index from token hash to session, rebuilt once per state version. */
export function indexSessions(body: Body): Map<string, SessionMatch> {
  const index = new Map<string, SessionMatch>();
  for (const vault of body.vaults) for (const session of vault.sessions) index.set(session.token_sha256, { vault, session });
  return index;
}
