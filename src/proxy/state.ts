// What the proxy knows about the vault, derived once per state version: the session index and one
// service matcher per vault. Another process's write (a new credential, an approved proposal, a
// revoked session) shows up on the next request, because store.read() notices the file changed.
import { indexTokens, type TokenEntry } from "../vault/principals.ts";
import { type Body, type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { ServiceMatcher } from "./match.ts";
import { type Pattern, vaultPatterns } from "./secrets.ts";
import { RequestTails } from "./tails.ts";
import { SourceCache } from "../sources/cache.ts";
import { recordSourceHealth } from "../sources/health.ts";
import { sourceSpecOf } from "../vault/credentials.ts";
import { patternsOf } from "./secrets.ts";

export interface Snapshot {
  readonly body: Body;
  /** Token hash → session or agent. */
  readonly tokens: ReadonlyMap<string, TokenEntry>;
  readonly vaults: ReadonlyMap<string, { readonly vault: VaultRecord; readonly matcher: ServiceMatcher }>;
}

export class ProxyState {
  readonly store: VaultStore;
  private snapshot: Snapshot | null = null;
  // Keyed by the vault record, which is new whenever the state file changes: no stale values.
  private readonly patterns = new WeakMap<VaultRecord, readonly Pattern[]>();
  /** What each principal last sent each host, for values split across requests (tails.ts). */
  readonly tails = new RequestTails();

  /** Values of source credentials fetched by this process (src/sources/cache.ts). */
  readonly sources: SourceCache;
  private readonly withSourced = new WeakMap<VaultRecord, { version: number; patterns: readonly Pattern[] }>();

  /** The vault's credential values in every form the guard and scrubbing look for. */
  secrets(vault: VaultRecord): readonly Pattern[] {
    let found = this.patterns.get(vault);
    if (!found) this.patterns.set(vault, (found = vaultPatterns(this.store, vault)));
    if (!Object.values(vault.credentials).some((r) => r.type === "source")) return found;
    // Sourced values join once fetched (and a never-fetched one is fetched now, in the
    // background, so the guard knows it from the next request on).
    const cached = this.withSourced.get(vault);
    if (cached?.version === this.sources.version) return cached.patterns;
    for (const [key, record] of Object.entries(vault.credentials)) if (record.type === "source") this.sources.warm(vault.id, key, sourceSpecOf(this.store, vault, key));
    const version = this.sources.version;
    const patterns = [...found, ...this.sources.valuesOf(vault.id).flatMap(([key, value]) => patternsOf(key, value))].sort((a, b) => b.bytes.length - a.bytes.length);
    this.withSourced.set(vault, { version, patterns });
    return patterns;
  }

  constructor(store: VaultStore) {
    this.store = store;
    this.sources = new SourceCache({ onHealth: (health) => recordSourceHealth(store, health) });
  }

  current(): Snapshot {
    const body = this.store.read();
    if (this.snapshot?.body === body) return this.snapshot;
    const vaults = new Map(body.vaults.map((vault) => [vault.id, { vault, matcher: new ServiceMatcher(vault.services) }]));
    this.snapshot = { body, tokens: indexTokens(body), vaults };
    return this.snapshot;
  }
}
