// One exchange: the flow's request sent upstream and the response streamed back to the agent,
// both directions with backpressure (a 1 GiB body costs a few buffers, not a GiB), with size caps,
// and every failure turned into the contract's JSON error (shared/answers.ts). The decisions were
// made in pipeline.ts and are read off the flow: the scheme, whether the guard reads the body,
// whether the response is scrubbed, and what a 401 does. Upstream TLS is always verified
// (src/net/trust.ts) against the host name the agent asked for.
import { type Socket } from "node:net";
import { type InboundRequest, type InboundResponse } from "../net/inbound.ts";
import { LAST_CHUNK, chunk, requestHead, ResponseParser } from "../net/http1.ts";
import { type Answer, problem, sendAnswer, statusOf } from "../shared/answers.ts";
import { type ErrorCode } from "../shared/errors.ts";
import { type Flow, reachedBy } from "./flow.ts";
import { GUARD_BUFFER_BYTES, type GuardedBody, readGuarded } from "./request-body.ts";
import { startScrub } from "./response-body.ts";
import { type Pattern, scrubText } from "./secrets.ts";
import { type RequestTails, tailKey } from "./tails.ts";
import { type Endpoint, type UpstreamPool } from "../net/pool.ts";

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|TLS|SSL|HANDSHAKE|ERR_SSL/i;
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

export function describeUpstreamError(error: NodeJS.ErrnoException, host: string): Answer {
  const code = String(error.code ?? "");
  if (TLS_ERROR.test(code) || TLS_ERROR.test(error.message)) {
    return problem("upstream_tls_error", `the TLS certificate of ${host} did not verify (${code || error.message.split("\n")[0]})`);
  }
  return problem("upstream_error", `cannot reach ${host}: ${code || error.message.split("\n")[0]}`);
}

export interface ForwardResult {
  readonly status: number;
  readonly error: ErrorCode | null;
  /** Why it failed, in words (the answer's message), for the request log. */
  readonly reason?: string;
}

/**
 * Sends the flow upstream and streams the response to `res`, both directions with backpressure:
 * a slow agent pauses the upstream socket, a slow upstream pauses the agent's request.
 */
export function forward(
  flow: Flow,
  req: InboundRequest,
  res: InboundResponse,
  options: {
    scheme: "https" | "http";
    pool: UpstreamPool;
    maxRequestBytes: number;
    maxResponseBytes: number;
    /** Called once on a 401 to an idempotent request without a body; true: send it again (flow re-injected). */
    onUnauthorized?: (() => Promise<boolean>) | undefined;
    /** Replace these values in the response before the agent sees it (scrubbing). */
    scrub?: (() => readonly Pattern[]) | undefined;
    /** Refuse the request if its body carries one of these values (the exfiltration guard). */
    guard?: (() => readonly Pattern[]) | undefined;
    /** Called when the guard finds a value in the body: the flow records the key, the agent gets the answer. */
    onBlocked?: ((hit: Pattern) => Answer) | undefined;
    /** What each principal last sent each host (the guard joins it to the next request). */
    tails?: RequestTails | undefined;
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
    const reached = reachedBy(flow);
    const fail = (answer: Answer) => {
      req.resume();
      sendAnswer(res, answer, reached);
      done({ status: statusOf(answer.code, reached), error: answer.code, reason: answer.message });
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > options.maxRequestBytes) {
      return fail(problem("request_too_large", `the request body is ${declared} bytes; the cap is ${options.maxRequestBytes}`));
    }
    const defaultPort = options.scheme === "https" ? 443 : 80;
    const hasLength = req.headers["content-length"] !== undefined;
    const isChunked = !hasLength && /chunked/i.test(String(req.headers["transfer-encoding"] ?? ""));
    const outboundHeaders = (): Record<string, string | string[] | undefined> => {
      const headers: Record<string, string | string[] | undefined> = { ...flow.headers, host: String(flow.headers.host ?? (flow.port === defaultPort ? flow.host : `${flow.host}:${flow.port}`)) };
      // The agent's body framing is re-done here: a declared length passes as is, anything else is chunked.
      delete headers["transfer-encoding"];
      delete headers.expect;
      if (guarded?.kind === "whole") {
        headers["content-length"] = String(guarded.body.length);
      } else if (isChunked) headers["transfer-encoding"] = "chunked";
      return headers;
    };
    const endpoint: Endpoint = { scheme: options.scheme, host: flow.host, dial: flow.dial! };
    req.pause();
    // A keep-alive socket the upstream closed while idle fails at once; a request with no body
    // that got no answer is sent once more on a fresh connection.
    const isRetryable = ["GET", "HEAD", "OPTIONS"].includes(flow.method) && !isChunked && declared === 0;
    // A 401 to one of these can be answered by refreshing an OAuth token and sending it again.
    let mayRetryUnauthorized = options.onUnauthorized !== undefined && ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(flow.method) && !isChunked && declared === 0;
    const patterns = options.guard?.() ?? [];
    const hasBody = isChunked || declared > 0;
    // The session's placeholders for this service, replaced in the body once the guard passed it.
    const substitutions = hasBody ? (flow.substitutions?.() ?? []) : [];
    let guarded: GuardedBody | null = null;
    const start = () =>
      options.pool.acquire(endpoint).then(
        ({ socket, reused }) => exchange(socket, reused),
        (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
      );
    // A held request (steps/hold.ts) is sent only once a person allowed exactly this body.
    const afterApproval = (read: GuardedBody) => {
      const wait = flow.awaitApproval;
      if (!wait) return start();
      if (read.kind !== "whole" || !read.sent || !read.decoded) {
        return fail(problem("request_too_large", `a request held for approval is read whole to bind the approval to its body; this one is larger than ${GUARD_BUFFER_BYTES} bytes`));
      }
      void wait({ sent: read.sent, decoded: read.decoded }).then((refusal) => (refusal ? fail(refusal) : start()));
    };
    if (hasBody && (patterns.length > 0 || substitutions.length > 0 || flow.awaitApproval)) {
      const key = tailKey(flow.principal?.id, flow.host, flow.port);
      void readGuarded(req, {
        patterns,
        onBlocked: options.onBlocked ?? ((hit) => problem("credential_exfiltration", `the request body carries the value of credential ${hit.key}`)),
        maxRequestBytes: options.maxRequestBytes,
        rests: flow.guardRests ?? [],
        recordRests: (found) => options.tails?.add(key, found),
        substitutions,
      }).then((result) => {
        if (result.kind === "refused") return fail(result.answer);
        if (result.kind === "gone") return done({ status: statusOf("client_gone"), error: "client_gone" });
        guarded = result;
        afterApproval(result);
      });
    } else start();

    function exchange(socket: Socket, reused: boolean): void {
      // The agent left while we read its body or dialled: nothing to answer.
      if (res.destroyed || req.destroyed && !req.readableEnded) {
        socket.destroy();
        return done({ status: statusOf("client_gone"), error: "client_gone" });
      }
      let headSeen = false;
      let requestDone = false;
      let responseDone = false;
      let reusable = false;
      let sentBytes = 0;
      let receivedBytes = 0;
      let status = statusOf("upstream_error");
      // The 401 being answered by a refresh: read to its end, never shown to the agent.
      let swallow = false;
      // Scrubbing: body bytes go through (decoders and) the scrubber; `sink` is where they enter.
      let sink: ((bytes: Buffer) => void) | null = null;
      let finishBody: ((then: () => void) => void) | null = null;
      const finishBoth = () => {
        if (!requestDone || !responseDone) return;
        cleanup();
        if (reusable) options.pool.release(endpoint, socket);
        else socket.destroy();
      };
      let aborted = false;
      const abort = (answer: Answer | null) => {
        aborted = true;
        cleanup();
        socket.destroy();
        if (answer && !res.headersSent) return fail(answer);
        res.destroy();
        done({ status: res.headersSent ? status : statusOf(answer?.code ?? "upstream_error", reached), error: answer?.code ?? "upstream_error", reason: answer?.message ?? "the response was cut" });
      };
      const parser = new ResponseParser({
        head: (head, framing) => {
          if (aborted) return;
          headSeen = true;
          status = head.status;
          // Nothing here offered an upgrade (adapter.ts removes every offer but a WebSocket's, which
          // never comes this way): a switch would be a connection the proxy cannot read.
          if (head.status === 101) return abort(problem("upstream_error", `${flow.host} switched protocols without being asked`));
          if (head.status === 401 && mayRetryUnauthorized) {
            mayRetryUnauthorized = false;
            swallow = true;
            return;
          }
          const length = framing.kind === "length" ? framing.length : 0;
          if (length > options.maxResponseBytes) return abort(problem("upstream_error", `the response is ${length} bytes; the cap is ${options.maxResponseBytes}`));
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of head.headers) {
            const lower = name.toLowerCase();
            if (HOP_BY_HOP_RESPONSE.has(lower)) continue;
            const prior = out[lower];
            out[lower] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
          }
          Object.assign(out, flow.responseHeaders);
          let message = head.reason;
          if (options.scrub) {
            const patterns = options.scrub();
            message = scrubText(message, patterns);
            let decoded = 0;
            const transferEncoding = head.headers.filter(([n]) => n.toLowerCase() === "transfer-encoding").map(([, v]) => v).join(",");
            const scrubbing = startScrub(out, transferEncoding, framing.kind !== "none" && !(framing.kind === "length" && framing.length === 0), patterns, {
              write: (bytes) => {
                if (aborted || bytes.length === 0) return true;
                decoded += bytes.length;
                // A decompression bomb is cut at the response cap, counted after decoding.
                if (decoded > options.maxResponseBytes) {
                  abort(null);
                  return true;
                }
                return res.write(bytes);
              },
              waitDrain: (resume) => res.once("drain", resume),
              pauseUpstream: (until) => {
                socket.pause();
                until(() => socket.resume());
              },
              fail: () => abort(null),
              refuse: (answer) => abort(answer),
              writeHead: (headers) => {
                res.writeHead(head.status, message || undefined, headers);
                res.flushHeaders();
              },
            });
            if ("code" in scrubbing) return abort(scrubbing);
            sink = scrubbing.push;
            finishBody = scrubbing.end;
            return;
          }
          res.writeHead(head.status, message || undefined, out);
          // Server-sent events and other streams go out as they arrive.
          res.flushHeaders();
        },
        body: (bytes) => {
          if (aborted || bytes.length === 0 || swallow) return;
          if (sink) {
            receivedBytes += bytes.length;
            if (receivedBytes > options.maxResponseBytes) return abort(null);
            return sink(Buffer.from(bytes));
          }
          receivedBytes += bytes.length;
          if (receivedBytes > options.maxResponseBytes) return abort(null);
          if (!res.write(bytes)) {
            socket.pause();
            res.once("drain", () => socket.resume());
          }
        },
        end: () => {
          if (aborted) return;
          responseDone = true;
          reusable = parser.reusable;
          if (swallow) {
            finishBoth();
            options.onUnauthorized!().then(
              (again) => {
                if (!again) return fail(flow.answer ?? problem("upstream_error", `${flow.host} refused the credential (401)`));
                options.pool.acquire(endpoint).then(
                  ({ socket: next, reused: wasReused }) => exchange(next, wasReused),
                  (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
                );
              },
              () => fail(problem("upstream_error", "internal error while refreshing the credential")),
            );
            return;
          }
          if (finishBody) {
            finishBody(() => {
              res.end();
              done({ status, error: null });
              finishBoth();
            });
            return;
          }
          res.end();
          done({ status, error: null });
          finishBoth();
        },
      });
      parser.expect(flow.method);
      const onData = (data: Buffer) => {
        const error = parser.feed(data);
        if (error) abort(problem("upstream_error", `${flow.host} sent a malformed response (${error.message})`));
      };
      const onEnd = () => {
        if (!headSeen && retry()) return;
        const error = parser.eof();
        if (error) abort(problem("upstream_error", `${flow.host}: ${error.message}`));
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
        if (parser.state !== "done" && !retry()) abort(problem("upstream_error", `${flow.host} closed the connection`));
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

      let head: Buffer;
      try {
        head = requestHead(flow.method, flow.path, outboundHeaders());
      } catch (error) {
        // A value that would split the head (a character past latin1 in an injected header).
        return abort(problem("invalid_request", `the request to ${flow.host} cannot be written: ${(error as Error).message}`));
      }
      socket.write(head);
      const body = guarded as GuardedBody | null;
      if (body?.kind === "whole") {
        if (body.body.length > 0) socket.write(body.body);
        requestDone = true;
        return;
      }
      const streamGuard = body?.kind === "stream" ? body.guard : null;
      if (body?.kind === "stream" && body.head.length > 0) {
        sentBytes += body.head.length;
        socket.write(isChunked ? Buffer.concat(chunk(body.head)) : body.head);
      }
      function onBody(input: Buffer): void {
        let piece = input;
        if (streamGuard) {
          const checked = streamGuard.push(input);
          if ("hit" in checked) {
            // The value itself never left: it was still being held back or in this piece.
            const answer = options.onBlocked ? options.onBlocked(checked.hit) : problem("credential_exfiltration", `the request body carries the value of credential ${checked.hit.key}`);
            return abort(answer);
          }
          piece = checked.send;
          if (piece.length === 0) return;
        }
        sentBytes += piece.length;
        if (sentBytes > options.maxRequestBytes) {
          return abort(problem("request_too_large", `the request body is larger than the cap of ${options.maxRequestBytes} bytes`));
        }
        const ok = socket.write(isChunked ? Buffer.concat(chunk(piece)) : piece);
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
        const ended = streamGuard?.end();
        if (ended && "hit" in ended) {
          // The body ends in part of a value: that part was held back and never left.
          return abort(options.onBlocked ? options.onBlocked(ended.hit) : problem("credential_exfiltration", `the request body carries part of the value of credential ${ended.hit.key}`));
        }
        const rest = ended?.send;
        if (rest && rest.length > 0) socket.write(isChunked ? Buffer.concat(chunk(rest)) : rest);
        if (isChunked) socket.write(LAST_CHUNK);
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