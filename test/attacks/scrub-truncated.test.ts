// Attack (red team, HIGH): a service echoes what it received cut short (the first 2000 bytes of a
// body, `value[:N] + "…"`, a validation error quoting the end of a field), so scrubbing, which
// replaced only whole values, let 25 of 26 characters through, and the guard's refusal of the right
// guess gave the last one away. The agent, as the unprivileged user, sends api.fake.test (bearer
// FAKE_KEY) a JSON body whose `token` field the service fills with the injected value (as the proxy
// fills a placeholder in a credential-named field), and has the body echoed back cut at every
// length, from the front and from the back: in a small JSON body, in the status line and a header,
// in a large streamed body with the cut value across a chunk edge, and in ranged parts (small and
// streamed). No run of 8 characters of the value past its public prefix (`sk_live_`), in any case,
// may reach the agent.
import { publicPrefixLength } from "../../src/proxy/secrets.ts";
import { beforeAll, describe, expect, test } from "bun:test";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { type HttpConnection } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-scrub-truncated-", (broker) => (B = broker));

/** The agent's body: the service puts the value where it says TOKEN. */
const REQUEST = `{"pad":"${"a".repeat(40)}","token":"TOKEN"}`;
/** Over the 256 KiB scrubbed whole: such a body streams. */
const LARGE_PAD = "p".repeat(300 * 1024);
const ELLIPSIS = "…";

function value(req: IncomingMessage): string {
  return String(req.headers.authorization ?? "").replace(/^Bearer /, "");
}

/** `/cut/<how>/<head|tail>/<n>`: the filled body's first n bytes, or all from byte n on. */
function cut(filled: Buffer, end: string, n: number): Buffer {
  return end === "head" ? filled.subarray(0, n) : filled.subarray(n);
}

function send(res: ServerResponse, status: number, body: Buffer, headers: Record<string, string | number>): true {
  res.writeHead(status, { "content-type": "text/plain", "content-length": body.length, ...headers });
  res.end(body);
  return true;
}

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    // An error that quotes what the agent sent, as many APIs do ("No such customer: 'x'").
    if (req.url?.startsWith("/say?s=")) {
      const said = decodeURIComponent(req.url.slice("/say?s=".length));
      return send(res, 404, Buffer.from(JSON.stringify({ error: { message: `No such customer: '${said}'` } })), { "content-type": "application/json" });
    }
    const m = /^\/cut\/(json|header|stream|range|range-large)\/(head|tail)\/(\d+)$/.exec(req.url ?? "");
    if (!m) return base(req, res, body);
    const [, how, end, n] = m as unknown as [string, string, string, string];
    const v = value(req);
    const filled = Buffer.from(REQUEST.replace("TOKEN", v));
    const echoed = cut(filled, end, Number(n));
    if (how === "json") return send(res, 200, Buffer.concat([Buffer.from('{"received":'), echoed, Buffer.from(`${ELLIPSIS}"}`)]), { "content-type": "application/json" });
    if (how === "header") {
      const text = echoed.toString("latin1");
      res.writeHead(400, `Bad token ${text}`, { "x-echo": `${text}...`, "content-length": 2 });
      res.end("no");
      return true;
    }
    if (how === "stream") {
      // No length: streamed. The cut value is written in two pieces with a pause between, the
      // edge moving through it with n, so the proxy reads it across chunks.
      res.writeHead(200, { "content-type": "text/plain" });
      const whole = Buffer.concat([Buffer.from(LARGE_PAD), echoed, Buffer.from(`${ELLIPSIS} and more`), Buffer.from(LARGE_PAD)]);
      const edge = LARGE_PAD.length + (Number(n) % Math.max(1, echoed.length));
      res.write(whole.subarray(0, edge));
      setTimeout(() => res.end(whole.subarray(edge)), 15);
      return true;
    }
    // Ranged: the echo inside a body that honours one range.
    const pad = how === "range" ? "r".repeat(200) : LARGE_PAD;
    const whole = Buffer.concat([Buffer.from(pad), echoed, Buffer.from(`${ELLIPSIS}"`), Buffer.from(pad)]);
    const r = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ""));
    if (!r) return send(res, 200, whole, { "accept-ranges": "bytes" });
    const last = Math.min(Number(r[2]), whole.length - 1);
    return send(res, 206, whole.subarray(Number(r[1]), last + 1), { "content-range": `bytes ${r[1]}-${last}/${whole.length}` });
  };
});

let conn: HttpConnection | null = null;

async function request(method: string, path: string, headers: [string, string][] = [], body?: string): Promise<{ status: number; reason: string; body: Buffer; headers: Record<string, string> }> {
  const all: [string, string][] = [["Host", "api.fake.test"], ...headers, ...(body === undefined ? [] : ([["Content-Type", "application/json"]] as [string, string][]))];
  conn ??= await B.tunnel("api.fake.test");
  const r = await conn.request(method, path, all, body, 20_000).catch(async () => {
    conn?.close();
    conn = await B.tunnel("api.fake.test");
    return conn.request(method, path, all, body, 20_000);
  });
  if (r.headers.connection === "close") {
    conn.close();
    conn = null;
  }
  return { status: r.status, reason: r.reason, body: r.body, headers: r.headers };
}

/** The first run of 8 characters of the value past its public prefix (`sk_live_`; any case) in `text`, or null. */
function runOfValue(text: string): string | null {
  const folded = text.toLowerCase();
  const secret = B.secret.toLowerCase().slice(publicPrefixLength("raw", B.secret.toLowerCase()));
  for (let i = 0; i + 8 <= secret.length; i++) if (folded.includes(secret.slice(i, i + 8))) return secret.slice(i, i + 8);
  return null;
}

function expectNoRun(text: string, what: string): void {
  B.outputs.push(text);
  const run = runOfValue(text);
  if (run) throw new Error(`${what}: the agent got "${run}", 8 characters of the value`);
}

/** Every cut that leaves part of the value: from the front (head), from the back (tail). */
function cuts(): { end: string; n: number }[] {
  const at = REQUEST.indexOf("TOKEN");
  const out: { end: string; n: number }[] = [];
  for (let k = 0; k <= B.secret.length; k++) out.push({ end: "head", n: at + k }, { end: "tail", n: at + k });
  return out;
}

describe("a service echoes the body cut at every length", () => {
  test("in a small JSON body", async () => {
    let redacted = 0;
    for (const { end, n } of cuts()) {
      const r = await request("POST", `/cut/json/${end}/${n}`, [], REQUEST);
      expect(r.status).toBe(200);
      const text = r.body.toString("latin1");
      expectNoRun(text, `json ${end} ${n}`);
      if (text.includes("[REDACTED:FAKE_KEY]")) redacted++;
    }
    // Cut runs of 8 characters or more are replaced (and the whole value, when it is all there); a
    // head counts from 8 characters past the public prefix (`sk_live_`).
    expect(redacted).toBeGreaterThanOrEqual(2 * (B.secret.length - 7) - publicPrefixLength("raw", B.secret.toLowerCase()));
  }, 120_000);

  test("in the status line and a header", async () => {
    for (const { end, n } of cuts()) {
      const r = await request("POST", `/cut/header/${end}/${n}`, [], REQUEST);
      expect(r.status).toBe(400);
      expectNoRun(`${r.reason}\n${JSON.stringify(r.headers)}`, `header ${end} ${n}`);
    }
  }, 120_000);

  test("in a large streamed body, across a chunk edge", async () => {
    for (const { end, n } of cuts()) {
      const r = await request("POST", `/cut/stream/${end}/${n}`, [], REQUEST);
      expect(r.status).toBe(200);
      expect(r.body.length).toBeGreaterThan(2 * LARGE_PAD.length);
      expectNoRun(r.body.toString("latin1"), `stream ${end} ${n}`);
    }
  }, 240_000);

  for (const how of ["range", "range-large"]) {
    test(`in a ranged part (${how === "range" ? "small, masked whole" : "large, masked as it streams"})`, async () => {
      const pad = how === "range" ? 200 : LARGE_PAD.length;
      for (const { end, n } of cuts()) {
        // Ranges around the echo: one covering it, and two meeting in its middle.
        const echoedLength = end === "head" ? n : REQUEST.length + B.secret.length - 5 - n;
        const mid = pad + Math.floor(echoedLength / 2);
        // A large part is over 256 KiB on either side, so it streams through the masking scrubber.
        const around = how === "range" ? 10 : 280 * 1024;
        for (const [a, b] of [
          [pad - around, pad + echoedLength + around],
          [pad - around, mid],
          [mid + 1, pad + echoedLength + around],
        ] as [number, number][]) {
          const r = await request("GET", `/cut/${how}/${end}/${n}`, [["Range", `bytes=${a}-${b}`]]);
          expect(r.status).toBe(206);
          expect(r.body.length).toBe(b - a + 1);
          expectNoRun(r.body.toString("latin1"), `${how} ${end} ${n} bytes=${a}-${b}`);
        }
      }
    }, 240_000);
  }
});

describe("the scrubber as an oracle: an error that quotes the agent's guess", () => {
  test("a guess that continues the value past what the agent knows comes back exactly like one that does not, plain, upper-case and hex", async () => {
    // As if the agent had learned 11 characters past the public prefix (more than a cut echo shows).
    const known = B.secret.slice(0, publicPrefixLength("raw", B.secret.toLowerCase()) + 11);
    const spellings: [string, (s: string) => string][] = [
      ["plain", (s) => s],
      ["upper", (s) => s.toUpperCase()],
      ["hex", (s) => Buffer.from(s).toString("hex")],
    ];
    for (const [name, spell] of spellings) {
      const bodies = new Set<string>();
      for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") {
        const r = await request("GET", `/say?s=${encodeURIComponent(`${spell(known + c)}!`)}`);
        const text = r.body.toString("latin1");
        B.outputs.push(text);
        expectNoRun(text, `${name} ${c}`);
        bodies.add(text);
      }
      expect([...bodies], name).toHaveLength(1);
    }
  }, 120_000);
});

describe("what the agent got", () => {
  test("no output and no log line holds 8 characters of the value", () => {
    for (const text of [...B.outputs, B.log()]) expect(runOfValue(text)).toBeNull();
  });
});
