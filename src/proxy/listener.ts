// The proxy port. Every accepted connection (and every one `run` adopts from the sandbox) is read
// as HTTP/1.1 by src/net/inbound.ts: a CONNECT opens a tunnel, an absolute-form request is a plain
// http:// request, and inside an intercepted tunnel each request is read the same way. For each,
// the steps of pipeline.ts decide; this file only routes bytes to the tunnel, the exchange or the
// WebSocket relay, and writes the request log.
//
// http-mitm-proxy, which the design card names, is not used here. Its public API hands out sockets
// from node:http's "connect" event, where under Bun a TLS layer never saw backpressure (a slow
// agent made the proxy buffer whole downloads), it mints an RSA leaf per host with node-forge
// (250-520 ms per new host) behind a second loopback hop, and it writes its errors to stdout, into
// the agent's own output. Reading HTTP/1.1 ourselves is also what lets the guard see exactly the
// bytes the upstream will get, with one strict parser on both legs.
import net, { type Socket } from "node:net";
import { type InboundRequest, type InboundResponse, InboundConnection } from "../net/inbound.ts";
import { type Answer, rawAnswer, sendAnswer, statusOf } from "../shared/answers.ts";
import { type RequestLog } from "../shared/log.ts";
import { isValidHostname } from "../vault/host.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { OAuthRefresher } from "../oauth/refresh.ts";
import { type LeafCertificates } from "./certs.ts";
import { describeUpstreamError, forward } from "./exchange.ts";
import { answer, early, type Flow, makeFlow, reachedBy } from "./flow.ts";
import { AccessLimits } from "./limits.ts";
import { ON_CONNECT, ON_REQUEST, ON_SWEEP, onUnauthorized, runPipeline } from "./pipeline.ts";
import { type ProxyOptions, type StepContext } from "./step-context.ts";
import { type ProxyState } from "./state.ts";
import { tokenFromAuthorization } from "./steps/authenticate.ts";
import { refuseExfiltration } from "./steps/guard.ts";
import { guardScan } from "./secrets.ts";
import { type OpenConnection } from "./steps/sweep.ts";
import { takeLimits } from "./steps/policy.ts";
import { limitConnections } from "./steps/connections.ts";
import { resolvePrincipal } from "../vault/principals.ts";
import { intercept, passthrough } from "./tunnels.ts";
import { isWebSocketOffer, webSocketHandshakeProblem } from "./upgrade.ts";
import { UpstreamPool } from "../net/pool.ts";
import { resolveDial } from "../net/netguard.ts";
import { IdleConnections } from "../net/idle.ts";
import { openWebSocket } from "./ws-upgrade.ts";

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
const SWEEP_INTERVAL_MS = 500;

/** An intercepted tunnel: where its requests go and the token its CONNECT carried. */
interface Tunnel {
  readonly host: string;
  readonly port: number;
  readonly credential: string | undefined;
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

/** Host, port and path of a plain request: absolute-form, or origin-form with its Host header. */
function plainTarget(req: InboundRequest): { host: string; port: number; path: string } | null {
  let url: URL;
  try {
    url = /^[a-z][a-z0-9+.-]*:\/\//i.test(req.url) ? new URL(req.url) : new URL(req.url, `http://${String(req.headers.host ?? "")}`);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" || url.hostname === "") return null;
  return { host: url.hostname.replace(/^\[|\]$/g, "").toLowerCase(), port: Number(url.port) || 80, path: `${url.pathname}${url.search}` };
}

/**
 * The path of a request inside a tunnel. An absolute-form target (`GET https://host/x`) is one a
 * server must route by (RFC 9112 3.2.2: it ignores Host), so it is never passed on: one naming the
 * tunnel's own host becomes its origin-form path, judged by the policy as such, and one naming any
 * other authority is refused (a front end routing by it would hand the credential to another app).
 */
export function tunnelPath(target: string, tunnel: { host: string; port: number }): string | Answer {
  if (target.startsWith("/") || target === "*") return target;
  const refused: Answer = { code: "invalid_request", message: `inside a tunnel to ${tunnel.host}, a request target must be /path or name ${tunnel.host} itself` };
  const match = /^https?:\/\/([^/?#]*)(.*)$/is.exec(target);
  if (!match) return refused;
  const authority = /^(\[[0-9a-fA-F:.]+\]|[^:@]+)(?::([0-9]{1,5}))?$/.exec(match[1]!);
  if (!authority) return refused;
  const host = authority[1]!.replace(/^\[|\]$/g, "").toLowerCase();
  if (host !== tunnel.host || (authority[2] !== undefined && Number(authority[2]) !== tunnel.port)) return refused;
  const rest = match[2]!;
  return rest.startsWith("/") ? rest : `/${rest}`;
}

/** What decided a refusal, for the audit: the guard's credential key or the policy rule, never a value. */
function ruleOf(flow: Flow): { rule?: string } {
  if (flow.blocked) return { rule: flow.blocked };
  const rule = flow.answer?.extra?.rule;
  return typeof rule === "string" ? { rule: rule.slice(0, 256) } : {};
}

export class ProxyListener {
  private readonly deps: ProxyDeps;
  private readonly listener: net.Server;
  /** Open tunnels and WebSockets, with what the sweep checks them against. */
  private readonly open = new Map<Socket, OpenConnection>();
  /** How many entries of `open` each principal has. */
  private readonly openCount = new Map<string, number>();
  /** Connections waiting for a request head: capped, and closed when they wait too long. */
  private readonly idle = new IdleConnections();
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
    this.listener = net.createServer((socket) => this.accept(socket, null));
  }

  /** A connection accepted elsewhere (the sandbox's Unix socket), handled as if it came to the listener. */
  adopt(socket: Socket): void {
    this.accept(socket, null);
  }

  async listen(host: string, port: number): Promise<RunningProxy> {
    await new Promise<void>((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, host, () => resolve());
    });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();

    const address = this.listener.address() as net.AddressInfo;
    return { port: address.port, close: () => this.close() };
  }

  private async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.idle.stop();
    this.deps.log.flush();
    await this.deps.state.store.audit.flush({ anchor: true });
    await this.limits.close();
    for (const socket of this.open.keys()) socket.destroy();
    this.pool.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private accept(socket: Socket, tunnel: Tunnel | null): void {
    socket.setNoDelay?.(true);
    const conn: InboundConnection = new InboundConnection(socket, {
      request: (req, res) => {
        this.idle.asked(socket);
        this.dispatch(conn, req, res, tunnel).catch(() => socket.destroy());
      },
    });
    this.idle.add(conn, tunnel === null);
  }

  private context(): StepContext {
    return {
      snapshot: this.deps.state.current(),
      store: this.deps.state.store,
      options: this.deps.options,
      now: Date.now(),
      oauth: this.refresher,
      sources: this.deps.state.sources,
      limits: this.limits,
      secrets: this.secretsOf,
      tails: this.deps.state.tails,
      openConnections: (principal) => this.openCount.get(principal) ?? 0,
    };
  }

  /** Registers an open tunnel or WebSocket for the sweep, once. */
  private track(socket: Socket, open: OpenConnection): void {
    if (this.open.has(socket)) return;
    this.open.set(socket, open);
    this.openCount.set(open.principal, (this.openCount.get(open.principal) ?? 0) + 1);
    socket.once("close", () => this.untrack(socket));
  }

  private untrack(socket: Socket): void {
    const open = this.open.get(socket);
    if (!open) return;
    this.open.delete(socket);
    const left = (this.openCount.get(open.principal) ?? 1) - 1;
    if (left > 0) this.openCount.set(open.principal, left);
    else this.openCount.delete(open.principal);
  }

  private sweep(): void {
    if (this.open.size === 0) return;
    let snapshot;
    try {
      snapshot = this.deps.state.current();
    } catch {
      return;
    }
    const now = Date.now();
    for (const [socket, open] of this.open) if (!ON_SWEEP(open, snapshot, now)) socket.destroy();
  }

  /** One line per request; `reason` says in words why it failed (never a value: keys and hosts only). */
  private log(flow: Flow, status: number, error: string | null, reason?: string): void {
    const { method, host, path } = this.loggable(flow);
    this.deps.log.write({
      time: new Date().toISOString(),
      session: flow.principal?.id ?? null,
      agent: flow.principal?.agent?.name ?? null,
      ...(flow.blocked ? { blocked: flow.blocked } : {}),
      vault: flow.vault?.name ?? null,
      method,
      host,
      path,
      service: flow.service?.name ?? null,
      status,
      latency_ms: Math.round((performance.now() - flow.startedAt) * 100) / 100,
      error,
      ...(reason ? { reason } : {}),
      via: flow.via,
    });
    // The audit trail (src/vault/audit.ts) keeps the decision: which code or rule, never a value.
    this.deps.state.store.audit.record({
      kind: error === null ? "request_allowed" : "request_blocked",
      vault: flow.vault?.name ?? null,
      session: flow.principal?.id ?? null,
      agent: flow.principal?.agent?.name ?? null,
      method,
      host,
      path: path.split("?")[0]!,
      service: flow.service?.name ?? null,
      status,
      code: error,
      ...ruleOf(flow),
      ...(reason ? { reason: reason.slice(0, 300) } : {}),
    });
  }

  /**
   * Method, host and path for the log and the audit. A request the guard refused for a value in
   * one of them (the agent wrote it there) has that field withheld: a value never reaches a log.
   */
  private loggable(flow: Flow): { method: string; host: string; path: string } {
    if (!flow.blocked || !flow.vault) return { method: flow.method, host: flow.host, path: flow.path };
    const patterns = this.secretsOf(flow.vault);
    const holds = (text: string) => guardScan(text, patterns).hit !== null;
    const mark = `[withheld: carries ${flow.blocked}]`;
    return {
      method: holds(flow.method) ? mark : flow.method,
      host: holds(flow.host) ? mark : flow.host,
      // The query never reaches a log (shared/log.ts): only the path before it is judged.
      path: holds(flow.path.split("?")[0]!) ? mark : flow.path,
    };
  }

  private async dispatch(conn: InboundConnection, req: InboundRequest, res: InboundResponse, tunnel: Tunnel | null): Promise<void> {
    if (req.method === "CONNECT") return tunnel ? this.refuseInnerConnect(conn, req, res, tunnel) : this.connect(conn, req);
    const made = this.flowFor(req, tunnel);
    if (!("id" in made)) {
      req.resume();
      return sendAnswer(res, made, "proxy");
    }
    if (isWebSocketOffer(req)) return this.webSocket(conn, req, made);
    await this.process(made, req, res);
  }

  private flowFor(req: InboundRequest, tunnel: Tunnel | null): Flow | Answer {
    const headers = { ...req.headers };
    if (tunnel) {
      const path = tunnelPath(req.url, tunnel);
      if (typeof path !== "string") return path;
      return makeFlow({ via: "tunnel", host: tunnel.host, port: tunnel.port, method: req.method, path, headers, credential: tunnel.credential });
    }
    const target = plainTarget(req);
    if (!target) return { code: "invalid_request", message: "this is agent-vault's proxy port: send absolute-form http:// requests (HTTP_PROXY) or CONNECT" };
    if (net.isIP(target.host) === 0 && !isValidHostname(target.host)) return { code: "invalid_request", message: "the request's host is not a valid DNS name or IP literal" };
    return makeFlow({ via: "http", ...target, method: req.method, headers, credential: tokenFromAuthorization(req.headers["proxy-authorization"] as string | undefined) });
  }

  /** A CONNECT: the steps decide, then the socket becomes an intercepted or a passthrough tunnel. */
  private async connect(conn: InboundConnection, req: InboundRequest): Promise<void> {
    const socket = conn.socket;
    const rest = conn.detach();
    const target = parseConnectTarget(req.url);
    const flow = makeFlow({
      via: "tunnel",
      host: target?.host ?? "-",
      port: target?.port ?? 0,
      method: "CONNECT",
      path: "",
      headers: {},
      credential: tokenFromAuthorization(req.headers["proxy-authorization"] as string | undefined),
    });
    const refuse = (a: Answer) => {
      socket.end(rawAnswer(a, "proxy"));
      this.log(flow, statusOf(a.code, "proxy"), a.code, a.message);
    };
    if (!target) return refuse({ code: "invalid_request", message: "the CONNECT target is not host:port (a DNS name or an IP literal, and a port)" });
    await runPipeline(flow, this.context(), ON_CONNECT).catch(() => answer(flow, "internal", "internal error while opening the tunnel"));
    if (flow.answer) return refuse(flow.answer);
    this.track(socket, { principal: flow.principal!.id });
    const tunnel: Tunnel = { ...target, credential: flow.credential };
    if (flow.route === "intercept") {
      if (flow.warmUpstream) this.warmUpstream(target);
      return this.accept(intercept(socket, rest, target.host, this.deps.leaves), tunnel);
    }
    passthrough(socket, rest, flow.dial!, {
      connected: () => this.log(flow, 200, null),
      failed: (error) => refuse(describeUpstreamError(error, target.host)),
    });
  }

  /**
   * Opens the upstream connection while the agent's TLS handshake with us runs (steps/route.ts
   * decides which tunnels): dialled where netguard allows, as every request's connection is. The
   * first request takes it from the pool; a refused one leaves it idle until the pool closes it.
   */
  private warmUpstream(target: { host: string; port: number }): void {
    resolveDial(target.host, target.port, this.deps.options.netguard).then(
      (dial) => this.pool.warm({ scheme: "https", host: target.host, dial }),
      () => undefined,
    );
  }

  /** Runs the request steps and the exchange: for tunnels, plain requests and the explicit /proxy/ route. */
  async process(flow: Flow, req: InboundRequest, res: InboundResponse): Promise<void> {
    const ctx = this.context();
    await runPipeline(flow, ctx, ON_REQUEST).catch(() => answer(flow, "internal", "internal error while preparing the request"));
    // The explicit /proxy/ route's sockets too: a request whose head came before a revocation must
    // not send its body after it (red team, session 7: a chunked body finished 90 s after `agent
    // revoke` went out with the credential). The sweep closes them as it closes tunnels. Such a
    // socket counts toward the principal's open connections, and one past the limit is refused as
    // a CONNECT would be (a tunnel's own socket was counted at its CONNECT).
    if (flow.principal && flow.via !== "tunnel" && !this.open.has(req.socket)) {
      // Past the limit the answer is 429 whatever the steps said; under it, theirs stands.
      const answered = flow.answer;
      limitConnections(flow, ctx);
      if (flow.answer === answered) this.track(req.socket, { principal: flow.principal.id });
    } else if (flow.principal) {
      this.track(req.socket, { principal: flow.principal.id });
    }
    if (flow.answer) {
      req.resume();
      sendAnswer(res, flow.answer, reachedBy(flow));
      this.log(flow, flow.answer.status, flow.answer.code, flow.answer.message);
      return;
    }
    const result = await forward(flow, req, res, {
      scheme: flow.scheme ?? "https",
      pool: this.pool,
      maxRequestBytes: this.deps.options.maxRequestBytes,
      maxResponseBytes: this.deps.options.maxResponseBytes,
      onUnauthorized: onUnauthorized(flow, ctx),
      scrub: flow.scrubBody,
      guard: flow.guardBody,
      tails: this.deps.state.tails,
      onBlocked: (hit) => {
        refuseExfiltration(flow, hit, "the body");
        return flow.answer!;
      },
    });
    this.log(flow, result.status, result.error, result.reason ?? flow.note);
  }

  /** A WebSocket handshake: the request steps decide, then the socket leaves HTTP for the relay. */
  private webSocket(conn: InboundConnection, req: InboundRequest, flow: Flow): void {
    const socket = conn.socket;
    // Nothing the agent sends before the 101 is lost or relayed: it is held for the frame parser.
    let held = conn.detach();
    const hold = (bytes: Buffer) => {
      held = Buffer.concat([held, bytes]);
      if (held.length > MAX_EARLY_FRAME_BYTES) socket.destroy();
    };
    socket.on("data", hold);
    socket.on("error", () => socket.destroy());
    const refuse = (a: Answer) => {
      socket.end(rawAnswer(a, reachedBy(flow)));
      this.log(flow, statusOf(a.code, reachedBy(flow)), a.code, a.message);
    };
    const problem = webSocketHandshakeProblem(req);
    if (problem) return refuse({ code: "invalid_request", message: problem });
    void (async () => {
      await runPipeline(flow, this.context(), ON_REQUEST).catch(() => answer(flow, "internal", "internal error while preparing the upgrade"));
      if (flow.answer) return refuse(flow.answer);
      // The sweep re-checks the grant of an open WebSocket, not only its handshake.
      if (flow.principal) this.untrack(socket);
      if (flow.principal)
        this.track(socket, {
          principal: flow.principal.id,
          ...(flow.credential && flow.service ? { grant: { token: flow.credential, service: flow.service.name, host: flow.host, path: flow.path } } : {}),
        });
      const vault = flow.vault!;
      await openWebSocket(
        flow,
        socket,
        String(req.headers["sec-websocket-key"] ?? ""),
        () => {
          socket.off("data", hold);
          return held;
        },
        {
          tlsContext: this.pool.tlsContext,
          current: () => {
            try {
              return this.deps.state.current().vaults.get(vault.id)?.vault ?? vault;
            } catch {
              return vault;
            }
          },
          secrets: this.secretsOf,
          refuse,
          logged: (status) => this.log(flow, status, null),
          blocked: (hit) => {
            refuseExfiltration(flow, hit, "a WebSocket message");
            this.log(flow, flow.answer!.status, flow.answer!.code, flow.answer!.message);
          },
          admit: () => this.admitMessage(flow),
        },
      );
    })().catch(() => socket.destroy());
  }

  /**
   * A WebSocket message from the agent, taken from its policies' rate limits and usage caps as they
   * stand now (a cap's count moves on as the socket stays open); a refusal closes the socket, and
   * is logged and audited like a refused request.
   */
  private admitMessage(flow: Flow): string | null {
    if (!flow.credential || !flow.principal) return null;
    const now = Date.now();
    let holders = flow.principal.policies;
    try {
      const principal = resolvePrincipal(this.deps.state.current().tokens, flow.credential, now);
      // Gone since the handshake: the sweep closes the socket within half a second; until then
      // nothing more is let through.
      if ("error" in principal) return `policy: ${principal.error}`;
      holders = principal.policies;
    } catch {
      // the vault cannot be read right now: the limits as they were at the handshake
    }
    if (holders.length === 0) return null;
    const limited = takeLimits(holders, this.limits, now);
    if (!("refused" in limited)) return null;
    const { code, message, rule } = limited.refused;
    const refused = makeFlow({ via: flow.via, host: flow.host, port: flow.port, method: flow.method, path: flow.path, headers: {}, credential: flow.credential });
    Object.assign(refused, { principal: flow.principal, vault: flow.vault, service: flow.service });
    answer(refused, code, `a WebSocket message: ${message}`, { rule });
    this.log(refused, refused.answer!.status, code, refused.answer!.message);
    return `${code}: ${message}`;
  }

  /** CONNECT inside an intercepted tunnel would be a second tunnel the proxy cannot read: refused. */
  private refuseInnerConnect(conn: InboundConnection, req: InboundRequest, res: InboundResponse, tunnel: Tunnel): void {
    const flow = makeFlow({ via: "tunnel", host: tunnel.host, port: tunnel.port, method: "CONNECT", path: req.url.slice(0, 200), headers: {}, credential: tunnel.credential });
    const refusal = early(flow, { code: "not_supported", message: "CONNECT inside a tunnel is not supported: the inner tunnel could not be inspected" });
    // Whatever follows on this connection would be the inner tunnel's bytes: it ends here.
    conn.closeAfterResponse = true;
    req.resume();
    sendAnswer(res, refusal, "proxy");
    this.log(flow, refusal.status, refusal.code, refusal.message);
  }
}
