// Attack: use the proxy's upstream warm-up (a CONNECT it intercepts opens the upstream connection
// before any request, src/proxy/steps/route.ts) to reach hosts the agent cannot reach with
// requests. The agent (the unprivileged user, raw sockets in Python) sends CONNECTs, with and
// without its TLS handshake with the proxy, with and without a request: to a host no service
// covers under `unmatched: deny` (AGENT_VAULT_CONNECT_TO points it at the attacker's listener), and
// to hosts services do cover but that are, or resolve to, loopback with no connect-to override
// (netguard refuses them). The listener records every connection it accepts and every byte: it
// must see none, and the service's credential (the canary) must reach neither it nor the agent.
// The covered, allowed host is mapped to an impostor: a TLS listener whose certificate the proxy
// does not trust. It shows the harness sees a warm-up when one happens (control), and that a warm
// connection is verified like any other: the credential never goes out on it. Hosts that a
// service covers but where every request is refused (the service is disabled, or not the
// session's) must not be warmed either.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent, giveToAgent, PY_READ_HEAD, PY_ERROR_CODE } from "../support/attacker.ts";
import { cleanEnv, recordingCli, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { type AgentListener, agentHome, agentListener, fileScene } from "../support/scene.ts";
import { type Server, startServer } from "../support/server.ts";

const CANARY = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-warm-attack-", { openToAgent: true, absent: [CANARY] });
const { scratch, cleanups, outputs } = scene;
/** How long the attacker holds each tunnel open, and how long the listener is watched after. */
const HOLD_S = 0.3;
const QUIET_MS = 800;
const ACCEPT = "\n<accepted>\n";

// Records a marker for each connection it accepts and every byte it receives; answers nothing.
const LISTENER = `
import socket, sys, threading
log = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(100)
print(srv.getsockname()[1], flush=True)
lock = threading.Lock()
def write(d):
    with lock:
        with open(log, "ab") as f: f.write(d)
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            write(d)
    except OSError: pass
    c.close()
while True:
    c, _ = srv.accept()
    write(${JSON.stringify(ACCEPT)}.encode())
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

// The same, behind TLS with the certificate and key given as arguments; what it records is what
// arrived after decryption, and it answers each request with a 200.
const IMPOSTOR = LISTENER.replace("lock = threading.Lock()", "import ssl\ntls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); tls.load_cert_chain(sys.argv[2], sys.argv[3])\nlock = threading.Lock()")
  .replace("def serve(c):\n    try:", "def serve(c):\n    try:\n        c = tls.wrap_socket(c, server_side=True)")
  .replace("            write(d)", '            write(d)\n            if b"\\r\\n\\r\\n" in d: c.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")')
  .replace("    except OSError: pass", "    except (OSError, ssl.SSLError): pass");

// One attempt per argument `mode|host|port`: CONNECT, then (tls) the TLS handshake with the proxy,
// then (request) a request; each tunnel is held open a moment. One JSON line per attempt.
const CLIENT = `
import base64, json, socket, ssl, sys, time
proxy_port, token, ca, hold = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
auth = "Basic " + base64.b64encode((token + ":default").encode()).decode()
${PY_READ_HEAD}
${PY_ERROR_CODE}
for spec in sys.argv[5:]:
    mode, host, port = spec.split("|")
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    out = {"spec": spec}
    try:
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nProxy-Authorization: {auth}\\r\\n\\r\\n".encode())
        out["connect"] = head(s).split("\\r\\n")[0]
        if mode in ("tls", "request") and out["connect"].startswith("HTTP/1.1 200"):
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = False
            s = ctx.wrap_socket(s, server_hostname=host)
            out["tls"] = s.version()
            if mode == "request":
                s.sendall(f"GET /probe HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
                text = head(s)
                out["status"] = text.split("\\r\\n")[0]
                out["code"] = code_of(text)
                out["head"] = text
        time.sleep(hold)
    except (OSError, ssl.SSLError) as e:
        out["error"] = str(e)
    s.close()
    print(json.dumps(out), flush=True)
`;

interface Attempt {
  readonly spec: string;
  readonly connect?: string;
  readonly tls?: string;
  readonly status?: string;
  readonly code?: string | null;
  readonly head?: string;
  readonly error?: string;
}

let home: TempHome;
let server: Server;
let token: string;
let client: string;
/** Where AGENT_VAULT_CONNECT_TO sends the host no service covers. */
let denied: AgentListener;
/** Bound on 127.0.0.1 with no override: what loopback-spelled service hosts would reach. */
let loopback: AgentListener;
/** Where AGENT_VAULT_CONNECT_TO sends the covered host: TLS with a certificate the proxy does not trust. */
let impostor: AgentListener;
/** Where AGENT_VAULT_CONNECT_TO sends the hosts of a disabled service and of one the session may not use. */
let refused: AgentListener;
/** A session that may use only the service `covered`. */
let scopedToken: string;

const accepted = (l: AgentListener) => l.received().split(ACCEPT).length - 1;

/** The attacker's client, as the agent user; every line it printed is in the scene's outputs. */
async function attack(specs: readonly string[], asToken = token): Promise<Attempt[]> {
  const argv = ["/usr/bin/python3", client, String(server.mitmPort), asToken, join(home.dir, "ca.pem"), String(HOLD_S), ...specs];
  const proc = Bun.spawn(asAgent(argv), { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(stdout, stderr);
  expect(stderr).toBe("");
  const lines = stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Attempt);
  expect(lines.map((l) => l.spec)).toEqual([...specs]);
  return lines;
}

const modes = (host: string, port: number) => ["connect", "tls", "request"].map((m) => `${m}|${host}|${port}`);

beforeAll(async () => {
  const certs = mkdtempSync(join(scratch, "impostor-cert-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=api.covered.test",
      "-addext",
      "subjectAltName=DNS:api.covered.test",
      "-keyout",
      join(certs, "key.pem"),
      "-out",
      join(certs, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  giveToAgent(certs);
  [denied, loopback, refused, impostor] = await Promise.all([
    agentListener(scene, "denied", LISTENER),
    agentListener(scene, "loopback", LISTENER),
    agentListener(scene, "refused", LISTENER),
    agentListener(scene, "impostor", IMPOSTOR, [join(certs, "cert.pem"), join(certs, "key.pem")]),
  ]);
  const dir = mkdtempSync(join(scratch, "client-"));
  client = join(dir, "client.py");
  writeFileSync(client, CLIENT);
  giveToAgent(dir);
  const env = {
    AGENT_VAULT_CONNECT_TO: [
      `denied.test:443:127.0.0.1:${denied.port}`,
      `api.covered.test:443:127.0.0.1:${impostor.port}`,
      `dormant.test:443:127.0.0.1:${refused.port}`,
      `elsewhere.test:443:127.0.0.1:${refused.port}`,
    ].join(","),
  };
  home = await agentHome(scene);
  const { ok } = recordingCli(
    () => home,
    () => env,
    outputs,
  );
  await ok(["vault", "credential", "set", "SVC_KEY=-"], CANARY);
  const services: [string, string][] = [
    ["covered", "api.covered.test"],
    // Loopback, spelled as an address, as a number, and as a name: covered, but netguard refuses them.
    ["dotted", `127.0.0.1:${loopback.port}`],
    ["decimal", `2130706433:${loopback.port}`],
    ["named", `localhost:${loopback.port}`],
    // Covered, but every request is refused: the service is disabled, or not the session's.
    ["dormant", "dormant.test"],
    ["elsewhere", "elsewhere.test"],
  ];
  for (const [name, host] of services) await ok(["vault", "service", "add", "--name", name, "--host", host, "--auth-type", "bearer", "--token-key", "SVC_KEY"]);
  await ok(["vault", "service", "disable", "dormant"]);
  await ok(["vault", "settings", "--unmatched", "deny"]);
  server = await startServer(home, env, cleanups);
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
  token = (await createSession(store, "default", {})).token;
  scopedToken = (await createSession(store, "default", { services: ["covered"] })).token;
  home.reown();
}, 60_000);

describe("the warm-up as a way past the vault's refusals", () => {
  test("control: a CONNECT alone to the covered host makes the proxy connect to its listener", async () => {
    const [attempt] = await attack([`connect|api.covered.test|443`]);
    expect(attempt!.connect).toBe("HTTP/1.1 200 Connection Established");
    await waitUntil("the warm-up at the impostor", () => accepted(impostor) >= 1, 3_000);
  }, 20_000);

  test("unmatched: deny: CONNECT to a host no service covers, with or without TLS and a request: zero connections, zero bytes at its listener", async () => {
    const attempts = await attack(modes("denied.test", 443));
    // Intercepted (each request answers 403), never dialled.
    expect(attempts.map((a) => a.connect)).toEqual(attempts.map(() => "HTTP/1.1 200 Connection Established"));
    expect(attempts.filter((a) => a.tls).length).toBe(2);
    const request = attempts.find((a) => a.spec.startsWith("request|"))!;
    expect(request.status).toBe("HTTP/1.1 403 Forbidden");
    expect(request.code).toBe("host_not_allowed");
    await Bun.sleep(QUIET_MS);
    expect(accepted(denied)).toBe(0);
    expect(denied.received()).toBe("");
  }, 20_000);

  test("covered hosts that are, or resolve to, loopback (dotted, decimal, localhost), no override: zero connections at the listener there", async () => {
    const attempts = await attack(["127.0.0.1", "2130706433", "localhost"].flatMap((h) => modes(h, loopback.port)));
    expect(attempts.map((a) => a.connect)).toEqual(attempts.map(() => "HTTP/1.1 200 Connection Established"));
    const requests = attempts.filter((a) => a.spec.startsWith("request|"));
    expect(requests.map((a) => `${a.status} ${a.code}`)).toEqual(requests.map(() => "HTTP/1.1 403 Forbidden forbidden_address"));
    await Bun.sleep(QUIET_MS);
    expect(accepted(loopback)).toBe(0);
    expect(loopback.received()).toBe("");
  }, 20_000);

  // A service covers these hosts, but no request to them may go on: no warm-up either.
  test("a disabled service's host: requests refused (service_disabled), zero connections at its listener", async () => {
    const attempts = await attack(modes("dormant.test", 443));
    expect(attempts.find((a) => a.spec.startsWith("request|"))!.code).toBe("service_disabled");
    await Bun.sleep(QUIET_MS);
    expect(accepted(refused)).toBe(0);
  }, 20_000);

  test("a host covered by a service the session may not use: requests refused (host_not_allowed), zero connections at its listener", async () => {
    const before = accepted(refused);
    const attempts = await attack(modes("elsewhere.test", 443), scopedToken);
    expect(attempts.find((a) => a.spec.startsWith("request|"))!.code).toBe("host_not_allowed");
    await Bun.sleep(QUIET_MS);
    expect(accepted(refused)).toBe(before);
  }, 20_000);

  test("a warm connection to an upstream whose certificate does not verify: the request gets 502 upstream_tls_error, the credential never goes out", async () => {
    const attempts = await attack(modes("api.covered.test", 443));
    const request = attempts.find((a) => a.spec.startsWith("request|"))!;
    expect(`${request.status} ${request.code}`).toBe("HTTP/1.1 502 Bad Gateway upstream_tls_error");
    await Bun.sleep(QUIET_MS);
    expect(impostor.received().replaceAll(ACCEPT, "")).toBe("");
  }, 20_000);

  test("the canary: in no listener and in nothing the agent got", () => {
    for (const l of [denied, loopback, refused, impostor]) expect(l.received()).not.toContain(CANARY);
    for (const text of outputs) expect(text).not.toContain(CANARY);
  }, 20_000);
});
