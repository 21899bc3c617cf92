// A small, explicit HTTP/1.1 client for driving agent-vault's proxy byte by byte from a test:
// CONNECT with or without a session token, TLS over the tunnel, keep-alive requests on one
// connection, chunked bodies, raw upgrades. Real clients (curl, requests, fetch) are exercised
// separately; this one exists so a test controls every header and sees every byte.
import net from "node:net";
import tls from "node:tls";

export interface RawResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** Buffers a stream's bytes so a parser can wait for "at least this much". */
export class Reader {
  private buf = Buffer.alloc(0);
  private done = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.buf = Buffer.concat([this.buf, chunk]);
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
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.done) throw this.failure ?? new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async until(delimiter: string, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(() => this.buf.indexOf(delimiter) !== -1, timeoutMs, JSON.stringify(delimiter));
    const at = this.buf.indexOf(delimiter) + delimiter.length;
    const out = this.buf.subarray(0, at);
    this.buf = this.buf.subarray(at);
    return out;
  }

  async exactly(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.waitFor(() => this.buf.length >= n, timeoutMs, `${n} bytes`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
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
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
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

function makeResponse(status: number, reason: string, headers: Record<string, string>, body: Buffer): RawResponse {
  const text = body.toString("utf8");
  return {
    status,
    reason,
    headers,
    body,
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

/** Reads one response (head and body) from `reader`. */
export async function readResponse(reader: Reader, options: { method?: string; timeoutMs?: number } = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const head = (await reader.until("\r\n\r\n", timeoutMs)).toString("latin1");
  const { status, reason, headers } = parseHead(head);
  let body: Buffer;
  if (options.method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200) || (options.method === "CONNECT" && status === 200)) {
    body = Buffer.alloc(0);
  } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const parts: Buffer[] = [];
    for (;;) {
      const sizeLine = (await reader.until("\r\n", timeoutMs)).toString("latin1");
      const size = parseInt(sizeLine, 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
      if (size === 0) {
        // trailers, then the empty line
        while ((await reader.until("\r\n", timeoutMs)).length > 2);
        break;
      }
      parts.push(await reader.exactly(size, timeoutMs));
      await reader.exactly(2, timeoutMs);
    }
    body = Buffer.concat(parts);
  } else if (headers["content-length"] !== undefined) {
    body = await reader.exactly(Number(headers["content-length"]), timeoutMs);
  } else {
    body = await reader.toEnd(timeoutMs);
  }
  return makeResponse(status, reason, headers, body);
}

export type HeaderList = readonly (readonly [string, string])[];

export function formatRequest(method: string, target: string, headers: HeaderList, body?: Buffer | string): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, ...headers.map(([n, v]) => `${n}: ${v}`)];
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  if (body !== undefined && !headers.some(([n]) => n.toLowerCase() === "content-length")) lines.push(`Content-Length: ${payload.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), payload]);
}

/** One HTTP/1.1 connection (plain or TLS) on which requests are sent one after another. */
export class HttpConnection {
  readonly reader: Reader;

  constructor(readonly socket: net.Socket) {
    this.reader = new Reader(socket);
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

export interface TunnelResult {
  /** The proxy's answer to the CONNECT. */
  readonly connect: RawResponse;
  /** Set when the CONNECT succeeded: TLS over the tunnel to `host`. */
  readonly conn: HttpConnection | null;
  /** The certificate the client saw at the far end of the tunnel. */
  readonly peerIssuerCN: string | null;
}

export interface TunnelOptions {
  readonly proxyPort: number;
  readonly host: string;
  readonly port?: number;
  /** The Proxy-Authorization header value, or null for none. */
  readonly proxyAuthorization: string | null;
  /** PEM certificates trusted for the TLS inside the tunnel. */
  readonly ca: readonly string[];
  /** SNI to send; defaults to `host` (none for IP literals). */
  readonly servername?: string;
  readonly timeoutMs?: number;
}

/** CONNECT host:port through the proxy and, on 200, TLS inside the tunnel. */
export async function openTunnel(options: TunnelOptions): Promise<TunnelResult> {
  const port = options.port ?? 443;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socket = net.connect({ host: "127.0.0.1", port: options.proxyPort });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const authority = net.isIPv6(options.host) ? `[${options.host}]:${port}` : `${options.host}:${port}`;
  const headers: [string, string][] = [["Host", authority]];
  if (options.proxyAuthorization !== null) headers.push(["Proxy-Authorization", options.proxyAuthorization]);
  socket.write(formatRequest("CONNECT", authority, headers));
  const plain = new Reader(socket);
  const connect = await readResponse(plain, { method: "CONNECT", timeoutMs });
  if (connect.status !== 200) {
    socket.destroy();
    return { connect, conn: null, peerIssuerCN: null };
  }
  plain.detach();
  const servername = options.servername ?? (net.isIP(options.host) ? undefined : options.host);
  const secure = tls.connect({
    socket,
    ...(servername ? { servername } : {}),
    ca: [...options.ca],
    ALPNProtocols: ["http/1.1"],
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(options.host, cert),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`TLS to ${authority} through the proxy timed out`)), timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      resolve();
    });
    secure.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  const issuer = secure.getPeerCertificate()?.issuer as Record<string, string> | undefined;
  return { connect, conn: new HttpConnection(secure), peerIssuerCN: issuer?.CN ?? issuer?.O ?? null };
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

/** An echo loop over a raw upgraded socket (server side: frames from clients are masked). */
export function serveWsEcho(socket: net.Socket): void {
  const reader = new Reader(socket);
  void (async () => {
    try {
      for (;;) {
        const frame = await readWsFrame(reader, 60_000);
        if (frame.opcode === 0x8) {
          socket.end(wsFrame(frame.payload, { opcode: 0x8, mask: false }));
          return;
        }
        if (frame.opcode === 0x9) {
          socket.write(wsFrame(frame.payload, { opcode: 0xa, mask: false }));
          continue;
        }
        socket.write(wsFrame(frame.payload, { opcode: frame.opcode, mask: false }));
      }
    } catch {
      socket.destroy();
    }
  })();
}
