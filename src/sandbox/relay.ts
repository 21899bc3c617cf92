// Byte relays between the sandbox's loopback and the real proxy and agent API, for when the
// listening sockets cannot be handed out of the sandbox (src/sandbox/listeners.ts, the usual way):
// inside the network namespace a TCP listener on 127.0.0.1:PORT forwards each connection to a Unix
// socket; outside, `run` listens on that Unix socket and forwards to the real TCP port. Neither end
// parses, decides or holds anything: what crosses is the agent's own traffic, and the proxy
// authenticates it. Bun's own sockets, not node:net: node:net's streams added half a millisecond
// to each keep-alive request (scripts/bench-sandbox.ts). Also here: the listeners that accept
// straight into the proxy (serveFd, serveUnix).
import { chmodSync } from "node:fs";
import net from "node:net";

export interface Relay {
  close(): Promise<void>;
}

interface Side {
  /** The other end, once its connection is up. */
  peer: Bun.Socket<Side> | null;
  /** Bytes for the peer that arrived before it was connected. */
  early: Uint8Array[];
  /** Bytes for this socket that it has not taken yet; the peer is paused meanwhile. */
  backlog: Uint8Array[];
  /** The peer has finished (ended or closed): send FIN once the backlog is out. */
  isFinishing: boolean;
  /** This side sent FIN: passed on once the peer is joined, if it was not yet. */
  isEnded: boolean;
  isClosed: boolean;
}

const newSide = (): Side => ({ peer: null, early: [], backlog: [], isFinishing: false, isEnded: false, isClosed: false });

/** Writes what `to` can take now; the rest waits in its backlog and `from` stops reading. */
function send(to: Bun.Socket<Side>, chunk: Uint8Array, from: Bun.Socket<Side>): void {
  if (to.data.backlog.length > 0) {
    to.data.backlog.push(Buffer.from(chunk));
    return;
  }
  const written = to.write(chunk);
  if (written < chunk.length) {
    to.data.backlog.push(Buffer.from(chunk.subarray(Math.max(0, written))));
    from.pause();
  }
}

function flush(socket: Bun.Socket<Side>): void {
  const backlog = socket.data.backlog;
  while (backlog.length > 0) {
    const head = backlog[0]!;
    const written = socket.write(head);
    if (written < head.length) {
      backlog[0] = head.subarray(Math.max(0, written));
      return;
    }
    backlog.shift();
  }
  socket.data.peer?.resume();
  if (socket.data.isFinishing) socket.end();
}

/** One side is done: the other gets what is still owed to it, then FIN. */
function finish(socket: Bun.Socket<Side>): void {
  const peer = socket.data.peer;
  if (!peer || peer.data.isFinishing) return;
  peer.data.isFinishing = true;
  if (peer.data.backlog.length === 0) peer.end();
}

function handlers(onOpen?: (socket: Bun.Socket<Side>) => void): Bun.SocketHandler<Side> {
  return {
    open: (socket) => {
      socket.data = newSide();
      onOpen?.(socket);
    },
    data: (socket, chunk) => {
      const peer = socket.data.peer;
      if (peer) send(peer, chunk, socket);
      else socket.data.early.push(Buffer.from(chunk));
    },
    drain: (socket) => flush(socket),
    end: (socket) => {
      socket.data.isEnded = true;
      finish(socket);
    },
    close: (socket) => {
      socket.data.isClosed = true;
      finish(socket);
      socket.data.peer = null;
    },
    error: (socket) => {
      socket.end();
    },
  };
}

/** Accepted connections are joined to a fresh one from `dial`; bytes that came first are kept. */
function joining(dial: (handler: Bun.SocketHandler<Side>) => Promise<Bun.Socket<Side>>): Bun.SocketHandler<Side> {
  const outbound = handlers();
  return handlers((inbound) => {
    dial(outbound).then(
      (out) => {
        if (inbound.data.isClosed) {
          out.end();
          return;
        }
        out.data.peer = inbound;
        inbound.data.peer = out;
        for (const chunk of inbound.data.early.splice(0)) send(out, chunk, inbound);
        for (const chunk of out.data.early.splice(0)) send(inbound, chunk, out);
        // A FIN (or close) that came before the join is passed on now.
        if (inbound.data.isEnded) finish(inbound);
        if (out.data.isEnded || out.data.isClosed) finish(out);
      },
      () => inbound.end(),
    );
  });
}

/** Outside the sandbox: a Unix socket (0600, in a 0700 directory) whose connections go to host:port. */
export async function relayUnixToTcp(socketPath: string, host: string, port: number): Promise<Relay> {
  const server = Bun.listen<Side>({ unix: socketPath, allowHalfOpen: true, socket: joining((socket) => Bun.connect<Side>({ hostname: host, port, allowHalfOpen: true, socket })) });
  chmodSync(socketPath, 0o600);
  return { close: async () => server.stop(true) };
}

/** Inside the sandbox: host:port on the namespace's loopback, each connection to the Unix socket. */
export async function relayTcpToUnix(host: string, port: number, socketPath: string): Promise<Relay> {
  const server = Bun.listen<Side>({ hostname: host, port, allowHalfOpen: true, socket: joining((socket) => Bun.connect<Side>({ unix: socketPath, allowHalfOpen: true, socket })) });
  return { close: async () => server.stop(true) };
}

/** Outside: a listening socket handed out of the sandbox (src/sandbox/fd-pass.ts), each connection to host:port. */
export function relayFdToTcp(fd: number, host: string, port: number): Relay {
  const server = Bun.listen<Side>({
    fd,
    allowHalfOpen: true,
    socket: joining((socket) => Bun.connect<Side>({ hostname: host, port, allowHalfOpen: true, socket })),
  } as unknown as Bun.UnixSocketOptions<Side>);
  return { close: async () => server.stop(true) };
}

/**
 * A listener whose connections go to `adopt`. Its close does not wait for them: they come from a
 * sandbox that is gone by then (a half-open one the proxy still waits on would hold `run` forever).
 */
async function adoptingServer(listen: (server: net.Server, done: () => void) => void, allowHalfOpen: boolean, adopt: (socket: net.Socket) => void): Promise<Relay> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen }, (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    adopt(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    listen(server, resolve);
  });
  return {
    close: async () => {
      server.close();
      for (const socket of open) socket.destroy();
    },
  };
}

/**
 * The sandbox's own listening socket (src/sandbox/listeners.ts), accepted on here and handed to
 * the proxy or the API as if their own listener had accepted it (so no half-open, like theirs).
 */
export function serveFd(fd: number, adopt: (socket: net.Socket) => void): Promise<Relay> {
  return adoptingServer((server, done) => server.listen({ fd }, done), false, adopt);
}

/**
 * Outside, when `run` serves the proxy itself: the Unix socket is a listener of the proxy (and the
 * API) in this process, so a connection from the sandbox is handed straight to it, one relay fewer
 * on every byte.
 */
export async function serveUnix(socketPath: string, adopt: (socket: net.Socket) => void): Promise<Relay> {
  const relay = await adoptingServer((server, done) => server.listen(socketPath, done), true, adopt);
  chmodSync(socketPath, 0o600);
  return relay;
}
