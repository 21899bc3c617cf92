// The TUI benchmark (issue 5): with 1,000 credentials, 200 proposals and a 100,000-line request log,
//
//   first frame after unlock   in-process: the store is unlocked, then the stores are made and <App>
//                              rendered (ink-testing-library) until its first frame; the first run
//                              is the cold one (what a user sees), the others show the warm cost.
//                              In tmux: the compiled binary at its password prompt, enter → the
//                              tab bar on screen (includes the test-cost KDF and tmux's latency).
//   key press → next frame     in-process (tmux's send-keys + capture-pane round trip is several
//                              ms and too coarse): stdin.write(key) until Ink writes the next frame,
//                              for j on each screen with 1,000 credentials / 2,000 log rows, and for
//                              screen switches. ink-testing-library renders unthrottled; the binary
//                              throttles to 30 fps, which only matters for keys < 33 ms apart.
//   memory while the log grows the compiled binary in tmux on the Activity screen while 50,000
//                              lines are appended (1,000 every 100 ms): RSS from /proc before,
//                              during and after. In-process the same, with the JS heap read after
//                              a full GC (Bun.gc(true)), to tell retained objects from RSS that
//                              the GC has not given back yet.
//                              BENCH_TUI_APPEND_LINES changes the 50,000.
//
// The in-process part runs twice in child processes: with NODE_ENV=development, which is what the
// compiled binary runs (Bun's standalone executables default NODE_ENV to "development" and
// scripts/build.ts does not define it, so React and its reconciler are the development builds),
// and with NODE_ENV=production for comparison. It prints a markdown table; a missed target shows
// "no", it does not fail the run.
//
//   bun scripts/build.ts && bun scripts/bench-tui.ts     (AGENT_VAULT_TEST_BINARY=dist-x/agent-vault for another build)
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { summarize } from "./bench/stats.ts";

// AGENT_VAULT_TEST_BINARY picks another build, as the tests do (relative to the working directory).
const BINARY = process.env.AGENT_VAULT_TEST_BINARY ? resolve(process.env.AGENT_VAULT_TEST_BINARY) : resolve(import.meta.dir, "../dist/agent-vault");
const PASSWORD = "bench horse battery staple";
const CREDENTIALS = 1_000;
const PROPOSALS = 200;
const LOG_LINES = 100_000;
const APPENDED_LINES = Number(process.env.BENCH_TUI_APPEND_LINES) || 50_000;
const FIRST_FRAME_TARGET_MS = 300;
const KEY_TARGET_MS = 50;
const RSS_GROWTH_TARGET_MIB = 16;

interface ChildResult {
  readonly mode: string;
  readonly firstFrame: number[];
  readonly keys: Record<string, number[]>;
  /** KiB, after a full GC. */
  readonly memory: { before: { heap: number; rss: number }; after: { heap: number; rss: number } };
}

// ---------------------------------------------------------------------------------------------
// Child: in-process measurements with ink-testing-library

async function child(home: string): Promise<void> {
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  // React picks its build when first imported: import after NODE_ENV is final.
  const React = await import("react");
  const { render } = await import("ink-testing-library");
  const { App } = await import("../src/tui/app.tsx");
  const { VaultView } = await import("../src/tui/stores/vault-view.ts");
  const { LogTail } = await import("../src/tui/stores/log-tail.ts");
  const { VaultStore } = await import("../src/vault/vault.ts");
  const { homePaths } = await import("../src/shared/paths.ts");
  const paths = homePaths(home);

  const nextFrame = async (frames: string[], before: number, timeoutMs = 2000): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    while (frames.length === before) {
      if (performance.now() > deadline) throw new Error("no frame");
      await new Promise((r) => setImmediate(r));
    }
    return performance.now();
  };

  const firstFrame: number[] = [];
  let last: { r: ReturnType<typeof render>; stop(): void } | null = null;
  for (let run = 0; run < 6; run++) {
    last?.stop();
    const store = await VaultStore.unlock(paths, async () => PASSWORD);
    const t0 = performance.now();
    const view = new VaultView(store, "default");
    const log = new LogTail(paths.requestLog);
    view.start();
    log.start();
    // ink-testing-library reports no width (so the app lays out for 80 columns); give it a
    // 120-column terminal so full request paths fit, as in tmux below.
    const r = render(React.createElement(App, { view, log, color: true, bell: false }));
    Object.defineProperty(r.stdout, "columns", { value: 120, configurable: true });
    r.stdout.emit("resize");
    const t1 = r.frames.length > 0 ? performance.now() : await nextFrame(r.frames, 0);
    if (!r.lastFrame()?.includes("Proposals (20)")) throw new Error(`unexpected first frame:\n${r.lastFrame()}`);
    firstFrame.push(t1 - t0);
    last = {
      r,
      stop: () => {
        view.stop();
        log.stop();
        r.unmount();
        r.cleanup();
      },
    };
  }
  const r = last!.r;
  await Bun.sleep(200);

  const keys: Record<string, number[]> = {};
  const press = async (label: string, key: string): Promise<void> => {
    const before = r.frames.length;
    const t0 = performance.now();
    r.stdin.write(key);
    const t1 = await nextFrame(r.frames, before);
    (keys[label] ??= []).push(t1 - t0);
    // A typist's pause between keys (keys sent faster are queued in order by the TUI's key focus).
    await Bun.sleep(8);
  };
  const screens: [string, string][] = [
    ["1", "j on Proposals (200)"],
    ["2", "j on Credentials (1,000)"],
    ["3", "j on Services (100)"],
    ["4", "j on Activity (2,000 rows kept)"],
  ];
  let current = "1";
  const switchTo = async (tab: string) => {
    if (tab !== current) await press("screen switch (1-5)", tab);
    current = tab;
  };
  for (const [tab, label] of screens) {
    await switchTo(tab);
    for (let i = 0; i < 60; i++) await press(label, "j");
  }
  for (let i = 0; i < 10; i++) for (const tab of ["1", "2", "3", "4", "5"]) await switchTo(tab);

  // Memory on the Activity screen while the log grows, with a full GC before each reading: the JS
  // heap (what the program retains) against the RSS (what the process holds).
  await switchTo("4");
  // Back to the top, where new requests appear (the selection is an index, so it would otherwise
  // keep the view scrolled down).
  for (let i = 0; i < 60; i++) await press("k on Activity (2,000 rows kept)", "k");
  const { appendFileSync } = await import("node:fs");
  const reading = () => {
    Bun.gc(true);
    const m = process.memoryUsage();
    return { heap: m.heapUsed / 1024, rss: m.rss / 1024 };
  };
  r.frames.length = 0; // ink-testing-library keeps every frame; the binary does not
  const memBefore = reading();
  for (let i = 0; i < APPENDED_LINES; i += 1_000) {
    appendFileSync(paths.requestLog, logLines(LOG_LINES + i, 1_000));
    await Bun.sleep(100);
    r.frames.length = 0;
  }
  await Bun.sleep(500);
  if (!r.lastFrame()?.includes(`/v1/items/${LOG_LINES + APPENDED_LINES - 1}`)) throw new Error(`the Activity screen did not follow the log:\n${r.lastFrame()?.split("\n").slice(0, 5).join("\n")}`);
  r.frames.length = 0;
  const memAfter = reading();
  last!.stop();
  const result: ChildResult = { mode: process.env.NODE_ENV ?? "(unset)", firstFrame, keys, memory: { before: memBefore, after: memAfter } };
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Statistics and the table

const stats = summarize;

const ms = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
const table: string[][] = [];
const row = (measurement: string, value: string, target: string, ok: boolean | null) => table.push([measurement, value, target, ok === null ? "–" : ok ? "yes" : "**no**"]);

// ---------------------------------------------------------------------------------------------
// Fixture: built in-process through the vault API; the log written directly

function logLine(i: number): string {
  const status = i % 50 === 0 ? 502 : i % 17 === 0 ? 404 : 200;
  return JSON.stringify({
    time: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
    session: `s_${(i % 7).toString(16).padStart(12, "0")}`,
    vault: "default",
    method: i % 3 === 0 ? "POST" : "GET",
    host: `svc${i % 100}.example.com`,
    path: `/v1/items/${i}`,
    service: `svc${i % 100}`,
    status,
    latency_ms: 5 + (i % 200),
    error: status === 502 ? "upstream_error" : null,
    via: "tunnel",
  });
}

function logLines(from: number, count: number): string {
  const parts: string[] = [];
  for (let i = from; i < from + count; i++) parts.push(logLine(i));
  return `${parts.join("\n")}\n`;
}

async function buildHome(root: string): Promise<string> {
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const { homePaths } = await import("../src/shared/paths.ts");
  const { initializeHome, VaultStore } = await import("../src/vault/vault.ts");
  const { setCredentials } = await import("../src/vault/credentials.ts");
  const { parseServiceInput, setServices } = await import("../src/vault/services.ts");
  const { fileProposal, parseProposalInput, rejectProposal } = await import("../src/vault/proposals.ts");
  const { createSession } = await import("../src/vault/sessions.ts");
  const { MAX_PENDING_PROPOSALS } = await import("../src/vault/proposal.schema.ts");
  const home = join(root, "home");
  const paths = homePaths(home);
  await initializeHome(paths, PASSWORD);
  const store = await VaultStore.unlock(paths, async () => PASSWORD);
  const key = (i: number) => `BENCH_KEY_${String(i).padStart(4, "0")}`;
  await setCredentials(
    store,
    "default",
    Array.from({ length: CREDENTIALS }, (_, i) => ({ key: key(i), value: `bench-value-${i}-${"x".repeat(24)}` })),
    { description: "bench credential" },
  );
  await setServices(
    store,
    "default",
    Array.from({ length: 100 }, (_, i) => parseServiceInput({ name: `svc${i}`, host: `svc${i}.example.com`, auth: { type: "bearer", token: key(i) } })),
    true,
  );
  for (let i = 0; i < 5; i++) await createSession(store, "default", { label: `agent-${i}` });
  // At most 20 pending at once: file and reject in rounds, then leave 20 pending.
  let filed = 0;
  const proposal = (n: number) =>
    parseProposalInput({
      services: [{ action: "set", name: `new${n}`, host: `new${n}.example.com`, auth: { type: "bearer", token: `NEW_${n}_TOKEN` } }],
      credentials: [{ action: "set", key: `NEW_${n}_TOKEN`, description: `token for new${n}`, obtain: `https://new${n}.example.com/keys` }],
      message: `proposal ${n}: please add new${n}`,
    });
  while (filed < PROPOSALS - MAX_PENDING_PROPOSALS) {
    const ids: number[] = [];
    for (let i = 0; i < MAX_PENDING_PROPOSALS; i++) ids.push((await fileProposal(store, "default", proposal(filed++), null)).id);
    for (const id of ids) await rejectProposal(store, "default", id, "bench", "bench");
  }
  while (filed < PROPOSALS) await fileProposal(store, "default", proposal(filed++), null);
  const chunk = 10_000;
  writeFileSync(paths.requestLog, "");
  for (let i = 0; i < LOG_LINES; i += chunk) appendFileSync(paths.requestLog, logLines(i, chunk));
  return home;
}

// ---------------------------------------------------------------------------------------------
// tmux, for the compiled binary

function haveTmux(): boolean {
  return Bun.spawnSync(["sh", "-c", "command -v tmux"]).exitCode === 0;
}

function makeTmux(root: string, env: Record<string, string>) {
  const socket = join(root, "tmux.sock");
  const config = join(root, "tmux.conf");
  writeFileSync(config, "set -g status off\nset -g escape-time 0\n");
  const tmux = async (...args: string[]): Promise<string> => {
    const proc = Bun.spawn(["tmux", "-S", socket, "-f", config, ...args], { env, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`tmux ${args.join(" ")}: ${err}`);
    return out;
  };
  const until = async (session: string, probe: (s: string) => boolean, timeoutMs = 10_000): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const screen = await tmux("capture-pane", "-p", "-t", session);
      if (probe(screen)) return performance.now();
      if (performance.now() > deadline) throw new Error(`tmux ${session}: timed out; screen:\n${screen}`);
      await Bun.sleep(2);
    }
  };
  return { tmux, until };
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "av-bench-tui-"));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  try {
    process.stderr.write(`${cpus().length} CPU(s) (${cpus()[0]?.model ?? "?"}), bun ${Bun.version}, temp ${root}\n`);
    let t = performance.now();
    const home = await buildHome(root);
    process.stderr.write(`fixture: ${CREDENTIALS} credentials, ${PROPOSALS} proposals, ${LOG_LINES} log lines in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

    // In-process, once per React build. Each run appends to the log; it is cut back after it.
    const logFile = join(home, "requests.log");
    const logSize = statSync(logFile).size;
    const results: ChildResult[] = [];
    for (const mode of ["development", "production"]) {
      process.stderr.write(`in-process (NODE_ENV=${mode}) … `);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("AGENT_VAULT_") && k !== "CI") env[k] = v;
      const proc = Bun.spawn([process.execPath, import.meta.path, "--child", home], { env: { ...env, NODE_ENV: mode }, stdout: "pipe", stderr: "inherit" });
      const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      if (code !== 0) throw new Error(`the in-process child (${mode}) failed (${code})`);
      results.push(JSON.parse(out) as ChildResult);
      truncateSync(logFile, logSize);
      process.stderr.write("done\n");
    }
    for (const res of results) {
      const label = res.mode === "development" ? "NODE_ENV=development, as the binary runs" : "NODE_ENV=production";
      const [cold, ...warm] = res.firstFrame;
      row(`first frame after unlock, cold (in-process, ${label})`, ms(cold!), `≤ ${FIRST_FRAME_TARGET_MS} ms`, cold! <= FIRST_FRAME_TARGET_MS);
      row(`first frame after unlock, warm median of ${warm.length} (in-process, ${label})`, ms(stats(warm).median), `≤ ${FIRST_FRAME_TARGET_MS} ms`, stats(warm).median <= FIRST_FRAME_TARGET_MS);
      for (const [name, samples] of Object.entries(res.keys)) {
        const s = stats(samples);
        row(`key → next frame: ${name} (in-process, ${label}), n=${s.n}`, `median ${ms(s.median)}, p95 ${ms(s.p95)}, max ${ms(s.max)}`, `≤ ${KEY_TARGET_MS} ms (p95)`, s.p95 <= KEY_TARGET_MS);
      }
      const { before, after } = res.memory;
      const heapGrowth = (after.heap - before.heap) / 1024;
      row(
        `JS heap after full GC, Activity screen, ${APPENDED_LINES.toLocaleString("en")} lines appended (in-process, ${label})`,
        `${mib(before.heap)} → ${mib(after.heap)} (RSS ${mib(before.rss)} → ${mib(after.rss)})`,
        `flat (≤ ${RSS_GROWTH_TARGET_MIB} MiB)`,
        heapGrowth <= RSS_GROWTH_TARGET_MIB,
      );
    }

    // The compiled binary in tmux.
    if (!existsSync(BINARY)) {
      process.stderr.write(`no ${BINARY}: run \`bun scripts/build.ts\` first; skipping the tmux measurements\n`);
    } else if (!haveTmux()) {
      process.stderr.write("no tmux: skipping the tmux measurements\n");
    } else {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env))
        if (v !== undefined && !k.startsWith("AGENT_VAULT_") && !["CI", "CONTINUOUS_INTEGRATION", "TMUX", "TMUX_PANE", "NO_COLOR"].includes(k)) env[k] = v;
      Object.assign(env, { AGENT_VAULT_HOME: home, AGENT_VAULT_INSECURE_TEST_KDF: "1" });
      const { tmux, until } = makeTmux(root, env);
      try {
        // First frame after the password prompt's enter.
        process.stderr.write("tmux: first frame after unlock … ");
        const unlockSamples: number[] = [];
        for (let i = 0; i < 4; i++) {
          const s = `unlock${i}`;
          await tmux("new-session", "-d", "-s", s, "-x", "100", "-y", "30", `exec ${BINARY} tui --no-bell`);
          await until(s, (x) => x.includes("Master password:"));
          await tmux("send-keys", "-t", s, "-l", PASSWORD);
          await until(s, (x) => x.includes("•".repeat(PASSWORD.length)));
          await Bun.sleep(50);
          const t0 = performance.now();
          await tmux("send-keys", "-t", s, "Enter");
          const t1 = await until(s, (x) => x.includes("Proposals (20)"));
          unlockSamples.push(t1 - t0);
          await tmux("send-keys", "-t", s, "q");
          await Bun.sleep(100);
          await tmux("kill-session", "-t", s).catch(() => "");
        }
        process.stderr.write("done\n");
        const [coldTmux, ...warmTmux] = unlockSamples;
        row(
          "first frame after unlock, binary in tmux, first run (enter at the prompt → tab bar captured; test-cost KDF)",
          ms(coldTmux!),
          `≤ ${FIRST_FRAME_TARGET_MS} ms`,
          coldTmux! <= FIRST_FRAME_TARGET_MS,
        );
        row(
          `first frame after unlock, binary in tmux, median of the next ${warmTmux.length}`,
          ms(stats(warmTmux).median),
          `≤ ${FIRST_FRAME_TARGET_MS} ms`,
          stats(warmTmux).median <= FIRST_FRAME_TARGET_MS,
        );

        // Memory while the log grows.
        process.stderr.write(`tmux: memory while ${APPENDED_LINES} lines are appended … `);
        const s = "memory";
        await tmux("new-session", "-d", "-s", s, "-x", "100", "-y", "30", `AGENT_VAULT_MASTER_PASSWORD='${PASSWORD}' exec ${BINARY} tui --no-bell`);
        await until(s, (x) => x.includes("Proposals (20)"));
        const pid = Number((await tmux("display-message", "-p", "-t", s, "#{pane_pid}")).trim());
        await tmux("send-keys", "-t", s, "4");
        await until(s, (x) => x.includes(`/v1/items/${LOG_LINES - 1}`));
        await Bun.sleep(1500);
        const before = rssKiB(pid);
        let peak = before;
        const chunk = 1_000;
        const series: string[] = [];
        for (let i = 0; i < APPENDED_LINES; i += chunk) {
          appendFileSync(logFile, logLines(LOG_LINES + i, chunk));
          await Bun.sleep(100);
          const now = rssKiB(pid);
          peak = Math.max(peak, now);
          if ((i + chunk) % 10_000 === 0) series.push(`${(i + chunk) / 1000}k: ${(now / 1024).toFixed(0)}`);
        }
        process.stderr.write(`RSS (MiB) by lines appended: ${series.join(", ")} … `);
        const lastPath = `/v1/items/${LOG_LINES + APPENDED_LINES - 1}`;
        t = performance.now();
        await until(s, (x) => x.includes(lastPath));
        const caughtUp = performance.now() - t;
        await Bun.sleep(2000);
        const after = rssKiB(pid);
        await tmux("send-keys", "-t", s, "q");
        await Bun.sleep(100);
        await tmux("kill-server").catch(() => "");
        process.stderr.write("done\n");
        const growth = (after - before) / 1024;
        row("RSS of the binary on Activity before appending (100,000-line log)", mib(before), "–", null);
        row(`RSS after appending ${APPENDED_LINES.toLocaleString("en")} lines (1,000 per 100 ms), 2 s later`, `${mib(after)} (peak ${mib(peak)})`, "–", null);
        row("RSS growth while the log grew", `${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB`, `flat (≤ ${RSS_GROWTH_TARGET_MIB} MiB)`, growth <= RSS_GROWTH_TARGET_MIB);
        row("last appended line on screen after the last append", ms(caughtUp), "≤ 1000 ms", caughtUp <= 1000);
      } finally {
        await tmux("kill-server").catch(() => "");
      }
    }

    const header = ["measurement", "value", "target", "ok?"];
    console.log(`\n| ${header.join(" | ")} |\n|---|---:|---:|:---:|`);
    for (const cells of table) console.log(`| ${cells.join(" | ")} |`);
  } finally {
    cleanup();
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]!);
else await main();
