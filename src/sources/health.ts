// Where a source's health goes: into the credential's metadata (source_status, source_error,
// source_since), so `status`, `credential list` and the TUI of any process see it, and one line on
// the server's stderr. Written only when the health changes (failing, a new reason, recovered),
// never per request. The reason holds no command output (runner.ts): a command's stderr may echo
// what it read, and a detached server's stderr, like every file here, is the agent's to read. The
// person sees the command's own words with `agent-vault vault credential get KEY`, which fetches
// in their terminal.
import { findVault } from "../vault/vaults.ts";
import { type VaultStore } from "../vault/vault.ts";
import { displaySafe } from "../shared/text.ts";
import { type SourceHealth } from "./cache.ts";

export function recordSourceHealth(store: VaultStore, health: SourceHealth, stderr: NodeJS.WritableStream | null = process.stderr): void {
  if (!health.ok && stderr) {
    stderr.write(`agent-vault: the source of ${health.key} (${displaySafe(health.from).slice(0, 200)}) fails: ${health.reason}; see why with agent-vault vault credential get ${health.key}\n`);
  }
  const vault = store.read().vaults.find((v) => v.id === health.vaultId);
  const record = vault?.credentials[health.key];
  if (!vault || record?.type !== "source") return;
  const wanted = health.ok ? "ok" : "failing";
  if (record.metadata.source_status === wanted && (health.ok || record.metadata.source_error === health.reason)) return;
  if (health.ok && record.metadata.source_status === undefined) return; // healthy from the start: nothing to say
  store
    .update((body) => {
      const current = findVault(body, vault.name).credentials[health.key];
      if (current?.type !== "source") return;
      const since = new Date(health.at).toISOString();
      current.metadata = health.ok
        ? { ...current.metadata, source_status: "ok", source_since: since, source_error: "" }
        : {
            ...current.metadata,
            source_status: "failing",
            source_since: current.metadata.source_status === "failing" ? (current.metadata.source_since ?? since) : since,
            source_error: (health.reason ?? "").slice(0, 500),
          };
    })
    .catch(() => undefined);
}
