// `agent-vault run -- <command>`: a session for the child, a server to talk to (the running one of
// this data directory, or one served in-process for the child's life), and the environment
// contract. stdin, stdout, stderr and the TTY go straight to the child; signals are forwarded; the
// child's exit code is ours. The session is revoked when the child exits.
import { homePaths } from "../shared/paths.ts";
import { ensureCertificateAuthority } from "../proxy/ca.ts";
import { type Policy } from "../vault/agent.schema.ts";
import { currentProcessIdentity } from "../shared/liveness.ts";
import { createSession, revokeSession } from "../vault/sessions.ts";
import { type VaultStore } from "../vault/vault.ts";
import { prepareLauncher, type SandboxRequest } from "../sandbox/launch.ts";
import { writeNodePreload } from "../sandbox/node-preload.ts";
import { buildAgentEnv } from "./env.ts";
import { watchProposals } from "./notice.ts";
import { watchHeld } from "./held-notice.ts";
import { watchFailures } from "./failure-notice.ts";
import { DEFAULT_API_PORT, DEFAULT_MITM_PORT, findRunningServer, handoffSocketPath, noticeRedirections, type Served, startServices } from "./serve.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe } from "../shared/text.ts";
import { findVault } from "../vault/vaults.ts";
import { knownAgent, withAgentAliases } from "./agents.ts";
import { checkEnvRequests, type EnvRequest, placeholderEnv, sessionServices } from "./placeholders.ts";

// A terminal delivers Ctrl-C, Ctrl-\\ and resizes to the whole foreground process group, child
// included: forwarding those again would make an agent see every Ctrl-C twice. Without a terminal
// they can only have been sent to us, so they are forwarded too.
const ALWAYS_FORWARDED = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
const TERMINAL_SIGNALS = ["SIGINT", "SIGQUIT"] as const;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15 };

export async function runAgent(
  store: VaultStore,
  vaultName: string,
  command: readonly string[],
  options: { ttlMs: number; services: readonly string[] | null; agent?: string | null; policy?: Policy | null; sandbox?: SandboxRequest; env?: readonly EnvRequest[]; quiet?: boolean },
): Promise<number> {
  const paths = homePaths();
  await ensureCertificateAuthority(store);
  // `--env NAME=KEY` is checked before any session exists: a bad one changes nothing.
  checkEnvRequests(sessionServices(findVault(store.read(), vaultName), options.services), options.env ?? []);
  // The server is checked (it must prove it holds this vault's key) before any session exists.
  const running = await findRunningServer(store);
  // The session lives only as long as this process (src/shared/liveness.ts), however it ends.
  const { token, session } = await createSession(store, vaultName, {
    ttlMs: options.ttlMs,
    services: options.services,
    label: command[0] ?? "",
    agent: options.agent ?? null,
    policy: options.policy ?? null,
    run: currentProcessIdentity(),
  });
  let served: Served | null = null;
  let host: string;
  let apiPort: number;
  let mitmPort: number;
  if (running) {
    ({ host, api_port: apiPort, mitm_port: mitmPort } = running);
  } else {
    served = await startServices(store, { host: "127.0.0.1", apiPort: DEFAULT_API_PORT, mitmPort: DEFAULT_MITM_PORT, fallbackToFreePorts: true });
    ({ host, apiPort, mitmPort } = served);
  }
  // The command runs in the sandbox unless asked not to (src/sandbox/): it then reaches the proxy
  // and the API only through relays on its own loopback.
  const nodePreload = writeNodePreload(paths.home);
  const sandbox = options.sandbox ?? { enabled: false, readOnly: [], readWrite: [], hidden: [] };
  let launcher;
  try {
    launcher = await prepareLauncher(
      { ...sandbox, command, quiet: options.quiet === true },
      {
        dataDir: paths.home,
        shared: [paths.caBundle, nodePreload],
        host,
        apiPort,
        mitmPort,
        adopt: served?.adopt,
        server: running ? { pid: running.pid, handoffSocket: handoffSocketPath(paths), recheck: async () => (await findRunningServer(store).catch(() => null))?.pid ?? null } : undefined,
      },
      (line) => process.stderr.write(line),
    );
  } catch (error) {
    await cleanup(store, vaultName, session.id, served);
    throw error;
  }
  // Said once the command is about to start (a bad flag above stays a one-line error).
  if (served) noticeRedirections(process.env);
  // Placeholders for the session's credentials (DESIGN "Placeholders"), made from the vault as the
  // session was written: the proxy makes the same ones again to recognise them.
  const vault = findVault(store.read(), vaultName);
  const services = sessionServices(vault, options.services);
  const placeholders = placeholderEnv(store, vault, session.id, services, options.env ?? []);
  const agent = knownAgent(command);
  if (!options.quiet) {
    const some = (names: readonly string[]) => (names.length === 0 ? "none" : names.length > 8 ? `${names.slice(0, 8).join(", ")} and ${names.length - 8} more` : names.join(", "));
    // Names only: which variables hold placeholders, never what they hold.
    process.stderr.write(
      `agent-vault: vault "${displaySafe(vaultName)}", session ${session.id}, services: ${displaySafe(some(services.map((s) => s.name)))}; placeholders: ${some(Object.keys(withAgentAliases(agent, placeholders.env)))}; sandbox ${launcher.isSandboxed ? (sandbox.strict ? "on (strict)" : "on") : "off"}; proxy ${launcher.agentHost}:${mitmPort}, api ${launcher.agentHost}:${apiPort}${served ? " (served by this run)" : ""}\n`,
    );
  }
  const env = buildAgentEnv(process.env, {
    apiUrl: `http://${launcher.agentHost}:${apiPort}`,
    token,
    vault: vaultName,
    proxyHost: launcher.agentHost,
    proxyPort: mitmPort,
    caBundle: paths.caBundle,
    nodePreload,
    placeholders: withAgentAliases(agent, placeholders.env),
  });
  let child;
  try {
    child = launcher.spawn(command, env);
  } catch (error) {
    await launcher.close();
    await cleanup(store, vaultName, session.id, served);
    const code = (error as NodeJS.ErrnoException).code;
    const name = displaySafe((command[0] ?? "").slice(0, 200));
    if (code === "ENOENT") throw new AgentVaultError("command_not_found", `${name}: command not found`);
    if (code === "EACCES") throw new AgentVaultError("command_not_executable", `${name}: permission denied`);
    throw new AgentVaultError("invalid_argument", `cannot run ${name}: ${code ?? (error as Error).message}`);
  }
  // We stay alive through the child's signals to report its exit code.
  const stopWatching = watchProposals(store, vaultName, (line) => process.stderr.write(line));
  const stopWatchingHeld = watchHeld(store, session.id, (line) => process.stderr.write(line));
  const stopWatchingFailures = options.quiet ? async () => undefined : watchFailures(store.paths.requestLog, session.id, (line) => process.stderr.write(line));
  const fromTerminal = Boolean(process.stdin.isTTY);
  const handlers = [...ALWAYS_FORWARDED, ...TERMINAL_SIGNALS].map((signal) => {
    const handler = () => {
      if (fromTerminal && (TERMINAL_SIGNALS as readonly string[]).includes(signal)) return;
      try {
        child.kill(signal);
      } catch {
        // the child is gone
      }
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const code = await child.exited;
  stopWatching();
  stopWatchingHeld();
  // Self-served, the last records may still sit in the proxy's batch: out they go first.
  served?.flushLog();
  await stopWatchingFailures();
  for (const [signal, handler] of handlers) process.off(signal, handler);
  await launcher.close();
  const revoked = await cleanup(store, vaultName, session.id, served);
  const exitCode = child.signalCode ? 128 + (SIGNAL_NUMBERS[child.signalCode] ?? 1) : code;
  if (!revoked) process.exit(exitCode);
  return exitCode;
}

/** How long the revocation may wait for the vault lock before we exit without it. */
const REVOKE_WAIT_MS = 500;

async function cleanup(store: VaultStore, vaultName: string, sessionId: string, served: Served | null): Promise<boolean> {
  // The session dies with this process anyway (its record names our pid and start time); revoking
  // only says so on file. A lock someone keeps fresh must not keep us, and so the session, alive:
  // if the revocation is still waiting for it, the caller exits without it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const revoked = await Promise.race([
    revokeSession(store, vaultName, sessionId).then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), REVOKE_WAIT_MS))),
  ]);
  // A pending timer would hold the process (and the session) open for the whole wait.
  clearTimeout(timer);
  await served?.close().catch(() => undefined);
  return revoked;
}
