// Attack (red team, session 7, LOW–MEDIUM): an agent opens a WebSocket while its policy's time
// window is open, then keeps using it after the window closes or after its policy is tightened.
// Only the handshake was judged: frames kept reaching the service with the credential injected at
// the handshake. Now the sweep judges an open WebSocket by the policy as it stands, every 500 ms,
// and closes it once a new handshake would be refused. Broker and attacker: the unprivileged user.
// Its messages were not counted against a rate limit or usage cap either (session 8): a socket
// opened once sent as many as it liked. Now every data message the agent sends is taken from them
// like a request, and the one past the limit closes the socket (1008) without leaving.
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { giveToAgent } from "../support/attacker.ts";
import { basicProxyAuth, readResponse, readWsFrame, webSocketOffer, wsFrame } from "../support/proxy-client.ts";
import { type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
const scratch = brokerForFile("av-websocket-policy-", (broker) => (B = broker));
let auth: string;
const policyFile = join(scratch, "policy.yaml");

/** A time window around now (open: true) or one that excludes now (open: false), in UTC. */
function windowPolicy(open: boolean | "approve"): string {
  if (open === "approve") return `rules:\n  - service: fake\n    approve:\n      - { path: "/ws/*", timeout: 3s }\n`;
  const h = new Date().getUTCHours();
  const hour = (n: number) => String(n % 24).padStart(2, "0");
  const [start, end] = open ? [`${hour(h + 23)}:00`, `${hour(h + 1)}:59`] : [`${hour(h + 3)}:00`, `${hour(h + 4)}:00`];
  return `time_windows:\n  - { start: "${start}", end: "${end}" }\n`;
}

async function setPolicy(open: boolean | "approve" | string): Promise<void> {
  writeFileSync(policyFile, typeof open === "string" && open !== "approve" ? open : windowPolicy(open as boolean | "approve"));
  giveToAgent(policyFile);
  const r = await B.cli(["agent", "policy", "wsbot", "-f", policyFile]);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  const created = await B.cli(["agent", "create", "wsbot"]);
  expect(created.code, created.stderr).toBe(0);
  auth = basicProxyAuth(created.stdout.trim());
  expect((await B.cli(["agent", "grant", "wsbot", "--service", "fake", "--ttl", "1h"])).code).toBe(0);
  await setPolicy(true);
  await Bun.sleep(1_000);
}, 30_000);

describe("an open WebSocket and a policy that changes under it", () => {
  test("the window closes: the WebSocket is closed within 2 s and no later frame reaches the service", async () => {
    const conn = await B.tunnel("api.fake.test", auth);
    conn.socket.write(webSocketOffer("api.fake.test", "/ws/policy"));
    expect((await readResponse(conn.reader)).status).toBe(101);
    conn.socket.write(wsFrame("inside the window", { mask: true }));
    expect((await readWsFrame(conn.reader)).payload.toString()).toBe("inside the window");

    await setPolicy(false);
    await Bun.sleep(2_000);
    // A new request is refused, and the open WebSocket is gone with it.
    const fresh = await requestInTunnel(B, "GET", "/plain", { auth });
    expect(fresh?.headers["x-agent-vault-error"]).toBe("policy_denied");
    const before = B.wsReceived.filter((m) => m.path === "/ws/policy").length;
    let closed = conn.socket.destroyed || conn.socket.readableEnded;
    if (!closed) {
      conn.socket.write(wsFrame("after the window", { mask: true }));
      await Bun.sleep(500);
      closed = conn.socket.destroyed || conn.socket.readableEnded;
    }
    expect(closed).toBe(true);
    expect(B.wsReceived.filter((m) => m.path === "/ws/policy").length).toBe(before);
    expect(B.wsReceived.some((m) => m.payload.toString() === "after the window")).toBe(false);
    conn.close();
  }, 30_000);

  test("an approve entry is added for its path: the open WebSocket is closed too (a handshake now would be held)", async () => {
    await setPolicy(true);
    await Bun.sleep(1_000);
    const conn = await B.tunnel("api.fake.test", auth);
    conn.socket.write(webSocketOffer("api.fake.test", "/ws/approve"));
    expect((await readResponse(conn.reader)).status).toBe(101);
    conn.socket.write(wsFrame("before the rule", { mask: true }));
    expect((await readWsFrame(conn.reader)).payload.toString()).toBe("before the rule");
    await setPolicy("approve");
    expect(await conn.reader.closesWithin(3_000)).toBe(true);
    expect(B.wsReceived.some((m) => m.path === "/ws/approve" && m.payload.toString() !== "before the rule" && m.opcode === 1)).toBe(false);
    conn.close();
  }, 30_000);

  for (const [label, policy, passed] of [
    // 5 a minute: the handshake takes one, four messages go, the fifth closes the socket.
    ["a rate limit", "rate_limit: { requests_per_minute: 5 }\n", 4],
    // A cap of 3: the handshake and two messages.
    ["a usage cap", "usage_cap: 3\n", 2],
  ] as const) {
    test(`${label}: each message the agent sends counts as a request; the one past it closes the socket and never leaves`, async () => {
      const agent = `ws${label.length}`;
      const created = await B.cli(["agent", "create", agent]);
      expect(created.code, created.stderr).toBe(0);
      const token = created.stdout.trim();
      expect((await B.cli(["agent", "grant", agent, "--service", "fake", "--ttl", "1h"])).code).toBe(0);
      writeFileSync(policyFile, policy);
      giveToAgent(policyFile);
      expect((await B.cli(["agent", "policy", agent, "-f", policyFile])).code).toBe(0);
      await Bun.sleep(1_000);
      const path = `/ws/limit-${agent}`;
      const conn = await B.tunnel("api.fake.test", basicProxyAuth(token));
      conn.socket.write(webSocketOffer("api.fake.test", path));
      expect((await readResponse(conn.reader)).status).toBe(101);
      for (let i = 0; i < passed; i++) {
        conn.socket.write(wsFrame(`message ${i}`, { mask: true }));
        expect((await readWsFrame(conn.reader)).payload.toString()).toBe(`message ${i}`);
      }
      conn.socket.write(wsFrame("one too many", { mask: true }));
      const close = await readWsFrame(conn.reader);
      expect(close.opcode).toBe(8);
      expect(close.payload.readUInt16BE(0)).toBe(1008);
      expect(close.payload.subarray(2).toString()).toMatch(/^(rate_limited|policy_denied): /);
      expect(await conn.reader.closesWithin(3_000)).toBe(true);
      expect(B.wsReceived.filter((m) => m.path === path && m.opcode === 1).map((m) => m.payload.toString())).toEqual(Array.from({ length: passed }, (_, i) => `message ${i}`));
      conn.close();
    }, 30_000);
  }
});
