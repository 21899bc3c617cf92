// Ranged requests under scrubbing. Scrubbing finds a value only whole: passed on as asked, a Range
// would let an agent fetch an echoed value a few bytes at a time (each piece too short to be a
// value) and join the pieces. So one range `bytes=a-b` or `bytes=a-` of a GET (what download
// managers, curl -r and the AWS CLI's parallel parts send) goes upstream widened by a margin on
// each side, the longest any value can be spelled (every byte escaped, three rounds deep): any
// value that touches bytes a..b lies wholly in what comes back, where scrubbing finds it and masks
// it in place, and the response writer cuts a..b out (response-body.ts startRangeScrub). Anything
// else (several ranges, a suffix range `bytes=-N`, a HEAD, a Range that does not parse) is not
// passed on: the upstream answers whole, 200, as a server ignoring Range does, which every client
// must take. If-Range goes with a range it guards; a validator that no longer matches makes the
// upstream answer 200 whole, which is scrubbed like any answer.
import { type Flow } from "../flow.ts";
import { longestSpelling } from "../secrets.ts";
import { type StepContext } from "../step-context.ts";

/** One range in a Range header: `bytes=a-b` or `bytes=a-`, digits only, a ≤ b. */
const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d{1,15})[ \t]*-[ \t]*(\d{0,15})[ \t]*$/i;

export function planRanges(flow: Flow, _ctx: StepContext): void {
  delete flow.range;
  const scrub = flow.scrubBody;
  if (!scrub) return;
  const range = flow.headers.range;
  const ifRange = flow.headers["if-range"];
  delete flow.headers.range;
  delete flow.headers["if-range"];
  if (flow.method !== "GET" || typeof range !== "string") return;
  const m = SINGLE_RANGE.exec(range);
  if (!m) return;
  const first = Number(m[1]);
  const last = m[2] === "" ? null : Number(m[2]);
  if (last !== null && last < first) return;
  // Looked up after inject: an AWS signature the upstream might echo is scrubbed too, and counts.
  const margin = longestSpelling(scrub());
  flow.headers.range = `bytes=${Math.max(0, first - margin)}-${last === null ? "" : last + margin}`;
  if (typeof ifRange === "string") flow.headers["if-range"] = ifRange;
  flow.range = { first, last, margin };
}
