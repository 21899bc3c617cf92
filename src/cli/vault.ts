// `agent-vault vault create|delete|rename|use|current|list` and `vault settings`.
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { UnmatchedPolicySchema } from "../vault/state.schema.ts";
import { createVault, deleteVault, findVault, renameVault, resolveVaultName, useVault } from "../vault/vaults.ts";
import { type CommonOptions, openStore, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { confirm, formatWhen, printJson, printNote, printTable } from "./io.ts";

export function registerVaultManagement(group: Command): void {
  withPasswordOption(group.command("create <name>").description("create a vault")).action(async (name: string, options: CommonOptions) => {
    const store = await openStore(options);
    await store.update((body) => createVault(body, name));
    printNote(`created vault "${name}"; switch to it with: agent-vault vault use ${name}`);
  });

  withPasswordOption(group.command("delete <name>").description("delete a vault and everything in it").option("-y, --yes", "do not ask for confirmation")).action(
    async (name: string, options: CommonOptions & { yes?: boolean }) => {
      const store = await openStore(options);
      const vault = findVault(store.read(), name);
      const count = Object.keys(vault.credentials).length;
      if (!options.yes && !(await confirm(`Delete vault "${name}" with ${count} credential(s) and ${vault.services.length} service(s)?`))) {
        throw new AgentVaultError("cancelled", `vault "${name}" was not deleted`, { hint: "pass --yes to delete without a question" });
      }
      await store.update((body) => deleteVault(body, name));
      printNote(`deleted vault "${name}"`);
    },
  );

  withPasswordOption(group.command("rename <old> <new>").description("rename a vault")).action(async (from: string, to: string, options: CommonOptions) => {
    const store = await openStore(options);
    await store.update((body) => renameVault(body, from, to));
    printNote(`renamed vault "${from}" to "${to}"`);
  });

  withPasswordOption(group.command("use <name>").description("make a vault the current one")).action(async (name: string, options: CommonOptions) => {
    const store = await openStore(options);
    await store.update((body) => useVault(body, name));
    printNote(`current vault: ${name}`);
  });

  withJsonOption(withVaultOption(withPasswordOption(group.command("current").description("print the vault commands use")))).action(async (options: CommonOptions) => {
    const store = await openStore(options);
    const body = store.read();
    const name = resolveVaultName(body, options.vault);
    findVault(body, name);
    if (options.json) printJson({ vault: name, source: options.vault ? "--vault" : process.env.AGENT_VAULT_VAULT ? "AGENT_VAULT_VAULT" : "current" });
    else process.stdout.write(`${name}\n`);
  });

  withJsonOption(withPasswordOption(group.command("list").description("list vaults"))).action(async (options: CommonOptions) => {
    const store = await openStore(options);
    const body = store.read();
    const rows = body.vaults.map((v) => ({
      name: v.name,
      current: v.name === body.current_vault,
      credentials: Object.keys(v.credentials).length,
      services: v.services.length,
      unmatched: v.settings.unmatched,
      created_at: v.created_at,
    }));
    if (options.json) return printJson(rows);
    printTable(
      ["", "NAME", "CREDENTIALS", "SERVICES", "UNMATCHED", "CREATED"],
      rows.map((r) => [r.current ? "*" : "", r.name, String(r.credentials), String(r.services), r.unmatched, formatWhen(r.created_at)]),
    );
  });

  withJsonOption(withVaultOption(withPasswordOption(group.command("settings").description("show or change the vault's settings")))).option(
    "--unmatched <policy>",
    "what to do with hosts no service matches: passthrough (tunnel untouched) or deny (403 with a proposal hint)",
  ).action(async (options: CommonOptions & { unmatched?: string }) => {
    const { store, vault } = await openVault(options);
    let settings = vault.settings;
    if (options.unmatched !== undefined) {
      if (options.unmatched === "guard") {
        throw new AgentVaultError("not_supported", "the guard policy is not available yet", { hint: "use passthrough or deny" });
      }
      const policy = UnmatchedPolicySchema.safeParse(options.unmatched);
      if (!policy.success) throw new AgentVaultError("invalid_argument", `--unmatched must be passthrough or deny, not "${options.unmatched}"`);
      settings = await store.update((body) => {
        const target = findVault(body, vault.name);
        target.settings.unmatched = policy.data;
        return target.settings;
      });
    }
    if (options.json) return printJson({ vault: vault.name, ...settings });
    printTable(["SETTING", "VALUE"], [["unmatched", settings.unmatched]]);
  });
}
