// The one place an error becomes an HTTP answer, for the proxy and the agent API alike (Hono's
// onError): JSON `{error, message, ...}` with X-Agent-Vault-Error, its status taken from
// ERROR_TABLE. The only choice made here is 407 or 401 for a missing or bad token: 407 to a client
// that reached us as its proxy (it answers with Proxy-Authorization), 401 to one that called us.
import { STATUS_CODES } from "node:http";
import { ERROR_TABLE, type ErrorCode, isAgentVaultError } from "./errors.ts";

export interface Answer {
  readonly code: ErrorCode;
  readonly message: string;
  /** Extra fields of the JSON body (`credential`, `rule`, `proposal_hint` ...). */
  readonly extra?: Record<string, unknown>;
  /** Extra response headers, e.g. Retry-After on a 429. */
  readonly headers?: Record<string, string>;
}

/** Where the client reached us: as its proxy (CONNECT, absolute-form) or as a server (API, /proxy/). */
export type Reached = "proxy" | "server";

export function statusOf(code: ErrorCode, reached: Reached = "server"): number {
  if (code === "unauthorized" && reached === "proxy") return 407;
  return ERROR_TABLE[code].http;
}

export function answerFrom(error: unknown): Answer {
  if (isAgentVaultError(error)) return { code: error.code, message: error.message, ...(error.details ? { extra: error.details } : {}) };
  return { code: "internal", message: "internal error" };
}

/** Status, headers and body of an answer. */
export function answerParts(answer: Answer, reached: Reached = "server"): { status: number; headers: Record<string, string>; body: string } {
  const status = statusOf(answer.code, reached);
  const body = JSON.stringify({ error: answer.code, message: answer.message, ...answer.extra });
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "x-agent-vault-error": answer.code,
    ...answer.headers,
  };
  if (status === 407) headers["proxy-authenticate"] = 'Basic realm="agent-vault"';
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="agent-vault"';
  return { status, headers, body };
}

/** What an answer is written to: node:http's ServerResponse, or the proxy's AgentResponse. */
export interface AnswerSink {
  readonly headersSent: boolean;
  writeHead(status: number, reason?: string, headers?: Record<string, string>): unknown;
  end(body: string): unknown;
  destroy(): unknown;
}

export function sendAnswer(res: AnswerSink, answer: Answer, reached: Reached = "server"): void {
  // Too late for an answer once a head went out: the agent sees the response cut instead.
  if (res.headersSent) return void res.destroy();
  const { status, headers, body } = answerParts(answer, reached);
  res.writeHead(status, STATUS_CODES[status] ?? "Error", headers);
  res.end(body);
}

/** The same answer as raw bytes, for sockets with no response object (CONNECT, refused upgrades). */
export function rawAnswer(answer: Answer, reached: Reached = "proxy", close = true): string {
  const { status, headers, body } = answerParts(answer, reached);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`, ...Object.entries(headers).map(([n, v]) => `${n}: ${v}`)];
  if (close) lines.push("connection: close");
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** An answer with its code and message (the status follows from the code). */
export function problem(code: ErrorCode, message: string, extra?: Record<string, unknown>): Answer {
  return extra === undefined ? { code, message } : { code, message, extra };
}
