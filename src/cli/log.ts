// `agent-vault log [-f] [-n N] [--since 10m] [--session ID] [--agent NAME] [--host H]
// [--status 4xx,502] [--errors] [--vault V] [--json]`: the request log, filtered, one aligned line a
// request, and with -f what comes after. It needs no password: the log holds metadata only. Every
// field in it may have been written by the agent (the file is the user's), so each one is printed
// through displaySafe, and JSON through jsonTerminalSafe.
import { type Command } from "commander";
import { parseDuration } from "../shared/duration.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { followLog, lastRecords, type LogRecord, type LogTail, readLog } from "../shared/log-reader.ts";
import { homePaths } from "../shared/paths.ts";
import { didYouMean } from "../shared/suggest.ts";
import { displaySafe, jsonTerminalSafe } from "../shared/text.ts";
import { vaultNamesUnverified } from "../vault/vaults.ts";

interface LogOptions {
  readonly follow?: boolean;
  readonly lines?: string;
  readonly since?: string;
  readonly session?: string;
  readonly agent?: string;
  readonly host?: string;
  readonly status?: string;
  readonly errors?: boolean;
  readonly vault?: string;
  readonly json?: boolean;
}

const DEFAULT_LINES = 50;

type Filter = (record: LogRecord) => boolean;

/** `4xx`, `502`, `5xx,429`: each a class or a code. */
function statusFilter(text: string): Filter {
  const parts = text.split(",").map((p) => p.trim().toLowerCase());
  const tests = parts.map((part): Filter => {
    if (/^[1-5]xx$/.test(part)) return (r) => Math.floor(r.status / 100) === Number(part[0]);
    if (/^[1-5][0-9]{2}$/.test(part)) return (r) => r.status === Number(part);
    throw new AgentVaultError("usage", `--status "${text}": "${part}" is not a status code (502) or class (4xx)`);
  });
  return (r) => tests.some((t) => t(r));
}

/** An exact host, case-insensitive, or `*.example.com` for its subdomains. */
function hostFilter(pattern: string): Filter {
  const wanted = pattern.toLowerCase();
  if (wanted.startsWith("*.")) return (r) => r.host.toLowerCase().endsWith(wanted.slice(1));
  return (r) => r.host.toLowerCase() === wanted || r.host.toLowerCase().startsWith(`${wanted}:`);
}

/** A duration back from now (10m, 2h) or an ISO time. */
function sinceFilter(text: string, now = Date.now()): Filter {
  const ms = parseDuration(text);
  const from = ms !== null ? now - ms : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(from)) throw new AgentVaultError("usage", `--since "${text}" is neither a duration (10m, 2h, 7d) nor a time (2026-01-31T12:00:00Z)`);
  return (r) => Date.parse(r.time) >= from;
}

export function buildFilters(options: LogOptions): Filter[] {
  const filters: Filter[] = [];
  if (options.since !== undefined) filters.push(sinceFilter(options.since));
  if (options.session !== undefined) filters.push((r) => r.session === options.session);
  if (options.agent !== undefined) filters.push((r) => r.agent === options.agent);
  if (options.host !== undefined) filters.push(hostFilter(options.host));
  if (options.status !== undefined) filters.push(statusFilter(options.status));
  if (options.errors) filters.push((r) => r.status >= 400 || r.error !== null);
  if (options.vault !== undefined) filters.push((r) => r.vault === options.vault);
  return filters;
}

/**
 * `--vault` names a vault of the state file or one the log has records of (a deleted vault's stay):
 * a typo is an error with a suggestion, as in every other command, not an empty answer.
 */
function checkVaultFilter(name: string, tail: LogTail): void {
  const known = vaultNamesUnverified(homePaths().stateFile);
  if (known === null || known.includes(name)) return;
  if (lastRecords(tail, (r) => r.vault === name, 1).length > 0) return;
  throw new AgentVaultError("vault_not_found", `no vault named "${displaySafe(name)}"${didYouMean(name, known)}`);
}

function lineCount(options: LogOptions): number {
  if (options.lines === undefined) return options.since !== undefined ? Number.POSITIVE_INFINITY : DEFAULT_LINES;
  if (options.lines === "all") return Number.POSITIVE_INFINITY;
  const n = Number(options.lines);
  if (!/^[0-9]{1,7}$/.test(options.lines)) throw new AgentVaultError("usage", `-n "${options.lines}" is not a number of lines (or "all")`);
  return n;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** Local time, `MM-DD HH:MM:SS`: a log spans days, and -f lines must keep one width. */
function formatTime(iso: string): string {
  const d = new Date(iso);
  return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function formatLatency(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(0)}s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`;
}

/**
 * One line: time, status, latency, who (the agent's name, else the session id), method, host and
 * path, then the error code, the credential the guard found and the reason when there is one.
 * Fixed widths for the short columns, so lines printed by -f line up with the ones before.
 */
export function formatRecord(r: LogRecord): string {
  const who = displaySafe(r.agent ?? r.session ?? "-");
  const where = displaySafe(r.method === "CONNECT" || r.path === "" ? r.host : `${r.host}${r.path}`);
  const columns = [formatTime(r.time), String(r.status).padStart(3), formatLatency(r.latency_ms).padStart(6), who.padEnd(14), displaySafe(r.method).padEnd(7), where];
  let line = columns.join("  ");
  if (r.error !== null) {
    let failure = displaySafe(r.error);
    if (r.blocked) failure += ` (${displaySafe(r.blocked)})`;
    if (r.reason) failure += `: ${displaySafe(r.reason)}`;
    line += `  ${failure}`;
  }
  return line;
}

/** Thrown when stdout's reader went away (`log | head`): the command ends quietly, as `git log` does. */
class OutputClosed extends Error {}

let isOutputClosed = false;

/** Writes lines to stdout; an EPIPE (thrown, or emitted on the stream) becomes OutputClosed instead of a stack trace. */
function writeOut(text: string): void {
  if (isOutputClosed) throw new OutputClosed();
  try {
    process.stdout.write(text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EPIPE") throw new OutputClosed();
    throw error;
  }
}

function render(record: LogRecord, json: boolean): string {
  return `${json ? jsonTerminalSafe(JSON.stringify(record)) : formatRecord(record)}\n`;
}

export function registerLog(program: Command): void {
  program
    .command("log")
    .description("show the request log (-f to follow): who asked what of which host, and why a request failed")
    .option("-f, --follow", "keep printing requests as they are logged")
    .option("-n, --lines <n>", `print the last N matching requests, or "all" (default ${DEFAULT_LINES}; all with --since)`)
    .option("--since <when>", "only requests since a duration ago (10m, 2h) or a time (ISO 8601)")
    .option("--session <id>", "only this session's requests (s_... or agt_...)")
    .option("--agent <name>", "only this agent's requests")
    .option("--host <host>", "only requests to this host (*.example.com for its subdomains)")
    .option("--status <codes>", "only these statuses: codes or classes, comma-separated (502, 4xx)")
    .option("--errors", "only failed requests (status 400 and above, or an error code)")
    .option("--vault <name>", "only requests of this vault (default: every vault)")
    .option("--json", "print one JSON object a line")
    .action(async (options: LogOptions) => {
      const filters = buildFilters(options);
      const count = lineCount(options);
      const json = Boolean(options.json);
      const keep = (r: LogRecord) => filters.every((f) => f(r));
      const path = homePaths().requestLog;
      const tail = readLog(path);
      if (options.vault !== undefined) checkVaultFilter(options.vault, tail);
      const stop = new AbortController();
      process.stdout.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code !== "EPIPE") return;
        isOutputClosed = true;
        stop.abort();
      });
      try {
        const records = lastRecords(tail, keep, count);
        // In batches: one write a line costs more than the formatting for a long log.
        for (let i = 0; i < records.length; i += 500)
          writeOut(
            records
              .slice(i, i + 500)
              .map((r) => render(r, json))
              .join(""),
          );
        if (!options.follow) return;
        const end = () => stop.abort();
        process.once("SIGINT", end);
        process.once("SIGTERM", end);
        await followLog(
          path,
          tail.position,
          (record) => {
            if (!keep(record)) return;
            try {
              writeOut(render(record, json));
            } catch (error) {
              if (!(error instanceof OutputClosed)) throw error;
              stop.abort();
            }
          },
          stop.signal,
        );
      } catch (error) {
        if (!(error instanceof OutputClosed)) throw error;
      }
    });
}
