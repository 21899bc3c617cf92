// End-to-end tests of the upstream warm-up (src/proxy/steps/route.ts, UpstreamPool.warm), through
// the compiled binary: a CONNECT the proxy intercepts for a host a service covers opens the
// upstream TLS connection while the agent's handshake with the proxy runs, and the first request
// takes it. The test upstream counts the connections it accepted per SNI (upstream.connections)
// and records every byte that reached it (upstream.wire). Each test uses a host of its own under
// the wildcard service, so the pool's idle connections from one test never serve another.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type tls from "node:tls";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { recordingCli, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { basicProxyAuth, type HttpConnection, openTunnel } from "../support/proxy-client.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";
import { type Server, startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-warm-e2e-", { absent: [SECRET] });
const { cleanups, outputs } = scene;
const HOSTS = { first: "first.warm.test", many: "many.warm.test", closed: "closed.warm.test", refused: "refused.warm.test" } as const;
/** How long to watch for a connection that must not come (a local warm-up takes a few ms). */
const QUIET_MS = 400;
/** How long to wait for a warm connection that must come. */
const WAIT_MS = 3_000;

let H: TempHome;
let U: Upstream;
let S: Server;
let trust: string[];
let auth: string;
/** A session whose policy refuses DELETE on the service. */
let refusingAuth: string;
let ENV: Record<string, string>;
const { ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

/** The upstream connections (TLS handshakes done) with this SNI. */
function connectionsTo(host: string): tls.TLSSocket[] {
  return (U.connections as tls.TLSSocket[]).filter((s) => s.servername === host);
}

function wireFor(host: string): Buffer {
  return Buffer.concat(U.wire.filter((w) => w.sni === host).map((w) => w.data));
}

/** CONNECT and the agent's TLS handshake with the proxy; no request. */
async function tunnel(host: string, proxyAuthorization = auth): Promise<HttpConnection> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host, proxyAuthorization, ca: trust });
  expect(t.connect.status, t.connect.text).toBe(200);
  cleanups.push(() => t.conn!.close());
  return t.conn!;
}

beforeAll(async () => {
  U = await sceneUpstream(scene);
  H = await sceneHome(scene);
  ENV = {
    AGENT_VAULT_CONNECT_TO: Object.values(HOSTS)
      .map((h) => `${h}:443:127.0.0.1:${U.port}`)
      .join(","),
    AGENT_VAULT_UPSTREAM_CA: U.caFile,
  };
  await ok(["vault", "credential", "set", "SVC_KEY=-"], SECRET);
  await ok(["vault", "service", "add", "--name", "svc", "--host", "*.warm.test", "--auth-type", "bearer", "--token-key", "SVC_KEY"]);
  // Warm-ups for covered hosts happen under any policy for the rest; deny is the strictest.
  await ok(["vault", "settings", "--unmatched", "deny"]);
  S = await startServer(H, ENV, cleanups);
  trust = [readFileSync(join(H.dir, "ca.pem"), "utf8")];
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  auth = basicProxyAuth((await createSession(store, "default", {})).token);
  const refusing = await createSession(store, "default", { policy: { rules: [{ service: "svc", deny: [{ methods: ["DELETE"], path: "/*" }] }] } });
  refusingAuth = basicProxyAuth(refusing.token);
}, 60_000);

describe("warm-up of the upstream connection on CONNECT", () => {
  test("CONNECT and TLS to a covered host, no request yet: the upstream accepts one connection, and the first requests go on it", async () => {
    const conn = await tunnel(HOSTS.first);
    await waitUntil("the warm connection at the upstream", () => connectionsTo(HOSTS.first).length === 1, WAIT_MS);
    expect(wireFor(HOSTS.first).length).toBe(0);
    for (const path of ["/one", "/two"]) {
      const res = await conn.request("GET", path, [["Host", HOSTS.first]]);
      outputs.push(res.text);
      expect(res.status, res.text).toBe(200);
    }
    const got = U.received.filter((r) => r.sni === HOSTS.first);
    expect(got.map((r) => r.url)).toEqual(["/one", "/two"]);
    expect(got[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(connectionsTo(HOSTS.first).length).toBe(1);
  }, 15_000);

  test("many concurrent CONNECTs to one host warm at most one connection; their requests then dial as they need", async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => tunnel(HOSTS.many)));
    await waitUntil("the warm connection at the upstream", () => connectionsTo(HOSTS.many).length >= 1, WAIT_MS);
    await Bun.sleep(QUIET_MS);
    expect(connectionsTo(HOSTS.many).length).toBe(1);
    const results = await Promise.all(conns.map((c, i) => c.request("GET", `/many-${i}`, [["Host", HOSTS.many]])));
    outputs.push(...results.map((r) => r.text));
    expect(results.map((r) => r.status)).toEqual(conns.map(() => 200));
    expect(connectionsTo(HOSTS.many).length).toBeLessThanOrEqual(conns.length);
  }, 15_000);

  test("a warm connection the upstream closed before the request: the pool drops it, the request (a POST, never retried) dials anew", async () => {
    const conn = await tunnel(HOSTS.closed);
    const warm = await waitUntil("the warm connection at the upstream", () => connectionsTo(HOSTS.closed)[0], WAIT_MS);
    warm.destroy();
    await Bun.sleep(200);
    const res = await conn.request("POST", "/after-close", [["Host", HOSTS.closed]], "body");
    outputs.push(res.text);
    expect(res.status, res.text).toBe(200);
    expect(U.received.filter((r) => r.sni === HOSTS.closed).map((r) => `${r.method} ${r.url} ${r.body}`)).toEqual(["POST /after-close body"]);
    expect(connectionsTo(HOSTS.closed).length).toBe(2);
  }, 15_000);

  test("a request the policy refuses after a warm-up: 403 policy_denied, no byte on the upstream's wire; an allowed one then takes the warm connection", async () => {
    const conn = await tunnel(HOSTS.refused, refusingAuth);
    await waitUntil("the warm connection at the upstream", () => connectionsTo(HOSTS.refused).length === 1, WAIT_MS);
    const refused = await conn.request("DELETE", "/thing", [["Host", HOSTS.refused]]);
    outputs.push(refused.text);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.headers["x-agent-vault-error"]).toBe("policy_denied");
    await Bun.sleep(QUIET_MS);
    expect(wireFor(HOSTS.refused).length).toBe(0);
    expect(U.received.filter((r) => r.sni === HOSTS.refused)).toEqual([]);
    const allowed = await conn.request("GET", "/allowed", [["Host", HOSTS.refused]]);
    outputs.push(allowed.text);
    expect(allowed.status, allowed.text).toBe(200);
    expect(connectionsTo(HOSTS.refused).length).toBe(1);
  }, 15_000);
});
