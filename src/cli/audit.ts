// `agent-vault audit verify [--json]` and `agent-vault audit export [--since TIME] [--json]`: the
// audit trail (src/vault/audit.ts), checked from record 1 to the vault's anchor, and written out
// as JSON lines for a SIEM. Both need the password: the audit key is sealed in the vault file.
// Every field was verified by its MAC, yet came from an agent (hosts, paths): printed through
// displaySafe / jsonTerminalSafe.
import { type Command } from "commander";
import { parseDuration } from "../shared/duration.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe, jsonTerminalSafe } from "../shared/text.ts";
import { type AuditReport, checkAuditTrail } from "../vault/audit.ts";
import { type AuditRecord } from "../vault/audit.schema.ts";
import { type CommonOptions, openStore, withJsonOption, withPasswordOption } from "./context.ts";
import { printJson } from "./io.ts";

interface ExportOptions extends CommonOptions {
  readonly since?: string;
}

/** A duration back from now (10m, 2h, 7d) or an ISO time: the first instant to export. */
function parseSince(text: string, now = Date.now()): number {
  const ms = parseDuration(text);
  const from = ms !== null ? now - ms : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(from)) throw new AgentVaultError("usage", `--since "${text.slice(0, 80)}" is neither a duration (10m, 2h, 7d) nor a time (2026-01-31T12:00:00Z)`);
  return from;
}

function brokenError(report: AuditReport): AgentVaultError {
  return new AgentVaultError("audit_broken", `audit log: ${report.problem!.what}`);
}

/** One readable line a record: time, number, kind, then whichever facts it has. */
function formatRecord(record: AuditRecord): string {
  const facts: string[] = [];
  const add = (name: string, value: unknown) => {
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) return;
    facts.push(`${name}=${displaySafe(Array.isArray(value) ? value.join(",") : String(value))}`);
  };
  if (record.method) facts.push(`${displaySafe(record.method)} ${displaySafe(record.host ?? "")}${displaySafe(record.path ?? "")}`);
  add("status", record.status);
  add("code", record.code);
  add("rule", record.rule);
  add("vault", record.vault);
  add("session", record.session);
  add("agent", record.agent);
  add("service", record.service);
  add("proposal", record.proposal);
  add("keys", record.keys);
  add("services", record.services);
  add("id", record.id);
  add("by", record.by);
  add("detail", record.detail);
  add("reason", record.reason);
  return `${record.time}  #${record.seq}  ${record.kind}  ${facts.join("  ")}`;
}

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit trail: verify its chain, export it for a SIEM");

  withPasswordOption(
    withJsonOption(audit.command("verify").description("check every record's MAC, number and link, and that the log reaches the vault's anchor; exit 1 naming the first bad record")),
  ).action(async (options: CommonOptions) => {
    const store = await openStore(options);
    const report = await checkAuditTrail(store);
    if (options.json) {
      printJson({ ok: report.problem === null, ...report });
    } else if (report.problem === null) {
      const anchored = report.anchor ? `anchored up to record ${report.anchor.seq} (${report.anchor.time})` : "nothing anchored yet";
      const tail =
        report.unanchored > 0
          ? `; ${report.unanchored} later record${report.unanchored === 1 ? "" : "s"} not anchored yet (written in the last few seconds, or by a process that stopped before anchoring: they verify, but a cut there would not show)`
          : "";
      const partial = report.incomplete_tail ? "; a partial last line (a write a crash cut short) is not a record and was skipped" : "";
      process.stdout.write(`audit log ok: ${report.records} record${report.records === 1 ? "" : "s"}, ${anchored}${tail}${partial}\n`);
    }
    // The MAC key is sealed under the data key, which --no-password keeps in a file anything
    // running as you can read: then a consistent rewrite of the log and the anchor is possible.
    if (!store.hasPassword)
      process.stderr.write("agent-vault: note: this data directory has no master password: a process running as you can read its key file and rewrite the audit log and its anchor undetected\n");
    if (report.problem !== null) throw brokenError(report);
  });

  withPasswordOption(withJsonOption(audit.command("export").description("write the verified records as JSON lines (--json) or readable lines; stops at the first bad record and exits 1")))
    .option("--since <when>", "only records since a duration ago (10m, 2h, 7d) or a time (ISO 8601)")
    .option("--vault <name>", "only records of this vault (default: the whole data directory's)")
    .action(async (options: ExportOptions) => {
      const from = options.since === undefined ? Number.NEGATIVE_INFINITY : parseSince(options.since);
      const store = await openStore(options);
      // Collected under the lock, written after it: a slow reader of stdout never holds writers up.
      const out: string[] = [];
      const report = await checkAuditTrail(store, (record, line) => {
        if (options.vault !== undefined && record.vault !== options.vault) return;
        if (Date.parse(record.time) >= from) out.push(`${options.json ? jsonTerminalSafe(line) : formatRecord(record)}\n`);
      });
      for (let i = 0; i < out.length; i += 500) process.stdout.write(out.slice(i, i + 500).join(""));
      if (report.problem !== null) throw brokenError(report);
    });
}
