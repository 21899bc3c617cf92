// The patterns compiled once for searching (search.ts's MultiSearch over their literals, the
// scrubber's heads and tails, the hold-back tables), and the decoded windows around escapes in
// which a spelled value is looked for. Used by secret-find.ts (text) and secret-streams.ts.
import { type DecodedView, decodedViews, escapePositions, MAX_ESCAPE_EXPANSION } from "./escapes.ts";
import { escapePositionsIn } from "./escape-bytes.ts";
import { foldCode, type Match, MultiSearch, SampledSearch } from "./search.ts";
import { PARTIAL_LENGTH, type Pattern } from "./secret-forms.ts";

/** A head or a tail literal of scrubSearch: the first or last PARTIAL_LENGTH characters of `pattern`. */
export interface Edge {
  readonly pattern: Pattern;
  readonly head: boolean;
  /** How long a run must be to be scrubbed: PARTIAL_LENGTH, past the public prefix for a head. */
  readonly min: number;
}

/**
 * The patterns compiled once: one multi-literal searcher over every distinct literal (search.ts,
 * case-insensitive, one pass), the pattern behind each literal, and the patterns by their first
 * character for the hold-back check.
 */
export interface Compiled {
  readonly search: MultiSearch;
  /** The pattern for each literal index of `search` below `fullCount`. */
  readonly literals: readonly Pattern[];
  /** Literals from this index on are first pieces: the first PIECE_ANYWHERE characters of `pieceOf[i - fullCount]`. */
  readonly fullCount: number;
  readonly pieceOf: readonly Pattern[];
  /**
   * Whole values and first pieces together, for the guard's pass (guardScan). Apart from `search`:
   * the pieces' short length would shorten every shift of the scrubber's search too.
   */
  withPieces(): MultiSearch;
  /**
   * Whole values and their PARTIAL_LENGTH-character heads and tails, for scrubbing (scrubScan): a
   * value an upstream echoed cut short is replaced too. Apart from `search`: the short literals
   * shorten every shift, and the guard does not need them. With the anchors the streams search
   * a chunk for first (ScrubSearch).
   */
  scrubSearch(): ScrubSearch;
  /**
   * The whole values again, for the stream guard's search of a chunk as it lies (same literal
   * indices as `search`): by sampling (SampledSearch) where every literal is 4 characters or more,
   * which reads one gram in 13 bytes for values of 16; else `search` itself.
   */
  bytesSearch(): ByteSearch;
  readonly byFirst: Map<string, Pattern[]>;
  readonly longest: number;
  /** The first PIECE_LENGTH characters of every pattern: where a piece of a value may start. */
  readonly firstPieces: Set<string>;
  /** The same first pieces as numbers (four latin1 codes), to test a position without a substring. */
  readonly firstPieceCodes: Set<number>;
  /** Every first piece is PIECE_LENGTH long, so `firstPieceCodes` holds them all. */
  readonly piecesAreCodes: boolean;
  /** Bytes (folded) that occur in some literal: an escape that decodes to none of them cannot be in a value. */
  readonly alphabet: Uint8Array;
}

/** A searcher over bytes: MultiSearch, or SampledSearch for literals of 4 characters or more. */
export interface ByteSearch {
  scanBytes(bytes: Uint8Array, found: (m: Match) => boolean | void): void;
  hasAny(bytes: Uint8Array): boolean;
}

export interface ScrubSearch {
  readonly search: MultiSearch;
  readonly edges: readonly (readonly Edge[])[];
  /**
   * The anchors, for the streams' test of whether scrubbing would find anything in bytes as they
   * are: every head and tail literal, and every whole value no longer than one (it has none). A
   * longer whole value begins with its head, so whatever `search` finds begins with an anchor,
   * and a chunk holding none has nothing to scrub as is. All at most PARTIAL_LENGTH characters,
   * searched by sampling (SampledSearch) where all are 4 or more.
   */
  readonly anchors: ByteSearch;
  /** The longest anchor's length: one that starts before a chunk ends within this less one of it. */
  readonly anchorLongest: number;
}

const compiledCache = new WeakMap<readonly Pattern[], Compiled>();

/** Four characters of `text` at `at` as one number (the guard reads latin1: every code is a byte). */
export function pieceCode(text: string, at: number): number {
  return ((text.charCodeAt(at) * 256 + text.charCodeAt(at + 1)) * 256 + text.charCodeAt(at + 2)) * 256 + text.charCodeAt(at + 3);
}

export function compiled(patterns: readonly Pattern[]): Compiled {
  let found = compiledCache.get(patterns);
  if (found) return found;
  const byText = new Map<string, Pattern>();
  const byFirst = new Map<string, Pattern[]>();
  let longest = 0;
  // Longest first: at one position the longer literal wins.
  for (const p of [...patterns].sort((a, b) => b.bytes.length - a.bytes.length)) {
    if (byText.has(p.bytes)) continue;
    byText.set(p.bytes, p);
    byFirst.set(p.bytes[0]!, [...(byFirst.get(p.bytes[0]!) ?? []), p]);
    longest = Math.max(longest, p.bytes.length);
  }
  const literals = [...byText.values()];
  const firstPieces = new Set([...byText.keys()].map((t) => t.slice(0, PIECE_LENGTH)));
  const firstPieceCodes = new Set([...firstPieces].filter((t) => t.length === PIECE_LENGTH).map((t) => pieceCode(t, 0)));
  // First pieces, searched in the same pass: where one stands, the rest of its form may follow in
  // another field or request (see guardScan).
  const pieceOf = literals.filter((p) => p.bytes.length >= PIECE_ANYWHERE + REST_LENGTH);
  const search = new MultiSearch(literals.map((p) => p.bytes));
  // Built on the guard's first use: a one-off pattern list (the rests looked for) never needs it.
  let pieces: MultiSearch | null = null;
  const withPieces = () => (pieces ??= new MultiSearch([...literals.map((p) => p.bytes), ...pieceOf.map((p) => p.bytes.slice(0, PIECE_ANYWHERE))]));
  const alphabet = new Uint8Array(256);
  for (const t of byText.keys()) for (let i = 0; i < t.length; i++) alphabet[t.charCodeAt(i) & 0xff] = 1;
  const piecesAreCodes = firstPieceCodes.size === firstPieces.size;
  let scrubbing: ScrubSearch | null = null;
  const scrubSearch = () => {
    if (scrubbing) return scrubbing;
    // One literal per distinct head or tail (base64 and base64url, a value and its core share
    // many): fewer literals, fewer short shifts.
    const byEdge = new Map<string, Edge[]>();
    const add = (text: string, edge: Edge) => byEdge.set(text, [...(byEdge.get(text) ?? []), edge]);
    for (const p of literals) {
      if (p.bytes.length <= PARTIAL_LENGTH) continue;
      if (!p.headless) add(p.bytes.slice(0, PARTIAL_LENGTH), { pattern: p, head: true, min: PARTIAL_LENGTH + (p.prefix ?? 0) });
      add(p.bytes.slice(-PARTIAL_LENGTH), { pattern: p, head: false, min: PARTIAL_LENGTH });
    }
    const anchors = [...new Set([...literals.filter((p) => p.bytes.length <= PARTIAL_LENGTH).map((p) => p.bytes), ...byEdge.keys()])];
    scrubbing = {
      search: new MultiSearch([...literals.map((p) => p.bytes), ...byEdge.keys()]),
      edges: [...byEdge.values()],
      anchors: anchors.every((a) => a.length >= 4) ? new SampledSearch(anchors) : new MultiSearch(anchors),
      anchorLongest: Math.max(...anchors.map((a) => a.length)),
    };
    return scrubbing;
  };
  let sampled: ByteSearch | null = null;
  const bytesSearch = () => (sampled ??= literals.every((p) => p.bytes.length >= 4) ? new SampledSearch(literals.map((p) => p.bytes)) : search);
  found = { search, withPieces, scrubSearch, bytesSearch, literals, fullCount: literals.length, pieceOf, byFirst, longest, firstPieces, firstPieceCodes, piecesAreCodes, alphabet };
  compiledCache.set(patterns, found);
  return found;
}

/**
 * How many source characters one byte of a value can take: an escape spells a byte in up to 6,
 * and with every character of it escaped again, three rounds deep, 6 × 6 × 6.
 */
export const MAX_SPELLING_FACTOR = MAX_ESCAPE_EXPANSION ** 3;

/** The longest any pattern can be spelled in source text (every byte escaped, three rounds deep). */
export function longestSpelling(patterns: readonly Pattern[]): number {
  return patterns.length === 0 ? 0 : compiled(patterns).longest * MAX_SPELLING_FACTOR;
}

/**
 * The end of `text` that may hold the start of a spelled value: the longest form plus 9 characters
 * for every escape in reach (as the decoded windows reckon), so plain text keeps a short tail and
 * a run of nested escapes a long one (up to the longest spelling).
 */
export function spelledTail(text: string, longest: number): string {
  const most = Math.min(text.length, longest * MAX_SPELLING_FACTOR);
  let reach = Math.min(most, longest * MAX_ESCAPE_EXPANSION);
  // Grows while the escapes it takes in ask for more (plain text: one scan of a short tail).
  for (;;) {
    const wanted = Math.min(most, longest * MAX_ESCAPE_EXPANSION + 9 * escapePositions(text.slice(text.length - reach)).length);
    if (wanted <= reach) break;
    reach = wanted;
  }
  return text.slice(text.length - reach);
}

/** spelledTail of the latin1 text of `bytes`, as a string of that tail only. */
export function spelledTailOf(bytes: Uint8Array, longest: number): string {
  const n = bytes.length;
  const most = Math.min(n, longest * MAX_SPELLING_FACTOR);
  let reach = Math.min(most, longest * MAX_ESCAPE_EXPANSION);
  for (;;) {
    const wanted = Math.min(most, longest * MAX_ESCAPE_EXPANSION + 9 * escapePositionsIn(bytes, n - reach, n).length);
    if (wanted <= reach) break;
    reach = wanted;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + n - reach, reach).toString("latin1");
}

/**
 * Every stretch of `text` around an escape, decoded: a value seen only decoded spans an escape,
 * so it lies within `longest` decoded characters of it on either side. Raw, that is `longest`
 * characters plus 9 more for every escape in between (one character takes at most 10 raw ones
 * over three rounds: `\u00252574` is `%2574`, then `%74`, then `t`): the window grows until it
 * holds all the escapes it must. Most text has no escape, and binary
 * text a few, so only these windows are decoded, never the whole text.
 */
export function* decodedWindows(text: string, longest: number, alphabet: Uint8Array): Generator<{ view: DecodedView; offset: number }> {
  // An escape matters only if what it decodes to can be in a value, or can start another round.
  const positions = escapePositions(text).filter((at) => mayBeInValue(text, at, alphabet));
  for (const [from, to] of escapeSpans(positions, text.length, longest)) for (const view of decodedViews(text.slice(from, to))) yield { view, offset: from };
}

/** decodedWindows of the latin1 text of `bytes`, making strings only of the windows. */
export function* decodedWindowsOf(bytes: Buffer, longest: number, alphabet: Uint8Array): Generator<{ view: DecodedView; offset: number }> {
  const positions = escapePositionsIn(bytes).filter((at) => mayBeInValue(bytes.toString("latin1", at, Math.min(bytes.length, at + 6)), 0, alphabet));
  for (const [from, to] of escapeSpans(positions, bytes.length, longest)) for (const view of decodedViews(bytes.toString("latin1", from, to))) yield { view, offset: from };
}

/** The windows around the escapes at `positions` of a text `length` long (see decodedWindows), merged. */
function escapeSpans(positions: readonly number[], length: number, longest: number): [number, number][] {
  const extra = 9;
  const spans: [number, number][] = [];
  for (let i = 0; i < positions.length; i++) {
    const at = positions[i]!;
    let from = at - longest;
    for (let j = i - 1, seen = 0; j >= 0 && positions[j]! >= from; j--) from = at - longest - extra * ++seen;
    let to = at + MAX_ESCAPE_EXPANSION + longest;
    for (let j = i + 1, seen = 0; j < positions.length && positions[j]! < to; j++) to = at + MAX_ESCAPE_EXPANSION + longest + extra * ++seen;
    from = Math.max(0, from);
    to = Math.min(length, to);
    const last = spans[spans.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else spans.push([from, to]);
  }
  return spans;
}

const SIMPLE_ESCAPES: Record<string, number> = { '"': 0x22, "\\": 0x5c, "/": 0x2f, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 };

/** Whether the escape at `at` decodes to a byte some value holds, or to `%` or `\` (another round). */
function mayBeInValue(text: string, at: number, alphabet: Uint8Array): boolean {
  let code: number;
  if (text[at] === "%") code = Number.parseInt(text.slice(at + 1, at + 3), 16);
  else if (text[at + 1] === "x") code = Number.parseInt(text.slice(at + 2, at + 4), 16);
  else if (text[at + 1] === "u") {
    code = Number.parseInt(text.slice(at + 2, at + 6), 16);
    // A character past ASCII is several UTF-8 bytes, a surrogate half of a pair: not judged here.
    if (!(code < 0x80)) return true;
  } else code = SIMPLE_ESCAPES[text[at + 1]!] ?? -1;
  if (Number.isNaN(code) || code < 0) return true;
  return code === 0x25 || code === 0x5c || alphabet[foldCode(code)] === 1;
}

/** The leftmost whole value in `text` (the longest there). */
export function firstFull(c: Compiled, text: string): Pattern | null {
  const match = c.search.first(text);
  return match ? c.literals[match.literal]! : null;
}

/**
 * A value cut in two is looked for by its first piece: an end of a field that is the first
 * PIECE_LENGTH or more characters of a form, whose rest (REST_LENGTH or more characters, long
 * enough not to occur by chance) is then looked for anywhere else. Shorter pieces are not: three
 * characters of a key are in every text.
 */
export const PIECE_LENGTH = 4;
export const REST_LENGTH = 8;
/** A first piece found anywhere in a text (not only at a field's end) is at least this long. */
export const PIECE_ANYWHERE = 8;
