// Attack: the agent, inside `agent-vault run`, goes around the broker. It reads the data directory
// (ls, cat, unmounting what hides it, a user namespace of its own), looks for agent-vault processes
// and their environment (ps, /proc/*/cmdline and environ), and talks to a local HTTPS server
// directly instead of through the proxy (curl --noproxy '*', Python requests with the proxy
// variables ignored, Node net.connect, Node fetch without our preload). In the sandbox every route
// fails: no byte of the canary reaches the upstream, and nothing of the vault file, the credential
// or the master password is in what the agent got. The same script with --no-sandbox reaches the
// upstream, so the test can tell. Broker and attacker run as the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type RunResult, type TempHome, TEST_PASSWORD } from "../support/binary.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";
import { agentServiceHome, fileScene } from "../support/scene.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const CANARY = `canary${randomBytes(12).toString("hex")}`;
const HOST = "api.svc.test";
const scene = fileScene("av-sandbox-escape-", { absent: [SECRET, TEST_PASSWORD] });
const { scratch, cleanups, outputs } = scene;
let U: Upstream;
let home: TempHome;
let ENV: Record<string, string>;

function attackScript(port: number, upstreamCa: string): string {
  // "localhost": the test upstream picks its certificate by SNI.
  const url = `https://localhost:${port}`;
  return `
echo "@@""DATA"
ls -la "$AGENT_VAULT_HOME" 2>&1
for f in vault.av vault.key server.pid requests.log server.log; do cat "$AGENT_VAULT_HOME/$f" 2>&1; done
umount "$AGENT_VAULT_HOME" 2>&1; cat "$AGENT_VAULT_HOME/vault.av" 2>&1
unshare -Urm sh -c 'umount "$AGENT_VAULT_HOME"; cat "$AGENT_VAULT_HOME/vault.av"' 2>&1
echo "@@""PROCESSES"
ps -eo pid,args 2>&1
for p in /proc/[0-9]*; do printf '%s: ' "$p"; tr '\\0' ' ' < "$p/cmdline" 2>&1; echo; tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -a MASTER_PASSWORD; done
echo "@@""DIRECT"
curl --noproxy '*' -sS -m 5 --cacert ${upstreamCa} "${url}/curl?c=${CANARY}" 2>&1; echo "curl=$?"
/usr/bin/python3 -c '
import requests, sys
s = requests.Session(); s.trust_env = False
try:
    print(s.get("${url}/python?c=${CANARY}", verify="${upstreamCa}", timeout=5).status_code)
except Exception as e:
    print("python failed:", type(e).__name__)
' 2>&1
node -e '
const s = require("tls").connect({ port: ${port}, host: "127.0.0.1", servername: "localhost", rejectUnauthorized: false }, () => { s.write("GET /node?c=${CANARY} HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n"); console.log("node connected"); });
s.on("data", () => s.end());
s.on("error", (e) => console.log("node failed:", e.code));
' 2>&1
NODE_OPTIONS= NODE_TLS_REJECT_UNAUTHORIZED=0 node -e 'fetch("${url}/fetch?c=${CANARY}").then((r) => console.log("fetch", r.status), (e) => console.log("fetch failed:", e.cause?.code ?? e.message))' 2>&1
echo "@@""DONE"
`;
}

async function attack(args: readonly string[]): Promise<RunResult> {
  // From a file, so the processes' command lines the script prints do not repeat the script.
  const script = join(scratch, "attack.sh");
  writeFileSync(script, attackScript(U.port, U.caFile), { mode: 0o644 });
  const r = await home.run(["run", ...args, "--", "sh", script], { env: ENV });
  outputs.push(r.stdout, r.stderr);
  if (process.env.DEBUG_ATTACK) console.log(r.stdout, r.stderr);
  return r;
}

function canaryAtUpstream(): boolean {
  return U.wire.some((w) => w.data.includes(CANARY)) || U.received.some((r) => r.url.includes(CANARY));
}

beforeAll(async () => {
  ({ upstream: U, env: ENV } = await agentUpstream(scratch, HOST, cleanups));
  home = await agentServiceHome(scene, SECRET, HOST, () => ENV);
}, 60_000);

describe.skipIf(!HAVE_BWRAP)("inside run's sandbox the agent cannot go around the broker", () => {
  test("the data directory, agent-vault's processes and any network but the proxy are out of reach", async () => {
    const vaultFile = readFileSync(join(home.dir, "vault.av"), "utf8");
    const r = await attack([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("@@DONE");
    const [dataPart, rest] = r.stdout.split("@@PROCESSES");
    const [processPart, directPart] = rest!.split("@@DIRECT");
    // Only the two shared files are there, read-only; nothing of the vault file came out.
    expect(dataPart).toContain("ca-bundle.pem");
    expect(dataPart).not.toContain("vault.av ");
    expect(dataPart).toContain("No such file or directory");
    for (let i = 0; i + 40 <= vaultFile.length; i += 400) expect(r.stdout).not.toContain(vaultFile.slice(i, i + 40));
    // No agent-vault process but the sandbox's own relay; no `run`, no server, no password.
    expect(processPart).not.toMatch(/agent-vault run|\brun --|\bserver --/);
    expect(processPart).not.toContain("MASTER_PASSWORD=");
    expect(processPart).toContain("sandbox-init");
    // Every direct connection failed, and no byte of the canary reached the upstream.
    expect(directPart).toMatch(/curl=(6|7|28)/);
    expect(directPart).toContain("python failed: ConnectionError");
    expect(directPart).toContain("node failed: ECONNREFUSED");
    expect(directPart).toContain("fetch failed: ECONNREFUSED");
    expect(canaryAtUpstream()).toBe(false);
    // run said once that the sandbox has no network but the proxy.
    expect(r.stderr.match(/only network is the proxy/g)?.length).toBe(1);
  }, 60_000);

  test("control: the same script with --no-sandbox reaches the upstream directly (so the test above can fail)", async () => {
    const r = await attack(["--no-sandbox"]);
    expect(r.stdout).toContain("@@DONE");
    expect(r.stdout).toContain("node connected");
    expect(canaryAtUpstream()).toBe(true);
  }, 60_000);
});
