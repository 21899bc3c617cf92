// Attack: getting a credential's value back a few bytes at a time with Range. Scrubbing finds a
// value only whole, so the proxy widens a range upstream (steps/ranges.ts) and masks the value in
// the wider part before cutting the agent's bytes out (response-range.ts). The agent, as the
// unprivileged user, has api.fake.test (bearer FAKE_KEY) echo the injected value in several
// spellings inside a body that honours Range, suffix ranges and several ranges (multipart), ETags
// and If-Range, and gzip on request; it asks for ranges of 1, 2, 3, … bytes at every offset around
// the value, suffix ranges, several and overlapping ranges, If-Range tricks, Range with
// Accept-Encoding: gzip, and odd spellings of Range. Joining every byte it got, at the offsets the
// answers claim or in any order, must not give back the value or any 8-character piece of it.
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { giveToAgent } from "../support/attacker.ts";
import { type HttpConnection } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
const scratch = brokerForFile("av-scrub-ranges-", (broker) => (B = broker));
const PAD = "x".repeat(200);

/** The spellings the upstream echoes the value in; each, the agent could decode on its side. */
const SPELLINGS: Record<string, { spell: (v: string) => string; read: (text: string) => string[] }> = {
  raw: { spell: (v) => v, read: (t) => [t, t.toLowerCase()] },
  upper: { spell: (v) => v.toUpperCase(), read: (t) => [t.toLowerCase()] },
  hex: { spell: (v) => Buffer.from(v).toString("hex"), read: (t) => [Buffer.from(t.replace(/[^0-9a-f]/gi, ""), "hex").toString("latin1")] },
  percent: { spell: (v) => [...Buffer.from(v)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""), read: (t) => [decodeLoosely(t)] },
  unicode: {
    spell: (v) => [...v].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
    read: (t) => [t.replace(/\\u([0-9a-f]{4})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))],
  },
  base64: { spell: (v) => Buffer.from(`id:${v}`).toString("base64"), read: (t) => [0, 1, 2, 3].map((k) => Buffer.from(t.replace(/[^A-Za-z0-9+/]/g, "").slice(k), "base64").toString("latin1")) },
};

function decodeLoosely(text: string): string {
  return text.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

function bodyOf(value: string, spelling: string): Buffer {
  return Buffer.from(`${PAD}"${SPELLINGS[spelling]!.spell(value)}"${PAD}`, "latin1");
}

/** Honours Range fully: one range, a suffix, several (multipart/byteranges), If-Range, gzip on request. */
function serve(req: IncomingMessage, res: ServerResponse, body: Buffer): true {
  const etag = '"e1"';
  const gzip = /gzip/.test(String(req.headers["accept-encoding"] ?? ""));
  const head: Record<string, string | number> = { "content-type": "text/plain", etag, "accept-ranges": "bytes" };
  const ifRange = req.headers["if-range"];
  const range = typeof req.headers.range === "string" && (ifRange === undefined || ifRange === etag) ? req.headers.range : null;
  const spans: [number, number][] = [];
  for (const spec of /^bytes=(.+)$/.exec(range ?? "")?.[1]?.split(",") ?? []) {
    const m = /^\s*(\d*)-(\d*)\s*$/.exec(spec);
    if (!m || (m[1] === "" && m[2] === "")) continue;
    const span: [number, number] = m[1] === "" ? [Math.max(0, body.length - Number(m[2])), body.length - 1] : [Number(m[1]), Math.min(body.length - 1, m[2] === "" ? body.length - 1 : Number(m[2]))];
    if (span[0] <= span[1]) spans.push(span);
  }
  const send = (status: number, bytes: Buffer, extra: Record<string, string | number>) => {
    const out = gzip ? gzipSync(bytes) : bytes;
    res.writeHead(status, { ...head, ...extra, ...(gzip ? { "content-encoding": "gzip" } : {}), "content-length": out.length });
    res.end(out);
    return true as const;
  };
  if (spans.length === 0) return send(200, body, {});
  if (spans.length === 1) return send(206, body.subarray(spans[0]![0], spans[0]![1] + 1), { "content-range": `bytes ${spans[0]![0]}-${spans[0]![1]}/${body.length}` });
  const parts = spans.map(([a, b]) => Buffer.concat([Buffer.from(`--B\r\ncontent-range: bytes ${a}-${b}/${body.length}\r\n\r\n`), body.subarray(a, b + 1), Buffer.from("\r\n")]));
  return send(206, Buffer.concat([...parts, Buffer.from("--B--\r\n")]), { "content-type": "multipart/byteranges; boundary=B" });
}

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const m = /^\/leak\/(\w+)$/.exec(req.url ?? "");
    if (!m || !SPELLINGS[m[1]!]) return base(req, res, body);
    return serve(req, res, bodyOf(String(req.headers.authorization ?? "").replace(/^Bearer /, ""), m[1]!));
  };
});

/** Everything the agent got, for the final check. */
const got: Buffer[] = [];
/** Per spelling: the byte the agent got at each offset of the body (from parts), to join them. */
const joined = new Map<string, Map<number, number>>();

let conn: HttpConnection | null = null;

async function get(path: string, headers: [string, string][]): Promise<{ status: number; body: Buffer; headers: Record<string, string> }> {
  const all: [string, string][] = [["Host", "api.fake.test"], ...headers];
  conn ??= await B.tunnel("api.fake.test");
  const r = await conn.request("GET", path, all, undefined, 20_000).catch(async () => {
    conn?.close();
    conn = await B.tunnel("api.fake.test");
    return conn.request("GET", path, all, undefined, 20_000);
  });
  if (r.headers.connection === "close") {
    conn.close();
    conn = null;
  }
  got.push(r.body);
  return { status: r.status, body: r.body, headers: r.headers };
}

/** Records a part's bytes at the offsets its Content-Range claims; a byte seen twice must agree. */
function record(spelling: string, r: { status: number; body: Buffer; headers: Record<string, string> }): void {
  if (r.status !== 206) return;
  const m = /^bytes (\d+)-(\d+)\/\d+$/.exec(r.headers["content-range"] ?? "");
  expect(m, r.headers["content-range"]).not.toBeNull();
  expect(r.body.length).toBe(Number(m![2]) - Number(m![1]) + 1);
  const bytes = joined.get(spelling) ?? new Map<number, number>();
  joined.set(spelling, bytes);
  for (let i = 0; i < r.body.length; i++) {
    const at = Number(m![1]) + i;
    const prior = bytes.get(at);
    if (prior !== undefined) expect(r.body[i], `byte ${at} of ${spelling}`).toBe(prior);
    bytes.set(at, r.body[i]!);
  }
}

/** Every 8-character piece of `text`, lower-cased. */
function pieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 8 <= text.length; i++) out.push(text.slice(i, i + 8).toLowerCase());
  return out;
}

/** No piece of the value (or of its spelling) in `text`, read every way the agent could. */
function expectNoPiece(text: string, spelling: string, what: string): void {
  const value = B.secret;
  const spelled = SPELLINGS[spelling]!.spell(value);
  const readings = [text, ...SPELLINGS[spelling]!.read(text), ...SPELLINGS.raw!.read(text)].map((t) => t.toLowerCase());
  for (const reading of readings) {
    for (const piece of [...pieces(value), ...(spelling === "base64" ? [] : pieces(spelled))]) {
      if (reading.includes(piece)) throw new Error(`${what}: the agent got "${piece}", a piece of the value (${spelling})`);
    }
  }
}

describe("a value fetched a few bytes at a time", () => {
  for (const spelling of Object.keys(SPELLINGS)) {
    test(`${spelling}: ranges of 1 to 9 bytes at every offset around it, then the whole body in parts`, async () => {
      const length = bodyOf(B.secret, spelling).length;
      const from = PAD.length - 12;
      const to = length - PAD.length + 12;
      for (let size = 1; size <= 9; size++) {
        for (let first = from; first < to; first++) {
          const r = await get(`/leak/${spelling}`, [["Range", `bytes=${first}-${first + size - 1}`]]);
          expect(r.status).toBe(206);
          record(spelling, r);
        }
      }
      for (const step of [5, 64]) {
        for (let first = 0; first < length; first += step) record(spelling, await get(`/leak/${spelling}`, [["Range", `bytes=${first}-${first + step - 1}`]]));
      }
      // Open-ended ranges starting inside the value.
      for (let first = PAD.length; first < to; first += 3) record(spelling, await get(`/leak/${spelling}`, [["Range", `bytes=${first}-`]]));
      const bytes = joined.get(spelling)!;
      const whole = Buffer.alloc(length);
      for (const [at, byte] of bytes) whole[at] = byte;
      expect(bytes.size).toBe(length);
      expectNoPiece(whole.toString("latin1"), spelling, "the parts joined at their offsets");
      expectNoPiece(Buffer.concat(got).toString("latin1"), spelling, "every body in the order received");
    }, 120_000);
  }
});

describe("what else an agent can put in Range", () => {
  test("suffix ranges, several ranges, overlapping ranges, odd spellings: answered whole, 200, scrubbed", async () => {
    const v = PAD.length + 1;
    const specs = [
      ...Array.from({ length: 40 }, (_, k) => `bytes=-${PAD.length + 1 + B.secret.length - k}`),
      `bytes=${v}-${v + 3},${v + 4}-${v + 7},${v + 8}-${v + 11},${v + 12}-${v + 40}`,
      `bytes=${v}-${v + 10},${v + 5}-${v + 20},${v + 15}-${v + 40}`,
      `bytes=${v}-${v + 10}, -20`,
      `bytes=0-0,${v}-`,
      `bytes=${v}-${v + 5}x`,
      `bytes=${v + 5}-${v}`,
      `bytes=1e2-${v}`,
      `bytes=${"9".repeat(16)}-`,
      `bytes=${v}-${v + 10};q=1`,
      `lines=${v}-${v + 10}`,
    ];
    for (const range of specs) {
      const r = await get("/leak/raw", [["Range", range]]);
      expect([200, 416], range).toContain(r.status);
      expectNoPiece(r.body.toString("latin1"), "raw", range);
    }
    // Two Range headers: neither goes on.
    const two = await get("/leak/raw", [
      ["Range", `bytes=${v}-${v + 7}`],
      ["Range", `bytes=${v + 8}-${v + 15}`],
    ]);
    expect(two.status).toBe(200);
    expectNoPiece(two.body.toString("latin1"), "raw", "two Range headers");
  }, 60_000);

  test("If-Range: a matching validator gets a masked part, a stale one the whole scrubbed body, one alone nothing more", async () => {
    const v = PAD.length + 1;
    for (const validator of ['"e1"', '"stale"', 'W/"e1"', new Date().toUTCString()]) {
      for (let first = v - 4; first < v + B.secret.length; first += 3) {
        const r = await get("/leak/raw", [
          ["Range", `bytes=${first}-${first + 4}`],
          ["If-Range", validator],
        ]);
        // Only the validator the upstream still holds gets a part (the If-Range went with the range).
        expect(r.status, validator).toBe(validator === '"e1"' ? 206 : 200);
        record("raw", r);
        expectNoPiece(r.body.toString("latin1"), "raw", `If-Range ${validator}`);
      }
    }
    const alone = await get("/leak/raw", [["If-Range", '"e1"']]);
    expect(alone.status).toBe(200);
    expectNoPiece(alone.body.toString("latin1"), "raw", "If-Range alone");
  }, 60_000);

  test("Range with Accept-Encoding: gzip: a gzip part cannot be read alone and is refused; nothing gunzips to a piece", async () => {
    const v = PAD.length + 1;
    for (let first = v - 6; first < v + B.secret.length; first += 2) {
      for (const range of [`bytes=${first}-${first + 5}`, `bytes=${first}-`, `bytes=-${PAD.length + 40 - (first - v)}`, `bytes=0-3,${first}-${first + 8}`]) {
        const r = await get("/leak/raw", [
          ["Range", range],
          ["Accept-Encoding", "gzip"],
        ]);
        // One range went upstream (widened) and came back gzipped: refused. The others were not passed on.
        expect(r.status, range).toBe(range.includes(",") || range.startsWith("bytes=-") ? 200 : 502);
        let text = r.body.toString("latin1");
        try {
          text += gunzipSync(r.body).toString("latin1");
        } catch {
          // not gzip (scrubbing decodes what it passes on)
        }
        expectNoPiece(text, "raw", `${range} with gzip`);
      }
    }
  }, 60_000);

  test("curl -r as the agent user, one range after another", async () => {
    const v = PAD.length + 1;
    const config = join(scratch, "ranges.curl");
    const blocks: string[] = [];
    for (let first = v - 3; first < v + B.secret.length + 3; first++) {
      blocks.push(
        `url = "https://api.fake.test/leak/raw"\nrange = ${first}-${first}\nproxy = "http://127.0.0.1:${B.server.mitmPort}"\nproxy-user = "${B.token}:default"\ncacert = "${B.caFile}"\nhttp1.1\nsilent\nshow-error`,
      );
    }
    writeFileSync(config, blocks.join("\nnext\n"));
    giveToAgent(config);
    const r = await B.curl(["-K", config]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(B.secret.length + 6);
    expectNoPiece(r.stdout, "raw", "curl -r byte by byte");
  }, 60_000);

  test("the explicit /proxy/ route asking for scrubbing (X-Agent-Vault-Scrub: 1, as the MCP server does) with the vault's scrubbing off", async () => {
    const off = await B.cli(["vault", "settings", "--scrub", "off"]);
    expect(off.code, off.stderr).toBe(0);
    try {
      const v = PAD.length + 1;
      const bodies: Buffer[] = [];
      for (let first = v - 3; first < v + B.secret.length; first += 4) {
        const res = await fetch(`http://127.0.0.1:${B.server.apiPort}/proxy/api.fake.test/leak/raw`, {
          headers: { authorization: `Bearer ${B.token}`, range: `bytes=${first}-${first + 3}`, "x-agent-vault-scrub": "1", "accept-encoding": "identity" },
        });
        expect(res.status).toBe(206);
        bodies.push(Buffer.from(await res.arrayBuffer()));
      }
      got.push(...bodies);
      expectNoPiece(Buffer.concat(bodies).toString("latin1"), "raw", "explicit route in pieces");
    } finally {
      await B.cli(["vault", "settings", "--scrub", "on"]);
    }
  }, 60_000);
});

describe("what the agent got", () => {
  test("no body, output or log line holds a piece of the value", () => {
    expectNoPiece(Buffer.concat(got).toString("latin1"), "raw", "all bodies");
    for (const text of [...B.outputs, B.log()]) expect(text.includes(B.secret)).toBe(false);
  });
});
