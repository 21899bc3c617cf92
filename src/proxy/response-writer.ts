// The upstream's response on its way to the agent: the head without hop-by-hop fields, with what
// the steps added (RateLimit-*), and the body as it arrives, under the response cap, with
// backpressure (a slow agent pauses the upstream socket), through scrubbing when the flow asks for
// it (response-body.ts: decoded, cleaned, held whole when small; response-range.ts: a 206 to a
// widened range, masked and cut to the bytes the agent asked for).
import { type Socket } from "node:net";
import { type BodyFraming, type ResponseHead } from "../net/http1.ts";
import { type InboundResponse } from "../net/inbound.ts";
import { type Answer, problem } from "../shared/answers.ts";
import { type RangePlan } from "./flow.ts";
import { type ScrubIo, startScrub } from "./response-body.ts";
import { startRangeScrub } from "./response-range.ts";
import { type Pattern, scrubText } from "./secrets.ts";

const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

export interface WriterOptions {
  readonly maxResponseBytes: number;
  /** Added to the response (flow.responseHeaders). */
  readonly extraHeaders: Record<string, string> | undefined;
  /** Set when the response is scrubbed: the values it replaces. */
  readonly scrub: (() => readonly Pattern[]) | undefined;
  /** With scrub: the range the agent asked for, widened upstream (flow.range); a 206 is cut to it. */
  readonly range: RangePlan | undefined;
  /** The response cannot go on (over a cap, a coding that cannot be read): cut, or this answer if nothing was sent. */
  readonly cut: (answer: Answer | null) => void;
}

export class ResponseWriter {
  private received = 0;
  /** What waits for the agent's socket to drain: one listener for all of them (waitDrain). */
  private drainWaiters: (() => void)[] = [];
  /** Scrubbing: where body bytes enter the decoders and the scrubber, and how it ends. */
  private sink: ((bytes: Buffer) => void) | null = null;
  private finishBody: ((then: () => void) => void) | null = null;
  /** The exchange was cut: nothing more reaches the agent (decoders may still emit). */
  private stopped = false;

  constructor(
    private readonly res: InboundResponse,
    private readonly upstream: Socket,
    private readonly options: WriterOptions,
  ) {}

  head(head: ResponseHead, framing: BodyFraming): void {
    const length = framing.kind === "length" ? framing.length : 0;
    if (length > this.options.maxResponseBytes) return this.options.cut(problem("upstream_error", `the response is ${length} bytes; the cap is ${this.options.maxResponseBytes}`));
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of head.headers) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP_RESPONSE.has(lower)) continue;
      const prior = out[lower];
      out[lower] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
    }
    Object.assign(out, this.options.extraHeaders);
    if (!this.options.scrub) {
      this.res.writeHead(head.status, head.reason || undefined, out);
      // Server-sent events and other streams go out as they arrive.
      this.res.flushHeaders();
      return;
    }
    const patterns = this.options.scrub();
    const reason = scrubText(head.reason, patterns);
    let decoded = 0;
    const transferEncoding = head.headers
      .filter(([n]) => n.toLowerCase() === "transfer-encoding")
      .map(([, v]) => v)
      .join(",");
    const hasBody = framing.kind !== "none" && !(framing.kind === "length" && framing.length === 0);
    const io: ScrubIo = {
      write: (bytes) => {
        const parts = Buffer.isBuffer(bytes) ? [bytes] : (bytes as readonly Buffer[]);
        let length = 0;
        for (const part of parts) length += part.length;
        if (this.stopped || length === 0) return true;
        decoded += length;
        // A decompression bomb is cut at the response cap, counted after decoding.
        if (decoded > this.options.maxResponseBytes) {
          this.options.cut(null);
          return true;
        }
        return this.res.writeParts(parts);
      },
      waitDrain: (resume) => this.waitDrain(resume),
      pauseUpstream: (until) => {
        this.upstream.pause();
        until(() => this.upstream.resume());
      },
      fail: () => this.options.cut(null),
      refuse: (answer) => this.options.cut(answer),
      writeHead: (headers, status) => {
        this.res.writeHead(status ?? head.status, status === undefined ? reason || undefined : undefined, headers);
        this.res.flushHeaders();
      },
    };
    // Only a 206 is a part: any other answer to a range (200 whole, 416, 304) is scrubbed as usual.
    const range = this.options.range;
    const scrubbing =
      range && head.status === 206
        ? startRangeScrub(out, transferEncoding, framing.kind === "length" ? framing.length : null, range, patterns, io)
        : startScrub(out, transferEncoding, hasBody, patterns, io);
    if ("code" in scrubbing) return this.options.cut(scrubbing);
    this.sink = scrubbing.push;
    this.finishBody = scrubbing.end;
  }

  stop(): void {
    this.stopped = true;
  }

  body(bytes: Buffer): void {
    if (this.stopped || bytes.length === 0) return;
    this.received += bytes.length;
    if (this.received > this.options.maxResponseBytes) return this.options.cut(null);
    // The parser's views are never written over (it appends past them or takes a new buffer), so
    // scrubbing may hold them without a copy.
    if (this.sink) return this.sink(bytes);
    if (!this.res.write(bytes)) {
      this.upstream.pause();
      this.waitDrain(() => this.upstream.resume());
    }
  }

  /**
   * `then` once the agent's socket drains. The parser may hand over several pieces of one read
   * before the paused upstream stops: they share one listener instead of adding one each (eleven
   * made Node's MaxListenersExceededWarning in the server's log).
   */
  private waitDrain(then: () => void): void {
    this.drainWaiters.push(then);
    if (this.drainWaiters.length > 1) return;
    this.res.once("drain", () => {
      const waiting = this.drainWaiters;
      this.drainWaiters = [];
      for (const resume of waiting) resume();
    });
  }

  /** The upstream's message is complete: the agent's ends once what scrubbing holds is out. */
  end(then: () => void): void {
    const close = () => {
      this.res.end();
      then();
    };
    if (this.finishBody) this.finishBody(close);
    else close();
  }
}
