// End-to-end tests of proposals (issue 4; DESIGN "Proposals", "Agent API"): agents file through
// the real agent API of a foreground `agent-vault server`, humans decide with the compiled CLI,
// and what reached the local HTTPS upstream (test/support/upstream.ts, via AGENT_VAULT_CONNECT_TO)
// is the ground truth for injection. Sessions come from `agent-vault run` children that print
// their token and wait. The schema fuzz at the end posts a few thousand generated bodies to the
// same server and compares every answer with the in-process schema.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { passwdName } from "../support/os-user.ts";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { getCredentialValue } from "../../src/vault/credentials.ts";
import { parseProposalInput } from "../../src/vault/proposals.ts";
import { credentialKeysOf } from "../../src/vault/service.schema.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { findVault } from "../../src/vault/vaults.ts";
import { BINARY, cleanEnv, type RunResult, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { basicProxyAuth, openTunnel, type RawResponse } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { prng } from "../support/random.ts";
import { replyWithPath, type Upstream } from "../support/upstream.ts";
import { spawnLive, waitUntil } from "../support/process.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";
import { type HeldSession, holdSession } from "../support/session.ts";

// ---------------------------------------------------------------------------------------------
// Processes

const scene = fileScene("av-proposals-e2e-");
const { scratch, cleanups } = scene;
const TAG = randomBytes(8).toString("hex");
// Credential values get their own random part: the guard also looks for a value's part after a
// well-known prefix (`existing-` here), which a path built from TAG would otherwise contain.
const VTAG = randomBytes(8).toString("hex");
// The approver is the uid's name from /etc/passwd, not $USER (which the agent's shell could set).
const REVIEWER = `cli:${passwdName()}`;

function show(label: string, r: RunResult): string {
  return `${label}\n  exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 3000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 3000))}`;
}

let H: TempHome;

function av(args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  return H.run(args, opts);
}

async function ok(args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const r = await av(args, opts);
  if (r.code !== 0) throw new Error(`expected success:\n${show(args.join(" "), r)}`);
  return r;
}

type Holder = HeldSession;

/** A session held open by a `run` child that prints its token and waits for stdin to close. */
const hold = (vault: string) => holdSession(H, cleanups, { vault, withId: true, cli: (args) => ok(args) });

// ---------------------------------------------------------------------------------------------
// Fixture

let U: Upstream;
let S: Server;
let API: string;
let avCa: string;
let main: Holder; // vault "default" (passthrough)
let strict: Holder; // vault "strict" (--unmatched deny)
let limit: Holder; // vault "limit" (the 20-pending cap)
let fuzz: Holder; // vault "fuzz"
let store: VaultStore; // the same data directory, in-process (fuzz cleanup, inspecting stored proposals)

const UPSTREAM_HOSTS = ["newsvc.example.com", "agentval.example.com", "oauthsvc.example.com", "race.example.com", "api.stripe.com", "unknown.example.org"];
const EXISTING = `existing-${VTAG}`;

beforeAll(async () => {
  // A reply that never echoes what the upstream received: the agent must not learn secrets from it.
  U = await sceneUpstream(scene, replyWithPath);
  H = await sceneHome(scene);
  await ok(["vault", "credential", "set", "EXISTING_KEY=-"], { stdin: EXISTING });
  await ok(["vault", "credential", "set", "DOOMED_KEY=doomed"]);
  for (const v of ["strict", "limit", "fuzz", "notice"]) await ok(["vault", "create", v]);
  await ok(["vault", "settings", "--vault", "strict", "--unmatched", "deny"]);
  await ok(["vault", "credential", "set", "--vault", "fuzz", "FUZZ_HAVE=x"]);
  const connectTo = UPSTREAM_HOSTS.map((h) => `${h}:443:127.0.0.1:${U.port}`).join(",");
  S = await startServer(H, { AGENT_VAULT_CONNECT_TO: connectTo, AGENT_VAULT_UPSTREAM_CA: U.caFile }, cleanups);
  API = `http://127.0.0.1:${S.apiPort}`;
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
  // One after another: `run`s started at the same moment can lose each other's session (see the
  // concurrent-approval test for the underlying lost update).
  main = await hold("default");
  strict = await hold("strict");
  limit = await hold("limit");
  fuzz = await hold("fuzz");
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
}, 60_000);

// ---------------------------------------------------------------------------------------------
// Helpers

interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

async function agent(method: string, path: string, options: { token?: string | null; body?: unknown; raw?: string | Uint8Array } = {}): Promise<ApiAnswer> {
  const token = options.token === undefined ? main.token : options.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Uint8Array | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${API}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function file(body: unknown, token = main.token): Promise<number> {
  const r = await agent("POST", "/v1/proposals", { body, token });
  expect(r.status, r.text).toBe(201);
  return r.json.id as number;
}

const stateBytes = () => readFileSync(join(H.dir, "vault.av"));

/** CONNECT + TLS (trusting only agent-vault's CA, so success proves interception) + one request. */
async function viaTunnel(holder: Holder, host: string, path: string): Promise<RawResponse> {
  const tunnel = await openTunnel({ proxyPort: S.mitmPort, host, proxyAuthorization: basicProxyAuth(holder.token, holder.vault), ca: [avCa] });
  expect(tunnel.connect.status, tunnel.connect.text).toBe(200);
  try {
    return await tunnel.conn!.request("GET", path, [
      ["Host", host],
      ["Authorization", "Bearer placeholder-from-agent"],
    ]);
  } finally {
    tunnel.conn!.close();
  }
}

function receivedAt(path: string) {
  return U.received.filter((r) => r.url === path);
}

function authorizationAt(path: string): string | undefined {
  const hits = receivedAt(path);
  expect(hits.length, `requests to ${path}`).toBe(1);
  return hits[0]!.headers.authorization as string | undefined;
}

function expectInvalid(r: ApiAnswer, field: string | null): void {
  expect(r.status, r.text).toBe(400);
  expect(r.headers.get("x-agent-vault-error")).toBe("invalid_request");
  expect(r.headers.get("content-type")).toMatch(/application\/json/);
  expect(r.json.error).toBe("invalid_request");
  expect(typeof r.json.message).toBe("string");
  expect(typeof r.json.field).toBe("string");
  if (field !== null) {
    expect(r.json.field, r.text).toBe(field);
    if (field !== "(body)") expect(r.json.message, r.text).toContain(field);
  }
}

function newService(name: string, key: string) {
  return { action: "set", name, host: `${name}.example.com`, auth: { type: "bearer", token: key } };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

// ---------------------------------------------------------------------------------------------

describe("the happy paths", () => {
  test("file → list → approve (KEY=- on stdin) → the next proxied request is injected; the agent polls and sees applied", async () => {
    const started = Date.now();
    const value = `sk_new_${TAG}_${randomBytes(6).toString("hex")}`;
    const posted = await agent("POST", "/v1/proposals", {
      body: {
        services: [newService("newsvc", "NEWSVC_TOKEN")],
        credentials: [{ action: "set", key: "NEWSVC_TOKEN", description: "NewSvc API key", obtain: "https://newsvc.example.com/settings/keys", obtain_instructions: "Settings > API > Create key" }],
        message: "Need NewSvc to list widgets",
        user_message: "Create a read-only key please",
      },
    });
    expect(posted.status, posted.text).toBe(201);
    expect(posted.headers.get("content-type")).toMatch(/application\/json/);
    expect(Object.keys(posted.json).sort()).toEqual(["id", "message", "status"]);
    const id = posted.json.id as number;
    expect(Number.isInteger(id) && id > 0).toBe(true);
    expect(posted.json.status).toBe("pending");
    expect(posted.json.message).toContain(`agent-vault vault proposal approve ${id}`);
    expect(posted.json.message).toContain(`/v1/proposals/${id}`);

    // The agent sees it pending, in the list and alone.
    const listed = await agent("GET", "/v1/proposals");
    expect(listed.status).toBe(200);
    const mine = (listed.json.proposals as { id: number; status: string }[]).find((p) => p.id === id);
    expect(mine?.status).toBe("pending");
    const one = await agent("GET", `/v1/proposals/${id}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id, status: "pending", message: "Need NewSvc to list widgets", user_message: "Create a read-only key please" });
    expect(one.json.services[0]).toMatchObject({ action: "set", name: "newsvc", host: "newsvc.example.com", auth: { type: "bearer", token: "NEWSVC_TOKEN" } });
    expect(one.json.credentials[0]).toMatchObject({ key: "NEWSVC_TOKEN", type: "static", has_value: false });

    // The human lists and reviews it.
    const table = await ok(["vault", "proposal", "list"]);
    expect(table.stdout).toMatch(new RegExp(`^\\s*${id}\\s+pending\\s+.*newsvc \\(newsvc\\.example\\.com\\)`, "m"));
    const pendingJson = JSON.parse((await ok(["vault", "proposal", "list", "--status", "pending", "--json"])).stdout) as { id: number }[];
    expect(pendingJson.map((p) => p.id)).toContain(id);
    const appliedBefore = JSON.parse((await ok(["vault", "proposal", "list", "--status", "applied", "--json"])).stdout) as { id: number }[];
    expect(appliedBefore.map((p) => p.id)).not.toContain(id);
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    for (const text of [
      "newsvc",
      "newsvc.example.com",
      "bearer",
      "NEWSVC_TOKEN",
      "NewSvc API key",
      "https://newsvc.example.com/settings/keys",
      "Settings > API > Create key",
      "Need NewSvc to list widgets",
      "Create a read-only key please",
    ]) {
      expect(shown.stdout, `show should mention ${text}`).toContain(text);
    }

    // Approve, the value on stdin.
    const approved = await ok(["vault", "proposal", "approve", String(id), "NEWSVC_TOKEN=-", "--yes"], { stdin: `${value}\n` });
    expect(approved.stdout + approved.stderr).not.toContain(value);
    expect(approved.stdout + approved.stderr).toContain(`#${id}`);

    // The running proxy uses it on the very next request: no restart, no new session.
    const res = await viaTunnel(main, "newsvc.example.com", `/widgets-${TAG}`);
    expect(res.status, res.text).toBe(200);
    expect(authorizationAt(`/widgets-${TAG}`)).toBe(`Bearer ${value}`);
    expect(res.text).not.toContain(value);
    // And through the explicit proxy of the agent API.
    const explicit = await fetch(`${API}/proxy/newsvc.example.com/explicit-${TAG}`, { headers: { authorization: `Bearer ${main.token}` } });
    expect(explicit.status, await explicit.clone().text()).toBe(200);
    expect(authorizationAt(`/explicit-${TAG}`)).toBe(`Bearer ${value}`);

    // The agent polls and sees it applied, audited, with no value anywhere.
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.json.status).toBe("applied");
    expect(polled.text).not.toContain(value);
    const audit = polled.json.audit as { at: string; action: string; by: string }[];
    expect(audit.map((a) => [a.action, a.by])).toEqual([
      ["filed", `session ${main.id}`],
      ["approved", REVIEWER],
    ]);
    for (const a of audit) {
      expect(a.at).toMatch(ISO);
      expect(Date.parse(a.at)).toBeGreaterThanOrEqual(started - 1000);
      expect(Date.parse(a.at)).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const creds = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string; type: string }[];
    expect(creds.find((c) => c.key === "NEWSVC_TOKEN")?.type).toBe("static");
    expect((await ok(["vault", "credential", "get", "NEWSVC_TOKEN"])).stdout.trim()).toBe(value);
    const appliedJson = JSON.parse((await ok(["vault", "proposal", "list", "--status", "applied", "--json"])).stdout) as { id: number }[];
    expect(appliedJson.map((p) => p.id)).toContain(id);
    // Shown again, it says when and by whom it was decided, not when it would have expired.
    const header = (await ok(["vault", "proposal", "show", String(id)])).stdout.split("\n")[0]!;
    expect(header).toMatch(new RegExp(`^Proposal #${id} · applied · filed \\d+s ago · approved \\d+s ago by ${REVIEWER}$`));
    expect(stateBytes().includes(Buffer.from(value))).toBe(false);
  }, 30_000);

  test("reject with --reason → the agent sees rejected and the reason; nothing is applied; audited", async () => {
    const started = Date.now();
    const id = await file({ services: [newService("rejected-svc", "REJECTED_TOKEN")], credentials: [{ action: "set", key: "REJECTED_TOKEN" }], message: "please" });
    const r = await ok(["vault", "proposal", "reject", String(id), "--reason", "use the sandbox account instead"], { env: { USER: "mallory", LOGNAME: "mallory" } });
    expect(r.stdout + r.stderr).toContain(`#${id}`);
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.json).toMatchObject({ id, status: "rejected", reason: "use the sandbox account instead" });
    const audit = polled.json.audit as { at: string; action: string; by: string; note?: string }[];
    expect(audit.map((a) => [a.action, a.by])).toEqual([
      ["filed", `session ${main.id}`],
      ["rejected", REVIEWER],
    ]);
    expect(audit[1]!.note).toBe("use the sandbox account instead");
    expect(Date.parse(audit[1]!.at)).toBeGreaterThanOrEqual(started - 1000);
    const listed = (await agent("GET", "/v1/proposals")).json.proposals as { id: number; status: string; reason?: string }[];
    expect(listed.find((p) => p.id === id)).toMatchObject({ status: "rejected", reason: "use the sandbox account instead" });
    const creds = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string }[];
    expect(creds.map((c) => c.key)).not.toContain("REJECTED_TOKEN");
    const services = (await ok(["vault", "service", "list", "--json"])).stdout;
    expect(services).not.toContain("rejected-svc");
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    expect(shown.stdout).toContain("use the sandbox account instead");
    const rejectedJson = JSON.parse((await ok(["vault", "proposal", "list", "--status", "rejected", "--json"])).stdout) as { id: number }[];
    expect(rejectedJson.map((p) => p.id)).toContain(id);
  }, 20_000);

  test("a proposal may name a key already in the vault, and deletes: approved with nothing to supply", async () => {
    const id = await file({ services: [newService("reuse", "EXISTING_KEY")], credentials: [{ action: "delete", key: "DOOMED_KEY" }], message: "reuse" });
    await ok(["vault", "proposal", "approve", String(id), "--yes"]);
    const creds = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string }[];
    expect(creds.map((c) => c.key)).not.toContain("DOOMED_KEY");
    expect((await ok(["vault", "service", "list", "--json"])).stdout).toContain("reuse.example.com");
  }, 20_000);

  test("`show` tells the reviewer which existing credential a proposed service would send to its host", async () => {
    // An agent can propose a new host that uses a key already in the vault: approving it sends that
    // secret to the new host, so the review must name the key, not only the auth type.
    const id = await file({ services: [{ action: "set", name: "exfil", host: "collector.example.net", auth: { type: "bearer", token: "EXISTING_KEY" } }], message: "just a logging service" });
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    await ok(["vault", "proposal", "reject", String(id)]);
    expect(shown.stdout).toContain("collector.example.net");
    expect(shown.stdout).toContain("EXISTING_KEY");
  }, 20_000);

  test("`show` says where a sourced credential's value comes from, as its effect line does, not that you supply it", async () => {
    const id = await file({ credentials: [{ action: "set", key: "SOURCED_KEY", source: "op://Team/GitHub/token" }], message: "a sourced key" });
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    const listed = await ok(["vault", "proposal", "list", "--status", "pending"]);
    await ok(["vault", "proposal", "reject", String(id)]);
    expect(listed.stdout).toContain("SOURCED_KEY (from op://Team/GitHub/token)");
    expect(shown.stdout).toContain("  + SOURCED_KEY [fetched from op://Team/GitHub/token on use]");
    expect(shown.stdout).toContain("SOURCED_KEY: new (source; fetched from op://Team/GitHub/token on use)");
    expect(shown.stdout).not.toContain("you supply the value");
  }, 20_000);

  test("CLI usage errors: unknown --status, unknown proposal, bad number", async () => {
    const bogus = await av(["vault", "proposal", "list", "--status", "bogus"]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain("--status");
    for (const args of [
      ["vault", "proposal", "show", "999999"],
      ["vault", "proposal", "reject", "999999"],
      ["vault", "proposal", "approve", "999999", "--yes"],
    ]) {
      const r = await av(args);
      expect(r.code, show(args.join(" "), r)).toBe(1);
      expect(r.stderr).toContain("no proposal #999999");
    }
    for (const args of [
      ["vault", "proposal", "show", "0"],
      ["vault", "proposal", "show", "-3"],
      ["vault", "proposal", "reject", "1.5"],
    ]) {
      const r = await av(args);
      expect(r.code, show(args.join(" "), r)).not.toBe(0);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  }, 20_000);

  test("an agent-supplied value: sealed at once, never echoed, shown masked, applied on approval, no copy kept", async () => {
    const value = `agentgen_${TAG}_${randomBytes(8).toString("hex")}`;
    const before = stateBytes();
    const posted = await agent("POST", "/v1/proposals", {
      body: {
        services: [newService("agentval", "AGENT_GENERATED")],
        credentials: [{ action: "set", key: "AGENT_GENERATED", description: "Token generated during setup", value }],
        message: `I created a token (it starts ${value.slice(0, 4)})`,
      },
    });
    expect(posted.status, posted.text).toBe(201);
    const id = posted.json.id as number;
    expect(before.includes(Buffer.from(value))).toBe(false);
    // Sealed at once: the file never holds the value, in clear or in base64.
    expect(stateBytes().includes(Buffer.from(value))).toBe(false);
    expect(stateBytes().includes(Buffer.from(Buffer.from(value).toString("base64").slice(0, 20)))).toBe(false);
    // Never echoed back.
    expect(posted.text).not.toContain(value);
    const list = await agent("GET", "/v1/proposals");
    const one = await agent("GET", `/v1/proposals/${id}`);
    for (const r of [list, one]) {
      expect(r.text).not.toContain(value);
      expect(r.text).not.toContain("sealed_value");
    }
    expect(one.json.credentials[0]).toMatchObject({ key: "AGENT_GENERATED", has_value: true });
    const discovered = await agent("GET", "/discover");
    expect(discovered.text).not.toContain(value);
    // Shown masked to the reviewer: recognisable, not usable.
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    expect(shown.stdout).not.toContain(value);
    expect(shown.stdout).toContain(`${value.slice(0, 4)}…${value.slice(-2)} (${value.length} characters)`);
    const shownJson = await ok(["vault", "proposal", "show", String(id), "--json"]);
    expect(shownJson.stdout).not.toContain(value);
    const listJson = await ok(["vault", "proposal", "list", "--json"]);
    expect(listJson.stdout).not.toContain(value);
    // Approval needs no value from the human and applies the agent's.
    const approved = await ok(["vault", "proposal", "approve", String(id), "--yes"]);
    expect(approved.stdout + approved.stderr).not.toContain(value);
    const res = await viaTunnel(main, "agentval.example.com", `/agentval-${TAG}`);
    expect(res.status, res.text).toBe(200);
    expect(authorizationAt(`/agentval-${TAG}`)).toBe(`Bearer ${value}`);
    // The proposal keeps no copy.
    const stored = findVault(store.read(), "default").proposals.find((p) => p.id === id)!;
    expect(stored.status).toBe("applied");
    expect(JSON.stringify(stored)).not.toContain("sealed_value");
    expect((await agent("GET", `/v1/proposals/${id}`)).json.credentials[0].has_value).toBe(false);
    expect(stateBytes().includes(Buffer.from(value))).toBe(false);

    // Rejected: the copy is dropped too.
    const other = `agentgen2_${TAG}`;
    const id2 = await file({ credentials: [{ action: "set", key: "AGENT_GENERATED_TWO", value: other }] });
    expect(JSON.stringify(findVault(store.read(), "default").proposals.find((p) => p.id === id2))).toContain("sealed_value");
    await ok(["vault", "proposal", "reject", String(id2), "--reason", "no"]);
    expect(JSON.stringify(findVault(store.read(), "default").proposals.find((p) => p.id === id2))).not.toContain("sealed_value");
    const shownRejected = await ok(["vault", "proposal", "show", String(id2)]);
    expect(shownRejected.stdout).not.toContain(other);
  }, 30_000);

  test("an oauth slot is approved without a value; the credential is oauth and the proxy answers 502 oauth_not_connected", async () => {
    const id = await file({
      services: [newService("oauthsvc", "OAUTH_SVC")],
      credentials: [{ action: "set", key: "OAUTH_SVC", type: "oauth", description: "OAuth thing", oauth: { token_url: "https://oauthsvc.example.com/token", scopes: "read" } }],
      message: "oauth please",
    });
    const shown = await ok(["vault", "proposal", "show", String(id)]);
    expect(shown.stdout).toMatch(/OAuth/);
    await ok(["vault", "proposal", "approve", String(id), "--yes"]);
    const creds = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string; type: string; metadata: Record<string, string> }[];
    const cred = creds.find((c) => c.key === "OAUTH_SVC");
    expect(cred?.type).toBe("oauth");
    expect(cred?.metadata.oauth_status).toBe("not_connected");
    const res = await viaTunnel(main, "oauthsvc.example.com", `/oauth-${TAG}`);
    expect(res.status, res.text).toBe(502);
    expect(res.headers["x-agent-vault-error"]).toBe("oauth_not_connected");
    expect(res.json().error).toBe("oauth_not_connected");
    expect(receivedAt(`/oauth-${TAG}`)).toEqual([]);
  }, 20_000);

  test("the 403 proposal_hint (deny policy) posted back as-is, after filling in the message, is accepted", async () => {
    for (const host of ["api.stripe.com", "unknown.example.org"]) {
      const res = await viaTunnel(strict, host, `/hint-${TAG}`);
      expect(res.status, res.text).toBe(403);
      expect(res.headers["x-agent-vault-error"]).toBe("host_not_allowed");
      const hint = res.json().proposal_hint as Record<string, unknown>;
      expect(hint).toBeTruthy();
      const posted = await agent("POST", "/v1/proposals", { token: strict.token, body: { ...hint, message: `need ${host}` } });
      expect(posted.status, `${host}: ${posted.text}`).toBe(201);
      const got = await agent("GET", `/v1/proposals/${posted.json.id}`, { token: strict.token });
      expect(got.json.services[0].host).toBe(host);
    }
    expect(receivedAt(`/hint-${TAG}`)).toEqual([]);
  }, 20_000);

  // The hint is built from the catalog or a guessed name; for some hosts it is not a valid proposal.
  test.each([
    ["api.datadoghq.com", "a catalog entry with custom (header template) auth"],
    ["api.3scale.net", "a guessed name that starts with a digit"],
  ])(
    "the proposal_hint for %s (%s) is accepted as-is",
    async (host) => {
      const res = await viaTunnel(strict, host, `/hint-edge-${TAG}`);
      expect(res.status, res.text).toBe(403);
      const hint = res.json().proposal_hint as Record<string, unknown>;
      const posted = await agent("POST", "/v1/proposals", { token: strict.token, body: { ...hint, message: `need ${host}` } });
      expect(posted.status, `hint ${JSON.stringify(hint)} → ${posted.text}`).toBe(201);
    },
    20_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe("the agent API refuses bad proposals and stores nothing", () => {
  const CRED = { action: "set", key: "NEW_KEY", description: "d" };
  const SVC = newService("bad", "NEW_KEY");
  const RULES: [string, unknown, string][] = [
    ["empty proposal", {}, "services"],
    ["empty arrays", { services: [], credentials: [], message: "x" }, "services"],
    ["JSON null", null, "(root)"],
    ["JSON array", [{ credentials: [CRED] }], "(root)"],
    ["JSON number", 7, "(root)"],
    [">10 services", { services: Array.from({ length: 11 }, (_, i) => newService(`s${i}`, "NEW_KEY")), credentials: [CRED] }, "services"],
    [">10 credential slots", { credentials: Array.from({ length: 11 }, (_, i) => ({ action: "set", key: `K${i}` })) }, "credentials"],
    ["message too long", { credentials: [CRED], message: "m".repeat(2001) }, "message"],
    ["user_message too long", { credentials: [CRED], user_message: "m".repeat(2001) }, "user_message"],
    ["description too long", { credentials: [{ ...CRED, description: "d".repeat(501) }] }, "credentials[0].description"],
    ["obtain_instructions too long", { credentials: [{ ...CRED, obtain_instructions: "d".repeat(2001) }] }, "credentials[0].obtain_instructions"],
    ["value too long", { credentials: [{ ...CRED, value: "v".repeat(65_537) }] }, "credentials[0].value"],
    ["key too long", { credentials: [{ ...CRED, key: `K${"X".repeat(128)}` }] }, "credentials[0].key"],
    ["key lower case", { credentials: [{ ...CRED, key: "new_key" }] }, "credentials[0].key"],
    ["key with a space", { credentials: [{ ...CRED, key: "NEW KEY" }] }, "credentials[0].key"],
    ["auth names a bad key", { services: [{ ...SVC, auth: { type: "bearer", token: "new-key" } }], credentials: [CRED] }, "services[0].auth.token"],
    ["bad service name", { services: [{ ...SVC, name: "Bad Name" }], credentials: [CRED] }, "services[0].name"],
    ["host with scheme", { services: [{ ...SVC, host: "https://bad.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host *.*", { services: [{ ...SVC, host: "*.*.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host bad port", { services: [{ ...SVC, host: "bad.example.com:70000" }], credentials: [CRED] }, "services[0].host"],
    ["host trailing dot", { services: [{ ...SVC, host: "bad.example.com." }], credentials: [CRED] }, "services[0].host"],
    ["host with user info", { services: [{ ...SVC, host: "u@bad.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["obtain javascript:", { credentials: [{ ...CRED, obtain: "javascript:alert(1)" }] }, "credentials[0].obtain"],
    ["obtain file:", { credentials: [{ ...CRED, obtain: "file:///etc/passwd" }] }, "credentials[0].obtain"],
    ["obtain not a URL", { credentials: [{ ...CRED, obtain: "not a url" }] }, "credentials[0].obtain"],
    ["oauth token_url ftp:", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "ftp://x.example/t" } }] }, "credentials[0].oauth.token_url"],
    ["type oauth without oauth", { credentials: [{ ...CRED, type: "oauth" }] }, "credentials[0].oauth"],
    ["oauth on a static slot", { credentials: [{ ...CRED, oauth: { token_url: "https://x.example/t" } }] }, "credentials[0].oauth"],
    ["value with oauth", { credentials: [{ action: "set", key: "O", type: "oauth", value: "tok", oauth: { token_url: "https://x.example/t" } }] }, "credentials[0].value"],
    ["duplicate service names", { services: [SVC, { ...SVC, host: "other.example.com" }], credentials: [CRED] }, "services[1].name"],
    ["duplicate credential keys", { services: [SVC], credentials: [CRED, CRED] }, "credentials[1].key"],
    ["service names a key neither in the vault nor set", { services: [newService("dangling", "NOT_IN_VAULT")] }, "services[0].auth"],
    ["service names a key the proposal deletes", { services: [newService("dangling", "EXISTING_KEY")], credentials: [{ action: "delete", key: "EXISTING_KEY" }] }, "services[0].auth"],
    ["wrong type for services", { services: "stripe" }, "services"],
    ["unknown action", { credentials: [{ ...CRED, action: "upsert" }] }, "credentials[0].action"],
  ];
  const UNKNOWN: [string, unknown, string][] = [
    ["top level", { credentials: [CRED], priority: "high" }, "priority"],
    ["service", { services: [{ ...SVC, region: "eu" }], credentials: [CRED] }, "region"],
    ["credential", { credentials: [{ ...CRED, secret: "s" }] }, "secret"],
    ["delete slot (only key)", { credentials: [{ action: "delete", key: "X", description: "bye" }] }, "description"],
    ["oauth", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "https://x.example/t", client_secret: "s" } }] }, "client_secret"],
    ["auth", { services: [{ ...SVC, auth: { type: "bearer", token: "NEW_KEY", extra: 1 } }], credentials: [CRED] }, "extra"],
  ];
  const MALFORMED = ["", "{", '{"credentials": [', "{'credentials': []}", '{"credentials":[]} trailing', "nul", "\u00ff\u00fe", '{"a":1,}', "[".repeat(100_000)];

  test("every schema rule: 400 invalid_request naming the field; nothing stored (vault file bytes unchanged)", async () => {
    const before = stateBytes();
    const countBefore = (await agent("GET", "/v1/proposals")).json.proposals.length;
    const failures: string[] = [];
    for (const [what, body, field] of RULES) {
      const r = await agent("POST", "/v1/proposals", { body });
      try {
        expectInvalid(r, field);
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message.split("\n")[0]} — ${r.status} ${r.text.slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(stateBytes().equals(before)).toBe(true);
    expect((await agent("GET", "/v1/proposals")).json.proposals.length).toBe(countBefore);
  }, 30_000);

  test("unknown fields (strict): 400 whose message names the unknown field; nothing stored", async () => {
    const before = stateBytes();
    for (const [what, body, key] of UNKNOWN) {
      const r = await agent("POST", "/v1/proposals", { body });
      expectInvalid(r, null);
      expect(r.json.message, what).toContain(key);
    }
    expect(stateBytes().equals(before)).toBe(true);
  }, 20_000);

  test("malformed JSON: 400 invalid_request naming the body; nothing stored", async () => {
    const before = stateBytes();
    for (const raw of MALFORMED) {
      const r = await agent("POST", "/v1/proposals", { raw });
      expectInvalid(r, "(body)");
    }
    // Invalid UTF-8 bytes.
    expectInvalid(await agent("POST", "/v1/proposals", { raw: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), "(body)");
    expect(stateBytes().equals(before)).toBe(true);
  }, 20_000);

  test("a body over 256 KiB → 413 request_too_large; exactly 256 KiB is still read", async () => {
    const before = stateBytes();
    const base = JSON.stringify({ credentials: [{ action: "set", key: "BIG_BODY" }], message: "padded" });
    const cap = 256 * 1024;
    const over = await agent("POST", "/v1/proposals", { raw: base + " ".repeat(cap + 1 - base.length) });
    expect(over.status, over.text).toBe(413);
    expect(over.headers.get("x-agent-vault-error")).toBe("request_too_large");
    expect(over.json.error).toBe("request_too_large");
    const huge = await agent("POST", "/v1/proposals", { raw: JSON.stringify({ credentials: [{ action: "set", key: "BIG_BODY", value: "v".repeat(2 * 1024 * 1024) }] }) });
    expect(huge.status).toBe(413);
    expect(stateBytes().equals(before)).toBe(true);
    // At the cap: parsed (and here accepted).
    const at = await agent("POST", "/v1/proposals", { raw: base + " ".repeat(cap - base.length) });
    expect(at.status, at.text).toBe(201);
    await ok(["vault", "proposal", "reject", String(at.json.id)]);
    expect((await fetch(`${API}/health`)).status).toBe(200);
  }, 20_000);

  test("no session, a wrong token, or a revoked session: 401 and nothing stored", async () => {
    const before = stateBytes();
    const body = { credentials: [{ action: "set", key: "NO_AUTH" }] };
    for (const token of [null, "avs_not-a-real-token", "garbage"]) {
      const r = await agent("POST", "/v1/proposals", { token, body });
      expect(r.status).toBe(401);
      expect(r.headers.get("x-agent-vault-error")).toBe("unauthorized");
      expect((await agent("GET", "/v1/proposals", { token })).status).toBe(401);
    }
    expect(stateBytes().equals(before)).toBe(true);
    const gone = await hold("default");
    await file(body, gone.token).then((id) => ok(["vault", "proposal", "reject", String(id)]));
    await gone.close();
    const r = await agent("POST", "/v1/proposals", { token: gone.token, body });
    expect(r.status).toBe(401);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------

describe("limits and isolation", () => {
  test("21st pending in a vault → 429 too_many_pending_proposals, nothing stored; a decision frees a slot", async () => {
    const body = (i: number) => ({ credentials: [{ action: "set", key: `LIMIT_${i}` }], message: `#${i}` });
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push(await file(body(i), limit.token));
    const before = stateBytes();
    const r = await agent("POST", "/v1/proposals", { token: limit.token, body: body(20) });
    expect(r.status, r.text).toBe(429);
    expect(r.headers.get("x-agent-vault-error")).toBe("too_many_pending_proposals");
    expect(r.json.error).toBe("too_many_pending_proposals");
    expect(stateBytes().equals(before)).toBe(true);
    // An invalid body is still a 400, not a 429.
    expectInvalid(await agent("POST", "/v1/proposals", { token: limit.token, body: {} }), "services");
    // Another vault is not affected.
    const elsewhere = await file({ credentials: [{ action: "set", key: "ELSEWHERE" }] });
    await ok(["vault", "proposal", "reject", String(elsewhere)]);
    await ok(["vault", "proposal", "reject", String(ids[0]), "--vault", "limit", "--reason", "make room"]);
    const again = await agent("POST", "/v1/proposals", { token: limit.token, body: body(21) });
    expect(again.status, again.text).toBe(201);
    expect((await agent("POST", "/v1/proposals", { token: limit.token, body: body(22) })).status).toBe(429);
  }, 30_000);

  test("a session sees only its own vault's proposals", async () => {
    const id = await file({ credentials: [{ action: "set", key: "ISOLATED" }], message: "default only" });
    const fromStrict = await agent("GET", "/v1/proposals", { token: strict.token });
    expect(fromStrict.text).not.toContain("ISOLATED");
    const strictIds = (fromStrict.json.proposals as { id: number }[]).map((p) => p.id);
    const one = await agent("GET", `/v1/proposals/${id}`, { token: strict.token });
    if (strictIds.includes(id)) expect(one.text).not.toContain("ISOLATED");
    else expect(one.status).toBe(404);
    expect((await agent("GET", "/v1/proposals/999999", { token: main.token })).status).toBe(404);
    await ok(["vault", "proposal", "reject", String(id)]);
  }, 20_000);
});

// ---------------------------------------------------------------------------------------------

describe("decided once", () => {
  test("approving twice: the second is a conflict (exit 1, already approved); reject after approve too; the value stays", async () => {
    const id = await file({ credentials: [{ action: "set", key: "TWICE" }] });
    await ok(["vault", "proposal", "approve", String(id), "TWICE=-", "--yes"], { stdin: "first-value" });
    const before = stateBytes();
    const second = await av(["vault", "proposal", "approve", String(id), "TWICE=-", "--yes"], { stdin: "second-value" });
    expect(second.code, show("second approve", second)).toBe(1);
    expect(second.stderr).toContain("already approved");
    expect(second.stderr.trim().split("\n")[0]).toMatch(/^agent-vault: /);
    const reject = await av(["vault", "proposal", "reject", String(id), "--reason", "late"]);
    expect(reject.code, show("reject after approve", reject)).toBe(1);
    expect(reject.stderr).toContain("already approved");
    expect(stateBytes().equals(before)).toBe(true);
    expect((await ok(["vault", "credential", "get", "TWICE"])).stdout.trim()).toBe("first-value");
    // Rejected, then approve: conflict as well.
    const id2 = await file({ credentials: [{ action: "set", key: "TWICE_REJECTED" }] });
    await ok(["vault", "proposal", "reject", String(id2)]);
    const late = await av(["vault", "proposal", "approve", String(id2), "TWICE_REJECTED=x", "--yes"]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain("rejected");
    const again = await av(["vault", "proposal", "reject", String(id2)]);
    expect(again.code).toBe(1);
  }, 30_000);

  test("two concurrent approvals (two processes): exactly one applies, and the stored and injected value is the winner's", async () => {
    // Each round races three proposals at once, two approver processes each; the second of a pair
    // starts 0-70 ms after the first, sweeping the window in which both have read it as pending.
    // Every pair must end with exactly one winner whose value is stored (and used by the proxy).
    const ROUNDS = 5;
    const PAIRS = 4;
    const problems: string[] = [];
    let last: { key: string; winner: string } | null = null;
    for (let round = 0; round < ROUNDS; round++) {
      const pairs = [];
      for (let pair = 0; pair < PAIRS; pair++) {
        const key = `RACE_TOKEN_${round}_${pair}`;
        const host = round === ROUNDS - 1 && pair === 0 ? "race.example.com" : `race${round}-${pair}.example.com`;
        const id = await file({ services: [{ ...newService(`race${round}-${pair}`, key), host }], credentials: [{ action: "set", key }] });
        pairs.push({ id, key, offset: ((round * PAIRS + pair) % 8) * 10, values: [`race-a-${round}-${pair}-${VTAG}`, `race-b-${round}-${pair}-${VTAG}`] });
      }
      const outcomes = await Promise.all(
        pairs.map(async ({ id, key, offset, values }) => {
          const results = await Promise.all(
            values.map(async (v, i) => {
              if (i === 1) await Bun.sleep(offset);
              return av(["vault", "proposal", "approve", String(id), `${key}=-`, "--yes"], { stdin: v });
            }),
          );
          return { id, key, offset, values, results };
        }),
      );
      // Read back in-process (the same data directory, its own unlock): faster than a CLI per key.
      const vault = findVault(store.read(), "default");
      for (const { id, key, offset, values, results } of outcomes) {
        const where = `round ${round}, proposal #${id} (offset ${offset} ms)`;
        const codes = results.map((r) => r.code).sort();
        if (codes.join() !== "0,1") {
          problems.push(`${where}: exit codes ${JSON.stringify(results.map((r) => r.code))}\n${results.map((r, i) => show(`approver ${i}`, r)).join("\n")}`);
          continue;
        }
        const loser = results.find((r) => r.code === 1)!;
        if (!/already approved|conflict/.test(loser.stderr)) problems.push(`${where}: loser says ${JSON.stringify(loser.stderr.slice(-300))}`);
        const winner = values[results.findIndex((r) => r.code === 0)]!;
        if (!vault.credentials[key]) {
          problems.push(`${where}: ${key} is missing from the vault after an approval that exited 0`);
          continue;
        }
        const stored = getCredentialValue(store, vault, key);
        if (stored !== winner) problems.push(`${where}: ${key} holds the loser's value`);
        const polled = await agent("GET", `/v1/proposals/${id}`);
        const approvals = (polled.json.audit as { action: string }[]).filter((a) => a.action === "approved").length;
        if (polled.json.status !== "applied" || approvals !== 1) problems.push(`${where}: status ${polled.json.status}, ${approvals} approvals in the audit`);
        if (round === ROUNDS - 1 && key.endsWith("_0")) last = { key, winner };
      }
    }
    expect(problems).toEqual([]);
    const res = await viaTunnel(main, "race.example.com", `/race-${TAG}`);
    expect(res.status, res.text).toBe(200);
    expect(authorizationAt(`/race-${TAG}`)).toBe(`Bearer ${last!.winner}`);
  }, 60_000);

  // A human typing the master password at the prompt holds the approval open for seconds: the
  // prompt comes after the vault file was read. `script` gives the command a terminal.
  test.skipIf(!Bun.which("script"))(
    "a reviewer still typing the master password while another approves: the late approval is a conflict, and nothing written meanwhile is lost",
    async () => {
      const id = await file({ credentials: [{ action: "set", key: "PROMPT_RACE" }], message: "race at the prompt" });
      const env = cleanEnv({ ...H.env, AGENT_VAULT_MASTER_PASSWORD: undefined });
      const late = spawnLive(["script", "-qfec", `${BINARY} vault proposal approve ${id} --yes`, "/dev/null"], env, "pipe");
      const stdin = late.proc.stdin as { write(s: string): unknown; flush(): unknown; end(): unknown };
      try {
        await waitUntil("the password prompt", () => late.stdout.includes("Master password"), 15_000);
        // Meanwhile: another reviewer approves, and an agent files a new proposal.
        await ok(["vault", "proposal", "approve", String(id), "PROMPT_RACE=-", "--yes"], { stdin: `first-${VTAG}` });
        const meanwhile = await file({ credentials: [{ action: "set", key: "FILED_MEANWHILE" }], message: "filed while the reviewer typed" });
        stdin.write(`${TEST_PASSWORD}\r`);
        stdin.flush();
        const next = await waitUntil("a value prompt or the end", () => (late.stdout.includes("Value for PROMPT_RACE") ? "prompt" : late.proc.exitCode !== null ? "exited" : null), 15_000);
        if (next === "prompt") {
          stdin.write(`second-${VTAG}\r`);
          stdin.flush();
        }
        const code = await late.proc.exited;
        const transcript = `late reviewer (exit ${code}): ${JSON.stringify(late.stdout.slice(-600))}`;
        expect((await ok(["vault", "credential", "get", "PROMPT_RACE"])).stdout.trim(), transcript).toBe(`first-${VTAG}`);
        const polled = await agent("GET", `/v1/proposals/${id}`);
        expect(
          (polled.json.audit as { action: string }[]).filter((a) => a.action === "approved"),
          transcript,
        ).toHaveLength(1);
        const kept = await agent("GET", `/v1/proposals/${meanwhile}`);
        expect(kept.status, `the proposal filed meanwhile: ${kept.text}\n${transcript}`).toBe(200);
        expect(code, transcript).toBe(1);
        expect(late.stdout).toContain("already approved");
        await ok(["vault", "proposal", "reject", String(meanwhile)]);
      } finally {
        stdin.end();
        if (late.proc.exitCode === null) late.proc.kill();
      }
    },
    40_000,
  );

  test("an approval that fails leaves the vault file exactly as before and the proposal pending", async () => {
    await ok(["vault", "credential", "set", "SOON_GONE=present"]);
    const id = await file({
      services: [newService("halfway", "HALFWAY_A"), newService("halfway-old", "SOON_GONE")],
      credentials: [
        { action: "set", key: "HALFWAY_A" },
        { action: "set", key: "HALFWAY_B" },
      ],
    });
    const attempts: [string, readonly string[], string | undefined][] = [
      ["no values, no terminal", ["vault", "proposal", "approve", String(id), "--yes"], undefined],
      ["one value missing", ["vault", "proposal", "approve", String(id), "HALFWAY_A=-", "--yes"], "a"],
      ["empty stdin", ["vault", "proposal", "approve", String(id), "HALFWAY_A=-", "HALFWAY_B=b", "--yes"], ""],
      ["a key the proposal does not have", ["vault", "proposal", "approve", String(id), "HALFWAY_A=a", "HALFWAY_B=b", "OTHER=c", "--yes"], undefined],
      ["no --yes without a terminal", ["vault", "proposal", "approve", String(id), "HALFWAY_A=a", "HALFWAY_B=b"], undefined],
      ["a bad assignment", ["vault", "proposal", "approve", String(id), "HALFWAY_A", "--yes"], undefined],
      ["not a proposal number", ["vault", "proposal", "approve", "abc", "--yes"], undefined],
    ];
    // Last: a reference broken after filing (the key the second service names was deleted).
    let before = stateBytes();
    for (const [what, args, stdin] of attempts) {
      const r = await av(args, { stdin });
      expect(r.code, show(what, r)).not.toBe(0);
      expect(r.stderr).toMatch(/^agent-vault: /m);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(stateBytes().equals(before), what).toBe(true);
    }
    await ok(["vault", "credential", "delete", "SOON_GONE"]);
    before = stateBytes();
    const broken = await av(["vault", "proposal", "approve", String(id), "HALFWAY_A=a", "HALFWAY_B=b", "--yes"]);
    expect(broken.code, show("broken reference", broken)).not.toBe(0);
    expect(broken.stderr).toContain("SOON_GONE");
    expect(stateBytes().equals(before)).toBe(true);
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.json.status).toBe("pending");
    const creds = (await ok(["vault", "credential", "list", "--json"])).stdout;
    expect(creds).not.toContain("HALFWAY_A");
    await ok(["vault", "proposal", "reject", String(id)]);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------

describe("a session cannot decide", () => {
  test("no route lets a session token approve, reject or change a proposal", async () => {
    const id = await file({ services: [newService("selfapprove", "SELF_TOKEN")], credentials: [{ action: "set", key: "SELF_TOKEN", value: "self-approved" }] });
    const before = stateBytes();
    const attempts: [string, string, unknown][] = [
      ["POST", `/v1/proposals/${id}/approve`, {}],
      ["POST", `/v1/proposals/${id}/approve`, { values: { SELF_TOKEN: "x" } }],
      ["POST", `/v1/proposals/${id}/reject`, { reason: "x" }],
      ["POST", `/v1/proposals/${id}/apply`, {}],
      ["POST", `/v1/proposals/${id}`, { status: "applied" }],
      ["PUT", `/v1/proposals/${id}`, { status: "applied" }],
      ["PATCH", `/v1/proposals/${id}`, { status: "applied" }],
      ["DELETE", `/v1/proposals/${id}`, undefined],
      ["PUT", "/v1/proposals", { id, status: "applied" }],
      ["PATCH", "/v1/proposals", { id, status: "applied" }],
      ["DELETE", "/v1/proposals", undefined],
      ["POST", "/v1/proposals", { id, status: "applied" }],
      ["POST", "/v1/proposals/approve", { id }],
      ["POST", `/v1/proposals?approve=${id}`, { id, action: "approve" }],
      ["GET", `/v1/proposals/${id}/approve`, undefined],
      ["GET", `/v1/proposals/${id}/values`, undefined],
      ["POST", `/v1/proposals/${id}/`, {}],
      ["POST", `/v1/proposals/${id}%2Fapprove`, {}],
      ["POST", `/v1/proposals/../proposals/${id}/approve`, {}],
      ["POST", `/proxy/127.0.0.1:${S.apiPort}/v1/proposals/${id}/approve`, {}],
      ["POST", `/v1/credentials`, { key: "SELF_TOKEN", value: "x" }],
      ["POST", `/v1/services`, newService("selfapprove", "SELF_TOKEN")],
    ];
    const bad: string[] = [];
    for (const [method, path, body] of attempts) {
      const r = await agent(method, path, { body });
      if (r.status >= 200 && r.status < 300) bad.push(`${method} ${path} → ${r.status} ${r.text.slice(0, 200)}`);
      expect(r.text).not.toContain("self-approved");
    }
    expect(bad).toEqual([]);
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.json.status).toBe("pending");
    expect(polled.json.audit).toHaveLength(1);
    // Nothing was written (a refused POST /v1/proposals files nothing either).
    expect(stateBytes().equals(before)).toBe(true);
    const creds = (await ok(["vault", "credential", "list", "--json"])).stdout;
    expect(creds).not.toContain("SELF_TOKEN");
    // The session cannot use the proxy to reach the API either (nothing 2xx above); clean up.
    await ok(["vault", "proposal", "reject", String(id)]);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------

describe("the foreground notice", () => {
  function fileScript(key: string): string {
    const path = join(scratch, `file-${key}.sh`);
    writeFileSync(
      path,
      [
        "#!/bin/sh",
        `curl -sS -X POST -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" -H "Content-Type: application/json" --data '{"credentials":[{"action":"set","key":"${key}"}],"message":"notice me"}' "$AGENT_VAULT_ADDR/v1/proposals"`,
        'echo ""',
        "echo child-done",
        "sleep 2",
        "",
      ].join("\n"),
    );
    return path;
  }

  test("`run` prints one line to its own stderr, not into the child's stdout, naming how to review", async () => {
    const r = await av(["run", "--", "sh", fileScript("NOTICE_KEY")]);
    expect(r.code, show("run", r)).toBe(0);
    const answer = JSON.parse(r.stdout.split("\n")[0]!) as { id: number; status: string };
    expect(answer.status).toBe("pending");
    const id = answer.id;
    const lines = r.stderr.split("\n").filter((l) => l.includes(`proposal #${id}`));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^agent-vault: proposal #${id} .*review it: agent-vault vault proposal show ${id}`));
    expect(lines[0]).toContain("NOTICE_KEY");
    expect(r.stdout).not.toContain("agent-vault: proposal");
    expect(r.stdout).toContain("child-done");
    // The foreground server saw it too.
    await waitUntil("the server's notice", () => S.live.stderr.includes(`proposal #${id} in vault "default"`), 5000);
    await ok(["vault", "proposal", "reject", String(id)]);
  }, 30_000);

  test("the command in the notice works as printed when the vault is not the current one (`run --vault notice`)", async () => {
    const r = await av(["run", "--vault", "notice", "--", "sh", fileScript("NOTICE_OTHER_VAULT")]);
    expect(r.code, show("run", r)).toBe(0);
    const id = (JSON.parse(r.stdout.split("\n")[0]!) as { id: number }).id;
    const line = r.stderr.split("\n").find((l) => l.includes(`proposal #${id}`));
    expect(line, r.stderr).toBeDefined();
    // The server (which watches every vault) names the vault.
    const serverLine = await waitUntil("the server's notice", () => S.live.stderr.split("\n").find((l) => l.includes(`in vault "notice"`)), 5000);
    expect(serverLine).toContain(`--vault notice`);
    // `run`'s line: the command, run as printed in the user's shell, must show this proposal.
    const command = /review it: agent-vault (.*)$/.exec(line!)![1]!.trim().split(/\s+/);
    const shown = await av(command);
    expect(shown.code, `${line}\n${show(command.join(" "), shown)}`).toBe(0);
    expect(shown.stdout, `${line}\n${show(command.join(" "), shown)}`).toContain("NOTICE_OTHER_VAULT");
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// Fuzz

/** mulberry32: a small seeded PRNG, so a failing body can be reproduced from the seed. */

class Gen {
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }

  readonly STRINGS = [
    "",
    " ",
    "set",
    "delete",
    "static",
    "oauth",
    "bearer",
    "basic",
    "api-key",
    "custom",
    "query",
    "passthrough",
    "FUZZ_HAVE",
    "FUZZ_KEY",
    "fuzz_key",
    "1KEY",
    "api.fuzz.example.com",
    "*.fuzz.example.com",
    "fuzz.example.com:8443",
    "slack.com/api/*",
    "https://fuzz.example.com/keys",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://[::1]:99999/",
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "\u0000",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "😀🔑",
    "\ud800",
    "\udfff\ud800",
    "e\u0301",
    "{{ FUZZ_HAVE }}",
    "{{FUZZ_KEY}}",
    "X-Api-Key",
    "Host",
    "line\r\nInjected: yes",
    "%00",
    "../../etc",
    "NaN",
    "null",
    "true",
  ];

  string(): string {
    switch (this.int(6)) {
      case 0:
        return this.pick(this.STRINGS);
      case 1: {
        const n = this.pick([1, 63, 64, 65, 127, 128, 129, 499, 500, 501, 999, 1000, 1001, 1999, 2000, 2001, 2048, 2049]);
        return this.pick(["a", "A", "é", "😀", "_", "x"]).repeat(n);
      }
      case 2:
        return Array.from({ length: this.int(20) }, () => String.fromCharCode(this.int(0x3000))).join("");
      case 3:
        return `${this.pick(["A", "B", "Z"])}${Array.from({ length: this.int(12) }, () => this.pick(["A", "1", "_", "Z"])).join("")}`;
      case 4:
        return randomBytes(this.int(16)).toString(this.pick(["hex", "base64", "latin1"]));
      default:
        return this.pick(this.STRINGS) + this.pick(this.STRINGS);
    }
  }

  number(): number {
    return this.pick([0, -0, 1, -1, 10, 11, 20, 21, 0.5, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 1e-308, 123456789012345, -(2 ** 31)]);
  }

  value(depth = 0): unknown {
    const leaf = depth > 4 || this.chance(0.55);
    if (leaf) {
      switch (this.int(5)) {
        case 0:
          return this.string();
        case 1:
          return this.number();
        case 2:
          return this.chance(0.5);
        case 3:
          return null;
        default:
          return this.pick(this.STRINGS);
      }
    }
    if (this.chance(0.5)) return Array.from({ length: this.int(this.chance(0.1) ? 15 : 4) }, () => this.value(depth + 1));
    const out: Record<string, unknown> = {};
    const keys = ["services", "credentials", "message", "user_message", "action", "key", "name", "host", "auth", "type", "value", "oauth", "token", "obtain", "description", "headers", "x"];
    for (let i = this.int(5); i > 0; i--) out[this.chance(0.8) ? this.pick(keys) : this.string()] = this.value(depth + 1);
    return out;
  }

  validService(): Record<string, unknown> {
    const name = `svc-${this.int(1000)}`;
    const key = this.pick(["FUZZ_HAVE", "FUZZ_KEY", "FUZZ_OTHER"]);
    const auth = this.pick<Record<string, unknown>>([
      { type: "bearer", token: key },
      { type: "basic", username: key, password: "FUZZ_HAVE" },
      { type: "api-key", key, header: "X-Api-Key", prefix: "Token " },
      { type: "custom", headers: { "X-One": `id {{ ${key} }}` } },
      { type: "query", param: "api_key", key },
      { type: "passthrough" },
    ]);
    return { action: "set", name, host: this.pick(["api.fuzz.example.com", "*.fuzz.example.com", "fuzz.example.com:8443", "fuzz.example.com/api/*"]), auth };
  }

  validSlot(): Record<string, unknown> {
    const key = this.pick(["FUZZ_KEY", "FUZZ_OTHER", "FUZZ_THIRD"]);
    switch (this.int(4)) {
      case 0:
        return { action: "set", key, description: "a key", obtain: "https://fuzz.example.com/keys", obtain_instructions: "click" };
      case 1:
        return { action: "set", key, value: `val-${this.int(1e6)}` };
      case 2:
        return { action: "set", key, type: "oauth", oauth: { token_url: "https://fuzz.example.com/token", authorization_url: "https://fuzz.example.com/auth", scopes: "a b" } };
      default:
        return { action: "delete", key };
    }
  }

  validProposal(): Record<string, unknown> {
    const p: Record<string, unknown> = {};
    const services = Array.from({ length: this.int(3) }, () => this.validService());
    const credentials = Array.from({ length: this.int(3) }, () => this.validSlot());
    if (services.length > 0 || this.chance(0.3)) p.services = services;
    if (credentials.length > 0 || this.chance(0.3)) p.credentials = credentials;
    if (this.chance(0.7)) p.message = this.chance(0.5) ? "need it" : this.string();
    if (this.chance(0.2)) p.user_message = this.string();
    return p;
  }

  /** Every container on a path into `root`, to mutate one of them. */
  private containers(root: unknown): { parent: Record<string, unknown> | unknown[]; key: string | number }[] {
    const out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach((child, i) => (out.push({ parent: node, key: i }), walk(child)));
      else if (node && typeof node === "object") for (const [k, child] of Object.entries(node)) out.push({ parent: node as Record<string, unknown>, key: k }), walk(child);
    };
    walk(root);
    return out;
  }

  mutate(root: Record<string, unknown>): unknown {
    for (let n = 1 + this.int(3); n > 0; n--) {
      const spots = this.containers(root);
      if (spots.length === 0) {
        root[this.string()] = this.value();
        continue;
      }
      const { parent, key } = this.pick(spots);
      const p = parent as Record<string | number, unknown>;
      switch (this.int(9)) {
        case 0:
          if (Array.isArray(parent)) parent.splice(key as number, 1);
          else delete p[key];
          break;
        case 1:
          p[key] = this.value();
          break;
        case 2:
          p[key] = this.number();
          break;
        case 3:
          p[key] = this.string();
          break;
        case 4:
          if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
          else p[this.string()] = this.value();
          break;
        case 5:
          p[key] = [p[key]];
          break;
        case 6:
          p[key] = { nested: p[key], garbage: this.value() };
          break;
        case 7:
          if (Array.isArray(parent)) for (let i = 0; i < 10; i++) parent.push(structuredClone(parent[key as number]));
          else p[key] = this.pick([null, true, 0, "", [], {}]);
          break;
        default:
          if (typeof p[key] === "string") p[key] = `${p[key] as string}${this.pick(this.STRINGS)}`;
          else p[key] = this.pick(this.STRINGS);
      }
    }
    return this.chance(0.05) ? [root] : root;
  }

  /** A body as sent: JSON text (mostly), sometimes broken text. */
  body(): string {
    const kind = this.int(20);
    if (kind < 9) return JSON.stringify(this.mutate(this.validProposal()));
    if (kind < 13) return JSON.stringify(this.validProposal());
    if (kind < 17) return JSON.stringify(this.value());
    const text = JSON.stringify(this.mutate(this.validProposal()));
    switch (this.int(6)) {
      case 0:
        return text.slice(0, this.int(text.length));
      case 1:
        return `${"[".repeat(1 + this.int(5000))}${"]".repeat(this.int(5000))}`;
      case 2:
        return `${'{"a":'.repeat(1 + this.int(3000))}1${"}".repeat(this.int(3000))}`;
      case 3:
        return text.replace(/"/g, this.pick(["'", "", '\\"']));
      case 4:
        return randomBytes(this.int(64)).toString("latin1");
      default:
        return `${text}${this.pick([",", "}", "]", " x", "\u0000"])}`;
    }
  }
}

describe("schema fuzz through the real API", () => {
  test("a few thousand generated bodies: always 201 or 400 as the schema says (429 only when 20 are pending), never 500; the server keeps answering", async () => {
    const seed = Number(process.env.PROPOSAL_FUZZ_SEED ?? Date.now() % 2 ** 31);
    const total = Number(process.env.PROPOSAL_FUZZ_COUNT ?? 2500);
    const gen = new Gen(prng(seed));
    const vaultKeys = new Set(["FUZZ_HAVE"]);
    const expected = (text: string): 201 | 400 => {
      let json: unknown;
      try {
        // What the server sees: the UTF-8 bytes fetch sends, decoded.
        json = JSON.parse(Buffer.from(new TextEncoder().encode(text)).toString("utf8"));
      } catch {
        return 400;
      }
      let input;
      try {
        input = parseProposalInput(json);
      } catch {
        return 400;
      }
      const setKeys = new Set(input.credentials.filter((c) => c.action === "set").map((c) => c.key));
      const deleted = new Set(input.credentials.filter((c) => c.action === "delete").map((c) => c.key));
      for (const s of input.services) {
        if (s.action !== "set") continue;
        for (const k of credentialKeysOf(s.auth)) if (!setKeys.has(k) && !(vaultKeys.has(k) && !deleted.has(k))) return 400;
      }
      return 201;
    };
    const clear = () =>
      store.update((body) => {
        findVault(body, "fuzz").proposals = [];
      });
    const counts: Record<string, number> = {};
    const problems: string[] = [];
    const started = Date.now();
    for (let i = 0; i < total && problems.length < 10; i++) {
      const text = gen.body();
      const size = Buffer.byteLength(text);
      let r = await agent("POST", "/v1/proposals", { token: fuzz.token, raw: text });
      if (r.status === 429) {
        counts["429"] = (counts["429"] ?? 0) + 1;
        await clear();
        r = await agent("POST", "/v1/proposals", { token: fuzz.token, raw: text });
      }
      counts[r.status] = (counts[r.status] ?? 0) + 1;
      const want = size > 256 * 1024 ? 413 : expected(text);
      const body = r.json as { error?: string; field?: unknown; id?: unknown; status?: unknown } | null;
      const shapeOk =
        r.status === 201
          ? typeof body?.id === "number" && body.status === "pending"
          : r.status === 400
            ? body?.error === "invalid_request" && typeof body.field === "string" && r.headers.get("x-agent-vault-error") === "invalid_request"
            : r.status === 413;
      if (r.status !== want || !shapeOk) problems.push(`#${i} seed=${seed}: got ${r.status} want ${want}: ${r.text.slice(0, 200)}\n  body: ${text.slice(0, 400)}`);
    }
    const elapsed = Date.now() - started;
    console.log(`proposal fuzz: seed=${seed} ${total} bodies in ${elapsed} ms, statuses ${JSON.stringify(counts)}`);
    expect(problems).toEqual([]);
    expect(counts["500"]).toBeUndefined();
    expect(counts["201"] ?? 0).toBeGreaterThan(total / 20);
    expect(counts["400"] ?? 0).toBeGreaterThan(total / 4);
    // Still alive and well.
    expect(S.live.proc.exitCode).toBeNull();
    const health = await fetch(`${API}/health`);
    expect(await health.json()).toEqual({ status: "ok" });
    expect(S.live.stderr).not.toContain("internal error");
    // The vault is intact and readable by a fresh process.
    await ok(["vault", "proposal", "list", "--vault", "fuzz", "--json"]);
    await clear();
  }, 90_000);
});
