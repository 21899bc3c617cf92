// Attack (found by red-teaming): inside a tunnel to a service's host, the agent writes its own
// `Host` (and X-Forwarded-Host, Forwarded and the other headers a front end may route by), or has a
// proposal's service template write them. A front end that routes by Host, such as a shared CDN
// or PaaS, would deliver the injected credential to the agent's own app there. The credential
// must go out only with the service's own host name. Broker and attacker: the unprivileged user.
import { describe, expect, test } from "bun:test";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-host-fronting-", (broker) => (B = broker));

describe("a Host of the agent's choosing", () => {
  test("in a tunnel, with curl: the upstream sees the service's host with the credential", async () => {
    const mark = B.upstream.received.length;
    const fronting = ["X-Forwarded-Host", "Forwarded", "X-Forwarded-Server", "X-Host", "X-Original-Host", "X-Original-URL", "X-Rewrite-URL"];
    const r = await B.curl([
      "-H",
      "Host: attacker-app.example",
      ...fronting.flatMap((name) => ["-H", `${name}: ${name === "Forwarded" ? "host=" : ""}attacker-app.example`]),
      "https://api.fake.test/fronted",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const got = B.upstream.received.slice(mark).find((q) => q.url === "/fronted")!;
    expect(got.headers.authorization).toBe(`Bearer ${B.secret}`);
    expect(got.host).toBe("api.fake.test");
    for (const name of fronting) expect(got.headers[name.toLowerCase()], name).toBeUndefined();
    expect(r.stdout).not.toContain(B.secret);
  });

  test("through a proposal: a service template that sets them is refused, naming the header (red team, session 7, HIGH)", async () => {
    // Approved, it would have sent `X-Forwarded-Host: agent-app.example, <key>` with every request.
    for (const header of ["X-Forwarded-Host", "Forwarded", "x-original-url"]) {
      const filed = await fetch(`http://127.0.0.1:${B.server.apiPort}/v1/proposals`, {
        method: "POST",
        headers: { authorization: `Bearer ${B.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          services: [
            { action: "set", name: "fake", host: "api.fake.test", auth: { type: "custom", headers: { Authorization: "Bearer {{ FAKE_KEY }}", [header]: "agent-app.example, {{ FAKE_KEY }}" } } },
          ],
          message: "a header the front end needs",
        }),
      });
      const body = (await filed.json()) as { error: string; message: string };
      B.outputs.push(JSON.stringify(body));
      expect(filed.status, header).toBe(400);
      expect(body.error).toBe("invalid_request");
      expect(body.message).toContain(`${header} routes a request at a front end; a service cannot set it`);
    }
    const listed = await B.cli(["vault", "proposal", "list", "--json"]);
    expect(listed.stdout).not.toContain("agent-app.example");
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
