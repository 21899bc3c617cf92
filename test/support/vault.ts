// In-process fixtures for vault tests: a temporary data directory unlocked through the real API.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { homePaths, type HomePaths } from "../../src/shared/paths.ts";
import { initializeHome, VaultStore } from "../../src/vault/vault.ts";

export const PASSWORD = "correct horse battery staple";

export interface TempVault {
  readonly paths: HomePaths;
  readonly store: VaultStore;
  cleanup(): void;
}

/** Lowers the KDF cost through the explicit test hook, then initializes and unlocks. */
export async function tempVault(options: { password?: string | null } = {}): Promise<TempVault> {
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const root = mkdtempSync(join(tmpdir(), "av-unit-"));
  const paths = homePaths(join(root, "home"));
  const password = options.password === undefined ? PASSWORD : options.password;
  await initializeHome(paths, password);
  const store = await VaultStore.unlock(paths, async () => password ?? "");
  return { paths, store, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
