// Named vaults inside one data directory: which one a command means, and creating, renaming and
// removing them. A vault's id never changes, so a rename re-seals nothing.
import { AgentVaultError } from "../shared/errors.ts";
import { type Body, type VaultRecord, VaultNameSchema } from "./state.schema.ts";
import { newVaultRecord } from "./vault.ts";
import { didYouMean } from "../shared/suggest.ts";
import { parseStateFile } from "./format.ts";
import { readFileOrNull } from "./store.ts";

/** --vault, else AGENT_VAULT_VAULT, else the current vault, else `default`. */
export function resolveVaultName(body: Body, explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? (env.AGENT_VAULT_VAULT || undefined) ?? body.current_vault ?? "default";
}

export function findVault(body: Body, name: string): VaultRecord {
  const vault = body.vaults.find((v) => v.name === name);
  if (!vault)
    throw new AgentVaultError(
      "vault_not_found",
      `no vault named "${name}"${didYouMean(
        name,
        body.vaults.map((v) => v.name),
      )}`,
    );
  return vault;
}

/**
 * The vault names in the state file, read without the key (names are in clear: docs/vault-format.md
 * section 5), for a command that needs no password (`log --vault`). Nothing authenticates them, so
 * they serve a typo's error and its suggestion, never a decision. Null without a readable file.
 */
export function vaultNamesUnverified(stateFile: string): string[] | null {
  try {
    const bytes = readFileOrNull(stateFile);
    if (bytes === null) return null;
    const body = JSON.parse(parseStateFile(bytes, stateFile).bodyText) as { vaults?: unknown };
    if (!Array.isArray(body.vaults)) return null;
    return body.vaults.map((v: { name?: unknown }) => v?.name).filter((name): name is string => VaultNameSchema.safeParse(name).success);
  } catch {
    return null;
  }
}

export function checkVaultName(name: string): string {
  const parsed = VaultNameSchema.safeParse(name);
  if (!parsed.success) throw new AgentVaultError("invalid_argument", `invalid vault name "${name}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export function createVault(body: Body, name: string): VaultRecord {
  checkVaultName(name);
  if (body.vaults.some((v) => v.name === name)) throw new AgentVaultError("vault_exists", `a vault named "${name}" already exists`);
  const vault = newVaultRecord(name);
  body.vaults.push(vault);
  return vault;
}

export function deleteVault(body: Body, name: string): void {
  findVault(body, name);
  if (body.vaults.length === 1) {
    throw new AgentVaultError("conflict", `"${name}" is the only vault`, { hint: "create another vault before deleting this one" });
  }
  body.vaults = body.vaults.filter((v) => v.name !== name);
  if (body.current_vault === name) body.current_vault = body.vaults[0]!.name;
}

export function renameVault(body: Body, from: string, to: string): void {
  const vault = findVault(body, from);
  checkVaultName(to);
  if (body.vaults.some((v) => v.name === to)) throw new AgentVaultError("vault_exists", `a vault named "${to}" already exists`);
  vault.name = to;
  if (body.current_vault === from) body.current_vault = to;
}

export function useVault(body: Body, name: string): void {
  findVault(body, name);
  body.current_vault = name;
}
