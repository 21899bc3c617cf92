// What each screen lists, as plain rows: pure functions of the vault snapshot and the log, so
// screens stay presentational and tests can check them without a terminal. No value appears here.
import { type RequestLogEntry } from "../../shared/log.ts";
import { listCredentials } from "../../vault/credentials.ts";
import { type Proposal } from "../../vault/proposal.schema.ts";
import { statusOf } from "../../vault/proposals.ts";
import { credentialKeysOf } from "../../vault/service.schema.ts";
import { activeGrants } from "../../vault/agents.ts";
import { describePolicy } from "../../vault/policy.ts";
import { isSessionActive } from "../../vault/sessions.ts";
import { type VaultRecord } from "../../vault/state.schema.ts";
import { columns, type ListRow } from "../components/ListView.tsx";

export function ago(iso: string | null, now = Date.now()): string {
  if (iso === null) return "-";
  const d = Date.parse(iso) - now;
  const a = Math.abs(d);
  const t = a < 60_000 ? `${Math.round(a / 1000)}s` : a < 3_600_000 ? `${Math.round(a / 60_000)}m` : a < 86_400_000 ? `${Math.round(a / 3_600_000)}h` : `${Math.round(a / 86_400_000)}d`;
  return d < 0 ? `${t} ago` : `in ${t}`;
}

export function sortedProposals(vault: VaultRecord): Proposal[] {
  return [...vault.proposals].sort((a, b) => Number(statusOf(b) === "pending") - Number(statusOf(a) === "pending") || b.id - a.id);
}

export function asks(p: Proposal): string {
  return [...p.services.map((s) => (s.action === "set" ? `${s.name} (${s.host})` : `-${s.name}`)), ...p.credentials.map((c) => (c.action === "set" ? c.key : `-${c.key}`))].join(", ");
}

export function proposalRows(proposals: readonly Proposal[]): ListRow[] {
  return proposals.map((p) => {
    const status = statusOf(p);
    return { key: String(p.id), text: columns([`#${p.id}`, status, ago(p.created_at), asks(p), p.message], [6, 10, 10, 40, 0]), color: status === "pending" ? "yellow" : status === "applied" ? "green" : "gray" };
  });
}

/**
 * Column widths that fit the terminal: fixed columns keep their width, the flexible ones (weights
 * > 0 in `flex`) share what is left, so every column stays visible at 80 columns.
 */
export function fit(width: number, fixed: readonly number[], flex: readonly number[]): number[] {
  const used = fixed.reduce((a, b) => a + b, 0);
  const spare = Math.max(0, width - used - 1);
  const total = flex.reduce((a, b) => a + b, 0) || 1;
  return fixed.map((w, i) => (flex[i]! > 0 ? Math.max(6, Math.floor((spare * flex[i]!) / total)) : w));
}

const CREDENTIAL_COLUMNS = { fixed: [0, 7, 13, 0, 10, 9, 9], flex: [1, 0, 0, 1, 0, 0, 0] };
const ACTIVITY_COLUMNS = { fixed: [9, 5, 7, 0, 0, 10, 20, 8], flex: [0, 0, 0, 1, 1, 0, 0, 0] };

export function credentialRows(vault: VaultRecord, revealed: { key: string; value: string } | null, width = 120): ListRow[] {
  const widths = fit(width, CREDENTIAL_COLUMNS.fixed, CREDENTIAL_COLUMNS.flex);
  return listCredentials(vault).map((c) => ({
    key: c.key,
    text: columns([c.key, c.type, revealed?.key === c.key ? revealed.value : c.type === "oauth" && c.metadata.oauth_status !== "connected" ? (c.metadata.oauth_status === "refresh_failed" ? "reconnect" : "unconnected") : "••••••••", c.description || "-", c.services.join(",") || "-", ago(c.updated_at), ago(c.expires_at)], widths),
    color: c.type === "oauth" && c.metadata.oauth_status !== "connected" ? "yellow" : undefined,
  }));
}

export function serviceRows(vault: VaultRecord): ListRow[] {
  return vault.services.map((s) => ({
    key: s.name,
    text: columns([s.enabled ? "●" : "○", s.name, s.host, s.auth.type, credentialKeysOf(s.auth).join(",") || "-"], [3, 18, 32, 12, 0]),
    color: s.enabled ? undefined : "gray",
  }));
}

export function activityRows(entries: readonly RequestLogEntry[], width = 120): ListRow[] {
  const widths = fit(width, ACTIVITY_COLUMNS.fixed, ACTIVITY_COLUMNS.flex);
  const rows: ListRow[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    rows.push({
      // Keyed by position from the top: the log scrolls under a fixed selection, so the newest
      // lines stay in view while the log grows.
      key: `${rows.length}`,
      text: columns([e.time.slice(11, 19), String(e.status), e.method, e.host, e.path, e.service ?? "-", e.blocked ? `exfil ${e.blocked}` : (e.error ?? ""), `${e.latency_ms}ms`], widths),
      color: e.blocked ? "red" : e.status >= 500 ? "red" : e.status >= 400 ? "yellow" : e.status >= 200 && e.status < 400 ? "green" : undefined,
    });
  }
  return rows;
}

const SESSION_COLUMNS = [16, 16, 24, 10, 10, 0];

/** Active sessions, then agents (key `agent:NAME`) with their live grants and policy. */
export function sessionRows(vault: VaultRecord): ListRow[] {
  const now = Date.now();
  const agentName = (id: string | null) => (id === null ? null : (vault.agents.find((a) => a.id === id)?.name ?? "?"));
  const sessions = vault.sessions
    .filter((s) => isSessionActive(s, now))
    .map((s) => {
      const as = agentName(s.agent);
      const policy = [as ? `as agent ${as}` : "", ...describePolicy(s.policy)].filter(Boolean).join("; ");
      return { key: s.id, text: columns([s.id, s.label || "-", s.services?.join(",") ?? (as ? "agent's grants" : "all"), ago(s.created_at), ago(s.expires_at), policy || "-"], SESSION_COLUMNS) };
    });
  const agents = vault.agents.map((a) => ({
    key: `agent:${a.name}`,
    text: columns([`agent ${a.name}`, a.revoked_at === null ? "active" : "revoked", activeGrants(a, now).map((g) => `${g.service}${g.expires_at ? `(${ago(g.expires_at)})` : ""}`).join(",") || "no grants", ago(a.created_at), "-", describePolicy(a.policy).join("; ") || "-"], SESSION_COLUMNS),
    color: a.revoked_at === null ? undefined : "gray",
  }));
  return [...sessions, ...agents];
}

export function headers(width: number): string[] {
  return [
    columns(["#", "STATUS", "FILED", "ASKS FOR", "MESSAGE"], [6, 10, 10, 40, 0]),
    columns(["KEY", "TYPE", "VALUE", "DESCRIPTION", "SERVICES", "UPDATED", "EXPIRES"], fit(width, CREDENTIAL_COLUMNS.fixed, CREDENTIAL_COLUMNS.flex)),
    columns(["", "NAME", "HOST", "AUTH", "CREDENTIALS"], [3, 18, 32, 12, 0]),
    columns(["TIME", "CODE", "METHOD", "HOST", "PATH", "SERVICE", "ERROR", "LATENCY"], fit(width, ACTIVITY_COLUMNS.fixed, ACTIVITY_COLUMNS.flex)),
    columns(["ID", "LABEL", "SERVICES", "CREATED", "EXPIRES", "POLICY"], SESSION_COLUMNS),
  ];
}

/** The detail pane of a proposal: the agent's message, services, slots with obtain links. */
export function proposalDetail(p: Proposal, vault: VaultRecord, masked: (key: string) => string | null): string[] {
  const lines = [`Proposal #${p.id} · ${statusOf(p)} · filed ${ago(p.created_at)}`];
  if (p.message) lines.push(`Agent: ${p.message}`);
  for (const s of p.services) {
    if (s.action === "delete") lines.push(`  - remove service ${s.name}`);
    else {
      lines.push(`  + service ${s.name}: ${s.host} (${s.auth.type})`);
      for (const key of credentialKeysOf(s.auth)) {
        const proposed = p.credentials.some((c) => c.action === "set" && c.key === key);
        lines.push(`      sends ${key}${!proposed && key in vault.credentials ? "  ← an EXISTING credential" : ""}`);
      }
    }
  }
  for (const c of p.credentials) {
    if (c.action === "delete") {
      lines.push(`  - remove credential ${c.key}`);
      continue;
    }
    const m = masked(c.key);
    lines.push(`  + ${c.key}${c.description ? ` — ${c.description}` : ""} [${c.type === "oauth" ? "OAuth: connect or paste after approval" : m !== null ? `agent supplied: ${m}` : "you supply the value"}]`);
    if (c.obtain) lines.push(`      get it at: ${c.obtain}`);
    if (c.obtain_instructions) lines.push(`      how: ${c.obtain_instructions}`);
  }
  if (p.reason) lines.push(`Rejected: ${p.reason}`);
  return lines;
}
