// Named failure vectors of docs/vault-format.md, each through the real unlock path.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { AgentVaultError } from "../../src/shared/errors.ts";
import { sha256Hex } from "../../src/vault/crypto.ts";
import { setCredentials } from "../../src/vault/credentials.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { PASSWORD, tempVault, type TempVault } from "../support/vault.ts";

let fixture: TempVault | undefined;
afterEach(() => fixture?.cleanup());

async function withSecrets(): Promise<TempVault> {
  fixture = await tempVault();
  await setCredentials(fixture.store, "default", [
    { key: "GITHUB_TOKEN", value: "ghp_canary_0001" },
    { key: "OPENAI_API_KEY", value: "sk-canary-0002" },
  ]);
  return fixture;
}

async function unlockError(t: TempVault, password = PASSWORD): Promise<AgentVaultError> {
  try {
    await VaultStore.unlock(t.paths, async () => password);
  } catch (error) {
    expect(error).toBeInstanceOf(AgentVaultError);
    return error as AgentVaultError;
  }
  throw new Error("unlock succeeded");
}

/** Rewrites lines 1-4 and recomputes the sum, as someone who knows the format but not the key would. */
function rewrite(path: string, edit: (lines: string[]) => void): void {
  const lines = readFileSync(path, "utf8").split("\n").slice(0, 4);
  edit(lines);
  const withoutSum = `${lines.join("\n")}\n`;
  writeFileSync(path, `${withoutSum}sum ${sha256Hex(withoutSum)}\n`);
}

describe("vault file vectors", () => {
  test("ok: unlocks and opens values", async () => {
    const t = await withSecrets();
    const store = await VaultStore.unlock(t.paths, async () => PASSWORD);
    const vault = store.read().vaults[0]!;
    expect(store.openValue("credential", vault.id, "GITHUB_TOKEN", vault.credentials.GITHUB_TOKEN!.value)).toBe("ghp_canary_0001");
    expect(readFileSync(t.paths.stateFile, "utf8")).not.toContain("canary");
  });

  test("wrong-password", async () => {
    const t = await withSecrets();
    expect((await unlockError(t, "not the password")).code).toBe("wrong_password");
  });

  test("bad-version: refused before anything else", async () => {
    const t = await withSecrets();
    const bytes = readFileSync(t.paths.stateFile, "utf8");
    writeFileSync(t.paths.stateFile, bytes.replace("agent-vault/v1\n", "agent-vault/v2\n").slice(0, 40));
    const error = await unlockError(t);
    expect(error.code).toBe("unsupported_version");
    expect(error.message).toContain('"2"');
  });

  test("not a vault file", async () => {
    const t = await withSecrets();
    writeFileSync(t.paths.stateFile, "hello\n");
    expect((await unlockError(t)).code).toBe("vault_corrupt");
  });

  test("truncated: at every length the file is refused, naming the file", async () => {
    const t = await withSecrets();
    const bytes = readFileSync(t.paths.stateFile);
    for (const length of [0, 10, 15, 100, bytes.length / 2, bytes.length - 70, bytes.length - 1]) {
      writeFileSync(t.paths.stateFile, bytes.subarray(0, Math.floor(length)));
      const error = await unlockError(t);
      expect(error.code).toBe("vault_corrupt");
      expect(error.message).toContain(t.paths.stateFile);
    }
  });

  test("bad-sum: a flipped byte anywhere is caught, and no value is ever returned", async () => {
    const t = await withSecrets();
    const bytes = readFileSync(t.paths.stateFile);
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i]! ^= 0x20;
      writeFileSync(t.paths.stateFile, copy);
      const error = await unlockError(t);
      expect(["vault_corrupt", "unsupported_version"]).toContain(error.code);
      expect(error.message).not.toContain("canary");
    }
  }, 60_000);

  test("bad-mac: a change with a recomputed sum fails authentication", async () => {
    const t = await withSecrets();
    rewrite(t.paths.stateFile, (lines) => {
      lines[2] = lines[2]!.replace('"unmatched":"passthrough"', '"unmatched":"deny"');
    });
    const error = await unlockError(t);
    expect(error.code).toBe("vault_corrupt");
    expect(error.message).toContain("authentication");
  });

  test("kdf-over-cap: a hostile header cannot demand unbounded work", async () => {
    const t = await withSecrets();
    rewrite(t.paths.stateFile, (lines) => {
      lines[1] = lines[1]!.replace(/"m_kib":\d+/, '"m_kib":4194304');
    });
    const started = performance.now();
    const error = await unlockError(t);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error.code).toBe("vault_corrupt");
    expect(error.message).toContain("capped");
  });

  test("lowered kdf parameters make the unwrap fail (they are bound to the wrapped key)", async () => {
    const t = await withSecrets();
    rewrite(t.paths.stateFile, (lines) => {
      lines[1] = lines[1]!.replace(/"m_kib":\d+/, '"m_kib":32');
    });
    expect((await unlockError(t)).code).toBe("wrong_password");
  });

  test("moved-ciphertext: a value copied to another key does not open, even with a valid MAC", async () => {
    const t = await withSecrets();
    const store = t.store;
    await store.update((body) => {
      const creds = body.vaults[0]!.credentials;
      creds.OPENAI_API_KEY!.value = creds.GITHUB_TOKEN!.value;
    });
    const vault = store.read().vaults[0]!;
    expect(() => store.openValue("credential", vault.id, "OPENAI_API_KEY", vault.credentials.OPENAI_API_KEY!.value)).toThrow(/OPENAI_API_KEY/);
    expect(() => store.openValue("credential", "v_0000000000000000", "GITHUB_TOKEN", vault.credentials.GITHUB_TOKEN!.value)).toThrow(AgentVaultError);
  });
});
