// Unlocking for commands that still say something useful without the vault (`status`, `doctor`):
// the password comes from the usual sources (--password-stdin, AGENT_VAULT_MASTER_PASSWORD, a
// prompt on a terminal), and when none has one the command goes on with what needs no key.
import { type AgentVaultError, isAgentVaultError } from "../shared/errors.ts";
import { type HomePaths } from "../shared/paths.ts";
import { isInitialized, VaultStore } from "../vault/vault.ts";
import { type CommonOptions, readMasterPassword } from "./context.ts";

export type Unlocked =
  | { readonly kind: "open"; readonly store: VaultStore }
  | { readonly kind: "not_initialized" }
  /** No password source: the vault needs one and nothing gave it. */
  | { readonly kind: "locked" }
  /** Any other failure (wrong password, a damaged file). */
  | { readonly kind: "failed"; readonly error: AgentVaultError };

export async function unlockIfPossible(paths: HomePaths, options: CommonOptions): Promise<Unlocked> {
  if (!isInitialized(paths)) return { kind: "not_initialized" };
  try {
    return { kind: "open", store: await VaultStore.unlock(paths, () => readMasterPassword(options)) };
  } catch (error) {
    if (isAgentVaultError(error) && error.code === "password_required") return { kind: "locked" };
    if (isAgentVaultError(error) && error.code === "not_initialized") return { kind: "not_initialized" };
    if (isAgentVaultError(error)) return { kind: "failed", error };
    throw error;
  }
}
