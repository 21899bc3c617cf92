// The multi-literal searcher (src/proxy/search.ts) against a plain indexOf over lower-cased text:
// random literals and texts made of the same few characters (the worst case for shift tables),
// every occurrence found, overlapping ones too, case-insensitively.
import { describe, expect, test } from "bun:test";
import { MultiSearch } from "../../src/proxy/search.ts";
import { prng } from "../support/random.ts";

function naive(text: string, literals: readonly string[]): string[] {
  const folded = text.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < folded.length; i++) for (let l = 0; l < literals.length; l++) if (folded.startsWith(literals[l]!, i)) out.push(`${l}@${i}`);
  return out.sort();
}

describe("MultiSearch", () => {
  test("finds every occurrence a plain search finds, on small alphabets and random lengths", () => {
    const r = prng(7);
    for (let round = 0; round < 300; round++) {
      const alphabet = round % 2 ? "abAB" : "abcdefXYZ019%";
      const pick = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
      const literals = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(3 + Math.floor(r() * 8)).toLowerCase());
      const text = pick(Math.floor(r() * 300));
      const found: string[] = [];
      new MultiSearch(literals).scan(text, (m) => void found.push(`${m.literal}@${m.start}`));
      const expected = naive(text, literals);
      // Duplicate literals: the searcher reports each index; compare as sets of (text, position).
      const asText = (xs: string[]) => [...new Set(xs.map((x) => `${literals[Number(x.split("@")[0])]}@${x.split("@")[1]}`))].sort();
      expect(asText(found)).toEqual(asText(expected));
    }
  });

  test("scanBytes finds over bytes exactly what scan finds over the same latin1 text", () => {
    const r = prng(11);
    for (let round = 0; round < 300; round++) {
      const alphabet = round % 2 ? "abAB\u00c9\u00e9" : "abcdefXYZ019%\u00ff";
      const pick = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
      const literals = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(3 + Math.floor(r() * 8)).toLowerCase());
      const text = pick(Math.floor(r() * 300));
      const search = new MultiSearch(literals);
      const fromText: string[] = [];
      const fromBytes: string[] = [];
      search.scan(text, (m) => void fromText.push(`${m.literal}@${m.start}-${m.end}`));
      search.scanBytes(Buffer.from(text, "latin1"), (m) => void fromBytes.push(`${m.literal}@${m.start}-${m.end}`));
      expect(fromBytes).toEqual(fromText);
    }
  });

  test("first() is the leftmost match, the longest there", () => {
    const s = new MultiSearch(["token", "tokenabc", "xyzxyz"]);
    expect(s.first("..TOKENABC..xyzxyz")).toEqual({ literal: 1, start: 2, end: 10 });
    expect(s.first("nothing here")).toBeNull();
    expect(s.first("tok")).toBeNull();
  });

  test("every byte's case is found through the caseless block hash, in strings and in bytes", () => {
    for (let c = 0; c < 256; c++) {
      const upper = String.fromCharCode(c);
      const lower = upper.toLowerCase();
      if (lower.length !== 1 || lower.charCodeAt(0) > 0xff) continue;
      const s = new MultiSearch([`${lower.repeat(4)}zz`]);
      expect(s.first(`..${upper.repeat(4)}ZZ`)?.start).toBe(2);
      const bytes = Buffer.from(`..${upper.repeat(4)}ZZ`, "latin1");
      const starts: number[] = [];
      s.scanBytes(bytes, (m) => void starts.push(m.start));
      expect(starts).toEqual([2]);
    }
  });

  test("Latin-1 letters fold too; other bytes are themselves", () => {
    const s = new MultiSearch(["çaféø\u0000\u00ff"]);
    expect(s.first("x ÇAFÉØ\u0000\u00ff y")?.start).toBe(2);
  });
});
