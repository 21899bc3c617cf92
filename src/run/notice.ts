// The foreground notice: while `server` or `run` holds a terminal, a new pending proposal gets one
// line on that terminal's stderr (never into the agent's output) saying how to review it. It polls
// the vault file, so it sees proposals filed through any server of the data directory.
import { displaySafe } from "../shared/text.ts";
import { type Body } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { statusOf } from "../vault/proposals.ts";

/**
 * Calls `scan` with the vault state every `intervalMs` (a stat, and a re-read only when the file
 * changed); a state that cannot be read right now (mid-write elsewhere, refused) is skipped.
 * Returns the stop.
 */
export function watchVault(store: VaultStore, intervalMs: number, scan: (body: Body, isFirst: boolean) => void): () => void {
  let isFirst = true;
  const tick = () => {
    let body: Body;
    try {
      body = store.read();
    } catch {
      return;
    }
    scan(body, isFirst);
    isFirst = false;
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export function watchProposals(store: VaultStore, vaultName: string | null, write: (line: string) => void, intervalMs = 1000): () => void {
  const seen = new Set<string>();
  return watchVault(store, intervalMs, (body, isFirst) => {
    const announce = !isFirst;
    for (const vault of body.vaults) {
      if (vaultName !== null && vault.name !== vaultName) continue;
      for (const proposal of vault.proposals) {
        const key = `${vault.id}:${proposal.id}`;
        if (seen.has(key) || statusOf(proposal) !== "pending") continue;
        seen.add(key);
        if (!announce) continue;
        const wants = [
          ...proposal.services.map((s) => (s.action === "set" ? `${s.name} (${s.host})` : `remove ${s.name}`)),
          ...proposal.credentials.map((c) => (c.action === "set" ? c.key : `remove ${c.key}`)),
        ].join(", ");
        const vaultFlag = vault.name !== body.current_vault ? ` --vault ${vault.name}` : "";
        // Names and hosts are validated at filing, but this line lands on the user's terminal
        // beside the agent's own output: escaped all the same, so a looser schema cannot open it.
        write(`agent-vault: proposal #${proposal.id} in vault "${vault.name}" asks for ${displaySafe(wants.slice(0, 200))}; review it: agent-vault vault proposal show ${proposal.id}${vaultFlag}\n`);
      }
    }
  });
}
