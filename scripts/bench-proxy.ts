// `npm run bench:proxy`: what the proxy costs an agent, measured from outside against the
// compiled binary (dist/agent-vault). One run starts:
//   - a local HTTPS upstream (scripts/bench/upstream.ts, its own test CA, one *.bench.test
//     wildcard certificate, idle connections closed after 5 s) in this process;
//   - `agent-vault server` on free ports, in a fresh --no-password data directory, with bearer
//     services for api.bench.test and *.bench.test, AGENT_VAULT_CONNECT_TO pointing every bench
//     name at the upstream and AGENT_VAULT_UPSTREAM_CA trusting its CA;
//   - mitmproxy (mitmdump) for comparison: from PATH, or installed from Debian's package when missing;
//   - `agent-vault run -- bun scripts/bench/client.ts`: the client gets HTTPS_PROXY and the CA
//     bundle exactly as an agent would, runs every workload directly and through the proxy, and
//     reports back one JSON line.
// Workloads (docs/performance.md, "Proxy"): 1 keep-alive GETs on one tunnel (direct, proxied and
// through the bare relay, in ten rounds that take turns); 2 first request to a
// never-seen host name; 3 SSE relay lag; 4 1 GiB download and upload, plus a slow reader on the
// far side (backpressure), with the proxy's RSS; 5 200 concurrent tunnels for 30 s, with the
// proxy's file descriptors before and after; 6 workloads 1, 2 and 4 through mitmproxy; 7 workload 1
// through the proxy with the vault's exfiltration guard and response scrubbing each on or off
// (`vault settings --guard --scrub` between series), run right after 1, in a table of its own.
// It prints a markdown table for docs/performance.md. A missed target shows **no** and does not
// fail the run; a wrong answer (a status, a missing injection, lost bytes) or a stall does. It
// also reports how much CPU other processes took meanwhile (the machine may be shared).
//
// Environment: BENCH_QUICK=1 for a short run (5 s of concurrency, fewer requests, 128 MiB
// transfers); BENCH_PROXY_PROFILE=DIR to profile the server (see below); BENCH_ONLY=1,3 to run
// only some workloads (numbers as in the table) while investigating; BENCH_KEEPALIVE=N for a longer
// keep-alive series (full runs; default 2000) and BENCH_KEEPALIVE_WARMUP=N for
// the untimed requests each route gets first (default 5000: the proxy's JIT has compiled its hot
// path; 100 shows a fresh server); BENCH_PROF_JSON=1 with BENCH_PROXY_PROFILE for a
// .cpuprofile sampled every 100 µs instead of the markdown summary.
//
// Workloads 1 and 2 also run through a bare TLS relay (scripts/bench/relay.ts, its own process):
// CONNECT, our kind of leaf, the upstream dialled at once, bytes copied unread. It is the floor any
// TLS-terminating proxy pays on this machine, so the table separates what interception costs here
// from what agent-vault's own work costs; workload 1 also reports each proxy's CPU time per request.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
// Types only (`import type` is always erased): client.ts runs its workloads when executed.
import { type ClientConfig, type ConcurrencyResult, type KeepAliveResult, type NewHostResult, type ProcessCpu, type SettingsResult, type SseResult, type TransferResult } from "./bench/client.ts";
import { type BenchUpstream, DOMAIN, startBenchUpstream } from "./bench/upstream.ts";

const ROOT = resolve(import.meta.dir, "..");
// AGENT_VAULT_TEST_BINARY measures another build (as the tests take it).
const BINARY = process.env.AGENT_VAULT_TEST_BINARY ? resolve(process.env.AGENT_VAULT_TEST_BINARY) : join(ROOT, "dist/agent-vault");
const CLIENT = join(ROOT, "scripts/bench/client.ts");
const QUICK = process.env.BENCH_QUICK === "1";
const SECRET = `sk-bench-${crypto.randomUUID()}`;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A positive whole number from the environment, or `fallback` when unset; anything else stops the run. */
function envCount(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  if (!/^[1-9][0-9]*$/.test(text)) {
    process.stderr.write(`bench:proxy: ${name}=${JSON.stringify(text)} is not a positive whole number\n`);
    process.exit(2);
  }
  return Number(text);
}

/** BENCH_ONLY=1,3: workload numbers 1–7; anything else stops the run. */
function envWorkloads(): number[] | null {
  const text = process.env.BENCH_ONLY;
  if (text === undefined || text === "") return null;
  const numbers = text.split(",").map((part) => part.trim());
  const bad = numbers.filter((part) => !/^[1-7]$/.test(part));
  if (bad.length > 0) {
    process.stderr.write(`bench:proxy: BENCH_ONLY=${JSON.stringify(text)}: ${bad.map((b) => JSON.stringify(b)).join(", ")} is not a workload (1–7)\n`);
    process.exit(2);
  }
  return numbers.map(Number);
}

const SIZES: ClientConfig["sizes"] = QUICK
  ? { keepAlive: 300, keepAliveWarmup: 30, sseEvents: 50, sseIntervalMs: 10, transfer: 128 * MiB, mitmTransfer: 64 * MiB, slowTransfer: 64 * MiB, slowRateMiBps: 32 }
  : {
      keepAlive: envCount("BENCH_KEEPALIVE", 2000),
      keepAliveWarmup: envCount("BENCH_KEEPALIVE_WARMUP", 5000),
      sseEvents: 200,
      sseIntervalMs: 10,
      transfer: GiB,
      mitmTransfer: 256 * MiB,
      slowTransfer: 128 * MiB,
      slowRateMiBps: 32,
    };
const FRESH_NAMES = QUICK ? 10 : 50;
const CONCURRENCY: ClientConfig["concurrency"] = { tunnels: 200, seconds: QUICK ? 5 : 30, periodMs: 1000 };
/** Workload 7: interleaved rounds of one series per setting (and one direct), each of `perSeries` requests. */
const SETTINGS: ClientConfig["settings"] = QUICK ? { rounds: 4, perSeries: 100 } : { rounds: 16, perSeries: 500 };

// Read here, at load, with the other settings: a bad BENCH_ONLY stops the run before the banner,
// the temp directory, the upstream or the server (it used to be read after all of them).
const ONLY = envWorkloads();

const TARGET = { keepAliveRatio: 2, newConnectionRatio: 1.5, newHostMs: 10, sseAddedMs: 2, throughputShare: 0.5, rssMiB: 150, switchCost: 0.1 };

/**
 * Nine more credentials beside the injected one, 20–60 characters: the guard and scrubbing look for
 * every value of the vault (in about 14 encodings each), so their cost grows with the vault.
 */
function extraCredentials(): string[] {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const prefixes = ["ghp_", "xoxb-", "AKIA", "glpat-", "sk_live_", "pk-", "key-", "tok_", "rk_"];
  return prefixes.map((prefix, i) => {
    const length = 20 + i * 5; // 20, 25, … 60
    const random = crypto.getRandomValues(new Uint8Array(length - prefix.length));
    const value = prefix + Array.from(random, (b) => alphabet[b % alphabet.length]).join("");
    return `BENCH_EXTRA_${i + 1}=${value}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Processes and cleanup

const root = mkdtempSync(join(tmpdir(), "av-bench-proxy-"));
const children: { name: string; proc: ReturnType<typeof Bun.spawn> }[] = [];
let upstream: BenchUpstream | null = null;

function killAll(signal: NodeJS.Signals = "SIGTERM"): void {
  for (const { proc } of children) {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        proc.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}

async function shutdown(): Promise<void> {
  killAll("SIGTERM");
  const deadline = Date.now() + 3000;
  for (const { proc } of children) {
    while (proc.exitCode === null && proc.signalCode === null && Date.now() < deadline) await Bun.sleep(50);
  }
  killAll("SIGKILL");
  await upstream?.close().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
}

process.on("exit", () => {
  killAll("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    void shutdown().finally(() => process.exit(130));
  });
}

/** The caller's environment minus everything agent-vault reads and any proxy setting, plus `extra`. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("AGENT_VAULT_") || /^(https?|all|no)_proxy$/i.test(k) || k === "NODE_USE_ENV_PROXY") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function mustRun(args: readonly string[], env: Record<string, string>): Promise<string> {
  const proc = Bun.spawn([BINARY, ...args], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`agent-vault ${args.join(" ")} exited ${code}: ${stderr.trim().slice(0, 500)}`);
  return stdout;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitFor(what: string, probe: () => Promise<boolean> | boolean, ms: number, proc?: ReturnType<typeof Bun.spawn>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`${what}: the process exited ${proc.exitCode}`);
    if (await probe()) return;
    await Bun.sleep(50);
  }
  throw new Error(`${what}: not ready after ${ms} ms`);
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });

/** CPU seconds (user + system) of a process, with its reaped children when `children` is set. */
function cpuOf(pid: number | "self", children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    return (f[11]! + f[12]! + (children ? f[13]! + f[14]! : 0)) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds the whole machine has been busy (all CPUs). */
function machineBusy(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
}

async function collect(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.push(decoder.decode(chunk, { stream: true }));
}

// ---------------------------------------------------------------------------------------------
// The bare relay (scripts/bench/relay.ts): the floor any TLS-terminating proxy pays here

async function startRelay(upstreamCa: string): Promise<{ port: number; pid: number; caFile: string }> {
  const proc = Bun.spawn(
    [
      process.execPath,
      ...(process.env.BENCH_RELAY_PROF ? ["--cpu-prof", "--cpu-prof-interval=100", `--cpu-prof-dir=${process.env.BENCH_RELAY_PROF}`] : []),
      join(ROOT, "scripts/bench/relay.ts"),
      String(upstream!.port),
      upstreamCa,
      root,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "inherit" },
  );
  children.push({ name: "relay", proc });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the bare relay exited before it listened");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { ...(JSON.parse(text.split("\n")[0]!) as { port: number; caFile: string }), pid: proc.pid };
}

// ---------------------------------------------------------------------------------------------
// mitmproxy (optional)

interface Mitm {
  readonly port: number;
  readonly pid: number;
  readonly caFile: string;
  readonly version: string;
}

/**
 * mitmdump from PATH, or from Debian's `mitmproxy` package, installed here when it is missing and
 * apt-get can (as root: CI). BENCH_NO_MITM=1 skips the comparison.
 */
function findMitmdump(): string | null {
  if (process.env.BENCH_NO_MITM === "1") return null;
  const found = Bun.which("mitmdump");
  if (found || process.getuid?.() !== 0 || !Bun.which("apt-get")) return found;
  console.log("installing Debian's mitmproxy for the side-by-side comparison (apt-get install mitmproxy)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  Bun.spawnSync(["apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "ignore" });
  const installed = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "mitmproxy"], { env, stdout: "ignore", stderr: "pipe" });
  if (installed.exitCode !== 0) console.log(`mitmproxy could not be installed (${installed.stderr.toString().trim().split("\n").pop()}); the table shows agent-vault only`);
  return Bun.which("mitmdump");
}

async function startMitmproxy(upstreamCa: string): Promise<Mitm | null> {
  const mitmdump = findMitmdump();
  if (!mitmdump) return null;
  const version = (await new Response(Bun.spawn([mitmdump, "--version"], { stdout: "pipe", stderr: "ignore" }).stdout).text()).match(/Mitmproxy:\s*(\S+)/)?.[1] ?? "?";
  const confdir = join(root, "mitmproxy");
  mkdirSync(confdir, { recursive: true });
  // The same work as agent-vault's bearer service: replace the agent's Authorization.
  const addon = join(confdir, "inject.py");
  writeFileSync(addon, `def request(flow):\n    flow.request.headers["authorization"] = ${JSON.stringify(`Bearer ${SECRET}`)}\n`);
  const port = await freePort();
  const proc = Bun.spawn(
    [
      mitmdump,
      "-q",
      "--listen-host",
      "127.0.0.1",
      "--listen-port",
      String(port),
      "--set",
      `confdir=${confdir}`,
      "--set",
      `ssl_verify_upstream_trusted_ca=${upstreamCa}`,
      "--set",
      "stream_large_bodies=1m",
      "-s",
      addon,
    ],
    { env: cleanEnv({}), stdin: "ignore", stdout: "ignore", stderr: "inherit" },
  );
  children.push({ name: "mitmdump", proc });
  const caFile = join(confdir, "mitmproxy-ca-cert.pem");
  await waitFor("mitmdump", async () => existsSync(caFile) && (await accepts(port)), 20_000, proc);
  return { port, pid: proc.pid, caFile, version };
}

// ---------------------------------------------------------------------------------------------
// The table

interface Row {
  readonly workload: string;
  readonly direct: string;
  readonly proxied: string;
  readonly ratio: string;
  readonly target: string;
  readonly ok: boolean | null;
}

const rows: Row[] = [];
const notes: string[] = [];
const ms = (v: number) => `${v.toFixed(v < 1 ? 3 : v < 10 ? 2 : 1)} ms`;
const mibs = (v: number) => `${v.toFixed(0)} MiB/s`;
const signed = (v: number) => `${v < 0 ? "−" : "+"}${ms(Math.abs(v))}`;
const x = (v: number) => `${v.toFixed(2)}×`;
const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
const sizeText = (bytes: number) => (bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`);

function table(): string {
  const header = ["workload", "direct", "proxied", "ratio", "target", "ok?"];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|---|${header
      .slice(1)
      .map(() => "---:")
      .join("|")}|`,
  ];
  for (const r of rows) lines.push(`| ${[r.workload, r.direct, r.proxied, r.ratio, r.target, r.ok === null ? "–" : r.ok ? "yes" : "**no**"].join(" | ")} |`);
  return lines.join("\n");
}

/** A workload that failed as a whole (the client caught it and went on). */
interface Failed {
  readonly error: string;
}
const failed = (x: unknown): x is Failed => typeof x === "object" && x !== null && "error" in x && typeof (x as Failed).error === "string";

interface MitmResults {
  keepAlive: KeepAliveResult;
  newHost: NewHostResult;
  transfer: { size: number; download: { direct: TransferResult; mitm: TransferResult }; upload: { direct: TransferResult; mitm: TransferResult } };
}

interface Results {
  serverRssAtStartMiB: number;
  serverRssAtEndMiB: number;
  keepAlive?: { direct: KeepAliveResult; proxied: KeepAliveResult; relay?: KeepAliveResult } | Failed;
  newHost?: { direct: NewHostResult; proxied: NewHostResult; relay?: NewHostResult } | Failed;
  sse?: { clock: { offset: number; rtt: number }; direct: SseResult; proxied: SseResult } | Failed;
  transfer?: {
    size: number;
    download: { direct: TransferResult; proxied: TransferResult };
    upload: { direct: TransferResult; proxied: TransferResult };
    relay?: { download: TransferResult; upload: TransferResult };
    slow: { size: number; rateMiBps: number; download: TransferResult; upload: TransferResult };
  };
  concurrency?: ConcurrencyResult | Failed;
  mitm?: MitmResults | Failed;
  settings?: SettingsResult | Failed;
}

/** Failures seen while reporting: the table still prints, and the run exits non-zero. */
const failures: string[] = [];

function failedRow(workload: string, error: string): void {
  failures.push(`${workload}: ${error}`);
  rows.push({ workload, direct: "–", proxied: `failed: ${error.replace(/\|/g, "/").slice(0, 160)}`, ratio: "–", target: "–", ok: false });
}

const ph = (p: Record<string, number>) => `TCP ${ms(p.tcp!)}, CONNECT ${ms(p.tunnel!)}, TLS ${ms(p.tls!)}, response ${ms(p.total!)}`;
const us = (milliseconds: number) => `${(milliseconds * 1000).toFixed(0)} µs`;
const cpuPerGiB = (tr: TransferResult) => ((tr.proxyCpuSeconds ?? 0) / (tr.bytes / GiB)).toFixed(2);

function reportKeepAlive(ka: { direct: KeepAliveResult; proxied: KeepAliveResult; relay?: KeepAliveResult }): void {
  const ratio = ka.proxied.perRequest.mean / ka.direct.perRequest.mean;
  rows.push({
    workload: `1. keep-alive GET, mean per request (${SIZES.keepAlive} on one connection per route after ${SIZES.keepAliveWarmup} untimed, in 10 rounds taking turns; upstream connections opened: ${ka.direct.upstreamConnections} / ${ka.proxied.upstreamConnections})`,
    direct: ms(ka.direct.perRequest.mean),
    proxied: ms(ka.proxied.perRequest.mean),
    ratio: x(ratio),
    target: `≤ ${TARGET.keepAliveRatio}×`,
    ok: ratio <= TARGET.keepAliveRatio,
  });
  const medianRatio = ka.proxied.perRequest.median / ka.direct.perRequest.median;
  rows.push({
    workload: "1. keep-alive GET, median per request (the same series; the median is what load from other processes on the machine moves least)",
    direct: ms(ka.direct.perRequest.median),
    proxied: ms(ka.proxied.perRequest.median),
    ratio: x(medianRatio),
    target: `≤ ${TARGET.keepAliveRatio}×`,
    ok: medianRatio <= TARGET.keepAliveRatio,
  });
  if (ka.relay) {
    rows.push({
      workload: "1. keep-alive GET through a bare TLS relay with no policy (scripts/bench/relay.ts: the floor of any TLS-terminating proxy here), mean / median",
      direct: `${ms(ka.direct.perRequest.mean)} / ${ms(ka.direct.perRequest.median)}`,
      proxied: `${ms(ka.relay.perRequest.mean)} / ${ms(ka.relay.perRequest.median)}`,
      ratio: `${x(ka.relay.perRequest.mean / ka.direct.perRequest.mean)} / ${x(ka.relay.perRequest.median / ka.direct.perRequest.median)}`,
      target: "–",
      ok: null,
    });
    rows.push({
      workload: "1. proxy CPU per keep-alive request, every thread (what other processes' load does not change): bare relay / agent-vault",
      direct: "–",
      proxied: `${(ka.relay.proxyCpuPerRequest * 1000).toFixed(0)} µs / ${(ka.proxied.proxyCpuPerRequest * 1000).toFixed(0)} µs`,
      ratio: x(ka.proxied.proxyCpuPerRequest / ka.relay.proxyCpuPerRequest),
      target: "–",
      ok: null,
    });
    const [relay, ours] = [ka.relay.proxyCpuSplit, ka.proxied.proxyCpuSplit];
    if (relay && ours) {
      const split = (c: ProcessCpu) => `${us(c.userMs)} user + ${us(c.kernelMs)} kernel; ${us(c.mainMs)} main thread + ${us(c.ms - c.mainMs)} others`;
      rows.push({
        workload: "1. the same CPU split: user / kernel time (10 ms ticks), main thread / other threads (JIT, GC, allocator): bare relay; agent-vault",
        direct: "–",
        proxied: `${split(relay)}; ${split(ours)}`,
        ratio: `user ${x(ours.userMs / relay.userMs)}, kernel ${x(ours.kernelMs / relay.kernelMs)}`,
        target: "–",
        ok: null,
      });
    }
  }
  notes.push(
    `Keep-alive per request: direct median ${ms(ka.direct.perRequest.median)}, p99 ${ms(ka.direct.perRequest.p99)}; ` +
      `through agent-vault median ${ms(ka.proxied.perRequest.median)}, p99 ${ms(ka.proxied.perRequest.p99)}, max ${ms(ka.proxied.perRequest.max)}. ` +
      `The client used one connection each time; the upstream accepted ${ka.direct.upstreamConnections} (direct) and ${ka.proxied.upstreamConnections} (through agent-vault) connections for ${SIZES.keepAlive + (SIZES.keepAliveWarmup ?? 0)} requests (timed + untimed).`,
  );
}

function reportNewHost(nh: { direct: NewHostResult; proxied: NewHostResult; relay?: NewHostResult }): void {
  rows.push({
    workload: `2. new connection + first request to a never-seen host name (median of ${nh.proxied.fresh.n})`,
    direct: ms(nh.direct.fresh.median),
    proxied: ms(nh.proxied.fresh.median),
    ratio: x(nh.proxied.fresh.median / nh.direct.fresh.median),
    target: `≤ ${TARGET.newConnectionRatio}×`,
    ok: nh.proxied.fresh.median / nh.direct.fresh.median <= TARGET.newConnectionRatio,
  });
  if (nh.relay) {
    rows.push({
      workload: "2. the same through the bare TLS relay (the floor: CONNECT, our leaf's handshake, the upstream's handshake opened at once)",
      direct: ms(nh.direct.fresh.median),
      proxied: ms(nh.relay.fresh.median),
      ratio: x(nh.relay.fresh.median / nh.direct.fresh.median),
      target: "–",
      ok: null,
    });
  }
  rows.push({
    workload: "2. added by a never-seen name vs a warm name (median of pairwise differences; both new connections, no upstream reuse)",
    direct: ms(nh.direct.added.median),
    proxied: ms(nh.proxied.added.median),
    ratio: "–",
    target: `≤ ${TARGET.newHostMs} ms`,
    ok: nh.proxied.added.median <= TARGET.newHostMs,
  });
  notes.push(
    `New host, phases through agent-vault (median ms from the start): never-seen name: ${ph(nh.proxied.phases.fresh)}; warm name: ${ph(nh.proxied.phases.warm)}. ` +
      `Direct: ${ph(nh.direct.phases.fresh)}. ${nh.relay ? `Bare relay: ${ph(nh.relay.phases.fresh)}. ` : ""}p90 of the added time through agent-vault: ${ms(nh.proxied.added.p90)}.`,
  );
}

function reportSse(sse: { clock: { offset: number; rtt: number }; direct: SseResult; proxied: SseResult }): void {
  const addedMedian = sse.proxied.lag.median - sse.direct.lag.median;
  const addedP99 = sse.proxied.lag.p99 - sse.direct.lag.p99;
  rows.push({
    workload: `3. SSE relay lag, median (${sse.proxied.events} events, one per ${SIZES.sseIntervalMs} ms)`,
    direct: ms(sse.direct.lag.median),
    proxied: ms(sse.proxied.lag.median),
    ratio: signed(addedMedian),
    target: `≤ +${TARGET.sseAddedMs} ms`,
    ok: addedMedian <= TARGET.sseAddedMs,
  });
  rows.push({
    workload: "3. SSE relay lag, p99",
    direct: ms(sse.direct.lag.p99),
    proxied: ms(sse.proxied.lag.p99),
    ratio: signed(addedP99),
    target: `≤ +${TARGET.sseAddedMs} ms`,
    ok: addedP99 <= TARGET.sseAddedMs,
  });
  notes.push(
    `SSE lag max: direct ${ms(sse.direct.lag.max)}, through agent-vault ${ms(sse.proxied.lag.max)}. Clocks aligned on the upstream's /clock (offset ${ms(sse.clock.offset)}, round trip ${ms(sse.clock.rtt)}).`,
  );
}

/** A failed transfer becomes a failed row; true when it did. */
function transferFailed(workload: string, ...parts: [string, TransferResult][]): boolean {
  const bad = parts.filter(([, tr]) => tr.error !== undefined);
  if (bad.length === 0) return false;
  failedRow(workload, bad.map(([who, tr]) => `${who}: ${tr.error}`).join("; "));
  return true;
}

function peakOf(...parts: TransferResult[]): number {
  return Math.max(...parts.map((p) => p.rss?.peakMiB ?? 0));
}

function reportTransfer(t: NonNullable<Results["transfer"]>): void {
  for (const dir of ["download", "upload"] as const) {
    const workload = `4. ${sizeText(t.size)} ${dir}, throughput`;
    if (transferFailed(workload, ["direct", t[dir].direct], ["agent-vault", t[dir].proxied])) continue;
    const share = t[dir].proxied.mibPerSecond / t[dir].direct.mibPerSecond;
    rows.push({
      workload,
      direct: mibs(t[dir].direct.mibPerSecond),
      proxied: mibs(t[dir].proxied.mibPerSecond),
      ratio: pct(share),
      target: `≥ ${pct(TARGET.throughputShare)}`,
      ok: share >= TARGET.throughputShare,
    });
  }
  if (t.relay) {
    for (const dir of ["download", "upload"] as const) {
      const floor = t.relay[dir];
      if (floor.error !== undefined) continue;
      rows.push({
        workload: `4. ${sizeText(t.size)} ${dir} through the bare TLS relay (the floor; relay CPU ${cpuPerGiB(floor)} s per GiB)`,
        direct: mibs(t[dir].direct.mibPerSecond),
        proxied: mibs(floor.mibPerSecond),
        ratio: pct(floor.mibPerSecond / t[dir].direct.mibPerSecond),
        target: "–",
        ok: null,
      });
    }
  }
  const peak = peakOf(t.download.proxied, t.upload.proxied);
  rows.push({
    workload: "4. proxy RSS, peak during the transfers",
    direct: "–",
    proxied: `${(peak * 1.048576).toFixed(0)} MB`,
    ratio: "–",
    target: `≤ ${TARGET.rssMiB} MB`,
    ok: peak * 1.048576 <= TARGET.rssMiB,
  });
  const slow = t.slow;
  transferFailed(`4. ${sizeText(slow.size)} through a slow reader at ${slow.rateMiBps} MiB/s`, ["download", slow.download], ["upload", slow.upload]);
  const slowPeak = peakOf(slow.download, slow.upload);
  const growth = (tr: TransferResult) => tr.rss!.peakMiB - tr.rss!.startMiB;
  rows.push({
    workload: `4. proxy RSS, peak with a slow reader (${sizeText(slow.size)} at ${slow.rateMiBps} MiB/s: growth download / upload)`,
    direct: "–",
    proxied: `${(slowPeak * 1.048576).toFixed(0)} MB (+${growth(slow.download).toFixed(0)} / +${growth(slow.upload).toFixed(0)} MiB)`,
    ratio: "–",
    target: `≤ ${TARGET.rssMiB} MB`,
    ok: slowPeak * 1.048576 <= TARGET.rssMiB,
  });
  notes.push(
    `Backpressure: with a slow agent reading ${sizeText(slow.size)} at ${slow.rateMiBps} MiB/s, the upstream had handed over every byte after ${slow.download.senderSeconds.toFixed(2)} s of ${slow.download.seconds.toFixed(2)} s; ` +
      `with a slow upstream reading an upload at ${slow.rateMiBps} MiB/s, the agent had written every byte after ${slow.upload.senderSeconds.toFixed(2)} s of ${slow.upload.seconds.toFixed(2)} s ` +
      `(with backpressure the sender finishes close to the end, less what the kernel's socket buffers hold).`,
  );
  notes.push(
    `Transfers: proxy RSS ${t.download.proxied.rss!.startMiB.toFixed(0)} MiB before the download, peak ${t.download.proxied.rss!.peakMiB.toFixed(0)} MiB (download) and ${t.upload.proxied.rss!.peakMiB.toFixed(0)} MiB (upload); ` +
      `proxy CPU ${cpuPerGiB(t.download.proxied)} s per GiB downloaded, ${cpuPerGiB(t.upload.proxied)} s per GiB uploaded (2 CPUs shared by client, proxy and upstream).`,
  );
}

function reportConcurrency(c: ConcurrencyResult): void {
  const leaked = c.fdsAfter.total > c.fdsBefore.total || c.fdsAfter.clientSide > 0 || c.fdsAfter.closeWait > 0;
  rows.push({
    workload: `5. ${c.tunnels} concurrent tunnels for ${CONCURRENCY.seconds} s, a GET each per ${CONCURRENCY.periodMs / 1000} s: requests / errors`,
    direct: "–",
    proxied: `${c.requests} / ${c.errors}`,
    ratio: "–",
    target: "0 errors",
    ok: c.errors === 0 && c.opened === c.tunnels,
  });
  rows.push({
    workload: "5. proxy file descriptors: before → during → after (client-side sockets after; CLOSE_WAIT after)",
    direct: "–",
    proxied: `${c.fdsBefore.total} → ${c.fdsDuring.total} → ${c.fdsAfter.total} (${c.fdsAfter.clientSide}; ${c.fdsAfter.closeWait})`,
    ratio: "–",
    target: "no leak",
    ok: !leaked,
  });
  notes.push(
    `Concurrency: ${c.opened} of ${c.tunnels} tunnels opened at once (CONNECT + TLS median ${c.connectMs ? ms(c.connectMs.median) : "–"}, max ${c.connectMs ? ms(c.connectMs.max) : "–"}); ` +
      `request latency median ${c.latency ? ms(c.latency.median) : "–"}, p99 ${c.latency ? ms(c.latency.p99) : "–"}, max ${c.latency ? ms(c.latency.max) : "–"}; ` +
      `proxy RSS peak ${c.rssPeakMiB.toFixed(0)} MiB; half-way the proxy held ${c.fdsDuring.clientSide} client-side and ${c.fdsDuring.upstreamSide} upstream sockets; ` +
      `after ${c.settleSeconds.toFixed(1)} s of settling, ${c.fdsAfter.upstreamSide} upstream sockets (${c.fdsBefore.upstreamSide} before).` +
      (c.errorSamples.length > 0 ? ` Errors: ${c.errorSamples.map((e) => `"${e}"`).join("; ")}.` : ""),
  );
}

function reportMitm(r: Results, m: MitmResults, mitm: Mitm): void {
  const label = `mitmproxy ${mitm.version}`;
  const ka = failed(r.keepAlive) ? undefined : r.keepAlive;
  const nh = failed(r.newHost) ? undefined : r.newHost;
  rows.push({
    workload: `6. ${label}: keep-alive GET, mean per request (upstream connections opened: ${m.keepAlive.upstreamConnections})`,
    direct: ka ? ms(ka.direct.perRequest.mean) : "–",
    proxied: ms(m.keepAlive.perRequest.mean),
    ratio: ka ? x(m.keepAlive.perRequest.mean / ka.direct.perRequest.mean) : "–",
    target: "–",
    ok: null,
  });
  rows.push({
    workload: `6. ${label}: new connection + first request to a never-seen host name (median of ${m.newHost.fresh.n})`,
    direct: nh ? ms(nh.direct.fresh.median) : "–",
    proxied: ms(m.newHost.fresh.median),
    ratio: nh ? x(m.newHost.fresh.median / nh.direct.fresh.median) : "–",
    target: "–",
    ok: null,
  });
  rows.push({
    workload: `6. ${label}: added by a never-seen name vs a warm name`,
    direct: nh ? ms(nh.direct.added.median) : "–",
    proxied: ms(m.newHost.added.median),
    ratio: "–",
    target: "–",
    ok: null,
  });
  for (const dir of ["download", "upload"] as const) {
    const workload = `6. ${label}: ${sizeText(m.transfer.size)} ${dir}, throughput`;
    if (m.transfer[dir].mitm.error !== undefined) {
      // mitmproxy's own failures are information, not agent-vault's failures.
      rows.push({ workload, direct: mibs(m.transfer[dir].direct.mibPerSecond), proxied: `failed: ${m.transfer[dir].mitm.error}`, ratio: "–", target: "–", ok: null });
      continue;
    }
    rows.push({
      workload,
      direct: mibs(m.transfer[dir].direct.mibPerSecond),
      proxied: mibs(m.transfer[dir].mitm.mibPerSecond),
      ratio: pct(m.transfer[dir].mitm.mibPerSecond / m.transfer[dir].direct.mibPerSecond),
      target: "–",
      ok: null,
    });
  }
  const versus = [
    ka ? `per keep-alive request ${x(ka.proxied.perRequest.mean / m.keepAlive.perRequest.mean)}` : null,
    nh ? `per first request to a new host ${x(nh.proxied.fresh.median / m.newHost.fresh.median)}` : null,
  ].filter(Boolean);
  notes.push(
    `mitmproxy ${mitm.version} (mitmdump -q, stream_large_bodies=1m, an addon that sets the same Authorization; the client CONNECTs to the upstream's address and sends the name as SNI): ` +
      (versus.length > 0 ? `agent-vault time ÷ mitmproxy time ${versus.join(", ")}; ` : "") +
      `mitmproxy RSS peak ${peakOf(m.transfer.download.mitm, m.transfer.upload.mitm).toFixed(0)} MiB during its transfers, ` +
      `CPU ${cpuPerGiB(m.transfer.download.mitm)} s per GiB downloaded, ${cpuPerGiB(m.transfer.upload.mitm)} s per GiB uploaded.`,
  );
}

/** Workload 7's table and notes, printed after the main table's notes. */
const settingsLines: string[] = [];

function reportSettings(st: SettingsResult): void {
  const off = st.series.find((s) => !s.guard && !s.scrub)!;
  const both = st.series.find((s) => s.guard && s.scrub)!;
  const guardOnly = st.series.find((s) => s.guard && !s.scrub)!;
  const scrubOnly = st.series.find((s) => !s.guard && s.scrub)!;
  const cost = (v: number, base: number) => {
    const c = (v / base - 1) * 100;
    return `${c < 0 ? "−" : "+"}${Math.abs(c).toFixed(1)}%`;
  };
  const within = (v: number, base: number) => v / base - 1 <= TARGET.switchCost;
  const header = ["setting", "mean per request", "median", "ratio to direct", "cost vs both off", "proxy CPU per request", "CPU cost vs both off", "target", "ok? (mean / CPU)"];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|---|${header
      .slice(1)
      .map(() => "---:")
      .join("|")}|`,
  ];
  lines.push(`| direct (no proxy) | ${ms(st.direct.perRequest.mean)} | ${ms(st.direct.perRequest.median)} | 1.00× | – | – | – | – | – |`);
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  for (const s of st.series) {
    // Each switch on its own is held to the target; both together are what a new vault costs.
    const single = s.guard !== s.scrub;
    const base = s === off;
    lines.push(
      `| ${s.name} | ${ms(s.perRequest.mean)} | ${ms(s.perRequest.median)} | ${x(s.perRequest.mean / st.direct.perRequest.mean)} | ` +
        `${base ? "–" : cost(s.perRequest.mean, off.perRequest.mean)} | ${ms(s.cpuPerRequest)} | ${base ? "–" : cost(s.cpuPerRequest, off.cpuPerRequest)} | ` +
        `${single ? `≤ +${pct(TARGET.switchCost)}` : "–"} | ${single ? `${mark(within(s.perRequest.mean, off.perRequest.mean))} / ${mark(within(s.cpuPerRequest, off.cpuPerRequest))}` : "–"} |`,
    );
  }
  // The same comparison inside each round (the series of a round ran within a few seconds of each other).
  const rounds = (s: (typeof st.series)[number], by: "roundMeans" | "roundCpu") => {
    const costs = s[by].map((v, i) => (v / off[by][i]! - 1) * 100).sort((a, b) => a - b);
    const mid = costs.length % 2 === 1 ? costs[(costs.length - 1) / 2]! : (costs[costs.length / 2 - 1]! + costs[costs.length / 2]!) / 2;
    const p = (v: number) => `${v < 0 ? "−" : "+"}${Math.abs(v).toFixed(0)}%`;
    return `${p(mid)} (${p(costs[0]!)} to ${p(costs[costs.length - 1]!)})`;
  };
  const perRound = (by: "roundMeans" | "roundCpu") => `guard only ${rounds(guardOnly, by)}, scrub only ${rounds(scrubOnly, by)}, guard + scrub ${rounds(both, by)}`;
  const details = [
    `Each setting: ${st.rounds} rounds × ${st.perRound} sequential GETs on one new connection (after ${Math.min(100, Math.ceil(st.perRound / 10))} untimed), the rounds interleaved in a rotated order with a direct series first, after an untimed round of every setting; ` +
      `the vault holds 10 credentials (20–60 characters), changed between series with \`vault settings\` (median ${ms(st.toggleMs.median)}) and checked through the proxy (a value in the URL refused or not, a value in a response replaced or not). ` +
      `Proxy CPU: the server's threads, from /proc/PID/task/*/schedstat, over the timed requests.`,
    `Cost vs both off within each round, median (min to max) over ${st.rounds} rounds: mean per request: ${perRound("roundMeans")}; proxy CPU: ${perRound("roundCpu")}. ` +
      `Medians per request vs both off: guard only ${cost(guardOnly.perRequest.median, off.perRequest.median)}, scrub only ${cost(scrubOnly.perRequest.median, off.perRequest.median)}, guard + scrub ${cost(both.perRequest.median, off.perRequest.median)}.`,
    `Each switch with the other on (mean / CPU): the guard ${cost(both.perRequest.mean, scrubOnly.perRequest.mean)} / ${cost(both.cpuPerRequest, scrubOnly.cpuPerRequest)} (guard + scrub vs scrub only), ` +
      `scrubbing ${cost(both.perRequest.mean, guardOnly.perRequest.mean)} / ${cost(both.cpuPerRequest, guardOnly.cpuPerRequest)} (guard + scrub vs guard only). ` +
      `p99: direct ${ms(st.direct.perRequest.p99)}, ${st.series.map((s) => `${s.name} ${ms(s.perRequest.p99)}`).join(", ")}.`,
  ];
  settingsLines.push("7. Guard and scrubbing: keep-alive GET through agent-vault under each vault setting", "", ...lines, "", ...details.map((d) => `- ${d}`));
}

function report(r: Results, mitm: Mitm | null, mitmSkipped: string): void {
  if (failed(r.keepAlive)) failedRow("1. keep-alive GET", r.keepAlive.error);
  else if (r.keepAlive) reportKeepAlive(r.keepAlive);
  if (failed(r.newHost)) failedRow("2. first request to a never-seen host name", r.newHost.error);
  else if (r.newHost) reportNewHost(r.newHost);
  if (failed(r.sse)) failedRow("3. SSE relay lag", r.sse.error);
  else if (r.sse) reportSse(r.sse);
  if (r.transfer) reportTransfer(r.transfer);
  if (failed(r.concurrency)) failedRow("5. concurrent tunnels", r.concurrency.error);
  else if (r.concurrency) reportConcurrency(r.concurrency);
  if (failed(r.mitm)) rows.push({ workload: "6. mitmproxy", direct: "–", proxied: `failed: ${r.mitm.error}`, ratio: "–", target: "–", ok: null });
  else if (r.mitm && mitm) reportMitm(r, r.mitm, mitm);
  else if (mitmSkipped) notes.push(`${mitmSkipped}.`);
  if (failed(r.settings)) failedRow("7. guard and scrubbing", r.settings.error);
  else if (r.settings) reportSettings(r.settings);
  notes.push(`agent-vault server RSS: ${r.serverRssAtStartMiB.toFixed(0)} MiB when the client started, ${r.serverRssAtEndMiB.toFixed(0)} MiB after workloads 1–5.`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  statSync(BINARY); // a clear ENOENT first: run `bun scripts/build.ts`
  const home = join(root, "home");
  const base = cleanEnv({ AGENT_VAULT_HOME: home });
  const version = (await mustRun(["--version"], base)).trim();
  process.stderr.write(`agent-vault ${version}, bun ${Bun.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? "?"}), ${QUICK ? "BENCH_QUICK" : "full"} run, temp ${root}\n`);

  upstream = await startBenchUpstream(root, SECRET);
  const apiName = `api.${DOMAIN}`;
  const warmName = `warm.${DOMAIN}`;
  const names = (prefix: string) => Array.from({ length: FRESH_NAMES }, (_, i) => `${prefix}${String(i).padStart(3, "0")}.${DOMAIN}`);
  const freshNames = { direct: names("d"), proxied: names("p"), mitm: names("m"), relay: names("r") };

  // The data directory: ten credentials (the injected one and nine more, for the guard and
  // scrubbing to look for; both are on, as in any new vault), an exact service for the API host
  // and a wildcard for the rest (the first-request workload's never-seen names).
  await mustRun(["init", "--no-password"], base);
  await mustRun(["vault", "credential", "set", `BENCH_TOKEN=${SECRET}`, ...extraCredentials()], base);
  await mustRun(["vault", "service", "add", "--name", "bench-api", "--host", apiName, "--auth-type", "bearer", "--token-key", "BENCH_TOKEN"], base);
  await mustRun(["vault", "service", "add", "--name", "bench-hosts", "--host", `*.${DOMAIN}`, "--auth-type", "bearer", "--token-key", "BENCH_TOKEN"], base);

  const connectTo = [apiName, warmName, ...freshNames.proxied].map((n) => `${n}:443:127.0.0.1:${upstream!.port}`).join(",");
  const serverEnv = { ...base, AGENT_VAULT_CONNECT_TO: connectTo, AGENT_VAULT_UPSTREAM_CA: upstream.caFile };
  const [apiPort, mitmPort] = [await freePort(), await freePort()];
  const serverErr: string[] = [];
  // BENCH_PROXY_PROFILE=DIR runs the server from source under bun's CPU profiler instead, and
  // leaves a markdown profile in DIR when the run ends (the numbers are then not the binary's).
  const profileDir = process.env.BENCH_PROXY_PROFILE;
  const serverCommand = profileDir
    ? [process.execPath, ...(process.env.BENCH_PROF_JSON ? ["--cpu-prof", "--cpu-prof-interval=100"] : ["--cpu-prof-md"]), `--cpu-prof-dir=${resolve(profileDir)}`, join(ROOT, "src/main.ts")]
    : [BINARY];
  const server = Bun.spawn([...serverCommand, "server", "--port", String(apiPort), "--mitm-port", String(mitmPort)], { env: serverEnv, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  children.push({ name: "server", proc: server });
  void collect(server.stderr as ReadableStream<Uint8Array>, serverErr);
  // Ready when its pidfile is written (after both listeners are up), which is what `run` looks for.
  await waitFor("agent-vault server", async () => existsSync(join(home, "server.pid")) && (await accepts(mitmPort)) && (await accepts(apiPort)), 15_000, server).catch((error: Error) => {
    throw new Error(`${error.message}: ${serverErr.join("").trim().slice(0, 500)}`);
  });

  const only = ONLY;
  let mitm: Mitm | null = null;
  let mitmSkipped = "";
  if (only === null || only.includes(6)) {
    try {
      mitm = await startMitmproxy(upstream.caFile);
      if (!mitm) mitmSkipped = "mitmproxy: not installed, skipped";
    } catch (error) {
      mitmSkipped = `mitmproxy: could not start (${(error as Error).message}), skipped`;
    }
    if (mitmSkipped) process.stderr.write(`${mitmSkipped}\n`);
  }

  const relay = only === null || only.includes(1) || only.includes(2) || only.includes(4) ? await startRelay(upstream.caFile) : null;

  const config: ClientConfig = {
    quick: QUICK,
    upstreamPort: upstream.port,
    upstreamCa: upstream.caFile,
    controlPort: upstream.controlPort,
    serverPid: server.pid,
    mitmPort,
    apiName,
    warmName,
    freshNames,
    secret: SECRET,
    mitm,
    relay,
    sizes: SIZES,
    concurrency: CONCURRENCY,
    only,
    binary: BINARY,
    home,
    settings: SETTINGS,
  };
  const started = performance.now();
  // Interference: CPU time the machine spends on anything that is not this benchmark's processes.
  const ours = () => cpuOf("self", true) + cpuOf(server.pid) + (mitm ? cpuOf(mitm.pid) : 0);
  const busy0 = machineBusy();
  const ours0 = ours();
  // Outside the sandbox: the client reads the server's /proc entries for RSS and CPU, and the
  // relay's own cost is measured apart (scripts/bench-sandbox.ts).
  const client = Bun.spawn([BINARY, "run", "--no-sandbox", "--", process.execPath, CLIENT], {
    cwd: ROOT,
    env: { ...base, BENCH_PROXY_CONFIG: JSON.stringify(config) },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push({ name: "client", proc: client });
  const [out, code] = await Promise.all([new Response(client.stdout).text(), client.exited]);
  const line = out.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (code !== 0 || !line) throw new Error(`the bench client (under agent-vault run) exited ${code}${line ? "" : " without a result"}`);
  if (server.exitCode !== null) throw new Error(`the server exited ${server.exitCode} during the run: ${serverErr.join("").trim().slice(0, 500)}`);
  const wall = (performance.now() - started) / 1000;
  const others = Math.max(0, machineBusy() - busy0 - (ours() - ours0));
  const results = JSON.parse(line.slice("BENCH_RESULT ".length)) as Results;
  report(results, mitm, mitmSkipped);
  const interference = `other processes on the machine used ${others.toFixed(1)} CPU-seconds during the ${wall.toFixed(0)} s of workloads (${((others / (wall * cpus().length)) * 100).toFixed(0)}% of the machine)`;
  process.stderr.write(`interference: ${interference}\n`);

  const machine = `${cpus().length} CPU(s) (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / GiB)} GiB`;
  notes.push(`agent-vault ${version}, bun ${Bun.version}, ${machine}; ${QUICK ? "BENCH_QUICK=1" : "full"} run, workloads took ${wall.toFixed(0)} s; ${interference}.`);
  const logFile = join(home, "requests.log");
  if (existsSync(logFile)) notes.push(`The request log grew to ${(statSync(logFile).size / 1024).toFixed(0)} KiB.`);
  // (Only workload 7, with BENCH_ONLY=7, leaves the main table empty.)
  if (rows.length > 0) process.stdout.write(`\n${table()}\n`);
  process.stdout.write(`\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
  if (settingsLines.length > 0) process.stdout.write(`\n${settingsLines.join("\n")}\n`);
  if (failures.length > 0) {
    process.stderr.write(`bench-proxy: ${failures.length} workload(s) failed:\n${failures.map((f) => `  ${f}`).join("\n")}\n`);
    return 1;
  }
  return 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  process.stderr.write(`bench-proxy: ${error instanceof Error ? error.message : String(error)}\n`);
} finally {
  await shutdown();
}
process.exit(exitCode);
