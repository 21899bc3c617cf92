// Local HTTPS upstreams for end-to-end tests: a test CA (not the proxy's), one listener that serves
// any host name by SNI, and a record of every request that reached it. Tests point the proxy at it
// with AGENT_VAULT_CONNECT_TO and trust the test CA with AGENT_VAULT_UPSTREAM_CA.
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openToAgent } from "./attacker.ts";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, type Socket } from "node:net";
import tls from "node:tls";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";

export interface ReceivedRequest {
  readonly host: string;
  readonly sni: string | undefined;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | boolean;

export interface Upstream {
  readonly port: number;
  readonly caFile: string;
  readonly received: ReceivedRequest[];
  /** Every byte that arrived on a TLS connection (after decryption), with the connection's SNI. */
  readonly wire: { sni: string; data: Buffer }[];
  /**
   * Every connection accepted, in order: TLS ones once their handshake is done (`servername` is
   * their SNI), plain ones as they connect. Tests count them, or close one from the upstream's side.
   */
  readonly connections: (tls.TLSSocket | Socket)[];
  /** Optional route override; return true when handled. */
  handler: Handler | null;
  close(): Promise<void>;
}

export async function startUpstream(dir: string, options: { plain?: boolean } = {}): Promise<Upstream> {
  const ca = createCertificateAuthority();
  const leaves = new LeafCertificates(ca);
  const caFile = `${dir}/upstream-ca.pem`;
  writeFileSync(caFile, ca.certPem);
  const received: ReceivedRequest[] = [];
  const wire: { sni: string; data: Buffer }[] = [];
  const connections: (tls.TLSSocket | Socket)[] = [];
  const upstream: Upstream = { port: 0, caFile, received, wire, connections, handler: null, close: async () => undefined };
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    const sni = (req.socket as tls.TLSSocket).servername || undefined;
    // Streaming routes read the body themselves.
    if (upstream.handler && req.url?.startsWith("/stream")) {
      received.push({ host: String(req.headers.host), sni, method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.alloc(0) });
      upstream.handler(req, res, Buffer.alloc(0));
      return;
    }
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      received.push({ host: String(req.headers.host), sni, method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (upstream.handler?.(req, res, body)) return;
      const reply = JSON.stringify({ ok: true, method: req.method, url: req.url, headers: req.headers, body_length: body.length });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
      res.end(reply);
    });
  });
  const server = options.plain
    ? app
    : tls.createServer({ SNICallback: (name, cb) => cb(null, leaves.contextFor(name || "localhost")), secureContext: leaves.contextFor("localhost") }, (socket) => {
        connections.push(socket);
        socket.on("data", (data: Buffer) => wire.push({ sni: socket.servername || "", data: Buffer.from(data) }));
        app.emit("connection", socket);
      });
  if (options.plain) app.on("connection", (socket: Socket) => connections.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return Object.assign(upstream, {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        app.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** Answers "ok" and never echoes: what the agent gets back cannot carry a value by the test's own doing. */
export const replyOk: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": 2 });
  res.end("ok");
  return true;
};

/** A reply that never echoes what the upstream received: `{ok: true, path}`. */
export const replyWithPath: Handler = (req, res) => {
  const reply = JSON.stringify({ ok: true, path: req.url });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
  res.end(reply);
  return true;
};

/**
 * An upstream for a broker run as the agent user (test/support/attacker.ts): its directory and CA
 * readable by that user, `host`:443 (or each of several) mapped to it, closed by the cleanup it registers. Answers with
 * `handler`, by default the request's path.
 */
export async function agentUpstream(
  scratch: string,
  host: string | readonly string[],
  cleanups: (() => Promise<void> | void)[],
  handler: Handler = replyWithPath,
): Promise<{ upstream: Upstream; env: Record<string, string> }> {
  const dir = mkdtempSync(join(scratch, "u-"));
  openToAgent(scratch);
  openToAgent(dir);
  const upstream = await startUpstream(dir);
  upstream.handler = handler;
  cleanups.push(() => upstream.close());
  const hosts = typeof host === "string" ? [host] : host;
  return { upstream, env: { AGENT_VAULT_CONNECT_TO: hosts.map((h) => `${h}:443:127.0.0.1:${upstream.port}`).join(","), AGENT_VAULT_UPSTREAM_CA: upstream.caFile } };
}
