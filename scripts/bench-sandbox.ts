// `npm run bench:proxy` (after bench-proxy.ts): what `run`'s sandbox costs an agent, measured from
// outside against the compiled binary (AGENT_VAULT_BENCH_BINARY, else dist/agent-vault).
//   1. `run -- true` wall time, with the sandbox, with --sandbox-strict (more mounts, descriptors
//      opened first) and with --no-sandbox, interleaved (target: ≤ 50 ms added at the median);
//   2. keep-alive HTTPS GETs on one tunnel through the proxy from inside `run` (the tests' raw
//      HTTP/1.1 client, test/support/proxy-client.ts, as the proxy benchmark uses it: one CONNECT,
//      requests one after another), with and without the sandbox (target: ≤ 10 % added at the median).
//      Inside, the proxy accepts on a listening socket made in the sandbox's namespace and handed
//      out (src/sandbox/listeners.ts): no relay copies the bytes unless that hand-over failed.
// A server runs (so neither series pays for `run` starting the proxy itself) against a local HTTPS
// upstream (scripts/bench/upstream.ts). Prints a markdown table; BENCH_QUICK=1 for a short run.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { summarize, type Summary } from "./bench/stats.ts";
import { DOMAIN, startBenchUpstream } from "./bench/upstream.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = resolve(process.env.AGENT_VAULT_BENCH_BINARY ?? join(ROOT, "dist/agent-vault"));
const QUICK = process.env.BENCH_QUICK === "1";
const STARTS = QUICK ? 10 : 30;
// Short rounds, alternating: on a shared machine, load that comes and goes hits both series alike.
const REQUESTS = QUICK ? 300 : 1000;
const ROUNDS = QUICK ? 2 : 8;
const SECRET = `sk-bench-${crypto.randomUUID()}`;
const HOST = `api.${DOMAIN}`;
const TARGET = { startAddedMs: 50, keepAliveAdded: 0.1 };

const root = mkdtempSync(join(tmpdir(), "av-bench-sandbox-"));
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("AGENT_VAULT_")) env[k] = v;
env.AGENT_VAULT_HOME = join(root, "home");

async function av(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BINARY, ...args], { env, cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

async function mustRun(args: readonly string[]): Promise<string> {
  const r = await av(args);
  if (r.code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (${r.code}): ${r.stderr.trim().slice(0, 500)}`);
  return r.stdout;
}

function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => ok(port));
    });
  });
}

/**
 * The client run inside `run`: sequential keep-alive GETs on one tunnel, found the way an agent
 * finds the proxy (HTTPS_PROXY with the session token, SSL_CERT_FILE); one JSON line of
 * per-request times (ms). It imports the shared client by path: the sandbox shows the whole file
 * system read-only, the checkout included.
 */
const CLIENT = `
import { readFileSync } from "node:fs";
import { openTunnel } from ${JSON.stringify(join(ROOT, "test/support/proxy-client.ts"))};
const n = Number(process.argv[2]);
const proxy = new URL(process.env.HTTPS_PROXY);
const token = decodeURIComponent(proxy.username) + ":" + decodeURIComponent(proxy.password);
const { connect, conn } = await openTunnel({
  proxyHost: proxy.hostname,
  proxyPort: Number(proxy.port),
  host: "${HOST}",
  proxyAuthorization: "Basic " + Buffer.from(token).toString("base64"),
  ca: [readFileSync(process.env.SSL_CERT_FILE, "utf8")],
});
if (!conn) { console.log(JSON.stringify({ error: connect.status })); process.exit(1); }
const times = [];
for (let i = 0; i < n + 20; i++) {
  const t0 = performance.now();
  const r = await conn.request("GET", "/small", [["Host", "${HOST}"], ["Authorization", "Bearer placeholder"]]);
  if (r.status !== 200) { console.log(JSON.stringify({ error: r.status })); process.exit(1); }
  if (i >= 20) times.push(performance.now() - t0);
}
conn.close();
console.log(JSON.stringify({ times }));
`;

async function startTimes(mode: "sandbox" | "plain" | "strict"): Promise<number> {
  const t0 = performance.now();
  await mustRun(["run", ...(mode === "plain" ? ["--no-sandbox"] : mode === "strict" ? ["--sandbox-strict"] : []), "--", "true"]);
  return performance.now() - t0;
}

async function keepAlive(sandbox: boolean, client: string): Promise<number[]> {
  const out = await mustRun(["run", ...(sandbox ? [] : ["--no-sandbox"]), "--", process.execPath, client, String(REQUESTS)]);
  const parsed = JSON.parse(out.trim().split("\n").pop()!) as { times?: number[]; error?: number };
  if (!parsed.times) throw new Error(`the client failed: ${out.slice(0, 300)}`);
  return parsed.times;
}

const fmt = (s: Summary) => `${s.median.toFixed(2)} / ${s.p90.toFixed(2)}`;

async function main(): Promise<number> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun scripts/build.ts\``);
  if (process.platform !== "linux" || Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode !== 0) {
    process.stderr.write("bench-sandbox: no bubblewrap here, skipped\n");
    return 0;
  }
  const upstream = await startBenchUpstream(root, SECRET);
  await mustRun(["init", "--no-password"]);
  await mustRun(["vault", "credential", "set", `BENCH_TOKEN=${SECRET}`]);
  await mustRun(["vault", "service", "add", "--name", "bench", "--host", HOST, "--auth-type", "bearer", "--token-key", "BENCH_TOKEN"]);
  const [apiPort, mitmPort] = [await freePort(), await freePort()];
  const server = Bun.spawn([BINARY, "server", "--port", String(apiPort), "--mitm-port", String(mitmPort)], {
    env: { ...env, AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${upstream.port}`, AGENT_VAULT_UPSTREAM_CA: upstream.caFile },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    for (let i = 0; i < 200 && !existsSync(join(env.AGENT_VAULT_HOME!, "server.pid")); i++) await Bun.sleep(50);
    await Bun.sleep(200);
    const client = join(root, "client.mjs");
    writeFileSync(client, CLIENT);

    // 1. Start cost, interleaved so both series see the same machine.
    const starts = { sandbox: [] as number[], plain: [] as number[], strict: [] as number[] };
    for (const mode of ["sandbox", "plain", "strict"] as const) await startTimes(mode);
    for (let i = 0; i < STARTS; i++) for (const mode of ["sandbox", "plain", "strict"] as const) starts[mode].push(await startTimes(mode));
    // 2. Keep-alive requests, alternating series.
    const requests = { sandbox: [] as number[], plain: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      requests.plain.push(...(await keepAlive(false, client)));
      requests.sandbox.push(...(await keepAlive(true, client)));
    }
    // 3. The same with no server: each `run` serves the proxy itself, and its proxy accepts on the
    //    sandbox's listening socket.
    server.kill("SIGTERM");
    await server.exited;
    const selfServed = { sandbox: [] as number[], plain: [] as number[] };
    const upstreamEnv = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${upstream.port}`, AGENT_VAULT_UPSTREAM_CA: upstream.caFile };
    Object.assign(env, upstreamEnv);
    for (let i = 0; i < ROUNDS; i++) {
      selfServed.plain.push(...(await keepAlive(false, client)));
      selfServed.sandbox.push(...(await keepAlive(true, client)));
    }
    const s = {
      startSandbox: summarize(starts.sandbox),
      startPlain: summarize(starts.plain),
      startStrict: summarize(starts.strict),
      kaSandbox: summarize(requests.sandbox),
      kaPlain: summarize(requests.plain),
      selfSandbox: summarize(selfServed.sandbox),
      selfPlain: summarize(selfServed.plain),
    };
    const selfAdded = s.selfSandbox.median / s.selfPlain.median - 1;
    const startAdded = s.startSandbox.median - s.startPlain.median;
    const strictAdded = s.startStrict.median - s.startPlain.median;
    const kaAdded = s.kaSandbox.median / s.kaPlain.median - 1;
    console.log(`\n### run's sandbox (${QUICK ? "BENCH_QUICK" : "full"} run; median / p90, ms)\n`);
    console.log("| measure | --no-sandbox | sandbox | added | target | met |");
    console.log("|---|---|---|---|---|---|");
    console.log(
      `| \`run -- true\`, wall (${STARTS} each) | ${fmt(s.startPlain)} | ${fmt(s.startSandbox)} | ${startAdded.toFixed(1)} ms | ≤ ${TARGET.startAddedMs} ms | ${startAdded <= TARGET.startAddedMs ? "yes" : "**no**"} |`,
    );
    console.log(
      `| \`run --sandbox-strict -- true\`, wall (${STARTS} each) | ${fmt(s.startPlain)} | ${fmt(s.startStrict)} | ${strictAdded.toFixed(1)} ms | ≤ ${TARGET.startAddedMs} ms | ${strictAdded <= TARGET.startAddedMs ? "yes" : "**no**"} |`,
    );
    console.log(
      `| keep-alive GET through a running server (${requests.plain.length} each) | ${fmt(s.kaPlain)} | ${fmt(s.kaSandbox)} | ${(kaAdded * 100).toFixed(1)} % | ≤ ${TARGET.keepAliveAdded * 100} % | ${kaAdded <= TARGET.keepAliveAdded ? "yes" : "**no**"} |`,
    );
    console.log(
      `| keep-alive GET, \`run\` serving the proxy itself (${selfServed.plain.length} each) | ${fmt(s.selfPlain)} | ${fmt(s.selfSandbox)} | ${(selfAdded * 100).toFixed(1)} % | ≤ ${TARGET.keepAliveAdded * 100} % | ${selfAdded <= TARGET.keepAliveAdded ? "yes" : "**no**"} |`,
    );
    return 0;
  } finally {
    if (server.exitCode === null) server.kill("SIGTERM");
    await server.exited;
    await upstream.close();
    rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = await main().catch((error: Error) => {
  process.stderr.write(`bench-sandbox: ${error.message}\n`);
  return 1;
});
