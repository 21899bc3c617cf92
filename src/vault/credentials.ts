// Credentials of one vault: set (several at once, overwriting), read one value, list metadata,
// delete. Values are sealed on the way in and opened only by getCredentialValue.
import { AgentVaultError } from "../shared/errors.ts";
import { CREDENTIAL_KEY_PATTERN, CREDENTIAL_KIND, type CredentialRecord, CredentialKeySchema, type CredentialType } from "./credential.schema.ts";
import { parseOAuthSecrets } from "./oauth-record.ts";
import { credentialKeysOf } from "./service.schema.ts";
import { type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";
import { didYouMean } from "../shared/suggest.ts";
import { parseSourceSpec, type SourceSpec } from "./source.schema.ts";

export { CREDENTIAL_KIND };
const MAX_VALUE_BYTES = 64 * 1024;

export interface CredentialView {
  readonly key: string;
  readonly type: CredentialType;
  readonly description: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly expires_at: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  /** Services of the vault whose auth names this key. */
  readonly services: readonly string[];
}

export interface CredentialInput {
  readonly key: string;
  readonly value: string;
}

export interface CredentialMetadataInput {
  readonly description?: string | undefined;
  readonly expires_at?: string | null | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly type?: CredentialType | undefined;
}

export function checkCredentialKey(key: string): string {
  // The proxy checks the same few keys on every request: the pattern alone says yes (zod's parse
  // is for the message when it says no).
  if (key.length <= 128 && CREDENTIAL_KEY_PATTERN.test(key)) return key;
  const parsed = CredentialKeySchema.safeParse(key);
  if (!parsed.success) throw new AgentVaultError("invalid_argument", `invalid credential key "${key.slice(0, 140)}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

function checkValue(key: string, value: string): void {
  if (value.length === 0) throw new AgentVaultError("invalid_argument", `the value of ${key} is empty`);
  if (Buffer.byteLength(value, "utf8") > MAX_VALUE_BYTES) {
    throw new AgentVaultError("invalid_argument", `the value of ${key} is larger than ${MAX_VALUE_BYTES / 1024} KiB`);
  }
}

export function servicesUsing(vault: VaultRecord, key: string): string[] {
  return vault.services.filter((s) => credentialKeysOf(s.auth).includes(key)).map((s) => s.name);
}

export function listCredentials(vault: VaultRecord): CredentialView[] {
  const usedBy = new Map<string, string[]>();
  for (const service of vault.services) {
    for (const key of credentialKeysOf(service.auth)) usedBy.set(key, [...(usedBy.get(key) ?? []), service.name]);
  }
  return Object.entries(vault.credentials)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, record]) => ({
      key,
      type: record.type,
      description: record.description,
      created_at: record.created_at,
      updated_at: record.updated_at,
      expires_at: record.expires_at,
      metadata: record.metadata,
      services: usedBy.get(key) ?? [],
    }));
}

/** Seals and stores every entry in one write; an existing key is overwritten, keeping created_at. */
export async function setCredentials(store: VaultStore, vaultName: string, entries: readonly CredentialInput[], meta: CredentialMetadataInput = {}): Promise<void> {
  for (const { key, value } of entries) {
    checkCredentialKey(key);
    checkValue(key, value);
  }
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    const now = new Date().toISOString();
    for (const { key, value } of entries) {
      const existing = vault.credentials[key];
      if (existing?.type === "source") {
        throw new AgentVaultError("conflict", `${key} is fetched from a source (${sourceSpecOf(store, vault, key).from.slice(0, 200)}); change the value there`, {
          hint: `point it elsewhere with agent-vault vault credential source ${key} FROM, or delete it first to store a value here`,
        });
      }
      if (existing?.type === "oauth") {
        throw new AgentVaultError("conflict", `${key} is an OAuth credential; its tokens come from connect or paste`, {
          hint: `use agent-vault oauth paste ${key}, or delete it first to store a static value`,
        });
      }
      const record: CredentialRecord = {
        type: meta.type ?? existing?.type ?? "static",
        description: meta.description ?? existing?.description ?? "",
        created_at: existing?.created_at ?? now,
        updated_at: now,
        expires_at: meta.expires_at !== undefined ? meta.expires_at : (existing?.expires_at ?? null),
        metadata: { ...(existing?.metadata ?? {}), ...(meta.metadata ?? {}) },
        value: store.sealValue(CREDENTIAL_KIND, vault.id, key, value),
      };
      vault.credentials[key] = record;
    }
    store.audit.record({ kind: "credential_set", vault: vault.name, keys: entries.map((e) => e.key) });
  });
}

// Parsed once per record (a record is a new object whenever the state file changes).
const specs = new WeakMap<CredentialRecord, SourceSpec>();

/** The reference of a source credential, opened from its sealed value. */
export function sourceSpecOf(store: VaultStore, vault: VaultRecord, key: string): SourceSpec {
  const record = vault.credentials[key];
  if (record?.type !== "source") throw new AgentVaultError("invalid_argument", `${key} is not a source credential`);
  let spec = specs.get(record);
  if (!spec) specs.set(record, (spec = parseSourceSpec(store.openValue(CREDENTIAL_KIND, vault.id, key, record.value))));
  return spec;
}

/**
 * Stores (or re-points) KEY as fetched from a source: the reference and TTL are sealed like a
 * value. A static or OAuth value under the key is replaced; the audit records the change.
 */
export async function setCredentialSource(store: VaultStore, vaultName: string, key: string, spec: SourceSpec, description?: string): Promise<void> {
  checkCredentialKey(key);
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    const now = new Date().toISOString();
    const existing = vault.credentials[key];
    vault.credentials[key] = {
      type: "source",
      description: description ?? existing?.description ?? "",
      created_at: existing?.created_at ?? now,
      updated_at: now,
      expires_at: null,
      metadata: {},
      value: store.sealValue(CREDENTIAL_KIND, vault.id, key, JSON.stringify(spec)),
    };
    store.audit.record({ kind: "credential_set", vault: vault.name, keys: [key] });
  });
}

/**
 * Opens a static value or an OAuth access token. A source credential's value is not in the vault:
 * the proxy's source cache fetches it (src/sources/), so asking here is an error naming the source.
 */
export function getCredentialValue(store: VaultStore, vault: VaultRecord, key: string): string {
  const record = vault.credentials[checkCredentialKey(key)];
  if (!record) throw new AgentVaultError("credential_not_found", `no credential ${key} in vault "${vault.name}"${didYouMean(key, Object.keys(vault.credentials))}`);
  if (record.type === "source") throw new AgentVaultError("source_unavailable", `${key} is fetched from ${sourceSpecOf(store, vault, key).from.slice(0, 200)} when used; it is not kept in the vault`);
  const opened = store.openValue(CREDENTIAL_KIND, vault.id, key, record.value);
  if (record.type !== "oauth") return opened;
  // An OAuth credential's value is its access token; the refresh token never leaves the vault.
  const token = parseOAuthSecrets(opened).access_token;
  if (token === undefined) throw new AgentVaultError("oauth_not_connected", `${key} is an OAuth credential that is not connected yet`);
  return token;
}

/** Removes every key in one write, or none if any is missing. Returns the services left dangling. */
export async function deleteCredentials(store: VaultStore, vaultName: string, keys: readonly string[]): Promise<Record<string, string[]>> {
  for (const key of keys) checkCredentialKey(key);
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    const missing = keys.filter((k) => !(k in vault.credentials));
    if (missing.length > 0)
      throw new AgentVaultError(
        "credential_not_found",
        `no credential ${missing.join(", ")} in vault "${vault.name}"${missing.length === 1 ? didYouMean(missing[0]!, Object.keys(vault.credentials)) : ""}`,
      );
    const dangling: Record<string, string[]> = {};
    for (const key of keys) {
      delete vault.credentials[key];
      const users = servicesUsing(vault, key);
      if (users.length > 0) dangling[key] = users;
    }
    store.audit.record({ kind: "credential_deleted", vault: vault.name, keys: [...keys] });
    return dangling;
  });
}
