// What an agent may know about its vault: service names and hosts, and credential key names.
// Never a value. Shared by GET /discover and `agent-vault vault discover`.
import { type Session, type VaultRecord } from "../vault/state.schema.ts";

export interface Discovery {
  readonly vault: string;
  readonly services: { name: string; host: string }[];
  readonly available_credentials: string[];
}

export function discover(vault: VaultRecord, session?: Session): Discovery {
  const allowed = session?.services ?? null;
  return {
    vault: vault.name,
    services: vault.services.filter((s) => s.enabled && (allowed === null || allowed.includes(s.name))).map((s) => ({ name: s.name, host: s.host })),
    available_credentials: Object.keys(vault.credentials).sort(),
  };
}
