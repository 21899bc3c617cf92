// Connecting and pasting an OAuth credential, shared by the CLI and the TUI. The configuration is
// put together from, in order of precedence: what the user gave (a provider named now brings its
// URLs), what the record already holds (e.g. a proposal's oauth slot, whose URLs count only where
// they are a known provider's), and the provider preset. Nothing is written unless the provider
// accepted: a denied consent, a refused code or a refused refresh token leave the vault as it was.
import { AgentVaultError } from "../shared/errors.ts";
import { type CredentialRecord } from "../vault/credential.schema.ts";
import { checkCredentialKey } from "../vault/credentials.ts";
import { type OAuthConfig, oauthConfigOf, oauthStatusOf, openOAuthSecrets, type OAuthSecrets, saveOAuthTokens, TOKEN_AUTH_METHODS, type TokenAuthMethod } from "../vault/oauth-record.ts";
import { type VaultStore } from "../vault/vault.ts";
import { findVault } from "../vault/vaults.ts";
import { authorizeWithLoopback } from "./connect.ts";
import { findProvider, PROVIDERS, type ProviderPreset } from "./providers.ts";
import { checkTokenUrl, TokenEndpointError, tokenRequest } from "./token-client.ts";
import { didYouMean } from "../shared/suggest.ts";

export interface ConfigInput {
  readonly provider?: string | undefined;
  readonly authorizationUrl?: string | undefined;
  readonly tokenUrl?: string | undefined;
  readonly clientId?: string | undefined;
  readonly scopes?: string | undefined;
  readonly tokenAuthMethod?: string | undefined;
}

export interface ResolvedConfig {
  readonly config: OAuthConfig;
  readonly preset: ProviderPreset | null;
  /** A client secret already sealed in the record (a reconnect reuses it). */
  readonly storedSecret: string | undefined;
}

function existingOAuth(store: VaultStore, vaultName: string, key: string): { record: CredentialRecord | undefined; secrets: OAuthSecrets } {
  const vault = findVault(store.read(), vaultName);
  const record = vault.credentials[key];
  if (record && record.type !== "oauth") {
    throw new AgentVaultError("conflict", `${key} is a static credential in vault "${vault.name}"`, { hint: `delete it first (agent-vault vault credential delete ${key}) or choose another key` });
  }
  return { record, secrets: record ? openOAuthSecrets(store, vault, key) : {} };
}

function checkMethod(text: string): TokenAuthMethod {
  const method = TOKEN_AUTH_METHODS.find((m) => m === text);
  if (!method) throw new AgentVaultError("invalid_argument", `--token-auth-method "${text.slice(0, 60)}" is not one of ${TOKEN_AUTH_METHODS.join(", ")}${didYouMean(text, TOKEN_AUTH_METHODS)}`);
  return method;
}

/** A token URL and an authorization URL: those an agent wrote (agentWrittenUrls), or the ones the user vouched for. */
export interface StatedUrls {
  readonly tokenUrl?: string;
  readonly authorizationUrl?: string;
}

/**
 * The URLs an agent's proposal wrote into `record` that are not a known provider's, while the
 * credential was never connected since: the agent's words. The refresh token, the code and the
 * client secret would be posted to its token URL, and the browser sent to its authorization URL,
 * so connect and paste use them only when the user names a provider or states them (the CLI's
 * --token-url, the TUI's confirmation). Found by the red team (HIGH): approving an OAuth slot and
 * pasting a refresh token, even with --provider, posted it to the agent's own server.
 */
export function agentWrittenUrls(record: CredentialRecord): StatedUrls {
  const stored = oauthConfigOf(record);
  if (!stored || !isAgentWritten(record)) return {};
  const tokenUrl = PROVIDERS.some((p) => p.token_url === stored.token_url) ? undefined : stored.token_url;
  const authorizationUrl = stored.authorization_url === undefined || PROVIDERS.some((p) => p.authorization_url === stored.authorization_url) ? undefined : stored.authorization_url;
  return { ...(tokenUrl ? { tokenUrl } : {}), ...(authorizationUrl ? { authorizationUrl } : {}) };
}

/** Whether `record`'s OAuth settings are still an agent's proposal's: never connected since it was applied. */
function isAgentWritten(record: CredentialRecord): boolean {
  return record.metadata.proposal !== undefined && oauthStatusOf(record) === "not_connected";
}

/** The configuration for KEY; `needAuthorizationUrl` for connect, which cannot work without one. */
export function resolveConfig(
  store: VaultStore,
  vaultName: string,
  key: string,
  input: ConfigInput,
  options: { needAuthorizationUrl: boolean; hasNewSecret: boolean; needTokenUrl?: boolean },
): ResolvedConfig {
  checkCredentialKey(key);
  const { record, secrets } = existingOAuth(store, vaultName, key);
  const stored = record ? oauthConfigOf(record) : null;
  const providerName = input.provider ?? stored?.provider;
  const preset = providerName ? findProvider(providerName) : null;
  // A provider the user names now wins over what the record holds; a URL the user gives, over both.
  const named = input.provider !== undefined ? preset : null;
  const unknown = record ? agentWrittenUrls(record) : {};
  const agentWrote = record !== undefined && isAgentWritten(record);
  const refuse = (what: string, url: string, flag: string) =>
    new AgentVaultError("invalid_argument", `${key}'s ${what} ${url} was written by the agent's proposal #${record!.metadata.proposal} and is not a known provider's`, {
      hint: `name the provider (--provider NAME, see \`agent-vault oauth providers\`), or check the URL and pass it yourself with ${flag}`,
    });
  let storedAuthorization = stored?.authorization_url;
  if (unknown.authorizationUrl !== undefined && input.authorizationUrl === undefined && !named?.authorization_url) {
    // Connect would open it in the browser; paste would only have kept it for a later connect.
    if (options.needAuthorizationUrl) throw refuse("authorization URL", unknown.authorizationUrl, "--authorization-url");
    storedAuthorization = undefined;
  }
  const authorizationUrl = input.authorizationUrl ?? named?.authorization_url ?? storedAuthorization ?? preset?.authorization_url;
  if (unknown.tokenUrl !== undefined && input.tokenUrl === undefined && !named) throw refuse("token URL", unknown.tokenUrl, "--token-url");
  const tokenUrl = input.tokenUrl ?? named?.token_url ?? stored?.token_url ?? preset?.token_url;
  // A pasted access token alone is used until it expires or is replaced: with no refresh token
  // there is nothing to send to a token URL, so none is demanded ("" is stored as none).
  if (!tokenUrl && options.needTokenUrl === false)
    return { config: { token_url: "", client_id: input.clientId ?? stored?.client_id, token_auth_method: "none", provider: preset?.name }, preset, storedSecret: secrets.client_secret };
  if (!tokenUrl) {
    throw new AgentVaultError("invalid_argument", `${key} has no token URL`, { hint: "pass --provider NAME (see `agent-vault oauth providers`) or --token-url URL" });
  }
  checkTokenUrl(tokenUrl);
  if (options.needAuthorizationUrl) {
    if (!authorizationUrl) {
      const fromProposal = record?.metadata.proposal !== undefined;
      throw new AgentVaultError("invalid_argument", `${key} has no authorization URL${fromProposal ? " (its proposal asked for pasted tokens)" : ""}`, {
        hint: `pass --provider NAME or --authorization-url URL, or paste tokens with agent-vault oauth paste ${key}`,
      });
    }
    checkTokenUrl(authorizationUrl, "the authorization URL");
  }
  const hasSecret = options.hasNewSecret || secrets.client_secret !== undefined;
  // An agent's "none" (so no client secret is asked for) gives way to a provider the user names, too.
  const storedMethod = record?.metadata.oauth_token_auth_method !== undefined && !(agentWrote && named) ? stored?.token_auth_method : undefined;
  const method: TokenAuthMethod = input.tokenAuthMethod
    ? checkMethod(input.tokenAuthMethod)
    : storedMethod !== undefined && !(storedMethod === "none" && options.hasNewSecret)
      ? storedMethod
      : hasSecret
        ? (preset?.token_auth_method ?? "client_secret_post")
        : "none";
  const config: OAuthConfig = {
    token_url: tokenUrl,
    authorization_url: authorizationUrl,
    client_id: input.clientId ?? stored?.client_id,
    // Scopes an agent's proposal asked for give way to those of a provider the user names.
    scopes: input.scopes ?? (agentWrote && named ? named.scopes : undefined) ?? stored?.scopes ?? preset?.scopes,
    token_auth_method: method,
    provider: preset?.name,
  };
  return { config, preset, storedSecret: secrets.client_secret };
}

/** True when the configuration's token auth method needs a client secret. */
export function needsClientSecret(config: OAuthConfig): boolean {
  return config.token_auth_method !== "none";
}

/**
 * Whether to ask the user for a client secret: the method needs one, or the provider usually
 * does (then an empty answer means a public client). Never when one is stored already.
 */
export function shouldAskClientSecret(resolved: ResolvedConfig, methodGiven: boolean): boolean {
  if (resolved.storedSecret !== undefined) return false;
  return needsClientSecret(resolved.config) || (resolved.preset !== null && resolved.preset.token_auth_method !== "none" && !methodGiven);
}

export interface ConnectInput {
  readonly resolved: ResolvedConfig;
  /** A secret typed or piped now; else the stored one. */
  readonly clientSecret?: string | undefined;
  readonly port?: number | undefined;
  readonly timeoutMs: number;
  readonly onReady: (authorizationUrl: string, redirectUri: string) => void;
  readonly description?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The authorization code flow end to end; stores the tokens only when the exchange succeeded. */
export async function connectOAuth(store: VaultStore, vaultName: string, key: string, input: ConnectInput): Promise<CredentialRecord> {
  const { config, preset } = input.resolved;
  const clientSecret = input.clientSecret ?? input.resolved.storedSecret;
  if (!config.client_id) throw new AgentVaultError("invalid_argument", `${key} has no client id`, { hint: `pass --client-id ID${preset ? ` (register an app at ${preset.register})` : ""}` });
  if (needsClientSecret(config) && !clientSecret) {
    throw new AgentVaultError("invalid_argument", `${config.token_auth_method} needs a client secret`, { hint: "pass --client-secret-stdin, or run in a terminal to be asked" });
  }
  const tokens = await authorizeWithLoopback({
    client: { token_url: config.token_url, client_id: config.client_id, client_secret: clientSecret, token_auth_method: config.token_auth_method },
    authorization_url: config.authorization_url!,
    scopes: config.scopes,
    extra: preset?.extra,
    port: input.port,
    timeoutMs: input.timeoutMs,
    onReady: input.onReady,
    signal: input.signal,
  });
  return saveOAuthTokens(store, vaultName, key, {
    config,
    secrets: { access_token: tokens.access_token, refresh_token: tokens.refresh_token, client_secret: config.token_auth_method === "none" ? undefined : clientSecret },
    expiresIn: tokens.expires_in,
    event: "connected",
    description: input.description,
  });
}

export interface PasteInput {
  readonly resolved: ResolvedConfig;
  readonly accessToken?: string | undefined;
  readonly refreshToken?: string | undefined;
  readonly clientSecret?: string | undefined;
  /** Seconds the pasted access token has left. */
  readonly expiresIn?: number | undefined;
  readonly description?: string | undefined;
}

/**
 * Stores pasted tokens. A refresh token is proven first by refreshing with it (the fresh access
 * token and any rotated refresh token are what get stored); if the provider refuses, nothing is.
 */
export async function pasteOAuth(store: VaultStore, vaultName: string, key: string, input: PasteInput): Promise<CredentialRecord> {
  const { config } = input.resolved;
  const clientSecret = input.clientSecret ?? input.resolved.storedSecret;
  if (!input.accessToken && !input.refreshToken) throw new AgentVaultError("invalid_argument", "nothing to paste: give an access token, a refresh token, or both");
  const keepSecret = config.token_auth_method === "none" ? undefined : clientSecret;
  if (!input.refreshToken) {
    return saveOAuthTokens(store, vaultName, key, {
      config,
      secrets: { access_token: input.accessToken, client_secret: keepSecret },
      expiresIn: input.expiresIn,
      event: "connected",
      description: input.description,
    });
  }
  if (needsClientSecret(config) && !clientSecret) {
    throw new AgentVaultError("invalid_argument", `${config.token_auth_method} needs a client secret to check the refresh token`, {
      hint: "pass --client-secret-stdin, or --token-auth-method none for a public client",
    });
  }
  let tokens;
  try {
    tokens = await tokenRequest(
      { token_url: config.token_url, client_id: config.client_id, client_secret: clientSecret, token_auth_method: config.token_auth_method },
      { grant_type: "refresh_token", refresh_token: input.refreshToken },
    );
  } catch (error) {
    // A refusal is the provider's answer about the token; an endpoint that could not be reached or
    // verified said nothing about it.
    if (error instanceof TokenEndpointError && error.isAnswer) {
      throw new AgentVaultError("oauth_refresh_failed", `the refresh token was refused, so nothing was stored: ${error.reason}`, {
        hint: "check the token, the token URL and the client id (and secret)",
      });
    }
    if (error instanceof TokenEndpointError) {
      throw new AgentVaultError("oauth_refresh_failed", `the refresh token could not be checked, so nothing was stored: ${error.reason}`, {
        hint: "check that the token URL's host is reachable and trusted from here (AGENT_VAULT_CONNECT_TO, AGENT_VAULT_UPSTREAM_CA), then paste again",
      });
    }
    throw error;
  }
  // The refresh just made is a real one: status shows it as the last refresh.
  return saveOAuthTokens(store, vaultName, key, {
    config,
    secrets: { access_token: tokens.access_token, refresh_token: tokens.refresh_token ?? input.refreshToken, client_secret: keepSecret },
    expiresIn: tokens.expires_in,
    event: "connected",
    refreshed: true,
    description: input.description,
  });
}
