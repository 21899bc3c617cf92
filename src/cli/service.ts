// `agent-vault vault service add|list|remove|enable|disable|set` and `agent-vault catalog`.
import { type Command } from "commander";
import { readDocument } from "./documents.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { CATALOG, findTemplate } from "../vault/catalog.ts";
import { AUTH_TYPES, type Auth, credentialKeysOf } from "../vault/service.schema.ts";
import { shadowedPrefixes } from "../vault/proposal-effects.ts";
import { findVault } from "../vault/vaults.ts";
import { addService, parseServiceFile, parseServiceInput, removeService, setServiceEnabled, setServices } from "../vault/services.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { printJson, printNote, printTable } from "./io.ts";
import { didYouMean } from "../shared/suggest.ts";

interface AuthFlags {
  tokenKey?: string;
  usernameKey?: string;
  passwordKey?: string;
  key?: string;
  header: string[];
  prefix?: string;
  param?: string;
  accessKeyIdKey?: string;
  secretKey?: string;
  sessionTokenKey?: string;
  region?: string;
  awsService?: string;
}

type FlagName = Exclude<keyof AuthFlags, never>;

const FLAG_TEXT: Record<FlagName, string> = {
  tokenKey: "--token-key",
  usernameKey: "--username-key",
  passwordKey: "--password-key",
  key: "--key",
  header: "--header",
  prefix: "--prefix",
  param: "--param",
  accessKeyIdKey: "--access-key-id-key",
  secretKey: "--secret-key",
  sessionTokenKey: "--session-token-key",
  region: "--region",
  awsService: "--aws-service",
};

/** Which flags each auth type takes (DESIGN "Command line"). */
const AUTH_FLAGS: Record<Auth["type"], { required: FlagName[]; optional: FlagName[] }> = {
  bearer: { required: ["tokenKey"], optional: [] },
  basic: { required: ["usernameKey"], optional: ["passwordKey"] },
  "api-key": { required: ["key"], optional: ["header", "prefix"] },
  custom: { required: ["header"], optional: [] },
  query: { required: ["param", "key"], optional: [] },
  passthrough: { required: [], optional: [] },
  "aws-sigv4": { required: ["accessKeyIdKey", "secretKey"], optional: ["sessionTokenKey", "region", "awsService"] },
};

function isGiven(flags: AuthFlags, name: FlagName): boolean {
  return name === "header" ? flags.header.length > 0 : flags[name] !== undefined;
}

function customHeaders(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new AgentVaultError("invalid_argument", `--header "${line.slice(0, 140)}" is not 'Name: text {{ KEY }}'`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Builds the raw auth object from flags; the schema checks it afterwards. */
function authFromFlags(type: string, flags: AuthFlags, base?: Auth): unknown {
  if (!(AUTH_TYPES as readonly string[]).includes(type)) {
    throw new AgentVaultError("invalid_argument", `--auth-type must be one of ${AUTH_TYPES.join(", ")}, not "${type.slice(0, 40)}"${didYouMean(type, AUTH_TYPES)}`);
  }
  const spec = AUTH_FLAGS[type as Auth["type"]];
  for (const name of Object.keys(FLAG_TEXT) as FlagName[]) {
    if (isGiven(flags, name) && !spec.required.includes(name) && !spec.optional.includes(name)) {
      throw new AgentVaultError("invalid_argument", `${FLAG_TEXT[name]} does not apply to --auth-type ${type}`);
    }
  }
  if (!base) {
    const missing = spec.required.filter((name) => !isGiven(flags, name));
    if (missing.length > 0) throw new AgentVaultError("invalid_argument", `--auth-type ${type} needs ${missing.map((m) => FLAG_TEXT[m]).join(" and ")}`);
  }
  const from = (base ?? { type }) as Record<string, unknown>;
  switch (type) {
    case "bearer":
      return { ...from, token: flags.tokenKey ?? from.token };
    case "basic":
      return { ...from, username: flags.usernameKey ?? from.username, ...(flags.passwordKey || from.password ? { password: flags.passwordKey ?? from.password } : {}) };
    case "api-key":
      return { ...from, key: flags.key ?? from.key, ...(flags.header[0] ? { header: flags.header[0] } : {}), ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}) };
    case "custom":
      return flags.header.length > 0 ? { type, headers: customHeaders(flags.header) } : from;
    case "query":
      return { ...from, param: flags.param ?? from.param, key: flags.key ?? from.key };
    case "aws-sigv4": {
      const optional = { session_token: flags.sessionTokenKey, region: flags.region, aws_service: flags.awsService };
      const given = Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined));
      return { ...from, access_key_id: flags.accessKeyIdKey ?? from.access_key_id, secret_key: flags.secretKey ?? from.secret_key, ...given };
    }
    default:
      return { type };
  }
}

/** Which flag names each credential key of an auth, for a template's hint. */
function keyFlags(auth: Auth): [key: string, flag: string][] {
  switch (auth.type) {
    case "bearer":
      return [[auth.token, "--token-key"]];
    case "basic":
      return auth.password
        ? [
            [auth.username, "--username-key"],
            [auth.password, "--password-key"],
          ]
        : [[auth.username, "--username-key"]];
    case "api-key":
    case "query":
      return [[auth.key, "--key"]];
    case "custom":
      return credentialKeysOf(auth).map((key) => [key, "--header"]);
    case "passthrough":
      return [];
    case "aws-sigv4":
      return [[auth.access_key_id, "--access-key-id-key"], [auth.secret_key, "--secret-key"], ...(auth.session_token ? [[auth.session_token, "--session-token-key"] as [string, string]] : [])];
  }
}

/**
 * A template names the conventional keys (STRIPE_SECRET_KEY); the user may have stored the value
 * under another name. The hint says both ways out, naming every key the template needs, and a
 * stored key that looks like the same vendor's.
 */
function templateKeyHint(auth: Auth, stored: readonly string[]): string {
  const flags = keyFlags(auth);
  const keys = flags.map(([key]) => key);
  const setPart = keys.length === 1 ? `set it first: agent-vault vault credential set ${keys[0]}=-` : `set them first (each with agent-vault vault credential set KEY=-): ${keys.join(", ")}`;
  if (auth.type === "custom") return `${setPart}, or give your own keys with --header 'Name: {{ KEY }}'`;
  const guessed = new Set<string>();
  const own = flags.map(([key, flag]) => {
    const vendor = key.split("_")[0]!;
    const guess = stored.find((k) => k !== key && !guessed.has(k) && k.split("_")[0] === vendor);
    if (guess) guessed.add(guess);
    return `${flag} ${guess ?? "KEY"}`;
  });
  return `${setPart}; or use keys you already have: ${own.join(" ")}`;
}

function authSummary(auth: Auth): string {
  switch (auth.type) {
    case "api-key":
      return `api-key (${auth.header})`;
    case "query":
      return `query (?${auth.param}=)`;
    case "custom":
      return `custom (${Object.keys(auth.headers).join(", ")})`;
    case "aws-sigv4":
      return auth.region || auth.aws_service ? `aws-sigv4 (${[auth.aws_service, auth.region].filter(Boolean).join(", ")})` : "aws-sigv4";
    default:
      return auth.type;
  }
}

export function registerService(group: Command): void {
  const services = group.command("service").description("which hosts get which credential, and how");

  withJsonOption(withVaultOption(withPasswordOption(services.command("add").description("add a service (flags, or --template from the catalog)"))))
    .option("--name <name>", "service name")
    .option("--host <host>", "api.example.com, *.example.com, host:port or host/path/*")
    .option("--auth-type <type>", AUTH_TYPES.join(" | "))
    .option("--template <name>", "start from a catalog template (see `agent-vault catalog`)")
    .option("--token-key <KEY>", "bearer: the credential holding the token")
    .option("--username-key <KEY>", "basic: the credential holding the user name")
    .option("--password-key <KEY>", "basic: the credential holding the password")
    .option("--key <KEY>", "api-key, query: the credential holding the key")
    .option("--header <header>", "api-key: header name (default Authorization); custom: 'Name: text {{ KEY }}' (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--prefix <text>", "api-key: text before the key, e.g. 'Token '")
    .option("--param <name>", "query: the query parameter")
    .option("--access-key-id-key <KEY>", "aws-sigv4: the credential holding the access key id")
    .option("--secret-key <KEY>", "aws-sigv4: the credential holding the secret access key")
    .option("--session-token-key <KEY>", "aws-sigv4: the credential holding a session token (temporary keys)")
    .option("--region <region>", "aws-sigv4: the region to sign for (default: from the host, else us-east-1)")
    .option("--aws-service <name>", "aws-sigv4: the signing name (default: from the host: s3, sts, bedrock, lambda)")
    .option("--description <text>", "what the service is for")
    .option("--disabled", "add it disabled")
    .action(async (options: CommonOptions & AuthFlags & { name?: string; host?: string; authType?: string; template?: string; description?: string; disabled?: boolean }) => {
      let raw: Record<string, unknown>;
      if (options.template !== undefined) {
        const entry = findTemplate(options.template);
        if (!entry)
          throw new AgentVaultError(
            "template_not_found",
            `no catalog template "${options.template}"${didYouMean(
              options.template,
              CATALOG.map((e) => e.name),
            )}`,
          );
        if (options.authType !== undefined && options.authType !== entry.auth.type) {
          throw new AgentVaultError("invalid_argument", `template ${entry.name} uses --auth-type ${entry.auth.type}; drop --auth-type or the template`);
        }
        raw = { name: options.name ?? entry.name, host: options.host ?? entry.host, auth: authFromFlags(entry.auth.type, options, entry.auth), description: options.description ?? entry.title };
      } else {
        const missing = [!options.name && "--name", !options.host && "--host", !options.authType && "--auth-type"].filter(Boolean);
        if (missing.length > 0) throw new AgentVaultError("usage", `service add needs ${missing.join(", ")} (or --template)`);
        raw = { name: options.name, host: options.host, auth: authFromFlags(options.authType!, options), ...(options.description ? { description: options.description } : {}) };
      }
      if (options.disabled) raw.enabled = false;
      const input = parseServiceInput(raw);
      const { store, vault } = await openVault(options);
      let service;
      try {
        service = await addService(store, vault.name, input);
      } catch (error) {
        if (options.template === undefined || !(error instanceof AgentVaultError) || error.code !== "credential_not_found") throw error;
        throw new AgentVaultError(error.code, error.message, { hint: templateKeyHint(input.auth, Object.keys(vault.credentials)) });
      }
      if (options.json) return printJson(service);
      printNote(`added service "${service.name}" for ${service.host} (${authSummary(service.auth)}) to vault "${vault.name}"`);
      for (const warning of shadowedPrefixes([...vault.services, service], service.name)) printNote(`warning: ${warning}`);
    });

  withJsonOption(withVaultOption(withPasswordOption(services.command("list").description("list services")))).action(async (options: CommonOptions) => {
    const { vault } = await openVault(options);
    if (options.json) return printJson(vault.services);
    if (vault.services.length === 0) return printNote(`vault "${vault.name}" has no services; add one with: agent-vault vault service add --template NAME`);
    printTable(
      ["NAME", "HOST", "AUTH", "CREDENTIALS", "ENABLED"],
      vault.services.map((s) => [s.name, s.host, authSummary(s.auth), credentialKeysOf(s.auth).join(",") || "-", s.enabled ? "yes" : "no"]),
      { status: 4, cutFirst: [2] },
    );
  });

  withVaultOption(withPasswordOption(services.command("remove <name>").description("remove a service"))).action(async (name: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    await removeService(store, vault.name, name);
    printNote(`removed service "${name}" from vault "${vault.name}"`);
  });

  for (const [verb, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    withVaultOption(withPasswordOption(services.command(`${verb} <name>`).description(`${verb} a service`))).action(async (name: string, options: CommonOptions) => {
      const { store, vault } = await openVault(options);
      await setServiceEnabled(store, vault.name, name, enabled);
      printNote(`${verb}d service "${name}"`);
    });
  }

  withJsonOption(withVaultOption(withPasswordOption(services.command("set").description("add or update services from a JSON or YAML file"))))
    .requiredOption("-f, --file <file>", "a list of services, or { services: [...] } (.json, .yaml or .yml)")
    .option("--replace", "make the file the whole service list (services not in it are removed)")
    .action(async (options: CommonOptions & { file: string; replace?: boolean }) => {
      const document = await readDocument(options.file);
      const inputs = parseServiceFile(document.data, options.file, document.locate);
      const { store, vault } = await openVault(options);
      const result = await setServices(store, vault.name, inputs, options.replace === true);
      if (options.json) return printJson(result);
      printNote(`vault "${vault.name}": ${result.added.length} added, ${result.updated.length} updated, ${result.removed.length} removed`);
      const after = findVault(store.read(), vault.name).services;
      const warnings = new Set([...result.added, ...result.updated].flatMap((name) => shadowedPrefixes(after, name)));
      for (const warning of warnings) printNote(`warning: ${warning}`);
    });
}

export function registerCatalog(program: Command): void {
  withJsonOption(program.command("catalog").description("list service templates for `vault service add --template NAME`")).action((options: { json?: boolean }) => {
    if (options.json) return printJson(CATALOG);
    printTable(
      ["TEMPLATE", "SERVICE", "HOST", "AUTH", "CREDENTIALS"],
      CATALOG.map((e) => [e.name, e.title, e.host, authSummary(e.auth), credentialKeysOf(e.auth).join(",")]),
      { cutFirst: [1] },
    );
  });
}
