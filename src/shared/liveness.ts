// Whether a process, named by its pid and its start time, still runs. A session made by `run`
// records its run's identity, and every process that honours sessions asks this before accepting
// the token: the session ends the moment its run does, however it ends (SIGKILL included), and in
// every server of the data directory, even one started after the run died, with nothing written.
// The start time (Linux: field 22 of /proc/PID/stat, clock ticks since boot) makes a recycled pid
// a different process. /proc/PID/stat stays world-readable when the run is non-dumpable.
import { readFileSync } from "node:fs";

export interface ProcessIdentity {
  readonly pid: number;
  /** Linux: ticks since boot at which it started; null where the platform has no cheap answer. */
  readonly start: string | null;
}

/** How long an "alive" answer is reused: bounds the /proc reads of a busy proxy. A death is kept. */
const ALIVE_FOR_MS = 200;
const alive = new Map<string, number>();
const dead = new Set<string>();

/** Field 22 of /proc/PID/stat. The command name (field 2) may hold spaces and parentheses: split after its last ')'. */
export function readStartTime(pid: number): string | null {
  if (process.platform !== "linux") return null;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) && fields[0] !== "Z" && fields[0] !== "X" ? start : null;
}

export function currentProcessIdentity(): ProcessIdentity {
  return { pid: process.pid, start: readStartTime(process.pid) };
}

function probe(identity: ProcessIdentity): boolean {
  if (process.platform === "linux") {
    // A zombie (exited, not yet reaped) reads as gone: readStartTime answers null for it.
    return identity.start !== null && readStartTime(identity.pid) === identity.start;
  }
  // Elsewhere: the pid exists and is ours. EPERM means another user's process, so not our run.
  try {
    process.kill(identity.pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function isProcessRunning(identity: ProcessIdentity): boolean {
  const now = Date.now();
  const key = `${identity.pid}:${identity.start}`;
  if (dead.has(key)) return false;
  const checked = alive.get(key);
  if (checked !== undefined && now - checked < ALIVE_FOR_MS) return true;
  if (!probe(identity)) {
    alive.delete(key);
    dead.add(key);
    return false;
  }
  alive.set(key, now);
  return true;
}

/** Whether a process with this pid exists (one of another user's counts: kill answers EPERM). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
