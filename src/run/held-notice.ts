// run's terminal hears of its own session's held requests: one line on stderr per request held
// (never into the agent's output), saying how to answer it. It polls the vault file (a stat; a
// re-read only when it changed), so it sees requests held by any server of the data directory.
import { displaySafe } from "../shared/text.ts";
import { heldStatusOf } from "../vault/held.ts";
import { type VaultStore } from "../vault/vault.ts";
import { watchVault } from "./notice.ts";

export function watchHeld(store: VaultStore, sessionId: string, write: (line: string) => void, intervalMs = 250): () => void {
  const seen = new Set<string>();
  return watchVault(store, intervalMs, (body) => {
    for (const vault of body.vaults) {
      for (const held of vault.held) {
        const key = `${vault.id}:${held.id}`;
        if (held.session !== sessionId || seen.has(key) || heldStatusOf(held) !== "pending") continue;
        seen.add(key);
        const vaultFlag = vault.name !== body.current_vault ? ` --vault ${vault.name}` : "";
        const target = `${held.method} ${held.host}${held.port === 443 ? "" : `:${held.port}`}${held.path}`;
        // The path is the agent's: escaped, and cut, before it reaches the user's terminal.
        write(`agent-vault: holding ${displaySafe(target.slice(0, 200))} for approval (agent-vault held allow ${held.id}${vaultFlag}, or held deny ${held.id})\n`);
      }
    }
  });
}
