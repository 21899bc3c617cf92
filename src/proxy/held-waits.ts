// The proxy's side of held requests: record one in the vault state, then wait for a person's answer
// by re-reading the state (a stat every POLL_MS, a verified re-read only when the file changed).
// Identical requests of one principal waiting at the same time (same method, host, port, path and
// body hash) share one record, and a denial or a timeout answers them all; an allow sends only one
// of them. A different body is a new record.
import { createHash } from "node:crypto";
import { type Answer, answerFrom, problem } from "../shared/answers.ts";
import { expireHeld, type HeldRequest, heldFor, holdRequest } from "../vault/held.ts";
import { type Held } from "../vault/held.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { isPrincipalLive } from "../vault/principals.ts";

/**
 * How often a waiting request looks for the answer: a stat of the state file, so cheap; it bounds
 * the delay from `held allow` (or the TUI's `y`) to the request leaving (docs/performance.md).
 */
const POLL_MS = 10;

export const EMPTY_BODY_SHA256 = createHash("sha256").update("").digest("hex");

export function sha256Hex(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Null: allowed, send it. Otherwise the answer the agent gets (approval_denied or approval_timeout). */
function verdictOf(held: Held): Answer | null | "pending" {
  if (held.status === "allowed") return null;
  if (held.status === "denied") {
    const reason = held.reason ? `: ${held.reason}` : "";
    return problem("approval_denied", `a person denied held request #${held.id} (${held.method} ${held.host}); nothing was sent${reason}`, { held: held.id, reason: held.reason ?? "" });
  }
  if (held.status === "timeout") return timedOut(held);
  return "pending";
}

function timedOut(held: Held): Answer {
  return problem("approval_timeout", `nobody answered held request #${held.id} (${held.method} ${held.host}) in time; nothing was sent`, { held: held.id });
}

/** Identical requests waiting on one record: its id once held, and whether its allow was spent. */
interface SharedRecord {
  id: number | null;
  isSpent: boolean;
}

interface SharedWait {
  readonly record: SharedRecord;
  readonly verdict: Promise<Answer | null>;
}

export class HeldWaits {
  private readonly waiting = new Map<string, SharedWait>();

  constructor(private readonly store: VaultStore) {}

  /**
   * Holds the request until a person answers or its time runs out; null means allowed. A denial or
   * a timeout answers every identical copy that waited with it, but an allow sends one: the person
   * saw one request, and the red team had 25 copies of one `POST /v1/charges` (each with its own
   * Idempotency-Key) sent on one approval. The others are refused, to be sent (and held) again.
   */
  async wait(request: HeldRequest): Promise<Answer | null> {
    const key = [request.vaultId, request.principal, request.method, request.host, request.port, request.path, request.bodySha256].join("\n");
    let shared = this.waiting.get(key);
    if (!shared) {
      const record: SharedRecord = { id: null, isSpent: false };
      shared = { record, verdict: this.hold(request, record).finally(() => this.waiting.delete(key)) };
      this.waiting.set(key, shared);
    }
    const verdict = await shared.verdict;
    if (verdict !== null) return verdict;
    const { record } = shared;
    if (!record.isSpent) {
      record.isSpent = true;
      return null;
    }
    return problem(
      "approval_denied",
      `held request #${record.id} (${request.method} ${request.host}) was allowed for one request, and an identical one that waited with it took it; this copy was not sent (send it again to have it held)`,
      { held: record.id ?? 0 },
    );
  }

  private async hold(request: HeldRequest, shared: SharedRecord): Promise<Answer | null> {
    let held: Held;
    try {
      held = await holdRequest(this.store, request);
      shared.id = held.id;
    } catch (error) {
      // Too many waiting already, or the state cannot be written: never sent unanswered.
      const refusal = answerFrom(error);
      return refusal.code === "approval_denied" ? refusal : problem("approval_denied", `the request could not be held for approval (${refusal.message}); nothing was sent`);
    }
    const deadline = Date.parse(held.expires_at);
    for (;;) {
      let current: Held | null = held;
      let isLive = true;
      try {
        const body = this.store.read();
        current = heldFor(body, request.vaultId, held.id, held.nonce);
        isLive = isPrincipalLive(body, request.principal);
      } catch {
        // A state file that does not verify (the agent wrote it) answers nothing: keep waiting.
      }
      if (current === null) return problem("approval_denied", `held request #${held.id} is gone from the vault; nothing was sent`, { held: held.id });
      // A session revoked or ended while it waits gets its answer now, not when a person answers.
      if (!isLive) return problem("unauthorized", `held request #${held.id} (${request.method} ${request.host}): the session ended while it waited; nothing was sent`, { held: held.id });
      const verdict = verdictOf(current);
      if (verdict !== "pending") return verdict;
      if (Date.now() >= deadline) {
        const after = await expireHeld(this.store, request.vaultId, held.id, held.nonce).catch(() => null);
        const last = after ? verdictOf(after) : "pending";
        return last === "pending" ? timedOut(held) : last;
      }
      await Bun.sleep(POLL_MS);
    }
  }
}

const registries = new WeakMap<VaultStore, HeldWaits>();

/** One registry per unlocked store: every listener of this process shares its waits. */
export function heldWaitsFor(store: VaultStore): HeldWaits {
  let waits = registries.get(store);
  if (!waits) registries.set(store, (waits = new HeldWaits(store)));
  return waits;
}
