// Attack: the agent outlives its `run`. It kills `run` (kill -9 $PPID), or the user Ctrl-C's a
// self-served run while the agent keeps the vault's lock (so no revocation can be written), and a
// helper the agent left in the background keeps using the session token against a server that is
// still running. The session must die with its run: within 2 s the token
// gets 407 on the proxy and 401 on the agent API, and a tunnel opened before is closed. Broker and
// attacker run as the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, type TempHome } from "../support/binary.ts";
import { type Live, spawnLive, waitUntil } from "../support/process.ts";
import { basicProxyAuth, openPlain, openTunnel } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";
import { agentServiceHome, fileScene } from "../support/scene.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const HOST = "api.svc.test";
const scene = fileScene("av-session-after-run-", { absent: [SECRET] });
const { scratch, cleanups, outputs } = scene;
let U: Upstream;
let ENV: Record<string, string>;

// The "agent": prints its token and its pid, then sleeps (a background helper would do the same).
const AGENT = ["sh", "-c", 'printf "TOKEN=%s PID=%s\\n" "$AGENT_VAULT_SESSION_TOKEN" "$$"; exec sleep 300'];

const prepareHome = () => agentServiceHome(scene, SECRET, HOST, () => ENV);

async function startRun(home: TempHome): Promise<{ live: Live; token: string; agentPid: number }> {
  const live = spawnLive(home.argv(["run", "--", ...AGENT]), cleanEnv({ ...home.env, ...ENV }), "ignore");
  const line = await waitUntil(
    "the agent's token",
    () => {
      if (live.proc.exitCode !== null) throw new Error(`run exited (${live.proc.exitCode}): ${live.stderr}`);
      return /TOKEN=(avs_\S+) PID=(\d+)/.exec(live.stdout);
    },
    20_000,
  );
  const agentPid = Number(line[2]);
  cleanups.push(() => {
    try {
      process.kill(agentPid, "SIGKILL");
    } catch {
      // gone
    }
    if (live.proc.exitCode === null) live.proc.kill("SIGKILL");
  });
  return { live, token: line[1]!, agentPid };
}

/** The proxy's answer to a CONNECT with this token. */
async function connectStatus(server: Server, token: string): Promise<number> {
  const conn = await openPlain(server.mitmPort);
  try {
    const res = await conn.request(
      "CONNECT",
      `${HOST}:443`,
      [
        ["Host", `${HOST}:443`],
        ["Proxy-Authorization", basicProxyAuth(token)],
      ],
      undefined,
      5000,
    );
    return res.status;
  } finally {
    conn.close();
  }
}

async function apiStatus(server: Server, token: string): Promise<number> {
  const conn = await openPlain(server.apiPort);
  try {
    return (
      await conn.request(
        "GET",
        "/discover",
        [
          ["Host", "127.0.0.1"],
          ["Authorization", `Bearer ${token}`],
        ],
        undefined,
        5000,
      )
    ).status;
  } finally {
    conn.close();
  }
}

/** Polls until the token is refused; returns how long that took after `since`. */
async function refusedWithin(server: Server, token: string, since: number): Promise<number> {
  await waitUntil("the token to be refused", async () => (await connectStatus(server, token)) === 407, 5000);
  const elapsed = Date.now() - since;
  expect(await apiStatus(server, token)).toBe(401);
  return elapsed;
}

beforeAll(async () => {
  ({ upstream: U, env: ENV } = await agentUpstream(scratch, HOST, cleanups));
}, 60_000);

describe("a session dies with its run", () => {
  test("kill -9 of a run served by a separate server: the token is refused within 2 s and open tunnels close", async () => {
    const home = await prepareHome();
    const server = await startServer(home, ENV, cleanups);
    const { live, token } = await startRun(home);
    expect(await connectStatus(server, token)).toBe(200);
    expect(await apiStatus(server, token)).toBe(200);
    const avCa = readFileSync(join(home.dir, "ca.pem"), "utf8");
    const tunnel = await openTunnel({ proxyPort: server.mitmPort, host: HOST, proxyAuthorization: basicProxyAuth(token), ca: [avCa, readFileSync(U.caFile, "utf8")] });
    expect(tunnel.connect.status).toBe(200);
    const closed = new Promise<number>((resolve) => tunnel.conn!.socket.once("close", () => resolve(Date.now())));

    const killedAt = Date.now();
    live.proc.kill("SIGKILL");
    await live.proc.exited;
    const elapsed = await refusedWithin(server, token, killedAt);
    expect(elapsed).toBeLessThan(2000);
    const closedAt = await Promise.race([closed, Bun.sleep(3000).then(() => Infinity)]);
    expect(closedAt - killedAt).toBeLessThan(2000);
    expect(server.live.proc.exitCode).toBeNull();
    outputs.push(live.stdout, live.stderr, server.live.stdout, server.live.stderr);
  }, 60_000);

  test("Ctrl-C (SIGINT) of a self-served run while the agent holds the vault lock: a server started later refuses the token within 2 s", async () => {
    const home = await prepareHome();
    // No server yet: run serves the proxy itself.
    const { live, token } = await startRun(home);
    expect(live.stderr).not.toContain("error");
    // The user starts a server for the same data directory while the run is going.
    const server = await startServer(home, ENV, cleanups);
    expect(await connectStatus(server, token)).toBe(200);
    // The agent keeps the vault's lock fresh, so `run` cannot write the revocation on its way out.
    const lock = join(home.dir, "vault.av.lock");
    const holder = Bun.spawn(asAgent(["sh", "-c", `while :; do mkdir "${lock}" 2>/dev/null; touch "${lock}"; sleep 0.2; done`]), { stdout: "ignore", stderr: "ignore" });
    cleanups.push(() => holder.kill("SIGKILL"));
    await waitUntil("the planted lock", () => existsSync(lock), 5000);

    const stoppedAt = Date.now();
    live.proc.kill("SIGINT");
    await Promise.race([live.proc.exited, Bun.sleep(5000)]);
    const elapsed = await refusedWithin(server, token, stoppedAt);
    expect(elapsed).toBeLessThan(2000);
    outputs.push(live.stdout, live.stderr, server.live.stdout, server.live.stderr);
  }, 60_000);

  test("kill -9 of a self-served run: a server started afterwards never honours its token", async () => {
    const home = await prepareHome();
    const { live, token } = await startRun(home);
    live.proc.kill("SIGKILL");
    await live.proc.exited;
    const server = await startServer(home, ENV, cleanups);
    expect(await connectStatus(server, token)).toBe(407);
    expect(await apiStatus(server, token)).toBe(401);
    const list = await home.run(["vault", "session", "list", "--all", "--json"]);
    const sessions = JSON.parse(list.stdout) as { label: string; revoked_at: string | null }[];
    expect(sessions.some((s) => s.label === "sh")).toBe(true);
    outputs.push(live.stdout, live.stderr, list.stdout, list.stderr);
  }, 60_000);
});
