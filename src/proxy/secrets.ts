// Finding credential values in traffic: the exfiltration guard looks for them in what an agent
// sends, response scrubbing replaces them in what it receives, and both look for the same forms
// after the same normalization (issue 12: a form one direction missed was a way out).
//
// Forms of each value (the vault's static values; an OAuth credential's access token, refresh
// token and client secret): raw; base64 and base64url at each of the three byte alignments (so a
// value inside a longer encoded text is found too, e.g. basic auth's base64(user:pass)); hex;
// base32 at each of the five alignments. Matching is case-insensitive (text and forms are folded
// to lower case): hex and base32 are case-insensitive forms, and an upper-cased value is the value.
//
// Scrubbing also replaces a value cut short: a run of PARTIAL_LENGTH or more characters that is the
// head or the tail of a form (an upstream that echoes `value[:N] + "…"`), so an agent learns at
// most 7 characters at either end of a form and must guess the rest at once against the guard.
//
// Normalization: before matching, text is also seen decoded (escapes.ts): percent-encoding of any
// character, JSON and JavaScript string escapes, up to three rounds. Content codings are undone
// by the callers (net/codings.ts). Matching is on bytes (latin1 strings of the UTF-8 encoding).
import { CREDENTIAL_KIND } from "../vault/credential.schema.ts";
import { parseOAuthSecrets } from "../vault/oauth-record.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { type DecodedView, decodedViews, escapePositions, MAX_ESCAPE_EXPANSION, partialEscapeLength } from "./escapes.ts";
import { escapePositionsIn, hasEscapeByte } from "./escape-bytes.ts";
import { lenientViews } from "./lenient-views.ts";
import { foldCode, type Match, MultiSearch } from "./search.ts";

export { type Coding, codingsOf, decodeBody, decoderChain } from "../net/codings.ts";

/** Values shorter than this are not looked for: "1" or "yes" would match half of any page. */
export const MIN_SECRET_LENGTH = 6;
/** An encoded form is looked for only when at least this long (a base64 fragment of 4 characters is noise). */
const MIN_FORM_LENGTH = 8;

export interface Pattern {
  readonly key: string;
  /** latin1 text of the bytes to find, folded to lower case. */
  readonly bytes: string;
  /** raw, base64, base64url, hex, base32 */
  readonly form: string;
  /** How many leading characters of `bytes` spell the value's public prefix (`sk_live_`, in this form). */
  readonly prefix?: number;
}

/** The characters of an encoding that depend only on `value` when it starts `offset` bytes into a stream. */
function alignedCore(value: Buffer, offset: number, bitsPerChar: number, encode: (b: Buffer) => string): string {
  const encoded = encode(Buffer.concat([Buffer.alloc(offset), value]));
  const first = Math.ceil((offset * 8) / bitsPerChar);
  const last = Math.floor(((offset + value.length) * 8) / bitsPerChar); // exclusive
  return encoded.slice(first, last);
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding. */
export function base32(bytes: Buffer): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

function formsOf(value: string): { form: string; text: string; prefix: number }[] {
  const bytes = Buffer.from(value, "utf8");
  const raw = bytes.toString("latin1");
  const p = publicPrefixLength("raw", raw.toLowerCase());
  /** Characters of an aligned core (alignedCore) that spell only the first `p` bytes. */
  const spelled = (offset: number, bitsPerChar: number) => Math.max(0, Math.floor(((offset + p) * 8) / bitsPerChar) - Math.ceil((offset * 8) / bitsPerChar));
  const forms: { form: string; text: string; prefix: number }[] = [{ form: "raw", text: raw, prefix: p }];
  // Form encoding writes a space as `+`, which the decoder leaves alone (it is also base64's).
  if (raw.includes(" ")) forms.push({ form: "raw", text: raw.replace(/ /g, "+"), prefix: p });
  for (let offset = 0; offset < 3; offset++) {
    forms.push({ form: "base64", text: alignedCore(bytes, offset, 6, (b) => b.toString("base64")), prefix: spelled(offset, 6) });
    forms.push({ form: "base64url", text: alignedCore(bytes, offset, 6, (b) => b.toString("base64url")), prefix: spelled(offset, 6) });
  }
  for (let offset = 0; offset < 5; offset++) forms.push({ form: "base32", text: alignedCore(bytes, offset, 5, base32), prefix: spelled(offset, 5) });
  forms.push({ form: "hex", text: bytes.toString("hex"), prefix: 2 * p });
  return forms;
}

/** A core shorter than this is not looked for on its own: it could occur by chance. */
const MIN_CORE_LENGTH = 12;

/**
 * The parts of a value that are as good as the value: what follows a well-known prefix
 * (`sk_live_`, `ghp_`, `xoxb-`: an agent that knows the format sends only the rest), and the value
 * without up to four leading hex digits (an attacker's server can read `%17BL…` as `%1` then
 * `7BL…`, where a decoder sees one escape that swallowed the value's first character).
 */
function coresOf(value: string): { core: string; allForms: boolean }[] {
  const out: { core: string; allForms: boolean }[] = [];
  const separator = Math.max(...["_", "-", ".", ":"].map((ch) => value.slice(0, 16).lastIndexOf(ch)));
  if (separator >= 0 && value.length - separator - 1 >= MIN_CORE_LENGTH) out.push({ core: value.slice(separator + 1), allForms: true });
  for (let k = 1; k <= 4 && /^[0-9a-fA-F]$/.test(value[k - 1] ?? ""); k++) {
    if (value.length - k >= MIN_CORE_LENGTH) out.push({ core: value.slice(k), allForms: false });
  }
  return out;
}

/** Every pattern for one value (and its cores), folded; duplicates collapse. */
export function patternsOf(key: string, value: string): Pattern[] {
  if (value.length < MIN_SECRET_LENGTH) return [];
  const seen = new Set<string>();
  const out: Pattern[] = [];
  const add = (form: string, text: string, prefix: number) => {
    const folded = text.toLowerCase();
    if (seen.has(folded) || (form !== "raw" && folded.length < MIN_FORM_LENGTH)) return;
    seen.add(folded);
    out.push({ key, bytes: folded, form, ...(prefix > 0 ? { prefix } : {}) });
  };
  for (const { form, text, prefix } of formsOf(value)) add(form, text, prefix);
  for (const { core, allForms } of coresOf(value)) {
    if (allForms) for (const { form, text, prefix } of formsOf(core)) add(form, text, prefix);
    else add("raw", Buffer.from(core, "utf8").toString("latin1"), publicPrefixLength("raw", core.toLowerCase()));
  }
  return out;
}

/** Every value of the vault as patterns, longest first (so a value containing another is replaced whole). */
export function vaultPatterns(store: VaultStore, vault: VaultRecord): Pattern[] {
  const out: Pattern[] = [];
  for (const [key, record] of Object.entries(vault.credentials)) {
    if (record.type === "source") continue; // the reference is not the value: state.ts adds fetched values
    const opened = store.openValue(CREDENTIAL_KIND, vault.id, key, record.value);
    if (record.type !== "oauth") out.push(...patternsOf(key, opened));
    else {
      const secrets = parseOAuthSecrets(opened);
      for (const v of [secrets.access_token, secrets.refresh_token, secrets.client_secret]) if (v) out.push(...patternsOf(key, v));
    }
  }
  return out.sort((a, b) => b.bytes.length - a.bytes.length);
}

/**
 * A value an upstream echoed cut short (`value[:N] + "…"`, a body truncated to 2000 bytes) is
 * scrubbed too: a run of at least this many characters that is the start (head) or the end (tail)
 * of a form, wherever it stands. Shorter runs are left (8 characters of base64 occur by chance far
 * too rarely to matter, 7 of a value leave the rest to be guessed at once).
 */
export const PARTIAL_LENGTH = 8;

/**
 * The length of a value's public prefix: up to three short words each ending in `_` or `-` at its
 * start (`ghp_`, `sk_live_`, `github_pat_`, `sk-ant-api03-`), which vendors print in docs and error
 * messages and which begin ordinary words (`github_pages`). A head of the raw form must run
 * PARTIAL_LENGTH characters past it to be scrubbed as a cut value: otherwise every such word in a
 * response would be replaced. A random value rarely starts with a letter, up to 5 more and a
 * separator; where it does, that much less of it is protected.
 */
export function publicPrefixLength(form: string, bytes: string): number {
  if (form !== "raw") return 0;
  return /^(?:[a-z][a-z0-9]{0,5}[_-]){1,3}/.exec(bytes.slice(0, 24))?.[0].length ?? 0;
}

/** A head or a tail literal of scrubSearch: the first or last PARTIAL_LENGTH characters of `pattern`. */
interface Edge {
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
interface Compiled {
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
   * shorten every shift, and the guard does not need them.
   */
  scrubSearch(): { readonly search: MultiSearch; readonly edges: readonly (readonly Edge[])[] };
  /** Every character of every literal: the literals and places it stands (substringSuffix). */
  places(): Map<number, [number, number][]>;
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

const compiledCache = new WeakMap<readonly Pattern[], Compiled>();

/** Four characters of `text` at `at` as one number (the guard reads latin1: every code is a byte). */
function pieceCode(text: string, at: number): number {
  return ((text.charCodeAt(at) * 256 + text.charCodeAt(at + 1)) * 256 + text.charCodeAt(at + 2)) * 256 + text.charCodeAt(at + 3);
}

function compiled(patterns: readonly Pattern[]): Compiled {
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
  let scrubbing: { search: MultiSearch; edges: Edge[][] } | null = null;
  const scrubSearch = () => {
    if (scrubbing) return scrubbing;
    // One literal per distinct head or tail (base64 and base64url, a value and its core share
    // many): fewer literals, fewer short shifts.
    const byEdge = new Map<string, Edge[]>();
    const add = (text: string, edge: Edge) => byEdge.set(text, [...(byEdge.get(text) ?? []), edge]);
    for (const p of literals) {
      if (p.bytes.length <= PARTIAL_LENGTH) continue;
      add(p.bytes.slice(0, PARTIAL_LENGTH), { pattern: p, head: true, min: PARTIAL_LENGTH + (p.prefix ?? 0) });
      add(p.bytes.slice(-PARTIAL_LENGTH), { pattern: p, head: false, min: PARTIAL_LENGTH });
    }
    scrubbing = { search: new MultiSearch([...literals.map((p) => p.bytes), ...byEdge.keys()]), edges: [...byEdge.values()] };
    return scrubbing;
  };
  // Built on the scrubber's first use, as scrubSearch: the guard's one-off pattern lists never need it.
  let placeMap: Map<number, [number, number][]> | null = null;
  const places = () => {
    if (placeMap) return placeMap;
    placeMap = new Map();
    for (const [index, p] of literals.entries()) {
      for (let i = 0; i < p.bytes.length; i++) {
        const code = p.bytes.charCodeAt(i);
        const list = placeMap.get(code);
        if (list) list.push([index, i]);
        else placeMap.set(code, [[index, i]]);
      }
    }
    return placeMap;
  };
  found = { search, withPieces, scrubSearch, places, literals, fullCount: literals.length, pieceOf, byFirst, longest, firstPieces, firstPieceCodes, piecesAreCodes, alphabet };
  compiledCache.set(patterns, found);
  return found;
}

/**
 * How many source characters one byte of a value can take: an escape spells a byte in up to 6,
 * and with every character of it escaped again, three rounds deep, 6 × 6 × 6.
 */
const MAX_SPELLING_FACTOR = MAX_ESCAPE_EXPANSION ** 3;

/** The longest any pattern can be spelled in source text (every byte escaped, three rounds deep). */
export function longestSpelling(patterns: readonly Pattern[]): number {
  return patterns.length === 0 ? 0 : compiled(patterns).longest * MAX_SPELLING_FACTOR;
}

/**
 * The end of `text` that may hold the start of a spelled value: the longest form plus 9 characters
 * for every escape in reach (as the decoded windows reckon), so plain text keeps a short tail and
 * a run of nested escapes a long one (up to the longest spelling).
 */
function spelledTail(text: string, longest: number): string {
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
function spelledTailOf(bytes: Uint8Array, longest: number): string {
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

/** A value found in a text: its pattern and where it is in that text (source coordinates). */
export interface Hit {
  readonly pattern: Pattern;
  readonly start: number;
  readonly end: number;
  /** A cut value's span runs past the end of the text: a stream must hold it until it is whole. */
  readonly open?: boolean;
}

/**
 * Every stretch of `text` around an escape, decoded: a value seen only decoded spans an escape,
 * so it lies within `longest` decoded characters of it on either side. Raw, that is `longest`
 * characters plus 9 more for every escape in between (one character takes at most 10 raw ones
 * over three rounds: `\u00252574` is `%2574`, then `%74`, then `t`): the window grows until it
 * holds all the escapes it must. Most text has no escape, and binary
 * text a few, so only these windows are decoded, never the whole text.
 */
function* decodedWindows(text: string, longest: number, alphabet: Uint8Array): Generator<{ view: DecodedView; offset: number }> {
  // An escape matters only if what it decodes to can be in a value, or can start another round.
  const positions = escapePositions(text).filter((at) => mayBeInValue(text, at, alphabet));
  for (const [from, to] of escapeSpans(positions, text.length, longest)) for (const view of decodedViews(text.slice(from, to))) yield { view, offset: from };
}

/** decodedWindows of the latin1 text of `bytes`, making strings only of the windows. */
function* decodedWindowsOf(bytes: Buffer, longest: number, alphabet: Uint8Array): Generator<{ view: DecodedView; offset: number }> {
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

/** The leftmost whole value in `text` (the longest there). */
function firstFull(c: Compiled, text: string): Pattern | null {
  const match = c.search.first(text);
  return match ? c.literals[match.literal]! : null;
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
function redact(text: string, hits: readonly Hit[], cut = text.length): string {
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
function mask(text: string, hits: readonly Hit[], cut = text.length): string {
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
function foldedPartial(c: Compiled, folded: string, minimum = 1): number {
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
 * How many characters at the end of a folded text are a piece of some pattern (anywhere in it):
 * under scrubbing, such an end may be the start of a head or of a tail that the next chunk
 * completes (a tail run back into what was sent would have gone out in part), so it is held.
 * Every place of the last character in the literals, run back as far as the text matches.
 */
function substringSuffix(c: Compiled, text: string): number {
  const folded = text.length > c.longest ? text.slice(-c.longest) : text;
  const n = folded.length;
  if (n === 0) return 0;
  let best = 0;
  for (const [index, at] of c.places().get(folded.charCodeAt(n - 1)) ?? []) {
    const form = c.literals[index]!.bytes;
    let k = 1;
    while (k < n && k <= at && form.charCodeAt(at - k) === folded.charCodeAt(n - 1 - k)) k++;
    if (k > best) best = k;
    if (best >= n) break;
  }
  return best;
}

/**
 * How many characters at the end of `text` could be the start of a pattern in any view (or an
 * escape the next chunk completes): hold those back. `scrubbing`: a piece of a pattern too (a head
 * or tail the next chunk may complete: substringSuffix).
 */
export function partialSuffix(text: string, patterns: readonly Pattern[], scrubbing = false): number {
  if (patterns.length === 0) return 0;
  const c = compiled(patterns);
  const tail = spelledTail(text, c.longest);
  // An escape cut in half (`…6L%3`) is held, and so is whatever it may continue.
  const escape = partialEscapeLength(tail);
  const base = tail.slice(0, tail.length - escape);
  const held = (folded: string) => (scrubbing ? substringSuffix(c, folded) : foldedPartial(c, folded));
  let hold = held(base.toLowerCase());
  for (const view of decodedViews(base)) {
    const partial = held(view.text.toLowerCase());
    if (partial > 0) hold = Math.max(hold, base.length - view.toSource(view.text.length - partial));
  }
  return hold + escape;
}

/**
 * A value cut in two is looked for by its first piece: an end of a field that is the first
 * PIECE_LENGTH or more characters of a form, whose rest (REST_LENGTH or more characters, long
 * enough not to occur by chance) is then looked for anywhere else. Shorter pieces are not: three
 * characters of a key are in every text.
 */
export const PIECE_LENGTH = 4;
const REST_LENGTH = 8;
/** A first piece found anywhere in a text (not only at a field's end) is at least this long. */
const PIECE_ANYWHERE = 8;

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

/**
 * The fast path of the stream classes below: a chunk with no `%` or `\` (and a held tail with
 * none) has no escape to decode, so its only view is the bytes as they are, searched where they
 * lie (MultiSearch.scanBytes) without a latin1 string of the chunk, and the hold-back is judged
 * from a short string of its end. Two native memchr scans decide it. Anything else takes the
 * general path (a string of the whole text, every view), which is what the fast path must equal.
 */
function hasEscapeChar(text: string): boolean {
  return text.includes("%") || text.includes("\\");
}

/** The leftmost whole value in `bytes` (the longest there), as `firstFull` finds it in their text. */
function firstFullIn(c: Compiled, bytes: Uint8Array, search = c.search): Match | null {
  let best: Match | null = null;
  search.scanBytes(bytes, (m) => {
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

/** Whether `bytes` hold anything scrubbing replaces (a value, a head or a tail, in any view). */
function hasScrubbableIn(c: Compiled, bytes: Buffer): boolean {
  const { search } = c.scrubSearch();
  if (firstFullIn(c, bytes, search)) return true;
  for (const { view } of decodedWindowsOf(bytes, c.longest, c.alphabet)) if (search.first(view.text)) return true;
  return false;
}

/**
 * Whether a whole form stands in `before` + `chunk` (no escape in either), and the leftmost (the
 * longest there); with scrubSearch's searcher, a head or a tail of one too.
 */
function firstRawAcross(c: Compiled, before: Uint8Array, chunk: Uint8Array, search = c.search): Match | null {
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

/** The last `n` bytes of `before` + `chunk` as latin1 text. */
function tailText(before: Uint8Array, chunk: Buffer, n: number): string {
  if (chunk.length >= n) return chunk.toString("latin1", chunk.length - n);
  const from = Math.max(0, before.length - (n - chunk.length));
  return Buffer.from(before.buffer, before.byteOffset + from, before.length - from).toString("latin1") + chunk.toString("latin1");
}

const EMPTY = Buffer.alloc(0);

/**
 * Scrubs a stream chunk by chunk. Only a tail that could still become a value, or a head or tail
 * of one, is held back: an end that is a piece of some form (substringSuffix; at most the longest
 * spelling of a pattern), so server-sent events and other streams flow on. Bytes
 * with nothing to replace go out as the same bytes (no re-encoding of the chunk, and no copy of it:
 * `pushPieces` hands out views of what came in).
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
      // One pass for whole values, heads and tails (scrubSearch): anything found takes the general path.
      if (firstRawAcross(c, pending, chunk, c.scrubSearch().search) === null) {
        const total = pending.length + chunk.length;
        // With no escape in reach, partialSuffix is substringSuffix of the last `longest` characters.
        const hold = substringSuffix(c, tailText(pending, chunk, Math.min(total, c.longest)).toLowerCase());
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
    // around the escapes are decoded and searched, and the hold-back judged from the spelled tail.
    if (this.patterns.length > 0 && !hasScrubbableIn(compiled(this.patterns), bytes)) {
      const cut = bytes.length - partialSuffix(spelledTailOf(bytes, compiled(this.patterns).longest), this.patterns, true);
      this.pending = Buffer.from(bytes.subarray(cut));
      return [bytes.subarray(0, cut)];
    }
    return [this.pushText(bytes)];
  }

  /** The general path: every view of the held tail and the chunk, values replaced. */
  private pushText(bytes: Buffer): Buffer {
    const text = bytes.toString("latin1");
    const hold = partialSuffix(text, this.patterns, true);
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
