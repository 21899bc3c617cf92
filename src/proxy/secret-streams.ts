// The stream classes: StreamScrubber (responses) and StreamGuard (request bodies), chunk by
// chunk, with a fast path for chunks with no escape in reach. See secrets.ts.
import { MAX_ESCAPE_EXPANSION } from "./escapes.ts";
import { hasEscapeByte } from "./escape-bytes.ts";
import { type Match } from "./search.ts";
import { type Compiled, compiled, decodedWindowsOf, firstFull, MAX_SPELLING_FACTOR, spelledTailOf } from "./secret-compiled.ts";
import { MAX_PUBLIC_PREFIX, PARTIAL_LENGTH, type Pattern } from "./secret-forms.ts";
import { endsWithPartValue, findAll, foldedPartial, mask, maskText, partialSuffix, redact, scrubText } from "./secret-find.ts";

/**
 * The fast path of the stream classes below: a chunk with no `%` or `\` (and a held tail with
 * none) has no escape to decode, so its only view is the bytes as they are, searched where they
 * lie (SampledSearch.scanBytes: the guard's whole values, the scrubber's anchors) without a latin1 string of the chunk, and the hold-back is judged from the bytes of
 * its end. Two native memchr scans decide it. Anything else takes the
 * general path (a string of the whole text, every view), which is what the fast path must equal.
 */
function hasEscapeChar(text: string): boolean {
  return text.includes("%") || text.includes("\\");
}

/** The leftmost whole value in `bytes` (the longest there), as `firstFull` finds it in their text. */
function firstFullIn(c: Compiled, bytes: Uint8Array): Match | null {
  let best: Match | null = null;
  c.bytesSearch().scanBytes(bytes, (m) => {
    if (best && m.start !== best.start) return true;
    if (!best || m.end > best.end) best = m;
    return false;
  });
  return best;
}

/** findSecret over the latin1 text of `bytes`, making strings only of the windows around escapes. */
function findSecretIn(c: Compiled, bytes: Buffer): Pattern | null {
  const raw = firstFullIn(c, bytes);
  if (raw) return c.literals[raw.literal]!;
  for (const { view } of decodedWindowsOf(bytes, c.longest, c.alphabet)) {
    const hit = firstFull(c, view.text);
    if (hit) return hit;
  }
  return null;
}

/**
 * Whether `bytes` may hold anything scrubbing replaces (a value, a head or a tail, in any view):
 * an anchor as they are (scrubSearch), or a value, head or tail in a decoded window.
 */
function hasScrubbableIn(c: Compiled, bytes: Buffer): boolean {
  const { search, anchors } = c.scrubSearch();
  if (anchors.hasAny(bytes)) return true;
  for (const { view } of decodedWindowsOf(bytes, c.longest, c.alphabet)) if (search.first(view.text)) return true;
  return false;
}

/** Whether a whole form stands in `before` + `chunk` (no escape in either), and the leftmost (the longest there). */
function firstRawAcross(c: Compiled, before: Uint8Array, chunk: Uint8Array): Match | null {
  const search = c.bytesSearch();
  let best: Match | null = null;
  const keep = (m: Match, limit: number) => {
    if (m.start >= limit || (best && m.start !== best.start)) return true;
    if (!best || m.end > best.end) best = m;
    return false;
  };
  if (before.length > 0) {
    // A form that starts in `before` ends within `longest - 1` bytes of the chunk.
    const joint = Buffer.concat([before, chunk.subarray(0, c.longest - 1)]);
    search.scanBytes(joint, (m) => keep(m, before.length));
    if (best) return best;
  }
  search.scanBytes(chunk, (m) => keep(m, Number.POSITIVE_INFINITY));
  return best;
}

/**
 * Whether an anchor of scrubSearch (a head, a tail, a value no longer than one) stands in
 * `before` + `chunk`: the scrubber's fast path has nothing to replace when none does.
 */
function anchorAcross(c: Compiled, before: Uint8Array, chunk: Uint8Array): boolean {
  const { anchors, anchorLongest } = c.scrubSearch();
  // One that starts in `before` ends within `anchorLongest - 1` bytes of the chunk.
  if (before.length > 0 && anchors.hasAny(Buffer.concat([before, chunk.subarray(0, anchorLongest - 1)]))) return true;
  return anchors.hasAny(chunk);
}

/** The last `n` bytes of `before` + `chunk` as latin1 text. */
function tailText(before: Uint8Array, chunk: Buffer, n: number): string {
  if (chunk.length >= n) return chunk.toString("latin1", chunk.length - n);
  const from = Math.max(0, before.length - (n - chunk.length));
  return Buffer.from(before.buffer, before.byteOffset + from, before.length - from).toString("latin1") + chunk.toString("latin1");
}

/**
 * The scrubber's hold-back reads only bytes, never the values: a hold that depended on whether the
 * end of a chunk is a piece of some value (as it did until session 6) told the agent, through what
 * arrived before the upstream paused and through how far back a tail's replacement could still
 * reach, one character of a value per guess (test/attacks/scrub-holdback-oracle). So the end held
 * is the run of bytes that may spell part of any value at all (letters, digits, the base64 and URL
 * signs, escapes, non-ASCII bytes), however long it is up to a fixed bound: HOLD_PLAIN characters,
 * the most of a value that can stand at an end before its head passes the bar and scrubbing holds
 * it as a cut value anyway (a public prefix and PARTIAL_LENGTH - 1); HOLD_SPELLED when the run
 * holds an escape, which spells a character in up to MAX_SPELLING_FACTOR. A run ended by a space,
 * a newline, a quote or a bracket is not held past it: server-sent events, lines and JSON flow on.
 */
const HOLD_CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const ch = String.fromCharCode(b);
  HOLD_CLASS[b] = b >= 0x80 || /[A-Za-z0-9]/.test(ch) || "-_.~+/=%\\".includes(ch) ? 1 : 0;
}
const HOLD_PLAIN = MAX_PUBLIC_PREFIX + PARTIAL_LENGTH - 1;
const HOLD_SPELLED = HOLD_PLAIN * MAX_SPELLING_FACTOR;

/** How many bytes at the end of `before` + `chunk` to hold back (see HOLD_CLASS). */
export function holdBack(before: Uint8Array, chunk: Uint8Array): number {
  const total = before.length + chunk.length;
  let cap = HOLD_PLAIN;
  let n = 0;
  while (n < total && n < cap) {
    const b = n < chunk.length ? chunk[chunk.length - 1 - n]! : before[before.length - 1 - (n - chunk.length)]!;
    if (HOLD_CLASS[b] === 0) break;
    if (b === 0x25 || b === 0x5c) cap = HOLD_SPELLED;
    n++;
  }
  return n;
}

const EMPTY = Buffer.alloc(0);

/**
 * Scrubs a stream chunk by chunk. Only the end that may still become a value, or a head or tail of
 * one, is held back, judged from the bytes alone (holdBack), so server-sent events and other
 * streams flow on. Bytes with nothing to replace go out as the same bytes (no re-encoding of the
 * chunk, and no copy of it: `pushPieces` hands out views of what came in).
 */
export class StreamScrubber {
  private pending: Buffer = EMPTY;

  /**
   * `masking`: a value is masked in place (maskFor) instead of replaced by the longer marker, so
   * the output is exactly as long as the input and every byte keeps its offset (ranged parts).
   */
  constructor(
    private readonly patterns: readonly Pattern[],
    private readonly masking = false,
  ) {}

  push(chunk: Buffer): Buffer {
    const pieces = this.pushPieces(chunk);
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /** What may go to the agent now, in order, as one or two buffers (the held tail, then the chunk's part). */
  pushPieces(chunk: Buffer): Buffer[] {
    const pending = this.pending;
    if (this.patterns.length > 0 && !hasEscapeByte(chunk) && !hasEscapeByte(pending)) {
      const c = compiled(this.patterns);
      // One pass for the anchors of whole values, heads and tails: anything found takes the general path.
      if (!anchorAcross(c, pending, chunk)) {
        const total = pending.length + chunk.length;
        const hold = holdBack(pending, chunk);
        const cut = total - hold;
        if (cut >= pending.length) {
          this.pending = Buffer.from(chunk.subarray(cut - pending.length));
          return pending.length === 0 ? [chunk.subarray(0, cut)] : [pending, chunk.subarray(0, cut - pending.length)];
        }
        this.pending = Buffer.concat([pending.subarray(cut), chunk]);
        return [pending.subarray(0, cut)];
      }
    }
    const bytes = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    // Escapes in reach and nothing to replace (JSON with \" and \n, binary bytes): the windows
    // around the escapes are decoded and searched.
    if (this.patterns.length > 0 && !hasScrubbableIn(compiled(this.patterns), bytes)) {
      const cut = bytes.length - holdBack(EMPTY, bytes);
      this.pending = Buffer.from(bytes.subarray(cut));
      return [bytes.subarray(0, cut)];
    }
    return [this.pushText(bytes)];
  }

  /** The general path: every view of the held tail and the chunk, values replaced. */
  private pushText(bytes: Buffer): Buffer {
    const text = bytes.toString("latin1");
    const hold = holdBack(EMPTY, bytes);
    const hits = findAll(text, this.patterns);
    // A value that would straddle the cut stays behind with the tail; moving the cut back may make
    // another, overlapping value straddle it, so this repeats until none does.
    let cut = text.length - hold;
    for (let moved = true; moved; ) {
      moved = false;
      for (const h of hits) {
        // A cut value's span that runs past what has arrived waits for the rest too.
        if (h.start < cut && (h.end > cut || h.open)) {
          cut = h.start;
          moved = true;
        }
      }
    }
    this.pending = Buffer.from(bytes.subarray(cut));
    if (hits.length === 0) return bytes.subarray(0, cut);
    return Buffer.from(this.masking ? mask(text, hits, cut) : redact(text, hits, cut), "latin1");
  }

  end(): Buffer {
    const held = this.pending.toString("latin1");
    const rest = this.masking ? maskText(held, this.patterns) : scrubText(held, this.patterns);
    this.pending = EMPTY;
    return Buffer.from(rest, "latin1");
  }
}

/**
 * Watches a stream for a value without changing it: returns what may be sent now (everything but
 * a tail that could be the start of a value) or the pattern found. `end` refuses a stream that
 * ends in a good part of a value, which may not leave either.
 */
export class StreamGuard {
  /**
   * Bytes held back, not sent yet (at least `holdAll` of them), as the views they arrived in: the
   * hold-back is not copied on every chunk.
   */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** The end of what was searched that a value arriving next could begin in (spelledTail). */
  private overlap = "";

  constructor(
    private readonly patterns: readonly Pattern[],
    private readonly holdAll = 0,
  ) {}

  push(chunk: Buffer): { send: Buffer } | { hit: Pattern } {
    // Only the new bytes and the overlap are searched: the held bytes before it were searched
    // already, and a long hold (`holdAll`) is for sending, not for searching again.
    let partial = 0;
    if (this.patterns.length === 0) this.overlap = "";
    else if (!hasEscapeChar(this.overlap) && !hasEscapeByte(chunk)) {
      const c = compiled(this.patterns);
      const before = Buffer.from(this.overlap, "latin1");
      const match = firstRawAcross(c, before, chunk);
      if (match) return { hit: c.literals[match.literal]! };
      // With no escape in reach, spelledTail is exactly the last `longest * 6` characters.
      this.overlap = tailText(before, chunk, Math.min(before.length + chunk.length, c.longest * MAX_ESCAPE_EXPANSION));
      partial = foldedPartial(c, this.overlap.slice(-c.longest).toLowerCase());
    } else {
      // Escapes in reach: the windows around them are decoded; no string of the whole chunk.
      const c = compiled(this.patterns);
      const bytes = this.overlap.length === 0 ? chunk : Buffer.concat([Buffer.from(this.overlap, "latin1"), chunk]);
      const hit = findSecretIn(c, bytes);
      if (hit) return { hit };
      this.overlap = spelledTailOf(bytes, c.longest);
      // partialSuffix reads only the spelled tail of what it is given.
      partial = partialSuffix(this.overlap, this.patterns);
    }
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    // With `holdAll`, a fixed tail is always kept, so the end can still be judged unsent.
    const hold = Math.min(this.pendingLength, Math.max(partial, this.holdAll));
    return { send: this.take(this.holdAll > 0 ? this.wholeChunks(this.pendingLength - hold) : this.pendingLength - hold) };
  }

  /**
   * Under a long fixed hold, how much of the `n` sendable bytes to send now: the held chunks that
   * fit whole (more stays held, which only holds more), so what goes is one chunk as it arrived
   * rather than a copy joining the end of one to the start of the next; or the part of the first
   * chunk when not even that one fits.
   */
  private wholeChunks(n: number): number {
    const first = this.pending[0];
    if (!first || n < first.length) return Math.max(0, n);
    let whole = 0;
    for (const held of this.pending) {
      if (whole + held.length > n) break;
      whole += held.length;
    }
    return whole;
  }

  /** The first `n` held bytes, no longer held: a view when they lie in one chunk. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const first = this.pending[0]!;
      if (first.length <= left) {
        out.push(first);
        this.pending.shift();
        left -= first.length;
      } else {
        out.push(first.subarray(0, left));
        this.pending[0] = first.subarray(left);
        left = 0;
      }
    }
    this.pendingLength -= n;
    return out.length === 1 ? out[0]! : Buffer.concat(out, n);
  }

  end(): { send: Buffer } | { hit: Pattern } {
    const rest = this.take(this.pendingLength);
    const part = endsWithPartValue(rest.toString("latin1"), this.patterns);
    if (part) return { hit: part };
    return { send: rest };
  }
}
