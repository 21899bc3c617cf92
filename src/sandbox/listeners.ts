// `run`'s side of the hand-over (src/sandbox/fd-pass.ts): sandbox-init sends the listening sockets
// it made on the sandbox's loopback, and they go to whoever serves the proxy, so the agent's
// connections are accepted by the proxy itself, with no relay copying every byte:
//   - `run` serving the proxy itself: its proxy and API accept on them directly;
//   - a running server: they go on to the server over its hand-off socket, once the kernel says
//     the process at that socket is the server `run` verified (SO_PEERCRED); failing that, `run`
//     accepts on them and relays to the server's TCP port (one relay, where there were two).
// Measured (scripts/bench-sandbox.ts, docs/performance.md): each relay cost a keep-alive request
// about 0.05-0.09 ms, 10-20 % of it; a socket accepted on directly costs nothing per request.
import { type Socket } from "node:net";
import { closeFd, connectUnix, listeningTcpPort, peerPid, receiveFds, type Received, sendFds } from "./fd-pass.ts";
import { LISTENERS_PAYLOAD } from "./init.ts";
import { relayFdToTcp, type Relay, serveFd } from "./relay.ts";

/** What the server answers once it accepts on the sockets it was handed. */
export const HANDOFF_ACK = "agent-vault listening 1";

export interface ListenerTarget {
  readonly host: string;
  readonly apiPort: number;
  readonly mitmPort: number;
  readonly adopt?: { readonly proxy: (socket: Socket) => void; readonly api: (socket: Socket) => void } | undefined;
  readonly server?: { readonly pid: number; readonly handoffSocket: string } | undefined;
}

/** How the listeners ended up being served; for tests and the benchmark's notes. */
export type ListenerMode = "waiting" | "adopted" | "server" | "relayed" | "none";

const FAST_POLL_MS = 2;
const SLOW_POLL_MS = 100;
const FAST_FOR_MS = 3000;

/** Polls a non-blocking fd for one message; `stop` ends it. Only while a sandbox starts. */
function pollMessage(fd: number, forMs: number | null, onDone: (got: Received | null) => void): () => void {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let isStopped = false;
  const poll = () => {
    if (isStopped) return;
    const got = receiveFds(fd);
    if (got.kind !== "again") return onDone(got);
    const waited = Date.now() - started;
    if (forMs !== null && waited > forMs) return onDone(null);
    timer = setTimeout(poll, waited < FAST_FOR_MS ? FAST_POLL_MS : SLOW_POLL_MS);
  };
  poll();
  return () => {
    isStopped = true;
    clearTimeout(timer);
  };
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) closeFd(fd);
}

/**
 * Takes sandbox-init's message on `fd` (our end of the socket pair; closed here) and serves what
 * came. Nothing else is accepted: the tag must match and each socket must be a listening TCP
 * socket on the port the command was told about, else they are closed.
 */
export function takeListeners(fd: number, target: ListenerTarget): { close(): Promise<void>; mode(): ListenerMode } {
  let mode: ListenerMode = "waiting";
  let isClosed = false;
  const relays: Relay[] = [];
  let control: number | null = null;
  let stopAck: (() => void) | null = null;
  const serveHere = (fds: readonly number[]) => {
    if (target.adopt) {
      const adopt = target.adopt;
      mode = "adopted";
      for (const [i, listener] of fds.entries()) void serveFd(listener, i === 0 ? adopt.proxy : adopt.api).then((r) => (isClosed ? void r.close() : relays.push(r)), () => closeFd(listener));
    } else {
      mode = "relayed";
      for (const [i, listener] of fds.entries()) relays.push(relayFdToTcp(listener, target.host, i === 0 ? target.mitmPort : target.apiPort));
    }
  };
  let isFdOpen = true;
  const stopPoll = pollMessage(fd, null, (got) => {
    isFdOpen = false;
    closeFd(fd);
    if (got?.kind !== "message") return void (mode = "none");
    const fds = got.fds;
    const isListeners = got.payload.toString("latin1") === LISTENERS_PAYLOAD && fds.length === 2;
    if (isClosed || !isListeners || listeningTcpPort(fds[0]!) !== target.mitmPort || listeningTcpPort(fds[1]!) !== target.apiPort) {
      closeAll(fds);
      mode = "none";
      return;
    }
    if (!target.server) return serveHere(fds);
    control = handToServer(target.server, fds);
    if (control === null) return serveHere(fds);
    // Our copies are kept until the server says it accepts on them: if it never does, we serve.
    stopAck = pollMessage(control, 3000, (answer) => {
      stopAck = null;
      if (answer?.kind === "message" && answer.payload.toString("latin1") === HANDOFF_ACK) {
        mode = "server";
        closeAll(fds);
        return;
      }
      closeAll(answer?.kind === "message" ? answer.fds : []);
      if (control !== null) closeFd(control);
      control = null;
      if (isClosed) closeAll(fds);
      else serveHere(fds);
    });
  });
  return {
    mode: () => mode,
    close: async () => {
      isClosed = true;
      stopPoll();
      if (isFdOpen) closeFd(fd);
      isFdOpen = false;
      stopAck?.();
      // Closing the control connection is what tells the server to stop accepting on them.
      if (control !== null) closeFd(control);
      control = null;
      await Promise.all(relays.map((r) => r.close().catch(() => undefined)));
    },
  };
}

/**
 * Sends the listeners to the server at `handoffSocket`, or returns null. The socket's path is in
 * the data directory, which any process of the user can replace: what answers there counts as the
 * server only if the kernel says its pid (SO_PEERCRED, fixed when it listened) is the pid the
 * server proved over TCP (src/run/server-check.ts). Returns the connection, which stays open
 * while the server should accept on them.
 */
function handToServer(server: { readonly pid: number; readonly handoffSocket: string }, fds: readonly number[]): number | null {
  let control: number | null = null;
  try {
    control = connectUnix(server.handoffSocket);
    if (peerPid(control) !== server.pid) throw new Error("not the verified server");
    sendFds(control, fds, new TextEncoder().encode(LISTENERS_PAYLOAD));
    return control;
  } catch {
    if (control !== null) closeFd(control);
    return null;
  }
}
