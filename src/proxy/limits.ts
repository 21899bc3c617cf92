// The stateful half of access policies: rate limits (a token bucket per principal and policy, in
// this process) and usage caps (counts kept in memory and added to the vault in batches, so a
// request costs no vault write). Several proxies (a server and `run`s serving their own) each keep
// their own buckets; usage counts add up in the vault, give or take the last unflushed second.
import { addUsage } from "../vault/agents.ts";
import { type PolicyHolder } from "../vault/principals.ts";
import { type VaultStore } from "../vault/vault.ts";

const FLUSH_MS = 1000;

interface Bucket {
  tokens: number;
  at: number;
  readonly perMinute: number;
}

export interface RateVerdict {
  /** RateLimit-* (and Retry-After when refused) headers for the agent. */
  readonly headers: Record<string, string>;
  readonly refusedBy: PolicyHolder | null;
}

export class AccessLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Map<string, number>();
  private flushing: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly store: VaultStore) {}

  /** Requests counted but not yet in the vault, for a usage-cap check. */
  unflushed(id: string): number {
    return this.pending.get(id) ?? 0;
  }

  /** Takes one request from every rate-limited policy of the principal, or none if any is empty. */
  takeRate(holders: readonly PolicyHolder[], now: number): RateVerdict {
    let tightest: { holder: PolicyHolder; bucket: Bucket } | null = null;
    const limited: { holder: PolicyHolder; bucket: Bucket }[] = [];
    for (const holder of holders) {
      const limit = holder.policy.rate_limit?.requests_per_minute;
      if (limit === undefined) continue;
      const key = `${holder.id}:${limit}`;
      let bucket = this.buckets.get(key);
      if (!bucket) this.buckets.set(key, (bucket = { tokens: limit, at: now, perMinute: limit }));
      bucket.tokens = Math.min(limit, bucket.tokens + ((now - bucket.at) * limit) / 60_000);
      bucket.at = now;
      limited.push({ holder, bucket });
      if (!tightest || bucket.tokens < tightest.bucket.tokens) tightest = { holder, bucket };
    }
    if (!tightest) return { headers: {}, refusedBy: null };
    const { bucket } = tightest;
    if (bucket.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil(((1 - bucket.tokens) * 60_000) / bucket.perMinute / 1000));
      return { headers: { ...rateHeaders(bucket), "retry-after": String(retryAfter) }, refusedBy: tightest.holder };
    }
    for (const { bucket: b } of limited) b.tokens -= 1;
    return { headers: rateHeaders(bucket), refusedBy: null };
  }

  /** Counts an allowed request against the caps of the holders that have one. */
  count(holders: readonly PolicyHolder[]): void {
    for (const holder of holders) {
      if (holder.policy.usage_cap === undefined) continue;
      this.pending.set(holder.id, (this.pending.get(holder.id) ?? 0) + 1);
    }
    if (this.pending.size > 0 && !this.timer) {
      this.timer = setInterval(() => void this.flush(), FLUSH_MS);
      this.timer.unref?.();
    }
  }

  /** Adds the counts to the vault; they leave `pending` only once written. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return Promise.resolve();
    }
    const batch = new Map(this.pending);
    this.flushing = addUsage(this.store, batch)
      .then(() => {
        for (const [id, n] of batch) {
          const left = (this.pending.get(id) ?? 0) - n;
          if (left > 0) this.pending.set(id, left);
          else this.pending.delete(id);
        }
      })
      .catch(() => undefined)
      .finally(() => (this.flushing = null));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // Counts added while a flush ran are flushed too.
    for (let i = 0; i < 5 && (this.pending.size > 0 || this.flushing); i++) await this.flush();
  }
}

function rateHeaders(bucket: Bucket): Record<string, string> {
  const remaining = Math.max(0, Math.floor(bucket.tokens));
  const reset = Math.ceil(((bucket.perMinute - bucket.tokens) * 60) / bucket.perMinute);
  return {
    "ratelimit-limit": String(bucket.perMinute),
    "ratelimit-remaining": String(remaining),
    "ratelimit-reset": String(Math.max(0, reset)),
    "ratelimit-policy": `${bucket.perMinute};w=60`,
  };
}
