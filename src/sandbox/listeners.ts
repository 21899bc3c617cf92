// `run`'s side of the hand-over (src/sandbox/fd-pass.ts): sandbox-init sends the listening sockets
// it made on the sandbox's loopback, and they go to whoever serves the proxy, so the agent's
// connections are accepted by the proxy itself, with no relay copying every byte:
//   - `run` serving the proxy itself: its proxy and API accept on them directly;
//   - a running server: they go on to the server over its hand-off socket, once the kernel says
//     the process at that socket is the server `run` verified (SO_PEERCRED); failing that, `run`
//     accepts on them and relays to the server's TCP ports (one relay, where there were two).
// Measured (scripts/bench-sandbox.ts, docs/performance.md): each relay cost a keep-alive request
// about 0.05-0.09 ms, 10-20 % of it; a socket accepted on directly costs nothing per request.
// Relays were kept as the fallback (no libc for bun:ffi, a kernel that refuses) rather than made
// faster: a cheaper copy loop still wakes two more processes per request.
import { type Socket } from "node:net";
import { closeFd, connectUnix, duplicateFd, readListeningPort, readPeerPid, receiveFds, type Received, sendFds } from "./fd-pass.ts";
import { LISTENERS_PAYLOAD } from "./init.ts";
import { relayFdToTcp, type Relay, serveFd } from "./relay.ts";

/** What the server answers once it accepts on the sockets it was handed. */
export const HANDOFF_ACK = "agent-vault listening 1";

export interface ServerTarget {
  /** The pid the server proved over TCP (src/run/server-check.ts). */
  readonly pid: number;
  readonly handoffSocket: string;
  /** The pid of this data directory's server, verified again, or null while none is. */
  recheck(): Promise<number | null>;
}

export interface ListenerTarget {
  readonly host: string;
  readonly apiPort: number;
  readonly mitmPort: number;
  readonly adopt?: { readonly proxy: (socket: Socket) => void; readonly api: (socket: Socket) => void } | undefined;
  readonly server?: ServerTarget | undefined;
}

/** How the listeners are served now; for tests and the benchmark's notes. */
export type ListenerMode = "waiting" | "adopted" | "server" | "between-servers" | "relayed" | "none";

const POLL_MS = 2;
const SLOW_POLL_MS = 100;
const FAST_FOR_MS = 3000;
const ACK_WAIT_MS = 3000;
/** How often a server's hand-off connection is looked at for its end, and a new server for. */
const WATCH_MS = 250;

/**
 * A pause that does not keep the process alive: when the command exits, `run` must exit at once,
 * not after the next poll (a pending 250 ms timer added that much to `run -- true`).
 */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** One message from a non-blocking fd, or null once `forMs` passed or `isStopped()`. Only while starting. */
async function nextMessage(fd: number, forMs: number | null, isStopped: () => boolean): Promise<Received | null> {
  const started = Date.now();
  for (;;) {
    if (isStopped()) return null;
    const got = receiveFds(fd);
    if (got.kind !== "again") return got;
    const waited = Date.now() - started;
    if (forMs !== null && waited > forMs) return null;
    await pause(waited < FAST_FOR_MS ? POLL_MS : SLOW_POLL_MS);
  }
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) closeFd(fd);
}

/**
 * Sends the listeners to the server at `handoffSocket` and waits for its answer; the connection,
 * which stays open while the server should accept on them, or null. The socket's path is in the
 * data directory, which any process of the user can replace: what answers there counts as the
 * server only if the kernel says its pid (SO_PEERCRED, fixed when it listened) is the pid the
 * server proved over TCP. Nothing is sent before that.
 */
async function handToServer(handoffSocket: string, pid: number, fds: readonly number[], isStopped: () => boolean): Promise<number | null> {
  let control: number | null = null;
  try {
    control = connectUnix(handoffSocket);
    if (readPeerPid(control) !== pid) throw new Error("not the verified server");
    sendFds(control, fds, new TextEncoder().encode(LISTENERS_PAYLOAD));
    const answer = await nextMessage(control, ACK_WAIT_MS, isStopped);
    if (answer?.kind === "message") closeAll(answer.fds);
    if (answer?.kind !== "message" || answer.payload.toString("latin1") !== HANDOFF_ACK) throw new Error("no answer");
    return control;
  } catch {
    if (control !== null) closeFd(control);
    return null;
  }
}

/** Accepts and closes at once, on copies of the listeners: what the agent sees while no server runs. */
function refuseOn(fds: readonly number[]): Relay[] {
  return fds.map((fd) => {
    const listener = Bun.listen({ fd: duplicateFd(fd), socket: { open: (socket: Bun.Socket<undefined>) => void socket.end(), data: () => undefined } } as unknown as Bun.UnixSocketOptions<undefined>);
    return { close: async () => listener.stop(true) };
  });
}

/**
 * Takes sandbox-init's message on `fd` (our end of the socket pair; closed here) and serves what
 * came. Nothing else is accepted: the tag must match and each socket must be a listening TCP
 * socket on the port the command was told about, else they are closed.
 */
export function takeListeners(fd: number, target: ListenerTarget): { close(): Promise<void>; mode(): ListenerMode } {
  let mode: ListenerMode = "waiting";
  let isClosed = false;
  const isStopped = () => isClosed;
  let serving: Relay[] = [];
  let control: number | null = null;
  let kept: number[] = [];

  const serveHere = async (fds: readonly number[]) => {
    if (target.adopt) {
      const adopt = target.adopt;
      mode = "adopted";
      const made = await Promise.all(fds.map((listener, i) => serveFd(listener, i === 0 ? adopt.proxy : adopt.api)));
      if (isClosed) await Promise.all(made.map((r) => r.close()));
      else serving = made;
    } else {
      mode = "relayed";
      serving = fds.map((listener, i) => relayFdToTcp(listener, target.host, i === 0 ? target.mitmPort : target.apiPort));
    }
  };

  // A server holds them: watch for it to go (stopped, restarted). Until a verified server takes
  // them again, connections are accepted and closed, as a stopped server's port refuses them.
  const followServer = async (server: ServerTarget) => {
    for (;;) {
      while (!isClosed && control !== null && receiveFds(control).kind === "again") await pause(WATCH_MS);
      if (isClosed) return;
      if (control !== null) closeFd(control);
      control = null;
      mode = "between-servers";
      serving = refuseOn(kept);
      while (control === null) {
        await pause(WATCH_MS * 2);
        if (isClosed) return;
        const pid = await server.recheck().catch(() => null);
        if (pid === null || isClosed) continue;
        const answered = await handToServer(server.handoffSocket, pid, kept, isStopped);
        if (answered !== null && isClosed) return closeFd(answered);
        control = answered;
      }
      const refusing = serving;
      serving = [];
      mode = "server";
      await Promise.all(refusing.map((r) => r.close()));
    }
  };

  const start = async () => {
    const got = await nextMessage(fd, null, isStopped);
    closeFd(fd);
    if (got?.kind !== "message") return void (mode = "none");
    const fds = got.fds;
    const isListeners = got.payload.toString("latin1") === LISTENERS_PAYLOAD && fds.length === 2;
    if (isClosed || !isListeners || readListeningPort(fds[0]!) !== target.mitmPort || readListeningPort(fds[1]!) !== target.apiPort) {
      closeAll(fds);
      mode = "none";
      return;
    }
    const server = target.server;
    if (server) control = await handToServer(server.handoffSocket, server.pid, fds, isStopped);
    if (isClosed) {
      if (control !== null) closeFd(control);
      control = null;
      closeAll(fds);
      return;
    }
    if (!server || control === null) return serveHere(fds);
    // Our copies are kept (never accepted on while a server holds them) for the server after it.
    kept = fds;
    mode = "server";
    await followServer(server);
  };
  void start().catch(() => undefined);

  // Not waiting for start(): it may sleep between polls, and `run` should exit at once. Whatever
  // it makes after this, it closes itself when it sees isClosed.
  return {
    mode: () => mode,
    close: async () => {
      isClosed = true;
      // Closing the hand-off connection is what tells the server to stop accepting on them.
      if (control !== null) closeFd(control);
      control = null;
      await Promise.all(serving.map((r) => r.close().catch(() => undefined)));
      closeAll(kept);
      kept = [];
    },
  };
}
