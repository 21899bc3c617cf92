// Attack (found by red-teaming): inside a tunnel to a service's host, the agent writes its own
// `Host` (and X-Forwarded-Host, Forwarded). A front end that routes by Host, such as a shared CDN
// or PaaS, would deliver the injected credential to the agent's own app there. The credential
// must go out only with the service's own host name. Broker and attacker: the unprivileged user.
import { describe, expect, test } from "bun:test";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-host-fronting-", (broker) => (B = broker));

describe("a Host of the agent's choosing", () => {
  test("in a tunnel, with curl: the upstream sees the service's host with the credential", async () => {
    const mark = B.upstream.received.length;
    const r = await B.curl(["-H", "Host: attacker-app.example", "-H", "X-Forwarded-Host: attacker-app.example", "-H", "Forwarded: host=attacker-app.example", "https://api.fake.test/fronted"]);
    expect(r.code, r.stderr).toBe(0);
    const got = B.upstream.received.slice(mark).find((q) => q.url === "/fronted")!;
    expect(got.headers.authorization).toBe(`Bearer ${B.secret}`);
    expect(got.host).toBe("api.fake.test");
    expect(got.headers["x-forwarded-host"]).toBeUndefined();
    expect(got.headers.forwarded).toBeUndefined();
    expect(r.stdout).not.toContain(B.secret);
  });

  test("as a plain http:// request through HTTP_PROXY", async () => {
    const mark = B.upstream.received.length;
    const conn = await B.plain();
    const res = await conn.request("GET", "http://api.fake.test/fronted-plain", [
      ["Host", "attacker-app.example"],
      ["Proxy-Authorization", B.proxyAuth],
    ]);
    conn.close();
    expect(res.status).toBe(200);
    const got = B.upstream.received.slice(mark).find((q) => q.url === "/fronted-plain")!;
    expect(got.host).toBe("api.fake.test");
    expect(res.text).not.toContain(B.secret);
  });
});
