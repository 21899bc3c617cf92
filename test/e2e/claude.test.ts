// The real Claude Code CLI (the @anthropic-ai/claude-code dev dependency) run as
// `agent-vault run -- claude -p "..."` with zero configuration: no Anthropic key anywhere in the
// user's environment, the sandbox on. `run` gives claude a placeholder ANTHROPIC_API_KEY (shaped
// sk-ant-api03-…, which claude uses as is in -p mode), claude trusts our CA through
// NODE_EXTRA_CA_CERTS and reaches api.anthropic.com through HTTPS_PROXY; the (fake, local)
// Messages API, which streams its answer as server-sent events as the real one does, sees the real
// key in x-api-key. The vault's unmatched policy is deny, so a request to any other host would
// be refused and logged: the log shows claude 2.1 talks to api.anthropic.com alone.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, cleanEnv } from "../support/binary.ts";
import { type FakeAnthropic, fakeAnthropic } from "../support/fake-anthropic.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";
import { setupHome } from "../support/scene.ts";

const BIN_DIR = resolve(import.meta.dir, "../../node_modules/.bin");
const CANARY = `sk-ant-api03-canary${randomBytes(24).toString("base64url")}`;
const PLACEHOLDER_SHAPE = /sk-ant-api03-[A-Za-z0-9_-]{93}AA/g;
const REPLY = "pong from the fake Messages API";
const PROMPT = "Reply with the single word pong.";
const TIMEOUT_MS = 60_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Every regular file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function filesContaining(dir: string, needle: string): string[] {
  return filesUnder(dir).filter((path) => statSync(path).size < 64 * 1024 * 1024 && readFileSync(path).includes(needle));
}

interface Scenario {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly context: string;
  readonly fake: FakeAnthropic;
  readonly api: Upstream;
  readonly claudeHome: string;
  /** Where claude keeps its state: ~/.claude, or $CLAUDE_CONFIG_DIR. */
  readonly configDir: string;
  readonly workDir: string;
  readonly log: string;
}

/**
 * A vault holding the real key, the anthropic template and unmatched deny; then
 * `agent-vault run [--sandbox-strict] -- claude -p PROMPT` with no key in the environment and a
 * HOME of its own. With `strict`, the project is `~/project`, ~/.claude does not exist beforehand
 * (`run` makes it; claude cannot write ~/.claude.json in a read-only home), and a SessionStart hook given with --settings writes one
 * file in the project and tries one in the home. With `configDir`, CLAUDE_CONFIG_DIR is
 * `~/claude-config` (not there beforehand either) and claude keeps all of its state in it.
 */
async function runClaude(options: { strict: boolean; configDir?: boolean }): Promise<Scenario> {
  const { scratch, home, setup } = await setupHome("av-claude-", cleanups);
  await setup(["vault", "credential", "set", "ANTHROPIC_API_KEY=-"], CANARY);
  await setup(["vault", "service", "add", "--template", "anthropic"]);
  await setup(["vault", "settings", "--unmatched", "deny"]);
  const api = await startUpstream(scratch);
  cleanups.push(() => api.close());
  const fake = fakeAnthropic({ reply: REPLY });
  api.handler = fake.handler;

  const claudeHome = join(scratch, "claude-home");
  const workDir = options.strict ? join(claudeHome, "project") : join(scratch, "work");
  const configDir = options.configDir ? join(claudeHome, "claude-config") : join(claudeHome, ".claude");
  mkdirSync(claudeHome);
  mkdirSync(workDir);
  const env = cleanEnv({
    ...home.env,
    PATH: `${BIN_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: claudeHome,
    // Nothing else may authenticate claude or move its endpoint.
    ANTHROPIC_API_KEY: undefined,
    ANTHROPIC_AUTH_TOKEN: undefined,
    ANTHROPIC_BASE_URL: undefined,
    CLAUDE_CODE_OAUTH_TOKEN: undefined,
    CLAUDE_CONFIG_DIR: options.configDir ? configDir : undefined,
    ...(options.strict ? { XDG_CACHE_HOME: undefined, XDG_CONFIG_HOME: undefined, XDG_DATA_HOME: undefined, XDG_STATE_HOME: undefined, TMPDIR: undefined } : {}),
    AGENT_VAULT_CONNECT_TO: `api.anthropic.com:443:127.0.0.1:${api.port}`,
    AGENT_VAULT_UPSTREAM_CA: api.caFile,
  });
  const claudeArgs = options.strict ? ["--settings", JSON.stringify(sessionStartHook(claudeHome, workDir))] : [];
  const command = [BINARY, "run", ...(options.strict ? ["--sandbox-strict"] : []), "--", "claude", "-p", ...claudeArgs, PROMPT];
  const proc = Bun.spawn(command, { cwd: workDir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let killer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    proc.kill("SIGTERM");
    killer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
  }, TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  clearTimeout(killer);
  const context = `claude exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}\npaths: ${fake.paths.join(" ")}`;
  const logPath = join(home.dir, "requests.log");
  const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
  return { code, stdout, stderr, context, fake, api, claudeHome, configDir, workDir, log };
}

/** Claude Code's settings with a SessionStart hook: a program claude runs as itself, inside the sandbox. */
function sessionStartHook(claudeHome: string, workDir: string): Record<string, unknown> {
  const script = `echo ran > '${workDir}/hook-ran.txt'; { echo planted > '${claudeHome}/planted-by-claude.txt'; } 2> '${workDir}/hook-home.err'; exit 0`;
  return { hooks: { SessionStart: [{ hooks: [{ type: "command", command: script }] }] } };
}

/** What every run must show: the streamed answer, the real key at the API only, nothing of it on claude's side. */
function expectKeyOnlyAtAnthropic(s: Scenario): void {
  const { context } = s;
  expect(s.code, context).toBe(0);
  expect(s.stdout.trim(), context).toBe(REPLY);
  expect(s.stderr).toMatch(/agent-vault: vault "default", session s_[0-9a-f]+, services: anthropic; placeholders: ANTHROPIC_API_KEY; sandbox on(?: \(strict\))?; /);

  // The turn reached the fake API streaming, with the real key in x-api-key and nothing else.
  expect(s.fake.messages.length, context).toBeGreaterThanOrEqual(1);
  expect(s.fake.messages.some((m) => m.stream && m.raw.includes("pong"))).toBe(true);
  for (const m of s.fake.messages) {
    expect(m.apiKey).toBe(CANARY);
    expect(m.authorization).toBeUndefined();
  }
  for (const r of s.api.received) {
    expect(r.host).toBe("api.anthropic.com");
    expect(r.sni).toBe("api.anthropic.com");
  }
  // Whatever claude sent, the upstream never saw a placeholder: every key-shaped string on the wire is the real one.
  const wire = Buffer.concat(s.api.wire.map((w) => w.data)).toString("latin1");
  expect(wire).toContain(CANARY);
  expect(wire.match(PLACEHOLDER_SHAPE) ?? []).toEqual([]);

  // The real key is nowhere on claude's side: its output, its config and session files, the work dir.
  expect(s.stdout).not.toContain(CANARY);
  expect(s.stderr).not.toContain(CANARY);
  expect(filesContaining(s.claudeHome, CANARY)).toEqual([]);
  expect(filesContaining(s.workDir, CANARY)).toEqual([]);
  // No other host was asked for (deny would have logged a refusal), and the log has no key.
  expect(s.log).not.toContain(CANARY);
  const hosts = new Set(
    s.log
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { host: string }).host),
  );
  expect([...hosts]).toEqual(["api.anthropic.com"]);
}

describe("claude -p under agent-vault run", () => {
  test(
    "zero configuration: claude holds a placeholder, the Messages API gets the real key, streamed answer printed",
    async () => {
      expectKeyOnlyAtAnthropic(await runClaude({ strict: false }));
    },
    TIMEOUT_MS + 30_000,
  );

  test(
    "--sandbox-strict: the same answer and key handling; claude's transcript lands in ~/.claude (made by run), a write elsewhere in the home fails",
    async () => {
      const s = await strictRun();
      expectKeyOnlyAtAnthropic(s);
      expectStrictState(s);
      // The home has the project, claude's state and the mount points of the sandbox's cache: nothing else.
      expect(readdirSync(s.claudeHome).sort(), strictContext(s)).toEqual([".cache", ".claude", ".npm", "project"]);
    },
    TIMEOUT_MS + 30_000,
  );

  // Claude 2.1 saves ~/.claude.json under a lock directory `~/.claude.json.lock` and through a
  // temporary `~/.claude.json.tmp.<pid>.<hex>` renamed over it, both beside it in the home, which
  // --sandbox-strict keeps read-only (its debug log: "EROFS: read-only file system, mkdir
  // '~/.claude.json.lock'", "continuing without persisting"): binding the file alone was not
  // enough, so run does not pretend. It says what to do instead (the next test does it).
  test(
    "--sandbox-strict without CLAUDE_CONFIG_DIR: run says claude's config cannot be kept and how to keep it",
    async () => {
      const s = await strictRun();
      expect(s.code, s.context).toBe(0);
      expect(s.stderr).toContain("--sandbox-strict: claude saves ~/.claude.json through a file it renames in your home, which is read-only here");
      expect(s.stderr).toContain("CLAUDE_CONFIG_DIR=");
      expect(existsSync(join(s.claudeHome, ".claude.json")), strictContext(s)).toBe(false);
    },
    TIMEOUT_MS + 30_000,
  );

  test(
    "--sandbox-strict with CLAUDE_CONFIG_DIR in the home: all of claude's state, its config too, lands there (made by run)",
    async () => {
      const s = await runClaude({ strict: true, configDir: true });
      expectKeyOnlyAtAnthropic(s);
      expectStrictState(s);
      const config = JSON.parse(readFileSync(join(s.configDir, ".claude.json"), "utf8")) as Record<string, unknown>;
      expect(typeof config.userID, strictContext(s)).toBe("string");
      expect(typeof config.firstStartTime, strictContext(s)).toBe("string");
      expect(readdirSync(s.claudeHome).sort(), strictContext(s)).toEqual([".cache", ".npm", "claude-config", "project"]);
    },
    TIMEOUT_MS + 30_000,
  );
});

let strictScenario: Promise<Scenario> | undefined;
/** The one strict run (default state paths) two tests look at. */
function strictRun(): Promise<Scenario> {
  strictScenario ??= runClaude({ strict: true });
  return strictScenario;
}

function strictContext(s: Scenario): string {
  return `${s.context}\nhome: ${filesUnder(s.claudeHome).join("\n")}`;
}

/** Under --sandbox-strict: the session transcript in claude's state directory; the hook's writes. */
function expectStrictState(s: Scenario): void {
  const context = strictContext(s);
  const transcripts = filesUnder(join(s.configDir, "projects")).filter((path) => path.endsWith(".jsonl"));
  expect(transcripts.length, context).toBeGreaterThanOrEqual(1);
  const transcript = transcripts.map((path) => readFileSync(path, "utf8")).join("\n");
  expect(transcript, context).toContain(PROMPT);
  expect(transcript, context).toContain(REPLY);
  // The hook ran inside the sandbox: its write to the project landed, its write to the home did not.
  expect(readFileSync(join(s.workDir, "hook-ran.txt"), "utf8"), context).toBe("ran\n");
  expect(existsSync(join(s.claudeHome, "planted-by-claude.txt")), context).toBe(false);
  expect(readFileSync(join(s.workDir, "hook-home.err"), "utf8"), context).toMatch(/Read-only file system/);
  expect(readdirSync(join(s.claudeHome, ".cache")), context).toEqual(["agent-vault-sandbox"]);
}
