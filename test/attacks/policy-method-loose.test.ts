// Attack (found by red-teaming): under `methods [GET, POST]`, the agent sends `POST /x` with a JSON
// body `{"_method":"DELETE"}` whose Content-Type only resembles JSON: `text/json`,
// `application/jsonfoo`, `text/plain; x=/json`. Laravel's isJson() asks only whether the header
// holds `/json` or `+json`, so it reads the body's `_method` and deletes; the policy looked for
// `_method` only under application/json and application/*+json. With `text/json` a POST held for
// a person went unheld too (`POST /admin/x` + `{"_method":"GET"}`). Frameworks differ on which
// types they parse, so now every body that fits the buffer is read as JSON and as a form, whatever
// its type. The same agent sends `X_HTTP_METHOD_OVERRIDE: DELETE`, which Rack and CGI servers that
// keep underscore headers read as X-HTTP-Method-Override; and `X_Forwarded_Host`, the twin of a
// header the proxy strips. Broker and attacker: the unprivileged user; nothing of a refused request
// reaches the service.
import { beforeAll, describe, expect, test } from "bun:test";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, expectRefused, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-method-loose-", (broker) => (B = broker));

beforeAll(async () => {
  agentAuth = await agentWithPolicy(B, scratch, 'rules:\n  - service: fake\n    methods: [GET, POST]\n    approve:\n      - { methods: [POST], path: "/admin/*", timeout: 2s }\n');
}, 30_000);

async function inTunnel(method: string, target: string, extra: [string, string][] = [], body = ""): Promise<RawResponse | null> {
  return requestInTunnel(B, method, target, { auth: agentAuth, headers: extra, body });
}

describe("a JSON _method under a type that is not quite application/json", () => {
  test("text/json, application/jsonfoo, text/plain; x=/json, charset=+json, TEXT/JSON, text/plain, octet-stream: refused, nothing reaches the service", async () => {
    for (const type of ["text/json", "application/jsonfoo", "text/plain; x=/json", "text/plain; charset=+json", "TEXT/JSON", "application/x-json-stream", "text/plain", "application/octet-stream"]) {
      const r = await expectRefused(B, type, () => inTunnel("POST", "/repos/x", [["Content-Type", type]], '{"title":"x","_method":"DELETE"}'));
      expect(r?.text, type).toContain("_method");
      expect(r?.text, type).not.toContain("DELETE");
    }
  });

  test("a form-looking body under another type (text/plain, octet-stream, application/json): refused", async () => {
    for (const [method, headers] of [
      ["POST", [["Content-Type", "text/plain"]]],
      ["POST", [["Content-Type", "application/octet-stream"]]],
      ["POST", [["Content-Type", "application/json"]]],
    ] as const) {
      await expectRefused(B, `${method} ${JSON.stringify(headers)}`, () => inTunnel(method, "/repos/x", [...headers] as [string, string][], "title=x&_method=DELETE"));
    }
  });

  test('POST /admin/x (held for a person) with text/json {"_method":"GET"}: refused at once, never held, nothing reaches the service', async () => {
    const started = Date.now();
    const r = await expectRefused(B, "held text/json", () => inTunnel("POST", "/admin/x", [["Content-Type", "text/json"]], '{"_method":"GET"}'));
    expect(r?.text).toContain("_method");
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

describe("override headers spelt with underscores", () => {
  test("X_HTTP_METHOD_OVERRIDE, X_HTTP_Method, x_method_override naming DELETE: refused, nothing reaches the service", async () => {
    for (const header of ["X_HTTP_METHOD_OVERRIDE", "X_HTTP_Method", "x_method_override", "X-HTTP_Method-Override"]) {
      const r = await expectRefused(B, header, () => inTunnel("POST", "/repos/x", [[header, "DELETE"]], ""));
      expect(r?.text, header).not.toContain("DELETE");
    }
  });

  test("X_Forwarded_Host and Proxy_Authorization (twins of headers the proxy strips) do not reach the service", async () => {
    const received = B.upstream.received.length;
    const r = await inTunnel("GET", "/repos/x", [
      ["X_Forwarded_Host", "evil.example"],
      ["Proxy_Authorization", "Basic eA=="],
      ["Transfer_Encoding", "chunked"],
    ]);
    expect(r?.status, r?.text).toBe(200);
    expect(B.upstream.received.length).toBe(received + 1);
    const headers = B.upstream.received.at(-1)!.headers;
    for (const name of ["x_forwarded_host", "proxy_authorization", "transfer_encoding"]) expect(headers[name], name).toBeUndefined();
  });
});

test("control: plain JSON and text bodies, a `method` field, and the request's own method go", async () => {
  for (const [type, body] of [
    ["text/json", '{"title":"x"}'],
    ["text/plain", "hello & goodbye = see you"],
    ["application/octet-stream", "\u0000\u0001binary"],
    ["application/json", '{"method":"DELETE"}'],
    ["text/json", '{"_method":"post"}'],
  ] as const) {
    const received = B.upstream.received.length;
    const r = await inTunnel("POST", "/repos/x", [["Content-Type", type]], body);
    expect(r?.status, `${type} ${body}: ${r?.text}`).toBe(200);
    expect(B.upstream.received.length, type).toBe(received + 1);
    expect(B.upstream.received.at(-1)?.body.toString(), type).toBe(body);
  }
  const r = await inTunnel("POST", "/repos/x", [["X_HTTP_METHOD_OVERRIDE", "POST"]], "");
  expect(r?.status, r?.text).toBe(200);
});

test("nothing the agent got holds the credential", () => {
  for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
});
