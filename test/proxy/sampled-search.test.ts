// SampledSearch (src/proxy/search.ts), the scrubber's search of short literals by sampled blocks,
// against a plain search of lower-cased text: random literals and texts over small alphabets (the
// worst case for a block filter), mixed case, Latin-1 letters, occurrences at either end of the
// text; every occurrence found, once, in order of start.
import { describe, expect, test } from "bun:test";
import { MultiSearch, SampledSearch } from "../../src/proxy/search.ts";
import { prng } from "../support/random.ts";

/** Every occurrence of every literal in the lower-cased `text`, as `literal@start`, by start then literal. */
function naive(text: string, literals: readonly string[]): string[] {
  const folded = text.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < folded.length; i++) for (let l = 0; l < literals.length; l++) if (folded.startsWith(literals[l]!, i)) out.push(`${l}@${i}`);
  return out;
}

function found(search: SampledSearch, text: string): string[] {
  const out: string[] = [];
  search.scanBytes(Buffer.from(text, "latin1"), (m) => {
    expect(m.end - m.start).toBeGreaterThan(0);
    out.push(`${m.literal}@${m.start}`);
  });
  return out;
}

/** `text` with some characters upper-cased (where the upper case is a Latin-1 character too). */
function mixCase(r: () => number, text: string): string {
  return Array.from(text, (ch) => {
    const upper = ch.toUpperCase();
    return r() < 0.5 && upper.length === 1 && upper.charCodeAt(0) <= 0xff ? upper : ch;
  }).join("");
}

describe("SampledSearch", () => {
  test("finds every occurrence a plain search finds, in order of start, on small alphabets", () => {
    const r = prng(21);
    for (let round = 0; round < 2000; round++) {
      const alphabet = ["ab", "abc", "abcdefXYZ019%", "ab\u00e9\u00ff-_"][round % 4]!;
      const pick = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
      const literals = Array.from({ length: 1 + Math.floor(r() * 8) }, () => pick(4 + Math.floor(r() * 10)).toLowerCase());
      // Literals planted whole, cut at either end of the text, and in mixed case.
      let text = pick(Math.floor(r() * 40));
      for (let k = Math.floor(r() * 5); k > 0; k--) text += mixCase(r, literals[Math.floor(r() * literals.length)]!) + pick(Math.floor(r() * 12));
      if (r() < 0.3) text = text.slice(Math.floor(r() * 6));
      if (r() < 0.3) text = text.slice(0, text.length - Math.floor(r() * 6));
      const search = new SampledSearch(literals);
      expect(found(search, text)).toEqual(naive(text, literals));
      expect(search.hasAny(Buffer.from(text, "latin1"))).toBe(naive(text, literals).length > 0);
    }
  });

  test("finds what MultiSearch finds over long random text with the literals planted at every offset", () => {
    const r = prng(22);
    const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const pick = (n: number) => Array.from({ length: n }, () => b64[Math.floor(r() * b64.length)]).join("");
    const literals = Array.from({ length: 300 }, () => pick(8).toLowerCase());
    const search = new SampledSearch(literals);
    const multi = new MultiSearch(literals);
    for (let offset = 0; offset < 24; offset++) {
      let text = pick(offset);
      for (let k = 0; k < 40; k++) text += mixCase(r, literals[Math.floor(r() * literals.length)]!) + pick(Math.floor(r() * 30));
      const expected: string[] = [];
      multi.scanBytes(Buffer.from(text, "latin1"), (m) => void expected.push(`${m.literal}@${m.start}`));
      const got = found(search, text);
      expect(got.length).toBeGreaterThanOrEqual(40);
      expect([...got].sort()).toEqual([...expected].sort());
      expect(got).toEqual(naive(text, literals));
    }
  });

  test("every byte's case is found through the caseless block hash", () => {
    for (let c = 0; c < 256; c++) {
      const upper = String.fromCharCode(c);
      const lower = upper.toLowerCase();
      if (lower.length !== 1 || lower.charCodeAt(0) > 0xff) continue;
      const literals = [`${lower.repeat(4)}zz`, `zz${lower}${lower}z`];
      const search = new SampledSearch(literals);
      for (const text of [`..${upper.repeat(4)}ZZ.`, `ZZ${upper}${upper}Z`]) {
        expect(found(search, text)).toEqual(naive(text, literals));
        expect(found(search, text).length).toBeGreaterThan(0);
      }
    }
  });

  test("stops when told to, and refuses literals shorter than a gram", () => {
    const search = new SampledSearch(["abcdefgh", "cdefghij"]);
    const seen: number[] = [];
    search.scanBytes(Buffer.from("xxabcdefghijxxabcdefgh"), (m) => {
      seen.push(m.start);
      return true;
    });
    expect(seen).toEqual([2]);
    expect(search.hasAny(Buffer.from("abcdefg"))).toBe(false);
    expect(search.hasAny(Buffer.from(""))).toBe(false);
    expect(() => new SampledSearch(["abc", "abcdef"])).toThrow();
  });
});
