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
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BINARY, cleanEnv, tempHome } from "../support/binary.ts";
import { fakeAnthropic } from "../support/fake-anthropic.ts";
import { startUpstream } from "../support/upstream.ts";

const BIN_DIR = resolve(import.meta.dir, "../../node_modules/.bin");
const CANARY = `sk-ant-api03-canary${randomBytes(24).toString("base64url")}`;
const PLACEHOLDER_SHAPE = /sk-ant-api03-[A-Za-z0-9_-]{93}AA/g;
const REPLY = "pong from the fake Messages API";
const TIMEOUT_MS = 60_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function filesContaining(dir: string, needle: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesContaining(path, needle));
    else if (entry.isFile() && statSync(path).size < 64 * 1024 * 1024 && readFileSync(path).includes(needle)) out.push(path);
  }
  return out;
}

describe("claude -p under agent-vault run", () => {
  test(
    "zero configuration: claude holds a placeholder, the Messages API gets the real key, streamed answer printed",
    async () => {
      const scratch = mkdtempSync(join(tmpdir(), "av-claude-"));
      cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
      const home = await tempHome();
      cleanups.push(() => home.cleanup());
      const setup = async (args: readonly string[], stdin?: string) => {
        const r = await home.run(args, stdin === undefined ? {} : { stdin });
        if (r.code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (exit ${r.code}): ${r.stderr}`);
      };
      await setup(["vault", "credential", "set", "ANTHROPIC_API_KEY=-"], CANARY);
      await setup(["vault", "service", "add", "--template", "anthropic"]);
      await setup(["vault", "settings", "--unmatched", "deny"]);
      const api = await startUpstream(scratch);
      cleanups.push(() => api.close());
      const fake = fakeAnthropic({ reply: REPLY });
      api.handler = fake.handler;

      const claudeHome = join(scratch, "claude-home");
      const workDir = join(scratch, "work");
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
        CLAUDE_CONFIG_DIR: undefined,
        AGENT_VAULT_CONNECT_TO: `api.anthropic.com:443:127.0.0.1:${api.port}`,
        AGENT_VAULT_UPSTREAM_CA: api.caFile,
      });
      const proc = Bun.spawn([BINARY, "run", "--", "claude", "-p", "Reply with the single word pong."], { cwd: workDir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      let killer: ReturnType<typeof setTimeout> | undefined;
      const timer = setTimeout(() => {
        proc.kill("SIGTERM");
        killer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      }, TIMEOUT_MS);
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      clearTimeout(killer);
      const context = `claude exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}\npaths: ${fake.paths.join(" ")}`;

      expect(code, context).toBe(0);
      expect(stdout.trim(), context).toBe(REPLY);
      expect(stderr).toMatch(/agent-vault: vault "default", session s_[0-9a-f]+, services: anthropic; placeholders: ANTHROPIC_API_KEY; sandbox on; /);

      // The turn reached the fake API streaming, with the real key in x-api-key and nothing else.
      expect(fake.messages.length, context).toBeGreaterThanOrEqual(1);
      expect(fake.messages.some((m) => m.stream && m.raw.includes("pong"))).toBe(true);
      for (const m of fake.messages) {
        expect(m.apiKey).toBe(CANARY);
        expect(m.authorization).toBeUndefined();
      }
      for (const r of api.received) {
        expect(r.host).toBe("api.anthropic.com");
        expect(r.sni).toBe("api.anthropic.com");
      }
      // Whatever claude sent, the upstream never saw a placeholder: every key-shaped string on the wire is the real one.
      const wire = Buffer.concat(api.wire.map((w) => w.data)).toString("latin1");
      expect(wire).toContain(CANARY);
      expect(wire.match(PLACEHOLDER_SHAPE) ?? []).toEqual([]);

      // The real key is nowhere on claude's side: its output, its config and session files, the work dir.
      expect(stdout).not.toContain(CANARY);
      expect(stderr).not.toContain(CANARY);
      expect(filesContaining(claudeHome, CANARY)).toEqual([]);
      expect(filesContaining(workDir, CANARY)).toEqual([]);
      // No other host was asked for (deny would have logged a refusal), and the log has no key.
      const log = readFileSync(join(home.dir, "requests.log"), "utf8");
      expect(log).not.toContain(CANARY);
      const hosts = new Set(
        log
          .trim()
          .split("\n")
          .map((l) => (JSON.parse(l) as { host: string }).host),
      );
      expect([...hosts]).toEqual(["api.anthropic.com"]);
    },
    TIMEOUT_MS + 30_000,
  );
});
