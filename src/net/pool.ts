// The upstream leg's connections: verified TLS (or plain TCP for untouched http:// hosts), kept
// alive between exchanges. HTTP/1.1 is written and read on them with src/net/http1.ts. Why not
// node:https: under Bun its ClientRequest accepts any amount of body without ever signalling
// backpressure, so a slow upstream made the proxy hold a whole upload in memory. On a raw socket, write() and 'drain' are honest, in both directions.
import net, { type Socket } from "node:net";
import tls, { type PeerCertificate } from "node:tls";
import { trustContext } from "./trust.ts";

const IDLE_TIMEOUT_MS = 60_000;
const MAX_IDLE_PER_KEY = 32;
const CONNECT_TIMEOUT_MS = 15_000;
/**
 * Warm-ups (CONNECTs answered with an early upstream connection) in flight plus warm connections no
 * request took yet, across all hosts: an agent that opens tunnels to many names under a wildcard
 * service and never sends a request gets no more than this many upstream sockets from it.
 */
const MAX_UNUSED_WARM = 32;
/** A warm connection no request took in this long is closed. */
const UNUSED_WARM_MS = 10_000;

export interface Endpoint {
  readonly scheme: "https" | "http";
  /** The name the agent asked for: SNI and the certificate check use it, never the dialled address. */
  readonly host: string;
  /** The address netguard checked: the only one dialled. */
  readonly dial: { readonly address: string; readonly port: number };
}

function keyOf(e: Endpoint): string {
  return `${e.scheme}|${e.host}|${e.dial.address}|${e.dial.port}`;
}

export class UpstreamPool {
  private readonly idle = new Map<string, Socket[]>();
  /** Connections being opened ahead of a request (warm): the first acquire for the key takes one. */
  private readonly warming = new Map<string, Promise<Socket>>();
  /** Warm connections opened and not taken by a request yet (closed after UNUSED_WARM_MS). */
  private readonly unusedWarm = new Set<Socket>();
  /** Set by destroy(): a connection that opens or comes back afterwards is closed, never kept. */
  private isClosed = false;
  /** The upstream trust as one TLS context, also for the WebSocket leg. */
  readonly tlsContext: tls.SecureContext;

  constructor(trust: readonly string[]) {
    this.tlsContext = trustContext(trust);
  }

  /** A connected socket for the endpoint: an idle keep-alive one, or a new connection. */
  acquire(endpoint: Endpoint, fresh = false): Promise<{ socket: Socket; reused: boolean }> {
    const list = fresh ? undefined : this.idle.get(keyOf(endpoint));
    while (list && list.length > 0) {
      const socket = list.pop()!;
      this.unusedWarm.delete(socket);
      socket.removeAllListeners("data");
      socket.removeAllListeners("timeout");
      socket.setTimeout(0);
      // A socket may have been paused by backpressure in its last exchange.
      socket.resume();
      if (!socket.destroyed && socket.readable && socket.writable) return Promise.resolve({ socket, reused: true });
    }
    const key = keyOf(endpoint);
    const early = fresh ? undefined : this.warming.get(key);
    if (early) {
      this.warming.delete(key);
      // Not counted as reused: a request that fails on it is not retried on a fresh one.
      return early.then((socket) => ({ socket, reused: false }));
    }
    return this.dial(endpoint).then((socket) => ({ socket, reused: false }));
  }

  /**
   * Opens a connection for the endpoint ahead of its first request (a CONNECT to it was just
   * accepted), unless one is idle or already opening. Nothing is written on it; a failure is
   * forgotten (the request's own dial reports it).
   */
  warm(endpoint: Endpoint): void {
    const key = keyOf(endpoint);
    if (this.isClosed || this.warming.has(key) || (this.idle.get(key)?.length ?? 0) > 0) return;
    if (this.warming.size + this.unusedWarm.size >= MAX_UNUSED_WARM) return;
    const opening = this.dial(endpoint);
    this.warming.set(key, opening);
    opening.then(
      (socket) => {
        // Not claimed by a request while it opened: it waits in the idle list like any other.
        if (this.warming.get(key) !== opening) return;
        this.warming.delete(key);
        this.release(endpoint, socket);
        if (socket.destroyed) return;
        this.unusedWarm.add(socket);
        socket.once("close", () => this.unusedWarm.delete(socket));
        setTimeout(() => {
          if (this.unusedWarm.delete(socket)) socket.destroy();
        }, UNUSED_WARM_MS).unref();
      },
      () => {
        if (this.warming.get(key) === opening) this.warming.delete(key);
      },
    );
  }

  private dial(endpoint: Endpoint): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const options = { host: endpoint.dial.address, port: endpoint.dial.port };
      const socket: Socket =
        endpoint.scheme === "https"
          ? tls.connect({
              ...options,
              ...(net.isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
              secureContext: this.tlsContext,
              ALPNProtocols: ["http/1.1"],
              checkServerIdentity: (_name: string, cert: PeerCertificate) => tls.checkServerIdentity(endpoint.host, cert),
            })
          : net.connect(options);
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })), CONNECT_TIMEOUT_MS);
      const failed = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once(endpoint.scheme === "https" ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", failed);
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once("error", failed);
    });
  }

  /** Returns a socket whose exchange ended cleanly; anything it says while idle closes it. */
  release(endpoint: Endpoint, socket: Socket): void {
    const key = keyOf(endpoint);
    const list = this.idle.get(key) ?? [];
    if (this.isClosed || list.length >= MAX_IDLE_PER_KEY || socket.destroyed) return void socket.destroy();
    socket.removeAllListeners("data");
    socket.removeAllListeners("end");
    socket.removeAllListeners("error");
    socket.removeAllListeners("close");
    const drop = () => {
      const at = list.indexOf(socket);
      if (at !== -1) list.splice(at, 1);
      socket.destroy();
    };
    socket.on("data", drop);
    socket.on("end", drop);
    socket.on("error", drop);
    socket.on("close", drop);
    socket.setTimeout(IDLE_TIMEOUT_MS, drop);
    socket.resume();
    list.push(socket);
    this.idle.set(key, list);
  }

  destroy(): void {
    this.isClosed = true;
    for (const s of this.unusedWarm) s.destroy();
    this.unusedWarm.clear();
    for (const list of this.idle.values()) for (const s of list) s.destroy();
    this.idle.clear();
  }
}
