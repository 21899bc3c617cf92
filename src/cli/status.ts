// `agent-vault status [--json]`: what runs and what waits, like `gh status`: the data directory,
// the server (and whether it proved it is ours), the CA's fingerprint, and for each vault its
// services, sessions (and the runs holding them), pending proposals and guard settings. Without a
// password source it still shows what needs no key, and says the rest is locked.
import { type Command } from "commander";
import { inspectCa } from "../proxy/ca-inspect.ts";
import { homePaths } from "../shared/paths.ts";
import { isProcessAlive } from "../shared/liveness.ts";
import { statusOf } from "../vault/proposals.ts";
import { pendingHeld } from "../vault/held.ts";
import { isSessionActive } from "../vault/sessions.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { resolveVaultName } from "../vault/vaults.ts";
import { type CommonOptions, withJsonOption, withPasswordOption } from "./context.ts";
import { formatWhen, printJson } from "./io.ts";
import { unlockIfPossible } from "./unlock-optional.ts";
import { displaySafe } from "../shared/text.ts";

type ServerState = "stopped" | "verified" | "unverified" | "not_verified" | "stale";

interface ServerStatus {
  readonly state: ServerState;
  readonly pid?: number;
  readonly host?: string;
  readonly api_port?: number;
  readonly mitm_port?: number;
  readonly started_at?: string;
  /** Why a process at the pidfile's address is not believed. */
  readonly why?: string;
}

interface VaultStatus {
  readonly name: string;
  readonly current: boolean;
  readonly services: number;
  readonly services_enabled: number;
  readonly credentials: number;
  readonly agents: number;
  readonly sessions_active: number;
  /** Active sessions held by a live `agent-vault run`. */
  readonly runs_active: number;
  readonly proposals_pending: number;
  /** The active sessions: who holds them and until when. */
  readonly sessions: readonly { readonly id: string; readonly label: string; readonly agent: string | null; readonly run_pid: number | null; readonly expires_at: string }[];
  /** The pending proposals, oldest first: what each asks for, in the agent's words. */
  readonly proposals: readonly { readonly id: number; readonly message: string; readonly created_at: string }[];
  readonly held_pending: number;
  /** Requests held for a person's approval (`agent-vault held list`), oldest first. */
  readonly held: readonly {
    readonly id: number;
    readonly method: string;
    readonly host: string;
    readonly path: string;
    readonly session: string | null;
    readonly agent: string | null;
    readonly expires_at: string;
  }[];
  readonly settings: { readonly unmatched: string; readonly guard: boolean; readonly scrub: boolean };
  /** Source credentials whose last fetch failed (src/sources/health.ts): key, why, since when. */
  readonly sources_failing: readonly { readonly key: string; readonly error: string; readonly since: string | null }[];
}

export interface StatusReport {
  readonly home: string;
  readonly initialized: boolean;
  /** True when the vault could not be opened (no password source); vault details are then absent. */
  readonly locked: boolean;
  readonly server: ServerStatus;
  readonly ca: { readonly path: string; readonly sha256: string; readonly not_after: string } | null;
  readonly vaults: readonly VaultStatus[];
}

async function serverStatus(store: VaultStore | null): Promise<ServerStatus> {
  const serve = await import("../run/serve.ts");
  const record = serve.readPidFile(homePaths());
  if (!record) return { state: "stopped" };
  const facts = { pid: record.pid, host: record.host, api_port: record.api_port, mitm_port: record.mitm_port, started_at: record.started_at };
  if (!isProcessAlive(record.pid)) return { state: "stale", ...facts };
  // Verifying needs the vault's key: the pidfile alone is the agent's to write.
  if (!store) return { state: "unverified", ...facts };
  const { checkServer } = await import("../run/server-check.ts");
  const check = await checkServer(store, record);
  if (check.kind === "verified") return { state: "verified", ...facts };
  if (check.kind === "absent") return { state: "stale", ...facts };
  return { state: "not_verified", ...facts, why: check.why };
}

function vaultStatus(vault: VaultRecord, current: string): VaultStatus {
  const active = vault.sessions.filter((s) => isSessionActive(s));
  const pending = vault.proposals.filter((p) => statusOf(p) === "pending");
  const held = pendingHeld(vault);
  return {
    name: vault.name,
    current: vault.name === current,
    services: vault.services.length,
    services_enabled: vault.services.filter((s) => s.enabled).length,
    credentials: Object.keys(vault.credentials).length,
    agents: vault.agents.length,
    sessions_active: active.length,
    runs_active: active.filter((s) => s.run !== null).length,
    proposals_pending: pending.length,
    sessions: active.map((s) => ({ id: s.id, label: s.label, agent: vault.agents.find((a) => a.id === s.agent)?.name ?? null, run_pid: s.run?.pid ?? null, expires_at: s.expires_at })),
    proposals: pending.map((p) => ({ id: p.id, message: p.message, created_at: p.created_at })),
    held_pending: held.length,
    held: held.map((h) => ({ id: h.id, method: h.method, host: h.host, path: h.path, session: h.session, agent: h.agent, expires_at: h.expires_at })),
    settings: { unmatched: vault.settings.unmatched, guard: vault.settings.guard, scrub: vault.settings.scrub },
    sources_failing: Object.entries(vault.credentials)
      .filter(([, r]) => r.type === "source" && r.metadata.source_status === "failing")
      .map(([key, r]) => ({ key, error: r.metadata.source_error ?? "", since: r.metadata.source_since ?? null })),
  };
}

export async function buildStatus(options: CommonOptions): Promise<StatusReport> {
  const paths = homePaths();
  const unlocked = await unlockIfPossible(paths, options);
  // A wrong password or a damaged file is an error, not a status.
  if (unlocked.kind === "failed") throw unlocked.error;
  const store = unlocked.kind === "open" ? unlocked.store : null;
  let ca: StatusReport["ca"] = null;
  try {
    const info = inspectCa(paths.caCert);
    if (info) ca = { path: info.path, sha256: info.sha256, not_after: info.notAfter.toISOString() };
  } catch {
    // `doctor` says what is wrong with it
  }
  let vaults: VaultStatus[] = [];
  if (store) {
    const body = store.read();
    const current = resolveVaultName(body, options.vault);
    vaults = body.vaults.map((v) => vaultStatus(v, current));
  }
  return { home: paths.home, initialized: unlocked.kind !== "not_initialized", locked: unlocked.kind === "locked", server: await serverStatus(store), ca, vaults };
}

function serverLine(s: ServerStatus): string {
  const where = `API http://${s.host}:${s.api_port}, proxy ${s.host}:${s.mitm_port}`;
  switch (s.state) {
    case "stopped":
      return "not running (`agent-vault run` serves its agent itself; `agent-vault server -d` starts one)";
    case "verified":
      return `running, verified (pid ${s.pid}, up since ${formatWhen(s.started_at ?? null)}): ${where}`;
    case "unverified":
      return `pid ${s.pid} is named in server.pid but not verified (the vault is locked): ${where}`;
    case "stale":
      return `not running (server.pid names pid ${s.pid}, which is gone or not listening)`;
    case "not_verified":
      return `NOT VERIFIED: pid ${s.pid} at ${s.host}:${s.api_port} did not prove it is this vault's server (${displaySafe(s.why ?? "")}); see \`agent-vault doctor\``;
  }
}

/** Sessions and proposals shown per vault; the rest are counted, with the command that lists them. */
const LISTED = 5;

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function printStatus(report: StatusReport): void {
  const out: string[] = [];
  out.push(`data      ${displaySafe(report.home)}${report.initialized ? "" : " (not initialized: run `agent-vault init`)"}`);
  out.push(`server    ${serverLine(report.server)}`);
  out.push(`CA        ${report.ca ? `SHA-256 ${report.ca.sha256}, expires ${report.ca.not_after.slice(0, 10)}` : "none yet (made by the first `run`, `server` or `ca path`)"}`);
  if (report.locked) out.push("vaults    locked: pass --password-stdin or set AGENT_VAULT_MASTER_PASSWORD to see sessions and proposals");
  for (const v of report.vaults) {
    out.push(`vault     ${v.name}${v.current ? " (current)" : ""}`);
    out.push(`  services ${v.services} (${v.services_enabled} enabled) · credentials ${v.credentials} · agents ${v.agents}`);
    out.push(`  sessions ${v.sessions_active} active (${v.runs_active} in a run) · proposals ${v.proposals_pending} pending${v.held_pending > 0 ? ` · held requests ${v.held_pending}` : ""}`);
    out.push(`  unmatched hosts: ${v.settings.unmatched} · guard ${v.settings.guard ? "on" : "off"} · scrub ${v.settings.scrub ? "on" : "off"}`);
    // The session's label is the command line `run` started; a proposal's message is the agent's
    // text: both escaped and cut, so a line stays a line.
    for (const s of v.sessions.slice(0, LISTED))
      out.push(
        `  session ${s.id}  ${s.agent ? `agent ${displaySafe(s.agent)}  ` : ""}${s.run_pid ? `run pid ${s.run_pid}  ` : ""}expires ${formatWhen(s.expires_at)}  ${cut(displaySafe(s.label || "-"), 40)}`,
      );
    if (v.sessions.length > LISTED) out.push(`  … ${v.sessions.length - LISTED} more: agent-vault vault session list --vault ${v.name}`);
    for (const p of v.proposals.slice(0, LISTED)) out.push(`  proposal #${p.id}  filed ${formatWhen(p.created_at)}  ${cut(displaySafe(p.message), 50)}`);
    if (v.proposals.length > LISTED) out.push(`  … ${v.proposals.length - LISTED} more: agent-vault vault proposal list --vault ${v.name}`);
    // The path is the agent's: escaped and cut like a proposal's message.
    for (const h of v.held.slice(0, LISTED))
      out.push(`  held #${h.id}  ${cut(displaySafe(`${h.method} ${h.host}${h.path}`), 60)}  ${h.agent ? `agent ${displaySafe(h.agent)}` : (h.session ?? "")}  until ${formatWhen(h.expires_at)}`);
    if (v.held.length > LISTED) out.push(`  … ${v.held.length - LISTED} more: agent-vault held list --vault ${v.name}`);
    for (const f of v.sources_failing) out.push(`  source of ${f.key} failing${f.since ? ` since ${formatWhen(f.since)}` : ""}: ${cut(displaySafe(f.error), 80)}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
  const pending = report.vaults.reduce((n, v) => n + v.proposals_pending, 0);
  if (pending > 0) process.stderr.write(`${pending} proposal${pending === 1 ? "" : "s"} waiting: review with \`agent-vault tui\` or \`agent-vault vault proposal list\`\n`);
  const held = report.vaults.reduce((n, v) => n + v.held_pending, 0);
  if (held > 0) process.stderr.write(`${held} request${held === 1 ? "" : "s"} held for approval: answer with \`agent-vault tui\` or \`agent-vault held list\`\n`);
}

export function registerStatus(program: Command): void {
  withJsonOption(withPasswordOption(program.command("status").description("the server, the CA, and each vault's sessions, proposals and settings")))
    .option("--vault <name>", "which vault is marked current (default: AGENT_VAULT_VAULT, else the current vault)")
    .action(async (options: CommonOptions) => {
      const report = await buildStatus(options);
      if (options.json) return printJson(report);
      printStatus(report);
    });
}
