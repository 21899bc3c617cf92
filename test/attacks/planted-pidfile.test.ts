// Attack: the agent plants server.pid. It starts its own listener (as the same user), writes a
// pidfile naming it, and waits for the user's next `run` to point a new agent at it: the session
// token would arrive in the agent API's Authorization header and in the proxy's
// Proxy-Authorization. Variants: a listener that answers anything with 200, and one that relays
// every byte to the real server (so it can pass the real server's answers off as its own). `run`
// must refuse with a clear error before any token exists, the listener must receive no token, and
// `server stop` must not signal a planted pid.
import { beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TempHome } from "../support/binary.ts";
import { startServer } from "../support/server.ts";
import { type AgentListener, agentListener, agentServiceHome, fileScene } from "../support/scene.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-planted-pidfile-", { openToAgent: true, absent: [SECRET] });
const { cleanups, outputs } = scene;

// The attacker's listener: records every byte it receives; answers 200 {"status":"ok"} to every
// request, or relays each connection to RELAY_PORT. Prints its port when ready.
const LISTENER = `
import socket, sys, threading
log, relay = sys.argv[1], int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(50)
print(srv.getsockname()[1], flush=True)
lock = threading.Lock()
def record(data):
    with lock:
        with open(log, "ab") as f: f.write(data)
def pump(a, b, rec):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            if rec: record(d)
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(c):
    if relay:
        u = socket.create_connection(("127.0.0.1", relay))
        threading.Thread(target=pump, args=(u, c, False), daemon=True).start()
        pump(c, u, True); return
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            record(d)
            c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 15\\r\\n\\r\\n{"status":"ok"}')
    except OSError: pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

type Listener = AgentListener;

/** The attacker's listener (LISTENER), relaying to `relayPort` when it is not 0. */
const startListener = (name: string, relayPort = 0): Promise<Listener> => agentListener(scene, name, LISTENER, [String(relayPort)]);

function plantPidFile(home: TempHome, record: { pid: number; api_port: number; mitm_port: number }): void {
  writeFileSync(join(home.dir, "server.pid"), `${JSON.stringify({ ...record, host: "127.0.0.1", started_at: new Date().toISOString() })}\n`);
  home.reown();
}

/** What the user runs: an agent that talks to the API and through the proxy with its token. */
const AGENT = ["sh", "-c", 'curl -s -m 3 -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" "$AGENT_VAULT_ADDR/discover"; curl -s -m 3 -o /dev/null https://api.svc.test/; echo done'];

let H: TempHome;

beforeAll(async () => {
  H = await agentServiceHome(scene, SECRET, "api.svc.test", () => ({}));
}, 60_000);

function expectNoToken(listener: Listener): void {
  const got = listener.received();
  expect(got).not.toContain("avs_");
  expect(got).not.toMatch(/proxy-authorization|authorization: bearer/i);
  expect(got).not.toContain(SECRET);
}

async function sessionsOnFile(): Promise<number> {
  const list = await H.run(["vault", "session", "list", "--all", "--json"]);
  outputs.push(list.stdout, list.stderr);
  return (JSON.parse(list.stdout) as unknown[]).length;
}

describe("a planted server.pid", () => {
  // Each test starts with no pidfile (one a test planted is not the next one's business).
  beforeEach(() => rmSync(join(H.dir, "server.pid"), { force: true }));

  test("naming the agent's own listener: run refuses before making a session, and the listener gets no token", async () => {
    const listener = await startListener("answers");
    plantPidFile(H, { pid: listener.live.proc.pid, api_port: listener.port, mitm_port: listener.port });
    const before = await sessionsOnFile();
    const result = await H.run(["run", "--", ...AGENT]);
    outputs.push(result.stdout, result.stderr);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^agent-vault: error: .*did not prove it is this vault's server/m);
    expect(result.stderr).toContain("hint:");
    expect(result.stdout).not.toContain("done");
    expectNoToken(listener);
    // Only the nonce of the challenge reached it.
    expect(listener.received()).toContain("/v1/server-proof?nonce=");
    expect(await sessionsOnFile()).toBe(before);
  }, 60_000);

  test("naming a relay to the real server: the real server's proof names its own pid and ports, so run still refuses", async () => {
    const server = await startServer(H, {}, cleanups);
    const real = JSON.parse(readFileSync(join(H.dir, "server.pid"), "utf8")) as { pid: number };
    const relay = await startListener("relay", server.apiPort);
    // The relay claims the real server's pid, with its own port for both listeners.
    plantPidFile(H, { pid: real.pid, api_port: relay.port, mitm_port: relay.port });
    const result = await H.run(["run", "--", ...AGENT]);
    outputs.push(result.stdout, result.stderr);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("did not prove it is this vault's server");
    expectNoToken(relay);
    await server.stop();
  }, 60_000);

  test("server stop signals only a process that proves it is this vault's server", async () => {
    const listener = await startListener("victim");
    plantPidFile(H, { pid: listener.live.proc.pid, api_port: listener.port, mitm_port: listener.port });
    const result = await H.run(["server", "stop"]);
    outputs.push(result.stdout, result.stderr);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("not signalling it");
    await Bun.sleep(300);
    expect(listener.live.proc.exitCode).toBeNull();
    expect(listener.live.proc.signalCode).toBeNull();

    // The real server, found through its own pidfile, is stopped.
    const server = await startServer(H, {}, cleanups);
    const stop = await H.run(["server", "stop"]);
    outputs.push(stop.stdout, stop.stderr);
    expect(stop.code, stop.stderr).toBe(0);
    await Promise.race([server.live.proc.exited, Bun.sleep(5000)]);
    expect(server.live.proc.exitCode).not.toBeNull();
  }, 60_000);

  test("with the real server's own pidfile, run uses it", async () => {
    const server = await startServer(H, {}, cleanups);
    const result = await H.run(["run", "--", "sh", "-c", 'curl -s -m 3 -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" "$AGENT_VAULT_ADDR/discover"']);
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ vault: "default" });
    expect(result.stderr).not.toContain("error");
    await server.stop();
  }, 60_000);
});
