// `agent-vault sandbox-init` (hidden): the first process of ours inside the sandbox. It makes the
// listening sockets on the namespace's loopback at the proxy and agent-API ports `run` put in the
// environment and hands them to `run` (src/sandbox/listeners.ts), or, when it cannot, listens there
// itself and relays each connection to `run`'s Unix sockets; then it runs the agent's command and
// passes signals and the exit status through. It never opens the vault and is given no password or key: it holds
// only the agent's own bytes, so the agent tracing or replacing it gains nothing. bubblewrap's own
// init is pid 1 and reaps orphans; this process is the command's parent.
import { AgentVaultError } from "../shared/errors.ts";
import { closeFd, isFdPassingAvailable, listenTcp, sendFds } from "./fd-pass.ts";
import { relayTcpToUnix } from "./relay.ts";
import { FORWARDED_SIGNALS, TERMINAL_SIGNALS, exitStatusOf } from "./signals.ts";

export interface RelaySpec {
  readonly host: string;
  readonly port: number;
  readonly socket: string;
}

const RELAY = /^(127\.0\.0\.1|0\.0\.0\.0):(\d{1,5})=(\/.+)$/;

/** `HOST:PORT=/path/to.sock`, as `run` writes it. */
export function parseRelaySpec(text: string): RelaySpec {
  const match = RELAY.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new AgentVaultError("invalid_argument", `--relay "${text}" is not HOST:PORT=/path/to.sock`);
  return { host: match[1]!, port, socket: match[3]! };
}

/** What `run` sends with the listening sockets: a fixed tag, so nothing else is taken for them. */
export const LISTENERS_PAYLOAD = "agent-vault listeners 1";
/** What it sends when it could not: the relays serve instead. */
export const RELAYS_PAYLOAD = "agent-vault relays 1";

/** `sandbox-init [--relay SPEC]... [--listeners-fd N] -- COMMAND...`, as `run` writes it; errors are one line, exit 2. */
export async function sandboxInitMain(args: readonly string[]): Promise<number> {
  const relays: RelaySpec[] = [];
  let listenersFd: number | null = null;
  let i = 0;
  try {
    for (; i < args.length && args[i] !== "--"; i += 2) {
      const value = args[i + 1];
      if (args[i] === "--listeners-fd" && value !== undefined && /^\d{1,4}$/.test(value) && Number(value) > 2) listenersFd = Number(value);
      else if (args[i] === "--relay" && value !== undefined) relays.push(parseRelaySpec(value));
      else throw new AgentVaultError("invalid_argument", `sandbox-init: unexpected "${args[i]}"`);
    }
    return await sandboxInit(relays, args.slice(i + 1), listenersFd);
  } catch (error) {
    process.stderr.write(`agent-vault: error: ${(error as Error).message}\n`);
    return 2;
  }
}

/**
 * The relays' listening sockets, made here in the namespace and handed to `run` over the socket
 * at `fd` (src/sandbox/fd-pass.ts): the proxy then accepts the agent's connections itself, with no
 * copy in between. False when that cannot be done: nothing is left listening then, and `run` is
 * told the relays serve instead. The fd is closed either way.
 */
function handOverListeners(relays: readonly RelaySpec[], fd: number): boolean {
  const made: number[] = [];
  try {
    if (!isFdPassingAvailable()) return false;
    for (const relay of relays) made.push(listenTcp(relay.host, relay.port));
    sendFds(fd, made, new TextEncoder().encode(LISTENERS_PAYLOAD));
    return true;
  } catch {
    // Said explicitly: bwrap keeps its own copy of the fd, so `run` would never see EOF.
    for (const listener of made.splice(0)) closeFd(listener);
    try {
      if (isFdPassingAvailable()) sendFds(fd, [], new TextEncoder().encode(RELAYS_PAYLOAD));
    } catch {
      // `run` keeps waiting, harmlessly; the relays serve.
    }
    return false;
  } finally {
    // Ours are copies: `run` holds the sockets now, and the command must not inherit them.
    for (const listener of made) closeFd(listener);
    closeFd(fd);
  }
}

export async function sandboxInit(relays: readonly RelaySpec[], command: readonly string[], listenersFd: number | null = null): Promise<number> {
  if (command.length === 0) throw new AgentVaultError("invalid_argument", "sandbox-init needs a command");
  const handedOver = listenersFd !== null && relays.length > 0 && handOverListeners(relays, listenersFd);
  if (!handedOver) for (const relay of relays) await relayTcpToUnix(relay.host, relay.port, relay.socket);
  // Handlers first, then the command: bwrap's outer process ignores these signals and we inherit
  // that, so one that came between the command's start and our handlers would be lost (a SIGTERM
  // right after the agent printed "ready", on a busy machine). Until the command exists they wait.
  const fromTerminal = Boolean(process.stdin.isTTY);
  let child: ReturnType<typeof Bun.spawn> | null = null;
  const waiting: NodeJS.Signals[] = [];
  const pass = (signal: NodeJS.Signals) => {
    try {
      child?.kill(signal);
    } catch {
      // the command is gone
    }
  };
  for (const signal of [...FORWARDED_SIGNALS, ...TERMINAL_SIGNALS]) {
    process.on(signal, () => {
      // The terminal already sent these to the whole foreground group, the command included.
      if (fromTerminal && (TERMINAL_SIGNALS as readonly string[]).includes(signal)) return;
      if (child) pass(signal);
      else waiting.push(signal);
    });
  }
  try {
    child = Bun.spawn([...command], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
  } catch (error) {
    // What a shell says, so the agent's tooling reads it as usual; 127 is "command not found".
    process.stderr.write(`agent-vault: cannot run ${command[0]}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
    return 127;
  }
  for (const signal of waiting.splice(0)) pass(signal);
  const code = await child.exited;
  return exitStatusOf(code, child.signalCode);
}
