// Finding, scrubbing and masking values in text read whole, and judging the end of a text a
// stream must hold back (a value, a head or a tail the next chunk may complete). See secrets.ts.
import { decodedViews, partialEscapeLength } from "./escapes.ts";
import { lenientViews } from "./lenient-views.ts";
import { foldCode } from "./search.ts";
import { type Compiled, compiled, decodedWindows, firstFull, PIECE_ANYWHERE, PIECE_LENGTH, pieceCode, REST_LENGTH, spelledTail } from "./secret-compiled.ts";
import { MIN_SECRET_LENGTH, PARTIAL_LENGTH, type Pattern } from "./secret-forms.ts";

/** A value found in a text: its pattern and where it is in that text (source coordinates). */
export interface Hit {
  readonly pattern: Pattern;
  readonly start: number;
  readonly end: number;
  /** A cut value's span runs past the end of the text: a stream must hold it until it is whole. */
  readonly open?: boolean;
}

/** The first pattern found in `text` (latin1), in any view, or null. */
export function findSecret(text: string, patterns: readonly Pattern[]): Pattern | null {
  if (patterns.length === 0 || text.length === 0) return null;
  const c = compiled(patterns);
  const raw = firstFull(c, text);
  if (raw) return raw;
  for (const { view } of decodedWindows(text, c.longest, c.alphabet)) {
    const hit = firstFull(c, view.text);
    if (hit) return hit;
  }
  return null;
}

/**
 * The guard's search of text it reads whole: the first whole value in `text` (as is, decoded, or
 * in a lenient view: lenient-views.ts), and the rests of the values whose first PIECE_ANYWHERE or
 * more characters stand anywhere in it (as is) with the rest missing: a value cut in two, whose
 * second half may come in another field or the next request.
 */
export function guardScan(text: string, patterns: readonly Pattern[]): { hit: Pattern | null; rests: Pattern[] } {
  if (patterns.length === 0 || text.length === 0) return { hit: null, rests: [] };
  const c = compiled(patterns);
  const rests: Pattern[] = [];
  let hit: Pattern | null = null;
  c.withPieces().scan(text, (m) => {
    if (m.literal < c.fullCount) {
      hit = c.literals[m.literal]!;
      return true;
    }
    const p = c.pieceOf[m.literal - c.fullCount]!;
    // How far the form goes on from its first piece.
    let k = PIECE_ANYWHERE;
    while (k < p.bytes.length && m.start + k < text.length && foldCode(text.charCodeAt(m.start + k)) === p.bytes.charCodeAt(k)) k++;
    if (k < p.bytes.length && p.bytes.length - k >= REST_LENGTH && rests.length < 64) rests.push({ key: p.key, bytes: p.bytes.slice(k), form: `${p.form}, in pieces` });
    return false;
  });
  if (hit) return { hit, rests };
  // The decoded views (the raw text was searched above), then the lenient ones.
  for (const { view } of decodedWindows(text, c.longest, c.alphabet)) {
    const found = firstFull(c, view.text);
    if (found) return { hit: found, rests };
  }
  for (const view of lenientViews(text)) {
    const found = findSecret(view, patterns);
    if (found) return { hit: found, rests };
  }
  return { hit: null, rests };
}

/**
 * Every value in `text`, and every head or tail of one (PARTIAL_LENGTH characters or more), in
 * every view, as spans of `text` (possibly overlapping): what scrubbing replaces.
 */
export function findAll(text: string, patterns: readonly Pattern[], partials = true): Hit[] {
  if (patterns.length === 0 || text.length === 0) return [];
  const c = compiled(patterns);
  const hits: Hit[] = [];
  const scan = (t: string, found: (pattern: Pattern, start: number, end: number) => void) =>
    partials ? scrubScan(c, t, found) : c.search.scan(t, (m) => void found(c.literals[m.literal]!, m.start, m.end));
  // A cut value's span (scrubScan) may reach past either end of what is scanned: clamped, and
  // marked open when it runs past the end.
  scan(text, (pattern, start, end) => void hits.push({ pattern, start: Math.max(0, start), end: Math.min(end, text.length), ...(end > text.length ? { open: true } : {}) }));
  for (const { view, offset } of decodedWindows(text, c.longest, c.alphabet)) {
    scan(view.text, (pattern, start, end) => {
      const open = end > view.text.length;
      hits.push({ pattern, start: offset + view.toSource(Math.max(0, start)), end: offset + view.toSourceEnd(Math.min(end, view.text.length)), ...(open ? { open } : {}) });
    });
  }
  return hits;
}

/**
 * Whole values, heads and tails in `text` as is. A head is found by its first PARTIAL_LENGTH
 * characters and counts when it runs on, matching, to PARTIAL_LENGTH past the public prefix; a tail
 * by its last PARTIAL_LENGTH. Either is replaced over the form's whole length from where it stands
 * (a head forward, a tail back), whatever follows: a span that stopped where the match stops would
 * tell the agent, one character at a time, whether its guess continues the value (a red team read a
 * whole key that way through an endpoint that echoed its input).
 */
function scrubScan(c: Compiled, text: string, found: (pattern: Pattern, start: number, end: number) => void): void {
  const { search, edges } = c.scrubSearch();
  search.scan(text, (m) => {
    if (m.literal < c.fullCount) return void found(c.literals[m.literal]!, m.start, m.end);
    for (const { pattern, head, min } of edges[m.literal - c.fullCount]!) {
      const form = pattern.bytes;
      let k = PARTIAL_LENGTH;
      if (head) {
        while (k < min && m.start + k < text.length && foldCode(text.charCodeAt(m.start + k)) === form.charCodeAt(k)) k++;
        if (k >= min) found(pattern, m.start, m.start + form.length);
        // Too short to tell yet at the end of the text: a stream holds it (partialSuffix).
      } else {
        found(pattern, m.end - form.length, m.end);
      }
    }
  });
}

/** Whether scrubbing would change `text` (a value, a head or a tail of one, in any view). */
export function hasScrubbable(text: string, patterns: readonly Pattern[]): boolean {
  return findAll(text, patterns).length > 0;
}

/** `text` with every span in `hits` (before `cut`) replaced by `[REDACTED:KEY]`. */
export function redact(text: string, hits: readonly Hit[], cut = text.length): string {
  const spans = hits.filter((h) => h.end <= cut).sort((a, b) => a.start - b.start || b.end - a.end);
  if (spans.length === 0) return text.slice(0, cut);
  const parts: string[] = [];
  let at = 0;
  for (const h of spans) {
    if (h.end <= at) continue; // inside a span already replaced
    if (h.start < at) {
      // Overlaps the previous span: extend it.
      at = h.end;
      continue;
    }
    parts.push(text.slice(at, h.start), `[REDACTED:${h.pattern.key}]`);
    at = h.end;
  }
  parts.push(text.slice(at, cut));
  return parts.join("");
}

/**
 * What stands in for a value inside a ranged part: the same number of bytes (so every other byte
 * keeps the upstream's offset), the marker `[REDACTED:KEY]` padded with `*` or cut to the
 * value's length. It depends only on where the value lies, so a value cut by a range edge is
 * masked the same way in either part.
 */
export function maskFor(key: string, length: number): string {
  const marker = `[REDACTED:${key}]`;
  return marker.length >= length ? marker.slice(0, length) : marker + "*".repeat(length - marker.length);
}

/** `text` (before `cut`) with every span in `hits` masked in place (maskFor): its length is kept. */
export function mask(text: string, hits: readonly Hit[], cut = text.length): string {
  const spans = hits.filter((h) => h.end <= cut).sort((a, b) => a.start - b.start || b.end - a.end);
  if (spans.length === 0) return text.slice(0, cut);
  const parts: string[] = [];
  /** The end of what is written; the span being masked (overlapping spans are one, under the first's key). */
  let at = 0;
  let open: { key: string; start: number; end: number } | null = null;
  for (const h of spans) {
    if (open && h.start < open.end) {
      open.end = Math.max(open.end, h.end);
      continue;
    }
    if (open) {
      parts.push(maskFor(open.key, open.end - open.start));
      at = open.end;
    }
    parts.push(text.slice(at, h.start));
    open = { key: h.pattern.key, start: h.start, end: h.end };
  }
  parts.push(maskFor(open!.key, open!.end - open!.start), text.slice(open!.end, cut));
  return parts.join("");
}

/**
 * `text` with every value, and every head and tail of one, masked in place (maskFor): the same
 * length, the same offsets. `partials` false: whole values only.
 */
export function maskText(text: string, patterns: readonly Pattern[], partials = true): string {
  if (patterns.length === 0) return text;
  return mask(text, findAll(text, patterns, partials));
}

/**
 * `text` with every value, and every head and tail of one (PARTIAL_LENGTH characters or more),
 * replaced by `[REDACTED:KEY]`. `partials` false: whole values only.
 */
export function scrubText(text: string, patterns: readonly Pattern[], partials = true): string {
  if (patterns.length === 0) return text;
  return redact(text, findAll(text, patterns, partials));
}

/** How many characters at the end of a folded text could be the start of a pattern. */
export function foldedPartial(c: Compiled, folded: string, minimum = 1): number {
  for (let i = Math.max(0, folded.length - c.longest + 1); i <= folded.length - minimum; i++) {
    // A tail of PIECE_LENGTH or more must begin with some pattern's first piece (one set lookup,
    // of a number when every first piece is PIECE_LENGTH long: no substring per position).
    if (folded.length - i >= PIECE_LENGTH && !(c.piecesAreCodes ? c.firstPieceCodes.has(pieceCode(folded, i)) : c.firstPieces.has(folded.slice(i, i + PIECE_LENGTH)))) continue;
    const candidates = c.byFirst.get(folded[i]!);
    if (!candidates) continue;
    const tail = folded.slice(i);
    for (const p of candidates) if (p.bytes.length > tail.length && p.bytes.startsWith(tail) && tail.length >= Math.min(minimum, p.bytes.length)) return folded.length - i;
  }
  return 0;
}

/**
 * How many characters at the end of `text` could be the start of a pattern in any view (or an
 * escape the next chunk completes): the guard holds those back (the scrubber's hold-back reads
 * bytes only: secret-streams.ts holdBack).
 */
export function partialSuffix(text: string, patterns: readonly Pattern[]): number {
  if (patterns.length === 0) return 0;
  const c = compiled(patterns);
  const tail = spelledTail(text, c.longest);
  // An escape cut in half (`…6L%3`) is held, and so is whatever it may continue.
  const escape = partialEscapeLength(tail);
  const base = tail.slice(0, tail.length - escape);
  const held = (folded: string) => foldedPartial(c, folded);
  let hold = held(base.toLowerCase());
  for (const view of decodedViews(base)) {
    const partial = held(view.text.toLowerCase());
    if (partial > 0) hold = Math.max(hold, base.length - view.toSource(view.text.length - partial));
  }
  return hold + escape;
}

/**
 * The rests of the values whose first piece `text` ends with (in the text as is or decoded), as
 * patterns to look for in the other fields of a request and in the next request to the host.
 * Empty for most texts.
 */
export function openRests(text: string, patterns: readonly Pattern[]): Pattern[] {
  if (patterns.length === 0 || text.length < PIECE_LENGTH) return [];
  const c = compiled(patterns);
  const tail = spelledTail(text, c.longest);
  const out: Pattern[] = [];
  const views = [tail, ...(/[%\\]/.test(tail) ? decodedViews(tail).map((v) => v.text) : [])];
  for (const view of views) {
    const folded = view.toLowerCase();
    for (let i = Math.max(0, folded.length - c.longest + 1); i <= folded.length - PIECE_LENGTH; i++) {
      if (!c.firstPieceCodes.has(pieceCode(folded, i))) continue;
      const piece = folded.slice(i);
      for (const p of c.byFirst.get(folded[i]!) ?? []) {
        if (p.bytes.length - piece.length >= REST_LENGTH && p.bytes.startsWith(piece)) out.push({ key: p.key, bytes: p.bytes.slice(piece.length), form: `${p.form}, in pieces` });
      }
    }
  }
  return out;
}

/**
 * Whether `text` ends with a good part of a value: at least half of some form (and at least
 * MIN_SECRET_LENGTH characters). A body may not end with one: the rest would follow elsewhere.
 */
export function endsWithPartValue(text: string, patterns: readonly Pattern[]): Pattern | null {
  if (patterns.length === 0) return null;
  const c = compiled(patterns);
  const tail = spelledTail(text, c.longest);
  const views = [tail, ...decodedViews(tail).map((v) => v.text)];
  for (const view of views) {
    const folded = view.toLowerCase();
    for (let i = Math.max(0, folded.length - c.longest + 1); i < folded.length; i++) {
      const rest = folded.slice(i);
      for (const p of c.byFirst.get(folded[i]!) ?? []) {
        if (p.bytes.length > rest.length && p.bytes.startsWith(rest) && rest.length >= Math.max(MIN_SECRET_LENGTH, Math.ceil(p.bytes.length / 2))) return p;
      }
    }
  }
  return null;
}
