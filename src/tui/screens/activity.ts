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
  /** Narrowest it gets before the row is cut at the screen's edge. */
  readonly min: number;
  /** Widest it asks for, whatever the log holds. */
  readonly max: number;
}

const COLUMNS: readonly Column[] = [
  { title: "TIME", value: (e) => e.time.slice(11, 19), min: 9, max: 9 },
  { title: "CODE", value: (e) => String(e.status), min: 5, max: 5 },
  { title: "METHOD", value: (e) => e.method, min: 7, max: 9 },
  { title: "HOST", value: (e) => e.host, min: 14, max: 64 },
  { title: "PATH", value: (e) => e.path, min: 16, max: 200 },
  { title: "SERVICE", value: (e) => e.service ?? "-", min: 8, max: 20 },
  { title: "ERROR", value: (e) => (e.blocked ? `exfil ${e.blocked}` : (e.error ?? "")), min: 8, max: 28 },
  { title: "LATENCY", value: (e) => `${e.latency_ms}ms`, min: 8, max: 10 },
];
// When the log asks for more than the screen has, columns give way in this order: the path first
// (its end is in the detail view), the host last.
const SHRINK_ORDER = [4, 6, 5, 2, 3];

/** Widths (gap included) that fit `width`: what the log needs, capped, then shrunk in order. */
export function activityWidths(entries: readonly LoggedRequest[], width: number): number[] {
  const widths = COLUMNS.map((c) => Math.min(c.max, c.title.length + 1));
  for (const e of entries) {
    for (let i = 0; i < COLUMNS.length; i++) {
      const need = Math.min(COLUMNS[i]!.max, displaySafe(COLUMNS[i]!.value(e)).length + 1);
      if (need > widths[i]!) widths[i] = need;
    }
  }
  for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, COLUMNS[i]!.min);
  let excess = widths.reduce((a, b) => a + b, 0) - width;
  for (const i of SHRINK_ORDER) {
    if (excess <= 0) break;
    const give = Math.min(excess, widths[i]! - COLUMNS[i]!.min);
    widths[i] = widths[i]! - give;
    excess -= give;
  }
  return widths;
}

/** One cell: escaped, cut with "…" when it does not fit before the gap, padded to its width. */
function cell(text: string, width: number): string {
  const safe = displaySafe(text);
  return (safe.length > width - 1 ? `${safe.slice(0, Math.max(0, width - 2))}…` : safe).padEnd(width);
}

export function activityHeader(widths: readonly number[]): string {
  return COLUMNS.map((c, i) => cell(c.title, widths[i]!)).join("").trimEnd();
}

export function activityRows(entries: readonly LoggedRequest[], widths: readonly number[]): ListRow[] {
  const rows: ListRow[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    rows.push({
      // Keyed by position from the top: the log scrolls under a fixed selection, so the newest
      // lines stay in view while the log grows.
      key: `${rows.length}`,
      text: COLUMNS.map((c, j) => cell(c.value(e), widths[j]!)).join("").trimEnd(),
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
