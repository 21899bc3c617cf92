// The stream scrubber and guard driven over a text cut at given offsets, for the unit tests of
// src/proxy/secret-streams.ts (stream-split, stream-sampled, scrub-partial).
import { type Pattern, StreamScrubber } from "../../src/proxy/secrets.ts";

/** `text` pushed through a StreamScrubber in pieces cut at `cuts` (ascending), and its end. */
export function streamed(patterns: readonly Pattern[], text: string, cuts: readonly number[], masking = false): string {
  const scrubber = new StreamScrubber(patterns, masking);
  let out = "";
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    for (const piece of scrubber.pushPieces(Buffer.from(text.slice(at, cut), "latin1"))) out += piece.toString("latin1");
    at = cut;
  }
  return out + scrubber.end().toString("latin1");
}

/** A scrubbed text without its `[REDACTED:KEY]` markers. */
export const unmarked = (s: string): string => s.replace(/\[REDACTED:[A-Z0-9_]+\]/g, "");

/** Whether every character of `small` stands in `big` in the same order. */
export function isSubsequence(small: string, big: string): boolean {
  let at = 0;
  for (const ch of small) {
    at = big.indexOf(ch, at);
    if (at < 0) return false;
    at++;
  }
  return true;
}
