// An aws-chunked request body past the guard's buffer (an S3 upload part of 8 MiB and more from
// the AWS CLI or an SDK), streamed under the guard: the framing (size;chunk-signature=… lines,
// trailing checksums) is undone as bytes arrive and the payload goes through the stream guard,
// while the bytes sent upstream are the agent's framed bytes, released only as far as the payload
// in them was released by the guard. The framing lines are the agent's text too (a chunk extension
// `size;x=…`, a trailer `x-leak: …` carried a value past the guard to the agent's own host, found by
// the red team): each one is searched as it completes, before any byte after it is sent. Framing
// that is not aws-chunked stops the body: nothing after the point it went wrong is sent.
import { type Answer, problem } from "../shared/answers.ts";
import { type Pattern, StreamGuard } from "./secrets.ts";

const CHUNK_LINE = /^([0-9a-fA-F]{1,16})(;[!#$%&'*+.^_`|~0-9A-Za-z-]+=[^\r\n;]*)*$/;
const TRAILER_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*$/;
const MAX_LINE = 4096;

export type StreamResult = { send: Buffer } | { hit: Pattern } | { refused: Answer };

/** Where a run of payload bytes lies in the framed body. */
interface Segment {
  readonly decodedStart: number;
  readonly rawStart: number;
  readonly length: number;
}

export class AwsChunkedStream {
  private state: "line" | "data" | "crlf" | "trailers" | "done" = "line";
  private line = "";
  private remaining = 0;
  private crlfSeen = 0;
  /** Bytes of the framed body read so far, and of its payload. */
  private rawRead = 0;
  private decoded = 0;
  /** The framed bytes not sent yet, starting at rawSent. */
  private held: Buffer = Buffer.alloc(0);
  private rawSent = 0;
  private released = 0;
  private segments: Segment[] = [];
  /** The payload's first bytes, to tell a compressed one (refused past the buffer, as before). */
  first: Buffer = Buffer.alloc(0);
  /** The framing lines, one after another, and a value found in them. */
  private readonly framing: StreamGuard;
  private framingHit: Pattern | null = null;

  constructor(
    private readonly guard: StreamGuard,
    patterns: readonly Pattern[],
  ) {
    this.framing = new StreamGuard(patterns);
  }

  push(chunk: Buffer): StreamResult {
    this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    const payload: Buffer[] = [];
    const bad = this.parse(chunk, payload);
    if (this.framingHit) return { hit: this.framingHit };
    for (const piece of payload) {
      if (this.first.length < 16) this.first = Buffer.concat([this.first, piece.subarray(0, 16 - this.first.length)]);
      const checked = this.guard.push(piece);
      if ("hit" in checked) return checked;
      this.released += checked.send.length;
    }
    if (bad) return { refused: problem("invalid_request", `the aws-chunked request body is malformed (${bad}), so it was not sent on`) };
    return { send: this.take(this.rawOffsetOf(this.released)) };
  }

  end(): StreamResult {
    if (this.state !== "done") return { refused: problem("invalid_request", "the aws-chunked request body ended before its last chunk, so it was not sent on") };
    const framing = this.framing.end();
    if ("hit" in framing) return framing;
    const ended = this.guard.end();
    if ("hit" in ended) return ended;
    return { send: this.take(this.rawRead) };
  }

  /** The framed bytes up to raw offset `upTo`, which are then sent. */
  private take(upTo: number): Buffer {
    const count = upTo - this.rawSent;
    if (count <= 0) return Buffer.alloc(0);
    const out = this.held.subarray(0, count);
    this.held = this.held.subarray(count);
    this.rawSent = upTo;
    return out;
  }

  /** The raw offset just after the payload's byte `decodedOffset - 1` (framing after it is held). */
  private rawOffsetOf(decodedOffset: number): number {
    while (this.segments.length > 0 && this.segments[0]!.decodedStart + this.segments[0]!.length <= decodedOffset && this.segments.length > 1) this.segments.shift();
    const segment = this.segments[0];
    if (!segment || decodedOffset <= segment.decodedStart) return this.rawSent;
    return segment.rawStart + Math.min(decodedOffset - segment.decodedStart, segment.length);
  }

  /** Reads `bytes` through the framing, collecting payload; returns what is wrong, if anything. */
  private parse(bytes: Buffer, payload: Buffer[]): string | null {
    let at = 0;
    while (at < bytes.length) {
      if (this.state === "data") {
        const n = Math.min(this.remaining, bytes.length - at);
        payload.push(bytes.subarray(at, at + n));
        this.segments.push({ decodedStart: this.decoded, rawStart: this.rawRead + at, length: n });
        this.decoded += n;
        this.remaining -= n;
        at += n;
        if (this.remaining === 0) this.state = "crlf";
        continue;
      }
      if (this.state === "crlf") {
        if (bytes[at] !== (this.crlfSeen === 0 ? 0x0d : 0x0a)) return "a chunk is longer than its size";
        at++;
        if (++this.crlfSeen === 2) {
          this.crlfSeen = 0;
          this.state = "line";
        }
        continue;
      }
      if (this.state === "done") return "bytes after the last chunk";
      // A framing line (a chunk's size, or a trailer), up to its CRLF.
      const end = bytes.indexOf(0x0a, at);
      const piece = bytes.toString("latin1", at, end < 0 ? bytes.length : end + 1);
      at += piece.length;
      this.line += piece;
      if (this.line.length > MAX_LINE) return "a framing line is too long";
      if (end < 0) continue;
      if (!this.line.endsWith("\r\n")) return "a framing line does not end in CRLF";
      const text = this.line.slice(0, -2);
      this.line = "";
      const checked = this.framing.push(Buffer.from(`${text}\n`, "latin1"));
      if ("hit" in checked) {
        this.framingHit = checked.hit;
        return "a value in its framing";
      }
      if (this.state === "trailers") {
        if (text === "") this.state = "done";
        else if (!TRAILER_LINE.test(text)) return "a bad trailer line";
        continue;
      }
      const head = CHUNK_LINE.exec(text);
      if (!head) return "a bad chunk size line";
      this.remaining = Number.parseInt(head[1]!, 16);
      this.state = this.remaining === 0 ? "trailers" : "data";
    }
    this.rawRead += bytes.length;
    return null;
  }
}
