// escapePositionsIn (src/proxy/escape-bytes.ts) against escapes.ts's escapePositions on the latin1
// text of the same bytes: the fast paths of the scrubber and the guard decide from it which
// windows of a chunk to decode, so it must find exactly the escapes the regular expression finds.
import { describe, expect, test } from "bun:test";
import { escapePositionsIn, hasEscapeByte } from "../../src/proxy/escape-bytes.ts";
import { escapePositions } from "../../src/proxy/escapes.ts";
import { prng } from "../support/random.ts";

describe("escapePositionsIn", () => {
  test("finds what the regular expression finds, on escape-dense random texts and sub-ranges", () => {
    const r = prng(21);
    const alphabet = '%\\u"/bfnrtx0123456789abcdefABCDEFgG \u00ff';
    for (let round = 0; round < 3000; round++) {
      const text = Array.from({ length: Math.floor(r() * 60) }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
      const bytes = Buffer.from(text, "latin1");
      expect(escapePositionsIn(bytes)).toEqual(escapePositions(text));
      const from = Math.floor(r() * (text.length + 1));
      const to = from + Math.floor(r() * (text.length - from + 1));
      expect(escapePositionsIn(bytes, from, to)).toEqual(escapePositions(text.slice(from, to)).map((at) => at + from));
      expect(hasEscapeByte(bytes, from, to)).toBe(/[%\\]/.test(text.slice(from, to)));
    }
  });

  test("the cases one by one", () => {
    const at = (text: string) => escapePositionsIn(Buffer.from(text, "latin1"));
    expect(at("%41%4")).toEqual([0]);
    expect(at("%%41")).toEqual([1]);
    expect(at("\\\\u0041")).toEqual([0]);
    expect(at("\\q\\n%zz%2f")).toEqual([2, 7]);
    expect(at("plain text")).toEqual([]);
  });
});
