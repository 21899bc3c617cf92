// `agent-vault server [-d]`, `server stop`, `run -- <command>`, `ca path|export`, `vault session
// list|revoke` and `vault discover`. The proxy is imported only when one of these runs.
import { type Command } from "commander";
import { discover } from "../api/discover.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { openAppendPrivate } from "../shared/files.ts";
import { parseDuration } from "../shared/duration.ts";
import { homePaths } from "../shared/paths.ts";
import { type Session } from "../vault/state.schema.ts";
import { hasSessionEnded, isSessionActive, revokeSession } from "../vault/sessions.ts";
import { VaultStore } from "../vault/vault.ts";
import { type CommonOptions, openStore, openVault, readMasterPassword, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { formatWhen, printJson, printNote, printTable } from "./io.ts";
import { displaySafe } from "../shared/text.ts";

interface ServerOptions extends CommonOptions {
  host: string;
  port: string;
  mitmPort: string;
  detach?: boolean;
}

function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AgentVaultError("invalid_argument", `${flag} must be a port number, not "${text}"`);
  return port;
}

async function waitFor<T>(probe: () => Promise<T | null>, ms: number): Promise<T | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await Bun.sleep(50);
  }
  return null;
}

export function registerServer(program: Command): void {
  const server = withPasswordOption(program.command("server").description("run the proxy and the agent API (foreground; -d to detach)"))
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "agent API port", "14321")
    .option("--mitm-port <port>", "proxy port", "14322")
    .option("-d, --detach", "run in the background; stop it with `agent-vault server stop`")
    .action(async (options: ServerOptions) => {
      const serve = await import("../run/serve.ts");
      const paths = homePaths();
      const apiPort = parsePort(options.port, "--port");
      const mitmPort = parsePort(options.mitmPort, "--mitm-port");
      let password: string | null = null;
      const store = await VaultStore.unlock(paths, async () => (password = await readMasterPassword(options)));
      // A pidfile whose process cannot prove it is our server is replaced, not believed.
      const running = await serve.findRunningServer(store).catch(() => null);
      if (running)
        throw new AgentVaultError("conflict", `a server for ${paths.home} is already running (pid ${running.pid}, API port ${running.api_port})`, { hint: "stop it with `agent-vault server stop`" });
      if (options.detach) {
        const log = openAppendPrivate(`${paths.home}/server.log`);
        const self = process.argv[1] && /\.(ts|js)$/.test(process.argv[1]) ? [process.execPath, process.argv[1]] : [process.execPath];
        const args = [...self, "server", "--host", options.host, "--port", String(apiPort), "--mitm-port", String(mitmPort), ...(password !== null ? ["--password-stdin"] : [])];
        const env = { ...process.env };
        delete env.AGENT_VAULT_MASTER_PASSWORD;
        const child = Bun.spawn(args, { stdin: "pipe", stdout: log, stderr: log, env, detached: true });
        if (password !== null) child.stdin.write(`${password}\n`);
        await child.stdin.end();
        child.unref();
        const record = await waitFor(() => serve.findRunningServer(store).catch(() => null), 10_000);
        if (!record) throw new AgentVaultError("io_error", `the server did not start; see ${paths.home}/server.log`);
        serve.noticeRedirections(process.env);
        printNote(`agent-vault server running in the background (pid ${record.pid}): API http://${record.host}:${record.api_port}, proxy ${record.host}:${record.mitm_port}`);
        return;
      }
      const served = await serve.startServices(store, { host: options.host, apiPort, mitmPort, fallbackToFreePorts: false, handoffSocket: serve.handoffSocketPath(paths) });
      serve.writePidFile(paths, served);
      serve.noticeRedirections(process.env);
      printNote(
        `agent-vault server: API http://${served.host}:${served.apiPort}, proxy ${served.host}:${served.mitmPort} (data ${paths.home}); ${process.stdin.isTTY ? "Ctrl-C stops it" : "`agent-vault server stop` stops it"}`,
      );
      const { watchProposals } = await import("../run/notice.ts");
      watchProposals(store, null, (line) => process.stderr.write(line));
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      serve.removePidFile(paths);
      await served.close();
      process.exit(0);
    });

  withPasswordOption(server.command("stop").description("stop the server of this data directory")).action(async (options: CommonOptions) => {
    const serve = await import("../run/serve.ts");
    const paths = homePaths();
    // Nothing to stop: said before the password is asked for.
    const record = serve.readPidFile(paths);
    if (!record || !serve.isProcessAlive(record.pid)) {
      serve.removePidFile(paths);
      throw new AgentVaultError("server_not_running", `no agent-vault server is running for ${paths.home}`);
    }
    const { stopVerifiedServer } = await import("../run/server-check.ts");
    const pid = await stopVerifiedServer(await openStore(options));
    printNote(`stopped the server (pid ${pid})`);
  });
}

export function registerRun(program: Command): void {
  withVaultOption(withPasswordOption(program.command("run").description("run a command (an agent) with the proxy, a session token and our CA in its environment")))
    .usage("[options] -- <command> [args...]")
    .option("--ttl <duration>", "session lifetime (e.g. 8h, 24h, 7d)", "24h")
    .option("--service <name>", "limit the session to a service (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--agent <name>", "run as this agent: its unexpired grants and its policy apply")
    .option("--policy <file>", "an access policy for this session (JSON or YAML)")
    .option("--no-sandbox", "run the command without the sandbox (Linux namespaces: no data directory, no network but the proxy)")
    .option("--sandbox-ro <path>", "make a path read-only in the sandbox (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--sandbox-rw <path>", "make a path writable in the sandbox (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--sandbox-hide <path>", "hide a path in the sandbox (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--sandbox-strict", "let the command write only its working directory, /tmp and its own state (~/.codex, ~/.claude, …); the rest read-only")
    .option("--env <NAME=KEY>", "also put credential KEY's placeholder in variable NAME (repeatable)", (v: string, all: string[]) => [...all, v], [])
    .option("--quiet", "print no line on stderr at start")
    .argument("<command...>", "the command to run")
    .passThroughOptions()
    .action(
      async (
        command: string[],
        options: CommonOptions & {
          ttl: string;
          service: string[];
          agent?: string;
          policy?: string;
          sandbox: boolean;
          sandboxRo: string[];
          sandboxRw: string[];
          sandboxHide: string[];
          sandboxStrict?: boolean;
          env: string[];
          quiet?: boolean;
        },
      ) => {
        if (!options.sandbox) {
          const adjustments = [
            ...(options.sandboxStrict ? ["--sandbox-strict"] : []),
            ...(options.sandboxRo.length > 0 ? ["--sandbox-ro"] : []),
            ...(options.sandboxRw.length > 0 ? ["--sandbox-rw"] : []),
            ...(options.sandboxHide.length > 0 ? ["--sandbox-hide"] : []),
          ];
          if (adjustments.length > 0) {
            throw new AgentVaultError("usage", `--no-sandbox turns the sandbox off, so ${adjustments.join(", ")} would do nothing`, { hint: "drop --no-sandbox, or the sandbox options" });
          }
        }
        const envRequests = (await import("../run/placeholders.ts")).parseEnvRequests(options.env);
        const ttlMs = parseDuration(options.ttl);
        if (ttlMs === null) throw new AgentVaultError("invalid_argument", `--ttl "${options.ttl}" is not a duration like 8h or 7d`);
        const policy = options.policy === undefined ? null : await (await import("./documents.ts")).readPolicyFile(options.policy);
        // A typo in the command is answered before any password is asked for.
        (await import("../run/command.ts")).checkCommand(command[0] ?? "", process.env.PATH);
        const { runAgent } = await import("../run/run.ts");
        // Asked even when a server runs: a session is written into the sealed vault file, and the
        // password is what tells this `run` apart from an agent (same user) minting itself a wider session.
        const { store, vault } = await openVault(options, `Master password (to start a session for ${displaySafe(command[0] ?? "").slice(0, 60)}): `);
        // A rule for a service the vault lacks (a typo) restricts nothing: refused before the agent starts.
        if (policy && options.policy !== undefined) (await import("../vault/agents.ts")).checkPolicyServices(policy, vault, options.policy);
        process.exitCode = await runAgent(store, vault.name, command, {
          ttlMs,
          services: options.service.length > 0 ? options.service : null,
          agent: options.agent ?? null,
          policy,
          sandbox: { enabled: options.sandbox, readOnly: options.sandboxRo, readWrite: options.sandboxRw, hidden: options.sandboxHide, strict: options.sandboxStrict === true },
          env: envRequests,
          quiet: options.quiet === true,
        });
      },
    );
}

export function registerCa(program: Command): void {
  const ca = program.command("ca").description("the proxy's certificate authority (agents must trust it)");
  withPasswordOption(ca.command("path").description("print the path of the CA certificate")).action(async (options: CommonOptions) => {
    const { ensureCertificateAuthority } = await import("../proxy/ca.ts");
    const store = await openStore(options);
    await ensureCertificateAuthority(store);
    process.stdout.write(`${store.paths.caCert}\n`);
  });
  withPasswordOption(ca.command("export").description("print the CA certificate (PEM)")).action(async (options: CommonOptions) => {
    const { ensureCertificateAuthority } = await import("../proxy/ca.ts");
    const authority = await ensureCertificateAuthority(await openStore(options));
    process.stdout.write(authority.certPem);
  });
}

function sessionRow(s: Session): string[] {
  const state = s.revoked_at ? "revoked" : hasSessionEnded(s) ? "ended" : isSessionActive(s) ? "active" : "expired";
  return [s.id, s.label || "-", s.services?.join(",") ?? "all", state, formatWhen(s.created_at), formatWhen(s.expires_at)];
}

export function registerSessionCommands(group: Command): void {
  const sessions = group.command("session").description("agent sessions made by `run`");
  withJsonOption(withVaultOption(withPasswordOption(sessions.command("list").description("list sessions"))))
    .option("--all", "include expired and revoked sessions")
    .action(async (options: CommonOptions & { all?: boolean }) => {
      const { vault } = await openVault(options);
      const list = vault.sessions.filter((s) => options.all || isSessionActive(s));
      if (options.json) return printJson(list.map(({ token_sha256: _, ...rest }) => rest));
      if (list.length === 0) return printNote(`no active sessions in vault "${vault.name}"`);
      printTable(["ID", "LABEL", "SERVICES", "STATE", "CREATED", "EXPIRES"], list.map(sessionRow), { status: 3, cutFirst: [1, 2] });
    });
  withVaultOption(withPasswordOption(sessions.command("revoke <id>").description("revoke a session; its open tunnels close"))).action(async (id: string, options: CommonOptions) => {
    const { store, vault } = await openVault(options);
    await revokeSession(store, vault.name, id);
    printNote(`revoked session ${id}`);
  });
  withJsonOption(withVaultOption(withPasswordOption(group.command("discover").description("what an agent of this vault sees at /discover")))).action(async (options: CommonOptions) => {
    const { vault } = await openVault(options);
    const view = discover(vault);
    if (options.json) return printJson(view);
    printTable(
      ["SERVICE", "HOST"],
      view.services.map((s) => [s.name, s.host]),
    );
    printNote(`credentials available (names only): ${view.available_credentials.join(", ") || "none"}`);
  });
}

export function registerTui(program: Command): void {
  withVaultOption(program.command("tui").description("the terminal UI: review proposals, manage credentials, watch requests"))
    .option("--no-bell", "no terminal bell or desktop notification when a proposal arrives")
    .action(async (options: CommonOptions & { bell: boolean }) => {
      if (!process.stdin.isTTY || !process.stdout.isTTY)
        throw new AgentVaultError("usage", "the TUI needs a terminal", { hint: "use the `vault proposal` and `vault credential` commands in scripts" });
      // Ink draws nothing until exit when it believes it runs in CI; this is a real terminal.
      delete process.env.CI;
      delete process.env.CONTINUOUS_INTEGRATION;
      const { runTui } = await import("../tui/main.tsx");
      await runTui({ vault: options.vault, bell: options.bell });
    });
}
