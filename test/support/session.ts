// A session held open from outside: `agent-vault run` with a child that prints its session token
// and waits for its stdin to close, so that a test can use the session from its own process (the
// raw client, curl as the agent) for as long as it needs, and end it as a user's command would end.
import { basicProxyAuth } from "./proxy-client.ts";
import { cleanEnv, type RunResult, type TempHome } from "./binary.ts";
import { type Live, spawnLive, waitUntil } from "./process.ts";
import { type Cleanups } from "./scene.ts";

export interface HeldSession {
  readonly token: string;
  /** The session's id, when `withId` asked for it (null if no new session showed up). */
  readonly id: string | null;
  readonly vault: string;
  readonly proxyAuth: string;
  readonly live: Live;
  /** Ends the child's stdin, so it exits and `run` with it; resolves to run's exit code. */
  close(): Promise<number>;
}

export interface HoldOptions {
  /** The vault (run's --vault); run's default when not given. */
  readonly vault?: string;
  /** Flags for `run` before the `--`, after --vault. */
  readonly flags?: readonly string[];
  /** Also find the session's id (the one `vault session list` shows after run started that it did not before). */
  readonly withId?: boolean;
  /** How `vault session list` is run (to record or check its output); the home's CLI by default. */
  readonly cli?: (args: readonly string[]) => Promise<RunResult>;
  /**
   * In the cleanup, kill run if it has not exited this long after its stdin closed: a sandboxed
   * child that holds on, or `sh` as a namespace's init ignoring SIGTERM (its sandbox dies with run).
   */
  readonly killAfterMs?: number;
  /** Called with the live process as soon as it starts (to record its output). */
  readonly onSpawn?: (live: Live) => void;
}

const CHILD = ["sh", "-c", 'printf "%s\\n" "$AGENT_VAULT_SESSION_TOKEN"; exec cat >/dev/null'];

export async function holdSession(home: TempHome, cleanups: Cleanups, options: HoldOptions = {}): Promise<HeldSession> {
  const vault = options.vault ?? "default";
  const vaultFlag = options.vault === undefined ? [] : ["--vault", options.vault];
  const cli = options.cli ?? ((args: readonly string[]) => home.run(args));
  const ids = async () => {
    const r = await cli(["vault", "session", "list", "--vault", vault, "--json"]);
    if (r.code !== 0) throw new Error(`vault session list failed (${r.code}): ${r.stderr}`);
    return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id);
  };
  const before = options.withId ? await ids() : [];
  const live = spawnLive(home.argv(["run", ...vaultFlag, ...(options.flags ?? []), "--", ...CHILD]), cleanEnv(home.env), "pipe");
  options.onSpawn?.(live);
  let closed: Promise<number> | null = null;
  const close = () => {
    if (!closed) {
      (live.proc.stdin as { end(): unknown } | undefined)?.end();
      closed = live.proc.exited;
    }
    return closed;
  };
  cleanups.push(async () => {
    const exited = close();
    if (options.killAfterMs !== undefined) {
      const ended = await Promise.race([exited.then(() => true), Bun.sleep(options.killAfterMs).then(() => false)]);
      if (!ended) live.proc.kill("SIGKILL");
    }
    await exited;
  });
  const token = await waitUntil(
    "the session token",
    () => {
      if (live.proc.exitCode !== null) throw new Error(`run exited (${live.proc.exitCode}): ${live.stderr}`);
      const lines = live.stdout.split("\n");
      return lines.length > 1 ? lines[0]!.trim() : null;
    },
    20_000,
  );
  const id = options.withId ? ((await ids()).find((s) => !before.includes(s)) ?? null) : null;
  return { token, id, vault, proxyAuth: basicProxyAuth(token, vault), live, close };
}
