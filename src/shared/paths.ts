// Where agent-vault keeps its files. Every process (server, run, tui, one-shot commands) derives
// the same paths from AGENT_VAULT_HOME, so the data directory is the single source of truth.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface HomePaths {
  readonly home: string;
  /** The encrypted state: vaults, credentials, services, proposals, sessions. */
  readonly stateFile: string;
  /** The lock directory that serializes writers across processes. */
  readonly lockFile: string;
  /** The data key, only in --no-password mode. */
  readonly keyFile: string;
  readonly caCert: string;
  readonly caBundle: string;
  readonly requestLog: string;
  readonly pidFile: string;
}

export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.AGENT_VAULT_HOME;
  if (fromEnv && fromEnv.trim() !== "") return resolve(fromEnv);
  return join(homedir(), ".agent-vault");
}

export function homePaths(home: string = resolveHome()): HomePaths {
  return {
    home,
    stateFile: join(home, "vault.av"),
    lockFile: join(home, "vault.av.lock"),
    keyFile: join(home, "vault.key"),
    caCert: join(home, "ca.pem"),
    caBundle: join(home, "ca-bundle.pem"),
    requestLog: join(home, "requests.log"),
    pidFile: join(home, "server.pid"),
  };
}
