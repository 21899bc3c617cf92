// Attack (found by red-teaming): an agent whose policy refuses DELETE /admin* and holds POST
// /repos/* for a person writes the method in lower or mixed case (`delete`, `Delete`, `post`). The
// parser takes any token as a method, the rules name upper-case methods and compared them as
// written, so the request went to the service with the credential injected, neither refused nor
// held; a server that upper-cases the method (Django does) acts on it as DELETE or POST. A rule
// must apply to its method however it is spelled. The same agent sends PATCH /admin/x with
// X-HTTP-Method-Override: DELETE (or X-HTTP-Method, X-Method-Override), which Google's APIs and
// method-override middleware read as DELETE: under a policy with rules for the service, an override
// naming another method is refused. Broker and attacker: the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-method-case-", (broker) => (B = broker));

beforeAll(async () => {
  agentAuth = await agentWithPolicy(
    B,
    scratch,
    'rules:\n  - service: fake\n    deny:\n      - { methods: [DELETE], path: "/admin*" }\n    approve:\n      - { methods: [POST], path: "/repos/*", timeout: 2s }\n',
  );
}, 30_000);

async function inTunnel(method: string, path: string, extra: [string, string][] = [], body = ""): Promise<RawResponse | null> {
  return requestInTunnel(B, method, path, { auth: agentAuth, headers: extra, body });
}

describe("a policy's methods, however the agent spells them", () => {
  test("delete, Delete, dElEtE /admin/x: refused like DELETE, nothing reaches the service", async () => {
    for (const method of ["DELETE", "delete", "Delete", "dElEtE"]) {
      const mark = B.upstream.received.length;
      const wire = B.upstream.wire.length;
      const r = await inTunnel(method, "/admin/x");
      expect(r?.status, `${method}: ${r?.text}`).toBe(403);
      expect(r?.headers["x-agent-vault-error"], method).toBe("policy_denied");
      await Bun.sleep(50);
      expect(B.upstream.received.length, method).toBe(mark);
      expect(B.upstream.wire.length, method).toBe(wire);
    }
  });

  test("post, Post /repos/a: held for a person like POST (and time out here), nothing reaches the service", async () => {
    for (const method of ["post", "Post"]) {
      const wire = B.upstream.wire.length;
      const r = await inTunnel(method, "/repos/a");
      expect(r?.status, `${method}: ${r?.text}`).toBe(403);
      expect(r?.headers["x-agent-vault-error"], method).toBe("approval_timeout");
      expect(B.upstream.wire.length, method).toBe(wire);
    }
  }, 30_000);

  test("PATCH with a method-override header naming DELETE: refused, nothing reaches the service", async () => {
    for (const header of ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]) {
      const wire = B.upstream.wire.length;
      const r = await inTunnel("PATCH", "/admin/x", [[header, "delete"]]);
      expect(r?.status, `${header}: ${r?.text}`).toBe(403);
      expect(r?.headers["x-agent-vault-error"], header).toBe("policy_denied");
      expect(r?.text, header).not.toContain("delete");
      expect(B.upstream.wire.length, header).toBe(wire);
    }
    // An override naming the request's own method changes nothing: it goes (control).
    const r = await inTunnel("PATCH", "/other", [["X-HTTP-Method-Override", "PATCH"]]);
    expect(r?.status, r?.text).toBe(200);
  });

  test("POST /repos/a (held for a person) with _method=DELETE in its form body: refused at once, never held, nothing reaches the service", async () => {
    const wire = B.upstream.wire.length;
    const started = Date.now();
    const r = await inTunnel("POST", "/repos/a", [["Content-Type", "application/x-www-form-urlencoded"]], "_method=DELETE");
    expect(r?.status, r?.text).toBe(403);
    expect(r?.headers["x-agent-vault-error"]).toBe("policy_denied");
    expect(r?.text).toContain("_method");
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(B.upstream.wire.length).toBe(wire);
  });

  test("nothing the agent got holds the credential", () => {
    for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
  });
});
