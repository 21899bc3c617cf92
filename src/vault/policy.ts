// Evaluating and describing access policies (agent.schema.ts). Pure functions over a request's
// service, method and path and the current time; the stateful parts (rate limit, usage counts)
// live in the proxy (src/proxy/limits.ts). A refusal names the rule that refused, in the same
// words `agent info` uses to show it.
import { parseDuration } from "../shared/duration.ts";
import { type ApproveRule, DAYS, DEFAULT_APPROVAL_TIMEOUT_MS, type Policy, type ServiceRule, type TimeWindow } from "./agent.schema.ts";

const patternCache = new Map<string, RegExp>();

/**
 * The path as a server would read it: the query dropped, percent-escapes of unreserved characters
 * decoded, repeated slashes collapsed, `.` and `..` segments resolved. Rules are matched against
 * this, so `/v1/chat/../admin`, `//admin` or `/%61dmin` cannot slip past a rule about `/admin`.
 */
export function normalizePath(path: string): string {
  let p = path.split("?")[0]!.split("#")[0]!;
  p = p.replace(/%([0-9a-fA-F]{2})/g, (m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
  });
  const out: string[] = [];
  for (const segment of p.replace(/\/{2,}/g, "/").split("/")) {
    if (segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  const joined = out.join("/");
  return joined.startsWith("/") ? joined : `/${joined}`;
}

/**
 * Every path a server may act on for this target, each normalised as above: as written; with `;`
 * path parameters cut from each segment first (Tomcat, Spring, Jetty: `/secret;a=b/x` is
 * `/secret/x`, `..;` is `..`); with `%2F` and `%5C` read as separators (`/secret%2fx`, `..%2f`);
 * and both. A segment of three or more dots counts as `..` in the lenient readings (Windows trims
 * trailing dots). Also: `%3B` read as `;` (a server that decodes before cutting parameters), `%25`
 * read as `%` once (one that decodes twice: `%2573ecret` is `secret`, `%252F` a separator), and a
 * reading with each segment's trailing dots, spaces, tabs and NULs trimmed (IIS and Windows:
 * `/secret./x` and `/secret%20/x` are `/secret/x`). Rules hold only if they hold for every reading
 * (see refusalOf, approvalOf).
 */
export function pathReadings(path: string): string[] {
  const raw = path.split("?")[0]!.split("#")[0]!;
  const texts = new Set([raw]);
  if (/%25/i.test(raw)) texts.add(raw.replace(/%25/gi, "%"));
  for (const t of [...texts]) if (/%(?:2f|5c)/i.test(t)) texts.add(t.replace(/%(?:2f|5c)/gi, "/"));
  for (const t of [...texts]) if (/%3b/i.test(t)) texts.add(t.replace(/%3b/gi, ";"));
  const readings = new Set<string>();
  for (const text of texts) {
    readings.add(normalizePath(text));
    const stripped = text
      .split("/")
      .map((segment) => segment.replace(/;.*$/s, ""))
      .map((segment) => (/^\.{3,}$/.test(segment) ? ".." : segment))
      .join("/");
    readings.add(normalizePath(stripped));
    if (/%|\.(?:\/|$)|\s(?:\/|$)/.test(stripped)) readings.add(normalizePath(stripped.split("/").map(lenientSegment).join("/")));
  }
  return [...readings];
}

/**
 * A segment as the most lenient server reads it: every escape decoded (an overlong UTF-8 `%C0%AE`
 * as a dot too), trailing spaces and control characters trimmed, then two or more dots as `..`
 * (`..%20`, `%2e%2e%2e`, `.%2e.`), and any other segment's trailing dots trimmed (`secret.`).
 */
function lenientSegment(segment: string): string {
  const decoded = segment.replace(/%c0%ae/gi, ".").replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const trimmed = decoded.replace(/[\s\x00-\x1f]+$/, "");
  if (/^\.{2,}$/.test(trimmed)) return "..";
  if (trimmed === ".") return ".";
  // What decoding made a separator or an escape stays spelled, so normalizePath reads it as written.
  return trimmed.replace(/[.\s\x00-\x1f]+$/, "").replace(/[%/\\]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The rule patterns a path is judged by, compiled once: `i` for deny and approve entries. */
function patternFor(pattern: string, anyCase: boolean): RegExp {
  const key = `${anyCase ? "i" : "-"}${pattern}`;
  let regex = patternCache.get(key);
  if (!regex) {
    regex = new RegExp(
      `^${pattern
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
      anyCase ? "is" : "s",
    );
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(key, regex);
  }
  return regex;
}

/**
 * `*` matches any run of characters, `/` included; everything else is literal. The query is not
 * matched. Exact case: what an allow-list (`paths`) uses, so `/PUBLIC/x` is not let through a
 * rule about `/public/*` to a server that routes by exact case.
 */
export function pathMatches(pattern: string, path: string): boolean {
  return patternFor(pattern, false).test(normalizePath(path));
}

/**
 * Whether a deny or approve entry covers a path: any reading (pathReadings), in any case (ASP.NET
 * and case-insensitive file systems route `/SECRET/x` to `/secret/x`).
 */
export function pathMatchesAnyReading(pattern: string, readings: readonly string[]): boolean {
  const regex = patternFor(pattern, true);
  return readings.some((reading) => regex.test(reading));
}

/** Whether an allow-list lets a path through: every reading, in its exact case, matches one of its patterns. */
export function pathAllowedInEveryReading(patterns: readonly string[], readings: readonly string[]): boolean {
  return readings.every((reading) => patterns.some((pattern) => patternFor(pattern, false).test(reading)));
}

export function describeRule(rule: ServiceRule): string {
  const parts: string[] = [];
  if (rule.methods) parts.push(`only ${rule.methods.join(",")}`);
  if (rule.paths) parts.push(`only paths ${rule.paths.join(" ")}`);
  for (const deny of rule.deny ?? []) parts.push(`deny ${deny.methods ? `${deny.methods.join(",")} ` : ""}${deny.path}`);
  for (const approve of rule.approve ?? []) parts.push(`hold for approval ${describeApprove(approve)}${approve.timeout ? ` (waits ${approve.timeout})` : ""}`);
  return `${rule.service}: ${parts.join("; ") || "no restriction"}`;
}

export function describeWindow(window: TimeWindow): string {
  const days = window.days ? compactDays(window.days) : "every day";
  return `${days} ${window.start}-${window.end} UTC${window.utc_offset ?? "+00:00"}`;
}

function compactDays(days: readonly string[]): string {
  const order = DAYS.filter((d) => days.includes(d));
  const indices = order.map((d) => DAYS.indexOf(d));
  const contiguous = indices.every((v, i) => i === 0 || v === indices[i - 1]! + 1);
  return contiguous && order.length > 2 ? `${order[0]}-${order[order.length - 1]}` : order.join(",");
}

/** One line per part of the policy, for `agent info`, `run` and the TUI. */
export function describePolicy(policy: Policy | null): string[] {
  if (!policy) return [];
  const lines: string[] = [];
  for (const rule of policy.rules ?? []) lines.push(describeRule(rule));
  if (policy.rate_limit) lines.push(`rate limit: ${policy.rate_limit.requests_per_minute} requests per minute`);
  if (policy.time_windows) lines.push(`allowed: ${policy.time_windows.map(describeWindow).join(", ")}`);
  if (policy.usage_cap !== undefined) lines.push(`usage cap: ${policy.usage_cap} requests`);
  return lines;
}

function offsetMinutes(offset: string | undefined): number {
  if (!offset) return 0;
  const sign = offset.startsWith("-") ? -1 : 1;
  const [h, m] = offset.slice(1).split(":").map(Number);
  return sign * (h! * 60 + m!);
}

function minutesOf(clock: string): number {
  const [h, m] = clock.split(":").map(Number);
  return h! * 60 + m!;
}

/** True when `now` falls inside the window (read on its own UTC offset). */
export function inWindow(window: TimeWindow, now: number): boolean {
  const local = new Date(now + offsetMinutes(window.utc_offset) * 60_000);
  const minute = local.getUTCHours() * 60 + local.getUTCMinutes();
  const today = DAYS[(local.getUTCDay() + 6) % 7]!;
  const yesterday = DAYS[(local.getUTCDay() + 5) % 7]!;
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const dayOk = (day: string) => !window.days || window.days.includes(day as (typeof DAYS)[number]);
  if (start < end) return dayOk(today) && minute >= start && minute < end;
  // Past midnight: the evening part belongs to today, the morning part to the day before.
  return (dayOk(today) && minute >= start) || (dayOk(yesterday) && minute < end);
}

/** Why the policy refuses this request (ignoring rate and usage), or null when it allows it. */
export function refusalOf(policy: Policy, service: string | null, method: string, path: string, now: number): string | null {
  if (policy.time_windows && !policy.time_windows.some((w) => inWindow(w, now))) {
    return `outside the allowed times (${policy.time_windows.map(describeWindow).join(", ")})`;
  }
  if (service === null) return null;
  // Rules name upper-case methods; a server may read `delete` as DELETE (Django upper-cases it).
  const upper = method.toUpperCase();
  // Allowed only if allowed in every reading of the path a server may take (pathReadings).
  const readings = pathReadings(path);
  for (const rule of policy.rules ?? []) {
    if (rule.service !== service) continue;
    if (rule.methods && !rule.methods.includes(upper)) return `${rule.service} allows only ${rule.methods.join(",")} (this was ${method})`;
    if (rule.paths && !pathAllowedInEveryReading(rule.paths, readings)) return `${rule.service} allows only paths ${rule.paths.join(" ")}`;
    for (const deny of rule.deny ?? []) {
      if ((!deny.methods || deny.methods.includes(upper)) && pathMatchesAnyReading(deny.path, readings)) {
        return `${rule.service} denies ${deny.methods ? `${deny.methods.join(",")} ` : ""}${deny.path}`;
      }
    }
  }
  return null;
}

/** An approve entry as the person answering it reads it, e.g. `POST /repos/{any}/merges`. */
export function describeApprove(rule: Pick<ApproveRule, "methods" | "path">): string {
  return `${rule.methods ? `${rule.methods.join(",")} ` : ""}${rule.path}`;
}

/** The approve entry a request falls under, and how long it may wait for a person. */
export interface ApprovalNeed {
  /** The entry as written (methods and path): what `--for-session` allows for the rest of the session. */
  readonly rule: string;
  readonly timeoutMs: number;
}

/**
 * Whether the policy holds this request for a person's approval (after refusalOf let it through).
 * The first matching approve entry of the service's rules decides; with several policies the
 * caller takes the first that holds it.
 */
export function approvalOf(policy: Policy, service: string | null, method: string, path: string): ApprovalNeed | null {
  if (service === null) return null;
  const upper = method.toUpperCase();
  // Held if any reading of the path is (pathReadings), whatever its case.
  const readings = pathReadings(path);
  for (const rule of policy.rules ?? []) {
    if (rule.service !== service) continue;
    for (const approve of rule.approve ?? []) {
      if ((!approve.methods || approve.methods.includes(upper)) && pathMatchesAnyReading(approve.path, readings)) {
        return { rule: describeApprove(approve), timeoutMs: (approve.timeout ? parseDuration(approve.timeout) : null) ?? DEFAULT_APPROVAL_TIMEOUT_MS };
      }
    }
  }
  return null;
}
