// Attack: the agent rewrites its refused request out of the audit trail. The broker and the agent
// both run as the unprivileged user, so audit.log is the agent's to write: under `run` it makes a
// request the vault's deny policy refuses, then edits the log with its own script: deletes the
// line, flips it to "allowed", deletes it and renumbers and relinks every later line (it can
// compute SHA-256, not the MAC), or cuts the log before it. What must hold, through the binary:
//   - `audit verify` exits 1 and names the first record that no longer holds, every time;
//   - the same cut made before the record was anchored still shows: the running broker links its
//     next record to the one it wrote, and anchors its own head when it stops;
//   - the credential's value is in none of it (the log holds keys and codes, never values).
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { addBearerService, agentHome, fileScene } from "../support/scene.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentUpstream } from "../support/upstream.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-audit-tamper-", { absent: [SECRET] });
const { scratch, cleanups, outputs } = scene;

/** The agent's editor: finds its refused request in audit.log and rewrites the file around it. */
const TAMPER = String.raw`
import hashlib, json, sys
path, how = sys.argv[1], sys.argv[2]
lines = open(path).read().split("\n")[:-1]
i = max([k for k, l in enumerate(lines) if '"request_blocked"' in l and 'evil.test' in l] or [len(lines) - 1])
if how == "last":
    i = len(lines) - 1
    lines = lines[:-1]
elif how == "delete":
    del lines[i]
elif how == "flip":
    lines[i] = lines[i].replace('"request_blocked"', '"request_allowed"').replace('"status":403', '"status":200')
elif how == "rechain":
    del lines[i]
    for k in range(i, len(lines)):
        r = json.loads(lines[k])
        r["seq"] = k + 1
        r["prev"] = hashlib.sha256(lines[k - 1].encode()).hexdigest() if k > 0 else "0" * 64
        lines[k] = json.dumps(r, separators=(",", ":"))
elif how == "cut":
    lines = lines[:i]
elif how == "cut-stray":
    i = max(k for k, l in enumerate(lines) if 'unanchored.test' in l)
    lines = lines[:i]
open(path, "w").write("".join(l + "\n" for l in lines))
print(i + 1)
`;

/** The agent, under `run`: one request let through, one refused by the deny policy. */
const REQUESTS = 'curl -s -o /dev/null -w "%{http_code} " https://api.svc.test/v1/ok; curl -s -o /dev/null -w "%{http_code}" https://evil.test/steal';

async function brokerHome(env: Record<string, string>): Promise<{ home: TempHome; server: Server }> {
  const home = await agentHome(scene);
  const cli = recordingCli(
    () => home,
    () => env,
    outputs,
  );
  await addBearerService(cli, SECRET, "api.svc.test");
  await cli.ok(["vault", "settings", "--unmatched", "deny"]);
  return { home, server: await startServer(home, env, cleanups) };
}

async function agentRun(home: TempHome, env: Record<string, string>, script: string): Promise<string> {
  const r = await home.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env });
  outputs.push(r.stdout, r.stderr);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** Runs the agent's editor on the home's audit.log; returns the line its refused request was on. */
function tamper(home: TempHome, how: string): number {
  const r = Bun.spawnSync(asAgent(["/usr/bin/python3", "-c", TAMPER, join(home.dir, "audit.log"), how]), { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`the agent's script failed: ${r.stderr.toString()}`);
  return Number(r.stdout.toString().trim());
}

async function verify(home: TempHome): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await home.run(["audit", "verify"]);
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function verifiedAndAnchored(home: TempHome): Promise<void> {
  await waitUntil(
    "every record on file and anchored",
    async () => {
      const r = await home.run(["audit", "verify", "--json"]);
      const report = JSON.parse(r.stdout || "{}") as { ok?: boolean; unanchored?: number; records?: number };
      return report.ok && report.unanchored === 0 && readFileSync(join(home.dir, "audit.log"), "utf8").includes("evil.test") ? true : null;
    },
    15_000,
  );
}

describe("an anchored record rewritten by the agent", () => {
  let H: TempHome;
  let original = "";
  beforeAll(async () => {
    const { env } = await agentUpstream(scratch, "api.svc.test", cleanups);
    const ENV = { ...env, AGENT_VAULT_AUDIT_ANCHOR_MS: "300" };
    ({ home: H } = await brokerHome(ENV));
    expect(await agentRun(H, ENV, REQUESTS)).toBe("200 403");
    // A record after the refused one, so that deleting it is not merely a cut tail.
    await waitUntil("the refused request on file", () => readFileSync(join(H.dir, "audit.log"), "utf8").includes("evil.test"), 10_000);
    await recordingCli(
      () => H,
      () => ENV,
      outputs,
    ).ok(["vault", "credential", "set", "LATER_KEY=-"], "later-value-123456");
    await verifiedAndAnchored(H);
    original = readFileSync(join(H.dir, "audit.log"), "utf8");
  }, 60_000);

  const restore = () => writeFileSync(join(H.dir, "audit.log"), original);

  test.each([
    ["delete", (line: number) => `audit.log line ${line} (record ${line + 1}): expected record ${line} here`],
    ["flip", (line: number) => `audit.log line ${line} (record ${line}): the line fails its MAC`],
    ["rechain", (line: number) => `audit.log line ${line} (record ${line}): the line fails its MAC`],
    ["cut", (line: number) => `the log ends at record ${line - 1} but the vault file anchored record`],
  ])(
    "%s: verify exits 1 naming the first bad record",
    async (how, expected) => {
      try {
        const line = tamper(H, how);
        const r = await verify(H);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(expected(line));
      } finally {
        restore();
      }
      expect((await verify(H)).code).toBe(0);
    },
    30_000,
  );

  test("the log holds the refusal's code and no value", () => {
    expect(original).toContain('"code":"host_not_allowed"');
    expect(original).not.toContain(SECRET);
  });
});

describe("a record cut before it was anchored", () => {
  test("shows once the broker writes again, and when it stops", async () => {
    const { env } = await agentUpstream(scratch, "api.svc.test", cleanups);
    const ENV = { ...env, AGENT_VAULT_AUDIT_ANCHOR_MS: "60000" };
    const { home, server } = await brokerHome(ENV);
    const log = join(home.dir, "audit.log");
    // The first flush anchors; the refused request after it waits for an anchor a minute off.
    expect(await agentRun(home, ENV, 'curl -s -o /dev/null -w "%{http_code}" https://api.svc.test/v1/first')).toBe("200");
    await waitUntil("the first request on file", () => readFileSync(log, "utf8").includes("/v1/first"), 10_000);
    expect(await agentRun(home, ENV, REQUESTS)).toBe("200 403");
    await waitUntil("the refused request on file", () => readFileSync(log, "utf8").includes("evil.test"), 10_000);
    // run's own exit (revoking its session, a vault write) may have anchored all of that: one more
    // refusal of the broker's, with no vault write after it, is on file and not anchored for sure.
    const stray = connect(server.mitmPort, "127.0.0.1", () => stray.write("CONNECT unanchored.test:443 HTTP/1.1\r\nHost: unanchored.test:443\r\n\r\n"));
    stray.on("error", () => undefined);
    await waitUntil("the stray refusal on file", () => readFileSync(log, "utf8").includes("unanchored.test"), 10_000);
    stray.destroy();
    const report = JSON.parse((await home.run(["audit", "verify", "--json"])).stdout) as { ok: boolean; unanchored: number };
    expect(report.ok).toBe(true);
    expect(report.unanchored).toBeGreaterThan(0);

    // The stray refusal is the one record surely not anchored yet (run's exit may have anchored the rest).
    const line = tamper(home, "cut-stray");
    expect((await verify(home)).code).toBe(0); // nothing on file vouches for it yet: the cost of an unanchored tail
    expect(await agentRun(home, ENV, 'curl -s -o /dev/null -w "%{http_code}" https://api.svc.test/v1/after')).toBe("200");
    await waitUntil("the next request on file", () => readFileSync(log, "utf8").includes("/v1/after"), 10_000);
    // The `run` that made the next request knew nothing of the cut and numbered its records on
    // from it; the broker did know, and its record links to the one it wrote, not to theirs.
    const after = await verify(home);
    expect(after.code).toBe(1);
    const named = /audit\.log line (\d+) \(record \d+\): it does not link to the record before it/.exec(after.stderr);
    expect(named, after.stderr).not.toBeNull();
    expect(Number(named![1])).toBeGreaterThan(line);

    // Cut again, this time the broker's own last record: stopping, it anchors its own head.
    tamper(home, "last");
    await server.stop();
    const stopped = await verify(home);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain("but the vault file anchored record");
  }, 90_000);
});
