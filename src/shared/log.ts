// The request log: one JSON line per request in the data directory, rotated by size. It records
// metadata only (time, session id, method, host, path without query, service, status, latency,
// error code): never a header, a query string, a body or a credential.
import { appendFileSync, renameSync, statSync } from "node:fs";

export interface RequestLogEntry {
  readonly time: string;
  readonly session: string | null;
  readonly vault: string | null;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly service: string | null;
  readonly status: number;
  readonly latency_ms: number;
  readonly error: string | null;
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
      this.size = statSync(path).size;
    } catch {
      this.size = 0;
    }
  }

  write(entry: RequestLogEntry): void {
    const line = `${JSON.stringify({ ...entry, path: entry.path.split("?")[0] })}\n`;
    try {
      if (this.size + line.length > this.maxBytes) {
        renameSync(this.path, `${this.path}.1`);
        this.size = 0;
      }
      appendFileSync(this.path, line, { mode: 0o600 });
      this.size += line.length;
    } catch {
      // The log must never take the proxy down: a full disk loses log lines, not requests.
    }
  }
}
