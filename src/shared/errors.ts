// One error class with a stable code, and the one table that maps a code to its HTTP status, CLI
// exit code and default hint. Messages never contain a secret value: callers name keys, not values.

export const ERROR_TABLE = {
  usage: { http: 400, exit: 2, hint: "run the command with --help to see its usage" },
  invalid_request: { http: 400, exit: 2, hint: undefined },
  invalid_argument: { http: 400, exit: 2, hint: undefined },
  not_initialized: { http: 500, exit: 1, hint: "run `agent-vault init` first" },
  already_initialized: { http: 409, exit: 1, hint: undefined },
  password_required: {
    http: 401,
    exit: 1,
    hint: "pass --password-stdin, set AGENT_VAULT_MASTER_PASSWORD, or run in a terminal to be prompted",
  },
  wrong_password: { http: 401, exit: 1, hint: "check the master password and try again" },
  weak_password: { http: 400, exit: 2, hint: "use at least 8 characters" },
  unsupported_version: { http: 500, exit: 1, hint: "this file was written by another version of agent-vault; upgrade it" },
  vault_corrupt: {
    http: 500,
    exit: 1,
    hint: "restore the file from a backup; agent-vault will not guess at damaged data",
  },
  /** `audit verify` found a record changed, removed, reordered, inserted or cut (src/vault/audit.ts). */
  audit_broken: { http: 500, exit: 1, hint: "the audit log was changed outside agent-vault: keep a copy of it and of vault.av, and see which records `agent-vault audit export` still vouches for" },
  lock_timeout: {
    http: 503,
    exit: 1,
    hint: "another agent-vault process holds the lock; if none is running, remove the .lock directory beside the vault file",
  },
  vault_not_found: { http: 404, exit: 1, hint: "list vaults with `agent-vault vault list`" },
  vault_exists: { http: 409, exit: 1, hint: undefined },
  credential_not_found: { http: 502, exit: 1, hint: "list credentials with `agent-vault vault credential list`" },
  credential_in_use: { http: 409, exit: 1, hint: undefined },
  service_not_found: { http: 404, exit: 1, hint: "list services with `agent-vault vault service list`" },
  service_exists: { http: 409, exit: 1, hint: "remove it first, or choose another --name" },
  session_not_found: { http: 404, exit: 1, hint: "list sessions with `agent-vault vault session list`" },
  template_not_found: { http: 404, exit: 1, hint: "list templates with `agent-vault catalog`" },
  unauthorized: { http: 401, exit: 1, hint: "start the agent with `agent-vault run -- <command>` to get a session" },
  host_not_allowed: { http: 403, exit: 1, hint: "file the proposal_hint as a proposal, or ask the vault owner to add a service" },
  service_disabled: { http: 403, exit: 1, hint: "enable it with `agent-vault vault service enable NAME`" },
  forbidden_address: { http: 403, exit: 1, hint: "private and loopback addresses are blocked; allow a range with AGENT_VAULT_NETWORK_ALLOWLIST" },
  request_too_large: { http: 413, exit: 1, hint: undefined },
  rate_limited: { http: 429, exit: 1, hint: undefined },
  policy_denied: { http: 403, exit: 1, hint: undefined },
  credential_exfiltration: { http: 403, exit: 1, hint: undefined },
  /** A held request (an `approve` rule of a policy) that a person refused, or left unanswered. */
  approval_denied: { http: 403, exit: 1, hint: undefined },
  approval_timeout: { http: 403, exit: 1, hint: "ask the person at the vault to answer it (`agent-vault held list`), then send the request again" },
  too_many_pending_proposals: { http: 429, exit: 1, hint: "wait for the pending proposals to be reviewed" },
  proposal_not_found: { http: 404, exit: 1, hint: "list proposals with `agent-vault vault proposal list`" },
  oauth_not_connected: { http: 502, exit: 1, hint: "complete it with `agent-vault oauth connect KEY` or `agent-vault oauth paste KEY`" },
  oauth_refresh_failed: { http: 502, exit: 1, hint: "reconnect with `agent-vault oauth connect KEY` or paste new tokens with `agent-vault oauth paste KEY`" },
  oauth_connect_failed: { http: 502, exit: 1, hint: undefined },
  source_unavailable: { http: 502, exit: 1, hint: "check the source by hand (`pass show PATH`, `op read ...`); `agent-vault status` says since when it fails" },
  upstream_error: { http: 502, exit: 1, hint: undefined },
  upstream_tls_error: { http: 502, exit: 1, hint: "the upstream's certificate did not verify; trust an extra CA with AGENT_VAULT_UPSTREAM_CA" },
  not_found: { http: 404, exit: 1, hint: undefined },
  server_not_running: { http: 503, exit: 1, hint: "start it with `agent-vault server`" },
  server_not_verified: {
    http: 502,
    exit: 1,
    hint: "something other than this vault's server answers at the address in server.pid; if no agent-vault server should run, remove server.pid and try again",
  },
  // `run`'s own start failures use the shell's codes, so a wrapper cannot mistake them for the child's.
  command_not_found: { http: 400, exit: 127, hint: "check the command's name and your PATH" },
  command_not_executable: { http: 400, exit: 126, hint: "make the file executable (chmod +x), or run it through its interpreter" },
  not_supported: { http: 501, exit: 1, hint: undefined },
  cancelled: { http: 400, exit: 1, hint: undefined },
  /** Logged when the agent went away before its answer (nginx's 499); never sent. */
  client_gone: { http: 499, exit: 1, hint: undefined },
  conflict: { http: 409, exit: 1, hint: undefined },
  io_error: { http: 500, exit: 1, hint: undefined },
  internal: { http: 500, exit: 1, hint: "this is a bug in agent-vault; please report it" },
} as const satisfies Record<string, { http: number; exit: number; hint: string | undefined }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class AgentVaultError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; details?: Record<string, unknown> } = {}) {
    super(message);
    this.name = "AgentVaultError";
    this.code = code;
    this.hint = options.hint ?? ERROR_TABLE[code].hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }

  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }
}

export function isAgentVaultError(error: unknown): error is AgentVaultError {
  return error instanceof AgentVaultError;
}

/** Turns a zod issue path into the dotted field name a 400 or a CLI error names. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("");
}
