// The placeholders `run` puts in the agent's environment (DESIGN "Placeholders"): for each
// credential a service of the session names, the variables its clients read (the catalog's, or the
// key's own name), plus the user's `--env NAME=KEY`. The proxy recognises them by making them
// again (src/vault/placeholders.ts): nothing is stored, and no value is opened here.
import { AgentVaultError } from "../shared/errors.ts";
import { CA_BUNDLE_VARIABLES } from "./env.ts";
import { didYouMean } from "../shared/suggest.ts";
import { clientVariables, derivePlaceholder, placeholderKeyOf } from "../vault/placeholders.ts";
import { credentialKeysOf, type Service } from "../vault/service.schema.ts";
import { type VaultRecord } from "../vault/state.schema.ts";

/** `--env NAME=KEY`: an environment variable name, then a credential key. */
const ENV_ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=([A-Z][A-Z0-9_]*)$/;

/** The variables of run's own contract: a placeholder may not take their place. */
function isReserved(name: string): boolean {
  const upper = name.toUpperCase();
  return (
    upper.startsWith("AGENT_VAULT_") ||
    ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "NODE_USE_ENV_PROXY", "NODE_OPTIONS"].includes(upper) ||
    (CA_BUNDLE_VARIABLES as readonly string[]).includes(name)
  );
}

export interface EnvRequest {
  readonly name: string;
  readonly key: string;
}

/** Checks `--env` arguments before anything else happens (a usage error names the bad one). */
export function parseEnvRequests(args: readonly string[]): EnvRequest[] {
  return args.map((arg) => {
    const match = ENV_ASSIGNMENT.exec(arg);
    if (!match) throw new AgentVaultError("invalid_argument", `--env "${arg.slice(0, 100)}" is not NAME=KEY (an environment variable name, then a credential key like OPENAI_API_KEY)`);
    if (isReserved(match[1]!)) throw new AgentVaultError("invalid_argument", `--env ${match[1]}: run sets this variable itself (proxy, CA bundle or session); choose another name`);
    return { name: match[1]!, key: match[2]! };
  });
}

export interface SessionPlaceholders {
  /** Variable → placeholder, for the child's environment. */
  readonly env: Record<string, string>;
  /** The credential keys that got one, for run's first line. */
  readonly keys: readonly string[];
}

/** The services a session with this list may use (null: every service of the vault). */
export function sessionServices(vault: VaultRecord, names: readonly string[] | null): Service[] {
  return names === null ? vault.services : vault.services.filter((s) => names.includes(s.name));
}

/** Refuses an `--env` whose credential no service of the session uses (before any session exists). */
export function checkEnvRequests(services: readonly Service[], extra: readonly EnvRequest[]): void {
  const keys = [...new Set(services.flatMap((s) => credentialKeysOf(s.auth)))];
  for (const { name, key } of extra) {
    // A placeholder no service of the session would replace is a variable that can only fail.
    if (!keys.includes(key)) {
      throw new AgentVaultError("invalid_argument", `--env ${name}=${key}: no service of this session uses credential ${key}${didYouMean(key, keys)}`, {
        hint: "see which services use which credentials with `agent-vault vault service list`",
      });
    }
  }
}

export function placeholderEnv(store: { serverProofKey(): Buffer }, vault: VaultRecord, sessionId: string, services: readonly Service[], extra: readonly EnvRequest[]): SessionPlaceholders {
  const keys = [...new Set(services.flatMap((s) => credentialKeysOf(s.auth)))];
  const placeholderKey = placeholderKeyOf(store);
  const env: Record<string, string> = {};
  const placeholderOf = (key: string) => derivePlaceholder(placeholderKey, sessionId, key, clientVariables(key, services).shape);
  for (const key of keys) for (const name of clientVariables(key, services).env) env[name] = placeholderOf(key);
  checkEnvRequests(services, extra);
  for (const { name, key } of extra) env[name] = placeholderOf(key);
  return { env, keys };
}
