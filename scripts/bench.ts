// `npm run bench`: times the compiled binary (dist/agent-vault) from outside, as a user or an agent
// would run it, and prints a markdown table for docs/performance.md. It is a measurement, not a
// test: a target that is missed shows "no" in the table; only a command that fails (or prints the
// wrong value) stops the run. Every timing is spawn to exit, output drained, runs one after
// another (the reference machine has 2 cores).
//
//   --version             start time of the binary (no vault work at all)
//   vault current         unlock only: with the real argon2id parameters (password) and without
//                         (--no-password); the difference is the KDF cost
//   10k credentials       credential set (one new key) / get / list / list --json on a vault of
//                         10,000 credentials, in --no-password mode (the cost beyond the KDF) and
//                         in password mode (the same plus one KDF)
//
// Environment: BENCH_RUNS_SCALE=2 doubles every run count (default 1).
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { deriveKeyArgon2id, randomSalt } from "../src/vault/crypto.ts";
import { DEFAULT_ARGON2 } from "../src/vault/vault.ts";
import { type Summary, summarize } from "./bench/stats.ts";

const BINARY = resolve(import.meta.dir, "../dist/agent-vault");
const PASSWORD = "bench horse battery staple";
const CREDENTIALS = 10_000;
const BATCH = 1_000; // KEY=VALUE arguments per `credential set` while filling the vault (argv limits)
const SCALE = Math.max(1, Number(process.env.BENCH_RUNS_SCALE) || 1);
const RUNS = {
  version: 20 * SCALE,
  unlock: 5 * SCALE,
  small: 10 * SCALE,
  bigNoPassword: 10 * SCALE,
  bigPassword: 5 * SCALE,
  kdfInProcess: 5 * SCALE,
};
const START_TARGET_MS = 50;
const BEYOND_KDF_TARGET_MS = 150;

// ---------------------------------------------------------------------------------------------
// Running the binary

interface RunResult {
  readonly ms: number;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The caller's environment minus everything agent-vault reads, plus `extra`. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("AGENT_VAULT_")) env[k] = v;
  return { ...env, ...extra };
}

async function run(args: readonly string[], env: Record<string, string>, stdin?: string): Promise<RunResult> {
  const input = stdin === undefined ? "ignore" : new TextEncoder().encode(stdin);
  const started = performance.now();
  const proc = Bun.spawn([BINARY, ...args], { env, stdin: input, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - started;
  return { ms, code, stdout, stderr };
}

/** Runs a command that must succeed; a failure is a real error and ends the benchmark. */
async function mustRun(args: readonly string[], env: Record<string, string>, stdin?: string): Promise<RunResult> {
  const result = await run(args, env, stdin);
  if (result.code !== 0) {
    throw new Error(`agent-vault ${args.slice(0, 4).join(" ")}${args.length > 4 ? " …" : ""} exited ${result.code}: ${result.stderr.trim().slice(0, 500)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Statistics and the table

type Stats = Summary;
const stats = summarize;

/**
 * Times `runs` runs after one discarded warm-up. `args` may change per run (a new key each time);
 * `check` looks at each run's output so a wrong answer is not timed as a right one.
 */
async function measure(label: string, runs: number, args: (i: number) => readonly string[], env: Record<string, string>, check?: (r: RunResult) => void): Promise<Stats> {
  process.stderr.write(`  ${label} ×${runs} … `);
  const warm = await mustRun(args(-1), env);
  check?.(warm);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await mustRun(args(i), env);
    check?.(r);
    samples.push(r.ms);
  }
  const st = stats(samples);
  process.stderr.write(`median ${fmt(st.median)}\n`);
  return st;
}

interface Row {
  readonly name: string;
  readonly stats: Stats | null;
  /** A derived number (a difference of medians) when there are no samples of its own. */
  readonly value?: number;
  readonly target: string;
  readonly ok: boolean | null;
}

const rows: Row[] = [];
const fmt = (ms: number) => `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;

function printTable(): string {
  const header = ["measurement", "runs", "median", "p90", "min – max", "target", "ok?"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const r of rows) {
    const cells = r.stats
      ? [r.name, String(r.stats.n), fmt(r.stats.median), fmt(r.stats.p90), `${fmt(r.stats.min)} – ${fmt(r.stats.max)}`]
      : [r.name, "–", r.value === undefined ? "–" : fmt(r.value), "–", "–"];
    cells.push(r.target, r.ok === null ? "–" : r.ok ? "yes" : "**no**");
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

// ---------------------------------------------------------------------------------------------
// Homes

const root = mkdtempSync(join(tmpdir(), "av-bench-"));
const cleanup = () => rmSync(root, { recursive: true, force: true });
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

interface Home {
  readonly dir: string;
  readonly env: Record<string, string>;
}

/** A fresh home. Never AGENT_VAULT_INSECURE_TEST_KDF: new password headers get the real argon2id. */
async function newHome(name: string, mode: "password" | "no-password"): Promise<Home> {
  const dir = join(root, name);
  const env = cleanEnv(mode === "password" ? { AGENT_VAULT_HOME: dir, AGENT_VAULT_MASTER_PASSWORD: PASSWORD } : { AGENT_VAULT_HOME: dir });
  await mustRun(mode === "password" ? ["init"] : ["init", "--no-password"], env);
  return { dir, env };
}

/** The KDF line of the header (line 2 of vault.av), to show and to check the real parameters. */
function headerKdf(home: Home): { alg: string; m_kib?: number; t?: number; p?: number } {
  const text = readFileSync(join(home.dir, "vault.av"), "utf8");
  return JSON.parse(text.split("\n")[1]!).kdf;
}

function assertRealKdf(home: Home): void {
  const kdf = headerKdf(home);
  if (kdf.alg !== "argon2id" || kdf.m_kib !== DEFAULT_ARGON2.m_kib || kdf.t !== DEFAULT_ARGON2.t || kdf.p !== DEFAULT_ARGON2.p) {
    throw new Error(`expected the default argon2id parameters in ${home.dir}, found ${JSON.stringify(kdf)}`);
  }
}

const keyName = (i: number) => `BENCH_KEY_${String(i).padStart(5, "0")}`;
const valueOf = (i: number) => `sk-bench-${String(i).padStart(5, "0")}-${"0123456789abcdef".repeat(2)}`;

async function fill(home: Home, count: number): Promise<number> {
  const started = performance.now();
  for (let from = 0; from < count; from += BATCH) {
    const args: string[] = [];
    for (let i = from; i < Math.min(count, from + BATCH); i++) args.push(`${keyName(i)}=${valueOf(i)}`);
    await mustRun(["vault", "credential", "set", ...args], home.env);
  }
  return performance.now() - started;
}

// ---------------------------------------------------------------------------------------------
// The measurements

async function main(): Promise<void> {
  statSync(BINARY); // a clear ENOENT before anything else: run `bun scripts/build.ts` first
  const version = (await mustRun(["--version"], cleanEnv({}))).stdout.trim();
  process.stderr.write(`agent-vault ${version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? "?"}), bun ${Bun.version}, temp ${root}\n`);

  // 1. Start time.
  process.stderr.write("start time\n");
  const bare = cleanEnv({ AGENT_VAULT_HOME: join(root, "unused") });
  const start = await measure(
    "--version",
    RUNS.version,
    () => ["--version"],
    bare,
    (r) => {
      if (r.stdout.trim() !== version) throw new Error(`--version printed ${JSON.stringify(r.stdout)}`);
    },
  );
  rows.push({ name: "`--version` (start time)", stats: start, target: `≤ ${START_TARGET_MS} ms`, ok: start.median <= START_TARGET_MS });

  // 2. Unlock: the same command with and without the real KDF.
  process.stderr.write("unlock (real argon2id parameters)\n");
  const pw = await newHome("unlock-password", "password");
  assertRealKdf(pw);
  const nopw = await newHome("unlock-no-password", "no-password");
  const printsDefault = (r: RunResult) => {
    if (r.stdout.trim() !== "default") throw new Error(`vault current printed ${JSON.stringify(r.stdout)}`);
  };
  const currentPw = await measure("vault current (password)", RUNS.unlock, () => ["vault", "current"], pw.env, printsDefault);
  const currentNopw = await measure("vault current (no password)", RUNS.unlock, () => ["vault", "current"], nopw.env, printsDefault);
  const kdfCost = currentPw.median - currentNopw.median;
  const m = DEFAULT_ARGON2;
  rows.push({ name: `\`vault current\`, password (argon2id m=${m.m_kib} KiB, t=${m.t}, p=${m.p})`, stats: currentPw, target: "–", ok: null });
  rows.push({ name: "`vault current`, --no-password", stats: currentNopw, target: "–", ok: null });
  rows.push({ name: "→ unlock (KDF) cost: difference of the medians", stats: null, value: kdfCost, target: "–", ok: null });

  const kdfSamples: number[] = [];
  for (let i = -1; i < RUNS.kdfInProcess; i++) {
    const t0 = performance.now();
    await deriveKeyArgon2id(PASSWORD, randomSalt(), DEFAULT_ARGON2);
    if (i >= 0) kdfSamples.push(performance.now() - t0);
  }
  const kdfInProcess = stats(kdfSamples);
  process.stderr.write(`  argon2id in-process ×${kdfInProcess.n} … median ${fmt(kdfInProcess.median)}\n`);
  rows.push({ name: "argon2id alone, in-process (hash-wasm, same parameters)", stats: kdfInProcess, target: "–", ok: null });

  // 3. A small vault, for scale: what 10k credentials add.
  process.stderr.write("1 credential, --no-password\n");
  await mustRun(["vault", "credential", "set", `${keyName(0)}=${valueOf(0)}`], nopw.env);
  const smallGet = await measure("credential get (1 credential)", RUNS.small, () => ["vault", "credential", "get", keyName(0)], nopw.env);
  rows.push({ name: "`credential get`, 1 credential, --no-password", stats: smallGet, target: `≤ ${BEYOND_KDF_TARGET_MS} ms`, ok: smallGet.median <= BEYOND_KDF_TARGET_MS });

  // 4. 10,000 credentials, --no-password: the cost beyond the KDF, directly.
  process.stderr.write(`${CREDENTIALS} credentials, --no-password\n`);
  const big = await newHome("big-no-password", "no-password");
  const fillMs = await fill(big, CREDENTIALS);
  process.stderr.write(`  filled in ${(fillMs / 1000).toFixed(1)} s (${CREDENTIALS / BATCH} × credential set of ${BATCH})\n`);
  const bigSize = statSync(join(big.dir, "vault.av")).size;

  // A password-mode copy of the same 10k vault, made now (before the set runs add keys): the
  // data key is re-wrapped under the real argon2id parameters, the records stay as they are.
  const bigPw: Home = { dir: join(root, "big-password"), env: cleanEnv({ AGENT_VAULT_HOME: join(root, "big-password"), AGENT_VAULT_MASTER_PASSWORD: PASSWORD }) };
  cpSync(big.dir, bigPw.dir, { recursive: true });
  await mustRun(["master-password", "set", "--new-password-stdin"], cleanEnv({ AGENT_VAULT_HOME: bigPw.dir }), `${PASSWORD}\n`);
  assertRealKdf(bigPw);
  const bigPwSize = statSync(join(bigPw.dir, "vault.av")).size;

  const probe = 4_321;
  const getsProbe = (r: RunResult) => {
    if (r.stdout !== `${valueOf(probe)}\n`) throw new Error(`credential get printed ${JSON.stringify(r.stdout.slice(0, 200))}`);
  };
  const listsAll = (r: RunResult) => {
    if (!r.stdout.includes(keyName(CREDENTIALS - 1))) throw new Error("credential list does not show the last key");
  };
  let listBytes = 0;
  let listJsonBytes = 0;
  const sizeOf = (set: (n: number) => void) => (r: RunResult) => {
    listsAll(r);
    set(Buffer.byteLength(r.stdout));
  };

  const beyondKdf = (label: string, st: Stats) => rows.push({ name: label, stats: st, target: `≤ ${BEYOND_KDF_TARGET_MS} ms`, ok: st.median <= BEYOND_KDF_TARGET_MS });
  const info = (label: string, st: Stats) => rows.push({ name: label, stats: st, target: "–", ok: null });

  let newKey = 0;
  const setNew = (prefix: string) => () => ["vault", "credential", "set", `${prefix}_${String(newKey++).padStart(3, "0")}=${valueOf(newKey)}`];

  beyondKdf("10k: `credential get`, --no-password", await measure("credential get", RUNS.bigNoPassword, () => ["vault", "credential", "get", keyName(probe)], big.env, getsProbe));
  beyondKdf("10k: `credential set` (one new key), --no-password", await measure("credential set", RUNS.bigNoPassword, setNew("BENCH_NEW"), big.env));
  info(
    "10k: `credential list`, --no-password",
    await measure(
      "credential list",
      RUNS.bigNoPassword,
      () => ["vault", "credential", "list"],
      big.env,
      sizeOf((n) => (listBytes = n)),
    ),
  );
  info(
    "10k: `credential list --json`, --no-password",
    await measure(
      "credential list --json",
      RUNS.bigNoPassword,
      () => ["vault", "credential", "list", "--json"],
      big.env,
      sizeOf((n) => (listJsonBytes = n)),
    ),
  );

  // 5. The same 10k vault with the real KDF; the target is the KDF cost measured above + 150 ms.
  process.stderr.write(`${CREDENTIALS} credentials, password (real argon2id)\n`);
  const withKdf = (label: string, st: Stats) =>
    rows.push({
      name: `${label} (${fmt(st.median - kdfCost)} beyond the KDF)`,
      stats: st,
      target: `≤ KDF + ${BEYOND_KDF_TARGET_MS} ms`,
      ok: st.median - kdfCost <= BEYOND_KDF_TARGET_MS,
    });
  withKdf("10k: `credential get`, password", await measure("credential get", RUNS.bigPassword, () => ["vault", "credential", "get", keyName(probe)], bigPw.env, getsProbe));
  withKdf("10k: `credential set` (one new key), password", await measure("credential set", RUNS.bigPassword, setNew("BENCH_NEW_PW"), bigPw.env));
  info("10k: `credential list`, password", await measure("credential list", RUNS.bigPassword, () => ["vault", "credential", "list"], bigPw.env, listsAll));
  info("10k: `credential list --json`, password", await measure("credential list --json", RUNS.bigPassword, () => ["vault", "credential", "list", "--json"], bigPw.env, listsAll));

  // The report.
  const kdf = headerKdf(bigPw);
  const notes = [
    `Vault file at ${CREDENTIALS.toLocaleString("en-US")} credentials: ${bigSize.toLocaleString("en-US")} bytes (${kib(bigSize)}, ${Math.round(bigSize / CREDENTIALS)} bytes per credential) without a password, ${bigPwSize.toLocaleString("en-US")} bytes with one.`,
    `\`credential list\` prints ${kib(listBytes)}, \`list --json\` ${kib(listJsonBytes)}. Filling the vault took ${(fillMs / 1000).toFixed(1)} s (${CREDENTIALS / BATCH} × \`credential set\` of ${BATCH} keys).`,
    `KDF in the password headers: ${JSON.stringify({ alg: kdf.alg, m_kib: kdf.m_kib, t: kdf.t, p: kdf.p })}. agent-vault ${version}, bun ${Bun.version}, ${cpus().length} CPU(s).`,
  ];
  process.stdout.write(`\n${printTable()}\n\n${notes.join("\n")}\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
