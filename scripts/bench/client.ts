// The client side of the proxy benchmark (scripts/bench-proxy.ts). It runs as the child of
// `agent-vault run`, so it finds the proxy the way an agent does: HTTPS_PROXY carries the session
// token and vault, SSL_CERT_FILE the CA bundle (system roots plus agent-vault's CA). Every
// workload runs the same code directly against the upstream and through the proxy (and through
// mitmproxy when the orchestrator started one), and the numbers go back to the orchestrator as one
// JSON line on stdout ("BENCH_RESULT {...}"); progress goes to stderr.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import tls from "node:tls";
import { openPlain } from "../../test/support/proxy-client.ts";
import { type Conn, connect, type Route } from "./http1.ts";
import { type Summary, summarize } from "./stats.ts";

export type { Summary };

export interface ClientConfig {
  readonly quick: boolean;
  readonly upstreamPort: number;
  readonly upstreamCa: string;
  readonly controlPort: number;
  readonly serverPid: number;
  readonly mitmPort: number;
  readonly apiName: string;
  readonly warmName: string;
  /** Never-seen names, one set per route, so each route mints its own. */
  readonly freshNames: { readonly direct: string[]; readonly proxied: string[]; readonly mitm: string[]; readonly relay: string[] };
  readonly secret: string;
  readonly mitm: { readonly port: number; readonly pid: number; readonly caFile: string } | null;
  /** The bare TLS relay (scripts/bench/relay.ts), the floor for workloads 1 and 2. */
  readonly relay: { readonly port: number; readonly pid: number; readonly caFile: string } | null;
  readonly sizes: {
    readonly keepAlive: number;
    /** Untimed requests on each route's connection before workload 1's rounds. */
    readonly keepAliveWarmup?: number;
    readonly sseEvents: number;
    readonly sseIntervalMs: number;
    readonly transfer: number;
    readonly mitmTransfer: number;
    readonly slowTransfer: number;
    readonly slowRateMiBps: number;
  };
  readonly concurrency: { readonly tunnels: number; readonly seconds: number; readonly periodMs: number };
  /** Workload numbers to run (BENCH_ONLY); null for all. */
  readonly only: number[] | null;
  /** For workload 7, which changes the vault's settings with the CLI between series. */
  readonly binary: string;
  readonly home: string;
  /** Workload 7: rounds of five series (direct and the four settings) of `perSeries` requests each. */
  readonly settings: { readonly rounds: number; readonly perSeries: number };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const log = (text: string) => process.stderr.write(`${text}\n`);
const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A plain GET on loopback over a raw socket (no proxy variables can interfere). */
async function plainGet(port: number, path: string): Promise<string> {
  const conn = await openPlain(port);
  try {
    return (
      await conn.request("GET", path, [
        ["Host", "127.0.0.1"],
        ["Connection", "close"],
      ])
    ).text;
  } finally {
    conn.close();
  }
}

async function upstreamStats(cfg: ClientConfig): Promise<{ accepted: number; open: number; lastDownloadWriteMs: number }> {
  return JSON.parse(await plainGet(cfg.controlPort, "/stats"));
}

// ---------------------------------------------------------------------------------------------
// /proc: memory, CPU and sockets of the proxy process

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
}

/**
 * CPU time of every thread of a process, in ms, from /proc/PID/task/TID/schedstat (nanoseconds; the
 * tick counts of /proc/PID/stat are too coarse for a few hundred requests). A thread that ends
 * between two readings takes its time with it: fine for a server whose threads live on.
 */
function threadCpuMs(pid: number): number {
  return processCpu(pid).ms;
}

/** A process's CPU time so far, in ms: every thread, its main thread, and user / kernel time (the last two in 10 ms ticks). */
export interface ProcessCpu {
  readonly ms: number;
  readonly mainMs: number;
  readonly userMs: number;
  readonly kernelMs: number;
}

function processCpu(pid: number): ProcessCpu {
  let ns = 0;
  let mainNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const n = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      ns += n;
      if (tid === String(pid)) mainNs = n;
    } catch {
      // the thread ended
    }
  }
  // /proc/PID/stat after the command's closing parenthesis: fields 14 and 15 (utime, stime), in ticks of 10 ms.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ms: ns / 1e6, mainMs: mainNs / 1e6, userMs: Number(fields[11]) * 10, kernelMs: Number(fields[12]) * 10 };
}

const minusCpu = (a: ProcessCpu, b: ProcessCpu): ProcessCpu => ({ ms: a.ms - b.ms, mainMs: a.mainMs - b.mainMs, userMs: a.userMs - b.userMs, kernelMs: a.kernelMs - b.kernelMs });
const plusCpu = (a: ProcessCpu, b: ProcessCpu): ProcessCpu => ({ ms: a.ms + b.ms, mainMs: a.mainMs + b.mainMs, userMs: a.userMs + b.userMs, kernelMs: a.kernelMs + b.kernelMs });
const NO_CPU: ProcessCpu = { ms: 0, mainMs: 0, userMs: 0, kernelMs: 0 };

/** Samples RSS every `everyMs` until stopped; returns the peak. */
function rssSampler(pid: number, everyMs = 50): { stop(): { peak: number; start: number } } {
  const start = rssMiB(pid);
  let peak = start;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      // the process is gone; the caller finds out
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, rssMiB(pid));
      return { peak, start };
    },
  };
}

export interface FdSnapshot {
  readonly total: number;
  /** Sockets accepted on the proxy port (agents' tunnels), any state but LISTEN. */
  readonly clientSide: number;
  /** Sockets to the upstream port (the proxy's upstream connections, pooled or busy). */
  readonly upstreamSide: number;
  /** Sockets whose peer has closed and the proxy has not (TCP CLOSE_WAIT): leaks in the making. */
  readonly closeWait: number;
}

function tcpTable(): Map<string, { local: number; remote: number; state: string }> {
  const table = new Map<string, { local: number; remote: number; state: string }>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const port = (addr: string) => parseInt(addr.split(":").pop() ?? "0", 16);
      table.set(cols[9]!, { local: port(cols[1]!), remote: port(cols[2]!), state: cols[3]! });
    }
  }
  return table;
}

function fdSnapshot(pid: number, proxyPort: number, upstreamPort: number): FdSnapshot {
  const fds = readdirSync(`/proc/${pid}/fd`);
  const table = tcpTable();
  let clientSide = 0;
  let upstreamSide = 0;
  let closeWait = 0;
  for (const fd of fds) {
    let link = "";
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    const entry = inode ? table.get(inode) : undefined;
    if (!entry || entry.state === "0A") continue; // not TCP, or a listener
    if (entry.state === "08") closeWait++;
    if (entry.local === proxyPort) clientSide++;
    else if (entry.remote === upstreamPort) upstreamSide++;
  }
  return { total: fds.length, clientSide, upstreamSide, closeWait };
}

// ---------------------------------------------------------------------------------------------
// Workloads

const PLACEHOLDER = { authorization: "Bearer placeholder-not-a-secret" };

function checkSmall(r: { status: number; headers: Record<string, string>; body: Buffer }, expectAuth: string, what: string): void {
  if (r.status !== 200) throw new Error(`${what}: status ${r.status}: ${r.body.toString("utf8").slice(0, 300)}`);
  if (r.headers["x-bench-auth"] !== expectAuth) throw new Error(`${what}: the upstream saw Authorization "${r.headers["x-bench-auth"]}", expected "${expectAuth}"`);
}

export interface KeepAliveResult {
  readonly perRequest: Summary;
  /** CPU time of the proxy process (every thread) per timed request, in ms; 0 when not measured. */
  readonly proxyCpuPerRequest: number;
  /** The same, split: main thread and user / kernel time, per timed request in ms (interleaved series only). */
  readonly proxyCpuSplit?: ProcessCpu;
  /** Upstream connections the upstream accepted during the run (the proxy's pool may add 0). */
  readonly upstreamConnections: number;
}

/**
 * `n` sequential small GETs, after `warmup` untimed ones, on one new connection: the times in ms,
 * and with `cpuPid` the CPU time that process spent during the timed ones.
 */
async function keepAliveSeries(
  cfg: ClientConfig,
  route: Route,
  expectAuth: string,
  what: string,
  n: number,
  warmup: number,
  cpuPid?: number,
): Promise<{ samples: number[]; upstreamConnections: number; cpuMs: number }> {
  const before = await upstreamStats(cfg);
  const { conn } = await connect(route, cfg.apiName);
  const samples: number[] = [];
  let cpu0 = 0;
  try {
    for (let i = -warmup; i < n; i++) {
      if (i === 0 && cpuPid !== undefined) cpu0 = threadCpuMs(cpuPid);
      const t0 = performance.now();
      const r = await conn.request({ path: "/small", host: cfg.apiName, headers: PLACEHOLDER });
      const ms = performance.now() - t0;
      checkSmall(r, expectAuth, what);
      if (i >= 0) samples.push(ms);
    }
  } finally {
    conn.close();
  }
  const cpuMs = cpuPid !== undefined && n > 0 ? threadCpuMs(cpuPid) - cpu0 : 0;
  const after = await upstreamStats(cfg);
  return { samples, upstreamConnections: after.accepted - before.accepted, cpuMs };
}

/** 1. N sequential small GETs on one connection (one tunnel, reused). */
async function keepAlive(cfg: ClientConfig, route: Route, expectAuth: string, what: string, proxyPid?: number): Promise<KeepAliveResult> {
  const n = cfg.sizes.keepAlive;
  const { samples, upstreamConnections, cpuMs } = await keepAliveSeries(cfg, route, expectAuth, what, n, Math.min(100, n / 10), proxyPid);
  const result = { perRequest: summarize(samples), upstreamConnections, proxyCpuPerRequest: cpuMs / n };
  log(`  ${what}: mean ${result.perRequest.mean.toFixed(3)} ms/request over ${n}, upstream connections opened ${result.upstreamConnections}`);
  return result;
}

/** One route of workload 1, measured in rounds interleaved with the others. */
interface Lane {
  readonly route: Route;
  readonly expectAuth: string;
  readonly what: string;
  /** The proxy's pid, for its CPU time per request. */
  readonly pid?: number;
}

const KEEP_ALIVE_ROUNDS = 10;

/**
 * 1. N sequential small GETs per route, each route on one connection of its own (one tunnel,
 * reused), in rounds that take turns between the routes: load from other processes on the machine
 * then falls on every route alike instead of on whichever series it happened to meet.
 */
/** Untimed keep-alive requests one route makes before the next route takes its turn. */
const WARMUP_TURN = 100;

async function keepAliveInterleaved(cfg: ClientConfig, lanes: readonly Lane[]): Promise<KeepAliveResult[]> {
  const n = cfg.sizes.keepAlive;
  const per = Math.max(1, Math.round(n / KEEP_ALIVE_ROUNDS));
  const warmup = cfg.sizes.keepAliveWarmup ?? Math.min(100, n / 10);
  const open: { lane: Lane; conn: Conn; samples: number[]; cpu: ProcessCpu; upstreamConnections: number }[] = [];
  /** One request of a lane; a failure names the lane and the request. */
  const request = (o: (typeof open)[number], which: string) =>
    o.conn.request({ path: "/small", host: cfg.apiName, headers: PLACEHOLDER }).catch((error: Error) => {
      throw new Error(`${o.lane.what}, ${which}: ${error.message}`);
    });
  try {
    for (const lane of lanes) {
      const before = await upstreamStats(cfg);
      const { conn } = await connect(lane.route, cfg.apiName);
      checkSmall(await conn.request({ path: "/small", host: cfg.apiName, headers: PLACEHOLDER }), lane.expectAuth, lane.what);
      open.push({ lane, conn, samples: [], cpu: NO_CPU, upstreamConnections: (await upstreamStats(cfg)).accepted - before.accepted });
    }
    // The untimed requests take turns too, 100 at a time: no connection sits idle long enough for
    // the upstream's 5 s idle close while another route warms up.
    for (let done = 1; done < warmup; done += WARMUP_TURN) {
      for (const o of open) {
        for (let i = done; i < Math.min(warmup, done + WARMUP_TURN); i++) checkSmall(await request(o, `untimed request ${i}`), o.lane.expectAuth, o.lane.what);
      }
    }
    const beforeRounds = await upstreamStats(cfg);
    for (let round = 0; round < KEEP_ALIVE_ROUNDS; round++) {
      for (const o of open) {
        const cpu0 = o.lane.pid !== undefined ? processCpu(o.lane.pid) : NO_CPU;
        for (let i = 0; i < per; i++) {
          const t0 = performance.now();
          const r = await request(o, `round ${round + 1}, request ${i + 1}`);
          o.samples.push(performance.now() - t0);
          checkSmall(r, o.lane.expectAuth, o.lane.what);
        }
        if (o.lane.pid !== undefined) o.cpu = plusCpu(o.cpu, minusCpu(processCpu(o.lane.pid), cpu0));
      }
    }
    const extra = (await upstreamStats(cfg)).accepted - beforeRounds.accepted;
    if (extra > 0) log(`  ${extra} upstream connection(s) opened during the rounds (an idle close?)`);
  } finally {
    for (const o of open) o.conn.close();
  }
  return open.map((o) => {
    const n = o.samples.length;
    const perRequest: ProcessCpu = { ms: o.cpu.ms / n, mainMs: o.cpu.mainMs / n, userMs: o.cpu.userMs / n, kernelMs: o.cpu.kernelMs / n };
    const result = { perRequest: summarize(o.samples), upstreamConnections: o.upstreamConnections, proxyCpuPerRequest: perRequest.ms, proxyCpuSplit: perRequest };
    log(`  ${o.lane.what}: mean ${result.perRequest.mean.toFixed(3)} ms, median ${result.perRequest.median.toFixed(3)} ms per request over ${o.samples.length} in ${KEEP_ALIVE_ROUNDS} rounds`);
    return result;
  });
}

/** Workload 7's four vault settings; the first is a new vault's default. */
const SETTINGS = [
  { name: "guard + scrub", guard: true, scrub: true },
  { name: "guard only", guard: true, scrub: false },
  { name: "scrub only", guard: false, scrub: true },
  { name: "both off", guard: false, scrub: false },
] as const;

export interface SettingSeries {
  readonly name: string;
  readonly guard: boolean;
  readonly scrub: boolean;
  /** Every timed request of every round. */
  readonly perRequest: Summary;
  /** The mean of each round, in the order of the rounds. */
  readonly roundMeans: number[];
  /** The proxy's CPU time (all threads) per timed request, over all rounds and per round, in ms. */
  readonly cpuPerRequest: number;
  readonly roundCpu: number[];
  /** Connections the upstream accepted over all rounds (the proxy's pool may reuse one). */
  readonly upstreamConnections: number;
}

export interface SettingsResult {
  readonly rounds: number;
  readonly perRound: number;
  readonly direct: { readonly perRequest: Summary; readonly roundMeans: number[] };
  readonly series: SettingSeries[];
  /** How long each `agent-vault vault settings` took (spawn to exit). */
  readonly toggleMs: Summary;
}

/** Runs `agent-vault vault settings --guard --scrub` on the bench's data directory, as the user would; its time in ms. */
async function setVaultSettings(cfg: ClientConfig, guard: boolean, scrub: boolean): Promise<number> {
  // The user's environment, not the agent's: no session, no proxy, only the data directory.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("AGENT_VAULT_") || /^(https?|all|no)_proxy$/i.test(k) || k === "NODE_USE_ENV_PROXY") continue;
    env[k] = v;
  }
  env.AGENT_VAULT_HOME = cfg.home;
  const onOff = (b: boolean) => (b ? "on" : "off");
  const t0 = performance.now();
  const proc = Bun.spawn([cfg.binary, "vault", "settings", "--guard", onOff(guard), "--scrub", onOff(scrub), "--json"], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const elapsed = performance.now() - t0;
  if (code !== 0) throw new Error(`vault settings --guard ${onOff(guard)} --scrub ${onOff(scrub)} exited ${code}: ${err.trim().slice(0, 300)}`);
  const now = JSON.parse(out) as { guard?: boolean; scrub?: boolean };
  if (now.guard !== guard || now.scrub !== scrub) throw new Error(`vault settings printed guard ${now.guard}, scrub ${now.scrub}; expected ${guard}, ${scrub}`);
  return elapsed;
}

/** Checks that the proxy applies the settings: a credential value in the URL is refused (guard), one in a response is replaced (scrub). */
async function checkSettings(cfg: ClientConfig, route: Route, guard: boolean, scrub: boolean, what: string): Promise<void> {
  // Each probe on its own connection: a refusal may end one.
  let { conn } = await connect(route, cfg.apiName);
  try {
    const r = await conn.request({ path: "/leak", host: cfg.apiName, headers: PLACEHOLDER });
    checkSmall(r, "real", `${what}: /leak`);
    const body = r.body.toString("utf8");
    const scrubbed = !body.includes(cfg.secret) && body.includes("[REDACTED:");
    if (scrubbed !== scrub) throw new Error(`${what}: scrubbing is ${scrub ? "on" : "off"} but the response read ${JSON.stringify(body.slice(0, 200))}`);
  } finally {
    conn.close();
  }
  ({ conn } = await connect(route, cfg.apiName));
  try {
    const r = await conn.request({ path: `/small?probe=${encodeURIComponent(cfg.secret)}`, host: cfg.apiName, headers: PLACEHOLDER });
    if (r.status !== (guard ? 403 : 200)) throw new Error(`${what}: the guard is ${guard ? "on" : "off"} but a request with the credential value in its URL got ${r.status}`);
  } finally {
    conn.close();
  }
}

/**
 * 7. Workload 1 through the proxy under each combination of the vault's guard and scrub settings,
 * changed with the CLI between series (the server picks the change up on its next request). The
 * series are interleaved in rounds, each round in a rotated order and with a direct series first,
 * so that the machine's drift spreads over all settings instead of landing on one. It runs right
 * after workload 1, on the same server state (before the transfers grow the proxy's heap).
 */
async function guardScrub(cfg: ClientConfig, direct: Route, proxied: Route): Promise<SettingsResult> {
  const rounds = Math.max(1, cfg.settings.rounds);
  const n = Math.max(1, cfg.settings.perSeries);
  const warmup = Math.min(100, Math.ceil(n / 10));
  const directSamples: number[][] = [];
  const samples = new Map<string, number[][]>(SETTINGS.map((s) => [s.name, []]));
  const cpu = new Map<string, number[]>(SETTINGS.map((s) => [s.name, []]));
  const connections = new Map<string, number>(SETTINGS.map((s) => [s.name, 0]));
  const toggles: number[] = [];
  const apply = async (s: (typeof SETTINGS)[number]) => {
    toggles.push(await setVaultSettings(cfg, s.guard, s.scrub));
    await sleep(100);
    await checkSettings(cfg, proxied, s.guard, s.scrub, s.name);
  };
  try {
    // An untimed round first, so that the server's code for every setting is compiled before any
    // is measured (this workload may run first, on a server that has served nothing yet).
    await keepAliveSeries(cfg, direct, "placeholder", "direct", 0, 200);
    for (const s of SETTINGS) {
      await apply(s);
      await keepAliveSeries(cfg, proxied, "real", `agent-vault, ${s.name}`, 0, 200);
    }
    for (let round = 0; round < rounds; round++) {
      directSamples.push((await keepAliveSeries(cfg, direct, "placeholder", "direct", n, warmup)).samples);
      const order = SETTINGS.map((_, i) => SETTINGS[(i + round) % SETTINGS.length]!);
      const line: string[] = [`direct ${summarize(directSamples[round]!).mean.toFixed(3)}`];
      for (const s of order) {
        await apply(s);
        const series = await keepAliveSeries(cfg, proxied, "real", `agent-vault, ${s.name}`, n, warmup, cfg.serverPid);
        samples.get(s.name)!.push(series.samples);
        cpu.get(s.name)!.push(series.cpuMs / n);
        connections.set(s.name, connections.get(s.name)! + series.upstreamConnections);
        line.push(`${s.name} ${summarize(series.samples).mean.toFixed(3)} (CPU ${(series.cpuMs / n).toFixed(3)})`);
      }
      log(`  round ${round + 1}/${rounds}, mean ms/request over ${n} (proxy CPU ms/request): ${line.join(", ")}`);
    }
  } finally {
    // Back to a new vault's default, whatever happened.
    await setVaultSettings(cfg, true, true).catch((error: Error) => log(`  could not restore the settings: ${error.message}`));
  }
  const mean = (xs: number[]) => summarize(xs).mean;
  const result: SettingsResult = {
    rounds,
    perRound: n,
    direct: { perRequest: summarize(directSamples.flat()), roundMeans: directSamples.map(mean) },
    series: SETTINGS.map((s) => ({
      name: s.name,
      guard: s.guard,
      scrub: s.scrub,
      perRequest: summarize(samples.get(s.name)!.flat()),
      roundMeans: samples.get(s.name)!.map(mean),
      cpuPerRequest: cpu.get(s.name)!.reduce((a, b) => a + b, 0) / rounds,
      roundCpu: cpu.get(s.name)!,
      upstreamConnections: connections.get(s.name)!,
    })),
    toggleMs: summarize(toggles),
  };
  log(
    `  mean ms/request over ${rounds} × ${n}: direct ${result.direct.perRequest.mean.toFixed(3)}, ${result.series.map((s) => `${s.name} ${s.perRequest.mean.toFixed(3)} (CPU ${s.cpuPerRequest.toFixed(3)})`).join(", ")}`,
  );
  return result;
}

export interface NewHostResult {
  readonly fresh: Summary;
  readonly warm: Summary;
  /** fresh_i − warm_i, pairwise. */
  readonly added: Summary;
  /** Medians of the phases (ms from the start): TCP, CONNECT answered, TLS done, response read. */
  readonly phases: { readonly fresh: Record<string, number>; readonly warm: Record<string, number> };
}

/**
 * 2. A new connection and one request, to a never-seen name and to a warm name, alternately.
 * /close makes the upstream close after each answer, so the proxy cannot reuse a pooled upstream
 * connection for the warm name either: the pairwise difference is what a new name costs.
 */
async function newHost(cfg: ClientConfig, route: Route, names: readonly string[], expectAuth: string, what: string): Promise<NewHostResult> {
  const one = async (name: string) => {
    const t0 = performance.now();
    const { conn, timing } = await connect(route, name);
    try {
      const r = await conn.request({ path: "/close", host: name, headers: PLACEHOLDER });
      checkSmall(r, expectAuth, `${what} (${name})`);
    } finally {
      conn.close();
    }
    return { total: performance.now() - t0, ...timing };
  };
  await one(cfg.warmName);
  await one(cfg.warmName);
  const fresh: Awaited<ReturnType<typeof one>>[] = [];
  const warm: Awaited<ReturnType<typeof one>>[] = [];
  for (const name of names) {
    fresh.push(await one(name));
    warm.push(await one(cfg.warmName));
  }
  const phases = (list: typeof fresh) => ({
    tcp: summarize(list.map((x) => x.tcp)).median,
    tunnel: summarize(list.map((x) => x.tunnel)).median,
    tls: summarize(list.map((x) => x.tls)).median,
    total: summarize(list.map((x) => x.total)).median,
  });
  const result = {
    fresh: summarize(fresh.map((x) => x.total)),
    warm: summarize(warm.map((x) => x.total)),
    added: summarize(fresh.map((x, i) => x.total - warm[i]!.total)),
    phases: { fresh: phases(fresh), warm: phases(warm) },
  };
  log(`  ${what}: fresh median ${result.fresh.median.toFixed(2)} ms, warm ${result.warm.median.toFixed(2)} ms, added ${result.added.median.toFixed(2)} ms (${names.length} names)`);
  return result;
}

/** The upstream's clock minus ours, from the /clock sample with the smallest round trip. */
async function clockOffset(cfg: ClientConfig, route: Route): Promise<{ offset: number; rtt: number }> {
  const { conn } = await connect(route, cfg.apiName);
  let best = { offset: 0, rtt: Infinity };
  try {
    for (let i = 0; i < 40; i++) {
      const t0 = wallMs();
      const r = await conn.request({ path: "/clock", host: cfg.apiName });
      const t1 = wallMs();
      if (t1 - t0 < best.rtt) best = { offset: Number(r.body.toString()) - (t0 + t1) / 2, rtt: t1 - t0 };
    }
  } finally {
    conn.close();
  }
  return best;
}

export interface SseResult {
  readonly lag: Summary;
  readonly events: number;
}

/** 3. Server-sent events: how late each event arrives after the upstream wrote it. */
async function sseLag(cfg: ClientConfig, route: Route, offset: number, what: string): Promise<SseResult> {
  const { conn } = await connect(route, cfg.apiName);
  const lags: number[] = [];
  let text = "";
  try {
    const r = await conn.request({
      path: `/sse?n=${cfg.sizes.sseEvents}&interval=${cfg.sizes.sseIntervalMs}`,
      host: cfg.apiName,
      headers: PLACEHOLDER,
      timeoutMs: 60_000,
      onBody: (piece, arrivedAt) => {
        text += piece.toString("utf8");
        let end: number;
        while ((end = text.indexOf("\n\n")) !== -1) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          const sent = /^data: (.+)$/m.exec(event)?.[1];
          if (sent !== undefined) lags.push(arrivedAt - (Number(sent) - offset));
        }
      },
    });
    if (r.status !== 200) throw new Error(`${what}: status ${r.status}`);
  } finally {
    conn.close();
  }
  if (lags.length !== cfg.sizes.sseEvents) throw new Error(`${what}: ${lags.length} of ${cfg.sizes.sseEvents} events arrived`);
  const result = { lag: summarize(lags), events: lags.length };
  log(`  ${what}: lag median ${result.lag.median.toFixed(3)} ms, p99 ${result.lag.p99.toFixed(3)} ms, max ${result.lag.max.toFixed(3)} ms`);
  return result;
}

export interface TransferResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly mibPerSecond: number;
  /** Of the proxy process (agent-vault or mitmproxy), when there is one. */
  readonly rss?: { readonly startMiB: number; readonly peakMiB: number };
  readonly proxyCpuSeconds?: number;
  /** How long the sending side took to hand over every byte (upstream for a download, client for an upload). */
  readonly senderSeconds: number;
  /** Set when the transfer failed (a stall, a wrong status, lost bytes); the other numbers are partial. */
  readonly error?: string;
}

const CHUNK = Buffer.alloc(64 * 1024, "0123456789abcdefghijklmnopqrstuvwxyz");

/** 4. One large body down or up, generated on the fly on the sending side. */
async function transfer(cfg: ClientConfig, route: Route, direction: "download" | "upload", size: number, proxyPid: number | null, what: string, slowMiBps = 0): Promise<TransferResult> {
  const sampler = proxyPid === null ? null : rssSampler(proxyPid);
  const cpu0 = proxyPid === null ? 0 : cpuSeconds(proxyPid);
  const t0 = performance.now();
  let bytes = 0;
  let senderSeconds = 0;
  let error: string | undefined;
  let conn: Conn | null = null;
  try {
    conn = (await connect(route, cfg.apiName)).conn;
    if (direction === "download") {
      const r = await conn.request({
        path: `/download?bytes=${size}`,
        host: cfg.apiName,
        headers: PLACEHOLDER,
        timeoutMs: 30_000,
        onBody: (piece) => (bytes += piece.length),
        ...(slowMiBps > 0 ? { readRateMiBps: slowMiBps } : {}),
      });
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      senderSeconds = (await upstreamStats(cfg)).lastDownloadWriteMs / 1000;
    } else {
      const path = slowMiBps > 0 ? `/upload?rate=${slowMiBps}` : "/upload";
      const r = await conn.request({ method: "POST", path, host: cfg.apiName, headers: PLACEHOLDER, upload: { size, chunk: CHUNK }, timeoutMs: 30_000 });
      if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.toString().slice(0, 200)}`);
      bytes = (JSON.parse(r.body.toString()) as { bytes: number }).bytes;
      senderSeconds = ((r.uploadDoneAt ?? performance.now()) - t0) / 1000;
    }
    if (bytes !== size) throw new Error(`${bytes} of ${size} bytes arrived`);
  } catch (e) {
    error = (e as Error).message;
  } finally {
    conn?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss = sampler?.stop();
  const result: TransferResult = {
    bytes,
    seconds,
    mibPerSecond: error ? Number.NaN : size / 1024 / 1024 / seconds,
    senderSeconds,
    ...(rss ? { rss: { startMiB: rss.start, peakMiB: rss.peak } } : {}),
    ...(proxyPid !== null ? { proxyCpuSeconds: cpuSeconds(proxyPid) - cpu0 } : {}),
    ...(error ? { error } : {}),
  };
  const memory = rss ? `, proxy RSS ${rss.start.toFixed(0)} → peak ${rss.peak.toFixed(0)} MiB` : "";
  if (error) log(`  ${what}: FAILED after ${seconds.toFixed(1)} s: ${error}${memory}`);
  else log(`  ${what}: ${result.mibPerSecond.toFixed(0)} MiB/s (${seconds.toFixed(2)} s; the sender was done after ${senderSeconds.toFixed(2)} s)${memory}`);
  return result;
}

export interface ConcurrencyResult {
  readonly tunnels: number;
  readonly opened: number;
  readonly seconds: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorSamples: string[];
  readonly latency: Summary | null;
  readonly connectMs: Summary | null;
  readonly fdsBefore: FdSnapshot;
  readonly fdsDuring: FdSnapshot;
  readonly fdsAfter: FdSnapshot;
  readonly settleSeconds: number;
  readonly rssPeakMiB: number;
}

/** 5. Many tunnels held open at once, each with a small request every period. */
async function concurrency(cfg: ClientConfig, route: Route, proxyPort: number): Promise<ConcurrencyResult> {
  const { tunnels, seconds, periodMs } = cfg.concurrency;
  const pid = cfg.serverPid;
  const fdsBefore = fdSnapshot(pid, proxyPort, cfg.upstreamPort);
  const sampler = rssSampler(pid, 200);
  const errors: string[] = [];
  const latencies: number[] = [];
  const connectTimes: number[] = [];
  const fail = (text: string) => errors.push(text);
  const t0 = performance.now();
  const opened = await Promise.all(
    Array.from({ length: tunnels }, async (_, i): Promise<Conn | null> => {
      const c0 = performance.now();
      try {
        const { conn } = await connect(route, cfg.apiName, 30_000);
        connectTimes.push(performance.now() - c0);
        return conn;
      } catch (error) {
        fail(`tunnel ${i}: ${(error as Error).message}`);
        return null;
      }
    }),
  );
  const deadline = performance.now() + seconds * 1000;
  let requests = 0;
  let fdsDuring = fdSnapshot(pid, proxyPort, cfg.upstreamPort);
  const probe = setTimeout(() => (fdsDuring = fdSnapshot(pid, proxyPort, cfg.upstreamPort)), (seconds * 1000) / 2);
  await Promise.all(
    opened.map(async (conn, i) => {
      if (!conn) return;
      await sleep(Math.random() * periodMs);
      while (performance.now() < deadline) {
        const s = performance.now();
        try {
          const r = await conn.request({ path: "/small", host: cfg.apiName, headers: PLACEHOLDER, timeoutMs: 15_000 });
          requests++;
          checkSmall(r, "real", `tunnel ${i}`);
          latencies.push(performance.now() - s);
        } catch (error) {
          fail(`tunnel ${i}: ${(error as Error).message}`);
          if (conn.closed) return;
        }
        await sleep(Math.max(0, periodMs * (0.8 + Math.random() * 0.4) - (performance.now() - s)));
      }
    }),
  );
  clearTimeout(probe);
  for (const conn of opened) conn?.close();
  const elapsed = (performance.now() - t0) / 1000;
  const rss = sampler.stop();
  // Settle: client-side sockets go as soon as the tunnels close; pooled upstream connections
  // when the upstream closes them (after 5 idle seconds). Wait up to 12 s for both.
  const s0 = performance.now();
  let fdsAfter = fdSnapshot(pid, proxyPort, cfg.upstreamPort);
  while (performance.now() - s0 < 12_000 && (fdsAfter.total > fdsBefore.total || fdsAfter.clientSide > 0 || fdsAfter.upstreamSide > fdsBefore.upstreamSide)) {
    await sleep(250);
    fdsAfter = fdSnapshot(pid, proxyPort, cfg.upstreamPort);
  }
  const result: ConcurrencyResult = {
    tunnels,
    opened: opened.filter(Boolean).length,
    seconds: elapsed,
    requests,
    errors: errors.length,
    errorSamples: [...new Set(errors.map((e) => e.replace(/^tunnel \d+: /, "")))].slice(0, 5),
    latency: latencies.length > 0 ? summarize(latencies) : null,
    connectMs: connectTimes.length > 0 ? summarize(connectTimes) : null,
    fdsBefore,
    fdsDuring,
    fdsAfter,
    settleSeconds: (performance.now() - s0) / 1000,
    rssPeakMiB: rss.peak,
  };
  log(
    `  ${tunnels} tunnels × ${seconds} s: ${requests} requests, ${errors.length} errors, p99 ${result.latency?.p99.toFixed(2) ?? "-"} ms; ` +
      `proxy fds ${fdsBefore.total} → ${fdsDuring.total} → ${fdsAfter.total} (client-side ${fdsAfter.clientSide}, upstream ${fdsAfter.upstreamSide}, CLOSE_WAIT ${fdsAfter.closeWait})`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.BENCH_PROXY_CONFIG ?? "null") as ClientConfig | null;
  if (!cfg) throw new Error("BENCH_PROXY_CONFIG is not set: run scripts/bench-proxy.ts, not this file");
  const proxyUrl = new URL(process.env.HTTPS_PROXY ?? "");
  const bundle = process.env.SSL_CERT_FILE;
  if (!proxyUrl.port || !bundle) throw new Error("HTTPS_PROXY or SSL_CERT_FILE is missing: this must run under `agent-vault run`");
  if (Number(proxyUrl.port) !== cfg.mitmPort) throw new Error(`agent-vault run handed out proxy port ${proxyUrl.port}, not the server's ${cfg.mitmPort}`);

  const direct: Route = { kind: "direct", host: "127.0.0.1", port: cfg.upstreamPort, context: tls.createSecureContext({ ca: readFileSync(cfg.upstreamCa) }) };
  const token = `${decodeURIComponent(proxyUrl.username)}:${decodeURIComponent(proxyUrl.password)}`;
  const proxied: Route = {
    kind: "proxy",
    proxyHost: proxyUrl.hostname,
    proxyPort: Number(proxyUrl.port),
    authorization: `Basic ${Buffer.from(token).toString("base64")}`,
    context: tls.createSecureContext({ ca: readFileSync(bundle) }),
  };
  const mitm: Route | null = cfg.mitm
    ? { kind: "proxy", proxyHost: "127.0.0.1", proxyPort: cfg.mitm.port, target: () => `127.0.0.1:${cfg.upstreamPort}`, context: tls.createSecureContext({ ca: readFileSync(cfg.mitm.caFile) }) }
    : null;

  const relay: Route | null = cfg.relay ? { kind: "proxy", proxyHost: "127.0.0.1", proxyPort: cfg.relay.port, context: tls.createSecureContext({ ca: readFileSync(cfg.relay.caFile) }) } : null;

  const want = (n: number) => cfg.only === null || cfg.only.includes(n);
  // A workload that fails is reported as failed and the others still run.
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | { error: string }> => {
    try {
      return await fn();
    } catch (error) {
      log(`  FAILED: ${(error as Error).message}`);
      return { error: (error as Error).message };
    }
  };
  const result: Record<string, unknown> = { serverRssAtStartMiB: rssMiB(cfg.serverPid) };
  if (want(1)) {
    log("1. keep-alive requests on one connection");
    result.keepAlive = await attempt(async () => {
      const lanes: Lane[] = [
        { route: direct, expectAuth: "placeholder", what: "direct" },
        { route: proxied, expectAuth: "real", what: "agent-vault", pid: cfg.serverPid },
        ...(relay && cfg.relay ? [{ route: relay, expectAuth: "placeholder", what: "bare relay", pid: cfg.relay.pid }] : []),
      ];
      const [d, p, r] = await keepAliveInterleaved(cfg, lanes);
      return { direct: d!, proxied: p!, ...(r ? { relay: r } : {}) };
    });
  }
  // 7 runs here, next to 1, so that it measures the same server state (see guardScrub).
  if (want(7)) {
    log(`7. keep-alive requests under each guard / scrub setting (${cfg.settings.rounds} rounds of ${cfg.settings.perSeries})`);
    result.settings = await attempt(() => guardScrub(cfg, direct, proxied));
  }
  if (want(2)) {
    log("2. first request to a never-seen host name");
    result.newHost = await attempt(async () => ({
      direct: await newHost(cfg, direct, cfg.freshNames.direct, "placeholder", "direct"),
      ...(relay ? { relay: await newHost(cfg, relay, cfg.freshNames.relay, "placeholder", "bare relay") } : {}),
      proxied: await newHost(cfg, proxied, cfg.freshNames.proxied, "real", "agent-vault"),
    }));
  }
  if (want(3)) {
    log("3. server-sent events relay lag");
    result.sse = await attempt(async () => {
      const clock = await clockOffset(cfg, direct);
      log(`  clock offset to the upstream ${clock.offset.toFixed(3)} ms (round trip ${clock.rtt.toFixed(3)} ms)`);
      return { clock, direct: await sseLag(cfg, direct, clock.offset, "direct"), proxied: await sseLag(cfg, proxied, clock.offset, "agent-vault") };
    });
  }
  if (want(4)) {
    const size = cfg.sizes.transfer;
    log(`4. ${size / 1024 / 1024} MiB download and upload`);
    result.transfer = {
      size,
      download: { direct: await transfer(cfg, direct, "download", size, null, "direct download"), proxied: await transfer(cfg, proxied, "download", size, cfg.serverPid, "agent-vault download") },
      upload: { direct: await transfer(cfg, direct, "upload", size, null, "direct upload"), proxied: await transfer(cfg, proxied, "upload", size, cfg.serverPid, "agent-vault upload") },
      // The floor: the same through the bare relay (no HTTP read, no scanning).
      ...(relay && cfg.relay
        ? {
            relay: {
              download: await transfer(cfg, relay, "download", size, cfg.relay.pid, "bare relay download"),
              upload: await transfer(cfg, relay, "upload", size, cfg.relay.pid, "bare relay upload"),
            },
          }
        : {}),
      // The same through a slow reader on the far side: what the proxy buffers when it must wait.
      slow: {
        size: cfg.sizes.slowTransfer,
        rateMiBps: cfg.sizes.slowRateMiBps,
        download: await transfer(cfg, proxied, "download", cfg.sizes.slowTransfer, cfg.serverPid, "agent-vault download to a slow agent", cfg.sizes.slowRateMiBps),
        upload: await transfer(cfg, proxied, "upload", cfg.sizes.slowTransfer, cfg.serverPid, "agent-vault upload to a slow upstream", cfg.sizes.slowRateMiBps),
      },
    };
  }
  if (want(5)) {
    log(`5. ${cfg.concurrency.tunnels} concurrent tunnels for ${cfg.concurrency.seconds} s`);
    result.concurrency = await attempt(() => concurrency(cfg, proxied, Number(proxyUrl.port)));
  }
  result.serverRssAtEndMiB = rssMiB(cfg.serverPid);

  if (mitm && cfg.mitm && want(6)) {
    log("6. mitmproxy");
    const mitmSize = cfg.sizes.mitmTransfer;
    const mitmPid = cfg.mitm.pid;
    result.mitm = await attempt(async () => ({
      keepAlive: await keepAlive(cfg, mitm, "real", "mitmproxy"),
      newHost: await newHost(cfg, mitm, cfg.freshNames.mitm, "real", "mitmproxy"),
      transfer: {
        size: mitmSize,
        download: { direct: await transfer(cfg, direct, "download", mitmSize, null, "direct download"), mitm: await transfer(cfg, mitm, "download", mitmSize, mitmPid, "mitmproxy download") },
        upload: { direct: await transfer(cfg, direct, "upload", mitmSize, null, "direct upload"), mitm: await transfer(cfg, mitm, "upload", mitmSize, mitmPid, "mitmproxy upload") },
      },
    }));
  }
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
}

// If the orchestrator is killed, `agent-vault run` may go with it and leave us orphaned: stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 500).unref();

try {
  await main();
  process.exit(0);
} catch (error) {
  process.stderr.write(`bench client: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
