// A small, explicit HTTP/1.1 client for driving agent-vault's proxy byte by byte: CONNECT with or
// without a session token, TLS over the tunnel, keep-alive requests on one connection, chunked
// bodies, raw upgrades. Real clients (curl, requests, fetch) are exercised separately; this one
// exists so a caller controls every header and sees every byte. The tests and the proxy benchmark
// (scripts/bench/http1.ts) share it, so what the benchmark times is what the tests check; for the
// benchmark, bodies can stream to a callback (never kept), be read at a set rate, and waits can be
// left to a stall timer instead of a deadline.
import { randomBytes } from "node:crypto";
import net from "node:net";
import tls, { type SecureContext } from "node:tls";

export interface RawResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** The body; empty when an `onBody` callback took it. */
  readonly body: Buffer;
  /** Body bytes read, whoever took them. */
  readonly bytes: number;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

const EMPTY = Buffer.alloc(0);

/** Buffers a stream's bytes so a parser can wait for "at least this much". */
export class Reader {
  private buf: Buffer = EMPTY;
  private done = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  /** Wall-clock ms (performance.timeOrigin + now) of the last read: when a piece arrived. */
  arrivedAt = 0;
  /** Bytes read from the stream so far. */
  received = 0;
  private readonly onData = (chunk: Buffer) => {
    this.arrivedAt = performance.timeOrigin + performance.now();
    this.received += chunk.length;
    // Most reads find the buffer empty: keep the chunk as it is instead of copying it.
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.notify();
  };
  private readonly onEnd = () => {
    this.done = true;
    this.notify();
  };
  private readonly onError = (error: Error) => {
    this.failure = error;
    this.done = true;
    this.notify();
  };

  constructor(readonly stream: net.Socket) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  get closed(): boolean {
    return this.done;
  }

  /** Stops reading (so another layer, e.g. TLS, can take the socket over). */
  detach(): Buffer {
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    this.stream.off("error", this.onError);
    const rest = this.buf;
    this.buf = EMPTY;
    return rest;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits until `ready`; `timeoutMs` of Infinity waits without a timer (a caller's stall timer ends it). */
  private async waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.done) throw this.failure ?? new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.length === n ? EMPTY : this.buf.subarray(n);
    return out;
  }

  async until(delimiter: string, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(() => this.buf.indexOf(delimiter) !== -1, timeoutMs, JSON.stringify(delimiter));
    return this.take(this.buf.indexOf(delimiter) + delimiter.length);
  }

  async exactly(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(() => this.buf.length >= n, timeoutMs, `${n} bytes`);
    return this.take(n);
  }

  /** What is buffered now, at most `max` bytes (maybe none): no wait, for a loop that streams. */
  buffered(max: number): Buffer {
    return this.buf.length === 0 ? EMPTY : this.take(Math.min(max, this.buf.length));
  }

  /** What is buffered, at most `max` bytes, after waiting for at least one. */
  async some(max: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(() => this.buf.length > 0, timeoutMs, "more bytes");
    return this.take(Math.min(max, this.buf.length));
  }

  async toEnd(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.done) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the end of the stream`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.take(this.buf.length);
  }

  /** Resolves true when the stream closes within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.done;
  }
}

function parseHead(head: string): { status: number; reason: string; headers: Record<string, string> } {
  const lines = head.replace(/\r\n\r\n$/, "").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? "");
  if (!match) throw new Error(`not an HTTP response: ${JSON.stringify(head.slice(0, 200))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(match[1]), reason: match[2] ?? "", headers };
}

function makeResponse(status: number, reason: string, headers: Record<string, string>, body: Buffer, bytes: number): RawResponse {
  const text = body.toString("utf8");
  return {
    status,
    reason,
    headers,
    body,
    bytes,
    text,
    json<T>() {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`not JSON (status ${status}): ${JSON.stringify(text.slice(0, 300))}`);
      }
    },
  };
}

export interface ReadOptions {
  readonly method?: string;
  /** Per wait; Infinity for none (the caller's stall timer ends a stuck read). */
  readonly timeoutMs?: number;
  /** Body pieces as they arrive, with the wall-clock ms of their socket read; the body is then not kept. */
  readonly onBody?: (piece: Buffer, arrivedAt: number) => void;
  /** Read the body no faster than this (MiB/s): a slow agent, which the proxy must not buffer for. */
  readonly readRateMiBps?: number;
}

/** Reads one response (head and body) from `reader`. */
export async function readResponse(reader: Reader, options: ReadOptions = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const head = (await reader.until("\r\n\r\n", timeoutMs)).toString("latin1");
  const { status, reason, headers } = parseHead(head);
  const kept: Buffer[] = [];
  let bytes = 0;
  const rate = (options.readRateMiBps ?? 0) * 1024 * 1024;
  const bodyStart = performance.now();
  // A body piece to its taker; a promise only when pacing must wait (streaming stays one await a read).
  const deliver = (piece: Buffer): Promise<void> | undefined => {
    bytes += piece.length;
    if (options.onBody) options.onBody(piece, reader.arrivedAt);
    else kept.push(piece);
    if (rate <= 0) return undefined;
    const due = bodyStart + (bytes / rate) * 1000 - performance.now();
    if (due <= 1) return undefined;
    reader.stream.pause();
    return new Promise<void>((r) => setTimeout(r, due)).then(() => void reader.stream.resume());
  };
  const copy = async (n: number) => {
    if (!options.onBody && rate <= 0) {
      kept.push(await reader.exactly(n, timeoutMs));
      bytes += n;
      return;
    }
    for (let left = n; left > 0; ) {
      let piece = reader.buffered(left);
      if (piece.length === 0) piece = await reader.some(left, timeoutMs);
      left -= piece.length;
      const paced = deliver(piece);
      if (paced) await paced;
    }
  };
  if (options.method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200) || (options.method === "CONNECT" && status === 200)) {
    // no body
  } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    for (;;) {
      const sizeLine = (await reader.until("\r\n", timeoutMs)).toString("latin1");
      const size = parseInt(sizeLine, 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
      if (size === 0) {
        // trailers, then the empty line
        while ((await reader.until("\r\n", timeoutMs)).length > 2);
        break;
      }
      await copy(size);
      await reader.exactly(2, timeoutMs);
    }
  } else if (headers["content-length"] !== undefined) {
    await copy(Number(headers["content-length"]));
  } else if (options.onBody) {
    // Close-delimited, streamed: every piece until the peer closes.
    for (;;) {
      try {
        await deliver(await reader.some(Number.MAX_SAFE_INTEGER, timeoutMs));
      } catch (error) {
        if (reader.closed) break;
        throw error;
      }
    }
  } else {
    await deliver(await reader.toEnd(timeoutMs));
  }
  return makeResponse(status, reason, headers, kept.length === 1 ? kept[0]! : Buffer.concat(kept), bytes);
}

export type HeaderList = readonly (readonly [string, string])[];

/** A request head, and the body with a Content-Length unless the headers carry one. */
export function formatRequest(method: string, target: string, headers: HeaderList, body?: Buffer | string): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, ...headers.map(([n, v]) => `${n}: ${v}`)];
  const payload = body === undefined ? EMPTY : Buffer.from(body);
  if (body !== undefined && !headers.some(([n]) => n.toLowerCase() === "content-length")) lines.push(`Content-Length: ${payload.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), payload]);
}

/** One HTTP/1.1 connection (plain or TLS) on which requests are sent one after another. */
export class HttpConnection {
  readonly reader: Reader;

  constructor(readonly socket: net.Socket) {
    this.reader = new Reader(socket);
  }

  get closed(): boolean {
    return this.reader.closed || this.socket.destroyed;
  }

  async request(method: string, target: string, headers: HeaderList, body?: Buffer | string, timeoutMs = 10_000): Promise<RawResponse> {
    this.socket.write(formatRequest(method, target, headers, body));
    return readResponse(this.reader, { method, timeoutMs });
  }

  close(): void {
    this.socket.destroy();
  }
}

export function basicProxyAuth(token: string, vault = "default"): string {
  return `Basic ${Buffer.from(`${token}:${vault}`).toString("base64")}`;
}

/** When each step of opening a connection was done, in ms since it began. */
export interface Timing {
  /** TCP connected. */
  tcp: number;
  /** CONNECT answered (0 on a direct connection). */
  tunnel: number;
  /** TLS handshake done. */
  tls: number;
}

export interface TunnelResult {
  /** The proxy's answer to the CONNECT. */
  readonly connect: RawResponse;
  /** Set when the CONNECT succeeded: TLS over the tunnel to `host`. */
  readonly conn: HttpConnection | null;
  /** The certificate the client saw at the far end of the tunnel. */
  readonly peerIssuerCN: string | null;
  readonly timing: Timing;
}

/** What the TLS inside a tunnel (or on a direct connection) trusts: PEM certificates, or a prepared context. */
export type Trust = { readonly ca: readonly string[] } | { readonly secureContext: SecureContext };

export type TunnelOptions = Trust & {
  readonly proxyPort: number;
  /** Where the proxy listens; 127.0.0.1 unless given. */
  readonly proxyHost?: string;
  readonly host: string;
  readonly port?: number;
  /** The CONNECT target; `host:port` unless given. */
  readonly authority?: string;
  /** The Proxy-Authorization header value, or null for none. */
  readonly proxyAuthorization: string | null;
  /** SNI to send; defaults to `host` (none for IP literals). */
  readonly servername?: string;
  readonly timeoutMs?: number;
};

async function tcpConnect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  const socket = net.connect({ host, port });
  // Requests are written whole: no reason to let Nagle hold the last segment back.
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`connecting to ${host}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      resolve();
    });
    socket.once("error", fail);
  });
  return socket;
}

/** TLS to `host` over `socket`, its certificate checked against `host` and `trust`. */
async function startTls(socket: net.Socket, host: string, servername: string | undefined, trust: Trust, timeoutMs: number, what: string): Promise<tls.TLSSocket> {
  const secure = tls.connect({
    socket,
    ...(servername ? { servername } : {}),
    ...("ca" in trust ? { ca: [...trust.ca] } : { secureContext: trust.secureContext }),
    ALPNProtocols: ["http/1.1"],
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(host, cert),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`TLS to ${what} timed out`)), timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      resolve();
    });
    secure.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return secure;
}

/** CONNECT host:port through the proxy and, on 200, TLS inside the tunnel. */
export async function openTunnel(options: TunnelOptions): Promise<TunnelResult> {
  const started = performance.now();
  const timing: Timing = { tcp: 0, tunnel: 0, tls: 0 };
  const port = options.port ?? 443;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socket = await tcpConnect(options.proxyHost ?? "127.0.0.1", options.proxyPort, timeoutMs);
  timing.tcp = performance.now() - started;
  const authority = options.authority ?? (net.isIPv6(options.host) ? `[${options.host}]:${port}` : `${options.host}:${port}`);
  const headers: [string, string][] = [["Host", authority]];
  if (options.proxyAuthorization !== null) headers.push(["Proxy-Authorization", options.proxyAuthorization]);
  socket.write(formatRequest("CONNECT", authority, headers));
  const plain = new Reader(socket);
  const connect = await readResponse(plain, { method: "CONNECT", timeoutMs });
  timing.tunnel = performance.now() - started;
  if (connect.status !== 200) {
    socket.destroy();
    return { connect, conn: null, peerIssuerCN: null, timing };
  }
  // Bytes after the 200 belong to the tunnel: TLS reads them (and fails on them) as it would.
  const early = plain.detach();
  if (early.length > 0) socket.unshift(early);
  try {
    const servername = options.servername ?? (net.isIP(options.host) ? undefined : options.host);
    const secure = await startTls(socket, options.host, servername, options, timeoutMs, `${authority} through the proxy`);
    timing.tls = performance.now() - started;
    const issuer = secure.getPeerCertificate()?.issuer as Record<string, string> | undefined;
    return { connect, conn: new HttpConnection(secure), peerIssuerCN: issuer?.CN ?? issuer?.O ?? null, timing };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** TLS straight to an upstream (no proxy), for the benchmark's direct series. */
export async function openDirectTls(
  options: Trust & { readonly host: string; readonly port: number; readonly servername: string; readonly timeoutMs?: number },
): Promise<{ conn: HttpConnection; timing: Timing }> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socket = await tcpConnect(options.host, options.port, timeoutMs);
  const tcp = performance.now() - started;
  try {
    const secure = await startTls(socket, options.servername, options.servername, options, timeoutMs, `${options.servername} at ${options.host}:${options.port}`);
    return { conn: new HttpConnection(secure), timing: { tcp, tunnel: 0, tls: performance.now() - started } };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** A WebSocket handshake request for `path` on `host`, with a fresh key, as a client writes it. */
export function webSocketOffer(host: string, path: string): string {
  return [`GET ${path} HTTP/1.1`, `Host: ${host}`, "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13", "", ""].join(
    "\r\n",
  );
}

/** A plain (non-CONNECT) connection to a local port: the proxy's absolute-form side or the agent API. */
export async function openPlain(port: number): Promise<HttpConnection> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return new HttpConnection(socket);
}

// --- WebSocket framing (RFC 6455), just enough for an echo test -------------------------------

export function wsFrame(payload: Buffer | string, options: { opcode?: number; mask: boolean }): Buffer {
  const data = Buffer.from(payload);
  const opcode = options.opcode ?? 0x1;
  const head: number[] = [0x80 | opcode];
  const maskBit = options.mask ? 0x80 : 0;
  if (data.length < 126) head.push(maskBit | data.length);
  else if (data.length < 65536) head.push(maskBit | 126, data.length >> 8, data.length & 0xff);
  else {
    head.push(maskBit | 127);
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(data.length));
    head.push(...len);
  }
  if (!options.mask) return Buffer.concat([Buffer.from(head), data]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(data.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

export interface WsMessage {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Reads one frame from `reader`, unmasking if needed. */
export async function readWsFrame(reader: Reader, timeoutMs = 10_000): Promise<WsMessage> {
  const [b0, b1] = await reader.exactly(2, timeoutMs);
  let length = b1! & 0x7f;
  if (length === 126) length = (await reader.exactly(2, timeoutMs)).readUInt16BE(0);
  else if (length === 127) length = Number((await reader.exactly(8, timeoutMs)).readBigUInt64BE(0));
  const key = b1! & 0x80 ? await reader.exactly(4, timeoutMs) : null;
  const raw = await reader.exactly(length, timeoutMs);
  const payload = key ? Buffer.from(raw.map((b, i) => b ^ key[i % 4]!)) : Buffer.from(raw);
  return { opcode: b0! & 0x0f, payload };
}

export interface WsEchoOptions {
  /** Sees every frame the client sent (unmasked), before it is answered. */
  readonly onFrame?: (frame: WsMessage) => void;
  /** May answer a data frame itself instead of the echo: returns true when it did. */
  readonly onMessage?: (payload: Buffer, socket: net.Socket) => boolean;
}

/** An echo loop over a raw upgraded socket (server side: frames from clients are masked); close and ping answered. */
export function serveWsEcho(socket: net.Socket, options: WsEchoOptions = {}): void {
  const reader = new Reader(socket);
  void (async () => {
    try {
      for (;;) {
        const frame = await readWsFrame(reader, 60_000);
        options.onFrame?.(frame);
        if (frame.opcode === 0x8) {
          socket.end(wsFrame(frame.payload, { opcode: 0x8, mask: false }));
          return;
        }
        if (frame.opcode === 0x9) {
          socket.write(wsFrame(frame.payload, { opcode: 0xa, mask: false }));
          continue;
        }
        if (options.onMessage?.(frame.payload, socket)) continue;
        socket.write(wsFrame(frame.payload, { opcode: frame.opcode, mask: false }));
      }
    } catch {
      socket.destroy();
    }
  })();
}
