// `bun scripts/bench-sources.ts`: what a credential fetched from a source (src/sources/) costs,
// against the compiled binary (dist/agent-vault, or AGENT_VAULT_TEST_BINARY), with Debian's `pass`
// and a throwaway GPG key. One run makes a pass store, a --no-password data directory (no KDF in
// the way) with two bearer services on two hosts, one with a static value and one with
// `exec:pass-logged bench/token` (a two-line sh wrapper that notes the time, then `exec pass show`:
// the notes count the fetches), and `agent-vault server` against a local HTTPS upstream. It prints
// a markdown table for docs/performance.md ("Credential sources"):
//   - first use: `pass show` alone (one gpg decrypt), then the first request through the proxy
//     for each service (new tunnel each; the sourced one waits for its fetch);
//   - cached use: requests on one keep-alive tunnel per service, interleaved, so drift hits both
//     alike: the sourced one's cost over the static one (target ≤ 1%);
//   - background refresh: requests every 20 ms for three TTLs of 2 s; the fetches the wrapper
//     noted, and whether any request waited for one (its latency against the cached p99).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { homePaths } from "../src/shared/paths.ts";
import { createSession } from "../src/vault/sessions.ts";
import { VaultStore } from "../src/vault/vault.ts";
import { basicProxyAuth, type HttpConnection, openTunnel } from "../test/support/proxy-client.ts";
import { startUpstream } from "../test/support/upstream.ts";
import { summarize } from "./bench/stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = process.env.AGENT_VAULT_TEST_BINARY ? resolve(process.env.AGENT_VAULT_TEST_BINARY) : join(ROOT, "dist/agent-vault");
const SAMPLES = Number(process.env.BENCH_SAMPLES) || 3000;
const FIRST_SAMPLES = 15;
const TTL_S = 2;
const STATIC_HOST = "api.static.test";
const SOURCED_HOST = "api.sourced.test";

const scratch = mkdtempSync(join(tmpdir(), "av-bench-sources-"));
const home = join(scratch, "home");
const gnupg = join(scratch, "gnupg");
const store = join(scratch, "store");
const bin = join(scratch, "bin");
const fetchLog = join(scratch, "fetches");
const { AGENT_VAULT_MASTER_PASSWORD: _ignored, ...inherited } = process.env;
const passEnv = { GNUPGHOME: gnupg, PASSWORD_STORE_DIR: store };
const env = { ...inherited, ...passEnv, AGENT_VAULT_HOME: home, AGENT_VAULT_SOURCE_PATH: `${bin}:/usr/bin:/bin` } as Record<string, string>;
const cleanups: (() => unknown)[] = [];

function sh(cmd: string[], input?: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env: { ...inherited, ...passEnv }, input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

async function cli(args: string[], stdin?: string): Promise<string> {
  const proc = Bun.spawn([BINARY, ...args], { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (${code}): ${err}`);
  return out;
}

const row = (label: string, samples: number[], extra = "") => {
  const s = summarize(samples);
  return `| ${label} | ${s.n} | ${s.median.toFixed(3)} | ${s.mean.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.max.toFixed(3)} | ${extra} |`;
};

try {
  mkdirSync(gnupg, { mode: 0o700 });
  sh(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "bench <bench@test>", "default", "default", "never"]);
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(sh(["gpg", "--list-keys", "--with-colons"]))![1]!;
  sh(["pass", "init", fpr]);
  sh(["pass", "insert", "-e", "bench/token"], `sk-bench-${crypto.randomUUID()}\n`);
  mkdirSync(bin);
  writeFileSync(join(bin, "pass-logged"), `#!/bin/sh\ndate +%s%N >> ${fetchLog}\nexec pass show "$1"\n`);
  chmodSync(join(bin, "pass-logged"), 0o755);

  // First use, part one: the decrypt alone.
  const decrypt: number[] = [];
  for (let i = 0; i < FIRST_SAMPLES; i++) {
    const t = performance.now();
    sh(["pass", "show", "bench/token"]);
    decrypt.push(performance.now() - t);
  }

  const upstream = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => upstream.close());
  await cli(["init", "--no-password"]);
  await cli(["vault", "credential", "set", "STATIC_KEY=-"], `sk-static-${crypto.randomUUID()}`);
  await cli(["vault", "credential", "source", "SOURCED_KEY", "exec:pass-logged bench/token", "--ttl", `${TTL_S}s`]);
  await cli(["vault", "service", "add", "--name", "static", "--host", STATIC_HOST, "--auth-type", "bearer", "--token-key", "STATIC_KEY"]);
  await cli(["vault", "service", "add", "--name", "sourced", "--host", SOURCED_HOST, "--auth-type", "bearer", "--token-key", "SOURCED_KEY"]);
  const connectTo = [STATIC_HOST, SOURCED_HOST].map((h) => `${h}:443:127.0.0.1:${upstream.port}`).join(",");

  const vaultStore = await VaultStore.unlock(homePaths(home), async () => "");
  const { token } = await createSession(vaultStore, "default", {});

  async function startServer(): Promise<{ mitm: number; stop: () => Promise<void> }> {
    const server = Bun.spawn([BINARY, "server", "--port", "0", "--mitm-port", "0"], {
      env: { ...env, AGENT_VAULT_CONNECT_TO: connectTo, AGENT_VAULT_UPSTREAM_CA: upstream.caFile },
      stdout: "ignore",
      stderr: "ignore",
    });
    for (let i = 0; i < 400; i++) {
      try {
        const record = JSON.parse(readFileSync(join(home, "server.pid"), "utf8")) as { pid: number; mitm_port: number };
        if (record.pid === server.pid) return { mitm: record.mitm_port, stop: async () => (server.kill(), void (await server.exited)) };
      } catch {
        /* not yet */
      }
      await Bun.sleep(25);
    }
    throw new Error("the server did not start");
  }

  const ca = [readFileSync(join(home, "ca.pem"), "utf8"), readFileSync(upstream.caFile, "utf8")];
  const tunnel = async (mitm: number, host: string): Promise<HttpConnection> => {
    const t = await openTunnel({ proxyPort: mitm, host, proxyAuthorization: basicProxyAuth(token), ca });
    if (!t.conn) throw new Error(`CONNECT failed: ${t.connect.status}`);
    return t.conn;
  };
  const timed = async (conn: HttpConnection, host: string): Promise<number> => {
    const t = performance.now();
    const res = await conn.request("GET", "/v1/x", [["Host", host]]);
    if (res.status !== 200) throw new Error(`${host}: ${res.status} ${res.text.slice(0, 200)}`);
    return performance.now() - t;
  };

  // First use, part two: a fresh server each time, its first request to each service.
  const firstStatic: number[] = [];
  const firstSourced: number[] = [];
  for (let i = 0; i < 5; i++) {
    const server = await startServer();
    for (const [host, into] of [
      [STATIC_HOST, firstStatic],
      [SOURCED_HOST, firstSourced],
    ] as const) {
      const conn = await tunnel(server.mitm, host);
      into.push(await timed(conn, host));
      conn.close();
    }
    await server.stop();
  }

  // Cached use and background refresh on one server.
  const server = await startServer();
  cleanups.push(() => server.stop());
  const a = await tunnel(server.mitm, STATIC_HOST);
  const b = await tunnel(server.mitm, SOURCED_HOST);
  for (let i = 0; i < 200; i++) {
    await timed(a, STATIC_HOST);
    await timed(b, SOURCED_HOST);
  }
  const cachedStatic: number[] = [];
  const cachedSourced: number[] = [];
  // Each pair in a TTL-long burst, the order alternating, so neither side always goes first.
  for (let i = 0; i < SAMPLES; i++) {
    if (i % 2 === 0) {
      cachedStatic.push(await timed(a, STATIC_HOST));
      cachedSourced.push(await timed(b, SOURCED_HOST));
    } else {
      cachedSourced.push(await timed(b, SOURCED_HOST));
      cachedStatic.push(await timed(a, STATIC_HOST));
    }
  }

  const fetchesBefore = readFileSync(fetchLog, "utf8").split("\n").filter(Boolean).length;
  const during: { at: number; ms: number }[] = [];
  const end = performance.now() + 3 * TTL_S * 1000;
  while (performance.now() < end) {
    const at = Date.now();
    during.push({ at, ms: await timed(b, SOURCED_HOST) });
    await Bun.sleep(20);
  }
  const starts = readFileSync(fetchLog, "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(fetchesBefore)
    .map((ns) => Number(BigInt(ns) / 1_000_000n));
  const fetches = starts.length;
  // A request that started while a fetch ran (its start to one decrypt later) would have waited
  // for it if the refresh were not in the background.
  const window = summarize(decrypt).max;
  const overlapping = during.filter((r) => starts.some((f) => r.at >= f && r.at <= f + window)).map((r) => r.ms);
  a.close();
  b.close();

  const st = summarize(cachedStatic);
  const so = summarize(cachedSourced);
  const overMedian = ((so.median - st.median) / st.median) * 100;
  const overMean = ((so.mean - st.mean) / st.mean) * 100;
  console.log("| credential sources (ms) | n | median | mean | p99 | max | note |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(row("`pass show` alone (one gpg decrypt)", decrypt));
  console.log(row("first request, static value (fresh server, new tunnel)", firstStatic));
  console.log(row("first request, sourced value (fresh server, new tunnel: waits for the fetch)", firstSourced));
  console.log(row("cached: static value, keep-alive", cachedStatic));
  console.log(
    row("cached: sourced value, keep-alive", cachedSourced, `${overMedian >= 0 ? "+" : ""}${overMedian.toFixed(2)}% median, ${overMean >= 0 ? "+" : ""}${overMean.toFixed(2)}% mean (target ≤ 1%)`),
  );
  console.log(
    row(
      `every 20 ms for ${3 * TTL_S} s, TTL ${TTL_S} s: all requests`,
      during.map((r) => r.ms),
      `${fetches} background fetches`,
    ),
  );
  if (overlapping.length > 0)
    console.log(row("… those sent while a background fetch ran", overlapping, `one decrypt is ${summarize(decrypt).median.toFixed(1)} ms: a request that waited would take at least that`));
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(scratch, { recursive: true, force: true });
}
