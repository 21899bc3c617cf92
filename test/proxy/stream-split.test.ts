// The streaming scrubber and guard (src/proxy/secrets.ts) against a value cut across chunks at
// every offset, in every form, inside the bench's alphanumeric body (where the fast path runs: no
// `%` or `\` in reach) and beside an escape (where the general path runs): the stream must come
// out exactly as the whole text scrubbed at once, and the guard must stop before the value leaves.
import { describe, expect, test } from "bun:test";
import { base32, findAll, findSecret, longestSpelling, type Pattern, patternsOf, scrubText, StreamGuard } from "../../src/proxy/secrets.ts";
import { prng } from "../support/random.ts";
import { isSubsequence, streamed, unmarked } from "../support/streams.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const BODY = "abcdefghijklmnopqrstuvwxyz0123456789";
const VALUES: [string, string][] = [
  ["BENCH_TOKEN", "sk-bench-3f0c1a7e-9b2d-4c55-8e61-0d2b7a9c4f13"],
  ["GH", "ghp_Q9x2LmT7aZ0pRk4Ws8YbNc1Dv6Hf3Ju5"],
  ["AWS", "AKIAZ7QW3ERTY5UIOP2L"],
];
const patterns: Pattern[] = VALUES.flatMap(([key, value]) => patternsOf(key, value)).sort((a, b) => b.bytes.length - a.bytes.length);

/** The spellings an upstream or an agent may use; the url-encoded one has escapes (the general path). */
function spellings(value: string): [string, string][] {
  const bytes = Buffer.from(value);
  return [
    ["raw", value],
    ["upper-case", value.toUpperCase()],
    ...[0, 1, 2].map((pad): [string, string] => [`base64 after ${pad} bytes`, Buffer.concat([Buffer.from("xyz".slice(0, pad)), bytes, Buffer.from("!")]).toString("base64")]),
    ["base64url", bytes.toString("base64url")],
    ["hex", bytes.toString("hex")],
    ["base32", base32(bytes)],
    ["url-encoded", encodeURIComponent(value).replace(/-/g, "%2D")],
    ["json-escaped", JSON.stringify(value).slice(1, -1).replace(/k/g, "\\u006b")],
  ];
}

/** Whether the guard stopped the stream, and everything it let go before. */
function guarded(text: string, cuts: readonly number[], holdAll: number): { hit: boolean; sent: string } {
  const guard = new StreamGuard(patterns, holdAll);
  let sent = "";
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    const out = guard.push(Buffer.from(text.slice(at, cut), "latin1"));
    at = cut;
    if ("hit" in out) return { hit: true, sent };
    sent += out.send.toString("latin1");
  }
  const end = guard.end();
  if ("hit" in end) return { hit: true, sent };
  return { hit: false, sent: sent + end.send.toString("latin1") };
}

describe("a value cut across chunks", () => {
  for (const [key, value] of VALUES) {
    for (const [form, spelled] of spellings(value)) {
      test(`${key} ${form}: two chunks cut at every offset, and three with a short middle`, () => {
        const text = `${BODY.repeat(3)}${spelled}${BODY.repeat(2)}`;
        const whole = scrubText(text, patterns);
        expect(whole).toContain(`[REDACTED:${key}]`);
        for (let cut = 0; cut <= text.length; cut++) {
          const cuts = [[cut], [cut, Math.min(text.length, cut + 1)], [cut, Math.min(text.length, cut + 7)]];
          for (const c of cuts) {
            const out = streamed(patterns, text, c);
            if (out !== whole) throw new Error(`${form} cut at ${c.join(",")}: ${JSON.stringify(out)} is not ${JSON.stringify(whole)}`);
            const g = guarded(text, c, 0);
            if (!g.hit) throw new Error(`${form} cut at ${c.join(",")}: the guard let it through`);
            expect(findSecret(g.sent, patterns)).toBeNull();
          }
        }
      });
    }
  }

  test("the guard's long hold-back (as past the request buffer) sends every byte once, in order, and holds the tail", () => {
    const r = prng(SEED);
    const holdAll = longestSpelling(patterns);
    const text = BODY.repeat(2000);
    for (let round = 0; round < 20; round++) {
      const guard = new StreamGuard(patterns, holdAll);
      let sent = "";
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(r() * 20_000);
        const out = guard.push(Buffer.from(text.slice(at, at + n), "latin1"));
        at += n;
        if ("hit" in out) throw new Error("no value in this text");
        sent += out.send.toString("latin1");
        expect(Math.min(at, text.length) - sent.length).toBeGreaterThanOrEqual(Math.min(Math.min(at, text.length), holdAll));
      }
      const end = guard.end();
      if ("hit" in end) throw new Error("no value in this text");
      expect(sent + end.send.toString("latin1")).toBe(text);
    }
  });

  test(`random bodies with values and escapes stream out exactly as scrubbed whole (FUZZ_SEED=${SEED})`, () => {
    const r = prng(SEED + 1);
    const noise = `${BODY}${BODY.toUpperCase()} %\\_-"`;
    const pick = (n: number) => Array.from({ length: n }, () => noise[Math.floor(r() * noise.length)]).join("");
    for (let i = 0; i < 400; i++) {
      const parts: string[] = [];
      for (let k = 0; k < 4; k++) {
        parts.push(pick(Math.floor(r() * 300)));
        if (r() < 0.6) {
          const [, value] = VALUES[Math.floor(r() * VALUES.length)]!;
          const all = spellings(value);
          parts.push(all[Math.floor(r() * all.length)]![1]);
        }
      }
      const text = parts.join("");
      const cuts: number[] = [];
      for (let at = Math.floor(r() * 200); at < text.length; at += 1 + Math.floor(r() * 200)) cuts.push(at);
      const out = streamed(patterns, text, cuts);
      // As scrubbed whole, except that a cut value's span (a tail's runs back over the value's
      // length) cannot reach into bytes a stream already sent, which stay as they were: the stream
      // holds nothing of a value, and what it shows besides is what the whole showed, in order.
      const whole = scrubText(text, patterns);
      if (out !== whole && (findAll(out, patterns).length > 0 || !isSubsequence(unmarked(whole), unmarked(out)))) {
        throw new Error(`case ${i}: cut at ${cuts.join(",")}: ${JSON.stringify(text)}`);
      }
      const g = guarded(text, cuts, 0);
      expect(g.hit).toBe(findSecret(text, patterns) !== null);
    }
  });
});
