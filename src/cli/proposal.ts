// `agent-vault vault proposal list|show|approve|reject`: the human side of proposals.
import { osUserName } from "../shared/os-user.ts";
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe, labelled, shellQuote } from "../shared/text.ts";
import { agentWrittenUrls } from "../oauth/credential.ts";
import { checkCredentialKey } from "../vault/credentials.ts";
import { findVault } from "../vault/vaults.ts";
import { type Proposal } from "../vault/proposal.schema.ts";
import { describeAuth, proposalEffects, sameAuth } from "../vault/proposal-effects.ts";
import { type Service } from "../vault/service.schema.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { agentSuppliedValue, approveProposal, maskValue, findProposal, proposalView, rejectProposal, slotsNeedingValues, statusOf } from "../vault/proposals.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { confirm, formatWhen, isInteractive, printJson, printNote, printTable, promptHidden, readStdinRest } from "./io.ts";
import { didYouMean } from "../shared/suggest.ts";
import { paint, statusStyle } from "./colour.ts";

/**
 * One warning per source slot whose command is not installed here, as `vault credential source`
 * finds it (its check would fail): approving still stores the reference, and every request that
 * needs the value fails with 502 source_unavailable until the command is there.
 */
async function missingSourceCommands(proposal: Proposal): Promise<string[]> {
  const slots: { key: string; source: string }[] = [];
  for (const slot of proposal.credentials) if (slot.action === "set" && slot.type === "source" && slot.source) slots.push({ key: slot.key, source: slot.source });
  if (slots.length === 0) return [];
  const { sourceCommandOf } = await import("../vault/source.schema.ts");
  const { resolveCommand, sourcePathFrom } = await import("../sources/runner.ts");
  const lines: string[] = [];
  for (const slot of slots) {
    let command: string;
    try {
      command = sourceCommandOf(slot.source).argv[0]!;
    } catch {
      continue; // the schema refused it when the proposal was filed; approving refuses it again
    }
    if (resolveCommand(command, sourcePathFrom()) === null) {
      lines.push(
        `warning: ${slot.key} would come from ${displaySafe(slot.source).slice(0, 120)}, but ${displaySafe(command).slice(0, 60)} is not installed (not on ${sourcePathFrom()}); requests that need ${slot.key} will fail with 502 source_unavailable until it is`,
      );
    }
  }
  return lines;
}

/** Who approved or granted: `cli:` and the user name (the audit trail's `by`), as the TUI names it. */
export function reviewer(): string {
  return `cli:${osUserName()}`;
}

function parseId(text: string): number {
  const id = Number(text.replace(/^#/, ""));
  if (!Number.isInteger(id) || id <= 0) throw new AgentVaultError("invalid_argument", `"${text}" is not a proposal number`);
  return id;
}

function summary(p: Proposal): string {
  return [
    ...p.services.map((s) => (s.action === "set" ? `${s.name} (${s.host})` : `-${s.name}`)),
    ...p.credentials.map((c) => (c.action === "delete" ? `-${c.key}` : c.type === "source" ? `${c.key} (from ${c.source ?? "?"})` : c.key)),
  ].join(", ");
}

/**
 * A proposed service beside the vault's service of the same name, as a diff of its fields (host,
 * auth, enabled, description): a field the proposal keeps is a plain line, a changed one a `-`
 * line (the vault's) and a `+` line (the proposal's), with a `~` head; `-`/`+`/`~` as in the
 * effect lines below it ("host a → b"). Every value is escaped; a multi-line description keeps
 * its marker on each line, behind the bar.
 */
function serviceDiff(existing: Service, proposed: Extract<Proposal["services"][number], { action: "set" }>): string[] {
  const fields: [string, string | undefined, string | undefined][] = [
    ["host", existing.host, proposed.host],
    ["auth", describeAuth(existing.auth), describeAuth(proposed.auth)],
    ["enabled", existing.enabled ? "yes" : "no", (proposed.enabled ?? true) ? "yes" : "no"],
    ["description", existing.description, proposed.description],
  ];
  const body: string[] = [];
  // Two auths can read alike and still differ (a custom header's template): sameAuth decides.
  const authDiffers = !sameAuth(existing.auth, proposed.auth);
  let changed = false;
  for (const [name, before, after] of fields) {
    const differs = name === "auth" ? authDiffers : before !== after;
    if (!differs) {
      if (before !== undefined) body.push(...labelled("        ", name, before));
      continue;
    }
    changed = true;
    if (before !== undefined) body.push(...labelled("      - ", name, before));
    if (after !== undefined) body.push(...labelled("      + ", name, after));
  }
  const head = changed ? `  ~ ${displaySafe(proposed.name)}: changes the service the vault has` : `    ${displaySafe(proposed.name)}: the same as the service the vault has`;
  return [head, ...body];
}

/** When a pending proposal expires; when and by whom a decided one was decided. */
function decidedWhen(p: Proposal, status: string): string {
  if (status === "pending") return `expires ${formatWhen(p.expires_at)}`;
  if (status === "expired") return `expired ${formatWhen(p.expires_at)}`;
  const decision = p.audit.findLast((entry) => entry.action !== "filed");
  return decision ? `${decision.action} ${formatWhen(decision.at)} by ${displaySafe(decision.by)}` : status;
}

/**
 * The review text: first what the agent wrote (escaped, labelled), then what approving does as the
 * vault's own records say (src/vault/proposal-effects.ts), warnings last, next to the prompt.
 */
function describe(p: Proposal, supplied: (key: string) => string | null, vault: VaultRecord): string {
  const status = statusOf(p);
  const lines = [`Proposal #${p.id} · ${paint(process.stdout, statusStyle(status), status)} · filed ${formatWhen(p.created_at)} · ${decidedWhen(p, status)}`];
  if (p.message) lines.push("", ...labelled("", "Agent's message", p.message));
  if (p.user_message) lines.push(...labelled("", "For you", p.user_message));
  if (p.services.length > 0) {
    lines.push("", "Services, as proposed:");
    for (const s of p.services) {
      if (s.action === "delete") {
        lines.push(`  - remove ${displaySafe(s.name)}`);
        continue;
      }
      // A pending change to a service the vault has is shown as a diff against it, not as new.
      const existing = status === "pending" ? vault.services.find((v) => v.name === s.name) : undefined;
      if (existing) lines.push(...serviceDiff(existing, s));
      else {
        lines.push(`  + ${displaySafe(s.name)}: ${displaySafe(s.host)}, ${displaySafe(describeAuth(s.auth))}${s.enabled === false ? ", disabled" : ""}`);
        if (s.description) lines.push(...labelled("      ", "description", s.description));
      }
    }
  }
  if (p.credentials.length > 0) {
    lines.push("", "Credentials, as proposed:");
    for (const c of p.credentials) {
      if (c.action === "delete") {
        lines.push(`  - remove ${c.key}`);
        continue;
      }
      const value = supplied(c.key);
      // As the effect lines say it (proposal-effects.ts): a sourced value is fetched, not typed.
      const state =
        c.type === "oauth"
          ? "OAuth: connect or paste after approval"
          : c.type === "source"
            ? `fetched from ${displaySafe(c.source ?? "?")} on use`
            : value !== null
              ? `value supplied by the agent: ${displaySafe(maskValue(value))}`
              : "you supply the value";
      // `~` for a key the vault holds: approving replaces its value (the effect lines say how).
      const replaces = status === "pending" && c.key in vault.credentials;
      lines.push(`  ${replaces ? "~" : "+"} ${c.key} [${replaces ? "replaces the current value; " : ""}${state}]`);
      if (c.description) lines.push(...labelled("      ", "description", c.description));
      if (c.obtain) lines.push(`      get it at: ${displaySafe(c.obtain)}`);
      if (c.obtain_instructions) lines.push(...labelled("      ", "how", c.obtain_instructions));
      if (c.oauth) lines.push(`      token URL: ${displaySafe(c.oauth.token_url)}${c.oauth.authorization_url ? `, authorization URL: ${displaySafe(c.oauth.authorization_url)}` : ""}`);
    }
  }
  if (p.reason) lines.push("", ...labelled("", "Rejected", p.reason));
  if (p.audit.length > 0) lines.push("");
  for (const a of p.audit) lines.push(`  ${a.at} ${a.action} by ${displaySafe(a.by)}`);
  if (status === "pending") {
    const { effects, warnings } = proposalEffects(vault, p);
    lines.push("", "Approving it would (from the vault's records, not the agent's text):", ...effects.map((e) => `  ${displaySafe(e)}`));
    if (warnings.length > 0) lines.push("", `WARNING${warnings.length > 1 ? "S" : ""}:`, ...warnings.map((w) => `  ! ${displaySafe(w)}`));
  }
  return `${lines.join("\n")}\n`;
}

export function registerProposal(group: Command): void {
  const proposals = group.command("proposal").description("review what agents asked for");

  withJsonOption(withVaultOption(withPasswordOption(proposals.command("list").description("list proposals, pending first, newest on top"))))
    .option("--status <status>", "pending, applied, rejected or expired")
    .action(async (options: CommonOptions & { status?: string }) => {
      if (options.status && !["pending", "applied", "rejected", "expired"].includes(options.status)) {
        throw new AgentVaultError(
          "invalid_argument",
          `--status must be pending, applied, rejected or expired, not "${options.status.slice(0, 40)}"${didYouMean(options.status, ["pending", "applied", "rejected", "expired"])}`,
        );
      }
      const { vault } = await openVault(options);
      const list = vault.proposals
        .filter((p) => !options.status || statusOf(p) === options.status)
        .sort((a, b) => Number(statusOf(b) === "pending") - Number(statusOf(a) === "pending") || b.id - a.id);
      if (options.json) return printJson(list.map((p) => proposalView(p)));
      if (list.length === 0) return printNote(`no ${options.status ?? ""} proposals in vault "${vault.name}"`.replace("  ", " "));
      printTable(
        ["#", "STATUS", "ASKS FOR", "MESSAGE", "FILED"],
        list.map((p) => [String(p.id), statusOf(p), summary(p), p.message || "-", formatWhen(p.created_at)]),
        { status: 1 },
      );
    });

  withJsonOption(withVaultOption(withPasswordOption(proposals.command("show <id>").description("show one proposal in full")))).action(async (idText: string, options: CommonOptions) => {
    const id = parseId(idText);
    const { store, vault } = await openVault(options);
    const proposal = findProposal(vault, id);
    if (options.json) return printJson(proposalView(proposal));
    process.stdout.write(describe(proposal, (key) => (statusOf(proposal) === "pending" ? agentSuppliedValue(store, vault, proposal, key) : null), vault));
  });

  withVaultOption(withPasswordOption(proposals.command("approve <id> [values...]").description("apply a proposal; KEY=VALUE (or KEY=-) for the values it needs")))
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (idText: string, assignments: string[], options: CommonOptions & { yes?: boolean }) => {
      const id = parseId(idText);
      const values: Record<string, string> = {};
      let stdinKey: string | null = null;
      for (const arg of assignments) {
        const eq = arg.indexOf("=");
        if (eq <= 0) throw new AgentVaultError("invalid_argument", `"${arg.split("=")[0]!.slice(0, 140)}" is not KEY=VALUE`, { hint: "write KEY=VALUE, or KEY=- to read the value from stdin" });
        const key = checkCredentialKey(arg.slice(0, eq));
        if (arg.slice(eq + 1) === "-") {
          if (stdinKey) throw new AgentVaultError("invalid_argument", "only one KEY=- can read stdin");
          stdinKey = key;
        } else values[key] = arg.slice(eq + 1);
      }
      const { store, vault } = await openVault(options);
      const proposal = findProposal(vault, id);
      if (statusOf(proposal) !== "pending") throw new AgentVaultError("conflict", `proposal #${id} is ${statusOf(proposal) === "applied" ? "already approved" : statusOf(proposal)}`);
      if (stdinKey) values[stdinKey] = await readStdinRest(`the value of ${stdinKey}`);
      process.stderr.write(describe(proposal, (key) => agentSuppliedValue(store, vault, proposal, key), vault));
      for (const line of await missingSourceCommands(proposal)) printNote(line);
      for (const key of slotsNeedingValues(proposal)) {
        if (values[key] !== undefined) continue;
        if (!isInteractive()) throw new AgentVaultError("invalid_argument", `proposal #${id} needs a value for ${key}`, { hint: `pass ${key}=- and the value on stdin` });
        const value = await promptHidden(`Value for ${key} (hidden): `);
        if (value === "") throw new AgentVaultError("cancelled", `no value for ${key}; nothing was changed`);
        values[key] = value;
      }
      if (!options.yes) {
        if (!isInteractive()) throw new AgentVaultError("invalid_argument", "approving needs confirmation", { hint: "pass --yes, or run in a terminal" });
        if (!(await confirm(`Apply proposal #${id}?`))) throw new AgentVaultError("cancelled", `proposal #${id} was not applied`);
      }
      await approveProposal(store, vault.name, id, values, reviewer());
      printNote(`applied proposal #${id}: ${summary(proposal)}`);
      for (const slot of proposal.credentials) {
        if (slot.action !== "set" || slot.type !== "oauth") continue;
        const isConnect = slot.oauth?.authorization_url !== undefined;
        const record = findVault(store.read(), vault.name).credentials[slot.key];
        const urls = record ? agentWrittenUrls(record) : {};
        // The command works as printed: URLs the agent chose (not a known provider's) go in it,
        // quoted (they are the agent's text, and the user may paste this), with why to check them.
        const stated = [urls.tokenUrl ? ` --token-url ${shellQuote(urls.tokenUrl)}` : "", isConnect && urls.authorizationUrl ? ` --authorization-url ${shellQuote(urls.authorizationUrl)}` : ""].join(
          "",
        );
        const how = isConnect
          ? `agent-vault oauth connect ${slot.key}${slot.oauth?.client_id ? "" : " --client-id ID"}${stated}`
          : `agent-vault oauth paste ${slot.key} --access-token-stdin --refresh-token-stdin${stated}`;
        const caution = stated ? ` (the agent chose where ${slot.key}'s tokens go, not a known provider's: check these URLs first, or use --provider NAME instead)` : "";
        printNote(`next: ${slot.key} is an OAuth credential; complete it with: ${how}${caution}`);
      }
    });

  withVaultOption(withPasswordOption(proposals.command("reject <id>").description("reject a proposal; the agent can read the reason")))
    .option("--reason <text>", "why, for the agent")
    .action(async (idText: string, options: CommonOptions & { reason?: string }) => {
      const id = parseId(idText);
      const { store, vault } = await openVault(options);
      await rejectProposal(store, vault.name, id, options.reason ?? "", reviewer());
      printNote(`rejected proposal #${id}`);
    });
}
