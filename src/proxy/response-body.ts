// Scrubbing a response body on its way to the agent: small bodies cleaned whole with an exact
// length, streams cleaned chunk by chunk with backpressure, compressed layers decoded first.
import { type Transform } from "node:stream";
import { type Answer, problem } from "../shared/answers.ts";
import { type Coding, decoderChain, MAX_SNIFFED_LAYERS, messageCodings, sniffCoding } from "../net/codings.ts";
import { hasScrubbable, type Pattern, scrubText, StreamGuard, StreamScrubber } from "./secrets.ts";
import { scrubWholeBody } from "./whole-body.ts";

export interface ScrubIo {
  /** Writes to the agent (several buffers as one piece of the body); false when it wants us to wait for `drain`. */
  readonly write: (bytes: Buffer | readonly Buffer[]) => boolean;
  readonly waitDrain: (resume: () => void) => void;
  /** Stop reading the upstream until `until` calls back (the agent or the decoder drained). */
  readonly pauseUpstream: (until: (resume: () => void) => void) => void;
  /** A corrupt compressed body: the response is cut, never ended as if complete. */
  readonly fail: () => void;
  /** A body held whole that must not reach the agent: it gets this answer instead. */
  readonly refuse: (answer: Answer) => void;
  /** Sends the (cleaned) head: at once when streaming, after the body when it is held whole; `status` replaces the upstream's. */
  readonly writeHead: (headers: Record<string, string | string[]>, status?: number) => void;
}

/** A plain body of known length up to this is cleaned whole and keeps an exact Content-Length. */
export const SCRUB_WHOLE_BYTES = 256 * 1024;
/** Decoded response layers are scrubbed up to this size (a bomb past it is cut). */
export const MAX_DECODED_SCRUB_BYTES = 64 * 1024 * 1024;

/**
 * Checks a compressed stream the response did not declare (a .gz download, gzip in gzip) in
 * parallel with passing it on unchanged: each chunk goes to the agent once the decoder has read it
 * and what it decoded held no value; a value cuts the response.
 */
class SniffedStream {
  private readonly decoder: Transform;
  private readonly guard: StreamGuard;
  private nested: SniffedStream | null = null;
  private first = true;
  private failed = false;

  constructor(
    coding: Coding,
    private readonly patterns: readonly Pattern[],
    private readonly onHit: () => void,
  ) {
    this.decoder = decoderChain([coding])[0]!;
    this.guard = new StreamGuard(patterns);
    this.decoder.on("data", (bytes: Buffer) => this.inspect(bytes));
    // A body that only looked compressed is data; what was decoded so far was checked.
    this.decoder.on("error", () => (this.failed = true));
  }

  private inspect(bytes: Buffer): void {
    if (this.first) {
      this.first = false;
      const inner = sniffCoding(bytes);
      if (inner) this.nested = new SniffedStream(inner, this.patterns, this.onHit);
    }
    this.nested?.write(bytes, () => undefined);
    if ("hit" in this.guard.push(bytes)) this.onHit();
  }

  write(bytes: Buffer, then: () => void): void {
    if (this.failed) return then();
    this.decoder.write(bytes, () => then());
  }

  end(then: () => void): void {
    if (this.failed) return then();
    this.decoder.end(() => {
      if ("hit" in this.guard.end()) this.onHit();
      this.nested ? this.nested.end(then) : then();
    });
  }
}

/**
 * Scrubbing a response as it streams: headers cleaned now (a header whose name holds a value is
 * dropped), the body decoded (content codings, then transfer codings other than chunked: gzip,
 * deflate, br) and cleaned chunk by chunk, with backpressure from the agent through the decoders
 * to the upstream socket. A body whose coding cannot be read is refused with 502 rather than
 * passed unscanned. A body that is compressed without saying so is cleaned in its layers when
 * small, and checked as it streams when large.
 */
export function startScrub(headers: Record<string, string | string[]>, transferEncoding: string, hasBody: boolean, patterns: readonly Pattern[], io: ScrubIo): ScrubSink | Answer {
  scrubHeaders(headers, patterns);
  const scrubber = new StreamScrubber(patterns);
  if (!hasBody) {
    io.writeHead(headers);
    return { push: () => undefined, end: (then) => then() };
  }
  const codings = messageCodings(headers["content-encoding"], transferEncoding);
  if (codings === null)
    return problem(
      "upstream_error",
      `the response's coding (content-encoding ${String(headers["content-encoding"] ?? "none")}, transfer-encoding ${transferEncoding || "none"}) cannot be scanned for credentials, so it was not passed on`,
    );
  return scrubBody(headers, codings, patterns, scrubber, io);
}

/** Where the body's bytes go, as they arrive, and how it ends. */
export interface ScrubSink {
  readonly push: (bytes: Buffer) => void;
  readonly end: (then: () => void) => void;
}

/** The headers cleaned in place: a header whose name holds a value is dropped, values in the rest replaced. */
export function scrubHeaders(headers: Record<string, string | string[]>, patterns: readonly Pattern[]): void {
  // One search over all headers (values, heads and tails of them); only when something is there
  // are they cleaned one by one.
  if (
    hasScrubbable(
      Object.entries(headers)
        .map(([n, v]) => `${n}: ${Array.isArray(v) ? v.join(", ") : v}`)
        .join("\n"),
      patterns,
    )
  ) {
    for (const [name, value] of Object.entries(headers)) {
      if (scrubText(name, patterns) !== name) {
        delete headers[name];
        continue;
      }
      headers[name] = Array.isArray(value) ? value.map((v) => scrubText(v, patterns)) : scrubText(value, patterns);
    }
  }
}

function scrubBody(headers: Record<string, string | string[]>, codings: readonly Coding[], patterns: readonly Pattern[], scrubber: StreamScrubber, io: ScrubIo): ScrubSink {
  const chain = decoderChain(codings);
  const length = Number(headers["content-length"]);
  if (chain.length === 0 && Number.isInteger(length) && length <= SCRUB_WHOLE_BYTES) {
    // Most API answers: small, with a length. Held whole, cleaned, sent with its new exact length.
    const chunks: Buffer[] = [];
    return {
      push: (bytes) => void chunks.push(bytes),
      end: (then) => {
        const whole = scrubWholeBody(Buffer.concat(chunks), [], patterns, MAX_DECODED_SCRUB_BYTES);
        if ("unreadable" in whole) return io.fail();
        if ("refused" in whole) {
          return io.refuse(
            problem(
              "upstream_error",
              `the response carries the value of credential ${whole.refused.key} in a spelling that cannot be replaced where it stands (wrapped, spaced or UTF-16); it was not passed on`,
            ),
          );
        }
        const clean = whole.body;
        headers["content-length"] = String(clean.length);
        io.writeHead(headers);
        io.write(clean);
        then();
      },
    };
  }
  // The body may change length (and loses its coding): it goes out chunked.
  delete headers["content-length"];
  if (chain.length > 0) delete headers["content-encoding"];
  io.writeHead(headers);
  if (chain.length === 0) {
    let sniffed: SniffedStream | null | undefined;
    let cut = false;
    return {
      push: (bytes) => {
        if (cut) return;
        if (sniffed === undefined) {
          const coding = sniffCoding(bytes);
          sniffed = coding ? new SniffedStream(coding, patterns, () => ((cut = true), io.fail())) : null;
        }
        if (sniffed) {
          // Compressed: passed on unchanged, each chunk once the decoder read it and found nothing.
          io.pauseUpstream((resume) =>
            sniffed!.write(bytes, () => {
              if (cut) return;
              if (!io.write(bytes)) io.waitDrain(resume);
              else resume();
            }),
          );
          return;
        }
        if (!io.write(scrubber.pushPieces(bytes))) io.pauseUpstream(io.waitDrain);
      },
      end: (then) => {
        if (sniffed) return sniffed.end(() => (cut ? undefined : then()));
        io.write(scrubber.end());
        then();
      },
    };
  }
  for (let i = 0; i + 1 < chain.length; i++) chain[i]!.pipe(chain[i + 1]!);
  const first = chain[0]!;
  let ended: (() => void) | null = null;
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    for (const s of chain) s.destroy();
    io.fail();
  };
  for (const stream of chain) stream.on("error", fail);
  // The decoded body is read like any other: if it is itself compressed (gzip declared once and
  // applied twice), one more decoder is added, up to MAX_SNIFFED_LAYERS.
  const read = (stream: Transform, depth: number) => {
    let sniffed = false;
    stream.on("data", (bytes: Buffer) => {
      if (failed) return;
      if (!sniffed) {
        sniffed = true;
        const coding = depth < MAX_SNIFFED_LAYERS ? sniffCoding(bytes) : null;
        if (coding) {
          const inner = decoderChain([coding])[0]!;
          chain.push(inner);
          inner.on("error", fail);
          stream.pipe(inner);
          read(inner, depth + 1);
          inner.write(bytes);
          return;
        }
      }
      if (stream !== chain[chain.length - 1]) return;
      if (!io.write(scrubber.pushPieces(bytes))) {
        stream.pause();
        io.waitDrain(() => stream.resume());
      }
    });
    stream.on("end", () => {
      if (failed || stream !== chain[chain.length - 1]) return;
      io.write(scrubber.end());
      ended?.();
    });
  };
  read(chain[chain.length - 1]!, 0);
  return {
    push: (bytes) => {
      if (!failed && !first.write(bytes)) io.pauseUpstream((resume) => first.once("drain", resume));
    },
    end: (then) => {
      ended = then;
      if (!failed) first.end();
    },
  };
}
