// The audit trail (docs/vault-format.md section 8): every decision as one JSON line in audit.log,
// each carrying its sequence number, the SHA-256 of the line before it and an HMAC under the audit
// key, a random key sealed in the vault file. The agent can write this file (same user) but cannot
// MAC a line, so a changed, forged, removed, reordered or inserted record breaks the chain; the
// chain's head is anchored in the vault file, whose own MAC it cannot forge either, so a cut tail
// shows as well. Only a tail written after the last anchor can be cut unseen, and only when no
// running writer remembers it (docs/security.md, "Audit trail").
//
// Cost: record() only queues (the proxy calls it on every request). Lines are MACed and appended
// about once a second under the vault lock, and the head is anchored in the vault file at most
// every few seconds, or in the same write as any vault change.
import { chmodSync, closeSync, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, readSync, renameSync, writeSync, constants } from "node:fs";
import { join } from "node:path";
import { openAppendPrivate, readFileNoFollow } from "../shared/files.ts";
import { type HomePaths } from "../shared/paths.ts";
import { displaySafe } from "../shared/text.ts";
import { type AuditAnchor, type AuditEvent, type AuditRecord, AuditRecordSchema } from "./audit.schema.ts";
import { constantTimeEqual, hmacSha256, randomHex, sha256Hex } from "./crypto.ts";
import { type Body } from "./state.schema.ts";
import { withFileLock } from "./store.ts";

export const AUDIT_FILE = "audit.log";
/** A rotated file is named by the last record it holds, so names sort in chain order. */
const ROTATED_FILE = /^audit\.(\d{12})\.log$/;
/** The `prev` of record 1. */
export const GENESIS_HASH = "0".repeat(64);
const MAC_FIELD = /,"mac":"([0-9a-f]{64})"\}$/;

const FLUSH_MS = 1_000;
/** Anything but an allowed request (a refusal, a held request's step) is written this soon. */
const PROMPT_FLUSH_MS = 5;
const DEFAULT_ANCHOR_MS = 5_000;
/** The longest anchor interval the environment may ask for: a longer one widens the cut window. */
const MAX_ANCHOR_MS = 60_000;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Records queued at most while the disk refuses writes; past it they are counted, not kept. */
const MAX_PENDING = 100_000;
/** The longest line a writer reads back to find the chain's tail. */
const TAIL_BYTES = 512 * 1024;

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** What the trail needs from the vault: the lock's paths, the state, the key, and a write. */
export interface AuditHost {
  readonly paths: HomePaths;
  read(): Body;
  /** The audit key; with `create`, one is made and sealed into `body` when it has none. */
  auditKey(body: Body, create: boolean): Buffer | null;
  update<T>(change: (body: Body) => T): Promise<T>;
}

interface Queued {
  readonly time: string;
  readonly event: AuditEvent;
}

/** Where this process's last line went, to notice it was cut or replaced. */
interface Written {
  readonly ino: number;
  readonly offset: number;
  readonly line: string;
}

export function auditLogPath(paths: HomePaths): string {
  return join(paths.home, AUDIT_FILE);
}

function anchorIntervalMs(): number {
  const fromEnv = Number(process.env.AGENT_VAULT_AUDIT_ANCHOR_MS);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? Math.min(fromEnv, MAX_ANCHOR_MS) : DEFAULT_ANCHOR_MS;
}

function maxFileBytes(): number {
  const fromEnv = Number(process.env.AGENT_VAULT_AUDIT_MAX_BYTES);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_MAX_BYTES;
}

/** The line for one record after `head`: the MAC covers every other byte of the line. */
export function sealRecord(key: Buffer, head: AuditHead, queued: Queued): { line: string; head: AuditHead } {
  const seq = head.seq + 1;
  const unsigned = JSON.stringify({ seq, time: queued.time, ...queued.event, prev: head.hash });
  const mac = hmacSha256(key, Buffer.from(unsigned, "utf8")).toString("hex");
  const line = `${unsigned.slice(0, -1)},"mac":"${mac}"}`;
  return { line, head: { seq, hash: sha256Hex(line) } };
}

/** What the schema finds wrong with a parsed line, in words: an unexpected field by its name. */
function schemaProblem(json: unknown): string | null {
  const parsed = AuditRecordSchema.safeParse(json);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.slice(0, 3).map((k) => `"${displaySafe(k.slice(0, 64))}"`);
    return `has an unexpected field ${names.join(", ")}${issue.keys.length > 3 ? ", …" : ""}`;
  }
  return `is not a valid record (${displaySafe(issue.path.join("."))}: ${issue.message})`;
}

/**
 * Why a line with no MAC at its end is not a record: a record's fields with something added after
 * the MAC (or the MAC moved) is named by the schema; anything else is not an audit record at all.
 */
function unsealedProblem(line: string): string {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return "is not an audit record (it has no MAC)";
  }
  if (json === null || typeof json !== "object" || !("mac" in json)) return "is not an audit record (it has no MAC)";
  return schemaProblem(json) ?? "does not end with its MAC, as every record written here does";
}

/** A line's record if its MAC holds and it parses; else what is wrong with it, in words. */
export function openRecord(key: Buffer, line: string): { record: AuditRecord } | { problem: string } {
  const mac = MAC_FIELD.exec(line);
  if (!mac) return { problem: unsealedProblem(line) };
  const unsigned = `${line.slice(0, line.length - mac[0].length)}}`;
  if (!constantTimeEqual(hmacSha256(key, Buffer.from(unsigned, "utf8")), Buffer.from(mac[1]!, "hex"))) {
    return { problem: "fails its MAC (changed, or written without the audit key)" };
  }
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { problem: "is not JSON" };
  }
  // The MAC already vouches that our own writer made this line; the full schema (about 20 us a
  // record) is left to the few records that fail this quick look, so a long log verifies fast.
  const r = json as Partial<AuditRecord> | null;
  if (r !== null && typeof r === "object" && Number.isSafeInteger(r.seq) && typeof r.time === "string" && typeof r.kind === "string" && typeof r.prev === "string") return { record: r as AuditRecord };
  const parsed = AuditRecordSchema.safeParse(json);
  if (!parsed.success) return { problem: schemaProblem(json)! };
  return { record: parsed.data };
}

/** The audit files in chain order: rotated ones by the last record they hold, then audit.log. */
export function auditFiles(paths: HomePaths): string[] {
  let names: string[];
  try {
    names = readdirSync(paths.home);
  } catch {
    return [];
  }
  const rotated = names.filter((n) => ROTATED_FILE.test(n)).sort();
  return [...rotated, ...(names.includes(AUDIT_FILE) ? [AUDIT_FILE] : [])].map((n) => join(paths.home, n));
}

/** Reads `length` bytes at `position`, never through a link; null when that is not possible. */
function readAt(path: string, position: number, length: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const out = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return out.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The last complete line of a file (null when it is empty, unreadable or ends mid-line). */
function lastLine(path: string): string | null {
  let size: number;
  try {
    const st = lstatSync(path);
    if (!st.isFile()) return null;
    size = st.size;
  } catch {
    return null;
  }
  if (size === 0) return null;
  const start = Math.max(0, size - TAIL_BYTES);
  const bytes = readAt(path, start, size - start);
  if (bytes === null || bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a) return null;
  const text = bytes.subarray(0, bytes.length - 1).toString("utf8");
  const cut = text.lastIndexOf("\n");
  if (cut === -1 && start > 0) return null;
  return text.slice(cut + 1);
}

/**
 * What the agent may have planted at audit.log that would stop every append (openAppendPrivate
 * already replaces links and FIFOs): a directory is moved aside, a file of ours made read-only is
 * made writable again.
 */
function clearWayFor(path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isDirectory()) renameSync(path, `${path}.${randomHex(4)}.planted`);
    else if (st.isFile() && (st.mode & 0o600) !== 0o600) chmodSync(path, 0o600);
  } catch {
    // Missing (the usual first time), or moved meanwhile: the open below says what is wrong.
  }
}

/**
 * A crash in the middle of an append leaves a partial last line. It is no record (it has no whole
 * MAC), and appending after it would glue the next record to it: it is cut off, lock held.
 */
function trimPartialLine(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size === 0) return;
    const start = Math.max(0, st.size - TAIL_BYTES);
    const tail = Buffer.alloc(st.size - start);
    readSync(fd, tail, 0, tail.length, start);
    if (tail[tail.length - 1] === 0x0a) return;
    const cut = tail.lastIndexOf(0x0a);
    if (cut === -1 && start > 0) return; // a "line" longer than any record: left for verify to name
    ftruncateSync(fd, start + cut + 1);
  } finally {
    closeSync(fd);
  }
}

export class AuditTrail {
  private readonly host: AuditHost;
  private pending: Queued[] = [];
  private lost = 0;
  /** The newest record this process wrote or checked. */
  private head: AuditHead | null = null;
  private written: Written | null = null;
  private anchoredSeq = 0;
  private lastAnchorAt = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private isPromptTimer = false;
  /** Said once until a write succeeds again: a server would otherwise say it every second. */
  private hasWarned = false;
  private anchorTimer: ReturnType<typeof setTimeout> | null = null;
  private flushing: Promise<void> | null = null;

  constructor(host: AuditHost) {
    this.host = host;
  }

  /**
   * Queues a record (the proxy's request path: no I/O, no crypto here). It reaches the file within
   * about a second, or in the next vault write of this process, whichever comes first. A one-shot
   * command that records outside VaultStore.update must `await flush()` before it exits.
   */
  record(event: AuditEvent): void {
    if (this.pending.length >= MAX_PENDING) {
      this.lost++;
      return;
    }
    this.pending.push({ time: new Date().toISOString(), event });
    // A refusal goes to the file at once (an agent that kills the broker right after its refused
    // request must not take the record with it); allowed requests wait for the batch.
    const isPrompt = event.kind !== "request_allowed";
    if (this.flushTimer !== null && !isPrompt) return;
    if (this.flushTimer !== null && this.isPromptTimer) return;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.isPromptTimer = isPrompt;
    this.flushTimer = setTimeout(() => void this.flush(), isPrompt ? PROMPT_FLUSH_MS : FLUSH_MS);
    this.flushTimer.unref?.();
  }

  /** How many records wait; with dropSince, records made by a change that then threw are dropped. */
  mark(): number {
    return this.pending.length;
  }

  dropSince(mark: number): void {
    this.pending.splice(mark);
  }

  /**
   * Writes what waits now, anchoring the head if the last anchor is old enough, or with `anchor`
   * (a process about to stop: nothing it wrote is left unanchored). Never throws.
   */
  async flush(options: { anchor?: boolean } = {}): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    while (this.flushing) await this.flushing;
    this.flushing = this.flushOnce(options.anchor === true).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private hasUnanchored(): boolean {
    return this.pending.length > 0 || this.lost > 0 || (this.head !== null && this.head.seq > this.anchoredSeq);
  }

  private async flushOnce(anchor: boolean): Promise<void> {
    if (!this.hasUnanchored()) return;
    try {
      const key = this.host.auditKey(this.host.read(), false);
      if (key === null || anchor || Date.now() - this.lastAnchorAt >= anchorIntervalMs()) {
        // VaultStore.update appends what waits and anchors the head in the same write.
        await this.host.update(() => undefined);
        return;
      }
      await withFileLock(this.host.paths.stateFile, this.host.paths.lockFile, () => {
        const body = this.host.read();
        this.appendLocked(this.host.auditKey(body, false) ?? key, body.audit ?? null);
      });
      this.scheduleAnchor();
    } catch {
      // The audit must never take the proxy down: what waits stays queued and is tried again.
      if (this.flushTimer === null) {
        this.flushTimer = setTimeout(() => void this.flush(), FLUSH_MS);
        this.flushTimer.unref?.();
      }
    }
  }

  private scheduleAnchor(): void {
    if (this.anchorTimer !== null || !this.hasUnanchored()) return;
    const wait = Math.max(0, this.lastAnchorAt + anchorIntervalMs() - Date.now());
    this.anchorTimer = setTimeout(() => {
      this.anchorTimer = null;
      void this.flush();
    }, wait);
    this.anchorTimer.unref?.();
  }

  /**
   * Under the vault lock, inside the write that is about to land (VaultStore.update and the password
   * change): appends what waits and anchors the chain's head in `body`, so the vault change and its
   * record are on file together. If the log cannot be written the change is made anyway (below).
   */
  sealInto(body: Body): void {
    if (!this.hasUnanchored()) return;
    const key = this.host.auditKey(body, true)!;
    let head: AuditHead;
    try {
      head = this.appendLocked(key, body.audit ?? null);
    } catch (error) {
      // The change is made all the same: a log the agent can make unwritable must not let it
      // block the person revoking its session. The anchor stays where it was; the records stay
      // queued (a long-running process writes them later) and the failure is said out loud.
      if (!this.hasWarned)
        process.stderr.write(`agent-vault: warning: the audit log cannot be written (${(error as Error).message.split("\n")[0]}); this change is made, its record is not on file yet\n`);
      this.hasWarned = true;
      return;
    }
    this.hasWarned = false;
    if (head.seq > 0) body.audit = { seq: head.seq, hash: head.hash, time: new Date().toISOString() };
    this.anchoredSeq = head.seq;
    this.lastAnchorAt = Date.now();
  }

  /** Appends every queued record after the chain's tail; returns the new head. Lock held. */
  private appendLocked(key: Buffer, anchor: AuditAnchor | null): AuditHead {
    trimPartialLine(auditLogPath(this.host.paths));
    let head = this.tailHead(key, anchor);
    const lost = this.lost;
    const queued: Queued[] =
      lost > 0 ? [...this.pending, { time: new Date().toISOString(), event: { kind: "records_lost", detail: `${lost} records were not written (the audit log could not be written)` } }] : this.pending;
    if (queued.length > 0) {
      const lines: string[] = [];
      for (const q of queued) {
        const sealed = sealRecord(key, head, q);
        lines.push(sealed.line);
        head = sealed.head;
      }
      const text = `${lines.join("\n")}\n`;
      const path = auditLogPath(this.host.paths);
      this.rotateIfFull(path, Buffer.byteLength(text), head.seq - queued.length);
      clearWayFor(path);
      const fd = openAppendPrivate(path);
      try {
        const bytes = Buffer.from(text, "utf8");
        let done = 0;
        while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
        const st = fstatSync(fd);
        this.written = { ino: st.ino, offset: st.size, line: lines[lines.length - 1]! };
      } finally {
        closeSync(fd);
      }
      this.pending = [];
      this.lost -= lost;
      // Everything queued is written: a flush scheduled for it has nothing left to do.
      if (this.flushTimer !== null) clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    this.head = head;
    return head;
  }

  /**
   * The record to chain after. The file's last line, when its MAC holds and it is not behind what
   * this process knows (its own last record, the vault's anchor). When the file went backwards, or
   * this process's own last line is no longer where it wrote it, the chain continues from what this
   * process knows instead: the next record then does not link to what the file holds, and verify
   * names the break, instead of the cut being papered over.
   */
  private tailHead(key: Buffer, anchor: AuditAnchor | null): AuditHead {
    let candidate: AuditHead | null = null;
    for (const file of auditFiles(this.host.paths).reverse()) {
      const line = lastLine(file);
      if (line === null) continue;
      const opened = openRecord(key, line);
      if ("record" in opened) candidate = { seq: opened.record.seq, hash: sha256Hex(line) };
      break;
    }
    // Our own last line is gone (cut, or rewritten; another process may have appended after the
    // cut and even anchored that): link to it all the same, under a number past everything seen.
    if (this.head !== null && this.written !== null && !this.isStillThere(this.written)) {
      return { seq: Math.max(this.head.seq, candidate?.seq ?? 0, anchor?.seq ?? 0), hash: this.head.hash };
    }
    const known = [this.head, anchor].reduce<AuditHead | null>((best, h) => (h && (!best || h.seq > best.seq) ? { seq: h.seq, hash: h.hash } : best), null);
    if (candidate && (known === null || candidate.seq >= known.seq)) return candidate;
    if (known === null) return { seq: candidate?.seq ?? 0, hash: GENESIS_HASH };
    return { seq: Math.max(known.seq, candidate?.seq ?? 0), hash: known.hash };
  }

  private isStillThere(written: Written): boolean {
    const bytes = Buffer.from(`${written.line}\n`, "utf8");
    for (const file of auditFiles(this.host.paths).reverse().slice(0, 3)) {
      try {
        const st = lstatSync(file);
        if (st.ino !== written.ino) continue;
        const found = readAt(file, written.offset - bytes.length, bytes.length);
        return found !== null && found.equals(bytes);
      } catch {}
    }
    return false;
  }

  /** A full audit.log becomes audit.<last seq>.log; the next record still links to its last. */
  private rotateIfFull(path: string, adding: number, lastSeq: number): void {
    let size: number;
    try {
      size = lstatSync(path).size;
    } catch {
      return;
    }
    if (size === 0 || size + adding <= maxFileBytes()) return;
    const target = join(this.host.paths.home, `audit.${String(lastSeq).padStart(12, "0")}.log`);
    try {
      lstatSync(target);
      return; // Taken (by a planted file): keep appending rather than overwrite anything.
    } catch {
      renameSync(path, target);
    }
  }
}

export interface AuditProblem {
  /** The file and 1-based line of the first bad record. */
  readonly file: string;
  readonly line: number;
  /** The record number at that place: what the line claims, or what was due there. */
  readonly seq: number;
  readonly what: string;
}

export interface AuditReport {
  readonly records: number;
  readonly last_seq: number;
  readonly anchor: AuditAnchor | null;
  /** Records after the anchor: written, MACed, not yet vouched for by the vault file. */
  readonly unanchored: number;
  /** audit.log ends in a partial line (a write cut short by a crash): not a record, ignored. */
  readonly incomplete_tail: boolean;
  readonly problem: AuditProblem | null;
}

/**
 * Walks the whole chain from record 1: each line's MAC, its number, its link to the line before,
 * and the anchored record's hash; then whether the chain reaches the anchor. Stops at the first
 * bad record. `onRecord` sees each good record with its exact line (export).
 */
export function verifyAudit(paths: HomePaths, key: Buffer | null, anchor: AuditAnchor | null, onRecord?: (record: AuditRecord, line: string) => void): AuditReport {
  let expect = 1;
  let prevHash = GENESIS_HASH;
  let isIncomplete = false;
  const report = (problem: AuditProblem | null): AuditReport => ({
    records: expect - 1,
    last_seq: expect - 1,
    anchor,
    unanchored: Math.max(0, expect - 1 - (anchor?.seq ?? 0)),
    incomplete_tail: isIncomplete,
    problem,
  });
  const files = auditFiles(paths);
  if (key === null) {
    if (files.length === 0 && anchor === null) return report(null);
    return report({ file: files[0] ?? auditLogPath(paths), line: 1, seq: 1, what: "the vault file holds no audit key, yet there is an audit log or an anchor (the vault file was replaced?)" });
  }
  for (const file of files) {
    const name = file.slice(paths.home.length + 1);
    const bytes = readFileNoFollow(file);
    if (bytes === null) continue;
    const lines = bytes.toString("utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const at = (seq: number, what: string) => report({ file: name, line: i + 1, seq, what: `${name} line ${i + 1} (record ${seq}): ${what}` });
      if (i === lines.length - 1) {
        // A partial line at the very end is a write a crash cut short; the next writer trims it.
        // Elsewhere (a rotated file) it is damage. Either way the anchor check below still holds.
        if (line !== "" && file !== files[files.length - 1]) return at(expect, "the last line is incomplete (a write was cut short, or bytes were added)");
        isIncomplete = line !== "";
        break;
      }
      const opened = openRecord(key, line);
      if ("problem" in opened) return at(expect, `the line ${opened.problem}`);
      const record = opened.record;
      if (record.seq !== expect) {
        return at(
          record.seq,
          record.seq > expect
            ? `expected record ${expect} here: records ${expect}..${record.seq - 1} were removed, or records were reordered`
            : `record ${record.seq} comes after record ${expect - 1}: reordered, or inserted again`,
        );
      }
      if (record.prev !== prevHash) {
        return at(record.seq, expect === 1 ? "record 1 does not start the chain" : `it does not link to the record before it (record ${expect - 1} was replaced, or records before it were cut)`);
      }
      const hash = sha256Hex(line);
      if (anchor && record.seq === anchor.seq && hash !== anchor.hash) {
        return at(record.seq, "it is not the record the vault file anchored (the log was rewritten)");
      }
      onRecord?.(record, line);
      prevHash = hash;
      expect++;
    }
  }
  if (anchor && expect - 1 < anchor.seq) {
    const last = files.length > 0 ? files[files.length - 1]!.slice(paths.home.length + 1) : AUDIT_FILE;
    return report({
      file: last,
      line: 0,
      seq: expect,
      what: `${last}: the log ends at record ${expect - 1} but the vault file anchored record ${anchor.seq}: records ${expect}..${anchor.seq} were cut`,
    });
  }
  return report(null);
}

/**
 * verifyAudit on what is on file now: under the vault lock, so no append or rotation is half-done
 * while the files and the anchor are read (a half-written last line would look like damage).
 */
export async function checkAuditTrail(host: AuditHost, onRecord?: (record: AuditRecord, line: string) => void): Promise<AuditReport> {
  return withFileLock(host.paths.stateFile, host.paths.lockFile, () => {
    const body = host.read();
    return verifyAudit(host.paths, host.auditKey(body, false), body.audit ?? null, onRecord);
  });
}
