// The command line at a terminal (issue 15): the binary runs in a real pseudo-terminal (Python's
// pty module), and the test answers its prompts the way a person would. What is checked is what
// the person sees: which prompts appear, in what order, and how the command ends.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { inTerminal } from "../support/pty.ts";

const SLOW = 60_000;
const homes: TempHome[] = [];
afterAll(() => {
  for (const home of homes) home.cleanup();
});

async function newHome(init: "password" | false): Promise<TempHome> {
  const home = await tempHome({ init });
  homes.push(home);
  return home;
}

describe("init at a terminal", () => {
  test(
    "on an existing home it refuses before asking for any password",
    async () => {
      const home = await newHome("password");
      const before = readFileSync(join(home.dir, "vault.av"));
      const r = await inTerminal(home, ["init"], [], { AGENT_VAULT_MASTER_PASSWORD: undefined });
      expect(r.code).toBe(1);
      expect(r.output).toMatch(/already initialized/);
      expect(r.output).not.toMatch(/password/i);
      expect(readFileSync(join(home.dir, "vault.av"))).toEqual(before);
    },
    SLOW,
  );

  test(
    "a too-short password or a mismatch asks again; the third slip gives up",
    async () => {
      const home = await newHome(false);
      const env = { AGENT_VAULT_MASTER_PASSWORD: undefined };
      const r = await inTerminal(
        home,
        ["init"],
        [
          [/Choose a master password[^:]*: /, "short"],
          [/too short[^\n]*\n[\s\S]*Choose a master password[^:]*: /, TEST_PASSWORD],
          [/Repeat it: /, `${TEST_PASSWORD}x`],
          [/differ[^\n]*\n[\s\S]*Choose a master password[^:]*: /, TEST_PASSWORD],
          [/Repeat it: /, TEST_PASSWORD],
        ],
        env,
      );
      expect(r.output).toMatch(/initialized /);
      expect(r.code).toBe(0);
      expect((await home.run(["vault", "list"])).code).toBe(0);

      const other = await newHome(false);
      const gaveUp = await inTerminal(
        other,
        ["init"],
        (["a", "b", "c"] as const).map((text) => [/Choose a master password[^:]*: /, text] as [RegExp, string]),
        env,
      );
      expect(gaveUp.code).toBe(2);
      expect(gaveUp.output).toMatch(/error:\S* the master password must be at least 8 characters/);
      expect(existsSync(join(other.dir, "vault.av"))).toBe(false);
    },
    SLOW,
  );
});

describe("run at a terminal", () => {
  test(
    "the password prompt says what it is for, and a typo in the command asks for nothing",
    async () => {
      const home = await newHome("password");
      const env = { AGENT_VAULT_MASTER_PASSWORD: undefined };
      const r = await inTerminal(home, ["run", "--no-sandbox", "--", "sh", "-c", "echo started"], [[/Master password \(to start a session for sh\): /, TEST_PASSWORD]], env);
      expect(r.output).toContain("started");
      expect(r.code).toBe(0);
      const typo = await inTerminal(home, ["run", "--", "no-such-agent-av15"], [], env);
      expect(typo.code).toBe(127);
      expect(typo.output).not.toMatch(/password/i);
    },
    SLOW,
  );
});
