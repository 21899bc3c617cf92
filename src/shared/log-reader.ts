// Reading the request log back (src/shared/log.ts writes it): its tail, and what is appended later,
// across rotations (requests.log is renamed to requests.log.1 when it grows past its cap). The file
// is the user's, so the agent can write it: every line is untrusted. Lines are parsed with a schema
// (a line that does not fit is skipped), nothing is followed through a link or blocks on a FIFO,
// and memory is bounded however big a planted file or line is.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import { z } from "zod";

const { O_NOFOLLOW, O_NONBLOCK, O_RDONLY } = constants;

/** At most this much of the end of each file is read for the tail: the writer rotates at 10 MiB. */
const MAX_TAIL_BYTES = 32 * 1024 * 1024;
/** A longer line is not one the writer made: it is dropped, not buffered. */
const MAX_LINE_BYTES = 64 * 1024;
const READ_CHUNK = 256 * 1024;

const Text = z.string().max(8192);

/**
 * One record as read back. Not `.strict()`: a newer writer may add fields (a failure's `reason`),
 * and this reader shows what it knows. Every string is still untrusted text for display.
 */
export const LogRecordSchema = z.object({
  time: z.iso.datetime({ offset: true }),
  session: Text.nullable().default(null),
  agent: Text.nullable().optional(),
  blocked: Text.nullable().optional(),
  vault: Text.nullable().default(null),
  method: Text,
  host: Text,
  path: Text,
  service: Text.nullable().default(null),
  status: z.number().int().min(0).max(999),
  latency_ms: z.number().min(0).max(1e9),
  error: Text.nullable().default(null),
  /** Why a request failed, in words (`cannot resolve example.com`), when the writer recorded it. */
  reason: Text.nullable().optional(),
  via: Text.optional(),
});
export type LogRecord = z.infer<typeof LogRecordSchema>;

export function parseLogLine(line: string): LogRecord | null {
  if (line.length === 0 || line.length > MAX_LINE_BYTES) return null;
  try {
    const parsed = LogRecordSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Opens a regular file without following a link or waiting on a FIFO; null when it is missing or is not one. */
function openRegular(path: string): { fd: number; ino: number; size: number } | null {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return null;
  }
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    return null;
  }
  return { fd, ino: stat.ino, size: stat.size };
}

/** Splits bytes into whole lines, keeping the unfinished end; an over-long line is dropped. */
class LineSplitter {
  private partial = "";
  private skipping = false;

  push(text: string): string[] {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    const lines: string[] = [];
    for (const part of parts) {
      if (this.skipping) this.skipping = false;
      else lines.push(part);
    }
    if (this.partial.length > MAX_LINE_BYTES) {
      this.partial = "";
      this.skipping = true;
    }
    return lines;
  }

  /** Bytes of a line not finished yet (a follower reads it again from its start). */
  get pendingBytes(): number {
    return this.skipping ? 0 : Buffer.byteLength(this.partial);
  }
}

/** The lines of one file, from its last MAX_TAIL_BYTES (the first, cut line skipped), unparsed. */
function readFileLines(path: string): { lines: string[]; ino: number; offset: number } | null {
  const file = openRegular(path);
  if (!file) return null;
  try {
    const start = Math.max(0, file.size - MAX_TAIL_BYTES);
    const splitter = new LineSplitter();
    const lines: string[] = [];
    let offset = start;
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    while (offset < file.size) {
      const n = readSync(file.fd, buffer, 0, Math.min(buffer.length, file.size - offset), offset);
      if (n === 0) break;
      offset += n;
      for (const line of splitter.push(buffer.toString("utf8", 0, n))) lines.push(line);
    }
    if (start > 0) lines.shift();
    return { lines, ino: file.ino, offset: offset - splitter.pendingBytes };
  } finally {
    closeSync(file.fd);
  }
}

export interface LogTail {
  /** The rotated file's lines, then the current file's, oldest first, not parsed yet (parseLogLine). */
  readonly lines: readonly string[];
  /** Where a follower goes on: the current file and the offset of its first unread byte. */
  readonly position: { readonly ino: number; readonly offset: number } | null;
}

export function readLog(path: string): LogTail {
  const older = readFileLines(`${path}.1`);
  const current = readFileLines(path);
  return {
    lines: [...(older?.lines ?? []), ...(current?.lines ?? [])],
    position: current ? { ino: current.ino, offset: current.offset } : null,
  };
}

/**
 * The last `count` records of the tail that `keep` accepts, oldest first. Parsed from the end, so
 * the usual `log` (the last 50) reads a 10 MiB log's last lines only.
 */
export function lastRecords(tail: LogTail, keep: (record: LogRecord) => boolean, count: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = tail.lines.length - 1; i >= 0 && out.length < count; i--) {
    const record = parseLogLine(tail.lines[i]!);
    if (record && keep(record)) out.push(record);
  }
  return out.reverse();
}

/** One open log file being followed. */
class FollowedFile {
  private readonly splitter = new LineSplitter();
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK);

  private constructor(
    private readonly fd: number,
    readonly ino: number,
    private offset: number,
  ) {}

  static open(path: string, offset: number): FollowedFile | null {
    const file = openRegular(path);
    return file ? new FollowedFile(file.fd, file.ino, Math.min(offset, file.size)) : null;
  }

  /** Reads to the end of the file; a file that shrank (truncated in place) is read from its start. */
  drain(onRecord: (record: LogRecord) => void): void {
    if (fstatSync(this.fd).size < this.offset) this.offset = 0;
    for (;;) {
      const n = readSync(this.fd, this.buffer, 0, this.buffer.length, this.offset);
      if (n === 0) return;
      this.offset += n;
      for (const line of this.splitter.push(this.buffer.toString("utf8", 0, n))) {
        const record = parseLogLine(line);
        if (record) onRecord(record);
      }
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

function inodeAt(path: string): number | null {
  try {
    return lstatSync(path).ino;
  } catch {
    return null;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/**
 * Follows the log from `position` until `signal` aborts, calling `onRecord` for each new record.
 * Rotation-safe: the file stays open, so when requests.log is renamed to requests.log.1 the rest
 * of it is still read to its end before the new requests.log is opened from its start.
 */
export async function followLog(path: string, position: LogTail["position"], onRecord: (record: LogRecord) => void, signal: AbortSignal, intervalMs = 250): Promise<void> {
  let file = FollowedFile.open(path, position?.offset ?? 0);
  // Rotated between the read and this open: what was read is requests.log.1 now; start the new file.
  if (file && position && file.ino !== position.ino) {
    file.close();
    file = FollowedFile.open(path, 0);
  }
  try {
    while (!signal.aborted) {
      file?.drain(onRecord);
      const ino = inodeAt(path);
      if (ino !== null && ino !== file?.ino) {
        // Renamed away (or made): the old file's last lines first, then the new one from its start.
        file?.drain(onRecord);
        file?.close();
        file = FollowedFile.open(path, 0);
        file?.drain(onRecord);
      }
      await sleep(intervalMs, signal);
    }
    // Stopped: what was written up to now is still read (a follower that stops when its writer
    // did must not miss the last lines).
    if (!file) file = FollowedFile.open(path, position && inodeAt(path) === position.ino ? position.offset : 0);
    file?.drain(onRecord);
  } finally {
    file?.close();
  }
}
