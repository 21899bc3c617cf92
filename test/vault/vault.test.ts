import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { AgentVaultError } from "../../src/shared/errors.ts";
import { deleteCredentials, getCredentialValue, listCredentials, setCredentials } from "../../src/vault/credentials.ts";
import { addService, parseServiceInput, setServices } from "../../src/vault/services.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { createVault, findVault, renameVault } from "../../src/vault/vaults.ts";
import { PASSWORD, tempVault, type TempVault } from "../support/vault.ts";

let fixture: TempVault | undefined;
afterEach(() => fixture?.cleanup());

describe("the vault store", () => {
  test("permissions: directory 0700, files 0600", async () => {
    fixture = await tempVault();
    expect(statSync(fixture.paths.home).mode & 0o777).toBe(0o700);
    expect(statSync(fixture.paths.stateFile).mode & 0o777).toBe(0o600);
    await setCredentials(fixture.store, "default", [{ key: "A", value: "1" }]);
    expect(statSync(fixture.paths.stateFile).mode & 0o777).toBe(0o600);
  });

  test("a failing change writes nothing", async () => {
    fixture = await tempVault();
    await setCredentials(fixture.store, "default", [{ key: "A", value: "1" }]);
    const before = readFileSync(fixture.paths.stateFile);
    await expect(deleteCredentials(fixture.store, "default", ["A", "MISSING"])).rejects.toThrow(/MISSING/);
    await expect(
      setCredentials(fixture.store, "default", [
        { key: "B", value: "2" },
        { key: "bad", value: "3" },
      ]),
    ).rejects.toThrow(AgentVaultError);
    expect(readFileSync(fixture.paths.stateFile).equals(before)).toBe(true);
  });

  test("overwrite keeps created_at and changes the value", async () => {
    fixture = await tempVault();
    await setCredentials(fixture.store, "default", [{ key: "A", value: "first" }], { description: "d" });
    const created = listCredentials(findVault(fixture.store.read(), "default"))[0]!.created_at;
    await Bun.sleep(5);
    await setCredentials(fixture.store, "default", [{ key: "A", value: "second" }]);
    const vault = findVault(fixture.store.read(), "default");
    const view = listCredentials(vault)[0]!;
    expect(view.created_at).toBe(created);
    expect(view.updated_at > created).toBe(true);
    expect(view.description).toBe("d");
    expect(getCredentialValue(fixture.store, vault, "A")).toBe("second");
  });

  test("renaming a vault re-seals nothing and values still open", async () => {
    fixture = await tempVault();
    await setCredentials(fixture.store, "default", [{ key: "A", value: "v" }]);
    await fixture.store.update((body) => {
      createVault(body, "work");
      renameVault(body, "default", "personal");
    });
    const body = fixture.store.read();
    expect(body.current_vault).toBe("personal");
    expect(getCredentialValue(fixture.store, findVault(body, "personal"), "A")).toBe("v");
  });

  test("another process's write is seen without reopening", async () => {
    fixture = await tempVault();
    const other = await VaultStore.unlock(fixture.paths, async () => PASSWORD);
    await setCredentials(other, "default", [{ key: "FROM_OTHER", value: "x" }]);
    expect(Object.keys(findVault(fixture.store.read(), "default").credentials)).toEqual(["FROM_OTHER"]);
  });

  test("master password change, remove and set re-wrap the same data key", async () => {
    fixture = await tempVault();
    await setCredentials(fixture.store, "default", [{ key: "A", value: "kept" }]);
    await fixture.store.setPassword("a new password");
    await expect(VaultStore.unlock(fixture.paths, async () => PASSWORD)).rejects.toThrow(/wrong master password/);
    const reopened = await VaultStore.unlock(fixture.paths, async () => "a new password");
    expect(getCredentialValue(reopened, findVault(reopened.read(), "default"), "A")).toBe("kept");

    await reopened.setPassword(null);
    expect(statSync(fixture.paths.keyFile).mode & 0o777).toBe(0o600);
    const noPassword = await VaultStore.unlock(fixture.paths, async () => {
      throw new Error("must not ask");
    });
    expect(getCredentialValue(noPassword, findVault(noPassword.read(), "default"), "A")).toBe("kept");

    await noPassword.setPassword("third password");
    expect(existsSync(fixture.paths.keyFile)).toBe(false);
    await expect(noPassword.setPassword("short")).rejects.toThrow(/at least 8/);
  });

  test("services must name credentials the vault has", async () => {
    fixture = await tempVault();
    const input = parseServiceInput({ name: "github", host: "api.github.com", auth: { type: "bearer", token: "GITHUB_TOKEN" } });
    await expect(addService(fixture.store, "default", input)).rejects.toThrow(/GITHUB_TOKEN/);
    await setCredentials(fixture.store, "default", [{ key: "GITHUB_TOKEN", value: "x" }]);
    await addService(fixture.store, "default", input);
    await expect(addService(fixture.store, "default", input)).rejects.toThrow(/already has/);
    const result = await setServices(fixture.store, "default", [parseServiceInput({ name: "open", host: "*.example.com", auth: { type: "passthrough" } })], true);
    expect(result).toEqual({ added: ["open"], updated: [], removed: ["github"] });
  });
});
