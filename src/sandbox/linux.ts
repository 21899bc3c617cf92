// The Linux sandbox: bubblewrap (bwrap) puts the agent in new user, PID, mount, IPC, UTS, cgroup
// and network namespaces. We use bwrap rather than `unshare` because the mounts that hide the data
// directory must be ones the agent cannot undo: under `unshare -r` the agent is root of the
// namespace that made them and can simply unmount them. bwrap builds the tree, then drops every
// capability, sets no_new_privs, and with --disable-userns keeps the agent from making a user
// namespace of its own; mounts made before that are locked. It also mounts a /proc of the new PID
// namespace (no process of ours or of the user is visible), brings up loopback in the empty
// network namespace, and --die-with-parent ends the sandbox if `run` dies, SIGKILL included.
import { mkdirSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { AgentVaultError } from "../shared/errors.ts";
import { depth, gitCredentialCaches, isWithin, type Layer, type SandboxFilesystem, shellStartupPaths } from "./filesystem.ts";

export interface SandboxPaths {
  readonly readOnly: readonly string[];
  readonly readWrite: readonly string[];
  readonly hidden: readonly string[];
}

export interface BwrapPlan {
  /** Hidden whatever the user asks for: the data directory. */
  readonly dataDir: string;
  /** Files of the data directory the agent needs, bound read-only at their own paths. */
  readonly shared: readonly string[];
  readonly user: SandboxPaths;
  /** The working directory's git hooks and config, and what redirects git to others (src/sandbox/git-dir.ts). */
  readonly gitMetadata: readonly string[];
  /** What is writable and hidden before the user's flags (src/sandbox/filesystem.ts). */
  readonly filesystem: SandboxFilesystem;
  /** The child's descriptor a layer is bound from; null: leave it out; undefined: bind by path. */
  readonly layerFd?: (layer: Layer) => number | null | undefined;
}

const BWRAP_CANDIDATES = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"];

export function findBwrap(): string | null {
  // Never from PATH: the agent can write a directory on it (~/.local/bin) and plant a `bwrap` that
  // runs the command unsandboxed while `run` says "sandboxed". Only a root-owned binary in a
  // system directory, writable by no one else, is trusted.
  for (const candidate of BWRAP_CANDIDATES) {
    try {
      const stat = statSync(candidate);
      if (stat.isFile() && stat.uid === 0 && (stat.mode & 0o022) === 0) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

/** The namespaces and the privilege drop, without any mounts: shared by the probe and the real run. */
export const NAMESPACE_ARGS = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"];

/**
 * Sockets through which a sandboxed process could have something outside run a command for it:
 * tmux and screen servers, the systemd user manager and the session bus (`systemd-run --user`),
 * X11 (typing into another window), the system bus and systemd-resolved (name lookups). Hidden unless `--sandbox-rw`/`--sandbox-ro` names them again.
 * Abstract Unix sockets need no entry: they belong to the network namespace.
 */
export function escapeRoutes(env: NodeJS.ProcessEnv, uid: number): string[] {
  const runtime = env.XDG_RUNTIME_DIR || `/run/user/${uid}`;
  const tmuxBase = env.TMUX_TMPDIR || "/tmp";
  // The system bus and systemd-resolved's sockets too: a name lookup through them is a way out
  // around the proxy (DNS exfiltration).
  // git's credential cache answers `git credential-cache get` with the user's token (red team,
  // session 8): both places it keeps its socket.
  const gitCredentialCache = env.HOME?.startsWith("/") ? gitCredentialCaches(env, env.HOME) : [];
  return [
    join(tmuxBase, `tmux-${uid}`),
    join(runtime, "bus"),
    join(runtime, "systemd"),
    // The accessibility bus (its registry can type into the focused window, as X11 can) and
    // rootless podman's and docker's sockets (a container that mounts the home is a way out).
    join(runtime, "at-spi"),
    join(runtime, "podman"),
    join(runtime, "docker.sock"),
    ...(env.SCREENDIR?.startsWith("/") ? [env.SCREENDIR] : []),
    `/run/screen/S-${env.USER ?? ""}`,
    "/tmp/.X11-unix",
    "/run/dbus",
    "/run/systemd/resolve",
    ...gitCredentialCache,
  ];
}

/**
 * tmux makes its socket directory when the user first starts it: one started during the run would
 * be there, unhidden, and `tmux new-window` from inside runs as the user outside (red team,
 * session 8). Made now (0700, empty, as tmux makes it), it is hidden from the start.
 */
export function prepareEscapeRoutes(env: NodeJS.ProcessEnv, uid: number): void {
  const dir = join(env.TMUX_TMPDIR || "/tmp", `tmux-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // there already, or cannot be made (then tmux cannot make it either)
  }
}

/** Absolute, symlinks resolved (bwrap mounts onto the real path), and existing: else a one-line error. */
export function resolveSandboxPath(flag: string, path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new AgentVaultError("invalid_argument", `${flag} ${path}: ${missing ? "no such file or directory" : (error as Error).message}`, {
      ...(missing ? { hint: `a bind needs something to bind: create it first (mkdir -p ${path})` } : {}),
    });
  }
}

/**
 * Whether `--sandbox-rw` gave the agent this path: named it, or a directory above it (whose bind,
 * made after ours, covers ours anyway).
 */
export function isLifted(path: string, readWrite: readonly string[]): boolean {
  return readWrite.some((dir) => isWithin(path, dir));
}

function isDirectoryPath(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function hide(path: string): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    return [];
  }
  // A directory becomes an empty read-only tmpfs; a file or socket becomes /dev/null.
  return isDirectory ? ["--tmpfs", path, "--remount-ro", path] : ["--ro-bind", "/dev/null", path];
}

/** The startup files that exist: read-only inside; `--sandbox-rw` lifts it. */
export function shellStartupFiles(env: NodeJS.ProcessEnv): string[] {
  return shellStartupPaths(env).filter((path) => {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Configuration that commands the broker runs outside the sandbox read: a credential source's
 * `pass show` runs gpg, which starts the `agent-program` named in gpg.conf (and gpg-agent its
 * `pinentry-program`), and `vault` runs the `token_helper` named in ~/.vault. Whatever the agent
 * wrote there would run as the user outside the sandbox at the next fetch (found by the red team).
 * Those that exist are read-only inside (the whole GnuPG home: a file bound alone could be
 * replaced by renaming its directory); `--sandbox-rw` lifts it.
 */
export function sourceToolConfigs(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME;
  const paths = [env.GNUPGHOME || (home ? join(home, ".gnupg") : ""), home ? join(home, ".vault") : ""];
  return paths.filter((path) => {
    if (!path.startsWith("/")) return false;
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * bwrap's arguments, in mount order: the whole filesystem as it is (read-only under
 * --sandbox-strict), with our own /dev and /proc; the layout over it (src/sandbox/filesystem.ts:
 * what in the home runs later read-only; strict, the working directory, the temporary directories
 * and the agent's own state writable, the home read-only even under /tmp), the escape routes
 * hidden after it (a writable /tmp bound again must not bring tmux's socket back),
 * what runs later read-only, the user's adjustments from the shallowest path to the deepest (so
 * `--sandbox-ro ~ --sandbox-rw ~/repo` reads as meant), the credential files hidden unless the
 * user named them, and last the data directory hidden with only the shared files put back, so
 * no flag can expose it.
 */
/** One mount, as bwrap gets it, and how to make it again from its path (a bind from a descriptor cannot be). */
interface MountOp {
  readonly dest: string;
  /** What the agent sees at and under `dest`: writable, read-only, nothing, or not the host's own path. */
  readonly kind: "rw" | "ro" | "hidden" | "view";
  readonly args: readonly string[];
  readonly replay: readonly string[];
}

export function bwrapArgs(plan: BwrapPlan, env: NodeJS.ProcessEnv, uid: number): string[] {
  const args = [...NAMESPACE_ARGS];
  const ops: MountOp[] = [];
  const mount = (op: MountOp) => {
    ops.push(op);
    args.push(...op.args);
  };
  const bind = (kind: "rw" | "ro", source: string, dest: string): MountOp => {
    const flags = [kind === "rw" ? "--bind" : "--ro-bind", source, dest];
    return { dest, kind: source === dest ? kind : "view", args: flags, replay: flags };
  };
  const hidden = (path: string): MountOp => ({ dest: path, kind: "hidden", args: hide(path), replay: hide(path) });
  mount(bind(plan.filesystem.base, "/", "/"));
  // A private /dev (its own devpts): the host's /dev/pts would let the agent open the user's other
  // terminals and read what is typed there (a password at a prompt).
  mount({ dest: "/dev", kind: "view", args: ["--dev", "/dev"], replay: ["--dev", "/dev"] });
  mount({ dest: "/proc", kind: "view", args: ["--proc", "/proc"], replay: ["--proc", "/proc"] });
  for (const layer of plan.filesystem.layers) {
    // From a descriptor where `run` opened one (src/sandbox/layer-fds.ts): what is bound is what was
    // checked, not whatever a concurrent agent puts at the path before bwrap gets to it.
    const fd = plan.layerFd?.(layer);
    if (fd === null) continue;
    const byPath = bind(layer.mode, layer.source ?? layer.path, layer.path);
    mount(fd === undefined ? byPath : { ...byPath, args: [layer.mode === "rw" ? "--bind-fd" : "--ro-bind-fd", String(fd), layer.path] });
  }
  for (const route of escapeRoutes(env, uid)) if (hide(route).length > 0) mount(hidden(route));
  for (const file of shellStartupFiles(env)) if (!plan.user.readWrite.includes(file)) mount(bind("ro", file, file));
  for (const path of sourceToolConfigs(env)) if (!plan.user.readWrite.includes(path)) mount(bind("ro", path, path));
  for (const path of plan.gitMetadata) if (!isLifted(path, plan.user.readWrite)) mount(bind("ro", path, path));
  // The credential files are hidden after the adjustments, so that `--sandbox-rw ~` does not bring
  // them back. Naming one itself with -ro/-rw does; naming a path inside a hidden directory brings
  // back only that path, bound into the empty directory (`--sandbox-ro ~/.ssh/known_hosts` shows
  // no key; red team, session 8: it showed all of ~/.ssh, and a --sandbox-hide inside one did too).
  const shown = [...plan.user.readOnly, ...plan.user.readWrite];
  const secret = plan.filesystem.credentials.filter((path) => !shown.includes(path));
  const insideSecret = (path: string) => secret.some((dir) => path !== dir && isWithin(path, dir));
  const adjustments = [...plan.user.readOnly.map((path) => bind("ro", path, path)), ...plan.user.readWrite.map((path) => bind("rw", path, path)), ...plan.user.hidden.map((path) => hidden(path))].sort(
    (a, b) => depth(a.dest) - depth(b.dest),
  );
  for (const adjustment of adjustments) if (!insideSecret(adjustment.dest)) mount(adjustment);
  // The directories above a hidden credential, bound onto themselves where their parent can be
  // written: a mount point cannot be renamed, so the credential cannot be moved out from under the
  // mount that hides it for the next run to read (red team, session 8). A bind of the host's
  // directory covers what was mounted below it: that is mounted again after it, in order.
  for (const pin of plan.filesystem.pins) {
    const at = effectiveMount(ops, pin);
    if (!at || at.kind === "hidden" || at.kind === "view" || effectiveMount(ops, dirname(pin))?.kind !== "rw") continue;
    // Only what is in force: a mount a later one at or above it covered (a --sandbox-ro ~/.cargo
    // over the writable ~/.cargo/registry) stays covered (red team, session 8, fourth round).
    const below = ops.filter((op, i) => op.dest !== pin && isWithin(op.dest, pin) && !ops.slice(i + 1).some((later) => isWithin(op.dest, later.dest)));
    mount(bind(at.kind, pin, pin));
    for (const op of below) mount({ ...op, args: op.replay });
  }
  for (const path of secret) {
    const within = [...adjustments, ...plan.filesystem.shown.map((file) => bind("ro", file, file))].filter((a) => a.dest !== path && isWithin(a.dest, path) && a.kind !== "hidden");
    if (within.length === 0 || !isDirectoryPath(path)) {
      args.push(...hide(path));
      continue;
    }
    args.push("--tmpfs", path);
    for (const adjustment of within) args.push(...adjustment.args);
    args.push("--remount-ro", path);
  }
  // The shared files are bound before the tmpfs turns read-only: their mount points are made in it.
  args.push("--tmpfs", plan.dataDir);
  for (const file of plan.shared) args.push("--ro-bind", file, file);
  args.push("--remount-ro", plan.dataDir);
  return args;
}

/** What the agent sees at `path` after `ops`: the last mount whose destination holds it. */
function effectiveMount(ops: readonly MountOp[], path: string): MountOp | undefined {
  return ops.findLast((op) => isWithin(path, op.dest));
}
