// Each pipeline step on its own, over flows built by factories: no sockets.
import { afterEach, describe, expect, test } from "bun:test";
import { ServiceMatcher } from "../../src/proxy/match.ts";
import { runPipeline } from "../../src/proxy/pipeline.ts";
import { authenticate, tokenFromAuthorization } from "../../src/proxy/steps/authenticate.ts";
import { stripHeaders, withoutQueryParam } from "../../src/proxy/steps/headers.ts";
import { injectCredential } from "../../src/proxy/steps/inject.ts";
import { matchService } from "../../src/proxy/steps/match-service.ts";
import { applyPolicy } from "../../src/proxy/steps/policy.ts";
import { FRONTING_HEADERS, type ServiceInput } from "../../src/vault/service.schema.ts";
import { parseServiceInput, setServices } from "../../src/vault/services.ts";
import { revokeSession } from "../../src/vault/sessions.ts";
import { stepFixture, type StepFixture } from "../support/flow.ts";

let fx: StepFixture | undefined;
afterEach(() => fx?.cleanup());

const CREDS = { GH: "ghp_secret", USER: "alice", PASS: "pw", KEY: "k-123", DD: "dd-1", APP: "app-2" };
const SERVICES = [
  { name: "github", host: "api.github.com", auth: { type: "bearer", token: "GH" } },
  { name: "basic", host: "basic.example.com", auth: { type: "basic", username: "USER", password: "PASS" } },
  { name: "apikey", host: "key.example.com", auth: { type: "api-key", key: "KEY", header: "X-Api-Key", prefix: "Token " } },
  { name: "custom", host: "custom.example.com", auth: { type: "custom", headers: { "DD-API-KEY": "{{ DD }}", "X-Both": "{{DD}}:{{ APP }}" } } },
  { name: "query", host: "maps.example.com", auth: { type: "query", param: "key", key: "KEY" } },
  { name: "open", host: "open.example.com", auth: { type: "passthrough" } },
  { name: "wild", host: "*.wild.example.com", auth: { type: "bearer", token: "KEY" } },
  { name: "off", host: "off.example.com", auth: { type: "bearer", token: "GH" }, enabled: false },
];

async function through(f: StepFixture, init: Parameters<StepFixture["flow"]>[0]) {
  const flow = f.flow(init);
  await runPipeline(flow, f.context(), [authenticate, matchService, applyPolicy, stripHeaders, injectCredential]);
  return flow;
}

describe("authenticate", () => {
  test("reads Basic token:vault and Bearer", () => {
    expect(tokenFromAuthorization(`Basic ${Buffer.from("avs_tok:default").toString("base64")}`)).toBe("avs_tok");
    expect(tokenFromAuthorization("Bearer avs_tok")).toBe("avs_tok");
    expect(tokenFromAuthorization("Digest x")).toBeUndefined();
    expect(tokenFromAuthorization(undefined)).toBeUndefined();
  });

  test("missing, invalid and revoked sessions get 407", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    for (const credential of [undefined, "avs_wrong"]) {
      const flow = fx.flow({ host: "api.github.com", credential });
      authenticate(flow, fx.context());
      expect(flow.answer?.status).toBe(407);
      expect(flow.answer?.code).toBe("unauthorized");
    }
    const ok = fx.flow({ host: "api.github.com" });
    authenticate(ok, fx.context());
    expect(ok.answer).toBeUndefined();
    await revokeSession(fx.store, "default", ok.principal!.id);
    const revoked = fx.flow({ host: "api.github.com" });
    authenticate(revoked, fx.context());
    expect(revoked.answer?.message).toContain("revoked");
  });
});

describe("injection, per auth type", () => {
  test.each([
    ["api.github.com", "/", { authorization: "Bearer ghp_secret" }],
    ["basic.example.com", "/", { authorization: `Basic ${Buffer.from("alice:pw").toString("base64")}` }],
    ["key.example.com", "/", { "x-api-key": "Token k-123" }],
    ["custom.example.com", "/", { "dd-api-key": "dd-1", "x-both": "dd-1:app-2" }],
    ["a.wild.example.com", "/", { authorization: "Bearer k-123" }],
  ])("%s", async (host, path, expected) => {
    fx = await stepFixture(CREDS, SERVICES);
    const flow = await through(fx, { host, path, headers: { authorization: "Bearer placeholder", "x-api-key": "agent-copy", accept: "*/*" } });
    expect(flow.answer).toBeUndefined();
    for (const [name, value] of Object.entries(expected)) expect(flow.headers[name]).toBe(value);
    expect(flow.headers.accept).toBe("*/*");
    if (!("authorization" in expected)) expect(flow.headers.authorization).toBeUndefined();
  });

  test("headers a front end routes by: refused in a new service, left out of one stored before, and the agent's copies removed", async () => {
    const fronted = { name: "fronted", host: "fronted.example.com", auth: { type: "custom", headers: { Authorization: "Bearer {{ GH }}", "X-Forwarded-Host": "agent-app.example, {{ GH }}" } } };
    expect(() => parseServiceInput(fronted)).toThrow("X-Forwarded-Host routes a request at a front end; a service cannot set it");
    expect(() => parseServiceInput({ ...fronted, auth: { type: "api-key", key: "GH", header: "Forwarded" } })).toThrow("Forwarded routes a request at a front end");
    fx = await stepFixture(CREDS, SERVICES);
    // Stored before the rule (the schema that reads the vault still takes it).
    await setServices(fx.store, "default", [{ ...fronted, enabled: true } as unknown as ServiceInput], false);
    const agentCopies = Object.fromEntries([...FRONTING_HEADERS].map((name) => [name, "agent-own.example"]));
    const flow = await through(fx, { host: "fronted.example.com", path: "/", headers: { ...agentCopies, accept: "*/*" } });
    expect(flow.answer).toBeUndefined();
    expect(flow.headers.authorization).toBe("Bearer ghp_secret");
    for (const name of FRONTING_HEADERS) expect(flow.headers[name], name).toBeUndefined();
  });

  test("a carve-out (host/admin/*) beside a broader service: its path in any case or with ; parameters is refused, also beside host:443, which outranks any path prefix", () => {
    const service = (name: string, host: string) => ({ name, host, auth: { type: "bearer" as const, token: "GH" }, enabled: true, created_at: "2026-01-01T00:00:00.000Z" });
    for (const broad of ["api.fake.test", "api.fake.test:443", "*.fake.test"]) {
      const matcher = new ServiceMatcher([service("broad", broad), service("admin", "api.fake.test/admin/*")]);
      for (const path of ["/Admin/users", "/ADMIN/users", "/admin;x/users", "/admin%3Bx/users"]) {
        const chosen = matcher.match("api.fake.test", 443, path);
        expect(chosen?.name, `${broad} ${path}`).toBe("broad");
        expect(matcher.carvedOut("api.fake.test", 443, path, chosen)?.name, `${broad} ${path}`).toBe("admin");
      }
      // Outside the carve-out: the broad service, nothing refused.
      for (const path of ["/administrator", "/users", "/x/admin/y"]) {
        const chosen = matcher.match("api.fake.test", 443, path);
        expect(matcher.carvedOut("api.fake.test", 443, path, chosen), `${broad} ${path}`).toBeNull();
      }
    }
    // Unicode case folding, as a server that compares paths without case may read them: ſ (U+017F)
    // is s, the Kelvin sign is k; written as is or as UTF-8 escapes.
    const folding = new ServiceMatcher([service("broad", "api.fake.test"), service("secrets", "api.fake.test/secrets/*"), service("keys", "api.fake.test/keys/*")]);
    for (const path of ["/ſecrets/x", "/%C5%BFecrets/x", "/\u212Aeys/x", "/%E2%84%AAeys/x"]) {
      const chosen = folding.match("api.fake.test", 443, path);
      expect(chosen?.name, path).toBe("broad");
      expect(folding.carvedOut("api.fake.test", 443, path, chosen)?.name, path).toMatch(/^(secrets|keys)$/);
    }
    expect(folding.carvedOut("api.fake.test", 443, "/%C5%BFomething", folding.match("api.fake.test", 443, "/%C5%BFomething"))).toBeNull();
    // The carve-out's own path, when it is the one chosen, is not refused.
    const plain = new ServiceMatcher([service("broad", "api.fake.test"), service("admin", "api.fake.test/admin/*")]);
    const own = plain.match("api.fake.test", 443, "/admin/users");
    expect(own?.name).toBe("admin");
    expect(plain.carvedOut("api.fake.test", 443, "/admin/users", own)).toBeNull();
  });

  test("query: the agent's own parameter is replaced", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const flow = await through(fx, { host: "maps.example.com", path: "/geo?key=placeholder&q=x%20y" });
    expect(flow.path).toBe("/geo?q=x%20y&key=k-123");
  });

  test("passthrough and unmatched hosts are left alone", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    for (const host of ["open.example.com", "elsewhere.example.org"]) {
      const flow = await through(fx, { host, headers: { authorization: "Bearer mine" } });
      expect(flow.answer).toBeUndefined();
      expect(flow.headers.authorization).toBe("Bearer mine");
      expect(flow.injected).toEqual([]);
    }
  });

  test("look-alike hosts never get a credential", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    for (const host of ["api.github.com.evil.io", "evil-api.github.com", "api.github.com.", "xapi.github.com", "a.b.wild.example.com", "wild.example.com"]) {
      const flow = await through(fx, { host, headers: { authorization: "Bearer placeholder" } });
      expect(flow.headers.authorization).toBe("Bearer placeholder");
      expect(flow.injected).toEqual([]);
    }
  });

  test("a deleted credential is 502 credential_not_found naming the key", async () => {
    fx = await stepFixture({ ...CREDS }, SERVICES);
    await fx.store.update((body) => {
      delete body.vaults[0]!.credentials.GH;
    });
    const flow = await through(fx, { host: "api.github.com" });
    expect(flow.answer).toMatchObject({ status: 502, code: "credential_not_found" });
    expect(flow.answer!.message).toContain("GH");
    expect(flow.headers.authorization).toBeUndefined();
  });
});

describe("policy", () => {
  test("disabled service, deny policy with a proposal hint, session bound to services", async () => {
    fx = await stepFixture(CREDS, SERVICES, ["github"]);
    expect((await through(fx, { host: "off.example.com" })).answer?.code).toBe("service_disabled");
    expect((await through(fx, { host: "key.example.com" })).answer?.code).toBe("host_not_allowed");
    expect((await through(fx, { host: "api.github.com" })).answer).toBeUndefined();
    await fx.store.update((body) => {
      body.vaults[0]!.settings.unmatched = "deny";
    });
    const denied = await through(fx, { host: "api.stripe.com" });
    expect(denied.answer?.status).toBe(403);
    const hint = denied.answer?.extra?.proposal_hint as { services: { name: string; host: string; auth: { type: string } }[]; credentials: { key: string }[] };
    expect(hint.services[0]).toMatchObject({ name: "stripe", host: "api.stripe.com", auth: { type: "bearer" } });
    expect(hint.credentials[0]!.key).toBe("STRIPE_SECRET_KEY");
  });
});

describe("header hygiene", () => {
  test("hop-by-hop and proxy headers go; Connection-named headers go; the rest stays", () => {
    const flow = {
      headers: { connection: "keep-alive, X-Secret-Hop", "x-secret-hop": "1", "proxy-authorization": "Basic x", te: "trailers", "x-keep": "yes" },
      service: null,
      via: "tunnel",
      path: "/",
    } as never;
    stripHeaders(flow, {} as never);
    expect((flow as { headers: object }).headers).toEqual({ "x-keep": "yes" });
  });

  test("underscore twins of stripped headers go, both ways round; other underscore names stay", async () => {
    fx = await stepFixture(CREDS, [...SERVICES, { name: "under", host: "under.example.com", auth: { type: "api-key", key: "KEY", header: "X_Under_Key" } }]);
    const agent = { proxy_authorization: "Basic x", transfer_encoding: "chunked", x_keep_me: "yes", "x-plain": "yes" };
    const keyed = await through(fx, { host: "key.example.com", headers: { ...agent, x_api_key: "agent's", x_forwarded_host: "evil.example", authorization_: "kept" } });
    expect(keyed.headers["x-api-key"]).toBe("Token k-123");
    for (const gone of ["proxy_authorization", "transfer_encoding", "x_api_key", "x_forwarded_host"]) expect(keyed.headers[gone]).toBeUndefined();
    expect(keyed.headers).toMatchObject({ x_keep_me: "yes", "x-plain": "yes", authorization_: "kept" });
    // The service's header is spelt with underscores: the agent's dashed spelling is its twin.
    const under = await through(fx, { host: "under.example.com", headers: { "x-under-key": "agent's", x_under_key: "agent's too", "x-plain": "yes" } });
    expect(under.headers["x-under-key"]).toBeUndefined();
    expect(under.headers.x_under_key).toBe("k-123");
    expect(under.headers["x-plain"]).toBe("yes");
  });

  test("withoutQueryParam", () => {
    expect(withoutQueryParam("/a?key=1", "key")).toBe("/a");
    expect(withoutQueryParam("/a?k%65y=1&b=2", "key")).toBe("/a?b=2");
    expect(withoutQueryParam("/a", "key")).toBe("/a");
  });
});
