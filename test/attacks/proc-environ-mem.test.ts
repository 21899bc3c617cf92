// Attack: the agent reads its broker's memory. Under `agent-vault run`, as the same unprivileged
// user, after one proxied request (so the credential has been injected), it reads
// /proc/$PPID/environ, /proc/$PPID/mem through /proc/$PPID/maps, every /proc/*/environ and
// /proc/*/mem of the user (the server included), and tries ptrace: gdb -p $PPID and
// ptrace(PTRACE_ATTACH) through ctypes. Neither the master password (from
// AGENT_VAULT_MASTER_PASSWORD, or from --password-stdin) nor the credential value may be in
// anything it read. A control process of the user's (dumpable) shows the same reads do work. And
// the password is gone from run's kernel-kept environment block even for root.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openToAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";
import { addBearerService, agentHome, fileScene } from "../support/scene.ts";

const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const CONTROL = `control-${randomBytes(12).toString("hex")}`;
const HOST = "api.svc.test";
const scene = fileScene("av-proc-environ-mem-", { openToAgent: true, absent: [SECRET, PASSWORD] });
const { scratch, cleanups, outputs } = scene;

// Runs with --no-sandbox: the hardening must hold on its own (without the sandbox, as on a machine
// with no user namespaces); inside the sandbox the broker's processes are not even visible
// (test/attacks/sandbox-escape.test.ts).
// The agent. It prints a JSON report that names what it found, never the values themselves.
const ATTACKER = `
import ctypes, json, os, re, subprocess, sys, time
# The canaries come in a file, hex-encoded: passed as arguments they would sit in the argv of
# every process that started this one (the sandbox's init too), which is not the broker's leak.
with open(sys.argv[1]) as f:
    given = json.load(f)
password, secret, control = (bytes.fromhex(given[k]) for k in ("password", "secret", "control"))
needles = {"password": password, "secret": secret, "control": control}
me, ppid = os.getpid(), os.getppid()
report = {"ppid": ppid, "found": [], "environ_read": [], "mem_read": {}, "denied": [], "proxied": None}

# One request through the proxy, so the broker has injected the credential.
r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "https://${HOST}/v1/x"], capture_output=True, text=True)
report["proxied"] = r.stdout

# A dumpable process of the user's, holding the control canary: the reads below must work on it.
ctl = subprocess.Popen(["sleep", "60"], env={"CONTROL": control.decode(), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
time.sleep(0.2)

def note(pid, where, data):
    for name, needle in needles.items():
        if needle in data:
            report["found"].append({"pid": pid, "where": where, "needle": name})

def read_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError as e:
        report["denied"].append({"pid": pid, "file": "environ", "errno": e.errno})
        return
    report["environ_read"].append(pid)
    note(pid, "environ", data)

def read_mem(pid, cap=1 << 30):
    total = 0
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", 0)
    except OSError as e:
        report["denied"].append({"pid": pid, "file": "maps/mem", "errno": e.errno})
        return
    tail = b""
    for line in maps:
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
            continue
        addr = lo
        while addr < hi and total < cap:
            n = min(1 << 20, hi - addr)
            try:
                mem.seek(addr)
                chunk = mem.read(n)
            except (OSError, OverflowError, ValueError):
                break
            if not chunk:
                break
            total += len(chunk)
            note(pid, "mem", tail + chunk)
            tail = chunk[-128:]
            addr += len(chunk)
    mem.close()
    report["mem_read"][str(pid)] = total

uid = os.getuid()
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:
    if pid == me:
        continue
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid and pid != ppid:
            continue
    except OSError:
        continue
    read_environ(pid)
    read_mem(pid)
# Our own environment: run must not have passed the password on.
with open("/proc/self/environ", "rb") as f:
    data = f.read()
for name in ("password", "secret"):
    if needles[name] in data:
        report["found"].append({"pid": me, "where": "own environ", "needle": name})

# ptrace: gdb if installed, and the syscall itself.
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
def attach(pid):
    rc = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    err = ctypes.get_errno()
    if rc == 0:
        os.waitpid(pid, 0)
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    return 0 if rc == 0 else err
report["ptrace_parent"] = attach(ppid)
report["ptrace_control"] = attach(ctl.pid)
try:
    g = subprocess.run(["gdb", "-nx", "-batch", "-p", str(ppid), "-ex", "info inferiors"], capture_output=True, timeout=60)
    out = g.stdout + g.stderr
    note(ppid, "gdb", out)
    report["gdb"] = {"attached": b"Attaching to process" in out and b"ptrace: Operation not permitted" not in out and b"Could not attach" not in out, "said": out.decode("latin1")[-400:]}
except FileNotFoundError:
    report["gdb"] = None
ctl.kill()
print(json.dumps(report))
`;

interface Report {
  ppid: number;
  found: { pid: number; where: string; needle: string }[];
  environ_read: number[];
  mem_read: Record<string, number>;
  denied: { pid: number; file: string; errno: number }[];
  proxied: string;
  ptrace_parent: number;
  ptrace_control: number;
  gdb: { attached: boolean; said: string } | null;
}

let U: Upstream;
let ENV: Record<string, string>;
let script: string;
let needlesFile: string;

async function prepareHome(): Promise<TempHome> {
  const home = await agentHome(scene, { init: false });
  const init = await home.run(["init"], { env: { AGENT_VAULT_MASTER_PASSWORD: PASSWORD } });
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  await addBearerService(
    recordingCli(
      () => home,
      () => ({ ...ENV, AGENT_VAULT_MASTER_PASSWORD: PASSWORD }),
      outputs,
    ),
    SECRET,
    HOST,
  );
  return home;
}

function parseReport(stdout: string): Report {
  const line = stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as Report;
}

function expectNothingRead(report: Report, upstreamHits: number): void {
  // The request went through and the credential reached the upstream (so it was in the broker).
  expect(report.proxied).toBe("200");
  expect(upstreamHits).toBeGreaterThan(0);
  // The control shows the method reads a same-user process: its environ and memory, and ptrace.
  expect(report.found.filter((f) => f.needle === "control").map((f) => f.where)).toContain("environ");
  expect(report.found.filter((f) => f.needle === "control").map((f) => f.where)).toContain("mem");
  expect(report.ptrace_control).toBe(0);
  // The broker: nothing.
  expect(report.found.filter((f) => f.needle !== "control")).toEqual([]);
  expect(report.environ_read).not.toContain(report.ppid);
  expect(report.mem_read[String(report.ppid)]).toBeUndefined();
  expect(report.ptrace_parent).not.toBe(0);
  if (Bun.which("gdb")) expect(report.gdb).not.toBeNull();
  if (report.gdb) expect(report.gdb.attached, report.gdb.said).toBe(false);
}

beforeAll(async () => {
  ({ upstream: U, env: ENV } = await agentUpstream(scratch, HOST, cleanups));
  script = join(scratch, "attacker.py");
  writeFileSync(script, ATTACKER);
  openToAgent(script);
  needlesFile = join(scratch, "needles.json");
  const hex = (t: string) => Buffer.from(t).toString("hex");
  writeFileSync(needlesFile, JSON.stringify({ password: hex(PASSWORD), secret: hex(SECRET), control: hex(CONTROL) }));
  openToAgent(needlesFile);
}, 60_000);

function hitsWithSecret(since: number): number {
  return U.received.slice(since).filter((r) => String(r.headers.authorization ?? "") === `Bearer ${SECRET}`).length;
}

describe("the broker's memory and environment are closed to the agent", () => {
  test("password from AGENT_VAULT_MASTER_PASSWORD, a separate server and run: nothing of either is readable", async () => {
    const home = await prepareHome();
    const server: Server = await startServer(home, { ...ENV, AGENT_VAULT_MASTER_PASSWORD: PASSWORD }, cleanups);
    const mark = U.received.length;
    const proc = Bun.spawn(home.argv(["run", "--no-sandbox", "--", "/usr/bin/python3", script, needlesFile]), {
      env: cleanEnv({ ...home.env, ...ENV, AGENT_VAULT_MASTER_PASSWORD: PASSWORD }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const output = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    // Once run has started its child, even root (this test) finds no password in the environment
    // block the kernel keeps for it: run wiped it, not only its process.env.
    await waitUntil("run's child", () => existsSync(`/proc/${proc.pid}/task/${proc.pid}/children`) && readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "latin1").trim() !== "", 20_000);
    const block = readFileSync(`/proc/${proc.pid}/environ`, "latin1");
    expect(block).toContain("AGENT_VAULT_HOME=");
    expect(block).not.toContain(PASSWORD);
    const [stdout, stderr, code] = await output;
    outputs.push(stdout, stderr);
    expect(code, stderr).toBe(0);
    const report = parseReport(stdout);
    expectNothingRead(report, hitsWithSecret(mark));
    // The server is a process of the user too: it was listed and refused.
    expect(report.denied.map((d) => d.pid)).toContain(server.live.proc.pid);
    expect(report.environ_read).not.toContain(server.live.proc.pid);
  }, 120_000);

  test("password from --password-stdin, a self-served run: nothing of either is readable", async () => {
    const home = await prepareHome();
    const mark = U.received.length;
    const env = cleanEnv({ ...home.env, ...ENV, AGENT_VAULT_MASTER_PASSWORD: undefined });
    const proc = Bun.spawn(home.argv(["run", "--no-sandbox", "--password-stdin", "--", "/usr/bin/python3", script, needlesFile]), {
      env,
      stdin: new TextEncoder().encode(`${PASSWORD}\n`),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    outputs.push(stdout, stderr);
    expect(code, stderr).toBe(0);
    expectNothingRead(parseReport(stdout), hitsWithSecret(mark));
  }, 120_000);
});
