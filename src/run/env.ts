// The environment `agent-vault run` gives its child (DESIGN "Environment"): where the agent API
// is, the session token, the proxy with the token in its user info, and our CA bundle for every
// client we know of. Inherited copies are replaced, and the master password never passes.
import { withNodePreload } from "../sandbox/node-preload.ts";

export const CA_BUNDLE_VARIABLES = [
  "SSL_CERT_FILE",
  "NODE_EXTRA_CA_CERTS",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "DENO_CERT",
  "PIP_CERT",
  "CARGO_HTTP_CAINFO",
  "AWS_CA_BUNDLE",
  // Clients that read no variable above: Python httplib2 (Google API clients), gRPC's C core,
  // the gcloud CLI, Nix, codex, Python websocket-client, Ruby's bundler, PHP's composer, Elixir's hex.
  "HTTPLIB2_CA_CERTS",
  "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
  "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
  "NIX_SSL_CERT_FILE",
  "CODEX_CA_CERTIFICATE",
  "WEBSOCKET_CLIENT_CA_BUNDLE",
  "BUNDLE_SSL_CA_CERT",
  "COMPOSER_CAFILE",
  "HEX_CACERTS_PATH",
] as const;

const PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] as const;
const WITHHELD = ["AGENT_VAULT_MASTER_PASSWORD"];

export interface AgentEnvInput {
  readonly apiUrl: string;
  readonly token: string;
  readonly vault: string;
  readonly proxyHost: string;
  readonly proxyPort: number;
  readonly caBundle: string;
  /** A script Node loads first (src/sandbox/node-preload.ts): its global fetch then uses the proxy. */
  readonly nodePreload?: string;
  /** Variable → placeholder (run/placeholders.ts): an inherited copy, maybe a real key, is replaced. */
  readonly placeholders?: Record<string, string>;
}

export function buildAgentEnv(parent: NodeJS.ProcessEnv, input: AgentEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && !WITHHELD.includes(name)) env[name] = value;
  }
  const proxyUrl = `http://${encodeURIComponent(input.token)}:${encodeURIComponent(input.vault)}@${input.proxyHost}:${input.proxyPort}`;
  for (const name of PROXY_VARIABLES) env[name] = proxyUrl;
  for (const name of ["NO_PROXY", "no_proxy"]) env[name] = "localhost,127.0.0.1,::1";
  env.NODE_USE_ENV_PROXY = "1";
  if (input.nodePreload) env.NODE_OPTIONS = withNodePreload(env.NODE_OPTIONS, input.nodePreload);
  for (const name of CA_BUNDLE_VARIABLES) env[name] = input.caBundle;
  Object.assign(env, input.placeholders);
  env.AGENT_VAULT_ADDR = input.apiUrl;
  env.AGENT_VAULT_SESSION_TOKEN = input.token;
  env.AGENT_VAULT_VAULT = input.vault;
  return env;
}
