// `agent-vault mcp`: the vault as a Model Context Protocol server over stdio (the official
// TypeScript SDK). It is a client of the agent API, authenticated by the token in its environment
// (a session's, from `run`, or an agent's), so it can do exactly what that token can: list the
// services it may use and the credentials they send (metadata), file a proposal, read a proposal's
// status, and make an HTTP request through the vault, whose response comes back with every
// credential value scrubbed. No tool returns a credential value.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import pkg from "../../package.json" with { type: "json" };

const DEFAULT_ADDR = "http://127.0.0.1:14321";
const MAX_BODY_CHARS = 256 * 1024;

/**
 * How long http_request waits for the vault's answer before it reports the request as pending: a
 * request an `approve` rule holds waits for a person (up to the rule's timeout, 120 s by default),
 * longer than many MCP clients wait for a tool.
 */
const DEFAULT_PENDING_AFTER_MS = 15_000;
/** An answer that came after its call reported pending is kept this long for the same call again. */
const KEEP_ANSWER_MS = 600_000;

export interface McpEnvironment {
  readonly addr: string;
  readonly token: string | undefined;
  /** AGENT_VAULT_MCP_PENDING_MS: http_request's wait before "pending" (tests shorten it). */
  readonly pendingAfterMs?: number;
}

export function mcpEnvironment(env: NodeJS.ProcessEnv = process.env): McpEnvironment {
  return {
    addr: (env.AGENT_VAULT_ADDR || DEFAULT_ADDR).replace(/\/+$/, ""),
    token: env.AGENT_VAULT_SESSION_TOKEN || env.AGENT_VAULT_AGENT_TOKEN || undefined,
    pendingAfterMs: /^[0-9]{1,7}$/.test(env.AGENT_VAULT_MCP_PENDING_MS ?? "") ? Number(env.AGENT_VAULT_MCP_PENDING_MS) : DEFAULT_PENDING_AFTER_MS,
  };
}

type ToolResult = { content: { type: "text"; text: string }[]; isError?: boolean };

const text = (value: unknown): ToolResult => ({ content: [{ type: "text", text: typeof value === "string" ? value : JSON.stringify(value, null, 2) }] });
const failure = (message: string): ToolResult => ({ content: [{ type: "text", text: message }], isError: true });

async function api(env: McpEnvironment, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  if (!env.token) throw new Error("no token: run the MCP client under `agent-vault run`, or set AGENT_VAULT_AGENT_TOKEN to an agent's token");
  let res: Response;
  try {
    res = await fetch(`${env.addr}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Error(`cannot reach agent-vault at ${env.addr}: start it with \`agent-vault server\` (or run the MCP client under \`agent-vault run\`)`);
  }
  const raw = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(raw);
  } catch {
    json = { message: raw.slice(0, 500) };
  }
  return { status: res.status, json };
}

/** An API error as one line for the model: status, code and message. */
function apiError(answer: { status: number; json: any }): ToolResult {
  const code = answer.json?.error ?? "error";
  return failure(`agent-vault answered ${answer.status} ${code}: ${answer.json?.message ?? ""}`.trim());
}

const ProposalServiceShape = z.object({}).passthrough();

export function buildMcpServer(env: McpEnvironment): McpServer {
  const server = new McpServer({ name: "agent-vault", version: pkg.version });
  // Requests still waiting for the vault's answer (held for a person, or a slow upstream), by what
  // was asked: the same call again waits on the same request instead of sending a second one, and
  // gets its answer even when it came after the first call had reported pending.
  const inFlight = new Map<string, Promise<ToolResult>>();
  const guarded =
    (fn: (args: any) => Promise<ToolResult>) =>
    async (args: any): Promise<ToolResult> => {
      try {
        return await fn(args);
      } catch (error) {
        return failure((error as Error).message);
      }
    };

  server.registerTool(
    "list_services",
    {
      title: "List services",
      description:
        "The services this agent may call through the vault (name and host), and the credential keys available. Requests to these hosts get the real credential attached by the vault; the agent never holds it.",
      inputSchema: {},
    },
    guarded(async () => {
      const answer = await api(env, "GET", "/discover");
      return answer.status === 200 ? text(answer.json) : apiError(answer);
    }),
  );

  server.registerTool(
    "list_credentials",
    {
      title: "List credential metadata",
      description:
        "Metadata of the credentials this agent's services use: key, type (static, oauth, or source: fetched from the team's secrets system), description, expiry and which services send it. Never a value.",
      inputSchema: { service: z.string().optional().describe("only credentials this service sends"), type: z.enum(["static", "oauth", "source"]).optional() },
    },
    guarded(async (args: { service?: string; type?: string }) => {
      const query = new URLSearchParams();
      if (args.service) query.set("service", args.service);
      if (args.type) query.set("type", args.type);
      const answer = await api(env, "GET", `/v1/credentials${query.size > 0 ? `?${query}` : ""}`);
      return answer.status === 200 ? text(answer.json) : apiError(answer);
    }),
  );

  server.registerTool(
    "request_access",
    {
      title: "Request access to a service",
      description:
        "File a proposal for a human to approve: services to add (name, host, auth referencing credential keys) and credential slots to fill (key, description, where to obtain it). Returns the proposal id; a human approves it in `agent-vault tui` or with `agent-vault vault proposal approve ID`. Never put a secret you do not have in it.",
      inputSchema: {
        services: z.array(ProposalServiceShape).optional().describe('e.g. [{"action":"set","name":"stripe","host":"api.stripe.com","auth":{"type":"bearer","token":"STRIPE_KEY"}}]'),
        credentials: z.array(ProposalServiceShape).optional().describe('e.g. [{"action":"set","key":"STRIPE_KEY","description":"Stripe test key","obtain":"https://dashboard.stripe.com/apikeys"}]'),
        message: z.string().optional().describe("why the agent needs it, for the human"),
      },
    },
    guarded(async (args: { services?: unknown[]; credentials?: unknown[]; message?: string }) => {
      const body: Record<string, unknown> = {};
      if (args.services) body.services = args.services;
      if (args.credentials) body.credentials = args.credentials;
      if (args.message !== undefined) body.message = args.message;
      const answer = await api(env, "POST", "/v1/proposals", body);
      if (answer.status !== 201) return apiError(answer);
      return text({ ...answer.json, how_to_approve: `a human runs \`agent-vault tui\` (Proposals, a) or \`agent-vault vault proposal approve ${answer.json.id}\`; poll proposal_status with this id` });
    }),
  );

  server.registerTool(
    "proposal_status",
    {
      title: "Proposal status",
      description: "The status of a proposal this vault holds: pending, applied, rejected (with the reason) or expired.",
      inputSchema: { id: z.number().int().positive() },
    },
    guarded(async (args: { id: number }) => {
      const answer = await api(env, "GET", `/v1/proposals/${args.id}`);
      return answer.status === 200 ? text(answer.json) : apiError(answer);
    }),
  );

  server.registerTool(
    "http_request",
    {
      title: "HTTP request through the vault",
      description:
        "Make an HTTPS request through agent-vault: the vault attaches the credential of the matching service (do not send your own), and returns status, headers and body with every credential value replaced by [REDACTED:KEY].",
      inputSchema: {
        method: z
          .string()
          .regex(/^[A-Za-z]{1,16}$/)
          .default("GET"),
        url: z.string().url().describe("https://host/path?query"),
        headers: z.record(z.string(), z.string()).optional(),
        body: z.string().optional().describe("request body as text"),
      },
    },
    guarded(async (args: { method: string; url: string; headers?: Record<string, string>; body?: string }) => {
      const url = new URL(args.url);
      if (url.protocol !== "https:") return failure("http_request takes https:// URLs");
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(args.headers ?? {})) {
        if (!/^(authorization|proxy-authorization|host|x-agent-vault-scrub)$/i.test(name)) headers[name] = value;
      }
      if (!env.token) return failure("no token: run the MCP client under `agent-vault run`, or set AGENT_VAULT_AGENT_TOKEN");
      const target = `${env.addr}/proxy/${url.host}${url.pathname}${url.search}`;
      const method = args.method.toUpperCase();
      const key = JSON.stringify([method, target, Object.entries(headers).sort(), args.body ?? null]);
      let flight = inFlight.get(key);
      if (!flight) {
        const started = send(target, method, headers, args.body).catch((error: Error) => failure(error.message));
        flight = started;
        inFlight.set(key, started);
        // Kept for a call that comes back for it; dropped once taken, or after a while.
        void started.then(() => setTimeout(() => inFlight.get(key) === started && inFlight.delete(key), KEEP_ANSWER_MS).unref?.());
      }
      const pendingAfter = env.pendingAfterMs ?? DEFAULT_PENDING_AFTER_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<"pending">((resolve) => (timer = setTimeout(() => resolve("pending"), pendingAfter)));
      const result = await Promise.race([flight, waited]);
      clearTimeout(timer);
      if (result === "pending") {
        // Not a failure: the request is still on its way (most likely held for a person's approval).
        return text({
          status: "pending",
          message: `no answer after ${Math.round(pendingAfter / 1000)} s: agent-vault may be holding this request for a person's approval (they see it in \`agent-vault tui\` or \`agent-vault held list\`), or the upstream is slow. Call http_request again with exactly the same arguments to wait for its answer; it is sent at most once.`,
        });
      }
      inFlight.delete(key);
      return result;
    }),
  );

  /** The request through the vault's explicit proxy, and its answer as the tool's result. */
  async function send(target: string, method: string, headers: Record<string, string>, body: string | undefined): Promise<ToolResult> {
    let res: Response;
    try {
      res = await fetch(target, { method, headers: { ...headers, authorization: `Bearer ${env.token}`, "x-agent-vault-scrub": "1" }, body, redirect: "manual", decompress: false } as RequestInit);
    } catch {
      return failure(`cannot reach agent-vault at ${env.addr}: start it with \`agent-vault server\``);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    const isText =
      /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript|[a-z.+-]*\+json|[a-z.+-]*\+xml))/i.test(res.headers.get("content-type") ?? "text/plain") || bytes.every((b) => b !== 0);
    const bodyText = isText ? bytes.toString("utf8") : bytes.toString("base64");
    const responseHeaders: Record<string, string> = {};
    res.headers.forEach((value, name) => (responseHeaders[name] = value));
    // The vault's own refusals (403 policy_denied, 502 upstream_error, ...) are tool errors.
    const refusal = res.headers.get("x-agent-vault-error");
    return {
      ...text({
        status: res.status,
        headers: responseHeaders,
        body_encoding: isText ? "text" : "base64",
        body: bodyText.length > MAX_BODY_CHARS ? `${bodyText.slice(0, MAX_BODY_CHARS)}… [truncated, ${bodyText.length} characters]` : bodyText,
      }),
      ...(refusal ? { isError: true } : {}),
    };
  }

  return server;
}

export async function serveMcp(env: McpEnvironment = mcpEnvironment()): Promise<void> {
  const server = buildMcpServer(env);
  await server.connect(new StdioServerTransport());
  // Served until the client closes stdin.
  await new Promise<void>((resolve) => {
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
  });
  await server.close();
}
