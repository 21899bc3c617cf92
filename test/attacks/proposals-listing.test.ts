// Attack: one agent reads another's proposals through the agent API. Session A files proposals
// (with a canary in the message); session B (another `run` in the same vault), an agent's own
// token and that agent's session list and fetch proposals with curl as the unprivileged user, and
// walk every id. Nobody but A may see A's proposals, their ids or their text: the list holds only
// the caller's own, and another caller's id answers 404 exactly like an id that does not exist.
// The human's CLI still lists them all.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { homePaths } from "../../src/shared/paths.ts";
import { createAgent } from "../../src/vault/agents.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";

const cleanups: (() => Promise<void> | void)[] = [];
const outputs: string[] = [];
const CANARY_A = `canary-a-${randomBytes(12).toString("hex")}`;

let H: TempHome;
let S: Server;
let sessionA = "";
const tokens: Record<"a" | "b" | "agent" | "agentSession", string> = { a: "", b: "", agent: "", agentSession: "" };
const ids: Record<"a" | "b" | "agent" | "agentSession", number[]> = { a: [], b: [], agent: [], agentSession: [] };

/** curl as the unprivileged user: status and body. */
async function api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: any }> {
  const argv = ["curl", "-s", "-m", "10", "-X", method, "-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_code}"];
  if (body !== undefined) argv.push("-H", "content-type: application/json", "--data-binary", JSON.stringify(body));
  argv.push(`http://127.0.0.1:${S.apiPort}${path}`);
  const proc = Bun.spawn(asAgent(argv), { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(stdout, stderr);
  const cut = stdout.lastIndexOf("\n");
  const text = stdout.slice(0, cut);
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: Number(stdout.slice(cut + 1)), text, json };
}

async function file(who: keyof typeof tokens, message: string): Promise<number> {
  const r = await api(tokens[who], "POST", "/v1/proposals", { credentials: [{ action: "set", key: `KEY_${who.toUpperCase()}_${ids[who].length}` }], message });
  expect(r.status, r.text).toBe(201);
  ids[who].push(r.json.id);
  return r.json.id;
}

beforeAll(async () => {
  H = await tempHome({ asAgent: true });
  cleanups.push(() => H.cleanup());
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  const a = await createSession(store, "default", { label: "a" });
  tokens.a = a.token;
  sessionA = a.session.id;
  tokens.b = (await createSession(store, "default", { label: "b" })).token;
  const agent = await createAgent(store, "default", "claude");
  tokens.agent = agent.token;
  tokens.agentSession = (await createSession(store, "default", { agent: "claude" })).token;
  H.reown();
  S = await startServer(H, {}, cleanups);
  await file("a", `A needs this: ${CANARY_A}`);
  await file("a", `A again: ${CANARY_A}`);
  await file("b", "B's own proposal");
  await file("agentSession", "filed by a session acting as claude");
  await file("agent", "filed with claude's own token");
}, 60_000);

afterAll(async () => {
  await runCleanups(cleanups);
  // A's text reached nobody else: checked per caller below; the CLI output is the human's.
}, 30_000);

describe("GET /v1/proposals shows a caller only its own proposals", () => {
  test("session B lists only its own: none of A's ids, none of A's text", async () => {
    const r = await api(tokens.b, "GET", "/v1/proposals");
    expect(r.status).toBe(200);
    expect((r.json.proposals as { id: number }[]).map((p) => p.id)).toEqual(ids.b);
    expect(r.text).not.toContain(CANARY_A);
    expect(r.text).not.toContain(sessionA);
  });

  test("session B walking every id gets 404 for A's, the same answer as for an id that never existed", async () => {
    const unknown = await api(tokens.b, "GET", "/v1/proposals/999999");
    expect(unknown.status).toBe(404);
    const all = [...ids.a, ...ids.b, ...ids.agent, ...ids.agentSession];
    for (const id of [...ids.a, ...ids.agent, ...ids.agentSession]) {
      const r = await api(tokens.b, "GET", `/v1/proposals/${id}`);
      expect(r.status).toBe(404);
      expect(r.text).not.toContain(CANARY_A);
      // Same code and the same message shape as an unknown id: existence is not revealed.
      expect(r.json.error).toBe(unknown.json.error);
      expect(r.json.message).toBe(unknown.json.message.replace("999999", String(id)));
    }
    for (let id = 1; id <= Math.max(...all) + 2; id++) {
      const r = await api(tokens.b, "GET", `/v1/proposals/${id}`);
      expect(r.status).toBe(ids.b.includes(id) ? 200 : 404);
      expect(r.text).not.toContain(CANARY_A);
      expect(r.text).not.toContain(sessionA);
    }
  });

  test("session A sees exactly its own, with its text", async () => {
    const r = await api(tokens.a, "GET", "/v1/proposals");
    expect((r.json.proposals as { id: number }[]).map((p) => p.id)).toEqual(ids.a);
    expect(r.text).toContain(CANARY_A);
    expect((await api(tokens.a, "GET", `/v1/proposals/${ids.a[0]}`)).status).toBe(200);
    expect((await api(tokens.a, "GET", `/v1/proposals/${ids.b[0]}`)).status).toBe(404);
  });

  test("an agent's token sees what it and its sessions filed; its session sees only its own; neither sees A's", async () => {
    const asAgentToken = await api(tokens.agent, "GET", "/v1/proposals");
    expect((asAgentToken.json.proposals as { id: number }[]).map((p) => p.id).sort()).toEqual([...ids.agentSession, ...ids.agent].sort());
    expect(asAgentToken.text).not.toContain(CANARY_A);
    expect(asAgentToken.text).not.toContain(sessionA);
    const asSession = await api(tokens.agentSession, "GET", "/v1/proposals");
    expect((asSession.json.proposals as { id: number }[]).map((p) => p.id)).toEqual(ids.agentSession);
    expect(asSession.text).not.toContain(CANARY_A);
    for (const token of [tokens.agent, tokens.agentSession]) expect((await api(token, "GET", `/v1/proposals/${ids.a[0]}`)).status).toBe(404);
  });

  test("the human's CLI still lists every proposal", async () => {
    const { ok } = recordingCli(
      () => H,
      () => ({}),
      [],
    );
    const listed = JSON.parse((await ok(["vault", "proposal", "list", "--json"])).stdout) as { id: number }[];
    expect(listed.map((p) => p.id).sort()).toEqual([...ids.a, ...ids.b, ...ids.agent, ...ids.agentSession].sort());
  });
});
