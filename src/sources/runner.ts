// Running a source's command (src/vault/source.schema.ts says which): no shell, argv only; the
// command is looked up on a fixed PATH (AGENT_VAULT_SOURCE_PATH, else the system directories), not
// the PATH of whoever started the broker, so a directory the agent can write is not searched unless
// the person put it there; a clean environment (SOURCE_ENV below); stdin closed; a timeout that
// kills the whole process group; stdout and stderr capped. The reason a fetch failed never holds
// the command's output: stderr may echo what it read, so it is given back apart (`detail`) for the
// person at a terminal, and callers keep it out of anything the agent can read.
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { type SourceCommand } from "../vault/source.schema.ts";
import { displaySafe } from "../shared/text.ts";

export const DEFAULT_SOURCE_PATH = "/usr/local/bin:/usr/bin:/bin";
export const DEFAULT_SOURCE_TIMEOUT_MS = 20_000;
const MAX_STDOUT = 64 * 1024;
const MAX_STDERR = 4 * 1024;

/** Variables passed to a source command by exact name. */
const SOURCE_ENV_NAMES = [
  "HOME",
  "USER",
  "LOGNAME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
  "XDG_DATA_HOME",
  "GNUPGHOME",
  "GPG_AGENT_INFO",
  "SSH_AUTH_SOCK",
];
/** …and by prefix: each system's own settings (store dirs, addresses, tokens, accounts, profiles). */
const SOURCE_ENV_PREFIXES = ["PASSWORD_STORE_", "GOPASS_", "OP_", "VAULT_", "BAO_", "AWS_"];

export interface RunnerOptions {
  /** Colon-separated directories searched for a bare command name. */
  readonly path?: string;
  readonly timeoutMs?: number;
  /** The environment the allowed variables are taken from. */
  readonly env?: NodeJS.ProcessEnv;
}

export type FetchResult =
  | { readonly ok: true; readonly value: string }
  /** reason: safe for the agent and the log (no command output); detail: stderr, cut and escaped. */
  | { readonly ok: false; readonly reason: string; readonly detail: string };

export function sourceEnv(from: NodeJS.ProcessEnv, path: string): Record<string, string> {
  const env: Record<string, string> = { PATH: path };
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if (SOURCE_ENV_NAMES.includes(name) || SOURCE_ENV_PREFIXES.some((p) => name.startsWith(p))) env[name] = value;
  }
  return env;
}

export function sourcePathFrom(env: NodeJS.ProcessEnv = process.env): string {
  return env.AGENT_VAULT_SOURCE_PATH?.trim() || DEFAULT_SOURCE_PATH;
}

/** The executable a bare name resolves to on `path`, or null. */
export function resolveCommand(name: string, path: string): string | null {
  if (name.startsWith("/")) return isExecutable(name) ? name : null;
  for (const dir of path.split(":")) {
    if (!dir.startsWith("/")) continue; // a relative entry would depend on the working directory
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The value in a command's stdout: the first line for pass/gopass, else all of it less one final newline. */
function valueOf(command: SourceCommand, stdout: string): string {
  if (command.firstLineOnly) return stdout.split("\n", 1)[0]!.replace(/\r$/, "");
  return stdout.replace(/\r?\n$/, "");
}

export function runSource(command: SourceCommand, options: RunnerOptions = {}): Promise<FetchResult> {
  const path = options.path ?? sourcePathFrom();
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
  const name = command.argv[0]!;
  const file = resolveCommand(name, path);
  if (!file) return Promise.resolve({ ok: false, reason: `${name} is not found${name.includes("/") ? "" : ` on the source PATH (${path})`}`, detail: "" });
  return new Promise((resolve) => {
    const child = spawn(file, command.argv.slice(1), {
      argv0: name,
      env: sourceEnv(options.env ?? process.env, path),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so a timeout kills what it started too
      cwd: "/",
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: string | null = null;
    const kill = (why: string) => {
      failure ??= why;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => kill(`${name} did not finish within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
    child.stdout!.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_STDOUT) return kill(`${name} printed more than ${MAX_STDOUT / 1024} KiB`);
      out.push(chunk);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      if (errBytes < MAX_STDERR) err.push(chunk.subarray(0, MAX_STDERR - errBytes));
      errBytes += chunk.length;
    });
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const detail = displaySafe(Buffer.concat(err).toString("utf8").trim().split("\n").slice(0, 3).join(" / ")).slice(0, 300);
      if (spawnError) return resolve({ ok: false, reason: `${name} could not be started (${(spawnError as NodeJS.ErrnoException).code ?? "error"})`, detail });
      if (failure) return resolve({ ok: false, reason: failure, detail });
      if (code !== 0) return resolve({ ok: false, reason: signal ? `${name} was killed by ${signal}` : `${name} exited with status ${code}`, detail });
      const value = valueOf(command, Buffer.concat(out).toString("utf8"));
      if (value.length === 0) return resolve({ ok: false, reason: `${name} printed no value`, detail });
      // A value goes into headers: a line break there would start a header of the value's choosing.
      if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) return resolve({ ok: false, reason: `${name} printed a value with a line break or control character`, detail });
      resolve({ ok: true, value });
    };
    child.once("error", (e) => finish(null, null, e));
    child.once("close", (code, signal) => finish(code, signal));
  });
}
