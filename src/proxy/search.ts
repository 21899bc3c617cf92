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
