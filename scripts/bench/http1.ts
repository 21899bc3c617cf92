// A deliberately small HTTP/1.1 client over one TLS socket, for the proxy benchmark. Every
// library client pools, retries, or tunnels in its own way; this one opens exactly the connection
// it is asked for (direct, or through a CONNECT tunnel), sends requests one after another on it,
// and reads content-length, chunked and close-delimited bodies without keeping them (a body is
// handed to a callback piece by piece, or collected when small). So "one tunnel, reused" and "a
// new connection per request" are facts of the code, not of a library's pool.
import net from "node:net";
import tls, { type SecureContext } from "node:tls";

/** Where a connection goes: straight to the upstream, or through a CONNECT proxy. */
export type Route =
  | { readonly kind: "direct"; readonly host: string; readonly port: number; readonly context: SecureContext }
  | {
      readonly kind: "proxy";
      readonly proxyHost: string;
      readonly proxyPort: number;
      /** The Proxy-Authorization value, if the proxy needs one. */
      readonly authorization?: string;
      /** The CONNECT target for a name; `name:443` unless given. */
      readonly target?: (name: string) => string;
      readonly context: SecureContext;
    };

export interface Timing {
  /** TCP connected (ms since start). */
  tcp: number;
  /** CONNECT answered (proxy routes only). */
  tunnel: number;
  /** TLS handshake done. */
  tls: number;
}

function once<T = void>(emitter: NodeJS.EventEmitter, event: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onEvent = (value: T) => {
      cleanup();
      resolve(value);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new Error(`${what}: ${error.message}`));
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`${what}: connection closed`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      emitter.off("error", onError);
      if (event !== "close") emitter.off("close", onClose);
    };
    emitter.on(event, onEvent);
    emitter.on("error", onError);
    if (event !== "close") emitter.on("close", onClose);
  });
}

/** Opens a TLS connection for `name` over `route`; resolves once the handshake is done. */
export async function connect(route: Route, name: string, timeoutMs = 15_000): Promise<{ conn: Conn; timing: Timing }> {
  const started = performance.now();
  const timing: Timing = { tcp: 0, tunnel: 0, tls: 0 };
  const raw = route.kind === "direct" ? net.connect(route.port, route.host) : net.connect(route.proxyPort, route.proxyHost);
  raw.setNoDelay(true);
  try {
    await once(raw, "connect", timeoutMs, `connect to ${route.kind === "direct" ? "the upstream" : "the proxy"}`);
    timing.tcp = performance.now() - started;
    if (route.kind === "proxy") {
      const target = route.target ? route.target(name) : `${name}:443`;
      const auth = route.authorization ? `Proxy-Authorization: ${route.authorization}\r\n` : "";
      raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
      let head = Buffer.alloc(0);
      while (head.indexOf("\r\n\r\n") === -1) {
        head = Buffer.concat([head, await once<Buffer>(raw, "data", timeoutMs, `CONNECT ${target}`)]);
      }
      raw.pause();
      const end = head.indexOf("\r\n\r\n");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString("latin1"));
      if (!status || status[1] !== "200") throw new Error(`CONNECT ${target}: ${head.toString("latin1").slice(0, 300).replace(/\r\n/g, " | ")}`);
      if (end + 4 !== head.length) throw new Error(`CONNECT ${target}: bytes after the 200 before TLS`);
      timing.tunnel = performance.now() - started;
    }
    const secure = tls.connect({ socket: raw, servername: name, secureContext: route.context, ALPNProtocols: ["http/1.1"] });
    await once(secure, "secureConnect", timeoutMs, `TLS to ${name}`);
    if (!secure.authorized) throw new Error(`TLS to ${name}: not authorized (${String(secure.authorizationError)})`);
    timing.tls = performance.now() - started;
    return { conn: new Conn(secure), timing };
  } catch (error) {
    raw.destroy();
    throw error;
  }
}

export interface Response {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly bytes: number;
  /** The body, when no onBody callback took it and it is small (≤ 1 MiB). */
  readonly body: Buffer;
  /** The server said it will close the connection. */
  readonly closing: boolean;
  /** performance.now() when the last upload byte was handed to the socket. */
  readonly uploadDoneAt?: number;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path: string;
  readonly host: string;
  readonly headers?: Record<string, string>;
  /** A body of `size` bytes written from `chunk` repeatedly, with backpressure. */
  readonly upload?: { readonly size: number; readonly chunk: Buffer };
  /** Body pieces as they arrive; `arrivedAt` is the wall-clock ms of the socket read. */
  readonly onBody?: (piece: Buffer, arrivedAt: number) => void;
  /** Fail when nothing moves (no byte read, none written) for this long; default 30 s. */
  readonly timeoutMs?: number;
  /** Read the body no faster than this (MiB/s): a slow agent, which the proxy must not buffer for. */
  readonly readRateMiBps?: number;
}

const EMPTY = Buffer.alloc(0);
const wallMs = () => performance.timeOrigin + performance.now();

/** One TLS connection carrying requests one after another. */
export class Conn {
  private buf: Buffer = EMPTY;
  private wake: (() => void) | null = null;
  private ended = false;
  private error: Error | null = null;
  /** Wall-clock ms of the last socket read. */
  private arrivedAt = 0;
  /** performance.now() of the last byte read or written, for the stall timeout. */
  private progressAt = performance.now();
  private received = 0;
  private sent = 0;

  constructor(readonly socket: tls.TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.arrivedAt = wallMs();
      this.progressAt = performance.now();
      this.received += chunk.length;
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.notify();
    });
    socket.on("end", () => {
      this.ended = true;
      this.notify();
    });
    socket.on("close", () => {
      this.ended = true;
      this.notify();
    });
    socket.on("error", (error: Error) => {
      this.error = error;
      this.notify();
    });
    socket.resume();
  }

  get closed(): boolean {
    return this.ended || this.error !== null || this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits for more bytes; throws when the connection is gone. */
  private async more(): Promise<void> {
    if (this.error) throw this.error;
    if (this.ended) throw new Error("connection closed by the peer");
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.error) throw this.error;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.length === n ? EMPTY : this.buf.subarray(n);
    return out;
  }

  private async line(): Promise<string> {
    let i: number;
    while ((i = this.buf.indexOf("\r\n")) === -1) await this.more();
    const text = this.take(i).toString("latin1");
    this.take(2);
    return text;
  }

  async request(options: RequestOptions): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.progressAt = performance.now();
    const received0 = this.received;
    const sent0 = this.sent;
    const timer = setInterval(
      () => {
        if (performance.now() - this.progressAt < timeoutMs) return;
        const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
        this.error = new Error(
          `${options.method ?? "GET"} ${options.path.split("?")[0]}: stalled, nothing moved for ${timeoutMs / 1000} s (${mib(this.sent - sent0)} sent, ${mib(this.received - received0)} received)`,
        );
        this.socket.destroy();
        this.notify();
      },
      Math.min(1000, timeoutMs),
    );
    try {
      const method = options.method ?? "GET";
      const headers: Record<string, string> = { host: options.host, ...options.headers };
      if (options.upload) headers["content-length"] = String(options.upload.size);
      let head = `${method} ${options.path} HTTP/1.1\r\n`;
      for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
      this.socket.write(`${head}\r\n`);
      const reading = this.readResponse(options.onBody, options.readRateMiBps);
      // Read while writing: a server may answer (an error, a cap) before the upload is over.
      reading.catch(() => undefined);
      if (options.upload) {
        await this.writeBody(options.upload.size, options.upload.chunk);
        const uploadDoneAt = performance.now();
        return { ...(await reading), uploadDoneAt };
      }
      return await reading;
    } finally {
      clearInterval(timer);
    }
  }

  private async writeBody(size: number, chunk: Buffer): Promise<void> {
    let left = size;
    while (left > 0) {
      if (this.closed) throw this.error ?? new Error("connection closed during the upload");
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      this.sent += piece.length;
      this.progressAt = performance.now();
      if (!this.socket.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.socket.off("drain", done);
            this.socket.off("close", done);
            resolve();
          };
          this.socket.on("drain", done);
          this.socket.on("close", done);
        });
      }
    }
  }

  private async readResponse(onBody?: (piece: Buffer, arrivedAt: number) => void, readRateMiBps?: number): Promise<Response> {
    const statusLine = await this.line();
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine.slice(0, 100))}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (let l = await this.line(); l !== ""; l = await this.line()) {
      const colon = l.indexOf(":");
      if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
    }
    const kept: Buffer[] = [];
    let bytes = 0;
    const rate = (readRateMiBps ?? 0) * 1024 * 1024;
    const bodyStart = performance.now();
    const deliver = (piece: Buffer) => {
      bytes += piece.length;
      if (onBody) onBody(piece, this.arrivedAt);
      else if (bytes <= 1024 * 1024) kept.push(piece);
    };
    const closing = /close/i.test(headers.connection ?? "");
    if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      for (;;) {
        const size = parseInt(await this.line(), 16);
        if (!Number.isFinite(size)) throw new Error("bad chunk size");
        if (size === 0) {
          while ((await this.line()) !== "");
          break;
        }
        await this.copy(size, deliver, rate, () => bytes, bodyStart);
        await this.line();
      }
    } else if (headers["content-length"] !== undefined) {
      await this.copy(Number(headers["content-length"]), deliver, rate, () => bytes, bodyStart);
    } else if (status !== 204 && status !== 304) {
      // Close-delimited.
      for (;;) {
        if (this.buf.length > 0) deliver(this.take(this.buf.length));
        if (this.ended) break;
        try {
          await this.more();
        } catch {
          break;
        }
      }
    }
    return { status, headers, bytes, body: Buffer.concat(kept), closing };
  }

  private async copy(n: number, deliver: (piece: Buffer) => void, rate = 0, total = () => 0, since = 0): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) await this.more();
      const piece = this.take(Math.min(left, this.buf.length));
      left -= piece.length;
      deliver(piece);
      if (rate > 0) {
        const due = since + (total() / rate) * 1000 - performance.now();
        if (due > 1) {
          this.socket.pause();
          await new Promise((r) => setTimeout(r, due));
          this.socket.resume();
        }
      }
    }
  }
}
