// The agent-facing HTTP API on AGENT_VAULT_ADDR: /health, /discover and the explicit proxy
// /proxy/{host}/{path}. Every route but /health needs the session's Bearer token; errors are the
// contract's JSON with X-Agent-Vault-Error, produced in one place (sendAnswer).
import { IdleConnections } from "../net/idle.ts";
import net, { type AddressInfo, type Socket } from "node:net";
import { InboundConnection, type InboundRequest, type InboundResponse } from "../net/inbound.ts";
import { answerFrom, problem, sendAnswer } from "../shared/answers.ts";
import { type ProxyListener } from "../proxy/listener.ts";
import { makeFlow } from "../proxy/flow.ts";
import { type ProxyState } from "../proxy/state.ts";
import { tokenFromAuthorization } from "../proxy/steps/authenticate.ts";
import { type Principal, resolvePrincipal } from "../vault/principals.ts";
import { AgentVaultError, isAgentVaultError } from "../shared/errors.ts";
import { approvalHint, fileProposal, parseProposalInput, proposalsFiledBy, proposalView } from "../vault/proposals.ts";
import { credentialMetadata, discover } from "./discover.ts";
import { answerProof, PROOF_PATH, type ProofSource } from "./proof.ts";

export interface ApiDeps {
  readonly state: ProxyState;
  readonly proxy: ProxyListener;
  /** Answers GET /v1/server-proof (src/api/proof.ts). */
  readonly proof?: ProofSource;
}

const MAX_PROPOSAL_BYTES = 256 * 1024;

/** A JSON body, capped: 413 past the cap, 400 when it is not JSON. */
async function readJsonBody(req: InboundRequest, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) return reject(new AgentVaultError("request_too_large", `the body is larger than ${max / 1024} KiB`));
      chunks.push(chunk);
    });
    req.on("end", () => resolve());
    req.on("close", () => reject(new AgentVaultError("client_gone", "the agent closed the connection")));
    req.resume();
  });
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new AgentVaultError("invalid_request", "the body is not valid JSON", { details: { field: "(body)" } });
  }
}

function sendJson(res: InboundResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function principalOf(req: InboundRequest, state: ProxyState): Principal | { error: string } {
  const header = req.headers.authorization;
  const token = header && /^bearer\s/i.test(header) ? tokenFromAuthorization(header) : undefined;
  if (!token) return { error: "no token (Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN, or an agent token)" };
  return resolvePrincipal(state.current().tokens, token);
}

/** `/proxy/{host[:port]}/{path...}` → host, port and path with query. */
export function parseExplicitTarget(url: string): { host: string; port: number; path: string } | null {
  const match = /^\/proxy\/([^/?#]+)(\/[^#]*)?$/.exec(url) ?? /^\/proxy\/([^/?#]+)(\?[^#]*)$/.exec(url);
  if (!match) return null;
  let authority: string;
  try {
    authority = decodeURIComponent(match[1]!).toLowerCase();
  } catch {
    // A stray `%` (`/proxy/%zz/x`) is a bad request, not an internal error.
    return null;
  }
  const colon = authority.lastIndexOf(":");
  const host = colon === -1 ? authority : authority.slice(0, colon);
  const port = colon === -1 ? 443 : Number(authority.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !/^[a-z0-9.-]+$/.test(host)) return null;
  const rest = match[2] ?? "/";
  return { host, port, path: rest.startsWith("?") ? `/${rest}` : rest };
}

export interface ApiServer {
  /** A connection accepted elsewhere (the sandbox's Unix socket), served like one to the port. */
  adopt(socket: Socket): void;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** The API on its port, read with the same HTTP/1.1 codec as the proxy (src/net/inbound.ts). */
export function createApiServer(deps: ApiDeps): ApiServer {
  const sockets = new Set<Socket>();
  // The agent can open connections here without a token, like on the proxy port (src/net/idle.ts).
  const idle = new IdleConnections();
  const serve = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const conn = new InboundConnection(socket, {
      request: (req, res) => {
        idle.asked(socket);
        handle(req, res, deps).catch((error: unknown) => sendAnswer(res, answerFrom(error)));
      },
    });
    idle.add(conn, true);
  };
  const server = net.createServer(serve);
  return {
    adopt: serve,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () =>
      new Promise((resolve) => {
        idle.stop();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function handle(req: InboundRequest, res: InboundResponse, deps: ApiDeps): Promise<void> {
  const url = req.url ?? "/";
  const path = url.split("?")[0]!;
  if (path === "/health") return sendJson(res, 200, { status: "ok" });
  if (path === PROOF_PATH && req.method === "GET") {
    if (!answerProof(req, res, deps.proof)) sendAnswer(res, problem("invalid_request", "nonce must be 64 hex digits"));
    return;
  }
  if (path.startsWith("/proxy/")) {
    const target = parseExplicitTarget(url);
    if (!target) {
      req.resume();
      return sendAnswer(res, problem("invalid_request", "use /proxy/{host}/{path}, e.g. /proxy/api.github.com/user"));
    }
    const flow = makeFlow({
      via: "explicit",
      host: target.host,
      port: target.port,
      method: req.method ?? "GET",
      path: target.path,
      headers: { ...req.headers, host: target.port === 443 ? target.host : `${target.host}:${target.port}` },
      credential: tokenFromAuthorization(req.headers.authorization),
    });
    return deps.proxy.process(flow, req, res);
  }
  const principal = principalOf(req, deps.state);
  if ("error" in principal) {
    req.resume();
    return sendAnswer(res, problem("unauthorized", principal.error));
  }
  const vault = deps.state.current().vaults.get(principal.vault.id)?.vault ?? principal.vault;
  if (path === "/discover" && req.method === "GET") return sendJson(res, 200, discover(vault, principal.services));
  if (path === "/v1/credentials" && req.method === "GET") {
    req.resume();
    const query = new URL(url, "http://agent-vault").searchParams;
    return sendJson(res, 200, { credentials: credentialMetadata(vault, principal.services, { service: query.get("service"), type: query.get("type") }) });
  }
  if (path === "/v1/proposals" && req.method === "POST") {
    let input;
    try {
      input = parseProposalInput(await readJsonBody(req, MAX_PROPOSAL_BYTES));
      const proposal = await fileProposal(deps.state.store, vault.name, input, principal.id);
      return sendJson(res, 201, { id: proposal.id, status: "pending", message: approvalHint(proposal.id) });
    } catch (error) {
      if (isAgentVaultError(error)) return sendAnswer(res, answerFrom(error));
      throw error;
    }
  }
  if (path === "/v1/proposals" && req.method === "GET") {
    req.resume();
    return sendJson(res, 200, { proposals: proposalsFiledBy(vault, principal).map((p) => proposalView(p)) });
  }
  const one = /^\/v1\/proposals\/(\d{1,9})$/.exec(path);
  if (one && req.method === "GET") {
    req.resume();
    // Another caller's proposal answers exactly like an unknown id: its existence is not revealed.
    const proposal = proposalsFiledBy(vault, principal).find((p) => p.id === Number(one[1]));
    if (!proposal) return sendAnswer(res, problem("proposal_not_found", `no proposal #${one[1]} in vault "${vault.name}"`));
    return sendJson(res, 200, proposalView(proposal));
  }
  req.resume();
  sendAnswer(res, problem("not_found", `no route ${req.method} ${path}`));
}
