// Finding credential values in traffic (issue 8): the exfiltration guard looks for them in what an
// agent sends, response scrubbing replaces them in what it receives. Every value the vault holds
// (a static value; an OAuth credential's access token, refresh token and client secret) is looked
// for in the forms an agent could smuggle it in: raw, base64 and base64url (at each of the three
// byte alignments, so a value inside a longer encoded text is found too), URL-encoded (upper- and
// lower-case hex, `+` for spaces), hex, and JSON-escaped. Matching is on bytes (latin1 strings of
// the UTF-8 encoding), so it works on any body.
import { createBrotliDecompress, createGunzip, createInflate, brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { type Transform } from "node:stream";
import { CREDENTIAL_KIND } from "../vault/credential.schema.ts";
import { parseOAuthSecrets } from "../vault/oauth-record.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";

/** Values shorter than this are not looked for: "1" or "yes" would match half of any page. */
export const MIN_SECRET_LENGTH = 6;
/** An encoded form is looked for only when at least this long (a base64 fragment of 4 characters is noise). */
const MIN_FORM_LENGTH = 8;

export interface Pattern {
  readonly key: string;
  /** latin1 text of the bytes to find. */
  readonly bytes: string;
  /** raw, base64, base64url, url, hex, json */
  readonly form: string;
}


/** The base64 characters that depend only on `value` when it starts `offset` bytes into a stream. */
function base64Core(value: Buffer, offset: number, url: boolean): string {
  const stream = Buffer.concat([Buffer.alloc(offset), value]);
  let encoded = stream.toString("base64").replace(/=+$/, "");
  if (url) encoded = encoded.replace(/\+/g, "-").replace(/\//g, "_");
  const first = Math.ceil((offset * 8) / 6);
  const last = Math.floor(((offset + value.length) * 8) / 6); // exclusive
  return encoded.slice(first, last);
}

function formsOf(value: string): { form: string; text: string }[] {
  const bytes = Buffer.from(value, "utf8");
  const forms: { form: string; text: string }[] = [{ form: "raw", text: bytes.toString("latin1") }];
  for (let offset = 0; offset < 3; offset++) {
    forms.push({ form: "base64", text: base64Core(bytes, offset, false) });
    forms.push({ form: "base64url", text: base64Core(bytes, offset, true) });
  }
  const url = encodeURIComponent(value);
  forms.push({ form: "url", text: url }, { form: "url", text: url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()) });
  forms.push({ form: "url", text: url.replace(/%20/g, "+") });
  // Form encoding escapes more than encodeURIComponent does.
  forms.push({ form: "url", text: new URLSearchParams({ v: value }).toString().slice(2) });
  forms.push({ form: "hex", text: bytes.toString("hex") }, { form: "hex", text: bytes.toString("hex").toUpperCase() });
  const json = JSON.stringify(value).slice(1, -1);
  forms.push({ form: "json", text: Buffer.from(json, "utf8").toString("latin1") }, { form: "json", text: Buffer.from(json.replace(/\//g, "\\/"), "utf8").toString("latin1") });
  return forms;
}

/** Every pattern for one value; duplicates (a value with nothing to encode) collapse. */
export function patternsOf(key: string, value: string): Pattern[] {
  if (value.length < MIN_SECRET_LENGTH) return [];
  const seen = new Set<string>();
  const out: Pattern[] = [];
  for (const { form, text } of formsOf(value)) {
    if (seen.has(text) || (form !== "raw" && text.length < MIN_FORM_LENGTH)) continue;
    seen.add(text);
    out.push({ key, bytes: text, form });
  }
  return out;
}

/** Every value of the vault as patterns, longest first (so a value containing another is replaced whole). */
export function vaultPatterns(store: VaultStore, vault: VaultRecord): Pattern[] {
  const out: Pattern[] = [];
  for (const [key, record] of Object.entries(vault.credentials)) {
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
 * The patterns compiled once: one regular expression over every literal (the engine searches all
 * of them in one pass, about 20 times faster than a search per pattern), the pattern behind each
 * literal, and the patterns by their first character for the hold-back check.
 */
interface Compiled {
  readonly any: RegExp;
  readonly byText: Map<string, Pattern>;
  readonly byFirst: Map<string, Pattern[]>;
  readonly longest: number;
  /** The literals as bytes, for a native search when there are few of them. */
  readonly buffers: readonly Buffer[];
}

/** Up to this many literals, one native `Buffer.indexOf` each beats the expression (no string copy). */
const NATIVE_SEARCH_MAX = 16;

const compiledCache = new WeakMap<readonly Pattern[], Compiled>();

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
  // Grouped by first character (`a(?:bc|xy)|...`): a position that starts no value fails after
  // one test instead of one per value, twice as fast on text made of the same characters.
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const source = [...byFirst].map(([first, group]) => `${escape(first)}(?:${group.map((p) => escape(p.bytes.slice(1))).join("|")})`).join("|");
  const buffers = [...byText.keys()].map((t) => Buffer.from(t, "latin1"));
  found = { any: new RegExp(source || "(?!)", "g"), byText, byFirst, longest, buffers };
  compiledCache.set(patterns, found);
  return found;
}

const RESPONSE_FORMS = new Set(["raw", "json", "url"]);
const responseCache = new WeakMap<readonly Pattern[], readonly Pattern[]>();

/**
 * The forms scrubbed out of responses: the value as is, JSON-escaped and URL-encoded (what an API
 * echoing a request would show). The guard looks for every form; a response in base64 or hex
 * would have to be produced by the upstream on purpose, and scanning each body for fewer forms
 * keeps downloads fast.
 */
export function responsePatterns(patterns: readonly Pattern[]): readonly Pattern[] {
  let found = responseCache.get(patterns);
  if (!found) responseCache.set(patterns, (found = patterns.filter((p) => RESPONSE_FORMS.has(p.form))));
  return found;
}

/** The first pattern found in `text` (latin1), or null. */
export function findSecret(text: string, patterns: readonly Pattern[]): Pattern | null {
  if (patterns.length === 0) return null;
  const c = compiled(patterns);
  c.any.lastIndex = 0;
  const match = c.any.exec(text);
  return match ? c.byText.get(match[0])! : null;
}

export function scrubText(text: string, patterns: readonly Pattern[]): string {
  if (patterns.length === 0) return text;
  const c = compiled(patterns);
  c.any.lastIndex = 0;
  if (!c.any.test(text)) return text;
  c.any.lastIndex = 0;
  return text.replace(c.any, (m) => `[REDACTED:${c.byText.get(m)!.key}]`);
}

/** How many characters at the end of `text` could be the start of a pattern: hold those back. */
export function partialSuffix(text: string, patterns: readonly Pattern[]): number {
  if (patterns.length === 0) return 0;
  const c = compiled(patterns);
  // Only positions whose character starts some pattern can start a partial match.
  for (let i = Math.max(0, text.length - c.longest + 1); i < text.length; i++) {
    const candidates = c.byFirst.get(text[i]!);
    if (!candidates) continue;
    const tail = text.slice(i);
    for (const p of candidates) if (p.bytes.length > tail.length && p.bytes.startsWith(tail)) return text.length - i;
  }
  return 0;
}

/**
 * Scrubs a stream chunk by chunk. Only a tail that could still become a value is held back (at
 * most the longest pattern less one byte), so server-sent events and other streams flow on.
 */
export class StreamScrubber {
  private pending = "";

  constructor(private readonly patterns: readonly Pattern[]) {}

  push(chunk: Buffer): Buffer {
    const c = compiled(this.patterns);
    if (c.buffers.length <= NATIVE_SEARCH_MAX) {
      // Few values (a response's forms): searched natively in the bytes, no string made unless
      // something is there or a tail must be held.
      const bytes = this.pending === "" ? chunk : Buffer.concat([Buffer.from(this.pending, "latin1"), chunk]);
      const tail = bytes.subarray(Math.max(0, bytes.length - c.longest + 1)).toString("latin1");
      if (!c.buffers.some((b) => bytes.indexOf(b) !== -1) && partialSuffix(tail, this.patterns) === 0) {
        this.pending = "";
        return bytes;
      }
    }
    // The cut is chosen on the text as received: a tail that could still become a value stays,
    // and so does any value that would straddle the cut (a short value inside a longer one).
    const text = this.pending + chunk.toString("latin1");
    const hold = partialSuffix(text, this.patterns);
    c.any.lastIndex = 0;
    if (hold === 0 && !c.any.test(text)) {
      // The common case: nothing to replace or hold back; the bytes go out as they came.
      const out = this.pending === "" ? chunk : Buffer.concat([Buffer.from(this.pending, "latin1"), chunk]);
      this.pending = "";
      return out;
    }
    let cut = text.length - hold;
    for (let moved = true; moved && cut > 0; ) {
      moved = false;
      c.any.lastIndex = Math.max(0, cut - c.longest);
      for (let m = c.any.exec(text); m && m.index < cut; m = c.any.exec(text)) {
        if (m.index + m[0].length > cut) {
          cut = m.index;
          moved = true;
          break;
        }
        c.any.lastIndex = m.index + 1;
      }
    }
    this.pending = text.slice(cut);
    return Buffer.from(scrubText(text.slice(0, cut), this.patterns), "latin1");
  }

  end(): Buffer {
    const rest = scrubText(this.pending, this.patterns);
    this.pending = "";
    return Buffer.from(rest, "latin1");
  }
}

/**
 * Watches a stream for a value without changing it: returns what may be sent now (everything but
 * a tail that could be the start of a value) or the pattern found.
 */
export class StreamGuard {
  private pending = "";

  constructor(private readonly patterns: readonly Pattern[]) {}

  push(chunk: Buffer): { send: Buffer } | { hit: Pattern } {
    const text = this.pending + chunk.toString("latin1");
    const hit = findSecret(text, this.patterns);
    if (hit) return { hit };
    const hold = partialSuffix(text, this.patterns);
    if (hold === 0) {
      const out = this.pending === "" ? chunk : Buffer.concat([Buffer.from(this.pending, "latin1"), chunk]);
      this.pending = "";
      return { send: out };
    }
    this.pending = text.slice(text.length - hold);
    return { send: Buffer.from(text.slice(0, text.length - hold), "latin1") };
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = "";
    return Buffer.from(rest, "latin1");
  }
}

/** Content codings we can read; anything else cannot be scanned. */
export function codingsOf(encoding: string | string[] | undefined): string[] | null {
  const text = Array.isArray(encoding) ? encoding.join(",") : (encoding ?? "");
  const codings = text.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "" && c !== "identity");
  return codings.every((c) => ["gzip", "x-gzip", "deflate", "br"].includes(c)) ? codings : null;
}

/** A whole body without its content-encoding, or null when it cannot be decoded. */
export function decodeBody(body: Buffer, encoding: string | string[] | undefined, maxOutputLength = 64 * 1024 * 1024): Buffer | null {
  if (body.length === 0) return body;
  const codings = codingsOf(encoding);
  if (codings === null) return null;
  let out = body;
  try {
    for (const coding of [...codings].reverse()) {
      // A small body may expand without bound (a decompression bomb): past the limit it is refused.
      if (coding === "br") out = brotliDecompressSync(out, { maxOutputLength });
      else if (coding === "deflate") out = inflateSync(out, { maxOutputLength });
      else out = gunzipSync(out, { maxOutputLength });
    }
  } catch {
    return null;
  }
  return out;
}

/** Streaming decoders for the codings, outermost first; null when one is not readable. */
export function decoderChain(encoding: string | string[] | undefined): Transform[] | null {
  const codings = codingsOf(encoding);
  if (codings === null) return null;
  return [...codings].reverse().map((c) => (c === "br" ? createBrotliDecompress() : c === "deflate" ? createInflate() : createGunzip()));
}

