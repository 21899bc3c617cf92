// Forwarding a flow upstream and its response back, streaming both ways with backpressure (so a
// 1 GiB body costs a few buffers, not a GiB), with size caps, and with every failure turned into
// the contract's JSON error. Upstream TLS is always verified: system roots plus
// AGENT_VAULT_UPSTREAM_CA, against the host name the agent asked for.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { type Socket } from "node:net";
import { type Transform } from "node:stream";
import { type ErrorCode } from "../shared/errors.ts";
import { type EarlyAnswer, type Flow } from "./flow.ts";
import { bodyLayers, type Coding, codingsOf, decoderChain, MAX_SNIFFED_LAYERS, messageCodings, sniffCoding } from "../net/codings.ts";
import { endsWithPartValue, findSecret, guardScan, longestSpelling, openRests, type Pattern, scrubText, StreamGuard, StreamScrubber } from "./secrets.ts";
import { type RequestTails, tailKey } from "./tails.ts";
import { scrubWholeBody } from "./whole-body.ts";
import { type Endpoint, ResponseParser, type UpstreamPool } from "./upstream.ts";

/**
 * Under the guard a request body is read whole and checked before the upstream is dialled, so a
 * refused request sends it zero bytes. Past this size a plain body streams on, checked as it goes,
 * holding back any tail that could be the start of a value (the value itself never leaves; the
 * bytes before it may); a compressed body past it is refused.
 */
const GUARD_BUFFER_BYTES = 8 * 1024 * 1024;

type GuardedBody = { kind: "whole"; body: Buffer } | { kind: "stream"; head: Buffer; guard: StreamGuard } | { kind: "refused"; answer: EarlyAnswer } | { kind: "gone" };

/** Decoded request bodies are scanned up to this size; a bigger expansion is refused (a bomb). */
const MAX_DECODED_SCAN_BYTES = 64 * 1024 * 1024;

interface GuardInput {
  readonly patterns: readonly Pattern[];
  readonly onBlocked: (hit: Pattern) => EarlyAnswer;
  readonly maxRequestBytes: number;
  /** Rests of values whose first piece ended a field before the body (see steps/guard.ts). */
  readonly rests: readonly Pattern[];
  /** Keeps the rests the body's end leaves open, for the next request to the host. */
  readonly recordRests: (rests: readonly Pattern[]) => void;
}

/**
 * Reads (up to the buffer size) and checks the agent's body; see GUARD_BUFFER_BYTES. Every layer
 * is searched: the body as sent, with its declared content and transfer codings undone, and with
 * whatever its magic bytes say it is undone too (gzip without a header, gzip in gzip). A body the
 * guard cannot read is refused, never sent unread. Transfer codings are hop-by-hop: the upstream
 * gets the body without them.
 */
function readGuarded(req: IncomingMessage, input: GuardInput): Promise<GuardedBody> {
  const { patterns, onBlocked, maxRequestBytes, rests } = input;
  // The rest of a value whose first piece ended the URL, a header or the previous request.
  const joinedHit = (body: Buffer) => (rests.length > 0 ? findSecret(body.toString("latin1"), rests) : null);
  const codings = messageCodings(req.headers["content-encoding"], req.headers["transfer-encoding"]);
  const transferCodings = codings === null ? 0 : codings.length - (codingsOf(req.headers["content-encoding"])?.length ?? 0);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    const finish = (result: GuardedBody) => {
      if (finished) return;
      finished = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      req.pause();
      resolve(result);
    };
    const unreadable = () =>
      failure(400, "invalid_request", `the request body's coding (content-encoding ${String(req.headers["content-encoding"] ?? "none")}, transfer-encoding ${String(req.headers["transfer-encoding"] ?? "none")}) cannot be checked by the guard, so it was not sent`);
    // The agent went away mid-body: nothing is sent, the flow ends.
    const onClose = () => finish({ kind: "gone" });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > maxRequestBytes) return finish({ kind: "refused", answer: failure(413, "request_too_large", `the request body is larger than the cap of ${maxRequestBytes} bytes`) });
      if (size <= GUARD_BUFFER_BYTES) return;
      if (codings === null || codings.length > 0 || sniffCoding(chunks[0]!) !== null) {
        return finish({ kind: "refused", answer: failure(413, "request_too_large", `a compressed body larger than ${GUARD_BUFFER_BYTES} bytes cannot be checked by the guard`) });
      }
      // Past the buffer the body streams on, always holding back the longest spelling of a value,
      // so the end can still be refused unsent if it holds part of one.
      const head = Buffer.concat(chunks);
      const joined = joinedHit(head);
      if (joined) return finish({ kind: "refused", answer: onBlocked(joined) });
      // The rests opened by the URL and headers are looked for to the end of the body too.
      const guard = new StreamGuard(rests.length > 0 ? [...patterns, ...rests] : patterns, longestSpelling(patterns));
      const first = guard.push(head);
      finish("hit" in first ? { kind: "refused", answer: onBlocked(first.hit) } : { kind: "stream", head: first.send, guard });
    };
    const onEnd = () => {
      if (codings === null) return finish({ kind: "refused", answer: unreadable() });
      const layers = bodyLayers(Buffer.concat(chunks), codings, MAX_DECODED_SCAN_BYTES);
      if (layers === null) return finish({ kind: "refused", answer: unreadable() });
      const opened: Pattern[] = [];
      for (const layer of layers) {
        const text = layer.body.toString("latin1");
        const scanned = guardScan(text, patterns);
        // A value cut in two inside this body (its rest before its first piece) is whole too.
        const hit = scanned.hit ?? joinedHit(layer.body) ?? (scanned.rests.length > 0 ? findSecret(text, scanned.rests) : null);
        if (hit) return finish({ kind: "refused", answer: onBlocked(hit) });
        opened.push(...scanned.rests);
      }
      const inner = layers[layers.length - 1]!.body.toString("latin1");
      // A body may not end in a good part of a value: the rest would follow in the next request.
      const part = endsWithPartValue(inner, patterns);
      if (part) return finish({ kind: "refused", answer: onBlocked(part) });
      input.recordRests([...opened, ...openRests(inner, patterns)]);
      finish({ kind: "whole", body: layers[Math.min(transferCodings, layers.length - 1)]!.body });
    };
    if (codings === null) {
      finish({ kind: "refused", answer: unreadable() });
      req.resume();
      return;
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    req.resume();
  });
}

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
    /** Replace these values in the response before the agent sees it (scrubbing). */
    scrub?: (() => readonly Pattern[]) | undefined;
    /** Refuse the request if its body carries one of these values (the exfiltration guard). */
    guard?: (() => readonly Pattern[]) | undefined;
    /** Called when the guard finds a value in the body: the flow records the key, the agent gets the answer. */
    onBlocked?: ((hit: Pattern) => EarlyAnswer) | undefined;
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
    let guarded: GuardedBody | null = null;
    const start = () =>
      options.pool.acquire(endpoint).then(
        ({ socket, reused }) => exchange(socket, reused),
        (error: NodeJS.ErrnoException) => fail(describeUpstreamError(error, flow.host)),
      );
    if (hasBody && patterns.length > 0) {
      const key = tailKey(flow.principal?.id, flow.host, flow.port);
      void readGuarded(req, {
        patterns,
        onBlocked: options.onBlocked ?? ((hit) => failure(403, "credential_exfiltration", `the request body carries the value of credential ${hit.key}`)),
        maxRequestBytes: options.maxRequestBytes,
        rests: flow.guardRests ?? [],
        recordRests: (found) => options.tails?.add(key, found),
      }).then((result) => {
        if (result.kind === "refused") return fail(result.answer);
        if (result.kind === "gone") return done({ status: 499, error: "cancelled" });
        guarded = result;
        start();
      });
    } else start();

    function exchange(socket: Socket, reused: boolean): void {
      // The agent left while we read its body or dialled: nothing to answer.
      if (res.destroyed || req.destroyed && !req.readableEnded) {
        socket.destroy();
        return done({ status: 499, error: "cancelled" });
      }
      let headSeen = false;
      let requestDone = false;
      let responseDone = false;
      let reusable = false;
      let sentBytes = 0;
      let receivedBytes = 0;
      let status = 502;
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
      const abort = (answer: EarlyAnswer | null) => {
        aborted = true;
        cleanup();
        socket.destroy();
        if (answer && !res.headersSent) return fail(answer);
        res.destroy();
        done({ status: res.headersSent ? status : 502, error: answer?.code ?? "upstream_error" });
      };
      const parser = new ResponseParser(
        flow.method === "HEAD",
        (head, framing) => {
          if (aborted) return;
          headSeen = true;
          status = head.status;
          // Nothing here offered an upgrade (adapter.ts removes every offer but a WebSocket's, which
          // never comes this way): a switch would be a connection the proxy cannot read.
          if (head.status === 101) return abort(failure(502, "upstream_error", `${flow.host} switched protocols without being asked`));
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
          let message = head.message;
          if (options.scrub) {
            const patterns = options.scrub();
            message = scrubText(message, patterns);
            let decoded = 0;
            const transferEncoding = head.headers.filter(([n]) => n.toLowerCase() === "transfer-encoding").map(([, v]) => v).join(",");
            const scrubbing = startScrub(out, transferEncoding, framing.kind !== "none" && !(framing.kind === "length" && framing.remaining === 0), patterns, {
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
        (bytes) => {
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
        (canReuse) => {
          if (aborted) return;
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
      const body = guarded as GuardedBody | null;
      if (body?.kind === "whole") {
        if (body.body.length > 0) socket.write(body.body);
        requestDone = true;
        return;
      }
      const streamGuard = body?.kind === "stream" ? body.guard : null;
      if (body?.kind === "stream" && body.head.length > 0) {
        sentBytes += body.head.length;
        socket.write(isChunked ? Buffer.concat([Buffer.from(`${body.head.length.toString(16)}\r\n`), body.head, Buffer.from("\r\n")]) : body.head);
      }
      function onBody(input: Buffer): void {
        let chunk = input;
        if (streamGuard) {
          const checked = streamGuard.push(input);
          if ("hit" in checked) {
            // The value itself never left: it was still being held back or in this chunk.
            const answer = options.onBlocked ? options.onBlocked(checked.hit) : failure(403, "credential_exfiltration", `the request body carries the value of credential ${checked.hit.key}`);
            return abort(answer);
          }
          chunk = checked.send;
          if (chunk.length === 0) return;
        }
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
        const ended = streamGuard?.end();
        if (ended && "hit" in ended) {
          // The body ends in part of a value: that part was held back and never left.
          return abort(options.onBlocked ? options.onBlocked(ended.hit) : failure(403, "credential_exfiltration", `the request body carries part of the value of credential ${ended.hit.key}`));
        }
        const rest = ended?.send;
        if (rest && rest.length > 0) socket.write(isChunked ? Buffer.concat([Buffer.from(`${rest.length.toString(16)}\r\n`), rest, Buffer.from("\r\n")]) : rest);
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

interface ScrubIo {
  /** Writes to the agent; false when it wants us to wait for `drain`. */
  readonly write: (bytes: Buffer) => boolean;
  readonly waitDrain: (resume: () => void) => void;
  /** Stop reading the upstream until `until` calls back (the agent or the decoder drained). */
  readonly pauseUpstream: (until: (resume: () => void) => void) => void;
  /** A corrupt compressed body: the response is cut, never ended as if complete. */
  readonly fail: () => void;
  /** A body held whole that must not reach the agent: it gets this answer instead. */
  readonly refuse: (answer: EarlyAnswer) => void;
  /** Sends the (cleaned) head: at once when streaming, after the body when it is held whole. */
  readonly writeHead: (headers: Record<string, string | string[]>) => void;
}

/** A plain body of known length up to this is cleaned whole and keeps an exact Content-Length. */
const SCRUB_WHOLE_BYTES = 256 * 1024;
/** Decoded response layers are scrubbed up to this size (a bomb past it is cut). */
const MAX_DECODED_SCRUB_BYTES = 64 * 1024 * 1024;

/**
 * Checks a compressed stream the response did not declare (a .gz download, gzip in gzip) in
 * parallel with passing it on unchanged: each chunk goes to the agent once the decoder has read it
 * and what it decoded held no value; a value cuts the response.
 */
class SniffedStream {
  private readonly decoder: Transform;
  private readonly guard: StreamGuard;
  private nested: SniffedStream | null = null;
  private first = true;
  private failed = false;

  constructor(coding: Coding, private readonly patterns: readonly Pattern[], private readonly onHit: () => void) {
    this.decoder = decoderChain([coding])[0]!;
    this.guard = new StreamGuard(patterns);
    this.decoder.on("data", (bytes: Buffer) => this.inspect(bytes));
    // A body that only looked compressed is data; what was decoded so far was checked.
    this.decoder.on("error", () => (this.failed = true));
  }

  private inspect(bytes: Buffer): void {
    if (this.first) {
      this.first = false;
      const inner = sniffCoding(bytes);
      if (inner) this.nested = new SniffedStream(inner, this.patterns, this.onHit);
    }
    this.nested?.write(bytes, () => undefined);
    if ("hit" in this.guard.push(bytes)) this.onHit();
  }

  write(bytes: Buffer, then: () => void): void {
    if (this.failed) return then();
    this.decoder.write(bytes, () => then());
  }

  end(then: () => void): void {
    if (this.failed) return then();
    this.decoder.end(() => {
      if ("hit" in this.guard.end()) this.onHit();
      this.nested ? this.nested.end(then) : then();
    });
  }
}

/**
 * Scrubbing a response as it streams: headers cleaned now (a header whose name holds a value is
 * dropped), the body decoded (content codings, then transfer codings other than chunked: gzip,
 * deflate, br) and cleaned chunk by chunk, with backpressure from the agent through the decoders
 * to the upstream socket. A body whose coding cannot be read is refused with 502 rather than
 * passed unscanned. A body that is compressed without saying so is cleaned in its layers when
 * small, and checked as it streams when large.
 */
function startScrub(
  headers: Record<string, string | string[]>,
  transferEncoding: string,
  hasBody: boolean,
  patterns: readonly Pattern[],
  io: ScrubIo,
): { push: (bytes: Buffer) => void; end: (then: () => void) => void } | EarlyAnswer {
  // One search over all headers; only when something is there are they cleaned one by one.
  if (findSecret(Object.entries(headers).map(([n, v]) => `${n}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n"), patterns)) {
    for (const [name, value] of Object.entries(headers)) {
      if (scrubText(name, patterns) !== name) {
        delete headers[name];
        continue;
      }
      headers[name] = Array.isArray(value) ? value.map((v) => scrubText(v, patterns)) : scrubText(value, patterns);
    }
  }
  const scrubber = new StreamScrubber(patterns);
  if (!hasBody) {
    io.writeHead(headers);
    return { push: () => undefined, end: (then) => then() };
  }
  const codings = messageCodings(headers["content-encoding"], transferEncoding);
  if (codings === null) return failure(502, "upstream_error", `the response's coding (content-encoding ${String(headers["content-encoding"] ?? "none")}, transfer-encoding ${transferEncoding || "none"}) cannot be scanned for credentials, so it was not passed on`);
  const chain = decoderChain(codings);
  const length = Number(headers["content-length"]);
  if (chain.length === 0 && Number.isInteger(length) && length <= SCRUB_WHOLE_BYTES) {
    // Most API answers: small, with a length. Held whole, cleaned, sent with its new exact length.
    const chunks: Buffer[] = [];
    return {
      push: (bytes) => void chunks.push(bytes),
      end: (then) => {
        const whole = scrubWholeBody(Buffer.concat(chunks), [], patterns, MAX_DECODED_SCRUB_BYTES);
        if ("unreadable" in whole) return io.fail();
        if ("refused" in whole) {
          return io.refuse(failure(502, "upstream_error", `the response carries the value of credential ${whole.refused.key} in a spelling that cannot be replaced where it stands (wrapped, spaced or UTF-16); it was not passed on`));
        }
        const clean = whole.body;
        headers["content-length"] = String(clean.length);
        io.writeHead(headers);
        io.write(clean);
        then();
      },
    };
  }
  // The body may change length (and loses its coding): it goes out chunked.
  delete headers["content-length"];
  if (chain.length > 0) delete headers["content-encoding"];
  io.writeHead(headers);
  if (chain.length === 0) {
    let sniffed: SniffedStream | null | undefined;
    let cut = false;
    return {
      push: (bytes) => {
        if (cut) return;
        if (sniffed === undefined) {
          const coding = sniffCoding(bytes);
          sniffed = coding ? new SniffedStream(coding, patterns, () => ((cut = true), io.fail())) : null;
        }
        if (sniffed) {
          // Compressed: passed on unchanged, each chunk once the decoder read it and found nothing.
          io.pauseUpstream((resume) =>
            sniffed!.write(bytes, () => {
              if (cut) return;
              if (!io.write(bytes)) io.waitDrain(resume);
              else resume();
            }),
          );
          return;
        }
        if (!io.write(scrubber.push(bytes))) io.pauseUpstream(io.waitDrain);
      },
      end: (then) => {
        if (sniffed) return sniffed.end(() => (cut ? undefined : then()));
        io.write(scrubber.end());
        then();
      },
    };
  }
  for (let i = 0; i + 1 < chain.length; i++) chain[i]!.pipe(chain[i + 1]!);
  const first = chain[0]!;
  let ended: (() => void) | null = null;
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    for (const s of chain) s.destroy();
    io.fail();
  };
  for (const stream of chain) stream.on("error", fail);
  // The decoded body is read like any other: if it is itself compressed (gzip declared once and
  // applied twice), one more decoder is added, up to MAX_SNIFFED_LAYERS.
  const read = (stream: Transform, depth: number) => {
    let sniffed = false;
    stream.on("data", (bytes: Buffer) => {
      if (failed) return;
      if (!sniffed) {
        sniffed = true;
        const coding = depth < MAX_SNIFFED_LAYERS ? sniffCoding(bytes) : null;
        if (coding) {
          const inner = decoderChain([coding])[0]!;
          chain.push(inner);
          inner.on("error", fail);
          stream.pipe(inner);
          read(inner, depth + 1);
          inner.write(bytes);
          return;
        }
      }
      if (stream !== chain[chain.length - 1]) return;
      if (!io.write(scrubber.push(bytes))) {
        stream.pause();
        io.waitDrain(() => stream.resume());
      }
    });
    stream.on("end", () => {
      if (failed || stream !== chain[chain.length - 1]) return;
      io.write(scrubber.end());
      ended?.();
    });
  };
  read(chain[chain.length - 1]!, 0);
  return {
    push: (bytes) => {
      if (!failed && !first.write(bytes)) io.pauseUpstream((resume) => first.once("drain", resume));
    },
    end: (then) => {
      ended = then;
      if (!failed) first.end();
    },
  };
}
