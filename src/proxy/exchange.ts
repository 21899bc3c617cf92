// One exchange: the flow's request sent upstream and the response streamed back to the agent,
// both directions with backpressure (a 1 GiB body costs a few buffers, not a GiB), with size caps,
// and every failure turned into the contract's JSON error (shared/answers.ts). The decisions were
// made in pipeline.ts and are read off the flow: the scheme, whether the guard reads the body,
// whether the response is scrubbed, and what a 401 does. Upstream TLS is always verified
// (src/net/trust.ts) against the host name the agent asked for.
import { countRelayed } from "../net/memory.ts";
import { type Socket } from "node:net";
import { requestHead, ResponseParser } from "../net/http1.ts";
import { type InboundRequest, type InboundResponse } from "../net/inbound.ts";
import { type Endpoint, type UpstreamPool } from "../net/pool.ts";
import { type Answer, problem, type Reached, sendAnswer, statusOf } from "../shared/answers.ts";
import { type ErrorCode } from "../shared/errors.ts";
import { type Flow, reachedBy } from "./flow.ts";
import { GUARD_BUFFER_BYTES, type GuardedBody, readGuarded, transformed } from "./request-body.ts";
import { RequestSender } from "./request-sender.ts";
import { ResponseWriter } from "./response-writer.ts";
import { type Pattern } from "./secrets.ts";
import { type RequestTails, tailKey } from "./tails.ts";

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|TLS|SSL|HANDSHAKE|ERR_SSL/i;
/** Sent again on a fresh connection when a kept-alive one turns out closed: no body, no side effect. */
const RETRYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Sent again after an OAuth refresh answered a 401. */
const REFRESHABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

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

export interface ExchangeOptions {
  readonly scheme: "https" | "http";
  readonly pool: UpstreamPool;
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  /** Called once on a 401 to an idempotent request without a body; true: send it again (flow re-injected). */
  readonly onUnauthorized?: (() => Promise<boolean>) | undefined;
  /** Replace these values in the response before the agent sees it (scrubbing). */
  readonly scrub?: (() => readonly Pattern[]) | undefined;
  /** Refuse the request if its body carries one of these values (the exfiltration guard). */
  readonly guard?: (() => readonly Pattern[]) | undefined;
  /** Called when the guard finds a value in the body: the flow records the key, the agent gets the answer. */
  readonly onBlocked?: ((hit: Pattern) => Answer) | undefined;
  /** What each principal last sent each host (the guard joins it to the next request). */
  readonly tails?: RequestTails | undefined;
}

/**
 * Sends the flow upstream and streams the response to `res`, both directions with backpressure:
 * a slow agent pauses the upstream socket, a slow upstream pauses the agent's request.
 */
export function forward(flow: Flow, req: InboundRequest, res: InboundResponse, options: ExchangeOptions): Promise<ForwardResult> {
  return new Exchange(flow, req, res, options).run();
}

/** One request's way upstream and back, over one or more attempts (a stale connection, a 401). */
class Exchange {
  readonly reached: Reached;
  readonly endpoint: Endpoint;
  readonly declared: number;
  readonly isChunked: boolean;
  /** What the guard read of the body before dialling (null: nothing was read). */
  body: GuardedBody | null = null;
  /** A 401 may still be answered by refreshing an OAuth token (once). */
  mayRefresh: boolean;
  private resolve: (result: ForwardResult) => void = () => undefined;
  private settled = false;

  constructor(
    readonly flow: Flow,
    readonly req: InboundRequest,
    readonly res: InboundResponse,
    readonly options: ExchangeOptions,
  ) {
    this.reached = reachedBy(flow);
    this.endpoint = { scheme: options.scheme, host: flow.host, dial: flow.dial! };
    this.declared = Number(req.headers["content-length"] ?? 0);
    this.isChunked = req.headers["content-length"] === undefined && /chunked/i.test(String(req.headers["transfer-encoding"] ?? ""));
    this.mayRefresh = options.onUnauthorized !== undefined && REFRESHABLE_METHODS.has(flow.method) && !this.hasBody;
  }

  get hasBody(): boolean {
    return this.isChunked || this.declared > 0;
  }

  /** A request without a body that got no answer on a kept-alive connection may go once more. */
  get isRetryable(): boolean {
    return RETRYABLE_METHODS.has(this.flow.method) && !this.hasBody;
  }

  run(): Promise<ForwardResult> {
    const result = new Promise<ForwardResult>((resolve) => (this.resolve = resolve));
    if (this.declared > this.options.maxRequestBytes) {
      this.fail(problem("request_too_large", `the request body is ${this.declared} bytes; the cap is ${this.options.maxRequestBytes}`));
      return result;
    }
    this.req.pause();
    const patterns = this.options.guard?.() ?? [];
    // The session's placeholders for this service, replaced in the body once the guard passed it.
    const substitutions = this.hasBody ? (this.flow.substitutions?.() ?? []) : [];
    if (!this.hasBody || (patterns.length === 0 && substitutions.length === 0 && !this.flow.checkWholeBody && !this.flow.signBody)) {
      this.signAndAttempt(null);
      return result;
    }
    const key = tailKey(this.flow.principal?.id, this.flow.host, this.flow.port);
    void readGuarded(this.req, {
      patterns,
      onBlocked: this.blocked,
      maxRequestBytes: this.options.maxRequestBytes,
      rests: this.flow.guardRests ?? [],
      recordRests: (found) => this.options.tails?.add(key, found),
      substitutions,
    }).then((read) => {
      if (read.kind === "refused") return this.fail(read.answer);
      if (read.kind === "gone") return this.finish({ status: statusOf("client_gone"), error: "client_gone" });
      this.body = read;
      this.afterBodyCheck(read);
    });
    return result;
  }

  /**
   * A body some step must see whole (flow.checkWholeBody: a `_method` under method rules, a person's
   * approval of exactly these bytes) is sent only once that step let it go.
   */
  private afterBodyCheck(read: GuardedBody): void {
    const wait = this.flow.checkWholeBody;
    if (!wait) return this.signAndAttempt(read);
    if (read.kind !== "whole" || !read.sent || !read.decoded) {
      return this.fail(
        problem(
          "request_too_large",
          `this request's body is checked whole before it is sent (a request held for approval, or one judged for a _method field under method rules); it is larger than ${GUARD_BUFFER_BYTES} bytes`,
        ),
      );
    }
    void wait({ sent: read.sent, decoded: read.decoded }).then((refusal) => (refusal ? this.fail(refusal) : this.signAndAttempt(read)));
  }

  /**
   * A request whose signature covers its body (AWS SigV4, steps/sigv4.ts) is signed now, after the
   * guard and any approval, over exactly the bytes that go upstream; then it is sent.
   */
  private signAndAttempt(read: GuardedBody | null): void {
    const sign = this.flow.signBody;
    if (sign && read?.kind === "stream" && this.flow.signStream) {
      // Past the buffer, signed as it streams: the head the guard released first, then each piece.
      const transform = this.flow.signStream();
      const head: Buffer[] = [];
      for (const piece of read.head) {
        const signed = transform.push(piece);
        if (!Buffer.isBuffer(signed)) return this.fail(signed);
        head.push(signed);
      }
      read.head = head;
      read.guard = transformed(read.guard, transform);
      return this.attempt();
    }
    if (sign) {
      if (read !== null && read.kind !== "whole") {
        return this.fail(
          problem("request_too_large", `the signature covers this body, which is larger than ${GUARD_BUFFER_BYTES} bytes; send it with x-amz-content-sha256 set (a SHA-256, or UNSIGNED-PAYLOAD)`),
        );
      }
      const signed = sign(read?.kind === "whole" ? read.body : Buffer.alloc(0));
      if (!Buffer.isBuffer(signed)) return this.fail(signed);
      if (read?.kind === "whole") read.body = signed;
    }
    this.attempt();
  }

  readonly blocked = (hit: Pattern): Answer => this.options.onBlocked?.(hit) ?? problem("credential_exfiltration", `the request body carries the value of credential ${hit.key}`);

  /** One try on a pooled (or, `fresh`, a new) connection. */
  attempt(fresh = false): void {
    this.options.pool.acquire(this.endpoint, fresh).then(
      ({ socket, reused }) => new Attempt(this, socket, reused).start(),
      (error: NodeJS.ErrnoException) => this.fail(describeUpstreamError(error, this.flow.host)),
    );
  }

  /** The head as it goes upstream: the flow's headers, the Host, and the body's framing redone. */
  outboundHeaders(): Record<string, string | string[] | undefined> {
    const flow = this.flow;
    const defaultPort = this.options.scheme === "https" ? 443 : 80;
    const headers: Record<string, string | string[] | undefined> = { ...flow.headers, host: String(flow.headers.host ?? (flow.port === defaultPort ? flow.host : `${flow.host}:${flow.port}`)) };
    // A declared length passes as is (or the guard's exact one), anything else is chunked.
    delete headers["transfer-encoding"];
    delete headers.expect;
    if (this.body?.kind === "whole") headers["content-length"] = String(this.body.body.length);
    else if (this.isChunked) headers["transfer-encoding"] = "chunked";
    return headers;
  }

  /** Answers the agent instead of the upstream (nothing of the upstream's reached it). */
  fail(answer: Answer): void {
    this.req.resume();
    sendAnswer(this.res, answer, this.reached);
    this.finish({ status: statusOf(answer.code, this.reached), error: answer.code, reason: answer.message });
  }

  finish(result: ForwardResult): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(result);
  }
}

/** One attempt on one upstream connection: the request out, the response back. */
class Attempt {
  private headSeen = false;
  private requestDone = false;
  private responseDone = false;
  private aborted = false;
  private status: number = statusOf("upstream_error");
  /** The 401 being answered by a refresh: read to its end, never shown to the agent. */
  private swallow = false;
  private readonly parser: ResponseParser;
  private readonly writer: ResponseWriter;
  private readonly sender: RequestSender;

  constructor(
    private readonly exchange: Exchange,
    private readonly socket: Socket,
    private readonly reused: boolean,
  ) {
    const { flow, options } = exchange;
    this.writer = new ResponseWriter(exchange.res, socket, {
      maxResponseBytes: options.maxResponseBytes,
      extraHeaders: flow.responseHeaders,
      scrub: options.scrub,
      range: flow.range,
      cut: (answer) => this.abort(answer),
    });
    this.sender = new RequestSender(
      exchange.req,
      socket,
      { isChunked: exchange.isChunked, maxRequestBytes: options.maxRequestBytes },
      {
        sent: () => {
          this.requestDone = true;
          this.settle();
        },
        refused: (answer) => this.abort(answer),
        blocked: exchange.blocked,
      },
    );
    this.parser = new ResponseParser({
      head: (head, framing) => {
        if (this.aborted) return;
        this.headSeen = true;
        this.status = head.status;
        // Nothing here offered an upgrade (a WebSocket's goes through ws-upgrade.ts): a switch
        // would be a connection the proxy cannot read.
        if (head.status === 101) return this.abort(problem("upstream_error", `${flow.host} switched protocols without being asked`));
        if (head.status === 401 && exchange.mayRefresh) {
          exchange.mayRefresh = false;
          this.swallow = true;
          return;
        }
        this.writer.head(head, framing);
      },
      body: (bytes) => {
        if (!this.aborted && !this.swallow) this.writer.body(bytes);
      },
      end: () => this.onResponseEnd(),
    });
    this.parser.expect(flow.method);
  }

  start(): void {
    const { req, res, flow } = this.exchange;
    // The agent left while we read its body or dialled: nothing to answer.
    if (res.destroyed || (req.destroyed && !req.readableEnded)) {
      this.socket.destroy();
      return this.exchange.finish({ status: statusOf("client_gone"), error: "client_gone" });
    }
    this.socket.on("data", this.onData);
    this.socket.on("end", this.onEnd);
    this.socket.on("error", this.onError);
    this.socket.on("close", this.onClose);
    res.on("close", this.onAgentGone);
    let head: Buffer;
    try {
      head = requestHead(flow.method, flow.path, this.exchange.outboundHeaders());
    } catch (error) {
      // A value that would split the head (a character past latin1 in an injected header).
      return this.abort(problem("invalid_request", `the request to ${flow.host} cannot be written: ${(error as Error).message}`));
    }
    this.socket.write(head);
    this.sender.start(this.exchange.body);
  }

  private onResponseEnd(): void {
    if (this.aborted) return;
    const exchange = this.exchange;
    this.responseDone = true;
    if (this.swallow) {
      this.settle();
      exchange.options.onUnauthorized!().then(
        (again) => (again ? exchange.attempt() : exchange.fail(exchange.flow.answer ?? problem("upstream_error", `${exchange.flow.host} refused the credential (401)`))),
        () => exchange.fail(problem("upstream_error", "internal error while refreshing the credential")),
      );
      return;
    }
    this.writer.end(() => {
      exchange.finish({ status: this.status, error: null });
      this.settle();
    });
  }

  /** Both directions are done: the connection goes back to the pool, or is closed. */
  private settle(): void {
    if (!this.requestDone || !this.responseDone) return;
    this.detach();
    if (this.parser.reusable) this.exchange.options.pool.release(this.exchange.endpoint, this.socket);
    else this.socket.destroy();
  }

  /** Cut: the upstream connection closes; the agent gets `answer` if nothing was sent yet, else a cut response. */
  private abort(answer: Answer | null): void {
    if (this.aborted) return;
    this.aborted = true;
    this.writer.stop();
    this.detach();
    this.socket.destroy();
    const { res, reached } = this.exchange;
    if (answer && !res.headersSent) return this.exchange.fail(answer);
    res.destroy();
    this.exchange.finish({
      status: res.headersSent ? this.status : statusOf(answer?.code ?? "upstream_error", reached),
      error: answer?.code ?? "upstream_error",
      reason: answer?.message ?? "the response was cut",
    });
  }

  /** A kept-alive connection the upstream had closed: the request goes once more on a new one. */
  private retry(): boolean {
    if (!this.reused || this.headSeen || !this.exchange.isRetryable) return false;
    this.detach();
    this.socket.destroy();
    this.exchange.attempt(true);
    return true;
  }

  private detach(): void {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("error", this.onError);
    this.socket.off("close", this.onClose);
    this.exchange.res.off("close", this.onAgentGone);
    this.sender.stop();
  }

  private readonly onData = (data: Buffer): void => {
    countRelayed(data.length);
    const error = this.parser.feed(data);
    if (error) this.abort(problem("upstream_error", `${this.exchange.flow.host} sent a malformed response (${error.message})`));
  };

  private readonly onEnd = (): void => {
    if (!this.headSeen && this.retry()) return;
    const error = this.parser.eof();
    if (error) this.abort(problem("upstream_error", `${this.exchange.flow.host}: ${error.message}`));
  };

  private readonly onError = (error: NodeJS.ErrnoException): void => {
    if (!this.retry()) this.abort(describeUpstreamError(error, this.exchange.flow.host));
  };

  private readonly onClose = (): void => {
    if (this.parser.state !== "done" && !this.retry()) this.abort(problem("upstream_error", `${this.exchange.flow.host} closed the connection`));
  };

  private readonly onAgentGone = (): void => {
    if (!this.exchange.res.writableFinished) this.abort(null);
  };
}
