// Every file agent-vault writes in its data directory is opened here. The agent runs as the same
// user and can plant a symbolic link, a hard link or a FIFO under any name in that directory; the
// broker must never write through one (into ~/.bashrc, say) nor hang reading one. So: no open
// follows a symlink (O_NOFOLLOW), appends refuse anything but a regular file with one link, new
// files are made under a fresh name with O_EXCL and renamed into place (a rename replaces a planted
// link, it does not follow it), modes are set exactly, and the directory itself must be a real
// directory of this user that nobody else can write to.
import { randomBytes } from "node:crypto";
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { AgentVaultError } from "./errors.ts";

const { O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY } = constants;

/** Private files; only the CA certificate and bundle handed to agents are 0644. */
export const PRIVATE_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

const isRoot = () => process.getuid?.() === 0;

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/**
 * Refuses a data directory another user or a link could redirect: it must be a directory itself
 * (not a symlink to one), owned by this user, and writable by nobody else. Missing is fine (init
 * makes it). Root may use any user's directory: tests run as root over the agent user's.
 */
export function checkDataDirectory(dir: string): void {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return;
    throw new AgentVaultError("io_error", `cannot read the data directory ${dir}: ${(error as Error).message}`);
  }
  const refuse = (why: string, hint: string) => {
    throw new AgentVaultError("io_error", `the data directory ${dir} ${why}; agent-vault refuses to use it`, { hint });
  };
  if (stat.isSymbolicLink()) refuse("is a symbolic link", "set AGENT_VAULT_HOME to the directory it points to (realpath), after checking it is yours");
  if (!stat.isDirectory()) refuse("is not a directory", "move it away, or set AGENT_VAULT_HOME to another path");
  if (!isRoot() && stat.uid !== process.getuid?.()) refuse(`is owned by uid ${stat.uid}, not by you`, "use a directory of your own (AGENT_VAULT_HOME)");
  if ((stat.mode & 0o022) !== 0) refuse("is writable by group or others", `chmod 700 ${dir}`);
}

/** Creates the data directory 0700 (parents too), checks it, and tightens a readable one to 0700. */
export function ensureDataDirectory(dir: string): void {
  checkDataDirectory(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkDataDirectory(dir);
  // fchmod on the directory opened without following links: the checked directory is the one changed.
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/** Removes what was planted at `path` (the link itself, never its target). */
function removePlanted(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw new AgentVaultError("io_error", `${path} is not a regular file and cannot be removed: ${(error as Error).message}`);
  }
}

/**
 * Opens `path` for appending, made with `mode` if missing. A symlink, a hard link to another file
 * (more than one link), a FIFO or a device at that name is removed and a new file made in its
 * place: appends land only in a file that is ours alone. Returns the file descriptor.
 */
export function openAppendPrivate(path: string, mode = PRIVATE_MODE): number {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      // O_NONBLOCK: opening a planted FIFO must not wait for a reader.
      fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode);
    } catch (error) {
      if (errnoOf(error) !== "ELOOP" && errnoOf(error) !== "ENXIO") throw new AgentVaultError("io_error", `cannot open ${path}: ${(error as Error).message}`);
      removePlanted(path);
      continue;
    }
    const stat = fstatSync(fd);
    if (stat.isFile() && stat.nlink === 1) {
      if ((stat.mode & 0o777) !== mode) fchmodSync(fd, mode);
      return fd;
    }
    closeSync(fd);
    removePlanted(path);
  }
  throw new AgentVaultError("io_error", `${path} keeps being replaced by a link or a special file; refusing to write through it`);
}

/** Appends `text` to `path` through openAppendPrivate. */
export function appendPrivate(path: string, text: string, mode = PRIVATE_MODE): void {
  const fd = openAppendPrivate(path, mode);
  try {
    const bytes = Buffer.from(text);
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
  } finally {
    closeSync(fd);
  }
}

/**
 * Temp file (a fresh random name, O_EXCL, never through a link), exact mode, fsync, rename over the
 * target, fsync the directory: the new file or the old, never half, and a link planted at the
 * target is replaced, not followed.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array, mode = PRIVATE_MODE): void {
  const dir = dirname(path);
  let tmp = "";
  let fd = -1;
  for (let attempt = 0; fd === -1; attempt++) {
    tmp = join(dir, `${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    try {
      fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    } catch (error) {
      // Something already holds that name (a planted link): pick another, never open it.
      if (errnoOf(error) !== "EEXIST" || attempt >= 4) throw new AgentVaultError("io_error", `cannot create ${tmp}: ${(error as Error).message}`);
    }
  }
  try {
    fchmodSync(fd, mode);
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDirectory(dir);
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a regular file without following a symlink and without blocking on a FIFO; null when it is
 * missing. Anything else at that name is an io_error that says what it is.
 */
export function readFileNoFollow(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return null;
    if (errnoOf(error) === "ELOOP") throw new AgentVaultError("io_error", `${path} is a symbolic link; agent-vault does not follow links in its data directory`, { hint: `remove it: rm ${path}` });
    throw new AgentVaultError("io_error", `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new AgentVaultError("io_error", `${path} is not a regular file`, { hint: `remove it: rm ${path}` });
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.max(64 * 1024, stat.size + 1));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}
