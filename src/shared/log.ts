// The request log: one JSON line per request in the data directory, rotated by size. It records
// metadata only (time, session id, method, host, path without query, service, status, latency,
// error code and reason): never a header, a query string, a body or a credential. It is appended to only
// through appendPrivate: a link the agent planted under its name is replaced, never written through.
import { lstatSync, renameSync } from "node:fs";
import { appendPrivate } from "./files.ts";

export interface RequestLogEntry {
  readonly time: string;
  /** The session id (s_...) or, for an agent's own token, the agent id (agt_...). */
  readonly session: string | null;
  /** The agent's name when the request was made as an agent. */
  readonly agent?: string | null;
  /** The credential key the exfiltration guard found in the request (never its value). */
  readonly blocked?: string | null;
  readonly vault: string | null;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly service: string | null;
  readonly status: number;
  readonly latency_ms: number;
  readonly error: string | null;
  /** Why it failed, in words: the answer's message (keys and hosts, never a value). */
  readonly reason?: string;
  readonly via: string;
}

const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

export class RequestLog {
  private size: number;
  private readonly maxBytes: number;

  constructor(
    readonly path: string,
    maxBytes = Number(process.env.AGENT_VAULT_LOG_MAX_BYTES) || DEFAULT_MAX_BYTES,
  ) {
    this.maxBytes = maxBytes;
    try {
      this.size = lstatSync(path).size;
    } catch {
      this.size = 0;
    }
  }

  private pending: string[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  /** Queues a line; lines are written in batches every few milliseconds, off the request path. */
  write(entry: RequestLogEntry): void {
    this.pending.push(`${JSON.stringify({ ...entry, path: entry.path.split("?")[0] })}\n`);
    this.flushTimer ??= setTimeout(() => this.flush(), 20);
  }

  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    try {
      if (this.size + text.length > this.maxBytes && this.size > 0) {
        renameSync(this.path, `${this.path}.1`);
        this.size = 0;
      }
      appendPrivate(this.path, text);
      this.size += text.length;
    } catch {
      // The log must never take the proxy down: a full disk loses log lines, not requests.
    }
  }
}
