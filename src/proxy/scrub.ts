// Scrubbing credential values out of a response before an agent reads it: every value the vault
// holds (static values; an OAuth credential's access token, refresh token and client secret) is
// replaced by `[REDACTED:KEY]` in the headers and the (decoded) body. Used by the MCP server's
// http_request tool through the explicit proxy; matching is byte for byte on the raw value.
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { CREDENTIAL_KIND } from "../vault/credential.schema.ts";
import { parseOAuthSecrets } from "../vault/oauth-record.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";

/** Values shorter than this are not scrubbed: "1" or "yes" would redact half of any page. */
export const MIN_SCRUB_LENGTH = 6;

export interface Secret {
  readonly key: string;
  /** The value as latin1 text of its UTF-8 bytes, for byte-exact matching. */
  readonly bytes: string;
}

export function vaultSecrets(store: VaultStore, vault: VaultRecord): Secret[] {
  const out: Secret[] = [];
  const add = (key: string, value: string | undefined) => {
    if (value !== undefined && value.length >= MIN_SCRUB_LENGTH) out.push({ key, bytes: Buffer.from(value, "utf8").toString("latin1") });
  };
  for (const [key, record] of Object.entries(vault.credentials)) {
    const opened = store.openValue(CREDENTIAL_KIND, vault.id, key, record.value);
    if (record.type !== "oauth") add(key, opened);
    else {
      const secrets = parseOAuthSecrets(opened);
      add(key, secrets.access_token);
      add(key, secrets.refresh_token);
      add(key, secrets.client_secret);
    }
  }
  // Longest first, so a value that contains another is replaced whole.
  return out.sort((a, b) => b.bytes.length - a.bytes.length);
}

export function scrubText(text: string, secrets: readonly Secret[]): string {
  let out = text;
  for (const { key, bytes } of secrets) if (out.includes(bytes)) out = out.split(bytes).join(`[REDACTED:${key}]`);
  return out;
}

export function scrubBuffer(body: Buffer, secrets: readonly Secret[]): Buffer {
  return Buffer.from(scrubText(body.toString("latin1"), secrets), "latin1");
}

/** The body without its content-encoding, or null for an encoding we cannot read (refused, not passed). */
export function decodeBody(body: Buffer, encoding: string | undefined): Buffer | null {
  if (body.length === 0) return body;
  const codings = (encoding ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "" && c !== "identity");
  let out = body;
  try {
    for (const coding of codings.reverse()) {
      if (coding === "gzip" || coding === "x-gzip") out = gunzipSync(out);
      else if (coding === "deflate") out = inflateSync(out);
      else if (coding === "br") out = brotliDecompressSync(out);
      else return null;
    }
  } catch {
    return null;
  }
  return out;
}
