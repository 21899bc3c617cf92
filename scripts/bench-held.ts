// `bun scripts/bench-held.ts`: how long a held request (src/proxy/steps/hold.ts) takes to reach its
// upstream once a person allows it, against the compiled binary (dist/agent-vault, or
// AGENT_VAULT_TEST_BINARY). One run starts a local HTTPS upstream in this process, `agent-vault
// server` in a fresh --no-password data directory (no KDF in the way) and a session whose policy
// holds `POST /held/*`, then for each sample: sends a held request through the proxy, waits until
// its record is in the vault, and allows it, either
//   - in process, with answerHeld (what the TUI's `y` and `held allow` call once unlocked): the
//     answer's vault write, then the proxy noticing it (a stat every 10 ms) and sending; or
//   - with the `agent-vault held allow ID` command, process start and unlock included;
// and takes the time until the upstream has the request (the upstream's handler, same clock).
// A request no rule holds gives the proxy's own time for comparison. Prints a markdown table for
// docs/performance.md ("Held requests"). Target: allow to upstream ≤ 50 ms.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { homePaths } from "../src/shared/paths.ts";
import { answerHeld, pendingHeld } from "../src/vault/held.ts";
import { createSession } from "../src/vault/sessions.ts";
import { VaultStore } from "../src/vault/vault.ts";
import { basicProxyAuth, openTunnel } from "../test/support/proxy-client.ts";
import { startUpstream } from "../test/support/upstream.ts";
import { summarize } from "./bench/stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = process.env.AGENT_VAULT_TEST_BINARY ? resolve(process.env.AGENT_VAULT_TEST_BINARY) : join(ROOT, "dist/agent-vault");
const SAMPLES = Number(process.env.BENCH_SAMPLES) || 40;
const CLI_SAMPLES = Math.max(5, Math.round(SAMPLES / 4));
const HOST = "api.held.test";
const TARGET_MS = 50;

const scratch = mkdtempSync(join(tmpdir(), "av-bench-held-"));
const home = join(scratch, "home");
// No master password from the caller's environment: the data directory has none.
const { AGENT_VAULT_MASTER_PASSWORD: _ignored, ...inherited } = process.env;
const env = { ...inherited, AGENT_VAULT_HOME: home } as Record<string, string>;
const cleanups: (() => unknown)[] = [];

async function cli(args: string[], stdin?: string): Promise<string> {
  const proc = Bun.spawn([BINARY, ...args], { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (${code}): ${err}`);
  return out;
}

try {
  const upstream = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => upstream.close());
  // Arrivals by path: the moment the upstream has the whole request.
  const arrived = new Map<string, (at: number) => void>();
  upstream.handler = (req) => {
    arrived.get(req.url ?? "")?.(performance.now());
    return false;
  };
  const arrival = (path: string) => new Promise<number>((resolve) => arrived.set(path, resolve));

  await cli(["init", "--no-password"]);
  await cli(["vault", "credential", "set", "HELD_KEY=-"], `sk-bench-${crypto.randomUUID()}`);
  await cli(["vault", "service", "add", "--name", "held", "--host", HOST, "--auth-type", "bearer", "--token-key", "HELD_KEY"]);
  const serverEnv = { ...env, AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${upstream.port}`, AGENT_VAULT_UPSTREAM_CA: upstream.caFile };
  const server = Bun.spawn([BINARY, "server", "--port", "0", "--mitm-port", "0"], { env: serverEnv, stdout: "ignore", stderr: "pipe" });
  cleanups.push(() => server.kill());
  let pid: { pid: number; mitm_port: number } | null = null;
  for (let i = 0; i < 400 && !pid; i++) {
    try {
      const record = JSON.parse(readFileSync(join(home, "server.pid"), "utf8")) as { pid: number; mitm_port: number };
      if (record.pid === server.pid) pid = record;
    } catch {
      await Bun.sleep(25);
    }
  }
  if (!pid) throw new Error("the server did not start");

  const store = await VaultStore.unlock(homePaths(home), async () => "");
  const { token } = await createSession(store, "default", { policy: { rules: [{ service: "held", approve: [{ methods: ["POST"], path: "/held/*" }] }] } });
  const ca = [readFileSync(join(home, "ca.pem"), "utf8"), readFileSync(upstream.caFile, "utf8")];

  async function send(path: string): Promise<number> {
    const t = await openTunnel({ proxyPort: pid!.mitm_port, host: HOST, proxyAuthorization: basicProxyAuth(token), ca });
    if (!t.conn) throw new Error(`CONNECT failed: ${t.connect.status}`);
    try {
      const res = await t.conn.request(
        "POST",
        path,
        [
          ["Host", HOST],
          ["Content-Type", "application/json"],
        ],
        '{"bench":true}',
        30_000,
      );
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text.slice(0, 200)}`);
      return res.status;
    } finally {
      t.conn.close();
    }
  }

  async function heldId(path: string): Promise<number> {
    for (;;) {
      const found = pendingHeld(store.read().vaults[0]!).find((h) => h.path === path);
      if (found) return found.id;
      await Bun.sleep(1);
    }
  }

  // The proxy's own time to the upstream for a request no rule holds (new tunnel each, like the held ones).
  const plain: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const path = `/plain/${i}`;
    const got = arrival(path);
    const start = performance.now();
    await send(path);
    plain.push((await got) - start);
  }

  const write: number[] = [];
  const notice: number[] = [];
  const inProcess: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const path = `/held/${i}`;
    const got = arrival(path);
    const done = send(path);
    const id = await heldId(path);
    const start = performance.now();
    await answerHeld(store, "default", id, { allow: true, forSession: false }, "bench");
    const written = performance.now();
    const at = await got;
    await done;
    write.push(written - start);
    notice.push(at - written);
    inProcess.push(at - start);
  }

  const viaCli: number[] = [];
  for (let i = 0; i < CLI_SAMPLES; i++) {
    const path = `/held/cli-${i}`;
    const got = arrival(path);
    const done = send(path);
    const id = await heldId(path);
    const start = performance.now();
    await cli(["held", "allow", String(id)]);
    viaCli.push((await got) - start);
    await done;
  }

  const row = (label: string, samples: number[], target?: number) => {
    const s = summarize(samples);
    const met = target === undefined ? "" : s.p95 <= target ? "yes" : "**no**";
    return `| ${label} | ${s.n} | ${s.median.toFixed(1)} | ${s.p95.toFixed(1)} | ${s.max.toFixed(1)} | ${target === undefined ? "" : `≤ ${target}`} | ${met} |`;
  };
  console.log("| held request (ms) | n | median | p95 | max | target | met |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(row("not held: request sent → upstream has it (new tunnel)", plain));
  console.log(row("allow (in process, as the TUI's y): the answer's vault write", write));
  console.log(row("… write → the upstream has the request (the proxy's poll, dial, send)", notice));
  console.log(row("**allow → upstream, in process (the TUI's y)**", inProcess, TARGET_MS));
  console.log(row("`agent-vault held allow ID` started → upstream (process start, unlock, write)", viaCli));
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(scratch, { recursive: true, force: true });
}
