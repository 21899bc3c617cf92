// Makes a process that will hold the master password, the data key or a session token unreadable to
// other processes of the same user, as ssh-agent and gpg-agent do: on Linux prctl(PR_SET_DUMPABLE, 0)
// turns /proc/PID/{environ,mem,maps,fd} over to root and refuses ptrace (gdb -p) from the user; on
// macOS ptrace(PT_DENY_ATTACH). Core dumps are disabled (RLIMIT_CORE 0) so a crash writes no copy.
// It must run before the password is read. If it cannot be applied the command stops: running
// unhardened next to an agent with a shell would silently hand it the keys.
//
// The password from AGENT_VAULT_MASTER_PASSWORD is moved out of process.env here, so no child
// (an agent, an `exec:` source, a browser) inherits it. Deleting from process.env does not wipe
// the kernel's copy of the initial environment (/proc/PID/environ): non-dumpable is what makes
// that unreadable to the user.
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

/**
 * Takes AGENT_VAULT_MASTER_PASSWORD out of process.env (children never see it) and keeps it for
 * the unlock. Idempotent.
 */
function takePasswordFromEnv(): void {
  if (!("AGENT_VAULT_MASTER_PASSWORD" in process.env)) return;
  passwordFromEnv = process.env.AGENT_VAULT_MASTER_PASSWORD;
  delete process.env.AGENT_VAULT_MASTER_PASSWORD;
}

/** The password AGENT_VAULT_MASTER_PASSWORD carried at start (process.env no longer has it once hardened). */
export function masterPasswordFromEnv(): string | undefined {
  return applied ? passwordFromEnv : process.env.AGENT_VAULT_MASTER_PASSWORD;
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
  let result: Hardening;
  if (process.platform === "linux") result = await hardenLinux();
  else if (process.platform === "darwin") result = await hardenDarwin();
  else throw failed(`${process.platform} is not supported`);
  applied = result;
  takePasswordFromEnv();
  return result;
}

/** Commands that never read a password, a key or a token: help, version, shell completion. */
const HARMLESS = new Set(["--help", "-h", "help", "--version", "-V", "completion"]);

export function needsHardening(argv: readonly string[]): boolean {
  return !(argv.length === 0 || HARMLESS.has(argv[0]!));
}
