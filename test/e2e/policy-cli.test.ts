// The CLI around policies and sourced proposals, through the compiled binary (red-team findings):
// - `run --policy` with a rule for a service the vault does not have ("canry" for "canary") started
//   the agent with a session that restricted nothing; it now fails before the command runs, with a
//   did-you-mean, as `agent policy` does;
// - `agent policy --deny canary=GET` named the schema's path (rules[0].deny[0].path), not the option;
// - approving a proposal whose slot comes from `pass:` with no `pass` installed said nothing, while
//   every request needing the value would fail: it now warns in one line, as `credential source`
//   checks its command.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordingCli, type TempHome } from "../support/binary.ts";
import { fileScene, sceneHome } from "../support/scene.ts";

const scene = fileScene("av-policy-cli-");
const { scratch, outputs } = scene;
let H: TempHome;
let ENV: Record<string, string | undefined> = {};
const { av, ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

beforeAll(async () => {
  H = await sceneHome(scene);
  await ok(["vault", "credential", "set", "CANARY_KEY=-"], "canary-value");
  await ok(["vault", "service", "add", "--name", "canary", "--host", "api.canary.test", "--auth-type", "bearer", "--token-key", "CANARY_KEY"]);
  await ok(["agent", "create", "bot"]);
}, 60_000);

describe("run --policy and a service the vault does not have", () => {
  test("a misspelt service: exit 1 with a did-you-mean, and the command never starts", async () => {
    for (const [name, text] of [
      ["typo.json", JSON.stringify({ rules: [{ service: "canry", methods: ["GET"] }] })],
      ["typo.yaml", "rules:\n  - service: canary\n    methods: [GET]\n  - service: canray\n    deny:\n      - { path: /admin/* }\n"],
    ] as const) {
      const file = join(scratch, name);
      writeFileSync(file, text);
      const marker = join(scratch, `${name}.ran`);
      const r = await av(["run", "--no-sandbox", "--quiet", "--policy", file, "--", "sh", "-c", `touch ${marker}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain("unknown service");
      expect(r.stderr).toContain('did you mean "canary"');
      expect(r.stderr).toContain(name);
      expect(existsSync(marker), name).toBe(false);
    }
  }, 30_000);

  test("control: the right name runs the command", async () => {
    const file = join(scratch, "right.json");
    writeFileSync(file, JSON.stringify({ rules: [{ service: "canary", methods: ["GET"] }] }));
    const marker = join(scratch, "right.ran");
    await ok(["run", "--no-sandbox", "--quiet", "--policy", file, "--", "sh", "-c", `touch ${marker}`]);
    expect(existsSync(marker)).toBe(true);
  }, 30_000);
});

describe("agent policy options name themselves in errors", () => {
  test("--deny canary=GET (no path): the error names --deny and what to write, not rules[0].deny[0].path", async () => {
    const r = await av(["agent", "policy", "bot", "--deny", "canary=GET"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--deny "canary=GET"');
    expect(r.stderr).not.toContain("rules[0]");
    expect(r.stderr).toContain("canary=DELETE /admin/*");
  });

  test("--methods canary=GET,G-T, --approve canary=POST admin, --usage-cap 0: each names its option", async () => {
    for (const [args, option] of [
      [["--methods", "canary=GET,G-T"], '--methods "canary=GET,G-T"'],
      [["--methods", "canary=GET", "--approve", "canary=POST admin"], '--approve "canary=POST admin"'],
      [["--usage-cap", "0"], '--usage-cap "0"'],
    ] as const) {
      const r = await av(["agent", "policy", "bot", ...args]);
      expect(r.code, option).toBe(2);
      expect(r.stderr, option).toContain(option);
      expect(r.stderr, option).not.toMatch(/rules\[|usage_cap/);
    }
  });

  test("--deny canry=DELETE /x: unknown service with a did-you-mean (as before)", async () => {
    const r = await av(["agent", "policy", "bot", "--deny", "canry=DELETE /x"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('did you mean "canary"');
  });
});

describe("approving a proposal whose value comes from a command that is not installed", () => {
  test("pass:team/x with no pass on the source path: approved, with one warning line naming pass", async () => {
    const proposal = JSON.stringify({
      services: [{ action: "set", name: "team", host: "api.team.test", auth: { type: "bearer", token: "TEAM_TOKEN" } }],
      credentials: [{ action: "set", key: "TEAM_TOKEN", source: "pass:team/x", description: "the team token" }],
      message: "need the team token",
    });
    const script = `curl -s -X POST -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" -H "content-type: application/json" --data '${proposal}' "$AGENT_VAULT_ADDR/v1/proposals"`;
    const filed = JSON.parse((await ok(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script])).stdout) as { id: number };
    const empty = join(scratch, "no-commands");
    mkdirSync(empty, { recursive: true });
    ENV = { AGENT_VAULT_SOURCE_PATH: empty };
    try {
      const r = await ok(["vault", "proposal", "approve", String(filed.id), "--yes"]);
      const warnings = r.stderr.split("\n").filter((line) => line.includes("warning:") && line.includes("pass"));
      expect(warnings.length, r.stderr).toBe(1);
      expect(warnings[0]).toContain("TEAM_TOKEN");
      expect(warnings[0]).toContain("not installed");
    } finally {
      ENV = {};
    }
  }, 30_000);
});
