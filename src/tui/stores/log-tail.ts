// The request log, tailed: the last lines at start (read from the end of the file, so a 100,000-line
// log costs one read of its tail), then what is appended, polled. A fixed-size ring keeps memory
// flat however long the log grows.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { type RequestLogEntry } from "../../shared/log.ts";

const TAIL_BYTES = 256 * 1024;

export class LogTail {
  private entries: RequestLogEntry[] = [];
  private offset = 0;
  private partial = "";
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly path: string,
    private readonly capacity = 2000,
  ) {
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    this.offset = Math.max(0, size - TAIL_BYTES);
    this.readNew(this.offset > 0);
  }

  start(intervalMs = 300): void {
    this.timer = setInterval(() => {
      if (this.readNew(false)) for (const listener of this.listeners) listener();
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Reads appended bytes; true when entries were added. A shrunk file (rotation) starts over. */
  private readNew(skipFirstLine: boolean): boolean {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return false;
    }
    if (size < this.offset) {
      this.offset = 0;
      this.partial = "";
    }
    if (size === this.offset) return false;
    const fd = openSync(this.path, "r");
    const buffer = Buffer.alloc(Math.min(size - this.offset, 8 * 1024 * 1024));
    try {
      readSync(fd, buffer, 0, buffer.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset += buffer.length;
    const lines = (this.partial + buffer.toString("utf8")).split("\n");
    this.partial = lines.pop() ?? "";
    if (skipFirstLine) lines.shift();
    let added = false;
    for (const line of lines) {
      if (!line) continue;
      try {
        this.entries.push(JSON.parse(line) as RequestLogEntry);
        added = true;
      } catch {
        // a damaged line is skipped, not shown
      }
    }
    if (this.entries.length > this.capacity) this.entries = this.entries.slice(-this.capacity);
    if (added) this.entries = [...this.entries];
    return added;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): readonly RequestLogEntry[] => this.entries;
}
