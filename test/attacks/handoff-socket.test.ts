// Attack: the server's hand-off socket (server.sock in the data directory), where a sandboxed `run`
// sends the listening sockets of its sandbox's loopback so the server accepts the agent's
// connections itself. An agent outside the sandbox (same user, a shell) can write the data
// directory: it replaces the socket with a listener of its own to receive the next run's sockets
// (and with them that run's traffic and session token), or it feeds the real one junk, foreign
// descriptors and listeners of its own, or plants a directory there. Nothing may reach it, and the
// server must start and keep serving.
// Broker and attacker run as the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asAgent, giveToAgent } from "../support/attacker.ts";
import { cleanEnv, type TempHome } from "../support/binary.ts";
import { spawnLive, waitUntil } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";
import { agentServiceHome, fileScene } from "../support/scene.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const HOST = "api.svc.test";
const scene = fileScene("av-handoff-", { absent: [SECRET] });
const { scratch, cleanups, outputs } = scene;
let U: Upstream;
let ENV: Record<string, string>;
let home: TempHome;
let server: Server;

// The impostor: takes the socket's place and records every byte and descriptor sent to it; any
// listening socket it is handed, it accepts on and records what arrives there too.
const IMPOSTOR = `
import os, socket, sys, threading
path, log = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
out = open(log, "ab", buffering=0)
print("planted", flush=True)
def drain(listener):
    listener.settimeout(10)
    try:
        conn, _ = listener.accept()
        conn.settimeout(5)
        out.write(b"stolen connection: " + conn.recv(65536) + b"\\n")
    except Exception:
        pass
while True:
    c, _ = s.accept()
    c.settimeout(3)
    try:
        msg, fds, _, _ = socket.recv_fds(c, 65536, 16)
    except Exception:
        msg, fds = b"", []
    out.write(b"conn bytes=%d fds=%d " % (len(msg), len(fds)) + msg + b"\\n")
    for fd in fds:
        threading.Thread(target=drain, args=(socket.socket(fileno=fd),), daemon=True).start()
    c.close()
`;

// Junk for the real socket: garbage, the right tag with a file and /dev/null attached, a
// connection that says nothing, and the right tag with two listening sockets of the attacker's
// own (accepted, which is harmless: a connection there still needs a token, checked below).
const FEEDER = `
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
def conn():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    return c
c = conn(); c.sendall(b"x" * 200000); c.close()
f = open(out, "w+"); d = os.open("/dev/null", os.O_RDONLY)
c = conn(); socket.send_fds(c, [b"agent-vault listeners 1"], [f.fileno(), d]); time.sleep(0.3); c.close()
ls = []
for _ in range(2):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM); l.bind(("127.0.0.1", 0)); l.listen(8); ls.append(l)
port = ls[0].getsockname()[1]
c = conn(); socket.send_fds(c, [b"agent-vault listeners 1"], [l.fileno() for l in ls])
c.settimeout(3)
try:
    print("ack", c.recv(100).decode("latin1"), flush=True)
except Exception as e:
    print("ack none", type(e).__name__, flush=True)
for l in ls:
    l.close()
# A flood of connections that never send: closed past a few, and let go of after 2 s.
silent = conn()
many = [conn() for _ in range(50)]
# Through the attacker's own listener, now the server's: a CONNECT without a token.
try:
    x = socket.create_connection(("127.0.0.1", port), timeout=5)
    x.sendall(b"CONNECT ${HOST}:443 HTTP/1.1\\r\\nHost: ${HOST}:443\\r\\n\\r\\n")
    print("answer", x.recv(200).split(b"\\r\\n")[0].decode("latin1"), flush=True)
except Exception as e:
    print("answer none", type(e).__name__, flush=True)
silent.close()
for m in many:
    m.close()
c.close()
`;

function writeAgentFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text, { mode: 0o644 });
  giveToAgent(path);
  return path;
}

function injected(path: string): boolean {
  return U.received.some((r) => r.url.startsWith(path) && r.headers.authorization === `Bearer ${SECRET}`);
}

async function sandboxedCurl(path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await home.run(["run", "--", "sh", "-c", `echo "token=$AGENT_VAULT_SESSION_TOKEN"; curl -sS --fail-with-body https://${HOST}${path}`], { env: ENV });
  outputs.push(r.stdout, r.stderr);
  return r;
}

beforeAll(async () => {
  ({ upstream: U, env: ENV } = await agentUpstream(scratch, HOST, cleanups));
  home = await agentServiceHome(scene, SECRET, HOST, () => ENV);
  server = await startServer(home, ENV, cleanups);
  giveToAgent(scratch);
}, 60_000);

describe.skipIf(!HAVE_BWRAP)("the server's hand-off socket", () => {
  test("the server listens there, and the sandbox cannot see it", async () => {
    expect(existsSync(join(home.dir, "server.sock"))).toBe(true);
    const r = await home.run(["run", "--", "sh", "-c", 'ls -a "$AGENT_VAULT_HOME"'], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain("server.sock");
  }, 30_000);

  test("junk, foreign descriptors, silent connections and listeners of the agent's own: the server keeps serving, and a token is still needed", async () => {
    const feeder = writeAgentFile("feeder.py", FEEDER);
    const proc = Bun.spawn(asAgent(["/usr/bin/python3", feeder, join(home.dir, "server.sock"), join(scratch, "feeder-out")]), { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    outputs.push(stdout, stderr);
    expect(stdout, stderr).toContain("ack agent-vault listening 1");
    // A connection through a listener the agent handed over is the proxy's like any other.
    expect(stdout).toMatch(/answer HTTP\/1\.1 407/);
    expect(server.live.proc.exitCode).toBeNull();
    const r = await sandboxedCurl("/after-junk");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"path":"/after-junk"');
    expect(injected("/after-junk")).toBe(true);
  }, 60_000);

  test("a listener of the agent's own at the socket's path gets nothing; the run still works, relayed", async () => {
    const impostor = writeAgentFile("impostor.py", IMPOSTOR);
    const log = join(scratch, "impostor.log");
    writeFileSync(log, "");
    giveToAgent(log);
    const live = spawnLive(asAgent(["/usr/bin/python3", impostor, join(home.dir, "server.sock"), log]), cleanEnv(), "ignore");
    cleanups.push(() => void (live.proc.exitCode === null && live.proc.kill("SIGKILL")));
    await waitUntil("the impostor", () => live.stdout.includes("planted") || (live.proc.exitCode !== null && Promise.reject(new Error(live.stderr))), 10_000);

    const r = await sandboxedCurl("/with-impostor");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"path":"/with-impostor"');
    expect(injected("/with-impostor")).toBe(true);
    const token = /token=(\S+)/.exec(r.stdout)?.[1];
    expect(token).toMatch(/^avs_/);

    await Bun.sleep(300);
    const got = readFileSync(log, "latin1");
    outputs.push(got, live.stdout, live.stderr);
    // `run` connected, asked the kernel who listens there, and left without a byte.
    expect(got).toContain("conn bytes=0 fds=0");
    expect(got).not.toMatch(/fds=[1-9]/);
    expect(got).not.toContain("stolen connection");
    expect(got).not.toContain(token!);
    expect(got).not.toContain(SECRET);
  }, 60_000);

  test("a directory planted at the socket's path: the server still starts, and runs relay", async () => {
    await server.stop();
    const planted = join(home.dir, "server.sock");
    rmSync(planted, { force: true });
    mkdirSync(join(planted, "inside"), { recursive: true });
    giveToAgent(planted);
    server = await startServer(home, ENV, cleanups);
    const r = await sandboxedCurl("/with-directory");
    expect(r.code, r.stderr).toBe(0);
    expect(injected("/with-directory")).toBe(true);
    expect(server.live.proc.exitCode).toBeNull();
    outputs.push(server.live.stdout, server.live.stderr);
  }, 60_000);
});
