// What every command shares: the common flags, unlocking the data directory with the password
// from --password-stdin, AGENT_VAULT_MASTER_PASSWORD or a masked prompt (in that order), and
// resolving which vault a command means.
import { type Command } from "commander";
import { masterPasswordFromEnv } from "../shared/harden.ts";
import { homePaths } from "../shared/paths.ts";
import { type Body, type VaultRecord } from "../vault/state.schema.ts";
import { VaultStore } from "../vault/vault.ts";
import { findVault, resolveVaultName } from "../vault/vaults.ts";
import { promptHidden, readStdinLine } from "./io.ts";

export interface CommonOptions {
  readonly vault?: string;
  readonly json?: boolean;
  readonly passwordStdin?: boolean;
}

export function withVaultOption(command: Command): Command {
  return command.option("--vault <name>", "vault to use (default: AGENT_VAULT_VAULT, else the current vault)");
}

export function withJsonOption(command: Command): Command {
  return command.option("--json", "print JSON");
}

export function withPasswordOption(command: Command): Command {
  return command.option("--password-stdin", "read the master password from the first line of stdin");
}

/** Password sources in DESIGN's order; the prompt only on a terminal. */
export async function readMasterPassword(options: CommonOptions, question = "Master password: "): Promise<string> {
  if (options.passwordStdin) return readStdinLine("the master password");
  const fromEnv = masterPasswordFromEnv();
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return promptHidden(question);
}

export async function openStore(options: CommonOptions, question?: string): Promise<VaultStore> {
  // --password-stdin always takes the first line, even when the vault turns out to need no
  // password: otherwise a script's password would become the start of a `KEY=-` value.
  const early = options.passwordStdin ? await readStdinLine("the master password") : undefined;
  return VaultStore.unlock(homePaths(), async () => early ?? readMasterPassword(options, question));
}

export interface VaultContext {
  readonly store: VaultStore;
  readonly body: Body;
  readonly vault: VaultRecord;
}

/** Unlocks and finds the vault the command means (it must exist). */
export async function openVault(options: CommonOptions, question?: string): Promise<VaultContext> {
  const store = await openStore(options, question);
  const body = store.read();
  const vault = findVault(body, resolveVaultName(body, options.vault));
  return { store, body, vault };
}
