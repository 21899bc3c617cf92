// Attack: a sandboxed agent goes after what lies next to its sandbox (found by red-teaming): the
// relay sockets of another, concurrent run (whose session token flows through them), the user's
// other terminals in /dev/pts (a password typed at a prompt there), and a `bwrap` of its own on
// PATH that would run the next `run` unsandboxed. Broker and attacker run as the unprivileged user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { giveToAgent } from "../support/attacker.ts";
import { cleanEnv, type TempHome, tempHome } from "../support/binary.ts";
import { type Live, spawnLive, waitUntil } from "../support/process.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
let home: TempHome;
let neighbour: Live | null = null;

beforeAll(async () => {
  home = await tempHome({ asAgent: true });
}, 60_000);

afterAll(async () => {
  if (neighbour && neighbour.proc.exitCode === null) neighbour.proc.kill("SIGKILL");
  await neighbour?.proc.exited;
  home.cleanup();
}, 30_000);

describe.skipIf(!HAVE_BWRAP)("what is next to the sandbox", () => {
  test("another run's sockets, and the data directory's run directories, are out of sight", async () => {
    // Run B: a sandboxed agent that stays up, with its relay sockets in place.
    neighbour = spawnLive(home.argv(["run", "--", "sh", "-c", "echo up; sleep 30"]), cleanEnv(home.env), "ignore");
    await waitUntil("the neighbour run", () => neighbour!.stdout.includes("up"), 20_000);
    const runDirs = Bun.spawnSync(["sh", "-c", `ls -d "${home.dir}"/run-* 2>/dev/null`])
      .stdout.toString()
      .trim()
      .split("\n")
      .filter(Boolean);
    expect(runDirs.length).toBe(1);
    // Run A looks for them: in the data directory, in /tmp, anywhere a socket of B's might be.
    const a = await home.run(["run", "--", "sh", "-c", `ls -a "$AGENT_VAULT_HOME"; echo ---; ls "${runDirs[0]}" 2>&1; echo ---; find / -name api.sock -o -name proxy.sock 2>/dev/null; true`]);
    expect(a.code, a.stderr).toBe(0);
    const [data, neighbourDir, found] = a.stdout.split("---\n");
    // Only this run's own directory (holding its two sockets) is visible, never B's.
    expect((data ?? "").split("\n").filter((n) => n.startsWith("run-")).length).toBe(1);
    expect(data).not.toContain(runDirs[0]!.split("/").pop()!);
    expect(neighbourDir).toContain("No such file or directory");
    // No relay socket of B's anywhere the agent can look.
    const sockets = (found ?? "")
      .trim()
      .split("\n")
      .filter((s) => s.startsWith(home.dir));
    expect(sockets.length).toBe(2);
    for (const s of sockets) expect(s.startsWith(runDirs[0]!)).toBe(false);
  }, 60_000);

  test("the user's other terminals are not in /dev/pts", async () => {
    // A terminal outside: a pty that tmux holds open (the private /dev/pts hides every one).
    const socket = join(home.dir, "..", "tmux.sock");
    const tmux = Bun.spawnSync(["tmux", "-S", socket, "new-session", "-d", "sleep 30"]);
    const outside = Bun.spawnSync(["sh", "-c", "ls /dev/pts"])
      .stdout.toString()
      .split(/\s+/)
      .filter((n) => /^\d+$/.test(n));
    const inside = await home.run(["run", "--", "sh", "-c", "ls /dev/pts"]);
    Bun.spawnSync(["tmux", "-S", socket, "kill-server"]);
    expect(inside.code, inside.stderr).toBe(0);
    if (tmux.exitCode === 0) expect(outside.length).toBeGreaterThan(0);
    expect(inside.stdout.split(/\s+/).filter((n) => /^\d+$/.test(n))).toEqual([]);
  }, 60_000);

  test("the shell's startup files are read-only, and a redirection in force is named (found by a black-box round)", async () => {
    const rc = join(home.dir, "..", "user-home", ".bashrc");
    writeFileSync(rc, "# the user's own\n");
    giveToAgent(rc);
    const r = await home.run(["run", "--", "sh", "-c", 'echo "export AGENT_VAULT_CONNECT_TO=api.openai.com:443:10.0.0.1:443" >> "$HOME/.bashrc"; echo rc=$?']);
    expect(r.stdout).toMatch(/rc=[1-9]/);
    expect(Bun.file(rc).size).toBe("# the user's own\n".length);
    const noted = await home.run(["run", "--no-sandbox", "--", "true"], { env: { AGENT_VAULT_CONNECT_TO: "api.openai.com:443:127.0.0.1:9" } });
    expect(noted.stderr).toContain("AGENT_VAULT_CONNECT_TO is set (api.openai.com:443:127.0.0.1:9)");
  }, 60_000);

  test("a bwrap the agent put on PATH is not used", async () => {
    const bin = join(home.dir, "..", "user-home", ".local", "bin");
    mkdirSync(bin, { recursive: true });
    const marker = join(bin, "fake-bwrap-ran");
    writeFileSync(join(bin, "bwrap"), `#!/bin/sh\ntouch "${marker}"\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n`);
    chmodSync(join(bin, "bwrap"), 0o755);
    giveToAgent(join(home.dir, "..", "user-home"));
    const r = await home.run(["run", "--", "sh", "-c", 'ls "$AGENT_VAULT_HOME"'], { env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(r.stdout).not.toContain("vault.av");
  }, 60_000);
});
