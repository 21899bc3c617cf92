// Many literals searched in one pass, case-insensitively, over latin1 text (one character per
// byte): Wu–Manber's shift table over 3-character blocks. Most windows of a body hold a block that
// starts no literal's first `m` characters, and the search moves `m - 2` characters at once
// without reading them; only a block that ends some literal's prefix is checked whole. A regular
// expression over 100 literals reads about 140 MiB/s of base64-like text here; this reads several
// times that, and ignores case as it reads (no lower-cased copy of each chunk): blocks hash
// caselessly, and only a candidate is compared byte by byte through the fold table.

const BLOCK = 3;
const TABLE_BITS = 16;
const TABLE_MASK = (1 << TABLE_BITS) - 1;

/** Latin1 code → its lower-case code (ASCII and the Latin-1 letters). */
const FOLD = new Uint8Array(256);
for (let c = 0; c < 256; c++) FOLD[c] = String.fromCharCode(c).toLowerCase().charCodeAt(0) & 0xff;

export function foldCode(code: number): number {
  return FOLD[code & 0xff]!;
}

/**
 * A block's hash, the same for every case of it: each code loses its 0x20 bit first. Folding maps
 * a code to itself or to itself plus 0x20 (A–Z, À–Þ), so a text block and the folded literal block
 * it matches hash alike; codes that differ only in that bit and are not case pairs (`-` and CR)
 * share a slot, which only shortens a shift. Without a fold table per byte, scanBytes reads a
 * block in one 32-bit load.
 */
const CASELESS = 0xdf;

function blockHash(a: number, b: number, c: number): number {
  const x = a & CASELESS;
  return ((x << 10) ^ ((b & CASELESS) << 5) ^ (c & CASELESS) ^ (x >> 3)) & TABLE_MASK;
}

export interface Match {
  /** Index of the literal in the list given to the searcher. */
  readonly literal: number;
  readonly start: number;
  readonly end: number;
}

export class MultiSearch {
  /** Literals folded to lower case, as char codes. */
  private readonly codes: Uint8Array[];
  /** The length every literal is at least: the window the shift table reasons about. */
  private readonly m: number;
  private readonly shift: Uint8Array;
  /** For a block hash with shift 0: the literals whose m-prefix ends in that block. */
  private readonly candidates = new Map<number, number[]>();

  constructor(literals: readonly string[]) {
    this.codes = literals.map((l) => Uint8Array.from(l, (ch) => FOLD[ch.charCodeAt(0) & 0xff]!));
    this.m = Math.max(BLOCK, Math.min(...this.codes.map((c) => c.length)));
    const longestShift = this.m - BLOCK + 1;
    this.shift = new Uint8Array(1 << TABLE_BITS).fill(Math.min(255, longestShift));
    this.codes.forEach((code, index) => {
      if (code.length < BLOCK) return;
      for (let j = BLOCK - 1; j < this.m; j++) {
        const h = blockHash(code[j - 2]!, code[j - 1]!, code[j]!);
        const s = this.m - 1 - j;
        if (s < this.shift[h]!) this.shift[h] = s;
        if (s === 0) {
          const list = this.candidates.get(h);
          if (list) list.push(index);
          else this.candidates.set(h, [index]);
        }
      }
    });
  }

  /** Whether literal `index` occurs at `start` (case-insensitively). */
  private matchesAt(text: string, start: number, index: number): boolean {
    const code = this.codes[index]!;
    if (start + code.length > text.length) return false;
    for (let k = 0; k < code.length; k++) if (FOLD[text.charCodeAt(start + k) & 0xff] !== code[k]) return false;
    return true;
  }

  /**
   * Calls `found` for every occurrence, in order of start (overlapping ones too); stops when it
   * returns true. Text shorter than the shortest literal has none.
   */
  scan(text: string, found: (m: Match) => boolean | void): void {
    const m = this.m;
    const n = text.length;
    const shift = this.shift;
    let pos = m - 1;
    while (pos < n) {
      const h = blockHash(text.charCodeAt(pos - 2), text.charCodeAt(pos - 1), text.charCodeAt(pos));
      const s = shift[h]!;
      if (s > 0) {
        pos += s;
        continue;
      }
      const start = pos - m + 1;
      const list = this.candidates.get(h);
      if (list) {
        for (const index of list) {
          if (this.matchesAt(text, start, index) && found({ literal: index, start, end: start + this.codes[index]!.length })) return;
        }
      }
      pos += 1;
    }
  }

  /**
   * `scan` over bytes (latin1 codes, as `scan` reads a latin1 string), so a body chunk is searched
   * where it lies, without a string copy of it. Kept apart from `scan` rather than one function over
   * both: a loop that sees two receiver types runs several times slower in JavaScriptCore.
   */
  scanBytes(bytes: Uint8Array, found: (m: Match) => boolean | void): void {
    const m = this.m;
    const n = bytes.length;
    const shift = this.shift;
    let pos = m - 1;
    while (pos < n) {
      const h = blockHash(bytes[pos - 2]!, bytes[pos - 1]!, bytes[pos]!);
      const s = shift[h]!;
      if (s > 0) {
        pos += s;
        continue;
      }
      const start = pos - m + 1;
      const list = this.candidates.get(h);
      if (list) {
        for (const index of list) {
          if (this.matchesBytesAt(bytes, start, index) && found({ literal: index, start, end: start + this.codes[index]!.length })) return;
        }
      }
      pos += 1;
    }
  }

  private matchesBytesAt(bytes: Uint8Array, start: number, index: number): boolean {
    const code = this.codes[index]!;
    if (start + code.length > bytes.length) return false;
    for (let k = 0; k < code.length; k++) if (FOLD[bytes[start + k]!] !== code[k]) return false;
    return true;
  }

  /** Whether any literal occurs in `bytes`. */
  hasAny(bytes: Uint8Array): boolean {
    let any = false;
    this.scanBytes(bytes, () => (any = true));
    return any;
  }

  /** The first occurrence (by start; the longest literal there), or null. */
  first(text: string): Match | null {
    let best: Match | null = null;
    this.scan(text, (match) => {
      if (best && match.start !== best.start) return true;
      if (!best || match.end > best.end) best = match;
      return false;
    });
    return best;
  }
}

/** SampledSearch reads 4-byte grams, one 32-bit load each, into a filter of 2^18 bits (32 KiB). */
const GRAM = 4;
const FILTER_BITS = 18;
/**
 * Candidate lists are kept per 2^12 slots (the filter's hash without its low 6 bits): a list is
 * read only for a probe the filter passes, and a few thousand grams leave most slots holding one
 * or none, in 16 KiB rather than 1 MiB (a guard built for one request's rests makes its own).
 */
const LIST_BITS = 12;
const LIST_SHIFT = FILTER_BITS - LIST_BITS;

/**
 * A gram's slot in SampledSearch's filter, the same for every case of it (each code loses its 0x20
 * bit, as blockHash): a multiplicative hash of the 4 bytes `v` holds (little-endian).
 */
function gramHash(v: number): number {
  return Math.imul(v & 0xdfdfdfdf, 0x9e3779b1) >>> (32 - FILTER_BITS);
}

/**
 * Literals searched by sampling: the scrubber's 8-character heads and tails, the stream guard's
 * whole values (secret-compiled.ts). Every occurrence of a literal at least `m` long covers `m`
 * characters, so it holds whole one of the 4-byte grams at every `m - 3`th position of the text:
 * only those grams are read, each looked up in a filter of the grams within the first `m`
 * characters of some literal, and a gram in the filter is checked through the literals and
 * offsets it stands at. Unlike MultiSearch's shifts, where each step waits on the table lookup
 * before it, the probes do not depend on one another, so the processor runs several at once:
 * two to three times MultiSearch's speed with `m` = 8, whose longest shift is 6 (issue 14). A
 * gram of 4 rather than 3: a filter of 3-byte blocks passes one probe in six of an alphanumeric
 * body, and every one passed costs a mispredicted branch.
 */
export class SampledSearch {
  /** Literals folded to lower case, as char codes. */
  private readonly codes: Uint8Array[];
  /** The length every literal is at least: the span each holds a sampled gram in. */
  private readonly m: number;
  /** Distance between sampled grams: `m - 3`. */
  private readonly stride: number;
  /** A bit set where some literal has a gram of that hash within its first `m` characters. */
  private readonly filter = new Int32Array((1 << FILTER_BITS) >>> 5);
  /** For each hash >> LIST_SHIFT: its candidates, `from[s]` to `from[s + 1]` in `literalOf` and `offsetOf`. */
  private readonly from = new Int32Array((1 << LIST_BITS) + 1);
  private readonly literalOf: Int32Array;
  /** Where in the literal the gram stands: an occurrence starts that far before the probe. */
  private readonly offsetOf: Int32Array;

  /** Every literal must be at least 4 characters long (a sampled gram's length). */
  constructor(literals: readonly string[]) {
    this.codes = literals.map((l) => Uint8Array.from(l, (ch) => FOLD[ch.charCodeAt(0) & 0xff]!));
    this.m = Math.min(...this.codes.map((c) => c.length));
    if (!(this.m >= GRAM)) throw new Error(`SampledSearch: every literal must be at least ${GRAM} characters long`);
    this.stride = this.m - GRAM + 1;
    // A counting sort by slot, no object per gram (a guard built for one request's rests, and every
    // test's pattern list, builds its own): within a slot by start (the largest offset first),
    // then by literal, so occurrences come in order of start.
    const grams = this.m - GRAM + 1;
    const count = this.codes.length * grams;
    const slotOf = new Int32Array(count);
    for (let offset = grams - 1, e = 0; offset >= 0; offset--) {
      for (let literal = 0; literal < this.codes.length; literal++, e++) {
        const code = this.codes[literal]!;
        const h = gramHash(code[offset]! | (code[offset + 1]! << 8) | (code[offset + 2]! << 16) | (code[offset + 3]! << 24));
        this.filter[h >>> 5]! |= 1 << (h & 31);
        slotOf[e] = h >>> LIST_SHIFT;
        this.from[slotOf[e]! + 1]!++;
      }
    }
    for (let slot = 0; slot < 1 << LIST_BITS; slot++) this.from[slot + 1]! += this.from[slot]!;
    this.literalOf = new Int32Array(count);
    this.offsetOf = new Int32Array(count);
    const next = this.from.slice(0, 1 << LIST_BITS);
    for (let offset = grams - 1, e = 0; offset >= 0; offset--) {
      for (let literal = 0; literal < this.codes.length; literal++, e++) {
        const at = next[slotOf[e]!]!++;
        this.literalOf[at] = literal;
        this.offsetOf[at] = offset;
      }
    }
  }

  /**
   * Calls `found` for every occurrence in `bytes` (latin1 codes, case-insensitively), in order of
   * start (overlapping ones too, each once); stops when it returns true.
   */
  scanBytes(bytes: Uint8Array, found: (m: Match) => boolean | void): void {
    const filter = this.filter;
    const stride = this.stride;
    const last = bytes.length - GRAM;
    if (last < 0) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let p = this.m - GRAM;
    // Four probes at once, one branch for all while all miss the filter (most of a body).
    const step = 4 * stride;
    for (const groups = last - 3 * stride; p <= groups; p += step) {
      const a = gramHash(view.getUint32(p, true));
      const b = gramHash(view.getUint32(p + stride, true));
      const c = gramHash(view.getUint32(p + 2 * stride, true));
      const d = gramHash(view.getUint32(p + 3 * stride, true));
      if ((((filter[a >>> 5]! >>> a) | (filter[b >>> 5]! >>> b) | (filter[c >>> 5]! >>> c) | (filter[d >>> 5]! >>> d)) & 1) === 0) continue;
      if ((filter[a >>> 5]! >>> a) & 1 && this.candidatesAt(bytes, p, a >>> LIST_SHIFT, found)) return;
      if ((filter[b >>> 5]! >>> b) & 1 && this.candidatesAt(bytes, p + stride, b >>> LIST_SHIFT, found)) return;
      if ((filter[c >>> 5]! >>> c) & 1 && this.candidatesAt(bytes, p + 2 * stride, c >>> LIST_SHIFT, found)) return;
      if ((filter[d >>> 5]! >>> d) & 1 && this.candidatesAt(bytes, p + 3 * stride, d >>> LIST_SHIFT, found)) return;
    }
    for (; p <= last; p += stride) {
      const h = gramHash(view.getUint32(p, true));
      if ((filter[h >>> 5]! >>> h) & 1 && this.candidatesAt(bytes, p, h >>> LIST_SHIFT, found)) return;
    }
  }

  /** Checks the candidates in list `slot` for the gram at `p`; true when `found` asked to stop. */
  private candidatesAt(bytes: Uint8Array, p: number, slot: number, found: (m: Match) => boolean | void): boolean {
    const n = bytes.length;
    for (let e = this.from[slot]!, end = this.from[slot + 1]!; e < end; e++) {
      const start = p - this.offsetOf[e]!;
      const code = this.codes[this.literalOf[e]!]!;
      if (start < 0 || start + code.length > n) continue;
      let k = 0;
      while (k < code.length && FOLD[bytes[start + k]!] === code[k]) k++;
      if (k === code.length && found({ literal: this.literalOf[e]!, start, end: start + code.length })) return true;
    }
    return false;
  }

  /** Whether any literal occurs in `bytes`. */
  hasAny(bytes: Uint8Array): boolean {
    let any = false;
    this.scanBytes(bytes, () => (any = true));
    return any;
  }
}
