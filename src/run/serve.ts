import { join } from "node:path";
import { type ServerFacts } from "../api/proof.ts";
import { type Socket } from "node:net";
import { isProcessAlive } from "../shared/liveness.ts";
import { displaySafe } from "../shared/text.ts";
import { createApiServer } from "../api/server.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { RequestLog } from "../shared/log.ts";
import { type HomePaths } from "../shared/paths.ts";
import { ProxyListener } from "../proxy/listener.ts";
import { ensureCertificateAuthority } from "../proxy/ca.ts";
import { upstreamTrust } from "../net/trust.ts";
import { LeafCertificates } from "../proxy/certs.ts";
import { netguardOptionsFromEnv } from "../net/netguard.ts";
import { ProxyState } from "../proxy/state.ts";
import { type VaultStore } from "../vault/vault.ts";
import { listenForHandoffs } from "./handoff.ts";
import { checkServer } from "./server-check.ts";
import { type PidFile, readPidFile } from "./pidfile.ts";

export { readPidFile, removePidFile, writePidFile } from "./pidfile.ts";

export const DEFAULT_API_PORT = 14321;
export const DEFAULT_MITM_PORT = 14322;
const DEFAULT_MAX_BYTES = 4 * 1024 ** 3;

export interface ServeOptions {
  readonly host: string;
  readonly apiPort: number;
  readonly mitmPort: number;
  /** Take free ports when the requested ones are in use (what `run` does). */
  readonly fallbackToFreePorts: boolean;
  /** Where sandboxed runs hand over their listeners (src/run/handoff.ts); `server` only. */
  readonly handoffSocket?: string;
}

export interface Served {
  readonly host: string;
  readonly apiPort: number;
  readonly mitmPort: number;
  /** Hands a connection accepted elsewhere (the sandbox's Unix socket) to the proxy or the API. */
  readonly adopt: { readonly proxy: (socket: Socket) => void; readonly api: (socket: Socket) => void };
  /** Writes the request log's batched records now (run reads its agent's last ones before it exits). */
  flushLog(): void;
  close(): Promise<void>;
}

function sizeFromEnv(name: string): number {
  const value = process.env[name];
  if (value === undefined || value === "") return DEFAULT_MAX_BYTES;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new AgentVaultError("invalid_argument", `${name} must be a number of bytes, not "${value}"`);
  return n;
}

async function withFallback<T>(listen: (port: number) => Promise<T>, port: number, fallback: boolean, what: string): Promise<T> {
  try {
    return await listen(port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" && fallback) return listen(0);
    if (code === "EADDRINUSE")
      throw new AgentVaultError("conflict", `the ${what} port ${port} is in use`, { hint: `choose another with --${what === "proxy" ? "mitm-port" : "port"}, or stop what uses it` });
    throw error;
  }
}

let guarded = false;

/** One bad socket or a bug in a handler must not take every agent's proxy down with it. */
function keepServing(): void {
  if (guarded) return;
  guarded = true;
  process.on("uncaughtException", (error) => {
    process.stderr.write(`agent-vault: internal error (the server keeps running): ${error.message.split("\n")[0]}\n`);
  });
}

/**
 * Settings that send credentials elsewhere or trust other certificates, said out loud when set:
 * an agent can plant them in a shell startup file for the user's next session.
 */
export function noticeRedirections(env: NodeJS.ProcessEnv): void {
  for (const name of ["AGENT_VAULT_CONNECT_TO", "AGENT_VAULT_UPSTREAM_CA", "AGENT_VAULT_NETWORK_ALLOWLIST"]) {
    const value = env[name];
    if (value) process.stderr.write(`agent-vault: note: ${name} is set (${displaySafe(value.slice(0, 200))}): upstream connections follow it; unset it unless you set it yourself\n`);
  }
}

export async function startServices(store: VaultStore, options: ServeOptions): Promise<Served> {
  keepServing();
  const ca = await ensureCertificateAuthority(store);
  let trust: string[];
  try {
    trust = upstreamTrust();
  } catch {
    throw new AgentVaultError("invalid_argument", `AGENT_VAULT_UPSTREAM_CA: cannot read ${process.env.AGENT_VAULT_UPSTREAM_CA}`);
  }
  const state = new ProxyState(store);
  const requestLog = new RequestLog(store.paths.requestLog);
  const proxy = new ProxyListener({
    state,
    leaves: new LeafCertificates(ca),
    log: requestLog,
    trust,
    options: {
      netguard: netguardOptionsFromEnv(),
      maxRequestBytes: sizeFromEnv("AGENT_VAULT_MAX_REQUEST_BYTES"),
      maxResponseBytes: sizeFromEnv("AGENT_VAULT_MAX_RESPONSE_BYTES"),
    },
  });
  const running = await withFallback((port) => proxy.listen(options.host, port), options.mitmPort, options.fallbackToFreePorts, "proxy");
  // What this server proves it is (src/api/proof.ts), known once both listeners are up.
  let facts: ServerFacts | null = null;
  const api = createApiServer({ state, proxy, proof: { key: store.serverProofKey(), facts: () => facts } });
  let apiPort: number;
  try {
    apiPort = await withFallback((port) => api.listen(options.host, port), options.apiPort, options.fallbackToFreePorts, "API");
  } catch (error) {
    await running.close();
    throw error;
  }
  facts = { pid: process.pid, host: options.host, api_port: apiPort, mitm_port: running.port };
  const adopt = { proxy: (socket: Socket) => proxy.adopt(socket), api: (socket: Socket) => api.adopt(socket) };
  const handoffs = options.handoffSocket ? await listenForHandoffs(options.handoffSocket, adopt) : null;
  return {
    flushLog: () => requestLog.flush(),
    host: options.host,
    apiPort,
    mitmPort: running.port,
    adopt,
    close: async () => {
      await Promise.all([running.close(), api.close(), handoffs?.close()]);
    },
  };
}

/** The server's hand-off socket (src/run/handoff.ts), at a fixed place: `run` checks who listens there. */
export function handoffSocketPath(paths: HomePaths): string {
  return join(paths.home, "server.sock");
}

/**
 * The server of this data directory, or null when none runs (no pidfile, its pid gone, nothing
 * listening at its address). Something that answers there but cannot prove it holds this vault's
 * key is refused: `run` would otherwise point its agent, token and all, at whatever the pidfile
 * names (src/run/server-check.ts).
 */
export async function findRunningServer(store: VaultStore): Promise<PidFile | null> {
  const record = readPidFile(store.paths);
  if (record === null || !isProcessAlive(record.pid)) return null;
  const check = await checkServer(store, record);
  if (check.kind === "verified") return record;
  if (check.kind === "absent") return null;
  throw new AgentVaultError(
    "server_not_verified",
    `the process named in ${store.paths.pidFile} (pid ${record.pid}, ${record.host}:${record.api_port}) did not prove it is this vault's server (${check.why}); not using it`,
  );
}

export { isProcessAlive };
