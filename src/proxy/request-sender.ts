// The request body on its way upstream, after the head: a body the guard held whole goes in one
// write; a streamed one (past the guard's buffer, or unguarded) goes as it arrives, through the
// stream guard's hold-back when there is one, chunk-framed when the agent's was, under the size
// cap, and with backpressure both ways (a slow upstream pauses the agent).
import { type Socket } from "node:net";
import { ChunkedWriter, writeParts } from "../net/http1-write.ts";
import { type InboundRequest } from "../net/inbound.ts";
import { type Answer, problem } from "../shared/answers.ts";
import { type BodyStream, type GuardedBody } from "./request-body.ts";
import { type Pattern } from "./secrets.ts";

/** See RequestSender.writeInSlices. */
const HEAD_SLICE_BYTES = 1024 * 1024;

export interface SenderEvents {
  /** The whole body is written. */
  readonly sent: () => void;
  /** The body cannot go on (a value found late, the cap passed): the exchange is cut. */
  readonly refused: (answer: Answer) => void;
  /** The guard found a value: the flow records the key, the agent gets this answer. */
  readonly blocked: (hit: Pattern) => Answer;
}

export class RequestSender {
  private sentBytes = 0;

  constructor(
    private readonly req: InboundRequest,
    private readonly socket: Socket,
    private readonly options: { readonly isChunked: boolean; readonly maxRequestBytes: number },
    private readonly events: SenderEvents,
  ) {}

  /** Writes what the guard already read, then streams the rest of the agent's body. */
  start(body: GuardedBody | null): void {
    if (body?.kind === "whole") {
      if (body.body.length > 0) this.socket.write(body.body);
      return this.events.sent();
    }
    const guard = body?.kind === "stream" ? body.guard : null;
    this.writeInSlices(body?.kind === "stream" ? body.head : [], () => this.stream(guard));
  }

  /**
   * The body the guard read before streaming (up to 8 MiB, in pieces) goes in slices, each once the
   * socket drained the last: a socket given 8 MiB at once encrypts and buffers all of it beside ours.
   */
  private writeInSlices(head: readonly Buffer[], then: () => void): void {
    let piece = 0;
    let at = 0;
    const next = () => {
      if (this.stopped) return;
      for (; piece < head.length; piece++, at = 0) {
        const bytes = head[piece]!;
        while (at < bytes.length) {
          const slice = bytes.subarray(at, at + HEAD_SLICE_BYTES);
          at += slice.length;
          const more = at < bytes.length || piece + 1 < head.length;
          if (!this.write(slice) && more) {
            if (at === bytes.length) [piece, at] = [piece + 1, 0];
            return void this.socket.once("drain", next);
          }
        }
      }
      then();
    };
    next();
  }

  /** Streams the rest of the agent's body, through the stream guard when there is one. */
  private stream(guard: BodyStream | null): void {
    // A second attempt of a bodiless request (a retry) finds the agent's request already read.
    if (this.req.readableEnded) return this.events.sent();
    const onBody = (input: Buffer) => {
      let piece = input;
      if (guard) {
        const checked = guard.push(input);
        // The value itself never left: it was still being held back or in this piece.
        if ("hit" in checked) return this.events.refused(this.events.blocked(checked.hit));
        if ("refused" in checked) return this.events.refused(checked.refused);
        piece = checked.send;
        if (piece.length === 0) return;
      }
      if (this.sentBytes + piece.length > this.options.maxRequestBytes) {
        return this.events.refused(problem("request_too_large", `the request body is larger than the cap of ${this.options.maxRequestBytes} bytes`));
      }
      if (!this.write(piece)) {
        // Pausing the message alone does not stop Bun reading the agent's socket; pause both.
        this.req.pause();
        this.req.socket.pause();
        this.socket.once("drain", () => {
          this.req.socket.resume();
          this.req.resume();
        });
      }
    };
    const onEnd = () => {
      const ended = guard?.end();
      // The body ends in part of a value: that part was held back and never left.
      if (ended && "hit" in ended) return this.events.refused(this.events.blocked(ended.hit));
      if (ended && "refused" in ended) return this.events.refused(ended.refused);
      if (ended && ended.send.length > 0) this.write(ended.send);
      if (this.options.isChunked) this.chunked.end();
      this.events.sent();
    };
    this.detach = () => {
      this.req.off("data", onBody);
      this.req.off("end", onEnd);
    };
    this.req.on("data", onBody);
    this.req.on("end", onEnd);
    this.req.resume();
  }

  /** Stops reading the agent's body (the exchange ended or was cut). */
  stop(): void {
    this.stopped = true;
    this.detach();
  }

  private stopped = false;
  private detach: () => void = () => undefined;

  /** The body re-framed in chunks when the agent's was (the CRLF after a big one is owed: ChunkedWriter). */
  private readonly chunked = new ChunkedWriter((parts) => (this.stopped || this.socket.destroyed ? true : writeParts(this.socket, parts)));

  private write(piece: Buffer): boolean {
    this.sentBytes += piece.length;
    return this.options.isChunked ? this.chunked.write([piece]) : this.socket.write(piece);
  }
}
