// What a sandboxed command can leave behind that runs later, outside the sandbox, as the user: a
// shell startup file that did not exist yet, and the working directory's git hooks and config. The
// binds in src/sandbox/linux.ts keep the existing ones read-only, but a bind cannot stop a parent
// from being renamed (`mv .git .git-old && git init`) nor a missing file from being created. So a
// snapshot is taken before the sandbox starts, and when bwrap has exited (nothing inside is
// running) what git and the shell would use now is compared with it: a new startup file or hook is
// moved aside, a new key that runs a program is named with the command that removes it. git is
// never run on what the agent wrote (it could run what it names); configs are parsed here.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, lstatSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { displaySafe, shellQuote } from "../shared/text.ts";
import { type ConfigEntry, isInclude, parseGitConfig, runsProgram } from "./git-config.ts";
import { findGitRepos, type GitRepo, readSmallFile } from "./git-dir.ts";
import { isWithin, runLaterDirectories, runLaterLinks, shellStartupPaths } from "./filesystem.ts";
import { isLifted } from "./linux.ts";

export interface RunLaterSnapshot {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Paths `--sandbox-rw` gave the agent: what is under them is the user's choice. */
  readonly lifted: readonly string[];
  /** Each startup file's content digest, null where it did not exist. */
  readonly startupFiles: ReadonlyMap<string, string | null>;
  readonly hooks: ReadonlyMap<string, string>;
  /** The hooks directories git used when the run started: only what is in these (or a repository's own) is moved. */
  readonly hookDirs: ReadonlySet<string>;
  /** Each config file git read, with its digest (null if absent). */
  readonly configs: ReadonlyMap<string, string | null>;
  /** `file \0 key \0 value` of every key that runs a program. */
  readonly programKeys: ReadonlySet<string>;
  /** Each git directory's identity (device and inode), to tell a replaced one. */
  readonly gitDirs: ReadonlyMap<string, string>;
  /** The `commondir` files that existed. */
  readonly redirects: ReadonlySet<string>;
  /** The home's directories whose contents run later (~/.local/bin, …), by identity (null: absent). */
  readonly runLaterDirs: ReadonlyMap<string, string | null>;
  /** Links in the home on the way to what runs later, by their text (put back if replaced). */
  readonly runLaterLinks: ReadonlyMap<string, string>;
}

/** How many config files one resolution reads, includes included: a cap on what a planted chain costs. */
const MAX_CONFIG_FILES = 64;
/** Hooks are digested up to this size; a larger one is judged by size, time and inode. */
const MAX_HOOK_BYTES = 16 * 1024 * 1024;

function digest(path: string, limit: number): string | null {
  const text = readSmallFile(path, limit);
  if (text !== null) return createHash("sha256").update(text).digest("hex");
  try {
    const stat = statSync(path);
    return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return null;
  }
}

/** A hook directory entry as it is: a symlink by its target's text, a file by its content, anything else by its identity. */
function entryDigest(path: string): string {
  try {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return `link:${readlinkSync(path)}`;
    if (stat.isFile()) return digest(path, MAX_HOOK_BYTES) ?? `${stat.dev}:${stat.ino}`;
    return `${stat.mode}:${stat.dev}:${stat.ino}`;
  } catch {
    return "";
  }
}

function realpathOr(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

function entryKind(path: string): "file" | "link" | "other" | null {
  try {
    const stat = lstatSync(path);
    return stat.isSymbolicLink() ? "link" : stat.isFile() ? "file" : "other";
  } catch {
    return null;
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function identity(path: string): string | null {
  try {
    const stat = statSync(path);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return null;
  }
}

function expandHome(path: string, env: NodeJS.ProcessEnv, base: string): string {
  if (path.startsWith("~/") && env.HOME) return join(env.HOME, path.slice(2));
  return resolve(base, path);
}

interface ReadConfig {
  readonly file: string;
  readonly digest: string | null;
  readonly entries: readonly ConfigEntry[];
  readonly badLine: number | null;
}

/**
 * The config files git reads for these repositories, includes followed whatever their condition
 * (judging more than git reads only says more): the user's global ones, each repository's
 * `config` and `config.worktree`. /etc/gitconfig is root's.
 */
function readConfigs(repos: readonly GitRepo[], env: NodeJS.ProcessEnv): ReadConfig[] {
  const home = env.HOME?.startsWith("/") ? env.HOME : null;
  const xdg = env.XDG_CONFIG_HOME?.startsWith("/") ? env.XDG_CONFIG_HOME : home ? join(home, ".config") : null;
  const pending = [
    ...(env.GIT_CONFIG_GLOBAL?.startsWith("/") ? [env.GIT_CONFIG_GLOBAL] : []),
    ...(home ? [join(home, ".gitconfig")] : []),
    ...(xdg ? [join(xdg, "git", "config")] : []),
    ...repos.flatMap((repo) => [join(repo.commonDir, "config"), join(repo.gitDir, "config.worktree")]),
  ];
  const read = new Map<string, ReadConfig>();
  while (pending.length > 0 && read.size < MAX_CONFIG_FILES) {
    const file = pending.shift()!;
    if (read.has(file)) continue;
    const text = readSmallFile(file);
    const parsed = text === null ? { entries: [], badLine: null } : parseGitConfig(text);
    read.set(file, { file, digest: text === null ? null : createHash("sha256").update(text).digest("hex"), ...parsed });
    for (const entry of parsed.entries) if (isInclude(entry) && entry.value) pending.push(expandHome(entry.value, env, dirname(file)));
  }
  return [...read.values()];
}

/** The names git runs hooks by (githooks(5)); nothing else in a hooks directory ever runs. */
const GIT_HOOK_NAMES = new Set([
  "applypatch-msg",
  "pre-applypatch",
  "post-applypatch",
  "pre-commit",
  "pre-merge-commit",
  "prepare-commit-msg",
  "commit-msg",
  "post-commit",
  "pre-rebase",
  "post-checkout",
  "post-merge",
  "pre-push",
  "pre-receive",
  "update",
  "proc-receive",
  "post-receive",
  "post-update",
  "reference-transaction",
  "push-to-checkout",
  "pre-auto-gc",
  "post-rewrite",
  "sendemail-validate",
  "fsmonitor-watchman",
  "p4-changelist",
  "p4-prepare-changelist",
  "p4-post-changelist",
  "p4-pre-submit",
  "post-index-change",
]);

/** The hooks directories git could use: the repositories' own and every core.hooksPath. */
function hookDirs(repos: readonly GitRepo[], configs: readonly ReadConfig[], env: NodeJS.ProcessEnv): Set<string> {
  const hookPaths = configs.flatMap((config) => config.entries.filter((entry) => entry.key === "core.hookspath" && entry.value).map((entry) => entry.value!));
  return new Set(repos.flatMap((repo) => [join(repo.commonDir, "hooks"), ...hookPaths.map((path) => expandHome(path, env, repo.workTree))]));
}

/** The entries of each hooks directory git could use. */
function readHooks(repos: readonly GitRepo[], configs: readonly ReadConfig[], env: NodeJS.ProcessEnv): Map<string, string> {
  const dirs = hookDirs(repos, configs, env);
  const hooks = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      // git runs a hook by its exact name; the `.sample` files `git init` copies never run.
      if (name.endsWith(".sample")) continue;
      const path = join(dir, name);
      // Every entry counts, whatever it is now: a symlink whose target is missing here (dangling,
      // or /proc/self/cwd/…, which resolves against whoever reads it) can run later where git runs.
      hooks.set(path, entryDigest(path));
    }
  }
  return hooks;
}

function programKeysOf(configs: readonly ReadConfig[]): Set<string> {
  return new Set(configs.flatMap((config) => config.entries.filter(runsProgram).map((entry) => `${config.file}\0${entry.key}\0${entry.value}`)));
}

export function snapshotRunLater(cwd: string, env: NodeJS.ProcessEnv, lifted: readonly string[]): RunLaterSnapshot {
  const repos = findGitRepos(cwd);
  const configs = readConfigs(repos, env);
  return {
    cwd,
    env,
    lifted,
    startupFiles: new Map(shellStartupPaths(env).map((path) => [path, exists(path) ? digest(path, MAX_HOOK_BYTES) : null])),
    hooks: readHooks(repos, configs, env),
    hookDirs: hookDirs(repos, configs, env),
    configs: new Map(configs.map((config) => [config.file, config.digest])),
    programKeys: programKeysOf(configs),
    gitDirs: new Map(repos.map((repo) => [repo.gitDir, identity(repo.gitDir) ?? ""])),
    redirects: new Set(repos.map((repo) => join(repo.gitDir, "commondir")).filter(exists)),
    runLaterDirs: new Map(runLaterDirectories(env, cwd).map((path) => [path, entryIdentity(path)])),
    runLaterLinks: runLaterLinks(env, cwd),
  };
}

/** What is at `path` itself, a link not followed: a directory renamed away and made again differs. */
function entryIdentity(path: string): string | null {
  try {
    const stat = lstatSync(path);
    return `${stat.dev}:${stat.ino}:${stat.mode}`;
  } catch {
    return null;
  }
}

/** A link on the way to what runs later that is no longer the link it was: what is there goes aside, the link comes back. */
function sweepRunLaterLink(path: string, text: string, lifted: readonly string[], notice: (line: string) => void): void {
  if (isLifted(path, lifted)) return;
  let now: string | null = null;
  try {
    now = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : "";
  } catch {
    // gone
  }
  if (now === text) return;
  if (now !== null) moveAside(path, "what replaced the link", notice);
  symlinkSync(text, path);
  notice(`agent-vault: the link ${displaySafe(path)} -> ${displaySafe(text)} was replaced or removed during the sandboxed run; it is put back\n`);
}

/**
 * ~/.local/bin and the like are read-only inside where they exist (src/sandbox/filesystem.ts);
 * one that appeared, or was put in the place of the one that was there, goes aside whole.
 */
function sweepRunLaterDir(snapshot: RunLaterSnapshot, path: string, notice: (line: string) => void): void {
  const before = snapshot.runLaterDirs.get(path);
  // A link there was the user's: put back as it was (sweepRunLaterLink), not judged again.
  if (before === undefined || isLifted(path, snapshot.lifted) || snapshot.runLaterLinks.has(path)) return;
  const now = entryIdentity(path);
  if (now !== null && now !== before) {
    // A link on the way (~/.local made a link to elsewhere) would have the move act on what it
    // leads to, a directory of the user's: said, not moved (red team, session 8).
    let parent: string | null = null;
    try {
      parent = realpathSync(dirname(path));
    } catch {
      // gone meanwhile
    }
    if (parent !== dirname(path)) {
      notice(
        `agent-vault: the directory ${displaySafe(path)} appeared during the sandboxed run behind a link (${displaySafe(dirname(path))} leads to ${displaySafe(parent ?? "nowhere")}); it was not moved: check it before your next shell\n`,
      );
    } else moveAside(path, "the directory", notice);
  }
  if (before !== null && now !== before) {
    notice(`agent-vault: the directory ${displaySafe(path)} that was there before the sandboxed run was renamed or removed during it: look for it (a renamed parent) before you use it\n`);
  }
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

/**
 * Renames `path` out of the way (a hook or a startup file runs by its exact name). The name is
 * predictable, so one the agent prepared is not overwritten; when no name can be had the file is
 * removed: leaving it would leave it to run.
 */
function quarantine(path: string): string {
  const base = `${path}.agent-vault-quarantine-${timestamp()}`;
  // Ten predictable names, then one nobody could have prepared.
  const names = [...Array.from({ length: 10 }, (_, i) => (i === 0 ? base : `${base}-${i}`)), `${base}-${randomBytes(6).toString("hex")}`];
  let lastError: Error | null = null;
  for (const [attempt, target] of names.entries()) {
    if (exists(target)) continue;
    try {
      renameSync(path, target);
      return target;
    } catch (error) {
      lastError = error as Error;
      // taken between the check and the rename, or its directory made read-only (the agent is the
      // same user: chmod 555): the directory is made writable for its owner once, then the next name
      if (attempt === 0) makeWritable(dirname(path));
    }
  }
  // Never removed instead (red team, session 8: what is at the path may be the user's): said.
  throw lastError ?? new Error("every name for it was taken");
}

/** The owner's write bit on `dir` (ours: the agent is the same user), so an entry can be moved out. */
function makeWritable(dir: string): void {
  try {
    // A link is not followed: chmod would act on what it leads to (a link the agent made to ~).
    const stat = lstatSync(dir);
    if (!stat.isDirectory()) return;
    chmodSync(dir, stat.mode | 0o200);
  } catch {
    // not ours, or gone: the rename or removal says so
  }
}

function moveAside(path: string, what: string, notice: (line: string) => void): void {
  let where: string;
  try {
    where = `moved to ${displaySafe(quarantine(path))}`;
  } catch (error) {
    where = `it could NOT be moved or removed (${displaySafe((error as Error).message)}) and will run: remove it yourself before using your shell or git`;
  }
  notice(`agent-vault: ${what} ${displaySafe(path)} was created or changed in the sandbox and would run later outside it: ${where}\n`);
}

/** Runs one part of the sweep; a failure is said and the rest still runs (the agent can make one fail). */
function part(what: string, notice: (line: string) => void, check: () => void): void {
  try {
    check();
  } catch (error) {
    notice(`agent-vault: checking ${what} for what runs later outside the sandbox failed (${displaySafe((error as Error).message)}): check it yourself\n`);
  }
}

function sweepStartupFile(snapshot: RunLaterSnapshot, path: string, notice: (line: string) => void): void {
  const before = snapshot.startupFiles.get(path);
  if (before === undefined || isLifted(path, snapshot.lifted)) return;
  if (before === null) {
    if (exists(path)) moveAside(path, "the shell startup file", notice);
  } else if (digest(path, MAX_HOOK_BYTES) !== before) {
    // The user's own file, changed (through a symlink's target, or under a lifted parent): it is
    // theirs to read, not ours to move.
    notice(`agent-vault: the shell startup file ${displaySafe(path)} changed during the sandboxed run: check it before your next shell\n`);
  }
}

/** After the sandbox has exited: what will run later, compared with the snapshot. */
export function sweepRunLater(snapshot: RunLaterSnapshot, notice: (line: string) => void): void {
  for (const path of snapshot.startupFiles.keys()) part(displaySafe(path), notice, () => sweepStartupFile(snapshot, path, notice));
  // Startup files whose names are only known now (a ~/.zcompdump-HOST-VERSION made during the run).
  part("the shell's startup files", notice, () => {
    for (const path of shellStartupPaths(snapshot.env)) if (!snapshot.startupFiles.has(path) && exists(path) && !isLifted(path, snapshot.lifted)) moveAside(path, "the shell startup file", notice);
  });
  // Links first: put back, what is under them is judged as the user's shell will see it.
  for (const [path, text] of snapshot.runLaterLinks) part(displaySafe(path), notice, () => sweepRunLaterLink(path, text, snapshot.lifted, notice));
  for (const path of snapshot.runLaterDirs.keys()) part(displaySafe(path), notice, () => sweepRunLaterDir(snapshot, path, notice));
  // A `commondir` that appeared sends git to the hooks and config of a directory of the agent's
  // choosing: moved aside before the rest is judged, so the rest is judged as git will read it.
  part("the git redirects", notice, () => {
    for (const repo of findGitRepos(snapshot.cwd)) {
      const redirect = join(repo.gitDir, "commondir");
      if (exists(redirect) && !snapshot.redirects.has(redirect) && !isLifted(redirect, snapshot.lifted)) moveAside(redirect, "the git redirect", notice);
    }
  });
  let repos: GitRepo[] = [];
  part("the git directories", notice, () => {
    repos = findGitRepos(snapshot.cwd);
    for (const [gitDir, before] of snapshot.gitDirs) {
      const now = identity(gitDir);
      if (now !== before && !isLifted(gitDir, snapshot.lifted)) {
        notice(
          `agent-vault: the git directory ${displaySafe(gitDir)} was ${now === null ? "removed or renamed" : "replaced"} during the sandboxed run: the one you had may be elsewhere under ${displaySafe(dirname(gitDir))}\n`,
        );
      }
    }
  });
  let configs: ReadConfig[] = [];
  part("git's config", notice, () => {
    configs = readConfigs(repos, snapshot.env);
    for (const config of configs) sweepConfig(snapshot, config, notice);
  });
  part("the git hooks", notice, () => {
    const hooks = readHooks(repos, configs, snapshot.env);
    // A repository's own: its git directory inside its worktree (a new `.git` after `mv .git
    // .git-old && git init`), not one a `.git` file points at elsewhere, which may be another
    // repository of the user's with a hook of theirs (red team, session 8).
    const own = new Set(repos.filter((repo) => isWithin(repo.commonDir, repo.workTree)).map((repo) => join(repo.commonDir, "hooks")));
    const named = new Set<string>();
    for (const [path, now] of hooks) {
      if (snapshot.hooks.get(path) === now || isLifted(path, snapshot.lifted) || !GIT_HOOK_NAMES.has(basename(path))) continue;
      // Moved only from a hooks directory that was one at the start, or a repository's own, with
      // no link on its path: a `.git/hooks` made a link to ~ (or a core.hooksPath naming any
      // directory) would have the check move the user's files (red team, session 8). Only files
      // and links: git never runs a directory.
      const dir = dirname(path);
      if (!(snapshot.hookDirs.has(dir) || own.has(dir)) || realpathOr(dir) !== dir) {
        if (!named.has(dir)) {
          named.add(dir);
          notice(
            `agent-vault: git would run hooks from ${displaySafe(dir)}, which the sandboxed run made a hooks directory (a link, or a new core.hooksPath); nothing in it was moved: check its ${displaySafe(basename(path))} and that setting before your next git\n`,
          );
        }
        continue;
      }
      const kind = entryKind(path);
      if (kind === "file" || kind === "link") moveAside(path, `the git hook ${displaySafe(basename(path))} at`, notice);
    }
    // A hook that went is said too: a user's hook swapped for a link to a file that does not exist
    // yet (one a later run could write) would otherwise go unremarked.
    for (const path of snapshot.hooks.keys()) {
      if (!hooks.has(path) && !isLifted(path, snapshot.lifted)) notice(`agent-vault: the git hook ${displaySafe(path)} was removed or renamed during the sandboxed run\n`);
    }
  });
}

/** New keys of `config` that run a program, each named with the way to remove it. */
function sweepConfig(snapshot: RunLaterSnapshot, config: ReadConfig, notice: (line: string) => void): void {
  if (isLifted(config.file, snapshot.lifted)) return;
  const isChanged = snapshot.configs.get(config.file) !== config.digest;
  if (isChanged && config.badLine !== null) {
    notice(
      `agent-vault: ${displaySafe(config.file)}:${config.badLine} changed during the sandboxed run and could not be read from that line on: check it before using git (git config --file ${displaySafe(shellQuote(config.file))} --list)\n`,
    );
  }
  const values = new Map<string, number>();
  for (const entry of config.entries) values.set(entry.key, (values.get(entry.key) ?? 0) + 1);
  for (const entry of config.entries) {
    if (!runsProgram(entry) || snapshot.programKeys.has(`${config.file}\0${entry.key}\0${entry.value}`)) continue;
    const where = `${displaySafe(config.file)}:${entry.line} sets ${displaySafe(entry.key)}, which git runs or follows, and was not there before the sandboxed run`;
    const file = shellQuote(config.file);
    const unset = (values.get(entry.key) ?? 0) > 1 && entry.value !== null ? `--fixed-value --unset ${shellQuote(entry.key)} ${shellQuote(entry.value)}` : `--unset ${shellQuote(entry.key)}`;
    // A command the terminal cannot show as it is (a tab, a control character in the value) would
    // not be the one that removes it once copied: then the line is named for editing instead.
    const command = `git config --file ${file} ${unset}`;
    notice(`agent-vault: ${where}: ${displaySafe(command) === command ? `remove it with ${command}` : `delete line ${entry.line} of that file yourself`}\n`);
  }
}
