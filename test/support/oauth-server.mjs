// A real OAuth 2.0 authorization server for end-to-end tests, built on oidc-provider v9.
// Run under node (not bun):  OAUTH_TLS_KEY=key.pem OAUTH_TLS_CERT=cert.pem node test/support/oauth-server.mjs
//
// - HTTPS on 127.0.0.1:<random port>; the issuer is https://auth.test:<port> (tests map auth.test to
//   127.0.0.1 and use SNI "auth.test"). The port must be known before the Provider is constructed, so
//   the HTTPS server listens first and the provider's callback is attached as its request handler.
// - On ready prints exactly one line to stdout: {"port":N,"admin":M}. Everything else goes to stderr
//   (oidc-provider prints NOTICEs through console.info, so console.info/log are redirected).
// - Loopback redirect URIs (RFC 8252 §7.3): nothing special is needed. oidc-provider v9's
//   Client#redirectUriAllowed (lib/models/client.js, stripLoopbackPort) accepts any port when the
//   client's application_type is 'native' and both the registered and the requested URIs are
//   http://{127.0.0.1|localhost|[::1]}...; the comparison ignores only the port. The token endpoint
//   then requires the exact redirect_uri that was used at /auth.
// - PKCE (S256 only in v9) is required for every client via pkce.required.
// - Refresh tokens are issued for every code grant (issueRefreshToken) and rotate on every use.
//   Note: oidc-provider drops `offline_access` from the request unless prompt=consent is present;
//   issueRefreshToken ignores the scope, so refresh tokens are still issued.
// - resourceIndicators are disabled so access tokens are opaque and carry the requested scopes.
// - Client authentication is enforced strictly by a middleware in front of /token (oidc-provider
//   itself accepts client_secret_post from a client_secret_basic client and vice versa): a mismatch
//   is answered 401 {"error":"invalid_client"} and recorded in /stats tokenErrors.
// - Reusing a rotated (consumed) refresh token revokes the whole grant, so the token that replaced it
//   dies too (refresh-token reuse detection); /stats tokenErrors[].detail says "refresh token already used".
// - Reusing an authorization code revokes the whole grant (oidc-provider behaviour), so the refresh
//   token from the first exchange stops working too.
// - A Map-based adapter (instead of the LRU memory adapter) lets /revoke-refresh enumerate tokens.
//
// Set OAUTH_EXIT_ON_STDIN_EOF=1 to exit when stdin reaches EOF (the parent died).
//
// Admin API (plain HTTP, 127.0.0.1:<admin>): GET /stats, POST /ttl?seconds=N, GET /check?token=T,
// POST /revoke-refresh, POST /fail-next?status=503&count=N, POST /delay?ms=N.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Provider } from "oidc-provider";

console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const state = {
  accessTtl: 3600,
  failNext: { status: 503, count: 0 },
  delayMs: 0,
  codeGrants: 0,
  refreshGrants: 0,
  tokenRequests: 0,
  injectedFailures: 0,
  tokenErrors: [],
};

// --- storage ----------------------------------------------------------------------------------
const stores = new Map(); // model name -> Map(id -> { payload, expiresAt })
const storeFor = (name) => {
  if (!stores.has(name)) stores.set(name, new Map());
  return stores.get(name);
};
const live = (entry) => (entry && (!entry.expiresAt || entry.expiresAt > Date.now()) ? entry : undefined);

class MapAdapter {
  constructor(name) {
    this.name = name;
    this.store = storeFor(name);
  }
  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload: { ...payload }, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
  }
  async find(id) {
    const entry = live(this.store.get(id));
    return entry ? { ...entry.payload } : undefined;
  }
  async findByUserCode(userCode) {
    for (const entry of this.store.values()) if (live(entry) && entry.payload.userCode === userCode) return { ...entry.payload };
    return undefined;
  }
  async findByUid(uid) {
    for (const entry of this.store.values()) if (live(entry) && entry.payload.uid === uid) return { ...entry.payload };
    return undefined;
  }
  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId) {
    for (const [id, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(id);
  }
}

// --- servers ----------------------------------------------------------------------------------
const key = readFileSync(process.env.OAUTH_TLS_KEY ?? fail("OAUTH_TLS_KEY is required"));
const cert = readFileSync(process.env.OAUTH_TLS_CERT ?? fail("OAUTH_TLS_CERT is required"));
function fail(message) {
  console.error(message);
  process.exit(2);
}

const server = https.createServer({ key, cert });
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;

const common = {
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  application_type: "native",
  redirect_uris: ["http://127.0.0.1/callback"],
};

const REGISTERED_AUTH = { "public-cli": "none", "post-cli": "client_secret_post", "basic-cli": "client_secret_basic" };

const provider = new Provider(`https://auth.test:${port}`, {
  adapter: MapAdapter,
  clients: [
    { ...common, client_id: "public-cli", token_endpoint_auth_method: "none" },
    { ...common, client_id: "post-cli", client_secret: "post-secret-1234567890abcdefghijklmnop", token_endpoint_auth_method: "client_secret_post" },
    { ...common, client_id: "basic-cli", client_secret: "basic-secret-1234567890abcdefghijklmno", token_endpoint_auth_method: "client_secret_basic" },
  ],
  cookies: { keys: ["agent-vault-test-cookie-key-0123456789"] },
  scopes: ["openid", "offline_access", "read", "write"],
  claims: { openid: ["sub"] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: () => state.accessTtl,
    AuthorizationCode: 600,
    Grant: 14 * 86400,
    Interaction: 3600,
    RefreshToken: 14 * 86400,
    Session: 14 * 86400,
    IdToken: 3600,
  },
});

provider.on("grant.success", (ctx) => {
  const grantType = ctx.oidc.params?.grant_type;
  if (grantType === "authorization_code") state.codeGrants++;
  else if (grantType === "refresh_token") state.refreshGrants++;
});
const recordError = (ctx, err) => {
  if (ctx.path !== "/token") return;
  state.tokenErrors.push({ error: err.error ?? "server_error", description: err.error_description ?? String(err.message ?? ""), detail: err.error_detail });
};
provider.on("grant.error", recordError);
provider.on("server_error", recordError);

// Runs before the provider's routes (Provider#use inserts ahead of its router).
provider.use(async (ctx, next) => {
  if (ctx.path !== "/token" || ctx.method !== "POST") return next();
  state.tokenRequests++;
  if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
  // Read the form body here (oidc-provider then uses ctx.request.body) to enforce the registered
  // client authentication method strictly: oidc-provider itself treats client_secret_basic and
  // client_secret_post as interchangeable.
  const raw = await readRequest(ctx.req);
  ctx.request.body = raw;
  const form = new URLSearchParams(raw);
  const header = ctx.get("authorization");
  const basicId = /^basic /i.test(header) ? decodeBasicId(header.slice(6).trim()) : undefined;
  const clientId = basicId ?? form.get("client_id") ?? undefined;
  const used =
    basicId !== undefined && form.has("client_secret")
      ? "both client_secret_basic and client_secret_post"
      : basicId !== undefined
        ? "client_secret_basic"
        : form.has("client_secret")
          ? "client_secret_post"
          : "none";
  const registered = clientId ? REGISTERED_AUTH[clientId] : undefined;
  if (registered && used !== registered) {
    const description = `client ${clientId} is registered for ${registered} but authenticated with ${used}`;
    state.tokenErrors.push({ error: "invalid_client", description });
    ctx.status = 401;
    ctx.set("cache-control", "no-store");
    ctx.body = { error: "invalid_client", error_description: description };
    return;
  }
  if (state.failNext.count > 0) {
    state.failNext.count--;
    state.injectedFailures++;
    ctx.status = state.failNext.status;
    ctx.set("cache-control", "no-store");
    ctx.body = { error: state.failNext.status >= 500 ? "temporarily_unavailable" : "invalid_request", error_description: `injected failure (HTTP ${state.failNext.status})` };
    return;
  }
  return next();
});

server.on("request", provider.callback());

function readRequest(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function decodeBasicId(b64) {
  const decoded = Buffer.from(b64, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  try {
    return decodeURIComponent((i === -1 ? decoded : decoded.slice(0, i)).replaceAll("+", "%20"));
  } catch {
    return undefined;
  }
}

// --- admin ------------------------------------------------------------------------------------
const admin = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://admin");
  const reply = (status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const num = (name, fallback) => {
    const value = Number(url.searchParams.get(name) ?? fallback);
    return Number.isFinite(value) ? value : fallback;
  };
  try {
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "GET /stats":
        return reply(200, {
          codeGrants: state.codeGrants,
          refreshGrants: state.refreshGrants,
          tokenErrors: state.tokenErrors,
          tokenRequests: state.tokenRequests,
          injectedFailures: state.injectedFailures,
        });
      case "POST /ttl":
        state.accessTtl = num("seconds", 3600);
        return reply(200, { accessTtl: state.accessTtl });
      case "GET /check": {
        const token = await provider.AccessToken.find(url.searchParams.get("token") ?? "");
        if (!token) return reply(200, { active: false });
        return reply(200, { active: !token.isExpired, client_id: token.clientId, exp: token.exp, scope: token.scope, sub: token.accountId });
      }
      case "POST /revoke-refresh": {
        const refresh = storeFor("RefreshToken");
        const grants = storeFor("Grant");
        const revoked = { refreshTokens: refresh.size, grants: grants.size };
        refresh.clear();
        grants.clear();
        return reply(200, revoked);
      }
      case "POST /fail-next":
        state.failNext = { status: num("status", 503), count: num("count", 1) };
        return reply(200, state.failNext);
      case "POST /delay":
        state.delayMs = num("ms", 0);
        return reply(200, { delayMs: state.delayMs });
      default:
        return reply(404, { error: "not_found", route });
    }
  } catch (err) {
    console.error(err);
    return reply(500, { error: String(err) });
  }
});
await new Promise((resolve) => admin.listen(0, "127.0.0.1", resolve));

process.stdout.write(`${JSON.stringify({ port, admin: admin.address().port })}\n`);

const shutdown = () => {
  server.closeAllConnections?.();
  admin.closeAllConnections?.();
  server.close();
  admin.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
// Started by test/support/oauth.ts with stdin as a pipe: exit when the test runner goes away.
if (process.env.OAUTH_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", shutdown);
  process.stdin.on("close", shutdown);
  process.stdin.resume();
}
process.on("SIGINT", shutdown);
