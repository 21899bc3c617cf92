// The agent's side of HTTP/1.1 on one connection: an intercepted tunnel's TLS socket, or a plain
// connection to the proxy port. Requests are read with src/net/http1.ts one at a time (a pipelined
// next request waits in the parser until this one is answered) and handed on as an InboundRequest,
// answered through an InboundResponse. Bytes and framing only: no decision is made here.
//
// Why not node:http: under Bun, feeding a TLS socket into http.Server with emit("connection") was
// most of the proxy's per-request cost, and it is a second parser beside the upstream one. This one
// parses what the guard sees with the same strict rules the upstream leg uses.
import { EventEmitter } from "node:events";
import { type IncomingHttpHeaders, STATUS_CODES } from "node:http";
import { type Socket } from "node:net";
import { countRelayed } from "./memory.ts";
import { type BodyFraming, headerValues, type ParseError, type RequestHead, RequestParser, responseHead } from "./http1.ts";
import { ChunkedWriter, writeParts } from "./http1-write.ts";

/** Node's shape: lower-case names, one string per field except set-cookie (an array). */
export type HeaderMap = IncomingHttpHeaders;
export type OutHeaders = Record<string, string | string[] | number | undefined>;

/** A request from the agent; the body arrives as `data` events once resumed, then `end`. */
export class InboundRequest extends EventEmitter {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  /** Lower-case names; repeats joined as node:http joins them (so steps read one string). */
  readonly headers: HeaderMap;
  /** Names and values as sent, flat: [name, value, name, value, ...]. */
  readonly rawHeaders: string[];
  readableEnded = false;

  constructor(
    private readonly conn: InboundConnection,
    head: RequestHead,
  ) {
    super();
    this.method = head.method;
    this.url = head.target;
    this.httpVersion = head.version;
    this.rawHeaders = head.headers.flat();
    this.headers = headerMap(head.headers);
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  pause(): this {
    this.conn.pauseBody();
    return this;
  }

  resume(): this {
    this.conn.resumeBody();
    return this;
  }
}

/** Fields node:http keeps only the first of; the rest of a repeat is dropped, as there. */
const SINGLE = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent",
]);

function headerMap(headers: readonly [string, string][]): HeaderMap {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    const prior = out[lower];
    if (prior === undefined) out[lower] = lower === "set-cookie" ? [value] : value;
    else if (SINGLE.has(lower)) continue;
    else if (Array.isArray(prior)) prior.push(value);
    else out[lower] = `${prior}${lower === "cookie" ? "; " : ", "}${value}`;
  }
  return out as HeaderMap;
}

type Framing = "none" | "length" | "chunked" | "close";

/** The answer to one request, written with its framing; `write` returns false when the agent is slow. */
export class InboundResponse extends EventEmitter {
  headersSent = false;
  writableFinished = false;
  private framing: Framing = "none";
  private remaining = 0;
  /** The head, held until the first body bytes (one write for both) or flushHeaders. */
  private pending: Buffer | null = null;
  private flushQueued = false;

  constructor(
    private readonly conn: InboundConnection,
    private readonly isHead: boolean,
  ) {
    super();
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  writeHead(status: number, reasonOrHeaders?: string | OutHeaders, maybeHeaders: OutHeaders = {}): this {
    if (this.headersSent) throw new Error("response head already sent");
    const reason = typeof reasonOrHeaders === "string" ? reasonOrHeaders : undefined;
    const headers = typeof reasonOrHeaders === "object" ? reasonOrHeaders : maybeHeaders;
    this.headersSent = true;
    const out: [string, string][] = [];
    let length: number | undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      if (lower === "connection" || lower === "transfer-encoding" || lower === "keep-alive") continue;
      if (lower === "content-length") length = Number(value);
      for (const v of Array.isArray(value) ? value : [String(value)]) out.push([name, v]);
    }
    const noBody = this.isHead || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) this.framing = "none";
    else if (length !== undefined && Number.isSafeInteger(length) && length >= 0) {
      this.framing = "length";
      this.remaining = length;
    } else if (this.conn.isHttp11) {
      this.framing = "chunked";
      out.push(["transfer-encoding", "chunked"]);
    } else this.framing = "close";
    // An answer written while the agent may still be sending a body ends the connection: what
    // follows could not be told apart from a next request once we stop reading it.
    if (this.framing === "close" || !this.conn.keepsAlive() || this.conn.hasUnreadBody()) {
      this.conn.closeAfterResponse = true;
      out.push(["connection", "close"]);
    } else if (!this.conn.isHttp11) out.push(["connection", "keep-alive"]);
    this.pending = responseHead(status, reason || STATUS_CODES[status] || "Unknown", out);
    return this;
  }

  /** Sends the head now (a stream's first event must not wait for its first body bytes). */
  flushHeaders(): void {
    if (this.flushQueued || !this.pending) return;
    this.flushQueued = true;
    // A body written in this same turn still goes out with the head, in one write.
    queueMicrotask(() => {
      this.flushQueued = false;
      this.sendPending();
    });
  }

  write(bytes: Buffer | string): boolean {
    return this.writeParts([typeof bytes === "string" ? Buffer.from(bytes) : bytes]);
  }

  /**
   * Writes `parts` as one piece of the body (one chunk when chunked): a scrubbed stream's held
   * tail and the chunk after it go out together without first being joined into a new buffer.
   */
  writeParts(parts: readonly Buffer[]): boolean {
    if (this.writableFinished || this.conn.socket.destroyed) return true;
    let length = 0;
    for (const part of parts) length += part.length;
    if (length === 0) return true;
    if (this.framing === "none") return true;
    if (this.framing === "length") {
      // More than the declared length would be the start of another response: a bug, never sent.
      if (length > this.remaining) {
        this.conn.socket.destroy();
        return true;
      }
      this.remaining -= length;
      return this.send(parts);
    }
    if (this.framing !== "chunked") return this.send(parts);
    return this.chunked.write(parts);
  }

  /** The chunked body's writer: each write goes out with the head if it is still held (send). */
  private readonly chunked = new ChunkedWriter((parts) => (this.conn.socket.destroyed ? true : this.send(parts)));

  end(bytes?: Buffer | string): void {
    if (this.writableFinished) return;
    if (!this.headersSent) this.writeHead(200);
    if (bytes !== undefined) this.write(bytes);
    this.writableFinished = true;
    if (this.framing === "chunked") this.chunked.end();
    else this.sendPending();
    if (this.framing === "length" && this.remaining > 0) this.conn.closeAfterResponse = true;
    this.conn.responseDone(this);
  }

  destroy(): void {
    this.conn.socket.destroy();
  }

  private sendPending(): void {
    if (!this.pending) return;
    const head = this.pending;
    this.pending = null;
    this.conn.socket.write(head);
  }

  /** The head (if still held) and the parts, in as few writes as is cheap (writeParts). */
  private send(parts: readonly Buffer[]): boolean {
    const all = this.pending ? [this.pending, ...parts] : parts;
    this.pending = null;
    return writeParts(this.conn.socket, all);
  }
}

export interface InboundHandlers {
  /** A request head was read; its body waits until `req.resume()`. */
  readonly request: (req: InboundRequest, res: InboundResponse) => void;
  /** A malformed or oversized head: answered here with 400/431 and the connection closed. */
  readonly malformed?: (error: ParseError) => void;
}

/** How much body is read and dropped after an answer that did not need it, before closing instead. */
const MAX_DRAIN_BYTES = 1024 * 1024;
/** What may wait in the parser unread before the socket is paused. */
const HOLD_BYTES = 64 * 1024;
/** How long a connection ended that way still reads and drops what arrives. */
const LINGER_MS = 2000;

/** One agent connection: reads requests, one at a time, until the agent or an answer closes it. */
export class InboundConnection {
  readonly socket: Socket;
  private readonly parser: RequestParser;
  private readonly handlers: InboundHandlers;
  private req: InboundRequest | null = null;
  private res: InboundResponse | null = null;
  private head: RequestHead | null = null;
  private requestEnded = false;
  private bodyPaused = true;
  private continueSent = false;
  private drained = 0;
  private detached = false;
  private closing = false;
  private bodyless = true;
  /** Bytes fed while nothing reads them, and whether that paused the socket. */
  private held = 0;
  private socketPaused = false;
  closeAfterResponse = false;
  isHttp11 = true;
  /**
   * performance.now() since when this connection waits for a request head (null while a request is
   * in progress or after it left HTTP): the listener closes one that waits too long.
   */
  waitingSince: number | null = performance.now();
  /** Requests answered on this connection. */
  served = 0;

  constructor(socket: Socket, handlers: InboundHandlers) {
    this.socket = socket;
    this.handlers = handlers;
    this.parser = new RequestParser({
      head: (head, framing) => this.onHead(head, framing),
      body: (bytes) => this.onBody(bytes),
      end: () => this.onEnd(),
    });
    socket.on("data", this.onData);
    socket.on("end", this.onSocketEnd);
    socket.on("close", this.onClose);
    socket.on("error", () => socket.destroy());
    socket.on("drain", this.onDrain);
  }

  /** Feeds bytes that were read before this connection took the socket (e.g. a peeked first head). */
  feed(bytes: Buffer): void {
    if (bytes.length > 0) this.onData(bytes);
  }

  /**
   * Takes the socket away from HTTP (CONNECT, a WebSocket): returns the bytes read past the
   * current request. The socket is left paused with no listeners of ours.
   */
  detach(): Buffer {
    this.detached = true;
    this.waitingSince = null;
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onSocketEnd);
    this.socket.off("close", this.onClose);
    this.socket.off("drain", this.onDrain);
    this.socket.pause();
    return this.parser.takeRest();
  }

  /** Bytes of a next request head have arrived but not the whole head. */
  hasPartialHead(): boolean {
    return this.req === null && this.parser.buffered > 0;
  }

  /** The current request still has body bytes we have not read. */
  hasUnreadBody(): boolean {
    return !this.requestEnded && !this.bodyless;
  }

  keepsAlive(): boolean {
    if (this.closeAfterResponse || !this.head) return false;
    const connection = headerValues(this.head.headers, "connection").join(",").toLowerCase();
    if (this.isHttp11) return !/(^|[\s,])close($|[\s,])/.test(connection);
    return /(^|[\s,])keep-alive($|[\s,])/.test(connection);
  }

  /**
   * Stops body events. The socket itself is paused only once more than HOLD_BYTES wait in the
   * parser: pausing and resuming a TLS socket on every request cost more than the request.
   */
  pauseBody(): void {
    this.bodyPaused = true;
    this.parser.pause();
  }

  private resumeSocket(): void {
    this.held = 0;
    if (!this.socketPaused) return;
    this.socketPaused = false;
    this.socket.resume();
  }

  resumeBody(): void {
    if (this.detached) return;
    // curl and others wait for a 100 before sending a large body.
    if (!this.continueSent && !this.requestEnded && this.head && this.head.version === "1.1" && !this.res?.headersSent) {
      const expect = headerValues(this.head.headers, "expect").join(",").toLowerCase();
      if (expect.includes("100-continue")) {
        this.continueSent = true;
        this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    this.bodyPaused = false;
    const error = this.parser.resume();
    if (error) return this.onBodyError();
    if (!this.bodyPaused && !this.detached) this.resumeSocket();
  }

  /** Called by the response once it has ended. */
  responseDone(res: InboundResponse): void {
    if (res !== this.res) return;
    if (this.closeAfterResponse) {
      if (this.requestEnded) return void this.socket.end();
      this.req?.removeAllListeners("data");
      this.resumeBody();
      return this.lingerClose();
    }
    if (!this.requestEnded) {
      // The answer did not need the rest of the body: read and drop it, then go on.
      const expect = this.head ? headerValues(this.head.headers, "expect").join(",").toLowerCase() : "";
      if (expect.includes("100-continue") && !this.continueSent) {
        this.socket.end();
        return;
      }
      this.req?.removeAllListeners("data");
      this.resumeBody();
      return;
    }
    this.nextRequest();
  }

  private readonly onData = (data: Buffer): void => {
    countRelayed(data.length);
    // Bytes that wait in the parser (a paused body, a pipelined next request): bounded.
    if (this.bodyPaused || this.requestEnded) {
      this.held += data.length;
      if (this.held > HOLD_BYTES && !this.socketPaused) {
        this.socketPaused = true;
        this.socket.pause();
      }
    }
    const error = this.parser.feed(data);
    if (error) this.onParseError(error);
  };

  private readonly onDrain = (): void => {
    this.res?.emit("drain");
  };

  private readonly onSocketEnd = (): void => {
    const error = this.parser.eof();
    if (this.req && !this.requestEnded) {
      this.req.emit("close");
      this.socket.destroy();
      return;
    }
    if (error && !this.req) return void this.socket.destroy();
    // The agent finished sending; a response in progress still goes out, then the socket ends.
    if (!this.res || this.res.writableFinished) this.socket.end();
    else this.closeAfterResponse = true;
  };

  private readonly onClose = (): void => {
    this.req?.emit("close");
    this.res?.emit("close");
  };

  private onHead(head: RequestHead, framing: BodyFraming): void {
    this.waitingSince = null;
    this.head = head;
    this.bodyless = framing.kind === "none" || (framing.kind === "length" && framing.length === 0);
    this.isHttp11 = head.version === "1.1";
    this.requestEnded = false;
    this.continueSent = false;
    this.drained = 0;
    this.pauseBody();
    this.req = new InboundRequest(this, head);
    this.res = new InboundResponse(this, head.method === "HEAD");
    this.handlers.request(this.req, this.res);
  }

  private onBody(bytes: Buffer): void {
    const req = this.req!;
    if (req.listenerCount("data") === 0) {
      this.drained += bytes.length;
      if (this.drained > MAX_DRAIN_BYTES && this.res?.writableFinished) this.lingerClose();
      return;
    }
    req.emit("data", bytes);
  }

  private onEnd(): void {
    this.requestEnded = true;
    const req = this.req!;
    req.readableEnded = true;
    req.emit("end");
    // A pipelined next request waits in the parser until this one is answered.
    if (this.res?.writableFinished && !this.detached) this.nextRequest();
  }

  /**
   * Ends the connection after an answer while the agent is still sending a body nobody reads: FIN
   * now, and what still arrives is read and dropped for a moment, so the agent reads our answer
   * instead of a reset (nginx's lingering close).
   */
  private lingerClose(): void {
    if (this.closing) return;
    this.closing = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  private nextRequest(): void {
    if (this.closing) return;
    this.served++;
    this.waitingSince = performance.now();
    this.req = null;
    this.res = null;
    this.head = null;
    this.bodyPaused = false;
    this.requestEnded = false;
    this.resumeSocket();
    // Un-pause first (the last body may have been paused by its reader), then start the next
    // message: its head event pauses again until that request's body is wanted.
    const error = this.parser.resume() ?? this.parser.next();
    if (error) this.onParseError(error);
  }

  private onParseError(error: ParseError): void {
    if (this.req && !this.requestEnded) return this.onBodyError();
    this.handlers.malformed?.(error);
    const status = error.code === "head_too_large" ? 431 : error.code === "unsupported" ? 505 : 400;
    if (error.code === "unsupported" && /HTTP\/2/i.test(error.message)) return void this.socket.destroy();
    const body = JSON.stringify({ error: "invalid_request", message: error.message });
    this.socket.end(
      Buffer.concat([
        responseHead(status, STATUS_CODES[status] ?? "Bad Request", [
          ["content-type", "application/json"],
          ["content-length", String(Buffer.byteLength(body))],
          ["x-agent-vault-error", "invalid_request"],
          ["connection", "close"],
        ]),
        Buffer.from(body),
      ]),
    );
  }

  /** A body that broke its framing mid-way: nothing more is read, the exchange is cut. */
  private onBodyError(): void {
    this.req?.emit("close");
    this.socket.destroy();
  }
}
