// End-to-end tests of agents, grants and access policies (issue 7) through the compiled binary:
// agents are made with the CLI, their tokens are used by real clients (curl under `run --agent`,
// raw tunnels with the agent's own token), and what reached the local HTTPS upstream is the ground
// truth. Grant expiry and revocation are checked inside tunnels that stay open.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordingCli, type TempHome } from "../support/binary.ts";
import { basicProxyAuth, type HttpConnection, openTunnel } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { replyWithPath, type Upstream } from "../support/upstream.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";

const scene = fileScene("av-agents-e2e-");
const { scratch, cleanups, outputs } = scene;
const TAG = randomBytes(6).toString("hex");
const GH_SECRET = `ghp_${TAG}_${randomBytes(8).toString("hex")}`;
const STRIPE_SECRET = `sk_${TAG}_${randomBytes(8).toString("hex")}`;
/** Agent tokens, printed by `agent create` by design: they must appear nowhere else. */
const tokens: string[] = [];

let H: TempHome;
let U: Upstream;
let S: Server;
let API: string;
let avCa: string;
let ENV: Record<string, string>;

const { av, ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

async function newAgent(name: string): Promise<string> {
  const r = await ok(["agent", "create", name, "--description", `${name} for tests`]);
  tokens.push(r.stdout.trim());
  return r.stdout.trim();
}

async function tunnel(token: string, host = "api.github.test"): Promise<HttpConnection> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host, proxyAuthorization: basicProxyAuth(token), ca: [avCa] });
  expect(t.connect.status, t.connect.text).toBe(200);
  cleanups.push(() => t.conn!.close());
  return t.conn!;
}

function get(conn: HttpConnection, path: string, method = "GET", host = "api.github.test") {
  return conn.request(method, path, [
    ["Host", host],
    ["Authorization", "Bearer placeholder"],
  ]);
}

async function api(token: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${API}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  outputs.push(text);
  return { status: res.status, json: JSON.parse(text) };
}

beforeAll(async () => {
  U = await sceneUpstream(scene, replyWithPath);
  H = await sceneHome(scene);
  ENV = { AGENT_VAULT_CONNECT_TO: ["api.github.test", "api.stripe.test"].map((h) => `${h}:443:127.0.0.1:${U.port}`).join(","), AGENT_VAULT_UPSTREAM_CA: U.caFile };
  await ok(["vault", "credential", "set", "GH=-"], GH_SECRET);
  await ok(["vault", "credential", "set", "STRIPE=-", "--description", "Stripe key"], STRIPE_SECRET);
  await ok(["vault", "service", "add", "--name", "github", "--host", "api.github.test", "--auth-type", "bearer", "--token-key", "GH"]);
  await ok(["vault", "service", "add", "--name", "stripe", "--host", "api.stripe.test", "--auth-type", "bearer", "--token-key", "STRIPE"]);
  S = await startServer(H, ENV, cleanups);
  API = `http://127.0.0.1:${S.apiPort}`;
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
}, 60_000);

describe("agent lifecycle", () => {
  test("create prints the token once (stdout, alone); list and info never show it; the vault keeps only a hash", async () => {
    const token = await newAgent("lifecycle");
    expect(token).toMatch(/^av_agt_[A-Za-z0-9_-]{43}$/);
    const list = JSON.parse((await ok(["agent", "list", "--json"])).stdout) as { name: string; token_hint: string; status: string }[];
    expect(list.find((a) => a.name === "lifecycle")).toMatchObject({ status: "active", token_hint: `${token.slice(0, 11)}…` });
    const info = (await ok(["agent", "info", "lifecycle"])).stdout;
    expect(info).toContain("description  lifecycle for tests");
    expect(info).toContain("none: grant a service");
    for (const text of [JSON.stringify(list), info, readFileSync(join(H.dir, "vault.av"), "utf8")]) expect(text).not.toContain(token.slice(11));
    const rotated = (await ok(["agent", "rotate", "lifecycle"])).stdout.trim();
    expect(rotated).not.toBe(token);
    expect((await api(token, "/discover")).status).toBe(401);
    expect((await api(rotated, "/discover")).status).toBe(200);
    await ok(["agent", "delete", "lifecycle"]);
    expect((await api(rotated, "/discover")).status).toBe(401);
    const missing = await av(["agent", "info", "lifecycle"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no agent "lifecycle"');
  }, 30_000);
});

describe("grants", () => {
  test("access is exactly the unexpired grants: discover, credentials and the proxy agree", async () => {
    const token = await newAgent("granted");
    expect((await api(token, "/discover")).json.services).toEqual([]);
    const conn = await tunnel(token);
    const refused = await get(conn, "/user");
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ error: "host_not_allowed", hint: "agent-vault agent grant granted --service github" });
    await ok(["agent", "grant", "granted", "--service", "github", "--ttl", "1h"]);
    const seen = U.received.length;
    const allowed = await get(conn, `/granted-${TAG}`);
    expect(allowed.status).toBe(200);
    expect(U.received[seen]!.headers.authorization).toBe(`Bearer ${GH_SECRET}`);
    expect((await api(token, "/discover")).json).toEqual({ vault: "default", services: [{ name: "github", host: "api.github.test" }], available_credentials: ["GH"] });
    const creds = await api(token, "/v1/credentials");
    expect(creds.json.credentials).toEqual([{ key: "GH", type: "static", description: "", expires_at: null, services: ["github"] }]);
    expect((await api(token, "/v1/credentials?service=stripe")).json.credentials).toEqual([]);
    expect((await api(token, "/v1/credentials?type=oauth")).json.credentials).toEqual([]);
    const info = JSON.parse((await ok(["agent", "info", "granted", "--json"])).stdout);
    expect(info.grants).toHaveLength(1);
    expect(info.grants[0]).toMatchObject({ service: "github", active: true });
    expect(Math.abs(Date.parse(info.grants[0].expires_at) - Date.now() - 3_600_000)).toBeLessThan(60_000);
  }, 30_000);

  test("a grant that expires, and a revoked grant, refuse the next request in the same open tunnel", async () => {
    const token = await newAgent("expiring");
    await ok(["agent", "grant", "expiring", "--service", "github", "--ttl", "2s"]);
    const conn = await tunnel(token);
    expect((await get(conn, "/before-expiry")).status).toBe(200);
    await Bun.sleep(2100);
    const after = await get(conn, "/after-expiry");
    expect(after.status).toBe(403);
    expect(after.json().error).toBe("host_not_allowed");
    await ok(["agent", "grant", "expiring", "--service", "github", "--ttl", "until-revoked"]);
    expect((await get(conn, "/regranted")).status).toBe(200);
    await ok(["agent", "revoke-grant", "expiring", "--service", "github"]);
    expect((await get(conn, "/revoked-grant")).status).toBe(403);
    expect(U.received.some((r) => r.url === "/after-expiry" || r.url === "/revoked-grant")).toBe(false);
  }, 30_000);

  test("revoking the agent closes its open tunnels", async () => {
    const token = await newAgent("cut");
    await ok(["agent", "grant", "cut", "--service", "github"]);
    const conn = await tunnel(token);
    expect((await get(conn, "/alive")).status).toBe(200);
    const closed = new Promise<void>((resolve) => conn.socket.once("close", () => resolve()));
    await ok(["agent", "revoke", "cut"]);
    const started = Date.now();
    await closed;
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await api(token, "/discover")).status).toBe(401);
  }, 30_000);

  test("run --agent NAME: curl in the child gets the agent's grants, nothing else", async () => {
    await newAgent("runner");
    await ok(["agent", "grant", "runner", "--service", "stripe"]);
    const script = 'curl -s -o /dev/null -w "%{http_code} " https://api.stripe.test/v1/charges; curl -s -o /dev/null -w "%{http_code}" https://api.github.test/user';
    const r = await ok(["run", "--agent", "runner", "--", "sh", "-c", script]);
    expect(r.stdout).toBe("200 403");
    const bad = await av(["run", "--agent", "nobody", "--", "true"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('no agent "nobody"');
  }, 30_000);
});

describe("policies", () => {
  test("set from options, shown in info; methods, deny and paths refuse naming the rule", async () => {
    const token = await newAgent("reader");
    await ok(["agent", "grant", "reader", "--service", "github", "--service", "stripe"]);
    await ok(["agent", "policy", "reader", "--methods", "github=GET,HEAD", "--deny", "stripe=DELETE /v1/customers/*", "--paths", "stripe=/v1/*"]);
    const info = (await ok(["agent", "info", "reader"])).stdout;
    expect(info).toContain("github: only GET,HEAD");
    expect(info).toContain("stripe: only paths /v1/*; deny DELETE /v1/customers/*");
    const gh = await tunnel(token);
    expect((await get(gh, "/repos/o/r")).status).toBe(200);
    const post = await get(gh, "/repos/o/r/issues", "POST");
    expect(post.status).toBe(403);
    expect(post.json()).toMatchObject({ error: "policy_denied", rule: "github allows only GET,HEAD (this was POST)" });
    const stripe = await tunnel(token, "api.stripe.test");
    expect((await get(stripe, "/v1/customers/cus_1", "DELETE", "api.stripe.test")).json()).toMatchObject({ error: "policy_denied", rule: "stripe denies DELETE /v1/customers/*" });
    expect((await get(stripe, "/v2/x", "GET", "api.stripe.test")).json().rule).toBe("stripe allows only paths /v1/*");
    expect((await get(stripe, "/v1/customers/cus_1", "GET", "api.stripe.test")).status).toBe(200);
    expect(U.received.some((r) => r.method === "DELETE" || r.url === "/v2/x" || r.url === "/repos/o/r/issues")).toBe(false);
  }, 30_000);

  test("rate limit: 429 rate_limited with Retry-After and RateLimit headers", async () => {
    const token = await newAgent("limited");
    await ok(["agent", "grant", "limited", "--service", "github"]);
    await ok(["agent", "policy", "limited", "--rate-limit", "3"]);
    const conn = await tunnel(token);
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await get(conn, `/rate-${i}`);
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers["ratelimit-limit"]).toBe("3");
        expect(last.headers["ratelimit-remaining"]).toBe("2");
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last!.json()).toMatchObject({ error: "rate_limited", rule: "rate limit: 3 requests per minute" });
    expect(Number(last!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(last!.headers["retry-after"])).toBeLessThanOrEqual(20);
    expect(last!.headers["ratelimit-remaining"]).toBe("0");
  }, 30_000);

  test("time windows and a usage cap, from a JSON file; --clear removes the policy", async () => {
    const token = await newAgent("windowed");
    await ok(["agent", "grant", "windowed", "--service", "github"]);
    const now = new Date();
    const hh = (h: number) => String((h + 24) % 24).padStart(2, "0");
    const outside = join(scratch, "outside.json");
    writeFileSync(outside, JSON.stringify({ time_windows: [{ start: `${hh(now.getUTCHours() + 2)}:00`, end: `${hh(now.getUTCHours() + 3)}:00` }] }));
    await ok(["agent", "policy", "windowed", "-f", outside]);
    const conn = await tunnel(token);
    const refused = await get(conn, "/window");
    expect(refused.status).toBe(403);
    expect(refused.json().message).toContain("outside the allowed times");
    const inside = join(scratch, "inside.yaml");
    writeFileSync(inside, `time_windows:\n  - start: "${hh(now.getUTCHours() - 1)}:00"\n    end: "${hh(now.getUTCHours() + 2)}:00"\nusage_cap: 2\n`);
    await ok(["agent", "policy", "windowed", "-f", inside]);
    expect((await get(conn, "/use-1")).status).toBe(200);
    expect((await get(conn, "/use-2")).status).toBe(200);
    const capped = await get(conn, "/use-3");
    expect(capped.status).toBe(403);
    expect(capped.json()).toMatchObject({ error: "policy_denied", rule: "usage cap: 2 requests" });
    await Bun.sleep(1300); // the counts reach the vault within a second
    expect((await ok(["agent", "info", "windowed"])).stdout).toContain("used: 2 of 2");
    await ok(["agent", "policy", "windowed", "--clear"]);
    expect((await get(conn, "/use-4")).status).toBe(200);
    const bad = join(scratch, "bad.json");
    writeFileSync(bad, JSON.stringify({ rate_limit: { requests_per_minute: -1 } }));
    const refusedFile = await av(["agent", "policy", "windowed", "-f", bad]);
    expect(refusedFile.code).toBe(2);
    expect(refusedFile.stderr).toContain(`${bad}:1: policy: rate_limit.requests_per_minute`);
  }, 30_000);

  test("run --policy FILE narrows a plain session", async () => {
    const file = join(scratch, "session-policy.json");
    writeFileSync(file, JSON.stringify({ rules: [{ service: "github", methods: ["GET"] }] }));
    const script = 'curl -s -o /dev/null -w "%{http_code} " https://api.github.test/a; curl -s -o /dev/null -w "%{http_code}" -X POST https://api.github.test/b';
    const r = await ok(["run", "--policy", file, "--", "sh", "-c", script]);
    expect(r.stdout).toBe("200 403");
  }, 30_000);
});

describe("secrets", () => {
  test("no credential value in any output; no agent token in the request log, the server's output or the vault file", async () => {
    const log = readFileSync(join(H.dir, "requests.log"), "utf8");
    expect(log).toContain('"agent":"granted"');
    for (const hay of [...outputs, log, S.live.stdout, S.live.stderr]) {
      expect(hay.includes(GH_SECRET)).toBe(false);
      expect(hay.includes(STRIPE_SECRET)).toBe(false);
    }
    expect(tokens.length).toBeGreaterThan(5);
    for (const hay of [log, S.live.stdout, S.live.stderr, readFileSync(join(H.dir, "vault.av"), "utf8")]) for (const token of tokens) expect(hay.includes(token)).toBe(false);
  });
});
