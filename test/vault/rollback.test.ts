// Rollback and key rotation (issue 13, item 5), in process against the real store: a running
// process refuses a restored old copy of vault.av and puts the newer state back; changing the
// master password rotates the data key, so an old copy and its old password open nothing sealed
// afterwards.
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { setCredentials } from "../../src/vault/credentials.ts";
import { CREDENTIAL_KIND } from "../../src/vault/credential.schema.ts";
import { createSession, revokeSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { PASSWORD, type TempVault, tempVault } from "../support/vault.ts";
import { waitUntil } from "../support/process.ts";

let T: TempVault | null = null;
afterEach(() => {
  T?.cleanup();
  T = null;
});

function generationOnDisk(t: TempVault): number {
  const body = JSON.parse(readFileSync(t.paths.stateFile, "utf8").split("\n")[2]!) as { generation?: number };
  return body.generation ?? 0;
}

describe("a restored old copy", () => {
  test("every write counts up the generation", async () => {
    T = await tempVault();
    const before = generationOnDisk(T);
    await setCredentials(T.store, "default", [{ key: "A_KEY", value: "value-aaaaaaaa" }]);
    await setCredentials(T.store, "default", [{ key: "B_KEY", value: "value-bbbbbbbb" }]);
    expect(generationOnDisk(T)).toBe(before + 2);
  });

  test("is refused by a running process, which keeps the newer state and writes it back", async () => {
    T = await tempVault();
    const { id } = (await createSession(T.store, "default", {})).session;
    const old = `${T.paths.stateFile}.old`;
    copyFileSync(T.paths.stateFile, old);
    await revokeSession(T.store, "default", id);
    const revokedGeneration = generationOnDisk(T);
    // Another long-lived process (a server) that has seen the revocation.
    const server = await VaultStore.unlock(T.paths, async () => PASSWORD);
    const told: [number, number][] = [];
    server.onRollback = (found, expected) => void told.push([found, expected]);
    // The agent puts the old copy back (same user: it can).
    copyFileSync(old, T.paths.stateFile);
    const seen = server.read();
    expect(seen.vaults[0]!.sessions.find((s) => s.id === id)?.revoked_at).not.toBeNull();
    expect(told).toEqual([[revokedGeneration - 1, revokedGeneration]]);
    // The newer state is put back for every other reader.
    await waitUntil("the newer state written back", () => generationOnDisk(T!) > revokedGeneration, 5000);
    const fresh = await VaultStore.unlock(T.paths, async () => PASSWORD);
    expect(fresh.read().vaults[0]!.sessions.find((s) => s.id === id)?.revoked_at).not.toBeNull();
  });
});

describe("master-password change rotates the data key", () => {
  test("an old copy and the old password open nothing sealed after the change", async () => {
    T = await tempVault();
    await setCredentials(T.store, "default", [{ key: "OLD_KEY", value: "before-the-change-1234" }]);
    const old = `${T.paths.stateFile}.old`;
    copyFileSync(T.paths.stateFile, old);
    await T.store.setPassword("a brand new master password");
    await setCredentials(T.store, "default", [{ key: "NEW_KEY", value: "after-the-change-5678" }]);
    // Every value, old and new, opens with the new password...
    const now = await VaultStore.unlock(T.paths, async () => "a brand new master password");
    const vault = now.read().vaults[0]!;
    expect(now.openValue(CREDENTIAL_KIND, vault.id, "OLD_KEY", vault.credentials.OLD_KEY!.value)).toBe("before-the-change-1234");
    expect(now.openValue(CREDENTIAL_KIND, vault.id, "NEW_KEY", vault.credentials.NEW_KEY!.value)).toBe("after-the-change-5678");
    // ...and the old copy with the old password opens neither the new value nor the resealed old one.
    copyFileSync(old, `${T.paths.stateFile}`);
    const attacker = await VaultStore.unlock(T.paths, async () => PASSWORD);
    expect(() => attacker.openValue(CREDENTIAL_KIND, vault.id, "NEW_KEY", vault.credentials.NEW_KEY!.value)).toThrow("does not open");
    expect(() => attacker.openValue(CREDENTIAL_KIND, vault.id, "OLD_KEY", vault.credentials.OLD_KEY!.value)).toThrow("does not open");
  });

  test("the old password no longer unlocks the current file; a process holding the old key is told to restart", async () => {
    T = await tempVault();
    const server = await VaultStore.unlock(T.paths, async () => PASSWORD);
    await T.store.setPassword("a brand new master password");
    await expect(VaultStore.unlock(T.paths, async () => PASSWORD)).rejects.toThrow("wrong master password");
    expect(() => server.read()).toThrow("master password was changed");
  });
});
