// Placeholders (DESIGN "Placeholders"): what `run` puts in the agent's environment instead of a
// credential, and what the proxy swaps for the real value in a request to that credential's
// service. A placeholder is HMAC-SHA256(placeholder key, principal id, credential key) spelled in
// the shape the client's format check expects (`sk-proj-…`, `ghp_…` with its checksum). The
// placeholder key is derived from the vault's data key under its own HKDF label, so:
//   - it is never a real value and says nothing about one (it depends on no value at all);
//   - the agent cannot make another session's placeholder (it lacks the key), and one it learns
//     anyway is worth nothing: the proxy replaces only the placeholders of the session the request
//     authenticated as;
//   - the proxy recognises it by computing it again: nothing new is stored.
// Changing the master password makes a new data key, so running sessions' placeholders stop
// being replaced (their requests fail upstream authentication, never leak).
import { createHmac } from "node:crypto";
import { CATALOG } from "./catalog.ts";
import { hkdf } from "./crypto.ts";
import { credentialKeysOf, type Service } from "./service.schema.ts";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE64URL = `${BASE62.slice(10)}${BASE62.slice(0, 10)}-_`;
const HEX = "0123456789abcdef";
const DIGITS = "0123456789";
const LOWER_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz";
const UPPER_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** Pieces of a placeholder: literal text, or `length` characters drawn from `alphabet`. */
type Piece = string | { readonly length: number; readonly alphabet: string; readonly checksum?: "github" };

/** The shapes clients check, by the form vendors document for their keys. */
export const SHAPES = {
  openai: ["sk-proj-", { length: 156, alphabet: BASE64URL }],
  anthropic: ["sk-ant-api03-", { length: 93, alphabet: BASE64URL }, "AA"],
  // ghp_ + 30 base62 + their CRC32 in 6 base62: secret scanners and gh check the checksum.
  github: ["ghp_", { length: 30, alphabet: BASE62, checksum: "github" }],
  gitlab: ["glpat-", { length: 20, alphabet: BASE64URL }],
  // Live, not test: a placeholder must not tell the agent it is playing with test money.
  stripe: ["sk_live_", { length: 99, alphabet: BASE62 }],
  slack: ["xoxb-", { length: 13, alphabet: DIGITS }, "-", { length: 13, alphabet: DIGITS }, "-", { length: 24, alphabet: BASE62 }],
  google: ["AIza", { length: 35, alphabet: BASE64URL }],
  huggingface: ["hf_", { length: 34, alphabet: BASE62 }],
  groq: ["gsk_", { length: 52, alphabet: BASE62 }],
  openrouter: ["sk-or-v1-", { length: 64, alphabet: HEX }],
  npm: ["npm_", { length: 36, alphabet: BASE62 }],
  linear: ["lin_api_", { length: 40, alphabet: BASE62 }],
  notion: ["ntn_", { length: 46, alphabet: BASE62 }],
  sendgrid: ["SG.", { length: 22, alphabet: BASE64URL }, ".", { length: 43, alphabet: BASE64URL }],
  deepseek: ["sk-", { length: 32, alphabet: HEX }],
  perplexity: ["pplx-", { length: 48, alphabet: BASE62 }],
  replicate: ["r8_", { length: 37, alphabet: BASE62 }],
  digitalocean: ["dop_v1_", { length: 64, alphabet: HEX }],
  sentry: ["sntryu_", { length: 64, alphabet: HEX }],
  // AWS's access key id (AKIA + 16), secret (40) and session token: the SDKs and CLI sign with
  // them; the proxy throws the signature away and signs again (src/proxy/steps/sigv4.ts). Real
  // secrets may hold + and /; these stay in base62 like every placeholder, which no SDK checks.
  "aws-access-key": ["AKIA", { length: 16, alphabet: UPPER_ALNUM }],
  "aws-secret": [{ length: 40, alphabet: BASE62 }],
  "aws-session": ["IQoJb3JpZ2luX2Vj", { length: 340, alphabet: BASE62 }],
  // Any other credential: long enough that no check calls it short, in the commonest alphabet.
  generic: ["avp_", { length: 40, alphabet: LOWER_ALNUM }],
} satisfies Record<string, readonly Piece[]>;

export type ShapeName = keyof typeof SHAPES;

/** What a catalog template's credential needs in the agent's environment, and its placeholder's shape. */
export interface ClientVariables {
  readonly env: readonly string[];
  readonly shape: ShapeName;
}

/** By catalog template and its credential key: the variables its clients (SDKs, CLIs, agents) read. */
const CLIENTS: Record<string, Record<string, ClientVariables>> = {
  openai: { OPENAI_API_KEY: { env: ["OPENAI_API_KEY"], shape: "openai" } },
  anthropic: { ANTHROPIC_API_KEY: { env: ["ANTHROPIC_API_KEY"], shape: "anthropic" } },
  github: { GITHUB_TOKEN: { env: ["GITHUB_TOKEN", "GH_TOKEN"], shape: "github" } },
  gitlab: { GITLAB_TOKEN: { env: ["GITLAB_TOKEN", "GITLAB_PRIVATE_TOKEN"], shape: "gitlab" } },
  stripe: { STRIPE_SECRET_KEY: { env: ["STRIPE_SECRET_KEY", "STRIPE_API_KEY"], shape: "stripe" } },
  slack: { SLACK_BOT_TOKEN: { env: ["SLACK_BOT_TOKEN", "SLACK_TOKEN"], shape: "slack" } },
  // Not GOOGLE_API_KEY too: gemini-cli warns when both are set and prefers that one.
  "google-ai": { GEMINI_API_KEY: { env: ["GEMINI_API_KEY"], shape: "google" } },
  "google-maps": { GOOGLE_MAPS_API_KEY: { env: ["GOOGLE_MAPS_API_KEY"], shape: "google" } },
  huggingface: { HF_TOKEN: { env: ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"], shape: "huggingface" } },
  groq: { GROQ_API_KEY: { env: ["GROQ_API_KEY"], shape: "groq" } },
  openrouter: { OPENROUTER_API_KEY: { env: ["OPENROUTER_API_KEY"], shape: "openrouter" } },
  npm: { NPM_TOKEN: { env: ["NPM_TOKEN", "NODE_AUTH_TOKEN"], shape: "npm" } },
  linear: { LINEAR_API_KEY: { env: ["LINEAR_API_KEY"], shape: "linear" } },
  notion: { NOTION_API_KEY: { env: ["NOTION_API_KEY", "NOTION_TOKEN"], shape: "notion" } },
  sendgrid: { SENDGRID_API_KEY: { env: ["SENDGRID_API_KEY"], shape: "sendgrid" } },
  deepseek: { DEEPSEEK_API_KEY: { env: ["DEEPSEEK_API_KEY"], shape: "deepseek" } },
  perplexity: { PERPLEXITY_API_KEY: { env: ["PERPLEXITY_API_KEY", "PPLX_API_KEY"], shape: "perplexity" } },
  replicate: { REPLICATE_API_TOKEN: { env: ["REPLICATE_API_TOKEN"], shape: "replicate" } },
  digitalocean: { DIGITALOCEAN_TOKEN: { env: ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"], shape: "digitalocean" } },
  sentry: { SENTRY_AUTH_TOKEN: { env: ["SENTRY_AUTH_TOKEN"], shape: "sentry" } },
  cloudflare: { CLOUDFLARE_API_TOKEN: { env: ["CLOUDFLARE_API_TOKEN", "CF_API_TOKEN"], shape: "generic" } },
  vercel: { VERCEL_TOKEN: { env: ["VERCEL_TOKEN"], shape: "generic" } },
  fly: { FLY_API_TOKEN: { env: ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN"], shape: "generic" } },
  mistral: { MISTRAL_API_KEY: { env: ["MISTRAL_API_KEY"], shape: "generic" } },
};

/** An aws-sigv4 service's keys, in credentialKeysOf's order: the variables every AWS SDK and CLI read. */
const AWS_ROLES: readonly ClientVariables[] = [
  { env: ["AWS_ACCESS_KEY_ID"], shape: "aws-access-key" },
  { env: ["AWS_SECRET_ACCESS_KEY"], shape: "aws-secret" },
  { env: ["AWS_SESSION_TOKEN"], shape: "aws-session" },
];

/**
 * The variables and shape for credential `key` as `service` uses it. A service made from a
 * template (same host and auth type) takes the template's, whatever its key is called; a key named
 * like a template's takes that; any other key is its own variable with the generic shape.
 */
export function clientVariables(key: string, services: readonly Service[]): ClientVariables {
  for (const service of services) {
    const keys = credentialKeysOf(service.auth);
    const at = keys.indexOf(key);
    if (at < 0) continue;
    if (service.auth.type === "aws-sigv4") return AWS_ROLES[at]!;
    const entry = CATALOG.find((e) => e.host.toLowerCase() === service.host.toLowerCase() && e.auth.type === service.auth.type);
    const templateKey = entry ? credentialKeysOf(entry.auth)[at] : undefined;
    const known = entry && templateKey ? CLIENTS[entry.name]?.[templateKey] : undefined;
    if (known) return known;
  }
  for (const byKey of Object.values(CLIENTS)) if (byKey[key]) return byKey[key]!;
  return { env: [key], shape: "generic" };
}

/**
 * Every shape a placeholder of `key` may have been made in: one per service that names it (a key
 * two templates share could have been given either), so the proxy recognises what `run` gave.
 */
/** Per service list (a new one with every change of the vault state): the proxy asks per request. */
const shapesCache = new WeakMap<readonly Service[], Map<string, ShapeName[]>>();

export function shapesFor(key: string, services: readonly Service[]): ShapeName[] {
  let byKey = shapesCache.get(services);
  if (!byKey) shapesCache.set(services, (byKey = new Map()));
  let found = byKey.get(key);
  if (!found) {
    const shapes = new Set<ShapeName>([clientVariables(key, services).shape]);
    for (const service of services) if (credentialKeysOf(service.auth).includes(key)) shapes.add(clientVariables(key, [service]).shape);
    byKey.set(key, (found = [...shapes]));
  }
  return found;
}

/** A stream of HMAC bytes: block i is HMAC(key, i ‖ label), as many as asked for. */
function hmacStream(placeholderKey: Uint8Array, label: string, bytes: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < bytes; i++) blocks.push(createHmac("sha256", placeholderKey).update(`${i}\0${label}`).digest());
  return Buffer.concat(blocks);
}

/**
 * The placeholder of credential `key` for principal `principalId` (a session id). Each character
 * comes from two HMAC bytes modulo the alphabet, so its bias is below 1/1000: not a value, and not
 * something the agent could learn the key from.
 */
export function derivePlaceholder(placeholderKey: Uint8Array, principalId: string, key: string, shape: ShapeName): string {
  const pieces: readonly Piece[] = SHAPES[shape];
  const needed = pieces.reduce((n, p) => n + (typeof p === "string" ? 0 : p.length * 2), 0);
  const stream = hmacStream(placeholderKey, `agent-vault placeholder\0${principalId}\0${key}`, needed);
  let at = 0;
  let out = "";
  for (const piece of pieces) {
    if (typeof piece === "string") {
      out += piece;
      continue;
    }
    let drawn = "";
    for (let i = 0; i < piece.length; i++, at += 2) drawn += piece.alphabet[stream.readUInt16BE(at) % piece.alphabet.length];
    out += drawn;
    if (piece.checksum === "github") out += base62Checksum(drawn);
  }
  return out;
}

/** GitHub's token checksum: CRC32 of the random part, in base62, left-padded to 6. */
function base62Checksum(text: string): string {
  let n = crc32(Buffer.from(text, "latin1"));
  let out = "";
  while (n > 0) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(6, "0");
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The key placeholders are made under: HKDF of the server-proof key (itself HKDF of the data key)
 * under its own label, one-way, so it reveals nothing of the keys above it. Derived in each
 * process that holds the vault open (`run` and the proxy agree without storing anything).
 */
/** Per proof key (a new data key gives a new one, and so new placeholders): derived once. */
const placeholderKeys = new WeakMap<Buffer, Buffer>();

export function placeholderKeyOf(store: { serverProofKey(): Buffer }): Buffer {
  const proof = store.serverProofKey();
  let key = placeholderKeys.get(proof);
  if (!key) placeholderKeys.set(proof, (key = hkdf(proof, "agent-vault/v1 placeholder")));
  return key;
}
