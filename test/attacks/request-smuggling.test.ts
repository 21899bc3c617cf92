// Attack: request smuggling through the proxy. The agent frames one request so that a lenient
// parser sees a second one hidden in its body (CL.TE, TE.CL, obfuscated Transfer-Encoding,
// duplicate or signed Content-Length, 0x chunk sizes, a chunk without its CRLF, LF-only or
// bare-CR line ends, obs-fold), toward a service that gets a credential injected and toward a
// guarded host, through the HTTPS tunnel and plain http://. The hidden request carries a canary.
// Each must be refused (an error status or the connection closed); the upstream must never see the
// hidden request or the canary, and nothing the agent gets may hold the credential. A legitimate
// pipelined pair is the control: both requests do arrive.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { type HttpConnection, readResponse, type RawResponse } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

const CANARY = `smuggled-canary-${randomBytes(8).toString("hex")}`;
let B: Broker;
brokerForFile("av-smuggling-", (broker) => (B = broker));

/** The request a lenient parser would find inside the first one's body. */
function hidden(host: string): string {
  return `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\nX-Canary: ${CANARY}\r\n\r\n`;
}

/** Each form: the bytes of one write, given the host and the hidden request. */
const FORMS: Record<string, (host: string, h: string) => string> = {
  "CL.TE (Content-Length covers the hidden request, chunked ends before it)": (host, h) =>
    `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${5 + h.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${h}`,
  "TE.CL (a chunk holds the hidden request, Content-Length ends before it)": (host, h) =>
    `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${h.length.toString(16)}\r\n${h}\r\n0\r\n\r\n`,
  "TE.TE: xchunked beside Content-Length": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${h}`,
  "TE.TE: space before the colon": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${h}`,
  "TE.TE: chunked, identity": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${h}`,
  "TE.TE: a second Transfer-Encoding line": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n${h}`,
  "TE.TE: vertical tab before chunked": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${h}`,
  "TE.TE: chunked; with an empty parameter": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked;\r\n\r\n0\r\n\r\n${h}`,
  "Transfer-Encoding in HTTP/1.0": (host, h) => `POST /first HTTP/1.0\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${h}`,
  "two different Content-Length lines": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nContent-Length: ${h.length}\r\n\r\n${h}`,
  "a Content-Length list of different values": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0, ${h.length}\r\n\r\n${h}`,
  "Content-Length: +N": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: +${h.length}\r\n\r\n${h}`,
  "chunk size 0x…": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n0x${h.length.toString(16)}\r\n${h}\r\n0\r\n\r\n`,
  "chunk data without its CRLF": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n${h}`,
  "LF-only line ends": (host, h) => `POST /first HTTP/1.1\nHost: ${host}\nContent-Length: ${h.length}\n\n${h}`,
  "a bare CR between headers": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\rTransfer-Encoding: chunked\r\n\r\n${h.length.toString(16)}\r\n${h}\r\n0\r\n\r\n`,
  "obs-fold hiding Transfer-Encoding": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nX-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${h}`,
  "a Transfer-Encoding trailer": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n${h}`,
  "two Host headers": (host, h) => `POST /first HTTP/1.1\r\nHost: ${host}\r\nHost: evil.test\r\nContent-Length: ${h.length}\r\n\r\n${h}`,
};

interface Outcome {
  readonly responses: RawResponse[];
  readonly upstream: string;
}

async function attempt(via: "tunnel" | "http", host: string, bytes: string): Promise<Outcome> {
  const conn: HttpConnection = via === "tunnel" ? await B.tunnel(host) : await B.plain();
  const tlsMark = B.upstream.wire.length;
  const receivedMark = B.upstream.received.length;
  const plainMark = B.plainWire.length;
  // Over plain http:// the target is absolute and the proxy wants its authorization on each request.
  const framed = via === "http" ? bytes.replace(/^POST \/first HTTP\/1\.([01])(\r?\n)/, `POST http://${host}/first HTTP/1.$1$2Proxy-Authorization: ${B.proxyAuth}$2`) : bytes;
  conn.socket.write(Buffer.from(framed, "latin1"));
  const responses: RawResponse[] = [];
  try {
    // The first answer may take a moment (a refusal, or the upstream); after it, a short wait is enough.
    for (;;) responses.push(await readResponse(conn.reader, { method: "POST", timeoutMs: responses.length === 0 ? 5_000 : 700 }));
  } catch {
    // closed, or nothing more to read: what reached the upstream decides
  }
  await Bun.sleep(50);
  conn.close();
  for (const r of responses) B.outputs.push(r.text, JSON.stringify(r.headers));
  const tls = Buffer.concat(B.upstream.wire.slice(tlsMark).map((w) => w.data)).toString("latin1");
  const parsed = B.upstream.received
    .slice(receivedMark)
    .map((r) => `${r.method} ${r.url} ${JSON.stringify(r.headers)}`)
    .join("\n");
  const plain = Buffer.concat(B.plainWire.slice(plainMark)).toString("latin1");
  return { responses, upstream: `${tls}\n${parsed}\n${plain}` };
}

function expectNothingSmuggled(o: Outcome, what: string): void {
  expect(o.upstream, `${what}: the hidden request reached the upstream`).not.toContain("/smuggled");
  expect(o.upstream, what).not.toContain(CANARY);
  // Refused: at most an error answer, never a success for anything the agent sent.
  for (const r of o.responses) expect(r.status, `${what}: ${r.status} ${r.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  for (const r of o.responses) expect(r.text + JSON.stringify(r.headers), what).not.toContain(B.secret);
}

describe("smuggling forms: refused, the hidden request never reaches the upstream", () => {
  for (const via of ["tunnel", "http"] as const) {
    for (const host of ["api.fake.test", "evil.test"]) {
      test(`${via} to ${host}`, async () => {
        for (const [name, form] of Object.entries(FORMS)) {
          expectNothingSmuggled(await attempt(via, host, form(host, hidden(host))), `${via} ${host} ${name}`);
        }
      }, 120_000);
    }
  }
});

describe("control: a legitimate pipelined pair reaches the upstream as two requests", () => {
  test("tunnel to api.fake.test", async () => {
    const second = `GET /second HTTP/1.1\r\nHost: api.fake.test\r\nX-Mark: ${CANARY}\r\n\r\n`;
    const o = await attempt("tunnel", "api.fake.test", `POST /first HTTP/1.1\r\nHost: api.fake.test\r\nContent-Length: 5\r\n\r\nhello${second}`);
    expect(o.responses.map((r) => r.status)).toEqual([200, 200]);
    expect(o.upstream).toContain("POST /first");
    expect(o.upstream).toContain("GET /second");
    expect(o.upstream).toContain(CANARY);
  });
});

test("no credential in anything the agent got or in the request log", async () => {
  await Bun.sleep(200);
  for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
});
