// Attack (red team, HIGH): an agent files a proposal for an OAuth credential whose token URL (and
// authorization URL) is its own server. The user approves it and completes it as the approval
// says, even naming the real provider: `oauth paste KEY --provider linear` posted the refresh
// token to the agent's server, and `oauth connect` the code, the PKCE verifier and the client
// secret. Now a URL an agent's proposal wrote is used only where it is a known provider's: a
// provider the user names replaces it, and otherwise connect and paste refuse, naming the URL,
// until the user passes it themselves. The agent's server gets zero bytes in every case; the real
// provider's host gets the paste. Broker and agent (curl) run as the unprivileged user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups } from "../support/process.ts";
import { agentUpstream, replyOk, type Upstream } from "../support/upstream.ts";
import { type Server, startServer } from "../support/server.ts";

const cleanups: (() => Promise<void> | void)[] = [];
const outputs: string[] = [];
const REFRESH = `lin_rt_canary_${randomBytes(16).toString("hex")}`;
const CLIENT_SECRET = `gh_secret_canary_${randomBytes(16).toString("hex")}`;
const EVIL = "tok.attacker.test";
const LINEAR = "api.linear.app";
const GITHUB = "github.com";

let H: TempHome;
let S: Server;
let U: Upstream;
let session = "";
let ENV: Record<string, string>;
let cli: ReturnType<typeof recordingCli>;

/** What reached `host` on the upstream's raw wire (each connection's bytes, by SNI). */
function wire(host: string): string {
  return Buffer.concat(U.wire.filter((w) => w.sni === host).map((w) => w.data)).toString("latin1");
}

/** The agent files a proposal with curl, as the unprivileged user. */
async function propose(body: unknown): Promise<number> {
  const argv = ["curl", "-s", "-m", "10", "-X", "POST", "-H", `Authorization: Bearer ${session}`, "-H", "content-type: application/json", "--data-binary", JSON.stringify(body)];
  argv.push(`http://127.0.0.1:${S.apiPort}/v1/proposals`);
  const proc = Bun.spawn(asAgent(argv), { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return (JSON.parse(stdout) as { id: number }).id;
}

/** `oauth connect` with these arguments and the client secret on stdin, until its timeout: what it printed. */
async function connectUntilTimeout(args: readonly string[]): Promise<string> {
  const proc = Bun.spawn(H.argv(["oauth", "connect", ...args, "--client-secret-stdin", "--no-browser"]), {
    env: cleanEnv({ ...H.env, ...ENV }),
    stdin: new Blob([`${CLIENT_SECRET}\n`]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(stderr);
  return stderr;
}

function oauthSlot(key: string, oauth: Record<string, string>) {
  return { credentials: [{ action: "set", key, type: "oauth", description: `${key} (OAuth)`, oauth }], message: `need ${key}` };
}

beforeAll(async () => {
  const scratch = mkdtempSync(join(tmpdir(), "av-oauth-proposal-urls-"));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  H = await tempHome({ asAgent: true });
  cleanups.push(() => H.cleanup());
  // One recording upstream stands for the agent's server and for the real providers' hosts.
  const up = await agentUpstream(scratch, EVIL, cleanups, replyOk);
  U = up.upstream;
  ENV = { ...up.env, AGENT_VAULT_CONNECT_TO: [EVIL, LINEAR, GITHUB].map((h) => `${h}:443:127.0.0.1:${U.port}`).join(",") };
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  session = (await createSession(store, "default", { label: "agent" })).token;
  H.reown();
  S = await startServer(H, ENV, cleanups);
  cli = recordingCli(
    () => H,
    () => ENV,
    outputs,
  );
}, 60_000);

afterAll(async () => {
  await runCleanups(cleanups);
}, 30_000);

describe("an OAuth slot's URLs chosen by the agent", () => {
  test("paste: refused until the user names the provider, which then gets the token; the agent's server gets nothing", async () => {
    const id = await propose(oauthSlot("LINEAR_OAUTH", { authorization_url: "https://linear.app/oauth/authorize", token_url: `https://${EVIL}/oauth/token?$(touch%20pwned)` }));
    const shown = await cli.ok(["vault", "proposal", "show", String(id)]);
    expect(shown.stdout).toContain(`token URL https://${EVIL}/oauth/token?$(touch%20pwned)`);
    expect(shown.stdout).toContain("its OAuth URLs are the agent's choice");
    const approved = await cli.ok(["vault", "proposal", "approve", String(id), "--yes"]);
    expect(approved.stderr).toContain("(the agent chose where LINEAR_OAUTH's tokens go, not a known provider's: check these URLs first, or use --provider NAME instead)");
    // The command it suggests quotes the agent's URL, so pasting it into a shell runs nothing of it.
    expect(approved.stderr).toContain(`--token-url 'https://${EVIL}/oauth/token?$(touch%20pwned)'`);
    const vaultBefore = readFileSync(join(H.dir, "vault.av"));

    const refused = await cli.av(["oauth", "paste", "LINEAR_OAUTH", "--client-id", "my-app", "--token-auth-method", "none", "--refresh-token-stdin"], `${REFRESH}\n`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`LINEAR_OAUTH's token URL https://${EVIL}/oauth/token?$(touch%20pwned) was written by the agent's proposal #${id} and is not a known provider's`);
    expect(readFileSync(join(H.dir, "vault.av")).equals(vaultBefore)).toBe(true);

    // Named: the provider's own token URL, here a stand-in that refuses (it is not an OAuth server).
    await cli.av(["oauth", "paste", "LINEAR_OAUTH", "--provider", "linear", "--client-id", "my-app", "--token-auth-method", "none", "--refresh-token-stdin"], `${REFRESH}\n`);
    expect(wire(LINEAR)).toContain(`refresh_token=${REFRESH}`);
    expect(wire(EVIL)).toBe("");
  }, 60_000);

  test("connect: refused until restated or named; a named provider's sign-in page is the one printed; the agent's server gets nothing", async () => {
    const id = await propose(oauthSlot("GH_OAUTH", { authorization_url: `https://${EVIL}/login/oauth/authorize`, token_url: `https://${EVIL}/login/oauth/access_token`, client_id: "Iv1.realapp" }));
    await cli.ok(["vault", "proposal", "approve", String(id), "--yes"]);
    const refused = await cli.av(["oauth", "connect", "GH_OAUTH", "--client-secret-stdin", "--no-browser"], `${CLIENT_SECRET}\n`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`GH_OAUTH's authorization URL https://${EVIL}/login/oauth/authorize was written by the agent's proposal #${id}`);
    // Named: the browser is sent to GitHub's page (the test stops there: no browser consents).
    const stderr = await connectUntilTimeout(["GH_OAUTH", "--provider", "github", "--timeout", "3"]);
    expect(stderr).toMatch(/^https:\/\/github\.com\/login\/oauth\/authorize\?/m);
    expect(stderr).not.toContain(EVIL);
    expect(wire(EVIL)).toBe("");
  }, 60_000);

  test("a known provider's URLs with the agent's own client, scopes and no secret: all shown, and a provider named brings its own scopes and secret", async () => {
    const id = await propose(
      oauthSlot("GDRIVE", {
        authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        scopes: "openid https://mail.google.com/ https://www.googleapis.com/auth/gmail.send",
        client_id: "123-attackerapp.apps.googleusercontent.com",
        token_auth_method: "none",
      }),
    );
    const shown = await cli.ok(["vault", "proposal", "show", String(id)]);
    expect(shown.stdout).toContain('client id 123-attackerapp.apps.googleusercontent.com, scopes "openid https://mail.google.com/ https://www.googleapis.com/auth/gmail.send", token auth none');
    await cli.ok(["vault", "proposal", "approve", String(id), "--yes"]);
    const stderr = await connectUntilTimeout(["GDRIVE", "--provider", "google", "--client-id", "my-own-app", "--timeout", "2"]);
    const url = new URL(/^(https:\/\/accounts\.google\.com\S+)$/m.exec(stderr)?.[1] ?? "https://none.invalid/");
    expect(url.searchParams.get("client_id")).toBe("my-own-app");
    expect(url.searchParams.get("scope") ?? "").not.toContain("mail.google.com");
  }, 60_000);

  test("nothing the agent can read holds the refresh token or the client secret", () => {
    const logFile = join(H.dir, "requests.log");
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    for (const canary of [REFRESH, CLIENT_SECRET]) {
      expect(wire(EVIL).includes(canary)).toBe(false);
      expect(log.includes(canary)).toBe(false);
      for (const out of outputs) expect(out.includes(canary)).toBe(false);
    }
  });
});
