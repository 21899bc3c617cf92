// Forwarding a flow upstream and its response back, streaming both ways with backpressure (so a
// 1 GiB body costs a few buffers, not a GiB), with size caps, and with every failure turned into
// the contract's JSON error. Upstream TLS is always verified: system roots plus
// AGENT_VAULT_UPSTREAM_CA, against the host name the agent asked for.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { Transform, pipeline } from "node:stream";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { type ErrorCode } from "../shared/errors.ts";
import { type EarlyAnswer, type Flow } from "./flow.ts";

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|TLS|SSL|HANDSHAKE|ERR_SSL/i;
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

export interface Upstreams {
  readonly https: https.Agent;
  readonly http: http.Agent;
}

export function createUpstreams(trust: readonly string[]): Upstreams {
  return {
    https: new https.Agent({ keepAlive: true, maxFreeSockets: 256, ca: [...trust], timeout: 120_000 }),
    http: new http.Agent({ keepAlive: true, maxFreeSockets: 256 }),
  };
}

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
  const auth = answer.status === 407 ? 'Proxy-Authenticate: Basic realm="agent-vault"\r\n' : "";
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

/** Counts bytes through a stream and fails it past `max`. */
function byteCap(max: number, onOver: () => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > max) {
        onOver();
        callback(new Error("size cap exceeded"));
        return;
      }
      callback(null, chunk);
    },
  });
}

export interface ForwardResult {
  readonly status: number;
  readonly error: ErrorCode | null;
}

/**
 * Sends the flow upstream (over TLS unless `scheme` is http) and streams the response to `res`.
 * Resolves once the exchange is over, with the status the agent saw.
 */
export function forward(
  flow: Flow,
  req: IncomingMessage,
  res: ServerResponse,
  options: { scheme: "https" | "http"; upstreams: Upstreams; maxRequestBytes: number; maxResponseBytes: number },
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
      sendAnswer(res, answer);
      done({ status: answer.status, error: answer.code });
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > options.maxRequestBytes) {
      req.resume();
      return fail(failure(413, "request_too_large", `the request body is ${declared} bytes; the cap is ${options.maxRequestBytes}`));
    }
    const dial = flow.dial!;
    const defaultPort = options.scheme === "https" ? 443 : 80;
    const headers: http.OutgoingHttpHeaders = { ...flow.headers, host: String(flow.headers.host ?? (flow.port === defaultPort ? flow.host : `${flow.host}:${flow.port}`)) };
    const upstream = (options.scheme === "https" ? https : http).request({
      host: dial.address,
      port: dial.port,
      method: flow.method,
      path: flow.path,
      headers,
      agent: options.scheme === "https" ? options.upstreams.https : options.upstreams.http,
      ...(options.scheme === "https" && isIP(flow.host) === 0 ? { servername: flow.host } : {}),
      // The host name check is always against the name the agent asked for, not the dialled address.
      ...(options.scheme === "https" ? { checkServerIdentity: (_: string, cert: PeerCertificate) => checkServerIdentity(flow.host, cert) } : {}),
    });
    upstream.on("response", (upstreamRes) => {
      const length = Number(upstreamRes.headers["content-length"] ?? 0);
      if (length > options.maxResponseBytes) {
        upstreamRes.destroy();
        return fail(failure(502, "upstream_error", `the response is ${length} bytes; the cap is ${options.maxResponseBytes}`));
      }
      const outHeaders: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstreamRes.headers)) {
        if (value !== undefined && !HOP_BY_HOP_RESPONSE.has(name)) outHeaders[name] = value;
      }
      const status = upstreamRes.statusCode ?? 502;
      res.writeHead(status, upstreamRes.statusMessage, outHeaders);
      // Server-sent events and other streams go out as they arrive.
      res.flushHeaders();
      pipeline(
        upstreamRes,
        byteCap(options.maxResponseBytes, () => undefined),
        res,
        (error) => {
          if (error) res.destroy();
          done({ status, error: error ? "upstream_error" : null });
        },
      );
    });
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      if (settled) return;
      if (res.headersSent) {
        res.destroy();
        return done({ status: 502, error: "upstream_error" });
      }
      fail(describeUpstreamError(error, flow.host));
    });
    let tooLarge = false;
    pipeline(
      req,
      byteCap(options.maxRequestBytes, () => {
        tooLarge = true;
      }),
      upstream,
      (error) => {
        if (error && tooLarge) {
          upstream.destroy();
          fail(failure(413, "request_too_large", `the request body is larger than the cap of ${options.maxRequestBytes} bytes`));
        }
      },
    );
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
      done({ status: res.statusCode, error: res.writableFinished ? null : "upstream_error" });
    });
  });
}
