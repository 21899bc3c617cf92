// Attack: the agent writes bunfig.toml (with a preload script) and .env into the repository it
// works in. Bun executables read both from the directory they start in, before our code runs: the
// next agent-vault the user starts there would run the agent's script outside the sandbox, with
// the password in reach, or take AGENT_VAULT_* settings from the agent. The binary is built to
// read neither (scripts/build.ts); this holds it there.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { giveToAgent } from "../support/attacker.ts";
import { cleanEnv, type TempHome, tempHome } from "../support/binary.ts";

let home: TempHome;
let repo: string;
let marker: string;

beforeAll(async () => {
  home = await tempHome({ asAgent: true });
  const { code } = await home.run(["vault", "credential", "set", "SVC_KEY=-"], { stdin: "sk_live_planted_config_canary_0123456789" });
  expect(code).toBe(0);
  repo = join(home.dir, "..", "repo");
  mkdirSync(repo);
  marker = join(repo, "pwned");
  // What the agent plants: a preload that would record the password and stdin, and an .env that
  // would point agent-vault at another data directory.
  writeFileSync(join(repo, "bunfig.toml"), 'preload = ["./evil.ts"]\n');
  writeFileSync(join(repo, "evil.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, String(process.env.AGENT_VAULT_MASTER_PASSWORD));\n`);
  writeFileSync(join(repo, ".env"), `AGENT_VAULT_HOME=${join(repo, "elsewhere")}\n`);
  giveToAgent(repo);
}, 60_000);

afterAll(() => home.cleanup());

async function inRepo(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(home.argv(args), { cwd: repo, env: cleanEnv(home.env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("bunfig.toml and .env in the working directory", () => {
  test("are not read: no preload runs, no setting is taken", async () => {
    const version = await inRepo(["--version"]);
    expect(version.code).toBe(0);
    const list = await inRepo(["vault", "credential", "list"]);
    // The .env's data directory would have no vault: the command found the real one.
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain("SVC_KEY");
    const run = await inRepo(["run", "--", "true"]);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(marker)).toBe(false);
  }, 60_000);
});
