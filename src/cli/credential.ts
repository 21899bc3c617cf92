// `agent-vault vault credential set|get|list|delete` (alias `creds`). Values are read from the
// arguments or, for `KEY=-`, from stdin; they are printed only by `get` and `list --reveal`.
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { parseDuration } from "../shared/duration.ts";
import { IsoTimeSchema } from "../vault/credential.schema.ts";
import { oauthStatusOf } from "../vault/oauth-record.ts";
import { checkCredentialKey, type CredentialView, deleteCredentials, getCredentialValue, listCredentials, setCredentialSource, setCredentials, sourceSpecOf } from "../vault/credentials.ts";
import { DEFAULT_SOURCE_TTL_MS, makeSourceSpec, sourceCommandOf, type SourceSpec } from "../vault/source.schema.ts";
import { resolveCommand, runSource, sourcePathFrom } from "../sources/runner.ts";
import { accessSync, constants, existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { displaySafe } from "../shared/text.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type VaultStore } from "../vault/vault.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { formatWhen, printJson, printNote, printTable, readStdinRest } from "./io.ts";

const MASK = "••••••••";

/** `oauth`, with its state when it cannot be injected as it is; `source` with its health. */
function typeLabel(view: CredentialView): string {
  if (view.type === "source") return view.metadata.source_status === "failing" ? "source (failing)" : "source";
  if (view.type !== "oauth") return view.type;
  const status = view.metadata.oauth_status;
  return status === "connected" ? "oauth" : status === "refresh_failed" ? "oauth (refresh failed)" : "oauth (not connected)";
}

interface SetOptions extends CommonOptions {
  description?: string;
  expiresAt?: string;
  expiresIn?: string;
  meta: string[];
}

/** `KEY=VALUE` pairs; the key is checked here so a typo fails before anything is read or written. */
function parseAssignments(args: readonly string[]): { key: string; value: string | null }[] {
  const seen = new Set<string>();
  let fromStdin = 0;
  return args.map((arg) => {
    const eq = arg.indexOf("=");
    if (eq <= 0) {
      throw new AgentVaultError("invalid_argument", `"${arg.split("=")[0]!.slice(0, 140)}" is not KEY=VALUE`, { hint: "write KEY=VALUE, or KEY=- to read the value from stdin" });
    }
    const key = checkCredentialKey(arg.slice(0, eq));
    if (seen.has(key)) throw new AgentVaultError("invalid_argument", `${key} is given twice`);
    seen.add(key);
    const raw = arg.slice(eq + 1);
    if (raw === "-" && ++fromStdin > 1) throw new AgentVaultError("invalid_argument", "only one KEY=- can read stdin");
    return { key, value: raw === "-" ? null : raw };
  });
}

function parseMeta(pairs: readonly string[]): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new AgentVaultError("invalid_argument", `--meta "${pair.slice(0, 140)}" is not NAME=TEXT`);
    meta[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return meta;
}

function parseExpiry(options: SetOptions): string | null | undefined {
  if (options.expiresAt !== undefined && options.expiresIn !== undefined) throw new AgentVaultError("invalid_argument", "give --expires-at or --expires-in, not both");
  if (options.expiresIn !== undefined) {
    if (options.expiresIn === "never") return null;
    const ms = parseDuration(options.expiresIn);
    if (ms === null) throw new AgentVaultError("invalid_argument", `--expires-in "${options.expiresIn}" is not a duration like 30d, 12h or 90m`);
    return new Date(Date.now() + ms).toISOString();
  }
  if (options.expiresAt !== undefined) {
    if (options.expiresAt === "never") return null;
    const parsed = IsoTimeSchema.safeParse(options.expiresAt);
    if (!parsed.success) throw new AgentVaultError("invalid_argument", `--expires-at "${options.expiresAt}" is not an ISO 8601 time like 2027-01-31T00:00:00Z`);
    return new Date(parsed.data).toISOString();
  }
  return undefined;
}

/**
 * Runs a source's command here, for the person at the terminal: its stderr is shown (this is
 * the person's own terminal, not the agent's view). Throws source_unavailable with the reason.
 */
async function fetchNow(key: string, spec: SourceSpec): Promise<string> {
  const result = await runSource(sourceCommandOf(spec.from));
  if (result.ok) return result.value;
  throw new AgentVaultError("source_unavailable", `fetching ${key} from ${displaySafe(spec.from)} failed: ${result.reason}${result.detail ? ` (${result.detail})` : ""}`, {
    hint: "run the command by hand to see why; `vault credential source` stores a reference that fails now only with --no-check",
  });
}

/**
 * A file or directory the source's command depends on that this user may replace, or null (root
 * is told nothing: it may anyway). Followed through symlinks (a root-owned link in /usr/local/bin
 * may point into $HOME), to a script's `#!` interpreter, and to absolute file arguments.
 */
function writableCommand(spec: SourceSpec): string | null {
  if (process.getuid?.() === 0) return null;
  const argv = sourceCommandOf(spec.from).argv;
  const file = resolveCommand(argv[0]!, sourcePathFrom());
  if (!file) return null;
  const files = [file, ...argv.slice(1).filter((a) => a.startsWith("/") && existsSync(a))];
  const interpreter = shebangOf(file);
  if (interpreter) files.push(interpreter);
  for (const each of files) {
    const real = realOrSelf(each);
    for (const path of new Set([each, dirname(each), real, dirname(real)])) {
      try {
        accessSync(path, constants.W_OK);
        return path;
      } catch {
        /* not writable: good */
      }
    }
  }
  return null;
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The interpreter a script names on its first line (`#!/usr/bin/env` aside), or null. */
function shebangOf(file: string): string | null {
  try {
    const head = readFileSync(file).subarray(0, 256).toString("latin1");
    const match = /^#!\s*(\/\S+)/.exec(head);
    return match && !match[1]!.endsWith("/env") ? match[1]! : null;
  } catch {
    return null;
  }
}

function sourceLine(store: VaultStore, vault: VaultRecord, key: string): { from: string; ttl: string; status: string; error: string | null; since: string | null } {
  const spec = sourceSpecOf(store, vault, key);
  const meta = vault.credentials[key]!.metadata;
  return { from: spec.from, ttl: `${Math.round(spec.ttl_ms / 1000)}s`, status: meta.source_status ?? "ok", error: meta.source_error || null, since: meta.source_since ?? null };
}

export function registerCredential(group: Command): void {
  const creds = group.command("credential").alias("creds").description("store, read, list and delete credentials");

  withVaultOption(withPasswordOption(creds.command("set <assignments...>").description("store KEY=VALUE pairs (KEY=- reads the value from stdin); overwrites")))
    .option("--description <text>", "what the credential is for")
    .option("--expires-at <time>", "when it expires (ISO 8601, or never)")
    .option("--expires-in <duration>", "when it expires, from now (30d, 12h, never)")
    .option("--meta <name=text>", "free-form metadata (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .action(async (assignments: string[], options: SetOptions) => {
      const parsed = parseAssignments(assignments);
      const meta = { description: options.description, expires_at: parseExpiry(options), metadata: parseMeta(options.meta) };
      const { store, vault } = await openVault(options);
      const entries = [];
      for (const { key, value } of parsed) entries.push({ key, value: value ?? (await readStdinRest(`the value of ${key}`)) });
      await setCredentials(store, vault.name, entries, meta);
      printNote(`stored ${entries.map((e) => e.key).join(", ")} in vault "${vault.name}"`);
    });

  withJsonOption(withVaultOption(withPasswordOption(creds.command("get <key>").description("print one credential's value")))).action(async (key: string, options: CommonOptions) => {
    checkCredentialKey(key);
    const { store, vault } = await openVault(options);
    const value = vault.credentials[key]?.type === "source" ? await fetchNow(key, sourceSpecOf(store, vault, key)) : getCredentialValue(store, vault, key);
    if (options.json) printJson({ key, value });
    else process.stdout.write(`${value}\n`);
  });

  withJsonOption(withVaultOption(withPasswordOption(creds.command("list").description("list credentials with their metadata; values masked"))))
    .option("--reveal", "show the values")
    .action(async (options: CommonOptions & { reveal?: boolean }) => {
      const { store, vault } = await openVault(options);
      const views = listCredentials(vault);
      const sourced = new Map(views.filter((v) => v.type === "source").map((v) => [v.key, sourceLine(store, vault, v.key)]));
      const valueOf = (key: string) => {
        if (sourced.has(key)) return `(from ${sourced.get(key)!.from})`;
        if (!options.reveal) return undefined;
        if (vault.credentials[key]!.type === "oauth" && oauthStatusOf(vault.credentials[key]!) === "not_connected") return "(not connected)";
        return getCredentialValue(store, vault, key);
      };
      const withSource = (v: CredentialView) => (sourced.has(v.key) ? { ...v, source: sourced.get(v.key) } : v);
      if (options.json) return printJson(views.map((v) => (options.reveal && !sourced.has(v.key) ? { ...withSource(v), value: valueOf(v.key) } : withSource(v))));
      if (views.length === 0) return printNote(`vault "${vault.name}" has no credentials; add one with: agent-vault vault credential set KEY=-`);
      printTable(
        ["KEY", "TYPE", "VALUE", "DESCRIPTION", "SERVICES", "UPDATED", "EXPIRES"],
        views.map((v) => [v.key, typeLabel(v), valueOf(v.key) ?? MASK, v.description, v.services.join(",") || "-", formatWhen(v.updated_at), formatWhen(v.expires_at)]),
        // A revealed value is never cut: half a key is no use, and it is what was asked for.
        // The type says whether an OAuth credential works: never cut; the description goes first.
        options.reveal ? { max: 4096, keep: [1, 2], cutFirst: [3], optional: [3] } : { keep: [1], cutFirst: [3], optional: [3] },
      );
    });

  withVaultOption(withPasswordOption(creds.command("source <key> <from>").description("take KEY's value from pass:PATH, gopass:PATH, op://VAULT/ITEM/FIELD, vault:MOUNT/PATH#FIELD or exec:COMMAND")))
    .option("--ttl <duration>", "how long a fetched value is used before it is fetched again (default 5m)")
    .option("--description <text>", "what the credential is for")
    .option("--no-check", "store the reference without fetching it once now")
    .action(async (key: string, from: string, options: CommonOptions & { ttl?: string; description?: string; check: boolean }) => {
      checkCredentialKey(key);
      let ttl = DEFAULT_SOURCE_TTL_MS;
      if (options.ttl !== undefined) {
        const parsed = parseDuration(options.ttl);
        if (parsed === null) throw new AgentVaultError("invalid_argument", `--ttl "${options.ttl.slice(0, 40)}" is not a duration like 30s, 5m or 1h`);
        ttl = parsed;
      }
      const spec = makeSourceSpec(from, ttl);
      const { store, vault } = await openVault(options);
      // Fetched once before anything is stored, so a typo in the path fails here, not at the agent.
      if (options.check) await fetchNow(key, spec);
      await setCredentialSource(store, vault.name, key, spec, options.description);
      printNote(`${key} in vault "${vault.name}" now comes from ${displaySafe(from)} (fetched on use, kept ${options.ttl ?? "5m"})`);
      const writable = writableCommand(spec);
      if (writable) printNote(`warning: ${displaySafe(writable)} can be changed by this user, so by any agent running as it; install the command somewhere only root writes (/usr/local/bin)`);
    });

  withVaultOption(withPasswordOption(creds.command("delete <keys...>").description("delete credentials (all or none)"))).action(async (keys: string[], options: CommonOptions) => {
    keys.forEach(checkCredentialKey);
    const { store, vault } = await openVault(options);
    const dangling = await deleteCredentials(store, vault.name, keys);
    printNote(`deleted ${keys.join(", ")} from vault "${vault.name}"`);
    for (const [key, services] of Object.entries(dangling)) {
      printNote(`warning: service ${services.join(", ")} still uses ${key}; its requests will fail with 502 credential_not_found until ${key} is set again`);
    }
  });
}
