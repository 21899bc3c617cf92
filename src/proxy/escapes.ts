// What a server decodes before it reads a value, undone here so the guard and scrubbing see the
// value an agent spelled another way: percent-encoding of any character in any case (`%74ok_…`),
// JSON and JavaScript string escapes (`\u0074`, `\/`, `\x74`, surrogate pairs). Text is latin1 (one
// character per byte); a decoded escape becomes the UTF-8 bytes of what it stands for. The view
// keeps a map back to the text it came from, so scrubbing can replace the original spelling.

// One escape: %XX, \uXXXX, \xXX, or a one-character JSON escape.
const ESCAPE = /%[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\["\\/bfnrt]/g;
/** A cheap test before the decoder runs: most text has nothing to decode. */
const MAY_HAVE_ESCAPE = /%[0-9a-fA-F]{2}|\\[u"\\/bfnrtx]/;
/** A tail that may be the start of an escape completed by the next chunk. */
const PARTIAL_ESCAPE = /(?:%[0-9a-fA-F]?|\\(?:u[0-9a-fA-F]{0,3}|x[0-9a-fA-F]?)?)$/;

const SIMPLE: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** Decoded text and, for each decoded span that came from an escape, where it came from. */
export interface DecodedView {
  readonly text: string;
  /** The index in the source text where decoded index `i` (0..text.length) begins. */
  toSource(i: number): number;
  /** The index in the source text just after decoded character `i - 1` (an exclusive end). */
  toSourceEnd(i: number): number;
}

interface Segment {
  /** Start in the decoded text. */
  readonly at: number;
  /** Start in the source text. */
  readonly from: number;
  /** Decoded length and source length (equal for plain runs). */
  readonly length: number;
  readonly sourceLength: number;
  /** True when the span came from an escape; false for a run copied as is. */
  readonly escape: boolean;
}

function utf8Latin1(codePoint: number): string {
  return Buffer.from(String.fromCodePoint(codePoint), "utf8").toString("latin1");
}

/** One round of decoding, or null when the text holds no escape. */
function decodeOnce(text: string): DecodedView | null {
  if (!MAY_HAVE_ESCAPE.test(text)) return null;
  const parts: string[] = [];
  const segments: Segment[] = [];
  let at = 0;
  let last = 0;
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(text); m; m = ESCAPE.exec(text)) {
    let token = m[0];
    let decoded: string;
    if (token[0] === "%") decoded = String.fromCharCode(Number.parseInt(token.slice(1), 16));
    else if (token[1] === "x") decoded = String.fromCharCode(Number.parseInt(token.slice(2), 16));
    else if (token[1] === "u") {
      let unit = Number.parseInt(token.slice(2), 16);
      // A surrogate pair written as two escapes is one character.
      const next = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(text.slice(m.index + 6, m.index + 12));
      if (unit >= 0xd800 && unit <= 0xdbff && next) {
        unit = 0x10000 + ((unit - 0xd800) << 10) + (Number.parseInt(next[1]!, 16) - 0xdc00);
        token = text.slice(m.index, m.index + 12);
        ESCAPE.lastIndex = m.index + 12;
      }
      decoded = unit >= 0xd800 && unit <= 0xdfff ? "?" : utf8Latin1(unit);
    } else decoded = SIMPLE[token[1]!]!;
    if (m.index > last) {
      parts.push(text.slice(last, m.index));
      segments.push({ at, from: last, length: m.index - last, sourceLength: m.index - last, escape: false });
      at += m.index - last;
    }
    parts.push(decoded);
    segments.push({ at, from: m.index, length: decoded.length, sourceLength: token.length, escape: true });
    at += decoded.length;
    last = m.index + token.length;
  }
  if (segments.length === 0) return null;
  if (last < text.length) {
    parts.push(text.slice(last));
    segments.push({ at, from: last, length: text.length - last, sourceLength: text.length - last, escape: false });
  }
  const decodedText = parts.join("");
  const segmentAt = (i: number): Segment => {
    // The last segment starting at or before i.
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segments[mid]!.at <= i) lo = mid;
      else hi = mid - 1;
    }
    return segments[lo]!;
  };
  return {
    text: decodedText,
    toSource(i: number): number {
      if (i >= decodedText.length) return text.length;
      const s = segmentAt(i);
      // Inside a plain run the offset carries over; inside an escape, the escape's start.
      return s.escape ? s.from : s.from + (i - s.at);
    },
    toSourceEnd(i: number): number {
      if (i <= 0) return 0;
      const s = segmentAt(i - 1);
      return s.escape ? s.from + s.sourceLength : s.from + (i - s.at);
    },
  };
}

/** Decodings cap here: `%252574` is two rounds; a third is already an unusual server. */
const MAX_ROUNDS = 3;

/**
 * Every decoded view of `text`: one per round of decoding that changed something (so
 * double-encoded values are seen too), each mapping back to `text` itself.
 */
export function decodedViews(text: string): DecodedView[] {
  const views: DecodedView[] = [];
  let source = text;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = decodeOnce(source);
    if (!next) break;
    const outer = views[views.length - 1];
    views.push(outer ? composed(outer, next) : next);
    source = next.text;
  }
  return views;
}

/** `inner` decoded from `outer`'s text, mapped back to the text `outer` came from. */
function composed(outer: DecodedView, inner: DecodedView): DecodedView {
  return {
    text: inner.text,
    toSource: (i) => outer.toSource(inner.toSource(i)),
    toSourceEnd: (i) => outer.toSourceEnd(inner.toSourceEnd(i)),
  };
}

const ANY_ESCAPE = new RegExp(MAY_HAVE_ESCAPE.source, "g");

/** Where escapes start in `text` (a native scan; most text has none). */
export function escapePositions(text: string): number[] {
  const out: number[] = [];
  ANY_ESCAPE.lastIndex = 0;
  for (let m = ANY_ESCAPE.exec(text); m; m = ANY_ESCAPE.exec(text)) out.push(m.index);
  return out;
}

/** How many characters at the end of `text` may be an escape the next chunk completes. */
export function partialEscapeLength(text: string): number {
  const m = PARTIAL_ESCAPE.exec(text.slice(-6));
  return m ? m[0].length : 0;
}

/** The longest an escape spells one byte: `\u0074` is 6 characters for one. */
export const MAX_ESCAPE_EXPANSION = 6;
