// The Activity screen's rows and detail: pure functions of the request log. Column widths follow
// what the log holds (a whole host name when it fits), and a cell too long for its column is cut
// with "…", never silently. Every field is agent or upstream text, escaped before it is measured.
import { type RequestLogEntry } from "../../shared/log.ts";
import { displaySafe } from "../../shared/text.ts";
import { type ListRow } from "../components/ListView.tsx";

/** A log record; `reason` (why a request failed, in words) is written by newer proxies. */
export type LoggedRequest = RequestLogEntry & { readonly reason?: string | null };

interface Column {
  readonly title: string;
  readonly value: (e: LoggedRequest) => string;
  /** Widest it asks for, whatever the log holds. */
  readonly max: number;
}

const COLUMNS: readonly Column[] = [
  { title: "TIME", value: (e) => e.time.slice(11, 19), max: 9 },
  { title: "CODE", value: (e) => String(e.status), max: 5 },
  { title: "METHOD", value: (e) => e.method, max: 9 },
  { title: "HOST", value: (e) => e.host, max: 64 },
  { title: "PATH", value: (e) => e.path, max: 200 },
  { title: "SERVICE", value: (e) => e.service ?? "-", max: 20 },
  { title: "ERROR", value: (e) => (e.blocked ? `exfil ${e.blocked}` : (e.error ?? "")), max: 28 },
  { title: "LATENCY", value: (e) => `${Math.round(e.latency_ms)}ms`, max: 10 },
];
const [METHOD, HOST, PATH, SERVICE, ERROR] = [2, 3, 4, 5, 6] as const;
// When the log asks for more than the screen has, columns give way in steps, [column, narrowest]:
// the path first (the detail view has all of it), then the error code (short, and worth reading
// whole), and the host last, so a host is whole whenever the others can make room for it.
const SHRINK_STEPS: readonly (readonly [number, number])[] = [
  [PATH, 16],
  [PATH, 10],
  [ERROR, 8],
  [SERVICE, 8],
  [METHOD, 7],
  [HOST, 14],
];

/** Widths (gap included) that fit `width`: what the log needs, capped, then shrunk in steps. */
export function activityWidths(entries: readonly LoggedRequest[], width: number): number[] {
  const lengths = COLUMNS.map((c) => [c.title.length, ...entries.map((e) => displaySafe(c.value(e)).length)]);
  const widths = COLUMNS.map((c, i) => Math.min(c.max, needOf(lengths[i]!, i === HOST || i === PATH) + 1));
  let excess = widths.reduce((a, b) => a + b, 0) - width;
  // Room to spare goes to the odd long path, then the odd long host.
  for (const i of [PATH, HOST]) {
    const grow = Math.max(0, Math.min(-excess, Math.min(COLUMNS[i]!.max, Math.max(...lengths[i]!) + 1) - widths[i]!));
    widths[i] = widths[i]! + grow;
    excess += grow;
  }
  for (const [i, narrowest] of SHRINK_STEPS) {
    if (excess <= 0) break;
    const give = Math.max(0, Math.min(excess, widths[i]! - narrowest));
    widths[i] = widths[i]! - give;
    excess -= give;
  }
  return widths;
}

/**
 * The longest value, or for hosts and paths the 90th percentile: one odd 90-character host is cut
 * with "…" rather than widening the column for every row and cutting their paths.
 */
function needOf(lengths: number[], isSpread: boolean): number {
  if (!isSpread) return Math.max(...lengths);
  const sorted = [...lengths].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.9) - 1)]!;
}

/** One cell: escaped, cut with "…" when it does not fit before the gap, padded to its width. */
function cell(text: string, width: number): string {
  const safe = displaySafe(text);
  return (safe.length > width - 1 ? `${safe.slice(0, Math.max(0, width - 2))}…` : safe).padEnd(width);
}

export function activityHeader(widths: readonly number[]): string {
  return COLUMNS.map((c, i) => cell(c.title, widths[i]!))
    .join("")
    .trimEnd();
}

export function activityRows(entries: readonly LoggedRequest[], widths: readonly number[]): ListRow[] {
  const rows: ListRow[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    rows.push({
      // Keyed by position from the top: the log scrolls under a fixed selection, so the newest
      // lines stay in view while the log grows.
      key: `${rows.length}`,
      text: COLUMNS.map((c, j) => cell(c.value(e), widths[j]!))
        .join("")
        .trimEnd(),
      color: e.blocked ? "red" : e.status >= 500 ? "red" : e.status >= 400 ? "yellow" : e.status >= 200 && e.status < 400 ? "green" : undefined,
    });
  }
  return rows;
}

/** The entry a row shows (rows are newest first). */
export function entryOfRow(entries: readonly LoggedRequest[], key: string): LoggedRequest | undefined {
  return entries[entries.length - 1 - Number(key)];
}

/** Everything the record holds, one field a line, escaped; the reason last, as it may be long. */
export function activityDetail(e: LoggedRequest): { label: string; value: string }[] {
  const who = [e.session, e.agent ? `agent ${e.agent}` : null].filter(Boolean).join(" · ");
  const lines = [
    { label: "time", value: e.time },
    { label: "session", value: who || "-" },
    { label: "vault", value: e.vault ?? "-" },
    { label: "method", value: e.method },
    { label: "host", value: e.host },
    { label: "path", value: e.path },
    { label: "service", value: e.service ?? "-" },
    { label: "status", value: String(e.status) },
    { label: "latency", value: `${e.latency_ms} ms` },
    { label: "via", value: e.via },
  ];
  if (e.blocked) lines.push({ label: "blocked", value: `the request carried ${e.blocked} (exfiltration guard)` });
  if (e.error) lines.push({ label: "error", value: e.error });
  if (e.reason) lines.push({ label: "reason", value: e.reason });
  return lines.map((l) => ({ label: l.label, value: displaySafe(l.value) }));
}
