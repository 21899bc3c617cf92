// Values of source credentials, in this process's memory only (never on disk, never on a Flow).
// One fetch per credential at a time (requests that arrive meanwhile wait for it); a value is
// fresh for its TTL and is refreshed in the background from 80% of it, so a credential in use
// never makes a request wait; a value past its TTL is fetched again before it is used, unless the
// source is failing, when the last good value is served until one more TTL has passed (retried in
// the background meanwhile); with no good value left, 502 source_unavailable names the source and
// the reason. Health changes (failing, recovered) are reported through onHealth, which the proxy
// writes into the credential's metadata for `status`, `credential list` and the TUI.
import { AgentVaultError } from "../shared/errors.ts";
import { type SourceSpec, sourceCommandOf } from "../vault/source.schema.ts";
import { type FetchResult, runSource } from "./runner.ts";

/** Refresh in the background once this share of the TTL has passed. */
const REFRESH_AT = 0.8;
/** While failing, a background retry at most this often (and at most every TTL/5). */
const RETRY_MS = 5_000;
/**
 * Commands running at once in this process: a vault with fifty sourced keys warms them all on
 * its first inspected request, and fifty gpg decrypts or `op` calls at once would starve the
 * machine (and trip 1Password's rate limits). The rest queue.
 */
const MAX_RUNNING = 4;

export interface SourceHealth {
  readonly vaultId: string;
  readonly key: string;
  readonly from: string;
  readonly ok: boolean;
  /** Why it fails (no command output): the error the agent and the log may see. */
  readonly reason: string | null;
  /** stderr of the failed command, cut and escaped: for the person, never the agent. */
  readonly detail: string | null;
  readonly at: number;
}

interface Entry {
  readonly spec: SourceSpec;
  value: string | null;
  fetchedAt: number;
  failing: { reason: string; since: number } | null;
  lastAttempt: number;
  inflight: Promise<void> | null;
  usedSinceFetch: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface SourceCacheOptions {
  readonly fetch?: (spec: SourceSpec) => Promise<FetchResult>;
  readonly now?: () => number;
  readonly onHealth?: (health: SourceHealth) => void;
}

export class SourceCache {
  private readonly entries = new Map<string, Entry>();
  private readonly fetchOne: (spec: SourceSpec) => Promise<FetchResult>;
  private readonly now: () => number;
  private readonly onHealth: (health: SourceHealth) => void;
  /** Bumped whenever a value changes, so patterns built from the values are rebuilt. */
  version = 0;
  private running = 0;
  private readonly queued: (() => void)[] = [];

  constructor(options: SourceCacheOptions = {}) {
    this.fetchOne = options.fetch ?? ((spec) => runSource(sourceCommandOf(spec.from)));
    this.now = options.now ?? Date.now;
    this.onHealth = options.onHealth ?? (() => undefined);
  }

  // Keyed by the reference too: a key pointed at another source starts with nothing.
  private entry(vaultId: string, key: string, spec: SourceSpec): Entry {
    const id = `${vaultId}\0${key}\0${spec.from}\0${spec.ttl_ms}`;
    let entry = this.entries.get(id);
    if (!entry) {
      for (const [other, old] of this.entries) {
        if (other.startsWith(`${vaultId}\0${key}\0`)) {
          if (old.timer) clearTimeout(old.timer);
          this.entries.delete(other);
          if (old.value !== null) this.version++;
        }
      }
      entry = { spec, value: null, fetchedAt: 0, failing: null, lastAttempt: 0, inflight: null, usedSinceFetch: false, timer: null };
      this.entries.set(id, entry);
    }
    return entry;
  }

  /**
   * Makes sure KEY has a value to use now, fetching when it must. Throws source_unavailable when
   * there is none (never fetched, or the last good one is more than two TTLs old).
   */
  async ensure(vaultId: string, key: string, spec: SourceSpec): Promise<void> {
    const entry = this.entry(vaultId, key, spec);
    entry.usedSinceFetch = true;
    const ttl = spec.ttl_ms;
    const age = this.now() - entry.fetchedAt;
    if (entry.value !== null && age < ttl) {
      if (age >= ttl * REFRESH_AT) this.refreshInBackground(vaultId, key, entry);
      return;
    }
    if (entry.value !== null && age < 2 * ttl && entry.failing) {
      // The source is known to fail: serve the last good value, retry without making anyone wait.
      this.refreshInBackground(vaultId, key, entry);
      return;
    }
    await this.fetch(vaultId, key, entry);
    if (entry.value !== null && this.now() - entry.fetchedAt < 2 * ttl) return;
    throw new AgentVaultError("source_unavailable", `credential ${key} comes from ${spec.from.slice(0, 200)}, which failed: ${entry.failing?.reason ?? "no value"}`);
  }

  /** The value to inject now (after ensure), or null. */
  peek(vaultId: string, key: string, spec: SourceSpec): string | null {
    const entry = this.entries.get(`${vaultId}\0${key}\0${spec.from}\0${spec.ttl_ms}`);
    if (!entry || entry.value === null || this.now() - entry.fetchedAt >= 2 * spec.ttl_ms) return null;
    return entry.value;
  }

  /** Why the source fails, while it fails (the last good value is then what peek gives). */
  failingReason(vaultId: string, key: string, spec: SourceSpec): string | null {
    return this.entries.get(`${vaultId}\0${key}\0${spec.from}\0${spec.ttl_ms}`)?.failing?.reason ?? null;
  }

  /** Every value held for a vault, for the guard and scrubbing (by key). */
  valuesOf(vaultId: string): [string, string][] {
    const out: [string, string][] = [];
    for (const [id, entry] of this.entries) {
      const [vid, key] = id.split("\0");
      if (vid === vaultId && entry.value !== null) out.push([key!, entry.value]);
    }
    return out;
  }

  /** Starts a fetch for a credential never fetched here, so the guard knows its value early. */
  warm(vaultId: string, key: string, spec: SourceSpec): void {
    const entry = this.entry(vaultId, key, spec);
    if (entry.value === null && entry.lastAttempt === 0) this.fetch(vaultId, key, entry).catch(() => undefined);
  }

  private refreshInBackground(vaultId: string, key: string, entry: Entry): void {
    if (entry.inflight) return;
    const retryEvery = Math.min(RETRY_MS, entry.spec.ttl_ms / 5);
    if (entry.failing && this.now() - entry.lastAttempt < retryEvery) return;
    this.fetch(vaultId, key, entry).catch(() => undefined);
  }

  private fetch(vaultId: string, key: string, entry: Entry): Promise<void> {
    entry.inflight ??= this.run(vaultId, key, entry).finally(() => {
      entry.inflight = null;
    });
    return entry.inflight;
  }

  private async run(vaultId: string, key: string, entry: Entry): Promise<void> {
    if (this.running >= MAX_RUNNING) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.running++;
    entry.lastAttempt = this.now();
    let result: FetchResult;
    try {
      result = await this.fetchOne(entry.spec);
    } catch (error) {
      result = { ok: false, reason: error instanceof Error ? error.message : String(error), detail: "" };
    } finally {
      this.running--;
      this.queued.shift()?.();
    }
    const at = this.now();
    if (result.ok) {
      if (entry.value !== result.value) this.version++;
      const wasFailing = entry.failing !== null || entry.fetchedAt === 0;
      entry.value = result.value;
      entry.fetchedAt = at;
      entry.failing = null;
      entry.usedSinceFetch = false;
      this.schedule(vaultId, key, entry);
      if (wasFailing) this.onHealth({ vaultId, key, from: entry.spec.from, ok: true, reason: null, detail: null, at });
      return;
    }
    const isNew = entry.failing === null || entry.failing.reason !== result.reason;
    entry.failing = { reason: result.reason, since: entry.failing?.since ?? at };
    if (isNew) this.onHealth({ vaultId, key, from: entry.spec.from, ok: false, reason: result.reason, detail: result.detail || null, at });
  }

  /** At 80% of the TTL, refresh a value that was used since it was fetched: nobody waits for it. */
  private schedule(vaultId: string, key: string, entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (entry.usedSinceFetch) this.refreshInBackground(vaultId, key, entry);
    }, entry.spec.ttl_ms * REFRESH_AT);
    entry.timer.unref?.();
  }

  /** Health of every source this process has fetched, for `status` in the same process. */
  health(): { key: string; from: string; ok: boolean; reason: string | null; fetched_at: number | null }[] {
    return [...this.entries.entries()].map(([id, e]) => ({ key: id.split("\0")[1]!, from: e.spec.from, ok: e.failing === null, reason: e.failing?.reason ?? null, fetched_at: e.fetchedAt || null }));
  }
}
