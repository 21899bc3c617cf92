// Makes a process that will hold the master password, the data key or a session token unreadable to
// other processes of the same user, as ssh-agent and gpg-agent do: on Linux prctl(PR_SET_DUMPABLE, 0)
// turns /proc/PID/{environ,mem,maps,fd} over to root and refuses ptrace (gdb -p) from the user; on
// macOS ptrace(PT_DENY_ATTACH). Core dumps are disabled (RLIMIT_CORE 0) so a crash writes no copy.
// It must run before the password is read. If it cannot be applied the command stops: running
// unhardened next to an agent with a shell would silently hand it the keys.
//
// The password from AGENT_VAULT_MASTER_PASSWORD is moved out of process.env here, so no child
// (an agent, an `exec:` source, a browser) inherits it. Deleting from process.env does not touch
// the initial environment block /proc/PID/environ shows: non-dumpable makes that unreadable to the
// user, and the value is also zeroed in place (through /proc/self/mem, before we stop being
// dumpable: afterwards that file belongs to root).
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { AgentVaultError } from "./errors.ts";

const PR_SET_DUMPABLE = 4;
const PR_GET_DUMPABLE = 3;
const RLIMIT_CORE = 4; // the same number on Linux and macOS
const PT_DENY_ATTACH = 31;

/** Names libc goes by: glibc, musl (x86_64 and arm64), macOS. */
const LIBC_CANDIDATES: Record<string, readonly string[]> = {
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"],
  darwin: ["/usr/lib/libSystem.B.dylib"],
};

export interface Hardening {
  readonly platform: string;
  readonly dumpable: boolean;
}

let applied: Hardening | null = null;
let passwordFromEnv: string | undefined;
let taken = false;

/**
 * Takes AGENT_VAULT_MASTER_PASSWORD out of process.env (children never see it) and keeps it for
 * the unlock. Idempotent.
 */
function takePasswordFromEnv(): void {
  if (taken) return;
  taken = true;
  if (!("AGENT_VAULT_MASTER_PASSWORD" in process.env)) return;
  passwordFromEnv = process.env.AGENT_VAULT_MASTER_PASSWORD;
  delete process.env.AGENT_VAULT_MASTER_PASSWORD;
  if (process.platform === "linux") wipeInitialEnvironment("AGENT_VAULT_MASTER_PASSWORD=");
}

/**
 * Zeroes the value of `prefix` in the environment block the kernel set up at exec, which
 * /proc/PID/environ shows and process.env no longer governs. Non-dumpable already hides the block
 * from the user; this leaves nothing for anyone who can still read it (root, a later mistake).
 * Best effort: a failure here leaves the non-dumpable protection in place.
 */
function wipeInitialEnvironment(prefix: string): void {
  try {
    const stat = readFileSync("/proc/self/stat", "latin1");
    // Fields 50 and 51 (env_start, env_end); the fields after the command name start at 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[47]);
    const end = Number(fields[48]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end <= start || end - start > 1 << 24) return;
    const fd = openSync("/proc/self/mem", "r+");
    try {
      const block = Buffer.alloc(end - start);
      readSync(fd, block, 0, block.length, start);
      const key = Buffer.from(prefix, "latin1");
      for (let at = 0; at < block.length; ) {
        const stop = block.indexOf(0, at) === -1 ? block.length : block.indexOf(0, at);
        if (block.subarray(at, at + key.length).equals(key) && stop > at + key.length) {
          writeSync(fd, Buffer.alloc(stop - at - key.length), 0, stop - at - key.length, start + at + key.length);
        }
        at = stop + 1;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    // see above
  }
}

/** The password AGENT_VAULT_MASTER_PASSWORD carried at start (process.env no longer has it once hardened). */
export function masterPasswordFromEnv(): string | undefined {
  return taken ? passwordFromEnv : process.env.AGENT_VAULT_MASTER_PASSWORD;
}

function failed(why: string): AgentVaultError {
  return new AgentVaultError("not_supported", `cannot protect this process's memory from other processes of the same user: ${why}`, {
    hint: "agent-vault refuses to hold keys in a process another program of yours could read; report this platform",
  });
}

async function loadLibc(symbols: Record<string, { args: string[]; returns: string }>): Promise<{ symbols: Record<string, (...args: unknown[]) => number>; close(): void }> {
  const ffi = await import("bun:ffi");
  const names = LIBC_CANDIDATES[process.platform] ?? [];
  let last = "no libc known for this platform";
  for (const name of names) {
    try {
      return ffi.dlopen(name, symbols as never) as never;
    } catch (error) {
      last = `${name}: ${(error as Error).message.split("\n")[0]}`;
    }
  }
  throw failed(`cannot load libc (${last})`);
}

async function hardenLinux(): Promise<Hardening> {
  const { ptr } = await import("bun:ffi");
  const libc = await loadLibc({
    prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
    setrlimit: { args: ["i32", "ptr"], returns: "i32" },
  });
  try {
    if (libc.symbols.prctl!(PR_SET_DUMPABLE, 0, 0, 0, 0) !== 0) throw failed("prctl(PR_SET_DUMPABLE) failed");
    // Read back: the flag is what the kernel checks for /proc and ptrace, so trust only its answer.
    if (libc.symbols.prctl!(PR_GET_DUMPABLE, 0, 0, 0, 0) !== 0) throw failed("the process is still dumpable");
    const zero = new BigUint64Array([0n, 0n]); // struct rlimit { rlim_cur, rlim_max }
    if (libc.symbols.setrlimit!(RLIMIT_CORE, ptr(zero)) !== 0) throw failed("setrlimit(RLIMIT_CORE) failed");
  } finally {
    libc.close();
  }
  return { platform: "linux", dumpable: false };
}

// Written to the documented interfaces; not exercised by the test suite, which runs on Linux.
async function hardenDarwin(): Promise<Hardening> {
  const { ptr } = await import("bun:ffi");
  const libc = await loadLibc({
    ptrace: { args: ["i32", "i32", "ptr", "i32"], returns: "i32" },
    setrlimit: { args: ["i32", "ptr"], returns: "i32" },
  });
  try {
    const zero = new BigUint64Array([0n, 0n]);
    if (libc.symbols.setrlimit!(RLIMIT_CORE, ptr(zero)) !== 0) throw failed("setrlimit(RLIMIT_CORE) failed");
    if (libc.symbols.ptrace!(PT_DENY_ATTACH, 0, null, 0) !== 0) throw failed("ptrace(PT_DENY_ATTACH) failed");
  } finally {
    libc.close();
  }
  return { platform: "darwin", dumpable: false };
}

/** Hardens this process once; throws (fail closed) where the platform's protection cannot be applied. */
export async function hardenProcess(): Promise<Hardening> {
  if (applied) return applied;
  // First, while /proc/self/mem is still ours to open: non-dumpable hands it to root.
  takePasswordFromEnv();
  let result: Hardening;
  if (process.platform === "linux") result = await hardenLinux();
  else if (process.platform === "darwin") result = await hardenDarwin();
  else throw failed(`${process.platform} is not supported`);
  applied = result;
  return result;
}

/** Commands that never read a password, a key or a token: help, version, shell completion. */
const HARMLESS = new Set(["--help", "-h", "help", "--version", "-V", "completion"]);

export function needsHardening(argv: readonly string[]): boolean {
  return !(argv.length === 0 || HARMLESS.has(argv[0]!));
}
