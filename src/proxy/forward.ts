// Forwarding a flow upstream and its response back, streaming both ways with backpressure (so a
// 1 GiB body costs a few buffers, not a GiB), with size caps, and with every failure turned into
// the contract's JSON error. Upstream TLS is always verified: system roots plus
// AGENT_VAULT_UPSTREAM_CA, against the host name the agent asked for.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { type Socket } from "node:net";
import { type ErrorCode } from "../shared/errors.ts";
import { type EarlyAnswer, type Flow } from "./flow.ts";
import { decodeBody, scrubBuffer, scrubText, type Secret } from "./scrub.ts";
import { type Endpoint, ResponseParser, type UpstreamPool } from "./upstream.ts";

/** A scrubbed response is held whole; past this it is refused rather than passed unscanned. */
const MAX_SCRUB_BYTES = 16 * 1024 * 1024;

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|TLS|SSL|HANDSHAKE|ERR_SSL/i;
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

/** Writes an early answer: JSON `{error, message, ...}` with X-Agent-Vault-Error. */
export function sendAnswer(res: ServerResponse, answer: EarlyAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: answer.code, message: answer.message, ...answer.extra });
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-agent-vault-error": answer.code,
    ...answer.headers,
  };
  if (answer.status === 407) headers["proxy-authenticate"] = 'Basic realm="agent-vault"';
  if (answer.status === 401) headers["www-authenticate"] = 'Bearer realm="agent-vault"';
  res.writeHead(answer.status, headers);
  res.end(body);
}

/** The same answer as raw bytes, for sockets that have no ServerResponse (CONNECT, upgrades). */
export function rawAnswer(answer: EarlyAnswer, close = true): string {
  const body = JSON.stringify({ error: answer.code, message: answer.message, ...answer.extra });
  const reason = http.STATUS_CODES[answer.status] ?? "Error";
  const auth = (answer.status === 407 ? 'Proxy-Authenticate: Basic realm="agent-vault"\r\n' : "") + Object.entries(answer.headers ?? {}).map(([n, v]) => `${n}: ${v}\r\n`).join("");
  return `HTTP/1.1 ${answer.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Agent-Vault-Error: ${answer.code}\r\n${auth}${close ? "Connection: close\r\n" : ""}\r\n${body}`;
}

function failure(status: number, code: ErrorCode, message: string): EarlyAnswer {
  return { status, code, message };
}

export function describeUpstreamError(error: NodeJS.ErrnoException, host: string): EarlyAnswer {
  const code = String(error.code ?? "");
  if (TLS_ERROR.test(code) || TLS_ERROR.test(error.message)) {
    return failure(502, "upstream_tls_error", `the TLS certificate of ${host} did not verify (${code || error.message.split("\n")[0]})`);
  }
  return failure(502, "upstream_error", `cannot reach ${host}: ${code || error.message.split("\n")[0]}`);
}

export interface ForwardResult {
  readonly status: number;
  readonly error: ErrorCode | null;
}

/** Request headers as one HTTP/1.1 head; names lower-case, values validated by node's parser. */
function requestHead(method: string, path: string, headers: http.OutgoingHttpHeaders): string {
  const lines = [`${method} ${path} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) lines.push(`${name}: ${v}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/**
 * Sends the flow upstream and streams the response to `res`, both directions with backpressure:
 * a slow agent pauses the upstream socket, a slow upstream pauses the agent's request.
 */
export function forward(
  flow: Flow,
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    scheme: "https" | "http";
    pool: UpstreamPool;
    maxRequestBytes: number;
    maxResponseBytes: number;
    /** Called once on a 401 to an idempotent request without a body; true: send it again (flow re-injected). */
    onUnauthorized?: (() => Promise<boolean>) | undefined;
    /** Buffer the response and replace these values before the agent sees it (MCP http_request). */
    scrub?: (() => readonly Secret[]) | undefined;
  },
): Promise<ForwardResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ForwardResult) => {
      if (!settled) {
        settled = true;
        resolve(result);
      }
    };
    const fail = (answer: EarlyAnswer) => {
      req.resume();
      sendAnswer(res, answer);
      done({ status: answer.status, error: answer.code });
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > options.maxRequestBytes) {
      return fail(failure(413, "request_too_large", `the request body is ${declared} bytes; the cap is ${options.maxRequestBytes}`));
    }
    const defaultPort = options.scheme === "https" ? 443 : 80;
    const hasLength = req.headers["content-length"] !== undefined;
    const isChunked = !hasLength && /chunked/i.test(String(req.headers["transfer-encoding"] ?? ""));
    const outboundHeaders = (): http.OutgoingHttpHeaders => {
      const headers: http.OutgoingHttpHeaders = { ...flow.headers, host: String(flow.headers.host ?? (flow.port === defaultPort ? flow.host : `${flow.host}:${flow.port}`)) };
      // The agent's body framing is re-done here: a declared length passes as is, anything else is chunked.
      delete headers["transfer-encoding"];
      delete headers.expect;
      if (isChunked) headers["transfer-encoding"] = "chunked";
      return headers;
    };
    const endpoint: Endpoint = { scheme: options.scheme, host: flow.host, dial: flow.dial! };
    req.pause();
    // A keep-alive socket the upstream closed while idle fails at once; a request with no body
    // that got no answer is sent once more on a fresh connection.
    const isRetryable = ["GET", "HEAD", "OPTIONS"].includes(flow.method) && !isChunked && declared === 0;
    // A 401 to one of these can be answered by refreshing an OAuth token and sending it again.
    let mayRetryUnauthorized = options.onUnauthorized !== undefined && ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(flow.method) && !isChunked && declared === 0;
    options.pool.acquire(endpoint).then(
      ({ socket, reused }) => exchange(socket, reused),
      (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
    );

    function exchange(socket: Socket, reused: boolean): void {
      let headSeen = false;
      let requestDone = false;
      let responseDone = false;
      let reusable = false;
      let sentBytes = 0;
      let receivedBytes = 0;
      let status = 502;
      // The 401 being answered by a refresh: read to its end, never shown to the agent.
      let swallow = false;
      // Scrub mode: the response waits here until it is complete and cleaned.
      let held: { status: number; message: string; headers: Record<string, string | string[]>; chunks: Buffer[]; size: number } | null = null;
      const finishBoth = () => {
        if (!requestDone || !responseDone) return;
        cleanup();
        if (reusable) options.pool.release(endpoint, socket);
        else socket.destroy();
      };
      const abort = (answer: EarlyAnswer | null) => {
        cleanup();
        socket.destroy();
        if (answer && !res.headersSent) return fail(answer);
        res.destroy();
        done({ status: res.headersSent ? status : 502, error: answer?.code ?? "upstream_error" });
      };
      const parser = new ResponseParser(
        flow.method === "HEAD",
        (head, framing) => {
          headSeen = true;
          status = head.status;
          if (head.status === 401 && mayRetryUnauthorized) {
            mayRetryUnauthorized = false;
            swallow = true;
            return;
          }
          const length = framing.kind === "length" ? framing.remaining : 0;
          if (length > options.maxResponseBytes) return abort(failure(502, "upstream_error", `the response is ${length} bytes; the cap is ${options.maxResponseBytes}`));
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of head.headers) {
            const lower = name.toLowerCase();
            if (HOP_BY_HOP_RESPONSE.has(lower)) continue;
            const prior = out[lower];
            out[lower] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
          }
          Object.assign(out, flow.responseHeaders);
          if (options.scrub) {
            held = { status: head.status, message: head.message, headers: out, chunks: [], size: 0 };
            return;
          }
          res.writeHead(head.status, head.message || undefined, out);
          // Server-sent events and other streams go out as they arrive.
          res.flushHeaders();
        },
        (bytes) => {
          if (bytes.length === 0 || swallow) return;
          if (held) {
            held.size += bytes.length;
            if (held.size > MAX_SCRUB_BYTES) return abort(failure(502, "upstream_error", `the response is larger than ${MAX_SCRUB_BYTES} bytes, too large to scrub`));
            held.chunks.push(Buffer.from(bytes));
            return;
          }
          receivedBytes += bytes.length;
          if (receivedBytes > options.maxResponseBytes) return abort(null);
          if (!res.write(bytes)) {
            socket.pause();
            res.once("drain", () => socket.resume());
          }
        },
        (canReuse) => {
          responseDone = true;
          reusable = canReuse;
          if (swallow) {
            finishBoth();
            options.onUnauthorized!().then(
              (again) => {
                if (!again) return fail(flow.answer ?? failure(502, "upstream_error", `${flow.host} refused the credential (401)`));
                options.pool.acquire(endpoint).then(
                  ({ socket: next, reused: wasReused }) => exchange(next, wasReused),
                  (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
                );
              },
              () => fail(failure(502, "upstream_error", "internal error while refreshing the credential")),
            );
            return;
          }
          if (held) {
            const answer = scrubbed(held, options.scrub!());
            if ("code" in answer) {
              responseDone = true;
              finishBoth();
              return fail(answer);
            }
            res.writeHead(held.status, held.message || undefined, answer.headers);
            res.end(answer.body);
            done({ status, error: null });
            finishBoth();
            return;
          }
          res.end();
          done({ status, error: null });
          finishBoth();
        },
      );
      const onData = (data: Buffer) => {
        const error = parser.feed(data);
        if (error) abort(failure(502, "upstream_error", `${flow.host} sent a malformed response (${error})`));
      };
      const onEnd = () => {
        if (!headSeen && retry()) return;
        const error = parser.end();
        if (error) abort(failure(502, "upstream_error", `${flow.host}: ${error}`));
      };
      const retry = (): boolean => {
        if (!reused || headSeen || !isRetryable) return false;
        cleanup();
        socket.destroy();
        options.pool.acquire(endpoint, true).then(
          ({ socket: fresh }) => exchange(fresh, false),
          (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
        );
        return true;
      };
      const onError = (error: NodeJS.ErrnoException) => {
        if (!retry()) abort(describeUpstreamError(error, flow.host));
      };
      const onClose = () => {
        if (!parser.isFinished && !retry()) abort(failure(502, "upstream_error", `${flow.host} closed the connection`));
      };
      const onClientGone = () => {
        if (!res.writableFinished) abort(null);
      };
      socket.on("data", onData);
      socket.on("end", onEnd);
      socket.on("error", onError);
      socket.on("close", onClose);
      res.on("close", onClientGone);
      function cleanup(): void {
        socket.off("data", onData);
        socket.off("end", onEnd);
        socket.off("error", onError);
        socket.off("close", onClose);
        res.off("close", onClientGone);
        req.off("data", onBody);
        req.off("end", onBodyEnd);
      }

      socket.write(requestHead(flow.method, flow.path, outboundHeaders()));
      function onBody(chunk: Buffer): void {
        sentBytes += chunk.length;
        if (sentBytes > options.maxRequestBytes) {
          return abort(failure(413, "request_too_large", `the request body is larger than the cap of ${options.maxRequestBytes} bytes`));
        }
        const ok = socket.write(isChunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]) : chunk);
        if (!ok) {
          // Pausing the message alone does not stop Bun reading the agent's socket; pause both.
          req.pause();
          req.socket.pause();
          socket.once("drain", () => {
            req.socket.resume();
            req.resume();
          });
        }
      }
      function onBodyEnd(): void {
        if (isChunked) socket.write("0\r\n\r\n");
        requestDone = true;
        finishBoth();
      }
      // A second exchange of a bodiless request (a retry) finds the agent's request already read.
      if (req.readableEnded) {
        requestDone = true;
        return;
      }
      req.on("data", onBody);
      req.on("end", onBodyEnd);
      req.resume();
    }
  });
}

/** The held response decoded and cleaned, or why it cannot be passed on. */
function scrubbed(held: { headers: Record<string, string | string[]>; chunks: Buffer[] }, secrets: readonly Secret[]): { headers: Record<string, string | string[]>; body: Buffer } | EarlyAnswer {
  const raw = Buffer.concat(held.chunks);
  const encoding = held.headers["content-encoding"];
  const body = decodeBody(raw, Array.isArray(encoding) ? encoding.join(",") : encoding);
  if (body === null) return failure(502, "upstream_error", `the response's content-encoding (${String(encoding)}) cannot be scanned for credentials, so it was not passed on`);
  // No body (HEAD, 204, 304): the headers describe a body that is not here; keep them as they are.
  const bodiless = raw.length === 0;
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(held.headers)) {
    if (!bodiless && (name === "content-encoding" || name === "content-length")) continue;
    // A header whose name holds a value cannot be renamed to [REDACTED:...]: it is dropped.
    if (scrubText(name, secrets) !== name) continue;
    headers[name] = Array.isArray(value) ? value.map((v) => scrubText(v, secrets)) : scrubText(value, secrets);
  }
  const clean = scrubBuffer(body, secrets);
  if (!bodiless) headers["content-length"] = String(clean.length);
  return { headers, body: clean };
}
