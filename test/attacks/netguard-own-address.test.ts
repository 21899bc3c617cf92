// Attack: reach a listener on this machine through the proxy by the machine's own non-loopback
// address. The agent starts a listener on 0.0.0.0 (as itself) and asks the proxy to connect to
// eth0's address, which loopback checks alone never catch: CONNECT, the IPv4-mapped form
// [::ffff:a.b.c.d], decimal / octal / hex / short spellings, and absolute-URL http:// requests
// through HTTP_PROXY, with Python raw sockets and curl, both as the unprivileged user. Every one
// must answer 403 forbidden_address and no byte of the canary may reach the listener. Controls: the
// listener is reachable directly (so the address and port are right), and a proxy that
// allowlists the address does reach it (so the harness sees what gets through).
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent, giveToAgent, PY_READ_HEAD, PY_ERROR_CODE } from "../support/attacker.ts";
import { cleanEnv, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { type AgentListener, agentListener, fileScene } from "../support/scene.ts";

/** The machine's own IPv4 address that is not loopback (eth0's), if it has one. */
const OWN = Object.values(networkInterfaces())
  .flatMap((entries) => entries ?? [])
  .find((e) => e.family === "IPv4" && !e.internal)?.address;

if (!OWN) {
  console.warn("netguard-own-address: skipped, this machine has no non-loopback IPv4 interface to attack");
}

const scene = fileScene("av-own-address-", { openToAgent: true });
const { scratch, cleanups } = scene;
const CANARY = `canary-${randomBytes(16).toString("hex")}`;
const CONTROL = `control-${randomBytes(16).toString("hex")}`;

// Records every byte it receives into a file; answers each connection's first data with a 200.
const LISTENER = `
import socket, sys, threading
log = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 0)); srv.listen(50)
print(srv.getsockname()[1], flush=True)
lock = threading.Lock()
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            with lock:
                with open(log, "ab") as f: f.write(d)
            c.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
    except OSError: pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

// The attacker's client: one raw-socket attempt per argument (connect|absolute, host, port), each
// printed as one JSON line with the status line and the error code the proxy answered.
const CLIENT = `
import base64, json, socket, sys
proxy_port, token, canary = int(sys.argv[1]), sys.argv[2], sys.argv[3]
auth = "Basic " + base64.b64encode((token + ":default").encode()).decode()
${PY_READ_HEAD}
${PY_ERROR_CODE}
for spec in sys.argv[4:]:
    kind, host, port = spec.split("|")
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    try:
        if kind == "connect":
            s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nProxy-Authorization: {auth}\\r\\n\\r\\n".encode())
            text = head(s)
            if text.startswith("HTTP/1.1 200"):
                s.sendall(f"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: {len(canary)}\\r\\n\\r\\n{canary}".encode())
                head(s)
        else:
            s.sendall(f"POST http://{host}:{port}/collect HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nProxy-Authorization: {auth}\\r\\nContent-Length: {len(canary)}\\r\\n\\r\\n{canary}".encode())
            text = head(s)
    except OSError as e:
        text = "error " + str(e)
    s.close()
    print(json.dumps({"spec": spec, "status": text.split("\\r\\n")[0], "code": code_of(text), "head": text}), flush=True)
`;

type Listener = AgentListener;

const startListener = (): Promise<Listener> => agentListener(scene, "listener", LISTENER);

/** A broker (its own data directory and server) and a session token for the attacker. */
async function startBroker(env: Record<string, string>): Promise<{ home: TempHome; server: Server; token: string }> {
  const home = await tempHome({ asAgent: true });
  cleanups.push(() => home.cleanup());
  const store = await VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
  const token = (await createSession(store, "default", {})).token;
  home.reown();
  const server = await startServer(home, env, cleanups);
  return { home, server, token };
}

async function runAs(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(asAgent(argv), { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function hex32(address: string): string {
  return address
    .split(".")
    .map((n) => Number(n).toString(16).padStart(2, "0"))
    .join("");
}

/** Every spelling of an IPv4 address a resolver or URL parser reads as that address. */
function spellings(address: string): string[] {
  const [a, b, c, d] = address.split(".").map(Number) as [number, number, number, number];
  const value = (((a << 24) >>> 0) + (b << 16) + (c << 8) + d) >>> 0;
  return [
    address,
    String(value), // decimal
    `0${value.toString(8)}`, // octal, one part
    `0x${value.toString(16)}`, // hex, one part
    `0${a.toString(8)}.0${b.toString(8)}.0${c.toString(8)}.0${d.toString(8)}`, // octal parts
    `0x${a.toString(16)}.0x${b.toString(16)}.0x${c.toString(16)}.0x${d.toString(16)}`, // hex parts
    `${a}.${b}.${(c << 8) + d}`, // short: the last part fills two bytes
    `${a}.${(b << 16) + (c << 8) + d}`, // short: three bytes
    `${address}.`, // trailing dot
  ];
}

let listener: Listener;
let client: string;

beforeAll(async () => {
  if (!OWN) return;
  listener = await startListener();
  const dir = mkdtempSync(join(scratch, "client-"));
  client = join(dir, "client.py");
  writeFileSync(client, CLIENT);
  giveToAgent(dir);
}, 60_000);

describe.skipIf(!OWN)(`the machine's own address (${OWN ?? "none"}) through the proxy`, () => {
  test("control: the attacker's listener answers at that address directly", async () => {
    const direct = await runAs(["curl", "-s", "-m", "5", "--noproxy", "*", "-d", CONTROL, `http://${OWN}:${listener.port}/`]);
    expect(direct.stdout).toBe("ok");
    expect(listener.received()).toContain(CONTROL);
  }, 20_000);

  test("CONNECT, IPv4-mapped, every numeric spelling and absolute-URL http: 403 forbidden_address, zero bytes at the listener", async () => {
    const { server, token } = await startBroker({});
    const before = listener.received().length;
    const hosts = [...spellings(OWN!), `[::ffff:${OWN}]`, `[::ffff:${hex32(OWN!).slice(0, 4)}:${hex32(OWN!).slice(4)}]`, `[64:ff9b::${OWN}]`];
    const specs = [...hosts.map((h) => `connect|${h}|${listener.port}`), ...hosts.map((h) => `absolute|${h}|${listener.port}`)];
    const result = await runAs(["/usr/bin/python3", client, String(server.mitmPort), token, CANARY, ...specs]);
    expect(result.stderr).toBe("");
    const lines = result.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { spec: string; status: string; code: string | null; head: string });
    expect(lines.length).toBe(specs.length);
    // Refused by netguard as the address it means; only a host the proxy does not read at all may
    // be a 400 instead: a trailing dot (no valid host name), and an IPv6 literal in an absolute URL
    // (the plain-http listener takes host names and IPv4 only).
    const unreadable = (spec: string) => spec.includes(`${OWN}.|`) || spec.startsWith("absolute|[");
    const unexpected = lines.filter((line) => {
      const refusedByNetguard = line.status.startsWith("HTTP/1.1 403") && line.code === "forbidden_address";
      const refusedUnread = unreadable(line.spec) && line.status.startsWith("HTTP/1.1 400") && line.code === "invalid_request";
      return !(refusedByNetguard || refusedUnread) || line.head.includes(CANARY);
    });
    expect(unexpected.map((l) => `${l.spec} → ${l.status} ${l.code}`)).toEqual([]);
    expect(listener.received().length).toBe(before);
    expect(listener.received()).not.toContain(CANARY);
  }, 60_000);

  test("curl through HTTPS_PROXY (CONNECT) and HTTP_PROXY (absolute URL): refused, zero bytes at the listener", async () => {
    const { server, token } = await startBroker({});
    const before = listener.received().length;
    const proxy = `http://${token}:default@127.0.0.1:${server.mitmPort}`;
    for (const host of [OWN!, spellings(OWN!)[1]!]) {
      const plain = await runAs(["curl", "-s", "-m", "5", "-x", proxy, "-d", CANARY, "-D", "-", `http://${host}:${listener.port}/`]);
      expect(plain.stdout).toMatch(/^HTTP\/1\.1 403/);
      expect(plain.stdout.toLowerCase()).toContain("x-agent-vault-error: forbidden_address");
      const tunnel = await runAs(["curl", "-s", "-m", "5", "-p", "-x", proxy, "-d", CANARY, "-o", "/dev/null", "-w", "%{http_connect}", `http://${host}:${listener.port}/`]);
      expect(tunnel.stdout).toBe("403");
      for (const text of [plain.stdout, plain.stderr, tunnel.stdout, tunnel.stderr]) expect(text).not.toContain(CANARY);
    }
    expect(listener.received().length).toBe(before);
  }, 60_000);

  test("control: with the address in AGENT_VAULT_NETWORK_ALLOWLIST the same CONNECT reaches the listener", async () => {
    const { server, token } = await startBroker({ AGENT_VAULT_NETWORK_ALLOWLIST: `${OWN}/32` });
    const marker = `allowed-${randomBytes(8).toString("hex")}`;
    const result = await runAs(["/usr/bin/python3", client, String(server.mitmPort), token, marker, `connect|${OWN}|${listener.port}`]);
    expect(JSON.parse(result.stdout.trim()).status).toBe("HTTP/1.1 200 Connection Established");
    await waitUntil("the allowed bytes at the listener", () => listener.received().includes(marker), 5_000);
  }, 60_000);
});
