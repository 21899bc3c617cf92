// The upstream leg: HTTP/1.1 over verified TLS (or plain TCP for untouched http:// hosts), written
// directly on sockets, with a keep-alive pool. Why not node:https here: under Bun its ClientRequest
// accepts any amount of body without ever signalling backpressure, so a slow upstream made the proxy
// hold a whole upload in memory. On a raw socket, write() and 'drain' are honest, in both directions.
import net, { type Socket } from "node:net";
import tls, { type PeerCertificate } from "node:tls";
import { type Dial } from "./netguard.ts";

const IDLE_TIMEOUT_MS = 60_000;
const MAX_IDLE_PER_KEY = 32;
const CONNECT_TIMEOUT_MS = 15_000;

export interface Endpoint {
  readonly scheme: "https" | "http";
  /** The name the agent asked for: SNI and the certificate check use it, never the dialled address. */
  readonly host: string;
  readonly dial: Dial;
}

function keyOf(e: Endpoint): string {
  return `${e.scheme}|${e.host}|${e.dial.address}|${e.dial.port}`;
}

export class UpstreamPool {
  private readonly idle = new Map<string, Socket[]>();
  private readonly trust: readonly string[];

  constructor(trust: readonly string[]) {
    this.trust = trust;
  }

  /** A connected socket for the endpoint: an idle keep-alive one, or a new connection. */
  acquire(endpoint: Endpoint, fresh = false): Promise<{ socket: Socket; reused: boolean }> {
    const list = fresh ? undefined : this.idle.get(keyOf(endpoint));
    while (list && list.length > 0) {
      const socket = list.pop()!;
      socket.removeAllListeners("data");
      socket.removeAllListeners("timeout");
      socket.setTimeout(0);
      // A socket may have been paused by backpressure in its last exchange.
      socket.resume();
      if (!socket.destroyed && socket.readable && socket.writable) return Promise.resolve({ socket, reused: true });
    }
    return new Promise((resolve, reject) => {
      const options = { host: endpoint.dial.address, port: endpoint.dial.port };
      const socket: Socket =
        endpoint.scheme === "https"
          ? tls.connect({
              ...options,
              ...(net.isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
              ca: [...this.trust],
              ALPNProtocols: ["http/1.1"],
              checkServerIdentity: (_name: string, cert: PeerCertificate) => tls.checkServerIdentity(endpoint.host, cert),
            })
          : net.connect(options);
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })), CONNECT_TIMEOUT_MS);
      socket.once(endpoint.scheme === "https" ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", reject);
        socket.setNoDelay(true);
        resolve({ socket, reused: false });
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Returns a socket whose exchange ended cleanly; anything it says while idle closes it. */
  release(endpoint: Endpoint, socket: Socket): void {
    const key = keyOf(endpoint);
    const list = this.idle.get(key) ?? [];
    if (list.length >= MAX_IDLE_PER_KEY || socket.destroyed) return void socket.destroy();
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
    for (const list of this.idle.values()) for (const s of list) s.destroy();
    this.idle.clear();
  }
}

export interface ResponseHead {
  readonly status: number;
  readonly message: string;
  /** Header lines in order, names as the upstream sent them. */
  readonly headers: [string, string][];
}

export type BodyFraming = { kind: "none" } | { kind: "length"; remaining: number } | { kind: "chunked" } | { kind: "close" };

const MAX_HEAD_BYTES = 64 * 1024;

/**
 * Incremental HTTP/1.1 response parser: a head, then the body in its framing. Body bytes are
 * handed on de-chunked; `done` fires once, when the message is complete.
 */
export class ResponseParser {
  private buffer: Buffer = Buffer.alloc(0);
  private framing: BodyFraming | null = null;
  private chunkRemaining = -1; // -1: expecting a size line; -2: expecting the CRLF after data; -3: trailers
  private finished = false;

  constructor(
    private readonly isHead: boolean,
    private readonly onHead: (head: ResponseHead, framing: BodyFraming) => void,
    private readonly onBody: (bytes: Buffer) => void,
    private readonly onDone: (reusable: boolean) => void,
  ) {}

  get isFinished(): boolean {
    return this.finished;
  }

  /** Feeds bytes; returns an error text for a malformed response. */
  feed(data: Buffer): string | null {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    while (!this.finished && this.buffer.length > 0) {
      if (this.framing === null) {
        const end = this.buffer.indexOf("\r\n\r\n");
        if (end === -1) return this.buffer.length > MAX_HEAD_BYTES ? "response head too large" : null;
        const lines = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
        this.buffer = this.buffer.subarray(end + 4);
        const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
        if (!status) return "malformed status line";
        const code = Number(status[1]);
        const headers: [string, string][] = [];
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          if (colon <= 0) return "malformed header line";
          headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
        }
        if (code >= 100 && code < 200 && code !== 101) continue; // 100 Continue and friends
        const get = (name: string) => headers.find(([n]) => n.toLowerCase() === name)?.[1];
        const te = get("transfer-encoding");
        const length = get("content-length");
        if (this.isHead || code === 204 || code === 304 || code === 101) this.framing = { kind: "none" };
        else if (te && /chunked/i.test(te)) this.framing = { kind: "chunked" };
        else if (length !== undefined && /^\d+$/.test(length)) this.framing = { kind: "length", remaining: Number(length) };
        else this.framing = { kind: "close" };
        this.onHead({ status: code, message: status[2] ?? "", headers }, this.framing);
        const closes = /close/i.test(get("connection") ?? "");
        if (this.framing.kind === "none" || (this.framing.kind === "length" && this.framing.remaining === 0)) this.finish(!closes && code !== 101);
        this.reusable = !closes;
        continue;
      }
      const error = this.body();
      if (error) return error;
    }
    return null;
  }

  private reusable = true;

  /** The upstream closed the connection: the end of a close-delimited body, or a truncation. */
  end(): string | null {
    if (this.finished) return null;
    if (this.framing?.kind === "close") {
      this.finish(false);
      return null;
    }
    return "the upstream closed the connection mid-response";
  }

  private finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone(reusable && this.buffer.length === 0);
  }

  private body(): string | null {
    const framing = this.framing!;
    if (framing.kind === "close") {
      this.onBody(this.buffer);
      this.buffer = Buffer.alloc(0);
      return null;
    }
    if (framing.kind === "length") {
      const take = Math.min(framing.remaining, this.buffer.length);
      this.onBody(this.buffer.subarray(0, take));
      this.buffer = this.buffer.subarray(take);
      framing.remaining -= take;
      if (framing.remaining === 0) this.finish(this.reusable);
      return null;
    }
    if (framing.kind === "none") {
      this.buffer = Buffer.alloc(0);
      return null;
    }
    // chunked
    if (this.chunkRemaining === -1) {
      const eol = this.buffer.indexOf("\r\n");
      if (eol === -1) return this.buffer.length > 1024 ? "malformed chunk size" : null;
      const size = parseInt(this.buffer.subarray(0, eol).toString("latin1").split(";")[0]!.trim(), 16);
      if (!Number.isFinite(size) || size < 0) return "malformed chunk size";
      this.buffer = this.buffer.subarray(eol + 2);
      this.chunkRemaining = size === 0 ? -3 : size;
      return null;
    }
    if (this.chunkRemaining === -2) {
      if (this.buffer.length < 2) return null;
      this.buffer = this.buffer.subarray(2);
      this.chunkRemaining = -1;
      return null;
    }
    if (this.chunkRemaining === -3) {
      // Trailers end with an empty line; a bare CRLF ends the message.
      if (this.buffer.subarray(0, 2).toString("latin1") === "\r\n") {
        this.buffer = this.buffer.subarray(2);
        this.finish(this.reusable);
        return null;
      }
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end === -1) return this.buffer.length > MAX_HEAD_BYTES ? "trailers too large" : null;
      this.buffer = this.buffer.subarray(end + 4);
      this.finish(this.reusable);
      return null;
    }
    const take = Math.min(this.chunkRemaining, this.buffer.length);
    this.onBody(this.buffer.subarray(0, take));
    this.buffer = this.buffer.subarray(take);
    this.chunkRemaining -= take;
    if (this.chunkRemaining === 0) this.chunkRemaining = -2;
    return null;
  }
}
