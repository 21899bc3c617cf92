// How `run` starts the agent's command: in the Linux sandbox (src/sandbox/linux.ts) when it can,
// else as a plain child, saying so in one line. Either way `run` gets the same handle: kill a
// signal into the command, its exit code, and a close that removes what the launch made.
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, isAbsolute } from "node:path";
import { type Socket } from "node:net";
import { AgentVaultError } from "../shared/errors.ts";
import { isProcessAlive } from "../shared/liveness.ts";
import { NAMESPACE_ARGS, bwrapArgs, findBwrap, isLifted, prepareEscapeRoutes, resolveSandboxPath, shellStartupFiles } from "./linux.ts";
import { watchReplaced } from "./replaced-watch.ts";
import { closeFd, isFdPassingAvailable, socketPair } from "./fd-pass.ts";
import { type ListenerMode, type ServerTarget, takeListeners } from "./listeners.ts";
import { relayUnixToTcp, type Relay, serveUnix } from "./relay.ts";
import { ttyInjectionFilter } from "./seccomp.ts";
import { findGitRepos, gitMetadataPaths } from "./git-dir.ts";
import { snapshotRunLater, sweepRunLater } from "./run-later.ts";
import { sandboxFilesystem } from "./filesystem.ts";
import { type LayerFds, openLayerFds } from "./layer-fds.ts";
import { displaySafe } from "../shared/text.ts";

export interface SandboxRequest {
  readonly enabled: boolean;
  readonly readOnly: readonly string[];
  readonly readWrite: readonly string[];
  readonly hidden: readonly string[];
  /** Writes only to the working directory, the temporary directories and the agent's own state. */
  readonly strict?: boolean;
  /** The command line: under `strict`, its program's own state is made if missing (src/sandbox/filesystem.ts). */
  readonly command?: readonly string[];
  /** `run --quiet`: no line at start (warnings and what the exit check finds are still said). */
  readonly quiet?: boolean;
}

export interface LaunchTarget {
  /** The data directory, hidden from the command. */
  readonly dataDir: string;
  /** Files in it the command may read (the CA bundle, the Node preload). */
  readonly shared: readonly string[];
  /** Where the real proxy and agent API listen. */
  readonly host: string;
  readonly apiPort: number;
  readonly mitmPort: number;
  /** When this process serves the proxy and API itself: hand a connection straight to them. */
  readonly adopt?: { readonly proxy: (socket: Socket) => void; readonly api: (socket: Socket) => void } | undefined;
  /** When a verified server serves them: its pid, the Unix socket where it takes listeners, and how to find it again. */
  readonly server?: ServerTarget | undefined;
}

export interface AgentProcess {
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<number>;
  readonly signalCode: NodeJS.Signals | number | null;
}

export interface Launcher {
  /** The host the command's environment names for the proxy and the agent API. */
  readonly agentHost: string;
  readonly isSandboxed: boolean;
  spawn(command: readonly string[], env: Record<string, string>): AgentProcess;
  close(): Promise<void>;
  /** How the sandbox's loopback listeners are served (src/sandbox/listeners.ts). */
  listenerMode?(): ListenerMode;
}

// bwrap's outer process dies of the first INT, QUIT, TERM, HUP or USR it gets, and with it the
// sandbox (--die-with-parent): a Ctrl-C the agent wanted to handle would kill it. It ignores them
// (an ignored signal stays ignored across exec); they reach the command through our init, which
// takes handlers, and whose children start with default dispositions again.
/** The first descriptor of the child (bwrap) that carries a layer's directory (layer-fds.ts). */
const FIRST_LAYER_FD = 6;

const IGNORE_THEN_EXEC = 'trap "" INT QUIT TERM HUP USR1 USR2; exec "$0" "$@"';

function plainLauncher(target: LaunchTarget): Launcher {
  return {
    agentHost: target.host,
    isSandboxed: false,
    spawn: (command, env) => Bun.spawn([...command], { env, stdin: "inherit", stdout: "inherit", stderr: "inherit" }),
    close: async () => undefined,
  };
}

/** Why the sandbox cannot start here, or null when it can (a real bwrap run, a few milliseconds). */
function sandboxUnavailable(bwrap: string | null): string | null {
  if (process.platform !== "linux") return `no sandbox on ${process.platform} yet`;
  if (!bwrap) return "bubblewrap (bwrap) is not installed";
  const probe = Bun.spawnSync([bwrap, ...NAMESPACE_ARGS, "--ro-bind", "/", "/", "--", "/bin/sh", "-c", ":"], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  if (probe.exitCode === 0) return null;
  const why =
    probe.stderr
      .toString()
      .trim()
      .split("\n")[0]
      ?.replace(/^bwrap: /, "") || `bwrap exited ${probe.exitCode}`;
  return `namespaces are unavailable (${why.slice(0, 160)})`;
}

/** Socket directories of runs that were killed (SIGKILL leaves them): their pid is gone. */
function removeStaleRunDirectories(dataDir: string): void {
  for (const name of readdirSync(dataDir)) {
    if (!/^run-[A-Za-z0-9]{6}$/.test(name)) continue;
    const dir = join(dataDir, name);
    let pid = 0;
    try {
      pid = Number(readFileSync(join(dir, "pid"), "utf8").trim());
    } catch {
      // No pid file: a run that is making its directory right now, unless it is a minute old.
      try {
        if (Date.now() - statSync(dir).mtimeMs < 60_000) continue;
      } catch {
        continue;
      }
    }
    if (!(Number.isSafeInteger(pid) && pid > 0 && isProcessAlive(pid))) rmSync(dir, { recursive: true, force: true });
  }
}

function selfCommand(): string[] {
  // A compiled binary is its own execPath; `bun src/main.ts` needs the script too.
  const script = process.argv[1];
  return script && /\.(ts|js)$/.test(script) ? [process.execPath, script] : [process.execPath];
}

function userPaths(flag: string, paths: readonly string[], dataDir: string): string[] {
  // A path to hide that is not there hides nothing: left out (what the agent makes there is its own).
  const given = flag === "--sandbox-hide" ? paths.filter((path) => existsSync(path)) : paths;
  return given.map((path) => {
    const real = resolveSandboxPath(flag, path);
    const inside = relative(dataDir, real);
    if (inside === "" || (!inside.startsWith("..") && !isAbsolute(inside))) {
      throw new AgentVaultError("invalid_argument", `${flag} ${path}: the data directory stays hidden in the sandbox`);
    }
    return real;
  });
}

export async function prepareLauncher(request: SandboxRequest, target: LaunchTarget, notice: (line: string) => void): Promise<Launcher> {
  if (!request.enabled) return plainLauncher(target);
  const dataDir = realpathSync(target.dataDir);
  const user = {
    readOnly: userPaths("--sandbox-ro", request.readOnly, dataDir),
    readWrite: userPaths("--sandbox-rw", request.readWrite, dataDir),
    hidden: userPaths("--sandbox-hide", request.hidden, dataDir),
  };
  const bwrap = findBwrap();
  const unavailable = sandboxUnavailable(bwrap);
  if (unavailable || !bwrap) {
    notice(`agent-vault: ${unavailable}: running without the sandbox (apt-get install bubblewrap, or --no-sandbox to silence this)\n`);
    return plainLauncher(target);
  }
  // What could run later outside the sandbox, as it is before the command starts: judged again
  // when the sandbox has exited (src/sandbox/run-later.ts).
  const cwd = process.cwd();
  const runLater = snapshotRunLater(cwd, process.env, user.readWrite);
  const repos = findGitRepos(cwd);
  const gitMetadata = repos.flatMap(gitMetadataPaths);
  // The relay sockets (the fallback when the listeners cannot be handed out): a fresh 0700
  // directory of ours.
  // In the data directory, which the sandbox hides: another run's agent (same user, same /tmp)
  // could otherwise put its own listener at this run's socket and read its session token. Only
  // this run's two sockets are put back inside, at the same paths.
  removeStaleRunDirectories(dataDir);
  const socketDir = mkdtempSync(join(dataDir, "run-"));
  writeFileSync(join(socketDir, "pid"), `${process.pid}\n`, { mode: 0o600 });
  const relays: Relay[] = [];
  let listeners: ReturnType<typeof takeListeners> | null = null;
  const upstreamHost = target.host === "0.0.0.0" ? "127.0.0.1" : target.host === "::" ? "::1" : target.host;
  let filterFd: number | null = null;
  let layerFds: LayerFds | null = null;
  let stopWatching = () => undefined as void;
  const close = async () => {
    stopWatching();
    layerFds?.close();
    try {
      sweepRunLater(runLater, notice);
    } catch (error) {
      // The check must not keep the rest of the cleanup from running; it says it did not finish.
      notice(`agent-vault: the check for files that run later outside the sandbox did not finish: ${displaySafe((error as Error).message)}\n`);
    }
    await listeners?.close();
    await Promise.all(relays.map((r) => r.close().catch(() => undefined)));
    if (filterFd !== null) closeSync(filterFd);
    rmSync(socketDir, { recursive: true, force: true });
  };
  try {
    if (target.adopt) {
      relays.push(await serveUnix(join(socketDir, "proxy.sock"), target.adopt.proxy));
      relays.push(await serveUnix(join(socketDir, "api.sock"), target.adopt.api));
    } else {
      relays.push(await relayUnixToTcp(join(socketDir, "proxy.sock"), upstreamHost, target.mitmPort));
      relays.push(await relayUnixToTcp(join(socketDir, "api.sock"), upstreamHost, target.apiPort));
    }
  } catch (error) {
    await close();
    throw error;
  }
  // The terminal-injection filter (src/sandbox/seccomp.ts), read by bwrap from an fd.
  const filter = ttyInjectionFilter();
  if (filter) {
    const filterFile = join(socketDir, "seccomp.bpf");
    writeFileSync(filterFile, filter, { mode: 0o600 });
    filterFd = openSync(filterFile, "r");
  }
  const shared = [...target.shared.map((file) => join(dataDir, basename(file))), join(socketDir, "proxy.sock"), join(socketDir, "api.sock")];
  prepareEscapeRoutes(process.env, process.getuid?.() ?? 0);
  const filesystem = sandboxFilesystem(process.env, cwd, request.command ?? [], {
    strict: request.strict === true,
    gitDirs: repos.slice(0, 1).flatMap((repo) => [...new Set([repo.gitDir, repo.commonDir])]),
  });
  // Descriptors 3–5 are bwrap's info pipe, the seccomp filter and the listeners' socket.
  layerFds = openLayerFds(filesystem.layers, FIRST_LAYER_FD);
  const args = bwrapArgs({ dataDir, shared, user, gitMetadata, filesystem, layerFd: layerFds.childFd }, process.env, process.getuid?.() ?? 0);
  if (filesystem.isClaudeConfigLost) {
    notice(
      `agent-vault: --sandbox-strict: claude saves ~/.claude.json through a file it renames in your home, which is read-only here, so its settings (trusted folders, your answer about the API key) are not kept; give it a directory of its own: CLAUDE_CONFIG_DIR=~/.claude-sandboxed agent-vault run --sandbox-strict -- claude\n`,
    );
  }
  if (filesystem.isStrictHomeWritable) {
    notice(
      `agent-vault: --sandbox-strict: the working directory ${displaySafe(cwd)} is your home or a directory of your dotfiles, so the agent can write there after all (your shell's existing startup files, git's hooks and config, ~/.local/bin and the other directories that run later stay read-only); start it in a project directory\n`,
    );
  }
  // Without a terminal there is no job control to keep: a session of its own, so the agent cannot
  // signal run's process group (kill 0) from inside.
  if (!process.stdin.isTTY) args.unshift("--new-session");
  if (!request.quiet)
    notice(`agent-vault: sandboxed: the command's only network is the proxy (HTTPS_PROXY) and AGENT_VAULT_ADDR; a client that ignores HTTPS_PROXY cannot connect (--no-sandbox to run without)\n`);
  return {
    agentHost: "127.0.0.1",
    isSandboxed: true,
    close,
    listenerMode: () => listeners?.mode() ?? "none",
    spawn: (command, env) => {
      // The listening sockets come back from sandbox-init on fd 5 (src/sandbox/listeners.ts);
      // the Unix-socket relays stay ready in case they cannot.
      const pair = isFdPassingAvailable() ? trySocketPair() : null;
      const init = [
        ...selfCommand(),
        "sandbox-init",
        "--relay",
        `127.0.0.1:${target.mitmPort}=${join(socketDir, "proxy.sock")}`,
        "--relay",
        `127.0.0.1:${target.apiPort}=${join(socketDir, "api.sock")}`,
        ...(pair ? ["--listeners-fd", "5"] : []),
        "--",
        ...command,
      ];
      const seccomp = filterFd === null ? [] : ["--seccomp", "4"];
      let outer: Bun.Subprocess;
      try {
        outer = Bun.spawn(["/bin/sh", "-c", IGNORE_THEN_EXEC, bwrap, ...args, ...seccomp, "--info-fd", "3", "--", ...init], {
          env,
          stdio: ["inherit", "inherit", "inherit", "pipe", filterFd ?? "ignore", pair?.[1] ?? "ignore", ...(layerFds?.fds ?? [])],
        });
      } catch (error) {
        if (pair) pair.forEach(closeFd);
        throw error;
      }
      if (pair) {
        closeFd(pair[1]);
        listeners = takeListeners(pair[0], { host: upstreamHost, apiPort: target.apiPort, mitmPort: target.mitmPort, adopt: target.adopt, server: target.server });
      }
      stopWatching = watchReplaced(
        [
          ...filesystem.credentials.map((path) => ({ path, kind: "hidden" as const })),
          ...[...shellStartupFiles(process.env), ...gitMetadata].filter((path) => !isLifted(path, user.readWrite)).map((path) => ({ path, kind: "read-only" as const })),
        ],
        notice,
      );
      return sandboxedProcess(outer);
    },
  };
}

function trySocketPair(): [number, number] | null {
  try {
    return socketPair();
  } catch {
    return null;
  }
}

/**
 * bwrap writes one JSON object on its info fd. Our init inherits that fd, so no EOF comes until the
 * sandbox ends: the object is parsed as soon as it is whole, and the pipe is read to its end (bwrap
 * would die of SIGPIPE writing into a closed one).
 */
async function readInnerPid(fd: number): Promise<number | null> {
  const reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const decoder = new TextDecoder();
  let text = "";
  let pid: number | null = null;
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
    if (done) return pid;
    if (pid !== null) continue;
    text += decoder.decode(value, { stream: true });
    try {
      const parsed = Number((JSON.parse(text) as { "child-pid"?: unknown })["child-pid"]);
      pid = Number.isSafeInteger(parsed) && parsed > 1 ? parsed : null;
      if (pid !== null) void drain(reader);
      if (pid !== null) return pid;
    } catch {
      // not whole yet
    }
  }
}

function firstChildOf(pid: number): number | null {
  try {
    const first = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)[0]);
    return Number.isSafeInteger(first) && first > 1 ? first : null;
  } catch {
    return null;
  }
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  for (;;) {
    const { done } = await reader.read().catch(() => ({ done: true }));
    if (done) return;
  }
}

/**
 * Signals go to our init inside (its pid outside the namespace comes on bwrap's --info-fd), which
 * passes them to the command; the exit code is bwrap's, which is the init's, which is the command's.
 */
function sandboxedProcess(outer: Bun.Subprocess): AgentProcess {
  let innerPid: number | null = null;
  const pending: NodeJS.Signals[] = [];
  let isDone = false;
  const deliver = (signal: NodeJS.Signals, attempt = 0) => {
    if (isDone || innerPid === null) return;
    // bwrap's "child-pid" is its own init (pid 1 inside, which reaps orphans); ours is its child.
    const init = firstChildOf(innerPid);
    if (init === null) {
      // Our init is not forked yet (a signal right after start, on a busy machine): try again
      // shortly rather than lose the signal.
      if (attempt < 40) setTimeout(() => deliver(signal, attempt + 1), 50);
      return;
    }
    try {
      process.kill(init, signal);
    } catch {
      // already gone
    }
  };
  // bwrap writes one JSON object on the info fd; our init inherits the fd, so no EOF comes until
  // the sandbox ends: the object is parsed as soon as it is whole.
  const infoFd = outer.stdio[3];
  if (typeof infoFd === "number")
    void readInnerPid(infoFd).then((pid) => {
      innerPid = pid;
      for (const signal of pending.splice(0)) deliver(signal);
    });
  const exited = outer.exited.then((code) => {
    isDone = true;
    return code;
  });
  return {
    kill: (signal) => {
      // The info fd may not have been read yet: bwrap's init is also bwrap's first child.
      if (innerPid === null && outer.pid) innerPid = firstChildOf(outer.pid);
      if (innerPid === null) pending.push(signal);
      else deliver(signal);
    },
    exited,
    get signalCode() {
      return outer.signalCode;
    },
  };
}
