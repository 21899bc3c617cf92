// Attack (red team, session 6, LOW-MEDIUM): the echo oracle read past the 8-character bar through a
// value's cores. patternsOf also looks for a value without up to four leading hex digits, and for
// what follows a separator (`SG.…`), and each such core had a head bar of its own, further into the
// value: with 7 characters shown by a cut echo and the 8th confirmed at the bar (what
// docs/security.md concedes), sliding the known 7 along by one and guessing the next read 4 more
// characters of a 32-hex key, 16 guesses each. A core that starts past the value's own prefix now
// has no head of its own (its whole forms and its tail are still replaced). Here FAKE_KEY is 32 hex
// digits; the agent, as the unprivileged user, takes the conceded steps and then every guess of
// each slid probe must come back alike.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpConnection } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-scrub-core-", (broker) => (B = broker), { secret: randomBytes(16).toString("hex") });
const HEX = "0123456789abcdef";

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const url = req.url ?? "";
    let text: string | null = null;
    // An error quoting the agent's input.
    if (url.startsWith("/say?s=")) text = JSON.stringify({ error: { message: `No such customer: '${decodeURIComponent(url.slice(7))}'` } });
    // A service echoing the injected value cut short.
    const m = /^\/cut\/(\d+)$/.exec(url);
    if (m)
      text = JSON.stringify({
        received: `${String(req.headers.authorization ?? "")
          .replace(/^Bearer /, "")
          .slice(0, Number(m[1]))}…`,
      });
    if (text === null) return base(req, res, body);
    const b = Buffer.from(text);
    res.writeHead(404, { "content-type": "application/json", "content-length": b.length });
    res.end(b);
    return true;
  };
});

let conn: HttpConnection | null = null;
afterAll(() => conn?.close());

async function get(path: string): Promise<string> {
  const headers: [string, string][] = [["Host", "api.fake.test"]];
  conn ??= await B.tunnel("api.fake.test");
  const r = await conn.request("GET", path, headers, undefined, 20_000).catch(async () => {
    conn?.close();
    conn = await B.tunnel("api.fake.test");
    return conn.request("GET", path, headers, undefined, 20_000);
  });
  const text = r.body.toString("latin1");
  B.outputs.push(text);
  return text;
}

/** The guesses whose quoted probe came back changed (replaced). */
async function replacedFor(probe: (g: string) => string): Promise<string[]> {
  const out: string[] = [];
  for (const g of HEX) {
    const s = probe(g);
    if (!(await get(`/say?s=${encodeURIComponent(s)}`)).includes(`'${s}'`)) out.push(g);
  }
  return out;
}

describe("the echo oracle gets no further than the value's own bar through its cores", () => {
  test("past the conceded 7 + 1 characters, every guess of the next one comes back alike", async () => {
    const v = B.secret;
    // Conceded: a cut echo shows 7 characters, and crossing the bar confirms the 8th.
    const shown = /"received":"([0-9a-f]*)/.exec(await get("/cut/7"))![1]!;
    expect(shown).toBe(v.slice(0, 7));
    const bar = await replacedFor((g) => shown + g);
    expect(bar).toEqual([v[7]!]);
    const known = shown + bar[0];
    // The value without its first k hex digits is a core: its head is no bar of its own.
    for (let k = 1; k <= 4; k++) {
      const hits = await replacedFor((g) => known.slice(k, k + 7) + g);
      expect(hits.length === 0 || hits.length === HEX.length).toBe(true);
    }
  }, 120_000);
});
