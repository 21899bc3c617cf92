// The streaming scrubber's fast path (src/proxy/secret-streams.ts: no `%` or `\` in reach, the
// chunk searched by SampledSearch for the anchors of whole values, heads and tails) against a
// plain search: random bodies without escapes, with whole values, heads and tails of every form
// planted in mixed case (and runs one short of counting), cut into chunks at random, at the
// planted runs' edges and inside them. What comes out must hold no whole form, no head
// PARTIAL_LENGTH past its public prefix and no tail of PARTIAL_LENGTH, found by a plain
// `includes` of each (not by the code under test), and otherwise be what scrubbing the whole body
// at once gives. A missed anchor in a chunk lets a run out as it was, and fails here. The stream
// guard's fast path (whole values by SampledSearch) likewise: it stops a body iff a plain search
// finds a whole form in it, and what it sent before holds none.
import { describe, expect, test } from "bun:test";
import { longestSpelling, PARTIAL_LENGTH, type Pattern, patternsOf, scrubText, StreamGuard } from "../../src/proxy/secrets.ts";
import { prng } from "../support/random.ts";
import { isSubsequence, streamed, unmarked } from "../support/streams.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const VALUES: [string, string][] = [
  ["BENCH_TOKEN", "sk-bench-3f0c1a7e-9b2d-4c55-8e61-0d2b7a9c4f13"],
  ["GH", "ghp_Q9x2LmT7aZ0pRk4Ws8YbNc1Dv6Hf3Ju5"],
  ["AWS", "AKIAZ7QW3ERTY5UIOP2L"],
  ["LATIN", "clé-Ünïcødé-9Zq1x8"],
];
/** A value of six characters: its raw form is a literal shorter than a head, which the anchors hold whole. */
const SHORT: [string, string] = ["PIN", "Zq9x7W"];

function patternsFor(values: readonly [string, string][]): Pattern[] {
  return values.flatMap(([key, value]) => patternsOf(key, value)).sort((a, b) => b.bytes.length - a.bytes.length);
}

/** `text` with each character upper-cased at random (where the upper case is a Latin-1 character too). */
function mixCase(r: () => number, text: string): string {
  return Array.from(text, (ch) => {
    const upper = ch.toUpperCase();
    return r() < 0.5 && upper.length === 1 && upper.charCodeAt(0) <= 0xff ? upper : ch;
  }).join("");
}

/** What of any form shows in `text` (folded), found by `includes`: a whole form, a head past its prefix, a tail. */
function leaks(text: string, patterns: readonly Pattern[]): string | null {
  const folded = text.toLowerCase();
  for (const p of patterns) {
    // A core that starts past the value's own bar (`headless`) is promised its tail only.
    const head = p.headless ? [] : [p.bytes.slice(0, (p.prefix ?? 0) + PARTIAL_LENGTH)];
    const runs = p.bytes.length <= PARTIAL_LENGTH ? [p.bytes] : [...head, p.bytes.slice(-PARTIAL_LENGTH)];
    for (const run of runs) if (folded.includes(run)) return `${p.key} ${p.form} ${run}`;
  }
  return null;
}

describe("the scrubber's fast path finds what a plain search finds", () => {
  for (const [name, values] of [
    ["values of 20 to 45 characters", VALUES],
    ["with a 6-character value among them", [...VALUES, SHORT]],
  ] as const) {
    test(`${name}: planted whole, as heads and as tails, in random chunks (FUZZ_SEED=${SEED})`, () => {
      const patterns = patternsFor(values);
      const r = prng(SEED + name.length);
      const filler = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}":,.\n-_=&?/+é';
      const pick = (n: number) => Array.from({ length: n }, () => filler[Math.floor(r() * filler.length)]).join("");
      for (let round = 0; round < 300; round++) {
        const parts: string[] = [pick(Math.floor(r() * 100))];
        /** Where each planted run starts and ends: chunks are cut there too. */
        const edges: number[] = [];
        let length = parts[0]!.length;
        let planted = 0;
        for (let k = 1 + Math.floor(r() * 6); k > 0; k--) {
          const p = patterns[Math.floor(r() * patterns.length)]!;
          const form = p.bytes;
          const kind = r();
          const head = (p.prefix ?? 0) + PARTIAL_LENGTH;
          let run: string;
          if (kind < 0.3 || form.length <= PARTIAL_LENGTH) run = form;
          else if (kind < 0.6 && head < form.length && !p.headless) run = form.slice(0, head + Math.floor(r() * (form.length - head)));
          else if (kind < 0.9) run = form.slice(-(PARTIAL_LENGTH + Math.floor(r() * (form.length - PARTIAL_LENGTH))));
          else run = r() < 0.5 ? form.slice(0, head - 1) : form.slice(-(PARTIAL_LENGTH - 1)); // one short: left
          if (run.length >= PARTIAL_LENGTH && !(kind >= 0.9)) planted++;
          edges.push(length, length + Math.floor(run.length / 2), length + run.length);
          const after = pick(Math.floor(r() * 200));
          parts.push(mixCase(r, run), after);
          length += run.length + after.length;
        }
        const text = parts.join("");
        expect(text).not.toMatch(/[%\\]/);
        const cuts = new Set<number>();
        for (let at = Math.floor(r() * 300); at < text.length; at += 1 + Math.floor(r() * (r() < 0.5 ? 40 : 3000))) cuts.add(at);
        for (const e of edges) if (r() < 0.5) cuts.add(e + Math.floor(r() * 3) - 1);
        const sorted = [...cuts].filter((c) => c > 0 && c < text.length).sort((a, b) => a - b);
        const whole = scrubText(text, patterns);
        if (planted > 0) expect(whole).toContain("[REDACTED:");
        for (const masking of [false, true]) {
          const out = streamed(patterns, text, sorted, masking);
          const leak = leaks(out, patterns);
          if (leak) throw new Error(`round ${round}${masking ? ", masking" : ""}: ${leak} left in ${JSON.stringify(out)} (cuts ${sorted.join(",")})`);
          if (masking) expect(out.length).toBe(text.length);
          // As scrubbed whole, except that a tail's span cannot run back into bytes already sent (see stream-split.test.ts).
          else if (out !== whole && !isSubsequence(unmarked(whole), unmarked(out))) throw new Error(`round ${round}: ${JSON.stringify(out)} is not ${JSON.stringify(whole)}`);
        }
      }
    });
  }

  test("a body that is all near misses (runs of 7) passes unchanged, whatever the chunks", () => {
    const patterns = patternsFor(VALUES);
    const r = prng(SEED + 99);
    for (let round = 0; round < 50; round++) {
      let text = "";
      while (text.length < 5000) {
        const p = patterns[Math.floor(r() * patterns.length)]!;
        text += `${mixCase(r, r() < 0.5 ? p.bytes.slice(0, (p.prefix ?? 0) + PARTIAL_LENGTH - 1) : p.bytes.slice(-(PARTIAL_LENGTH - 1)))} `;
      }
      expect(scrubText(text, patterns)).toBe(text);
      const cuts: number[] = [];
      for (let at = 1 + Math.floor(r() * 50); at < text.length; at += 1 + Math.floor(r() * 700)) cuts.push(at);
      expect(streamed(patterns, text, cuts, false)).toBe(text);
    }
  });
});

describe("the stream guard's fast path finds what a plain search finds", () => {
  test(`whole forms planted in mixed case, cut across random chunks, with and without a long hold (FUZZ_SEED=${SEED})`, () => {
    const patterns = patternsFor([...VALUES, SHORT]);
    const r = prng(SEED + 7);
    const filler = "abcdefghijklmnopqrstuvwxyz0123456789 ,.-_";
    const pick = (n: number) => Array.from({ length: n }, () => filler[Math.floor(r() * filler.length)]).join("");
    const wholeIn = (text: string) => {
      const folded = text.toLowerCase();
      return patterns.some((p) => folded.includes(p.bytes));
    };
    for (let round = 0; round < 400; round++) {
      let text = pick(Math.floor(r() * 400));
      const p = patterns[Math.floor(r() * patterns.length)]!;
      // A whole form, or all of it but one character at either end.
      const kind = r();
      const run = kind < 0.6 ? p.bytes : kind < 0.8 ? p.bytes.slice(1) : p.bytes.slice(0, -1);
      const start = text.length;
      text += mixCase(r, run) + pick(Math.floor(r() * 400));
      const cuts = new Set<number>();
      for (let at = Math.floor(r() * 200); at < text.length; at += 1 + Math.floor(r() * (r() < 0.5 ? 30 : 2000))) cuts.add(at);
      cuts.add(start + Math.floor(r() * run.length));
      const sorted = [...cuts].filter((c) => c > 0 && c < text.length).sort((a, b) => a - b);
      const expected = wholeIn(text);
      for (const holdAll of [0, longestSpelling(patterns)]) {
        const guard = new StreamGuard(patterns, holdAll);
        let sent = "";
        let hit = false;
        let at = 0;
        for (const cut of [...sorted, text.length]) {
          const out = guard.push(Buffer.from(text.slice(at, cut), "latin1"));
          at = cut;
          if ("hit" in out) {
            hit = true;
            break;
          }
          sent += out.send.toString("latin1");
        }
        if (!hit) {
          const end = guard.end();
          if ("hit" in end) hit = true;
          else sent += end.send.toString("latin1");
        }
        if (expected && !hit) throw new Error(`round ${round}: the guard let ${p.key} ${p.form} through (cuts ${sorted.join(",")})`);
        expect(wholeIn(sent)).toBe(false);
        if (!expected && !hit) expect(sent).toBe(text);
      }
    }
  });
});
