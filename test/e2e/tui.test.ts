// End-to-end tests of `agent-vault tui` (issue 5) in a real terminal: tmux runs the compiled binary
// (dist/agent-vault) in a pane of a private tmux server, the test sends keys with `send-keys` and
// reads the screen with `capture-pane`. Agents file proposals through the agent API of a
// foreground `agent-vault server`; the local HTTPS upstream (test/support/upstream.ts, reached via
// AGENT_VAULT_CONNECT_TO) is the ground truth for injection. A recorder captures the pane every
// few milliseconds while secrets are typed, so "the secret never reached the screen" is checked
// against every frame tmux showed, and at the end against the pane's whole scrollback.
//
// Needs tmux (CI installs it). Keys are sent one step at a time and the test waits for each step's
// frame before the next, as a person would; keys that arrive before a frame are the TUI's key
// focus's to order (src/tui/hooks/use-keys.tsx; test/tui/components.test.tsx, "type-ahead").
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, cleanEnv, type RunResult, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { basicProxyAuth, openTunnel } from "../support/proxy-client.ts";
import { startServer } from "../support/server.ts";
import { replyWithPath, startUpstream, type Upstream } from "../support/upstream.ts";
import { authorizationCode, consent } from "../support/browser.ts";
import { authorizationUrl, pkcePair, startOAuthServer, tokenRequest } from "../support/oauth.ts";
import { spawnLive, waitUntil, runCleanups } from "../support/process.ts";
import { passwdName } from "../support/os-user.ts";

const scratch = mkdtempSync(join(tmpdir(), "av-tui-e2e-"));
const cleanups: (() => Promise<void> | void)[] = [];
const TAG = randomBytes(6).toString("hex");
// Credential values get their own random part: the guard also looks for a value's part after a
// well-known prefix (`alpha-` here), which a path built from TAG would otherwise contain.
const VTAG = randomBytes(6).toString("hex");
const HAVE_TMUX = Bun.spawnSync(["sh", "-c", "command -v tmux"]).exitCode === 0;

// ---------------------------------------------------------------------------------------------
// tmux

const SOCKET = join(scratch, "tmux.sock");
const CONFIG = join(scratch, "tmux.conf");
writeFileSync(CONFIG, "set -s exit-empty off\nset -g status off\nset -g history-limit 20000\nset -g escape-time 0\n");

/** The environment of the tmux server and so of every pane: the temp home, no CI/colour hints. */
function paneEnv(): Record<string, string> {
  return cleanEnv({
    ...H.env,
    CI: undefined,
    CONTINUOUS_INTEGRATION: undefined,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    TMUX: undefined,
    TMUX_PANE: undefined,
    PS1: "$ ",
    ENV: undefined,
  });
}

async function tmux(...args: string[]): Promise<string> {
  const proc = Bun.spawn(["tmux", "-S", SOCKET, "-f", CONFIG, ...args], { env: paneEnv(), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`tmux ${args.join(" ")} failed (${code}): ${err}`);
  return out;
}

let paneSeq = 0;

interface Pane {
  readonly name: string;
  /** Every screen captured so far, by the recorder and by waits. */
  readonly frames: string[];
  capture(options?: { escapes?: boolean; history?: boolean }): Promise<string>;
  keys(...keys: string[]): Promise<void>;
  /** Literal text, not key names. */
  type(text: string): Promise<void>;
  /**
   * Resolves with the screen once `probe` matches it, then waits SETTLE_MS more (unless `settle`
   * is false), the pace of a person reading the screen before the next key.
   */
  until(probe: string | RegExp | ((screen: string) => boolean), ms?: number, settle?: boolean): Promise<string>;
  /** Captures every ~10 ms until stopped. */
  record(): () => Promise<void>;
  kill(): Promise<void>;
}

async function openPane(width = 100, height = 30): Promise<Pane> {
  const name = `p${++paneSeq}`;
  await tmux("new-session", "-d", "-s", name, "-x", String(width), "-y", String(height), "sh");
  const frames: string[] = [];
  const pane: Pane = {
    name,
    frames,
    capture: async (options = {}) => {
      const args = ["capture-pane", "-p", "-t", name];
      if (options.escapes) args.push("-e");
      if (options.history) args.push("-J", "-S", "-", "-E", "-");
      const screen = await tmux(...args);
      frames.push(screen);
      return screen;
    },
    keys: async (...keys) => void (await tmux("send-keys", "-t", name, ...keys)),
    // `--`: a text starting with "-" (a token can) is text, not an option.
    type: async (text) => void (await tmux("send-keys", "-t", name, "-l", "--", text)),
    until: async (probe, ms = 5000, settle = true) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const screen = await pane.capture();
        const ok = typeof probe === "string" ? screen.includes(probe) : probe instanceof RegExp ? probe.test(screen) : probe(screen);
        if (ok) {
          if (settle) await Bun.sleep(SETTLE_MS);
          return screen;
        }
        if (Date.now() > deadline) throw new Error(`pane ${name}: nothing matched ${String(probe)} within ${ms} ms; screen:\n${screen}`);
        await Bun.sleep(10);
      }
    },
    record: () => {
      let running = true;
      const loop = (async () => {
        while (running) {
          await pane.capture();
          await Bun.sleep(10);
        }
      })();
      return async () => {
        running = false;
        await loop;
      };
    },
    kill: async () => {
      try {
        await tmux("kill-session", "-t", name);
      } catch {
        // already gone
      }
    },
  };
  cleanups.push(() => pane.kill());
  await pane.until((s) => s.trim() !== "", 5000);
  return pane;
}

/**
 * Types `text` one key per write, `gapMs` apart, then enter `gapMs` after the last key, through one
 * tmux control-mode client (separate `tmux` processes are too slow and uneven for this).
 */
async function autotype(pane: Pane, text: string, gapMs: number): Promise<void> {
  const ctl = Bun.spawn(["tmux", "-S", SOCKET, "-f", CONFIG, "-C", "attach-session", "-t", pane.name], { env: paneEnv(), stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  void new Response(ctl.stdout).text();
  const send = async (command: string) => {
    ctl.stdin.write(`${command}\n`);
    await ctl.stdin.flush();
  };
  await Bun.sleep(50);
  for (const c of text) {
    await send(`send-keys -t ${pane.name} -l '${c}'`);
    await Bun.sleep(gapMs);
  }
  await send(`send-keys -t ${pane.name} Enter`);
  await Bun.sleep(50);
  await send("detach-client");
  ctl.stdin.end();
  await ctl.exited;
}

/** Starts the TUI in the pane so its exit status is printed after it ends. */
async function startTui(pane: Pane, prefix = "", args = "--no-bell"): Promise<void> {
  await pane.type(`clear; ${prefix}${BINARY} tui ${args}; echo EXITED=$?`);
  await pane.keys("Enter");
}

/**
 * Every wait settles this long after its match. Keys sent sooner are handled in order too (the TUI's
 * key focus replays keys for a prompt or screen not on screen yet, see src/tui/hooks/use-keys.tsx);
 * the pause keeps these tests about what a person sees, not about type-ahead.
 */
const SETTLE_MS = 120;
const settle = () => Bun.sleep(SETTLE_MS);
/** A proposal that arrived while the TUI was open takes keys only after 800 ms on screen (ProposalsScreen's ARM_MS). */
const armed = () => Bun.sleep(900);

/** Every 8-character window of a secret, so a partial leak counts too. */
function leaked(screens: readonly string[], secret: string): string | null {
  const all = screens.join("\n");
  for (let i = 0; i + 8 <= secret.length; i++) {
    const piece = secret.slice(i, i + 8);
    if (all.includes(piece)) return piece;
  }
  return null;
}

/** SGR parameters that set a colour (foreground, background, 256/true colour); 39/49 reset. */
function colourCodes(screen: string): string[] {
  const found: string[] = [];
  for (const m of screen.matchAll(/\x1b\[([0-9;]*)m/g)) {
    const params = m[1]!.split(";").map(Number);
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      if ((p >= 30 && p <= 37) || (p >= 40 && p <= 47) || (p >= 90 && p <= 97) || (p >= 100 && p <= 107) || p === 38 || p === 48) {
        found.push(m[0]);
        break;
      }
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Processes: a home, an upstream, a server, a session for the agent

let H: TempHome;
let U: Upstream;
let API: string;
let mitmPort: number;
let agentToken: string;
let avCa: string;

async function ok(args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const r = await H.run(args, opts);
  if (r.code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function agent(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${agentToken}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${API}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, text };
}

async function file(body: unknown): Promise<number> {
  const r = await agent("POST", "/v1/proposals", body);
  expect(r.status, r.text).toBe(201);
  return r.json.id as number;
}

beforeAll(async () => {
  if (!HAVE_TMUX) return;
  U = await startUpstream(mkdtempSync(join(scratch, "u-")));
  cleanups.push(() => U.close());
  U.handler = replyWithPath;
  H = await tempHome();
  cleanups.push(() => H.cleanup());
  await ok(["vault", "credential", "set", "ALPHA_KEY=-"], { stdin: `alpha-${VTAG}` });
  await ok(["vault", "credential", "set", "DOOMED_KEY=-"], { stdin: `doomed-${VTAG}` });
  await ok(["vault", "credential", "set", "ZULU_KEY=-"], { stdin: `zulu-${VTAG}` });
  // A request log with every status class, for the colour checks.
  const line = (status: number, path: string) =>
    JSON.stringify({
      time: new Date().toISOString(),
      session: null,
      vault: "default",
      method: "GET",
      host: "api.example.com",
      path,
      service: null,
      status,
      latency_ms: 3,
      error: status >= 500 ? "upstream_error" : null,
      via: "tunnel",
    });
  appendFileSync(join(H.dir, "requests.log"), `${[line(200, "/ok"), line(404, "/nope"), line(502, "/bad")].join("\n")}\n`);

  const server = await startServer(H, { AGENT_VAULT_CONNECT_TO: `newsvc.example.com:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: U.caFile }, cleanups);
  API = `http://127.0.0.1:${server.apiPort}`;
  mitmPort = server.mitmPort;
  avCa = readFileSync(join(H.dir, "ca.pem"), "utf8");

  // The agent's session: a `run` child that prints its token and waits for stdin to close.
  const holder = spawnLive([BINARY, "run", "--", "sh", "-c", 'printf "%s\\n" "$AGENT_VAULT_SESSION_TOKEN"; exec cat >/dev/null'], cleanEnv(H.env), "pipe");
  cleanups.push(async () => {
    (holder.proc.stdin as { end(): unknown }).end();
    await holder.proc.exited;
  });
  agentToken = await waitUntil(
    "the session token",
    () => {
      if (holder.proc.exitCode !== null) throw new Error(`run exited (${holder.proc.exitCode}): ${holder.stderr}`);
      const lines = holder.stdout.split("\n");
      return lines.length > 1 ? lines[0]!.trim() : null;
    },
    20_000,
  );
  // One idle session keeps the tmux server up between the tests' own sessions.
  await tmux("new-session", "-d", "-s", "keeper", "-x", "80", "-y", "24", "sh");
  cleanups.push(async () => {
    try {
      await tmux("kill-server");
    } catch {
      // no server left
    }
  });
}, 60_000);

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

const it = HAVE_TMUX ? test : test.skip;

// ---------------------------------------------------------------------------------------------

describe("agent-vault tui in tmux", () => {
  it("an agent's proposal appears while the TUI is open; a, the secret, enter, y → stored, applied, injected; the secret is never on screen", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    const secret = `nsv_${TAG}_${randomBytes(8).toString("hex")}`;

    const stop = pane.record();
    const filedAt = Date.now();
    const id = await file({
      services: [{ action: "set", name: "newsvc", host: "newsvc.example.com", auth: { type: "bearer", token: "NEWSVC_TOKEN" } }],
      credentials: [{ action: "set", key: "NEWSVC_TOKEN", description: "NewSvc API key", obtain: "https://newsvc.example.com/keys" }],
      message: "Need NewSvc to list widgets",
    });
    const seen = await pane.until(new RegExp(`^#${id}\\s+pending\\s.*newsvc`, "m"), 2000, false);
    const latency = Date.now() - filedAt;
    expect(latency).toBeLessThanOrEqual(2000);
    expect(seen).toContain("Proposals (1)");
    console.log(`  proposal #${id} on screen ${latency} ms after the agent filed it`);

    await armed();
    await pane.keys("a");
    let screen = await pane.until("Value for NEWSVC_TOKEN (hidden");
    expect(screen).toContain(`Proposal #${id}`);
    expect(screen).toContain("get it at: https://newsvc.example.com/keys");
    await pane.type(secret);
    await pane.until("•".repeat(Math.min(secret.length, 32)));
    await pane.keys("Enter");
    await pane.until(`Apply proposal #${id}? y to confirm`);
    await pane.keys("y");
    screen = await pane.until(`applied proposal #${id}`);
    expect(screen).toMatch(new RegExp(`^#${id}\\s+applied`, "m"));
    await stop();

    // The CLI agrees: credential stored with that value, proposal applied.
    const got = await ok(["vault", "credential", "get", "NEWSVC_TOKEN"]);
    expect(got.stdout.trim()).toBe(secret);
    const shown = JSON.parse((await ok(["vault", "proposal", "show", String(id), "--json"])).stdout) as { status: string; audit: { action: string; by: string }[] };
    expect(shown.status).toBe("applied");
    expect(shown.audit.at(-1)).toMatchObject({ action: "approved" });
    expect(shown.audit.at(-1)!.by).toStartWith("tui");
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.json.status).toBe("applied");

    // The running proxy injects it on the next request.
    const tunnel = await openTunnel({ proxyPort: mitmPort, host: "newsvc.example.com", proxyAuthorization: basicProxyAuth(agentToken), ca: [avCa] });
    expect(tunnel.connect.status, tunnel.connect.text).toBe(200);
    const path = `/tui-${TAG}/widgets`;
    try {
      const res = await tunnel.conn!.request("GET", path, [
        ["Host", "newsvc.example.com"],
        ["Authorization", "Bearer placeholder"],
      ]);
      expect(res.status).toBe(200);
    } finally {
      tunnel.conn!.close();
    }
    const hits = U.received.filter((r) => r.url === path);
    expect(hits).toHaveLength(1);
    expect(hits[0]!.headers.authorization).toBe(`Bearer ${secret}`);

    // Never on screen: every recorded frame, and the whole scrollback.
    const history = await pane.capture({ history: true });
    expect(pane.frames.length).toBeGreaterThan(20);
    expect(leaked(pane.frames, secret)).toBeNull();
    expect(leaked([history], secret)).toBeNull();
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 30_000);

  it("r, a reason, enter → rejected; the agent reads the reason from GET /v1/proposals/N", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    const id = await file({ credentials: [{ action: "set", key: "REJECT_ME_KEY" }], message: "please give me prod access" });
    await pane.until(new RegExp(`^#${id}\\s+pending`, "m"), 2000);
    await armed();
    await pane.keys("r");
    await pane.until(`Reason for rejecting #${id} (enter):`);
    const reason = `use the staging key ${TAG}`;
    await pane.type(reason);
    await pane.until(`(enter): ${reason}`);
    await pane.keys("Enter");
    const screen = await pane.until(`rejected proposal #${id}`);
    expect(screen).toMatch(new RegExp(`^#${id}\\s+rejected`, "m"));
    const polled = await agent("GET", `/v1/proposals/${id}`);
    expect(polled.status).toBe(200);
    expect(polled.json).toMatchObject({ id, status: "rejected", reason });
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("2, select, d, y deletes a credential (and n keeps it)", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("2");
    const screen = await pane.until("DOOMED_KEY");
    const rows = screen.split("\n").filter((l) => /^[A-Z][A-Z0-9_]+\s+(static|oauth)\s/.test(l));
    const index = rows.findIndex((l) => l.startsWith("DOOMED_KEY "));
    expect(index).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < index; i++) {
      await pane.keys("j");
      await settle();
    }
    await pane.keys("d");
    await pane.until("Delete DOOMED_KEY? y to confirm");
    await pane.keys("n");
    await pane.until("DOOMED_KEY was not deleted");
    expect((await H.run(["vault", "credential", "get", "DOOMED_KEY"])).code).toBe(0);
    await pane.keys("d");
    await pane.until("Delete DOOMED_KEY? y to confirm");
    await pane.keys("y");
    const after = await pane.until("deleted DOOMED_KEY");
    expect(after.split("\n").some((l) => l.startsWith("DOOMED_KEY "))).toBe(false);
    const list = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string }[];
    expect(list.map((c) => c.key)).not.toContain("DOOMED_KEY");
    expect(list.map((c) => c.key)).toContain("ALPHA_KEY");
    expect((await H.run(["vault", "credential", "get", "DOOMED_KEY"])).code).not.toBe(0);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("e: a value typed key by key at auto-type speed, then enter, is stored whole", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("2");
    await pane.until(/^ALPHA_KEY\s/m);
    // One write per character, 3 ms apart, then enter: what a password manager's auto-type
    // produces. Whether a key lands before the previous key's frame is a matter of timing, so
    // four rounds; each must store exactly what was typed.
    const results: { typed: string; stored: string }[] = [];
    for (let round = 0; round < 4; round++) {
      await pane.keys("e");
      await pane.until("Value for ALPHA_KEY (hidden):");
      const secret = `alpha-typed-${round}-${VTAG}`;
      await autotype(pane, secret, 3);
      await pane.until(/updated ALPHA_KEY|error:/);
      results.push({ typed: secret, stored: (await ok(["vault", "credential", "get", "ALPHA_KEY"])).stdout.trim() });
      await pane.keys("Escape"); // clears the status line for the next round
      await pane.until((s) => !s.includes("updated ALPHA_KEY") && !s.includes("error:"));
    }
    expect(
      results.filter((r) => r.stored !== r.typed),
      "MaskedInput submitted the value of its last render",
    ).toEqual([]);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("Ctrl-C exits with status 0 and restores the terminal (tty modes, cursor)", async () => {
    const pane = await openPane(100, 30);
    await pane.type(`stty -g > ${scratch}/stty.before`);
    await pane.keys("Enter");
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("2");
    await pane.until("ALPHA_KEY");
    await pane.keys("C-c");
    await pane.until("EXITED=", 5000);
    await pane.type(`stty -g | cmp -s - ${scratch}/stty.before && echo STTY=same || echo STTY=changed`);
    await pane.keys("Enter");
    const screen = await pane.until(/STTY=(same|changed)/);
    expect(screen).toContain("EXITED=0");
    expect(screen).toContain("STTY=same");
    expect((await tmux("display-message", "-p", "-t", pane.name, "#{cursor_flag}")).trim()).toBe("1");
    expect((await tmux("display-message", "-p", "-t", pane.name, "#{alternate_on}")).trim()).toBe("0");
    // The shell works: what is typed is echoed and run.
    await pane.type("echo back-at-the-shell");
    await pane.keys("Enter");
    await pane.until(/^back-at-the-shell$/m);
    await pane.kill();
  }, 20_000);

  it("Ctrl-C leaves no UI behind: the pane shows the shell, not the last frame", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("C-c");
    const screen = await pane.until("EXITED=", 5000);
    // Expected: the TUI ran on the alternate screen (or cleared its frame), so after it the pane
    // shows the shell only. Actual: Ink's last frame stays above the prompt.
    expect(screen, "the TUI's last frame is still on screen after exit").not.toContain("1 Proposals");
    expect(screen).not.toContain("? help");
    await pane.kill();
  }, 20_000);

  it("works at 80x24: after a resize every line fits, the tab bar and the key line are there once", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    await tmux("resize-window", "-t", pane.name, "-x", "80", "-y", "24");
    await Bun.sleep(300);
    for (const tab of ["1", "2", "3", "4", "5"]) {
      await pane.keys(tab);
      await Bun.sleep(150);
      const screen = await pane.capture();
      const lines = screen.replace(/\n$/, "").split("\n");
      expect(lines.length).toBeLessThanOrEqual(24);
      for (const l of lines) expect([...l].length, JSON.stringify(l)).toBeLessThanOrEqual(80);
      expect(screen.split("1 Proposals").length - 1, `screen ${tab}:\n${screen}`).toBe(1);
      expect(screen.split("? help").length - 1, `screen ${tab}:\n${screen}`).toBe(1);
      expect(lines[0]).toContain("1 Proposals");
    }
    // An approval prompt at 80 columns.
    const id = await file({ credentials: [{ action: "set", key: "NARROW_KEY" }], message: "at 80 columns" });
    await pane.keys("1");
    await pane.until(new RegExp(`^#${id}\\s+pending`, "m"), 2000);
    await armed();
    await pane.keys("a");
    const screen = await pane.until("Value for NARROW_KEY");
    for (const l of screen.split("\n")) expect([...l].length).toBeLessThanOrEqual(80);
    await pane.keys("Escape");
    await pane.until(`proposal #${id} was not applied`);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("NO_COLOR=1: no colour codes on any screen (and without it, colours are there)", async () => {
    // A pending proposal (yellow) and log lines of each status class (green, yellow, red).
    await file({ credentials: [{ action: "set", key: "COLOUR_KEY" }], message: "colour check" });
    const screens = async (prefix: string): Promise<string[]> => {
      const pane = await openPane(100, 30);
      await startTui(pane, prefix);
      await pane.until("1 Proposals");
      const out: string[] = [];
      for (const tab of ["1", "2", "3", "4", "5"]) {
        await pane.keys(tab);
        await Bun.sleep(120);
        out.push(await pane.capture({ escapes: true }));
      }
      await pane.keys("q");
      await pane.until("EXITED=0");
      await pane.kill();
      return out;
    };
    const coloured = await screens("");
    expect(coloured.flatMap(colourCodes).length, "control: the TUI uses colour when NO_COLOR is unset").toBeGreaterThan(0);
    const plain = await screens("NO_COLOR=1 ");
    plain.forEach((s, i) => expect(colourCodes(s), `screen ${i + 1}`).toEqual([]));
  }, 30_000);
});

describe("unlock inside the TUI (password-protected vault, no AGENT_VAULT_MASTER_PASSWORD)", () => {
  it("a masked prompt; a wrong password shows an error and asks again; the right one unlocks", async () => {
    const pane = await openPane(100, 30);
    const wrong = `wrong-pw-${TAG}`;
    await startTui(pane, "env -u AGENT_VAULT_MASTER_PASSWORD ");
    await pane.until("Master password:");
    const stop = pane.record();
    await pane.type(wrong);
    await pane.until(`Master password: ${"•".repeat(wrong.length)}`);
    await pane.keys("Enter");
    let screen = await pane.until("wrong master password", 10_000);
    expect(screen).toContain("Master password:");
    // Asked again: the input is empty and takes the next try.
    expect(screen).not.toContain("•");
    await pane.type(TEST_PASSWORD);
    await pane.until(`Master password: ${"•".repeat(TEST_PASSWORD.length)}`);
    await pane.keys("Enter");
    screen = await pane.until("1 Proposals", 10_000);
    expect(screen).toContain("vault: default");
    await stop();
    expect(leaked(pane.frames, wrong)).toBeNull();
    expect(leaked(pane.frames, TEST_PASSWORD)).toBeNull();
    expect(leaked([await pane.capture({ history: true })], TEST_PASSWORD)).toBeNull();
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 30_000);

  it("NO_COLOR=1 also holds for the unlock prompt's error", async () => {
    const pane = await openPane(100, 30);
    await startTui(pane, "NO_COLOR=1 env -u AGENT_VAULT_MASTER_PASSWORD ");
    await pane.until("Master password:");
    await pane.type("not-the-password");
    await pane.until(`Master password: ${"•".repeat(16)}`);
    await pane.keys("Enter");
    await pane.until("wrong master password", 10_000);
    const screen = await pane.capture({ escapes: true });
    // src/tui/main.tsx draws the error with color="red" regardless of NO_COLOR.
    expect(colourCodes(screen)).toEqual([]);
    await pane.keys("Escape");
    await pane.until("EXITED=");
    await pane.kill();
  }, 20_000);
});

describe("OAuth slots completed from the TUI (issue 6)", () => {
  it("approve a proposal with two OAuth slots, c connects one in the browser, p pastes the other; no token on screen", async () => {
    const O = await startOAuthServer(mkdtempSync(join(scratch, "oauth-")));
    cleanups.push(() => O.close());
    // The desktop's browser opener, recording the URL the TUI asked it to open.
    const bin = mkdtempSync(join(scratch, "bin-"));
    const opened = join(bin, "opened.txt");
    writeFileSync(join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`, { mode: 0o755 });
    const env = `AGENT_VAULT_CONNECT_TO=auth.test:${O.port}:127.0.0.1:${O.port} AGENT_VAULT_UPSTREAM_CA='${O.caFile}' PATH='${bin}':"$PATH" `;
    const id = await file({
      credentials: [
        {
          action: "set",
          key: "TUI_GH",
          type: "oauth",
          description: "connect me",
          oauth: { authorization_url: O.authorizationEndpoint, token_url: O.tokenEndpoint, scopes: "openid read", client_id: "public-cli" },
        },
        { action: "set", key: "TUI_LIN", type: "oauth", description: "paste me", oauth: { token_url: O.tokenEndpoint, client_id: "public-cli" } },
      ],
      message: "need two OAuth APIs",
    });
    // A refresh token obtained elsewhere, for the paste.
    const { verifier, challenge } = pkcePair();
    const redirect = "http://127.0.0.1:9/callback";
    const code = await authorizationCode(authorizationUrl(O, { clientId: "public-cli", redirectUri: redirect, challenge, state: "s", scope: "openid read" }), { oauthPort: O.port, ca: O.ca });
    const tokens = await tokenRequest(O, { grant_type: "authorization_code", code: code.code, redirect_uri: redirect, code_verifier: verifier, client_id: "public-cli" });
    const refreshToken = String(tokens.json.refresh_token);

    const pane = await openPane(110, 30);
    await startTui(pane, env);
    await pane.until(new RegExp(`^#${id}\\s+pending`, "m"), 5000);
    const stop = pane.record();
    await pane.keys("a");
    await pane.until(`Apply proposal #${id}? y to confirm`);
    await pane.keys("y");
    let screen = await pane.until("press c to connect or p to paste tokens");
    expect(screen).toContain("TUI_GH, TUI_LIN are OAuth credentials");
    expect(screen).toMatch(/^TUI_GH\s+oauth\s+unconnected/m);

    // The proposal chose the URLs (not a known provider's): asked about first; any key but y cancels.
    await pane.keys("c");
    screen = await pane.until("TUI_GH: the agent's proposal chose where its tokens and your browser go, not a known provider's: tokens to");
    expect(screen).toContain(`${O.tokenEndpoint}, sign-in at ${O.authorizationEndpoint}. y to use them, any other key cancels`);
    await pane.keys("n");
    await pane.until("TUI_GH was not connected");
    expect(existsSync(opened)).toBe(false);
    await pane.keys("c");
    await pane.until("TUI_GH: the agent's proposal chose where its tokens");
    await pane.keys("y");
    await pane.until("Waiting for the browser to authorize TUI_GH");
    const url = await waitUntil(
      "the browser to be opened",
      () => {
        try {
          return readFileSync(opened, "utf8").trim() || null;
        } catch {
          return null;
        }
      },
      5000,
    );
    expect(new URL(url).searchParams.get("code_challenge_method")).toBe("S256");
    const page = await consent(url, { oauthPort: O.port, ca: O.ca });
    expect(page.callbackStatus).toBe(200);
    screen = await pane.until("connected TUI_GH");
    expect(screen).toMatch(/^TUI_GH\s+oauth\s+••/m);

    await pane.keys("j");
    await settle();
    await pane.keys("p");
    screen = await pane.until("TUI_LIN: the agent's proposal chose where its tokens go, not a known provider's: tokens to");
    expect(screen).toContain(`${O.tokenEndpoint}. y to use them`);
    await pane.keys("y");
    await pane.until("Access token for TUI_LIN (hidden; enter to skip):");
    await pane.keys("Enter");
    await pane.until("Refresh token for TUI_LIN (hidden; enter to skip):");
    await pane.type(refreshToken);
    await pane.until("•".repeat(Math.min(refreshToken.length, 32)));
    await pane.keys("Enter");
    await pane.until("the refresh token works; stored TUI_LIN", 10_000);
    await stop();

    for (const key of ["TUI_GH", "TUI_LIN"]) {
      const status = JSON.parse((await ok(["oauth", "status", key, "--json"])).stdout) as { status: string; has_refresh_token: boolean };
      expect(status).toMatchObject({ status: "connected", has_refresh_token: true });
    }
    const history = await pane.capture({ history: true });
    expect(leaked(pane.frames, refreshToken)).toBeNull();
    expect(leaked([history], refreshToken)).toBeNull();
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 40_000);
});

describe("the proposal on screen is the one acted on (red team, session 7)", () => {
  it("an open detail stays on its proposal when another arrives; a key on a row that just arrived is held back", async () => {
    const a = await file({ credentials: [{ action: "set", key: "SHOWN_KEY", description: "the one being read" }], message: "the proposal the reviewer reads" });
    const pane = await openPane(100, 30);
    await startTui(pane);
    await pane.until(new RegExp(`^#${a}\\s+pending`, "m"), 3000);
    await pane.keys("Enter");
    await pane.until(`Proposal #${a} ·`);
    // The agent files a look-alike while the detail is open; the pane polls the vault meanwhile.
    const b = await file({ credentials: [{ action: "set", key: "SHOWN_KEY", description: "the one being read" }], message: "the proposal the reviewer reads" });
    await Bun.sleep(2000);
    let screen = await pane.capture();
    expect(screen).toContain(`Proposal #${a} ·`);
    expect(screen).not.toContain(`Proposal #${b} ·`);
    await pane.keys("a");
    await pane.until("Value for SHOWN_KEY (hidden");
    await pane.keys("Escape");
    await pane.until(`proposal #${a} was not applied`);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();

    // A fresh TUI on the list, nothing chosen: the top row follows the newest. One that arrives
    // there is not acted on by a key pressed at once.
    const list = await openPane(100, 30);
    await startTui(list);
    await list.until(new RegExp(`^#${b}\\s+pending`, "m"), 3000);
    const c = await file({ credentials: [{ action: "set", key: "SHOWN_KEY" }], message: "the proposal the reviewer reads" });
    await list.until(new RegExp(`^#${c}\\s+pending`, "m"), 3000);
    await list.keys("a");
    screen = await list.until(`proposal #${c} just arrived: look at it first`);
    expect(screen).not.toContain("Value for SHOWN_KEY");
    await armed();
    await list.keys("a");
    await list.until("Value for SHOWN_KEY (hidden");
    await list.keys("Escape");
    await list.until(`proposal #${c} was not applied`);
    for (const id of [a, b, c]) expect(JSON.parse((await ok(["vault", "proposal", "show", String(id), "--json"])).stdout).status).toBe("pending");
    await list.keys("q");
    await list.until("EXITED=0");
    await list.kill();
  }, 40_000);
});

describe("agents on the Sessions screen (issue 7)", () => {
  it("5 shows an agent's live grants and policy; x, y revokes it", async () => {
    await ok(["vault", "credential", "set", "TUI_AGENT_KEY=-"], { stdin: `agent-${VTAG}` });
    await ok(["vault", "service", "add", "--name", "tuiapi", "--host", "tuiapi.example.com", "--auth-type", "bearer", "--token-key", "TUI_AGENT_KEY"]);
    const token = (await ok(["agent", "create", "tuibot"])).stdout.trim();
    await ok(["agent", "grant", "tuibot", "--service", "tuiapi", "--ttl", "2h"]);
    await ok(["agent", "policy", "tuibot", "--methods", "tuiapi=GET,HEAD", "--rate-limit", "30"]);
    const pane = await openPane(140, 30);
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("5");
    const screen = await pane.until(/agent tuibot\s+active/);
    const row = screen.split("\n").find((l) => l.includes("agent tuibot"))!;
    expect(row).toContain("tuiapi(in 2h)");
    expect(row).toContain("tuiapi: only GET,HEAD; rate limit: 30 requests per minute");
    expect(screen).not.toContain(token.slice(11));
    const rows = screen.split("\n").filter((l) => /^(s_[0-9a-f]{12}|agent )/.test(l));
    const index = rows.findIndex((l) => l.includes("agent tuibot"));
    for (let i = 0; i < index; i++) {
      await pane.keys("j");
      await settle();
    }
    await pane.keys("x");
    await pane.until("Revoke agent tuibot? y to confirm");
    await pane.keys("y");
    await pane.until(/agent tuibot\s+revoked/);
    const info = JSON.parse((await ok(["agent", "info", "tuibot", "--json"])).stdout) as { status: string };
    expect(info.status).toBe("revoked");
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// Issue 15's TUI rough edges, at 80x24 in a real terminal. Each failed on the previous TUI.

async function rejectAllPending(): Promise<void> {
  const pending = JSON.parse((await ok(["vault", "proposal", "list", "--status", "pending", "--json"])).stdout) as { id: number }[];
  for (const p of pending) await ok(["vault", "proposal", "reject", String(p.id), "--reason", "cleared for the next test"]);
}

describe("issue 15: the TUI's rough edges at 80x24", () => {
  it("the tab bar does not move when the pending count appears", async () => {
    await rejectAllPending();
    const pane = await openPane(80, 24);
    await startTui(pane);
    const before = (await pane.until("ASKS FOR")).split("\n")[0]!;
    expect(before).not.toContain("Proposals (");
    const id = await file({ credentials: [{ action: "set", key: "STEADY_KEY" }], message: "steady tabs" });
    const after = (await pane.until(new RegExp(`^#${id}\\s+pending`, "m"), 3000)).split("\n")[0]!;
    expect(after).toContain("Proposals (1)");
    for (const tab of ["2 Credentials", "3 Services", "4 Activity", "5 Sessions"]) expect(after.indexOf(tab), `${tab}\nbefore: ${before}\nafter:  ${after}`).toBe(before.indexOf(tab));
    expect([...after].length).toBeLessThanOrEqual(80);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("FILED ticks: the age of a proposal counts up on screen without a key", async () => {
    const pane = await openPane(80, 24);
    await startTui(pane);
    const id = await file({ credentials: [{ action: "set", key: "TICKING_KEY" }], message: "watch my age" });
    const age = (screen: string) => {
      const m = new RegExp(`^#${id}\\s+pending\\s+(\\d+)s ago`, "m").exec(screen);
      return m ? Number(m[1]) : null;
    };
    const first = age(await pane.until((s) => age(s) !== null, 3000, false))!;
    const later = await pane.until((s) => (age(s) ?? -1) >= first + 2, 4000, false);
    expect(age(later)).toBeGreaterThanOrEqual(first + 2);
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);

  it("a in a proposal's detail approves it; the approver is tui:USER (the uid's name) even without $USER", async () => {
    const id = await file({ credentials: [{ action: "set", key: "DETAIL_KEY", description: "approved from the detail" }], message: "approve me from the detail" });
    const pane = await openPane(80, 24);
    await startTui(pane, "env -u USER -u LOGNAME ");
    await pane.until(new RegExp(`^#${id}\\s+pending`, "m"), 3000);
    await pane.keys("Enter");
    await pane.until(`Proposal #${id} ·`);
    await pane.keys("a");
    await pane.until("Value for DETAIL_KEY (hidden");
    const secret = `detail-${TAG}-${randomBytes(6).toString("hex")}`;
    const stop = pane.record();
    await pane.type(secret);
    await pane.until("•".repeat(Math.min(secret.length, 32)));
    await pane.keys("Enter");
    await pane.until(`Apply proposal #${id}? y to confirm`);
    await pane.keys("y");
    await pane.until(`applied proposal #${id}`);
    await stop();
    expect(leaked(pane.frames, secret)).toBeNull();
    expect((await ok(["vault", "credential", "get", "DETAIL_KEY"])).stdout.trim()).toBe(secret);
    const shown = JSON.parse((await ok(["vault", "proposal", "show", String(id), "--json"])).stdout) as { status: string; audit: { action: string; by: string }[] };
    expect(shown.status).toBe("applied");
    expect(shown.audit.at(-1)).toEqual(expect.objectContaining({ action: "approved", by: `tui:${passwdName()}` }));
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 30_000);

  it("Activity shows whole host names at 80 columns, and enter shows a request's detail with the reason", async () => {
    const stamp = new Date().toISOString();
    const entry = (host: string, path: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ time: stamp, session: "s_0123456789ab", vault: "default", method: "GET", host, path, service: null, status: 200, latency_ms: 4, error: null, via: "tunnel", ...extra });
    appendFileSync(
      join(H.dir, "requests.log"),
      `${[
        entry("api.anthropic.com", "/v1/messages"),
        entry("oauth2.googleapis.com", "/token"),
        entry(`r-${TAG}.test`, "/v1/fail", { status: 502, error: "upstream_error", latency_ms: 41, reason: `cannot resolve r-${TAG}.test: no such host` }),
      ].join("\n")}\n`,
    );
    const pane = await openPane(80, 24);
    await startTui(pane);
    await pane.until("1 Proposals");
    await pane.keys("4");
    const screen = await pane.until(`r-${TAG}.test`, 3000);
    for (const l of screen.split("\n")) expect([...l].length, JSON.stringify(l)).toBeLessThanOrEqual(80);
    expect(screen).toMatch(/\sapi\.anthropic\.com\s/);
    expect(screen).toMatch(/\soauth2\.googleapis\.com\s/);
    expect(screen).toMatch(new RegExp(`\\sr-${TAG}\\.test\\s`));
    // The newest row is selected: its detail.
    await pane.keys("Enter");
    const detail = await pane.until("Request (any key goes back)");
    expect(detail).toMatch(/^\s+status\s+502/m);
    expect(detail).toMatch(/^\s+latency\s+41 ms/m);
    expect(detail).toMatch(/^\s+session\s+s_0123456789ab/m);
    expect(detail).toMatch(/^\s+error\s+upstream_error/m);
    expect(detail).toMatch(new RegExp(`^\\s+reason\\s+cannot resolve r-${TAG}\\.test: no such host`, "m"));
    await pane.keys("x");
    await pane.until((s) => s.includes("LATENCY") && !s.includes("any key goes back"));
    await pane.keys("q");
    await pane.until("EXITED=0");
    await pane.kill();
  }, 20_000);
});
