// The only importer of http-mitm-proxy. The engine dispatches CONNECTs and requests to hooks; we
// use its hooks and replace three of its defaults, which break our contracts:
//   - per-host HTTPS servers with RSA keys made by node-forge (250-520 ms per new host) and an extra
//     loopback hop: one TLS termination on the accepted socket, with SNI and cached ECDSA leaves;
//   - forwarding without backpressure (memory grows with the body) and a 504 with the error text:
//     forward.ts streams with backpressure and answers with the JSON error contract;
//   - a CA generated in the working directory: ours lives sealed in the vault.
// Nothing on an intercepted connection is relayed unread: only a WebSocket is ever upgraded, and
// its messages are read one by one (upgrade.ts, ws-relay.ts); any other upgrade offer is removed.
// Everything policy-related happens in pipeline.ts and ws-policy.ts; this file is sockets.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net, { type Socket } from "node:net";
import tls, { TLSSocket } from "node:tls";
import { Proxy as Engine } from "http-mitm-proxy";
import { ERROR_TABLE, isAgentVaultError } from "../shared/errors.ts";
import { type RequestLog } from "../shared/log.ts";
import { hostMatchesPattern, isValidHostname } from "../vault/host.ts";
import { isPrincipalLive, resolvePrincipal } from "../vault/principals.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type LeafCertificates } from "./certs.ts";
import { answer, type EarlyAnswer, type Flow, type Headers, makeFlow } from "./flow.ts";
import { describeUpstreamError, forward, rawAnswer, sendAnswer } from "./forward.ts";
import { AccessLimits } from "./limits.ts";
import { type Pattern } from "./secrets.ts";
import { isWebSocketOffer, readAnswerHead, readRefusal, switchHead, switchProblem, webSocketHandshakeProblem, withoutUpgradeOffer } from "./upgrade.ts";
import { websocketPolicy } from "./ws-policy.ts";
import { relayWebSocket } from "./ws-relay.ts";
import { refuseExfiltration } from "./steps/guard.ts";
import { UpstreamPool } from "./upstream.ts";
import { resolveDial } from "./netguard.ts";
import { type ProxyOptions, runPipeline, type StepContext } from "./pipeline.ts";
import { injectCredential } from "./steps/inject.ts";
import { OAuthRefresher } from "../oauth/refresh.ts";
import { refreshAfterUnauthorized } from "./steps/oauth.ts";
import { type ProxyState } from "./state.ts";
import { authenticate, tokenFromAuthorization } from "./steps/authenticate.ts";

export interface ProxyDeps {
  readonly state: ProxyState;
  readonly options: ProxyOptions;
  readonly leaves: LeafCertificates;
  readonly log: RequestLog;
  readonly trust: readonly string[];
}

export interface RunningProxy {
  readonly port: number;
  close(): Promise<void>;
}

/** Frames an agent may send before the upstream's 101 (held, parsed after it). */
const MAX_EARLY_FRAME_BYTES = 1024 * 1024;
/** A keep-alive connection may offer an upgrade on every request; past this many it is cut. */
const MAX_DOWNGRADES_PER_CONNECTION = 1000;

interface Tunnel {
  readonly host: string;
  readonly port: number;
  readonly credential: string | undefined;
}

interface EngineContext {
  readonly isSSL: boolean;
  readonly clientToProxyRequest: IncomingMessage;
  readonly proxyToClientResponse: ServerResponse;
  readonly proxyToServerRequestOptions?: { host: string; port: number; path: string };
}

/** `host:port` of a CONNECT, strictly: a DNS name or an IP literal, and a port. */
export function parseConnectTarget(target: string | undefined): { host: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s/\\@]+):([0-9]{1,5})$/.exec(target ?? "");
  if (!match) return null;
  const host = match[1]!.replace(/^\[|\]$/g, "").toLowerCase();
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  if (net.isIP(host) === 0 && !isValidHostname(host)) return null;
  return { host, port };
}

export class ProxyAdapter {
  private readonly deps: ProxyDeps;
  private readonly engine: Engine;
  private readonly listener: net.Server;
  private readonly plain: http.Server;
  private readonly inner: http.Server;
  private readonly tunnels = new WeakMap<Socket, Tunnel>();
  /** Open client sockets per session id, so a revocation can close them. */
  private readonly bySession = new Map<string, Set<Socket>>();
  /** How many times each connection's request was parsed again without its upgrade offer. */
  private readonly downgrades = new WeakMap<Socket, number>();
  /** Upgraded (WebSocket) connections and the grant they were made under. */
  private readonly upgrades = new Map<Socket, { token: string; service: string }>();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  readonly pool: UpstreamPool;
  private readonly refresher: OAuthRefresher;
  private readonly limits: AccessLimits;
  private readonly secretsOf = (vault: VaultRecord) => this.deps.state.secrets(vault);

  constructor(deps: ProxyDeps) {
    this.deps = deps;
    this.pool = new UpstreamPool(deps.trust);
    this.refresher = new OAuthRefresher(deps.state.store, { net: { netguard: deps.options.netguard, trust: deps.trust } });
    this.limits = new AccessLimits(deps.state.store);
    this.engine = new Engine();
    const engine = this.engine as unknown as Record<string, unknown>;
    // The engine's error hook logs to the console and writes a 504 with the error text; ours stays
    // quiet and leaves answering to forward.ts.
    engine._onError = () => undefined;
    engine.connectRequests = {};
    engine.options = {};
    this.engine.onConnect((req, socket, head) => {
      this.handleConnect(req, socket as Socket, head).catch(() => socket.destroy());
    });
    this.engine.onRequest((ctx) => {
      this.handleRequest(ctx as unknown as EngineContext).catch(() => (ctx as unknown as EngineContext).proxyToClientResponse.destroy());
    });
    const dispatchConnect = (engine._onHttpServerConnect as (...a: unknown[]) => void).bind(this.engine);
    const dispatchRequest = (engine._onHttpServerRequest as (...a: unknown[]) => void).bind(this.engine);
    // The listener is a plain TCP server: a CONNECT is read here and handed to the engine with the
    // raw socket; anything else goes to an http.Server. (Under Bun, a TLS layer on the socket that
    // http.Server's "connect" event hands out never sees backpressure, so a slow agent made the
    // proxy buffer whole downloads.)
    this.listener = net.createServer((socket) => this.accept(socket, dispatchConnect));
    this.plain = http.createServer();
    this.plain.on("connect", (req, socket, head) => dispatchConnect(req, socket, head));
    this.plain.on("request", (req, res) => dispatchRequest(false, req, res));
    this.plain.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head, false));
    this.plain.on("clientError", (_error, socket: Socket) => socket.destroy());
    this.inner = http.createServer();
    this.inner.keepAliveTimeout = 120_000;
    this.inner.on("request", (req, res) => dispatchRequest(true, req, res));
    this.inner.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head, true));
    this.inner.on("connect", (req: IncomingMessage, socket: Socket) => this.refuseInnerConnect(req, socket));
    this.inner.on("clientError", (_error, socket: Socket) => socket.destroy());
  }

  /** A connection accepted elsewhere (the sandbox's Unix socket), handled as if it came to the listener. */
  adopt(socket: Socket): void {
    this.listener.emit("connection", socket);
  }

  async listen(host: string, port: number): Promise<RunningProxy> {
    await new Promise<void>((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, host, () => resolve());
    });
    this.sweeper = setInterval(() => this.closeRevokedTunnels(), 500);
    this.sweeper.unref();
    const address = this.listener.address() as net.AddressInfo;
    return { port: address.port, close: () => this.close() };
  }

  private async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.deps.log.flush();
    await this.limits.close();
    for (const sockets of this.bySession.values()) for (const s of sockets) s.destroy();
    this.pool.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  /** Reads the first request head: CONNECT goes to the engine, anything else to the HTTP server. */
  private accept(socket: Socket, dispatchConnect: (...args: unknown[]) => void): void {
    socket.on("error", () => socket.destroy());
    let buffer = Buffer.alloc(0);
    const onData = (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      if (buffer.length < 8 && "CONNECT ".startsWith(buffer.toString("latin1"))) return;
      if (!buffer.subarray(0, 8).equals(Buffer.from("CONNECT "))) {
        socket.off("data", onData);
        socket.pause();
        socket.unshift(buffer);
        this.plain.emit("connection", socket);
        socket.resume();
        return;
      }
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) {
        if (buffer.length > 16 * 1024) socket.end("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n");
        return;
      }
      socket.off("data", onData);
      socket.pause();
      const lines = buffer.subarray(0, end).toString("latin1").split("\r\n");
      const [method, url = ""] = lines[0]!.split(" ");
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      // Left paused: the tunnel (pipe or TLS) resumes it once it is listening.
      dispatchConnect({ method, url, headers, httpVersion: "1.1" }, socket, buffer.subarray(end + 4));
    };
    socket.on("data", onData);
  }

  private context(): StepContext {
    return { snapshot: this.deps.state.current(), store: this.deps.state.store, options: this.deps.options, now: Date.now(), oauth: this.refresher, limits: this.limits, secrets: this.secretsOf, tails: this.deps.state.tails };
  }

  private track(sessionId: string, socket: Socket): void {
    let set = this.bySession.get(sessionId);
    if (!set) this.bySession.set(sessionId, (set = new Set()));
    // Called for every request of a keep-alive tunnel: register the socket (and its listener) once.
    if (set.has(socket)) return;
    set.add(socket);
    socket.once("close", () => {
      set.delete(socket);
      if (set.size === 0) this.bySession.delete(sessionId);
    });
  }

  /** A revoked or expired session loses its open tunnels, not only its next CONNECT. */
  private closeRevokedTunnels(): void {
    if (this.bySession.size === 0 && this.upgrades.size === 0) return;
    let snapshot;
    try {
      snapshot = this.deps.state.current();
    } catch {
      return;
    }
    const now = Date.now();
    for (const [id, sockets] of this.bySession) if (!isPrincipalLive(snapshot.body, id, now)) for (const s of sockets) s.destroy();
    // A WebSocket whose grant expired or was revoked closes too, not only its next request.
    for (const [socket, { token, service }] of this.upgrades) {
      const principal = resolvePrincipal(snapshot.tokens, token, now);
      if ("error" in principal || (principal.services !== null && !principal.services.has(service))) socket.destroy();
    }
  }

  private log(flow: Flow, status: number, error: string | null): void {
    this.deps.log.write({
      time: new Date().toISOString(),
      session: flow.principal?.id ?? null,
      agent: flow.principal?.agent?.name ?? null,
      ...(flow.blocked ? { blocked: flow.blocked } : {}),
      vault: flow.vault?.name ?? null,
      method: flow.method,
      host: flow.host,
      path: flow.path,
      service: flow.service?.name ?? null,
      status,
      latency_ms: Math.round((performance.now() - flow.startedAt) * 100) / 100,
      error,
      via: flow.via,
    });
  }

  private async handleConnect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const target = parseConnectTarget(req.url);
    const flow = makeFlow({
      via: "tunnel",
      host: target?.host ?? "-",
      port: target?.port ?? 0,
      method: "CONNECT",
      path: "",
      headers: {},
      credential: tokenFromAuthorization(req.headers["proxy-authorization"]),
    });
    const refuse = (a: EarlyAnswer) => {
      socket.end(rawAnswer(a));
      this.log(flow, a.status, a.code);
    };
    if (!target) return refuse({ status: 400, code: "invalid_request", message: `CONNECT target "${String(req.url).slice(0, 100)}" is not host:port` });
    const ctx = this.context();
    authenticate(flow, ctx);
    if (flow.answer) return refuse(flow.answer);
    const entry = ctx.snapshot.vaults.get(flow.vault!.id);
    const settings = flow.vault!.settings;
    // Under `guard`, unmatched hosts are intercepted too (nothing injected) so the guard sees them,
    // except hosts listed to stay tunnelled (certificate pinning).
    const guarded = settings.unmatched === "guard" && !settings.guard_bypass.some((h) => hostMatchesPattern(target.host, h));
    const intercept = entry?.matcher.coversHost(target.host, target.port) || settings.unmatched === "deny" || guarded;
    this.track(flow.principal!.id, socket);
    if (intercept) return this.intercept(socket, head, { ...target, credential: flow.credential });
    // Passthrough: a plain TCP tunnel, no interception; netguard still decides where it may go.
    let dial;
    try {
      dial = await resolveDial(target.host, target.port, this.deps.options.netguard);
    } catch (error) {
      if (isAgentVaultError(error)) return refuse({ status: error.httpStatus, code: error.code, message: error.message });
      throw error;
    }
    const upstream = net.connect({ host: dial.address, port: dial.port });
    upstream.once("connect", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      this.log(flow, 200, null);
    });
    let connected = false;
    upstream.once("connect", () => (connected = true));
    upstream.once("error", (error: NodeJS.ErrnoException) => {
      if (!connected) refuse(describeUpstreamError(error, target.host));
      else socket.destroy();
    });
    socket.once("close", () => upstream.destroy());
    upstream.once("close", () => socket.destroy());
  }

  /** Terminates the agent's TLS on the accepted socket with a leaf for its SNI name. */
  private intercept(socket: Socket, head: Buffer, tunnel: Tunnel): void {
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    const leaves = this.deps.leaves;
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: leaves.contextFor(tunnel.host),
      SNICallback: (name, callback) => {
        try {
          callback(null, leaves.contextFor(name || tunnel.host));
        } catch (error) {
          callback(error as Error);
        }
      },
      ALPNProtocols: ["http/1.1"],
    });
    secure.on("error", () => secure.destroy());
    this.tunnels.set(secure, tunnel);
    this.inner.emit("connection", secure);
    socket.resume();
  }

  private flowFor(req: IncomingMessage, isSSL: boolean, target: { host: string; port: number; path: string } | undefined): Flow | EarlyAnswer {
    const headers: Headers = { ...req.headers };
    if (isSSL) {
      const tunnel = this.tunnels.get(req.socket);
      if (!tunnel) return { status: 400, code: "invalid_request", message: "request outside a tunnel" };
      return makeFlow({ via: "tunnel", host: tunnel.host, port: tunnel.port, method: req.method ?? "GET", path: req.url ?? "/", headers, credential: tunnel.credential });
    }
    if (!target || !/^http:\/\//i.test(req.url ?? "") && !target.host) {
      return { status: 400, code: "invalid_request", message: "this is agent-vault's proxy port: send absolute-form requests (HTTP_PROXY) or CONNECT" };
    }
    const host = target.host.toLowerCase();
    if (net.isIP(host) === 0 && !isValidHostname(host)) return { status: 400, code: "invalid_request", message: `"${host.slice(0, 100)}" is not a valid host` };
    return makeFlow({
      via: "http",
      host,
      port: target.port,
      method: req.method ?? "GET",
      path: target.path || "/",
      headers,
      credential: tokenFromAuthorization(req.headers["proxy-authorization"]),
    });
  }

  private async handleRequest(ctx: EngineContext): Promise<void> {
    const req = ctx.clientToProxyRequest;
    const res = ctx.proxyToClientResponse;
    const target = ctx.proxyToServerRequestOptions;
    const isAbsolute = !ctx.isSSL && req.headers.host !== undefined && target !== undefined && (req as { url?: string }).url !== undefined;
    const made = this.flowFor(req, ctx.isSSL, isAbsolute ? { host: target!.host, port: target!.port, path: target!.path } : undefined);
    if (!("id" in made)) {
      sendAnswer(res, made);
      return;
    }
    const flow = made;
    await this.process(flow, req, res, ctx.isSSL ? "https" : "http");
  }

  /** Runs the pipeline and forwards: shared by tunnels, plain requests and the explicit proxy. */
  async process(flow: Flow, req: IncomingMessage, res: ServerResponse, scheme: "https" | "http"): Promise<void> {
    await runPipeline(flow, this.context()).catch((error: unknown) => {
      answer(flow, 502, "upstream_error", isAgentVaultError(error) ? error.message : "internal error while preparing the request");
    });
    if (flow.principal && flow.via !== "explicit") this.track(flow.principal.id, req.socket);
    if (flow.answer) {
      req.resume();
      sendAnswer(res, flow.answer);
      this.log(flow, flow.answer.status, flow.answer.code);
      return;
    }
    // Credentials never travel in clear: a plain http:// request to a service goes upstream over TLS.
    const upstreamScheme = scheme === "http" && flow.service && flow.service.auth.type !== "passthrough" ? "https" : scheme;
    const vault = flow.vault;
    const result = await forward(flow, req, res, {
      scheme: upstreamScheme,
      pool: this.pool,
      maxRequestBytes: this.deps.options.maxRequestBytes,
      maxResponseBytes: this.deps.options.maxResponseBytes,
      // An upstream 401 on an OAuth token: refresh it once and send the request again.
      onUnauthorized: flow.oauthUsed.length > 0 ? () => refreshAfterUnauthorized(flow, this.context(), injectCredential) : undefined,
      // Scrubbing is a vault setting; the MCP server's http_request asks for it whatever the setting.
      // Looked up when needed: after a 401 refresh the new tokens are in flow.vault.
      scrub: vault && (vault.settings.scrub || (flow.via === "explicit" && req.headers["x-agent-vault-scrub"] === "1")) ? () => this.deps.state.secrets(flow.vault ?? vault) : undefined,
      guard: vault?.settings.guard ? () => this.deps.state.secrets(flow.vault ?? vault) : undefined,
      tails: this.deps.state.tails,
      onBlocked: (hit) => {
        refuseExfiltration(flow, hit, "the body");
        return flow.answer!;
      },
    });
    this.log(flow, result.status, result.error);
  }

  /**
   * A request with an upgrade offer. A WebSocket handshake goes through the pipeline and, once the
   * upstream switched, every message is read and checked (ws-relay.ts). Any other offer (h2c, TLS,
   * a made-up protocol) is removed and the request is parsed again by the same server as plain
   * HTTP/1.1: it then takes the normal path (the guard on its body, injection, scrubbing).
   */
  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, isSSL: boolean): void {
    socket.on("error", () => socket.destroy());
    if (!isWebSocketOffer(req)) return this.downgrade(req, socket, head, isSSL);
    // Nothing the agent sends before the 101 is lost or relayed: it is held for the frame parser.
    socket.pause();
    let early = head;
    const hold = (bytes: Buffer) => {
      early = Buffer.concat([early, bytes]);
      if (early.length > MAX_EARLY_FRAME_BYTES) socket.destroy();
    };
    socket.on("data", hold);
    let target: { host: string; port: number; path: string } | undefined;
    if (!isSSL) {
      try {
        const url = new URL(req.url ?? "");
        target = { host: url.hostname, port: Number(url.port) || 80, path: `${url.pathname}${url.search}` };
      } catch {
        target = undefined;
      }
    }
    const made = this.flowFor(req, isSSL, target);
    if (!("id" in made)) {
      socket.end(rawAnswer(made));
      return;
    }
    const flow = made;
    const refuse = (a: EarlyAnswer) => {
      socket.end(rawAnswer(a));
      this.log(flow, a.status, a.code);
    };
    const problem = webSocketHandshakeProblem(req);
    if (problem) return refuse({ status: ERROR_TABLE.invalid_request.http, code: "invalid_request", message: problem });
    void (async () => {
      await runPipeline(flow, this.context()).catch(() => answer(flow, 502, "upstream_error", "internal error while preparing the upgrade"));
      if (flow.answer) return refuse(flow.answer);
      if (flow.principal) this.track(flow.principal.id, socket);
      // permessage-deflate is never offered: compressed frames could not be checked without
      // inflating them (a second bomb surface and a compressor state per side); an extension is
      // optional, so every server must work without one. An upstream that negotiates one anyway
      // is refused in switchProblem.
      delete flow.headers["sec-websocket-extensions"];
      // The sweep re-checks the grant of an open WebSocket, not only its handshake.
      if (flow.credential && flow.service) {
        this.upgrades.set(socket, { token: flow.credential, service: flow.service.name });
        socket.once("close", () => this.upgrades.delete(socket));
      }
      const dial = flow.dial!;
      const useTls = isSSL || Boolean(flow.service && flow.service.auth.type !== "passthrough");
      const upstream: Socket = useTls
        ? tls.connect({ host: dial.address, port: dial.port, ...(net.isIP(flow.host) === 0 ? { servername: flow.host } : {}), ca: [...this.deps.trust], checkServerIdentity: (_h, cert) => tls.checkServerIdentity(flow.host, cert) })
        : net.connect({ host: dial.address, port: dial.port });
      socket.once("close", () => upstream.destroy());
      const connected = await new Promise<EarlyAnswer | null>((resolve) => {
        upstream.once(useTls ? "secureConnect" : "connect", () => resolve(null));
        upstream.once("error", (error: NodeJS.ErrnoException) => resolve(describeUpstreamError(error, flow.host)));
      });
      upstream.on("error", () => upstream.destroy());
      if (connected) return refuse(connected);
      const lines = [`${flow.method} ${flow.path} HTTP/1.1`];
      const headers = { ...flow.headers, host: flow.headers.host ?? flow.host };
      for (const [name, value] of Object.entries(headers)) {
        for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) lines.push(`${name}: ${v}`);
      }
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      const vault = flow.vault!;
      const current = (): VaultRecord => {
        try {
          return this.deps.state.current().vaults.get(vault.id)?.vault ?? vault;
        } catch {
          return vault;
        }
      };
      const scrubbing = (): readonly Pattern[] => {
        const now = current();
        return now.settings.scrub ? this.deps.state.secrets(now) : [];
      };
      const failed = (message: string) => {
        upstream.destroy();
        refuse({ status: ERROR_TABLE.upstream_error.http, code: "upstream_error", message: `${flow.host}: ${message}` });
      };
      const reply = await readAnswerHead(upstream);
      if ("error" in reply) return failed(reply.error);
      if (reply.status !== 101) {
        // A refusal (401, 426 ...) is an HTTP answer like any other: the agent sees it scrubbed.
        const refusal = await readRefusal(upstream, reply, scrubbing());
        upstream.destroy();
        if ("error" in refusal) return failed(refusal.error);
        socket.end(refusal);
        return this.log(flow, reply.status, null);
      }
      const invalid = switchProblem(reply, String(req.headers["sec-websocket-key"] ?? ""));
      if (invalid) return failed(`refused its answer to the WebSocket handshake: ${invalid}`);
      if (socket.destroyed) return upstream.destroy();
      socket.write(switchHead(reply, scrubbing()));
      this.log(flow, 101, null);
      socket.off("data", hold);
      relayWebSocket({
        agent: socket,
        upstream,
        agentHead: early,
        upstreamHead: reply.rest,
        policy: websocketPolicy({
          guard: () => {
            const now = current();
            return now.settings.guard ? this.deps.state.secrets(now) : [];
          },
          scrub: scrubbing,
        }),
        onBlocked: (hit) => {
          refuseExfiltration(flow, hit, "a WebSocket message");
          this.log(flow, flow.answer!.status, flow.answer!.code);
        },
      });
    })().catch(() => socket.destroy());
  }

  /** Parses the request again without its upgrade offer (see handleUpgrade). */
  private downgrade(req: IncomingMessage, socket: Socket, head: Buffer, isSSL: boolean): void {
    const bytes = withoutUpgradeOffer(req);
    // A connection that keeps offering upgrades is re-read each time; a runaway one is cut.
    const count = (this.downgrades.get(socket) ?? 0) + 1;
    this.downgrades.set(socket, count);
    if (!bytes || count > MAX_DOWNGRADES_PER_CONNECTION) {
      socket.end(rawAnswer({ status: ERROR_TABLE.not_supported.http, code: "not_supported", message: `an upgrade to ${JSON.stringify(String(req.headers.upgrade ?? "").slice(0, 40))} cannot be inspected, so it was not made` }));
      return;
    }
    socket.pause();
    socket.unshift(Buffer.concat([bytes, head]));
    (isSSL ? this.inner : this.plain).emit("connection", socket);
    socket.resume();
  }

  /** CONNECT inside an intercepted tunnel would be a second tunnel the proxy cannot read: refused. */
  private refuseInnerConnect(req: IncomingMessage, socket: Socket): void {
    socket.on("error", () => socket.destroy());
    const tunnel = this.tunnels.get(socket);
    const flow = makeFlow({ via: "tunnel", host: tunnel?.host ?? "-", port: tunnel?.port ?? 0, method: "CONNECT", path: String(req.url ?? "").slice(0, 200), headers: {}, credential: tunnel?.credential });
    const refusal: EarlyAnswer = { status: ERROR_TABLE.not_supported.http, code: "not_supported", message: "CONNECT inside a tunnel is not supported: the inner tunnel could not be inspected" };
    socket.end(rawAnswer(refusal));
    this.log(flow, refusal.status, refusal.code);
  }
}
