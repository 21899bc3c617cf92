// Drives the compiled binary from outside, as a user or an agent would. Each test gets its own data
// directory; the KDF is made cheap through the explicit test hook, never by other means.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { agentBinary, asAgent, giveToAgent } from "./attacker.ts";

export const BINARY = process.env.AGENT_VAULT_TEST_BINARY ? resolve(process.env.AGENT_VAULT_TEST_BINARY) : resolve(import.meta.dir, "../../dist/agent-vault");
export const TEST_PASSWORD = "correct horse battery staple";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TempHome {
  readonly dir: string;
  readonly env: Record<string, string>;
  run(args: readonly string[], options?: { stdin?: string; env?: Record<string, string | undefined> }): Promise<RunResult>;
  /** The argv that runs the binary with `args` as this home's user (the agent user for `asAgent` homes). */
  argv(args: readonly string[]): string[];
  /** Hands the data directory back to its user after the test process wrote into it (no-op otherwise). */
  reown(): void;
  cleanup(): void;
}

/** The environment of a test run: the caller's minus anything agent-vault reads. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("AGENT_VAULT_")) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export async function runBinary(args: readonly string[], env: Record<string, string>, stdin?: string, wrap: (argv: string[]) => string[] = (a) => a): Promise<RunResult> {
  const proc = Bun.spawn(wrap([BINARY, ...args]), { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/**
 * A fresh data directory. With `init` (the default) it is initialized with TEST_PASSWORD, which
 * the environment then carries, as a script would. With `asAgent`, the binary runs as the
 * unprivileged test user (test/support/attacker.ts), who owns the directory and whose HOME is
 * `dir/user-home`.
 */
export async function tempHome(options: { init?: "password" | "no-password" | false; asAgent?: boolean } = {}): Promise<TempHome> {
  const dir = mkdtempSync(join(tmpdir(), "av-test-"));
  const home = join(dir, "home");
  // As the agent user, from a copy it can reach when the checkout is private (attacker.ts).
  const wrap = options.asAgent ? (argv: string[]) => asAgent(argv[0] === BINARY ? [agentBinary(BINARY), ...argv.slice(1)] : argv) : (argv: string[]) => argv;
  const extra: Record<string, string> = {};
  if (options.asAgent) {
    mkdirSync(join(dir, "user-home"));
    giveToAgent(dir);
    extra.HOME = join(dir, "user-home");
  }
  const env = cleanEnv({ AGENT_VAULT_HOME: home, AGENT_VAULT_INSECURE_TEST_KDF: "1", AGENT_VAULT_MASTER_PASSWORD: TEST_PASSWORD, ...extra });
  const temp: TempHome = {
    dir: home,
    env,
    run: (args, opts = {}) => runBinary(args, cleanEnv({ ...env, ...opts.env }), opts.stdin, wrap),
    argv: (args) => wrap([BINARY, ...args]),
    reown: () => (options.asAgent ? giveToAgent(home) : undefined),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  const init = options.init ?? "password";
  if (init !== false) {
    const result = await temp.run(init === "password" ? ["init"] : ["init", "--no-password"]);
    if (result.code !== 0) throw new Error(`init failed: ${result.stderr}`);
  }
  return temp;
}

export interface Cli {
  /** Runs the binary; stdout and stderr are kept in `outputs`. */
  av(args: readonly string[], stdin?: string): Promise<RunResult>;
  /** The same, failing the test unless it exits 0. */
  ok(args: readonly string[], stdin?: string): Promise<RunResult>;
}

/** Commands against a home (looked up when called) with extra environment, output recorded for canary checks. */
export function recordingCli(home: () => TempHome, env: () => Record<string, string | undefined>, outputs: string[]): Cli {
  const av = async (args: readonly string[], stdin?: string) => {
    const r = await home().run(args, { stdin, env: env() });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  return {
    av,
    ok: async (args, stdin) => {
      const r = await av(args, stdin);
      if (r.code !== 0)
        throw new Error(`agent-vault ${args.join(" ")} failed (${r.code}):\n  stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}\n  stderr: ${JSON.stringify(r.stderr.slice(0, 2000))}`);
      return r;
    },
  };
}
