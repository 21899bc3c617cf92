// Connections that hold a listener's descriptors without asking anything. No token is needed to
// open one, so an agent could take a shared server's descriptors from every other session (a red
// team filled 20,000 from one sandboxed process with connections that sent nothing):
//   - at most MAX_WAITING connections may be waiting for their first complete request head; past
//     that the oldest is closed (a client that means it sends its request at once); and at most
//     MAX_WAITING may wait for any head, a kept-alive one between requests included (one request
//     and then silence held 5000 open): past that, each sweep closes those that waited longest;
//   - a request head must arrive within the head timeout (AGENT_VAULT_HEAD_TIMEOUT_MS, 30 s), also
//     one sent a byte at a time (slowloris); a kept-alive connection may idle IDLE_PER_HEAD_TIMEOUT
//     times as long between requests. A connection that left HTTP (a tunnel's raw socket, a
//     WebSocket) or is in a request is never closed by this.
import { type Socket } from "node:net";
import { type InboundConnection } from "./inbound.ts";

const MAX_WAITING = 512;
const SWEEP_MS = 1_000;
const IDLE_PER_HEAD_TIMEOUT = 4;

function headTimeoutMs(): number {
  const fromEnv = Number(process.env.AGENT_VAULT_HEAD_TIMEOUT_MS);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 30_000;
}

export class IdleConnections {
  /** Connections that have sent no complete request head yet, oldest first. */
  private readonly waiting = new Set<Socket>();
  private readonly connections = new Set<InboundConnection>();
  private sweeper: ReturnType<typeof setInterval> | undefined;

  /** Watches a new connection; `first` when it is a fresh one from the listener (not a tunnel's TLS). */
  add(conn: InboundConnection, first: boolean): void {
    const socket = conn.socket;
    if (first) {
      this.waiting.add(socket);
      if (this.waiting.size > MAX_WAITING) {
        const oldest = this.waiting.values().next().value!;
        this.waiting.delete(oldest);
        oldest.destroy();
      }
    }
    this.connections.add(conn);
    socket.once("close", () => {
      this.waiting.delete(socket);
      this.connections.delete(conn);
    });
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
  }

  /** A complete request head arrived on this socket. */
  asked(socket: Socket): void {
    this.waiting.delete(socket);
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private sweep(): void {
    const now = performance.now();
    const head = headTimeoutMs();
    const idle: InboundConnection[] = [];
    for (const conn of this.connections) {
      const since = conn.waitingSince;
      if (since === null) continue;
      const limit = conn.served === 0 || conn.hasPartialHead() ? head : head * IDLE_PER_HEAD_TIMEOUT;
      if (now - since > limit) conn.socket.destroy();
      else idle.push(conn);
    }
    if (idle.length <= MAX_WAITING) return;
    idle.sort((a, b) => a.waitingSince! - b.waitingSince!);
    for (const conn of idle.slice(0, idle.length - MAX_WAITING)) conn.socket.destroy();
  }
}
