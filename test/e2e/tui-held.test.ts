// Held requests in the TUI (issue 16 item 1), in a real terminal: tmux runs `agent-vault tui` from
// the compiled binary while an agent's request waits under an `approve` rule. The banner shows it
// on whatever screen is open (here Credentials), with the agent's text escaped; `y` lets it go,
// `s` lets it and later ones of the same rule go for the session, `n` and a reason deny it. The
// local upstream (test/support/upstream.ts) is the ground truth: nothing reaches it before the key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { BINARY, cleanEnv, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { basicProxyAuth, openTunnel, type RawResponse } from "../support/proxy-client.ts";
import { runCleanups } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

const scratch = mkdtempSync(join(tmpdir(), "av-tui-held-"));
const cleanups: (() => Promise<void> | void)[] = [];
const HAVE_TMUX = Bun.spawnSync(["sh", "-c", "command -v tmux"]).exitCode === 0;
const SECRET = `ghp_${randomBytes(18).toString("hex")}`;
const HOST = "api.github.test";
const SOCKET = join(scratch, "tmux.sock");
const CONFIG = join(scratch, "tmux.conf");
writeFileSync(CONFIG, "set -s exit-empty off\nset -g status off\nset -g escape-time 0\n");

let H: TempHome;
let U: Upstream;
let S: Server;
let token: string;
let avCa: string;
let ENV: Record<string, string>;
const PANE = "held";

async function tmux(...args: string[]): Promise<string> {
  const env = cleanEnv({ ...H.env, TMUX: undefined, TMUX_PANE: undefined, NO_COLOR: undefined, CI: undefined, PS1: "$ " });
  const proc = Bun.spawn(["tmux", "-S", SOCKET, "-f", CONFIG, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`tmux ${args.join(" ")} failed (${code}): ${err}`);
  return out;
}

const screen = () => tmux("capture-pane", "-p", "-t", PANE);

async function until(probe: (s: string) => boolean, what: string, ms = 8000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await screen();
    if (probe(s)) return s;
    if (Date.now() > deadline) throw new Error(`nothing showed ${what} within ${ms} ms; screen:\n${s}`);
    await Bun.sleep(10);
  }
}

async function send(method: string, path: string, body?: string): Promise<RawResponse> {
  const t = await openTunnel({ proxyPort: S.mitmPort, host: HOST, proxyAuthorization: basicProxyAuth(token), ca: [avCa, readFileSync(U.caFile, "utf8")] });
  expect(t.connect.status, t.connect.text).toBe(200);
  const headers: [string, string][] = [["Host", HOST]];
  if (body !== undefined) headers.push(["Content-Type", "application/json"]);
  try {
    return await t.conn!.request(method, path, headers, body, 30_000);
  } finally {
    t.conn!.close();
  }
}

beforeAll(async () => {
  if (!HAVE_TMUX) return;
  U = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => U.close());
  H = await tempHome();
  cleanups.push(() => H.cleanup());
  ENV = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: U.caFile };
  for (const args of [
    ["vault", "credential", "set", "GITHUB_TOKEN=-"],
    ["vault", "service", "add", "--name", "github", "--host", HOST, "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"],
  ]) {
    const r = await H.run(args, { stdin: args.includes("GITHUB_TOKEN=-") ? SECRET : undefined });
    if (r.code !== 0) throw new Error(r.stderr);
  }
  S = await startServer(H, ENV, cleanups);
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  token = (await createSession(store, "default", { policy: { rules: [{ service: "github", approve: [{ methods: ["POST"], path: "/repos/*/merges" }] }] } })).token;
  await tmux("new-session", "-d", "-s", PANE, "-x", "110", "-y", "32", "sh");
  cleanups.push(async () => void (await tmux("kill-server").catch(() => "")));
  await tmux("send-keys", "-t", PANE, "-l", "--", `clear; ${BINARY} tui --no-bell`);
  await tmux("send-keys", "-t", PANE, "Enter");
  await until((s) => s.includes("Proposals") && s.includes("Credentials"), "the TUI");
  // Another screen than Proposals: the banner is for every screen.
  await tmux("send-keys", "-t", PANE, "2");
  await until((s) => s.includes("GITHUB_TOKEN"), "the Credentials screen");
}, 60_000);

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(!HAVE_TMUX)("the TUI answers held requests from any screen", () => {
  test("the banner shows the request, the agent's text escaped; y lets it go", async () => {
    const received = U.received.length;
    // A body with a terminal escape in it: shown as text, never obeyed.
    const pending = send("POST", "/repos/acme/merges", '{"title":"\\u001b[2Jmerge me"}'.replace("\\u001b", "\u001b"));
    const shown = await until((s) => s.includes("HELD #") && s.includes("y allow once"), "the banner, its keys armed");
    expect(shown).toContain(`POST ${HOST}/repos/acme/merges`);
    expect(shown).toContain("\\x1b[2Jmerge me");
    expect(shown).toContain("y allow once");
    expect(shown).toContain("GITHUB_TOKEN");
    expect(U.received.length).toBe(received);
    const pressed = performance.now();
    await tmux("send-keys", "-t", PANE, "y");
    const res = await pending;
    const ms = performance.now() - pressed;
    expect(res.status, res.text).toBe(200);
    expect(U.received.length).toBe(received + 1);
    console.log(`key press to the agent's answer: ${ms.toFixed(1)} ms`);
    await until((s) => !s.includes("HELD #"), "the banner gone");
  }, 30_000);

  test("a y pressed as a request comes to the front is not taken for it (the agent could line one up behind another)", async () => {
    const received = U.received.length;
    const pending = send("POST", "/repos/race/merges", "{}");
    const shown = await until((s) => s.includes("/repos/race/merges"), "the banner");
    expect(shown).toContain("answer in a moment");
    await tmux("send-keys", "-t", PANE, "y");
    await Bun.sleep(1500);
    expect(U.received.length).toBe(received);
    expect(await screen()).toContain("/repos/race/merges");
    await until((s) => s.includes("y allow once"), "the keys armed");
    await tmux("send-keys", "-t", PANE, "y");
    expect((await pending).status).toBe(200);
    expect(U.received.length).toBe(received + 1);
    await until((s) => !s.includes("HELD #"), "the banner gone");
  }, 30_000);

  test("n with a reason denies it: 403 approval_denied carrying the reason", async () => {
    const received = U.received.length;
    const pending = send("POST", "/repos/deny/merges", "{}");
    await until((s) => s.includes("/repos/deny/merges") && s.includes("y allow once"), "the banner, its keys armed");
    await tmux("send-keys", "-t", PANE, "n");
    await until((s) => s.includes("Reason for denying"), "the reason prompt");
    await tmux("send-keys", "-t", PANE, "-l", "--", "not today");
    await tmux("send-keys", "-t", PANE, "Enter");
    const res = await pending;
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: "approval_denied", reason: "not today" });
    expect(U.received.length).toBe(received);
  }, 30_000);

  test("s allows it and later requests of the rule for the rest of the session", async () => {
    const received = U.received.length;
    const pending = send("POST", "/repos/s/merges", "{}");
    await until((s) => s.includes("/repos/s/merges") && s.includes("y allow once"), "the banner, its keys armed");
    await tmux("send-keys", "-t", PANE, "s");
    expect((await pending).status).toBe(200);
    const later = await send("POST", "/repos/later/merges", "{}");
    expect(later.status).toBe(200);
    expect(U.received.length).toBe(received + 2);
    const all = (await tmux("capture-pane", "-p", "-t", PANE, "-S", "-", "-E", "-")) + (await screen());
    expect(all).not.toContain(SECRET.slice(4, 16));
  }, 30_000);
});
