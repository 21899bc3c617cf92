// How an OAuth credential lives in a credential record (docs/vault-format.md section 5): the
// sealed value is a small JSON object holding the access token, the refresh token and the client
// secret; everything a listing may show (token URL, client id, scopes, status, expiry, the last
// refresh and the last error) is metadata. The proxy injects the access token like any value.
import { z } from "zod";
import { AgentVaultError } from "../shared/errors.ts";
import { CREDENTIAL_KIND, type CredentialRecord } from "./credential.schema.ts";
import { type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";

export const TOKEN_AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"] as const;
export type TokenAuthMethod = (typeof TOKEN_AUTH_METHODS)[number];

/** not_connected: a slot waiting for connect or paste; refresh_failed: the provider refused the refresh token. */
export type OAuthStatus = "not_connected" | "connected" | "refresh_failed";

export interface OAuthConfig {
  readonly token_url: string;
  readonly authorization_url?: string | undefined;
  readonly client_id?: string | undefined;
  readonly scopes?: string | undefined;
  readonly token_auth_method: TokenAuthMethod;
  readonly provider?: string | undefined;
}

const SecretsSchema = z
  .object({
    access_token: z.string().min(1).optional(),
    refresh_token: z.string().min(1).optional(),
    client_secret: z.string().min(1).optional(),
  })
  .strict();
export type OAuthSecrets = z.infer<typeof SecretsSchema>;

/** A refresh this close to expiry (or closer) happens before the token is injected. */
export const REFRESH_MARGIN_MS = 5 * 60_000;

export function isOAuth(record: CredentialRecord | undefined): boolean {
  return record?.type === "oauth";
}

export function oauthStatusOf(record: CredentialRecord): OAuthStatus {
  const status = record.metadata.oauth_status;
  return status === "connected" || status === "refresh_failed" ? status : "not_connected";
}

export function oauthConfigOf(record: CredentialRecord): OAuthConfig | null {
  const m = record.metadata;
  if (!m.oauth_token_url) return null;
  const method = TOKEN_AUTH_METHODS.find((t) => t === m.oauth_token_auth_method) ?? "none";
  return {
    token_url: m.oauth_token_url,
    authorization_url: m.oauth_authorization_url,
    client_id: m.oauth_client_id,
    scopes: m.oauth_scopes,
    token_auth_method: method,
    provider: m.oauth_provider,
  };
}

/** Metadata fields for a configuration; unset fields are left out. */
export function configMetadata(config: OAuthConfig): Record<string, string> {
  const out: Record<string, string> = { oauth_token_auth_method: config.token_auth_method };
  // A pasted access token without a refresh token may come with no token URL at all.
  if (config.token_url) out.oauth_token_url = config.token_url;
  if (config.authorization_url) out.oauth_authorization_url = config.authorization_url;
  if (config.client_id) out.oauth_client_id = config.client_id;
  if (config.scopes) out.oauth_scopes = config.scopes;
  if (config.provider) out.oauth_provider = config.provider;
  return out;
}

/** True when the access token expires within the refresh margin (never, without an expiry). */
export function isNearExpiry(record: CredentialRecord, now: number): boolean {
  return record.expires_at !== null && Date.parse(record.expires_at) - now <= REFRESH_MARGIN_MS;
}

export function isExpired(record: CredentialRecord, now: number): boolean {
  return record.expires_at !== null && Date.parse(record.expires_at) <= now;
}

/** Parses an OAuth record's opened value; a slot that was never connected holds no tokens. */
export function parseOAuthSecrets(opened: string): OAuthSecrets {
  if (opened === "") return {};
  try {
    const parsed = SecretsSchema.safeParse(JSON.parse(opened));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  throw new AgentVaultError("vault_corrupt", "an OAuth credential's sealed tokens are not in the expected form");
}

export function openOAuthSecrets(store: VaultStore, vault: VaultRecord, key: string): OAuthSecrets {
  const record = vault.credentials[key];
  if (!record) throw new AgentVaultError("credential_not_found", `no credential ${key} in vault "${vault.name}"`);
  return parseOAuthSecrets(store.openValue(CREDENTIAL_KIND, vault.id, key, record.value));
}

export interface SaveTokens {
  readonly config: OAuthConfig;
  readonly secrets: OAuthSecrets;
  /** Seconds the access token lives, as the provider said; undefined: no expiry known. */
  readonly expiresIn: number | undefined;
  readonly event: "connected" | "refreshed";
  /** A "connected" save that came from a refresh grant (a pasted refresh token proven at once). */
  readonly refreshed?: boolean;
  readonly description?: string | undefined;
}

/** Writes tokens and configuration in one update; creates the record when the key is new. */
export async function saveOAuthTokens(store: VaultStore, vaultName: string, key: string, save: SaveTokens, now = Date.now()): Promise<CredentialRecord> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    const existing = vault.credentials[key];
    if (existing && existing.type !== "oauth") {
      throw new AgentVaultError("conflict", `${key} is a static credential in vault "${vault.name}"`, { hint: `delete it first (agent-vault vault credential delete ${key}) or use another key` });
    }
    const stamp = new Date(now).toISOString();
    const metadata: Record<string, string> = {};
    // Keep what is not OAuth state (e.g. the proposal it came from); OAuth fields are rewritten.
    for (const [name, text] of Object.entries(existing?.metadata ?? {})) if (!name.startsWith("oauth_")) metadata[name] = text;
    Object.assign(metadata, configMetadata(save.config), { oauth_status: "connected" });
    // Only a refresh that happened is recorded as one (a connect or a pasted token is not).
    if (save.event === "refreshed" || save.refreshed) metadata.oauth_last_refresh = stamp;
    if (save.event === "connected") metadata.oauth_connected_at = stamp;
    else if (existing?.metadata.oauth_connected_at) metadata.oauth_connected_at = existing.metadata.oauth_connected_at;
    const record: CredentialRecord = {
      type: "oauth",
      description: save.description ?? existing?.description ?? "",
      created_at: existing?.created_at ?? stamp,
      updated_at: stamp,
      expires_at: save.expiresIn !== undefined ? new Date(now + save.expiresIn * 1000).toISOString() : null,
      metadata,
      value: store.sealValue(CREDENTIAL_KIND, vault.id, key, JSON.stringify(save.secrets)),
    };
    vault.credentials[key] = record;
    return record;
  });
}

/** Records a failed refresh; a permanent one marks the credential refresh_failed. */
export async function recordOAuthFailure(store: VaultStore, vaultName: string, key: string, reason: string, permanent: boolean, now = Date.now()): Promise<void> {
  await store.update((body) => {
    const record = findVault(body, vaultName).credentials[key];
    if (!record || record.type !== "oauth") return;
    record.metadata = { ...record.metadata, oauth_last_error: reason.slice(0, 1000), oauth_last_error_at: new Date(now).toISOString() };
    if (permanent) record.metadata.oauth_status = "refresh_failed";
  });
}

export interface OAuthStatusView {
  readonly key: string;
  readonly status: OAuthStatus;
  readonly provider: string | null;
  readonly client_id: string | null;
  readonly token_url: string | null;
  readonly authorization_url: string | null;
  readonly scopes: string | null;
  readonly token_auth_method: TokenAuthMethod | null;
  readonly expires_at: string | null;
  readonly connected_at: string | null;
  readonly last_refresh: string | null;
  readonly last_error: string | null;
  readonly last_error_at: string | null;
  readonly has_refresh_token: boolean;
  readonly has_client_secret: boolean;
}

/** What `oauth status` shows: configuration and times, whether secrets are held, never their values. */
export function oauthStatusView(store: VaultStore, vault: VaultRecord, key: string): OAuthStatusView {
  const record = vault.credentials[key];
  if (!record) throw new AgentVaultError("credential_not_found", `no credential ${key} in vault "${vault.name}"`);
  if (record.type !== "oauth") throw new AgentVaultError("invalid_argument", `${key} is a static credential, not an OAuth one`);
  const secrets = openOAuthSecrets(store, vault, key);
  const config = oauthConfigOf(record);
  const m = record.metadata;
  return {
    key,
    status: oauthStatusOf(record),
    provider: config?.provider ?? null,
    client_id: config?.client_id ?? null,
    token_url: config?.token_url ?? null,
    authorization_url: config?.authorization_url ?? null,
    scopes: config?.scopes ?? null,
    token_auth_method: config?.token_auth_method ?? null,
    expires_at: record.expires_at,
    connected_at: m.oauth_connected_at ?? null,
    last_refresh: m.oauth_last_refresh ?? null,
    last_error: m.oauth_last_error ?? null,
    last_error_at: m.oauth_last_error_at ?? null,
    has_refresh_token: secrets.refresh_token !== undefined,
    has_client_secret: secrets.client_secret !== undefined,
  };
}
