// `status`, `doctor`, `log` and `completion` through the compiled binary, asserting what each
// prints. doctor is shown a broken setup one fault at a time (modes, a replaced bundle, a CA
// variable with a foreign CA, a file from the future, a planted pidfile) and must name it with a
// fix and exit 1. log is fed records the agent could have written (escapes, bidi) and must print
// them inert, filter them, and follow the file across a rotation.
import { CA_BUNDLE_VARIABLES } from "../../src/run/env.ts";
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { fileProposal, parseProposalInput } from "../../src/vault/proposals.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { BINARY, cleanEnv, runBinary, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { spawnLive, waitUntil } from "../support/process.ts";
import { basicProxyAuth, openTunnel } from "../support/proxy-client.ts";
import { startServer } from "../support/server.ts";
import { fileScene, sceneHome } from "../support/scene.ts";

const scene = fileScene("av-ops-");
const { scratch, cleanups } = scene;

// The CA variables of the machine running the tests are not ours to judge: each test says which it sets.
const CA_VARIABLES = CA_BUNDLE_VARIABLES;
const NO_CA_VARS = Object.fromEntries(CA_VARIABLES.map((n) => [n, undefined]));

async function openInProcess(home: TempHome): Promise<VaultStore> {
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  return VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
}

/** A certificate authority that is not ours and not a system root (made by openssl). */
function foreignCa(): string {
  const key = join(scratch, "foreign.key");
  const cert = join(scratch, "foreign.pem");
  const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=Corp Root"], {
    stdout: "ignore",
    stderr: "pipe",
  });
  if (made.exitCode !== 0) throw new Error(made.stderr.toString());
  return cert;
}

// The machine is shared with other builds and test runs: give slow starts room.
setDefaultTimeout(60_000);

describe("status", () => {
  let H: TempHome;
  beforeAll(async () => {
    H = await sceneHome(scene);
  });

  test("a fresh home: no server, the CA's fingerprint, the default vault's counts and settings", async () => {
    const r = await H.run(["status"]);
    expect(r.code).toBe(0);
    const fingerprint = new X509Certificate(readFileSync(join(H.dir, "ca.pem"))).fingerprint256;
    expect(r.stdout).toContain(`data      ${H.dir}\n`);
    expect(r.stdout).toContain("server    not running");
    expect(r.stdout).toContain(`CA        SHA-256 ${fingerprint}, expires `);
    expect(r.stdout).toContain("vault     default (current)\n");
    expect(r.stdout).toContain("  services 0 (0 enabled) · credentials 0 · agents 0\n");
    expect(r.stdout).toContain("  sessions 0 active (0 in a run) · proposals 0 pending\n");
    expect(r.stdout).toContain("  unmatched hosts: passthrough · guard on · scrub on\n");
    expect(r.stderr).toBe("");
  });

  test("services, sessions and pending proposals are counted; a verified server is named; --json", async () => {
    await H.run(["vault", "credential", "set", "GITHUB_TOKEN=-"], { stdin: "ghp_notreal" });
    await H.run(["vault", "service", "add", "--name", "github", "--host", "api.github.com", "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN"]);
    await H.run(["vault", "service", "add", "--name", "stripe", "--host", "api.stripe.com", "--auth-type", "passthrough"]);
    await H.run(["vault", "service", "disable", "stripe"]);
    await H.run(["vault", "create", "work"]);
    const store = await openInProcess(H);
    const { session } = await createSession(store, "default", { label: "python3 agent.py", ttlMs: 3_600_000 });
    await fileProposal(
      store,
      "default",
      parseProposalInput({ credentials: [{ action: "set", key: "STRIPE_KEY", description: "Stripe" }], message: "need stripe\u001b[2J\nto bill \u202ethe test customer" }),
      null,
    );
    const server = await startServer(H, {}, cleanups);

    const r = await H.run(["status"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`server    running, verified \\(pid ${server.live.proc.pid}, up since \\d+s ago\\): API http://127\\.0\\.0\\.1:${server.apiPort}, proxy 127\\.0\\.0\\.1:${server.mitmPort}\\n`),
    );
    expect(r.stdout).toContain("vault     default (current)\n  services 2 (1 enabled) · credentials 1 · agents 0\n  sessions 1 active (0 in a run) · proposals 1 pending\n");
    expect(r.stdout).toContain("vault     work\n  services 0 (0 enabled)");
    // Listed under the counts; the proposal's message is the agent's text, escaped and cut.
    expect(r.stdout).toContain(`  unmatched hosts: passthrough · guard on · scrub on\n  session ${session.id}  expires in 60m  python3 agent.py\n  proposal #1  filed `);
    expect(r.stdout).toMatch(/ {2}proposal #1 {2}filed \d+s ago {2}need stripe\\x1b\[2J\\nto bill \\u202ethe test custom…\n/);
    expect(r.stdout).not.toContain("\u001b");
    expect(r.stderr).toBe("1 proposal waiting: review with `agent-vault tui` or `agent-vault vault proposal list`\n");

    const j = await H.run(["status", "--json", "--vault", "work"]);
    const report = JSON.parse(j.stdout);
    expect(report.server).toMatchObject({ state: "verified", pid: server.live.proc.pid, api_port: server.apiPort, mitm_port: server.mitmPort });
    expect(report.locked).toBe(false);
    expect(report.vaults.map((v: { name: string; current: boolean }) => [v.name, v.current])).toEqual([
      ["default", false],
      ["work", true],
    ]);
    expect(report.vaults[0].proposals).toEqual([{ id: 1, message: "need stripe\u001b[2J\nto bill \u202ethe test customer", created_at: expect.any(String) }]);
    expect(j.stdout).not.toContain("\u202e");
    expect(report.vaults[0]).toMatchObject({
      services: 2,
      services_enabled: 1,
      credentials: 1,
      sessions_active: 1,
      proposals_pending: 1,
      settings: { unmatched: "passthrough", guard: true, scrub: true },
    });

    // No password source: what needs no key is still shown, and the server is not called verified.
    const locked = await H.run(["status", "--json"], { env: { AGENT_VAULT_MASTER_PASSWORD: undefined } });
    expect(locked.code).toBe(0);
    const lockedReport = JSON.parse(locked.stdout);
    expect(lockedReport).toMatchObject({ locked: true, vaults: [], server: { state: "unverified", pid: server.live.proc.pid } });
    expect(lockedReport.ca.sha256).toBe(report.ca.sha256);
    const lockedText = await H.run(["status"], { env: { AGENT_VAULT_MASTER_PASSWORD: undefined } });
    expect(lockedText.stdout).toContain("vaults    locked: pass --password-stdin or set AGENT_VAULT_MASTER_PASSWORD");
    await server.stop();
  });

  test("a wrong password is an error, not a status", async () => {
    const r = await H.run(["status"], { env: { AGENT_VAULT_MASTER_PASSWORD: "not the password" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^agent-vault: error: .*\nhint: /);
    expect(r.stdout).toBe("");
  });

  test("an uninitialized home says so", async () => {
    const r = await runBinary(["status"], cleanEnv({ AGENT_VAULT_HOME: join(scratch, "nothing-here") }));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(not initialized: run `agent-vault init`)");
  });
});

describe("doctor", () => {
  let H: TempHome;
  const doctor = (env: Record<string, string | undefined> = {}) => H.run(["doctor"], { env: { ...NO_CA_VARS, ...env } });
  const line = (out: string, title: string) => out.split("\n").find((l) => l.slice(2).startsWith(title)) ?? "";
  const fixOf = (out: string, title: string) => {
    const lines = out.split("\n");
    const at = lines.findIndex((l) => l.slice(2).startsWith(title));
    return /^\s+fix: /.test(lines[at + 1] ?? "") ? lines[at + 1]!.trim() : "";
  };
  beforeAll(async () => {
    H = await sceneHome(scene);
  });

  test("a sound setup passes every check and exits 0", async () => {
    const r = await doctor();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const title of ["data directory", "file permissions", "vault", "CA certificate", "CA bundle", "Node proxy support", "inherited CA variables", "sandbox", "clock", "server"]) {
      expect(line(r.stdout, title)).toMatch(/^✓ /);
    }
    expect(line(r.stdout, "data directory")).toContain(`${H.dir} is 0700 and yours`);
    expect(line(r.stdout, "inherited CA variables")).toContain("none set");
    expect(line(r.stdout, "sandbox")).toContain("/usr/bin/bwrap (root-owned) makes user namespaces");
    expect(r.stdout).toMatch(/\n10 passed, 0 failed\n$/);
    const j = await H.run(["doctor", "--json"], { env: NO_CA_VARS });
    const report = JSON.parse(j.stdout);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual(["data_directory", "file_modes", "vault", "ca", "ca_bundle", "node", "ca_variables", "sandbox", "clock", "server"]);
  });

  test("loose modes on the directory and the vault file fail with chmod fixes", async () => {
    chmodSync(H.dir, 0o755);
    chmodSync(join(H.dir, "vault.av"), 0o644);
    try {
      const r = await doctor({ AGENT_VAULT_MASTER_PASSWORD: undefined });
      expect(r.code).toBe(1);
      expect(line(r.stdout, "data directory")).toContain(`✗ data directory`);
      expect(line(r.stdout, "data directory")).toContain("is 0755: other users can look into it");
      expect(fixOf(r.stdout, "data directory")).toBe(`fix: chmod 700 ${H.dir}`);
      expect(line(r.stdout, "file permissions")).toContain("vault.av is 0644, not 0600");
      expect(fixOf(r.stdout, "file permissions")).toBe(`fix: chmod go-rwx ${join(H.dir, "vault.av")}`);
      // Without a password the vault and the server are not checked, and that is no failure.
      expect(line(r.stdout, "vault")).toMatch(/^- vault .*master password is needed/);
    } finally {
      chmodSync(H.dir, 0o700);
      chmodSync(join(H.dir, "vault.av"), 0o600);
    }
  });

  test("a bundle without our CA, a replaced ca.pem, and a missing bundle fail with the ca path fix", async () => {
    const bundle = join(H.dir, "ca-bundle.pem");
    const saved = readFileSync(bundle);
    writeFileSync(bundle, readFileSync(foreignCa()));
    let r = await doctor();
    expect(r.code).toBe(1);
    expect(line(r.stdout, "CA bundle")).toMatch(/^✗ CA bundle .*lacks the agent-vault CA/);
    expect(fixOf(r.stdout, "CA bundle")).toStartWith("fix: agent-vault ca path");
    rmSync(bundle);
    r = await doctor();
    expect(line(r.stdout, "CA bundle")).toContain("ca-bundle.pem is missing");
    // The fix it names works.
    expect((await H.run(["ca", "path"])).code).toBe(0);
    expect(readFileSync(bundle).equals(saved)).toBe(true);

    const ca = join(H.dir, "ca.pem");
    const ours = readFileSync(ca);
    writeFileSync(ca, readFileSync(foreignCa()));
    r = await doctor();
    expect(line(r.stdout, "CA certificate")).toMatch(/^✗ CA certificate .*not the CA the vault holds/);
    writeFileSync(ca, ours);
    expect((await doctor()).code).toBe(0);
  });

  test("an inherited CA variable naming a bundle with a CA run's bundle lacks fails; one naming ours passes", async () => {
    const corp = foreignCa();
    let r = await doctor({ SSL_CERT_FILE: corp, REQUESTS_CA_BUNDLE: corp });
    expect(r.code).toBe(1);
    expect(line(r.stdout, "inherited CA variables")).toContain(`✗ inherited CA variables  SSL_CERT_FILE, REQUESTS_CA_BUNDLE name ${corp}, with 1 CA run's bundle lacks`);
    expect(fixOf(r.stdout, "inherited CA variables")).toContain(`export AGENT_VAULT_UPSTREAM_CA=${corp}`);
    r = await doctor({ NODE_EXTRA_CA_CERTS: join(scratch, "no-such.pem") });
    expect(line(r.stdout, "inherited CA variables")).toContain("not a readable file");
    r = await doctor({ SSL_CERT_FILE: join(H.dir, "ca-bundle.pem") });
    expect(r.code).toBe(0);
    expect(line(r.stdout, "inherited CA variables")).toContain("✓ inherited CA variables  SSL_CERT_FILE: system roots or our CA only");
  });

  test("a file dated in the future means the clock went back", async () => {
    const future = (Date.now() + 3 * 86_400_000) / 1000;
    utimesSync(join(H.dir, "vault.av"), future, future);
    try {
      const r = await doctor();
      expect(r.code).toBe(1);
      expect(line(r.stdout, "clock")).toMatch(/^✗ clock .*vault\.av is dated 3 days ahead of now .*the clock went back/);
      expect(fixOf(r.stdout, "clock")).toContain("timedatectl set-ntp true");
    } finally {
      const now = Date.now() / 1000;
      utimesSync(join(H.dir, "vault.av"), now, now);
    }
  });

  test("Node missing from PATH is fine; a planted pidfile's listener fails the server check", async () => {
    const bin = mkdtempSync(join(scratch, "bin-"));
    let r = await doctor({ PATH: bin });
    expect(line(r.stdout, "Node proxy support")).toContain("✓ Node proxy support      node is not on PATH");
    // Something listens where server.pid says, with a live pid, but cannot prove it holds the key.
    const impostor = http.createServer((_req, res) => res.end('{"pid":1}'));
    await new Promise<void>((resolve) => impostor.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => void impostor.close());
    const port = (impostor.address() as { port: number }).port;
    writeFileSync(join(H.dir, "server.pid"), JSON.stringify({ pid: process.pid, host: "127.0.0.1", api_port: port, mitm_port: port, started_at: new Date().toISOString() }), { mode: 0o600 });
    try {
      r = await doctor();
      expect(r.code).toBe(1);
      expect(line(r.stdout, "server")).toMatch(new RegExp(`^✗ server .*pid ${process.pid} at 127\\.0\\.0\\.1:${port} did not prove it is this vault's server`));
      expect(fixOf(r.stdout, "server")).toBe(`fix: if no agent-vault server should run: rm ${join(H.dir, "server.pid")}; run and server stop refuse to use it meanwhile`);
      const s = JSON.parse((await H.run(["status", "--json"])).stdout);
      expect(s.server).toMatchObject({ state: "not_verified", pid: process.pid });
    } finally {
      rmSync(join(H.dir, "server.pid"), { force: true });
    }
  });

  test("an uninitialized home fails with the init fix", async () => {
    const r = await runBinary(["doctor"], cleanEnv({ AGENT_VAULT_HOME: join(scratch, "nothing"), ...NO_CA_VARS }));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`✗ data directory          ${join(scratch, "nothing")} does not exist\n                          fix: agent-vault init\n`);
    expect(r.stdout).toContain("✗ vault ");
  });
});

describe("log", () => {
  let H: TempHome;
  let logPath: string;
  const TZ = { TZ: "UTC" };
  const record = (over: Record<string, unknown>) => ({
    time: "2026-03-01T10:00:00.000Z",
    session: "s_0123456789ab",
    agent: null,
    vault: "default",
    method: "GET",
    host: "api.github.com",
    path: "/user",
    service: "github",
    status: 200,
    latency_ms: 12.3,
    error: null,
    via: "tunnel",
    ...over,
  });
  const lines = (...records: Record<string, unknown>[]) => records.map((r) => `${JSON.stringify(r)}\n`).join("");

  beforeAll(async () => {
    H = await sceneHome(scene);
    logPath = join(H.dir, "requests.log");
    writeFileSync(`${logPath}.1`, lines(record({ time: "2026-03-01T09:00:00.000Z", path: "/rotated" })), { mode: 0o600 });
    writeFileSync(
      logPath,
      lines(
        record({}),
        record({
          time: "2026-03-01T10:00:01.000Z",
          agent: "reviewer",
          session: "agt_0123456789ab",
          method: "CONNECT",
          host: "example.com:443",
          path: "",
          service: null,
          status: 502,
          latency_ms: 3,
          error: "upstream_error",
          reason: "cannot resolve example.com",
        }),
        record({
          time: "2026-03-01T10:00:02.000Z",
          method: "POST",
          host: "api.stripe.com",
          path: "/v1/charges",
          service: "stripe",
          status: 403,
          latency_ms: 1500,
          error: "credential_exfiltration",
          blocked: "GITHUB_TOKEN",
        }),
        // What the agent could write into the file: terminal escapes and a bidi override.
        record({
          time: "2026-03-01T10:00:03.000Z",
          host: "evil.test",
          path: "/\u001b]52;c;aGk=\u0007\u001b[2J\u202etxt.exe",
          status: 404,
          error: "host_not_allowed",
          reason: "no service\u001b[31m red",
        }),
      ) +
        "not json\n" +
        `${JSON.stringify({ time: "yesterday" })}\n`,
      { mode: 0o600 },
    );
  });

  test("aligned lines from the rotated file and the current one; failures with their code, key and reason; agent text made inert", async () => {
    const r = await H.run(["log"], { env: TZ });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      [
        "03-01 09:00:00  200    12ms  s_0123456789ab  GET      api.github.com/rotated",
        "03-01 10:00:00  200    12ms  s_0123456789ab  GET      api.github.com/user",
        "03-01 10:00:01  502     3ms  reviewer        CONNECT  example.com:443  upstream_error: cannot resolve example.com",
        "03-01 10:00:02  403    1.5s  s_0123456789ab  POST     api.stripe.com/v1/charges  credential_exfiltration (GITHUB_TOKEN)",
        "03-01 10:00:03  404    12ms  s_0123456789ab  GET      evil.test/\\x1b]52;c;aGk=\\x07\\x1b[2J\\u202etxt.exe  host_not_allowed: no service\\x1b[31m red",
        "",
      ].join("\n"),
    );
    expect(r.stdout).not.toContain("\u001b");
    expect(r.stdout).not.toContain("\u202e");
  });

  test("filters: --errors, --status, --host, --session, --agent, --since, -n; --json", async () => {
    const show = async (...args: string[]) =>
      (await H.run(["log", ...args], { env: TZ })).stdout
        .trimEnd()
        .split("\n")
        .map((l) => l.slice(0, 14));
    expect(await show("--errors")).toEqual(["03-01 10:00:01", "03-01 10:00:02", "03-01 10:00:03"]);
    expect(await show("--status", "4xx")).toEqual(["03-01 10:00:02", "03-01 10:00:03"]);
    expect(await show("--status", "502,200")).toEqual(["03-01 09:00:00", "03-01 10:00:00", "03-01 10:00:01"]);
    expect(await show("--host", "API.GitHub.com")).toEqual(["03-01 09:00:00", "03-01 10:00:00"]);
    expect(await show("--host", "example.com")).toEqual(["03-01 10:00:01"]);
    expect(await show("--agent", "reviewer")).toEqual(["03-01 10:00:01"]);
    expect(await show("--session", "agt_0123456789ab")).toEqual(["03-01 10:00:01"]);
    expect(await show("--since", "2026-03-01T10:00:02Z")).toEqual(["03-01 10:00:02", "03-01 10:00:03"]);
    expect(await show("-n", "2")).toEqual(["03-01 10:00:02", "03-01 10:00:03"]);
    expect((await H.run(["log", "--since", "10m"])).stdout).toBe("");
    const j = await H.run(["log", "--json", "--agent", "reviewer"]);
    expect(JSON.parse(j.stdout)).toMatchObject({ host: "example.com:443", status: 502, error: "upstream_error", reason: "cannot resolve example.com" });
    const escaped = await H.run(["log", "--json", "--status", "404"]);
    expect(escaped.stdout).not.toContain("\u001b");
    expect(escaped.stdout).not.toContain("\u202e");
    expect(JSON.parse(escaped.stdout).path).toBe("/\u001b]52;c;aGk=\u0007\u001b[2J\u202etxt.exe");
  });

  test("a bad filter is a one-line usage error", async () => {
    let r = await H.run(["log", "--status", "5x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('agent-vault: error: --status "5x": "5x" is not a status code (502) or class (4xx)\nhint: run the command with --help to see its usage\n');
    r = await H.run(["log", "--since", "last tuesday"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe('agent-vault: error: --since "last tuesday" is neither a duration (10m, 2h, 7d) nor a time (2026-01-31T12:00:00Z)');
  });

  test("--vault naming no vault is an error with a suggestion; a deleted vault's records still show", async () => {
    const typo = await H.run(["log", "--vault", "defualt"]);
    expect(typo.code).toBe(1);
    expect(typo.stdout).toBe("");
    expect(typo.stderr.split("\n")[0]).toBe('agent-vault: error: no vault named "defualt" (did you mean "default"?)');
    expect((await H.run(["log", "--vault", "default", "-n", "1"], { env: TZ })).stdout).toContain("evil.test");
    const original = readFileSync(logPath);
    appendFileSync(logPath, lines(record({ time: "2026-03-01T10:00:04.000Z", vault: "gone", path: "/from-a-deleted-vault" })));
    try {
      const gone = await H.run(["log", "--vault", "gone"], { env: TZ });
      expect(gone.code, gone.stderr).toBe(0);
      expect(gone.stdout).toContain("api.github.com/from-a-deleted-vault");
    } finally {
      writeFileSync(logPath, original, { mode: 0o600 });
    }
  });

  test("-f follows new records, across a rotation, with its filters", async () => {
    appendFileSync(logPath, lines(record({ time: "2026-03-01T10:59:59.000Z", host: "follow.test", path: "/zero" })));
    const live = spawnLive(H.argv(["log", "-f", "--host", "follow.test"]), cleanEnv({ ...H.env, ...TZ }), "ignore");
    cleanups.push(() => void live.proc.kill());
    // Printed from the tail: from here on the command is following the file.
    await waitUntil("the tail", () => live.stdout.includes("follow.test/zero"), 20_000);
    appendFileSync(logPath, lines(record({ time: "2026-03-01T11:00:00.000Z", host: "follow.test", path: "/one" }), record({ host: "other.test" })));
    await waitUntil("the first followed line", () => live.stdout.includes("follow.test/one"), 5000);
    // The writer's rotation: the full file becomes requests.log.1 after a last line, a new one starts.
    appendFileSync(logPath, lines(record({ time: "2026-03-01T11:00:01.000Z", host: "follow.test", path: "/two" })));
    renameSync(logPath, `${logPath}.1`);
    writeFileSync(logPath, lines(record({ time: "2026-03-01T11:00:02.000Z", host: "follow.test", path: "/three" })), { mode: 0o600 });
    await waitUntil("the line after the rotation", () => live.stdout.includes("follow.test/three"), 5000);
    live.proc.kill("SIGINT");
    expect(await live.proc.exited).toBe(0);
    expect(
      live.stdout
        .trimEnd()
        .split("\n")
        .map((l) => l.split("  ").at(-1)),
    ).toEqual(["follow.test/zero", "follow.test/one", "follow.test/two", "follow.test/three"]);
    expect(live.stdout).not.toContain("other.test");
  });

  test("a closed pipe ends log quietly; a FIFO or a link planted at requests.log is not read through", async () => {
    const other = await sceneHome(scene, { init: false });
    mkdirSync(other.dir, { mode: 0o700 });
    const many = Array.from({ length: 5000 }, (_, i) => record({ path: `/p${i}` }));
    writeFileSync(join(other.dir, "requests.log"), lines(...many), { mode: 0o600 });
    const piped = Bun.spawnSync(
      [
        "bash",
        "-c",
        `${other
          .argv(["log", "-n", "all"])
          .map((a) => JSON.stringify(a))
          .join(" ")} | head -1; echo "exit=\${PIPESTATUS[0]}" >&2`,
      ],
      { env: cleanEnv({ ...other.env, ...TZ }), stdout: "pipe", stderr: "pipe" },
    );
    expect(piped.stdout.toString()).toBe("03-01 10:00:00  200    12ms  s_0123456789ab  GET      api.github.com/p0\n");
    expect(piped.stderr.toString()).toBe("exit=0\n");

    rmSync(join(other.dir, "requests.log"));
    expect(Bun.spawnSync(["mkfifo", join(other.dir, "requests.log")]).exitCode).toBe(0);
    symlinkSync(join(H.dir, "requests.log"), join(other.dir, "requests.log.1"));
    const started = Date.now();
    const r = await other.run(["log"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("a real request's record, as the proxy writes it, is read back", async () => {
    const fresh = await sceneHome(scene);
    const server = await startServer(fresh, {}, cleanups);
    const t = await openTunnel({ proxyPort: server.mitmPort, host: "api.example.test", proxyAuthorization: basicProxyAuth("not-a-token"), ca: [] });
    expect(t.connect.status).toBe(407);
    await server.stop();
    const r = await fresh.run(["log", "--json"]);
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).toMatchObject({ method: "CONNECT", host: "api.example.test", status: 407, error: "unauthorized" });
    const text = await fresh.run(["log"]);
    // The proxy writes each failure's reason; log prints it after the code.
    expect(text.stdout).toMatch(/ 407 +\d+ms {2}- +CONNECT {2}api\.example\.test {2}unauthorized: the token is not valid\n$/);
  });
});

describe("completion", () => {
  test("bash: the script loads, registers agent-vault, and completes commands, aliases and options", async () => {
    const script = [
      `source <(${JSON.stringify(BINARY)} completion bash)`,
      "complete -p agent-vault",
      't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _agent_vault; echo "${COMPREPLY[*]}"; }',
      "t agent-vault va",
      "t agent-vault vault creds l",
      "t agent-vault log --sta",
      "t agent-vault run --ttl 8h -- agent-vault-no-such-prog",
      "t agent-vault do",
      "t agent-vault ''",
    ].join("\n");
    const r = Bun.spawnSync(["bash", "-c", script], { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const out = r.stdout.toString().split("\n");
    expect(out[0]).toBe("complete -o bashdefault -o default -F _agent_vault agent-vault");
    expect(out[1]).toBe("vault");
    expect(out[2]).toBe("list");
    expect(out[3]).toBe("--status");
    expect(out[4]).toBe("");
    expect(out[5]).toBe("doctor");
    // Every command of the program, new ones included, without a list kept by hand.
    for (const name of ["init", "vault", "server", "run", "tui", "status", "doctor", "log", "completion", "ca", "catalog"]) expect(out[6]!.split(" ")).toContain(name);
  });

  test("zsh and fish scripts are generated (and load where the shell is installed); an unknown shell is a usage error", async () => {
    for (const shell of ["zsh", "fish"]) {
      const r = await runBinary(["completion", shell], cleanEnv());
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(shell === "zsh" ? "compdef _agent_vault agent-vault" : "complete -c agent-vault");
      expect(r.stdout).toContain("'vault|creds'");
    }
    if (Bun.which("zsh")) {
      // Registered with compinit, and the function's candidates at a few points of a line (zsh's
      // _describe and friends stubbed to print what they are given).
      const z = Bun.spawnSync(
        [
          "zsh",
          "-c",
          [
            `autoload -Uz compinit && compinit -u; source <(${JSON.stringify(BINARY)} completion zsh); print -r -- $_comps[agent-vault]`,
            '_describe() { local n=${@[-1]}; print -r -- "$n: ${(j: | :)${(P)n}}" }; _command_names() { print commands }; _files() { print files }',
            "words=(agent-vault vault creds ''); CURRENT=4; PREFIX=''; _agent_vault",
            "words=(agent-vault log --sta); CURRENT=3; PREFIX=--sta; _agent_vault",
            "words=(agent-vault run --ttl 8h -- ec); CURRENT=6; PREFIX=ec; _agent_vault",
          ].join("\n"),
        ],
        { env: cleanEnv(), stdout: "pipe", stderr: "pipe" },
      );
      const out = z.stdout.toString().split("\n");
      expect(out[0]).toBe("_agent_vault");
      expect(out[1]).toStartWith("subs: set:store KEY=VALUE pairs");
      expect(out[1]).toContain(" | list:list credentials");
      expect(out[2]).toContain(" | --status:only these statuses");
      expect(out[3]).toBe("commands");
    }
    if (Bun.which("fish")) {
      const f = Bun.spawnSync(
        [
          "fish",
          "-c",
          `${JSON.stringify(BINARY)} completion fish | source; complete -C 'agent-vault va'; complete -C 'agent-vault vault creds l'; complete -C 'agent-vault log --sta'; complete -C 'agent-vault run --ttl 8h -- ech'`,
        ],
        { env: cleanEnv(), stdout: "pipe", stderr: "pipe" },
      );
      expect(f.stderr.toString()).toBe("");
      expect(
        f.stdout
          .toString()
          .split("\n")
          .map((l) => l.split("\t")[0]),
      ).toEqual(["vault", "list", "--status", "echo", ""]);
    }
    const bad = await runBinary(["completion", "tcsh"], cleanEnv());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('agent-vault: error: no completion for "tcsh": choose bash, zsh or fish\nhint: run the command with --help to see its usage\n');
  });
});
