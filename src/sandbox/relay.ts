// Byte relays between the sandbox's loopback and the real proxy and agent API. Inside the network
// namespace a TCP listener on 127.0.0.1:PORT forwards each connection to a Unix socket; outside,
// `run` listens on that Unix socket and forwards to the real TCP port. Neither end parses, decides
// or holds anything: what crosses is the agent's own traffic, and the proxy authenticates it.
import { chmodSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface Relay {
  close(): Promise<void>;
}

/** Joins two sockets both ways. A half-close passes on (the other side may still answer); once
 * either is fully closed or fails, both go. */
function splice(a: Socket, b: Socket): void {
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", end).on("close", end);
  b.on("error", end).on("close", end);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function listening(server: Server, listen: (done: () => void) => void): Promise<Relay> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    listen(() => {
      server.off("error", reject);
      resolve({ close: () => closeServer(server) });
    });
  });
}

/** Outside the sandbox: a Unix socket (0600, in a 0700 directory) whose connections go to host:port. */
export async function relayUnixToTcp(socketPath: string, host: string, port: number): Promise<Relay> {
  const server = createServer({ allowHalfOpen: true }, (agent) => splice(agent, createConnection({ host, port, allowHalfOpen: true })));
  const relay = await listening(server, (done) => server.listen(socketPath, done));
  chmodSync(socketPath, 0o600);
  return relay;
}

/** Inside the sandbox: host:port on the namespace's loopback, each connection to the Unix socket. */
export function relayTcpToUnix(host: string, port: number, socketPath: string): Promise<Relay> {
  const server = createServer({ allowHalfOpen: true }, (agent) => splice(agent, createConnection({ path: socketPath, allowHalfOpen: true })));
  return listening(server, (done) => server.listen({ host, port, exclusive: true }, done));
}
