// End-to-end: what an agent needs still works inside `run`'s sandbox. curl, Python requests, Node's
// global fetch (Node 20 needs our preload for that) and git reach a local HTTPS upstream through
// the proxy and get the real credential injected; an interactive program in a real terminal
// (tmux) gets its TTY, its Ctrl-C and its exit code but cannot push input into the terminal (TIOCSTI); signals and exit codes pass through without a
// terminal too; the working directory, $HOME and /tmp stay writable; --sandbox-ro/-rw/-hide adjust,
// and bad paths are refused in one line. Broker and agent run as the unprivileged user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { giveToAgent, openToAgent } from "../support/attacker.ts";
import { BINARY, cleanEnv, recordingCli, type RunResult, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups, spawnLive, waitUntil } from "../support/process.ts";
import { startServer } from "../support/server.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

const HAVE_BWRAP = Bun.spawnSync(["sh", "-c", "command -v bwrap"]).exitCode === 0;
const HAVE_TMUX = Bun.spawnSync(["sh", "-c", "command -v tmux"]).exitCode === 0;
const scratch = mkdtempSync(join(tmpdir(), "av-sandbox-e2e-"));
const cleanups: (() => Promise<void> | void)[] = [];
const SECRET = `ghp_${randomBytes(18).toString("hex")}`;
const HOST = "api.svc.test";
const SHA = "1".repeat(40);
const BIG = 48 * 1024 * 1024;
const outputs: string[] = [];
let U: Upstream;
let home: TempHome;
let ENV: Record<string, string>;
let work: string;

/** git's smart-HTTP ref advertisement (protocol v0), enough for `git ls-remote`. */
function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, "0") + text;
}
const ADVERTISEMENT = `${pktLine("# service=git-upload-pack\n")}0000${pktLine(`${SHA} HEAD\0symref=HEAD:refs/heads/main agent=fake\n`)}${pktLine(`${SHA} refs/heads/main\n`)}0000`;

async function runIn(args: readonly string[], command: readonly string[], options: { cwd?: string } = {}): Promise<RunResult> {
  const proc = Bun.spawn(home.argv(["run", ...args, "--", ...command]), { cwd: options.cwd ?? work, env: cleanEnv({ ...home.env, ...ENV }), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

function writeAgentFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text, { mode: 0o644 });
  giveToAgent(path);
  return path;
}

function injectedFor(path: string): boolean {
  return U.received.some((r) => r.url.startsWith(path) && r.headers.authorization === `Bearer ${SECRET}`);
}

beforeAll(async () => {
  const upstreamDir = mkdtempSync(join(scratch, "u-"));
  openToAgent(scratch);
  openToAgent(upstreamDir);
  U = await startUpstream(upstreamDir);
  U.handler = (req, res, body) => {
    if (req.url?.startsWith("/repo.git/info/refs")) {
      res.writeHead(200, { "content-type": "application/x-git-upload-pack-advertisement", "cache-control": "no-cache" });
      res.end(ADVERTISEMENT);
      return true;
    }
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BIG });
      const chunk = Buffer.alloc(1024 * 1024, "z");
      let sent = 0;
      const pump = () => {
        while (sent < BIG) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
      return true;
    }
    const reply = JSON.stringify({ ok: true, path: req.url, length: body.length });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
    res.end(reply);
    return true;
  };
  cleanups.push(() => U.close());
  ENV = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: U.caFile };
  home = await tempHome({ asAgent: true });
  cleanups.push(() => home.cleanup());
  work = join(scratch, "work");
  mkdirSync(work);
  giveToAgent(work);
  const { ok } = recordingCli(
    () => home,
    () => ENV,
    outputs,
  );
  await ok(["vault", "credential", "set", "SVC_TOKEN=-"], SECRET);
  await ok(["vault", "service", "add", "--name", "svc", "--host", HOST, "--auth-type", "bearer", "--token-key", "SVC_TOKEN"]);
}, 60_000);

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(scratch, { recursive: true, force: true });
  for (const text of outputs) expect(text).not.toContain(SECRET);
}, 30_000);

describe.skipIf(!HAVE_BWRAP)("clients work through the proxy inside the sandbox", () => {
  test("curl", async () => {
    const r = await runIn([], ["curl", "-sS", "--fail-with-body", `https://${HOST}/t-curl`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"path":"/t-curl"');
    expect(r.stderr).toContain("only network is the proxy");
    expect(injectedFor("/t-curl")).toBe(true);
  }, 30_000);

  test("Python requests", async () => {
    const script = writeAgentFile("client.py", `import requests\nr = requests.get("https://${HOST}/t-python", timeout=10)\nprint(r.status_code, r.text)\n`);
    const r = await runIn([], ["/usr/bin/python3", script]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("200");
    expect(injectedFor("/t-python")).toBe(true);
  }, 30_000);

  test("Node's global fetch (Node 20 ignores HTTPS_PROXY without the preload run adds)", async () => {
    const script = writeAgentFile("client.mjs", `const r = await fetch("https://${HOST}/t-fetch"); console.log(process.version, r.status, await r.text());\n`);
    const r = await runIn([], ["node", script]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^v\d+\.\d+\.\d+ 200 /);
    expect(injectedFor("/t-fetch")).toBe(true);
    // Without the preload, Node 20's fetch goes direct, which the sandbox refuses: the preload is what works.
    const bare = await runIn([], ["sh", "-c", `NODE_OPTIONS= node ${script} 2>&1; echo "exit=$?"`]);
    if (process.versions && Bun.spawnSync(["node", "-p", "process.versions.node"]).stdout.toString().startsWith("20.")) expect(bare.stdout).not.toContain(" 200 ");
  }, 30_000);

  test("48 MiB each way through the relays, every byte (backpressure both ways)", async () => {
    const upload = writeAgentFile("upload.bin", "u".repeat(BIG));
    const r = await runIn(
      [],
      ["sh", "-c", `curl -sS -o /dev/null -w '%{size_download}\\n' https://${HOST}/big && curl -sS --data-binary @${upload} -H 'content-type: application/octet-stream' https://${HOST}/t-upload`],
    );
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(String(BIG));
    expect(r.stdout).toContain(`"length":${BIG}`);
  }, 60_000);

  test("git ls-remote over HTTPS", async () => {
    const r = await runIn([], ["git", "ls-remote", `https://${HOST}/repo.git`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${SHA}\trefs/heads/main`);
    expect(injectedFor("/repo.git/info/refs")).toBe(true);
  }, 30_000);
});

// The agent's connection, held open inside the sandbox; and how many sockets its parent (our
// sandbox-init) holds: none once the listeners are handed out, two listeners while it relays.
const HOLD_CONNECTION = [
  "/usr/bin/python3",
  "-c",
  [
    "import os, socket, time, urllib.parse",
    'port = urllib.parse.urlparse(os.environ["HTTPS_PROXY"]).port',
    'c = socket.create_connection(("127.0.0.1", port))',
    // fds 0-2 are left out: Bun's pipes are socket pairs.
    'n = sum(os.readlink(f"/proc/{os.getppid()}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{os.getppid()}/fd") if int(fd) > 2)',
    'print("open init-sockets=%d" % n, flush=True)',
    "time.sleep(2)",
  ].join("\n"),
];

/** Established TCP connections in our (the host's) network namespace to or from `port`. */
function hostConnections(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) => readFileSync(file, "utf8").split("\n").slice(1)).filter((line) => line.includes(hex) && line.trim().split(/\s+/)[3] === "01").length;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe.skipIf(!HAVE_BWRAP)("no relay on the agent's path (src/sandbox/listeners.ts)", () => {
  test("run serving the proxy itself accepts on the sandbox's own listener", async () => {
    const live = spawnLive(home.argv(["run", "--", ...HOLD_CONNECTION]), cleanEnv({ ...home.env, ...ENV }), "ignore");
    await waitUntil("the held connection", () => live.stdout.includes("open") || (live.proc.exitCode !== null && Promise.reject(new Error(live.stderr))), 20_000);
    expect(live.stdout).toContain("init-sockets=0");
    expect(await live.proc.exited).toBe(0);
    outputs.push(live.stdout, live.stderr);
  }, 30_000);

  test("with a running server, the server accepts the agent's connections itself, and lets go of them when the run ends", async () => {
    const own: (() => Promise<void> | void)[] = [];
    try {
      const server = await startServer(home, ENV, own);
      const pid = server.live.proc.pid;
      await Bun.sleep(200);
      const before = openFds(pid);
      const live = spawnLive(home.argv(["run", "--", ...HOLD_CONNECTION]), cleanEnv({ ...home.env, ...ENV }), "ignore");
      await waitUntil("the held connection", () => live.stdout.includes("open") || (live.proc.exitCode !== null && Promise.reject(new Error(live.stderr))), 20_000);
      expect(live.stdout).toContain("init-sockets=0");
      // A relay in `run` would show as a connection to the proxy's port here.
      expect(hostConnections(server.mitmPort)).toBe(0);
      expect(await live.proc.exited).toBe(0);
      outputs.push(live.stdout, live.stderr);
      // Its listeners, the hand-off connection and the agent's connection are gone with the run.
      await waitUntil("the server to let go of the run's sockets", () => openFds(pid) === before, 5000);
      const r = await runIn([], ["curl", "-sS", "--fail-with-body", `https://${HOST}/t-server`]);
      expect(r.code, r.stderr).toBe(0);
      expect(injectedFor("/t-server")).toBe(true);
    } finally {
      await runCleanups(own);
    }
  }, 60_000);

  test("a server stopped and started again during a run: refused meanwhile, then served by the new one", async () => {
    const own: (() => Promise<void> | void)[] = [];
    const marks = mkdtempSync(join(scratch, "marks-"));
    giveToAgent(marks);
    const wait = (name: string) => `while [ ! -e ${marks}/${name} ]; do sleep 0.05; done`;
    const curl = (path: string) => `curl -sS -o /dev/null --max-time 5 https://${HOST}${path}`;
    const script = [
      `${curl("/before")}; echo "before=$?"`,
      `touch ${marks}/asked-1; ${wait("stopped")}`,
      `${curl("/between")} 2>/dev/null; echo "between=$?"`,
      `touch ${marks}/asked-2; ${wait("restarted")}`,
      `for i in $(seq 1 40); do ${curl("/after")} 2>/dev/null && break; sleep 0.25; done; echo "after=$?"`,
    ].join("\n");
    try {
      const first = await startServer(home, ENV, own);
      const live = spawnLive(home.argv(["run", "--", "sh", "-c", script]), cleanEnv({ ...home.env, ...ENV }), "ignore");
      own.push(() => void (live.proc.exitCode === null && live.proc.kill("SIGKILL")));
      const mark = (name: string) => waitUntil(name, () => readdirSync(marks).includes(name), 20_000);
      await mark("asked-1");
      await first.stop();
      writeFileSync(join(marks, "stopped"), "");
      await mark("asked-2");
      await startServer(home, ENV, own);
      writeFileSync(join(marks, "restarted"), "");
      expect(await live.proc.exited).toBe(0);
      outputs.push(live.stdout, live.stderr);
      expect(live.stdout).toContain("before=0");
      expect(live.stdout).not.toContain("between=0");
      expect(live.stdout).toContain("after=0");
      expect(injectedFor("/after")).toBe(true);
      expect(injectedFor("/between")).toBe(false);
    } finally {
      await runCleanups(own);
    }
  }, 60_000);

  test("sandbox-init relays when it cannot hand the listeners out", async () => {
    // Outside any sandbox, with an fd that is not open: the hand-over fails and the relay serves.
    const socketPath = join(mkdtempSync(join(scratch, "relay-")), "echo.sock");
    const echo = Bun.listen({ unix: socketPath, socket: { data: (socket, chunk) => void socket.write(chunk) } });
    try {
      const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => undefined } });
      const port = probe.port;
      probe.stop(true);
      const client = `import socket, time\nfor i in range(50):\n    try:\n        c = socket.create_connection(("127.0.0.1", ${port})); break\n    except OSError: time.sleep(0.1)\nc.sendall(b"ping"); print(c.recv(10).decode())\n`;
      const proc = Bun.spawn([BINARY, "sandbox-init", "--relay", `127.0.0.1:${port}=${socketPath}`, "--listeners-fd", "9", "--", "/usr/bin/python3", "-c", client], { stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect(code, stderr).toBe(0);
      expect(stdout.trim()).toBe("ping");
    } finally {
      echo.stop(true);
    }
  }, 30_000);
});

describe.skipIf(!HAVE_BWRAP)("the process contract holds inside the sandbox", () => {
  test("exit codes: a plain exit, and a death by signal as 128+N", async () => {
    expect((await runIn([], ["sh", "-c", "exit 42"])).code).toBe(42);
    expect((await runIn([], ["sh", "-c", "kill -KILL $$"])).code).toBe(137);
    expect((await runIn([], ["/nonexistent/agent"])).code).toBe(127);
  }, 30_000);

  test("SIGTERM to run reaches the command, whose exit code comes back", async () => {
    const live = spawnLive(home.argv(["run", "--", "sh", "-c", 'trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.1; done']), cleanEnv({ ...home.env, ...ENV }), "ignore");
    cleanups.push(() => void (live.proc.exitCode === null && live.proc.kill("SIGKILL")));
    await waitUntil("the command to start", () => live.stdout.includes("ready"), 20_000);
    live.proc.kill("SIGTERM");
    expect(await live.proc.exited).toBe(9);
    expect(live.stdout).toContain("got-term");
    outputs.push(live.stdout, live.stderr);
  }, 30_000);

  test("the working directory, $HOME and /tmp are writable; the data directory only shows the CA bundle", async () => {
    const r = await runIn(
      [],
      ["sh", "-c", 'echo a > ./in-cwd && echo b > "$HOME/in-home" && echo c > /tmp/av-sandbox-$$ && rm /tmp/av-sandbox-$$ && pwd && ls "$AGENT_VAULT_HOME" && head -c 27 "$SSL_CERT_FILE"'],
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(work);
    expect(r.stdout).toContain("ca-bundle.pem");
    expect(r.stdout).not.toContain("vault.av");
    expect(r.stdout).toContain("-----BEGIN CERTIFICATE-----");
  }, 30_000);

  test("--sandbox-ro, --sandbox-hide and --sandbox-rw adjust; bad paths are one-line usage errors", async () => {
    const dir = join(work, "adjust");
    mkdirSync(join(dir, "inner"), { recursive: true });
    writeFileSync(join(dir, "inner", "file"), "visible");
    giveToAgent(dir);
    const ro = await runIn(["--sandbox-ro", dir, "--sandbox-rw", join(dir, "inner")], ["sh", "-c", `touch ${dir}/x 2>&1; echo ro=$?; touch ${dir}/inner/y && echo rw=$?`]);
    expect(ro.stdout).toContain("Read-only file system");
    expect(ro.stdout).toContain("rw=0");
    const hidden = await runIn(["--sandbox-hide", join(dir, "inner")], ["sh", "-c", `cat ${dir}/inner/file 2>&1; echo`]);
    expect(hidden.stdout).not.toContain("visible");
    for (const args of [
      ["--sandbox-rw", "/nonexistent/path"],
      ["--sandbox-ro", home.dir],
      ["--sandbox-rw", join(home.dir, "vault.av")],
    ]) {
      const bad = await runIn(args, ["true"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split("\n")[0]).toMatch(/^agent-vault: error: --sandbox-(rw|ro) /);
    }
    expect((await runIn(["--sandbox-rw", "/nonexistent/path"], ["true"])).stderr).toContain("hint: a bind needs something to bind: create it first (mkdir -p /nonexistent/path)");
    // Hiding what is not there hides nothing, and is no error.
    const missing = await runIn(["--sandbox-hide", join(work, "not-there")], ["sh", "-c", "echo ran"]);
    expect(missing.code, missing.stderr).toBe(0);
    expect(missing.stdout).toContain("ran");
    // With --no-sandbox they would do nothing: a usage error, not a silent run.
    const off = await runIn(["--sandbox-strict", "--sandbox-hide", dir, "--no-sandbox"], ["true"]);
    expect(off.code).toBe(2);
    expect(off.stderr).toContain("--no-sandbox turns the sandbox off, so --sandbox-strict, --sandbox-hide would do nothing");
  }, 60_000);

  test("--quiet leaves out the lines at start, the sandbox's too (notes about variables that redirect upstreams stay)", async () => {
    const r = await runIn(["--quiet"], ["true"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split("\n").filter((line) => line && !line.startsWith("agent-vault: note: AGENT_VAULT_"))).toEqual([]);
  }, 30_000);

  test("--no-sandbox runs the command as before", async () => {
    const r = await runIn(["--no-sandbox"], ["sh", "-c", 'ls "$AGENT_VAULT_HOME"']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("vault.av");
    expect(r.stderr).not.toContain("only network is the proxy");
  }, 30_000);
});

describe.skipIf(!HAVE_BWRAP || !HAVE_TMUX)("an interactive program in a terminal", () => {
  test("gets its TTY, handles Ctrl-C itself, reads a line and its exit code comes back", async () => {
    const socket = join(scratch, "tmux.sock");
    const script = writeAgentFile(
      "interactive.py",
      [
        "import os, sys",
        'print("tty", os.isatty(0), os.isatty(1), flush=True)',
        "import fcntl, termios",
        "try:",
        '    fcntl.ioctl(0, termios.TIOCSTI, b"#")',
        '    print("injection allowed", flush=True)',
        "except OSError as e:",
        '    print("injection refused", e.errno, flush=True)',
        "try:",
        '    input("first> ")',
        "except KeyboardInterrupt:",
        '    print("caught ctrl-c", flush=True)',
        'line = input("second> ")',
        'print("got", line[::-1], flush=True)',
        "sys.exit(7)",
      ].join("\n"),
    );
    const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-S", socket, ...args], { env: cleanEnv({ ...home.env, ...ENV, TMUX: undefined }), stdout: "pipe", stderr: "pipe" });
    cleanups.push(() => void tmux("kill-server"));
    const command = [...home.argv(["run", "--", "/usr/bin/python3", script])].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    expect(tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "20", `cd ${work} && ${command}; echo "rc=$?"; sleep 60`).exitCode).toBe(0);
    const screen = () => tmux("capture-pane", "-p", "-t", "t").stdout.toString();
    const until = <T>(what: string, probe: () => T | null | false, ms: number) =>
      waitUntil(what, probe, ms).catch((error: Error) => Promise.reject(new Error(`${error.message}; screen:\n${screen()}`)));
    await until("the first prompt", () => screen().includes("first>"), 20_000);
    expect(screen()).toContain("tty True True");
    // TIOCSTI would let the agent type a command into the user's shell for after run ends.
    expect(screen()).toContain("injection refused 1");
    tmux("send-keys", "-t", "t", "C-c");
    await until("the second prompt", () => screen().includes("second>"), 10_000);
    expect(screen()).toContain("caught ctrl-c");
    tmux("send-keys", "-t", "t", "-l", "--", "olleh");
    tmux("send-keys", "-t", "t", "Enter");
    const final = await until("the exit code", () => /rc=\d+/.exec(screen()), 10_000);
    outputs.push(screen());
    expect(screen()).toContain("got hello");
    expect(final[0]).toBe("rc=7");
  }, 60_000);
});
