// Agents `run` knows by name, and what each reads beyond the common variables (DESIGN
// "Environment"). codex and claude were checked in their own code (dev dependencies, and the e2e
// tests run them); gemini, opencode and cursor-agent are from their documentation only.
//   codex (Rust; @openai/codex 0.169): OPENAI_API_KEY, and CODEX_API_KEY first in `codex exec`;
//     trusts CODEX_CA_CERTIFICATE or SSL_CERT_FILE; HTTPS_PROXY. CODEX_API_KEY gets the same
//     placeholder, so a real key the user exported under that name never reaches the agent.
//   claude (Bun; @anthropic-ai/claude-code 2.1): ANTHROPIC_API_KEY (used as is with -p; asked
//     about once per key when interactive, and each session's placeholder is a new key),
//     NODE_EXTRA_CA_CERTS beside its bundled and system roots (CLAUDE_CODE_CERT_STORE unset keeps
//     both), HTTPS_PROXY/NO_PROXY. ANTHROPIC_BASE_URL stays unset: the proxy is on the default
//     host's path. In -p mode it talks to api.anthropic.com alone.
//   gemini (Node): GEMINI_API_KEY; NODE_EXTRA_CA_CERTS; HTTPS_PROXY.
//   opencode (Bun): each provider's own variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...);
//     NODE_EXTRA_CA_CERTS; HTTPS_PROXY.
//   cursor-agent (Node): NODE_EXTRA_CA_CERTS, HTTPS_PROXY with NODE_USE_ENV_PROXY; its own login
//     (CURSOR_API_KEY) is not a catalog service, so it gets no placeholder.
// An agent that keeps a login of its own (codex's auth.json, claude's keychain) may use that
// instead of the placeholder; that token is the agent's to see.
import { basename } from "node:path";

/** Per agent: a variable that gets the placeholder another one got (alias → the variable it copies). */
const ALIASES: Record<string, Record<string, string>> = {
  codex: { CODEX_API_KEY: "OPENAI_API_KEY" },
  claude: {},
  gemini: {},
  opencode: {},
  "cursor-agent": {},
};

export function knownAgent(command: readonly string[]): string | null {
  const name = basename(command[0] ?? "");
  return name in ALIASES ? name : null;
}

/** The placeholder variables with the agent's own aliases added. */
export function withAgentAliases(agent: string | null, env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (const [alias, source] of Object.entries(agent ? ALIASES[agent]! : {})) if (env[source] !== undefined) out[alias] = env[source];
  return out;
}
