// End-to-end tests of `agent-vault mcp` (src/mcp/server.ts) through the compiled binary, driven by
// the official SDK's own client over stdio, as an MCP host (Claude Code, an IDE) would drive it.
// The MCP server is a client of a foreground `agent-vault server`'s agent API, authenticated by an
// agent's token; the agent is granted one service (github) and not another (stripe). What reached
// the local HTTPS upstream (test/support/upstream.ts, via AGENT_VAULT_CONNECT_TO) is the ground
// truth for injection; every tool result, the MCP server's stderr and requests.log are checked for
// the credential values at the end.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import pkg from "../../package.json" with { type: "json" };
import { BINARY, cleanEnv, type RunResult, type TempHome } from "../support/binary.ts";
import { type Server, startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";

const scene = fileScene("av-mcp-e2e-");
const { scratch, cleanups } = scene;
/** Every CLI output and tool result text the tests saw. */
const outputs: string[] = [];
/** The stderr of every MCP server process, as it arrived. */
const mcpStderr: { text: string }[] = [];

const GITHUB_CANARY = `ghp_canary_${randomBytes(16).toString("hex")}`;
const STRIPE_CANARY = `sk_test_canary_${randomBytes(16).toString("hex")}`;
/** The value a human supplies when approving the agent's proposal for a NOTES_KEY slot. */
const NOTES_CANARY = `notes_canary_${randomBytes(16).toString("hex")}`;
const CANARIES = [GITHUB_CANARY, STRIPE_CANARY, NOTES_CANARY];
const GITHUB_HOST = "api.github.test";
const STRIPE_HOST = "api.stripe.test";
const REDACTED = "[REDACTED:GITHUB_TOKEN]";
const TOOLS = ["http_request", "list_credentials", "list_services", "proposal_status", "request_access"];

let U: Upstream;
let H: TempHome;
let S: Server;
let ADDR: string;
let TOKEN: string;
/** The MCP server as the granted agent, shared by the tests until the agent is revoked. */
let M: Mcp;

function show(label: string, r: RunResult): string {
  return `${label}\n  exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`;
}

async function ok(args: readonly string[], stdin?: string): Promise<RunResult> {
  const r = await H.run(args, { stdin });
  outputs.push(r.stdout, r.stderr);
  if (r.code !== 0) throw new Error(`expected success:\n${show(args.join(" "), r)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The MCP client

interface Mcp {
  readonly client: Client;
  readonly transport: StdioClientTransport;
  readonly stderr: { text: string };
  close(): Promise<void>;
}

/**
 * `agent-vault mcp` spawned by the SDK's stdio transport and initialized. Its environment holds
 * the API address and the token only (no master password; an empty data directory), as an MCP
 * host configured for an agent would give it.
 */
async function connectMcp(token: string | undefined): Promise<Mcp> {
  const home = mkdtempSync(join(scratch, "mcp-home-"));
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ["mcp"],
    env: cleanEnv({ AGENT_VAULT_HOME: join(home, "none"), AGENT_VAULT_ADDR: ADDR, AGENT_VAULT_AGENT_TOKEN: token }),
    stderr: "pipe",
  });
  const stderr = { text: "" };
  mcpStderr.push(stderr);
  transport.stderr!.on("data", (chunk: Buffer) => (stderr.text += chunk.toString("utf8")));
  const client = new Client({ name: "agent-vault-e2e", version: "0.0.0" });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await client.close();
  };
  cleanups.push(close);
  await client.connect(transport);
  return { client, transport, stderr, close };
}

interface ToolAnswer {
  readonly isError: boolean;
  readonly text: string;
}

async function call(m: Mcp, name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
  const result = await m.client.callTool({ name, arguments: args });
  const content = result.content as { type: string; text?: string }[];
  for (const part of content) expect(part.type).toBe("text");
  const text = content.map((part) => part.text ?? "").join("\n");
  outputs.push(text);
  return { isError: result.isError === true, text };
}

/** A tool that must succeed, its text parsed as JSON. */
async function callJson(m: Mcp, name: string, args: Record<string, unknown> = {}): Promise<any> {
  const answer = await call(m, name, args);
  if (answer.isError) throw new Error(`${name} failed: ${answer.text}`);
  return JSON.parse(answer.text);
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body_encoding: "text" | "base64";
  readonly body: string;
  /** The tool result's whole text. */
  readonly text: string;
}

/**
 * The tool's answer parsed. The vault's own refusals (X-Agent-Vault-Error) are tool errors that
 * still carry status, headers and body; any other error result fails the test.
 */
async function httpRequest(m: Mcp, args: Record<string, unknown>): Promise<HttpAnswer> {
  const answer = await call(m, "http_request", args);
  let parsed: HttpAnswer;
  try {
    parsed = { ...JSON.parse(answer.text), text: answer.text };
  } catch {
    throw new Error(`http_request failed: ${answer.text}`);
  }
  expect(answer.isError === true).toBe(parsed.headers["x-agent-vault-error"] !== undefined);
  return parsed;
}

function receivedFor(host: string, since = 0) {
  return U.received.slice(since).filter((r) => r.host === host || r.sni === host);
}

// ---------------------------------------------------------------------------------------------
// Fixture

/** The upstream's answers for the github host: each repeats the credential it was sent. */
function githubRoute(path: string, authorization: string, ifNoneMatch: string | undefined): { status: number; headers: Record<string, string>; body: Buffer } | null {
  const secret = authorization.replace(/^Bearer /, "");
  const json = Buffer.from(
    JSON.stringify({
      path,
      authorization,
      secret,
      // A careless API that echoes a credential the agent was never granted.
      other_vault_secret: STRIPE_CANARY,
      // And one added to the vault (by an approved proposal) while the server runs.
      approved_secret: NOTES_CANARY,
    }),
  );
  const headers = { "content-type": "application/json", "x-echo-auth": authorization, "x-echo-secret": secret };
  const route = path.split("?")[0];
  if (route === "/echo") return { status: 200, headers, body: json };
  // A conditional request for an unchanged gzip resource: 304, with its encoding but no body.
  if (route === "/gzip" && ifNoneMatch === '"v1"') return { status: 304, headers: { etag: '"v1"', "content-encoding": "gzip", "x-echo-auth": authorization }, body: Buffer.alloc(0) };
  if (route === "/gzip") return { status: 200, headers: { ...headers, "content-encoding": "gzip" }, body: gzipSync(json) };
  if (route === "/deflate") return { status: 200, headers: { ...headers, "content-encoding": "deflate" }, body: deflateSync(json) };
  if (route === "/br") return { status: 200, headers: { ...headers, "content-encoding": "br" }, body: brotliCompressSync(json) };
  // An encoding the vault cannot decode: the raw bytes (which hold the secret) must not be passed on.
  if (route === "/weird") return { status: 200, headers: { ...headers, "content-encoding": "zstd-unknown" }, body: json };
  return null;
}

beforeAll(async () => {
  U = await sceneUpstream(scene);
  U.handler = (req, res) => {
    if (String(req.headers.host) !== GITHUB_HOST) return false;
    const answer = githubRoute(req.url ?? "/", String(req.headers.authorization ?? ""), req.headers["if-none-match"]);
    if (!answer) return false;
    res.writeHead(answer.status, answer.status === 304 ? answer.headers : { ...answer.headers, "content-length": answer.body.length });
    res.end(answer.body);
    return true;
  };
  H = await sceneHome(scene);
  await ok(["vault", "credential", "set", "GITHUB_TOKEN=-", "--description", "GitHub PAT for the MCP tests"], `${GITHUB_CANARY}\n`);
  await ok(["vault", "credential", "set", "STRIPE_KEY=-"], `${STRIPE_CANARY}\n`);
  await ok(["vault", "service", "add", "--name", "github", "--host", GITHUB_HOST, "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"]);
  await ok(["vault", "service", "add", "--name", "stripe", "--host", STRIPE_HOST, "--auth-type", "bearer", "--token-key", "STRIPE_KEY"]);
  const created = await ok(["agent", "create", "mcp-agent"]);
  TOKEN = created.stdout.trim();
  expect(TOKEN.length).toBeGreaterThan(20);
  expect(TOKEN).not.toContain("\n");
  await ok(["agent", "grant", "mcp-agent", "--service", "github", "--ttl", "1h"]);
  const connectTo = [GITHUB_HOST, STRIPE_HOST].map((h) => `${h}:443:127.0.0.1:${U.port}`).join(",");
  S = await startServer(H, { AGENT_VAULT_CONNECT_TO: connectTo, AGENT_VAULT_UPSTREAM_CA: U.caFile }, cleanups);
  ADDR = `http://127.0.0.1:${S.apiPort}`;
  M = await connectMcp(TOKEN);
}, 60_000);

// ---------------------------------------------------------------------------------------------
// Tests

describe("initialize and tools", () => {
  test("the server introduces itself as agent-vault and offers exactly the five tools, none of which hands out a value", async () => {
    expect(M.client.getServerVersion()).toMatchObject({ name: "agent-vault", version: pkg.version });
    expect(M.client.getServerCapabilities()?.tools).toBeDefined();
    const { tools } = await M.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const tool of tools) {
      expect(tool.name).not.toMatch(/get|read|reveal|show|export|dump|value|secret|token/i);
      expect(tool.description ?? "").not.toMatch(/returns? (the|a|its) (credential|secret|token|value)/i);
      expect(tool.inputSchema.type).toBe("object");
      outputs.push(JSON.stringify(tool));
    }
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get("list_credentials")!.description).toContain("Never a value");
    expect(byName.get("http_request")!.description).toContain("[REDACTED:KEY]");
    expect(Object.keys(byName.get("http_request")!.inputSchema.properties ?? {}).sort()).toEqual(["body", "headers", "method", "url"]);
    expect(byName.get("proposal_status")!.inputSchema.required).toEqual(["id"]);
  }, 30_000);
});

describe("discovery", () => {
  test("list_services shows only the granted service", async () => {
    const answer = await call(M, "list_services");
    expect(answer.isError).toBe(false);
    const found = JSON.parse(answer.text);
    expect(found).toEqual({ vault: "default", services: [{ name: "github", host: GITHUB_HOST }], available_credentials: ["GITHUB_TOKEN"] });
    expect(answer.text).not.toMatch(/stripe/i);
  }, 30_000);

  test("list_credentials gives the granted credential's metadata, filters by type and service, and never a value", async () => {
    const all = await call(M, "list_credentials");
    expect(all.isError).toBe(false);
    const { credentials } = JSON.parse(all.text);
    expect(credentials).toEqual([{ key: "GITHUB_TOKEN", type: "static", description: "GitHub PAT for the MCP tests", expires_at: null, services: ["github"] }]);
    expect(all.text).not.toContain("STRIPE_KEY");

    expect((await callJson(M, "list_credentials", { type: "oauth" })).credentials).toEqual([]);
    expect((await callJson(M, "list_credentials", { type: "static" })).credentials.map((c: { key: string }) => c.key)).toEqual(["GITHUB_TOKEN"]);
    expect((await callJson(M, "list_credentials", { service: "github" })).credentials.map((c: { key: string }) => c.key)).toEqual(["GITHUB_TOKEN"]);
    // The service the agent is not granted: as if it did not exist.
    expect((await callJson(M, "list_credentials", { service: "stripe" })).credentials).toEqual([]);

    // A type outside the enum is refused by the tool's input schema, as a tool error.
    const bad = await call(M, "list_credentials", { type: "password" });
    expect(bad.isError).toBe(true);

    for (const text of outputs) {
      for (const canary of CANARIES) expect(text.includes(canary)).toBe(false);
    }
  }, 30_000);
});

describe("proposals", () => {
  test("request_access files a proposal; proposal_status follows it from pending to rejected with the reason", async () => {
    const filed = await call(M, "request_access", {
      services: [{ action: "set", name: "linear", host: "api.linear.test", auth: { type: "bearer", token: "LINEAR_KEY" } }],
      credentials: [{ action: "set", key: "LINEAR_KEY", description: "Linear API key", obtain: "https://linear.app/settings/api" }],
      message: "I need to read the team's issues",
    });
    expect(filed.isError, filed.text).toBe(false);
    const answer = JSON.parse(filed.text);
    expect(answer.status).toBe("pending");
    expect(Number.isInteger(answer.id)).toBe(true);
    expect(answer.id).toBeGreaterThan(0);
    expect(answer.how_to_approve).toContain(`agent-vault vault proposal approve ${answer.id}`);

    const pending = await callJson(M, "proposal_status", { id: answer.id });
    expect(pending).toMatchObject({ id: answer.id, status: "pending", message: "I need to read the team's issues" });
    expect(pending.services).toEqual([{ action: "set", name: "linear", host: "api.linear.test", auth: { type: "bearer", token: "LINEAR_KEY" } }]);
    expect(pending.credentials).toEqual([expect.objectContaining({ action: "set", key: "LINEAR_KEY", description: "Linear API key", has_value: false })]);

    // The human's side, with the CLI.
    const listed = JSON.parse((await ok(["vault", "proposal", "list", "--json"])).stdout) as { id: number; status: string }[];
    expect(listed.find((p) => p.id === answer.id)?.status).toBe("pending");
    await ok(["vault", "proposal", "reject", String(answer.id), "--reason", "use the read-only token instead"]);

    const rejected = await callJson(M, "proposal_status", { id: answer.id });
    expect(rejected).toMatchObject({ id: answer.id, status: "rejected", reason: "use the read-only token instead" });
    // Nothing was applied.
    expect((await callJson(M, "list_services")).services.map((s: { name: string }) => s.name)).toEqual(["github"]);
  }, 30_000);

  test("an approved proposal reads applied; unknown ids and invalid proposals are tool errors", async () => {
    const filed = await callJson(M, "request_access", { credentials: [{ action: "set", key: "NOTES_KEY", description: "notes" }], message: "a slot" });
    await ok(["vault", "proposal", "approve", String(filed.id), "NOTES_KEY=-", "--yes"], `${NOTES_CANARY}\n`);
    expect((await callJson(M, "proposal_status", { id: filed.id })).status).toBe("applied");

    const missing = await call(M, "proposal_status", { id: 999_999 });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain("404 proposal_not_found");

    // A service whose auth names a credential that neither exists nor is proposed.
    const invalid = await call(M, "request_access", { services: [{ action: "set", name: "ghost", host: "ghost.test", auth: { type: "bearer", token: "NO_SUCH_KEY" } }] });
    expect(invalid.isError).toBe(true);
    expect(invalid.text).toContain("400 invalid_request");
    expect(invalid.text).toContain("NO_SUCH_KEY");

    // The schema wants a positive integer.
    expect((await call(M, "proposal_status", { id: "1" })).isError).toBe(true);
    expect((await call(M, "proposal_status", { id: -1 })).isError).toBe(true);
  }, 30_000);
});

describe("http_request", () => {
  test("the vault injects the credential upstream and the tool's answer has it redacted in headers and body", async () => {
    const seen = U.received.length;
    const answer = await httpRequest(M, { method: "GET", url: `https://${GITHUB_HOST}/echo?page=2` });
    const reached = receivedFor(GITHUB_HOST, seen);
    expect(reached.length).toBe(1);
    expect(reached[0]!.url).toBe("/echo?page=2");
    expect(reached[0]!.method).toBe("GET");
    expect(reached[0]!.headers.authorization).toBe(`Bearer ${GITHUB_CANARY}`);
    // Nothing of the agent-vault hop goes upstream.
    expect(reached[0]!.headers["x-agent-vault-scrub"]).toBeUndefined();

    expect(answer.status).toBe(200);
    expect(answer.body_encoding).toBe("text");
    expect(answer.headers["x-echo-auth"]).toBe(`Bearer ${REDACTED}`);
    expect(answer.headers["x-echo-secret"]).toBe(REDACTED);
    expect(answer.headers["content-type"]).toBe("application/json");
    const body = JSON.parse(answer.body);
    // Every value of the vault is scrubbed, also those of services the agent is not granted and
    // one approved after the server started.
    expect(body).toEqual({ path: "/echo?page=2", authorization: `Bearer ${REDACTED}`, secret: REDACTED, other_vault_secret: "[REDACTED:STRIPE_KEY]", approved_secret: "[REDACTED:NOTES_KEY]" });
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
  }, 30_000);

  for (const encoding of ["gzip", "deflate", "br"]) {
    test(`a ${encoding} response is decoded, scrubbed and handed over as text`, async () => {
      const seen = U.received.length;
      const answer = await httpRequest(M, { method: "GET", url: `https://${GITHUB_HOST}/${encoding}` });
      const reached = receivedFor(GITHUB_HOST, seen);
      expect(reached.length).toBe(1);
      expect(reached[0]!.headers.authorization).toBe(`Bearer ${GITHUB_CANARY}`);
      expect(answer.status).toBe(200);
      expect(answer.body_encoding).toBe("text");
      expect(answer.headers["content-encoding"]).toBeUndefined();
      // Decoded while it streams, so it goes out chunked: no length that would no longer be true.
      expect(answer.headers["content-length"]).toBeUndefined();
      expect(answer.headers["x-echo-auth"]).toBe(`Bearer ${REDACTED}`);
      expect(JSON.parse(answer.body)).toMatchObject({ path: `/${encoding}`, authorization: `Bearer ${REDACTED}`, secret: REDACTED });
      for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
    }, 30_000);
  }

  test("an encoding the vault cannot scan is refused with 502, not passed on", async () => {
    const seen = U.received.length;
    const answer = await call(M, "http_request", { method: "GET", url: `https://${GITHUB_HOST}/weird` });
    expect(receivedFor(GITHUB_HOST, seen).length).toBe(1);
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
    if (!answer.isError) {
      const parsed = JSON.parse(answer.text) as HttpAnswer;
      expect(parsed.status).toBe(502);
      expect(parsed.headers["x-agent-vault-error"]).toBe("upstream_error");
      const body = JSON.parse(parsed.body);
      expect(body.error).toBe("upstream_error");
      expect(body.message).toContain("zstd-unknown");
    } else {
      expect(answer.text).toContain("502");
    }
  }, 30_000);

  test("the agent's own Authorization and scrub headers are dropped; other headers, the method and the body go through", async () => {
    const seen = U.received.length;
    const answer = await httpRequest(M, {
      method: "post",
      url: `https://${GITHUB_HOST}/echo`,
      headers: { Authorization: "Bearer forged-by-agent", "X-Agent-Vault-Scrub": "0", "X-Trace": "trace-1", "content-type": "text/plain" },
      body: "hello upstream",
    });
    const reached = receivedFor(GITHUB_HOST, seen);
    expect(reached.length).toBe(1);
    expect(reached[0]!.method).toBe("POST");
    expect(reached[0]!.headers.authorization).toBe(`Bearer ${GITHUB_CANARY}`);
    expect(reached[0]!.headers["x-trace"]).toBe("trace-1");
    expect(reached[0]!.headers["x-agent-vault-scrub"]).toBeUndefined();
    expect(reached[0]!.body.toString("utf8")).toBe("hello upstream");
    // Still scrubbed: the agent cannot turn scrubbing off.
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).secret).toBe(REDACTED);
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
  }, 30_000);

  test("HEAD of an unencoded resource: injected, scrubbed headers, no body", async () => {
    const seen = U.received.length;
    const answer = await httpRequest(M, { method: "HEAD", url: `https://${GITHUB_HOST}/echo` });
    const reached = receivedFor(GITHUB_HOST, seen);
    expect(reached.map((r) => [r.method, r.headers.authorization])).toEqual([["HEAD", `Bearer ${GITHUB_CANARY}`]]);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe("");
    expect(answer.headers["x-echo-auth"]).toBe(`Bearer ${REDACTED}`);
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
  }, 30_000);

  // A response with a content-encoding but no body (HEAD, 304) has nothing to decode: it passes
  // with its headers scrubbed (this was a 502 "cannot be scanned" once).
  test("HEAD of a gzip resource passes with its headers scrubbed", async () => {
    const answer = await httpRequest(M, { method: "HEAD", url: `https://${GITHUB_HOST}/gzip` });
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
    expect(answer.status).toBe(200);
    expect(answer.headers["x-echo-auth"]).toBe(`Bearer ${REDACTED}`);
  }, 30_000);

  test("a 304 to a conditional GET of a gzip resource passes as a 304", async () => {
    const answer = await httpRequest(M, { method: "GET", url: `https://${GITHUB_HOST}/gzip`, headers: { "if-none-match": '"v1"' } });
    for (const canary of CANARIES) expect(answer.text).not.toContain(canary);
    expect(answer.status).toBe(304);
    expect(answer.headers.etag).toBe('"v1"');
  }, 30_000);

  test("plain http:// URLs are refused by the tool, before any request", async () => {
    const seen = U.received.length;
    const answer = await call(M, "http_request", { method: "GET", url: `http://${GITHUB_HOST}/echo` });
    expect(answer.isError).toBe(true);
    expect(answer.text).toContain("https://");
    expect(U.received.length).toBe(seen);
  }, 30_000);

  test("exfiltration: a request to the service the agent is not granted is refused with 403 and never reaches it", async () => {
    const seen = U.received.length;
    for (const path of ["/v1/charges", "/echo"]) {
      const answer = await httpRequest(M, { method: "GET", url: `https://${STRIPE_HOST}${path}` });
      expect(answer.status).toBe(403);
      expect(answer.headers["x-agent-vault-error"]).toBe("host_not_allowed");
      const body = JSON.parse(answer.body);
      expect(body.error).toBe("host_not_allowed");
      expect(body.message).toContain('agent "mcp-agent" has no unexpired grant for service "stripe"');
      expect(answer.text).not.toContain(STRIPE_CANARY);
    }
    // Also with the agent's own Authorization, and with a port in the URL.
    const forged = await httpRequest(M, { method: "POST", url: `https://${STRIPE_HOST}:443/v1/charges`, headers: { authorization: `Bearer ${GITHUB_CANARY}` }, body: "amount=1" });
    expect(forged.status).toBe(403);
    expect(receivedFor(STRIPE_HOST).length).toBe(0);
    expect(U.received.length).toBe(seen);
  }, 30_000);
});

describe("authentication", () => {
  test("without a token every tool answers a 'no token' error and nothing is sent", async () => {
    const bare = await connectMcp(undefined);
    try {
      const seen = U.received.length;
      for (const [name, args] of [
        ["list_services", {}],
        ["list_credentials", {}],
        ["proposal_status", { id: 1 }],
        ["request_access", { message: "x" }],
        ["http_request", { method: "GET", url: `https://${GITHUB_HOST}/echo` }],
      ] as const) {
        const answer = await call(bare, name, args);
        expect(answer.isError, `${name}: ${answer.text}`).toBe(true);
        expect(answer.text).toContain("no token");
      }
      expect(U.received.length).toBe(seen);
    } finally {
      await bare.close();
    }
  }, 30_000);

  test("a vault server that is not running is a tool error naming the address", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const saved = ADDR;
    ADDR = `http://127.0.0.1:${port}`;
    const lost = await connectMcp(TOKEN).finally(() => (ADDR = saved));
    try {
      for (const [name, args] of [
        ["list_services", {}],
        ["http_request", { method: "GET", url: `https://${GITHUB_HOST}/echo` }],
      ] as const) {
        const answer = await call(lost, name, args);
        expect(answer.isError, answer.text).toBe(true);
        expect(answer.text).toContain(`cannot reach agent-vault at http://127.0.0.1:${port}`);
      }
    } finally {
      await lost.close();
    }
  }, 30_000);

  test("an unknown token gets unauthorized", async () => {
    const stranger = await connectMcp(`avt_${randomBytes(24).toString("hex")}`);
    try {
      const answer = await call(stranger, "list_services");
      expect(answer.isError).toBe(true);
      expect(answer.text).toContain("401 unauthorized");
      const seen = U.received.length;
      const proxied = await httpRequest(stranger, { method: "GET", url: `https://${GITHUB_HOST}/echo` });
      expect(proxied.status).toBe(401);
      expect(JSON.parse(proxied.body).error).toBe("unauthorized");
      expect(U.received.length).toBe(seen);
    } finally {
      await stranger.close();
    }
  }, 30_000);

  test("after `agent revoke`, the running MCP server's next calls are unauthorized", async () => {
    // Works before.
    expect((await callJson(M, "list_services")).services).toHaveLength(1);
    await ok(["agent", "revoke", "mcp-agent"]);
    const seen = U.received.length;
    for (const name of ["list_services", "list_credentials"]) {
      const answer = await call(M, name);
      expect(answer.isError, answer.text).toBe(true);
      expect(answer.text).toContain("401 unauthorized");
      expect(answer.text).toContain('agent "mcp-agent" was revoked');
    }
    const status = await call(M, "proposal_status", { id: 1 });
    expect(status.isError).toBe(true);
    expect(status.text).toContain("401 unauthorized");
    const proxied = await httpRequest(M, { method: "GET", url: `https://${GITHUB_HOST}/echo` });
    expect(proxied.status).toBe(401);
    expect(proxied.headers["x-agent-vault-error"]).toBe("unauthorized");
    expect(JSON.parse(proxied.body).message).toContain('agent "mcp-agent" was revoked');
    expect(U.received.length).toBe(seen);
    // A fresh MCP server with the same token is refused too.
    const again = await connectMcp(TOKEN);
    try {
      const answer = await call(again, "list_services");
      expect(answer.isError).toBe(true);
      expect(answer.text).toContain("401 unauthorized");
    } finally {
      await again.close();
    }
  }, 30_000);
});

describe("secrets", () => {
  test("no credential value appears in any tool result, the MCP servers' stderr, the server's output or requests.log", async () => {
    await M.close();
    await S.stop();
    // Everything above was recorded; the upstream did see the real value (injection happened).
    expect(U.received.some((r) => r.headers.authorization === `Bearer ${GITHUB_CANARY}`)).toBe(true);
    expect(outputs.length).toBeGreaterThan(30);
    expect(mcpStderr.length).toBeGreaterThanOrEqual(5);
    const log = readFileSync(join(H.dir, "requests.log"), "utf8");
    expect(log).toContain(GITHUB_HOST);
    expect(log).toContain(STRIPE_HOST);
    const haystacks = [...outputs, ...mcpStderr.map((s) => s.text), log, S.live.stdout, S.live.stderr];
    for (const canary of CANARIES) {
      for (const hay of haystacks) expect(hay.includes(canary)).toBe(false);
    }
  }, 30_000);
});
