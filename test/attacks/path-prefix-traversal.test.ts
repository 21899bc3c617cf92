// Attack (found by red-teaming): a service bound to a path prefix (`evil.test/api/*`, the form
// `slack.com/api/*` in DESIGN) gets its credential only for paths under that prefix. The agent asks
// for `/api/../admin` or `/api/%2e%2e/admin`: the prefix test read the raw path and injected the
// credential, while the server resolves dot segments (and decodes `%2e`) and serves `/admin`, which
// a front end may route to another backend (user content, another app). Service matching must read
// the path as a server does, as the policy already does. Broker and attacker: the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-path-prefix-", (broker) => (B = broker));

beforeAll(async () => {
  // OTHER_KEY also goes, in X-Pfx, to evil.test's /api/ (evil.test is otherwise unmatched and guarded).
  const added = await B.cli(["vault", "service", "add", "--name", "pfx", "--host", "evil.test/api/*", "--auth-type", "api-key", "--key", "OTHER_KEY", "--header", "X-Pfx"]);
  expect(added.code, added.stderr).toBe(0);
  // The server picks the change up from the vault file.
  await Bun.sleep(1_500);
}, 30_000);

/** GET `path` on `host` in a tunnel of its own: the answer, and what the upstream received meanwhile. */
async function getIn(host: string, path: string) {
  const mark = B.upstream.received.length;
  const conn = await B.tunnel(host);
  const r = await conn.request("GET", path, [
    ["Host", host],
    ["Connection", "close"],
  ]);
  conn.close();
  B.outputs.push(r.text, JSON.stringify(r.headers));
  return { r, received: B.upstream.received.slice(mark) };
}

/** What evil.test received for `path` in a tunnel: the X-Pfx header the proxy wrote, if any. */
async function injectedFor(path: string): Promise<string | undefined> {
  const { r, received } = await getIn("evil.test", path);
  expect(r.status, `${path}: ${r.text}`).toBe(200);
  const got = received.filter((q) => q.host === "evil.test");
  expect(got.length, path).toBe(1);
  const header = got[0]!.headers["x-pfx"];
  return Array.isArray(header) ? header.join(",") : header;
}

describe("a path-prefixed service's credential and dot segments", () => {
  test("paths that resolve outside the prefix get no credential", async () => {
    // `..;` is `..` to Tomcat and Spring (path parameters cut first), `%2F` a separator to some.
    for (const path of [
      "/api/../admin",
      "/api/%2e%2e/admin",
      "/api/%2E%2e/admin",
      "/api/x/../../admin",
      "/api/./../admin?x=1",
      "/api/..;/admin",
      "/api/x/..;/..;/admin",
      "/api/..%2Fadmin",
      "/api/..%20/admin",
      "/api/..%00/admin",
      "/api/%2e%2e%2e/admin",
      "/api/..%2e/admin",
      "/api/%c0%ae%c0%ae/admin",
    ]) {
      expect(await injectedFor(path), path).toBeUndefined();
    }
  }, 30_000);

  test("paths under the prefix, however written, get it (control)", async () => {
    for (const path of ["/api/x", "/api/x/../y", "/x/../api/y", "/api/x?y=1"]) {
      expect(await injectedFor(path), path).toBe(B.other);
    }
  }, 30_000);

  test("a carve-out: api.fake.test/admin/* with a key of its own under api.fake.test; /Admin/users and /admin;x/users are refused, not given the host-wide key (red team, session 7)", async () => {
    const added = await B.cli(["vault", "service", "add", "--name", "fake-admin", "--host", "api.fake.test/admin/*", "--auth-type", "bearer", "--token-key", "OTHER_KEY"]);
    expect(added.code, added.stderr).toBe(0);
    await Bun.sleep(1_500);
    for (const path of ["/Admin/users", "/ADMIN/users", "/admin;x/users", "/admin%3Bx/users"]) {
      const { r, received } = await getIn("api.fake.test", path);
      expect(r.status, `${path}: ${r.text}`).toBe(400);
      expect(r.text, path).toContain("may read as under api.fake.test/admin/* (service fake-admin)");
      expect(received.length, path).toBe(0);
    }
    // Controls: the carve-out's own path gets its key, and a path outside it the host-wide one.
    const own = await getIn("api.fake.test", "/admin/users");
    const other = await getIn("api.fake.test", "/administrator");
    expect([own.r.status, other.r.status]).toEqual([200, 200]);
    expect([...own.received, ...other.received].map((q) => [q.url, q.headers.authorization])).toEqual([
      ["/admin/users", `Bearer ${B.other}`],
      ["/administrator", `Bearer ${B.secret}`],
    ]);
  }, 30_000);

  test("beside a host:443 service, which outranks the port-less carve-out, /admin/users is refused naming that cause, not the spelling", async () => {
    const added = await B.cli(["vault", "service", "add", "--name", "fake-443", "--host", "api.fake.test:443", "--auth-type", "bearer", "--token-key", "OTHER_KEY"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toContain("warning: service fake-admin (api.fake.test/admin/*) has no port and service fake-443 (api.fake.test:443) has one");
    await Bun.sleep(1_500);
    const { r, received } = await getIn("api.fake.test", "/admin/users");
    expect(r.status, r.text).toBe(400);
    expect(r.text).toContain("this path is under api.fake.test/admin/* (service fake-admin), but service fake-443 (api.fake.test:443) takes this request first (a port outranks a path prefix)");
    expect(received.length).toBe(0);
    expect((await B.cli(["vault", "service", "remove", "fake-443"])).code).toBe(0);
  }, 30_000);

  test("nothing the agent got holds a credential", () => {
    for (const out of [...B.outputs, B.log()]) {
      expect(out).not.toContain(B.other);
      expect(out).not.toContain(B.secret);
    }
  });
});
