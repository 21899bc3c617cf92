// What the agent may write and read inside the sandbox, before the user's --sandbox-* flags.
//
// By default the filesystem stays writable as it is (agents need their repos, configs and scratch
// space), but for what runs later as the user outside the sandbox: the directories of the home
// whose contents run (~/.local/bin on PATH, systemd's and autostart's units, ~/.ssh for ssh's
// ProxyCommand) are read-only where they exist, and one made during the run is moved aside when it
// ends (src/sandbox/run-later.ts). With --sandbox-strict writes go only where an agent works: its
// working directory, the temporary directories, its own state (~/.codex, ~/.claude, …) and a
// cache of the sandbox's own; the rest of the home and the machine is read-only.
//
// Either way the user's own credentials for other tools (~/.aws, ~/.ssh, gh's token, …) are
// hidden: an agent that can read them holds a key, which running it under agent-vault is meant
// to prevent, and inside the sandbox its only network is the proxy, which brings the vault's keys.
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, normalize, relative } from "node:path";

export interface Layer {
  readonly path: string;
  readonly mode: "ro" | "rw";
  /** Mounted here instead of `path` itself (the sandbox's own cache over ~/.cache). */
  readonly source?: string;
}

export interface SandboxFilesystem {
  /** How `/` is bound before the layers: writable (the default) or read-only (--sandbox-strict). */
  readonly base: "ro" | "rw";
  /** Bound in order of depth over `/`: the deeper path wins. */
  readonly layers: readonly Layer[];
  /** Hidden unless the user names them (or something inside them) with a --sandbox-* flag. */
  readonly credentials: readonly string[];
  /**
   * The directories above a hidden credential (up to the home), to be bound onto themselves where
   * their parent is writable inside (src/sandbox/linux.ts): a mount point cannot be renamed, so
   * `mv ~/.docker ~/.dockerx` (the hiding mount would move with it, and the next run would read
   * ~/.dockerx/config.json) fails (red team, session 8).
   */
  readonly pins: readonly string[];
  /**
   * Paths inside a hidden credential directory shown read-only all the same: public keys
   * (~/.ssh/*.pub), which `git commit` reads to sign with ssh (the private key stays hidden, and
   * ssh-agent signs).
   */
  readonly shown: readonly string[];
  /** --sandbox-strict started in the home itself or in a dot-directory of it: that is writable after all. */
  readonly isStrictHomeWritable: boolean;
  /** --sandbox-strict running claude without CLAUDE_CONFIG_DIR: it cannot save ~/.claude.json. */
  readonly isClaudeConfigLost: boolean;
}

/** Where an agent keeps its own state, by the name it is started with. */
interface AgentState {
  readonly commands: readonly string[];
  readonly dirs: (env: NodeJS.ProcessEnv, home: string) => readonly string[];
}

const AGENTS: readonly AgentState[] = [
  { commands: ["codex"], dirs: (env, home) => [absolute(env.CODEX_HOME) ?? join(home, ".codex")] },
  // Claude Code keeps ~/.claude.json beside ~/.claude and saves it through a lock directory and a
  // temporary file renamed over it, both in the home: under a read-only home it cannot, whatever
  // is bound (checked with the real binary), so `run` says to give it CLAUDE_CONFIG_DIR instead.
  { commands: ["claude"], dirs: (env, home) => [absolute(env.CLAUDE_CONFIG_DIR) ?? join(home, ".claude")] },
  { commands: ["cursor-agent", "cursor"], dirs: (_env, home) => [join(home, ".cursor")] },
  { commands: ["gemini"], dirs: (_env, home) => [join(home, ".gemini")] },
  { commands: ["opencode"], dirs: (_env, home) => [join(home, ".local", "share", "opencode")] },
  { commands: ["aider"], dirs: (_env, home) => [join(home, ".aider")] },
];

/**
 * The user's own credentials for other tools, relative to the home. Inside the sandbox the agent
 * reaches the network only through the proxy, which brings the vault's keys; these would be keys
 * in its hands (and ssh cannot connect from inside anyway).
 */
export const CREDENTIAL_PATHS: readonly string[] = [
  ".ssh",
  ".aws",
  ".azure",
  ".config/gcloud",
  ".kube",
  ".docker/config.json",
  ".netrc",
  ".git-credentials",
  ".config/gh",
  ".config/hub",
  ".config/glab-cli",
  ".npmrc",
  ".pypirc",
  ".cargo/credentials",
  ".cargo/credentials.toml",
  ".gem/credentials",
  ".vault-token",
  ".terraform.d/credentials.tfrc.json",
  ".pgpass",
  ".my.cnf",
  ".s3cfg",
  ".boto",
  ".config/rclone",
  ".m2/settings.xml",
  ".gradle/gradle.properties",
  ".cache/huggingface/token",
  ".config/git/credentials",
];

/** Where tools take their credential files from the environment instead (a list: KUBECONFIG). */
const CREDENTIAL_VARIABLES: readonly { readonly name: string; readonly file?: string }[] = [
  { name: "AWS_SHARED_CREDENTIALS_FILE" },
  { name: "AWS_CONFIG_FILE" },
  { name: "GOOGLE_APPLICATION_CREDENTIALS" },
  { name: "CLOUDSDK_CONFIG" },
  { name: "AZURE_CONFIG_DIR" },
  { name: "KUBECONFIG" },
  { name: "DOCKER_CONFIG" },
  { name: "GH_CONFIG_DIR" },
  { name: "HF_HOME", file: "token" },
  { name: "HF_TOKEN_PATH" },
];

/**
 * Directories in the home whose contents run later: on PATH, started at login (systemd units, its
 * environment, autostart), sourced by shells (fish's conf.d, bash completions), read by ssh,
 * Python's user site (a `.pth` file there runs at every `python3`), and desktop entries (the
 * command a link or a file type opens; claude writes one for its URL handler).
 */
const RUN_LATER_IN_HOME: readonly string[] = [
  ".local/bin",
  "bin",
  ".ssh",
  ".local/lib",
  ".local/share/systemd",
  ".local/share/bash-completion",
  ".local/share/applications",
  ".local/share/dbus-1/services",
  ".local/share/gnome-shell/extensions",
  ".bashrc.d",
  ".zfunc",
];
const RUN_LATER_IN_CONFIG: readonly string[] = ["systemd", "autostart", "environment.d", "fish/conf.d", "fish/functions", "fish/completions", "plasma-workspace/env"];

/**
 * Version managers' and tool installers' trees, read-only where they exist (not moved aside when
 * new: a first `cargo build` makes ~/.cargo): what shells source from them (~/.cargo/env,
 * ~/.nvm/nvm.sh, oh-my-zsh's custom scripts) and what their links on PATH lead to (pipx's and
 * uv's venvs, nvm's global packages). Their caches stay writable by default.
 */
const TOOL_ROOTS: readonly string[] = [
  ".cargo",
  ".rustup",
  ".nvm",
  ".volta",
  ".pyenv",
  ".rbenv",
  ".rvm",
  ".nodenv",
  ".goenv",
  ".jenv",
  ".sdkman",
  ".asdf",
  ".bun",
  ".deno",
  "miniconda3",
  "anaconda3",
  "miniforge3",
  ".oh-my-zsh",
  ".oh-my-bash",
  ".bash_it",
  ".zprezto",
  ".antigen",
  ".local/share/zinit",
  ".local/share/pipx",
  ".local/share/uv/tools",
  ".local/share/fnm",
  ".local/share/mise",
  ".local/share/pnpm",
];
const TOOL_CACHES: readonly string[] = [".cargo/registry", ".cargo/git", ".bun/install/cache", ".nvm/.cache"];

/**
 * The directories of the home whose contents run later (src/sandbox/run-later.ts checks new ones),
 * every directory of $PATH in the home among them (~/.cargo/bin, ~/go/bin, nvm's), but for those
 * in the working directory, which are the project's.
 */
export function runLaterDirectories(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const home = realHome(env);
  if (!home) return [];
  const configs = [...new Set([join(home, ".config"), absolute(env.XDG_CONFIG_HOME) ?? join(home, ".config")])];
  return [
    ...new Set([
      ...RUN_LATER_IN_HOME.map((relative) => join(home, relative)),
      ...configs.flatMap((config) => RUN_LATER_IN_CONFIG.map((name) => join(config, name))),
      ...pathDirectoriesInHome(env, home, cwd),
    ]),
  ];
}

/** Everything in the home that runs later: the run-later directories, the tool trees, the startup files. */
function runLaterPaths(env: NodeJS.ProcessEnv, home: string, cwd: string): string[] {
  return [...runLaterDirectories(env, cwd), ...TOOL_ROOTS.map((relative) => join(home, relative)), ...shellStartupPaths(env)];
}

/**
 * The links in the home on the way to what runs later (a tool tree moved to another disk,
 * `~/.cargo -> /data/cargo`; dotfiles kept elsewhere, `~/.config -> ~/dotfiles/config`): the
 * read-only bind is on the target, but the link itself sits in the writable home, and an agent
 * that replaces it brings in a tree of its own (red team, session 8, fifth round). Their text is
 * recorded so the exit check can put them back (src/sandbox/run-later.ts).
 */
export function runLaterLinks(env: NodeJS.ProcessEnv, cwd: string): Map<string, string> {
  const home = realHome(env);
  const links = new Map<string, string>();
  if (!home) return links;
  for (const path of runLaterPaths(env, home, cwd)) {
    for (let at = path; at !== home && at !== "/" && isWithin(at, home); at = dirname(at)) {
      if (links.has(at)) continue;
      try {
        if (lstatSync(at).isSymbolicLink()) links.set(at, readlinkSync(at));
      } catch {
        // not there
      }
    }
  }
  return links;
}

/**
 * The directories of $PATH outside the home that this user owns (Linuxbrew's, a /usr/local/bin
 * chowned for npm, a single-user Nix profile): a program planted there runs at the user's next
 * command just the same (red team, session 8). Not those of the project.
 */
export function ownedPathDirectories(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return [];
  const out: string[] = [];
  for (const dir of pathEntries(env, null)) {
    if (isWithin(dir, cwd)) continue;
    try {
      const stat = statSync(dir);
      if (stat.isDirectory() && stat.uid === uid) out.push(realpathOr(dir));
    } catch {
      // not there
    }
  }
  return out;
}

/** $PATH's absolute entries, trailing slashes dropped, a leading `~/` expanded when `home` is given. */
function pathEntries(env: NodeJS.ProcessEnv, home: string | null): string[] {
  const out: string[] = [];
  for (const entry of (env.PATH ?? "").split(":")) {
    const dir = home && entry.startsWith("~/") ? join(home, entry.slice(2)) : entry;
    if (dir.startsWith("/")) out.push(normalize(dir).replace(/(.)\/+$/, "$1"));
  }
  return out;
}

/**
 * The directories of $PATH in the home, as a shell reads them: a leading `~` expanded (bash does,
 * even quoted), trailing slashes dropped, the home as written or resolved. Those in the working
 * directory are the project's (node_modules/.bin), unless the working directory is the home or
 * above it (red team, session 8: started in ~, ~/.cargo/bin was writable).
 */
function pathDirectoriesInHome(env: NodeJS.ProcessEnv, home: string, cwd: string): string[] {
  const homes = [...new Set([home, absolute(env.HOME)?.replace(/\/+$/, "") ?? home])];
  const projectOwns = cwd !== home && isWithin(cwd, home);
  const out: string[] = [];
  for (const dir of pathEntries(env, home)) {
    const asWritten = homes.find((h) => isWithin(dir, h) && dir !== h);
    if (!asWritten) continue;
    const inHome = join(home, relative(asWritten, dir));
    if (projectOwns && isWithin(inHome, cwd)) continue;
    out.push(inHome);
  }
  return out;
}

/** Package managers' caches, seen inside as the sandbox's own (a cache holds code that runs later). */
function cacheTargets(env: NodeJS.ProcessEnv, home: string): { name: string; path: string }[] {
  return [
    { name: "cache", path: absolute(env.XDG_CACHE_HOME) ?? join(home, ".cache") },
    { name: "npm", path: join(home, ".npm") },
  ];
}

function absolute(path: string | undefined): string | null {
  return path?.startsWith("/") ? path : null;
}

/** $HOME with its links resolved (bwrap mounts onto the real path), or null when there is none. */
function realHome(env: NodeJS.ProcessEnv): string | null {
  const home = absolute(env.HOME);
  if (!home) return null;
  try {
    const real = realpathSync(home);
    return statSync(real).isDirectory() ? real : null;
  } catch {
    return null;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A directory reached without a link anywhere on its path: what a writable bind's source (and the
 * cache's place) may be. An earlier agent (same user, the home writable by default) could leave
 * ~/.codex, $TMPDIR, the sandbox's cache or a parent of any as a link to ~/.local/bin, and the
 * next strict run would bind that writable (red team, session 8).
 */
function isUnlinkedDirectory(path: string): boolean {
  try {
    return realpathSync(path) === path && lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Inside or equal: `path` is `dir` or under it. */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

/** The program a command line starts, seen through `npx`, `bunx`, `node` and `env`. */
export function programName(command: readonly string[]): string {
  const launchers = new Set(["npx", "bunx", "pnpx", "node", "bun", "env", "exec"]);
  for (const arg of command) {
    const name = basename(arg);
    if (launchers.has(name) || arg.startsWith("-") || /^[A-Za-z_][A-Za-z0-9_]*=/.test(arg)) continue;
    return name.replace(/\.(js|mjs|cjs)$/, "");
  }
  return "";
}

/** The directory the sandbox keeps as its cache, made if missing (0700). */
function sandboxCacheStore(env: NodeJS.ProcessEnv, home: string, name: string): string | null {
  const root = join(absolute(env.XDG_CACHE_HOME) ?? join(home, ".cache"), "agent-vault-sandbox");
  const dir = join(root, name);
  if (!isUnlinkedDirectory(dirname(root))) return null;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return null;
  }
  // Links are not followed into (see isUnlinkedDirectory): the cache is ours only if it is where it says.
  return isUnlinkedDirectory(dir) ? dir : null;
}

/**
 * The layout for a command started in `cwd`. Under --sandbox-strict, makes what the command's own
 * state needs and what the sandbox's cache is kept in, when missing: a bind needs something to bind.
 */
export function sandboxFilesystem(env: NodeJS.ProcessEnv, cwd: string, command: readonly string[], options: { strict: boolean; gitDirs?: readonly string[] }): SandboxFilesystem {
  const home = realHome(env);
  const layers: Layer[] = options.strict ? strictLayers(env, home, cwd, command) : [];
  if (home) {
    for (const path of TOOL_ROOTS.map((relative) => join(home, relative))) if (isDirectory(path) && !isWithin(cwd, path)) layers.push({ path: realpathOr(path), mode: "ro" });
    // Their caches stay writable where the home is (a first `cargo build` fetches into
    // ~/.cargo/registry), made when the tree exists but they do not yet.
    for (const cache of options.strict ? [] : TOOL_CACHES) {
      const path = join(home, cache);
      if (isUnlinkedDirectory(join(home, cache.split("/")[0]!))) ensurePrivateDirectory(path);
      if (isUnlinkedDirectory(path)) layers.push({ path, mode: "rw" });
    }
    // git's credential cache puts its socket here when the user's next `git push` starts it: made
    // now (0700, empty) so that it is hidden from the start, not only if it already existed.
    if (!options.strict) ensurePrivateDirectory(gitCredentialCaches(env, home)[0]);
    // The directory git prefers when it exists: made by an agent, the user's next daemon would
    // listen there, unhidden (red team, session 8); made and hidden now, it never is. (Under
    // strict the home is read-only: nothing can be made there.)
    if (!options.strict) ensurePrivateDirectory(gitCredentialCaches(env, home)[1]);
  }
  // Started in a subdirectory of a repository, the agent still commits: the repository's git
  // directory is writable too (its hooks and config stay read-only, src/sandbox/linux.ts).
  if (options.strict) for (const dir of options.gitDirs ?? []) if (!isWithin(dir, cwd) && isUnlinkedDirectory(dir)) layers.push({ path: dir, mode: "rw" });
  // What in the home runs later stays read-only where it exists, in either mode: strict started in
  // ~/.local or ~/.config would otherwise have them writable (red team, session 8).
  for (const path of runLaterDirectories(env, cwd)) if (isDirectory(path) && !isWithin(cwd, path)) layers.push({ path: realpathOr(path), mode: "ro" });
  for (const path of ownedPathDirectories(env, cwd)) if (!home || !isWithin(path, home)) layers.push({ path, mode: "ro" });
  const credentials = home ? credentialPaths(env, home).filter((path) => !isWithin(cwd, path)) : [];
  // The credential cache's directory too: renamed away, its socket would still answer the next run.
  // And what runs later: swapped for a link, ~/.local would carry its read-only bin away and bring
  // in a bin of the agent's (red team, session 8, fourth round).
  const runLater = home ? runLaterPaths(env, home, cwd) : [];
  const pinned = home ? [...credentials, ...gitCredentialCaches(env, home), ...runLater].filter((path) => existsSync(path)) : [];
  // Which of them need it is decided with the mounts in hand (src/sandbox/linux.ts).
  const pins = home ? [...new Set(pinned.flatMap((path) => ancestorsBelow(path, home)))].filter((dir) => isUnlinkedDirectory(dir)) : [];
  const inDotfiles = home !== null && (cwd === home || (isWithin(cwd, home) && relative(home, cwd).startsWith(".")));
  return {
    base: options.strict ? "ro" : "rw",
    layers: sortByDepth(layers),
    credentials,
    pins: pins.sort((a, b) => depth(a) - depth(b)),
    shown: home ? publicKeys(join(home, ".ssh")) : [],
    isStrictHomeWritable: options.strict && inDotfiles,
    isClaudeConfigLost: options.strict && !inDotfiles && programName(command) === "claude" && absolute(env.CLAUDE_CONFIG_DIR) === null,
  };
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The credential files that exist: the list under the home, under $XDG_CONFIG_HOME and
 * $XDG_CACHE_HOME for its .config and .cache entries, those the environment names, and where a
 * link among them leads (a stow-style ~/.ssh -> ~/dotfiles/ssh).
 */
function credentialPaths(env: NodeJS.ProcessEnv, home: string): string[] {
  const config = absolute(env.XDG_CONFIG_HOME);
  const cache = absolute(env.XDG_CACHE_HOME);
  const candidates = CREDENTIAL_PATHS.flatMap((relative) => [
    join(home, relative),
    ...(config && relative.startsWith(".config/") ? [join(config, relative.slice(".config/".length))] : []),
    ...(cache && relative.startsWith(".cache/") ? [join(cache, relative.slice(".cache/".length))] : []),
  ]);
  for (const variable of CREDENTIAL_VARIABLES) {
    for (const value of (env[variable.name] ?? "").split(":")) {
      const path = absolute(value);
      if (path) candidates.push(variable.file ? join(path, variable.file) : path);
    }
  }
  const out = new Set<string>();
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    out.add(path);
    out.add(realpathOr(path));
  }
  return [...out];
}

function publicKeys(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith(".pub"))
      .map((name) => join(dir, name))
      .filter((path) => lstatSync(path).isFile());
  } catch {
    return [];
  }
}

/** The directories above `path`, up to the home (not it) or, outside the home, up to `/` (not it). */
function ancestorsBelow(path: string, home: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(path); dir !== home && dir !== "/" && !isWithin(home, dir); dir = dirname(dir)) out.push(dir);
  return out;
}

/**
 * Where git's credential cache keeps its socket: under the XDG cache (git 2.13 and later), or in
 * ~/.git-credential-cache, which git prefers when it exists. Hidden as an escape route
 * (src/sandbox/linux.ts), made and pinned here.
 */
export function gitCredentialCaches(env: NodeJS.ProcessEnv, home: string): [xdg: string, legacy: string] {
  return [join(absolute(env.XDG_CACHE_HOME) ?? join(home, ".cache"), "git", "credential"), join(home, ".git-credential-cache")];
}

function ensurePrivateDirectory(path: string): void {
  if (existsSync(path)) return;
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch {
    // not made: hidden only if git makes it before the run starts
  }
}

/** --sandbox-strict: the temporary directories, the home read-only, the agent's state, the caches, the working directory. */
function strictLayers(env: NodeJS.ProcessEnv, home: string | null, cwd: string, command: readonly string[]): Layer[] {
  const layers: Layer[] = [];
  for (const dir of new Set(["/tmp", "/var/tmp", absolute(env.TMPDIR) ?? "/tmp"])) if (isUnlinkedDirectory(dir)) layers.push({ path: dir, mode: "rw" });
  if (home) {
    // Read-only even where it lies under a writable directory (a home in /tmp).
    layers.push({ path: home, mode: "ro" });
    const program = programName(command);
    // Only the command's own: a shell writing ~/.claude/settings.json (its hooks run in the user's
    // next claude) would be an agent planting into another (red team, session 8).
    for (const agent of AGENTS) {
      const isTheCommand = agent.commands.includes(program);
      if (!isTheCommand) continue;
      for (const dir of agent.dirs(env, home)) {
        if (isTheCommand && !existsSync(dir)) {
          try {
            mkdirSync(dir, { recursive: true, mode: 0o700 });
          } catch {
            // it then starts without saved state
          }
        }
        if (isUnlinkedDirectory(dir)) layers.push({ path: dir, mode: "rw" });
      }
    }
    for (const target of cacheTargets(env, home)) {
      if (!existsSync(target.path)) {
        try {
          mkdirSync(target.path, { recursive: true, mode: 0o700 });
        } catch {
          continue;
        }
      }
      const source = isUnlinkedDirectory(target.path) ? sandboxCacheStore(env, home, target.name) : null;
      if (source) layers.push({ path: target.path, mode: "rw", source });
    }
  }
  // The working directory last among equals: started in the home, the agent writes the home (a
  // directory above the home is bound first, then the home read-only over it).
  layers.push({ path: cwd, mode: "rw" });
  return layers;
}

export function depth(path: string): number {
  return path.split("/").filter(Boolean).length;
}

/** Shallowest first; a stable sort keeps later entries of equal depth later (they win). */
function sortByDepth(layers: readonly Layer[]): Layer[] {
  return [...layers].sort((a, b) => depth(a.path) - depth(b.path));
}

/**
 * The shell's startup files in the user's home: whatever the agent wrote there would run in the
 * user's next shell, outside the sandbox (an `export AGENT_VAULT_CONNECT_TO=...` sending the next
 * session's key elsewhere). Every name bash, zsh and fish read, whether it exists or not: one
 * created during the run is moved aside when it ends (src/sandbox/run-later.ts).
 */
export function shellStartupPaths(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME;
  if (!home?.startsWith("/")) return [];
  // zsh reads its files from $ZDOTDIR when set; a later shell may not have it set, so both.
  const zshDirs = [...new Set([home, env.ZDOTDIR?.startsWith("/") ? env.ZDOTDIR : home])];
  const config = env.XDG_CONFIG_HOME?.startsWith("/") ? env.XDG_CONFIG_HOME : join(home, ".config");
  return [
    // ~/.bash_aliases and ~/.bash_completion: Debian's ~/.bashrc and bash-completion source them
    // when they exist; readline reads ~/.inputrc (a key bound to a command line); X sessions
    // source ~/.xsessionrc and ~/.xprofile (~/.xsession and ~/.xinitrc are run); powerlevel10k's
    // ~/.p10k.zsh is sourced by the ~/.zshrc it writes. Not shells', but read by the next npm or
    // yarn anywhere: ~/.npmrc's script-shell and ~/.yarnrc.yml's yarnPath name a program
    // (README black-box round, session 8); ~/.pam_environment sets the next login's variables.
    ...[
      ".bashrc",
      ".bash_profile",
      ".bash_login",
      ".bash_logout",
      ".profile",
      ".bash_aliases",
      ".bash_completion",
      ".inputrc",
      ".xsessionrc",
      ".xprofile",
      ".xsession",
      ".xinitrc",
      ".p10k.zsh",
      ".npmrc",
      ".yarnrc",
      ".yarnrc.yml",
      ".pam_environment",
    ].map((name) => join(home, name)),
    // zsh runs FILE.zwc (compiled) instead of FILE when it is newer or FILE is missing, and
    // compinit sources its dump (~/.zcompdump, oh-my-zsh's ~/.zcompdump-HOST-VERSION).
    ...zshDirs.flatMap((dir) => [".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout"].flatMap((name) => [join(dir, name), join(dir, `${name}.zwc`)])),
    ...zshDirs.flatMap((dir) => [".zcompdump", ...entriesStartingWith(dir, ".zcompdump")].map((name) => join(dir, name))),
    join(config, "fish", "config.fish"),
  ].filter((path, i, all) => all.indexOf(path) === i);
}

function entriesStartingWith(dir: string, prefix: string): string[] {
  try {
    return readdirSync(dir).filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
}
