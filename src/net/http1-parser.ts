// Incremental HTTP/1.1 message parsers (RFC 9112) for both sides of the proxy: the agent's requests
// and the upstream's responses. Strict where two parsers could disagree about where a message ends
// (that is request smuggling): bare LF or CR, obs-fold, TE with CL, odd Content-Length or chunk
// sizes, a missing CRLF after chunk data are refused, never repaired. Bodies are handed on as views
// of the input without copying; bytes are copied only when a head or a chunk-size line is split
// across reads, or when they arrive while the consumer has paused.
import { forbiddenTrailer, type HeaderList, hasConnectionOption, malformed, type ParseError, parseContentLength, parseFieldLines, TOKEN, transferCodings, VALUE_CTL } from "./http1-syntax.ts";

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly version: "1.0" | "1.1";
  readonly headers: HeaderList;
}

export interface ResponseHead {
  readonly version: "1.0" | "1.1";
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
}

export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };

export interface MessageEvents<H> {
  head(head: H, framing: BodyFraming): void;
  /** De-chunked body bytes; may be a view into the input: copy them to keep them past the call. */
  body(bytes: Buffer): void;
  /** The message is complete (for a 101 or an upgrade request too, right after its head and body). */
  end(trailers: HeaderList): void;
}

export interface ParserLimits {
  /** The start line and header fields with their CRLFs; default 64 KiB. */
  maxHeadBytes?: number;
  /** Header fields in a head, and trailer fields; default 256. */
  maxHeaders?: number;
  /** Trailer fields with their CRLFs; default 16 KiB. */
  maxTrailerBytes?: number;
}

export type ParserState = "head" | "body_length" | "chunk_size" | "chunk_data" | "chunk_data_crlf" | "trailers" | "body_close" | "done" | "upgraded" | "failed";

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");
const NO_TRAILERS: HeaderList = [];
const MAX_TARGET_BYTES = 8 * 1024;
/** A chunk-size line with its extensions; extensions are otherwise a free way to make us buffer. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024;
/** RFC 9112 2.2: a server ignores at least one empty line before a request line; a few, not a stream. */
const MAX_EMPTY_LINES = 4;
const MID_MESSAGE = "the connection closed mid-message";

const HEX = /^[0-9A-Fa-f]+/;
// Buffer#latin1Slice (Node and Bun) decodes a head about 3x faster than toString("latin1", ...).
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, start: number, end: number) => string }).latin1Slice;
function latin1(buf: Buffer, start: number, end: number): string {
  return latin1Slice ? latin1Slice.call(buf, start, end) : buf.toString("latin1", start, end);
}
// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )  (RFC 9112 7.1.1), taken
// with whitespace only before ";": llhttp's strict mode refuses it after ";" and around "=", and a
// form one parser accepts and the next refuses is how a chunk boundary gets smuggled.
const CHUNK_EXT = /^(?:[ \t]*;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;
const TARGET_CHARS = /[^\x21-\x7e]/;
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
// uri-host [ ":" port ]: reg-name, IPv4 or an IP literal in brackets (RFC 3986 3.2.2).
const HOST_VALUE = /^[A-Za-z0-9\-._~!$&'()*+,;=%:[\]]*$/;
/** tchar as a byte table, to refuse a request that does not start with a method at its first byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
const IS_HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") IS_HEX[c.charCodeAt(0)] = 1;

/** The body framing and what follows the message, decided by the subclass from a complete head. */
interface HeadOutcome {
  readonly framing: BodyFraming;
  readonly upgrades: boolean;
  readonly keepAlive: boolean;
}

abstract class MessageParser<H> {
  // Unparsed input is buf[off, len), and buf ends at len (so a search never reads past it). When
  // bytes had to be joined, buf is a view of `spare`, our own store with room to append into.
  private buf: Buffer = EMPTY;
  private spare: Buffer | null = null;
  private off = 0;
  private len = 0;
  private current: ParserState = "head";
  private error: ParseError | null = null;
  private paused = false;
  private running = false;
  private sawEof = false;
  /** Bytes left in a Content-Length body or in the current chunk. */
  private remaining = 0;
  // A head or trailer block being scanned, as offsets from `off` (off stays at the block's start).
  private lineAt = 0;
  private scanAt = 0;
  private fieldsAt = 0;
  private fieldLines = 0;
  private emptyLines = 0;
  private upgrades = false;
  protected keepAlive = false;
  protected readonly maxHeadBytes: number;
  protected readonly maxHeaders: number;
  private readonly maxTrailerBytes: number;

  constructor(
    private readonly events: MessageEvents<H>,
    limits: ParserLimits,
    private readonly isRequest: boolean,
  ) {
    this.maxHeadBytes = limits.maxHeadBytes ?? 64 * 1024;
    this.maxHeaders = limits.maxHeaders ?? 256;
    this.maxTrailerBytes = limits.maxTrailerBytes ?? 16 * 1024;
  }

  get state(): ParserState {
    return this.current;
  }

  /** Between messages with nothing buffered: the connection can be closed without cutting anything. */
  get isIdle(): boolean {
    return (this.current === "head" || this.current === "done") && this.off === this.len;
  }

  /** Parses what it can; events fire before this returns. A refusal is final: every later call returns it. */
  feed(bytes: Buffer): ParseError | null {
    if (this.error) return this.error;
    if (bytes.length === 0) return null;
    this.append(bytes);
    return this.run();
  }

  /** The peer closed its side: ends a close-delimited body, or refuses a message cut short. */
  eof(): ParseError | null {
    if (this.error) return this.error;
    this.sawEof = true;
    return this.run();
  }

  /** Stops delivering events (callable from inside one); input fed meanwhile is buffered. */
  pause(): void {
    this.paused = true;
  }

  resume(): ParseError | null {
    if (this.error) return this.error;
    this.paused = false;
    return this.run();
  }

  /** After `end` ("done", or "upgraded" when the upgrade was declined): parses the next message from what is buffered. */
  next(): ParseError | null {
    if (this.error) return this.error;
    if (this.current === "done" || this.current === "upgraded") this.startMessage();
    return this.run();
  }

  /** Returns and forgets the buffered unparsed bytes (after an upgrade they belong to the new protocol). */
  takeRest(): Buffer {
    const rest = this.off === 0 && this.len === this.buf.length ? this.buf : this.buf.subarray(this.off, this.len);
    this.buf = EMPTY;
    this.off = this.len = 0;
    this.spare = null;
    this.lineAt = this.scanAt = this.fieldsAt = 0;
    return rest;
  }

  /** Buffered bytes not yet parsed. */
  get buffered(): number {
    return this.len - this.off;
  }

  /** The start line, checked as soon as it is complete; returns an error or null. */
  protected abstract parseStartLine(line: string): ParseError | null;
  /** A complete head: decides the framing, or returns null for an interim response (parsing goes on). */
  protected abstract completeHead(headers: HeaderList): HeadOutcome | ParseError | null;
  protected abstract makeHead(headers: HeaderList): H;

  private startMessage(): void {
    this.current = "head";
    this.lineAt = this.scanAt = this.fieldsAt = this.fieldLines = this.emptyLines = 0;
    this.upgrades = false;
    this.keepAlive = false;
  }

  private append(bytes: Buffer): void {
    if (this.off === this.len) {
      this.buf = bytes;
      this.off = 0;
      this.len = bytes.length;
      this.spare = null;
      return;
    }
    if (this.spare !== null && this.spare.length - this.len >= bytes.length) {
      bytes.copy(this.spare, this.len);
      this.len += bytes.length;
      this.buf = this.spare.subarray(0, this.len);
      return;
    }
    // Grow geometrically, so a head trickled in byte by byte costs linear copying, not quadratic.
    const held = this.len - this.off;
    const spare = Buffer.allocUnsafe(Math.max(2 * (held + bytes.length), 1024));
    this.buf.copy(spare, 0, this.off, this.len);
    bytes.copy(spare, held);
    this.spare = spare;
    this.off = 0;
    this.len = held + bytes.length;
    this.buf = spare.subarray(0, this.len);
  }

  private run(): ParseError | null {
    // An event handler that calls feed, next or resume: the loop below carries on when it returns.
    if (this.running) return null;
    this.running = true;
    try {
      while (!this.paused && this.step());
      if (!this.paused && this.sawEof && !this.error) this.atEof();
      return this.error;
    } finally {
      this.running = false;
    }
  }

  private fail(error: ParseError): false {
    this.error = error;
    this.current = "failed";
    return false;
  }

  /** One step of progress; false when it needs more input (or the message is over). */
  private step(): boolean {
    switch (this.current) {
      case "head":
        if (this.lineAt === 0 && this.scanAt === 0) {
          const whole = this.wholeHead();
          if (whole !== null) return whole;
        }
        return this.scanBlock();
      case "trailers":
        return this.scanBlock();
      case "body_length":
        if (this.remaining === 0) return this.finish(NO_TRAILERS);
        return this.bodyBytes("body_length");
      case "chunk_data":
        return this.bodyBytes("chunk_data_crlf");
      case "body_close": {
        if (this.off === this.len) return false;
        const bytes = this.view(this.len);
        this.off = this.len;
        this.events.body(bytes);
        return true;
      }
      case "chunk_size":
        return this.chunkSize();
      case "chunk_data_crlf": {
        const available = this.len - this.off;
        if (available === 0) return false;
        if (this.buf[this.off] !== CR || (available > 1 && this.buf[this.off + 1] !== LF)) return this.fail(malformed("missing CRLF after chunk data"));
        if (available < 2) return false;
        this.off += 2;
        this.current = "chunk_size";
        return true;
      }
      default:
        return false;
    }
  }

  private view(end: number): Buffer {
    return this.off === 0 && end === this.buf.length ? this.buf : this.buf.subarray(this.off, end);
  }

  private bodyBytes(whenDone: ParserState): boolean {
    const available = this.len - this.off;
    if (available === 0) return false;
    const take = Math.min(available, this.remaining);
    const bytes = this.view(this.off + take);
    this.off += take;
    this.remaining -= take;
    if (this.remaining === 0 && whenDone === "chunk_data_crlf") this.current = "chunk_data_crlf";
    this.events.body(bytes);
    return true;
  }

  private finish(trailers: HeaderList): true {
    this.current = this.upgrades ? "upgraded" : "done";
    this.events.end(trailers);
    return true;
  }

  private atEof(): void {
    switch (this.current) {
      case "body_close":
        this.finish(NO_TRAILERS);
        return;
      case "head":
        if (this.off !== this.len) this.fail(malformed(MID_MESSAGE));
        return;
      case "done":
      case "upgraded":
      case "failed":
        return;
      default:
        this.fail(malformed(MID_MESSAGE));
    }
  }

  private indexOfLf(from: number): number {
    return this.buf.indexOf(LF, from);
  }

  /** Scans a head or a trailer block line by line, refusing a bare LF and counting lines as they come. */
  private scanBlock(): boolean {
    const isHead = this.current === "head";
    const limit = isHead ? this.maxHeadBytes : this.maxTrailerBytes;
    for (;;) {
      if (isHead && this.isRequest && this.lineAt === 0 && this.len > this.off) {
        // Refuse at the first byte what cannot start a request line (a TLS hello, binary junk).
        const first = this.buf[this.off]!;
        if (first !== CR && TCHAR[first] === 0) return this.fail(malformed("the request does not start with a method"));
      }
      const lf = this.indexOfLf(this.off + this.scanAt);
      if (lf === -1) {
        if (this.len - this.off > limit) return this.fail(tooLarge(isHead, limit));
        this.scanAt = this.len - this.off;
        return false;
      }
      const lineStart = this.off + this.lineAt;
      if (lf === lineStart || this.buf[lf - 1] !== CR) return this.fail(malformed("a line ends in a bare LF (HTTP/1.1 lines end in CRLF)"));
      if (lf + 1 - this.off > limit) return this.fail(tooLarge(isHead, limit));
      if (lf - 1 === lineStart) {
        // An empty line: the end of the block, or (only before a request line) one to skip.
        if (this.lineAt === 0 && isHead) {
          if (!this.isRequest) return this.fail(malformed("an empty line where the status line should be"));
          if (++this.emptyLines > MAX_EMPTY_LINES) return this.fail(malformed("too many empty lines before the request line"));
          this.off = lf + 1;
          this.scanAt = 0;
          continue;
        }
        return isHead ? this.endHead(this.fieldText(this.off + this.fieldsAt, lf + 1), lf + 1) : this.endTrailers(lf + 1);
      }
      if (isHead && this.lineAt === 0) {
        const error = this.parseStartLine(latin1(this.buf, lineStart, lf - 1));
        if (error) return this.fail(error);
        this.fieldsAt = lf + 1 - this.off;
      } else if (++this.fieldLines > this.maxHeaders) {
        return this.fail({ code: "head_too_large", message: `more than ${this.maxHeaders} ${isHead ? "header" : "trailer"} fields` });
      }
      this.lineAt = this.scanAt = lf + 1 - this.off;
    }
  }

  /**
   * The common case, a whole head already buffered: one search for its end and one decode, instead
   * of a search per line. Null sends it to the line scanner (a split head, empty lines first, too
   * large). A bare CR or LF left inside a line here is refused by the start-line and field checks.
   */
  private wholeHead(): boolean | null {
    if (this.off === this.len || this.buf[this.off] === CR) return null;
    const end = this.buf.indexOf(CRLFCRLF, this.off);
    if (end === -1 || end + 4 - this.off > this.maxHeadBytes) return null;
    if (this.isRequest && TCHAR[this.buf[this.off]!] === 0) return null;
    const text = latin1(this.buf, this.off, end);
    const eol = text.indexOf("\r\n");
    const startLine = eol === -1 ? text : text.slice(0, eol);
    // A bare LF in the start line: the line scanner names it, as it would at any split.
    if (startLine.includes("\n")) return null;
    const error = this.parseStartLine(startLine);
    if (error) return this.fail(error);
    return this.endHead(eol === -1 ? "" : text.slice(eol + 2), end + 4);
  }

  private fieldText(from: number, blockEnd: number): string {
    // The fields run from `from` to before the last field's CRLF and the empty line's CRLF.
    return blockEnd - 4 > from ? latin1(this.buf, from, blockEnd - 4) : "";
  }

  private endHead(fields: string, blockEnd: number): boolean {
    const headers: HeaderList = [];
    const error = parseFieldLines(fields, headers, this.maxHeaders, "header");
    if (error) return this.fail(error);
    this.off = blockEnd;
    this.lineAt = this.scanAt = this.fieldsAt = this.fieldLines = 0;
    const outcome = this.completeHead(headers);
    if (outcome === null) return true; // an interim response: its event fired, the next head follows
    if ("code" in outcome) return this.fail(outcome);
    const { framing } = outcome;
    this.upgrades = outcome.upgrades;
    this.keepAlive = outcome.keepAlive;
    if (framing.kind === "chunked") this.current = "chunk_size";
    else if (framing.kind === "close") this.current = "body_close";
    else {
      this.current = "body_length";
      this.remaining = framing.kind === "length" ? framing.length : 0;
    }
    this.events.head(this.makeHead(headers), framing);
    return true;
  }

  private endTrailers(blockEnd: number): boolean {
    const trailers: HeaderList = [];
    const error = parseFieldLines(this.fieldText(this.off, blockEnd), trailers, this.maxHeaders, "trailer");
    if (error) return this.fail(error);
    const forbidden = forbiddenTrailer(trailers);
    if (forbidden !== null) return this.fail(malformed(`a ${forbidden} trailer (framing, routing and credential fields belong in the head)`));
    this.off = blockEnd;
    this.lineAt = this.scanAt = this.fieldLines = 0;
    return this.finish(trailers);
  }

  private chunkSize(): boolean {
    if (this.scanAt === 0 && this.len > this.off && IS_HEX[this.buf[this.off]!] === 0) {
      return this.fail(malformed("a chunk size that is not hex digits"));
    }
    const lf = this.indexOfLf(this.off + this.scanAt);
    if (lf === -1) {
      if (this.len - this.off > MAX_CHUNK_LINE_BYTES) return this.fail(malformed("a chunk size line longer than 4 KiB"));
      this.scanAt = this.len - this.off;
      return false;
    }
    if (lf === this.off || this.buf[lf - 1] !== CR) return this.fail(malformed("a chunk size line ends in a bare LF"));
    if (lf - 1 - this.off > MAX_CHUNK_LINE_BYTES) return this.fail(malformed("a chunk size line longer than 4 KiB"));
    const size = parseChunkSize(latin1(this.buf, this.off, lf - 1));
    if (typeof size !== "number") return this.fail(size);
    this.off = lf + 1;
    this.scanAt = 0;
    if (size === 0) {
      this.current = "trailers";
      this.lineAt = this.fieldLines = 0;
    } else {
      this.current = "chunk_data";
      this.remaining = size;
    }
    return true;
  }
}

function tooLarge(isHead: boolean, limit: number): ParseError {
  return { code: "head_too_large", message: `${isHead ? "the head is" : "the trailers are"} larger than ${limit} bytes` };
}

/** 1-16 hex digits, then only well-formed extensions; no sign, no 0x, no spaces but BWS before ";". */
export function parseChunkSize(line: string): number | ParseError {
  const digits = HEX.exec(line)?.[0];
  if (digits === undefined) return malformed("a chunk size that is not hex digits");
  if (digits.length > 16) return malformed("a chunk size longer than 16 hex digits");
  if (digits.length < line.length && !CHUNK_EXT.test(line.slice(digits.length))) return malformed("a chunk size with junk or a malformed extension after it");
  const size = parseInt(digits, 16);
  if (size > Number.MAX_SAFE_INTEGER) return malformed("a chunk size over 2^53");
  return size;
}

/** The headers a framing decision reads, gathered in one pass (names compared by length first). */
interface FramingFields {
  readonly te: string[];
  readonly cl: string[];
  readonly connection: string[];
  readonly host: string[];
  hasUpgrade: boolean;
}

/** Case-insensitive equality with a lower-case name of letters and "-", without allocating (x | 0x20 lowers a letter; a token holds no CR, the only other byte that maps to "-"). */
function isNamed(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

function framingFields(headers: HeaderList): FramingFields {
  const f: FramingFields = { te: [], cl: [], connection: [], host: [], hasUpgrade: false };
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]![0];
    const value = headers[i]![1];
    switch (name.length) {
      case 4:
        if (isNamed(name, "host")) f.host.push(value);
        break;
      case 7:
        if (isNamed(name, "upgrade")) f.hasUpgrade = true;
        break;
      case 10:
        if (isNamed(name, "connection")) f.connection.push(value);
        break;
      case 14:
        if (isNamed(name, "content-length")) f.cl.push(value);
        break;
      case 17:
        if (isNamed(name, "transfer-encoding")) f.te.push(value);
        break;
    }
  }
  return f;
}

function keepsAlive(version: "1.0" | "1.1", connection: readonly string[]): boolean {
  if (connection.length === 0) return version === "1.1";
  if (hasConnectionOption(connection, "close")) return false;
  return version === "1.1" || hasConnectionOption(connection, "keep-alive");
}

export class RequestParser extends MessageParser<RequestHead> {
  private method = "";
  private target = "";
  private version: "1.0" | "1.1" = "1.1";

  constructor(events: MessageEvents<RequestHead>, limits: ParserLimits = {}) {
    super(events, limits, true);
  }

  /** After a head: the client allows the connection to stay open (HTTP/1.1 without close, or 1.0 with keep-alive). */
  get reusable(): boolean {
    return this.keepAlive;
  }

  protected parseStartLine(line: string): ParseError | null {
    // request-line = method SP request-target SP HTTP-version, single spaces (RFC 9112 3).
    const first = line.indexOf(" ");
    const second = first === -1 ? -1 : line.indexOf(" ", first + 1);
    if (second === -1 || line.indexOf(" ", second + 1) !== -1) return malformed("the request line is not METHOD SP TARGET SP VERSION");
    const method = line.slice(0, first);
    const target = line.slice(first + 1, second);
    const version = line.slice(second + 1);
    if (!TOKEN.test(method)) return malformed("the method is not a token");
    if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
      if (/^HTTP\/[0-9]\.[0-9]$/.test(version)) return { code: "unsupported", message: `${version} is not supported (HTTP/1.1 and 1.0 are)` };
      return malformed("the request line does not end in HTTP/1.1 or HTTP/1.0");
    }
    if (target === "") return malformed("an empty request target");
    if (target.length > MAX_TARGET_BYTES) return { code: "head_too_large", message: `the request target is longer than ${MAX_TARGET_BYTES} bytes` };
    // A target is ASCII (RFC 9112 3.2, RFC 3986): raw bytes past 0x7f are read as UTF-8 by one
    // server and as something else by the next, so they are refused rather than guessed at.
    if (TARGET_CHARS.test(target)) return malformed("a space, control character or non-ASCII byte in the request target");
    // origin-form "/...", absolute-form "scheme:...", asterisk-form "*" for OPTIONS; CONNECT's
    // authority-form (or anything else after CONNECT) is left to the pipeline, which refuses it in a tunnel.
    if (method !== "CONNECT" && target.charCodeAt(0) !== 0x2f && !(target === "*" && method === "OPTIONS") && !ABSOLUTE_FORM.test(target)) {
      return malformed("the request target is not /path, scheme://authority/path or * (for OPTIONS)");
    }
    this.method = method;
    this.target = target;
    this.version = version === "HTTP/1.1" ? "1.1" : "1.0";
    return null;
  }

  protected completeHead(headers: HeaderList): HeadOutcome | ParseError {
    const f = framingFields(headers);
    // RFC 9112 3.2: exactly one Host in HTTP/1.1; a second one is how two parsers pick two hosts.
    if (f.host.length > 1) return malformed("more than one Host header");
    if (f.host.length === 0 && this.version === "1.1") return malformed("no Host header (HTTP/1.1 requires one)");
    if (f.host.length === 1 && !HOST_VALUE.test(f.host[0]!)) return malformed("the Host header is not a host[:port]");
    let framing: BodyFraming;
    if (f.te.length > 0) {
      // RFC 9112 6.1 and 6.3: TE with CL, TE in HTTP/1.0, or TE not ending in chunked are smuggling shapes.
      if (f.cl.length > 0) return malformed("both Transfer-Encoding and Content-Length");
      if (this.version === "1.0") return malformed("Transfer-Encoding in an HTTP/1.0 request");
      const codings = transferCodings(f.te);
      if (!Array.isArray(codings)) return codings;
      if (codings.at(-1) !== "chunked") return malformed("Transfer-Encoding does not end in chunked");
      framing = { kind: "chunked" };
    } else if (f.cl.length > 0) {
      const length = parseContentLength(f.cl);
      if (typeof length !== "number") return length;
      framing = { kind: "length", length };
    } else {
      framing = { kind: "length", length: 0 };
    }
    // After an upgrade offer (or CONNECT) the next bytes may be another protocol: stop at "upgraded"
    // and let the consumer take them, or call next() when the upgrade was declined.
    const upgrades = this.method === "CONNECT" || (f.hasUpgrade && hasConnectionOption(f.connection, "upgrade"));
    return { framing, upgrades, keepAlive: keepsAlive(this.version, f.connection) };
  }

  protected makeHead(headers: HeaderList): RequestHead {
    return { method: this.method, target: this.target, version: this.version, headers };
  }
}

export class ResponseParser extends MessageParser<ResponseHead> {
  private version: "1.0" | "1.1" = "1.1";
  private status = 0;
  private reason = "";
  private readonly expected: string[] = [];
  private readonly onInterim: ((head: ResponseHead) => void) | undefined;

  constructor(events: MessageEvents<ResponseHead> & { interim?(head: ResponseHead): void }, limits: ParserLimits = {}) {
    super(events, limits, false);
    this.onInterim = events.interim?.bind(events);
  }

  /** The method of a request this connection sent, in order: a HEAD's answer has no body, a CONNECT's 2xx upgrades. */
  expect(method: string): void {
    this.expected.push(method.toUpperCase());
  }

  /**
   * After `end`: the connection may carry another exchange (no Connection: close, not
   * close-delimited, HTTP/1.1 or 1.0 with keep-alive, not TE with CL, not upgraded) and the upstream
   * sent nothing past the response.
   */
  get reusable(): boolean {
    return this.state === "done" && this.keepAlive && this.buffered === 0;
  }

  protected parseStartLine(line: string): ParseError | null {
    // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing SP before an absent reason is tolerated.
    const m = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: (.*))?$/s.exec(line);
    if (!m) {
      if (/^HTTP\/[0-9](?:\.[0-9])? /.test(line) && !/^HTTP\/1\.[01] /.test(line)) return { code: "unsupported", message: "the response is not HTTP/1.1 or 1.0" };
      return malformed("malformed status line");
    }
    const reason = m[3] ?? "";
    if (VALUE_CTL.test(reason)) return malformed("a control character in the reason phrase");
    this.version = m[1] === "1" ? "1.1" : "1.0";
    this.status = Number(m[2]);
    this.reason = reason;
    return null;
  }

  protected completeHead(headers: HeaderList): HeadOutcome | ParseError | null {
    const status = this.status;
    if (status >= 100 && status < 200 && status !== 101) {
      this.onInterim?.(this.makeHead(headers));
      return null;
    }
    const method = this.expected.shift() ?? "";
    const f = framingFields(headers);
    let keepAlive = keepsAlive(this.version, f.connection);
    if (status === 101 || (method === "CONNECT" && status >= 200 && status < 300)) {
      return { framing: { kind: "none" }, upgrades: true, keepAlive: false };
    }
    if (method === "HEAD" || status === 204 || status === 304) return { framing: { kind: "none" }, upgrades: false, keepAlive };
    let framing: BodyFraming;
    if (f.te.length > 0) {
      const codings = transferCodings(f.te);
      if (!Array.isArray(codings)) return codings;
      // RFC 9112 6.3: TE not ending in chunked reads to the close; TE overrides CL, and such a
      // connection is not reused (6.1: the sender may be trying to smuggle).
      framing = codings.at(-1) === "chunked" ? { kind: "chunked" } : { kind: "close" };
      if (f.cl.length > 0) keepAlive = false;
    } else if (f.cl.length > 0) {
      const length = parseContentLength(f.cl);
      if (typeof length !== "number") return length;
      framing = { kind: "length", length };
    } else {
      framing = { kind: "close" };
    }
    if (framing.kind === "close") keepAlive = false;
    return { framing, upgrades: false, keepAlive };
  }

  protected makeHead(headers: HeaderList): ResponseHead {
    return { version: this.version, status: this.status, reason: this.reason, headers };
  }
}
