// Held requests (issue 16 item 1), through the compiled binary: a session whose policy holds
// `POST /repos/*/merges` for a person. While a request is held, zero bytes reach the upstream's
// wire; `held allow` lets it go, `held deny --reason` answers 403 approval_denied with the reason,
// an unanswered one 403 approval_timeout; identical requests waiting together share one record and
// one answer, a different body is a record of its own; `--for-session` lets later ones through.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createSession } from "../../src/vault/sessions.ts";
import { homePaths } from "../../src/shared/paths.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { mkdtempSync, readFileSync } from "node:fs";
import { recordingCli, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { basicProxyAuth, openTunnel, type RawResponse } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";
import { fileScene } from "../support/scene.ts";
import { spawnLive, waitUntil } from "../support/process.ts";
import { writeFileSync } from "node:fs";
import { BINARY, cleanEnv } from "../support/binary.ts";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const SECRET = `ghp_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-held-e2e-", { absent: [SECRET] });
const { cleanups, outputs } = scene;
const HOST = "api.github.test";

let H: TempHome;
let U: Upstream;
let S: Server;
let avCa: string;
let token: string;
let ENV: Record<string, string>;
let store: VaultStore;
const POLICY = { rules: [{ service: "github", approve: [{ methods: ["POST"], path: "/repos/*/merges" }] }] };
const cli = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

interface HeldView {
  id: number;
  status: string;
  method: string;
  host: string;
  path: string;
  body_sha256: string;
  preview: string;
  reason: string | null;
}

function wire(since: number): Buffer {
  return Buffer.concat(
    U.wire
      .slice(since)
      .filter((w) => w.sni === HOST)
      .map((w) => w.data),
  );
}

async function send(method: string, path: string, body?: string, timeoutMs = 20_000): Promise<RawResponse> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host: HOST, proxyAuthorization: basicProxyAuth(token), ca: [avCa, readFileSync(U.caFile, "utf8")] });
  expect(t.connect.status, t.connect.text).toBe(200);
  cleanups.push(() => t.conn!.close());
  const headers: [string, string][] = [
    ["Host", HOST],
    ["Authorization", "Bearer placeholder"],
  ];
  if (body !== undefined) headers.push(["Content-Type", "application/json"]);
  const res = await t.conn!.request(method, path, headers, body, timeoutMs);
  outputs.push(res.text);
  t.conn!.close();
  return res;
}

async function heldList(): Promise<HeldView[]> {
  return JSON.parse((await cli.ok(["held", "list", "--json"])).stdout) as HeldView[];
}

/** The pending records for `path`, once there are `count` of them. */
async function waitHeld(path: string, count = 1): Promise<HeldView[]> {
  return waitUntil(
    `${count} held request(s) for ${path}`,
    async () => {
      const pending = (await heldList()).filter((h) => h.status === "pending" && h.path === path);
      return pending.length >= count ? pending : null;
    },
    15_000,
  );
}

beforeAll(async () => {
  U = await startUpstream(mkdtempSync(join(scene.scratch, "u-")));
  cleanups.push(() => U.close());
  H = await tempHome();
  cleanups.push(() => H.cleanup());
  ENV = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: U.caFile };
  await cli.ok(["vault", "credential", "set", "GITHUB_TOKEN=-"], SECRET);
  await cli.ok(["vault", "service", "add", "--name", "github", "--host", HOST, "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"]);
  S = await startServer(H, ENV, cleanups);
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  const policy = {
    rules: [
      {
        service: "github",
        approve: [
          { methods: ["POST"], path: "/repos/*/merges" },
          { path: "/slow/*", timeout: "2s" },
          { methods: ["POST"], path: "/mcp/*" },
        ],
      },
    ],
  };
  token = (await createSession(store, "default", { policy })).token;
}, 60_000);

describe("a held request waits for a person, and nothing reaches the upstream meanwhile", () => {
  test("held, then allowed with `held allow`: the upstream gets it once, with the credential", async () => {
    const mark = U.wire.length;
    const received = U.received.length;
    const pending = send("POST", "/repos/acme/merges", '{"base":"main","head":"feature"}');
    const [held] = await waitHeld("/repos/acme/merges");
    expect(held).toMatchObject({ method: "POST", host: HOST, preview: '{"base":"main","head":"feature"}' });
    await Bun.sleep(300);
    expect(wire(mark).length).toBe(0);
    expect(U.received.length).toBe(received);
    const allowed = await cli.ok(["held", "allow", String(held!.id)]);
    expect(allowed.stderr).toContain(`held request #${held!.id}`);
    const res = await pending;
    expect(res.status, res.text).toBe(200);
    const got = U.received.slice(received);
    expect(got.length).toBe(1);
    expect(got[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(got[0]!.body.toString()).toBe('{"base":"main","head":"feature"}');
    expect((await heldList()).find((h) => h.id === held!.id)?.status).toBe("allowed");
  });

  test("a request the rule does not name goes at once", async () => {
    const res = await send("GET", "/repos/acme/merges");
    expect(res.status).toBe(200);
  });

  test("denied with a reason: 403 approval_denied carrying the reason, zero bytes upstream", async () => {
    const mark = U.wire.length;
    const pending = send("POST", "/repos/deny/merges", '{"x":1}');
    const [held] = await waitHeld("/repos/deny/merges");
    await cli.ok(["held", "deny", String(held!.id), "--reason", "not on a Friday"]);
    const res = await pending;
    expect(res.status, res.text).toBe(403);
    expect(res.headers["x-agent-vault-error"]).toBe("approval_denied");
    expect(res.json()).toMatchObject({ error: "approval_denied", reason: "not on a Friday" });
    expect(wire(mark).length).toBe(0);
    // Answered once: a second answer is a conflict.
    const again = await cli.av(["held", "allow", String(held!.id)]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already denied");
  });

  test("unanswered: 403 approval_timeout after the rule's timeout, zero bytes upstream", async () => {
    const mark = U.wire.length;
    const started = Date.now();
    const res = await send("GET", "/slow/report");
    expect(res.status, res.text).toBe(403);
    expect(res.json()).toMatchObject({ error: "approval_timeout" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(wire(mark).length).toBe(0);
    const record = (await heldList()).find((h) => h.path === "/slow/report");
    expect(record?.status).toBe("timeout");
  });

  test("two identical requests waiting together: one record, and one approval sends one of them (the person saw one)", async () => {
    const received = U.received.length;
    const body = '{"same":true}';
    const a = send("POST", "/repos/twin/merges", body);
    const b = send("POST", "/repos/twin/merges", body);
    const [held] = await waitHeld("/repos/twin/merges");
    await Bun.sleep(500);
    expect((await heldList()).filter((h) => h.path === "/repos/twin/merges").length).toBe(1);
    await cli.ok(["held", "allow", String(held!.id)]);
    const statuses = (await Promise.all([a, b])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 403]);
    expect(U.received.slice(received).length).toBe(1);
  });

  test("a different body is a record of its own, answered on its own", async () => {
    const mark = U.wire.length;
    const a = send("POST", "/repos/two/merges", '{"n":1}');
    const b = send("POST", "/repos/two/merges", '{"n":2}');
    const records = await waitHeld("/repos/two/merges", 2);
    expect(records.length).toBe(2);
    expect(records[0]!.body_sha256).not.toBe(records[1]!.body_sha256);
    const one = records.find((r) => r.preview === '{"n":1}')!;
    const two = records.find((r) => r.preview === '{"n":2}')!;
    await cli.ok(["held", "allow", String(one.id)]);
    expect((await a).status).toBe(200);
    // The other is still held: nothing of it reached the upstream.
    expect(wire(mark).toString("latin1")).not.toContain('{"n":2}');
    await cli.ok(["held", "deny", String(two.id)]);
    expect((await b).status).toBe(403);
  });

  test("--for-session: later requests of the same method, host and rule go without asking", async () => {
    const first = send("POST", "/repos/s1/merges", "{}");
    const [held] = await waitHeld("/repos/s1/merges");
    const allowed = await cli.ok(["held", "allow", String(held!.id), "--for-session"]);
    expect(allowed.stderr).toContain("for the rest of session");
    expect((await first).status).toBe(200);
    const later = await send("POST", "/repos/other/merges", '{"later":1}', 5_000);
    expect(later.status).toBe(200);
    expect((await heldList()).some((h) => h.path === "/repos/other/merges")).toBe(false);
  });

  test("`status` lists a held request; `run`'s terminal gets one line naming how to allow it", async () => {
    const policyFile = join(scene.scratch, "policy.json");
    writeFileSync(policyFile, JSON.stringify({ rules: [{ service: "github", approve: [{ methods: ["POST"], path: "/repos/*/merges" }] }] }));
    const curl = 'curl -s -S --max-time 20 -X POST -H "content-type: application/json" -d "{\\"from\\":\\"run\\"}" https://api.github.test/repos/run/merges';
    const live = spawnLive(H.argv(["run", "--no-sandbox", "--policy", policyFile, "--", "sh", "-c", curl]), cleanEnv({ ...H.env, ...ENV }), "ignore");
    cleanups.push(() => {
      if (live.proc.exitCode === null) live.proc.kill("SIGKILL");
    });
    const id = await waitUntil("run's notice", () => /holding POST api\.github\.test\/repos\/run\/merges for approval \(agent-vault held allow (\d+)/.exec(live.stderr)?.[1], 15_000);
    const status = await cli.ok(["status"]);
    expect(status.stdout).toContain(`held #${id}  POST api.github.test/repos/run/merges`);
    expect(status.stderr).toContain("held for approval");
    const json = JSON.parse((await cli.ok(["status", "--json"])).stdout) as { vaults: { held: { id: number }[] }[] };
    expect(json.vaults[0]!.held.map((h) => h.id)).toContain(Number(id));
    await cli.ok(["held", "allow", id]);
    expect(await live.proc.exited).toBe(0);
    outputs.push(live.stdout, live.stderr);
    expect(live.stdout).toContain('"ok":true');
    // One line per held request, however long it waits.
    expect(live.stderr.split("holding POST").length).toBe(2);
  }, 30_000);

  test("MCP's http_request reports a held request as pending (not an error); the same call again gets the answer once a person allows it", async () => {
    const transport = new StdioClientTransport({
      command: BINARY,
      args: ["mcp"],
      env: cleanEnv({ AGENT_VAULT_HOME: join(scene.scratch, "mcp-none"), AGENT_VAULT_ADDR: `http://127.0.0.1:${S.apiPort}`, AGENT_VAULT_SESSION_TOKEN: token, AGENT_VAULT_MCP_PENDING_MS: "1000" }),
      stderr: "pipe",
    });
    const client = new Client({ name: "held-test", version: "1" });
    await client.connect(transport);
    cleanups.push(() => client.close());
    const received = U.received.length;
    const args = { method: "POST", url: `https://${HOST}/mcp/merge`, headers: { "content-type": "application/json" }, body: '{"via":"mcp"}' };
    const call = async () => {
      const result = await client.callTool({ name: "http_request", arguments: args });
      const text = (result.content as { text: string }[]).map((c) => c.text).join("");
      outputs.push(text);
      return { isError: result.isError === true, json: JSON.parse(text) as { status: number | string; message?: string; body?: string } };
    };
    const first = await call();
    expect(first.isError).toBe(false);
    expect(first.json.status).toBe("pending");
    expect(first.json.message).toContain("held list");
    // Asked again while it waits: the same held request, not a second one.
    expect((await call()).json.status).toBe("pending");
    const records = (await heldList()).filter((h) => h.path === "/mcp/merge");
    expect(records.length).toBe(1);
    expect(U.received.length).toBe(received);
    await cli.ok(["held", "allow", String(records[0]!.id)]);
    const answered = await waitUntil(
      "the answer",
      async () => {
        const r = await call();
        return r.json.status === "pending" ? null : r;
      },
      10_000,
    );
    expect(answered.isError).toBe(false);
    expect(answered.json.status).toBe(200);
    expect(U.received.length).toBe(received + 1);
  }, 30_000);

  test("a session that ends while its request is held sends nothing when the request is then allowed", async () => {
    const { token: other, session } = await createSession(store, "default", { policy: POLICY });
    const received = U.received.length;
    // The explicit route (/proxy/, as MCP uses it): the answer reaches the agent, no tunnel to close.
    const pending = fetch(`http://127.0.0.1:${S.apiPort}/proxy/${HOST}/repos/ended/merges`, {
      method: "POST",
      headers: { authorization: `Bearer ${other}`, "content-type": "application/json" },
      body: "{}",
    });
    const [held] = await waitHeld("/repos/ended/merges");
    await cli.ok(["vault", "session", "revoke", session.id]);
    // Answered as soon as the session ends (the sweep of open connections could also close the
    // socket first, within 500 ms: CI saw ECONNRESET once; nothing is sent either way).
    const res = await pending.catch((error: Error) => error);
    await cli.ok(["held", "allow", String(held!.id)]);
    await Bun.sleep(200);
    if (!(res instanceof Error)) {
      const text = await res.text();
      outputs.push(text);
      expect(res.status).toBe(401);
      expect(text).toContain("session ended while it waited");
    } else expect(res.message).toContain("ECONNRESET");
    expect(U.received.length).toBe(received);
  });

  test("bad input: an unknown or malformed number is a one-line error and changes nothing", async () => {
    const missing = await cli.av(["held", "allow", "9999"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no held request #9999");
    const bad = await cli.av(["held", "deny", "x1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("not a held request number");
  });
});
