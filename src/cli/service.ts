// `agent-vault vault service add|list|remove|enable|disable|set` and `agent-vault catalog`.
import { type Command } from "commander";
import { parseDocument } from "./documents.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { CATALOG, findTemplate } from "../vault/catalog.ts";
import { AUTH_TYPES, type Auth, credentialKeysOf } from "../vault/service.schema.ts";
import { addService, parseServiceFile, parseServiceInput, removeService, setServiceEnabled, setServices } from "../vault/services.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { printJson, printNote, printTable } from "./io.ts";

interface AuthFlags {
  tokenKey?: string;
  usernameKey?: string;
  passwordKey?: string;
  key?: string;
  header: string[];
  prefix?: string;
  param?: string;
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
};

/** Which flags each auth type takes (DESIGN "Command line"). */
const AUTH_FLAGS: Record<Auth["type"], { required: FlagName[]; optional: FlagName[] }> = {
  bearer: { required: ["tokenKey"], optional: [] },
  basic: { required: ["usernameKey"], optional: ["passwordKey"] },
  "api-key": { required: ["key"], optional: ["header", "prefix"] },
  custom: { required: ["header"], optional: [] },
  query: { required: ["param", "key"], optional: [] },
  passthrough: { required: [], optional: [] },
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
    throw new AgentVaultError("invalid_argument", `--auth-type must be one of ${AUTH_TYPES.join(", ")}, not "${type}"`);
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
    default:
      return { type };
  }
}

function authSummary(auth: Auth): string {
  switch (auth.type) {
    case "api-key":
      return `api-key (${auth.header})`;
    case "query":
      return `query (?${auth.param}=)`;
    case "custom":
      return `custom (${Object.keys(auth.headers).join(", ")})`;
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
    .option("--description <text>", "what the service is for")
    .option("--disabled", "add it disabled")
    .action(async (options: CommonOptions & AuthFlags & { name?: string; host?: string; authType?: string; template?: string; description?: string; disabled?: boolean }) => {
      let raw: Record<string, unknown>;
      if (options.template !== undefined) {
        const entry = findTemplate(options.template);
        if (!entry) throw new AgentVaultError("template_not_found", `no catalog template "${options.template}"`);
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
      const service = await addService(store, vault.name, input);
      if (options.json) return printJson(service);
      printNote(`added service "${service.name}" for ${service.host} (${authSummary(service.auth)}) to vault "${vault.name}"`);
    });

  withJsonOption(withVaultOption(withPasswordOption(services.command("list").description("list services")))).action(async (options: CommonOptions) => {
    const { vault } = await openVault(options);
    if (options.json) return printJson(vault.services);
    if (vault.services.length === 0) return printNote(`vault "${vault.name}" has no services; add one with: agent-vault vault service add --template NAME`);
    printTable(
      ["NAME", "HOST", "AUTH", "CREDENTIALS", "ENABLED"],
      vault.services.map((s) => [s.name, s.host, authSummary(s.auth), credentialKeysOf(s.auth).join(",") || "-", s.enabled ? "yes" : "no"]),
    );
  });

  withVaultOption(withPasswordOption(services.command("remove <name>").description("remove a service"))).action(async (name: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    await removeService(store, vault.name, name);
    printNote(`removed service "${name}" from vault "${vault.name}"`);
  });

  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
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
      const inputs = parseServiceFile(await parseDocument(options.file), options.file);
      const { store, vault } = await openVault(options);
      const result = await setServices(store, vault.name, inputs, options.replace === true);
      if (options.json) return printJson(result);
      printNote(`vault "${vault.name}": ${result.added.length} added, ${result.updated.length} updated, ${result.removed.length} removed`);
    });
}

export function registerCatalog(program: Command): void {
  withJsonOption(program.command("catalog").description("list service templates for `vault service add --template NAME`")).action((options: { json?: boolean }) => {
    if (options.json) return printJson(CATALOG);
    printTable(
      ["TEMPLATE", "SERVICE", "HOST", "AUTH", "CREDENTIALS"],
      CATALOG.map((e) => [e.name, e.title, e.host, authSummary(e.auth), credentialKeysOf(e.auth).join(",")]),
    );
  });
}
