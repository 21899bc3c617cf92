// Test vectors for src/net/http1.ts: every accepted form and every refusal (with its code), the
// request-smuggling classics, splits at every byte boundary, pause/resume/next, upgrades, and the
// serializer. Each refusal vector is a message some parser somewhere accepts differently.
import { describe, expect, test } from "bun:test";
import {
  type BodyFraming,
  chunk,
  type HeaderList,
  headerValue,
  headerValues,
  isValidHeaderName,
  isValidHeaderValue,
  LAST_CHUNK,
  type ParseError,
  RequestParser,
  type RequestHead,
  requestHead,
  ResponseParser,
  type ResponseHead,
  responseHead,
} from "../../src/net/http1.ts";
import { prng } from "../support/random.ts";
import { mutate, randomSplits, REQUEST_CORPUS, RESPONSE_CORPUS } from "./http1-fuzz.ts";

interface Message<H> {
  head: H;
  framing: BodyFraming;
  body: string;
  trailers: HeaderList | null;
}

/** A consumer that collects whole messages and, like a keep-alive server, asks for the next one after each end. */
class Recorder<H> {
  readonly messages: Message<H>[] = [];
  readonly interims: ResponseHead[] = [];
  readonly log: string[] = [];
  error: ParseError | null = null;
  autoNext = true;

  readonly events = {
    head: (head: H, framing: BodyFraming) => {
      this.log.push("head");
      this.messages.push({ head, framing, body: "", trailers: null });
    },
    body: (bytes: Buffer) => {
      this.log.push("body");
      this.messages.at(-1)!.body += bytes.toString("latin1");
    },
    end: (trailers: HeaderList) => {
      this.log.push("end");
      this.messages.at(-1)!.trailers = trailers;
    },
    interim: (head: ResponseHead) => {
      this.log.push("interim");
      this.interims.push(head);
    },
  };
}

type AnyParser = RequestParser | ResponseParser;

function drive(parser: AnyParser, rec: Recorder<unknown>, parts: Buffer[], eof: boolean): void {
  const note = (e: ParseError | null) => {
    if (e && !rec.error) rec.error = e;
  };
  const advance = () => {
    while (rec.autoNext && parser.state === "done" && !rec.error) {
      note(parser.next());
      if (parser.state !== "done") break;
      if (parser.isIdle) break;
    }
  };
  for (const part of parts) {
    note(parser.feed(part));
    advance();
  }
  if (eof) {
    note(parser.eof());
    advance();
    if (parser.state === "head" || parser.state === "done") note(parser.eof());
  }
}

function requests(input: string | Buffer | Buffer[], options: { eof?: boolean; limits?: ConstructorParameters<typeof RequestParser>[1] } = {}) {
  const rec = new Recorder<RequestHead>();
  const parser = new RequestParser(rec.events, options.limits);
  const parts = Array.isArray(input) ? input : [typeof input === "string" ? Buffer.from(input, "latin1") : input];
  drive(parser, rec as Recorder<unknown>, parts, options.eof ?? false);
  return { rec, parser, messages: rec.messages, error: rec.error };
}

function responses(input: string | Buffer | Buffer[], options: { eof?: boolean; expect?: string[]; autoNext?: boolean; limits?: ConstructorParameters<typeof ResponseParser>[1] } = {}) {
  const rec = new Recorder<ResponseHead>();
  rec.autoNext = options.autoNext ?? true;
  const parser = new ResponseParser(rec.events, options.limits);
  for (const m of options.expect ?? []) parser.expect(m);
  const parts = Array.isArray(input) ? input : [typeof input === "string" ? Buffer.from(input, "latin1") : input];
  drive(parser, rec as Recorder<unknown>, parts, options.eof ?? false);
  return { rec, parser, messages: rec.messages, error: rec.error };
}

function refusedRequest(input: string, code: ParseError["code"] = "malformed", options: { eof?: boolean } = {}): ParseError {
  const { error, messages } = requests(input, options);
  expect(error, `accepted: ${JSON.stringify(input).slice(0, 120)}`).not.toBeNull();
  expect(error!.code).toBe(code);
  expect(error!.message.length).toBeGreaterThan(5);
  // A refused request never reaches a consumer as a complete message.
  expect(messages.filter((m) => m.trailers !== null).length).toBe(0);
  return error!;
}

function refusedResponse(input: string, code: ParseError["code"] = "malformed", options: { eof?: boolean; expect?: string[] } = {}): ParseError {
  const { error } = responses(input, options);
  expect(error, `accepted: ${JSON.stringify(input).slice(0, 120)}`).not.toBeNull();
  expect(error!.code).toBe(code);
  return error!;
}

const GET = "GET /a HTTP/1.1\r\nHost: x.test\r\n\r\n";

describe("requests: accepted forms", () => {
  test("a simple GET: head, no body, end; names as sent, values trimmed", () => {
    const { messages, error, parser } = requests("GET /path?q=1 HTTP/1.1\r\nHost: api.test:8443\r\nX-Odd-Case:   spaced value \t\r\naccept:\r\n\r\n");
    expect(error).toBeNull();
    expect(messages).toHaveLength(1);
    expect(messages[0]!.head).toEqual({
      method: "GET",
      target: "/path?q=1",
      version: "1.1",
      headers: [
        ["Host", "api.test:8443"],
        ["X-Odd-Case", "spaced value"],
        ["accept", ""],
      ],
    });
    expect(messages[0]!.framing).toEqual({ kind: "length", length: 0 });
    expect(messages[0]!.trailers).toEqual([]);
    expect(parser.state).toBe("head");
    expect(parser.isIdle).toBe(true);
  });

  test("Content-Length body, repeated and comma-listed equal values", () => {
    for (const cl of ["Content-Length: 5", "Content-Length: 5\r\nContent-Length: 5", "Content-Length: 5, 5", "content-length: 005"]) {
      const { messages, error } = requests(`POST /p HTTP/1.1\r\nHost: x\r\n${cl}\r\n\r\nhello`);
      expect(error).toBeNull();
      expect(messages[0]!.framing).toEqual({ kind: "length", length: 5 });
      expect(messages[0]!.body).toBe("hello");
    }
  });

  test("chunked with extensions, BWS before ;, upper-case hex, trailers", () => {
    const body = '5;name=value;flag\r\nhello\r\nA ;q="a \\"b\\""\r\n0123456789\r\n0\r\nX-Sum: abc\r\nX-Two:  2 \r\n\r\n';
    const { messages, error } = requests(`POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    expect(error).toBeNull();
    expect(messages[0]!.framing).toEqual({ kind: "chunked" });
    expect(messages[0]!.body).toBe("hello0123456789");
    expect(messages[0]!.trailers).toEqual([
      ["X-Sum", "abc"],
      ["X-Two", "2"],
    ]);
  });

  test("Transfer-Encoding with codings before chunked, across lines, HTAB as OWS", () => {
    for (const te of ["Transfer-Encoding: gzip, chunked", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", "Transfer-Encoding:\tchunked", "transfer-encoding: CHUNKED"]) {
      const { messages, error } = requests(`POST /p HTTP/1.1\r\nHost: x\r\n${te}\r\n\r\n0\r\n\r\n`);
      expect(error, te).toBeNull();
      expect(messages[0]!.framing).toEqual({ kind: "chunked" });
    }
  });

  test("HTTP/1.0 without Host; absolute-form and authority-form targets; obs-text in a value", () => {
    expect(requests("GET / HTTP/1.0\r\n\r\n").messages[0]!.head.version).toBe("1.0");
    expect(requests("GET http://x.test/a?b HTTP/1.1\r\nHost: x.test\r\n\r\n").messages[0]!.head.target).toBe("http://x.test/a?b");
    const connect = requests("CONNECT x.test:443 HTTP/1.1\r\nHost: x.test:443\r\n\r\n");
    expect(connect.messages[0]!.head.target).toBe("x.test:443");
    expect(connect.parser.state).toBe("upgraded");
    expect(requests("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n\r\n").messages[0]!.head.headers[1]).toEqual(["X-Name", "caf\xe9"]);
    expect(requests("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").error).toBeNull();
    expect(requests("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").messages[0]!.head.target).toBe("*");
    expect(requests("GET /%C3%A9?q=a%20b HTTP/1.1\r\nHost: x\r\n\r\n").error).toBeNull();
  });

  test("a few empty lines before the request line are skipped", () => {
    const { messages, error } = requests(`\r\n\r\n${GET}`);
    expect(error).toBeNull();
    expect(messages).toHaveLength(1);
  });

  test("pipelined requests: one at a time, next() parses the buffered one", () => {
    const rec = new Recorder<RequestHead>();
    const parser = new RequestParser(rec.events);
    expect(parser.feed(Buffer.from(`${GET}POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok`))).toBeNull();
    expect(rec.log).toEqual(["head", "end"]);
    expect(parser.state).toBe("done");
    expect(parser.isIdle).toBe(false);
    expect(parser.next()).toBeNull();
    expect(rec.log).toEqual(["head", "end", "head", "body", "end"]);
    expect(rec.messages[1]!.body).toBe("ok");
    expect(parser.state).toBe("done");
    expect(parser.isIdle).toBe(true);
  });

  test("reusable: HTTP/1.1 unless close; HTTP/1.0 only with keep-alive", () => {
    const at = (text: string) => {
      const rec = new Recorder<RequestHead>();
      const p = new RequestParser(rec.events);
      p.feed(Buffer.from(text));
      return p.reusable;
    };
    expect(at(GET)).toBe(true);
    expect(at("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).toBe(false);
    expect(at("GET / HTTP/1.0\r\n\r\n")).toBe(false);
    expect(at("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")).toBe(true);
  });
});

describe("requests: refusals", () => {
  const vectors: [string, string, ParseError["code"]?][] = [
    // Smuggling classics.
    ["CL.TE: both Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"],
    ["TE.CL: Transfer-Encoding before Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"],
    ["TE.TE: xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"],
    ["TE.TE: space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"],
    ["TE.TE: chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"],
    ["TE.TE: a second TE line ending in identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"],
    ["TE.TE: chunked twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"],
    ["TE.TE: a vertical tab around chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"],
    ["TE.TE: quoted chunked", 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n'],
    ["TE.TE: chunked with an empty parameter", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked;\r\n\r\n0\r\n\r\n"],
    ["TE.TE: chunked with a parameter", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked; q=1\r\n\r\n0\r\n\r\n"],
    ["TE.TE: an empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n"],
    ["TE in an HTTP/1.0 request", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["duplicate Content-Length, different values", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"],
    ["comma-listed Content-Length, different values", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"],
    ["Content-Length: +5", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"],
    ["Content-Length: -1", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"],
    ["Content-Length: 0x5", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"],
    ["Content-Length with a space inside", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\nhello"],
    ["Content-Length empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"],
    ["Content-Length trailing comma", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\nhello"],
    ["Content-Length of 16 digits", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n"],
    ["Content-Length 5.0", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5.0\r\n\r\nhello"],
    // Chunk sizes.
    ["chunk size 0x10", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n"],
    ["chunk size -1", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n"],
    ["chunk size +5", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"],
    ["chunk size with a leading space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"],
    ["chunk size with a trailing space and no extension", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"],
    ["chunk size of 17 hex digits", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"],
    ["chunk size over 2^53", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello"],
    ["chunk size not hex", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n"],
    ["chunk extension that is not a token", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n"],
    ["chunk extension with a bare CR", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n"],
    ["chunk extension with a space after ;", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5; a=b\r\nhello\r\n0\r\n\r\n"],
    ["chunk extension with a space before =", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a =b\r\nhello\r\n0\r\n\r\n"],
    ["chunk extension quoted string unterminated", 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a="b\r\nhello\r\n0\r\n\r\n'],
    ["chunk without CRLF after data", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"],
    ["chunk with LF only after data", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n"],
    ["chunk with CR only after data", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX0\r\n\r\n"],
    ["chunk size line ending in LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"],
    ["trailer with obs-fold", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n"],
    ["a Transfer-Encoding trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["a Content-Length trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\ncontent-length: 5\r\n\r\n"],
    ["a Host trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: evil.test\r\n\r\n"],
    ["an Authorization trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nAuthorization: Bearer x\r\n\r\n"],
    ["TE.TE: chunked with a trailing comma", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n"],
    ["TE.TE: an empty element first", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n"],
    ["trailer name with a space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX T: a\r\n\r\n"],
    ["trailers ending in a bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\n\r\n"],
    // Line endings and field syntax.
    ["LF-only lines", "GET / HTTP/1.1\nHost: x\n\n"],
    ["LF-only head end", "GET / HTTP/1.1\r\nHost: x\r\n\n"],
    ["a bare CR inside a header line", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n"],
    ["a bare CR as a line ending", "GET / HTTP/1.1\rHost: x\r\n\r\n"],
    ["NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"],
    ["DEL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n"],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"],
    ["obs-fold with HTAB", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"],
    ["whitespace before the first header", "GET / HTTP/1.1\r\n Host: x\r\n\r\n"],
    ["space in a header name", "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"],
    ["tab before the colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n"],
    ["a header line with no colon", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"],
    ["an empty header name", "GET / HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n"],
    ["a non-token header name", "GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n"],
    // Request line.
    ["two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["two spaces before the version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n"],
    ["a space inside the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a tab as separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a control character in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["no version", "GET /\r\nHost: x\r\n\r\n"],
    ["a non-ASCII byte in the target", "GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a target that is no form (not /, not scheme:, not *)", "GET f/ HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a target starting with a colon", "GET :/c HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["an absolute-form target without //", "GET x:/one HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["asterisk-form for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n"],
    ["a method that is not a token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["binary before the method (a TLS hello)", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
    ["too many empty lines first", `\r\n\r\n\r\n\r\n\r\n${GET}`],
    // Host.
    ["HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n"],
    ["two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
    ["two Host headers in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"],
    ["a Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"],
    ["a Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"],
    ["a Host with an at sign", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"],
    // Versions.
    ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", "unsupported"],
    ["HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported"],
    ["HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", "unsupported"],
  ];
  for (const [name, input, code] of vectors) {
    test(name, () => {
      refusedRequest(input, code ?? "malformed");
    });
  }

  test("a refusal is final: later feeds and next() return it", () => {
    const rec = new Recorder<RequestHead>();
    const p = new RequestParser(rec.events);
    const e = p.feed(Buffer.from("GET / HTTP/1.1\nHost: x\n\n"));
    expect(e?.code).toBe("malformed");
    expect(p.state).toBe("failed");
    expect(p.feed(Buffer.from(GET))).toBe(e);
    expect(p.next()).toBe(e);
    expect(rec.log).toEqual([]);
  });

  test("head and field limits: head_too_large", () => {
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(70 * 1024)}\r\n\r\n`;
    expect(refusedRequest(big, "head_too_large").message).toContain("65536");
    // Refused before the head is complete: the limit caps what we buffer.
    const partial = requests(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(70 * 1024)}`);
    expect(partial.error?.code).toBe("head_too_large");
    const many = `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 300 }, (_, i) => `X-${i}: v`).join("\r\n")}\r\n\r\n`;
    expect(refusedRequest(many, "head_too_large").message).toContain("256");
    const small = requests("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", { limits: { maxHeaders: 2 } });
    expect(small.error?.code).toBe("head_too_large");
    expect(requests("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n", { limits: { maxHeaders: 2 } }).error).toBeNull();
    expect(refusedRequest(`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, "head_too_large").message).toContain("target");
    const trailers = requests(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${"t".repeat(20000)}\r\n\r\n`);
    expect(trailers.error?.code).toBe("head_too_large");
    expect(refusedRequest(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;${"e".repeat(5000)}\r\nhello\r\n0\r\n\r\n`).message).toContain("4 KiB");
  });

  test("messages never echo a header value or the target", () => {
    const secret = "sk-live-CANARY-0123456789";
    const forms = [
      `GET /${secret} HTTP/1.2\r\nHost: x\r\n\r\n`,
      `GET /${secret}\x01 HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Key: ${secret}\x00\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: x\r\n${secret}\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: ${secret}/\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${secret}\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${secret}\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;${secret} x\r\n`,
    ];
    for (const form of forms) {
      const { error } = requests(form);
      expect(error).not.toBeNull();
      expect(error!.message).not.toContain("CANARY");
    }
  });

  test("what test/attacks/http-features.test.ts sends at the parser is refused here too", () => {
    expect(refusedRequest("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nsecret", "unsupported").message).toContain("HTTP/2.0");
    // CONNECT inside a tunnel parses (the engine answers 501): its head ends and the rest is not HTTP.
    const connect = requests("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test\r\n\r\nsecret");
    expect(connect.parser.state).toBe("upgraded");
    expect(connect.parser.takeRest().toString()).toBe("secret");
  });
});

describe("requests: truncation and eof", () => {
  test("eof between messages is clean; eof mid-head, mid-body or mid-chunk is an error", () => {
    expect(requests(GET, { eof: true }).error).toBeNull();
    expect(requests("", { eof: true }).error).toBeNull();
    for (const cut of [
      "GET / HTTP/1.1\r\nHost: x\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ]) {
      const e = refusedRequest(cut, "malformed", { eof: true });
      expect(e.message).toBe("the connection closed mid-message");
    }
  });
});

describe("splits: every byte boundary gives the same events", () => {
  const pair =
    "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;e=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: t\r\n\r\n" +
    "\r\nPUT /two HTTP/1.1\r\nHost: y\r\nContent-Length: 10\r\n\r\n0123456789" +
    "GET /three HTTP/1.1\r\nHost: z\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
  const whole = requests(pair);
  const expected = whole.messages;

  test("the whole input parses to three messages, the last an upgrade", () => {
    expect(whole.error).toBeNull();
    expect(expected.map((m) => [m.head.method, m.body, m.trailers])).toEqual([
      ["POST", "abcdefg", [["X-T", "t"]]],
      ["PUT", "0123456789", []],
      ["GET", "", []],
    ]);
    expect(whole.parser.state).toBe("upgraded");
    expect(whole.parser.takeRest().toString("latin1")).toBe("\x81\x05hello");
  });

  test("one byte at a time", () => {
    const bytes = Buffer.from(pair, "latin1");
    const parts = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    const r = requests(parts);
    expect(r.error).toBeNull();
    expect(r.messages).toEqual(expected);
    expect(r.parser.takeRest().toString("latin1")).toBe("\x81\x05hello");
  });

  test("every two-part split", () => {
    const bytes = Buffer.from(pair, "latin1");
    for (let at = 0; at <= bytes.length; at++) {
      const r = requests([bytes.subarray(0, at), bytes.subarray(at)]);
      expect(r.error).toBeNull();
      expect(r.messages).toEqual(expected);
    }
  });

  test("random splits (seeded)", () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const r0 = prng(seed);
    const bytes = Buffer.from(pair, "latin1");
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = [];
      let at = 0;
      while (at < bytes.length) {
        const n = 1 + Math.floor(r0() * 40);
        parts.push(bytes.subarray(at, at + n));
        at += n;
      }
      const r = requests(parts);
      expect(r.error, `seed ${seed}`).toBeNull();
      expect(r.messages, `seed ${seed}`).toEqual(expected);
    }
  });

  test("a refusal is found at any split, too", () => {
    const bad = Buffer.from("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", "latin1");
    for (let at = 0; at <= bad.length; at++) expect(requests([bad.subarray(0, at), bad.subarray(at)]).error?.code).toBe("malformed");
    const parts = Array.from({ length: bad.length }, (_, i) => bad.subarray(i, i + 1));
    expect(requests(parts).error?.message).toBe("missing CRLF after chunk data");
  });
});

describe("pause, resume, next, takeRest", () => {
  test("pause inside head holds the body until resume; bytes fed meanwhile are buffered", () => {
    const log: string[] = [];
    const p: RequestParser = new RequestParser({
      head: () => {
        log.push("head");
        p.pause();
      },
      body: (b) => log.push(`body:${b.toString()}`),
      end: () => log.push("end"),
    });
    expect(p.feed(Buffer.from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc"))).toBeNull();
    expect(log).toEqual(["head"]);
    expect(p.state).toBe("body_length");
    expect(p.feed(Buffer.from("def"))).toBeNull();
    expect(log).toEqual(["head"]);
    expect(p.resume()).toBeNull();
    expect(log).toEqual(["head", "body:abcdef", "end"]);
    expect(p.state).toBe("done");
  });

  test("a body view is the input's memory, not a copy", () => {
    const input = Buffer.from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    let seen: Buffer = Buffer.alloc(0);
    const p = new RequestParser({ head: () => undefined, body: (b) => (seen = b), end: () => undefined });
    p.feed(input);
    expect(seen.buffer).toBe(input.buffer);
    // A second feed of pure body bytes is handed on as is.
    const q = new RequestParser({ head: () => undefined, body: (b) => (seen = b), end: () => undefined });
    q.feed(Buffer.from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
    const body = Buffer.from("hello");
    q.feed(body);
    expect(seen).toBe(body);
  });

  test("eof while paused in a close-delimited response waits for resume", () => {
    const rec = new Recorder<ResponseHead>();
    const p = new ResponseParser({ ...rec.events, head: (h, f) => (rec.events.head(h, f), p.pause()) });
    p.feed(Buffer.from("HTTP/1.1 200 OK\r\n\r\nbody"));
    expect(p.eof()).toBeNull();
    expect(rec.log).toEqual(["head"]);
    expect(p.resume()).toBeNull();
    expect(rec.log).toEqual(["head", "body", "end"]);
    expect(rec.messages[0]!.body).toBe("body");
  });

  test("next() called from inside end continues with the buffered request", () => {
    const heads: string[] = [];
    const p: RequestParser = new RequestParser({ head: (h) => heads.push(h.target), body: () => undefined, end: () => void p.next() });
    expect(p.feed(Buffer.from(`${GET}GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n`))).toBeNull();
    expect(heads).toEqual(["/a", "/b", "/c"]);
  });

  test("a WebSocket upgrade request: length 0, then upgraded with the rest for the new protocol; next() when declined", () => {
    const text = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const up = requests(`${text}\x81\x85frame`);
    expect(up.messages[0]!.framing).toEqual({ kind: "length", length: 0 });
    expect(up.parser.state).toBe("upgraded");
    expect(up.parser.takeRest().toString("latin1")).toBe("\x81\x85frame");
    expect(up.parser.takeRest().length).toBe(0);
    const declined = requests(`${text}${GET}`);
    expect(declined.parser.state).toBe("upgraded");
    expect(declined.parser.next()).toBeNull();
    expect(declined.messages.map((m) => m.head.target)).toEqual(["/ws", "/a"]);
    // Upgrade without Connection: upgrade is not an upgrade (RFC 9110 7.8).
    expect(requests("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").parser.state).toBe("head");
  });
});

describe("responses", () => {
  test("status line forms: reason, empty reason, missing reason", () => {
    for (const [line, reason] of [
      ["HTTP/1.1 200 OK", "OK"],
      ["HTTP/1.1 200 ", ""],
      ["HTTP/1.1 200", ""],
      ["HTTP/1.1 404 Not  Found \t", "Not  Found \t"],
      ["HTTP/1.0 200 OK", "OK"],
    ] as const) {
      const r = responses(`${line}\r\nContent-Length: 2\r\n\r\nok`);
      expect(r.error, line).toBeNull();
      expect(r.messages[0]!.head.reason).toBe(reason);
      expect(r.messages[0]!.body).toBe("ok");
    }
  });

  test("framing: HEAD, 204, 304 have none; TE ending in chunked; TE otherwise close-delimited; CL; nothing is close", () => {
    const head = responses("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", { expect: ["HEAD", "GET"] });
    expect(head.messages.map((m) => [m.framing.kind, m.body])).toEqual([
      ["none", ""],
      ["length", "x"],
    ]);
    expect(responses("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").messages[0]!.framing).toEqual({ kind: "none" });
    expect(responses("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n").messages[0]!.framing).toEqual({ kind: "none" });
    expect(responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n").messages[0]!.framing).toEqual({ kind: "chunked" });
    const gz = responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nall of it", { eof: true });
    expect(gz.messages[0]!.framing).toEqual({ kind: "close" });
    expect(gz.messages[0]!.body).toBe("all of it");
    expect(gz.messages[0]!.trailers).toEqual([]);
    const ci = responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\n", { eof: true });
    expect(ci.messages[0]!.framing).toEqual({ kind: "close" });
    const none = responses("HTTP/1.1 200 OK\r\n\r\nuntil close", { eof: true });
    expect(none.messages[0]!.framing).toEqual({ kind: "close" });
    expect(none.messages[0]!.body).toBe("until close");
    expect(none.parser.reusable).toBe(false);
  });

  test("TE with CL: TE wins, not reusable", () => {
    const r = responses("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", { autoNext: false });
    expect(r.error).toBeNull();
    expect(r.messages[0]!.body).toBe("hello");
    expect(r.parser.state).toBe("done");
    expect(r.parser.reusable).toBe(false);
  });

  test("reusable after end: 1.1 keep-alive, not close, 1.0 only with keep-alive, not with bytes past the response", () => {
    const reusable = (text: string) => responses(text, { autoNext: false }).parser.reusable;
    expect(reusable("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).toBe(true);
    expect(reusable("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")).toBe(false);
    expect(reusable("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")).toBe(false);
    expect(reusable("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")).toBe(true);
    expect(reusable("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")).toBe(false);
    expect(reusable("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no")).toBe(false);
  });

  test("100-continue and 103 go to interim; parsing goes on to the final response", () => {
    const r = responses("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    expect(r.error).toBeNull();
    expect(r.rec.log).toEqual(["interim", "interim", "head", "end"]);
    expect(r.rec.interims.map((h) => h.status)).toEqual([100, 103]);
    expect(r.messages[0]!.head.status).toBe(201);
  });

  test("101: head with framing none, end, upgraded; the rest is the new protocol's", () => {
    const r = responses("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi");
    expect(r.rec.log).toEqual(["head", "end"]);
    expect(r.messages[0]!.framing).toEqual({ kind: "none" });
    expect(r.parser.state).toBe("upgraded");
    expect(r.parser.reusable).toBe(false);
    expect(r.parser.takeRest().toString("latin1")).toBe("\x81\x02hi");
  });

  test("a 200 to CONNECT is an upgrade", () => {
    const r = responses("HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03", { expect: ["CONNECT"] });
    expect(r.parser.state).toBe("upgraded");
    expect(r.parser.takeRest().toString("latin1")).toBe("\x16\x03");
  });

  test("close-delimited with eof; eof mid-length or mid-chunk is an error", () => {
    expect(responses("HTTP/1.1 200 OK\r\n\r\nabc", { eof: true }).messages[0]!.trailers).toEqual([]);
    expect(refusedResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", "malformed", { eof: true }).message).toBe("the connection closed mid-message");
    expect(refusedResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "malformed", { eof: true }).message).toBe("the connection closed mid-message");
  });

  test("trailers after the last chunk", () => {
    const r = responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 900150983cd24fb0\r\n\r\n", { autoNext: false });
    expect(r.messages[0]!.trailers).toEqual([["X-Checksum", "900150983cd24fb0"]]);
    expect(r.parser.reusable).toBe(true);
  });

  const refusals: [string, string, ParseError["code"]?][] = [
    ["conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"],
    ["Content-Length +2", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"],
    ["Content-Length not digits", "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok"],
    ["chunk size 0x10", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n"],
    ["chunk size -1", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"],
    ["missing CRLF after chunk data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n"],
    ["LF-only lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"],
    ["obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"],
    ["NUL in a header", "HTTP/1.1 200 OK\r\nX-A: a\x00\r\nContent-Length: 0\r\n\r\n"],
    ["a space in a header name", "HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n"],
    ["a two-digit status", "HTTP/1.1 20 OK\r\n\r\n"],
    ["a four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"],
    ["a status under 100", "HTTP/1.1 099 OK\r\n\r\n"],
    ["no space after the version", "HTTP/1.1200 OK\r\n\r\n"],
    ["a control character in the reason", "HTTP/1.1 200 O\x01K\r\n\r\n"],
    ["not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"],
    ["an empty line first", "\r\nHTTP/1.1 200 OK\r\n\r\n"],
    ["HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", "unsupported"],
    ["HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", "unsupported"],
  ];
  for (const [name, input, code] of refusals) {
    test(`refused: ${name}`, () => {
      refusedResponse(input, code ?? "malformed");
    });
  }

  test("a response split at every byte boundary gives the same events", () => {
    const text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
    const whole = responses(text);
    expect(whole.error).toBeNull();
    const bytes = Buffer.from(text, "latin1");
    for (let at = 0; at <= bytes.length; at++) {
      const r = responses([bytes.subarray(0, at), bytes.subarray(at)]);
      expect(r.messages).toEqual(whole.messages);
      expect(r.rec.interims).toEqual(whole.rec.interims);
    }
    const single = responses(Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)));
    expect(single.messages).toEqual(whole.messages);
  });
});

describe("serializer", () => {
  test("requestHead and responseHead: names as given, numbers stringified, arrays repeated, undefined skipped", () => {
    expect(requestHead("POST", "/t?a=1", { Host: "x.test", "content-length": 5 as unknown as string, "x-a": ["1", "2"], skip: undefined }).toString()).toBe(
      "POST /t?a=1 HTTP/1.1\r\nHost: x.test\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\n",
    );
    expect(
      requestHead("GET", "/", [
        ["Host", "x"],
        ["X-Dup", "a"],
        ["X-Dup", "b"],
      ]).toString(),
    ).toBe("GET / HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Dup: b\r\n\r\n");
    expect(responseHead(200, "OK", { "Content-Length": 2 }).toString()).toBe("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    expect(responseHead(204, "", new Map([["X", "y"]])).toString()).toBe("HTTP/1.1 204 \r\nX: y\r\n\r\n");
  });

  test("a bad name or value throws, naming the header and not its value", () => {
    const secret = "CANARY-secret";
    for (const [name, value] of [
      ["X-A", `${secret}\r\nX-Injected: 1`],
      ["X-A", `${secret}\n`],
      ["X-A", `${secret}\x00`],
      ["X A", "v"],
      ["X-A:", "v"],
      ["", "v"],
    ] as const) {
      let message = "";
      try {
        requestHead("GET", "/", [[name, value]]);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, `${name}`).not.toBe("");
      expect(message).not.toContain("CANARY");
      if (name === "X-A") expect(message).toContain("X-A");
    }
    // A char above 0xff is written as its low byte: U+010D would be a CR, U+010A an LF.
    expect(() => requestHead("GET", "/", [["X-A", "a\u010dX-Injected: 1"]])).toThrow("X-A");
    expect(() => requestHead("GET", "/", { "X-A": "\u20ac" })).toThrow("X-A");
    expect(() => requestHead("GET", "/a\u010a", [])).toThrow();
    expect(() => responseHead(200, "OK\u010d\u010aX: y", {})).toThrow();
    expect(isValidHeaderValue("caf\xe9")).toBe(true);
    expect(() => requestHead("GET /x", "/", [])).toThrow();
    expect(() => requestHead("GET", "/a b", [])).toThrow();
    expect(() => requestHead("GET", "/a\r\nX: y", [])).toThrow();
    expect(() => responseHead(200, "OK\r\nX: y", {})).toThrow();
    expect(() => responseHead(20, "OK", {})).toThrow();
  });

  test("what the serializer writes, the parser reads back unchanged", () => {
    const headers: HeaderList = [
      ["Host", "x.test"],
      ["X-Tab", "a\tb"],
      ["X-Latin", "caf\xe9"],
      ["Content-Length", "3"],
    ];
    const r = requests(Buffer.concat([requestHead("PUT", "/p", headers), Buffer.from("abc")]));
    expect(r.messages[0]!.head.headers).toEqual(headers);
    expect(r.messages[0]!.body).toBe("abc");
  });

  test("chunk and LAST_CHUNK", () => {
    expect(chunk(Buffer.alloc(0))).toEqual([]);
    const parts = chunk(Buffer.from("0123456789abcdefX"));
    expect(Buffer.concat(parts).toString()).toBe("11\r\n0123456789abcdefX\r\n");
    expect(LAST_CHUNK.toString()).toBe("0\r\n\r\n");
    const body = Buffer.concat([...chunk(Buffer.from("hello ")), ...chunk(Buffer.from("world")), LAST_CHUNK]);
    const r = responses(Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), body]));
    expect(r.messages[0]!.body).toBe("hello world");
  });

  test("header lookups and validators", () => {
    const h: HeaderList = [
      ["Accept", "a"],
      ["accept", "b"],
      ["X", "c"],
    ];
    expect(headerValues(h, "ACCEPT")).toEqual(["a", "b"]);
    expect(headerValue(h, "accept")).toBe("a");
    expect(headerValue(h, "missing")).toBeUndefined();
    expect(isValidHeaderName("X-Good_1")).toBe(true);
    expect(isValidHeaderName("X Bad")).toBe(false);
    expect(isValidHeaderName("")).toBe(false);
    expect(isValidHeaderValue("a\tb c")).toBe(true);
    expect(isValidHeaderValue("a\rb")).toBe(false);
    expect(isValidHeaderValue("a\x00")).toBe(false);
  });
});

describe("fuzz: mutated messages never throw, and splits never change the outcome", () => {
  for (const side of ["requests", "responses"] as const) {
    test(side, () => {
      const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
      const r = prng(seed);
      const source = side === "requests" ? REQUEST_CORPUS : RESPONSE_CORPUS;
      for (let round = 0; round < 1500; round++) {
        const picked = Array.from({ length: 1 + Math.floor(r() * 3) }, () => source[Math.floor(r() * source.length)]!).join("");
        const bytes = Buffer.from(mutate(r, picked), "latin1");
        const parse = (parts: Buffer[]) => (side === "requests" ? requests(parts, { eof: true }) : responses(parts, { eof: true }));
        const whole = parse([bytes]);
        const split = parse(randomSplits(r, bytes));
        const what = `seed ${seed} round ${round}: ${JSON.stringify(bytes.toString("latin1"))}`;
        expect(split.error?.code, what).toBe(whole.error?.code);
        expect(split.messages, what).toEqual(whole.messages);
        for (const m of whole.messages) {
          if (m.trailers !== null && m.framing.kind === "length") expect(m.body.length, what).toBe(m.framing.length);
          if (m.framing.kind === "none") expect(m.body, what).toBe("");
        }
      }
    });
  }
});

describe("speed", () => {
  test("a head trickled in one byte at a time costs linear time (an attacker's slow head cannot cost quadratic copying)", () => {
    const text = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(500 * 1024)}\r\n\r\n`;
    const bytes = Buffer.from(text, "latin1");
    let heads = 0;
    const p = new RequestParser({ head: () => heads++, body: () => undefined, end: () => undefined }, { maxHeadBytes: 1024 * 1024 });
    const start = process.cpuUsage();
    let error = null;
    for (let i = 0; i < bytes.length && !error; i++) error = p.feed(bytes.subarray(i, i + 1));
    expect(error).toBeNull();
    const used = process.cpuUsage(start);
    expect(heads).toBe(1);
    // Quadratic copying of 500 KiB would be about 125 GB moved; linear is well under a second.
    expect((used.user + used.system) / 1e6).toBeLessThan(8);
  }, 30_000);

  test("100k small keep-alive requests parse in well under 10 µs of CPU each", () => {
    const one =
      "GET /v1/models?limit=10 HTTP/1.1\r\nHost: api.openai.com\r\nUser-Agent: codex/0.1\r\nAccept: application/json\r\nAuthorization: Bearer sk-placeholder-0123456789\r\nConnection: keep-alive\r\n\r\n";
    const input = Buffer.from(one.repeat(100), "latin1");
    let count = 0;
    const p: RequestParser = new RequestParser({ head: () => count++, body: () => undefined, end: () => undefined });
    const run = () => {
      for (let i = 0; i < 1000; i++) {
        p.feed(input);
        while (p.state === "done") p.next();
      }
    };
    run(); // warm up
    count = 0;
    // CPU time, not wall time: other work on a shared machine would otherwise count as ours.
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    const ns = ((used.user + used.system) * 1000) / count;
    console.log(`http1 RequestParser: ${ns.toFixed(0)} ns/request of CPU (${count} requests, 100 pipelined per feed)`);
    expect(count).toBe(100_000);
    // A loose bound that still catches a per-byte loop or a quadratic copy (those cost 10x and more).
    expect(ns).toBeLessThan(10_000);
  });
});
