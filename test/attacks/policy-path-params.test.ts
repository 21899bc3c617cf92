// Attack (found by red-teaming): path rules judged the path as written, with dot segments
// resolved, while servers read more into it. Tomcat, Spring and Jetty cut `;params` from each
// segment and take `..;` for `..`; ASP.NET routes `/SECRET/x` to `/secret/x`; servers that decode
// `%2F` or `%5C` before routing read `/secret%2fx` as `/secret/x` and `..%2f` as `../`. So an agent
// under `deny GET /secret/*`, `approve GET /admin/*` and an allow-list `paths ["/public/*"]` reached
// /secret/x, /admin/x (never held) and /admin with `/secret;/x`, `/x/..;/admin/x`,
// `/public/..;/admin`, `/public/...;/admin`. Now every reading a server may take is judged: allowed
// only if every reading is, held if any is, deny and approve entries in any case. A held request's
// path must be plain (no `;`). Broker and attacker: the unprivileged user; nothing of a refused or
// held request reaches the service.
import { beforeAll, describe, expect, test } from "bun:test";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, expectRefused, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-path-params-", (broker) => (B = broker));

beforeAll(async () => {
  agentAuth = await agentWithPolicy(
    B,
    scratch,
    [
      "rules:",
      "  - service: fake",
      "    deny:",
      '      - { methods: [GET], path: "/secret/*" }',
      "    approve:",
      '      - { methods: [GET], path: "/admin/*", timeout: 1s }',
      "  - service: other",
      '    paths: ["/public/*"]',
      "",
    ].join("\n"),
  );
  const granted = await B.cli(["agent", "grant", "bot", "--service", "other", "--ttl", "1h"]);
  expect(granted.code, granted.stderr).toBe(0);
}, 30_000);

async function inTunnel(host: string, target: string): Promise<RawResponse | null> {
  return requestInTunnel(B, "GET", target, { host, auth: agentAuth });
}

describe("a deny entry and the paths a server reads", () => {
  test("`;` parameters, ..;, another case, %2F and %5C as separators: refused like /secret/x, nothing reaches the service", async () => {
    for (const target of [
      "/secret;/x",
      "/secret;a=b/x",
      "/x/..;/secret/x",
      "/x;y/..;/secret;z/x",
      "/SECRET/x",
      "/Secret/x",
      "/secret%2fx",
      "/secret%2Fx",
      "/secret%5cx",
      "/x/..%2fsecret/x",
      "/x/..%5Csecret/x",
      "/x/%2e%2e;/secret/x",
    ]) {
      await expectRefused(B, target, () => inTunnel("api.fake.test", target), "policy_denied", 403);
    }
  });

  test("%3B as `;`, double encoding, trailing dots, spaces, tabs and NULs (a second round's spellings): refused, nothing reaches the service", async () => {
    for (const target of [
      "/secret%3B/x",
      "/x/..%3B/secret/x",
      "/%2573ecret/x",
      "/secret%252Fx",
      "/x/..%252Fsecret/x",
      "/x/..%255Csecret/x",
      "/secret./x",
      "/secret%2E/x",
      "/secret%20/x",
      "/secret%09/x",
      "/secret%00/x",
      // A third round's: a `..` hidden by escapes or trailing characters.
      "/x/..%20/secret/x",
      "/x/..%0d/secret/x",
      "/x/%2e%2e%2e/secret/x",
      "/x/.%2e./secret/x",
      "/x/%c0%ae%c0%ae/secret/x",
      "/x/..%2520/secret/x",
    ]) {
      await expectRefused(B, target, () => inTunnel("api.fake.test", target), "policy_denied", 403);
    }
  });
});

describe("an approve entry and the paths a server reads", () => {
  test("a `;` in a path that would be held, or ..%2F: 400 before anything is held or sent", async () => {
    for (const target of ["/admin;/x", "/admin;a=b/x", "/x/..;/admin/x", "/x/..%2fadmin/x"]) {
      await expectRefused(B, target, () => inTunnel("api.fake.test", target), "invalid_request", 400);
    }
  });

  test("/ADMIN/x and /admin%2Fx: held for a person like /admin/x (and time out here), nothing reaches the service", async () => {
    for (const target of ["/ADMIN/x", "/Admin/x", "/admin%2Fx"]) {
      await expectRefused(B, target, () => inTunnel("api.fake.test", target), "approval_timeout", 403);
    }
  }, 30_000);
});

describe("an allow-list and the paths a server reads", () => {
  test("/public/..;/admin, /public/x/..;/..;/admin, /public/...;/admin, ..%2F: refused, nothing reaches the service", async () => {
    for (const target of ["/public/..;/admin", "/public/x/..;/..;/admin", "/public/...;/admin", "/public/..%2fadmin", "/public%2f..%2f..%2fadmin", "/public/..%5cadmin"]) {
      await expectRefused(B, target, () => inTunnel("api.other.test", target), "policy_denied", 403);
    }
  });

  test("an allow-list keeps its exact case: /PUBLIC/x is refused (a case-sensitive server would serve another resource)", async () => {
    await expectRefused(B, "/PUBLIC/x", () => inTunnel("api.other.test", "/PUBLIC/x"), "policy_denied", 403);
  });
});

test("control: plain paths, a `;` the rules do not care about, and %2F inside an allowed prefix go", async () => {
  for (const [host, target] of [
    ["api.fake.test", "/repos/x"],
    ["api.fake.test", "/repos/x;v=1/y"],
    ["api.fake.test", "/secrets/x"],
    ["api.fake.test", "/repos/v1.2/x"],
    ["api.fake.test", "/repos/a%20b"],
    ["api.other.test", "/public/a"],
    ["api.other.test", "/public/a;v=1"],
    ["api.other.test", "/public/a%2Fb"],
  ] as const) {
    const received = B.upstream.received.length;
    const r = await inTunnel(host, target);
    expect(r?.status, `${target}: ${r?.text}`).toBe(200);
    expect(B.upstream.received.length, target).toBe(received + 1);
    expect(B.upstream.received.at(-1)?.url, target).toBe(target);
  }
});

test("nothing the agent got holds the credential", () => {
  for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
});
