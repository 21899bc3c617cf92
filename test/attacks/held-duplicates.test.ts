// Attack (red team, session 7, MEDIUM–HIGH): an agent whose policy holds `POST /v1/charges` for a
// person's approval sends 25 identical copies at once (the same method, path and body; each with
// its own X-Idx and Idempotency-Key, so the service's own duplicate check passes them all). They
// waited on one held record, which the person saw and allowed once, and all 25 went out with the
// credential. An allow now sends exactly one of them; the others are refused, nothing of them
// reaches the service, and a denial still answers every copy.
import { beforeAll, describe, expect, test } from "bun:test";
import { agentWithPolicy, type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-held-duplicates-", (broker) => (B = broker));
const COPIES = 25;

beforeAll(async () => {
  agentAuth = await agentWithPolicy(B, scratch, 'rules:\n  - service: fake\n    approve:\n      - { methods: [POST], path: "/v1/charges", timeout: 20s }\n');
}, 30_000);

/** COPIES identical charges, each with its own idempotency key; the held list once they wait. */
async function sendCopies(body: string): Promise<{ sends: ReturnType<typeof requestInTunnel>[]; ids: number[] }> {
  const sends = Array.from({ length: COPIES }, (_, i) =>
    requestInTunnel(B, "POST", "/v1/charges", {
      auth: agentAuth,
      headers: [
        ["Content-Type", "application/x-www-form-urlencoded"],
        ["Idempotency-Key", `charge-${i}`],
        ["X-Idx", String(i)],
      ],
      body,
      timeoutMs: 25_000,
    }),
  );
  let ids: number[] = [];
  for (let tries = 0; tries < 50 && ids.length === 0; tries++) {
    await Bun.sleep(100);
    const listed = await B.cli(["held", "list", "--json"]);
    ids = (JSON.parse(listed.stdout || "[]") as { id: number; status?: string }[]).map((h) => h.id);
  }
  // Let every copy reach the wait before anyone answers.
  await Bun.sleep(1000);
  return { sends, ids };
}

describe("identical requests waiting on one approval", () => {
  test("allowed once, one copy goes out; the other 24 are refused and send nothing", async () => {
    const before = B.upstream.received.filter((r) => r.url === "/v1/charges").length;
    const { sends, ids } = await sendCopies("amount=1000&currency=usd");
    expect(ids.length).toBe(1);
    const allowed = await B.cli(["held", "allow", String(ids[0])]);
    expect(allowed.code, allowed.stderr).toBe(0);
    const answers = await Promise.all(sends);
    const statuses = answers.map((r) => r?.status);
    expect(statuses.filter((s) => s === 200).length).toBe(1);
    const refused = answers.filter((r) => r?.status !== 200);
    expect(refused.length).toBe(COPIES - 1);
    for (const r of refused) {
      expect(r?.headers["x-agent-vault-error"]).toBe("approval_denied");
      expect(r?.text).toContain(`held request #${ids[0]} (POST api.fake.test) was allowed for one request`);
    }
    await Bun.sleep(200);
    const charges = B.upstream.received.filter((r) => r.url === "/v1/charges");
    expect(charges.length - before).toBe(1);
  }, 60_000);

  test("denied once, every copy gets the denial and none goes out", async () => {
    const before = B.upstream.received.filter((r) => r.url === "/v1/charges").length;
    const { sends, ids } = await sendCopies("amount=2000&currency=usd");
    const denied = await B.cli(["held", "deny", String(ids[0]), "--reason", "no"]);
    expect(denied.code, denied.stderr).toBe(0);
    const answers = await Promise.all(sends);
    for (const r of answers) expect(r?.headers["x-agent-vault-error"]).toBe("approval_denied");
    expect(B.upstream.received.filter((r) => r.url === "/v1/charges").length).toBe(before);
  }, 60_000);
});
