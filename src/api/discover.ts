// What an agent may know about its vault: service names and hosts, and credential key names.
// Never a value. Shared by GET /discover and `agent-vault vault discover`.
import { type CredentialType } from "../vault/credential.schema.ts";
import { listCredentials } from "../vault/credentials.ts";
import { type VaultRecord } from "../vault/state.schema.ts";

export interface Discovery {
  readonly vault: string;
  readonly services: { name: string; host: string }[];
  readonly available_credentials: string[];
}

/** `allowed`: the services the asker may use (null: all); an agent sees only its grants. */
export function discover(vault: VaultRecord, allowed: ReadonlySet<string> | null = null): Discovery {
  const services = vault.services.filter((s) => s.enabled && (allowed === null || allowed.has(s.name)));
  return {
    vault: vault.name,
    services: services.map((s) => ({ name: s.name, host: s.host })),
    available_credentials: allowed === null ? Object.keys(vault.credentials).sort() : credentialMetadata(vault, allowed, {}).map((c) => c.key),
  };
}

export interface CredentialMetadata {
  readonly key: string;
  readonly type: CredentialType;
  readonly description: string;
  readonly expires_at: string | null;
  /** Services (of those the asker may use) that send this credential. */
  readonly services: string[];
  /** OAuth credentials: not_connected, connected or refresh_failed. */
  readonly oauth_status?: string;
}

/**
 * The credentials an agent may have used for it: those its allowed services send (every one when
 * `allowed` is null), filtered by service and type. Metadata only; there is no way to a value.
 */
export function credentialMetadata(vault: VaultRecord, allowed: ReadonlySet<string> | null, filter: { service?: string | null; type?: string | null }): CredentialMetadata[] {
  const out: CredentialMetadata[] = [];
  for (const view of listCredentials(vault)) {
    const services = view.services.filter((s) => allowed === null || allowed.has(s));
    if (allowed !== null && services.length === 0) continue;
    if (filter.service && !services.includes(filter.service)) continue;
    if (filter.type && view.type !== filter.type) continue;
    out.push({
      key: view.key,
      type: view.type,
      description: view.description,
      expires_at: view.expires_at,
      services,
      ...(view.type === "oauth" ? { oauth_status: view.metadata.oauth_status ?? "not_connected" } : {}),
    });
  }
  return out;
}
