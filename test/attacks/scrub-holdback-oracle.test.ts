// Attack (red team, session 6, HIGH twice): the streaming scrubber held back the end of a chunk as
// far as it was a piece of some form of some value, and that told the agent the value. Both routes
// need only an upstream that streams back strings the agent chose, in chunks with pauses:
//   - what arrived before each pause: "\n!" + the last 6 hex characters read so far + a guess was
//     held back whole for the right guess only, so the agent read FAKE_KEY's hex form one request
//     per character, from its public prefix `sk_live_` on (48 requests end to end);
//   - the final body alone: a tail's replacement reaches back over the form's length but only
//     through what was still held, so "\n!" + g + KNOWN[:-1] | KNOWN[-1] came back with g replaced
//     for the right g only, and the agent read the key backwards from its last 8 hex characters.
// The hold-back now reads bytes, not values (secret-streams.ts holdBack). Here, as the unprivileged
// user, one step of each attack: every one of the 16 guesses must come back alike, in what arrived
// before each pause and in the final body, and the value must be nowhere in what the agent got.
import { beforeAll, describe, expect, test } from "bun:test";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-scrub-holdback-", (broker) => (B = broker));
const PAUSE_MS = 60;
const HEX = "0123456789abcdef";

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const m = /^\/(seg|back)\?known=([0-9a-f]*)$/.exec(req.url ?? "");
    if (!m) return base(req, res, body);
    const [, route, known] = m as unknown as [string, string, string];
    // Only what the agent asked for, each piece its own chunk, a pause after each.
    const chunks = route === "seg" ? [...HEX].map((g) => `\n!${known}${g}`) : [...HEX].flatMap((g) => [`\n!${g}${known.slice(0, -1)}`, known.slice(-1)]);
    res.writeHead(200, { "content-type": "text/plain" });
    let i = 0;
    const next = () => {
      if (i === chunks.length) return void res.end("\nEND\n");
      res.write(chunks[i++]!);
      setTimeout(next, PAUSE_MS);
    };
    next();
    return true;
  };
});

/** The body bytes of a chunked response as far as they have arrived. */
function dechunk(raw: Buffer): string {
  let at = raw.indexOf("\r\n\r\n") + 4;
  let out = "";
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (at < 4 || eol < 0) return out;
    const size = Number.parseInt(raw.toString("latin1", at, eol), 16);
    if (!(size > 0)) return out;
    out += raw.toString("latin1", eol + 2, Math.min(raw.length, eol + 2 + size));
    if (eol + 4 + size > raw.length) return out;
    at = eol + 4 + size;
  }
}

/** The agent's request; what it had each time the stream paused, and the final body. */
async function stream(path: string): Promise<{ atPauses: string[]; body: string }> {
  const conn = await B.tunnel("api.fake.test");
  const arrivals: { at: number; raw: Buffer }[] = [];
  let raw = Buffer.alloc(0);
  conn.socket.on("data", (d: Buffer) => {
    raw = Buffer.concat([raw, d]);
    arrivals.push({ at: performance.now(), raw });
  });
  const r = await conn.request(
    "GET",
    path,
    [
      ["Host", "api.fake.test"],
      ["Connection", "close"],
    ],
    undefined,
    20_000,
  );
  conn.close();
  expect(r.status).toBe(200);
  const body = r.body.toString("latin1");
  B.outputs.push(raw.toString("latin1"), body);
  const atPauses = arrivals.filter((a, k) => (arrivals[k + 1]?.at ?? Number.POSITIVE_INFINITY) - a.at >= PAUSE_MS / 2).map((a) => dechunk(a.raw));
  return { atPauses, body };
}

const hexOf = (s: string) => Buffer.from(s).toString("hex");

describe("the scrubber's hold-back does not depend on the value", () => {
  test("what arrives before each pause is the same for all 16 guesses of the next hex character", async () => {
    // The attack's first step: the context is the hex of the public prefix, the guess the first
    // character past it (a right guess used to be held back whole, a wrong one let through).
    const known = hexOf("sk_live_").slice(-6);
    const right = hexOf(B.secret)[hexOf("sk_live_").length]!;
    const { atPauses, body } = await stream(`/seg?known=${known}`);
    // At each pause before the last (the stream's end), the guess just sent is held back, the
    // right one exactly as every wrong one: each has the segments before it whole and its own not
    // yet (a right guess used to be held and a wrong one shown).
    const paused = atPauses.slice(0, -1);
    expect(paused.length).toBeGreaterThanOrEqual(HEX.length);
    for (const text of paused) expect(text.endsWith("\n!")).toBe(true);
    const whole = paused.map((text) => [...HEX].filter((g) => text.includes(`\n!${known}${g}`)).length);
    for (let k = 1; k < whole.length; k++) expect(whole[k]! - whole[k - 1]!).toBeLessThanOrEqual(1);
    expect(body.includes(`\n!${known}${right}`)).toBe(true);
    for (const g of HEX) expect(body).toContain(`\n!${known}${g}`);
  }, 30_000);

  test("a tail's replacement covers every guess before it alike: the final body tells none apart", async () => {
    // What docs/security.md concedes (7 characters of a cut echo, 1 confirmed at the bar): the
    // last 8 hex characters. The attack guessed the one before them.
    const hex = hexOf(B.secret);
    const known = hex.slice(-8);
    const { body } = await stream(`/back?known=${known}`);
    const shown = [...HEX].filter((g) => body.includes(`\n!${g}`));
    expect(shown.length === 0 || shown.length === 16).toBe(true);
    expect(body.split("[REDACTED:FAKE_KEY]").length - 1).toBe(16);
  }, 30_000);

  test("no 8 characters of the value past its prefix reached the agent, as is or hex-encoded", () => {
    const prefix = "sk_live_".length;
    const forms = [B.secret.toLowerCase().slice(prefix), hexOf(B.secret).slice(2 * prefix)];
    for (const text of B.outputs) {
      const folded = text.toLowerCase();
      for (const form of forms) for (let i = 0; i + 8 <= form.length; i++) expect(folded.includes(form.slice(i, i + 8))).toBe(false);
    }
    expect(B.outputs.length).toBeGreaterThan(0);
  });
});
