// A ranged part on its way to the agent under scrubbing. steps/ranges.ts asked the upstream for
// the agent's range widened by a margin on each side (the longest spelling of any value), so a
// value touching the bytes asked for lies wholly in the upstream's 206. That part is scrubbed with
// values masked in place (secrets.ts maskFor: same length, so every byte keeps the upstream's
// offset and a value cut by a range edge is masked alike in either part), and the bytes asked for
// are cut out of it, with a Content-Range recomputed from the upstream's. It streams with
// backpressure (parts are 8-64 MiB); a part small enough is held whole and read in the views a
// whole body of that size is (lenient spellings, compressed layers), and refused as one would be.
import { type Answer, problem } from "../shared/answers.ts";
import { bodyLayers, messageCodings } from "../net/codings.ts";
import { type RangePlan } from "./flow.ts";
import { lenientViews } from "./lenient-views.ts";
import { MAX_DECODED_SCRUB_BYTES, SCRUB_WHOLE_BYTES, type ScrubIo, type ScrubSink, scrubHeaders } from "./response-body.ts";
import { findSecret, longestSpelling, maskText, type Pattern, StreamScrubber } from "./secrets.ts";

/**
 * HTTP's own answer to a range that starts past the end (RFC 9110 15.5.17), when the widened
 * range still reached into the object: the upstream's answer translated, not an error of ours.
 */
const RANGE_NOT_SATISFIABLE = 416;

interface ContentRange {
  readonly start: number;
  readonly end: number;
  /** The object's length; null for `*` (unknown). */
  readonly total: number | null;
}

/** `bytes first-last/total` (total may be `*`), one header, sane numbers; otherwise null. */
function parseContentRange(value: string | string[] | undefined): ContentRange | null {
  if (typeof value !== "string") return null;
  const m = /^bytes[ \t]+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/i.exec(value.trim());
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === "*" ? null : Number(m[3]);
  if (end < start || (total !== null && end >= total)) return null;
  return { start, end, total };
}

/**
 * The agent's part of a 206 to a widened range, masked and cut, or why it cannot be given. A part
 * the proxy cannot read whole is refused with 502 rather than passed on: the Range already went
 * upstream, so answering the whole body instead would need a second request, and bytes that were
 * not scanned with their margin could hold a piece of a value. That covers a part in another
 * coding (gzip of a slice cannot be decoded alone), several parts (multipart/byteranges), a
 * Content-Range that does not parse, and one that does not cover the margin asked for.
 */
export function startRangeScrub(
  headers: Record<string, string | string[]>,
  transferEncoding: string,
  declaredLength: number | null,
  plan: RangePlan,
  patterns: readonly Pattern[],
  io: ScrubIo,
): ScrubSink | Answer {
  const refuse = (why: string) => problem("upstream_error", `${why}; a ranged part is passed on only when it can be scanned for credentials with the bytes around it`);
  // A refreshed token longer than the ones the margin was measured for (after a 401).
  if (plan.margin < longestSpelling(patterns)) return refuse("the credentials changed after the range was widened");
  if (/multipart\/byteranges/i.test(String(headers["content-type"] ?? ""))) return refuse("the upstream answered the range in several parts (multipart/byteranges)");
  const codings = messageCodings(headers["content-encoding"], transferEncoding);
  if (codings === null || codings.length > 0) {
    return refuse(`the part came encoded (content-encoding ${String(headers["content-encoding"] ?? "none")}, transfer-encoding ${transferEncoding || "none"})`);
  }
  const range = parseContentRange(headers["content-range"]);
  if (!range) return refuse("the part's Content-Range cannot be read");
  const reachesEnd = range.total !== null && range.end === range.total - 1;
  const coversEnd = reachesEnd || (plan.last !== null && range.end >= plan.last + plan.margin);
  if (range.start > Math.max(0, plan.first - plan.margin) || !coversEnd) return refuse(`the upstream sent bytes ${range.start}-${range.end}, not the margin around the range asked for`);
  const length = range.end - range.start + 1;
  if (declaredLength !== null && declaredLength !== length) return refuse("the part's length is not the one its Content-Range gives");
  scrubHeaders(headers, patterns);
  if (plan.first > range.end) {
    // Past the end (coversEnd: the part reaches it, so the total is known): nothing to give.
    headers["content-range"] = `bytes */${range.total}`;
    headers["content-length"] = "0";
    io.writeHead(headers, RANGE_NOT_SATISFIABLE);
    return { push: () => undefined, end: (then) => then() };
  }
  const last = Math.min(plan.last ?? range.end, range.end);
  headers["content-range"] = `bytes ${plan.first}-${last}/${range.total ?? "*"}`;
  headers["content-length"] = String(last - plan.first + 1);
  // The agent's bytes, as offsets into the upstream's part.
  const from = plan.first - range.start;
  const to = last - range.start + 1;
  if (length <= SCRUB_WHOLE_BYTES) return holdWhole(headers, length, from, to, patterns, io);
  io.writeHead(headers);
  const scrubber = new StreamScrubber(patterns, true);
  /** Offset in the part of the next byte out of the scrubber (masking keeps offsets). */
  let out = 0;
  /**
   * The agent's last byte, held until the upstream's part has ended at the length it declared: the
   * bytes asked for may all have arrived before the part falls short of its Content-Range, and the
   * agent must not get a complete 206 of a part that was not.
   */
  let finalByte: Buffer | null = null;
  const give = (pieces: readonly Buffer[]): boolean => {
    const mine: Buffer[] = [];
    for (const piece of pieces) {
      const at = out;
      out += piece.length;
      const a = Math.max(from, at);
      const b = Math.min(to, out);
      if (a >= b) continue;
      if (b === to) {
        if (b - 1 > a) mine.push(piece.subarray(a - at, b - 1 - at));
        finalByte = piece.subarray(b - 1 - at, b - at);
      } else mine.push(piece.subarray(a - at, b - at));
    }
    return mine.length === 0 || io.write(mine);
  };
  return {
    push: (bytes) => {
      if (!give(scrubber.pushPieces(bytes))) io.pauseUpstream(io.waitDrain);
    },
    end: (then) => {
      give([scrubber.end()]);
      // A part shorter than its Content-Range (the connection closed early) is cut, never ended.
      if (out !== length || finalByte === null) return io.fail();
      io.write([finalByte]);
      then();
    },
  };
}

/** A small part: masked whole, refused when a value stands in a spelling that cannot be masked in place. */
function holdWhole(headers: Record<string, string | string[]>, length: number, from: number, to: number, patterns: readonly Pattern[], io: ScrubIo): ScrubSink {
  const chunks: Buffer[] = [];
  let held = 0;
  let over = false;
  return {
    push: (bytes) => {
      if (over) return;
      held += bytes.length;
      // More than its Content-Range gives (a chunked body runs on): not held, cut at the end.
      if (held > length) over = true;
      else chunks.push(bytes);
    },
    end: (then) => {
      const part = Buffer.concat(chunks);
      if (over || part.length !== length) return io.fail();
      const masked = maskText(part.toString("latin1"), patterns);
      // As a whole body is (whole-body.ts): a value left in a lenient view (wrapped base64,
      // UTF-16, HTML references) or under a compressed layer the part starts with. The lenient
      // views are read with whole values masked only: masking the heads and tails in some lines
      // of wrapped base64 would hide the value while its middle lines went out.
      const layers = bodyLayers(part, [], MAX_DECODED_SCRUB_BYTES) ?? [];
      const views = [...lenientViews(maskText(part.toString("latin1"), patterns, false)), ...layers.slice(1).map((l) => l.body.toString("latin1"))];
      for (const view of views) {
        const hit = findSecret(view, patterns);
        if (hit) {
          return io.refuse(
            problem(
              "upstream_error",
              `the part carries the value of credential ${hit.key} in a spelling that cannot be masked where it stands (wrapped, spaced, UTF-16 or compressed); it was not passed on`,
            ),
          );
        }
      }
      io.writeHead(headers);
      io.write(Buffer.from(masked.slice(from, to), "latin1"));
      then();
    },
  };
}
