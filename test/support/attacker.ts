// Attacks run as an unprivileged user. CI runs as root, and root bypasses every same-user
// protection (file modes, /proc, ptrace, O_NOFOLLOW's point): so when the tests run as root, the
// broker and the attacker both run as AGENT_USER, made here with useradd if it is missing. When the
// tests already run unprivileged they run as themselves.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";

export const AGENT_USER = "av-agent";

export interface UserIds {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

let cached: UserIds | null | undefined;

/** The unprivileged user the attacks run as, or null when the tests are not root. */
export function agentUser(): UserIds | null {
  if (cached !== undefined) return cached;
  if (process.getuid?.() !== 0) return (cached = null);
  const lookup = () => {
    try {
      const uid = Number(execFileSync("id", ["-u", AGENT_USER], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
      const gid = Number(execFileSync("id", ["-g", AGENT_USER], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
      return { uid, gid, name: AGENT_USER };
    } catch {
      return null;
    }
  };
  let ids = lookup();
  if (!ids) {
    // .ci/run makes the user too; this covers a developer running one test file as root.
    execFileSync("useradd", ["--create-home", "--shell", "/bin/bash", "--user-group", AGENT_USER], { stdio: "ignore" });
    ids = lookup();
  }
  if (!ids) throw new Error(`cannot create the unprivileged test user ${AGENT_USER}`);
  return (cached = ids);
}

/** argv run as the agent user (unchanged when the tests are not root). */
export function asAgent(argv: readonly string[]): string[] {
  const user = agentUser();
  if (!user) return [...argv];
  return ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--inh-caps=-all", "--", ...argv];
}

/** Gives a tree to the agent user (after the test process, as root, wrote into it). */
export function giveToAgent(path: string): void {
  const user = agentUser();
  if (!user) return;
  const walk = (p: string) => {
    const stat = lstatSync(p);
    chownSync(p, user.uid, user.gid);
    if (stat.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
  };
  walk(path);
}

/** Lets the agent user reach a path the test process made (a temp dir is 0700 root). */
export function openToAgent(path: string): void {
  if (agentUser()) chmodSync(path, 0o755);
}

/**
 * The binary at a path the agent user can execute. A checkout in a 0700 directory (a `mktemp -d`
 * clone, /root) is out of its reach, and so is the binary `run` starts again inside the sandbox: a
 * copy is then made once in a root-owned, world-readable directory and used instead.
 */
export function agentBinary(binary: string): string {
  if (!agentUser()) return binary;
  for (let dir = dirname(binary); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) break;
    if (dir === "/") return binary;
  }
  const stat = statSync(binary);
  const dir = join("/tmp", "av-agent-bin", `${Math.round(stat.mtimeMs)}-${stat.size}`);
  const copy = join(dir, "agent-vault");
  if (!existsSync(copy)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(join("/tmp", "av-agent-bin"), 0o755);
    chmodSync(dir, 0o755);
    const partial = `${copy}.${process.pid}.tmp`;
    copyFileSync(binary, partial);
    chmodSync(partial, 0o755);
    renameSync(partial, copy);
  }
  return copy;
}

/** For the attackers' Python clients: `head(s)` reads a socket up to the end of a response head. */
export const PY_READ_HEAD = `def head(s):
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        d = s.recv(65536)
        if not d: break
        data += d
    return data.decode("latin1")`;

/** For the attackers' Python clients: `code_of(text)` is a response head's X-Agent-Vault-Error, or None. */
export const PY_ERROR_CODE = `def code_of(text):
    for line in text.split("\\r\\n"):
        if line.lower().startswith("x-agent-vault-error:"): return line.split(":", 1)[1].strip()
    return None`;
