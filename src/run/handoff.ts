// The server's hand-off socket: a sandboxed `run` sends the listening sockets of its sandbox's
// loopback here (src/sandbox/listeners.ts), and the server's proxy and API accept the agent's
// connections on them directly, with no relay in between, until that `run` closes the connection.
//
// What it exposes: nothing an agent of the same user does not have already. Whoever connects can
// only hand us listening TCP sockets; connections accepted on them are treated like those on our
// TCP ports (a session token is needed for anything), and the agent can reach those ports anyway.
// What it must not do is let an impostor receive a run's sockets: `run` checks the kernel's word
// for who listens here (SO_PEERCRED) against the pid the server proved, before it sends anything.
import { chmodSync, rmSync } from "node:fs";
import net from "node:net";
import { closeFd, isFdPassingAvailable, readListeningPort, receiveFds, sendFds } from "../sandbox/fd-pass.ts";
import { LISTENERS_PAYLOAD } from "../sandbox/init.ts";
import { HANDOFF_ACK } from "../sandbox/listeners.ts";
import { serveFd } from "../sandbox/relay.ts";

export interface Adopt {
  readonly proxy: (socket: net.Socket) => void;
  readonly api: (socket: net.Socket) => void;
}

/** How long a connection may take to send its sockets (`run` sends them right after connecting). */
const MESSAGE_WAIT_MS = 2000;
/**
 * At most this many connections waiting to send, and runs handed over: past that, a connection is
 * closed at once and its run relays instead. A flood (the same user can connect as often as it
 * likes) costs the server no more than these, not polling or descriptors without end.
 */
const MAX_PENDING = 16;
const MAX_HANDED_OVER = 256;

/** The fd under a node:net socket (Bun keeps it on the handle), or null when it cannot be had. */
function readSocketFd(socket: net.Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd > 2 ? fd : null;
}

interface Counts {
  pending: number;
  handedOver: number;
}

function receive(connection: net.Socket, adopt: Adopt, counts: Counts): void {
  const fd = readSocketFd(connection);
  if (fd === null || counts.pending >= MAX_PENDING || counts.handedOver >= MAX_HANDED_OVER) return void connection.destroy();
  counts.pending++;
  let isPending = true;
  const settle = () => {
    if (isPending) counts.pending--;
    isPending = false;
  };
  connection.once("close", settle);
  const started = Date.now();
  const poll = () => {
    if (connection.destroyed) return;
    const got = receiveFds(fd);
    if (got.kind === "again") {
      const waited = Date.now() - started;
      if (waited < MESSAGE_WAIT_MS) setTimeout(poll, waited < 50 ? 2 : 25);
      else connection.destroy();
      return;
    }
    settle();
    if (got.kind === "closed") return void connection.destroy();
    const fds = got.fds;
    const isListeners = got.payload.toString("latin1") === LISTENERS_PAYLOAD && fds.length === 2 && fds.every((f) => readListeningPort(f) !== null);
    if (!isListeners) {
      for (const f of fds) closeFd(f);
      return void connection.destroy();
    }
    counts.handedOver++;
    void Promise.allSettled([serveFd(fds[0]!, adopt.proxy), serveFd(fds[1]!, adopt.api)]).then((results) => {
      let isStopped = false;
      const stop = () => {
        if (isStopped) return;
        isStopped = true;
        counts.handedOver--;
        for (const result of results) if (result.status === "fulfilled") void result.value.close();
      };
      // Not closed by us if listening failed: whether Bun already did is not ours to know, and
      // closing a number twice could close someone else's descriptor.
      if (results.some((result) => result.status === "rejected")) {
        stop();
        return void connection.destroy();
      }
      // The run ended (or died): its sandbox's listeners are closed with it.
      connection.once("close", stop);
      connection.on("error", () => connection.destroy());
      connection.on("data", () => undefined);
      connection.resume();
      if (connection.destroyed) return stop();
      try {
        sendFds(fd, [], new TextEncoder().encode(HANDOFF_ACK));
      } catch {
        connection.destroy();
      }
    });
  };
  poll();
}

function removeSocket(path: string): boolean {
  try {
    rmSync(path, { force: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Listens at `path` (0600; a stale socket there is replaced) for runs handing over their sandbox's
 * listeners. Null where fd passing is unavailable: runs then relay to the TCP ports.
 */
export async function listenForHandoffs(path: string, adopt: Adopt): Promise<{ close(): Promise<void> } | null> {
  if (!isFdPassingAvailable()) return null;
  // Whatever is in the way goes; if it cannot (the agent made a directory there), no hand-off
  // socket: runs relay, and the server still starts.
  if (!removeSocket(path)) return null;
  // Paused: Bun must not read the message itself, or the descriptors in it would be lost.
  const connections = new Set<net.Socket>();
  const counts: Counts = { pending: 0, handedOver: 0 };
  const server = net.createServer({ pauseOnConnect: true }, (connection) => {
    connections.add(connection);
    connection.once("close", () => connections.delete(connection));
    receive(connection, adopt, counts);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
  } catch {
    server.close();
    return null;
  }
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Each open one holds a run's listeners: they close with it.
        for (const connection of connections) connection.destroy();
        removeSocket(path);
      }),
  };
}
