// `agent-vault held list|allow|deny`: a person answers requests an `approve` entry of a policy holds
// (src/vault/held.ts). Answering unlocks the vault (the master password), which is what the agent
// does not have: it can read this file and run this command, but cannot write an answer the proxy
// would take.
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe } from "../shared/text.ts";
import { answerHeld, findHeld, heldStatusOf } from "../vault/held.ts";
import { type Held } from "../vault/held.schema.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { formatWhen, printJson, printNote, printTable } from "./io.ts";
import { reviewer } from "./proposal.ts";

function parseId(text: string): number {
  const id = Number(text.replace(/^#/, ""));
  if (!Number.isInteger(id) || id <= 0) throw new AgentVaultError("invalid_argument", `"${text.slice(0, 40)}" is not a held request number`, { hint: "list them with `agent-vault held list`" });
  return id;
}

/** The JSON shape of `held list --json` and `status --json` (the nonce stays inside the vault). */
export function heldView(h: Held, now = Date.now()): Record<string, unknown> {
  return {
    id: h.id,
    status: heldStatusOf(h, now),
    method: h.method,
    host: h.host,
    port: h.port,
    path: h.path,
    rule: h.rule,
    session: h.session,
    agent: h.agent,
    body_bytes: h.body_bytes,
    body_sha256: h.body_sha256,
    preview: h.preview,
    created_at: h.created_at,
    expires_at: h.expires_at,
    answered_at: h.answered_at,
    answered_by: h.answered_by,
    reason: h.reason,
    for_session: h.for_session,
  };
}

/** `POST api.github.com/repos/x/merges`, with the port when it is not 443. */
export function heldTarget(h: Pick<Held, "method" | "host" | "port" | "path">): string {
  return `${h.method} ${h.host}${h.port === 443 ? "" : `:${h.port}`}${h.path}`;
}

function whose(h: Held): string {
  return [h.agent ? `agent ${h.agent}` : null, h.session ? `session ${h.session}` : null].filter(Boolean).join(", ") || h.principal;
}

function describe(h: Held): string {
  const lines = [`held request #${h.id}: ${displaySafe(heldTarget(h))}`, `  from ${whose(h)}, rule ${displaySafe(h.rule)}, body ${h.body_bytes} bytes`];
  if (h.preview) lines.push(`  body: ${displaySafe(h.preview)}`);
  return lines.join("\n");
}

export function registerHeld(program: Command): void {
  const held = program.command("held").description("requests held for your approval by an `approve` rule of a policy");

  withJsonOption(withVaultOption(withPasswordOption(held.command("list").description("held requests: pending first, then answered in the last hour")))).action(async (options: CommonOptions) => {
    const { vault } = await openVault(options);
    const now = Date.now();
    const list = [...vault.held].sort((a, b) => Number(heldStatusOf(b, now) === "pending") - Number(heldStatusOf(a, now) === "pending") || b.id - a.id);
    if (options.json) return printJson(list.map((h) => heldView(h, now)));
    if (list.length === 0) return printNote(`no held requests in vault "${vault.name}"`);
    printTable(
      ["#", "STATUS", "REQUEST", "FROM", "BODY", "WAITS UNTIL"],
      list.map((h) => [
        String(h.id),
        heldStatusOf(h, now),
        heldTarget(h),
        whose(h),
        h.preview ? `${h.body_bytes} B: ${h.preview}` : `${h.body_bytes} B`,
        heldStatusOf(h, now) === "pending" ? formatWhen(h.expires_at, now) : "-",
      ]),
      { status: 1, keep: [0, 1] },
    );
  });

  withVaultOption(withPasswordOption(held.command("allow <id>").description("let a held request go to its upstream")))
    .option("--for-session", "also allow the same method, host and rule for the rest of the session")
    .action(async (idText: string, options: CommonOptions & { forSession?: boolean }) => {
      const id = parseId(idText);
      const { store, vault } = await openVault(options);
      process.stderr.write(`${describe(findHeld(vault, id))}\n`);
      const answered = await answerHeld(store, vault.name, id, { allow: true, forSession: options.forSession === true }, reviewer());
      printNote(`allowed held request #${id}${answered.for_session ? ` and ${answered.method} ${answered.host} ${answered.rule} for the rest of session ${answered.session}` : ""}`);
    });

  withVaultOption(withPasswordOption(held.command("deny <id>").description("refuse a held request (the agent gets 403 approval_denied with the reason)")))
    .option("--reason <text>", "why, for the agent")
    .action(async (idText: string, options: CommonOptions & { reason?: string }) => {
      const id = parseId(idText);
      const { store, vault } = await openVault(options);
      await answerHeld(store, vault.name, id, { allow: false, reason: options.reason ?? "" }, reviewer());
      printNote(`denied held request #${id}`);
    });
}
