// File I/O for the state file (docs/vault-format.md section 7): the inter-process lock and the
// atomic write. Readers never lock: a rename is atomic, so they see the old file or the new one.
import fs, { lstatSync, readdirSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import lockfile from "proper-lockfile";
import { AgentVaultError } from "../shared/errors.ts";
import { ensureDataDirectory, fsyncDirectory, readFileNoFollow, writeFileAtomic } from "../shared/files.ts";

// The file primitives live in src/shared/files.ts (no symlink is ever followed); re-exported for
// the vault's callers.
export { fsyncDirectory, writeFileAtomic };

// A holder refreshes the lock every second; one untouched for 4 s belongs to a dead process
// (SIGKILL, power loss) and may be taken over. Writers hold the lock for milliseconds.
const LOCK_STALE_MS = 4_000;
const LOCK_UPDATE_MS = 1_000;

function lockTimeoutMs(): number {
  const fromEnv = Number(process.env.AGENT_VAULT_LOCK_TIMEOUT_MS);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 10_000;
}

// The lock is a directory made with mkdir, which never follows a link. proper-lockfile would stat
// and touch (utimes) it through one, so it gets the lstat/lutimes twins: a link planted at the lock
// path is never followed, not even to change a time stamp.
const NO_FOLLOW_FS = { mkdir: fs.mkdir, rmdir: fs.rmdir, rmdirSync: fs.rmdirSync, realpath: fs.realpath, stat: fs.lstat, utimes: fs.lutimes };

/** A symlink or file where the lock directory belongs was planted (locks are directories): removed. */
function removePlantedLock(lockPath: string): void {
  try {
    if (lstatSync(lockPath).isDirectory()) return;
    unlinkSync(lockPath);
  } catch {
    // Missing (the usual case), or already removed by another process.
  }
}

export interface HeldLock {
  /** True once another process took the lock over (we stalled past the stale time). */
  isCompromised(): boolean;
}

/** Runs fn while holding the lock on `file`; gives up with lock_timeout after the deadline. */
export async function withFileLock<T>(file: string, lockPath: string, fn: (lock: HeldLock) => Promise<T> | T): Promise<T> {
  const deadline = Date.now() + lockTimeoutMs();
  let compromised = false;
  let release: (() => Promise<void>) | undefined;
  for (let attempt = 0; release === undefined; attempt++) {
    removePlantedLock(lockPath);
    try {
      release = await lockfile.lock(file, {
        lockfilePath: lockPath,
        fs: NO_FOLLOW_FS,
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        onCompromised: () => {
          compromised = true;
        },
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ELOCKED") {
        throw new AgentVaultError("io_error", `cannot lock ${file}: ${(error as Error).message}`);
      }
      if (Date.now() >= deadline) {
        throw new AgentVaultError("lock_timeout", `the vault is locked by another process (${lockPath}) and stayed locked for ${(lockTimeoutMs() / 1000).toFixed(1)}s`);
      }
      await Bun.sleep(Math.min(5 + attempt * 5, 50) + Math.random() * 10);
    }
  }
  try {
    return await fn({ isCompromised: () => compromised });
  } finally {
    await release().catch(() => undefined);
  }
}

/** Removes temp files a killed writer left behind. Call only while holding the lock. */
export function removeStrayTempFiles(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix) && name.endsWith(".tmp")) {
      try {
        unlinkSync(join(dir, name));
      } catch {
        // Already gone: another cleanup won.
      }
    }
  }
}

/** Creates the directory 0700, and tightens an existing one: it will hold the vault. */
export function ensurePrivateDirectory(dir: string): void {
  ensureDataDirectory(dir);
}

/** The state file's bytes, never through a planted link or FIFO; null when missing. */
export function readFileOrNull(path: string): Buffer | null {
  return readFileNoFollow(path);
}

/** A cheap identity of a file's current version, to notice another process's write. */
export function fileVersion(path: string): string | null {
  try {
    const s = lstatSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return null;
  }
}
