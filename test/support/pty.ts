// Runs the binary in a real pseudo-terminal (Python's pty module) and answers its prompts the way
// a person would: for CLI tests of what only happens at a terminal (prompts, colour, widths).
import { BINARY, cleanEnv, type TempHome } from "./binary.ts";

// Runs argv in a pty; for each step waits for `expect` (a regex) in the output, then types `send`
// and Enter. Prints {"output", "code"} as JSON; a step not seen within 10 s ends the run.
const DRIVER = String.raw`
import fcntl, json, os, pty, re, select, struct, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, spec["cols"], 0, 0))
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

/** Runs `args` in a `cols`x24 pty; each step waits for its pattern, then types the text and Enter. */
export async function inTerminal(
  home: TempHome,
  args: readonly string[],
  steps: readonly [RegExp, string][],
  env: Record<string, string | undefined> = {},
  cols = 80,
): Promise<{ output: string; code: number }> {
  const spec = { argv: [BINARY, ...args], env: cleanEnv({ ...home.env, TERM: "xterm", ...env }), steps: steps.map(([re, send]) => [re.source, send]), cols };
  const proc = Bun.spawn(["python3", "-c", DRIVER, JSON.stringify(spec)], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (!stdout.trim()) throw new Error(`pty driver failed: ${stderr}`);
  return JSON.parse(stdout) as { output: string; code: number };
}
