// Agents, grants and access policies through the pipeline's steps, with a controllable clock:
// every step reads ctx.now, so a grant's expiry, a time window or a rate limit's refill is tested
// by moving `now`, not by waiting.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { AccessLimits } from "../../src/proxy/limits.ts";
import { runPipeline } from "../../src/proxy/pipeline.ts";
import { type StepContext } from "../../src/proxy/step-context.ts";
import { authenticate } from "../../src/proxy/steps/authenticate.ts";
import { stripHeaders } from "../../src/proxy/steps/headers.ts";
import { injectCredential } from "../../src/proxy/steps/inject.ts";
import { matchService } from "../../src/proxy/steps/match-service.ts";
import { applyPolicy } from "../../src/proxy/steps/policy.ts";
import { type Policy } from "../../src/vault/agent.schema.ts";
import { createAgent, deleteAgent, grantServices, parsePolicy, revokeAgent, revokeGrants, rotateAgent, setAgentPolicy } from "../../src/vault/agents.ts";
import { approvalOf, inWindow, normalizePath, pathMatches, pathReadings, refusalOf } from "../../src/vault/policy.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { findVault } from "../../src/vault/vaults.ts";
import { stepFixture, type StepFixture } from "../support/flow.ts";

let fx: StepFixture | undefined;
afterEach(() => fx?.cleanup());

const CREDS = { GH: "ghp_agent_secret", STRIPE: "sk_agent_secret" };
const SERVICES = [
  { name: "github", host: "api.github.com", auth: { type: "bearer", token: "GH" } },
  { name: "stripe", host: "api.stripe.com", auth: { type: "bearer", token: "STRIPE" } },
];
const T0 = Date.parse("2026-11-23T10:00:00Z"); // a Monday
const H = 3_600_000;

function ctxAt(f: StepFixture, now: number, limits?: AccessLimits): StepContext {
  const base = f.context();
  return { ...base, snapshot: f.state.current(), now, limits: limits ?? base.limits };
}

async function request(f: StepFixture, token: string, now: number, init: { host?: string; method?: string; path?: string } = {}, limits?: AccessLimits) {
  const flow = f.flow({ host: init.host ?? "api.github.com", method: init.method ?? "GET", path: init.path ?? "/user", credential: token });
  await runPipeline(flow, ctxAt(f, now, limits), [authenticate, matchService, applyPolicy, stripHeaders, injectCredential]);
  return flow;
}

describe("agent lifecycle", () => {
  test("create stores only the token's hash; rotate replaces it; revoke and delete stop it", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const { token, agent } = await createAgent(fx.store, "default", "claude", "Claude Code");
    expect(token).toMatch(/^av_agt_[A-Za-z0-9_-]{43}$/);
    expect(agent.token_hint).toBe(token.slice(0, 11));
    expect(readFileSync(fx.store.paths.stateFile, "utf8")).not.toContain(token.slice(11));
    await expect(createAgent(fx.store, "default", "claude")).rejects.toThrow('already has an agent "claude"');
    await expect(createAgent(fx.store, "default", "Bad Name")).rejects.toThrow("invalid agent name");

    await grantServices(fx.store, "default", "claude", ["github"], null, "test");
    expect((await request(fx, token, T0)).answer).toBeUndefined();
    const { token: second } = await rotateAgent(fx.store, "default", "claude");
    expect((await request(fx, token, T0)).answer?.code).toBe("unauthorized");
    expect((await request(fx, second, T0)).answer).toBeUndefined();
    await revokeAgent(fx.store, "default", "claude");
    const revoked = await request(fx, second, T0);
    expect(revoked.answer).toMatchObject({ status: 407, code: "unauthorized", message: 'agent "claude" was revoked' });
    const { token: third } = await rotateAgent(fx.store, "default", "claude");
    expect((await request(fx, third, T0)).answer).toBeUndefined();
    await deleteAgent(fx.store, "default", "claude");
    expect((await request(fx, third, T0)).answer?.code).toBe("unauthorized");
  });

  test("access is exactly the unexpired grants, on the clock's next tick", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const { token } = await createAgent(fx.store, "default", "bot");
    let flow = await request(fx, token, T0);
    expect(flow.answer).toMatchObject({ status: 403, code: "host_not_allowed" });
    expect(flow.answer!.extra).toEqual({ hint: "agent-vault agent grant bot --service github" });
    await grantServices(fx.store, "default", "bot", ["github"], H, "test", T0);
    flow = await request(fx, token, T0 + H - 1);
    expect(flow.answer).toBeUndefined();
    expect(flow.headers.authorization).toBe("Bearer ghp_agent_secret");
    expect((await request(fx, token, T0 + H)).answer?.code).toBe("host_not_allowed");
    expect((await request(fx, token, T0, { host: "api.stripe.com" })).answer?.code).toBe("host_not_allowed");
    // Re-granting replaces the expiry; revoking the grant acts at once.
    await grantServices(fx.store, "default", "bot", ["github", "stripe"], null, "test", T0);
    expect((await request(fx, token, T0 + 1000 * H)).answer).toBeUndefined();
    await revokeGrants(fx.store, "default", "bot", ["github"]);
    expect((await request(fx, token, T0)).answer?.code).toBe("host_not_allowed");
    expect((await request(fx, token, T0, { host: "api.stripe.com" })).answer).toBeUndefined();
    await expect(revokeGrants(fx.store, "default", "bot", ["github"])).rejects.toThrow("has no grant for github");
    await expect(grantServices(fx.store, "default", "bot", ["nope"], H, "test")).rejects.toThrow('no service "nope"');
  });

  test("a session run as an agent gets the agent's grants and policy; the agent's revocation ends it", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    await createAgent(fx.store, "default", "ci");
    await grantServices(fx.store, "default", "ci", ["stripe"], null, "test");
    await setAgentPolicy(fx.store, "default", "ci", { rules: [{ service: "stripe", methods: ["GET"] }] });
    const { token } = await createSession(fx.store, "default", { agent: "ci" });
    expect((await request(fx, token, Date.now())).answer?.code).toBe("host_not_allowed");
    expect((await request(fx, token, Date.now(), { host: "api.stripe.com" })).answer).toBeUndefined();
    expect((await request(fx, token, Date.now(), { host: "api.stripe.com", method: "POST" })).answer?.code).toBe("policy_denied");
    await revokeAgent(fx.store, "default", "ci");
    expect((await request(fx, token, Date.now(), { host: "api.stripe.com" })).answer?.message).toBe('agent "ci" was revoked');
  });
});

describe("policies", () => {
  async function agentWith(policy: Policy): Promise<string> {
    fx = await stepFixture(CREDS, SERVICES);
    const { token } = await createAgent(fx.store, "default", "p");
    await grantServices(fx.store, "default", "p", ["github", "stripe"], null, "test");
    await setAgentPolicy(fx.store, "default", "p", parsePolicy(policy));
    return token;
  }

  test("methods: GitHub read-only allows GET and HEAD, refuses the rest naming the rule", async () => {
    const token = await agentWith({ rules: [{ service: "github", methods: ["GET", "HEAD"] }] });
    for (const method of ["GET", "HEAD"]) expect((await request(fx!, token, T0, { method })).answer).toBeUndefined();
    for (const method of ["POST", "DELETE", "PATCH"]) {
      const flow = await request(fx!, token, T0, { method });
      expect(flow.answer).toMatchObject({ status: 403, code: "policy_denied" });
      expect(flow.answer!.message).toBe(`the policy of agent "p" refuses this request: github allows only GET,HEAD (this was ${method})`);
    }
    // Other services are not narrowed by a github rule.
    expect((await request(fx!, token, T0, { host: "api.stripe.com", method: "POST" })).answer).toBeUndefined();
  });

  test("deny rules and path allow-lists", async () => {
    const token = await agentWith({ rules: [{ service: "github", paths: ["/repos/*", "/user"], deny: [{ methods: ["DELETE"], path: "/repos/*" }] }] });
    expect((await request(fx!, token, T0, { path: "/repos/o/r/issues?state=open" })).answer).toBeUndefined();
    expect((await request(fx!, token, T0, { path: "/user" })).answer).toBeUndefined();
    expect((await request(fx!, token, T0, { path: "/user/keys" })).answer?.extra).toEqual({ rule: "github allows only paths /repos/* /user" });
    expect((await request(fx!, token, T0, { method: "DELETE", path: "/repos/o/r" })).answer?.extra).toEqual({ rule: "github denies DELETE /repos/*" });
    expect((await request(fx!, token, T0, { method: "PUT", path: "/repos/o/r" })).answer).toBeUndefined();
  });

  test("time windows, on their own UTC offset, across midnight", async () => {
    const token = await agentWith({ time_windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "18:00", utc_offset: "+02:00" }] });
    // T0 is Monday 10:00 UTC = 12:00 at +02:00.
    expect((await request(fx!, token, T0)).answer).toBeUndefined();
    const late = await request(fx!, token, T0 + 7 * H); // 19:00 at +02:00
    expect(late.answer?.code).toBe("policy_denied");
    expect(late.answer?.message).toContain("outside the allowed times (mon-fri 09:00-18:00 UTC+02:00)");
    expect((await request(fx!, token, T0 + 5 * 24 * H)).answer?.code).toBe("policy_denied"); // Saturday
    const night = { start: "22:00", end: "06:00", days: ["fri" as const] };
    expect(inWindow(night, Date.parse("2026-11-27T23:00:00Z"))).toBe(true); // Friday night
    expect(inWindow(night, Date.parse("2026-11-28T05:59:00Z"))).toBe(true); // Saturday morning, Friday's window
    expect(inWindow(night, Date.parse("2026-11-28T06:00:00Z"))).toBe(false);
    expect(inWindow(night, Date.parse("2026-11-28T23:00:00Z"))).toBe(false); // Saturday night
  });

  test("rate limit: the bucket empties, 429 with Retry-After and RateLimit headers, and refills with time", async () => {
    const token = await agentWith({ rate_limit: { requests_per_minute: 3 } });
    const limits = new AccessLimits(fx!.store);
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const flow = await request(fx!, token, T0, {}, limits);
      expect(flow.answer).toBeUndefined();
      seen.push(flow.responseHeaders!["ratelimit-remaining"]);
    }
    expect(seen).toEqual(["2", "1", "0"]);
    const refused = await request(fx!, token, T0, {}, limits);
    expect(refused.answer).toMatchObject({ status: 429, code: "rate_limited" });
    expect(refused.answer!.headers).toMatchObject({ "retry-after": "20", "ratelimit-limit": "3", "ratelimit-remaining": "0" });
    expect((await request(fx!, token, T0 + 19_000, {}, limits)).answer?.code).toBe("rate_limited");
    expect((await request(fx!, token, T0 + 20_000, {}, limits)).answer).toBeUndefined();
  });

  test("usage cap: counted per request, persisted in batches, refused past the cap", async () => {
    const token = await agentWith({ usage_cap: 3 });
    const limits = new AccessLimits(fx!.store);
    for (let i = 0; i < 3; i++) expect((await request(fx!, token, T0, {}, limits)).answer).toBeUndefined();
    const over = await request(fx!, token, T0, {}, limits);
    expect(over.answer).toMatchObject({ status: 403, code: "policy_denied" });
    expect(over.answer!.message).toContain("usage cap of 3 requests reached");
    await limits.close();
    expect(findVault(fx!.store.read(), "default").agents[0]!.usage).toBe(3);
    // A fresh proxy process reads the count from the vault.
    expect((await request(fx!, token, T0, {}, new AccessLimits(fx!.store))).answer?.code).toBe("policy_denied");
  });

  test("a session's own policy (run --policy) applies beside the agent's", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const { token } = await createSession(fx.store, "default", { policy: { rules: [{ service: "github", methods: ["GET"] }] } });
    expect((await request(fx, token, Date.now())).answer).toBeUndefined();
    expect((await request(fx, token, Date.now(), { method: "POST" })).answer?.message).toContain("the policy of session s_");
  });

  test("bad policies are refused naming the field", () => {
    expect(() => parsePolicy({ rate_limit: { requests_per_minute: 0 } })).toThrow("policy: rate_limit.requests_per_minute");
    expect(() => parsePolicy({ rules: [{ service: "github", methods: ["get"] }] })).toThrow("policy: rules[0].methods[0]");
    expect(() => parsePolicy({ time_windows: [{ start: "9:00", end: "17:00" }] })).toThrow("policy: time_windows[0].start");
    expect(() => parsePolicy({ surprise: true })).toThrow('policy: unknown field "surprise"');
    expect(() => parsePolicy("not an object")).toThrow("policy: must be an object");
  });

  test("paths are normalized before rules: dot segments, doubled slashes and escaped letters do not slip past", () => {
    expect(normalizePath("/v1/chat/../admin")).toBe("/v1/admin");
    expect(normalizePath("//admin/./x?y=1")).toBe("/admin/x");
    expect(normalizePath("/%61dmin/%2F")).toBe("/admin/%2F");
    expect(normalizePath("/../../etc")).toBe("/etc");
    const policy = { rules: [{ service: "s", paths: ["/v1/chat/*"], deny: [{ path: "/admin*" }] }] };
    expect(refusalOf(policy, "s", "GET", "/v1/chat/../admin", T0)).toBe("s allows only paths /v1/chat/*");
    expect(refusalOf({ rules: [{ service: "s", deny: [{ path: "/admin*" }] }] }, "s", "GET", "//%61dmin", T0)).toBe("s denies /admin*");
  });

  test("every reading a server may take: ;params cut (..; is ..), %2F and %5C as /, deny and approve in any case, allow-lists in every reading", () => {
    expect(pathReadings("/x/..;/secret;a=b/y?q=1")).toEqual(["/x/..;/secret;a=b/y", "/secret/y"]);
    expect(pathReadings("/public/...;/admin")).toEqual(["/public/...;/admin", "/admin"]);
    expect(pathReadings("/x/..%2fsecret")).toEqual(["/x/..%2Fsecret", "/secret"]);
    expect(pathReadings("/repos/a")).toEqual(["/repos/a"]);
    const deny = { rules: [{ service: "s", deny: [{ methods: ["GET"], path: "/secret/*" }] }] };
    for (const path of ["/secret;/x", "/x/..;/secret/x", "/SECRET/x", "/secret%2fx", "/x/..%5csecret/x"]) {
      expect(refusalOf(deny, "s", "GET", path, T0), path).toBe("s denies GET /secret/*");
    }
    const allow = { rules: [{ service: "s", paths: ["/public/*"] }] };
    for (const path of ["/public/..;/admin", "/public/x/..;/..;/admin", "/public/...;/admin", "/PUBLIC/x", "/public/..%2fadmin"]) {
      expect(refusalOf(allow, "s", "GET", path, T0), path).toBe("s allows only paths /public/*");
    }
    expect(refusalOf(allow, "s", "GET", "/public/a;v=1", T0)).toBeNull();
    const held = { rules: [{ service: "s", approve: [{ methods: ["GET"], path: "/admin/*" }] }] };
    for (const path of ["/admin;/x", "/x/..;/admin/x", "/Admin/x", "/admin%2Fx"]) expect(approvalOf(held, "s", "GET", path)?.rule, path).toBe("GET /admin/*");
    expect(approvalOf(held, "s", "GET", "/administrator")).toBeNull();
  });

  test("path patterns: * spans segments, the query is ignored, the rest is literal", () => {
    expect(pathMatches("/repos/*", "/repos/a/b")).toBe(true);
    expect(pathMatches("/repos/*", "/repos")).toBe(false);
    expect(pathMatches("/a.b", "/aXb")).toBe(false);
    expect(pathMatches("/user", "/user?x=1")).toBe(true);
    expect(refusalOf({ rules: [{ service: "s", deny: [{ path: "*" }] }] }, "s", "GET", "/anything", T0)).toBe("s denies *");
  });
});
