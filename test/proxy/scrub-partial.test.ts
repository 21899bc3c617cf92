// A value an upstream echoed cut short (src/proxy/secrets.ts PARTIAL_LENGTH): every head and tail
// of 8 or more characters of every form is scrubbed, at a body's end and in its middle (followed by
// `…`, `"`, a space), whole, masked in place and streamed in chunks cut at every offset; a run of
// 7 is left, and so is ordinary text. The red team's case: `{"token":"CANARYVALUE_q7Zp3xK9mW2vL`
// (25 of 26 characters) reached the agent as is, and the guard told it the 26th.
import { describe, expect, test } from "bun:test";
import { scrubHeaders } from "../../src/proxy/response-body.ts";
import { maskText, PARTIAL_LENGTH, type Pattern, patternsOf, publicPrefixLength, scrubText, StreamScrubber } from "../../src/proxy/secrets.ts";
import { scrubWholeBody } from "../../src/proxy/whole-body.ts";
import { streamed } from "../support/streams.ts";

const VALUES: [string, string][] = [
  ["CANARY", "CANARYVALUE_q7Zp3xK9mW2vLx"],
  ["GH", "ghp_Q9x2LmT7aZ0pRk4Ws8YbNc1Dv6Hf3Ju5"],
  ["AWS", "AKIAZ7QW3ERTY5UIOP2L"],
];
const patterns: Pattern[] = VALUES.flatMap(([key, value]) => patternsOf(key, value)).sort((a, b) => b.bytes.length - a.bytes.length);
/** `…` as the latin1 text of its UTF-8 bytes, as the scrubber reads it. */
const ELLIPSIS = Buffer.from("…").toString("latin1");
const AFTER = ["", ELLIPSIS, '"', " "];
const BODY = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Whether `text` holds a run of PARTIAL_LENGTH characters of any form of the value under `key` (case folded). */
function leaks(text: string, key: string): string | null {
  const folded = text.toLowerCase();
  for (const p of patterns) {
    if (p.key !== key) continue;
    // Only heads and tails are promised: a run at either end of the form (a head counted past the
    // value's public prefix, `ghp_`, which ordinary text may hold).
    // A core that starts past the value's own bar (`headless`) is promised its tail only.
    const head = p.bytes.slice(0, (p.prefix ?? 0) + PARTIAL_LENGTH);
    const tail = p.bytes.slice(-PARTIAL_LENGTH);
    for (const run of p.headless ? [tail] : [head, tail]) if (folded.includes(run)) return `${p.form} ${run}`;
  }
  return null;
}

/** Every head and tail of every form of `key`'s value, PARTIAL_LENGTH characters or longer, in the case a form is written. */
function cutsOf(key: string): { name: string; run: string }[] {
  const out: { name: string; run: string }[] = [];
  for (const p of patterns) {
    if (p.key !== key) continue;
    const form = p.form === "base32" || p.form === "hex" ? p.bytes.toUpperCase() : p.bytes;
    for (let k = PARTIAL_LENGTH; k < form.length; k++) {
      if (!p.headless && k >= PARTIAL_LENGTH + (p.prefix ?? 0)) out.push({ name: `${p.form} head ${k}`, run: form.slice(0, k) });
      out.push({ name: `${p.form} tail ${k}`, run: form.slice(form.length - k) });
    }
  }
  return out;
}

describe("a value cut short is scrubbed: every head and tail of every form", () => {
  for (const [key, value] of VALUES) {
    test(`${key}: at the end of a body and in its middle, whole and masked`, () => {
      // The raw value as the red team had it: the original case.
      const shortest = PARTIAL_LENGTH + publicPrefixLength("raw", value.toLowerCase());
      const cuts = [...cutsOf(key), ...Array.from({ length: value.length - shortest }, (_, i) => ({ name: `raw head ${i + shortest}`, run: value.slice(0, i + shortest) }))];
      for (const { name, run } of cuts) {
        for (const after of AFTER) {
          for (const text of [`{"pad": "x", "token": "${run}${after}`, `{"token": "${run}${after}", "n": 1}`, `msg: ${run}${after}`]) {
            const clean = scrubText(text, patterns);
            if (leaks(clean, key) || !clean.includes(`[REDACTED:${key}]`)) throw new Error(`${name} + ${JSON.stringify(after)}: ${JSON.stringify(clean)}`);
            // What stands before the run is kept (a head's span runs on over the value's length,
            // a tail's back: the text around a cut value may be replaced with it).
            if (name.includes("head")) expect(clean.startsWith(text.slice(0, text.indexOf(run)))).toBe(true);
            const masked = maskText(text, patterns);
            expect(masked.length).toBe(text.length);
            if (leaks(masked, key)) throw new Error(`masked ${name}: ${JSON.stringify(masked)}`);
          }
        }
      }
    });
  }

  test("the red team's repro: 25 of 26 characters at the end of a cut JSON body", () => {
    const [, value] = VALUES[0]!;
    const body = `{"pad":"${"a".repeat(1956)}","token":"${value}"}`.slice(0, 2000);
    expect(body.endsWith(value.slice(0, 25))).toBe(true);
    const clean = scrubText(body, patterns);
    expect(clean.endsWith(`"token":"[REDACTED:CANARY]`)).toBe(true);
  });

  test("no oracle: a guess that continues a value past the head is replaced exactly like one that does not, in every form", () => {
    const [key, value] = VALUES[1]!;
    const known = value.slice(0, 4 + PARTIAL_LENGTH + 3); // ghp_ and 11 characters past it
    for (const spell of [(s: string) => s, (s: string) => Buffer.from(s).toString("hex"), (s: string) => s.toUpperCase()]) {
      const outputs = new Set<string>();
      for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
        const text = `{"error":"No such customer: '${spell(known + c)}!'"}`;
        const clean = scrubText(text, patterns);
        expect(clean).toContain(`[REDACTED:${key}]`);
        outputs.add(clean);
        expect(maskText(text, patterns).length).toBe(text.length);
      }
      expect([...outputs].length).toBe(1);
    }
    // Tails likewise: a guess that continues the tail backwards.
    const tail = value.slice(-(PARTIAL_LENGTH + 3));
    const outputs = new Set<string>();
    for (const c of "abcdefghijklmnopqrstuvwxyz0123456789") outputs.add(scrubText(`x '!${c}${tail}'`, patterns).replace(/^x '!./, ""));
    expect([...outputs].length).toBe(1);
  });

  test("the hex of a public prefix alone is left alone", () => {
    const hex = Buffer.from("ghp_").toString("hex");
    expect(scrubText(`id ${hex}0000 and ${Buffer.from("github_pat_").toString("hex")}`, patterns)).toBe(`id ${hex}0000 and ${Buffer.from("github_pat_").toString("hex")}`);
  });

  test("a public prefix and up to 7 characters past it are left alone: ghp_ and github_pat_ in ordinary text", () => {
    const own = [...patterns, ...patternsOf("PAT", "github_pat_11ABCDEFG0aBcDeFgHiJkLmNoPqRsTuVwXyZ")].sort((a, b) => b.bytes.length - a.bytes.length);
    for (const text of ['{"has_pages":true,"github_pages":"x"}', "tokens start with github_pat_ or ghp_", "ghp_Q9x2LmT", "github_pat_11ABCDE"]) expect(scrubText(text, own)).toBe(text);
    expect(scrubText("github_pat_11ABCDEFG0", own)).toBe("[REDACTED:PAT]");
    expect(scrubText("ghp_Q9x2LmT7a", own)).toBe("[REDACTED:GH]");
  });

  test("a run shorter than 8 characters is left alone, at either end", () => {
    for (const [, value] of VALUES) {
      for (let k = 1; k < PARTIAL_LENGTH; k++) {
        for (const text of [`x: ${value.slice(0, k)}"`, `x: "${value.slice(value.length - k)}"`]) expect(scrubText(text, patterns)).toBe(text);
      }
    }
  });

  test("a header echoing a cut value is cleaned; clean headers are left as they are", () => {
    const [, value] = VALUES[1]!;
    const headers: Record<string, string | string[]> = { "x-echo": `Bearer ${value.slice(0, 20)}…`, "x-tail": [`…${value.slice(10)}`], "content-type": "text/plain" };
    scrubHeaders(headers, patterns);
    // A cut value's span runs over the value's length (forward from a head, back from a tail).
    expect(headers).toEqual({ "x-echo": "Bearer [REDACTED:GH]", "x-tail": ["[REDACTED:GH]"], "content-type": "text/plain" });
    const clean: Record<string, string | string[]> = { "x-request-id": "abcdef0123456789", server: "nginx" };
    scrubHeaders(clean, patterns);
    expect(clean).toEqual({ "x-request-id": "abcdef0123456789", server: "nginx" });
  });

  test("base64 wrapped in lines is still refused whole: its head and tail lines replaced must not hide the middle ones", () => {
    const [, value] = VALUES[1]!;
    const wrapped = Buffer.from(`id:${value}`)
      .toString("base64")
      .replace(/(.{12})/g, "$1\r\n");
    const whole = scrubWholeBody(Buffer.from(wrapped), [], patterns, 1 << 20);
    expect("refused" in whole && whole.refused.key).toBe("GH");
  });

  test("ordinary text (English, code, the bench body, hex ids) is not touched, whole or streamed", () => {
    const texts = [
      "The proxy reads every byte of a response, looking for values, and then passes it on to the agent with nothing changed.\n",
      'export function main(): void { console.log("hello, world"); return; }\n',
      BODY.repeat(50),
      `{"id":"req_8f14e45fceea167a5a36dedd4bea2543","created":1700000000,"object":"chat.completion"}`,
    ];
    for (const text of texts) {
      expect(scrubText(text, patterns)).toBe(text);
      expect(streamed(patterns, text, [7, 50, 51])).toBe(text);
    }
  });
});

describe("a cut value across stream chunks", () => {
  for (const [key, value] of VALUES) {
    test(`${key}: heads and tails in chunks cut at every offset come out as scrubbed whole, from the marker on`, () => {
      const bytes = Buffer.from(value);
      const spellings: [string, string][] = [
        ["raw", value],
        ["base64", bytes.toString("base64")],
        ["hex", bytes.toString("hex")],
        ["url-encoded", encodeURIComponent(value).replace(/[-_]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)],
      ];
      for (const [form, spelled] of spellings) {
        const runs = [PARTIAL_LENGTH, Math.floor(spelled.length / 2), spelled.length - 1].flatMap((k) => [spelled.slice(0, k), spelled.slice(spelled.length - k)]);
        for (const run of runs) {
          for (const after of [ELLIPSIS, '"']) {
            const text = `${BODY}${run}${after}${BODY}`;
            const whole = scrubText(text, patterns);
            if (form !== "url-encoded" && leaks(whole, key)) throw new Error(`${form} ${run}: ${whole}`);
            for (let cut = 0; cut <= text.length; cut++) {
              for (const cuts of [[cut], [cut, Math.min(text.length, cut + 1)], [cut, Math.min(text.length, cut + 5)]]) {
                // As scrubbed whole, except that a tail's span cannot reach back into what a stream
                // already sent (bytes before the cut value, never part of it): the same from the
                // marker on, and nothing of the value anywhere.
                const out = streamed(patterns, text, cuts);
                const fromMarker = (s: string) => s.slice(s.indexOf("[REDACTED"));
                if (fromMarker(out) !== fromMarker(whole) || (form !== "url-encoded" && leaks(out, key))) {
                  throw new Error(`${form} ${run} cut at ${cuts.join(",")}: ${JSON.stringify(out)} is not ${JSON.stringify(whole)}`);
                }
                const masked = streamed(patterns, text, cuts, true);
                if (masked.length !== text.length || (form !== "url-encoded" && leaks(masked, key))) throw new Error(`masked ${form} ${run} cut at ${cuts.join(",")}: ${JSON.stringify(masked)}`);
              }
            }
          }
        }
      }
    });
  }

  test("a tail that starts in one chunk and ends in the next is held, not sent in part", () => {
    const [, value] = VALUES[0]!;
    const scrubber = new StreamScrubber(patterns);
    // The first chunk ends in a piece of the value's middle: held, since the next may end the value there.
    const first = scrubber.push(Buffer.from(`data: ${value.slice(5, 15)}`)).toString("latin1");
    expect(first).toBe("data: ");
    const rest = scrubber.push(Buffer.from(`${value.slice(15)}"\n\n`)).toString("latin1") + scrubber.end().toString("latin1");
    expect(rest).toBe('[REDACTED:CANARY]"\n\n');
  });
});
