// End-to-end tests of OAuth credentials (issue 6) through the compiled binary, against a real
// authorization server (oidc-provider, test/support/oauth-server.mjs) on loopback: the browser's
// part is played by test/support/browser.ts, which logs in and consents through the server's own
// pages and then follows the redirect to the CLI's loopback listener. The server enforces PKCE,
// rotates refresh tokens on every use and revokes a whole grant when an old one is replayed, so a
// second concurrent refresh would show up as a failure. The API the tokens are for is a local
// HTTPS upstream that asks the authorization server whether each bearer token is active.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { type AddressInfo } from "node:net";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { openOAuthSecrets } from "../../src/vault/oauth-record.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { findVault } from "../../src/vault/vaults.ts";
import { BINARY, cleanEnv, recordingCli, type RunResult, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { authorizationCode, consent } from "../support/browser.ts";
import { OAUTH_CLIENTS, type OAuthServer, pkcePair, startOAuthServer, tokenRequest } from "../support/oauth.ts";
import { type Live, spawnLive, waitUntil } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";

const scene = fileScene("av-oauth-e2e-");
const { scratch, cleanups } = scene;
/** Every stdout and stderr the tests saw, except `credential get`, which prints a token by design. */
const outputs: string[] = [];

let O: OAuthServer;
let U: Upstream;
let H: TempHome;
let S: Server;
let API: string;
let ENV: Record<string, string>;
let store: VaultStore;
let session: string;
/** Tokens the upstream answers 401 for, as if the provider had revoked them early. */
const rejected = new Set<string>();

function show(label: string, r: RunResult): string {
  return `${label}\n  exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`;
}

const { av, ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

/** `oauth connect` running in the background until its authorization URL is printed. */
async function startConnect(args: readonly string[], stdin?: string): Promise<{ live: Live; url: URL; done: () => Promise<RunResult> }> {
  const live = spawnLive([BINARY, "oauth", "connect", ...args, "--no-browser"], cleanEnv({ ...H.env, ...ENV }), stdin === undefined ? "ignore" : "pipe");
  if (stdin !== undefined) {
    const sink = live.proc.stdin as { write(s: string): unknown; end(): unknown };
    sink.write(stdin);
    sink.end();
  }
  cleanups.push(() => void live.proc.kill());
  const url = await waitUntil(
    "the authorization URL",
    () => {
      if (live.proc.exitCode !== null) throw new Error(`connect exited early (${live.proc.exitCode}): ${live.stderr}`);
      const match = /^(https:\/\/\S+)$/m.exec(live.stderr);
      return match ? new URL(match[1]!) : null;
    },
    15_000,
  );
  const done = async () => {
    const code = await live.proc.exited;
    outputs.push(live.stdout, live.stderr);
    return { code, stdout: live.stdout, stderr: live.stderr };
  };
  return { live, url, done };
}

interface Answer {
  readonly status: number;
  readonly json: any;
}

/** A request through the agent API's explicit proxy, as the session's agent. */
async function viaProxy(path: string, method = "GET"): Promise<Answer> {
  const res = await fetch(`${API}/proxy/api.test${path}`, { method, headers: { authorization: `Bearer ${session}` } });
  const text = await res.text();
  outputs.push(text);
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

function bearerOf(index: number): string {
  const value = U.received[index]!.headers.authorization;
  return String(value).replace(/^Bearer /, "");
}

function secretsOf(key: string) {
  return openOAuthSecrets(store, findVault(store.read(), "default"), key);
}

function recordOf(key: string) {
  return findVault(store.read(), "default").credentials[key];
}

async function statusOf(key: string): Promise<any> {
  return JSON.parse((await ok(["oauth", "status", key, "--json"])).stdout);
}

/** Makes KEY's access token one that expires within the refresh margin (a 60 s token). */
async function nearExpiry(key: string): Promise<void> {
  await O.setTtl(60);
  await ok(["oauth", "refresh", key]);
  await O.setTtl(3600);
  const left = Date.parse(recordOf(key)!.expires_at!) - Date.now();
  expect(left).toBeLessThan(5 * 60_000);
}

beforeAll(async () => {
  O = await startOAuthServer(scratch);
  cleanups.push(() => O.close());
  U = await sceneUpstream(scene);
  // The API checks each bearer token with the authorization server, as a resource server would.
  U.handler = (req, res) => {
    const token = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
    void O.check(token).then((check) => {
      const live = check.active && !rejected.has(token);
      const reply = JSON.stringify(live ? { ok: true, path: req.url } : { error: "invalid_token" });
      res.writeHead(live ? 200 : 401, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
      res.end(reply);
    });
    return true;
  };
  const trust = join(scratch, "trust.pem");
  writeFileSync(trust, `${readFileSync(O.caFile, "utf8")}\n${readFileSync(U.caFile, "utf8")}`);
  ENV = { AGENT_VAULT_CONNECT_TO: `auth.test:${O.port}:127.0.0.1:${O.port},api.test:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: trust };
  H = await sceneHome(scene);
  S = await startServer(H, ENV, cleanups);
  API = `http://127.0.0.1:${S.apiPort}`;
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  session = (await createSession(store, "default", {})).token;
}, 60_000);

const CONNECT_PUBLIC = (key: string) => [
  key,
  "--authorization-url",
  O.authorizationEndpoint,
  "--token-url",
  O.tokenEndpoint,
  "--client-id",
  OAUTH_CLIENTS.public.clientId,
  "--scopes",
  "openid offline_access read",
];

describe("oauth connect", () => {
  test("the authorization code flow with PKCE stores the tokens, and the proxy injects the access token", async () => {
    const before = await O.stats();
    const { url, done } = await startConnect(CONNECT_PUBLIC("GITHUB"));
    expect(url.origin).toBe(`https://auth.test:${O.port}`);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get("state")!.length).toBeGreaterThanOrEqual(22);
    expect(url.searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(url.searchParams.get("client_id")).toBe("public-cli");
    const page = await consent(url.href, { oauthPort: O.port, ca: O.ca });
    expect(page.callbackStatus).toBe(200);
    expect(page.callbackBody).toContain("Connected");
    const r = await done();
    expect(r.code, show("connect", r)).toBe(0);
    expect(r.stderr).toContain('connected GITHUB in vault "default"');
    expect((await O.stats()).codeGrants).toBe(before.codeGrants + 1);

    const status = await statusOf("GITHUB");
    expect(status).toMatchObject({
      key: "GITHUB",
      status: "connected",
      client_id: "public-cli",
      token_url: O.tokenEndpoint,
      token_auth_method: "none",
      has_refresh_token: true,
      has_client_secret: false,
      last_error: null,
    });
    const left = Date.parse(status.expires_at) - Date.now();
    expect(left).toBeGreaterThan(3000 * 1000);
    expect(left).toBeLessThanOrEqual(3600 * 1000);

    const secrets = secretsOf("GITHUB");
    expect((await O.check(secrets.access_token!)).active).toBe(true);
    // Sealed at rest: neither token appears in the vault file.
    const file = readFileSync(join(H.dir, "vault.av"), "utf8");
    expect(file).not.toContain(secrets.access_token!);
    expect(file).not.toContain(secrets.refresh_token!);

    const list = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string; type: string; expires_at: string }[];
    expect(list.find((c) => c.key === "GITHUB")).toMatchObject({ type: "oauth", expires_at: status.expires_at });
    expect((await ok(["vault", "credential", "list"])).stdout).toMatch(/GITHUB\s+oauth\s/);
    // `credential get` prints the access token (what the proxy injects), never the refresh token.
    const got = await H.run(["vault", "credential", "get", "GITHUB"], { env: ENV });
    expect(got.stdout.trim()).toBe(secrets.access_token!);

    await ok(["vault", "service", "add", "--name", "api", "--host", "api.test", "--auth-type", "bearer", "--token-key", "GITHUB"]);
    const seen = U.received.length;
    const answer = await viaProxy("/user");
    expect(answer.status).toBe(200);
    expect(bearerOf(seen)).toBe(secrets.access_token!);
  }, 60_000);

  test("the server checks the PKCE verifier: the code from the CLI's authorization fails with another verifier", async () => {
    const { live, url } = await startConnect(CONNECT_PUBLIC("PKCE_PROBE"));
    const { code } = await authorizationCode(url.href, { oauthPort: O.port, ca: O.ca });
    live.proc.kill();
    const wrong = await tokenRequest(O, { grant_type: "authorization_code", code, redirect_uri: url.searchParams.get("redirect_uri")!, code_verifier: pkcePair().verifier, client_id: "public-cli" });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toBe("invalid_grant");
    expect((await O.stats()).tokenErrors.at(-1)?.detail ?? "").toMatch(/code_verifier/i);
    expect(recordOf("PKCE_PROBE")).toBeUndefined();
  }, 30_000);

  test("a callback with another state is refused and nothing is stored", async () => {
    const before = readFileSync(join(H.dir, "vault.av"));
    const { url, done } = await startConnect(CONNECT_PUBLIC("STATE_PROBE"));
    const { code } = await authorizationCode(url.href, { oauthPort: O.port, ca: O.ca });
    const callback = new URL(url.searchParams.get("redirect_uri")!);
    callback.search = new URLSearchParams({ code, state: "forged-state-value" }).toString();
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("State mismatch");
    const r = await done();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("state does not match");
    expect(readFileSync(join(H.dir, "vault.av")).equals(before)).toBe(true);
  }, 30_000);

  test("denied consent ends with a clear error and nothing stored", async () => {
    const { url, done } = await startConnect(CONNECT_PUBLIC("DENIED"));
    const page = await consent(url.href, { oauthPort: O.port, ca: O.ca, deny: true });
    expect(page.callbackStatus).toBe(400);
    const r = await done();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("authorization was denied: access_denied");
    expect(r.stderr).toContain("hint:");
    expect(recordOf("DENIED")).toBeUndefined();
  }, 30_000);

  test("client_secret_post and client_secret_basic clients connect with the secret from stdin", async () => {
    for (const [key, client, method] of [
      ["POSTED", OAUTH_CLIENTS.post, "client_secret_post"],
      ["BASIC", OAUTH_CLIENTS.basic, "client_secret_basic"],
    ] as const) {
      const args = [
        key,
        "--authorization-url",
        O.authorizationEndpoint,
        "--token-url",
        O.tokenEndpoint,
        "--client-id",
        client.clientId,
        "--scopes",
        "openid read",
        "--token-auth-method",
        method,
        "--client-secret-stdin",
      ];
      const { url, done } = await startConnect(args, `${client.clientSecret}\n`);
      expect((await consent(url.href, { oauthPort: O.port, ca: O.ca })).callbackStatus).toBe(200);
      const r = await done();
      expect(r.code, show(key, r)).toBe(0);
      expect(await statusOf(key)).toMatchObject({ status: "connected", token_auth_method: method, has_client_secret: true });
      expect(readFileSync(join(H.dir, "vault.av"), "utf8")).not.toContain(client.clientSecret);
      // The stored secret is used again for refreshing.
      await ok(["oauth", "refresh", key]);
    }
  }, 60_000);

  test("a wrong client secret fails at the exchange with the provider's reason", async () => {
    const args = [
      "WRONG_SECRET",
      "--authorization-url",
      O.authorizationEndpoint,
      "--token-url",
      O.tokenEndpoint,
      "--client-id",
      OAUTH_CLIENTS.post.clientId,
      "--scopes",
      "openid",
      "--token-auth-method",
      "client_secret_post",
      "--client-secret-stdin",
    ];
    const { url, done } = await startConnect(args, "not-the-secret\n");
    const page = await consent(url.href, { oauthPort: O.port, ca: O.ca });
    expect(page.callbackStatus).toBe(502);
    const r = await done();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused the code exchange: invalid_client");
    expect(recordOf("WRONG_SECRET")).toBeUndefined();
  }, 30_000);

  test("a taken port, a timeout, a missing client id and an unknown provider are clear errors", async () => {
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve()));
    const port = (blocker.address() as AddressInfo).port;
    const taken = await av(["oauth", "connect", ...CONNECT_PUBLIC("TAKEN"), "--no-browser", "--port", String(port)]);
    blocker.close();
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    const slow = await av(["oauth", "connect", ...CONNECT_PUBLIC("SLOW"), "--no-browser", "--timeout", "1"]);
    expect(slow.code).toBe(1);
    expect(slow.stderr).toContain("no callback arrived within 1 s");
    const noClient = await av(["oauth", "connect", "NOCLIENT", "--provider", "github", "--no-browser"]);
    expect(noClient.code).toBe(2);
    expect(noClient.stderr).toContain("NOCLIENT has no client id");
    expect(noClient.stderr).toContain("github.com/settings/developers");
    const unknown = await av(["oauth", "connect", "X", "--provider", "myspace", "--client-id", "a"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown provider "myspace"');
    const http_ = await av(["oauth", "connect", "X", "--authorization-url", "http://auth.test/a", "--token-url", O.tokenEndpoint, "--client-id", "a"]);
    expect(http_.stderr).toContain("must be https://");
    for (const key of ["TAKEN", "SLOW", "NOCLIENT", "X"]) expect(recordOf(key)).toBeUndefined();
  }, 30_000);

  test("provider presets fill the authorization URL, scopes and extra parameters", async () => {
    const google = await av(["oauth", "connect", "GOOGLE", "--provider", "google", "--client-id", "my-app", "--no-browser", "--timeout", "1"]);
    const url = new URL(/^(https:\/\/\S+)$/m.exec(google.stderr)![1]!);
    expect(url.origin + url.pathname).toBe("https://accounts.google.com/o/oauth2/v2/auth");
    expect(url.searchParams.get("access_type")).toBe("offline");
    expect(url.searchParams.get("scope")).toContain("openid");
    const providers = JSON.parse((await ok(["oauth", "providers", "--json"])).stdout) as { name: string }[];
    const names = providers.map((p) => p.name);
    for (const name of ["github", "google", "slack", "microsoft", "gitlab", "linear", "notion", "atlassian", "dropbox", "zoom", "discord", "spotify"]) expect(names).toContain(name);
  }, 30_000);
});

describe("refresh", () => {
  test("a token near expiry is refreshed before injection, and the rotated refresh token is kept", async () => {
    await nearExpiry("GITHUB");
    const old = secretsOf("GITHUB");
    const before = await O.stats();
    const seen = U.received.length;
    const answer = await viaProxy("/repos");
    expect(answer.status).toBe(200);
    expect((await O.stats()).refreshGrants).toBe(before.refreshGrants + 1);
    const now = secretsOf("GITHUB");
    expect(now.access_token).not.toBe(old.access_token);
    expect(now.refresh_token).not.toBe(old.refresh_token);
    expect(bearerOf(seen)).toBe(now.access_token!);
    expect(Date.parse(recordOf("GITHUB")!.expires_at!) - Date.now()).toBeGreaterThan(3000 * 1000);
    const status = await statusOf("GITHUB");
    expect(Date.now() - Date.parse(status.last_refresh)).toBeLessThan(30_000);
  }, 30_000);

  test("ten concurrent requests cause one refresh", async () => {
    await nearExpiry("GITHUB");
    const before = await O.stats();
    await O.delay(400);
    const seen = U.received.length;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => viaProxy(`/concurrent/${i}`)));
    await O.delay(0);
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    const after = await O.stats();
    expect(after.refreshGrants).toBe(before.refreshGrants + 1);
    expect(after.tokenErrors.length).toBe(before.tokenErrors.length);
    const token = secretsOf("GITHUB").access_token!;
    for (let i = seen; i < seen + 10; i++) expect(bearerOf(i)).toBe(token);
  }, 30_000);

  test("a transient failure is retried with backoff", async () => {
    await nearExpiry("GITHUB");
    const before = await O.stats();
    await O.failNext(503, 2);
    const answer = await viaProxy("/after-503");
    expect(answer.status).toBe(200);
    const after = await O.stats();
    expect(after.injectedFailures).toBe(before.injectedFailures + 2);
    expect(after.refreshGrants).toBe(before.refreshGrants + 1);
  }, 30_000);

  test("an upstream 401 triggers one forced refresh and a retry for GET, not for POST", async () => {
    const first = secretsOf("GITHUB").access_token!;
    rejected.add(first);
    const before = await O.stats();
    const seen = U.received.length;
    const answer = await viaProxy("/revoked-early");
    expect(answer.status).toBe(200);
    expect(U.received.length).toBe(seen + 2);
    expect(bearerOf(seen)).toBe(first);
    const second = secretsOf("GITHUB").access_token!;
    expect(bearerOf(seen + 1)).toBe(second);
    expect((await O.stats()).refreshGrants).toBe(before.refreshGrants + 1);

    rejected.add(second);
    const post = await viaProxy("/create", "POST");
    expect(post.status).toBe(401);
    expect(post.json).toEqual({ error: "invalid_token" });
    expect((await O.stats()).refreshGrants).toBe(before.refreshGrants + 1);
    await ok(["oauth", "refresh", "GITHUB"]);
  }, 30_000);

  test("`oauth refresh` refreshes now and `oauth status` lists every OAuth credential", async () => {
    const old = secretsOf("GITHUB");
    const r = await ok(["oauth", "refresh", "GITHUB"]);
    expect(r.stderr).toContain("refreshed GITHUB: access token expires in");
    expect(secretsOf("GITHUB").refresh_token).not.toBe(old.refresh_token);
    const all = JSON.parse((await ok(["oauth", "status", "--json"])).stdout) as { key: string }[];
    expect(all.map((v) => v.key)).toEqual(expect.arrayContaining(["GITHUB", "POSTED", "BASIC"]));
    const table = (await ok(["oauth", "status", "GITHUB"])).stdout;
    expect(table).toMatch(/status\s+connected/);
    expect(table).toMatch(/refresh token\s+stored/);
  }, 30_000);
});

describe("refresh across processes", () => {
  test("three `oauth refresh` processes at once take turns: each uses the token the last one rotated", async () => {
    const before = await O.stats();
    const results = await Promise.all([1, 2, 3].map(() => av(["oauth", "refresh", "GITHUB"])));
    for (const r of results) expect(r.code, show("refresh", r)).toBe(0);
    const after = await O.stats();
    // A replayed (already rotated) refresh token would be an invalid_grant and revoke the grant.
    expect(after.refreshGrants).toBe(before.refreshGrants + 3);
    expect(after.tokenErrors.length).toBe(before.tokenErrors.length);
    expect((await O.check(secretsOf("GITHUB").access_token!)).active).toBe(true);
  }, 30_000);
});

describe("oauth paste", () => {
  async function freshTokens(): Promise<{ access: string; refresh: string }> {
    const { verifier, challenge } = pkcePair();
    const redirect = "http://127.0.0.1:9/callback";
    const url = new URL(O.authorizationEndpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: "public-cli",
      redirect_uri: redirect,
      scope: "openid read",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
    }).toString();
    const { code } = await authorizationCode(url.href, { oauthPort: O.port, ca: O.ca });
    const tokens = await tokenRequest(O, { grant_type: "authorization_code", code, redirect_uri: redirect, code_verifier: verifier, client_id: "public-cli" });
    return { access: String(tokens.json.access_token), refresh: String(tokens.json.refresh_token) };
  }

  test("a pasted refresh token is validated by refreshing at once", async () => {
    const tokens = await freshTokens();
    const before = await O.stats();
    const r = await ok(
      ["oauth", "paste", "LINEAR", "--access-token-stdin", "--refresh-token-stdin", "--token-url", O.tokenEndpoint, "--client-id", "public-cli"],
      `${tokens.access}\n${tokens.refresh}\n`,
    );
    expect(r.stderr).toContain("the refresh token works");
    expect((await O.stats()).refreshGrants).toBe(before.refreshGrants + 1);
    const secrets = secretsOf("LINEAR");
    expect(secrets.refresh_token).not.toBe(tokens.refresh); // rotated by the validating refresh
    expect((await O.check(secrets.access_token!)).active).toBe(true);
    expect(await statusOf("LINEAR")).toMatchObject({ status: "connected", has_refresh_token: true });
  }, 30_000);

  test("a refused refresh token is rejected and nothing is stored", async () => {
    const before = readFileSync(join(H.dir, "vault.av"));
    const r = await av(["oauth", "paste", "BOGUS", "--refresh-token-stdin", "--token-url", O.tokenEndpoint, "--client-id", "public-cli"], "rt-not-a-real-token\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the refresh token was refused, so nothing was stored: invalid_grant");
    expect(readFileSync(join(H.dir, "vault.av")).equals(before)).toBe(true);
    const missing = await av(["oauth", "paste", "BOGUS", "--refresh-token-stdin", "--client-id", "public-cli"], "rt\n");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("BOGUS has no token URL");
  }, 30_000);

  test("a token endpoint that cannot be reached is not called a refusal, and nothing is stored", async () => {
    const before = readFileSync(join(H.dir, "vault.av"));
    const r = await av(["oauth", "paste", "UNREACHED", "--refresh-token-stdin", "--token-url", "https://token.unreachable.invalid/token", "--client-id", "public-cli"], "rt-never-checked\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the refresh token could not be checked, so nothing was stored: token endpoint token.unreachable.invalid");
    expect(r.stderr).not.toContain("was refused");
    expect(r.stderr).toContain("hint: check that the token URL's host is reachable and trusted from here");
    expect(readFileSync(join(H.dir, "vault.av")).equals(before)).toBe(true);
  }, 30_000);

  test("an access token alone is stored with the given lifetime", async () => {
    await ok(["oauth", "paste", "ACCESS_ONLY", "--access-token-stdin", "--token-url", O.tokenEndpoint, "--expires-in", "600"], "at-pasted-value\n");
    const record = recordOf("ACCESS_ONLY")!;
    expect(Math.abs(Date.parse(record.expires_at!) - Date.now() - 600_000)).toBeLessThan(30_000);
    expect(secretsOf("ACCESS_ONLY")).toEqual({ access_token: "at-pasted-value" });
    const static_ = await av(["vault", "credential", "set", "ACCESS_ONLY=x"]);
    expect(static_.code).toBe(1);
    expect(static_.stderr).toContain("ACCESS_ONLY is an OAuth credential");
  }, 30_000);
});

describe("proposals with OAuth slots", () => {
  test("a connect-mode slot is completed by `oauth connect` with the proposal's settings", async () => {
    const filed = await fetch(`${API}/v1/proposals`, {
      method: "POST",
      headers: { authorization: `Bearer ${session}`, "content-type": "application/json" },
      body: JSON.stringify({
        services: [{ action: "set", name: "slotted", host: "slotted.test", auth: { type: "bearer", token: "SLOTTED" } }],
        credentials: [
          {
            action: "set",
            key: "SLOTTED",
            type: "oauth",
            description: "via proposal",
            oauth: { authorization_url: O.authorizationEndpoint, token_url: O.tokenEndpoint, scopes: "openid read", client_id: "public-cli" },
          },
        ],
        message: "need the slotted API",
      }),
    });
    expect(filed.status).toBe(201);
    const { id } = (await filed.json()) as { id: number };
    const approved = await ok(["vault", "proposal", "approve", String(id), "--yes"]);
    // The URLs are the agent's choice and not a known provider's: the command carries them, with why to check them.
    expect(approved.stderr).toContain(
      `next: SLOTTED is an OAuth credential; complete it with: agent-vault oauth connect SLOTTED --token-url '${O.tokenEndpoint}' --authorization-url '${O.authorizationEndpoint}' (the agent chose where SLOTTED's tokens go, not a known provider's: check these URLs first, or use --provider NAME instead)`,
    );
    const blocked = await fetch(`${API}/proxy/slotted.test/x`, { headers: { authorization: `Bearer ${session}` } });
    expect(blocked.status).toBe(502);
    expect(((await blocked.json()) as { error: string }).error).toBe("oauth_not_connected");
    const before = await O.stats();
    const unstated = await av(["oauth", "connect", "SLOTTED", "--no-browser"]);
    expect(unstated.code).toBe(2);
    expect(unstated.stderr).toContain(`SLOTTED's authorization URL ${O.authorizationEndpoint} was written by the agent's proposal #${id} and is not a known provider's`);
    expect((await O.stats()).tokenRequests).toBe(before.tokenRequests);
    const { url, done } = await startConnect(["SLOTTED", "--token-url", O.tokenEndpoint, "--authorization-url", O.authorizationEndpoint]);
    expect(url.searchParams.get("scope")).toBe("openid read");
    expect((await consent(url.href, { oauthPort: O.port, ca: O.ca })).callbackStatus).toBe(200);
    expect((await done()).code).toBe(0);
    expect(await statusOf("SLOTTED")).toMatchObject({ status: "connected", client_id: "public-cli" });
    expect(recordOf("SLOTTED")!.description).toBe("via proposal");
    expect(recordOf("SLOTTED")!.metadata.proposal).toBe(String(id));
  }, 60_000);

  test("a paste-mode slot says so to connect, and is completed by paste", async () => {
    const filed = await fetch(`${API}/v1/proposals`, {
      method: "POST",
      headers: { authorization: `Bearer ${session}`, "content-type": "application/json" },
      body: JSON.stringify({ credentials: [{ action: "set", key: "PASTED", type: "oauth", oauth: { token_url: O.tokenEndpoint, client_id: "public-cli" } }] }),
    });
    const { id } = (await filed.json()) as { id: number };
    const approved = await ok(["vault", "proposal", "approve", String(id), "--yes"]);
    expect(approved.stderr).toContain(`agent-vault oauth paste PASTED --access-token-stdin --refresh-token-stdin --token-url '${O.tokenEndpoint}'`);
    const connect = await av(["oauth", "connect", "PASTED", "--no-browser"]);
    expect(connect.code).toBe(2);
    expect(connect.stderr).toContain(`PASTED's token URL ${O.tokenEndpoint} was written by the agent's proposal #${id} and is not a known provider's`);
    const stated = await av(["oauth", "connect", "PASTED", "--no-browser", "--token-url", O.tokenEndpoint]);
    expect(stated.code).toBe(2);
    expect(stated.stderr).toContain("PASTED has no authorization URL (its proposal asked for pasted tokens)");
    expect(await statusOf("PASTED")).toMatchObject({ status: "not_connected" });
    expect((await ok(["vault", "credential", "list"])).stdout).toMatch(/PASTED\s+oauth \(not connected\)/);
  }, 30_000);
});

describe("permanent failure", () => {
  test("a refused refresh marks the credential and answers 502 oauth_refresh_failed with the reason", async () => {
    await nearExpiry("GITHUB");
    await O.revokeRefresh();
    const answer = await viaProxy("/after-revoke");
    expect(answer.status).toBe(502);
    expect(answer.json.error).toBe("oauth_refresh_failed");
    expect(answer.json.message).toContain("invalid_grant");
    const status = await statusOf("GITHUB");
    expect(status.status).toBe("refresh_failed");
    expect(status.last_error).toContain("invalid_grant");
    // Later requests do not hammer the provider.
    const before = await O.stats();
    expect((await viaProxy("/again")).json.error).toBe("oauth_refresh_failed");
    expect((await O.stats()).tokenRequests).toBe(before.tokenRequests);
    expect((await ok(["vault", "credential", "list"])).stdout).toMatch(/GITHUB\s+oauth \(refresh failed\)/);
    const refresh = await av(["oauth", "refresh", "GITHUB"]);
    expect(refresh.code).toBe(1);
    expect(refresh.stderr).toContain("refreshing GITHUB failed: invalid_grant");
  }, 30_000);
});

describe("secrets", () => {
  test("no token or client secret appears in any output, the request log or the server's output", async () => {
    await S.stop();
    const tokens = new Set<string>([OAUTH_CLIENTS.post.clientSecret, OAUTH_CLIENTS.basic.clientSecret]);
    for (const key of ["GITHUB", "POSTED", "BASIC", "LINEAR", "SLOTTED"]) {
      const s = secretsOf(key);
      for (const value of [s.access_token, s.refresh_token]) if (value) tokens.add(value);
    }
    expect(tokens.size).toBeGreaterThan(8);
    const log = readFileSync(join(H.dir, "requests.log"), "utf8");
    expect(log.length).toBeGreaterThan(0);
    const haystacks = [...outputs, log, S.live.stdout, S.live.stderr];
    for (const token of tokens) for (const hay of haystacks) expect(hay.includes(token)).toBe(false);
  }, 30_000);
});
