// The real OpenAI Codex CLI (the @openai/codex dev dependency) run as
// `agent-vault run -- codex exec "..."`: codex holds only a placeholder OPENAI_API_KEY, while the
// (fake, local) OpenAI Responses API sees the real key, which agent-vault injects. Nothing is
// mocked on codex's side: it finds the proxy and our CA through the environment `run` sets (DESIGN
// "Environment") and speaks its own protocols (WebSocket, or HTTPS + SSE) to api.openai.com.
//
// Routing: AGENT_VAULT_CONNECT_TO sends api.openai.com to a local HTTPS server answering as the
// Responses API (test/support/fake-openai.ts), and every other host codex talks to during a turn
// (chatgpt.com, ab.chatgpt.com telemetry, api.github.com and github.com for its plugin catalogue)
// to a second recording server. Those hosts are declared as `passthrough` services so that
// agent-vault intercepts them and the recorder sees their plaintext: the proof that the OpenAI key
// never goes anywhere but api.openai.com is then about real requests, not about TLS failures.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, cleanEnv, type RunResult, type TempHome } from "../support/binary.ts";
import { type FakeOpenAI, fakeOpenAI } from "../support/fake-openai.ts";
import { type ReceivedRequest, startUpstream, type Upstream } from "../support/upstream.ts";
import { setupHome } from "../support/scene.ts";

const BIN_DIR = resolve(import.meta.dir, "../../node_modules/.bin");
const CODEX = join(BIN_DIR, "codex");

/** The real key, in the vault only. Shaped like an OpenAI project key. */
const CANARY = `sk-proj-canary${randomBytes(16).toString("hex")}`;
/** What the agent holds instead. */
const PLACEHOLDER = "placeholder-not-a-key";
const PROMPT = "Reply with the single word pong.";
const REPLY = "pong from the fake Responses API";
/** Hosts codex 0.169 contacts besides the Responses API, none of which may ever see the key. */
const OTHER_HOSTS = ["chatgpt.com", "ab.chatgpt.com", "api.github.com", "github.com"];
const CODEX_TIMEOUT_MS = 45_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function headerText(headers: ReceivedRequest["headers"]): string {
  return Object.entries(headers)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(", ") : String(value)}`)
    .join("\n");
}

function requestText(request: ReceivedRequest): string {
  return `${request.method} ${request.url}\n${headerText(request.headers)}\n\n${request.body.toString("latin1")}`;
}

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
  return filesUnder(dir).filter((path) => statSync(path).size < 256 * 1024 * 1024 && readFileSync(path).includes(needle));
}

interface Scenario {
  readonly home: TempHome;
  readonly api: Upstream;
  readonly other: Upstream;
  readonly fake: FakeOpenAI;
  readonly codexHome: string;
  readonly workDir: string;
  readonly result: RunResult;
  readonly seconds: number;
  readonly requestLog: string;
  /** --sandbox-strict runs: the HOME codex had (its own, not the test's), with the project inside it. */
  readonly userHome: string | null;
}

/**
 * A vault holding the real key, the openai template and passthrough services for the other hosts;
 * then `agent-vault run -- codex exec ... PROMPT` with the placeholder in OPENAI_API_KEY.
 */
async function runCodex(options: {
  websocket: boolean;
  codexArgs: readonly string[];
  zeroConfig?: boolean;
  /**
   * `run --sandbox-strict`, with a HOME of its own holding the project (as `~/project`) and codex's
   * state: at `$CODEX_HOME=~/codex-state` ("env"), or at `~/.codex` with CODEX_HOME unset
   * ("default"). Neither exists beforehand: `run` makes the command's own state directory.
   */
  strict?: "env" | "default";
}): Promise<Scenario> {
  const { scratch, home, setup } = await setupHome("av-codex-", cleanups);
  // Through stdin, as a user would, so the canary is in no argument list.
  await setup(["vault", "credential", "set", "OPENAI_API_KEY=-"], CANARY);
  await setup(["vault", "service", "add", "--template", "openai"]);
  const passthrough = join(scratch, "passthrough-services.json");
  writeFileSync(passthrough, JSON.stringify(OTHER_HOSTS.map((host) => ({ name: host.replaceAll(".", "-"), host, auth: { type: "passthrough" } }))));
  await setup(["vault", "service", "set", "-f", passthrough]);

  mkdirSync(join(scratch, "api"));
  mkdirSync(join(scratch, "other"));
  const api = await startUpstream(join(scratch, "api"));
  cleanups.push(() => api.close());
  const other = await startUpstream(join(scratch, "other"));
  cleanups.push(() => other.close());
  const fake = fakeOpenAI({ reply: REPLY, websocket: options.websocket });
  api.handler = fake.handler;
  const upstreamCa = join(scratch, "upstream-cas.pem");
  writeFileSync(upstreamCa, readFileSync(api.caFile, "utf8") + readFileSync(other.caFile, "utf8"));

  const userHome = options.strict ? join(scratch, "user-home") : null;
  const codexHome = userHome ? join(userHome, options.strict === "env" ? "codex-state" : ".codex") : join(scratch, "codex-home");
  const workDir = userHome ? join(userHome, "project") : join(scratch, "work");
  if (!userHome) mkdirSync(codexHome);
  mkdirSync(workDir, { recursive: true });
  const connectTo = [`api.openai.com:443:127.0.0.1:${api.port}`, ...OTHER_HOSTS.map((host) => `${host}:443:127.0.0.1:${other.port}`)].join(",");
  const env = cleanEnv({
    ...home.env,
    PATH: `${BIN_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    // Zero configuration: no key at all in the user's environment, `run` supplies the placeholder.
    OPENAI_API_KEY: options.zeroConfig ? undefined : PLACEHOLDER,
    // Nothing else may authenticate codex or move its endpoint.
    CODEX_API_KEY: undefined,
    CODEX_ACCESS_TOKEN: undefined,
    OPENAI_BASE_URL: undefined,
    OPENAI_ORG_ID: undefined,
    OPENAI_PROJECT_ID: undefined,
    RUST_LOG: undefined,
    ...(userHome ? { HOME: userHome, XDG_CACHE_HOME: undefined, TMPDIR: undefined } : {}),
    CODEX_HOME: options.strict === "default" ? undefined : codexHome,
    AGENT_VAULT_CONNECT_TO: connectTo,
    AGENT_VAULT_UPSTREAM_CA: upstreamCa,
  });
  const command = [
    BINARY,
    "run",
    ...(options.strict ? ["--sandbox-strict"] : []),
    "--",
    "codex",
    "exec",
    "--skip-git-repo-check",
    "--color",
    "never",
    "-C",
    workDir,
    ...options.codexArgs,
    ...(userHome ? notifyHook(userHome, workDir) : []),
    PROMPT,
  ];
  const started = performance.now();
  const proc = Bun.spawn(command, { cwd: workDir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  // On timeout, SIGTERM reaches codex through `run` (which forwards it); SIGKILL only if that fails.
  let timedOut = false;
  let killer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGTERM");
    killer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
  }, CODEX_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  clearTimeout(killer);
  const seconds = (performance.now() - started) / 1000;
  if (timedOut) throw new Error(`codex did not finish in ${CODEX_TIMEOUT_MS / 1000}s\nstdout: ${stdout}\nstderr: ${stderr}`);
  const requestLogPath = join(home.dir, "requests.log");
  const requestLog = existsSync(requestLogPath) ? readFileSync(requestLogPath, "utf8") : "";
  return { home, api, other, fake, codexHome, workDir, result: { code, stdout, stderr }, seconds, requestLog, userHome };
}

/** What every scenario must show, whatever the transport. */
function expectKeyOnlyAtOpenAI(s: Scenario): void {
  const { result } = s;
  const context = `codex exit ${result.code} after ${s.seconds.toFixed(1)}s\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;

  // codex finished the turn and printed the fake model's reply.
  expect(result.code, context).toBe(0);
  expect(result.stdout.trim(), context).toBe(REPLY);

  // The fake API saw the real turn (our prompt), and every request to it carried the real key only.
  const turns = s.fake.turns.filter((t) => t.raw.includes(PROMPT));
  expect(turns.length, context).toBeGreaterThanOrEqual(1);
  expect(s.api.received.length).toBeGreaterThanOrEqual(1);
  for (const request of s.api.received) {
    expect(request.host).toBe("api.openai.com");
    expect(request.sni).toBe("api.openai.com");
    expect(request.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(requestText(request)).not.toContain(PLACEHOLDER);
  }
  for (const turn of s.fake.turns) {
    expect(turn.authorization).toBe(`Bearer ${CANARY}`);
    expect(turn.raw).not.toContain(PLACEHOLDER);
  }

  // The other hosts were really reached through the proxy, and never saw the key.
  expect(s.other.received.length, "codex made no request to chatgpt.com / api.github.com / github.com: the negative check below would prove nothing").toBeGreaterThanOrEqual(1);
  for (const request of s.other.received) {
    expect(OTHER_HOSTS).toContain(request.host);
    expect(requestText(request)).not.toContain(CANARY);
    expect(String(request.headers.authorization ?? "")).not.toContain(CANARY);
  }

  // The key shows up nowhere on the agent's side: not in its output, not in anything it wrote.
  expect(result.stdout).not.toContain(CANARY);
  expect(result.stderr).not.toContain(CANARY);
  expect(filesContaining(s.codexHome, CANARY)).toEqual([]);
  expect(filesContaining(s.workDir, CANARY)).toEqual([]);

  // The request log records the turn against the openai service, and never the key.
  const entries = s.requestLog
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as { host: string; service: string | null; session: string | null; status: number });
  expect(s.requestLog).not.toContain(CANARY);
  const openai = entries.filter((e) => e.host === "api.openai.com");
  expect(openai.length).toBeGreaterThanOrEqual(1);
  for (const entry of openai) {
    expect(entry.service).toBe("openai");
    expect(entry.session).not.toBeNull();
  }
}

/**
 * A program codex runs as itself inside the sandbox after the turn (its `notify` hook): it writes
 * one file in the project (where it may), tries one in the home (where it may not), and records
 * the shell's error for the latter in the project.
 */
function notifyHook(userHome: string, workDir: string): string[] {
  const script = `echo ran > '${workDir}/notify-ran.txt'; { echo planted > '${userHome}/planted-by-codex.txt'; } 2> '${workDir}/notify-home.err'; exit 0`;
  return ["-c", `notify=${JSON.stringify(["sh", "-c", script, "notify"])}`];
}

/** Under --sandbox-strict: codex's state landed in its state directory, nothing else in the home. */
function expectStrictWrites(s: Scenario): void {
  const userHome = s.userHome as string;
  const context = `stderr: ${s.result.stderr}\nhome: ${filesUnder(userHome).join("\n")}`;
  expect(s.result.stderr, context).toMatch(/agent-vault: vault "default", session s_[0-9a-f]+, services: [^\n]*sandbox on/);
  // codex recorded its session (a rollout file) and its log where it keeps its state.
  const state = filesUnder(s.codexHome).map((path) => path.slice(s.codexHome.length + 1));
  expect(state.filter((path) => /^sessions\/\d{4}\/\d{2}\/\d{2}\/rollout-.*\.jsonl$/.test(path)).length, context).toBeGreaterThanOrEqual(1);
  const rollout = filesUnder(join(s.codexHome, "sessions"))
    .map((path) => readFileSync(path, "utf8"))
    .join("\n");
  expect(rollout, context).toContain(PROMPT);
  expect(rollout, context).toContain(REPLY);
  // codex 0.169 logs into a SQLite database there (logs_<n>.sqlite), next to its state database.
  expect(state.filter((path) => /^logs_\d+\.sqlite$/.test(path)).length, context).toBe(1);
  expect(state.filter((path) => /^state_\d+\.sqlite$/.test(path)).length, context).toBe(1);
  // The notify hook ran inside the sandbox: its write to the project landed, its write to the home did not.
  expect(readFileSync(join(s.workDir, "notify-ran.txt"), "utf8"), context).toBe("ran\n");
  expect(existsSync(join(userHome, "planted-by-codex.txt")), context).toBe(false);
  expect(readFileSync(join(s.workDir, "notify-home.err"), "utf8"), context).toMatch(/Read-only file system/);
  // The home has what it had (the project), codex's state, and the mount points of the sandbox's cache: nothing else.
  const top = readdirSync(userHome).sort();
  expect(top, context).toEqual([".cache", ".npm", basenameOf(s.codexHome), "project"].sort());
  expect(readdirSync(join(userHome, ".cache")), context).toEqual(["agent-vault-sandbox"]);
  expect(filesContaining(userHome, CANARY)).toEqual([]);
}

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

describe("codex exec under agent-vault run", () => {
  test(
    "zero configuration: no OpenAI key in the user's environment, run's placeholder is what codex sends, the API gets the real key",
    async () => {
      const s = await runCodex({ websocket: true, codexArgs: [], zeroConfig: true });
      expectKeyOnlyAtOpenAI(s);
      // What codex sent was run's placeholder (shaped sk-proj-…), replaced on the way: none reached the API.
      const wire = Buffer.concat(s.api.wire.map((w) => w.data)).toString("latin1");
      expect(wire).toContain(CANARY);
      expect(wire.match(/sk-proj-[A-Za-z0-9_-]{156}/g) ?? []).toEqual([]);
      expect(s.result.stderr).toMatch(/agent-vault: vault "default", session s_[0-9a-f]+, services: openai, /);
    },
    CODEX_TIMEOUT_MS + 30_000,
  );

  test("codex --version runs offline", async () => {
    const proc = Bun.spawn([CODEX, "--version"], { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^codex-cli \d+\.\d+\.\d+/);
  });

  test(
    "default OpenAI provider over WebSocket: codex holds the placeholder, the API gets the real key",
    async () => {
      const s = await runCodex({ websocket: true, codexArgs: [] });
      expectKeyOnlyAtOpenAI(s);
      // codex's default transport: the upgrade request carried the injected key, the turn came as a frame.
      expect(s.fake.turns.filter((t) => t.raw.includes(PROMPT)).every((t) => t.transport === "websocket")).toBe(true);
      const upgrades = s.api.received.filter((r) => r.method === "GET" && r.url === "/v1/responses");
      expect(upgrades.length).toBeGreaterThanOrEqual(1);
      for (const upgrade of upgrades) expect(String(upgrade.headers.upgrade).toLowerCase()).toBe("websocket");
    },
    CODEX_TIMEOUT_MS + 30_000,
  );

  test(
    "default OpenAI provider, WebSocket refused: codex falls back to POST /v1/responses with SSE, and the API gets the real key",
    async () => {
      const s = await runCodex({ websocket: false, codexArgs: [] });
      expectKeyOnlyAtOpenAI(s);
      expect(s.fake.refusedUpgrades).toBeGreaterThanOrEqual(1);
      const posts = s.api.received.filter((r) => r.method === "POST" && r.url === "/v1/responses");
      expect(posts.length).toBeGreaterThanOrEqual(1);
      for (const post of posts) expect(post.headers.accept).toBe("text/event-stream");
      expect(s.fake.turns.filter((t) => t.raw.includes(PROMPT)).every((t) => t.transport === "sse")).toBe(true);
    },
    CODEX_TIMEOUT_MS + 30_000,
  );

  test(
    "a custom Responses provider reading OPENAI_API_KEY (env_key): HTTPS + SSE only, and the API gets the real key",
    async () => {
      const s = await runCodex({
        websocket: false,
        codexArgs: [
          "-c",
          "model_provider=vaulted",
          "-c",
          "model_providers.vaulted.name=OpenAI via agent-vault",
          "-c",
          "model_providers.vaulted.base_url=https://api.openai.com/v1",
          "-c",
          "model_providers.vaulted.env_key=OPENAI_API_KEY",
          "-c",
          "model_providers.vaulted.wire_api=responses",
        ],
      });
      expectKeyOnlyAtOpenAI(s);
      expect(s.fake.refusedUpgrades).toBe(0);
      expect(s.api.received.every((r) => r.method === "POST" && r.url === "/v1/responses")).toBe(true);
      expect(s.fake.turns.every((t) => t.transport === "sse")).toBe(true);
    },
    CODEX_TIMEOUT_MS + 30_000,
  );

  test(
    "--sandbox-strict, CODEX_HOME unset: codex answers as by default, its state goes to ~/.codex (made by run), a write elsewhere in the home fails",
    async () => {
      const s = await runCodex({ websocket: true, codexArgs: [], strict: "default" });
      expectKeyOnlyAtOpenAI(s);
      expectStrictWrites(s);
    },
    CODEX_TIMEOUT_MS + 30_000,
  );

  test(
    "--sandbox-strict, CODEX_HOME in the home: the same, its state goes to $CODEX_HOME",
    async () => {
      const s = await runCodex({ websocket: true, codexArgs: [], strict: "env" });
      expectKeyOnlyAtOpenAI(s);
      expectStrictWrites(s);
    },
    CODEX_TIMEOUT_MS + 30_000,
  );
});
