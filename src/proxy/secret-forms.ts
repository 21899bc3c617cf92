// The secret forms: every spelling of a credential value the guard and the scrubber look for
// (raw, base64 and base64url at three alignments, base32 at five, hex; a value's cores), folded,
// and the lengths that decide what counts (MIN_SECRET_LENGTH, PARTIAL_LENGTH, a public prefix).
// See secrets.ts for the whole matching.
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
  /** latin1 text of the bytes to find, folded to lower case. */
  readonly bytes: string;
  /** raw, base64, base64url, hex, base32 */
  readonly form: string;
  /** How many leading characters of `bytes` spell the value's public prefix (`sk_live_`, in this form). */
  readonly prefix?: number;
  /**
   * A core (coresOf) that starts past the value's own bar: its head is not scrubbed as a cut value,
   * only its whole form and its tail. Its head would be a second bar further into the value, and
   * each such bar confirms one more guessed character (red team: 4 more of a 32-hex key).
   */
  readonly headless?: true;
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
  const add = (form: string, text: string, prefix: number, headless = false) => {
    const folded = text.toLowerCase();
    if (seen.has(folded) || (form !== "raw" && folded.length < MIN_FORM_LENGTH)) return;
    seen.add(folded);
    out.push({ key, bytes: folded, form, ...(prefix > 0 ? { prefix } : {}), ...(headless ? { headless: true as const } : {}) });
  };
  for (const { form, text, prefix } of formsOf(value)) add(form, text, prefix);
  // A head is scrubbed from PARTIAL_LENGTH characters past the public prefix: the value's bar. A
  // core's head counts from where the core starts, so only a core that starts within the value's
  // prefix (the rest after `sk_live_`) keeps its head; the others (past `SG.`, past leading hex
  // digits) keep their whole forms and tails.
  const valuePrefix = publicPrefixLength("raw", value.toLowerCase());
  for (const { core, allForms } of coresOf(value)) {
    const corePrefix = publicPrefixLength("raw", core.toLowerCase());
    const headless = value.length - core.length + corePrefix > valuePrefix;
    if (allForms) for (const { form, text, prefix } of formsOf(core)) add(form, text, prefix, headless);
    else add("raw", Buffer.from(core, "utf8").toString("latin1"), corePrefix, headless);
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

/** The longest public prefix publicPrefixLength gives: three words of 7 characters. */
export const MAX_PUBLIC_PREFIX = 21;
