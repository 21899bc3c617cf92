// `agent-vault vault create|delete|rename|use|current|list` and `vault settings`.
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { didYouMean } from "../shared/suggest.ts";
import { isValidHostname } from "../vault/host.ts";
import { type UnmatchedPolicy, UnmatchedPolicySchema } from "../vault/state.schema.ts";
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

  withJsonOption(withVaultOption(withPasswordOption(group.command("settings").description("show or change the vault's settings"))))
    .option("--unmatched <policy>", "hosts no service matches: passthrough (tunnel untouched), deny (403 with a proposal hint) or guard (intercepted, nothing injected, checked by the guard)")
    .option("--guard <on|off>", "refuse requests that carry a credential value (403 credential_exfiltration)")
    .option("--scrub <on|off>", "replace credential values in responses with [REDACTED:KEY]")
    .option("--guard-bypass <hosts>", "under --unmatched guard, comma-separated hosts that stay plain tunnels (pinned certificates); '' clears")
    .action(async (options: CommonOptions & { unmatched?: string; guard?: string; scrub?: string; guardBypass?: string }) => {
      // Every flag is checked before the vault is opened: a typo costs no password prompt.
      const onOff = (flag: string, text: string | undefined): boolean | undefined => {
        if (text === undefined) return undefined;
        if (text === "on" || text === "off") return text === "on";
        throw new AgentVaultError("invalid_argument", `${flag} must be on or off, not "${text.slice(0, 40)}"${didYouMean(text, ["on", "off"])}`);
      };
      const guard = onOff("--guard", options.guard);
      const scrub = onOff("--scrub", options.scrub);
      let unmatched: UnmatchedPolicy | undefined;
      if (options.unmatched !== undefined) {
        const policy = UnmatchedPolicySchema.safeParse(options.unmatched);
        if (!policy.success)
          throw new AgentVaultError(
            "invalid_argument",
            `--unmatched must be passthrough, deny or guard, not "${options.unmatched.slice(0, 40)}"${didYouMean(options.unmatched, ["passthrough", "deny", "guard"])}`,
          );
        unmatched = policy.data;
      }
      let bypass: string[] | undefined;
      if (options.guardBypass !== undefined) {
        bypass = options.guardBypass
          .split(",")
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean);
        for (const host of bypass) if (!isValidHostname(host.replace(/^\*\./, ""))) throw new AgentVaultError("invalid_argument", `--guard-bypass: "${host.slice(0, 80)}" is not a host name`);
      }
      const { store, vault } = await openVault(options);
      let settings = vault.settings;
      if (unmatched !== undefined || guard !== undefined || scrub !== undefined || bypass !== undefined) {
        settings = await store.update((body) => {
          const target = findVault(body, vault.name);
          if (unmatched !== undefined) target.settings.unmatched = unmatched;
          if (guard !== undefined) target.settings.guard = guard;
          if (scrub !== undefined) target.settings.scrub = scrub;
          if (bypass !== undefined) target.settings.guard_bypass = bypass;
          const s = target.settings;
          store.audit.record({
            kind: "settings_changed",
            vault: target.name,
            detail: `unmatched=${s.unmatched} guard=${s.guard ? "on" : "off"} scrub=${s.scrub ? "on" : "off"} guard_bypass=${s.guard_bypass.join(",").slice(0, 1500)}`,
          });
          return target.settings;
        });
      }
      if (options.json) return printJson({ vault: vault.name, ...settings });
      printTable(
        ["SETTING", "VALUE"],
        [
          ["unmatched", settings.unmatched],
          ["guard", settings.guard ? "on" : "off"],
          ["scrub", settings.scrub ? "on" : "off"],
          ["guard_bypass", settings.guard_bypass.join(",") || "-"],
        ],
      );
    });
}
