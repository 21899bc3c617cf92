// The command line at a terminal (issue 15): the binary runs in a real pseudo-terminal (Python's
// pty module), and the test answers its prompts the way a person would. What is checked is what
// the person sees: which prompts appear, in what order, and how the command ends.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanEnv, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";

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

// Runs argv in a pty; for each step waits for `expect` (a regex) in the output, then types `send`
// and Enter. Prints {"output", "code"} as JSON; a step not seen within 10 s ends the run.
const DRIVER = String.raw`
import json, os, pty, re, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
out = b""
seen = 0
def pump(deadline):
    global out
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            out += data
            return True
    return True
alive = True
for pattern, send in spec["steps"]:
    deadline = time.time() + 10
    while alive and time.time() < deadline:
        m = re.search(pattern.encode(), out[seen:])
        if m:
            seen += m.end()
            os.write(fd, send.encode() + b"\r")
            break
        alive = pump(deadline)
    else:
        break
deadline = time.time() + 15
while alive and time.time() < deadline:
    alive = pump(deadline)
if alive:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
print(json.dumps({"output": out.decode("utf-8", "replace"), "code": os.waitstatus_to_exitcode(status)}))
`;

async function inTerminal(home: TempHome, args: readonly string[], steps: readonly [RegExp, string][], env: Record<string, string | undefined> = {}): Promise<{ output: string; code: number }> {
  const spec = { argv: [BINARY, ...args], env: cleanEnv({ ...home.env, TERM: "xterm", ...env }), steps: steps.map(([re, send]) => [re.source, send]) };
  const proc = Bun.spawn(["python3", "-c", DRIVER, JSON.stringify(spec)], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (!stdout.trim()) throw new Error(`pty driver failed: ${stderr}`);
  return JSON.parse(stdout) as { output: string; code: number };
}

describe("init at a terminal", () => {
  test("on an existing home it refuses before asking for any password", async () => {
    const home = await newHome("password");
    const before = readFileSync(join(home.dir, "vault.av"));
    const r = await inTerminal(home, ["init"], [], { AGENT_VAULT_MASTER_PASSWORD: undefined });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/already initialized/);
    expect(r.output).not.toMatch(/password/i);
    expect(readFileSync(join(home.dir, "vault.av"))).toEqual(before);
  }, SLOW);

  test("a too-short password or a mismatch asks again; the third slip gives up", async () => {
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
    const gaveUp = await inTerminal(other, ["init"], (["a", "b", "c"] as const).map((text) => [/Choose a master password[^:]*: /, text] as [RegExp, string]), env);
    expect(gaveUp.code).toBe(2);
    expect(gaveUp.output).toMatch(/error: the master password must be at least 8 characters/);
    expect(existsSync(join(other.dir, "vault.av"))).toBe(false);
  }, SLOW);
});
