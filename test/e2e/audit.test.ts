// The audit trail (issue 16, item 2) through the compiled binary: a real `run` whose curl is let
// through to one host and refused at another, a proposal it files and the human rejects, a grant
// and credential changes all appear in `audit export`, with codes and keys and never the value;
// `audit verify` exits 0, then 1 naming the record once a line of audit.log is changed, and 0
// again when it is put back; `export --json --since` writes JSON lines from a time on.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordingCli, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { addBearerService, fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";
import { startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const OTHER = `ghp_${randomBytes(15).toString("hex")}`;
const scene = fileScene("av-audit-e2e-", { absent: [SECRET, OTHER] });
const { cleanups, outputs } = scene;

let H: TempHome;
let U: Upstream;
let ENV: Record<string, string>;
const { av, ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

interface Exported {
  seq: number;
  time: string;
  kind: string;
  host?: string;
  code?: string | null;
  keys?: string[];
  proposal?: number;
  session?: string | null;
  agent?: string | null;
  services?: string[];
  detail?: string;
}

async function exported(args: string[] = []): Promise<Exported[]> {
  const r = await ok(["audit", "export", "--json", ...args]);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Exported);
}

beforeAll(async () => {
  U = await sceneUpstream(scene);
  H = await sceneHome(scene);
  ENV = {
    AGENT_VAULT_CONNECT_TO: ["api.svc.test", "evil.test"].map((h) => `${h}:443:127.0.0.1:${U.port}`).join(","),
    AGENT_VAULT_UPSTREAM_CA: U.caFile,
    AGENT_VAULT_AUDIT_ANCHOR_MS: "300",
  };
  await addBearerService(
    recordingCli(
      () => H,
      () => ENV,
      outputs,
    ),
    SECRET,
    "api.svc.test",
  );
  await ok(["vault", "settings", "--unmatched", "deny"]);
  await startServer(H, ENV, cleanups);
}, 60_000);

describe("a real run's decisions", () => {
  test("requests let through and refused, the run's session, its proposal, a grant and credential changes are on file; no value is", async () => {
    const proposal = JSON.stringify({
      services: [{ action: "set", name: "stripe", host: "api.stripe.test", auth: { type: "bearer", token: "STRIPE_KEY" } }],
      credentials: [{ action: "set", key: "STRIPE_KEY" }],
      message: "need stripe",
    });
    const script = [
      'curl -s -o /dev/null -w "%{http_code} " https://api.svc.test/v1/ok',
      'curl -s -o /dev/null -w "%{http_code}" https://evil.test/steal || true',
      `curl -s -o /dev/null -X POST -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" -H "content-type: application/json" --data '${proposal}' "$AGENT_VAULT_ADDR/v1/proposals"`,
    ].join("; ");
    const r = await ok(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script]);
    expect(r.stdout).toBe("200 403");
    await ok(["vault", "proposal", "reject", "1", "--reason", "not now"]);
    await ok(["vault", "credential", "set", "GITHUB_TOKEN=-"], OTHER);
    await ok(["vault", "credential", "delete", "GITHUB_TOKEN"]);
    await ok(["agent", "create", "bot"]);
    await ok(["agent", "grant", "bot", "--service", "svc"]);

    // The server appends its request records about once a second.
    const records = await waitUntil(
      "the run's requests in the audit log",
      async () => {
        const all = await exported();
        return all.some((x) => x.kind === "request_blocked") ? all : null;
      },
      15_000,
    );
    expect(records.map((x) => x.seq)).toEqual(records.map((_, i) => i + 1));
    expect(records.find((x) => x.kind === "request_allowed")).toMatchObject({ host: "api.svc.test", code: null });
    expect(records.find((x) => x.kind === "request_blocked")).toMatchObject({ host: "evil.test", code: "host_not_allowed" });
    const started = records.find((x) => x.kind === "session_started")!;
    expect(started.session).toMatch(/^s_[0-9a-f]{12}$/);
    expect(records.find((x) => x.kind === "session_ended")?.session).toBe(started.session!);
    expect(records.find((x) => x.kind === "proposal_filed")).toMatchObject({ proposal: 1, session: started.session, keys: ["STRIPE_KEY"], services: ["stripe"] });
    expect(records.find((x) => x.kind === "proposal_rejected")).toMatchObject({ proposal: 1 });
    expect(records.filter((x) => x.kind === "credential_set").map((x) => x.keys)).toContainEqual(["GITHUB_TOKEN"]);
    expect(records.find((x) => x.kind === "credential_deleted")?.keys).toEqual(["GITHUB_TOKEN"]);
    expect(records.find((x) => x.kind === "grant_added")).toMatchObject({ agent: "bot", services: ["svc"] });
    expect(records.find((x) => x.kind === "agent_changed")).toMatchObject({ agent: "bot", detail: "created" });
    expect(records.find((x) => x.kind === "service_changed")).toMatchObject({ services: ["svc"], host: "api.svc.test", detail: "added" });
    expect(records.find((x) => x.kind === "settings_changed")?.detail).toContain("unmatched=deny guard=on");
    const file = readFileSync(join(H.dir, "audit.log"), "utf8");
    expect(file).not.toContain(SECRET);
    expect(file).not.toContain(OTHER);

    const readable = (await ok(["audit", "export"])).stdout;
    expect(readable).toMatch(/#\d+ {2}request_blocked {2}GET evil\.test/);
  }, 60_000);
});

describe("audit verify", () => {
  test("exits 0 on the intact log, 1 naming the record once a line is changed, 0 when it is put back", async () => {
    await waitUntil(
      "the anchor to reach the last record",
      async () => {
        const r = await av(["audit", "verify", "--json"]);
        const report = JSON.parse(r.stdout) as { ok: boolean; unanchored: number };
        return report.ok && report.unanchored === 0 ? true : null;
      },
      10_000,
    );
    const good = await ok(["audit", "verify"]);
    expect(good.stdout).toMatch(/^audit log ok: \d+ records, anchored up to record \d+/);

    const path = join(H.dir, "audit.log");
    const original = readFileSync(path, "utf8");
    const lines = original.split("\n");
    const index = lines.findIndex((l) => l.includes('"request_blocked"'));
    lines[index] = lines[index]!.replace('"request_blocked"', '"request_allowed"');
    writeFileSync(path, lines.join("\n"));
    const bad = await av(["audit", "verify"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`audit.log line ${index + 1} (record ${index + 1}): the line fails its MAC`);

    writeFileSync(path, original);
    expect((await av(["audit", "verify"])).code).toBe(0);
  }, 30_000);

  test("a record with a field added after its MAC is named by that field, not called no audit record", async () => {
    const path = join(H.dir, "audit.log");
    const original = readFileSync(path, "utf8");
    const lines = original.split("\n");
    lines[0] = lines[0]!.replace(/\}$/, ',"extra\\u001b[2J":1}');
    writeFileSync(path, lines.join("\n"));
    try {
      const bad = await av(["audit", "verify"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('audit.log line 1 (record 1): the line has an unexpected field "extra\\x1b[2J"');
      expect(bad.stderr).not.toContain("\u001b");
      expect(bad.stderr).not.toContain("not an audit record");
    } finally {
      writeFileSync(path, original);
    }
    expect((await av(["audit", "verify"])).code).toBe(0);
  }, 30_000);
});

describe("audit export", () => {
  test("--json --since writes the records from that time on, as JSON lines", async () => {
    const all = await exported();
    const cut = all[Math.floor(all.length / 2)]!.time;
    const since = await exported(["--since", cut]);
    expect(since.length).toBeGreaterThan(0);
    expect(since.length).toBeLessThan(all.length);
    expect(since.every((x) => x.time >= cut)).toBe(true);
    expect(since[since.length - 1]!.seq).toBe(all[all.length - 1]!.seq);
    expect(await exported(["--since", "1h"])).toHaveLength(all.length);
    const ofDefault = await exported(["--vault", "default"]);
    expect(ofDefault.length).toBeGreaterThan(0);
    expect(ofDefault.every((x) => (x as { vault?: string }).vault === "default")).toBe(true);
    expect(await exported(["--vault", "elsewhere"])).toHaveLength(0);
    const wrong = await av(["audit", "export", "--since", "yesterday-ish"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--since "yesterday-ish" is neither a duration');
  }, 30_000);
});
