// `agent-vault agent create|list|info|rotate|revoke|delete|grant|revoke-grant|policy`. A token is
// printed once, on stdout and alone on its line (notes go to stderr), so `$(agent-vault agent
// create NAME)` captures just the token.
import { type Command } from "commander";
import { parseDuration } from "../shared/duration.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { type Agent, DAYS, MAX_REQUESTS_PER_MINUTE, MAX_USAGE_CAP, type Policy, type ServiceRule, type TimeWindow } from "../vault/agent.schema.ts";
import { activeGrants, checkAgentName, createAgent, deleteAgent, findAgent, grantServices, parsePolicy, revokeAgent, revokeGrants, rotateAgent, setAgentPolicy } from "../vault/agents.ts";
import { describePolicy } from "../vault/policy.ts";
import { displaySafe } from "../shared/text.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { readPolicyFile } from "./documents.ts";
import { formatWhen, printJson, printNote, printTable } from "./io.ts";
import { reviewer } from "./proposal.ts";

const repeat = (v: string, all: string[]) => [...all, v];

/** 1h, 24h, 7d, 30d or any duration; `until-revoked` (or `never`) for no expiry. */
function parseTtl(text: string): number | null {
  if (text === "until-revoked" || text === "never") return null;
  const ms = parseDuration(text);
  if (ms === null || ms <= 0) throw new AgentVaultError("invalid_argument", `--ttl "${text.slice(0, 40)}" is not a duration like 1h, 24h, 7d or 30d, or until-revoked`);
  return ms;
}

/** What listings show of an agent: never the token or its hash. */
function agentView(agent: Agent, now = Date.now()) {
  return {
    name: agent.name,
    id: agent.id,
    description: agent.description,
    token_hint: `${agent.token_hint}…`,
    status: agent.revoked_at === null ? "active" : "revoked",
    created_at: agent.created_at,
    rotated_at: agent.rotated_at,
    revoked_at: agent.revoked_at,
    grants: agent.grants.map((g) => ({ ...g, active: g.expires_at === null || Date.parse(g.expires_at) > now })),
    policy: agent.policy,
    usage: agent.usage,
  };
}

function grantText(agent: Agent, now = Date.now()): string {
  const active = activeGrants(agent, now);
  return active.map((g) => `${g.service}${g.expires_at ? ` (${formatWhen(g.expires_at, now)})` : ""}`).join(", ") || "-";
}

/** `service=GET,HEAD` → [service, [GET, HEAD]]. */
function splitAssignment(flag: string, text: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new AgentVaultError("invalid_argument", `${flag} "${text.slice(0, 80)}" is not SERVICE=...`);
  return [text.slice(0, eq), text.slice(eq + 1).trim()];
}

/**
 * `--rate-limit 60`, `--usage-cap 1000`: a whole number from 1 to the schema's cap, read here so the
 * refusal names the option, what was given and what it counts (the schema alone would say
 * "Too small: expected number to be >=1", or "must be a number, not a number" for `abc`).
 */
function parseCount(option: string, text: string, unit: string, max: number, example: number): number {
  const trimmed = text.trim();
  const count = /^[0-9]+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (Number.isSafeInteger(count) && count >= 1 && count <= max) return count;
  throw new AgentVaultError("invalid_argument", `${option} "${displaySafe(text).slice(0, 40)}" is not a whole number of ${unit} from 1 to ${max}`, {
    hint: `e.g. ${option} ${example}`,
  });
}

/** `mon-fri 09:00-18:00+02:00`, `sat,sun 10:00-12:00`, `22:00-06:00` */
function parseWindow(text: string): TimeWindow {
  const match = /^(?:([a-z,-]+)\s+)?(\d{2}:\d{2})-(\d{2}:\d{2})([+-]\d{2}:\d{2})?$/i.exec(text.trim());
  if (!match) throw new AgentVaultError("invalid_argument", `--window "${text.slice(0, 80)}" is not like "mon-fri 09:00-18:00" (optionally +02:00 after it)`);
  let days: TimeWindow["days"];
  if (match[1]) {
    const out = new Set<(typeof DAYS)[number]>();
    for (const part of match[1].toLowerCase().split(",")) {
      const [from, to] = part.split("-") as [string, string | undefined];
      const a = DAYS.indexOf(from as (typeof DAYS)[number]);
      const b = to === undefined ? a : DAYS.indexOf(to as (typeof DAYS)[number]);
      if (a === -1 || b === -1 || b < a) throw new AgentVaultError("invalid_argument", `--window: "${part}" is not a day or range of ${DAYS.join(", ")}`);
      for (let i = a; i <= b; i++) out.add(DAYS[i]!);
    }
    days = [...out];
  }
  return { ...(days ? { days } : {}), start: match[2]!, end: match[3]!, ...(match[4] ? { utc_offset: match[4] } : {}) };
}

interface PolicyFlags {
  file?: string;
  methods: string[];
  paths: string[];
  deny: string[];
  approve: string[];
  rateLimit?: string;
  window: string[];
  usageCap?: string;
  clear?: boolean;
}

async function policyFromFlags(flags: PolicyFlags): Promise<Policy | null> {
  const flagged = flags.methods.length + flags.paths.length + flags.deny.length + flags.approve.length + flags.window.length > 0 || flags.rateLimit !== undefined || flags.usageCap !== undefined;
  if (flags.clear) {
    if (flagged || flags.file) throw new AgentVaultError("invalid_argument", "--clear takes no other policy option");
    return null;
  }
  if (flags.file) {
    if (flagged) throw new AgentVaultError("invalid_argument", "give the policy as -f FILE or as options, not both");
    return readPolicyFile(flags.file);
  }
  if (!flagged) throw new AgentVaultError("invalid_argument", "no policy given", { hint: "pass -f FILE, or --methods/--paths/--deny/--rate-limit/--window/--usage-cap, or --clear" });
  const rules = new Map<string, ServiceRule>();
  const rule = (service: string): ServiceRule => rules.get(service) ?? rules.set(service, { service }).get(service)!;
  // Which option wrote each part, so an error names `--deny "canary=GET"`, not rules[0].deny[0].path.
  const origins: Origin[] = [];
  for (const text of flags.methods) {
    const [service, list] = splitAssignment("--methods", text);
    origins.push({ service, at: ["methods"], option: "--methods", text });
    rules.set(service, {
      ...rule(service),
      methods: list
        .split(",")
        .map((m) => m.trim().toUpperCase())
        .filter(Boolean),
    });
  }
  for (const text of flags.paths) {
    const [service, list] = splitAssignment("--paths", text);
    origins.push({ service, at: ["paths"], option: "--paths", text });
    rules.set(service, {
      ...rule(service),
      paths: list
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
    });
  }
  for (const text of flags.deny) {
    const [service, spec] = splitAssignment("--deny", text);
    const parts = spec.split(/\s+/);
    const entry = parts.length > 1 ? { methods: parts[0]!.split(",").map((m) => m.toUpperCase()), path: parts.slice(1).join(" ") } : { path: parts[0]! };
    const current = rule(service);
    origins.push({ service, at: ["deny", current.deny?.length ?? 0], option: "--deny", text });
    rules.set(service, { ...current, deny: [...(current.deny ?? []), entry] });
  }
  // Held requests (src/vault/held.ts): the same shape as --deny, held for a person instead of refused.
  for (const text of flags.approve) {
    const [service, spec] = splitAssignment("--approve", text);
    const parts = spec.split(/\s+/);
    const entry = parts.length > 1 ? { methods: parts[0]!.split(",").map((m) => m.toUpperCase()), path: parts.slice(1).join(" ") } : { path: parts[0]! };
    const current = rule(service);
    origins.push({ service, at: ["approve", current.approve?.length ?? 0], option: "--approve", text });
    rules.set(service, { ...current, approve: [...(current.approve ?? []), entry] });
  }
  const input: Record<string, unknown> = {};
  if (rules.size > 0) input.rules = [...rules.values()];
  if (flags.rateLimit !== undefined) input.rate_limit = { requests_per_minute: parseCount("--rate-limit", flags.rateLimit, "requests per minute", MAX_REQUESTS_PER_MINUTE, 60) };
  if (flags.window.length > 0) input.time_windows = flags.window.map(parseWindow);
  if (flags.usageCap !== undefined) input.usage_cap = parseCount("--usage-cap", flags.usageCap, "requests", MAX_USAGE_CAP, 1000);
  try {
    return parsePolicy(input);
  } catch (error) {
    if (!(error instanceof AgentVaultError)) throw error;
    const path = (error.details?.path as PropertyKey[] | undefined) ?? [];
    const option = optionAt(path, [...rules.keys()], origins, flags);
    if (!option) throw error;
    // The schema's words without its own location (`policy: rules[0].deny[0].path: `).
    const reason = error.message.replace(/^policy: /, "").replace(/^[A-Za-z_.[\]0-9]+: /, "");
    const entry = /^--(deny|approve) /.exec(option)?.[1];
    const hint = entry ? `write --${entry} 'SERVICE=[METHODS ]PATH', e.g. --${entry} '${displaySafe([...rules.keys()][Number(path[1])] ?? "github").slice(0, 40)}=DELETE /admin/*'` : error.hint;
    throw new AgentVaultError(error.code, `${option}: ${reason}`, { hint });
  }
}

interface Origin {
  readonly service: string;
  readonly at: readonly PropertyKey[];
  readonly option: string;
  readonly text: string;
}

/** The option (with its text) that wrote the part of a policy at `path`, for an error message. */
function optionAt(path: readonly PropertyKey[], services: readonly string[], origins: readonly Origin[], flags: PolicyFlags): string | null {
  const quoted = (option: string, text: string) => `${option} "${displaySafe(text).slice(0, 80)}"`;
  if (path[0] === "rate_limit") return quoted("--rate-limit", flags.rateLimit ?? "");
  if (path[0] === "usage_cap") return quoted("--usage-cap", flags.usageCap ?? "");
  if (path[0] === "time_windows") return quoted("--window", flags.window[Number(path[1])] ?? "");
  if (path[0] !== "rules") return null;
  const service = services[Number(path[1])];
  const rest = path.slice(2);
  const origin = origins.filter((o) => o.service === service && o.at.every((part, i) => rest[i] === part)).at(-1);
  return origin ? quoted(origin.option, origin.text) : null;
}

function printInfo(agent: Agent): void {
  const now = Date.now();
  const lines: [string, string][] = [
    ["name", agent.name],
    ["id", agent.id],
    ["description", agent.description || "-"],
    ["status", agent.revoked_at === null ? "active" : `revoked ${formatWhen(agent.revoked_at, now)}`],
    ["token", `${agent.token_hint}… (shown once at create or rotate)`],
    ["created", `${agent.created_at} (${formatWhen(agent.created_at, now)})`],
    ["rotated", agent.rotated_at ? `${agent.rotated_at} (${formatWhen(agent.rotated_at, now)})` : "-"],
  ];
  const width = Math.max(...lines.map(([n]) => n.length));
  const out = lines.map(([n, v]) => `${n.padEnd(width)}  ${v}`);
  out.push("", "grants:");
  if (agent.grants.length === 0) out.push("  none: grant a service with `agent-vault agent grant NAME --service S`");
  for (const g of agent.grants) {
    const expired = g.expires_at !== null && Date.parse(g.expires_at) <= now;
    out.push(`  ${g.service.padEnd(20)} ${g.expires_at === null ? "until revoked" : `${expired ? "expired" : "expires"} ${formatWhen(g.expires_at, now)} (${g.expires_at})`}  by ${g.by}`);
  }
  out.push("", "policy:");
  const policy = describePolicy(agent.policy);
  out.push(...(policy.length > 0 ? policy.map((l) => `  ${l}`) : ["  none"]));
  if (agent.policy?.usage_cap !== undefined) out.push(`  used: ${agent.usage} of ${agent.policy.usage_cap}`);
  process.stdout.write(`${out.join("\n")}\n`);
}

export function registerAgent(program: Command): void {
  const agents = program.command("agent").description("agents: named tokens whose access is exactly their unexpired grants, narrowed by a policy");
  const command = (spec: string, description: string) => withJsonOption(withVaultOption(withPasswordOption(agents.command(spec).description(description))));

  command("create <name>", "create an agent and print its token (once)")
    .option("--description <text>", "what the agent is")
    .action(async (name: string, options: CommonOptions & { description?: string }) => {
      checkAgentName(name);
      const { store, vault } = await openVault(options);
      const { token, agent } = await createAgent(store, vault.name, name, options.description ?? "");
      if (options.json) return printJson({ ...agentView(agent), token });
      process.stdout.write(`${token}\n`);
      printNote(`created agent "${name}" in vault "${vault.name}"; the token above is shown only now. It has no grants yet: agent-vault agent grant ${name} --service NAME`);
    });

  command("list", "list agents with their active grants").action(async (options: CommonOptions) => {
    const { vault } = await openVault(options);
    if (options.json) return printJson(vault.agents.map((a) => agentView(a)));
    if (vault.agents.length === 0) return printNote(`vault "${vault.name}" has no agents; create one with: agent-vault agent create NAME`);
    printTable(
      ["NAME", "STATUS", "GRANTS", "POLICY", "TOKEN", "CREATED"],
      vault.agents.map((a) => [a.name, a.revoked_at === null ? "active" : "revoked", grantText(a), describePolicy(a.policy).join("; ") || "-", `${a.token_hint}…`, formatWhen(a.created_at)]),
      { max: 60, status: 1, cutFirst: [2, 3] },
    );
  });

  command("info <name>", "an agent's grants (with expiry), policy and usage").action(async (name: string, options: CommonOptions) => {
    const { vault } = await openVault(options);
    const agent = findAgent(vault, name);
    if (options.json) return printJson(agentView(agent));
    printInfo(agent);
  });

  command("rotate <name>", "issue a new token; the old one stops working at once").action(async (name: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    const { token, agent } = await rotateAgent(store, vault.name, name);
    if (options.json) return printJson({ ...agentView(agent), token });
    process.stdout.write(`${token}\n`);
    printNote(`rotated agent "${name}": the old token no longer works; the new one above is shown only now`);
  });

  command("revoke <name>", "stop the agent's token (its open tunnels close); `rotate` revives it with a new token").action(async (name: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    const agent = await revokeAgent(store, vault.name, name);
    if (options.json) return printJson(agentView(agent));
    printNote(`revoked agent "${name}"`);
  });

  command("delete <name>", "delete the agent, its grants and policy; sessions run as it end").action(async (name: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    await deleteAgent(store, vault.name, name);
    printNote(`deleted agent "${name}" from vault "${vault.name}"`);
  });

  command("grant <name>", "let the agent use services, for a while or until revoked")
    .option("--service <name>", "a service of the vault (repeatable)", repeat, [])
    .option("--ttl <duration>", "1h, 24h, 7d, 30d (any duration), or until-revoked", "24h")
    .action(async (name: string, options: CommonOptions & { service: string[]; ttl: string }) => {
      const ttl = parseTtl(options.ttl);
      const { store, vault } = await openVault(options);
      const agent = await grantServices(store, vault.name, name, options.service, ttl, reviewer());
      if (options.json) return printJson(agentView(agent));
      printNote(`granted ${options.service.join(", ")} to agent "${name}" ${ttl === null ? "until revoked" : `until ${agent.grants.find((g) => g.service === options.service[0])!.expires_at}`}`);
    });

  command("revoke-grant <name>", "take services away from the agent (its next request is refused)")
    .option("--service <name>", "a granted service (repeatable)", repeat, [])
    .action(async (name: string, options: CommonOptions & { service: string[] }) => {
      const { store, vault } = await openVault(options);
      const agent = await revokeGrants(store, vault.name, name, options.service);
      if (options.json) return printJson(agentView(agent));
      printNote(`revoked ${options.service.join(", ")} from agent "${name}"`);
    });

  command("policy <name>", "set (replace) the agent's access policy, from a file or options; --clear removes it")
    .option("-f, --file <file>", "the policy as JSON or YAML")
    .option("--methods <service=METHODS>", "only these methods, e.g. github=GET,HEAD (repeatable)", repeat, [])
    .option("--paths <service=PATHS>", "only these paths, e.g. github=/repos/*,/user (repeatable)", repeat, [])
    .option("--deny <service=[METHODS ]PATH>", "refuse, e.g. 'github=DELETE /repos/*' (repeatable)", repeat, [])
    .option("--approve <service=[METHODS ]PATH>", "hold for a person's approval, e.g. 'github=POST /repos/*/merges' (repeatable)", repeat, [])
    .option("--rate-limit <n>", `requests per minute, 1 to ${MAX_REQUESTS_PER_MINUTE}`)
    .option("--window <window>", "allowed times, e.g. 'mon-fri 09:00-18:00+02:00' (repeatable)", repeat, [])
    .option("--usage-cap <n>", `requests over the agent's whole life, 1 to ${MAX_USAGE_CAP}`)
    .option("--clear", "remove the policy")
    .action(async (name: string, options: CommonOptions & PolicyFlags) => {
      const policy = await policyFromFlags(options);
      const { store, vault } = await openVault(options);
      const agent = await setAgentPolicy(store, vault.name, name, policy);
      if (options.json) return printJson(agentView(agent));
      printNote(policy === null ? `removed the policy of agent "${name}"` : `set the policy of agent "${name}":\n  ${describePolicy(policy).join("\n  ")}`);
    });
}
