// End-to-end tests of the credential-injecting proxy (DESIGN "Services", "Agent API",
// "Environment", `run`). Everything goes through the compiled binary (dist/agent-vault): a
// foreground `agent-vault server` with its ports chosen by the OS, sessions made by
// `agent-vault run`, and agents that are real clients (curl, Python requests, Bun fetch, Node
// https) or, where a test must control every byte, the raw client in test/support/proxy-client.ts.
// Upstreams are local HTTPS servers (test/support/upstream.ts) reached through
// AGENT_VAULT_CONNECT_TO; what reached them (`received`) is the ground truth for injection.
// Every credential value carries one random TAG: the last test proves that TAG never showed up in
// any output, log or look-alike upstream.
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type ServerResponse } from "node:http";
import net from "node:net";
import { join } from "node:path";
import { type RunResult, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { basicProxyAuth, type HeaderList, openPlain, openTunnel, type RawResponse, readResponse, readWsFrame, serveWsEcho, webSocketOffer, wsFrame } from "../support/proxy-client.ts";
import { type ReceivedRequest, type Upstream } from "../support/upstream.ts";
import { type Live, waitUntil } from "../support/process.ts";
import { type Server as SupportServer, startServer } from "../support/server.ts";
import { type HeldSession, holdSession as holdRunSession } from "../support/session.ts";
import { fileScene, sceneUpstream } from "../support/scene.ts";

// ---------------------------------------------------------------------------------------------
// Secrets and the record of everything the tests saw

const TAG = randomBytes(10).toString("hex");
const SECRETS = {
  GITHUB_TOKEN: `ghp_${TAG}_github`,
  BASIC_USER: `user_${TAG}`,
  BASIC_PASS: `pass_${TAG}`,
  SOLO_USER: `solo_${TAG}`,
  APIKEY_KEY: `key_${TAG}`,
  CUSTOM_ID: `id_${TAG}`,
  CUSTOM_KEY: `ck_${TAG}`,
  // Needs URL encoding: the proxy must encode it into the query string.
  QUERY_KEY: `q&${TAG}= +/`,
  WILD_TOKEN: `wild_${TAG}`,
  EXACT_TOKEN: `exact_${TAG}`,
  PORTLESS_TOKEN: `portless_${TAG}`,
  PORT_TOKEN: `port_${TAG}`,
  SLACK_ROOT: `slackroot_${TAG}`,
  SLACK_API: `slackapi_${TAG}`,
  SLACK_CHAT: `slackchat_${TAG}`,
  DISABLED_TOKEN: `disabled_${TAG}`,
  MISSING_TOKEN: `missing_${TAG}`,
  CLOSER_TOKEN: `closer_${TAG}`,
  REFUSED_TOKEN: `refused_${TAG}`,
  BIG_TOKEN: `big_${TAG}`,
  SSE_TOKEN: `sse_${TAG}`,
  WS_TOKEN: `ws_${TAG}`,
  LOCAL_TOKEN: `local_${TAG}`,
} as const;
const b64 = (text: string) => Buffer.from(text).toString("base64");
/** Every form in which a secret could leak: the TAG itself and the base64 of the Basic pairs. */
const CANARIES = [TAG, b64(`${SECRETS.BASIC_USER}:${SECRETS.BASIC_PASS}`), b64(`${SECRETS.SOLO_USER}:`)];
/** A header value and a query value the agent sends: they must never reach the request log. */
const HEADER_MARK = `hv-${randomBytes(6).toString("hex")}`;
const QUERY_MARK = `qv-${randomBytes(6).toString("hex")}`;

interface Output {
  readonly label: string;
  stdout: string;
  stderr: string;
}
/** Every stdout/stderr of every process this file started (commands, children, servers). */
const outputs: Output[] = [];

function record(label: string, r: RunResult): RunResult {
  outputs.push({ label, stdout: r.stdout, stderr: r.stderr });
  return r;
}

function show(label: string, r: RunResult): string {
  return `${label}\n  exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 3000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 3000))}`;
}

function containsCanary(text: string): string | null {
  for (const c of CANARIES) if (text.includes(c)) return c;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Processes

const homes: TempHome[] = [];
const scene = fileScene("av-proxy-e2e-");
const { scratch, cleanups } = scene;
// The first cleanup runs last: the homes go once every process using them has stopped.
cleanups.push(() => {
  for (const home of homes) home.cleanup();
});

async function av(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  return record(`agent-vault ${args.join(" ")}`, await home.run(args, opts));
}

async function ok(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const r = await av(home, args, opts);
  if (r.code !== 0) throw new Error(`expected success:\n${show(args.join(" "), r)}`);
  return r;
}

/** `agent-vault run [flags] -- command...`, recorded. */
async function runChild(home: TempHome, command: readonly string[], opts: { flags?: readonly string[]; env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<RunResult> {
  return av(home, ["run", ...(opts.flags ?? []), "--", ...command], { env: opts.env, stdin: opts.stdin });
}

/** Records a long-lived process's output as it arrives (checked at the end with the rest). */
function recordLive(label: string, live: Live): void {
  outputs.push({
    label,
    get stdout() {
      return live.stdout;
    },
    get stderr() {
      return live.stderr;
    },
  });
}

type Server = SupportServer & { readonly pid: number };

/** `agent-vault server --port 0 --mitm-port 0` in the foreground (test/support/server.ts), its output recorded. */
async function startRecordedServer(home: TempHome, env: Record<string, string>): Promise<Server> {
  const server = await startServer(home, env, cleanups);
  recordLive("agent-vault server", server.live);
  expect(server.apiPort).toBeGreaterThan(0);
  expect(server.mitmPort).toBeGreaterThan(0);
  return Object.assign(server, { pid: server.live.proc.pid });
}

type Holder = HeldSession;

/**
 * A session held open by a `run` child that prints its token and waits for stdin to close, so
 * that a test can use the session from this process (with the raw client).
 */
async function holdSession(home: TempHome, options: { vault?: string; ttl?: string } = {}): Promise<Holder> {
  const holder = await holdRunSession(home, cleanups, {
    vault: options.vault ?? "default",
    flags: options.ttl ? ["--ttl", options.ttl] : [],
    withId: !options.ttl,
    cli: (args) => ok(home, args),
    onSpawn: (live) => recordLive("agent-vault run (session holder)", live),
  });
  expect(holder.token).toMatch(/^avs_/);
  if (!options.ttl) expect(holder.id).not.toBeNull();
  return holder;
}

// ---------------------------------------------------------------------------------------------
// Fixture: two upstreams, a configured data directory, a running server

let U1: Upstream; // the real APIs
let U2: Upstream; // look-alike hosts: must never see a secret
let H1: TempHome; // the main data directory, served by S1
let H2: TempHome; // no server: `run` serves in-process (allowlist, untrusted upstream)
let S1: Server;
let main: Holder;
let avCa: string;
let u1Ca: string;
let u2Ca: string;
let closedPort: number;
let combinedUpstreamCa: string;
/** For look-alike tests: the client trusts our CA and the look-alike's, so tunnels work. */
let lookalikeBundle: string;

type Route = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
const routes = new Map<string, Route>();
const sseSentAt: number[] = [];
let uploadedBytes = -1;
/** Bytes the download route has handed to its response so far (it honours backpressure). */
let downloadSent = 0;

/** A reply that never echoes what the upstream received: agents must not learn secrets from it. */
function quietReply(upstream: Upstream): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? "/";
    const reply = JSON.stringify({ ok: true, upstream: upstream === U1 ? "u1" : "u2", method: req.method, path: url.split("?")[0], seq: upstream.received.length - 1 });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
    res.end(reply);
    return true;
  };
}

function routeHandler(req: IncomingMessage, res: ServerResponse, body: Buffer): boolean {
  const url = req.url ?? "/";
  for (const [prefix, route] of routes) {
    if (url.startsWith(prefix)) {
      route(req, res, body);
      return true;
    }
  }
  return quietReply(U1)(req, res);
}

const U1_HOSTS = [
  "api.github.com:443",
  "api.github.com:80",
  "basic.example.com:443",
  "solo.example.com:443",
  "apikey.example.com:443",
  "custom.example.com:443",
  "query.example.com:443",
  "pass.example.com:443",
  "a.wild.example.com:443",
  "exact.wild.example.com:443",
  "ported.example.com:443",
  "ported.example.com:8443",
  "slack.com:443",
  "disabled.example.com:443",
  "missing.example.com:443",
  "closer.example.com:443",
  "big.example.com:443",
  "sse.example.com:443",
  "ws.example.com:443",
  "unmatched.example.net:443",
];
const LOOKALIKES = ["api.github.com.evil.io", "evil-api.github.com", "api.github.com.", "github.com", "x.a.wild.example.com", "wild.example.com"];

const SERVICES = [
  { name: "github", host: "api.github.com", auth: { type: "bearer", token: "GITHUB_TOKEN" } },
  { name: "basic", host: "basic.example.com", auth: { type: "basic", username: "BASIC_USER", password: "BASIC_PASS" } },
  { name: "solo", host: "solo.example.com", auth: { type: "basic", username: "SOLO_USER" } },
  { name: "apikey", host: "apikey.example.com", auth: { type: "api-key", key: "APIKEY_KEY", header: "X-Api-Key", prefix: "Token " } },
  { name: "custom", host: "custom.example.com", auth: { type: "custom", headers: { "X-One": "id={{ CUSTOM_ID }}", "X-Two": "Key {{CUSTOM_KEY}} end" } } },
  { name: "query", host: "query.example.com", auth: { type: "query", param: "api_key", key: "QUERY_KEY" } },
  { name: "pass", host: "pass.example.com", auth: { type: "passthrough" } },
  // Declared in the "wrong" order on purpose: precedence must not come from declaration order.
  { name: "wild", host: "*.wild.example.com", auth: { type: "bearer", token: "WILD_TOKEN" } },
  { name: "exact", host: "exact.wild.example.com", auth: { type: "bearer", token: "EXACT_TOKEN" } },
  { name: "portless", host: "ported.example.com", auth: { type: "bearer", token: "PORTLESS_TOKEN" } },
  { name: "ported", host: "ported.example.com:443", auth: { type: "bearer", token: "PORT_TOKEN" } },
  { name: "slack-root", host: "slack.com", auth: { type: "bearer", token: "SLACK_ROOT" } },
  { name: "slack-api", host: "slack.com/api/*", auth: { type: "bearer", token: "SLACK_API" } },
  { name: "slack-chat", host: "slack.com/api/chat.*", auth: { type: "bearer", token: "SLACK_CHAT" } },
  { name: "disabled", host: "disabled.example.com", auth: { type: "bearer", token: "DISABLED_TOKEN" }, enabled: false },
  { name: "missing", host: "missing.example.com", auth: { type: "bearer", token: "MISSING_TOKEN" } },
  { name: "closer", host: "closer.example.com", auth: { type: "bearer", token: "CLOSER_TOKEN" } },
  { name: "refused", host: "refused.example.com", auth: { type: "bearer", token: "REFUSED_TOKEN" } },
  { name: "big", host: "big.example.com", auth: { type: "bearer", token: "BIG_TOKEN" } },
  { name: "sse", host: "sse.example.com", auth: { type: "bearer", token: "SSE_TOKEN" } },
  { name: "ws", host: "ws.example.com", auth: { type: "bearer", token: "WS_TOKEN" } },
  { name: "local", host: "localhost", auth: { type: "bearer", token: "LOCAL_TOKEN" } },
];

beforeAll(async () => {
  U1 = await sceneUpstream(scene, routeHandler);
  U2 = await sceneUpstream(scene);
  U2.handler = quietReply(U2);
  u1Ca = readFileSync(U1.caFile, "utf8");
  u2Ca = readFileSync(U2.caFile, "utf8");
  combinedUpstreamCa = join(scratch, "upstream-cas.pem");
  writeFileSync(combinedUpstreamCa, `${u1Ca}${u2Ca}`);

  // A port nothing listens on.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  // Routes of U1 that do more than answer quietly.
  routes.set("/close-me", (req) => req.socket.destroy());
  routes.set("/stream/upload", (req, res) => {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      uploadedBytes = bytes;
      const reply = JSON.stringify({ bytes });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
      res.end(reply);
    });
  });
  // Does not read the body for 3 s, then drains it.
  routes.set("/stream/slow-upload", (req, res) => {
    // Under Bun a paused message still reads its socket; pause the socket so nothing is read.
    req.pause();
    req.socket.pause();
    setTimeout(() => {
      req.socket.resume();
      req.resume();
      req.on("end", () => res.end("{}"));
    }, 3000);
  });
  routes.set("/stream/download", (req, res) => {
    const total = Number(new URL(req.url ?? "/", "http://x").searchParams.get("bytes"));
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let sent = 0;
    downloadSent = 0;
    req.resume();
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(total) });
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        downloadSent = sent;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once("drain", pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  routes.set("/stream/sse", (req, res) => {
    req.resume();
    sseSentAt.length = 0;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders?.();
    let i = 0;
    const next = () => {
      res.write(`id: ${i}\nevent: tick\ndata: event-${i}\n\n`);
      sseSentAt.push(Date.now());
      i += 1;
      if (i < 3) setTimeout(next, 300);
      else setTimeout(() => res.end(), 100);
    };
    setTimeout(next, 300);
  });
  routes.set("/ws", (req) => {
    const key = String(req.headers["sec-websocket-key"] ?? "");
    const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    const socket = req.socket as net.Socket;
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    serveWsEcho(socket);
  });

  const connectTo = [...U1_HOSTS.map((h) => `${h}:127.0.0.1:${U1.port}`), ...LOOKALIKES.map((h) => `${h}:443:127.0.0.1:${U2.port}`), `refused.example.com:443:127.0.0.1:${closedPort}`].join(",");

  H1 = await tempHome();
  homes.push(H1);
  await ok(H1, ["vault", "credential", "set", ...Object.entries(SECRETS).map(([k, v]) => `${k}=${v}`)]);
  const servicesFile = join(scratch, "services.json");
  writeFileSync(servicesFile, JSON.stringify({ services: SERVICES }));
  await ok(H1, ["vault", "service", "set", "-f", servicesFile]);
  // The "missing" service keeps pointing at a credential that no longer exists.
  await ok(H1, ["vault", "credential", "delete", "MISSING_TOKEN"]);
  await ok(H1, ["vault", "create", "strict"]);
  await ok(H1, ["vault", "settings", "--vault", "strict", "--unmatched", "deny"]);
  avCa = readFileSync(join(H1.dir, "ca.pem"), "utf8");
  lookalikeBundle = join(scratch, "lookalike-bundle.pem");
  writeFileSync(lookalikeBundle, `${avCa}${u2Ca}`);

  S1 = await startRecordedServer(H1, { AGENT_VAULT_CONNECT_TO: connectTo, AGENT_VAULT_UPSTREAM_CA: combinedUpstreamCa });
  main = await holdSession(H1);

  H2 = await tempHome();
  homes.push(H2);
  await ok(H2, ["vault", "credential", "set", `GITHUB_TOKEN=${SECRETS.GITHUB_TOKEN}`, `LOCAL_TOKEN=${SECRETS.LOCAL_TOKEN}`]);
  const h2Services = join(scratch, "h2-services.json");
  // Port-specific, so that localhost on U2's port is an unmatched host (a passthrough tunnel).
  writeFileSync(h2Services, JSON.stringify([SERVICES[0], { ...SERVICES.find((s) => s.name === "local"), host: `localhost:${U1.port}` }]));
  await ok(H2, ["vault", "service", "set", "-f", h2Services]);
}, 90_000);

// ---------------------------------------------------------------------------------------------
// Helpers over the fixture

function receivedWith(upstream: Upstream, marker: string): ReceivedRequest[] {
  return upstream.received.filter((r) => r.url.includes(marker));
}

function onlyOne(upstream: Upstream, marker: string): ReceivedRequest {
  const hits = receivedWith(upstream, marker);
  expect(hits.length, `requests to ${marker} that reached the upstream: ${JSON.stringify(hits.map((h) => h.url))}`).toBe(1);
  return hits[0]!;
}

function header(r: ReceivedRequest, name: string): string | undefined {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(", ") : v;
}

function everything(r: ReceivedRequest): string {
  return JSON.stringify({ url: r.url, headers: r.headers, body: r.body.toString("latin1") });
}

interface TunnelCall {
  readonly host: string;
  readonly port?: number;
  readonly path: string;
  readonly method?: string;
  readonly headers?: HeaderList;
  readonly body?: string | Buffer;
  /** Proxy-Authorization; the main session by default, null for none. */
  readonly auth?: string | null;
  /** What the client trusts inside the tunnel: our CA by default (so success proves interception). */
  readonly ca?: readonly string[];
}

/** CONNECT + TLS + one request with the raw client. */
async function viaTunnel(call: TunnelCall): Promise<{ connect: RawResponse; res: RawResponse | null }> {
  const tunnel = await openTunnel({
    proxyPort: S1.mitmPort,
    host: call.host,
    port: call.port ?? 443,
    proxyAuthorization: call.auth === undefined ? main.proxyAuth : call.auth,
    ca: call.ca ?? [avCa],
  });
  if (!tunnel.conn) return { connect: tunnel.connect, res: null };
  try {
    const hostHeader = call.port && call.port !== 443 ? `${call.host}:${call.port}` : call.host;
    const res = await tunnel.conn.request(call.method ?? "GET", call.path, [["Host", hostHeader], ...(call.headers ?? [])], call.body);
    return { connect: tunnel.connect, res };
  } finally {
    tunnel.conn.close();
  }
}

/** A request that must reach U1 through an intercepted tunnel with a 200. */
async function expectThrough(call: TunnelCall): Promise<{ res: RawResponse; got: ReceivedRequest }> {
  const { connect, res } = await viaTunnel(call);
  expect(connect.status, `CONNECT ${call.host}: ${connect.text}`).toBe(200);
  expect(res!.status, `${call.host}${call.path}: ${res!.text}`).toBe(200);
  expect(containsCanary(res!.text)).toBeNull();
  return { res: res!, got: onlyOne(U1, call.path.split("?")[0]!) };
}

function expectErrorAnswer(res: RawResponse | null, status: number, code: string): Record<string, unknown> {
  expect(res, "expected an answer inside the tunnel").not.toBeNull();
  expect(res!.status, res!.text).toBe(status);
  expect(res!.headers["x-agent-vault-error"]).toBe(code);
  expect(res!.headers["content-type"]).toMatch(/application\/json/);
  const body = res!.json();
  expect(body.error).toBe(code);
  expect(typeof body.message).toBe("string");
  expect(containsCanary(res!.text)).toBeNull();
  return body;
}

function writeScript(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** Parses `KEY=VALUE` lines as printed by a child. */
function kv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(?:^|\s)([a-z_]+)=(\S+)/g)) out[m[1]!] = m[2]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// 1. Real clients through `run`

describe("real clients through `agent-vault run`", () => {
  function expectInjected(r: RunResult, marker: string, client: string): void {
    expect(r.code, show(client, r)).toBe(0);
    expect(containsCanary(r.stdout + r.stderr), show(client, r)).toBeNull();
    const got = onlyOne(U1, marker);
    expect(got.sni).toBe("api.github.com");
    expect(got.host).toBe("api.github.com");
    expect(header(got, "authorization")).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
    expect(header(got, "x-client")).toBe(client);
    expect(header(got, "proxy-authorization")).toBeUndefined();
    expect(everything(got)).not.toContain("placeholder");
    expect(everything(got)).not.toContain("avs_");
    // What the agent saw came from the upstream (the quiet reply names the path).
    expect(r.stdout).toContain(`"path":"${marker}"`);
  }

  test("curl (HTTPS_PROXY + CURL_CA_BUNDLE)", async () => {
    const r = await runChild(H1, ["curl", "-sS", "--fail-with-body", "-H", "Authorization: Bearer placeholder", "-H", "X-Client: curl", "https://api.github.com/user/t-curl"]);
    expectInjected(r, "/user/t-curl", "curl");
  }, 30_000);

  test("Python requests (HTTPS_PROXY + REQUESTS_CA_BUNDLE)", async () => {
    const script = writeScript(
      "client.py",
      [
        "import requests",
        'r = requests.get("https://api.github.com/user/t-python", headers={"Authorization": "Bearer placeholder", "X-Client": "python"}, timeout=20)',
        "print(r.status_code)",
        "print(r.text)",
        "raise SystemExit(0 if r.status_code == 200 else 1)",
      ].join("\n"),
    );
    const r = await runChild(H1, ["python3", script]);
    expectInjected(r, "/user/t-python", "python");
    expect(r.stdout.split("\n")[0]).toBe("200");
  }, 30_000);

  test("Bun fetch (HTTPS_PROXY + NODE_EXTRA_CA_CERTS)", async () => {
    const script = writeScript(
      "client-bun.ts",
      [
        'const r = await fetch("https://api.github.com/user/t-bun", { headers: { Authorization: "Bearer placeholder", "X-Client": "bun" } });',
        "console.log(r.status);",
        "console.log(await r.text());",
        "process.exit(r.status === 200 ? 0 : 1);",
      ].join("\n"),
    );
    const r = await runChild(H1, [process.execPath, script]);
    expectInjected(r, "/user/t-bun", "bun");
    expect(r.stdout.split("\n")[0]).toBe("200");
  }, 30_000);

  test("Node https over an explicit CONNECT (NODE_EXTRA_CA_CERTS)", async () => {
    const script = writeScript(
      "client-node.cjs",
      `
const http = require("node:http"), https = require("node:https"), tls = require("node:tls");
const proxy = new URL(process.env.HTTPS_PROXY);
const auth = "Basic " + Buffer.from(decodeURIComponent(proxy.username) + ":" + decodeURIComponent(proxy.password)).toString("base64");
const connect = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: "api.github.com:443", headers: { host: "api.github.com:443", "proxy-authorization": auth } });
connect.on("connect", (res, socket) => {
  if (res.statusCode !== 200) { console.log("CONNECT", res.statusCode); process.exit(3); }
  const req = https.request({ host: "api.github.com", port: 443, defaultPort: 443, path: "/user/t-node", headers: { authorization: "Bearer placeholder", "x-client": "node" },
    createConnection: () => tls.connect({ socket, servername: "api.github.com" }) }, (resp) => {
    let body = ""; resp.on("data", (c) => (body += c));
    resp.on("end", () => { console.log(resp.statusCode); console.log(body); process.exit(resp.statusCode === 200 ? 0 : 1); });
  });
  req.on("error", (e) => { console.log("error", e.code || e.message); process.exit(4); });
  req.end();
});
connect.on("error", (e) => { console.log("connect error", e.code || e.message); process.exit(5); });
connect.end();
`,
    );
    const r = await runChild(H1, ["node", script]);
    expectInjected(r, "/user/t-node", "node");
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 2. Every auth type

describe("auth types", () => {
  test("bearer: the agent's placeholder Authorization is replaced", async () => {
    const { got } = await expectThrough({ host: "api.github.com", path: "/auth/bearer", headers: [["Authorization", "Bearer placeholder"]] });
    expect(got.headers.authorization).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
  }, 15_000);

  test("basic with a password", async () => {
    const { got } = await expectThrough({ host: "basic.example.com", path: "/auth/basic", headers: [["Authorization", `Basic ${b64("placeholder:placeholder")}`]] });
    expect(got.headers.authorization).toBe(`Basic ${b64(`${SECRETS.BASIC_USER}:${SECRETS.BASIC_PASS}`)}`);
  }, 15_000);

  test("basic without a password", async () => {
    const { got } = await expectThrough({ host: "solo.example.com", path: "/auth/solo" });
    expect(got.headers.authorization).toBe(`Basic ${b64(`${SECRETS.SOLO_USER}:`)}`);
  }, 15_000);

  test("api-key: custom header with prefix; the agent's copy of that header and its Authorization are replaced", async () => {
    const { got } = await expectThrough({
      host: "apikey.example.com",
      path: "/auth/apikey",
      headers: [
        ["x-API-key", "placeholder"],
        ["Authorization", "Bearer agent-own"],
        ["X-Other", HEADER_MARK],
      ],
    });
    expect(got.headers["x-api-key"]).toBe(`Token ${SECRETS.APIKEY_KEY}`);
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers["x-other"]).toBe(HEADER_MARK);
  }, 15_000);

  test("custom: two headers rendered from {{ KEY }} templates", async () => {
    const { got } = await expectThrough({ host: "custom.example.com", path: "/auth/custom", headers: [["X-One", "placeholder"]] });
    expect(got.headers["x-one"]).toBe(`id=${SECRETS.CUSTOM_ID}`);
    expect(got.headers["x-two"]).toBe(`Key ${SECRETS.CUSTOM_KEY} end`);
  }, 15_000);

  test("query: the parameter is appended (encoded) and the agent's own copy removed", async () => {
    // The agent's copies in every spelling: plain, percent-encoded name, and without a value.
    const { got } = await expectThrough({ host: "query.example.com", path: `/auth/query?q=${QUERY_MARK}&api_key=placeholder&api%5Fkey=placeholder2&z=2&api_key` });
    const url = new URL(got.url, "https://query.example.com");
    expect(url.pathname).toBe("/auth/query");
    expect(url.searchParams.getAll("api_key")).toEqual([SECRETS.QUERY_KEY]);
    expect(url.searchParams.get("q")).toBe(QUERY_MARK);
    expect(url.searchParams.get("z")).toBe("2");
    expect(got.url).not.toContain("placeholder");
  }, 15_000);

  test("passthrough service: nothing injected, the agent's headers untouched, the request still arrives", async () => {
    const { got } = await expectThrough({ host: "pass.example.com", path: "/auth/pass", headers: [["Authorization", "Bearer agent-own-pass"]] });
    expect(got.headers.authorization).toBe("Bearer agent-own-pass");
    expect(everything(got)).not.toContain(TAG);
    expect(header(got, "proxy-authorization")).toBeUndefined();
  }, 15_000);

  test("unmatched host under the default passthrough policy: a plain tunnel with the upstream's own certificate", async () => {
    // Trusting only U1's CA: the TLS handshake succeeds only if the proxy did not intercept.
    const { connect, res } = await viaTunnel({ host: "unmatched.example.net", path: "/auth/unmatched", headers: [["Authorization", "Bearer agent-own"]], ca: [u1Ca] });
    expect(connect.status).toBe(200);
    expect(res!.status).toBe(200);
    const got = onlyOne(U1, "/auth/unmatched");
    expect(got.headers.authorization).toBe("Bearer agent-own");
    expect(everything(got)).not.toContain(TAG);
    // And the same host with our CA only fails: it really is not intercepted.
    await expect(viaTunnel({ host: "unmatched.example.net", path: "/auth/unmatched-2", ca: [avCa] })).rejects.toThrow();
  }, 15_000);
});

// ---------------------------------------------------------------------------------------------
// 3. Header hygiene

describe("header hygiene", () => {
  test("Proxy-Authorization and hop-by-hop headers never reach the upstream; other headers pass unchanged", async () => {
    const { got } = await expectThrough({
      host: "api.github.com",
      path: "/hygiene/tunnel",
      method: "POST",
      headers: [
        ["Proxy-Authorization", main.proxyAuth],
        ["User-Agent", "hygiene-agent/1.0"],
        ["Accept", "application/vnd.github+json"],
        ["Cookie", "a=b; c=d"],
        ["X-Custom-Thing", `Value  With Spaces ${HEADER_MARK}`],
        ["X-Request-Id", "abc-123"],
        ["Connection", "keep-alive, X-Hop"],
        ["X-Hop", "should-go"],
        ["Content-Type", "application/json"],
      ],
      body: '{"hello":"world"}',
    });
    expect(got.method).toBe("POST");
    expect(got.body.toString()).toBe('{"hello":"world"}');
    expect(header(got, "proxy-authorization")).toBeUndefined();
    expect(header(got, "x-hop")).toBeUndefined();
    expect(header(got, "user-agent")).toBe("hygiene-agent/1.0");
    expect(header(got, "accept")).toBe("application/vnd.github+json");
    expect(header(got, "cookie")).toBe("a=b; c=d");
    expect(header(got, "x-custom-thing")).toBe(`Value  With Spaces ${HEADER_MARK}`);
    expect(header(got, "x-request-id")).toBe("abc-123");
    expect(header(got, "content-type")).toBe("application/json");
    expect(header(got, "authorization")).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
    expect(everything(got)).not.toContain("avs_");
  }, 15_000);

  test("a plain http:// request through HTTP_PROXY: Proxy-Authorization stripped, credential sent over TLS only", async () => {
    const r = await runChild(H1, ["curl", "-sS", "--fail-with-body", "-H", "Authorization: Bearer placeholder", "-H", "X-Client: curl-plain", "http://api.github.com/hygiene/plain"]);
    expect(r.code, show("curl http://", r)).toBe(0);
    expect(containsCanary(r.stdout + r.stderr)).toBeNull();
    const got = onlyOne(U1, "/hygiene/plain");
    // U1 only speaks TLS: the request arriving at all proves the upstream leg was HTTPS.
    expect(got.sni).toBe("api.github.com");
    expect(header(got, "authorization")).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
    expect(header(got, "proxy-authorization")).toBeUndefined();
    expect(header(got, "x-client")).toBe("curl-plain");
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 4. Precedence

describe("service precedence", () => {
  const cases: [string, number, string, string][] = [
    ["exact host over wildcard", 443, "exact.wild.example.com", SECRETS.EXACT_TOKEN],
    ["wildcard covers one label", 443, "a.wild.example.com", SECRETS.WILD_TOKEN],
    ["port-specific over port-less", 443, "ported.example.com", SECRETS.PORT_TOKEN],
    ["port-less on another port", 8443, "ported.example.com", SECRETS.PORTLESS_TOKEN],
    ["matching is case-insensitive", 443, "API.GitHub.COM", SECRETS.GITHUB_TOKEN],
  ];
  for (const [name, port, host, secret] of cases) {
    test(name, async () => {
      const path = `/prec/${name.replace(/\W+/g, "-")}`;
      const { got } = await expectThrough({ host, port, path, headers: [["Authorization", "Bearer placeholder"]] });
      expect(got.headers.authorization).toBe(`Bearer ${secret}`);
    }, 15_000);
  }

  test("longest path prefix wins (slack.com vs slack.com/api/* vs slack.com/api/chat.*)", async () => {
    const expected: [string, string][] = [
      ["/api/chat.postMessage", SECRETS.SLACK_CHAT],
      ["/api/users.list", SECRETS.SLACK_API],
      ["/apix/other", SECRETS.SLACK_ROOT],
      ["/", SECRETS.SLACK_ROOT],
    ];
    // One tunnel, several requests: the service is chosen per request, not per tunnel.
    const tunnel = await openTunnel({ proxyPort: S1.mitmPort, host: "slack.com", proxyAuthorization: main.proxyAuth, ca: [avCa] });
    expect(tunnel.connect.status).toBe(200);
    try {
      for (const [path, secret] of expected) {
        const before = U1.received.length;
        const res = await tunnel.conn!.request("GET", `${path}?precedence=1`, [["Host", "slack.com"]]);
        expect(res.status, res.text).toBe(200);
        const got = U1.received[before]!;
        expect(got.url).toBe(`${path}?precedence=1`);
        expect(got.headers.authorization, path).toBe(`Bearer ${secret}`);
      }
    } finally {
      tunnel.conn!.close();
    }
  }, 15_000);
});

// ---------------------------------------------------------------------------------------------
// 5. Look-alike hosts

describe("look-alike hosts never get a credential", () => {
  test("api.github.com.evil.io, evil-api.github.com, api.github.com., github.com, two-label wildcard", async () => {
    const u1Before = U1.received.length;
    const u2Before = U2.received.length;
    const results: string[] = [];
    for (const host of LOOKALIKES) {
      const r = await runChild(H1, [
        "curl",
        "-sS",
        "--cacert",
        lookalikeBundle,
        "-H",
        `Authorization: Bearer placeholder`,
        "-H",
        `X-Lookalike: ${host}`,
        "-w",
        "\nconnect=%{http_connect} code=%{http_code}\n",
        `https://${host}/lookalike`,
      ]);
      expect(containsCanary(r.stdout + r.stderr), show(host, r)).toBeNull();
      results.push(`${host}: exit ${r.code} ${r.stdout.trim().split("\n").pop()}`);
    }
    // The raw client too, with the trailing dot in the CONNECT itself.
    const dotted = await viaTunnel({ host: "api.github.com.", path: "/lookalike-raw", ca: [avCa, u2Ca] }).catch((e: Error) => ({ connect: null, res: null, error: e }));
    if (dotted.connect) expect(dotted.connect.status, dotted.connect.text).not.toBe(200);

    const lookalikeTraffic = U2.received.slice(u2Before);
    for (const r of lookalikeTraffic) {
      expect(containsCanary(everything(r)), everything(r)).toBeNull();
      expect(header(r, "authorization")).toBe("Bearer placeholder");
    }
    // Not vacuous: the look-alikes did reach their (look-alike) upstream untouched.
    expect(lookalikeTraffic.map((r) => r.sni).sort(), results.join("\n")).toEqual(expect.arrayContaining(["api.github.com.evil.io", "evil-api.github.com", "github.com"]));
    // And nothing for them went to the real API.
    expect(U1.received.slice(u1Before).filter((r) => r.url.startsWith("/lookalike"))).toEqual([]);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// 6. 407

function expect407(connect: RawResponse, message?: RegExp): void {
  expect(connect.status, connect.text).toBe(407);
  expect(connect.headers["proxy-authenticate"]).toMatch(/^Basic realm=/);
  expect(connect.headers["x-agent-vault-error"]).toBe("unauthorized");
  const body = connect.json();
  expect(body.error).toBe("unauthorized");
  if (message) expect(String(body.message)).toMatch(message);
}

describe("407 on the proxy listener", () => {
  test("CONNECT without a token", async () => {
    const { connect } = await viaTunnel({ host: "api.github.com", path: "/407/none", auth: null });
    expect407(connect);
  }, 15_000);

  test("CONNECT with a wrong token", async () => {
    const { connect } = await viaTunnel({ host: "api.github.com", path: "/407/wrong", auth: basicProxyAuth(`avs_${randomBytes(32).toString("base64url")}`) });
    expect407(connect, /not valid/);
    const bearer = await viaTunnel({ host: "api.github.com", path: "/407/wrong", auth: "Bearer nope" });
    expect407(bearer.connect);
  }, 15_000);

  test("a plain absolute-form request without a token", async () => {
    const conn = await openPlain(S1.mitmPort);
    try {
      const res = await conn.request("GET", "http://api.github.com/407/plain", [["Host", "api.github.com"]]);
      expect407(res);
    } finally {
      conn.close();
    }
    expect(receivedWith(U1, "/407/")).toEqual([]);
  }, 15_000);

  test("a session revoked with `vault session revoke ID`", async () => {
    const holder = await holdSession(H1);
    await expectThrough({ host: "api.github.com", path: "/407/before-revoke", auth: holder.proxyAuth });
    await ok(H1, ["vault", "session", "revoke", holder.id!]);
    const { connect } = await viaTunnel({ host: "api.github.com", path: "/407/after-revoke", auth: holder.proxyAuth });
    expect407(connect, /revoked/);
    // The agent API refuses it too (401 there), including the explicit proxy.
    for (const path of ["/discover", "/proxy/api.github.com/407/after-revoke-explicit"]) {
      const conn = await openPlain(S1.apiPort);
      const res = await conn.request("GET", path, [
        ["Host", "127.0.0.1"],
        ["Authorization", `Bearer ${holder.token}`],
      ]);
      conn.close();
      expect(res.status, `${path}: ${res.text}`).toBe(401);
      expect(res.headers["x-agent-vault-error"]).toBe("unauthorized");
    }
    expect(receivedWith(U1, "/407/after-revoke")).toEqual([]);
    await holder.close();
  }, 30_000);

  test("a session past its --ttl", async () => {
    const holder = await holdSession(H1, { ttl: "1s" });
    await Bun.sleep(1200);
    const { connect } = await viaTunnel({ host: "api.github.com", path: "/407/expired", auth: holder.proxyAuth });
    expect407(connect, /expired/);
    await holder.close();
  }, 30_000);

  test("revocation closes an already-open keep-alive tunnel", async () => {
    const holder = await holdSession(H1);
    const tunnel = await openTunnel({ proxyPort: S1.mitmPort, host: "api.github.com", proxyAuthorization: holder.proxyAuth, ca: [avCa] });
    expect(tunnel.connect.status).toBe(200);
    const conn = tunnel.conn!;
    const first = await conn.request("GET", "/407/open-1", [["Host", "api.github.com"]]);
    expect(first.status).toBe(200);
    expect(first.headers.connection ?? "keep-alive").not.toMatch(/close/i);
    const second = await conn.request("GET", "/407/open-2", [["Host", "api.github.com"]]);
    expect(second.status).toBe(200);
    expect(conn.reader.closed).toBe(false);
    await ok(H1, ["vault", "session", "revoke", holder.id!]);
    // No request needed: the proxy closes the tunnel by itself.
    expect(await conn.reader.closesWithin(5000)).toBe(true);
    conn.socket.on("error", () => undefined);
    await conn.request("GET", "/407/open-3", [["Host", "api.github.com"]], undefined, 2000).then(
      (res) => expect(res.status).toBe(407),
      () => undefined,
    );
    expect(receivedWith(U1, "/407/open-").map((r) => r.url)).toEqual(["/407/open-1", "/407/open-2"]);
    conn.close();
    await holder.close();
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 7. 403

describe("403", () => {
  test("unmatched host under `--unmatched deny`: host_not_allowed with a proposal hint the agent can read", async () => {
    const r = await runChild(H1, ["sh", "-c", 'curl -sS -D - https://api.stripe.com/v1/customers; echo; echo "==="; curl -sS -D - https://unknown.example.org/x'], {
      flags: ["--vault", "strict"],
    });
    expect(r.code, show("deny", r)).toBe(0);
    const [stripe, unknown] = r.stdout.split("===");
    for (const part of [stripe!, unknown!]) {
      expect(part).toMatch(/^HTTP\/1\.1 403/m);
      expect(part).toMatch(/^x-agent-vault-error: host_not_allowed\r?$/im);
    }
    const stripeBody = JSON.parse(stripe!.slice(stripe!.indexOf("{")).trim()) as {
      error: string;
      proposal_hint: { services: { name: string; host: string; auth: Record<string, string> }[]; credentials: { key: string }[] };
    };
    expect(stripeBody.error).toBe("host_not_allowed");
    expect(stripeBody.proposal_hint.services[0]).toMatchObject({ action: "set", name: "stripe", host: "api.stripe.com", auth: { type: "bearer", token: "STRIPE_SECRET_KEY" } });
    expect(stripeBody.proposal_hint.credentials.map((c) => c.key)).toEqual(["STRIPE_SECRET_KEY"]);
    const unknownBody = JSON.parse(unknown!.slice(unknown!.indexOf("{")).trim()) as typeof stripeBody;
    expect(unknownBody.error).toBe("host_not_allowed");
    expect(unknownBody.proposal_hint.services[0]!.host).toBe("unknown.example.org");
    const key = String(unknownBody.proposal_hint.services[0]!.auth.token);
    expect(key).toMatch(/^[A-Z][A-Z0-9_]*$/);
    expect(unknownBody.proposal_hint.credentials.map((c) => c.key)).toEqual([key]);
  }, 30_000);

  test("a disabled service: service_disabled, nothing forwarded", async () => {
    const { connect, res } = await viaTunnel({ host: "disabled.example.com", path: "/403/disabled" });
    expect(connect.status).toBe(200);
    expectErrorAnswer(res, 403, "service_disabled");
    expect(receivedWith(U1, "/403/disabled")).toEqual([]);
  }, 15_000);

  test("a service on a name that resolves to loopback: forbidden_address", async () => {
    const { connect, res } = await viaTunnel({ host: "localhost", port: U1.port, path: "/403/local" });
    expect(connect.status).toBe(200);
    expectErrorAnswer(res, 403, "forbidden_address");
    expect(receivedWith(U1, "/403/local")).toEqual([]);
  }, 15_000);

  test("a passthrough CONNECT to a private address: the CONNECT itself gets 403", async () => {
    for (const [host, port] of [
      ["127.0.0.1", U1.port],
      ["169.254.169.254", 443],
      ["10.1.2.3", 443],
    ] as const) {
      const { connect } = await viaTunnel({ host, port, path: "/403/private", ca: [u1Ca] });
      expect(connect.status, `${host}: ${connect.text}`).toBe(403);
      expect(connect.headers["x-agent-vault-error"]).toBe("forbidden_address");
      expect(connect.json().error).toBe("forbidden_address");
    }
    expect(receivedWith(U1, "/403/private")).toEqual([]);
  }, 15_000);

  test("AGENT_VAULT_NETWORK_ALLOWLIST=127.0.0.0/8 lets loopback through (run serving in-process)", async () => {
    // run sets NO_PROXY=localhost,127.0.0.1: `--noproxy ''` makes curl use the proxy anyway.
    // localhost:U1 is a service (intercepted, injected); localhost:U2 is not (a plain tunnel).
    const script = (tag: string) =>
      [
        `curl -sS --noproxy '' -H 'Authorization: Bearer placeholder' -D - -w '\\n${tag}_intercept_code=%{http_code}\\n' https://localhost:${U1.port}/allow/${tag}-intercept`,
        `curl -sS --noproxy '' --cacert ${U2.caFile} -w '\\n${tag}_tunnel_connect=%{http_connect} ${tag}_tunnel_code=%{http_code}\\n' https://localhost:${U2.port}/allow/${tag}-tunnel`,
        "true",
      ].join("; ");
    // Without the allowlist (same in-process setup): refused.
    const refused = await runChild(H2, ["sh", "-c", script("off")], { env: { AGENT_VAULT_UPSTREAM_CA: U1.caFile } });
    expect(refused.code, show("no allowlist", refused)).toBe(0);
    const off = kv(refused.stdout);
    expect(off.off_intercept_code, show("no allowlist", refused)).toBe("403");
    expect(refused.stdout).toMatch(/^x-agent-vault-error: forbidden_address\r?$/im);
    expect(off.off_tunnel_connect, show("no allowlist", refused)).toBe("403");
    expect(receivedWith(U1, "/allow/off-")).toEqual([]);
    expect(receivedWith(U2, "/allow/off-")).toEqual([]);

    const r = await runChild(H2, ["sh", "-c", script("on")], { env: { AGENT_VAULT_NETWORK_ALLOWLIST: "127.0.0.0/8", AGENT_VAULT_UPSTREAM_CA: U1.caFile } });
    expect(r.code, show("allowlist", r)).toBe(0);
    const v = kv(r.stdout);
    expect(v.on_intercept_code, show("allowlist", r)).toBe("200");
    expect(v.on_tunnel_connect, show("allowlist", r)).toBe("200");
    expect(v.on_tunnel_code, show("allowlist", r)).toBe("200");
    expect(header(onlyOne(U1, "/allow/on-intercept"), "authorization")).toBe(`Bearer ${SECRETS.LOCAL_TOKEN}`);
    const tunnelled = onlyOne(U2, "/allow/on-tunnel");
    expect(tunnelled.sni).toBe("localhost");
    expect(header(tunnelled, "authorization")).toBeUndefined();
    expect(containsCanary(r.stdout + r.stderr + refused.stdout + refused.stderr)).toBeNull();
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 8. 502

describe("502", () => {
  test("credential_not_found: the service's credential was deleted", async () => {
    const { res } = await viaTunnel({ host: "missing.example.com", path: "/502/missing" });
    const body = expectErrorAnswer(res, 502, "credential_not_found");
    expect(String(body.message)).toContain("MISSING_TOKEN");
    expect(receivedWith(U1, "/502/missing")).toEqual([]);
  }, 15_000);

  test("upstream_error: connection refused", async () => {
    const { res } = await viaTunnel({ host: "refused.example.com", path: "/502/refused" });
    expectErrorAnswer(res, 502, "upstream_error");
  }, 15_000);

  test("upstream_error: the upstream closes the connection without answering", async () => {
    const { res } = await viaTunnel({ host: "closer.example.com", path: "/close-me" });
    expectErrorAnswer(res, 502, "upstream_error");
  }, 15_000);

  test("upstream_tls_error: the upstream certificate is not trusted (no AGENT_VAULT_UPSTREAM_CA)", async () => {
    const before = receivedWith(U1, "/502/tls").length;
    const r = await runChild(H2, ["curl", "-sS", "-D", "-", "-H", "Authorization: Bearer placeholder", "https://api.github.com/502/tls"], {
      env: { AGENT_VAULT_CONNECT_TO: `api.github.com:443:127.0.0.1:${U1.port}` },
    });
    expect(r.code, show("tls", r)).toBe(0);
    // curl -D shows the CONNECT answer first, then the answer inside the tunnel.
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 502/m);
    expect(r.stdout).toMatch(/^x-agent-vault-error: upstream_tls_error\r?$/im);
    expect(JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))).error).toBe("upstream_tls_error");
    expect(receivedWith(U1, "/502/tls").length).toBe(before);
    expect(containsCanary(r.stdout + r.stderr)).toBeNull();
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 9. Agent API

describe("agent API", () => {
  async function api(method: string, path: string, headers: HeaderList = []): Promise<RawResponse> {
    const conn = await openPlain(S1.apiPort);
    try {
      return await conn.request(method, path, [["Host", `127.0.0.1:${S1.apiPort}`], ["Connection", "close"], ...headers]);
    } finally {
      conn.close();
    }
  }

  test("GET /health", async () => {
    const res = await api("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  }, 10_000);

  test("GET /discover: names only with the session token; 401 without", async () => {
    const res = await api("GET", "/discover", [["Authorization", `Bearer ${main.token}`]]);
    expect(res.status, res.text).toBe(200);
    const body = res.json<{ vault: string; services: { name: string; host: string }[]; available_credentials: string[] }>();
    expect(body.vault).toBe("default");
    expect(body.services).toContainEqual({ name: "github", host: "api.github.com" });
    expect(body.services).toContainEqual({ name: "slack-api", host: "slack.com/api/*" });
    expect(body.services.map((s) => s.name)).not.toContain("disabled");
    for (const s of body.services) expect(Object.keys(s).sort()).toEqual(["host", "name"]);
    expect(body.available_credentials).toEqual(
      Object.keys(SECRETS)
        .filter((k) => k !== "MISSING_TOKEN")
        .sort(),
    );
    expect(containsCanary(res.text)).toBeNull();

    for (const headers of [[], [["Authorization", "Bearer avs_not-a-token"]], [["Authorization", main.proxyAuth]]] as HeaderList[]) {
      const denied = await api("GET", "/discover", headers);
      expect(denied.status).toBe(401);
      expect(denied.headers["x-agent-vault-error"]).toBe("unauthorized");
      expect(denied.json().error).toBe("unauthorized");
    }
  }, 15_000);

  test("/proxy/{host}/{path}: injects, and the session token never reaches the upstream", async () => {
    const r = await runChild(H1, [
      "sh",
      "-c",
      'curl -sS --fail-with-body -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" -H "X-Client: explicit" "$AGENT_VAULT_ADDR/proxy/api.github.com/repos/x/explicit?page=2"',
    ]);
    expect(r.code, show("explicit", r)).toBe(0);
    expect(containsCanary(r.stdout + r.stderr)).toBeNull();
    const got = onlyOne(U1, "/repos/x/explicit");
    expect(got.url).toBe("/repos/x/explicit?page=2");
    expect(got.sni).toBe("api.github.com");
    expect(got.host).toBe("api.github.com");
    expect(header(got, "authorization")).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
    expect(header(got, "x-client")).toBe("explicit");
    expect(everything(got)).not.toContain("avs_");

    const query = await api("GET", `/proxy/query.example.com/explicit/query?api_key=placeholder&q=${QUERY_MARK}`, [["Authorization", `Bearer ${main.token}`]]);
    expect(query.status, query.text).toBe(200);
    const q = new URL(onlyOne(U1, "/explicit/query").url, "https://x");
    expect(q.searchParams.getAll("api_key")).toEqual([SECRETS.QUERY_KEY]);

    const denied = await api("GET", "/proxy/api.github.com/explicit/denied");
    expect(denied.status).toBe(401);
    expect(denied.headers["x-agent-vault-error"]).toBe("unauthorized");
    expect(receivedWith(U1, "/explicit/denied")).toEqual([]);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 10. Traffic: SSE, large bodies, WebSocket

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

describe("traffic", () => {
  test("server-sent events arrive as they are sent", async () => {
    const script = writeScript(
      "client-sse.ts",
      [
        'const r = await fetch("https://sse.example.com/stream/sse", { headers: { Authorization: "Bearer placeholder", Accept: "text/event-stream" } });',
        'console.log(JSON.stringify({ status: r.status, type: r.headers.get("content-type") }));',
        "const reader = r.body!.getReader();",
        "const decoder = new TextDecoder();",
        "for (;;) {",
        "  const { done, value } = await reader.read();",
        "  if (done) break;",
        "  console.log(JSON.stringify({ t: Date.now(), text: decoder.decode(value) }));",
        "}",
      ].join("\n"),
    );
    const r = await runChild(H1, [process.execPath, script]);
    expect(r.code, show("sse", r)).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { status?: number; type?: string; t?: number; text?: string });
    expect(lines[0]).toEqual({ status: 200, type: "text/event-stream" });
    const arrivals: number[] = [];
    let seen = "";
    for (const line of lines.slice(1)) {
      seen += line.text;
      for (let i = arrivals.length; i < 3 && seen.includes(`data: event-${i}\n\n`); i++) arrivals.push(line.t!);
    }
    expect(arrivals.length, seen).toBe(3);
    expect(sseSentAt.length).toBe(3);
    const lags = arrivals.map((t, i) => t - sseSentAt[i]!);
    console.log(`[proxy.test] SSE event lags: ${lags.join(", ")} ms`);
    for (const lag of lags) expect(lag, `event lags ${lags.join(", ")} ms`).toBeLessThan(150);
    // Not batched: the client saw the gaps.
    expect(arrivals[2]! - arrivals[0]!).toBeGreaterThan(400);
    expect(header(onlyOne(U1, "/stream/sse"), "authorization")).toBe(`Bearer ${SECRETS.SSE_TOKEN}`);
  }, 30_000);

  /** Runs `work` while sampling the server's RSS every 50 ms; returns the peak (KiB). */
  async function withRss<T>(work: () => Promise<T>): Promise<{ result: T; baseline: number; peak: number; seconds: number }> {
    const baseline = rssKiB(S1.pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(S1.pid));
      } catch {
        // the process is gone; the test fails elsewhere
      }
    }, 50);
    const started = Date.now();
    try {
      const result = await work();
      return { result, baseline, peak: Math.max(peak, rssKiB(S1.pid)), seconds: (Date.now() - started) / 1000 };
    } finally {
      clearInterval(sampler);
    }
  }
  const BIG = 1024 ** 3;
  const RSS_LIMIT_KIB = 300 * 1024;
  const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

  test("1 GiB streamed upload through the proxy: byte count matches, proxy RSS stays under 300 MB", async () => {
    const {
      result: r,
      baseline,
      peak,
      seconds,
    } = await withRss(() =>
      runChild(
        H1,
        [
          "sh",
          "-c",
          'head -c "$BIG_N" /dev/zero | curl -sS -H "Expect:" -H "Authorization: Bearer placeholder" -H "Content-Type: application/octet-stream" -X POST -T - -w "\\nupload_code=%{http_code} upload_sent=%{size_upload}\\n" https://big.example.com/stream/upload',
        ],
        { env: { BIG_N: String(BIG) } },
      ),
    );
    const summary = `1 GiB upload in ${seconds.toFixed(1)} s; proxy RSS ${mib(baseline)} -> peak ${mib(peak)}`;
    console.log(`[proxy.test] ${summary}`);
    const context = `${show("upload", r)}\n  ${summary}`;
    const v = kv(r.stdout);
    expect(r.code, context).toBe(0);
    expect(v.upload_code, context).toBe("200");
    // size_upload counts curl's chunked framing too: at least N.
    expect(Number(v.upload_sent), context).toBeGreaterThanOrEqual(BIG);
    expect(uploadedBytes, context).toBe(BIG);
    expect(r.stdout).toContain(`{"bytes":${BIG}}`);
    expect(header(onlyOne(U1, "/stream/upload"), "authorization")).toBe(`Bearer ${SECRETS.BIG_TOKEN}`);
    expect(peak, context).toBeLessThan(RSS_LIMIT_KIB);
  }, 120_000);

  test("1 GiB streamed download through the proxy: byte count matches, proxy RSS stays under 300 MB", async () => {
    const {
      result: r,
      baseline,
      peak,
      seconds,
    } = await withRss(() =>
      runChild(
        H1,
        [
          "sh",
          "-c",
          'curl -sS -H "Authorization: Bearer placeholder" -o /dev/null -w "download_code=%{http_code} download_size=%{size_download}\\n" "https://big.example.com/stream/download?bytes=$BIG_N"',
        ],
        {
          env: { BIG_N: String(BIG) },
        },
      ),
    );
    const summary = `1 GiB download in ${seconds.toFixed(1)} s; proxy RSS ${mib(baseline)} -> peak ${mib(peak)}`;
    console.log(`[proxy.test] ${summary}`);
    const context = `${show("download", r)}\n  ${summary}`;
    const v = kv(r.stdout);
    expect(r.code, context).toBe(0);
    expect(v.download_code, context).toBe("200");
    expect(Number(v.download_size), context).toBe(BIG);
    expect(header(onlyOne(U1, "/stream/download"), "authorization")).toBe(`Bearer ${SECRETS.BIG_TOKEN}`);
    expect(peak, context).toBeLessThan(RSS_LIMIT_KIB);
  }, 120_000);

  // Backpressure, deterministically: a peer that does not read must stop the other side, so
  // the proxy holds a few buffers, not the body (DESIGN: streamed both ways with backpressure).
  const STALL_BODY = 256 * 1024 ** 2;
  const AHEAD_LIMIT = 64 * 1024 ** 2;

  test("backpressure on download: an agent reading at 1 MB/s holds back the upstream", async () => {
    const {
      result: r,
      baseline,
      peak,
    } = await withRss(() =>
      runChild(H1, ["sh", "-c", 'curl -sS --limit-rate 1M --max-time 3 -o /dev/null -w "got=%{size_download}\\n" "https://big.example.com/stream/download?bytes=$BIG_N"; true'], {
        env: { BIG_N: String(STALL_BODY) },
      }),
    );
    const agentGot = Number(kv(r.stdout).got);
    const summary = `agent read ${mib(agentGot / 1024)} in 3 s; the upstream had pushed ${mib(downloadSent / 1024)} into the proxy; proxy RSS ${mib(baseline)} -> peak ${mib(peak)}`;
    console.log(`[proxy.test] download stall: ${summary}`);
    expect(agentGot, summary).toBeGreaterThan(0);
    expect(downloadSent, summary).toBeLessThan(agentGot + AHEAD_LIMIT);
    expect(peak, summary).toBeLessThan(RSS_LIMIT_KIB);
  }, 30_000);

  test("backpressure on upload: an upstream that does not read holds back the agent", async () => {
    const {
      result: r,
      baseline,
      peak,
    } = await withRss(() =>
      runChild(
        H1,
        ["sh", "-c", 'head -c "$BIG_N" /dev/zero | curl -sS -H "Expect:" -X POST -T - --max-time 2 -o /dev/null -w "sent=%{size_upload}\\n" https://big.example.com/stream/slow-upload; true'],
        { env: { BIG_N: String(STALL_BODY) } },
      ),
    );
    const agentSent = Number(kv(r.stdout).sent);
    const summary = `the agent pushed ${mib(agentSent / 1024)} into the proxy in 2 s while the upstream read nothing; proxy RSS ${mib(baseline)} -> peak ${mib(peak)}`;
    console.log(`[proxy.test] upload stall: ${summary}`);
    expect(Number.isFinite(agentSent), show("upload stall", r)).toBe(true);
    expect(agentSent, summary).toBeLessThan(AHEAD_LIMIT);
    expect(peak, summary).toBeLessThan(RSS_LIMIT_KIB);
    await Bun.sleep(1500); // let the route drain what arrived before the next test
  }, 30_000);

  test("WebSocket: the upgrade carries the injected credential and messages echo", async () => {
    const tunnel = await openTunnel({ proxyPort: S1.mitmPort, host: "ws.example.com", proxyAuthorization: main.proxyAuth, ca: [avCa] });
    expect(tunnel.connect.status).toBe(200);
    const conn = tunnel.conn!;
    try {
      const key = randomBytes(16).toString("base64");
      conn.socket.write(
        [
          "GET /ws/echo HTTP/1.1",
          "Host: ws.example.com",
          "Upgrade: websocket",
          "Connection: Upgrade",
          `Sec-WebSocket-Key: ${key}`,
          "Sec-WebSocket-Version: 13",
          "Authorization: Bearer placeholder",
          `X-Ws-Mark: ${HEADER_MARK}`,
          "",
          "",
        ].join("\r\n"),
      );
      const upgrade = await readResponse(conn.reader);
      expect(upgrade.status, upgrade.text).toBe(101);
      expect(upgrade.headers["sec-websocket-accept"]).toBe(createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64"));
      const got = onlyOne(U1, "/ws/echo");
      expect(header(got, "authorization")).toBe(`Bearer ${SECRETS.WS_TOKEN}`);
      expect(header(got, "upgrade")).toMatch(/websocket/i);
      expect(header(got, "x-ws-mark")).toBe(HEADER_MARK);
      expect(header(got, "proxy-authorization")).toBeUndefined();
      for (const message of ["hello", "second message", "x".repeat(70_000)]) {
        conn.socket.write(wsFrame(message, { mask: true }));
        const echo = await readWsFrame(conn.reader);
        expect(echo.opcode).toBe(0x1);
        expect(echo.payload.toString()).toBe(message);
      }
      const binary = randomBytes(4096);
      conn.socket.write(wsFrame(binary, { opcode: 0x2, mask: true }));
      const echo = await readWsFrame(conn.reader);
      expect(echo.opcode).toBe(0x2);
      expect(Buffer.compare(echo.payload, binary)).toBe(0);
      conn.socket.write(wsFrame(Buffer.from([0x03, 0xe8]), { opcode: 0x8, mask: true }));
      expect((await readWsFrame(conn.reader)).opcode).toBe(0x8);
    } finally {
      conn.close();
    }
  }, 30_000);
});

describe("open WebSocket and --service", () => {
  test("revoking the session closes an open WebSocket", async () => {
    const holder = await holdSession(H1);
    const tunnel = await openTunnel({ proxyPort: S1.mitmPort, host: "ws.example.com", proxyAuthorization: holder.proxyAuth, ca: [avCa] });
    const conn = tunnel.conn!;
    try {
      conn.socket.write(webSocketOffer("ws.example.com", "/ws/revoke"));
      expect((await readResponse(conn.reader)).status).toBe(101);
      conn.socket.write(wsFrame("before", { mask: true }));
      expect((await readWsFrame(conn.reader)).payload.toString()).toBe("before");
      await ok(H1, ["vault", "session", "revoke", holder.id!]);
      expect(await conn.reader.closesWithin(5000)).toBe(true);
    } finally {
      conn.close();
      await holder.close();
    }
  }, 30_000);

  test("`run --service github`: other services get 403 and /discover lists only github", async () => {
    const r = await runChild(
      H1,
      [
        "sh",
        "-c",
        [
          "curl -sS -o /dev/null -w 'github_code=%{http_code}\\n' https://api.github.com/limited/github",
          "curl -sS -D - -o /dev/null -w 'basic_code=%{http_code}\\n' https://basic.example.com/limited/basic",
          'curl -sS -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" "$AGENT_VAULT_ADDR/discover"',
        ].join("; "),
      ],
      { flags: ["--service", "github"] },
    );
    expect(r.code, show("--service", r)).toBe(0);
    const v = kv(r.stdout);
    expect(v.github_code, show("--service", r)).toBe("200");
    expect(v.basic_code, show("--service", r)).toBe("403");
    expect(r.stdout).toMatch(/^x-agent-vault-error: host_not_allowed\r?$/im);
    const discovery = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{"vault"'))) as { services: { name: string }[] };
    expect(discovery.services.map((s) => s.name)).toEqual(["github"]);
    expect(header(onlyOne(U1, "/limited/github"), "authorization")).toBe(`Bearer ${SECRETS.GITHUB_TOKEN}`);
    expect(receivedWith(U1, "/limited/basic")).toEqual([]);
    expect(containsCanary(r.stdout + r.stderr)).toBeNull();
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 11. The request log

interface LogLine {
  time: string;
  method: string;
  host: string;
  path: string;
  service: string | null;
  status: number;
  [key: string]: unknown;
}

function logLines(home: TempHome): LogLine[] {
  const path = join(home.dir, "requests.log");
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogLine);
}

describe("request log", () => {
  test("one JSON line per request: method, host, path without query, service, status; no secrets or header values", async () => {
    for (let i = 0; i < 3; i++) await expectThrough({ host: "query.example.com", path: `/log/count-${i}?api_key=placeholder&q=${QUERY_MARK}`, headers: [["X-Mark", HEADER_MARK]] });
    const lines = await waitUntil(
      "log lines for /log/count-*",
      () => {
        const found = logLines(H1).filter((l) => l.path.startsWith("/log/count-"));
        return found.length >= 3 ? found : null;
      },
      5000,
    );
    expect(lines.length).toBe(3);
    for (const [i, line] of lines.entries()) {
      expect(line).toMatchObject({ method: "GET", host: "query.example.com", path: `/log/count-${i}`, service: "query", status: 200 });
      expect(Number.isNaN(Date.parse(line.time))).toBe(false);
    }
    const raw = readFileSync(join(H1.dir, "requests.log"), "utf8");
    const all = logLines(H1);
    expect(raw.trim().split("\n").length).toBe(all.length);
    for (const line of all) {
      expect(typeof line.method).toBe("string");
      expect(typeof line.host).toBe("string");
      expect(typeof line.path).toBe("string");
      expect(typeof line.status).toBe("number");
      expect(line.path).not.toContain("?");
    }
    // Earlier tests' requests are there too, with their outcome.
    expect(all).toContainEqual(expect.objectContaining({ host: "api.github.com", path: "/user/t-curl", service: "github", status: 200 }));
    expect(all).toContainEqual(expect.objectContaining({ host: "disabled.example.com", path: "/403/disabled", service: "disabled", status: 403 }));
    expect(all).toContainEqual(expect.objectContaining({ host: "missing.example.com", path: "/502/missing", status: 502 }));
    expect(all).toContainEqual(expect.objectContaining({ method: "CONNECT", host: "api.github.com", status: 407 }));
    expect(all).toContainEqual(expect.objectContaining({ host: "api.github.com", path: "/repos/x/explicit", status: 200 }));
    expect(containsCanary(raw)).toBeNull();
    expect(raw).not.toContain(QUERY_MARK);
    expect(raw).not.toContain(HEADER_MARK);
    expect(raw).not.toContain("placeholder");
    expect(raw).not.toContain("avs_");
    expect(raw).not.toContain("api_key");
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 12. `run` itself

describe("run", () => {
  test("the environment contract: proxy, token, CA bundle; no master password; inherited copies replaced", async () => {
    const inherited = {
      HTTPS_PROXY: "http://inherited:1",
      https_proxy: "http://inherited-lower:1",
      HTTP_PROXY: "http://inherited:2",
      http_proxy: "http://inherited-lower:2",
      NO_PROXY: "inherited.example",
      SSL_CERT_FILE: "/inherited.pem",
      NODE_EXTRA_CA_CERTS: "/inherited.pem",
      REQUESTS_CA_BUNDLE: "/inherited.pem",
      AGENT_VAULT_SESSION_TOKEN: "inherited-token",
    };
    const r = await runChild(H1, ["env"], { env: inherited });
    expect(r.code, show("env", r)).toBe(0);
    expect(r.stdout).not.toContain(TEST_PASSWORD);
    expect(r.stdout).not.toContain("inherited");
    const entries = r.stdout.split("\n").filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l));
    const count = (name: string) => entries.filter((l) => l.startsWith(`${name}=`)).length;
    const value = (name: string) => entries.find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);
    expect(count("AGENT_VAULT_MASTER_PASSWORD")).toBe(0);
    const token = value("AGENT_VAULT_SESSION_TOKEN")!;
    expect(token).toMatch(/^avs_[A-Za-z0-9_-]+$/);
    const proxyUrl = `http://${token}:default@127.0.0.1:${S1.mitmPort}`;
    for (const name of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]) {
      expect(count(name), name).toBe(1);
      expect(value(name), name).toBe(proxyUrl);
    }
    expect(value("NO_PROXY")).toBe("localhost,127.0.0.1,::1");
    expect(value("NODE_USE_ENV_PROXY")).toBe("1");
    expect(value("AGENT_VAULT_ADDR")).toBe(`http://127.0.0.1:${S1.apiPort}`);
    expect(value("AGENT_VAULT_VAULT")).toBe("default");
    const bundle = join(H1.dir, "ca-bundle.pem");
    for (const name of ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "DENO_CERT", "PIP_CERT", "CARGO_HTTP_CAINFO", "AWS_CA_BUNDLE"]) {
      expect(count(name), name).toBe(1);
      expect(value(name), name).toBe(bundle);
    }
    const pem = readFileSync(bundle, "utf8");
    expect(pem).toContain(avCa.trim());
    expect((pem.match(/BEGIN CERTIFICATE/g) ?? []).length).toBeGreaterThan(10);
    // The session ends with the child.
    const { connect } = await viaTunnel({ host: "api.github.com", path: "/run/after-exit", auth: basicProxyAuth(token) });
    expect407(connect, /revoked/);
  }, 30_000);

  test("the child's exit code is run's exit code", async () => {
    const r = await runChild(H1, ["sh", "-c", "exit 7"]);
    expect(r.code).toBe(7);
    const zero = await runChild(H1, ["true"]);
    expect(zero.code).toBe(0);
  }, 30_000);

  test("stdin goes to the child", async () => {
    const r = await runChild(H1, ["sh", "-c", "tr a-z A-Z"], { stdin: "hello vault\nsecond line\n" });
    expect(r.code, show("stdin", r)).toBe(0);
    expect(r.stdout).toBe("HELLO VAULT\nSECOND LINE\n");
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// 13. The canary, everywhere (runs last)

describe("no secret anywhere", () => {
  test("the secret TAG is absent from every output, every log, and every look-alike upstream", async () => {
    await main.close();
    await S1.stop();
    expect(outputs.length).toBeGreaterThan(30);
    for (const o of outputs) {
      expect(containsCanary(o.stdout), `${o.label} stdout`).toBeNull();
      expect(containsCanary(o.stderr), `${o.label} stderr`).toBeNull();
    }
    for (const home of homes) {
      for (const name of readdirSync(home.dir)) {
        if (!/\.log(\.\d+)?$/.test(name)) continue;
        const text = readFileSync(join(home.dir, name), "utf8");
        expect(containsCanary(text), `${home.dir}/${name}`).toBeNull();
      }
    }
    expect(existsSync(join(H1.dir, "requests.log"))).toBe(true);
    expect(existsSync(join(H2.dir, "requests.log"))).toBe(true);
    for (const r of U2.received) expect(containsCanary(everything(r)), everything(r)).toBeNull();
    // The real upstream never saw a session token or a proxy credential.
    for (const r of U1.received) {
      expect(header(r, "proxy-authorization"), r.url).toBeUndefined();
      expect(everything(r), r.url).not.toContain("avs_");
    }
  }, 30_000);
});
