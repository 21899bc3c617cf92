// Attack: an agent whose policy allows only GET and POST on its service, and denies everything
// under /admin, sends the method it may not use as a `_method` parameter, which Rails (in a form
// body), Laravel and Symfony (query, form, Laravel JSON too) and express method-override read as
// the request's method on a POST: `POST /repos/x?_method=DELETE`, in any case, percent-encoded,
// repeated, spelt `.method` (PHP reads it as `_method`), or in the body. The rules judged POST, so
// the request went to the service with the credential injected and the server deleted. Now a
// request carrying a method other than its own is refused under rules that name methods. The same
// agent sends `//admin/x`, which a server resolving the target as a URL reads as host "admin",
// path /x, while the rules judged /admin/x: a target starting `//` or `/\` is refused. Broker and
// attacker: the unprivileged user; nothing of a refused request reaches the service.
import { beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, expectRefused, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-method-param-", (broker) => (B = broker));

beforeAll(async () => {
  agentAuth = await agentWithPolicy(B, scratch, 'rules:\n  - service: fake\n    methods: [GET, POST]\n    deny:\n      - { path: "/admin*" }\n');
}, 30_000);

async function inTunnel(method: string, target: string, extra: [string, string][] = [], body?: Buffer | string): Promise<RawResponse | null> {
  return requestInTunnel(B, method, target, { auth: agentAuth, headers: extra, body });
}

describe("a _method parameter under a policy that names methods", () => {
  test("POST with _method=DELETE in the query, however spelt: refused naming _method, nothing reaches the service", async () => {
    const queries = [
      "_method=DELETE",
      "_method=delete",
      "_METHOD=Delete",
      "%5Fmethod=DELETE",
      "_%6Dethod=%44ELETE",
      "_method=+DELETE+",
      ".method=DELETE",
      "+_method=DELETE",
      "_method[]=DELETE",
      "_method=POST&_method=DELETE",
      "a=1;_method=DELETE",
      "_method=",
      "X-HTTP-Method-Override=DELETE",
    ];
    for (const query of queries) {
      const r = await expectRefused(B, query, () => inTunnel("POST", `/repos/x?${query}`, [], ""), "policy_denied", 403);
      expect(r?.text, query).toContain("_method");
      expect(r?.text, query).not.toContain("DELETE");
    }
  });

  test("a _method field in the body (form, no Content-Type, multipart, JSON, gzip): refused, nothing reaches the service", async () => {
    const boundary = "b0undary";
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${boundary}--\r\n`;
    const cases: [string, [string, string][], Buffer | string][] = [
      ["form", [["Content-Type", "application/x-www-form-urlencoded"]], "title=x&_method=DELETE"],
      ["form, encoded name", [["Content-Type", "application/x-www-form-urlencoded; charset=utf-8"]], "title=x&%5FMETHOD=delete"],
      ["no content-type", [], "_method=DELETE"],
      ["multipart", [["Content-Type", `multipart/form-data; boundary=${boundary}`]], multipart],
      ["json", [["Content-Type", "application/json"]], '{"title":"x","_method":"DELETE"}'],
      ["a list of types", [["Content-Type", "text/plain, application/x-www-form-urlencoded"]], "_method=DELETE"],
      [
        "gzip form",
        [
          ["Content-Type", "application/x-www-form-urlencoded"],
          ["Content-Encoding", "gzip"],
        ],
        gzipSync("_method=DELETE"),
      ],
    ];
    for (const [label, headers, body] of cases) {
      const r = await expectRefused(B, label, () => inTunnel("POST", "/repos/x", headers, body), "policy_denied", 403);
      expect(r?.text, label).toContain("_method");
    }
  });

  test("a form body past the 8 MiB the exchange reads whole: refused before it is read, naming _method", async () => {
    const headers: [string, string][] = [
      ["Content-Type", "application/x-www-form-urlencoded"],
      ["Content-Length", String(9 * 1024 * 1024)],
    ];
    const r = await expectRefused(B, "9 MiB form", () => inTunnel("POST", "/repos/x", headers, ""), "policy_denied", 403);
    expect(r?.text).toContain("_method");
  });

  test("control: the request's own method as _method, a `method` parameter, and plain bodies go", async () => {
    const sent: [string, string, [string, string][], string][] = [
      ["POST", "/repos/x?_method=post", [], ""],
      ["GET", "/repos/x?method=DELETE&my_method=DELETE", [], ""],
      ["POST", "/repos/x", [["Content-Type", "application/x-www-form-urlencoded"]], "title=x&method=DELETE"],
      ["POST", "/repos/x", [["Content-Type", "application/json"]], '{"title":"_method"}'],
    ];
    for (const [method, target, headers, body] of sent) {
      const received = B.upstream.received.length;
      const r = await inTunnel(method, target, headers, body);
      expect(r?.status, `${target} ${body}: ${r?.text}`).toBe(200);
      expect(B.upstream.received.length, target).toBe(received + 1);
      expect(B.upstream.received.at(-1)?.body.toString(), target).toBe(body);
    }
  });
});

describe("a target starting // (a network-path reference to some servers)", () => {
  test("//admin/x, //evil.example/x, /\\admin/x, https://api.fake.test//admin/x, a backslash in the path (/repos/a\\..\\..\\admin), a # (/repos/a#/../../admin): 400, nothing reaches the service", async () => {
    for (const target of [
      "//admin/x",
      "//evil.example/x",
      "/\\admin/x",
      "///admin",
      "https://api.fake.test//admin/x",
      "/repos/a\\..\\..\\admin/x",
      "/repos/a\\x",
      "/repos/a#/../../admin/x",
      "/repos/a?x=1#y",
    ]) {
      await expectRefused(B, target, () => inTunnel("GET", target), "invalid_request", 400);
    }
  });

  test("control: a repeated slash later in the path is judged as the server reads it (/repos//x allowed, /repos/..//admin denied)", async () => {
    const r = await inTunnel("GET", "/repos//x");
    expect(r?.status, r?.text).toBe(200);
    await expectRefused(B, "/repos/..//admin", () => inTunnel("GET", "/repos/..//admin"), "policy_denied", 403);
  });
});

test("nothing the agent got holds the credential", () => {
  for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
});
