// `bun scripts/bench-audit.ts`: what the audit trail (src/vault/audit.ts) costs a proxied request,
// measured in process against the real store in a scratch data directory. Three parts, each the
// median of several rounds:
//   1. record(): what the request path itself pays (queueing the record the listener builds);
//   2. the flush: sealing (JSON, HMAC, SHA-256) and appending a second's worth of records under the
//      vault lock, per record;
//   3. the anchor: one vault write (VaultStore.update), spread over the requests of one anchor
//      interval (5 s at the keep-alive rate).
// It prints the sum per request beside the keep-alive request's own cost (docs/performance.md,
// "Audit"), which it takes from KEEPALIVE_US (default 400 us, bench:proxy's workload 1).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { homePaths } from "../src/shared/paths.ts";
import { initializeHome, VaultStore } from "../src/vault/vault.ts";

process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
// The flushes measured here must not anchor: anchoring is measured on its own.
process.env.AGENT_VAULT_AUDIT_ANCHOR_MS = "3600000";

const KEEPALIVE_US = Number(process.env.KEEPALIVE_US) || 400;
const PER_SECOND = Math.round(1_000_000 / KEEPALIVE_US);
const ANCHOR_EVERY = PER_SECOND * 5;
const ROUNDS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const root = mkdtempSync(join(tmpdir(), "av-bench-audit-"));
try {
  const paths = homePaths(join(root, "home"));
  await initializeHome(paths, null);
  const store = await VaultStore.unlock(paths, async () => "");
  // The first write makes the audit key; the first anchor is due at once.
  store.audit.record({ kind: "credential_set", vault: "default", keys: ["WARM_UP"] });
  await store.update(() => undefined);

  const event = (i: number) => ({
    kind: "request_allowed" as const,
    vault: "default",
    session: "s_0123456789ab",
    agent: null,
    method: "GET",
    host: "api.bench.test",
    path: `/v1/items/${i}`.split("?")[0]!,
    service: "bench",
    status: 200,
    code: null,
  });

  const recordUs: number[] = [];
  const flushUs: number[] = [];
  const anchorUs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let started = performance.now();
    for (let i = 0; i < PER_SECOND; i++) store.audit.record(event(i));
    recordUs.push(((performance.now() - started) * 1000) / PER_SECOND);

    started = performance.now();
    await store.audit.flush();
    flushUs.push(((performance.now() - started) * 1000) / PER_SECOND);

    started = performance.now();
    await store.update(() => undefined);
    anchorUs.push((performance.now() - started) * 1000);
  }
  const record = median(recordUs);
  const flush = median(flushUs);
  const anchor = median(anchorUs);
  const perRequest = record + flush + anchor / ANCHOR_EVERY;
  const rows = [
    ["record() on the request path", `${record.toFixed(2)} µs`],
    [`flush: seal and append (${PER_SECOND} records a second), per record`, `${flush.toFixed(2)} µs`],
    ["anchor: one vault write", `${(anchor / 1000).toFixed(2)} ms`],
    [`anchor per request (one per ${ANCHOR_EVERY} requests)`, `${(anchor / ANCHOR_EVERY).toFixed(3)} µs`],
    ["**total per request**", `**${perRequest.toFixed(2)} µs**`],
    [`share of a ${KEEPALIVE_US} µs keep-alive request (target ≤ 5%)`, `${((perRequest / KEEPALIVE_US) * 100).toFixed(2)}% ${perRequest / KEEPALIVE_US <= 0.05 ? "yes" : "**no**"}`],
  ];
  console.log("| audit cost | median of 7 rounds |\n|---|---|");
  for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
