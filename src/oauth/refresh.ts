// Keeping OAuth access tokens fresh. One refresh per credential at a time in this process (callers
// that arrive while one is running wait for it); a rotated refresh token replaces the old one; a
// permanent refusal marks the credential refresh_failed with the provider's reason; transient
// failures (5xx, 408, 429, network) are retried with backoff before giving up.
import { join } from "node:path";
import { AgentVaultError } from "../shared/errors.ts";
import { type CredentialRecord } from "../vault/credential.schema.ts";
import { isNearExpiry, oauthConfigOf, openOAuthSecrets, recordOAuthFailure, saveOAuthTokens } from "../vault/oauth-record.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { withFileLock } from "../vault/store.ts";
import { type VaultStore } from "../vault/vault.ts";
import { TokenEndpointError, type TokenNet, tokenNetFromEnv, tokenRequest } from "./token-client.ts";

/** Pauses before the second, third and fourth attempt of a transiently failing refresh. */
const DEFAULT_BACKOFF_MS = [250, 1000, 2500];

export interface RefreshOptions {
  /** Refresh even when the token is not near expiry (an upstream 401, `oauth refresh`). */
  readonly force?: boolean;
  /** With force: skip when the record changed since this `updated_at` (someone refreshed already). */
  readonly ifUnchangedSince?: string;
}

export class OAuthRefresher {
  private readonly inflight = new Map<string, Promise<CredentialRecord>>();
  private readonly store: VaultStore;
  private readonly net: () => TokenNet;
  private readonly backoff: readonly number[];

  constructor(store: VaultStore, options: { net?: TokenNet; backoffMs?: readonly number[] } = {}) {
    this.store = store;
    this.net = options.net ? () => options.net! : tokenNetFromEnv;
    this.backoff = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  }

  /** Refreshes KEY of the vault (by id) if needed, and returns its record as it stands after. */
  refresh(vaultId: string, key: string, options: RefreshOptions = {}): Promise<CredentialRecord> {
    const id = `${vaultId}\0${key}`;
    const running = this.inflight.get(id);
    if (running) return running;
    const started = this.run(vaultId, key, options).finally(() => this.inflight.delete(id));
    this.inflight.set(id, started);
    return started;
  }

  private current(vaultId: string, key: string): { vault: VaultRecord; record: CredentialRecord } {
    const vault = this.store.read().vaults.find((v) => v.id === vaultId);
    const record = vault?.credentials[key];
    if (!vault || !record) throw new AgentVaultError("credential_not_found", `credential ${key} is gone from the vault`);
    if (record.type !== "oauth") throw new AgentVaultError("invalid_argument", `${key} is a static credential, not an OAuth one`);
    return { vault, record };
  }

  /**
   * Across processes too: a `server`, several `run`s serving their own proxy and `oauth refresh`
   * take a lock per credential, and whoever comes second reads the first one's tokens instead of
   * replaying a refresh token that has just been rotated (which providers punish by revoking).
   */
  private run(vaultId: string, key: string, options: RefreshOptions): Promise<CredentialRecord> {
    const lock = join(this.store.paths.home, `oauth-${vaultId}-${key}.lock`);
    return withFileLock(lock, lock, () => this.runLocked(vaultId, key, options));
  }

  private async runLocked(vaultId: string, key: string, options: RefreshOptions): Promise<CredentialRecord> {
    const { vault, record } = this.current(vaultId, key);
    if (!options.force && !isNearExpiry(record, Date.now())) return record;
    if (options.force && options.ifUnchangedSince !== undefined && record.updated_at !== options.ifUnchangedSince) return record;
    const config = oauthConfigOf(record);
    const secrets = openOAuthSecrets(this.store, vault, key);
    if (!config || !secrets.refresh_token) {
      const reason = !secrets.refresh_token ? "no refresh token is stored" : "no token URL is configured";
      throw new TokenEndpointError(`cannot refresh ${key}: ${reason}; connect it again or paste new tokens`, true);
    }
    let attempt = 0;
    for (;;) {
      try {
        const tokens = await tokenRequest(
          { token_url: config.token_url, client_id: config.client_id, client_secret: secrets.client_secret, token_auth_method: config.token_auth_method },
          { grant_type: "refresh_token", refresh_token: secrets.refresh_token },
          this.net(),
        );
        return await saveOAuthTokens(this.store, vault.name, key, {
          config,
          // A provider that rotates sends a new refresh token; one that does not keeps the old valid.
          secrets: { ...secrets, access_token: tokens.access_token, refresh_token: tokens.refresh_token ?? secrets.refresh_token },
          expiresIn: tokens.expires_in,
          event: "refreshed",
        });
      } catch (error) {
        if (!(error instanceof TokenEndpointError)) throw error;
        if (!error.permanent && attempt < this.backoff.length) {
          await new Promise((resolve) => setTimeout(resolve, this.backoff[attempt++]));
          continue;
        }
        await recordOAuthFailure(this.store, vault.name, key, error.reason, error.permanent).catch(() => undefined);
        throw new TokenEndpointError(`refreshing ${key} failed: ${error.reason}`, error.permanent);
      }
    }
  }
}
