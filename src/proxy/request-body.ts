// The agent's request body under the exfiltration guard: read whole (up to GUARD_BUFFER_BYTES) and
// checked in every layer before the upstream is dialled, or, past that, streamed with a hold-back.
import { type Answer, problem } from "../shared/answers.ts";
import { type InboundRequest } from "../net/inbound.ts";
import { bodyLayers, requestCodings, sniffCoding } from "../net/codings.ts";
import { endsWithPartValue, findSecret, guardScan, longestSpelling, openRests, type Pattern, StreamGuard } from "./secrets.ts";
import { type BodyTransform, type Substitution } from "./flow.ts";
import { bodySyntax, type FieldSyntax, StreamSubstituter, substituteWhole } from "./substitute.ts";
import { AwsChunkedStream } from "./aws-chunked-stream.ts";

/**
 * Under the guard a request body is read whole and checked before the upstream is dialled, so a
 * refused request sends it zero bytes. Past this size a plain body streams on, checked as it goes,
 * holding back any tail that could be the start of a value (the value itself never leaves; the
 * bytes before it may); a compressed body past it is refused.
 */
export const GUARD_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * What a streamed body goes through: the guard's hold-back, then placeholders replaced; an
 * aws-chunked body's framing undone for the guard (refused when it is not that framing).
 */
export interface BodyStream {
  push(chunk: Buffer): { send: Buffer } | { hit: Pattern } | { refused: Answer };
  end(): { send: Buffer } | { hit: Pattern } | { refused: Answer };
}

/**
 * A whole body: `body` as it goes upstream (placeholders replaced), `sent` the same layer as the
 * agent sent it, `decoded` with every coding undone (held requests hash `sent` and preview `decoded`).
 */
export type GuardedBody =
  | { kind: "whole"; body: Buffer; sent?: Buffer; decoded?: Buffer }
  /** `head`: what the guard let go of the body read before streaming (up to 8 MiB), in pieces as read. */
  | { kind: "stream"; head: Buffer[]; guard: BodyStream }
  | { kind: "refused"; answer: Answer }
  | { kind: "gone" };

/** Decoded request bodies are scanned up to this size; a bigger expansion is refused (a bomb). */
const MAX_DECODED_SCAN_BYTES = 64 * 1024 * 1024;

export interface GuardInput {
  readonly patterns: readonly Pattern[];
  readonly onBlocked: (hit: Pattern) => Answer;
  readonly maxRequestBytes: number;
  /** Rests of values whose first piece ended a field before the body (see steps/guard.ts). */
  readonly rests: readonly Pattern[];
  /** Keeps the rests the body's end leaves open, for the next request to the host. */
  readonly recordRests: (rests: readonly Pattern[]) => void;
  /**
   * Placeholders to replace with their values once the body passed the guard (steps/placeholders.ts).
   * In the body as sent upstream: a compressed body's placeholders stay as they are.
   */
  readonly substitutions?: readonly Substitution[];
}

/** A streamed body, then a transform of what it lets go (steps/sigv4.ts signing chunks again). */
export function transformed(stream: BodyStream, transform: BodyTransform): BodyStream {
  const after = (piece: { send: Buffer } | { hit: Pattern } | { refused: Answer }, ending: boolean) => {
    if (!("send" in piece)) return piece;
    const out = transform.push(piece.send);
    if (!Buffer.isBuffer(out)) return { refused: out };
    if (!ending) return { send: out };
    const last = transform.end();
    return Buffer.isBuffer(last) ? { send: Buffer.concat([out, last]) } : { refused: last };
  };
  return { push: (chunk) => after(stream.push(chunk), false), end: () => after(stream.end(), true) };
}

/** The request's Content-Type, one value. */
function contentTypeOf(req: InboundRequest): string | undefined {
  const type = req.headers["content-type"];
  return Array.isArray(type) ? type.join(",") : type;
}

/** The guard, then the placeholders: what the guard lets go is what gets its values. */
function substituting(guard: StreamGuard, substitutions: readonly Substitution[], syntax: FieldSyntax): BodyStream {
  if (substitutions.length === 0 || syntax === "none") return guard;
  const replacer = new StreamSubstituter(substitutions, syntax);
  return {
    push(chunk) {
      const checked = guard.push(chunk);
      return "hit" in checked ? checked : { send: replacer.push(checked.send) };
    },
    end() {
      const ended = guard.end();
      return "hit" in ended ? ended : { send: Buffer.concat([replacer.push(ended.send), replacer.end()]) };
    },
  };
}

/**
 * Reads (up to the buffer size) and checks the agent's body; see GUARD_BUFFER_BYTES. Every layer
 * is searched: the body as sent, with its declared content and transfer codings undone, and with
 * whatever its magic bytes say it is undone too (gzip without a header, gzip in gzip). A body the
 * guard cannot read is refused, never sent unread. Transfer codings are hop-by-hop: the upstream
 * gets the body without them.
 */
export function readGuarded(req: InboundRequest, input: GuardInput): Promise<GuardedBody> {
  const { patterns, onBlocked, maxRequestBytes, rests } = input;
  // The rest of a value whose first piece ended the URL, a header or the previous request.
  const joinedHit = (body: Buffer) => (rests.length > 0 ? findSecret(body.toString("latin1"), rests) : null);
  // A request may be aws-chunked (S3 uploads from the SDKs): its payload is what is checked.
  const isAwsFramed = /^STREAMING-/i.test(String(req.headers["x-amz-content-sha256"] ?? ""));
  const read = requestCodings(req.headers["content-encoding"], req.headers["transfer-encoding"], isAwsFramed);
  const codings = read?.all ?? null;
  const transferCodings = read === null ? 0 : read.all.length - read.content;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    const finish = (result: GuardedBody) => {
      if (finished) return;
      finished = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      req.pause();
      resolve(result);
    };
    const unreadable = () =>
      problem(
        "invalid_request",
        `the request body's coding (content-encoding ${String(req.headers["content-encoding"] ?? "none")}, transfer-encoding ${String(req.headers["transfer-encoding"] ?? "none")}) cannot be checked by the guard, so it was not sent`,
      );
    // The agent went away mid-body: nothing is sent, the flow ends.
    const onClose = () => finish({ kind: "gone" });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > maxRequestBytes) return finish({ kind: "refused", answer: problem("request_too_large", `the request body is larger than the cap of ${maxRequestBytes} bytes`) });
      if (size <= GUARD_BUFFER_BYTES) return;
      // An S3 upload part (the AWS CLI's are 8 MiB of payload) is aws-chunked: its payload streams.
      const isAwsChunked = codings !== null && codings.length === 1 && codings[0] === "aws-chunked";
      if (!isAwsChunked && (codings === null || codings.length > 0 || sniffCoding(chunks[0]!) !== null)) {
        return finish({ kind: "refused", answer: problem("request_too_large", `a compressed body larger than ${GUARD_BUFFER_BYTES} bytes cannot be checked by the guard`) });
      }
      // Past the buffer the body streams on, always holding back the longest spelling of a value,
      // so the end can still be refused unsent if it holds part of one. The 8 MiB read so far go
      // through the guard piece by piece, as read: not joined into a copy first (RSS, issue 14).
      const pieces = chunks.splice(0);
      const joined = rests.length > 0 ? joinedHit(Buffer.concat(pieces)) : null;
      if (joined) return finish({ kind: "refused", answer: onBlocked(joined) });
      // The rests opened by the URL and headers are looked for to the end of the body too.
      const guard = new StreamGuard(rests.length > 0 ? [...patterns, ...rests] : patterns, longestSpelling(patterns));
      const framed = isAwsChunked ? new AwsChunkedStream(guard, rests.length > 0 ? [...patterns, ...rests] : patterns) : null;
      // A declared length passes upstream as is, so its body cannot change length: placeholders
      // past the buffer are replaced only in a chunked body (left as they are otherwise: not a value).
      const stream = framed ?? substituting(guard, req.headers["content-length"] === undefined ? (input.substitutions ?? []) : [], bodySyntax(contentTypeOf(req), pieces));
      const head: Buffer[] = [];
      for (const piece of pieces) {
        const checked = stream.push(piece);
        if ("refused" in checked) return finish({ kind: "refused", answer: checked.refused });
        if ("hit" in checked) return finish({ kind: "refused", answer: onBlocked(checked.hit) });
        if (checked.send.length > 0) head.push(checked.send);
      }
      if (framed && sniffCoding(framed.first) !== null)
        return finish({ kind: "refused", answer: problem("request_too_large", `a compressed body larger than ${GUARD_BUFFER_BYTES} bytes cannot be checked by the guard`) });
      finish({ kind: "stream", head, guard: stream });
    };
    const onEnd = () => {
      if (codings === null) return finish({ kind: "refused", answer: unreadable() });
      const layers = bodyLayers(Buffer.concat(chunks), codings, MAX_DECODED_SCAN_BYTES);
      if (layers === null) return finish({ kind: "refused", answer: unreadable() });
      const opened: Pattern[] = [];
      for (const layer of layers) {
        const text = layer.body.toString("latin1");
        const scanned = guardScan(text, patterns);
        // A value cut in two inside this body (its rest before its first piece) is whole too.
        const hit = scanned.hit ?? joinedHit(layer.body) ?? (scanned.rests.length > 0 ? findSecret(text, scanned.rests) : null);
        if (hit) return finish({ kind: "refused", answer: onBlocked(hit) });
        opened.push(...scanned.rests);
      }
      const inner = layers[layers.length - 1]!.body.toString("latin1");
      // A body may not end in a good part of a value: the rest would follow in the next request.
      const part = endsWithPartValue(inner, patterns);
      if (part) return finish({ kind: "refused", answer: onBlocked(part) });
      input.recordRests([...opened, ...openRests(inner, patterns)]);
      const sent = layers[Math.min(transferCodings, layers.length - 1)]!.body;
      finish({ kind: "whole", body: substituteWhole(sent, input.substitutions ?? [], bodySyntax(contentTypeOf(req), sent)), sent, decoded: layers[layers.length - 1]!.body });
    };
    if (codings === null) {
      finish({ kind: "refused", answer: unreadable() });
      req.resume();
      return;
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    req.resume();
  });
}
