// One broker for the upgrade and WebSocket attacks (test/attacks/upgrade-h2c, websocket-frames,
// http-features): the compiled binary run as the unprivileged agent user, a service `fake` on
// api.fake.test (bearer FAKE_KEY), a second service `other` on api.other.test, and the guard policy
// for unmatched hosts, so evil.test is intercepted and guarded. Upstreams record every byte that
// reached them: the TLS one (test/support/upstream.ts, by SNI), a plain one for http:// (raw TCP
// here), and what its WebSocket echo received after unmasking (frames are masked on the wire, so
// the wire alone cannot show a value).
import { randomBytes, createHash } from "node:crypto";
import { afterAll, beforeAll, expect } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net, { type AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent, giveToAgent, openToAgent } from "./attacker.ts";
import { recordingCli, TEST_PASSWORD, type TempHome, tempHome } from "./binary.ts";
import { basicProxyAuth, type HeaderList, type HttpConnection, openPlain, openTunnel, type RawResponse, serveWsEcho, wsFrame } from "./proxy-client.ts";
import { type Server, startServer } from "./server.ts";
import { startUpstream, type Upstream } from "./upstream.ts";

export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export interface Broker {
  /** The value of FAKE_KEY (injected toward api.fake.test) and of OTHER_KEY. */
  readonly secret: string;
  readonly other: string;
  readonly home: TempHome;
  readonly server: Server;
  readonly upstream: Upstream;
  readonly token: string;
  readonly proxyAuth: string;
  /** PEM of the broker's CA and of the upstream's, for the agent's TLS. */
  readonly trust: string[];
  /** The broker's CA as a file the agent user can read (for curl). */
  readonly caFile: string;
  /** Bytes that reached the plain (http://) upstream for evil.test:80. */
  readonly plainWire: Buffer[];
  /** Payloads (unmasked) the upstream's WebSocket echo received, per connection path. */
  readonly wsReceived: { path: string; opcode: number; payload: Buffer }[];
  /** Everything the agent got, for the canary checks. */
  readonly outputs: string[];
  wireFor(sni: string, since: number): Buffer;
  tunnel(host: string, proxyAuth?: string): Promise<HttpConnection>;
  plain(): Promise<HttpConnection>;
  /** curl as the agent user through the proxy; returns stdout, stderr and the exit code. */
  curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** A second session (for revocation tests): its id and proxy authorization. */
  session(): Promise<{ id: string; proxyAuth: string }>;
  /** Runs the CLI against the broker's home, as its user. */
  cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  log(): string;
  close(): Promise<void>;
}

/** Echoes every WebSocket message on the upstream's raw socket, recording each frame. */
function serveRecordingEcho(socket: net.Socket, path: string, received: Broker["wsReceived"], onMessage?: (payload: Buffer, socket: net.Socket) => boolean): void {
  serveWsEcho(socket, { onFrame: (frame) => received.push({ path, opcode: frame.opcode, payload: frame.payload }), ...(onMessage ? { onMessage } : {}) });
}

/**
 * An agent `bot` on the broker, granted the `fake` service for an hour, with this policy (YAML)
 * for it; returns its Proxy-Authorization.
 */
export async function agentWithPolicy(broker: Broker, scratch: string, policyYaml: string): Promise<string> {
  const created = await broker.cli(["agent", "create", "bot"]);
  if (created.code !== 0) throw new Error(`agent create failed: ${created.stderr}`);
  const auth = basicProxyAuth(created.stdout.trim());
  const granted = await broker.cli(["agent", "grant", "bot", "--service", "fake", "--ttl", "1h"]);
  if (granted.code !== 0) throw new Error(`agent grant failed: ${granted.stderr}`);
  const policy = join(scratch, "policy.yaml");
  writeFileSync(policy, policyYaml);
  giveToAgent(policy);
  const set = await broker.cli(["agent", "policy", "bot", "-f", policy]);
  if (set.code !== 0) throw new Error(`agent policy failed: ${set.stderr}`);
  return auth;
}

/** What `requestInTunnel` sends besides its method and target; each default in its comment. */
export interface TunnelRequest {
  /** The tunnel's host and the Host header: api.fake.test. */
  readonly host?: string;
  /** Proxy-Authorization for the CONNECT: the broker's session. */
  readonly auth?: string;
  /** Headers after Host and Connection: close. */
  readonly headers?: HeaderList;
  /** A body, sent with its Content-Length (even ""); none when undefined. */
  readonly body?: Buffer | string;
  /** How long each read of the answer may wait: 10 s. */
  readonly timeoutMs?: number;
}

/**
 * One request (Host, Connection: close) in a fresh tunnel, the answer kept in `broker.outputs` for
 * the canary checks; null when the proxy closed or stalled without one.
 */
export async function requestInTunnel(broker: Broker, method: string, target: string, request: TunnelRequest = {}): Promise<RawResponse | null> {
  const host = request.host ?? "api.fake.test";
  const conn = await broker.tunnel(host, request.auth);
  try {
    const r = await conn.request(method, target, [["Host", host], ["Connection", "close"], ...(request.headers ?? [])], request.body, request.timeoutMs ?? 10_000);
    broker.outputs.push(r.text, JSON.stringify(r.headers));
    return r;
  } catch {
    return null;
  } finally {
    conn.close();
  }
}

/** The request `send` makes is refused with `code` and `status` and not one byte of it reached the service. */
export async function expectRefused(broker: Broker, label: string, send: () => Promise<RawResponse | null>, code = "policy_denied", status = 403): Promise<RawResponse | null> {
  const wire = broker.upstream.wire.length;
  const received = broker.upstream.received.length;
  const r = await send();
  expect(r?.status, `${label}: ${r?.text}`).toBe(status);
  expect(r?.headers["x-agent-vault-error"], label).toBe(code);
  await Bun.sleep(50);
  expect(broker.upstream.wire.length, label).toBe(wire);
  expect(broker.upstream.received.length, label).toBe(received);
  return r;
}

/**
 * One broker for a whole test file: a scratch directory named after `prefix`, the broker started
 * before the file's tests and handed to `use`, closed and the directory removed after them.
 * Returns the scratch directory (for files the agent writes there).
 */
export function brokerForFile(prefix: string, use: (broker: Broker) => void, options: BrokerOptions = {}): string {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  let broker: Broker | undefined;
  beforeAll(async () => {
    broker = await startBroker(scratch, options);
    use(broker);
  }, 60_000);
  afterAll(async () => {
    await broker?.close();
    rmSync(scratch, { recursive: true, force: true });
  }, 30_000);
  return scratch;
}

export interface BrokerOptions {
  /** FAKE_KEY's value (a random `sk_live_…` when not given). */
  readonly secret?: string;
}

export async function startBroker(scratch: string, options: BrokerOptions = {}): Promise<Broker> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const secret = options.secret ?? `sk_live_${randomBytes(18).toString("base64url")}`;
  const other = `ghp_${randomBytes(16).toString("hex")}`;
  const outputs: string[] = [];
  const upstream = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => upstream.close());
  // evil.test over http://: a raw listener, so the record is every byte, not what a parser kept.
  const plainWire: Buffer[] = [];
  const plainServer = net.createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.on("data", (d: Buffer) => {
      plainWire.push(Buffer.from(d));
      if (d.includes("\r\n\r\n")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
  });
  await new Promise<void>((resolve) => plainServer.listen(0, "127.0.0.1", () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => plainServer.close(() => resolve())));
  const plainPort = (plainServer.address() as AddressInfo).port;

  const wsReceived: Broker["wsReceived"] = [];
  upstream.handler = (req, res, body) => {
    const url = req.url ?? "";
    if (url.startsWith("/ws")) {
      const key = String(req.headers["sec-websocket-key"] ?? "");
      const accept = createHash("sha1").update(`${key}${WS_GUID}`).digest("base64");
      const socket = req.socket as net.Socket;
      const value = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
      if (url.startsWith("/ws-deflate")) {
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`);
        socket.write(wsFrame(`deflated ${value}`, { mask: false }));
        return true;
      }
      if (url.startsWith("/ws-refuse-gzip")) {
        // Refused, with the credential in a gzip body that says nothing of its coding.
        const body = gzipSync(JSON.stringify({ error: "no", you_sent: req.headers.authorization }));
        socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
        return true;
      }
      if (url.startsWith("/ws-refuse-te")) {
        const body = gzipSync(JSON.stringify({ error: "no", you_sent: req.headers.authorization }));
        socket.end(
          Buffer.concat([
            Buffer.from(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${body.length.toString(16)}\r\n`),
            body,
            Buffer.from("\r\n0\r\n\r\n"),
          ]),
        );
        return true;
      }
      if (url.startsWith("/ws-refuse")) {
        const reply = JSON.stringify({ error: "no", you_sent: req.headers.authorization });
        socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nX-Echo: ${String(req.headers.authorization)}\r\nContent-Length: ${Buffer.byteLength(reply)}\r\n\r\n${reply}`);
        return true;
      }
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      // `leak` asks the upstream for the injected credential back, in a text, a binary, a split
      // message with a ping in the middle, and a close reason.
      serveRecordingEcho(socket, url, wsReceived, (payload, s) => {
        const text = payload.toString();
        if (text === "leak-text") s.write(wsFrame(`{"token":"${value}","é":"ü"}`, { mask: false }));
        else if (text === "leak-gzip") s.write(wsFrame(gzipSync(gzipSync(JSON.stringify({ token: value }))), { opcode: 0x2, mask: false }));
        else if (text === "leak-binary") s.write(wsFrame(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(value), Buffer.from([255])]), { opcode: 0x2, mask: false }));
        else if (text === "leak-split") {
          const cut = Math.floor(value.length / 2);
          const first = wsFrame(`a=${value.slice(0, cut)}`, { mask: false });
          first[0] = 0x01; // text, FIN clear
          const last = wsFrame(`${value.slice(cut)};`, { mask: false });
          last[0] = 0x80; // continuation, FIN set
          s.write(Buffer.concat([first, wsFrame("mid-message ping", { opcode: 0x9, mask: false }), last]));
        } else if (text === "leak-close") s.end(wsFrame(Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from(value)]), { opcode: 0x8, mask: false }));
        else return false;
        return true;
      });
      return true;
    }
    if (url.startsWith("/switch")) {
      // Switches protocols to something nobody offered, then sends the credential raw.
      (req.socket as net.Socket).write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nraw:${String(req.headers.authorization)}`);
      return true;
    }
    const reply = JSON.stringify({
      ok: true,
      method: req.method,
      url,
      authorization: req.headers.authorization ?? null,
      body: body.toString("latin1"),
      upgrade: req.headers.upgrade ?? null,
      settings: req.headers["http2-settings"] ?? null,
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
    res.end(reply);
    return true;
  };

  const home = await tempHome({ asAgent: true });
  cleanups.push(() => home.cleanup());
  const hosts = ["api.fake.test", "api.other.test", "evil.test"];
  const env = {
    AGENT_VAULT_CONNECT_TO: [...hosts.map((h) => `${h}:443:127.0.0.1:${upstream.port}`), `api.fake.test:80:127.0.0.1:${upstream.port}`, `evil.test:80:127.0.0.1:${plainPort}`].join(","),
    AGENT_VAULT_UPSTREAM_CA: upstream.caFile,
  };
  openToAgent(scratch);
  openToAgent(upstream.caFile.replace(/\/[^/]+$/, ""));
  const { ok } = recordingCli(
    () => home,
    () => env,
    outputs,
  );
  await ok(["vault", "credential", "set", "FAKE_KEY=-"], secret);
  await ok(["vault", "credential", "set", "OTHER_KEY=-"], other);
  await ok(["vault", "service", "add", "--name", "fake", "--host", "api.fake.test", "--auth-type", "bearer", "--token-key", "FAKE_KEY"]);
  await ok(["vault", "service", "add", "--name", "other", "--host", "api.other.test", "--auth-type", "bearer", "--token-key", "OTHER_KEY"]);
  await ok(["vault", "settings", "--unmatched", "guard"]);
  const server = await startServer(home, env, cleanups);
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
  const token = (await createSession(store, "default", {})).token;
  home.reown();
  const caFile = join(home.dir, "ca.pem");
  const trust = [readFileSync(caFile, "utf8"), readFileSync(upstream.caFile, "utf8")];
  const proxyAuth = basicProxyAuth(token);
  const conns: HttpConnection[] = [];
  cleanups.push(() => conns.forEach((c) => c.close()));

  return {
    secret,
    other,
    home,
    server,
    upstream,
    token,
    proxyAuth,
    trust,
    caFile,
    plainWire,
    wsReceived,
    outputs,
    wireFor: (sni, since) =>
      Buffer.concat(
        upstream.wire
          .slice(since)
          .filter((w) => w.sni === sni)
          .map((w) => w.data),
      ),
    async tunnel(host, auth = proxyAuth) {
      const t = await openTunnel({ proxyPort: server.mitmPort, host, proxyAuthorization: auth, ca: trust });
      if (t.connect.status !== 200) throw new Error(`CONNECT ${host}: ${t.connect.status} ${t.connect.text}`);
      conns.push(t.conn!);
      return t.conn!;
    },
    async plain() {
      const conn = await openPlain(server.mitmPort);
      conns.push(conn);
      return conn;
    },
    async curl(args) {
      const proc = Bun.spawn(asAgent(["curl", "-sS", "--http1.1", "--max-time", "20", "-x", `http://127.0.0.1:${server.mitmPort}`, "--proxy-user", `${token}:default`, "--cacert", caFile, ...args]), {
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      outputs.push(stdout, stderr);
      return { code, stdout, stderr };
    },
    async session() {
      const made = await createSession(store, "default", {});
      home.reown();
      return { id: made.session.id, proxyAuth: basicProxyAuth(made.token) };
    },
    async cli(args) {
      const r = await home.run(args, { env });
      outputs.push(r.stdout, r.stderr);
      return r;
    },
    log: () => {
      try {
        return readFileSync(join(home.dir, "requests.log"), "utf8");
      } catch {
        return "";
      }
    },
    close: async () => {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch {
          // keep cleaning
        }
      }
    },
  };
}
