// Placeholders through the compiled binary (DESIGN "Placeholders"): `run` gives the agent, with no
// configuration, a placeholder in each variable its clients read (shaped like the vendor's key,
// unique per session and key, replacing a real key inherited from the user's shell), and the proxy
// puts the real value wherever the agent wrote its placeholder in a request to that credential's
// service: a header, the query, a body (whole, and a chunked one streamed past the guard's 8 MiB
// buffer with the placeholder cut across reads), a WebSocket message. The upstream's raw wire is
// what is checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, cleanEnv, recordingCli, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups, spawnLive, waitUntil } from "../support/process.ts";
import { basicProxyAuth, type HttpConnection, openTunnel, readWsFrame, Reader, wsFrame } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

const scratch = mkdtempSync(join(tmpdir(), "av-placeholders-"));
const cleanups: (() => Promise<void> | void)[] = [];
const OPENAI = `sk-proj-real${randomBytes(24).toString("base64url")}`;
const ANTHROPIC = `sk-ant-api03-real${randomBytes(24).toString("base64url")}`;
const GITHUB = `ghp_real${randomBytes(14).toString("hex")}`;
const SLACK = `xoxb-real-${randomBytes(12).toString("hex")}`;
const REAL = [OPENAI, ANTHROPIC, GITHUB, SLACK];
const HOSTS = ["api.openai.com", "api.anthropic.com", "api.github.com", "slack.com"];
const outputs: string[] = [];
/** Each WebSocket message the upstream read, unmasked. */
const wsMessages: string[] = [];

let H: TempHome;
let U: Upstream;
let S: Server;
let avCa: string;
let ENV: Record<string, string>;
const { ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

interface Agent {
  readonly token: string;
  readonly vars: Record<string, string>;
  readonly stderr: () => string;
  stop(): Promise<void>;
}

const PRINTED = ["AGENT_VAULT_SESSION_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "GH_TOKEN", "SLACK_BOT_TOKEN", "CODEX_API_KEY", "MY_GH"];

/** `run -- sh` printing its environment's placeholders, then holding the session open. */
async function startAgent(args: readonly string[] = [], command = "sh", env: Record<string, string> = {}): Promise<Agent> {
  const script = `for v in ${PRINTED.join(" ")}; do eval "printf '%s=%s\\n' $v \\"\\$$v\\""; done; echo END; exec cat >/dev/null`;
  const live = spawnLive([BINARY, "run", "--no-sandbox", ...args, "--", command, "-c", script], cleanEnv({ ...H.env, ...ENV, ...env }), "pipe");
  const stop = async () => {
    (live.proc.stdin as import("bun").FileSink).end();
    await live.proc.exited;
  };
  cleanups.push(stop);
  const out = await waitUntil("the agent's environment", () => (live.stdout.includes("END\n") ? live.stdout : null), 20_000);
  outputs.push(out);
  const vars = Object.fromEntries(
    out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  return { token: vars.AGENT_VAULT_SESSION_TOKEN!, vars, stderr: () => live.stderr, stop };
}

async function tunnel(token: string, host: string): Promise<HttpConnection> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host, proxyAuthorization: basicProxyAuth(token), ca: [avCa, readFileSync(U.caFile, "utf8")] });
  expect(t.connect.status, t.connect.text).toBe(200);
  cleanups.push(() => t.conn!.close());
  return t.conn!;
}

function wireFor(host: string, since: number): string {
  return Buffer.concat(
    U.wire
      .slice(since)
      .filter((w) => w.sni === host)
      .map((w) => w.data),
  ).toString("latin1");
}

/** GitHub's token checksum, computed here independently of src/. */
function githubChecksumOk(token: string): boolean {
  const body = token.slice(4, 34);
  let crc = 0xffffffff;
  for (const byte of Buffer.from(body)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  let n = (crc ^ 0xffffffff) >>> 0;
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let out = "";
  while (n > 0) {
    out = alphabet[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(6, "0") === token.slice(34);
}

beforeAll(async () => {
  U = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => U.close());
  // Never echoes what it got: the agent's side must not see a value through the test's own upstream.
  U.handler = (req, res) => {
    if (req.method === "GET" && /websocket/i.test(String(req.headers.upgrade ?? ""))) {
      const accept = createHash("sha1")
        .update(`${String(req.headers["sec-websocket-key"])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest("base64");
      const socket = req.socket;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const reader = new Reader(socket);
      void (async () => {
        try {
          for (;;) {
            const frame = await readWsFrame(reader, 30_000);
            wsMessages.push(frame.payload.toString("latin1"));
            socket.write(wsFrame(`got ${frame.payload.length} bytes`, { mask: false }));
          }
        } catch {
          socket.destroy();
        }
      })();
      return true;
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": 2 });
    res.end("ok");
    return true;
  };
  H = await tempHome();
  cleanups.push(() => H.cleanup());
  ENV = { AGENT_VAULT_CONNECT_TO: HOSTS.map((h) => `${h}:443:127.0.0.1:${U.port}`).join(","), AGENT_VAULT_UPSTREAM_CA: U.caFile };
  await ok(["vault", "credential", "set", "OPENAI_API_KEY=-"], OPENAI);
  await ok(["vault", "credential", "set", "ANTHROPIC_API_KEY=-"], ANTHROPIC);
  await ok(["vault", "credential", "set", "GITHUB_TOKEN=-"], GITHUB);
  await ok(["vault", "credential", "set", "SLACK_BOT_TOKEN=-"], SLACK);
  for (const t of ["openai", "anthropic", "github", "slack"]) await ok(["vault", "service", "add", "--template", t]);
  S = await startServer(H, ENV, cleanups);
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
}, 60_000);

afterAll(async () => {
  // Nothing the agent could read carried a real value: what it printed, what run said, the log.
  const log = readFileSync(join(H.dir, "requests.log"), "utf8");
  await runCleanups(cleanups);
  for (const value of REAL) {
    for (const text of [...outputs, log]) expect(text).not.toContain(value);
  }
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

describe("run gives placeholders with no configuration", () => {
  test("each credential's variables hold a placeholder shaped like the vendor's key, replacing an inherited real one", async () => {
    // The user's shell exported real keys: the agent must get placeholders instead.
    const agent = await startAgent([], "sh", { OPENAI_API_KEY: OPENAI, GITHUB_TOKEN: GITHUB, CODEX_API_KEY: "left-alone-for-sh" });
    const v = agent.vars;
    expect(v.OPENAI_API_KEY).toMatch(/^sk-proj-[A-Za-z0-9_-]{156}$/);
    expect(v.ANTHROPIC_API_KEY).toMatch(/^sk-ant-api03-[A-Za-z0-9_-]{93}AA$/);
    expect(v.GITHUB_TOKEN).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
    expect(githubChecksumOk(v.GITHUB_TOKEN!)).toBe(true);
    expect(v.GH_TOKEN).toBe(v.GITHUB_TOKEN!);
    expect(v.SLACK_BOT_TOKEN).toMatch(/^xoxb-\d{13}-\d{13}-[A-Za-z0-9]{24}$/);
    // Only codex gets CODEX_API_KEY: for another command an inherited one is its own business.
    expect(v.CODEX_API_KEY).toBe("left-alone-for-sh");
    for (const value of REAL) expect(Object.values(v)).not.toContain(value);
    // The line on stderr at start: vault, session, services, sandbox, ports.
    expect(agent.stderr()).toMatch(
      /^agent-vault: vault "default", session s_[0-9a-f]+, services: openai, anthropic, github, slack; placeholders: OPENAI_API_KEY, ANTHROPIC_API_KEY, GITHUB_TOKEN, GH_TOKEN, SLACK_BOT_TOKEN, SLACK_TOKEN; sandbox off; proxy 127\.0\.0\.1:\d+, api 127\.0\.0\.1:\d+\n/,
    );
    // Unique per session and key.
    const again = await startAgent();
    expect(again.vars.OPENAI_API_KEY).not.toBe(v.OPENAI_API_KEY);
    expect(again.vars.GITHUB_TOKEN).not.toBe(v.GITHUB_TOKEN);
    expect(new Set([v.OPENAI_API_KEY, v.ANTHROPIC_API_KEY, v.GITHUB_TOKEN, v.SLACK_BOT_TOKEN]).size).toBe(4);
    await agent.stop();
    await again.stop();
  }, 60_000);

  test("--env NAME=KEY adds a variable; --quiet prints nothing at start; a bad --env changes nothing", async () => {
    const agent = await startAgent(["--env", "MY_GH=GITHUB_TOKEN", "--quiet"]);
    expect(agent.vars.MY_GH).toBe(agent.vars.GITHUB_TOKEN!);
    expect(agent.stderr()).toBe("");
    await agent.stop();
    const bad = await H.run(["run", "--no-sandbox", "--env", "X=NOT_USED", "--", "true"], { env: ENV });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--env X=NOT_USED: no service of this session uses credential NOT_USED");
    const reserved = await H.run(["run", "--no-sandbox", "--env", "HTTPS_PROXY=GITHUB_TOKEN", "--", "true"], { env: ENV });
    expect(reserved.code).toBe(2);
    const malformed = await H.run(["run", "--no-sandbox", "--env", "oops", "--", "true"], { env: ENV });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--env "oops" is not NAME=KEY');
  }, 30_000);

  test("codex gets CODEX_API_KEY with the OpenAI placeholder (a real one exported by the user never reaches it)", async () => {
    // A stand-in named codex: run knows agents by the command's name.
    const dir = mkdtempSync(join(scratch, "bin-"));
    await Bun.write(join(dir, "codex"), '#!/bin/sh\nexec sh "$@"\n');
    await Bun.$`chmod 755 ${join(dir, "codex")}`;
    const agent = await startAgent([], join(dir, "codex"), { CODEX_API_KEY: OPENAI });
    expect(agent.vars.CODEX_API_KEY).toBe(agent.vars.OPENAI_API_KEY!);
    await agent.stop();
  }, 30_000);
});

describe("the proxy puts the value where the agent wrote the placeholder, to that credential's service", () => {
  let agent: Agent;
  beforeAll(async () => {
    agent = await startAgent();
  }, 30_000);
  afterAll(() => agent.stop());

  test("in a header, a credential-named query parameter and JSON field; not in a gist's content", async () => {
    const ph = agent.vars.GITHUB_TOKEN!;
    const conn = await tunnel(agent.token, "api.github.com");
    const mark = U.wire.length;
    const res = await conn.request(
      "POST",
      `/gists?access_token=${ph}&q=${ph}`,
      [
        ["Host", "api.github.com"],
        ["X-Token", `token ${ph}`],
        ["Content-Type", "application/json"],
      ],
      JSON.stringify({ token: ph, files: { ".env": { content: `GITHUB_TOKEN=${ph}` } } }),
    );
    outputs.push(res.text);
    expect(res.status, res.text).toBe(200);
    const wire = wireFor("api.github.com", mark);
    expect(wire).toContain(`?access_token=${GITHUB}&q=${ph}`);
    expect(wire).toContain(`x-token: token ${GITHUB}`);
    const body = U.received.at(-1)!.body.toString();
    expect(JSON.parse(body).token).toBe(GITHUB);
    // A gist is read back from gist.githubusercontent.com, tunnelled unscrubbed: the value must not go in.
    expect(JSON.parse(body).files[".env"].content).toBe(`GITHUB_TOKEN=${ph}`);
    expect(U.received.at(-1)!.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
  });

  test("in a chunked body streamed past the guard's buffer, the placeholder cut across chunks", async () => {
    const ph = agent.vars.SLACK_BOT_TOKEN!;
    const conn = await tunnel(agent.token, "slack.com");
    const mark = U.wire.length;
    // Placeholders end to end, so wherever a read or the guard's hold-back cuts the stream, it cuts one.
    const count = Math.ceil((9 * 1024 * 1024) / (ph.length + 7));
    const text = Buffer.from(`${Array.from({ length: count }, () => `token=${ph}`).join("&")}&api_token=${ph}`);
    // Chunks whose edges cut the second placeholder in two.
    const cut = text.length - 10;
    const chunks = [text.subarray(0, 4096), text.subarray(4096, cut), text.subarray(cut)];
    const head = `POST /api/chat.postMessage HTTP/1.1\r\nHost: slack.com\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n`;
    conn.socket.write(head);
    for (const c of chunks) {
      conn.socket.write(`${c.length.toString(16)}\r\n`);
      conn.socket.write(c);
      conn.socket.write("\r\n");
      await Bun.sleep(20);
    }
    conn.socket.write("0\r\n\r\n");
    const { readResponse } = await import("../support/proxy-client.ts");
    const res = await readResponse(conn.reader, { method: "POST", timeoutMs: 30_000 });
    outputs.push(res.text);
    expect(res.status, res.text).toBe(200);
    const received = U.received.at(-1)!.body.toString("latin1");
    const expected = text.toString("latin1").replaceAll(ph, SLACK);
    expect(received.length).toBe(expected.length);
    // Compared piecewise: one failing 9 MiB string would bury the report.
    const parts = expected.split("&");
    const wrong = received.split("&").findIndex((part, i) => part !== parts[i]);
    expect(wrong).toBe(-1);
    expect(wireFor("slack.com", mark)).not.toContain(ph);
  }, 60_000);

  test("in a WebSocket message (a gateway that wants the token in a frame)", async () => {
    const ph = agent.vars.SLACK_BOT_TOKEN!;
    const conn = await tunnel(agent.token, "slack.com");
    const mark = U.wire.length;
    conn.socket.write(
      `GET /api/rtm HTTP/1.1\r\nHost: slack.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const { readResponse } = await import("../support/proxy-client.ts");
    const switched = await readResponse(conn.reader, { method: "GET" });
    expect(switched.status, switched.text).toBe(101);
    const identify = JSON.stringify({ op: 2, d: { token: ph, intents: 513 } });
    conn.socket.write(wsFrame(identify, { mask: true }));
    const answer = await readWsFrame(conn.reader);
    outputs.push(answer.payload.toString());
    expect(answer.payload.toString()).toBe(`got ${identify.length - ph.length + SLACK.length} bytes`);
    expect(wsMessages.at(-1)).toBe(identify.replace(ph, SLACK));
    expect(wsMessages.join("\n")).not.toContain(ph);
    // The frame is masked on the wire: no placeholder there either.
    expect(wireFor("slack.com", mark)).not.toContain(ph);
  }, 30_000);

  test("another session's placeholder is not this session's: sent as is", async () => {
    const other = await startAgent();
    const conn = await tunnel(agent.token, "api.github.com");
    const mark = U.wire.length;
    const res = await conn.request("GET", "/user", [
      ["Host", "api.github.com"],
      ["X-Token", other.vars.GITHUB_TOKEN!],
    ]);
    outputs.push(res.text);
    expect(res.status).toBe(200);
    const wire = wireFor("api.github.com", mark);
    expect(wire).toContain(`x-token: ${other.vars.GITHUB_TOKEN}`);
    // The service's own header is injected as ever; the real value is in it alone.
    expect(wire.split(GITHUB).length - 1).toBe(1);
    await other.stop();
  });

  test("a placeholder to another service's host is left as it is", async () => {
    const ph = agent.vars.GITHUB_TOKEN!;
    const conn = await tunnel(agent.token, "api.openai.com");
    const mark = U.wire.length;
    const res = await conn.request(
      "POST",
      `/v1/files?t=${ph}`,
      [
        ["Host", "api.openai.com"],
        ["X-Token", ph],
      ],
      `{"token":"${ph}"}`,
    );
    outputs.push(res.text);
    expect(res.status).toBe(200);
    const wire = wireFor("api.openai.com", mark);
    expect(wire).not.toContain(GITHUB);
    expect(wire.split(ph).length - 1).toBe(3);
  });
});
