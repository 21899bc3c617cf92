// What each screen lists, as plain rows: pure functions of the vault snapshot and the log, so
// screens stay presentational and tests can check them without a terminal. No value appears here.
import { displaySafe, displaySafeLines, labelled } from "../../shared/text.ts";
import { listCredentials } from "../../vault/credentials.ts";
import { type Proposal } from "../../vault/proposal.schema.ts";
import { proposalEffects } from "../../vault/proposal-effects.ts";
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

export function proposalRows(proposals: readonly Proposal[], now = Date.now()): ListRow[] {
  return proposals.map((p) => {
    const status = statusOf(p);
    return {
      key: String(p.id),
      text: columns([`#${p.id}`, status, ago(p.created_at, now), asks(p), p.message], [6, 10, 10, 40, 0]),
      color: status === "pending" ? "yellow" : status === "applied" ? "green" : "gray",
    };
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

export function credentialRows(vault: VaultRecord, revealed: { key: string; value: string } | null, width = 120, now = Date.now()): ListRow[] {
  const widths = fit(width, CREDENTIAL_COLUMNS.fixed, CREDENTIAL_COLUMNS.flex);
  return listCredentials(vault).map((c) => ({
    key: c.key,
    text: columns(
      [
        c.key,
        c.type,
        revealed?.key === c.key
          ? revealed.value
          : c.type === "oauth" && c.metadata.oauth_status !== "connected"
            ? c.metadata.oauth_status === "refresh_failed"
              ? "reconnect"
              : "unconnected"
            : c.type === "source"
              ? c.metadata.source_status === "failing"
                ? "source failing"
                : "from source"
              : "••••••••",
        c.description || "-",
        c.services.join(",") || "-",
        ago(c.updated_at, now),
        ago(c.expires_at, now),
      ],
      widths,
    ),
    color: (c.type === "oauth" && c.metadata.oauth_status !== "connected") || (c.type === "source" && c.metadata.source_status === "failing") ? "yellow" : undefined,
  }));
}

export function serviceRows(vault: VaultRecord): ListRow[] {
  return vault.services.map((s) => ({
    key: s.name,
    text: columns([s.enabled ? "●" : "○", s.name, s.host, s.auth.type, credentialKeysOf(s.auth).join(",") || "-"], [3, 18, 32, 12, 0]),
    color: s.enabled ? undefined : "gray",
  }));
}

const SESSION_COLUMNS = [16, 16, 24, 10, 10, 0];

/** Active sessions, then agents (key `agent:NAME`) with their live grants and policy. */
export function sessionRows(vault: VaultRecord, now = Date.now()): ListRow[] {
  const agentName = (id: string | null) => (id === null ? null : (vault.agents.find((a) => a.id === id)?.name ?? "?"));
  const sessions = vault.sessions
    .filter((s) => isSessionActive(s, now))
    .map((s) => {
      const as = agentName(s.agent);
      const policy = [as ? `as agent ${as}` : "", ...describePolicy(s.policy)].filter(Boolean).join("; ");
      return {
        key: s.id,
        text: columns([s.id, s.label || "-", s.services?.join(",") ?? (as ? "agent's grants" : "all"), ago(s.created_at, now), ago(s.expires_at, now), policy || "-"], SESSION_COLUMNS),
      };
    });
  const agents = vault.agents.map((a) => ({
    key: `agent:${a.name}`,
    text: columns(
      [
        `agent ${a.name}`,
        a.revoked_at === null ? "active" : "revoked",
        activeGrants(a, now)
          .map((g) => `${g.service}${g.expires_at ? `(${ago(g.expires_at, now)})` : ""}`)
          .join(",") || "no grants",
        ago(a.created_at, now),
        "-",
        describePolicy(a.policy).join("; ") || "-",
      ],
      SESSION_COLUMNS,
    ),
    color: a.revoked_at === null ? undefined : "gray",
  }));
  return [...sessions, ...agents];
}

export const proposalHeader = (): string => columns(["#", "STATUS", "FILED", "ASKS FOR", "MESSAGE"], [6, 10, 10, 40, 0]);
export const credentialHeader = (width: number): string =>
  columns(["KEY", "TYPE", "VALUE", "DESCRIPTION", "SERVICES", "UPDATED", "EXPIRES"], fit(width, CREDENTIAL_COLUMNS.fixed, CREDENTIAL_COLUMNS.flex));
export const serviceHeader = (): string => columns(["", "NAME", "HOST", "AUTH", "CREDENTIALS"], [3, 18, 32, 12, 0]);
export const sessionHeader = (): string => columns(["ID", "LABEL", "SERVICES", "CREATED", "EXPIRES", "POLICY"], SESSION_COLUMNS);

export interface DetailLine {
  readonly text: string;
  readonly isWarning?: boolean;
}

/**
 * The detail pane of a proposal, in at most `maxLines` lines: what the agent wrote (escaped; a
 * multi-line text is quoted behind a bar), then, for a pending proposal, what approving does as
 * the vault's records say (src/vault/proposal-effects.ts), warnings last. When it does not fit,
 * the agent's part is cut first, so no amount of agent text pushes the effects or warnings off
 * the screen.
 */
export function proposalDetail(p: Proposal, vault: VaultRecord, masked: (key: string) => string | null, maxLines = Number.POSITIVE_INFINITY, now = Date.now()): DetailLine[] {
  const status = statusOf(p);
  const head = `Proposal #${p.id} · ${status} · filed ${ago(p.created_at, now)}`;
  const asked: string[] = [];
  if (p.message) asked.push(...labelled("", "Agent", p.message));
  if (p.user_message) asked.push(...labelled("", "For you", p.user_message));
  for (const s of p.services) {
    if (s.action === "delete") asked.push(`  - remove service ${s.name}`);
    else {
      // `~` for a service the vault has (the proposal changes it, as the effects below spell out),
      // as `proposal show` marks it: a `+` would read as new.
      const isChange = vault.services.some((existing) => existing.name === s.name);
      asked.push(`  ${isChange ? "~" : "+"} service ${s.name}: ${s.host} (${s.auth.type})${isChange ? " (changes the service the vault has)" : ""}`);
      const keys = credentialKeysOf(s.auth);
      if (keys.length > 0) asked.push(`      sends ${keys.join(", ")}`);
      if (s.description) asked.push(...labelled("      ", "description", s.description));
    }
  }
  for (const c of p.credentials) {
    if (c.action === "delete") {
      asked.push(`  - remove credential ${c.key}`);
      continue;
    }
    const m = masked(c.key);
    const state =
      c.type === "oauth"
        ? "OAuth: connect or paste after approval"
        : c.type === "source"
          ? `fetched from ${displaySafe(c.source ?? "?")}`
          : m !== null
            ? `agent supplied: ${displaySafe(m)}`
            : "you supply the value";
    const description = c.description ? displaySafeLines(c.description) : [];
    const replaces = vault.credentials[c.key] !== undefined;
    asked.push(`  ${replaces ? "~" : "+"} ${c.key}${description.length === 1 ? ` — ${description[0]}` : ""} [${state}]`);
    if (description.length > 1) asked.push(...labelled("      ", "description", c.description!));
    if (c.obtain) asked.push(...labelled("      ", "get it at", c.obtain));
    if (c.obtain_instructions) asked.push(...labelled("      ", "how", c.obtain_instructions));
  }
  if (p.reason) asked.push(...labelled("", "Rejected", p.reason));

  const truth: DetailLine[] = [];
  if (status === "pending") {
    const { effects, warnings } = proposalEffects(vault, p);
    truth.push({ text: "Approving it would (from the vault's records, not the agent's text):" }, ...effects.map((e) => ({ text: `  ${displaySafe(e)}` })));
    for (const w of warnings) truth.push({ text: `  ! ${displaySafe(w)}`, isWarning: true });
  }
  const room = maxLines - 1 - truth.length;
  if (room < 0) {
    // Too many effects for the pane: warnings win, then as many effects as fit.
    const warningLines = truth.filter((l) => l.isWarning);
    const kept = warningLines.slice(0, Math.max(0, maxLines - 2));
    const effectRoom = Math.max(0, maxLines - 2 - kept.length);
    const effectLines = truth.filter((l) => !l.isWarning).slice(0, effectRoom);
    return [{ text: head }, ...effectLines, ...kept, { text: `  … more than fits: agent-vault vault proposal show ${p.id}`, isWarning: true }].slice(0, Math.max(1, maxLines));
  }
  const shown = asked.length <= room ? asked : [...asked.slice(0, Math.max(0, room - 1)), `  … ${asked.length - Math.max(0, room - 1)} more lines: agent-vault vault proposal show ${p.id}`];
  return [{ text: head }, ...shown.slice(0, room).map((text) => ({ text })), ...truth];
}
